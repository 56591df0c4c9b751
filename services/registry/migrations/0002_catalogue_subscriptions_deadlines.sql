-- Registry: partner roles (mirrored from identity), the event catalogue,
-- subscriptions with data categories and retention, case deadlines, pending deliveries.

ALTER TABLE partners
    ADD COLUMN roles text[] NOT NULL DEFAULT '{}',
    ADD COLUMN local_person_id_category text,
    ADD COLUMN sedex_id text;

-- Every event type the hub knows, who may publish it, how sensitive it is.
-- publisher_roles '{}' means: only the hub itself emits it.
CREATE TABLE catalog (
    event_type       text PRIMARY KEY,
    family           text NOT NULL,
    version          integer NOT NULL,
    publisher_roles  text[] NOT NULL,
    sensitivity      text NOT NULL CHECK (sensitivity IN ('public', 'internal', 'confidential', 'secret')),
    description      text NOT NULL
);

INSERT INTO catalog VALUES
    ('ch.lu.hub.relocation.move-reported.v1', 'relocation', 1, '{portal}', 'secret', 'A citizen reports a move (contains the AHVN13)'),
    ('ch.lu.hub.relocation.departure-confirmed.v1', 'relocation', 1, '{municipality}', 'internal', 'Departure municipality confirms'),
    ('ch.lu.hub.relocation.arrival-registered.v1', 'relocation', 1, '{municipality}', 'internal', 'Arrival municipality registers the resident'),
    ('ch.lu.hub.relocation.tax-record-updated.v1', 'relocation', 1, '{tax-office}', 'internal', 'Tax domicile updated'),
    ('ch.lu.hub.building-permit.consultation-requested.v1', 'building-permit', 1, '{building-authority}', 'confidential', 'Building department asks for opinions'),
    ('ch.lu.hub.building-permit.environment-opinion-given.v1', 'building-permit', 1, '{environment-office}', 'internal', 'Opinion of the environment office'),
    ('ch.lu.hub.building-permit.insurance-opinion-given.v1', 'building-permit', 1, '{building-insurance}', 'internal', 'Opinion of the building insurance'),
    ('ch.lu.hub.case.rejected.v1', 'case', 1, '{municipality,tax-office,building-authority}', 'confidential', 'A partner rejects a case, with a reason'),
    ('ch.lu.hub.case.completed.v1', 'case', 1, '{}', 'internal', 'Every milestone of a case reached'),
    ('ch.lu.hub.case.escalated.v1', 'case', 1, '{}', 'internal', 'A case missed its deadline'),
    ('ch.lu.hub.case.delivery.v1', 'case', 1, '{}', 'confidential', 'What a partner receives, minimised'),
    ('ch.lu.hub.identity.pseudonyms-requested.v1', 'identity', 1, '{}', 'secret', 'Registry asks identity for sector pseudonyms'),
    ('ch.lu.hub.identity.pseudonyms-issued.v1', 'identity', 1, '{}', 'confidential', 'Sector pseudonyms per recipient'),
    ('ch.lu.hub.notification.requested.v1', 'notification', 1, '{}', 'confidential', 'Tell a citizen something'),
    ('ch.lu.hub.notification.status-changed.v1', 'notification', 1, '{}', 'internal', 'Delivery status of a notification'),
    ('ch.lu.hub.admin.set-subscription.v1', 'admin', 1, '{}', 'internal', 'Create or change a subscription');

ALTER TABLE subscriptions
    ADD COLUMN case_type text,
    ADD COLUMN fields text[] NOT NULL DEFAULT '{}',
    ADD COLUMN retention_days integer NOT NULL DEFAULT 365 CHECK (retention_days > 0),
    ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now(),
    DROP CONSTRAINT subscriptions_partner_id_event_type_key;
CREATE UNIQUE INDEX subscriptions_one_per_scope ON subscriptions (partner_id, event_type, coalesce(case_type, ''));

ALTER TABLE cases
    ADD COLUMN deadline_at timestamptz,
    ADD COLUMN closed_at timestamptz,
    ADD COLUMN traceparent text;
CREATE INDEX cases_open_by_deadline ON cases (deadline_at) WHERE status IN ('opened', 'in-progress');

-- The opening event waits here while identity issues the recipients' pseudonyms.
CREATE TABLE pending_deliveries (
    request_id   text PRIMARY KEY,       -- ce id of the pseudonyms request
    case_id      text NOT NULL REFERENCES cases,
    event_id     text NOT NULL,
    event_type   text NOT NULL,
    data         jsonb NOT NULL,         -- the event's data without the AHVN13
    created_at   timestamptz NOT NULL DEFAULT now()
);
