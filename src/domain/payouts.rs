//! Payouts: available helper and project balances leave through the
//! gateway once the payee has a ready payout account and the balance reaches
//! the configured minimum.
//!
//! Each payout covers what the payee earned on one ticket, so the gateway's
//! transfer carries the ticket as its `transfer_group` (`ticket-{id}`).
//! A payout is first reserved in the ledger (a pending transfer from the
//! payee's account to the gateway's clearing account) together with its
//! `payouts` row, in one transaction; then the gateway is asked to transfer
//! with the idempotency key `payout:{id}`; then the hold is posted and the
//! gateway's transfer id recorded. A crash or a failed call leaves the row
//! `pending` with its hold; the next run asks the gateway again with the
//! same key, so the payee is never paid twice. After five failed attempts
//! the hold is voided and the row marked `failed`.

use crate::db::schema::{ledger_accounts as la, payout_accounts as pa, payouts as po};
use crate::db::{write_tx, DbConnection, DbPool};
use crate::domain::now;
use crate::error::{AppError, AppResult};
use crate::ledger::{self, AccountKind, NewTransfer, TransferKind};
use crate::payments::PaymentGateway;
use diesel::prelude::*;

/// Attempts before a payout is given up and its hold voided.
pub const MAX_ATTEMPTS: i32 = 5;

/// Who receives a payout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payee {
    /// A user (helper earnings).
    User(i64),
    /// A project (commission revenue).
    Project(i64),
}

impl Payee {
    fn kind(self) -> &'static str {
        match self {
            Payee::User(_) => "user",
            Payee::Project(_) => "project",
        }
    }
    fn id(self) -> i64 {
        match self {
            Payee::User(i) | Payee::Project(i) => i,
        }
    }
}

/// A payee's payout account on a gateway.
#[derive(Debug, Clone)]
pub struct Onboarding {
    /// Gateway's account id.
    pub account_id: String,
    /// Where the payee completes onboarding.
    pub url: String,
    /// Whether payouts can be sent now.
    pub ready: bool,
}

/// Creates (once) the payee's payout account on the gateway and returns an
/// onboarding link and whether the account is ready.
pub fn onboard(pool: &DbPool, gateway: &dyn PaymentGateway, payee: Payee) -> AppResult<Onboarding> {
    let existing: Option<String> = pa::table
        .filter(pa::payee_kind.eq(payee.kind()))
        .filter(pa::payee_id.eq(payee.id()))
        .filter(pa::gateway.eq(gateway.name()))
        .select(pa::external_id)
        .first(&mut *pool.get()?)
        .optional()?;
    // The gateway is asked with no connection held.
    let account_id = match existing {
        Some(a) => a,
        None => gateway
            .create_payout_account(&format!("payout-account:{}:{}", payee.kind(), payee.id()))
            .map_err(|e| {
                tracing::warn!(error = %e, "gateway could not create a payout account");
                AppError::Unavailable
            })?,
    };
    let ready = gateway
        .payout_account_ready(&account_id)
        .map_err(|_| AppError::Unavailable)?;
    let url = gateway
        .onboarding_link(&account_id)
        .map_err(|_| AppError::Unavailable)?;
    let at = now();
    let mut conn = pool.get()?;
    let conn = &mut *conn;
    crate::per_backend!(conn, |c| diesel::insert_into(pa::table)
        .values((
            pa::payee_kind.eq(payee.kind()),
            pa::payee_id.eq(payee.id()),
            pa::gateway.eq(gateway.name()),
            pa::external_id.eq(&account_id),
            pa::ready.eq(ready),
            pa::created_at.eq(at),
            pa::updated_at.eq(at),
        ))
        .on_conflict_do_nothing()
        .execute(c))?;
    diesel::update(
        pa::table
            .filter(pa::payee_kind.eq(payee.kind()))
            .filter(pa::payee_id.eq(payee.id()))
            .filter(pa::gateway.eq(gateway.name())),
    )
    .set((pa::ready.eq(ready), pa::updated_at.eq(at)))
    .execute(conn)?;
    Ok(Onboarding {
        account_id,
        url,
        ready,
    })
}

/// Records whether a gateway account can receive payouts (from the
/// gateway's account webhook). Returns how many accounts matched.
pub fn set_ready(
    conn: &mut DbConnection,
    gateway: &str,
    external_id: &str,
    ready: bool,
) -> QueryResult<usize> {
    diesel::update(
        pa::table
            .filter(pa::gateway.eq(gateway))
            .filter(pa::external_id.eq(external_id)),
    )
    .set((pa::ready.eq(ready), pa::updated_at.eq(now())))
    .execute(conn)
}

/// What a payout run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PayoutReport {
    /// Payouts completed.
    pub paid: usize,
    /// Payouts that failed this time (retried later, or given up).
    pub failed: usize,
}

#[derive(Queryable)]
struct Pending {
    id: i64,
    amount: i64,
    currency: String,
    hold: Option<i64>,
    attempts: i32,
    destination: String,
    ticket: Option<i64>,
}

