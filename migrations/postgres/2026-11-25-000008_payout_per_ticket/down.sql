DROP INDEX payouts_one_in_flight;
ALTER TABLE payouts DROP COLUMN ticket_id;
CREATE UNIQUE INDEX payouts_one_in_flight ON payouts(ledger_account_id) WHERE status = 'pending';
