-- What the test handler does, in the order it happened.
CREATE TABLE effects (
    seq       bigserial PRIMARY KEY,
    partition integer   NOT NULL,
    event_id  text      NOT NULL
);
