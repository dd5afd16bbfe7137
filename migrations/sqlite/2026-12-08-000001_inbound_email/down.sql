ALTER TABLE ticket_messages DROP COLUMN via;
DROP TABLE inbound_emails;
