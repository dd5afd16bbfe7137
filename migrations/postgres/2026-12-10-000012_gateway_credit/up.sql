-- Service credit given to the gateway for a subscription it bills (a
-- negative invoice item) and not yet seen taken off one of its invoices.
ALTER TABLE subscriptions ADD COLUMN gateway_credit_outstanding BIGINT NOT NULL DEFAULT 0;
