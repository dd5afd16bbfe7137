ALTER TABLE subscriptions DROP COLUMN gateway_discounted;
