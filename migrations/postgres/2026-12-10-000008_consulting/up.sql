-- Consulting time booked against a subscription's included minutes.
CREATE TABLE consulting_bookings (
    id BIGSERIAL PRIMARY KEY,
    subscription_id BIGINT NOT NULL REFERENCES subscriptions(id),
    project_id BIGINT NOT NULL REFERENCES projects(id),
    requester_id BIGINT NOT NULL REFERENCES users(id),
    -- The subscription's period whose minutes it spent.
    period_number INTEGER NOT NULL,
    minutes INTEGER NOT NULL CHECK (minutes > 0),
    topic TEXT NOT NULL,
    preferred_at TIMESTAMP,
    -- requested | scheduled | done | cancelled
    status TEXT NOT NULL,
    scheduled_at TIMESTAMP,
    -- Whether a cancellation gave the minutes back (within their period).
    returned BOOLEAN NOT NULL DEFAULT FALSE,
    decided_by BIGINT REFERENCES users(id),
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX consulting_by_project ON consulting_bookings (project_id, status, id);
CREATE INDEX consulting_by_subscription ON consulting_bookings (subscription_id, id);
