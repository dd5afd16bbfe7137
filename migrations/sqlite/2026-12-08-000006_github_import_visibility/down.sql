ALTER TABLE projects DROP COLUMN github_import_visibility;
