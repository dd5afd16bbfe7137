ALTER TABLE projects DROP COLUMN verified_via;
ALTER TABLE projects DROP COLUMN verified_at;
DROP TABLE user_identities;
DROP TABLE github_repositories;
DROP TABLE github_installations;
DROP TABLE github_deliveries;
