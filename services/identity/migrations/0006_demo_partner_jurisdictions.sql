-- The partners of the one-machine set-up get their jurisdictions, and the partners that
-- show a case reaching only its parties join them: Emmen (a municipality of the same
-- canton) and Zug with its tax office (another canton), with the same kinds of roles as
-- their Lucerne counterparts. Seed data only, kept apart so that it can move to
-- provisioning as a whole.
UPDATE partners SET jurisdiction_level = 'municipality', bfs_number = 1059, canton = 'LU'
    WHERE partner_id = 'CH/MUN/1059/einwohnerdienste';
UPDATE partners SET jurisdiction_level = 'municipality', bfs_number = 1061, canton = 'LU'
    WHERE partner_id IN ('CH/MUN/1061/einwohnerdienste', 'CH/MUN/1061/baudirektion');
UPDATE partners SET jurisdiction_level = 'canton', canton = 'LU'
    WHERE partner_id IN ('CH/CAN/LU/eportal', 'CH/CAN/LU/steuerverwaltung', 'CH/CAN/LU/uwe',
                         'CH/CAN/LU/gvl', 'CH/CAN/LU/ops');
-- Announced again, now with their jurisdiction, so the registry's view follows.
UPDATE partners SET announced_at = NULL WHERE jurisdiction_level IS NOT NULL;

INSERT INTO partners (partner_id, name, sector, roles, local_person_id_category,
                      jurisdiction_level, bfs_number, canton) VALUES
    ('CH/MUN/1024/einwohnerdienste', 'Gemeinde Emmen, Einwohnerdienste', 'resident-registration',
     '{municipality}', 'CH.LU.1024', 'municipality', 1024, 'LU'),
    ('CH/MUN/1711/einwohnerdienste', 'Stadt Zug, Einwohnerkontrolle', 'resident-registration',
     '{municipality}', 'CH.ZG.1711', 'municipality', 1711, 'ZG'),
    ('CH/CAN/ZG/steuerverwaltung', 'Kanton Zug, Steuerverwaltung', 'tax',
     '{tax-office}', NULL, 'canton', NULL, 'ZG')
ON CONFLICT (partner_id) DO NOTHING;
