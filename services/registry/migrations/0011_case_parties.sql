-- Registry: who is a party to a case. Partners carry their jurisdiction (mirrored from
-- identity); each case stores its party slots as they were resolved when it opened (the
-- process definition says how, services/registry/domain.py), so routing and acting never
-- depend on reading the opening event again. A subscription reaches only the cases its
-- partner is a party to, unless its scope says all cases; each delivery's audit entry
-- records on which of the two bases it was made.

ALTER TABLE partners
    ADD COLUMN jurisdiction_level text CHECK (jurisdiction_level IN ('municipality', 'canton', 'federal')),
    ADD COLUMN bfs_number integer CHECK (bfs_number BETWEEN 1 AND 9999),
    ADD COLUMN canton text CHECK (canton ~ '^[A-Z]{2}$');
ALTER TABLE partners ADD CONSTRAINT partners_jurisdiction_fits_level CHECK (
    CASE jurisdiction_level
        WHEN 'municipality' THEN bfs_number IS NOT NULL AND canton IS NOT NULL
        WHEN 'canton' THEN bfs_number IS NULL AND canton IS NOT NULL
        WHEN 'federal' THEN bfs_number IS NULL AND canton IS NULL
        ELSE bfs_number IS NULL AND canton IS NULL
    END
);

-- One row per slot that applies to the case. partner_id NULL: no active partner filled it
-- when the case opened (unfilled_reason says why); it is filled when a partner with the
-- role and the jurisdiction is registered or reactivated while the case is open.
CREATE TABLE case_parties (
    case_id             text NOT NULL REFERENCES cases,
    slot                text NOT NULL,
    position            smallint NOT NULL,   -- the slot's place in the process definition
    role                text NOT NULL,
    jurisdiction_level  text CHECK (jurisdiction_level IN ('municipality', 'canton', 'federal')),
    bfs_number          integer,
    canton              text,
    partner_id          text,          -- no foreign key: the register may change, the case keeps its parties
    unfilled_reason     text,
    resolved_at         timestamptz NOT NULL DEFAULT now(),
    filled_at           timestamptz,
    PRIMARY KEY (case_id, slot),
    CHECK ((partner_id IS NULL) = (filled_at IS NULL)),
    CHECK (partner_id IS NULL OR unfilled_reason IS NULL)
);
CREATE INDEX case_parties_by_partner ON case_parties (partner_id, case_id) WHERE partner_id IS NOT NULL;
CREATE INDEX case_parties_unfilled ON case_parties (role, jurisdiction_level, bfs_number, canton)
    WHERE partner_id IS NULL;

ALTER TABLE subscriptions
    ADD COLUMN scope text NOT NULL DEFAULT 'party' CHECK (scope IN ('party', 'all-cases'));

-- Delivered and withheld entries: the slots the recipient fills ("party: arrival-municipality")
-- or "all-cases" (its subscription's scope). Part of the seal only when set, so entries
-- written before stay verifiable (hub/audit/).
ALTER TABLE audit_log ADD COLUMN basis text;

INSERT INTO catalog VALUES
    ('ch.lu.hub.case.party-missing.v1', 'case', 1, '{}', 'internal',
     'A party slot of a case that no active partner fills')
ON CONFLICT (event_type) DO NOTHING;
