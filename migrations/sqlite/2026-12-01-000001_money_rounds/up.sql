-- A ticket reopened after it was paid starts a new money round: releases are
-- one per (ticket, round). Bounties remember what was refunded of them
-- (partial refunds) and the state of a dispute. An idempotency key carries
-- a lease, so a request that died does not hold its key for ever.
ALTER TABLE tickets ADD COLUMN round INTEGER NOT NULL DEFAULT 1;
ALTER TABLE bounties ADD COLUMN refunded_amount BIGINT NOT NULL DEFAULT 0;
ALTER TABLE bounties ADD COLUMN dispute_status TEXT;
ALTER TABLE bounties ADD COLUMN disputed_amount BIGINT NOT NULL DEFAULT 0;
-- The Idempotency-Key of the request that made it: a retry of a request
-- that died finds its bounty (and its payment) instead of paying twice.
ALTER TABLE bounties ADD COLUMN request_key TEXT;
CREATE UNIQUE INDEX bounties_request_key ON bounties(backer_id, request_key);
ALTER TABLE idempotency_keys ADD COLUMN locked_until TIMESTAMP;

CREATE TABLE releases_new (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_id BIGINT NOT NULL REFERENCES tickets(id) ON DELETE CASCADE,
    round INTEGER NOT NULL DEFAULT 1,
    helper_id BIGINT NOT NULL REFERENCES users(id),
    project_id BIGINT NOT NULL REFERENCES projects(id),
    amount BIGINT NOT NULL,
    currency TEXT NOT NULL,
    helper_amount BIGINT NOT NULL,
    project_amount BIGINT NOT NULL,
    platform_amount BIGINT NOT NULL,
    platform_bps INTEGER NOT NULL,
    commission_bps INTEGER NOT NULL,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (ticket_id, round),
    CHECK (helper_amount + project_amount + platform_amount = amount)
);
INSERT INTO releases_new (id, ticket_id, round, helper_id, project_id, amount, currency,
    helper_amount, project_amount, platform_amount, platform_bps, commission_bps, created_at)
SELECT id, ticket_id, 1, helper_id, project_id, amount, currency,
    helper_amount, project_amount, platform_amount, platform_bps, commission_bps, created_at
FROM releases;
DROP TABLE releases;
ALTER TABLE releases_new RENAME TO releases;

-- Bounties refunded before partial refunds existed were refunded whole.
UPDATE bounties SET refunded_amount = amount WHERE status = 'refunded';
-- A ticket released once and reopened (and perhaps funded again) before this
-- migration is in its second round: its next release must not reuse the
-- first round's keys.
UPDATE tickets SET round = 2
WHERE id IN (SELECT ticket_id FROM releases)
  AND status IN ('open', 'claimed', 'resolved');
-- paid_amount is what the escrow holds now.
UPDATE tickets SET paid_amount = COALESCE((
    SELECT SUM(a.credits_posted - a.debits_posted) FROM ledger_accounts a
    WHERE a.kind = 'ticket_escrow' AND a.owner_id = tickets.id), 0);
