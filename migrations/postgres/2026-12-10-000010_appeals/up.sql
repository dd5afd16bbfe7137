-- Appeals of bans, received by email.
CREATE TABLE appeals (
    id BIGSERIAL PRIMARY KEY,
    ban_id BIGINT NOT NULL REFERENCES bans(id),
    user_id BIGINT NOT NULL REFERENCES users(id),
    -- The mail's Message-ID (or hash): one appeal per message.
    message_ref TEXT NOT NULL,
    body TEXT NOT NULL,
    -- open | granted | declined
    status TEXT NOT NULL,
    decided_by BIGINT REFERENCES users(id),
    decided_at TIMESTAMP,
    note TEXT,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (ban_id, message_ref)
);
CREATE INDEX appeals_open ON appeals (status, ban_id);
