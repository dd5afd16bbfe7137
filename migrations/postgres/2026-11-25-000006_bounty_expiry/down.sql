ALTER TABLE bounties DROP COLUMN expires_at;
