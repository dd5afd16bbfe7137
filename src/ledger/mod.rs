//! The double-entry ledger, modelled on TigerBeetle's accounts and transfers.
//!
//! * An **account** keeps four running sums in minor units: debits and
//!   credits, posted and pending. Its balance is `credits − debits`; what it
//!   can still spend is `credits_posted − debits_posted − debits_pending`.
//!   Accounts may not go below zero unless they allow it (the gateway
//!   clearing accounts, through which outside money enters, do).
//! * A **transfer** debits one account and credits another by a positive
//!   amount in one currency. Every transfer carries a client-supplied unique
//!   key: presenting a key again with the same content returns the original
//!   transfer; with other content it is an error.
//! * A **pending** transfer reserves the amount (an escrow hold); later it is
//!   **posted** — in full or in part, the rest returning — or **voided**, each
//!   at most once (a unique index on `pending_id` makes that a database fact).
//! * Transfers are applied as **linked chains**: all of a chain or none, in
//!   one write transaction, with the account sums updated by conditional
//!   UPDATEs in the same transaction as the transfer rows.
//!
//! [`check`] verifies every invariant; `guildhall ledger check` runs it.

mod check;
mod split;

pub use check::check;
pub use split::{split, Split};

use crate::db::schema::{ledger_accounts as la, ledger_transfers as lt};
use crate::db::{write_tx, DbConnection};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

/// What an account is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccountKind {
    /// What the platform owes a user (helpers' earnings, refunds).
    UserPayable,
    /// A project's commission income.
    ProjectRevenue,
    /// The platform's fee income.
    PlatformRevenue,
    /// Money held for one ticket until release or refund.
    TicketEscrow,
    /// The mirror of money inside a payment gateway (may go negative).
    GatewayClearing,
}

impl AccountKind {
    /// Stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            AccountKind::UserPayable => "user_payable",
            AccountKind::ProjectRevenue => "project_revenue",
            AccountKind::PlatformRevenue => "platform_revenue",
            AccountKind::TicketEscrow => "ticket_escrow",
            AccountKind::GatewayClearing => "gateway_clearing",
        }
    }
}

/// A row of `ledger_accounts`.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = la)]
pub struct Account {
    /// Id.
    pub id: i64,
    /// Unique name, e.g. `user_payable:12:usd`.
    pub code: String,
    /// [`AccountKind`] as stored.
    pub kind: String,
    /// User, project, ticket — or none (platform, clearing).
    pub owner_id: Option<i64>,
    /// ISO 4217, lower case.
    pub currency: String,
    /// May go below zero.
    pub allow_negative: bool,
    /// Posted debits.
    pub debits_posted: i64,
    /// Posted credits.
    pub credits_posted: i64,
    /// Reserved (pending) debits.
    pub debits_pending: i64,
    /// Reserved (pending) credits.
    pub credits_pending: i64,
    /// No debits while frozen (a disputed payment).
    pub frozen: bool,
    /// Created.
    pub created_at: NaiveDateTime,
}

impl Account {
    /// Posted balance: credits − debits.
    pub fn balance(&self) -> i64 {
        self.credits_posted - self.debits_posted
    }
    /// What can still be debited: posted balance minus reserved debits.
    pub fn available(&self) -> i64 {
        self.credits_posted - self.debits_posted - self.debits_pending
    }
}

/// What a transfer does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferKind {
    /// Moves money now.
    Posted,
    /// Reserves money (a hold) until posted or voided.
    Pending,
    /// Posts a pending transfer, in full or in part.
    PostPending,
    /// Releases a pending transfer.
    VoidPending,
}

impl TransferKind {
    /// Stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            TransferKind::Posted => "posted",
            TransferKind::Pending => "pending",
            TransferKind::PostPending => "post_pending",
            TransferKind::VoidPending => "void_pending",
        }
    }
}

