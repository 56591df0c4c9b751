-- Channels beyond email: citizen preferences and opt-out, the in-app inbox, partner webhooks.

ALTER TABLE notifications
    ADD COLUMN citizen_id      text,
    ADD COLUMN mandatory       boolean NOT NULL DEFAULT true,
    ADD COLUMN template_source text,   -- the template rendered: the one requested or its generic step
    -- A webhook delivery forwards an event: it has no language and no template version.
    ALTER COLUMN language DROP NOT NULL,
    ALTER COLUMN template_version DROP NOT NULL;
CREATE INDEX notifications_citizen ON notifications (citizen_id) WHERE citizen_id IS NOT NULL;

-- One row per citizen who chose something; no row means email and every notice.
CREATE TABLE citizen_preferences (
    citizen_id  text PRIMARY KEY,
    channel     text CHECK (channel IN ('email', 'sms', 'inbox')),   -- NULL: email
    opted_out   boolean NOT NULL DEFAULT false,   -- no non-mandatory notices
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- The in-app inbox: what the dispatcher delivered on the inbox channel.
CREATE TABLE inbox_messages (
    notification_id text PRIMARY KEY REFERENCES notifications,
    citizen_id      text NOT NULL,
    case_id         text NOT NULL,
    template        text NOT NULL,
    language        text NOT NULL,
    subject         text NOT NULL,
    body            text NOT NULL,
    delivered_at    timestamptz NOT NULL DEFAULT now(),
    read_at         timestamptz
);
CREATE INDEX inbox_messages_by_citizen ON inbox_messages (citizen_id, delivered_at DESC);

-- Partners without Kafka: their delivery topic is read by the notifications service and
-- POSTed to this URL, signed with this secret (HMAC needs the secret itself, not a hash).
CREATE TABLE webhooks (
    partner_id  text PRIMARY KEY,
    topic       text NOT NULL UNIQUE,   -- hub.delivery.<slug> of the partner
    url         text NOT NULL CHECK (url ~ '^https?://'),
    secret      text NOT NULL CHECK (length(secret) >= 16),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
