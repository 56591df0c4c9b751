-- What the shutdown tests' handler did: one row per applied record and runtime.
CREATE TABLE effects (
    seq      bigserial PRIMARY KEY,
    event_id text      NOT NULL,
    runtime  text      NOT NULL
);
