-- The benchmark service's effect: one row per processed event.
CREATE TABLE effects (
    case_id   text PRIMARY KEY,
    event_id  text NOT NULL,
    at        timestamptz NOT NULL DEFAULT now()
);
