-- Whether the gateway's subscription carries our FLOSS discount now (kept
-- in step with the proof by the sync-floss-discounts job).
ALTER TABLE subscriptions ADD COLUMN gateway_discounted BOOLEAN NOT NULL DEFAULT FALSE;
