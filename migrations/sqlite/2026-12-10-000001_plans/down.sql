DROP TABLE floss_proofs;
ALTER TABLE tickets DROP COLUMN upgraded_at;
DROP TABLE subscription_periods;
DROP TABLE subscriptions;
DROP TABLE plans;
ALTER TABLE projects DROP COLUMN upgrade_price;
