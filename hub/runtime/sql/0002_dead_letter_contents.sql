-- Dead letters keep the original record, so an operator can inspect it (`hub dlq show`)
-- and re-publish it unchanged (`hub dlq redrive`) after the cause is fixed, even once the
-- dead-letter topic's or the outbox's retention has removed the copy there.

ALTER TABLE dead_letters
    ADD COLUMN kafka_key     bytea,                       -- NULL: no key, purged, or recorded before 0002
    ADD COLUMN headers       jsonb,                       -- original headers as [[name, text], ...]
    ADD COLUMN payload       bytea,                       -- original value; NULL when purged or not stored
    ADD COLUMN redriven_at   timestamptz,                 -- last redrive
    ADD COLUMN redrive_count integer     NOT NULL DEFAULT 0,
    ADD COLUMN purged_at     timestamptz;                 -- content erased, the record of the failure kept

-- Listing is newest first and filtered by time.
CREATE INDEX dead_letters_recorded_at ON dead_letters (recorded_at);