/// A transfer to apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTransfer {
    /// Client-supplied unique key (idempotency).
    pub key: String,
    /// What it does.
    pub kind: TransferKind,
    /// Debited account; for post/void, must be the pending transfer's (or 0 to take it from there).
    pub debit: i64,
    /// Credited account; as for `debit`.
    pub credit: i64,
    /// Minor units, > 0. For post: ≤ the pending amount. For void: ignored (the pending amount).
    pub amount: i64,
    /// The pending transfer a post or void resolves.
    pub pending_id: Option<i64>,
    /// The ticket it concerns.
    pub ticket_id: Option<i64>,
    /// Free text for statements.
    pub memo: String,
}

/// A row of `ledger_transfers`.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = lt)]
pub struct Transfer {
    /// Id.
    pub id: i64,
    /// Client key.
    pub transfer_key: String,
    /// [`TransferKind`] as stored.
    pub kind: String,
    /// Debited account.
    pub debit_account_id: i64,
    /// Credited account.
    pub credit_account_id: i64,
    /// Minor units.
    pub amount: i64,
    /// Currency.
    pub currency: String,
    /// For post/void: the pending transfer.
    pub pending_id: Option<i64>,
    /// For pending transfers: `pending`, `posted` or `voided`.
    pub pending_status: Option<String>,
    /// The chain it was applied with (the first transfer's key).
    pub chain_key: Option<String>,
    /// The ticket it concerns.
    pub ticket_id: Option<i64>,
    /// Free text.
    pub memo: String,
    /// When.
    pub created_at: NaiveDateTime,
}

/// Why a chain was refused. Nothing of a refused chain is written.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// Amount not positive, or a chain without transfers.
    #[error("invalid transfer: {0}")]
    Invalid(String),
    /// The key was used before for a different transfer.
    #[error("transfer key {0} was already used for a different transfer")]
    IdempotencyMismatch(String),
    /// The debit would take an account below zero.
    #[error("account {0} has insufficient funds")]
    InsufficientFunds(i64),
    /// The account is frozen (disputed payment).
    #[error("account {0} is frozen")]
    Frozen(i64),
    /// Debit and credit accounts are in different currencies, or unknown.
    #[error(
        "accounts {0} and {1} cannot transfer to each other (missing or different currencies)"
    )]
    AccountMismatch(i64, i64),
    /// No such pending transfer.
    #[error("pending transfer {0} not found")]
    PendingNotFound(i64),
    /// The pending transfer was already posted or voided.
    #[error("pending transfer {0} was already posted or voided")]
    AlreadyResolved(i64),
    /// Posting more than was reserved.
    #[error("cannot post {amount} from pending transfer {pending} of {reserved}")]
    ExceedsPending {
        /// The pending transfer.
        pending: i64,
        /// Asked.
        amount: i64,
        /// Reserved.
        reserved: i64,
    },
    /// The database failed.
    #[error(transparent)]
    Database(#[from] DieselError),
}

impl From<LedgerError> for crate::error::AppError {
    fn from(e: LedgerError) -> Self {
        use crate::error::AppError;
        match e {
            LedgerError::Invalid(m) => AppError::field("amount", m),
            LedgerError::IdempotencyMismatch(_) => {
                AppError::Validation(vec![crate::error::FieldError::new(
                    "idempotency_key",
                    "idempotency_mismatch: this key was used with a different request",
                )])
            }
            LedgerError::InsufficientFunds(_) => {
                AppError::conflict("insufficient_funds", e.to_string())
            }
            LedgerError::Frozen(_) => AppError::conflict("account_frozen", e.to_string()),
            LedgerError::AlreadyResolved(_) => {
                AppError::conflict("hold_already_resolved", e.to_string())
            }
            LedgerError::AccountMismatch(..)
            | LedgerError::PendingNotFound(_)
            | LedgerError::ExceedsPending { .. } => AppError::internal(e),
            LedgerError::Database(d) => d.into(),
        }
    }
}

/// The code of an account: kind, owner and currency.
pub fn account_code(kind: AccountKind, owner: Option<i64>, currency: &str) -> String {
    match owner {
        Some(o) => format!("{}:{o}:{currency}", kind.as_str()),
        None => format!("{}:{currency}", kind.as_str()),
    }
}

/// The account of `kind` for `owner` in `currency`, created on first use.
pub fn account(
    conn: &mut DbConnection,
    kind: AccountKind,
    owner: Option<i64>,
    currency: &str,
) -> QueryResult<Account> {
    account_with_code(
        conn,
        &account_code(kind, owner, currency),
        kind,
        owner,
        currency,
    )
}