/// Starts payouts for every balance at or above `minimum` whose payee has a
/// ready payout account, and completes every payout in flight. Each payout
/// is its own step: one that fails (gateway or database) is logged and
/// counted and the others go on. No connection is held while the gateway
/// transfers.
pub fn run(pool: &DbPool, gateway: &dyn PaymentGateway, minimum: i64) -> AppResult<PayoutReport> {
    start_new(&mut *pool.get()?, gateway, minimum)?;
    let pending: Vec<Pending> = po::table
        .inner_join(pa::table.on(pa::id.eq(po::payout_account_id)))
        .filter(po::status.eq("pending"))
        .filter(pa::gateway.eq(gateway.name()))
        .select((
            po::id,
            po::amount,
            po::currency,
            po::hold_transfer_id,
            po::attempts,
            pa::external_id,
            po::ticket_id,
        ))
        .order(po::id)
        .load(&mut *pool.get()?)?;
    let mut report = PayoutReport::default();
    let report_ref = &mut report;
    crate::domain::each_row("run_payouts", pending, |p| {
        complete(pool, gateway, p, report_ref).map(|()| true)
    });
    Ok(report)
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "payout {}", self.id)
    }
}

/// Sends one payout in flight through the gateway (same key on every try)
/// and posts its hold, or counts a failed try and voids the hold after
/// [`MAX_ATTEMPTS`].
fn complete(
    pool: &DbPool,
    gateway: &dyn PaymentGateway,
    p: &Pending,
    report: &mut PayoutReport,
) -> AppResult<()> {
    {
        let key = format!("payout:{}", p.id);
        let group = p
            .ticket
            .map(|t| format!("ticket-{t}"))
            .unwrap_or_else(|| "guildhall-balance".to_owned());
        let sent = gateway.transfer(p.amount, &p.currency, &p.destination, &group, &key);
        let mut conn = pool.get()?;
        let conn = &mut *conn;
        match sent {
            Ok(transfer_id) => {
                let finished = write_tx(conn, |conn| -> AppResult<bool> {
                    let n = diesel::update(po::table.find(p.id).filter(po::status.eq("pending")))
                        .set((
                            po::status.eq("paid"),
                            po::gateway_transfer_id.eq(&transfer_id),
                            po::paid_at.eq(Some(now())),
                        ))
                        .execute(conn)?;
                    if n == 1 {
                        if let Some(hold) = p.hold {
                            ledger::apply(
                                conn,
                                &[NewTransfer {
                                    key: format!("payout:{}:post", p.id),
                                    kind: TransferKind::PostPending,
                                    debit: 0,
                                    credit: 0,
                                    amount: p.amount,
                                    pending_id: Some(hold),
                                    ticket_id: None,
                                    memo: format!("payout {} sent as {transfer_id}", p.id),
                                }],
                            )?;
                        }
                    }
                    Ok(n == 1)
                })?;
                // Another runner may have finished the same payout (same key, same transfer).
                report.paid += usize::from(finished);
            }
            Err(e) => {
                report.failed += 1;
                let attempts = p.attempts + 1;
                tracing::warn!(payout = p.id, attempts, error = %e, "payout transfer failed");
                write_tx(conn, |conn| -> AppResult<()> {
                    let give_up = attempts >= MAX_ATTEMPTS;
                    diesel::update(po::table.find(p.id).filter(po::status.eq("pending")))
                        .set((
                            po::attempts.eq(attempts),
                            po::last_error.eq(Some(format!("{e:#}"))),
                            po::status.eq(if give_up { "failed" } else { "pending" }),
                        ))
                        .execute(conn)?;
                    if give_up {
                        if let Some(hold) = p.hold {
                            ledger::apply(
                                conn,
                                &[NewTransfer {
                                    key: format!("payout:{}:void", p.id),
                                    kind: TransferKind::VoidPending,
                                    debit: 0,
                                    credit: 0,
                                    amount: 0,
                                    pending_id: Some(hold),
                                    ticket_id: None,
                                    memo: format!("payout {} given up", p.id),
                                }],
                            )?;
                        }
                    }
                    Ok(())
                })?;
            }
        }
    }
    Ok(())
}

