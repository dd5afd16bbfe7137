ALTER TABLE ticket_messages DROP COLUMN hidden_at;
ALTER TABLE tickets DROP COLUMN hidden_at;
DROP TABLE bans;
DROP TABLE flags;
