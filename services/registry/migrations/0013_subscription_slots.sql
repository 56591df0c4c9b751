-- Registry: a subscription may name the party slot it serves. A municipality records the
-- departure of one move and registers the arrival of another, under different purposes,
-- legal bases and fields; a subscription per partner and type could not tell them apart,
-- so a municipality received (and the audit log recorded) a departure under its arrival's
-- purpose. A subscription naming a slot applies only where the partner fills that slot;
-- one naming none serves the slots none of the partner's subscriptions to the type names
-- (services/registry/subscriptions_domain.py). The all-cases scope names no slot: it does
-- not depend on being a party. Slot names are defined per case type.

ALTER TABLE subscriptions
    ADD COLUMN slot text CHECK (slot ~ '^[a-z][a-z0-9]*(-[a-z0-9]+)*$' AND length(slot) <= 63),
    ADD CONSTRAINT subscriptions_slot_of_a_party_scope_and_case_type
        CHECK (slot IS NULL OR (scope = 'party' AND case_type IS NOT NULL));

-- One subscription per partner, type, case type and slot.
DROP INDEX subscriptions_one_per_scope;
CREATE UNIQUE INDEX subscriptions_one_per_slot
    ON subscriptions (partner_id, event_type, coalesce(case_type, ''), coalesce(slot, ''));
