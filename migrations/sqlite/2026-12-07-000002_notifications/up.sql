-- What each person wants to hear: a level for everything (with the hour
-- and time zone of their daily digest), and overrides per project and per
-- ticket. Levels: all (at once), digest, mute.
CREATE TABLE notification_settings (
    user_id BIGINT PRIMARY KEY REFERENCES users(id),
    level TEXT NOT NULL DEFAULT 'digest',
    digest_hour INTEGER NOT NULL DEFAULT 8,
    time_zone TEXT NOT NULL DEFAULT 'UTC',
    updated_at TIMESTAMP NOT NULL
);
CREATE TABLE notification_levels (
    user_id BIGINT NOT NULL REFERENCES users(id),
    -- 'project' or 'ticket'.
    scope TEXT NOT NULL,
    scope_id BIGINT NOT NULL,
    level TEXT NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    PRIMARY KEY (user_id, scope, scope_id)
);
-- How far the dispatcher has read each log (ticket events, messages, bids)
-- for each channel.
CREATE TABLE notification_cursors (
    channel TEXT NOT NULL,
    source TEXT NOT NULL,
    last_id BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (channel, source)
);
-- One row per recipient, thing that happened and channel: the unique key
-- is what makes "told exactly once" hold across restarts and workers.
CREATE TABLE notifications (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id BIGINT NOT NULL REFERENCES users(id),
    ticket_id BIGINT NOT NULL REFERENCES tickets(id),
    source TEXT NOT NULL,
    source_id BIGINT NOT NULL,
    channel TEXT NOT NULL,
    -- pending (to send at once), digest, sent, skipped.
    status TEXT NOT NULL,
    summary TEXT NOT NULL,
    happened_at TIMESTAMP NOT NULL,
    created_at TIMESTAMP NOT NULL,
    sent_at TIMESTAMP,
    UNIQUE (user_id, source, source_id, channel)
);
CREATE INDEX notifications_status ON notifications(channel, status, id);
-- One daily digest per person and local date: the row claims it.
CREATE TABLE digests (
    user_id BIGINT NOT NULL REFERENCES users(id),
    local_date DATE NOT NULL,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (user_id, local_date)
);
-- Start the cursors at what exists: history from before notifications is
-- not news to anyone.
INSERT INTO notification_cursors (channel, source, last_id)
    SELECT 'email', 'event', COALESCE(MAX(id), 0) FROM ticket_events;
INSERT INTO notification_cursors (channel, source, last_id)
    SELECT 'email', 'message', COALESCE(MAX(id), 0) FROM ticket_messages;
INSERT INTO notification_cursors (channel, source, last_id)
    SELECT 'email', 'bid', COALESCE(MAX(id), 0) FROM bids;
