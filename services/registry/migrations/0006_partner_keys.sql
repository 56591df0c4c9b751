-- Registry: the registry's mirror of partners' signing keys, from identity's
-- PartnerKeyRegistered / PartnerKeyRevoked. Every partner event on hub.ingress is checked
-- against it: the key must belong to the sender, be inside its window and not be revoked.
CREATE TABLE partner_keys (
    key_id       text PRIMARY KEY,
    partner_id   text NOT NULL,   -- no foreign key: identity's events decide, in their order
    algorithm    text NOT NULL CHECK (algorithm = 'ed25519'),
    public_key   text NOT NULL,   -- raw 32 bytes, base64
    valid_from   timestamptz NOT NULL,
    valid_until  timestamptz,
    revoked_at   timestamptz,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX partner_keys_by_partner ON partner_keys (partner_id);

-- The key commands and announcements join the catalogue: operators (the hub CLI) and the
-- identity service emit them, no partner role may.
INSERT INTO catalog VALUES
    ('ch.lu.hub.admin.register-partner-key.v1', 'admin', 1, '{}', 'internal', 'Register a partner''s signing key'),
    ('ch.lu.hub.admin.revoke-partner-key.v1', 'admin', 1, '{}', 'internal', 'Revoke a partner''s signing key'),
    ('ch.lu.hub.identity.partner-key-registered.v1', 'identity', 1, '{}', 'internal', 'A partner''s signing key and its validity'),
    ('ch.lu.hub.identity.partner-key-revoked.v1', 'identity', 1, '{}', 'internal', 'A partner''s signing key revoked')
ON CONFLICT (event_type) DO NOTHING;
