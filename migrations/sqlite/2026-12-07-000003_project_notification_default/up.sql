-- The level a project's people hear at until they choose for themselves:
-- all, digest or mute.
ALTER TABLE projects ADD COLUMN notification_default TEXT NOT NULL DEFAULT 'digest';
