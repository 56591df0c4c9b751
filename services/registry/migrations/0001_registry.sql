-- Registry: partners, what they subscribe to, cases and their timelines.

CREATE TABLE partners (
    partner_id      text PRIMARY KEY,                 -- X-Road style: CH/MUN/1061/einwohnerdienste
    name            text NOT NULL,
    sector          text NOT NULL,
    delivery_topic  text NOT NULL,
    status          text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended'))
);

CREATE TABLE subscriptions (
    id               bigserial PRIMARY KEY,
    partner_id       text NOT NULL REFERENCES partners,
    event_type       text NOT NULL,
    purpose          text NOT NULL,
    legal_basis      text NOT NULL,
    legal_basis_url  text,
    status           text NOT NULL DEFAULT 'approved' CHECK (status IN ('requested', 'approved', 'revoked')),
    UNIQUE (partner_id, event_type)
);

CREATE TABLE cases (
    case_id          text PRIMARY KEY,                -- the eCH-0058 business process id
    case_type        text NOT NULL,
    status           text NOT NULL CHECK (status IN ('opened', 'in-progress', 'completed', 'rejected', 'escalated')),
    opened_at        timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    trace_id         text NOT NULL,
    test_delivery    boolean NOT NULL DEFAULT false,
    reported_event_id text NOT NULL,
    details          jsonb NOT NULL                   -- what deliveries need; never the AHVN13
);

CREATE TABLE case_milestones (
    case_id     text NOT NULL REFERENCES cases,
    milestone   text NOT NULL,
    partner_id  text NOT NULL,
    event_id    text NOT NULL,
    reached_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (case_id, milestone)
);

CREATE TABLE timeline (
    id          bigserial PRIMARY KEY,
    case_id     text NOT NULL REFERENCES cases,
    service     text NOT NULL,
    event_type  text NOT NULL,
    event_id    text NOT NULL,
    time        timestamptz NOT NULL DEFAULT clock_timestamp(),
    trace_id    text NOT NULL,
    detail      text
);
CREATE INDEX timeline_by_case ON timeline (case_id, id);
