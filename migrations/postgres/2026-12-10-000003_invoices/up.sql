-- What buyers want printed on their invoices.
CREATE TABLE billing_details (
    user_id BIGINT PRIMARY KEY REFERENCES users(id),
    -- Company (or person) name.
    name TEXT NOT NULL,
    address TEXT NOT NULL,
    vat_id TEXT,
    updated_at TIMESTAMP NOT NULL
);

-- Each seller's (project's) last document number: documents are numbered
-- 1, 2, 3, … per seller without gaps (the row is taken in the issuing
-- transaction, so a rollback leaves no hole).
CREATE TABLE invoice_sequences (
    project_id BIGINT PRIMARY KEY REFERENCES projects(id),
    last_number BIGINT NOT NULL
);

-- Invoices and credit notes. The project's legal entity is the seller; the
-- platform collects as its agent. Rows are never changed: a correction is a
-- credit note (and, after a billing-details change, a re-issued invoice).
CREATE TABLE invoices (
    id BIGSERIAL PRIMARY KEY,
    project_id BIGINT NOT NULL REFERENCES projects(id),
    number BIGINT NOT NULL,
    -- invoice | credit_note
    kind TEXT NOT NULL,
    buyer_id BIGINT NOT NULL REFERENCES users(id),
    -- As printed: the seller's and the buyer's blocks (JSON).
    seller TEXT NOT NULL,
    buyer TEXT NOT NULL,
    -- JSON [{description, amount}]
    lines TEXT NOT NULL,
    total BIGINT NOT NULL,
    currency TEXT NOT NULL,
    -- The money it documents: bounty:{id} or subscription_period:{id}.
    origin TEXT NOT NULL,
    -- The document's own key (exactly once): the origin for the first
    -- invoice, origin:refund:{n}, reissue:{id}, reissue:{id}:credit.
    source TEXT NOT NULL,
    -- A credit note: the invoice it corrects.
    corrects_id BIGINT REFERENCES invoices(id),
    issued_at TIMESTAMP NOT NULL,
    UNIQUE (project_id, number),
    UNIQUE (source)
);
CREATE INDEX invoices_buyer ON invoices (buyer_id, id);
CREATE INDEX invoices_origin ON invoices (origin, id);

-- Service-level clocks are looked up by ticket and wait (the sweep, the
-- ticket page).
CREATE INDEX sla_clocks_ticket ON sla_clocks (ticket_id, started_at);
