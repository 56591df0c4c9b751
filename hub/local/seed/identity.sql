-- The partners of the one-machine set-up (hub up, hub demo, the tests) and the
-- subscriptions that let them receive the demo's cases: the cantonal portal; Kriens, Lucerne
-- and Emmen, and Zug in another canton; the two cantons' tax offices; the city's building
-- department, the canton's environment office and building insurance; and operations,
-- which receive escalations and unfilled party slots of every case. Legal bases name the
-- statutes the deliveries rest on. Never applied to a production database: its partners
-- register through `hub partner register` and `hub subscription set`.
-- Identity's register; the announcer tells the registry of each.
INSERT INTO identity.partners (partner_id, name, sector, roles, sedex_id, local_person_id_category, status, status_reason, jurisdiction_level, bfs_number, canton) VALUES
    ('CH/CAN/LU/eportal', 'Kanton Luzern eUmzug portal', 'resident-registration', '{"portal"}', NULL, NULL, 'active', NULL, 'canton', NULL, 'LU'),
    ('CH/CAN/LU/gvl', 'Gebäudeversicherung Luzern', 'insurance', '{"building-insurance"}', NULL, NULL, 'active', NULL, 'canton', NULL, 'LU'),
    ('CH/CAN/LU/ops', 'Hub operations', 'statistics', '{"operations"}', NULL, NULL, 'active', NULL, 'canton', NULL, 'LU'),
    ('CH/CAN/LU/steuerverwaltung', 'Kanton Luzern, Dienststelle Steuern', 'tax', '{"tax-office"}', NULL, NULL, 'active', NULL, 'canton', NULL, 'LU'),
    ('CH/CAN/LU/uwe', 'Kanton Luzern, Dienststelle Umwelt und Energie', 'environment', '{"environment-office"}', NULL, NULL, 'active', NULL, 'canton', NULL, 'LU'),
    ('CH/CAN/ZG/steuerverwaltung', 'Kanton Zug, Steuerverwaltung', 'tax', '{"tax-office"}', NULL, NULL, 'active', NULL, 'canton', NULL, 'ZG'),
    ('CH/MUN/1024/einwohnerdienste', 'Gemeinde Emmen, Einwohnerdienste', 'resident-registration', '{"municipality"}', NULL, 'CH.LU.1024', 'active', NULL, 'municipality', 1024, 'LU'),
    ('CH/MUN/1059/einwohnerdienste', 'Gemeinde Kriens, Einwohnerdienste', 'resident-registration', '{"municipality"}', NULL, 'CH.LU.1059', 'active', NULL, 'municipality', 1059, 'LU'),
    ('CH/MUN/1061/baudirektion', 'Stadt Luzern, Baudirektion', 'building', '{"building-authority"}', NULL, NULL, 'active', NULL, 'municipality', 1061, 'LU'),
    ('CH/MUN/1061/einwohnerdienste', 'Stadt Luzern, Einwohnerdienste', 'resident-registration', '{"municipality"}', NULL, 'CH.LU.1061', 'active', NULL, 'municipality', 1061, 'LU'),
    ('CH/MUN/1711/einwohnerdienste', 'Stadt Zug, Einwohnerkontrolle', 'resident-registration', '{"municipality"}', NULL, 'CH.ZG.1711', 'active', NULL, 'municipality', 1711, 'ZG')
ON CONFLICT DO NOTHING;
