-- Mail received for reply by email that reached a genuine reply address:
-- one row per message and address (the Message-ID, or a hash of the
-- message when it has none, with the ticket and user), so a message a
-- mail server delivers twice is posted (or answered) once. Mail that
-- reaches no genuine address is only counted, never stored; bodies are
-- never kept.
CREATE TABLE inbound_emails (
    id BIGSERIAL PRIMARY KEY,
    message_key TEXT NOT NULL UNIQUE,
    -- posted, sender_mismatch, rejected, empty.
    outcome TEXT NOT NULL,
    -- The From address (lower case).
    sender TEXT NOT NULL,
    -- Who was told it was not posted (a refusal mail was queued).
    answered_to TEXT,
    ticket_id BIGINT NOT NULL,
    user_id BIGINT NOT NULL,
    message_id BIGINT REFERENCES ticket_messages(id),
    received_at TIMESTAMP NOT NULL
);
CREATE INDEX inbound_emails_answered ON inbound_emails(answered_to, received_at);
CREATE INDEX inbound_emails_received ON inbound_emails(received_at);
-- Where a message came from: web (the site or the API) or email.
ALTER TABLE ticket_messages ADD COLUMN via TEXT NOT NULL DEFAULT 'web';
