-- The demo's residents' offices and tax offices receive a move as the party they are to it:
-- a municipality records the departure of one move (RHG Art. 12) and registers the arrival
-- of another (RHG Art. 11), each with the fields it needs; a canton's tax office takes the
-- tax domicile of a move into the canton (StHG Art. 4) and gives it up on a move out of it
-- (StHG Art. 4b). Their subscriptions per type, which served either side under one purpose,
-- become one per slot (migration 0013). Each keeps the status and retention of the
-- subscription it replaces, so one an operator revoked stays revoked. Completion and
-- rejection of the tax offices keep one subscription: the purpose is the same on both sides.
-- Seed data only, kept apart so that it can move to provisioning as a whole.
--
-- Fields: the departure municipality has the person in its register already and learns
-- where they go (new address, arrival municipality) and when; the arrival municipality
-- registers the new address and where they come from (previous address, departure
-- municipality). A departure canton's tax office learns when and to which canton.

WITH by_slot (partner_id, event_type, slot, purpose, legal_basis, legal_basis_url, fields) AS (VALUES
    ('CH/MUN/1059/einwohnerdienste', 'ch.lu.hub.relocation.move-reported.v1', 'departure-municipality', 'record the departure',
     'RHG Art. 12; SRL 16 (Gesetz über die Niederlassung und den Aufenthalt)', 'https://srl.lu.ch/app/de/texts_of_law/16',
     '{person.official_name,person.first_name,person.sex,person.date_of_birth,new_address,departure,arrival,move_date}'),
    ('CH/MUN/1059/einwohnerdienste', 'ch.lu.hub.relocation.move-reported.v1', 'arrival-municipality', 'register the arrival',
     'RHG Art. 11; SRL 16 (Gesetz über die Niederlassung und den Aufenthalt)', 'https://srl.lu.ch/app/de/texts_of_law/16',
     '{person.official_name,person.first_name,person.sex,person.date_of_birth,previous_address,new_address,departure,arrival,move_date}'),
    ('CH/MUN/1061/einwohnerdienste', 'ch.lu.hub.relocation.move-reported.v1', 'departure-municipality', 'record the departure',
     'RHG Art. 12; SRL 16 (Gesetz über die Niederlassung und den Aufenthalt)', 'https://srl.lu.ch/app/de/texts_of_law/16',
     '{person.official_name,person.first_name,person.sex,person.date_of_birth,new_address,departure,arrival,move_date}'),
    ('CH/MUN/1061/einwohnerdienste', 'ch.lu.hub.relocation.move-reported.v1', 'arrival-municipality', 'register the arrival',
     'RHG Art. 11; SRL 16 (Gesetz über die Niederlassung und den Aufenthalt)', 'https://srl.lu.ch/app/de/texts_of_law/16',
     '{person.official_name,person.first_name,person.sex,person.date_of_birth,previous_address,new_address,departure,arrival,move_date}'),
    ('CH/MUN/1024/einwohnerdienste', 'ch.lu.hub.relocation.move-reported.v1', 'departure-municipality', 'record the departure',
     'RHG Art. 12; SRL 16 (Gesetz über die Niederlassung und den Aufenthalt)', 'https://srl.lu.ch/app/de/texts_of_law/16',
     '{person.official_name,person.first_name,person.sex,person.date_of_birth,new_address,departure,arrival,move_date}'),
    ('CH/MUN/1024/einwohnerdienste', 'ch.lu.hub.relocation.move-reported.v1', 'arrival-municipality', 'register the arrival',
     'RHG Art. 11; SRL 16 (Gesetz über die Niederlassung und den Aufenthalt)', 'https://srl.lu.ch/app/de/texts_of_law/16',
     '{person.official_name,person.first_name,person.sex,person.date_of_birth,previous_address,new_address,departure,arrival,move_date}'),
    ('CH/MUN/1711/einwohnerdienste', 'ch.lu.hub.relocation.move-reported.v1', 'departure-municipality', 'record the departure',
     'RHG Art. 12; Gesetz über die Niederlassung und den Aufenthalt ZG (BGS 122.1)', NULL,
     '{person.official_name,person.first_name,person.sex,person.date_of_birth,new_address,departure,arrival,move_date}'),
    ('CH/MUN/1711/einwohnerdienste', 'ch.lu.hub.relocation.move-reported.v1', 'arrival-municipality', 'register the arrival',
     'RHG Art. 11; Gesetz über die Niederlassung und den Aufenthalt ZG (BGS 122.1)', NULL,
     '{person.official_name,person.first_name,person.sex,person.date_of_birth,previous_address,new_address,departure,arrival,move_date}'),

    ('CH/MUN/1059/einwohnerdienste', 'ch.lu.hub.case.completed.v1', 'departure-municipality', 'close the departure file', 'RHG Art. 12', NULL, '{case_type,completed_at,milestones}'),
    ('CH/MUN/1059/einwohnerdienste', 'ch.lu.hub.case.completed.v1', 'arrival-municipality', 'close the arrival file', 'RHG Art. 11', NULL, '{case_type,completed_at,milestones}'),
    ('CH/MUN/1061/einwohnerdienste', 'ch.lu.hub.case.completed.v1', 'departure-municipality', 'close the departure file', 'RHG Art. 12', NULL, '{case_type,completed_at,milestones}'),
    ('CH/MUN/1061/einwohnerdienste', 'ch.lu.hub.case.completed.v1', 'arrival-municipality', 'close the arrival file', 'RHG Art. 11', NULL, '{case_type,completed_at,milestones}'),
    ('CH/MUN/1024/einwohnerdienste', 'ch.lu.hub.case.completed.v1', 'departure-municipality', 'close the departure file', 'RHG Art. 12', NULL, '{case_type,completed_at,milestones}'),
    ('CH/MUN/1024/einwohnerdienste', 'ch.lu.hub.case.completed.v1', 'arrival-municipality', 'close the arrival file', 'RHG Art. 11', NULL, '{case_type,completed_at,milestones}'),
    ('CH/MUN/1711/einwohnerdienste', 'ch.lu.hub.case.completed.v1', 'departure-municipality', 'close the departure file', 'RHG Art. 12', NULL, '{case_type,completed_at,milestones}'),
    ('CH/MUN/1711/einwohnerdienste', 'ch.lu.hub.case.completed.v1', 'arrival-municipality', 'close the arrival file', 'RHG Art. 11', NULL, '{case_type,completed_at,milestones}'),

    ('CH/MUN/1059/einwohnerdienste', 'ch.lu.hub.case.rejected.v1', 'departure-municipality', 'stop the departure', 'RHG Art. 12', NULL, '{rejected_by,reason}'),
    ('CH/MUN/1059/einwohnerdienste', 'ch.lu.hub.case.rejected.v1', 'arrival-municipality', 'stop the arrival', 'RHG Art. 11', NULL, '{rejected_by,reason}'),
    ('CH/MUN/1061/einwohnerdienste', 'ch.lu.hub.case.rejected.v1', 'departure-municipality', 'stop the departure', 'RHG Art. 12', NULL, '{rejected_by,reason}'),
    ('CH/MUN/1061/einwohnerdienste', 'ch.lu.hub.case.rejected.v1', 'arrival-municipality', 'stop the arrival', 'RHG Art. 11', NULL, '{rejected_by,reason}'),
    ('CH/MUN/1024/einwohnerdienste', 'ch.lu.hub.case.rejected.v1', 'departure-municipality', 'stop the departure', 'RHG Art. 12', NULL, '{rejected_by,reason}'),
    ('CH/MUN/1024/einwohnerdienste', 'ch.lu.hub.case.rejected.v1', 'arrival-municipality', 'stop the arrival', 'RHG Art. 11', NULL, '{rejected_by,reason}'),
    ('CH/MUN/1711/einwohnerdienste', 'ch.lu.hub.case.rejected.v1', 'departure-municipality', 'stop the departure', 'RHG Art. 12', NULL, '{rejected_by,reason}'),
    ('CH/MUN/1711/einwohnerdienste', 'ch.lu.hub.case.rejected.v1', 'arrival-municipality', 'stop the arrival', 'RHG Art. 11', NULL, '{rejected_by,reason}'),

    ('CH/CAN/LU/steuerverwaltung', 'ch.lu.hub.relocation.move-reported.v1', 'arrival-tax-office', 'assign the tax domicile',
     'StHG Art. 4; SRL 620 (Steuergesetz)', 'https://srl.lu.ch/app/de/texts_of_law/620',
     '{person.official_name,person.first_name,person.date_of_birth,new_address,arrival,move_date}'),
    ('CH/CAN/LU/steuerverwaltung', 'ch.lu.hub.relocation.move-reported.v1', 'departure-tax-office', 'give up the tax domicile',
     'StHG Art. 4b; SRL 620 (Steuergesetz)', 'https://srl.lu.ch/app/de/texts_of_law/620',
     '{person.official_name,person.first_name,person.date_of_birth,departure,arrival,move_date}'),
    ('CH/CAN/ZG/steuerverwaltung', 'ch.lu.hub.relocation.move-reported.v1', 'arrival-tax-office', 'assign the tax domicile',
     'StHG Art. 4; Steuergesetz ZG (BGS 632.1)', NULL,
     '{person.official_name,person.first_name,person.date_of_birth,new_address,arrival,move_date}'),
    ('CH/CAN/ZG/steuerverwaltung', 'ch.lu.hub.relocation.move-reported.v1', 'departure-tax-office', 'give up the tax domicile',
     'StHG Art. 4b; Steuergesetz ZG (BGS 632.1)', NULL,
     '{person.official_name,person.first_name,person.date_of_birth,departure,arrival,move_date}')
), added AS (
    INSERT INTO subscriptions (partner_id, event_type, case_type, slot, purpose, legal_basis, legal_basis_url, fields,
                               retention_days, status)
    SELECT n.partner_id, n.event_type, 'relocation', n.slot, n.purpose, n.legal_basis, n.legal_basis_url,
           n.fields::text[], s.retention_days, s.status
    FROM by_slot n JOIN subscriptions s
        ON s.partner_id = n.partner_id AND s.event_type = n.event_type AND s.case_type = 'relocation'
       AND s.slot IS NULL AND s.scope = 'party'
    ON CONFLICT DO NOTHING
    RETURNING partner_id, event_type
)
DELETE FROM subscriptions s
    USING (SELECT DISTINCT partner_id, event_type FROM added) a
    WHERE s.partner_id = a.partner_id AND s.event_type = a.event_type AND s.case_type = 'relocation'
      AND s.slot IS NULL AND s.scope = 'party';
