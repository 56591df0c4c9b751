-- Identity (personal data at rest): a person's AHVN13, names, sex and date of
-- birth are sealed together in ``record`` under the person's data key (hub/vault/),
-- and a local register id in ``local_id_sealed``. What lookups need is kept as blind
-- indexes (keyed hashes under a key derived from the vault's master key): equality only,
-- and meaningless without that key.
-- Rows stored before this migration keep their plain columns until the service seals
-- them at start (services/identity/sealing.py); ``record IS NULL`` marks them.

ALTER TABLE persons
    ADD COLUMN key_id     uuid,         -- the person's data key (vault.data_keys, another schema)
    ADD COLUMN record     bytea,        -- sealed {vn, official_name, first_name, sex, date_of_birth}
    ADD COLUMN vn_index   text UNIQUE,  -- finds a person by AHVN13
    ADD COLUMN dob_index  text,         -- finds look-alikes: everyone born that day
    ADD COLUMN erased_at  timestamptz,  -- `hub person erase`: key destroyed, indexes dropped
    ALTER COLUMN official_name DROP NOT NULL,
    ALTER COLUMN first_name DROP NOT NULL,
    ALTER COLUMN sex DROP NOT NULL,
    ALTER COLUMN date_of_birth DROP NOT NULL;
CREATE INDEX persons_by_dob_index ON persons (dob_index) WHERE dob_index IS NOT NULL;
CREATE INDEX persons_not_sealed ON persons (person_id) WHERE record IS NULL;

-- A local id is found by its blind index; the id itself is sealed. The old key (category,
-- local_id) stays unique for the rows that still have a plain id.
ALTER TABLE local_person_ids
    DROP CONSTRAINT local_person_ids_pkey,
    ADD COLUMN id bigserial PRIMARY KEY,
    ADD COLUMN local_id_index text,
    ADD COLUMN local_id_sealed bytea,
    ALTER COLUMN local_id DROP NOT NULL;
CREATE UNIQUE INDEX local_person_ids_plain ON local_person_ids (category, local_id);
CREATE UNIQUE INDEX local_person_ids_by_index ON local_person_ids (category, local_id_index);
