-- Registry, issue #3: partner roles (mirrored from identity), the event catalogue,
-- subscriptions with data categories and retention, case deadlines, pending deliveries.

ALTER TABLE partners
    ADD COLUMN roles text[] NOT NULL DEFAULT '{}',
    ADD COLUMN local_person_id_category text,
    ADD COLUMN sedex_id text;

UPDATE partners SET roles = '{portal}' WHERE partner_id = 'CH/CAN/LU/eportal';
UPDATE partners SET roles = '{municipality}' WHERE partner_id IN ('CH/MUN/1059/einwohnerdienste', 'CH/MUN/1061/einwohnerdienste');
UPDATE partners SET roles = '{tax-office}' WHERE partner_id = 'CH/CAN/LU/steuerverwaltung';
INSERT INTO partners (partner_id, name, sector, delivery_topic, roles) VALUES
    ('CH/MUN/1061/baudirektion', 'Stadt Luzern, Baudirektion', 'building', 'hub.delivery.ch.mun.1061.baudirektion', '{building-authority}'),
    ('CH/CAN/LU/uwe', 'Kanton Luzern, Dienststelle Umwelt und Energie', 'environment', 'hub.delivery.ch.can.lu.uwe', '{environment-office}'),
    ('CH/CAN/LU/gvl', 'Gebäudeversicherung Luzern', 'insurance', 'hub.delivery.ch.can.lu.gvl', '{building-insurance}'),
    ('CH/CAN/LU/ops', 'Hub operations', 'statistics', 'hub.delivery.ch.can.lu.ops', '{operations}');

-- Every event type the hub knows, who may publish it, how sensitive it is.
-- publisher_roles '{}' means: only the hub itself emits it.
CREATE TABLE catalog (
    event_type       text PRIMARY KEY,
    family           text NOT NULL,
    version          integer NOT NULL,
    publisher_roles  text[] NOT NULL,
    sensitivity      text NOT NULL CHECK (sensitivity IN ('public', 'internal', 'confidential', 'secret')),
    description      text NOT NULL
);

INSERT INTO catalog VALUES
    ('ch.lu.hub.relocation.move-reported.v1', 'relocation', 1, '{portal}', 'secret', 'A citizen reports a move (contains the AHVN13)'),
    ('ch.lu.hub.relocation.departure-confirmed.v1', 'relocation', 1, '{municipality}', 'internal', 'Departure municipality confirms'),
    ('ch.lu.hub.relocation.arrival-registered.v1', 'relocation', 1, '{municipality}', 'internal', 'Arrival municipality registers the resident'),
    ('ch.lu.hub.relocation.tax-record-updated.v1', 'relocation', 1, '{tax-office}', 'internal', 'Tax domicile updated'),
    ('ch.lu.hub.building-permit.consultation-requested.v1', 'building-permit', 1, '{building-authority}', 'confidential', 'Building department asks for opinions'),
    ('ch.lu.hub.building-permit.environment-opinion-given.v1', 'building-permit', 1, '{environment-office}', 'internal', 'Opinion of the environment office'),
    ('ch.lu.hub.building-permit.insurance-opinion-given.v1', 'building-permit', 1, '{building-insurance}', 'internal', 'Opinion of the building insurance'),
    ('ch.lu.hub.case.rejected.v1', 'case', 1, '{municipality,tax-office,building-authority}', 'confidential', 'A partner rejects a case, with a reason'),
    ('ch.lu.hub.case.completed.v1', 'case', 1, '{}', 'internal', 'Every milestone of a case reached'),
    ('ch.lu.hub.case.escalated.v1', 'case', 1, '{}', 'internal', 'A case missed its deadline'),
    ('ch.lu.hub.case.delivery.v1', 'case', 1, '{}', 'confidential', 'What a partner receives, minimised'),
    ('ch.lu.hub.identity.pseudonyms-requested.v1', 'identity', 1, '{}', 'secret', 'Registry asks identity for sector pseudonyms'),
    ('ch.lu.hub.identity.pseudonyms-issued.v1', 'identity', 1, '{}', 'confidential', 'Sector pseudonyms per recipient'),
    ('ch.lu.hub.notification.requested.v1', 'notification', 1, '{}', 'confidential', 'Tell a citizen something'),
    ('ch.lu.hub.notification.status-changed.v1', 'notification', 1, '{}', 'internal', 'Delivery status of a notification'),
    ('ch.lu.hub.admin.set-subscription.v1', 'admin', 1, '{}', 'internal', 'Create or change a subscription');

ALTER TABLE subscriptions
    ADD COLUMN case_type text,
    ADD COLUMN fields text[] NOT NULL DEFAULT '{}',
    ADD COLUMN retention_days integer NOT NULL DEFAULT 365 CHECK (retention_days > 0),
    ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now(),
    DROP CONSTRAINT subscriptions_partner_id_event_type_key;
CREATE UNIQUE INDEX subscriptions_one_per_scope ON subscriptions (partner_id, event_type, coalesce(case_type, ''));

-- The foundation's subscriptions named delivery types; subscriptions now name the event
-- a partner wants, and the hub delivers it minimised as ch.lu.hub.case.delivery.v1.
DELETE FROM subscriptions;

