CREATE TABLE bids (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_id BIGINT NOT NULL REFERENCES tickets(id) ON DELETE CASCADE,
    helper_id BIGINT NOT NULL REFERENCES users(id),
    amount BIGINT NOT NULL,
    currency TEXT NOT NULL,
    eta_hours INTEGER NOT NULL,
    message TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    decided_at TIMESTAMP,
    CHECK (amount > 0),
    CHECK (eta_hours > 0)
);
CREATE INDEX bids_ticket ON bids(ticket_id);
CREATE UNIQUE INDEX bids_one_open_per_helper ON bids(ticket_id, helper_id) WHERE status = 'open';
ALTER TABLE bounties ADD COLUMN bid_id BIGINT REFERENCES bids(id);
ALTER TABLE projects ADD COLUMN acceptance_days INTEGER NOT NULL DEFAULT 7;
