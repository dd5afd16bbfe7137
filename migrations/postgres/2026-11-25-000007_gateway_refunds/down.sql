ALTER TABLE bounties DROP COLUMN refund_id;
