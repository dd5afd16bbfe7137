ALTER TABLE subscriptions DROP COLUMN gateway_credit_outstanding;
