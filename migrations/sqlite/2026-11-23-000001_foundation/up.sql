CREATE TABLE users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    email TEXT NOT NULL,
    email_normalized TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    password_hash TEXT,
    can_login BOOLEAN NOT NULL DEFAULT 1,
    is_admin BOOLEAN NOT NULL DEFAULT 0,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

CREATE TABLE refresh_tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    family_id TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    used_at TIMESTAMP,
    revoked_at TIMESTAMP
);
CREATE INDEX refresh_tokens_family ON refresh_tokens(family_id);

CREATE TABLE projects (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    slug TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    repo_url TEXT NOT NULL,
    description TEXT NOT NULL,
    topics TEXT NOT NULL DEFAULT '[]',
    currency TEXT NOT NULL DEFAULT 'usd',
    commission_bps INTEGER NOT NULL DEFAULT 1000,
    free_share_pct INTEGER NOT NULL DEFAULT 20,
    min_response_hours INTEGER NOT NULL DEFAULT 0,
    auto_close_days INTEGER NOT NULL DEFAULT 30,
    guidelines TEXT NOT NULL DEFAULT '',
    code_of_conduct TEXT NOT NULL DEFAULT '',
    legal_entity TEXT,
    created_by BIGINT NOT NULL REFERENCES users(id),
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

CREATE TABLE project_maintainers (
    project_id BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    added_by BIGINT REFERENCES users(id),
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (project_id, user_id)
);

CREATE TABLE project_helpers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    tier TEXT NOT NULL,
    status TEXT NOT NULL,
    hourly_rate BIGINT,
    bio TEXT NOT NULL DEFAULT '',
    skills TEXT NOT NULL DEFAULT '[]',
    decided_by BIGINT REFERENCES users(id),
    decided_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (project_id, user_id)
);
CREATE INDEX project_helpers_user ON project_helpers(user_id);

CREATE TABLE coc_acceptances (
    project_id BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    accepted_at TIMESTAMP NOT NULL,
    PRIMARY KEY (project_id, user_id)
);

CREATE TABLE endorsements (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    endorser_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    endorsee_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (project_id, endorser_id, endorsee_id),
    CHECK (endorser_id <> endorsee_id)
);

CREATE TABLE background_jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_type TEXT NOT NULL,
    data TEXT NOT NULL,
    priority INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL DEFAULT 'queued',
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL DEFAULT 5,
    dedup_key TEXT,
    run_at TIMESTAMP NOT NULL,
    locked_until TIMESTAMP,
    last_error TEXT,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX background_jobs_due ON background_jobs(status, run_at);
CREATE UNIQUE INDEX background_jobs_dedup ON background_jobs(job_type, dedup_key)
    WHERE dedup_key IS NOT NULL AND status = 'queued';

CREATE TABLE background_job_schedules (
    name TEXT PRIMARY KEY NOT NULL,
    next_run_at TIMESTAMP NOT NULL
);
