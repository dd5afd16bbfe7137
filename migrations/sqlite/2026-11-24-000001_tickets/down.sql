DROP TABLE response_templates;
DROP TABLE ticket_messages;
DROP TABLE ticket_events;
DROP TABLE tickets;
