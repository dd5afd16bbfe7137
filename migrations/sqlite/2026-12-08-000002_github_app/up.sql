-- GitHub App: each webhook delivery once; the installations and the
-- repositories they cover; which project a repository is linked to; and
-- when a project proved it controls its repository.
CREATE TABLE github_deliveries (
    delivery_id TEXT PRIMARY KEY,
    -- The signed body's hash: the delivery id is not signed, so a captured
    -- body resent under a new id is a replay too.
    body_sha256 TEXT NOT NULL UNIQUE,
    event TEXT NOT NULL,
    received_at TIMESTAMP NOT NULL
);
CREATE TABLE github_installations (
    id BIGINT PRIMARY KEY,
    account_login TEXT NOT NULL,
    account_id BIGINT NOT NULL,
    -- The GitHub user who installed it (the delivery's sender).
    installed_by BIGINT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    -- Uninstalled or suspended: no tokens are asked for it.
    removed_at TIMESTAMP
);
CREATE TABLE github_repositories (
    id BIGINT PRIMARY KEY,
    node_id TEXT NOT NULL,
    -- owner/name as GitHub spells it now (it follows renames).
    full_name TEXT NOT NULL,
    -- The installation that covers it; NULL once removed.
    installation_id BIGINT REFERENCES github_installations(id),
    -- The project it is linked to.
    project_id BIGINT UNIQUE REFERENCES projects(id),
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX github_repositories_name ON github_repositories(full_name);
-- GitHub (and later chat) identities of Guildhall users.
CREATE TABLE user_identities (
    provider TEXT NOT NULL,
    external_id TEXT NOT NULL,
    user_id BIGINT NOT NULL REFERENCES users(id),
    login TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (provider, external_id)
);
CREATE INDEX user_identities_user ON user_identities(user_id);
-- When the project proved control of its repository, and how
-- (github_app, github_admin, platform_admin).
ALTER TABLE projects ADD COLUMN verified_at TIMESTAMP;
ALTER TABLE projects ADD COLUMN verified_via TEXT;