/// The clearing account of a payment gateway in `currency`, created on first use.
pub fn clearing_account(
    conn: &mut DbConnection,
    gateway: &str,
    currency: &str,
) -> QueryResult<Account> {
    let code = format!(
        "{}:{gateway}:{currency}",
        AccountKind::GatewayClearing.as_str()
    );
    account_with_code(conn, &code, AccountKind::GatewayClearing, None, currency)
}

fn account_with_code(
    conn: &mut DbConnection,
    code: &str,
    kind: AccountKind,
    owner: Option<i64>,
    currency: &str,
) -> QueryResult<Account> {
    if let Some(a) = la::table
        .filter(la::code.eq(&code))
        .select(Account::as_select())
        .first(conn)
        .optional()?
    {
        return Ok(a);
    }
    crate::per_backend!(conn, |c| diesel::insert_into(la::table)
        .values((
            la::code.eq(code),
            la::kind.eq(kind.as_str()),
            la::owner_id.eq(owner),
            la::currency.eq(currency),
            la::allow_negative.eq(kind == AccountKind::GatewayClearing),
            la::created_at.eq(crate::domain::now()),
        ))
        .on_conflict_do_nothing()
        .execute(c))?;
    la::table
        .filter(la::code.eq(&code))
        .select(Account::as_select())
        .first(conn)
}

/// An account by id.
pub fn get_account(conn: &mut DbConnection, id: i64) -> QueryResult<Account> {
    la::table.find(id).select(Account::as_select()).first(conn)
}

/// Freezes or unfreezes an account (no debits while frozen).
pub fn set_frozen(conn: &mut DbConnection, id: i64, frozen: bool) -> QueryResult<usize> {
    diesel::update(la::table.find(id))
        .set(la::frozen.eq(frozen))
        .execute(conn)
}

/// Applies a linked chain: all transfers or none. Keys seen before return
/// their original transfers (when the content matches).
pub fn apply(conn: &mut DbConnection, chain: &[NewTransfer]) -> Result<Vec<Transfer>, LedgerError> {
    if chain.is_empty() {
        return Err(LedgerError::Invalid(
            "a chain needs at least one transfer".into(),
        ));
    }
    match apply_once(conn, chain) {
        // A concurrent request with the same key won the insert: answer as a replay.
        Err(LedgerError::Database(DieselError::DatabaseError(
            DatabaseErrorKind::UniqueViolation,
            _,
        ))) => match existing(conn, chain)? {
            Some(done) => Ok(done),
            None => Err(LedgerError::AlreadyResolved(
                chain.iter().find_map(|t| t.pending_id).unwrap_or(0),
            )),
        },
        other => other,
    }
}

fn apply_once(
    conn: &mut DbConnection,
    chain: &[NewTransfer],
) -> Result<Vec<Transfer>, LedgerError> {
    write_tx(conn, |conn| {
        if let Some(done) = existing(conn, chain)? {
            return Ok(done);
        }
        lock_accounts(conn, chain)?;
        let chain_key = chain[0].key.clone();
        let mut out = Vec::with_capacity(chain.len());
        for t in chain {
            out.push(apply_one(conn, t, &chain_key)?);
        }
        Ok(out)
    })
}

/// On PostgreSQL, locks every account the chain touches in id order before
/// changing any, so chains crossing the same accounts in opposite directions
/// wait for each other instead of deadlocking. (SQLite's `BEGIN IMMEDIATE`
/// already serializes writers.)
fn lock_accounts(conn: &mut DbConnection, chain: &[NewTransfer]) -> Result<(), LedgerError> {
    let DbConnection::Pg(pg) = conn else {
        return Ok(());
    };
    let mut ids: Vec<i64> = Vec::with_capacity(chain.len() * 2);
    for t in chain {
        if let Some(pid) = t.pending_id {
            let accounts: Option<(i64, i64)> = lt::table
                .find(pid)
                .select((lt::debit_account_id, lt::credit_account_id))
                .first(pg)
                .optional()?;
            ids.extend(accounts.map(|(d, c)| [d, c]).into_iter().flatten());
        }
        ids.extend([t.debit, t.credit].into_iter().filter(|id| *id != 0));
    }
    ids.sort_unstable();
    ids.dedup();
    la::table
        .filter(la::id.eq_any(&ids))
        .order(la::id)
        .select(la::id)
        .for_update()
        .load::<i64>(pg)?;
    Ok(())
}

