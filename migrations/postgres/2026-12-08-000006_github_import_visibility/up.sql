-- Whether issues imported from GitHub by +support become public or private
-- tickets (an issue of a private repository is always private).
ALTER TABLE projects ADD COLUMN github_import_visibility TEXT NOT NULL DEFAULT 'public';
