-- Notifications (personal data at rest): recipient, subject and body of a
-- notification, subject and body of an inbox message, sealed under the data key of the
-- case's person (hub/vault/). The plain columns keep '' for new rows.
-- NULL: a row stored before this migration, sealed when the service starts
-- (services/notifications/sealing.py).
ALTER TABLE notifications ADD COLUMN sealed bytea;
ALTER TABLE inbox_messages ADD COLUMN sealed bytea;
