ALTER TABLE projects DROP COLUMN steward_id;
DROP TABLE handovers;
