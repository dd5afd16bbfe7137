-- What a project sells: plans, the subscriptions to them, and each paid
-- (or failed) period of a subscription. Pay as you go is no row: its
-- per-ticket upgrade price is the project's upgrade_price.
ALTER TABLE projects ADD COLUMN upgrade_price BIGINT NOT NULL DEFAULT 2500;

CREATE TABLE plans (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id BIGINT NOT NULL REFERENCES projects(id),
    -- monthly | enterprise
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    -- The smallest monthly price, minor units; a subscriber may pay more.
    price BIGINT NOT NULL,
    currency TEXT NOT NULL,
    -- Ticket upgrades included per month.
    included_upgrades INTEGER NOT NULL,
    -- Price of an upgrade beyond the included ones (NULL: the project's).
    upgrade_price BIGINT,
    -- Consulting hours included per month.
    consulting_hours INTEGER NOT NULL,
    -- Enterprise: guaranteed first response, business hours.
    response_hours INTEGER,
    -- Months booked and paid at a time (enterprise: 6).
    term_months INTEGER NOT NULL,
    -- Discount for requesters working for another open-source project.
    floss_discount_pct INTEGER NOT NULL,
    -- Enterprise: share of a month's fee credited per breached ticket.
    service_credit_pct INTEGER NOT NULL,
    created_by BIGINT NOT NULL REFERENCES users(id),
    created_at TIMESTAMP NOT NULL,
    UNIQUE (project_id, name)
);

CREATE TABLE subscriptions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    plan_id BIGINT NOT NULL REFERENCES plans(id),
    project_id BIGINT NOT NULL REFERENCES projects(id),
    subscriber_id BIGINT NOT NULL REFERENCES users(id),
    -- professional | personal | floss
    context TEXT NOT NULL,
    -- The terms as subscribed; a plan's later change applies from the
    -- subscriber's next period, never to one already begun.
    monthly_price BIGINT NOT NULL,
    currency TEXT NOT NULL,
    discount_pct INTEGER NOT NULL,
    -- The platform's fee on each period, basis points, as subscribed.
    platform_bps INTEGER NOT NULL,
    -- pending_payment | active | past_due | cancelled | lapsed | failed
    status TEXT NOT NULL,
    gateway TEXT NOT NULL,
    -- The period being served (0 before the first is paid).
    current_period INTEGER NOT NULL,
    period_start TIMESTAMP,
    period_end TIMESTAMP,
    -- A failed renewal keeps the plan until then; then it lapses.
    grace_until TIMESTAMP,
    cancel_at_period_end BOOLEAN NOT NULL,
    request_key TEXT,
    created_at TIMESTAMP NOT NULL,
    ended_at TIMESTAMP
);
-- One live subscription per subscriber and project.
CREATE UNIQUE INDEX subscriptions_one_live ON subscriptions (subscriber_id, project_id)
    WHERE status IN ('pending_payment', 'active', 'past_due');
CREATE UNIQUE INDEX subscriptions_request ON subscriptions (subscriber_id, request_key);

CREATE TABLE subscription_periods (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    subscription_id BIGINT NOT NULL REFERENCES subscriptions(id),
    number INTEGER NOT NULL,
    starts_at TIMESTAMP NOT NULL,
    ends_at TIMESTAMP NOT NULL,
    -- Charged for the whole period (monthly price × months), minor units.
    amount BIGINT NOT NULL,
    -- pending_payment | paid | failed | refunded (paid after the
    -- subscription ended: booked and returned)
    status TEXT NOT NULL,
    payment_id TEXT,
    -- The split of a paid period.
    project_amount BIGINT NOT NULL DEFAULT 0,
    platform_amount BIGINT NOT NULL DEFAULT 0,
    -- Credits granted with it.
    upgrades_granted INTEGER NOT NULL,
    consulting_minutes_granted INTEGER NOT NULL,
    created_at TIMESTAMP NOT NULL,
    paid_at TIMESTAMP,
    refund_id TEXT,
    UNIQUE (subscription_id, number)
);
CREATE INDEX subscription_periods_payment ON subscription_periods (payment_id);

-- An upgrade moved the ticket up the queue (an included credit spent).
ALTER TABLE tickets ADD COLUMN upgraded_at TIMESTAMP;

-- Proof through GitHub that a user maintains a public repository under an
-- OSI licence (the FLOSS discount); re-checked yearly.
CREATE TABLE floss_proofs (
    user_id BIGINT PRIMARY KEY REFERENCES users(id),
    github_login TEXT NOT NULL,
    repository TEXT NOT NULL,
    license TEXT NOT NULL,
    -- admin | maintain
    permission TEXT NOT NULL,
    verified_at TIMESTAMP NOT NULL,
    checked_at TIMESTAMP NOT NULL
);
