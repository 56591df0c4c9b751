-- The partners of the one-machine set-up get their jurisdictions (as identity's register
-- has them), and Emmen, Zug and the Zug tax office join with the same kinds of
-- subscriptions as their counterparts: subscribed to the same types, they receive only the
-- cases they are a party to. Operations receive escalations and unfilled party slots of
-- every case, which their subscriptions now say explicitly. Seed data only, kept apart so
-- that it can move to provisioning as a whole.
UPDATE partners SET jurisdiction_level = 'municipality', bfs_number = 1059, canton = 'LU'
    WHERE partner_id = 'CH/MUN/1059/einwohnerdienste';
UPDATE partners SET jurisdiction_level = 'municipality', bfs_number = 1061, canton = 'LU'
    WHERE partner_id IN ('CH/MUN/1061/einwohnerdienste', 'CH/MUN/1061/baudirektion');
UPDATE partners SET jurisdiction_level = 'canton', canton = 'LU'
    WHERE partner_id IN ('CH/CAN/LU/eportal', 'CH/CAN/LU/steuerverwaltung', 'CH/CAN/LU/uwe',
                         'CH/CAN/LU/gvl', 'CH/CAN/LU/ops');

INSERT INTO partners (partner_id, name, sector, delivery_topic, roles, local_person_id_category,
                      jurisdiction_level, bfs_number, canton) VALUES
    ('CH/MUN/1024/einwohnerdienste', 'Gemeinde Emmen, Einwohnerdienste', 'resident-registration',
     'hub.delivery.ch.mun.1024.einwohnerdienste', '{municipality}', 'CH.LU.1024', 'municipality', 1024, 'LU'),
    ('CH/MUN/1711/einwohnerdienste', 'Stadt Zug, Einwohnerkontrolle', 'resident-registration',
     'hub.delivery.ch.mun.1711.einwohnerdienste', '{municipality}', 'CH.ZG.1711', 'municipality', 1711, 'ZG'),
    ('CH/CAN/ZG/steuerverwaltung', 'Kanton Zug, Steuerverwaltung', 'tax',
     'hub.delivery.ch.can.zg.steuerverwaltung', '{tax-office}', NULL, 'canton', NULL, 'ZG')
ON CONFLICT (partner_id) DO NOTHING;

INSERT INTO subscriptions (partner_id, event_type, case_type, purpose, legal_basis, legal_basis_url, fields, retention_days) VALUES
    ('CH/MUN/1024/einwohnerdienste', 'ch.lu.hub.relocation.move-reported.v1', 'relocation', 'record the departure',
     'RHG Art. 12; SRL 16 (Gesetz über die Niederlassung und den Aufenthalt)', 'https://srl.lu.ch/app/de/texts_of_law/16',
     '{person.official_name,person.first_name,person.sex,person.date_of_birth,previous_address,departure,arrival,move_date}', 3650),
    ('CH/MUN/1711/einwohnerdienste', 'ch.lu.hub.relocation.move-reported.v1', 'relocation', 'register the arrival',
     'RHG Art. 11; Gesetz über die Niederlassung und den Aufenthalt ZG (BGS 122.1)', NULL,
     '{person.official_name,person.first_name,person.sex,person.date_of_birth,new_address,departure,arrival,move_date}', 3650),
    ('CH/CAN/ZG/steuerverwaltung', 'ch.lu.hub.relocation.move-reported.v1', 'relocation', 'assign the tax domicile',
     'StHG Art. 4; Steuergesetz ZG (BGS 632.1)', NULL,
     '{person.official_name,person.first_name,person.date_of_birth,new_address,arrival,move_date}', 3650),
    ('CH/MUN/1024/einwohnerdienste', 'ch.lu.hub.case.completed.v1', 'relocation', 'close the departure file', 'RHG Art. 12', NULL, '{case_type,completed_at,milestones}', 365),
    ('CH/MUN/1711/einwohnerdienste', 'ch.lu.hub.case.completed.v1', 'relocation', 'close the arrival file', 'RHG Art. 11', NULL, '{case_type,completed_at,milestones}', 365),
    ('CH/CAN/ZG/steuerverwaltung', 'ch.lu.hub.case.completed.v1', 'relocation', 'close the domicile change', 'StHG Art. 4', NULL, '{case_type,completed_at,milestones}', 365),
    ('CH/MUN/1024/einwohnerdienste', 'ch.lu.hub.case.rejected.v1', 'relocation', 'stop the departure', 'RHG Art. 12', NULL, '{rejected_by,reason}', 365),
    ('CH/MUN/1711/einwohnerdienste', 'ch.lu.hub.case.rejected.v1', 'relocation', 'stop the arrival', 'RHG Art. 11', NULL, '{rejected_by,reason}', 365),
    ('CH/CAN/ZG/steuerverwaltung', 'ch.lu.hub.case.rejected.v1', 'relocation', 'keep the tax domicile', 'StHG Art. 4', NULL, '{rejected_by,reason}', 365),
    ('CH/CAN/LU/ops', 'ch.lu.hub.case.party-missing.v1', NULL, 'find or register the partner a case lacks',
     'Betriebsvereinbarung Hub (SLA)', NULL, '{case_type,slot,role,jurisdiction,reason}', 365)
ON CONFLICT DO NOTHING;

UPDATE subscriptions SET scope = 'all-cases', updated_at = now()
    WHERE partner_id = 'CH/CAN/LU/ops' AND event_type IN ('ch.lu.hub.case.escalated.v1', 'ch.lu.hub.case.party-missing.v1');
