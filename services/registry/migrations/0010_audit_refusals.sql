-- Refused partner events in the audit chain: every event the registry refuses
-- at ingress (signature, replay window, authorization, contract) is one 'refused' entry,
-- written in the transaction of its dead_letters row (hub/audit_refusals.py).
-- A refusal names the claimed partner and the reason, never a person or payload values.

ALTER TABLE audit_log DROP CONSTRAINT audit_log_decision_check;
ALTER TABLE audit_log ADD CONSTRAINT audit_log_decision_check
    CHECK (decision IN ('delivered', 'withheld', 'unrouted', 'refused'));

ALTER TABLE audit_log
    ADD COLUMN reason_class text,        -- refusals: signature, replay-window, not-authorized, contract, ...
    ADD COLUMN sender_verified boolean;  -- refusals: whether the claimed sender's signature held

-- Every refusal has a class and says whether its sender was proven; no other entry does.
ALTER TABLE audit_log ADD CONSTRAINT audit_log_refusal_fields CHECK (
    (decision = 'refused') = (reason_class IS NOT NULL AND sender_verified IS NOT NULL)
);

-- `hub audit refusals` reads the newest refusals, by partner and time.
CREATE INDEX audit_log_refusals ON audit_log (seq) WHERE decision = 'refused';
