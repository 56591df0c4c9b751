-- Registry (personal data at rest): confidential and secret fields of a case's
-- details and of a pending delivery's data are sealed under the person's data key
-- (hub/vault/); the jsonb columns keep the public and internal fields only.
-- NULL: a row written before this migration, whose jsonb still holds everything; the
-- registry seals such rows when it starts (services/registry/sealing.py).
ALTER TABLE cases ADD COLUMN details_sealed bytea;
ALTER TABLE pending_deliveries ADD COLUMN data_sealed bytea;

CREATE INDEX cases_not_sealed ON cases (case_id) WHERE details_sealed IS NULL;
