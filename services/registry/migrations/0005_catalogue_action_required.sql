-- A partner working on a case may ask the citizen for something; the case stays open.
INSERT INTO catalog VALUES
    ('ch.lu.hub.case.action-required.v1', 'case', 1,
     '{municipality,tax-office,building-authority,environment-office,building-insurance}', 'internal',
     'A partner needs something from the citizen')
ON CONFLICT (event_type) DO NOTHING;