/// The chain's transfers if every key exists with the same content; an
/// error if any key exists with other content, or only some exist.
fn existing(
    conn: &mut DbConnection,
    chain: &[NewTransfer],
) -> Result<Option<Vec<Transfer>>, LedgerError> {
    let mut found = Vec::new();
    for t in chain {
        let row: Option<Transfer> = lt::table
            .filter(lt::transfer_key.eq(&t.key))
            .select(Transfer::as_select())
            .first(conn)
            .optional()?;
        match row {
            Some(row) if same(&row, t) => found.push(row),
            Some(_) => return Err(LedgerError::IdempotencyMismatch(t.key.clone())),
            None => {}
        }
    }
    match found.len() {
        0 => Ok(None),
        n if n == chain.len() => Ok(Some(found)),
        _ => Err(LedgerError::IdempotencyMismatch(chain[0].key.clone())),
    }
}

fn same(row: &Transfer, t: &NewTransfer) -> bool {
    let accounts_match = match t.kind {
        TransferKind::PostPending | TransferKind::VoidPending => {
            (t.debit == 0 || t.debit == row.debit_account_id)
                && (t.credit == 0 || t.credit == row.credit_account_id)
        }
        _ => t.debit == row.debit_account_id && t.credit == row.credit_account_id,
    };
    let amount_matches = t.kind == TransferKind::VoidPending || t.amount == row.amount;
    row.kind == t.kind.as_str()
        && accounts_match
        && amount_matches
        && row.pending_id == t.pending_id
}

fn accounts_for(
    conn: &mut DbConnection,
    debit: i64,
    credit: i64,
) -> Result<(Account, Account), LedgerError> {
    let d = la::table
        .find(debit)
        .select(Account::as_select())
        .first(conn)
        .optional()?;
    let c = la::table
        .find(credit)
        .select(Account::as_select())
        .first(conn)
        .optional()?;
    match (d, c) {
        (Some(d), Some(c)) if d.currency == c.currency && d.id != c.id => Ok((d, c)),
        _ => Err(LedgerError::AccountMismatch(debit, credit)),
    }
}

/// Debits `debit` (posted or pending) if the account can afford it; the
/// WHERE clause makes the check and the update one atomic step.
fn debit_account(
    conn: &mut DbConnection,
    account: &Account,
    amount: i64,
    pending: bool,
) -> Result<(), LedgerError> {
    if account.frozen {
        return Err(LedgerError::Frozen(account.id));
    }
    let target = la::table
        .find(account.id)
        .filter(la::frozen.eq(false))
        .filter(
            la::allow_negative
                .eq(true)
                .or((la::credits_posted - la::debits_posted - la::debits_pending).ge(amount)),
        );
    let n = if pending {
        diesel::update(target)
            .set(la::debits_pending.eq(la::debits_pending + amount))
            .execute(conn)?
    } else {
        diesel::update(target)
            .set(la::debits_posted.eq(la::debits_posted + amount))
            .execute(conn)?
    };
    if n == 0 {
        let now = get_account(conn, account.id)?;
        return Err(if now.frozen {
            LedgerError::Frozen(account.id)
        } else {
            LedgerError::InsufficientFunds(account.id)
        });
    }
    Ok(())
}

