ALTER TABLE coc_acceptances DROP COLUMN version;
ALTER TABLE projects DROP COLUMN coc_version;
