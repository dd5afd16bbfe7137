DROP FUNCTION ledger_apply_chain(text[], text[], bigint[], bigint[], bigint[], bigint[], bigint[], text[], timestamp);
