-- Notifications: a case's notices on a channel go out in the order they were requested.
-- Claiming takes due notices oldest request first, and only those with no earlier notice of
-- their case and channel still being sent or waiting for its retry
-- (services/notifications/adapters/postgres/notifications.py).
CREATE INDEX notifications_due_in_order ON notifications (created_at, notification_id)
    WHERE status IN ('created', 'temporary-failure');
CREATE INDEX notifications_unfinished_by_case ON notifications (case_id, channel, created_at, notification_id)
    WHERE status IN ('created', 'sending', 'temporary-failure');