INSERT INTO subscriptions (partner_id, event_type, case_type, purpose, legal_basis, legal_basis_url, fields, retention_days) VALUES
    ('CH/MUN/1059/einwohnerdienste', 'ch.lu.hub.relocation.move-reported.v1', 'relocation', 'record the departure',
     'RHG Art. 12; SRL 16 (Gesetz über die Niederlassung und den Aufenthalt)', 'https://srl.lu.ch/app/de/texts_of_law/16',
     '{person.official_name,person.first_name,person.sex,person.date_of_birth,previous_address,departure,arrival,move_date}', 3650),
    ('CH/MUN/1061/einwohnerdienste', 'ch.lu.hub.relocation.move-reported.v1', 'relocation', 'register the arrival',
     'RHG Art. 11; SRL 16', 'https://srl.lu.ch/app/de/texts_of_law/16',
     '{person.official_name,person.first_name,person.sex,person.date_of_birth,new_address,departure,arrival,move_date}', 3650),
    ('CH/CAN/LU/steuerverwaltung', 'ch.lu.hub.relocation.move-reported.v1', 'relocation', 'assign the tax domicile',
     'StHG Art. 4; SRL 620 (Steuergesetz)', 'https://srl.lu.ch/app/de/texts_of_law/620',
     '{person.official_name,person.first_name,person.date_of_birth,new_address,arrival,move_date}', 3650),
    ('CH/MUN/1059/einwohnerdienste', 'ch.lu.hub.case.completed.v1', 'relocation', 'close the departure file', 'RHG Art. 12', NULL, '{case_type,completed_at,milestones}', 365),
    ('CH/MUN/1061/einwohnerdienste', 'ch.lu.hub.case.completed.v1', 'relocation', 'close the arrival file', 'RHG Art. 11', NULL, '{case_type,completed_at,milestones}', 365),
    ('CH/CAN/LU/steuerverwaltung', 'ch.lu.hub.case.completed.v1', 'relocation', 'close the domicile change', 'StHG Art. 4', NULL, '{case_type,completed_at,milestones}', 365),
    ('CH/MUN/1059/einwohnerdienste', 'ch.lu.hub.case.rejected.v1', 'relocation', 'stop the departure', 'RHG Art. 12', NULL, '{rejected_by,reason}', 365),
    ('CH/MUN/1061/einwohnerdienste', 'ch.lu.hub.case.rejected.v1', 'relocation', 'stop the arrival', 'RHG Art. 11', NULL, '{rejected_by,reason}', 365),
    ('CH/CAN/LU/steuerverwaltung', 'ch.lu.hub.case.rejected.v1', 'relocation', 'keep the tax domicile', 'StHG Art. 4', NULL, '{rejected_by,reason}', 365),
    ('CH/CAN/LU/uwe', 'ch.lu.hub.building-permit.consultation-requested.v1', 'building-permit', 'assess environmental impact',
     'RPG Art. 25a; PBG LU § 192 (SRL 735)', 'https://srl.lu.ch/app/de/texts_of_law/735',
     '{parcel,project.description,project.heating,project.building_volume_m3,dossier_number}', 3650),
    ('CH/CAN/LU/gvl', 'ch.lu.hub.building-permit.consultation-requested.v1', 'building-permit', 'assess fire protection and insurance',
     'Gebäudeversicherungsgesetz LU § 3 (SRL 750)', 'https://srl.lu.ch/app/de/texts_of_law/750',
     '{applicant.official_name,applicant.first_name,parcel,project,dossier_number}', 3650),
    ('CH/MUN/1061/baudirektion', 'ch.lu.hub.building-permit.environment-opinion-given.v1', 'building-permit', 'decide the permit', 'PBG LU § 192', NULL, '{opinion,conditions}', 3650),
    ('CH/MUN/1061/baudirektion', 'ch.lu.hub.building-permit.insurance-opinion-given.v1', 'building-permit', 'decide the permit', 'PBG LU § 192', NULL, '{opinion,conditions}', 3650),
    ('CH/MUN/1061/baudirektion', 'ch.lu.hub.case.completed.v1', 'building-permit', 'decide the permit', 'PBG LU § 192', NULL, '{case_type,completed_at,milestones}', 3650),
    ('CH/CAN/LU/ops', 'ch.lu.hub.case.escalated.v1', NULL, 'follow up missed deadlines', 'Betriebsvereinbarung Hub (SLA)', NULL, '{case_type,deadline,missing_milestones}', 365);

ALTER TABLE cases
    ADD COLUMN deadline_at timestamptz,
    ADD COLUMN closed_at timestamptz,
    ADD COLUMN traceparent text;
CREATE INDEX cases_open_by_deadline ON cases (deadline_at) WHERE status IN ('opened', 'in-progress');

-- The opening event waits here while identity issues the recipients' pseudonyms.
CREATE TABLE pending_deliveries (
    request_id   text PRIMARY KEY,       -- ce id of the pseudonyms request
    case_id      text NOT NULL REFERENCES cases,
    event_id     text NOT NULL,
    event_type   text NOT NULL,
    data         jsonb NOT NULL,         -- the event's data without the AHVN13
    created_at   timestamptz NOT NULL DEFAULT now()
);
