-- The audit chain's head, published by the registry on hub.audit.heads for operations to
-- keep outside the database (contracts/audit.py); no partner publishes or receives it.
INSERT INTO catalog VALUES
    ('ch.lu.hub.audit.head-anchored.v1', 'audit', 1, '{}', 'internal',
     'Where the audit chain ended when the registry published it')
ON CONFLICT (event_type) DO NOTHING;
