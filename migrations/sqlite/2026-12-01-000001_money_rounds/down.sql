CREATE TABLE releases_old (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_id BIGINT NOT NULL UNIQUE REFERENCES tickets(id) ON DELETE CASCADE,
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
    CHECK (helper_amount + project_amount + platform_amount = amount)
);
INSERT INTO releases_old SELECT id, ticket_id, helper_id, project_id, amount, currency,
    helper_amount, project_amount, platform_amount, platform_bps, commission_bps, created_at
FROM releases WHERE round = 1;
DROP TABLE releases;
ALTER TABLE releases_old RENAME TO releases;
ALTER TABLE idempotency_keys DROP COLUMN locked_until;
DROP INDEX bounties_request_key;
ALTER TABLE bounties DROP COLUMN request_key;
ALTER TABLE bounties DROP COLUMN disputed_amount;
ALTER TABLE bounties DROP COLUMN dispute_status;
ALTER TABLE bounties DROP COLUMN refunded_amount;
ALTER TABLE tickets DROP COLUMN round;
