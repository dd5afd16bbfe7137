-- Double-entry ledger (modelled on TigerBeetle's accounts and transfers).
CREATE TABLE ledger_accounts (
    id BIGSERIAL PRIMARY KEY,
    code TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    owner_id BIGINT,
    currency TEXT NOT NULL,
    allow_negative BOOLEAN NOT NULL,
    debits_posted BIGINT NOT NULL DEFAULT 0,
    credits_posted BIGINT NOT NULL DEFAULT 0,
    debits_pending BIGINT NOT NULL DEFAULT 0,
    credits_pending BIGINT NOT NULL DEFAULT 0,
    frozen BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMP NOT NULL,
    CHECK (debits_posted >= 0 AND credits_posted >= 0 AND debits_pending >= 0 AND credits_pending >= 0),
    CHECK (allow_negative OR credits_posted - debits_posted - debits_pending >= 0)
);

CREATE TABLE ledger_transfers (
    id BIGSERIAL PRIMARY KEY,
    transfer_key TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    debit_account_id BIGINT NOT NULL REFERENCES ledger_accounts(id),
    credit_account_id BIGINT NOT NULL REFERENCES ledger_accounts(id),
    amount BIGINT NOT NULL,
    currency TEXT NOT NULL,
    pending_id BIGINT REFERENCES ledger_transfers(id),
    pending_status TEXT,
    chain_key TEXT,
    ticket_id BIGINT,
    memo TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMP NOT NULL,
    CHECK (amount > 0),
    CHECK (debit_account_id <> credit_account_id)
);
CREATE INDEX ledger_transfers_debit ON ledger_transfers(debit_account_id);
CREATE INDEX ledger_transfers_credit ON ledger_transfers(credit_account_id);
CREATE INDEX ledger_transfers_ticket ON ledger_transfers(ticket_id);
-- A pending transfer is posted or voided at most once.
CREATE UNIQUE INDEX ledger_transfers_resolves_once ON ledger_transfers(pending_id) WHERE pending_id IS NOT NULL;
