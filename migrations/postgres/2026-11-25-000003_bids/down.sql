ALTER TABLE projects DROP COLUMN acceptance_days;
ALTER TABLE bounties DROP COLUMN bid_id;
DROP TABLE bids;
