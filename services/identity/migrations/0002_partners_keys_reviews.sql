-- Identity: the partner register (who is who), versioned sector keys,
-- and reviews of person matches that must not be merged silently.

-- Partners: X-Road style ids. The parts are derived from the id, so they can never
-- disagree with it, and members (e.g. all of MUN/1061) can be queried by prefix parts.
CREATE TABLE partners (
    partner_id                text PRIMARY KEY CHECK (
        partner_id ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}/(FED|CAN|MUN|COM)/[A-Za-z0-9][A-Za-z0-9._-]{0,63}/[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'
    ),
    instance                  text GENERATED ALWAYS AS (split_part(partner_id, '/', 1)) STORED,
    member_class              text GENERATED ALWAYS AS (split_part(partner_id, '/', 2)) STORED,
    member_code               text GENERATED ALWAYS AS (split_part(partner_id, '/', 3)) STORED,
    subsystem                 text GENERATED ALWAYS AS (split_part(partner_id, '/', 4)) STORED,
    name                      text NOT NULL,
    sector                    text NOT NULL,
    roles                     text[] NOT NULL CHECK (cardinality(roles) >= 1),
    sedex_id                  text,
    local_person_id_category  text,            -- the eCH-0044 personIdCategory the partner uses
    status                    text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    status_reason             text,
    registered_at             timestamptz NOT NULL DEFAULT now(),
    updated_at                timestamptz NOT NULL DEFAULT now(),
    -- When PartnerRegistered was written to the outbox; NULL: still to be announced.
    announced_at              timestamptz
);
CREATE INDEX partners_by_member ON partners (member_class, member_code);
CREATE INDEX partners_unannounced ON partners (partner_id) WHERE announced_at IS NULL;

-- Sector keys: only versions are stored. The key bytes are derived from the master
-- secret file + sector + version, so a database dump reveals no key.
CREATE TABLE sector_keys (
    sector      text NOT NULL,
    version     integer NOT NULL CHECK (version >= 1),
    created_at  timestamptz NOT NULL DEFAULT now(),
    retired_at  timestamptz,
    PRIMARY KEY (sector, version)
);
CREATE UNIQUE INDEX sector_keys_one_current ON sector_keys (sector) WHERE retired_at IS NULL;

-- Version 1 is the key every pseudonym so far was issued with; other sectors get
-- version 1 on first use.
INSERT INTO sector_keys (sector, version) SELECT DISTINCT sector, 1 FROM issued_pseudonyms;

-- Which key version a stored pseudonym came from: it is returned as stored forever,
-- the version says how it could be recomputed.
ALTER TABLE issued_pseudonyms ADD COLUMN key_version integer NOT NULL DEFAULT 1;
ALTER TABLE issued_pseudonyms ALTER COLUMN key_version DROP DEFAULT;

-- When a local id was linked: a person may have several ids of one category over time.
ALTER TABLE local_person_ids ADD COLUMN linked_at timestamptz NOT NULL DEFAULT now();
CREATE INDEX local_person_ids_by_person ON local_person_ids (person_id);

-- Name + date of birth is the last-resort lookup; it only ever raises a review.
CREATE INDEX persons_by_date_of_birth ON persons (date_of_birth);

-- A new person who looks like a known one (same name and date of birth, different
-- AHVN13): both stay separate until an operator decides. Ids only, no personal data.
CREATE TABLE match_reviews (
    id                   bigserial PRIMARY KEY,
    new_person_id        uuid NOT NULL REFERENCES persons,
    candidate_person_id  uuid NOT NULL REFERENCES persons,
    reason               text NOT NULL,
    business_process_id  text,                 -- the case that raised it
    created_at           timestamptz NOT NULL DEFAULT now(),
    resolved             boolean NOT NULL DEFAULT false,
    resolved_at          timestamptz,
    UNIQUE (new_person_id, candidate_person_id)
);
CREATE INDEX match_reviews_open ON match_reviews (created_at) WHERE NOT resolved;
