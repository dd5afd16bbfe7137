-- A payout covers one ticket's earnings, so the gateway transfer can carry
-- the ticket as its transfer_group. NULL: earnings not tied to a ticket.
ALTER TABLE payouts ADD COLUMN ticket_id BIGINT REFERENCES tickets(id);
DROP INDEX payouts_one_in_flight;
-- At most one payout in flight per ledger account and ticket.
CREATE UNIQUE INDEX payouts_one_in_flight ON payouts(ledger_account_id, COALESCE(ticket_id, 0)) WHERE status = 'pending';
