-- The gateway's id of the refund that returned a bounty to its backer;
-- NULL until the refund job has asked the gateway (or a charge.refunded
-- webhook reported a refund made at the gateway).
ALTER TABLE bounties ADD COLUMN refund_id TEXT;
