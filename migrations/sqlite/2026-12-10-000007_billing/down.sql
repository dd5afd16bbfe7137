DROP INDEX subscription_periods_invoice;
ALTER TABLE subscription_periods DROP COLUMN gateway_invoice_id;
DROP INDEX subscriptions_gateway_id;
ALTER TABLE subscriptions DROP COLUMN gateway_customer_id;
ALTER TABLE subscriptions DROP COLUMN gateway_subscription_id;
