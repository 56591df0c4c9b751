-- Notifications: every message to a citizen and the life of its delivery.

CREATE TABLE notifications (
    notification_id  text PRIMARY KEY,
    case_id          text NOT NULL,
    channel          text NOT NULL,
    recipient        text NOT NULL,
    language         text NOT NULL,
    template         text NOT NULL,
    template_version integer NOT NULL,
    subject          text NOT NULL,
    body             text NOT NULL,
    test_delivery    boolean NOT NULL DEFAULT false,
    status           text NOT NULL CHECK (status IN ('created', 'sending', 'delivered', 'temporary-failure',
                                                      'permanent-failure', 'technical-failure')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_error       text,
    traceparent      text,          -- the request's span: sending continues its trace
    tracestate       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX notifications_due ON notifications (next_attempt_at)
    WHERE status IN ('created', 'temporary-failure');

CREATE TABLE notification_status_history (
    id               bigserial PRIMARY KEY,
    notification_id  text NOT NULL REFERENCES notifications,
    status           text NOT NULL,
    detail           text,
    at               timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE FUNCTION notifications_wake_dispatcher() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('notifications_due', '');
    RETURN NULL;
END;
$$;
CREATE TRIGGER notifications_wake_dispatcher AFTER INSERT ON notifications
    FOR EACH STATEMENT EXECUTE FUNCTION notifications_wake_dispatcher();
