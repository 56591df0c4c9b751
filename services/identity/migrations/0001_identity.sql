-- Identity: persons and their identifiers. The AHVN13 lives here and nowhere else.

CREATE TABLE persons (
    person_id      uuid PRIMARY KEY,
    vn             text UNIQUE,                 -- AHVN13
    official_name  text NOT NULL,
    first_name     text NOT NULL,
    sex            text NOT NULL,
    date_of_birth  date NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE local_person_ids (
    category   text NOT NULL,                   -- eCH-0044 personIdCategory
    local_id   text NOT NULL,
    person_id  uuid NOT NULL REFERENCES persons,
    PRIMARY KEY (category, local_id)
);

CREATE TABLE issued_pseudonyms (
    person_id   uuid NOT NULL REFERENCES persons,
    sector      text NOT NULL,
    pseudonym   text NOT NULL,
    first_issued_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (person_id, sector)
);
