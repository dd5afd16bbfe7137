-- Subscriptions a gateway bills by itself (Stripe Billing).
ALTER TABLE subscriptions ADD COLUMN gateway_subscription_id TEXT;
ALTER TABLE subscriptions ADD COLUMN gateway_customer_id TEXT;
CREATE UNIQUE INDEX subscriptions_gateway_id ON subscriptions (gateway, gateway_subscription_id) WHERE gateway_subscription_id IS NOT NULL;
-- The gateway's invoice a period was billed by: each is booked once.
ALTER TABLE subscription_periods ADD COLUMN gateway_invoice_id TEXT;
CREATE UNIQUE INDEX subscription_periods_invoice ON subscription_periods (gateway_invoice_id) WHERE gateway_invoice_id IS NOT NULL;
