-- Applies one linked chain of ledger transfers in a single round trip, with
-- exactly the rules of src/ledger/mod.rs (which applies chains on SQLite and
-- documents them): keys seen before replay the original transfers when the
-- content matches; accounts are locked in id order; each transfer is checked
-- against balances that include the chain's earlier transfers; pending
-- transfers resolve at most once. Any refusal raises
-- 'ledger:<reason>:<detail>' and, the function being one statement, nothing
-- of the chain is written. Called in autocommit mode it is its own
-- transaction; inside a transaction the caller wraps it in a savepoint.
CREATE FUNCTION ledger_apply_chain(
    p_keys text[],
    p_kinds text[],
    p_debits bigint[],
    p_credits bigint[],
    p_amounts bigint[],
    p_pending bigint[],
    p_tickets bigint[],
    p_memos text[],
    p_now timestamp
) RETURNS SETOF ledger_transfers
LANGUAGE plpgsql AS $$
DECLARE
    n int := coalesce(array_length(p_keys, 1), 0);
    i int;
    r ledger_transfers%ROWTYPE;
    p ledger_transfers%ROWTYPE;
    d ledger_accounts%ROWTYPE;
    c ledger_accounts%ROWTYPE;
    amt bigint;
    is_post boolean;
    ids bigint[];
    n_found int;
