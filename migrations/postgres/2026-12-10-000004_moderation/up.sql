-- Flags on tickets and messages, weighed by the flagger's record; past a
-- threshold the item is hidden until a maintainer or admin reviews it.
CREATE TABLE flags (
    id BIGSERIAL PRIMARY KEY,
    -- ticket | message
    target_type TEXT NOT NULL,
    target_id BIGINT NOT NULL,
    project_id BIGINT NOT NULL REFERENCES projects(id),
    flagger_id BIGINT NOT NULL REFERENCES users(id),
    -- spam | rude | illegal | other
    reason TEXT NOT NULL,
    note TEXT,
    -- The flagger's weight when they flagged.
    weight INTEGER NOT NULL,
    -- open | upheld | dismissed
    status TEXT NOT NULL,
    reviewed_by BIGINT REFERENCES users(id),
    reviewed_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (target_type, target_id, flagger_id)
);
CREATE INDEX flags_review ON flags (project_id, status, id);

-- Bans from a project (project_id) or the whole platform (NULL).
CREATE TABLE bans (
    id BIGSERIAL PRIMARY KEY,
    project_id BIGINT REFERENCES projects(id),
    user_id BIGINT NOT NULL REFERENCES users(id),
    reason TEXT NOT NULL,
    until TIMESTAMP,
    created_by BIGINT NOT NULL REFERENCES users(id),
    created_at TIMESTAMP NOT NULL,
    lifted_at TIMESTAMP,
    lifted_by BIGINT REFERENCES users(id)
);
CREATE UNIQUE INDEX bans_one_active ON bans (COALESCE(project_id, 0), user_id) WHERE lifted_at IS NULL;

ALTER TABLE tickets ADD COLUMN hidden_at TIMESTAMP;
ALTER TABLE ticket_messages ADD COLUMN hidden_at TIMESTAMP;
