-- Discord and Slack. Each interaction is applied once (its id, or Slack's
-- trigger id); a question asked in a chat is kept while its buttons may be
-- pressed, and, once it becomes a ticket, says where updates go back to;
-- a one-time link ties a chat user to a Guildhall account
-- (user_identities, provider discord or slack).
CREATE TABLE chat_deliveries (
    provider TEXT NOT NULL,
    delivery_id TEXT NOT NULL,
    received_at TIMESTAMP NOT NULL,
    PRIMARY KEY (provider, delivery_id)
);
CREATE TABLE chat_questions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    provider TEXT NOT NULL,
    -- Discord: the user id; Slack: team:user.
    external_user TEXT NOT NULL,
    -- The asker's chat name, for messages.
    login TEXT NOT NULL,
    project_id BIGINT NOT NULL REFERENCES projects(id),
    question TEXT NOT NULL,
    -- Set by Post as ticket or Ask a paid expert.
    ticket_id BIGINT REFERENCES tickets(id),
    -- The Guildhall account that posted it (updates go to them).
    user_id BIGINT REFERENCES users(id),
    solved_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX chat_questions_ticket ON chat_questions(ticket_id);
CREATE TABLE chat_link_tokens (
    -- SHA-256 of the token in the link (the token itself is never stored).
    token_hash TEXT PRIMARY KEY,
    provider TEXT NOT NULL,
    external_user TEXT NOT NULL,
    login TEXT NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    used_at TIMESTAMP
);
-- The chat channel's cursors start at what exists: history is not news.
INSERT INTO notification_cursors (channel, source, last_id)
    SELECT 'chat', 'event', COALESCE(MAX(id), 0) FROM ticket_events;
INSERT INTO notification_cursors (channel, source, last_id)
    SELECT 'chat', 'message', COALESCE(MAX(id), 0) FROM ticket_messages;
INSERT INTO notification_cursors (channel, source, last_id)
    SELECT 'chat', 'bid', COALESCE(MAX(id), 0) FROM bids;
