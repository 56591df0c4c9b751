-- Registry (personal data at rest): the free text of a timeline step that a
-- partner wrote about the person (a rejection reason, an action asked of the citizen) is
-- confidential (contracts/classification.py). It is sealed under the case's data key in
-- detail_sealed, bound to this table, column and row id; detail keeps a summary that names
-- no one ("rejected", "action required"). Readers show "<summary>: <text>", or the erased
-- marker once the key is destroyed (hub/casefile.py).
-- Rows written before this migration with the text in clear are sealed when the registry
-- starts (services/registry/sealing.py); the partial index finds them quickly.
ALTER TABLE timeline ADD COLUMN detail_sealed bytea;

CREATE INDEX timeline_text_not_sealed ON timeline (id)
    WHERE detail_sealed IS NULL AND (detail LIKE 'rejected: %' OR detail LIKE 'action required: %');
