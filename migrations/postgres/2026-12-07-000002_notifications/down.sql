DROP TABLE digests;
DROP TABLE notifications;
DROP TABLE notification_cursors;
DROP TABLE notification_levels;
DROP TABLE notification_settings;
