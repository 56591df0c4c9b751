-- Audit log: every routing decision and every disclosure of personal
-- data, one row each, written in the transaction of the delivery it records.
-- Append-only and hash-chained (hub/audit/): each row holds the seal of the row before
-- it and its own seal, HMAC-SHA256 under a key kept outside the database.
-- Personal data only as pseudonyms: never names, AHVN13 or the delivered values.

CREATE TABLE audit_log (
    seq                bigint PRIMARY KEY CHECK (seq >= 1),   -- position in the chain, no gaps
    recorded_at        timestamptz NOT NULL,
    decision           text NOT NULL CHECK (decision IN ('delivered', 'withheld', 'unrouted')),
    case_id            text NOT NULL,          -- no foreign key: the log outlives what it records
    case_type          text NOT NULL,
    event_id           text NOT NULL,          -- the event decided about (the delivery's referenceid)
    event_type         text NOT NULL,
    trace_id           text NOT NULL,
    partner_id         text,                   -- NULL: unrouted, nobody received it
    sector             text,
    delivery_event_id  text,                   -- ce id of the delivery, when delivered
    fields             text[] NOT NULL,        -- dotted paths of exactly what was disclosed
    person_pseudonym   text,                   -- the recipient's sector pseudonym of the person
    citizen_id         text,                   -- the citizen-services pseudonym (access requests)
    legal_basis        text,
    purpose            text,
    reason             text,
    key_id             text NOT NULL,          -- which HMAC key sealed it (never the key)
    prev_hash          text NOT NULL,
    entry_hash         text NOT NULL UNIQUE
);
CREATE INDEX audit_log_by_citizen ON audit_log (citizen_id) WHERE citizen_id IS NOT NULL;
CREATE INDEX audit_log_by_case ON audit_log (case_id);

-- The chain head: one row, locked by every append (SELECT ... FOR UPDATE) so that
-- concurrent transactions append one after the other; verify compares it with the last
-- row, so entries cut off the end are noticed too.
CREATE TABLE audit_head (
    singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    seq         bigint NOT NULL,
    entry_hash  text NOT NULL
);
INSERT INTO audit_head (seq, entry_hash) VALUES (0, repeat('0', 64));

-- Rows are never changed or removed. A superuser can disable these triggers; the seals
-- are what shows such a change afterwards (`hub audit verify`).
CREATE FUNCTION audit_log_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP;
END
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change();

-- The head only moves forward, and only onto a row that exists with that seal.
CREATE FUNCTION audit_head_advance_only() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
BEGIN
    IF TG_OP <> 'UPDATE' THEN
        RAISE EXCEPTION 'audit_head: % refused', TG_OP;
    END IF;
    IF NEW.seq <= OLD.seq OR NOT EXISTS (
        SELECT 1 FROM audit_log WHERE seq = NEW.seq AND entry_hash = NEW.entry_hash
    ) THEN
        RAISE EXCEPTION 'audit_head only advances to an appended entry';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER audit_head_forward BEFORE UPDATE OR DELETE ON audit_head
    FOR EACH ROW EXECUTE FUNCTION audit_head_advance_only();
CREATE TRIGGER audit_head_no_truncate BEFORE TRUNCATE ON audit_head
    FOR EACH STATEMENT EXECUTE FUNCTION audit_head_advance_only();
