CREATE TABLE bounties (
    id BIGSERIAL PRIMARY KEY,
    ticket_id BIGINT NOT NULL REFERENCES tickets(id) ON DELETE CASCADE,
    backer_id BIGINT NOT NULL REFERENCES users(id),
    amount BIGINT NOT NULL,
    currency TEXT NOT NULL,
    status TEXT NOT NULL,
    gateway TEXT NOT NULL,
    payment_id TEXT,
    created_at TIMESTAMP NOT NULL,
    funded_at TIMESTAMP,
    settled_at TIMESTAMP,
    CHECK (amount > 0)
);
CREATE INDEX bounties_ticket ON bounties(ticket_id);
CREATE UNIQUE INDEX bounties_payment ON bounties(gateway, payment_id);

CREATE TABLE releases (
    id BIGSERIAL PRIMARY KEY,
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

CREATE TABLE idempotency_keys (
    id BIGSERIAL PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    idem_key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status_code INTEGER,
    response_body TEXT,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (user_id, idem_key)
);
