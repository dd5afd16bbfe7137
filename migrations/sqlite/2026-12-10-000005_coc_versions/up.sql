-- Codes of conduct are versioned: a change of a project's text makes a new
-- version, and posting, claiming and bidding need the current one accepted.
ALTER TABLE projects ADD COLUMN coc_version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE coc_acceptances ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
