ALTER TABLE projects DROP COLUMN notification_default;