fn insert_row(
    conn: &mut DbConnection,
    t: &NewTransfer,
    debit: i64,
    credit: i64,
    amount: i64,
    currency: &str,
    chain_key: &str,
) -> Result<Transfer, LedgerError> {
    let id: i64 = diesel::insert_into(lt::table)
        .values((
            lt::transfer_key.eq(&t.key),
            lt::kind.eq(t.kind.as_str()),
            lt::debit_account_id.eq(debit),
            lt::credit_account_id.eq(credit),
            lt::amount.eq(amount),
            lt::currency.eq(currency),
            lt::pending_id.eq(t.pending_id),
            lt::pending_status.eq((t.kind == TransferKind::Pending).then_some("pending")),
            lt::chain_key.eq(chain_key),
            lt::ticket_id.eq(t.ticket_id),
            lt::memo.eq(&t.memo),
            lt::created_at.eq(crate::domain::now()),
        ))
        .returning(lt::id)
        .get_result(conn)?;
    Ok(lt::table
        .find(id)
        .select(Transfer::as_select())
        .first(conn)?)
}

fn apply_one(
    conn: &mut DbConnection,
    t: &NewTransfer,
    chain_key: &str,
) -> Result<Transfer, LedgerError> {
    match t.kind {
        TransferKind::Posted | TransferKind::Pending => {
            if t.amount <= 0 {
                return Err(LedgerError::Invalid(format!(
                    "amount must be positive, got {}",
                    t.amount
                )));
            }
            let (d, c) = accounts_for(conn, t.debit, t.credit)?;
            let pending = t.kind == TransferKind::Pending;
            debit_account(conn, &d, t.amount, pending)?;
            if pending {
                diesel::update(la::table.find(c.id))
                    .set(la::credits_pending.eq(la::credits_pending + t.amount))
                    .execute(conn)?;
            } else {
                diesel::update(la::table.find(c.id))
                    .set(la::credits_posted.eq(la::credits_posted + t.amount))
                    .execute(conn)?;
            }
            insert_row(conn, t, d.id, c.id, t.amount, &d.currency, chain_key)
        }
        TransferKind::PostPending | TransferKind::VoidPending => {
            let pid = t
                .pending_id
                .ok_or_else(|| LedgerError::Invalid("post and void need pending_id".into()))?;
            let p: Transfer = lt::table
                .find(pid)
                .filter(lt::kind.eq(TransferKind::Pending.as_str()))
                .select(Transfer::as_select())
                .first(conn)
                .optional()?
                .ok_or(LedgerError::PendingNotFound(pid))?;
            if (t.debit != 0 && t.debit != p.debit_account_id)
                || (t.credit != 0 && t.credit != p.credit_account_id)
            {
                return Err(LedgerError::AccountMismatch(t.debit, t.credit));
            }
            let post = t.kind == TransferKind::PostPending;
            let amount = if post { t.amount } else { p.amount };
            if post && (amount <= 0 || amount > p.amount) {
                return Err(LedgerError::ExceedsPending {
                    pending: pid,
                    amount,
                    reserved: p.amount,
                });
            }
            // At most once: only the request that flips the status goes on.
            let status = if post { "posted" } else { "voided" };
            let flipped =
                diesel::update(lt::table.find(pid).filter(lt::pending_status.eq("pending")))
                    .set(lt::pending_status.eq(status))
                    .execute(conn)?;
            if flipped == 0 {
                return Err(LedgerError::AlreadyResolved(pid));
            }
            if post {
                let d = get_account(conn, p.debit_account_id)?;
                if d.frozen {
                    return Err(LedgerError::Frozen(d.id));
                }
                diesel::update(la::table.find(p.debit_account_id))
                    .set((
                        la::debits_pending.eq(la::debits_pending - p.amount),
                        la::debits_posted.eq(la::debits_posted + amount),
                    ))
                    .execute(conn)?;
                diesel::update(la::table.find(p.credit_account_id))
                    .set((
                        la::credits_pending.eq(la::credits_pending - p.amount),
                        la::credits_posted.eq(la::credits_posted + amount),
                    ))
                    .execute(conn)?;
            } else {
                diesel::update(la::table.find(p.debit_account_id))
                    .set(la::debits_pending.eq(la::debits_pending - p.amount))
                    .execute(conn)?;
                diesel::update(la::table.find(p.credit_account_id))
                    .set(la::credits_pending.eq(la::credits_pending - p.amount))
                    .execute(conn)?;
            }
            insert_row(
                conn,
                t,
                p.debit_account_id,
                p.credit_account_id,
                amount,
                &p.currency,
                chain_key,
            )
        }
    }
}
