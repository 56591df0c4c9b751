-- Identity: the public keys partners sign their events with. Several keys of a
-- partner may be valid at once (rotation); each has a validity window and may be revoked.
-- Only public keys: a partner's private key never reaches the hub.
CREATE TABLE partner_keys (
    key_id             text PRIMARY KEY CHECK (key_id ~ '^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$'),
    partner_id         text NOT NULL REFERENCES partners,
    algorithm          text NOT NULL DEFAULT 'ed25519' CHECK (algorithm = 'ed25519'),
    public_key         text NOT NULL UNIQUE,   -- raw 32 bytes, base64; one key, one id
    valid_from         timestamptz NOT NULL,
    valid_until        timestamptz,            -- NULL: until revoked
    revoked_at         timestamptz,            -- final: a revoked key is never valid again
    revocation_reason  text,
    registered_at      timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CHECK (valid_until IS NULL OR valid_until > valid_from)
);
CREATE INDEX partner_keys_by_partner ON partner_keys (partner_id);
