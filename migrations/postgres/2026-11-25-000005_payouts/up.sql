-- Where a payee (a user or a project) receives payouts on a gateway.
CREATE TABLE payout_accounts (
    id BIGSERIAL PRIMARY KEY,
    payee_kind TEXT NOT NULL,
    payee_id BIGINT NOT NULL,
    gateway TEXT NOT NULL,
    external_id TEXT NOT NULL,
    ready BOOLEAN NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (payee_kind, payee_id, gateway)
);

CREATE TABLE payouts (
    id BIGSERIAL PRIMARY KEY,
    ledger_account_id BIGINT NOT NULL REFERENCES ledger_accounts(id),
    payout_account_id BIGINT NOT NULL REFERENCES payout_accounts(id),
    amount BIGINT NOT NULL,
    currency TEXT NOT NULL,
    status TEXT NOT NULL,
    hold_transfer_id BIGINT REFERENCES ledger_transfers(id),
    gateway_transfer_id TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    created_at TIMESTAMP NOT NULL,
    paid_at TIMESTAMP,
    CHECK (amount > 0)
);
-- At most one payout in flight per ledger account.
CREATE UNIQUE INDEX payouts_one_in_flight ON payouts(ledger_account_id) WHERE status = 'pending';
