-- Handing a project's support business to another user (issue 13 §5).
CREATE TABLE handovers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id BIGINT NOT NULL REFERENCES projects(id),
    from_user_id BIGINT NOT NULL REFERENCES users(id),
    to_user_id BIGINT NOT NULL REFERENCES users(id),
    effective_at TIMESTAMP NOT NULL,
    -- proposed | accepted | applied | reversed | cancelled | failed
    status TEXT NOT NULL,
    -- Why it failed (at its date the new maintainer was not ready).
    failure TEXT,
    -- When the new maintainer proved admin or maintain rights on the
    -- project's repository with their own GitHub token.
    repo_verified_at TIMESTAMP,
    -- Who received the project's revenue before (NULL: the project's own
    -- payout account), restored by a reversal.
    prev_steward_id BIGINT REFERENCES users(id),
    -- Whether the new maintainer already maintained the project.
    to_was_maintainer BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMP NOT NULL,
    accepted_at TIMESTAMP,
    applied_at TIMESTAMP,
    reversed_at TIMESTAMP,
    reversed_by BIGINT REFERENCES users(id)
);
-- One handover under way per project.
CREATE UNIQUE INDEX handovers_one_open ON handovers (project_id) WHERE status IN ('proposed', 'accepted');
CREATE INDEX handovers_due ON handovers (status, effective_at);

-- The maintainer of record who holds the project's support business and
-- receives its revenue (NULL: the project's own payout account).
ALTER TABLE projects ADD COLUMN steward_id BIGINT REFERENCES users(id);
