CREATE TABLE tickets (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    requester_id BIGINT NOT NULL REFERENCES users(id),
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    kind TEXT NOT NULL,
    visibility TEXT NOT NULL,
    status TEXT NOT NULL,
    tags TEXT NOT NULL DEFAULT '[]',
    claimed_by BIGINT REFERENCES users(id),
    resolved_by BIGINT REFERENCES users(id),
    resolution_message_id BIGINT,
    paid_amount BIGINT NOT NULL DEFAULT 0,
    waiting_since TIMESTAMP NOT NULL,
    last_activity_at TIMESTAMP NOT NULL,
    submitted_at TIMESTAMP,
    claimed_at TIMESTAMP,
    resolved_at TIMESTAMP,
    closed_at TIMESTAMP,
    close_reason TEXT,
    rating_stars INTEGER,
    rating_comment TEXT,
    rated_at TIMESTAMP,
    external_ref TEXT UNIQUE,
    index_version BIGINT NOT NULL DEFAULT 1,
    indexed_version BIGINT NOT NULL DEFAULT 0,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    CHECK (rating_stars IS NULL OR (rating_stars BETWEEN 1 AND 5)),
    CHECK (paid_amount >= 0)
);
CREATE INDEX tickets_project_status ON tickets(project_id, status);
CREATE INDEX tickets_requester ON tickets(requester_id);
CREATE INDEX tickets_claimed_by ON tickets(claimed_by);
CREATE INDEX tickets_index_dirty ON tickets(id) WHERE index_version <> indexed_version;
CREATE INDEX tickets_resolved_at ON tickets(project_id, resolved_at);

CREATE TABLE ticket_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_id BIGINT NOT NULL REFERENCES tickets(id) ON DELETE CASCADE,
    actor_id BIGINT REFERENCES users(id),
    action TEXT NOT NULL,
    from_status TEXT,
    to_status TEXT NOT NULL,
    reason TEXT,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX ticket_events_ticket ON ticket_events(ticket_id, id);

CREATE TABLE ticket_messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_id BIGINT NOT NULL REFERENCES tickets(id) ON DELETE CASCADE,
    author_id BIGINT NOT NULL REFERENCES users(id),
    body TEXT NOT NULL,
    internal BOOLEAN NOT NULL DEFAULT 0,
    template_id BIGINT,
    score INTEGER NOT NULL DEFAULT 0,
    external_ref TEXT UNIQUE,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX ticket_messages_ticket ON ticket_messages(ticket_id, id);

CREATE TABLE response_templates (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    owner_id BIGINT REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX response_templates_project ON response_templates(project_id);
