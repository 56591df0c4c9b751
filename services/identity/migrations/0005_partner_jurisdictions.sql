-- Identity: every partner acts for a jurisdiction, one municipality (its BFS number and
-- canton), one canton, or the Confederation. A case's party slots are filled by role and
-- jurisdiction, so the register decides which cases a partner sees and may move.
-- NULL everywhere: a row that predates jurisdictions; it fills no slot and cannot be
-- announced (PartnerRegistered requires a jurisdiction) until it is registered again.
ALTER TABLE partners
    ADD COLUMN jurisdiction_level text CHECK (jurisdiction_level IN ('municipality', 'canton', 'federal')),
    ADD COLUMN bfs_number integer CHECK (bfs_number BETWEEN 1 AND 9999),
    ADD COLUMN canton text CHECK (canton ~ '^[A-Z]{2}$');

ALTER TABLE partners ADD CONSTRAINT partners_jurisdiction_fits_level CHECK (
    CASE jurisdiction_level
        WHEN 'municipality' THEN bfs_number IS NOT NULL AND canton IS NOT NULL
        WHEN 'canton' THEN bfs_number IS NULL AND canton IS NOT NULL
        WHEN 'federal' THEN bfs_number IS NULL AND canton IS NULL
        ELSE bfs_number IS NULL AND canton IS NULL
    END
);