BEGIN
    IF n = 0 THEN
        RAISE EXCEPTION 'ledger:invalid:a chain needs at least one transfer';
    END IF;
    -- Replay: every key exists with the same content, or it is a mismatch.
    -- (Lookups are by single key or id, so the plan is an index probe
    -- whatever the table's statistics say.)
    n_found := 0;
    FOR i IN 1..n LOOP
        SELECT * INTO r FROM ledger_transfers WHERE transfer_key = p_keys[i];
        IF FOUND THEN
            n_found := n_found + 1;
            IF NOT (
                r.kind = p_kinds[i]
                AND r.pending_id IS NOT DISTINCT FROM p_pending[i]
                AND (p_kinds[i] = 'void_pending' OR r.amount = p_amounts[i])
                AND CASE WHEN p_kinds[i] IN ('post_pending', 'void_pending') THEN
                        (p_debits[i] = 0 OR p_debits[i] = r.debit_account_id)
                        AND (p_credits[i] = 0 OR p_credits[i] = r.credit_account_id)
                    ELSE p_debits[i] = r.debit_account_id AND p_credits[i] = r.credit_account_id
                    END
            ) THEN
                RAISE EXCEPTION 'ledger:idempotency_mismatch:%', p_keys[i];
            END IF;
        END IF;
    END LOOP;
    IF n_found > 0 AND n_found < n THEN
        RAISE EXCEPTION 'ledger:idempotency_mismatch:%', p_keys[1];
    END IF;
    IF n_found = n THEN
        FOR i IN 1..n LOOP
            RETURN QUERY SELECT * FROM ledger_transfers WHERE transfer_key = p_keys[i];
        END LOOP;
        RETURN;
    END IF;
    -- Lock every account the chain touches, in id order (no deadlocks).
    ids := p_debits || p_credits;
    FOR i IN 1..n LOOP
        IF p_pending[i] IS NOT NULL THEN
            SELECT * INTO p FROM ledger_transfers WHERE id = p_pending[i];
            IF FOUND THEN
                ids := ids || p.debit_account_id || p.credit_account_id;
            END IF;
        END IF;
    END LOOP;
    ids := ARRAY(SELECT DISTINCT x FROM unnest(ids) x WHERE x <> 0 ORDER BY x);
    PERFORM 1 FROM ledger_accounts WHERE id = ANY (ids) ORDER BY id FOR UPDATE;
    FOR i IN 1..n LOOP
        IF p_kinds[i] IN ('posted', 'pending') THEN
            IF p_amounts[i] <= 0 THEN
                RAISE EXCEPTION 'ledger:invalid:amount must be positive, got %', p_amounts[i];
            END IF;
            SELECT * INTO d FROM ledger_accounts WHERE id = p_debits[i];
            SELECT * INTO c FROM ledger_accounts WHERE id = p_credits[i];
            IF d.id IS NULL OR c.id IS NULL OR d.currency <> c.currency OR d.id = c.id THEN
                RAISE EXCEPTION 'ledger:account_mismatch:%,%', p_debits[i], p_credits[i];
            END IF;
            IF d.frozen THEN
                RAISE EXCEPTION 'ledger:frozen:%', d.id;
            END IF;
            IF NOT d.allow_negative
                AND d.credits_posted - d.debits_posted - d.debits_pending < p_amounts[i] THEN
                RAISE EXCEPTION 'ledger:insufficient_funds:%', d.id;
            END IF;
            IF p_kinds[i] = 'pending' THEN
                UPDATE ledger_accounts SET debits_pending = debits_pending + p_amounts[i] WHERE id = d.id;
                UPDATE ledger_accounts SET credits_pending = credits_pending + p_amounts[i] WHERE id = c.id;
            ELSE
                UPDATE ledger_accounts SET debits_posted = debits_posted + p_amounts[i] WHERE id = d.id;
                UPDATE ledger_accounts SET credits_posted = credits_posted + p_amounts[i] WHERE id = c.id;
            END IF;
            RETURN QUERY INSERT INTO ledger_transfers (transfer_key, kind, debit_account_id,
                    credit_account_id, amount, currency, pending_id, pending_status, chain_key,
                    ticket_id, memo, created_at)
                VALUES (p_keys[i], p_kinds[i], d.id, c.id, p_amounts[i], d.currency, NULL,
                    CASE WHEN p_kinds[i] = 'pending' THEN 'pending' END, p_keys[1],
                    p_tickets[i], p_memos[i], p_now)
                RETURNING *;
        ELSIF p_kinds[i] IN ('post_pending', 'void_pending') THEN
            IF p_pending[i] IS NULL THEN
                RAISE EXCEPTION 'ledger:invalid:post and void need pending_id';
            END IF;
            SELECT * INTO p FROM ledger_transfers WHERE id = p_pending[i] AND kind = 'pending';
            IF NOT FOUND THEN
                RAISE EXCEPTION 'ledger:pending_not_found:%', p_pending[i];
            END IF;
            IF (p_debits[i] <> 0 AND p_debits[i] <> p.debit_account_id)
                OR (p_credits[i] <> 0 AND p_credits[i] <> p.credit_account_id) THEN
                RAISE EXCEPTION 'ledger:account_mismatch:%,%', p_debits[i], p_credits[i];
            END IF;
            is_post := p_kinds[i] = 'post_pending';
            amt := CASE WHEN is_post THEN p_amounts[i] ELSE p.amount END;
            IF is_post AND (amt <= 0 OR amt > p.amount) THEN
                RAISE EXCEPTION 'ledger:exceeds_pending:%,%,%', p.id, amt, p.amount;
            END IF;
            UPDATE ledger_transfers SET pending_status = CASE WHEN is_post THEN 'posted' ELSE 'voided' END
                WHERE id = p.id AND pending_status = 'pending';
            IF NOT FOUND THEN
                RAISE EXCEPTION 'ledger:already_resolved:%', p.id;
            END IF;
            IF is_post THEN
                IF (SELECT frozen FROM ledger_accounts WHERE id = p.debit_account_id) THEN
                    RAISE EXCEPTION 'ledger:frozen:%', p.debit_account_id;
                END IF;
                UPDATE ledger_accounts SET debits_pending = debits_pending - p.amount,
                    debits_posted = debits_posted + amt WHERE id = p.debit_account_id;
                UPDATE ledger_accounts SET credits_pending = credits_pending - p.amount,
                    credits_posted = credits_posted + amt WHERE id = p.credit_account_id;
            ELSE
                UPDATE ledger_accounts SET debits_pending = debits_pending - p.amount
                    WHERE id = p.debit_account_id;
                UPDATE ledger_accounts SET credits_pending = credits_pending - p.amount
                    WHERE id = p.credit_account_id;
            END IF;
            RETURN QUERY INSERT INTO ledger_transfers (transfer_key, kind, debit_account_id,
                    credit_account_id, amount, currency, pending_id, pending_status, chain_key,
                    ticket_id, memo, created_at)
                VALUES (p_keys[i], p_kinds[i], p.debit_account_id, p.credit_account_id, amt,
                    p.currency, p.id, NULL, p_keys[1], p_tickets[i], p_memos[i], p_now)
                RETURNING *;
        ELSE
            RAISE EXCEPTION 'ledger:invalid:unknown transfer kind %', p_kinds[i];
        END IF;
    END LOOP;
END;
$$;
