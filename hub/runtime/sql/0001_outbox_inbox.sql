-- Transactional outbox (shape of Debezium's outbox router plus trace context) and
-- idempotent-consumer inbox. Created inside the service's own schema (search_path).

CREATE TABLE outbox (
    seq            bigserial   PRIMARY KEY,
    id             uuid        NOT NULL UNIQUE,  -- the CloudEvents id
    topic          text        NOT NULL,
    aggregatetype  text        NOT NULL,         -- event type family, for routing and ops
    aggregateid    text        NOT NULL,         -- Kafka key: the case, so its events stay in order
    type           text        NOT NULL,         -- CloudEvents type
    headers        jsonb       NOT NULL,         -- ce_* and content-type, as [[name, value], ...]
    payload        bytea       NOT NULL,
    traceparent    text,                         -- span that wrote the row: the relay publishes under it
    tracestate     text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    published_at   timestamptz
);

-- The relay scans only unpublished rows, in commit-independent seq order: rows whose
-- transactions commit late are still found on the next scan (no "seq > last_seen").
CREATE INDEX outbox_unpublished ON outbox (seq) WHERE published_at IS NULL;
CREATE INDEX outbox_published_at ON outbox (published_at) WHERE published_at IS NOT NULL;

-- A wake-up for the relay only; correctness never depends on a notification arriving.
CREATE FUNCTION outbox_wake_relay() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('outbox_' || TG_TABLE_SCHEMA, '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER outbox_wake_relay AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_wake_relay();

CREATE TABLE inbox (
    consumer     text        NOT NULL,   -- consumer group
    event_key    text        NOT NULL,   -- ce_source + ' ' + ce_id
    event_type   text        NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_key)
);

CREATE TABLE dead_letters (
    id              bigserial   PRIMARY KEY,
    consumer        text        NOT NULL,
    topic           text        NOT NULL,
    partition       integer     NOT NULL,
    kafka_offset    bigint      NOT NULL,
    event_id        text,
    event_type      text,
    error_class     text        NOT NULL,
    error_message   text        NOT NULL,
    dead_letter_topic text      NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now()
);
