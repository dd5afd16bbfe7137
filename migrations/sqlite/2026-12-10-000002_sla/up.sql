-- Service-level clocks of enterprise tickets: each runs in the project's
-- business time from the moment the ticket waits on the team (submitted,
-- or the requester replied) until the team responds; it is not running
-- while the ticket waits on the requester.
CREATE TABLE sla_clocks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_id BIGINT NOT NULL REFERENCES tickets(id),
    subscription_id BIGINT NOT NULL REFERENCES subscriptions(id),
    -- first_response | next_response
    kind TEXT NOT NULL,
    started_at TIMESTAMP NOT NULL,
    -- The team is warned then (three quarters of the business time).
    warn_at TIMESTAMP NOT NULL,
    due_at TIMESTAMP NOT NULL,
    warned_at TIMESTAMP,
    breached_at TIMESTAMP,
    closed_at TIMESTAMP,
    -- responded | ended (the ticket left the queue without a response)
    closed_reason TEXT,
    -- The service credit booked for the breach, minor units.
    credit_amount BIGINT NOT NULL DEFAULT 0,
    currency TEXT NOT NULL
);
CREATE UNIQUE INDEX sla_clocks_one_running ON sla_clocks (ticket_id) WHERE closed_at IS NULL;
CREATE INDEX sla_clocks_due ON sla_clocks (due_at) WHERE closed_at IS NULL;

-- Service credit taken off a period's charge.
ALTER TABLE subscription_periods ADD COLUMN credit_applied BIGINT NOT NULL DEFAULT 0;