/// What a payee's account earned per ticket (posted credits: releases) and
/// has not yet been paid or put in flight, oldest ticket first. Credits with
/// no ticket come last under `None`.
pub(crate) fn unpaid_by_ticket(
    conn: &mut DbConnection,
    account_id: i64,
) -> QueryResult<Vec<(Option<i64>, i64)>> {
    use crate::db::schema::ledger_transfers as lt;
    let credits: Vec<(Option<i64>, i64)> = lt::table
        .filter(lt::credit_account_id.eq(account_id))
        .filter(lt::kind.eq(TransferKind::Posted.as_str()))
        .select((lt::ticket_id, lt::amount))
        .load(conn)?;
    let paid: Vec<(Option<i64>, i64)> = po::table
        .filter(po::ledger_account_id.eq(account_id))
        .filter(po::status.eq_any(["pending", "paid"]))
        .select((po::ticket_id, po::amount))
        .load(conn)?;
    // What a handover moved to a maintainer was settled that way.
    let handed: Vec<(Option<i64>, i64)> = lt::table
        .filter(lt::debit_account_id.eq(account_id))
        .filter(lt::kind.eq(TransferKind::Posted.as_str()))
        .filter(lt::transfer_key.like("handover:%"))
        .select((lt::ticket_id, lt::amount))
        .load(conn)?;
    let mut by_ticket = std::collections::BTreeMap::<(bool, i64), i64>::new();
    for (ticket, amount) in credits {
        *by_ticket
            .entry((ticket.is_none(), ticket.unwrap_or(0)))
            .or_default() += amount;
    }
    for (ticket, amount) in paid.into_iter().chain(handed) {
        *by_ticket
            .entry((ticket.is_none(), ticket.unwrap_or(0)))
            .or_default() -= amount;
    }
    Ok(by_ticket
        .into_iter()
        .filter(|(_, unpaid)| *unpaid > 0)
        .map(|((none, t), unpaid)| ((!none).then_some(t), unpaid))
        .collect())
}

/// Starts one payout per ticket the payee earned on and was not yet paid
/// for, once the payee's available balance reaches `minimum`, so that every
/// gateway transfer carries its ticket as `transfer_group`.
fn start_new(conn: &mut DbConnection, gateway: &dyn PaymentGateway, minimum: i64) -> AppResult<()> {
    let candidates: Vec<(i64, String, Option<i64>, String, i64)> = la::table
        .filter(la::kind.eq_any([
            AccountKind::UserPayable.as_str(),
            AccountKind::ProjectRevenue.as_str(),
        ]))
        .filter((la::credits_posted - la::debits_posted - la::debits_pending).ge(minimum.max(1)))
        .filter(la::frozen.eq(false))
        .select((
            la::id,
            la::kind,
            la::owner_id,
            la::currency,
            la::credits_posted - la::debits_posted - la::debits_pending,
        ))
        .load(conn)?;
    for (account_id, kind, owner, currency, available) in candidates {
        let Some(owner) = owner else { continue };
        // A project handed over is paid out to its maintainer of record.
        let (payee_kind, payee) = if kind == AccountKind::UserPayable.as_str() {
            ("user", owner)
        } else {
            match crate::domain::handovers::revenue_payee(conn, owner)? {
                Some(steward) => ("user", steward),
                None => ("project", owner),
            }
        };
        let payout_account: Option<i64> = pa::table
            .filter(pa::payee_kind.eq(payee_kind))
            .filter(pa::payee_id.eq(payee))
            .filter(pa::gateway.eq(gateway.name()))
            .filter(pa::ready.eq(true))
            .select(pa::id)
            .first(conn)
            .optional()?;
        let Some(payout_account) = payout_account else {
            continue;
        };
        let mut left = available;
        for (ticket, unpaid) in unpaid_by_ticket(conn, account_id)? {
            let amount = unpaid.min(left);
            if amount <= 0 {
                break;
            }
            let started = write_tx(conn, |conn| -> AppResult<bool> {
                let inserted = crate::per_backend!(conn, |c| diesel::insert_into(po::table)
                    .values((
                        po::ledger_account_id.eq(account_id),
                        po::payout_account_id.eq(payout_account),
                        po::ticket_id.eq(ticket),
                        po::amount.eq(amount),
                        po::currency.eq(&currency),
                        po::status.eq("pending"),
                        po::created_at.eq(now()),
                    ))
                    .on_conflict_do_nothing()
                    .returning(po::id)
                    .get_result::<i64>(c)
                    .optional())?;
                let Some(id) = inserted else { return Ok(false) };
                let clearing = ledger::clearing_account(conn, gateway.name(), &currency)?;
                let hold = ledger::apply(
                    conn,
                    &[NewTransfer {
                        key: format!("payout:{id}:hold"),
                        kind: TransferKind::Pending,
                        debit: account_id,
                        credit: clearing.id,
                        amount,
                        pending_id: None,
                        ticket_id: ticket,
                        memo: format!("payout {id}"),
                    }],
                )?;
                diesel::update(po::table.find(id))
                    .set(po::hold_transfer_id.eq(Some(hold[0].id)))
                    .execute(conn)?;
                Ok(true)
            });
            match started {
                Ok(true) => left -= amount,
                // Another runner started this one.
                Ok(false) => {}
                // The balance moved meanwhile (a concurrent payout or spend): next run.
                Err(AppError::Conflict { .. }) => break,
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

/// Whether the payee has a payout account with `gateway` that is ready.
pub fn is_ready(conn: &mut DbConnection, payee: Payee, gateway: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        pa::table
            .filter(pa::payee_kind.eq(payee.kind()))
            .filter(pa::payee_id.eq(payee.id()))
            .filter(pa::gateway.eq(gateway))
            .filter(pa::ready.eq(true)),
    ))
    .get_result(conn)
}
