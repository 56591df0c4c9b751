-- The partner register's commands and events join the catalogue: only operators (the
-- hub CLI) and the identity service emit them, no partner role may.
INSERT INTO catalog VALUES
    ('ch.lu.hub.admin.register-partner.v1', 'admin', 1, '{}', 'internal', 'Register or update a partner'),
    ('ch.lu.hub.admin.change-partner-status.v1', 'admin', 1, '{}', 'internal', 'Suspend or reactivate a partner'),
    ('ch.lu.hub.identity.partner-registered.v1', 'identity', 1, '{}', 'internal', 'A partner as identity knows it'),
    ('ch.lu.hub.identity.partner-status-changed.v1', 'identity', 1, '{}', 'internal', 'A partner suspended or reactivated')
ON CONFLICT (event_type) DO NOTHING;
