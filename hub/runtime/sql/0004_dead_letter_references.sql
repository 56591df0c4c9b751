-- A record too large to keep whole (HUB_DEAD_LETTER_MAX_STORED_BYTES) is kept as a
-- reference: its first bytes, its headers cut short, its size and SHA-256. It can be
-- shown and matched with the sender's copy, never redriven.

ALTER TABLE dead_letters
    ADD COLUMN original_size   bigint,                         -- bytes of the original value; NULL before 0004
    ADD COLUMN original_sha256 text,                           -- hex SHA-256 of the original value
    ADD COLUMN truncated       boolean NOT NULL DEFAULT false; -- only a reference was kept
