-- The vault (hub/vault/): per-person data keys, stored only wrapped by the master key,
-- shared by every service in its own schema "vault". No personal data in clear: references
-- are business process ids, pseudonyms, or keyed hashes of the AHVN13.

CREATE TABLE vault.data_keys (
    key_id          uuid PRIMARY KEY,
    ring            uuid NOT NULL,          -- the person: erasure destroys every key of the ring
    wrapped         bytea,                  -- nonce | AES-GCM(master KEK, key); NULL once destroyed
    master_key_id   text NOT NULL,          -- which master key wrapped it (never the key)
    created_at      timestamptz NOT NULL DEFAULT now(),
    destroyed_at    timestamptz,
    CHECK ((wrapped IS NULL) = (destroyed_at IS NOT NULL))
);
CREATE INDEX data_keys_by_ring ON vault.data_keys (ring);

-- How writers find a key: 'subject:<hash>', 'case:<id>', 'citizen:<pseudonym>'. A reference
-- names one key; a key has many references. Erasure deletes the subject and citizen
-- references (they identify the person) and keeps the case ones, so a later event of an
-- erased case still finds that its key is gone.
CREATE TABLE vault.key_refs (
    ref        text PRIMARY KEY,
    key_id     uuid NOT NULL REFERENCES vault.data_keys,
    bound_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX key_refs_by_key ON vault.key_refs (key_id);
