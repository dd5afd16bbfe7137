-- Reputation events, derived once each (dedup_key) from the tables that
-- record what happened: accepted resolutions, ratings, first responses,
-- reopens, refunds, disputes, maintainer approvals, endorsements and
-- imported answer scores. See src/domain/reputation.
CREATE TABLE reputation_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id BIGINT NOT NULL REFERENCES users(id),
    project_id BIGINT NOT NULL REFERENCES projects(id),
    kind TEXT NOT NULL,
    -- The outcome, 0 (bad) to 1 (good); weight 0 for trust-only events.
    value REAL NOT NULL,
    weight REAL NOT NULL,
    ticket_id BIGINT,
    -- Who caused it (the endorser, for endorsements).
    source_user_id BIGINT,
    dedup_key TEXT NOT NULL UNIQUE,
    occurred_at TIMESTAMP NOT NULL,
    created_at TIMESTAMP NOT NULL,
    CHECK (value >= 0 AND value <= 1 AND weight >= 0)
);
CREATE INDEX reputation_events_user ON reputation_events(user_id, project_id);
CREATE INDEX reputation_events_project ON reputation_events(project_id);

-- The scores of the last recompute, with their components.
CREATE TABLE reputation_scores (
    user_id BIGINT NOT NULL REFERENCES users(id),
    project_id BIGINT NOT NULL REFERENCES projects(id),
    score REAL NOT NULL,
    quality REAL NOT NULL,
    trust REAL NOT NULL,
    prior REAL NOT NULL,
    evidence REAL NOT NULL,
    outcomes INTEGER NOT NULL,
    endorsements INTEGER NOT NULL,
    -- Matching features, aggregated here so a request reads one row.
    answers INTEGER NOT NULL,
    accepted INTEGER NOT NULL,
    setbacks INTEGER NOT NULL,
    median_response_hours REAL,
    computed_at TIMESTAMP NOT NULL,
    PRIMARY KEY (user_id, project_id)
);
CREATE INDEX reputation_scores_project ON reputation_scores(project_id, score);

-- Matching counts each candidate's open claims; claimed tickets are few.
CREATE INDEX tickets_open_claims ON tickets(claimed_by) WHERE status = 'claimed';
