//! `guildhall ledger check`: every invariant of the ledger, recomputed from
//! the transfer rows.

use super::{Account, Transfer, TransferKind};
use crate::db::schema::{ledger_accounts as la, ledger_transfers as lt};
use crate::db::DbConnection;
use diesel::prelude::*;
use std::collections::HashMap;

#[derive(Default)]
struct Sums {
    debits_posted: i128,
    credits_posted: i128,
    debits_pending: i128,
    credits_pending: i128,
}

/// Checks that every transfer balances (debit and credit in one currency,
/// positive amount), that each account's four sums equal the sums of its
/// transfers, that the posted balances of each currency add up to zero, that
/// no account that may not go negative does, and that every pending transfer
/// was posted or voided at most once, never for more than it reserved —
/// and that the business agrees with the ledger (`business::check`:
/// tickets' escrow, `paid_amount`, bounties, releases, payouts).
/// Returns the violations found (empty: the ledger is sound).
pub fn check(conn: &mut DbConnection) -> QueryResult<Vec<String>> {
    // One consistent snapshot, so money moving meanwhile on a live database
    // is never reported as a violation.
    // (SQLite: a read transaction sees one snapshot in WAL mode.)
    let outermost = match conn {
        DbConnection::Pg(pg) => {
            use diesel::connection::{AnsiTransactionManager, TransactionManager};
            AnsiTransactionManager::transaction_manager_status_mut(pg)
                .transaction_depth()?
                .is_none()
        }
        DbConnection::Sqlite(_) => false,
    };
    conn.transaction(|conn| {
        if outermost {
            use diesel::connection::SimpleConnection as _;
            conn.batch_execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")?;
        }
        check_in(conn)
    })
}

fn check_in(conn: &mut DbConnection) -> QueryResult<Vec<String>> {
    let mut violations = Vec::new();
    let accounts: Vec<Account> = la::table
        .select(Account::as_select())
        .order(la::id)
        .load(conn)?;
    let by_id: HashMap<i64, &Account> = accounts.iter().map(|a| (a.id, a)).collect();
    let mut sums: HashMap<i64, Sums> = HashMap::new();
    let mut pendings: HashMap<i64, (i64, String)> = HashMap::new();
    let mut resolutions: HashMap<i64, Vec<(String, i64)>> = HashMap::new();
    let mut after = 0i64;
    loop {
        let page: Vec<Transfer> = lt::table
            .filter(lt::id.gt(after))
            .order(lt::id)
            .limit(5000)
            .select(Transfer::as_select())
            .load(conn)?;
        let Some(last) = page.last() else { break };
        after = last.id;
        for t in &page {
            if t.amount <= 0 {
                violations.push(format!(
                    "transfer {} has a non-positive amount {}",
                    t.id, t.amount
                ));
            }
            match (
                by_id.get(&t.debit_account_id),
                by_id.get(&t.credit_account_id),
            ) {
                (Some(d), Some(c)) if d.currency == t.currency && c.currency == t.currency => {}
                _ => violations.push(format!(
                    "transfer {} does not balance within one currency",
                    t.id
                )),
            }
            let amount = i128::from(t.amount);
            match t.kind.as_str() {
                k if k == TransferKind::Posted.as_str() => {
                    sums.entry(t.debit_account_id).or_default().debits_posted += amount;
                    sums.entry(t.credit_account_id).or_default().credits_posted += amount;
                }
                k if k == TransferKind::Pending.as_str() => {
                    let status = t.pending_status.clone().unwrap_or_default();
                    if status == "pending" {
                        sums.entry(t.debit_account_id).or_default().debits_pending += amount;
                        sums.entry(t.credit_account_id).or_default().credits_pending += amount;
                    }
                    pendings.insert(t.id, (t.amount, status));
                }
                k if k == TransferKind::PostPending.as_str() => {
                    sums.entry(t.debit_account_id).or_default().debits_posted += amount;
                    sums.entry(t.credit_account_id).or_default().credits_posted += amount;
                    resolutions
                        .entry(t.pending_id.unwrap_or(0))
                        .or_default()
                        .push(("posted".into(), t.amount));
                }
                k if k == TransferKind::VoidPending.as_str() => {
                    resolutions
                        .entry(t.pending_id.unwrap_or(0))
                        .or_default()
                        .push(("voided".into(), t.amount));
                }
                other => violations.push(format!("transfer {} has unknown kind {other}", t.id)),
            }
        }
    }
    let mut per_currency: HashMap<&str, i128> = HashMap::new();
    for a in &accounts {
        let s = sums.remove(&a.id).unwrap_or_default();
        let stored = (
            i128::from(a.debits_posted),
            i128::from(a.credits_posted),
            i128::from(a.debits_pending),
            i128::from(a.credits_pending),
        );
        let computed = (
            s.debits_posted,
            s.credits_posted,
            s.debits_pending,
            s.credits_pending,
        );
        if stored != computed {
            violations.push(format!(
                "account {} ({}) sums {:?} differ from its transfers {:?} (debits posted, credits posted, debits pending, credits pending)",
                a.id, a.code, stored, computed
            ));
        }
        if !a.allow_negative && a.available() < 0 {
            violations.push(format!(
                "account {} ({}) is below zero: available {}",
                a.id,
                a.code,
                a.available()
            ));
        }
        *per_currency.entry(a.currency.as_str()).or_default() +=
            i128::from(a.credits_posted) - i128::from(a.debits_posted);
    }
    for (currency, total) in per_currency {
        if total != 0 {
            violations.push(format!(
                "posted balances in {currency} add up to {total}, not 0"
            ));
        }
    }
    for (pid, (reserved, status)) in &pendings {
        let res = resolutions.remove(pid).unwrap_or_default();
        match (status.as_str(), res.as_slice()) {
            ("pending", []) => {}
            ("posted", [(kind, amount)]) if kind == "posted" && *amount <= *reserved => {}
            ("voided", [(kind, amount)]) if kind == "voided" && amount == reserved => {}
            _ => violations.push(format!(
                "pending transfer {pid} ({status}) has resolutions {res:?}"
            )),
        }
    }
    for (pid, res) in resolutions {
        violations.push(format!(
            "resolutions {res:?} refer to {pid}, which is not a pending transfer"
        ));
    }
    violations.extend(super::business::check(conn)?);
    Ok(violations)
}
