ALTER TABLE subscription_periods DROP COLUMN credit_applied;
DROP TABLE sla_clocks;
