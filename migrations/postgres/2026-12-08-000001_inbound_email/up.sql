-- Mail received for reply-by-email: one row per message, keyed by its
-- Message-ID (or a hash of the message when it has none), so a message a
-- mail server delivers twice is posted once. Bodies are not kept.
CREATE TABLE inbound_emails (
    id BIGSERIAL PRIMARY KEY,
    message_key TEXT NOT NULL UNIQUE,
    -- posted, auto_reply, bounce, sender_mismatch, bad_address,
    -- unknown_recipient, rejected, empty, malformed.
    outcome TEXT NOT NULL,
    -- The sender's address as the From header gave it (lower case).
    sender TEXT NOT NULL,
    ticket_id BIGINT REFERENCES tickets(id),
    user_id BIGINT REFERENCES users(id),
    message_id BIGINT REFERENCES ticket_messages(id),
    received_at TIMESTAMP NOT NULL
);
CREATE INDEX inbound_emails_sender ON inbound_emails(sender, outcome, received_at);
-- Where a message came from: web (the site or the API) or email.
ALTER TABLE ticket_messages ADD COLUMN via TEXT NOT NULL DEFAULT 'web';
