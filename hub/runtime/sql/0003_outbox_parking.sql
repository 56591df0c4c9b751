-- One row the broker cannot take must not hold up the others. The relay marks what the
-- broker acknowledged, parks a row it can never publish (too large, topic invalid or not
-- authorized) with its reason, and gives a row that may succeed later a retry time of its
-- own. Later rows of the same case on the same topic wait behind a parked or waiting row,
-- so each case stays in order; every other case goes on.

ALTER TABLE outbox
    ADD COLUMN attempts     integer NOT NULL DEFAULT 0,  -- failed publishing attempts
    ADD COLUMN last_error   text,                        -- why the last attempt failed
    ADD COLUMN retry_at     timestamptz,                 -- not before: a transient failure's backoff
    ADD COLUMN parked_at    timestamptz,                 -- refused for good: waits for `hub outbox retry|drop`
    ADD COLUMN park_reason  text;

-- The relay looks for an earlier unpublished row of the same topic and key.
CREATE INDEX outbox_unpublished_chain ON outbox (topic, aggregateid, seq) WHERE published_at IS NULL;

-- What `hub outbox drop` removed and why: the row's identity, never its payload (personal data).
CREATE TABLE outbox_dropped (
    seq           bigint      PRIMARY KEY,   -- the row's seq, the id operators used
    id            uuid        NOT NULL,
    topic         text        NOT NULL,
    aggregatetype text        NOT NULL,
    aggregateid   text        NOT NULL,
    type          text        NOT NULL,
    event_id      text,                      -- ce_id, if the row had one
    payload_bytes integer     NOT NULL,
    created_at    timestamptz NOT NULL,
    attempts      integer     NOT NULL,
    parked_at     timestamptz,
    park_reason   text,
    dropped_at    timestamptz NOT NULL DEFAULT now(),
    dropped_by    text        NOT NULL,      -- database role and OS user of the operator
    reason        text        NOT NULL       -- the operator's
);
