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

mod business;
mod check;
mod split;

pub use check::check;
pub use split::{split, Split};

use crate::db::schema::{ledger_accounts as la, ledger_transfers as lt};
use crate::db::{write_tx, DbConnection};
use crate::error::ErrorCode;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use std::collections::HashMap;

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
    /// What a subscription may still spend of its period's credits
    /// (included upgrades, consulting minutes); the currency names the
    /// unit (see [`CREDIT_UPGRADES`]).
    PlanCredits,
    /// Where a project's plan credits come from and go back to when spent
    /// or expired (may go negative: it issues them).
    CreditIssuer,
    /// Service credit a subscription holds for missed response times,
    /// taken off its next charges (in the project's currency).
    ServiceCredit,
    /// What a project owes its subscribers in service credit (may go
    /// negative: that is the debt, settled as credit is applied or lapses).
    ServiceCreditsOwed,
}

/// Unit of the credit accounts that count included ticket upgrades.
pub const CREDIT_UPGRADES: &str = "x-upgrades";
/// Unit of the credit accounts that count included consulting minutes.
pub const CREDIT_CONSULTING_MINUTES: &str = "x-consulting-minutes";

impl AccountKind {
    /// Stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            AccountKind::UserPayable => "user_payable",
            AccountKind::ProjectRevenue => "project_revenue",
            AccountKind::PlatformRevenue => "platform_revenue",
            AccountKind::TicketEscrow => "ticket_escrow",
            AccountKind::GatewayClearing => "gateway_clearing",
            AccountKind::PlanCredits => "plan_credits",
            AccountKind::CreditIssuer => "credit_issuer",
            AccountKind::ServiceCredit => "service_credit",
            AccountKind::ServiceCreditsOwed => "service_credits_owed",
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
#[derive(Debug, Clone, PartialEq, Eq, Queryable, QueryableByName, Selectable)]
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
                AppError::conflict(ErrorCode::InsufficientFunds, e.to_string())
            }
            LedgerError::Frozen(_) => AppError::conflict(ErrorCode::AccountFrozen, e.to_string()),
            LedgerError::AlreadyResolved(_) => {
                AppError::conflict(ErrorCode::HoldAlreadyResolved, e.to_string())
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
            la::allow_negative.eq(matches!(
                kind,
                AccountKind::GatewayClearing
                    | AccountKind::CreditIssuer
                    | AccountKind::ServiceCreditsOwed
            )),
            la::created_at.eq(crate::domain::now()),
        ))
        .on_conflict_do_nothing()
        .execute(c))?;
    la::table
        .filter(la::code.eq(&code))
        .select(Account::as_select())
        .first(conn)
}

/// An account by id, locked until the transaction ends (PostgreSQL; SQLite
/// has one writer): what it holds is read after any write in flight.
pub fn lock_account(conn: &mut DbConnection, id: i64) -> QueryResult<Account> {
    if let DbConnection::Pg(pg) = conn {
        la::table
            .find(id)
            .select(la::id)
            .for_update()
            .first::<i64>(pg)?;
    }
    get_account(conn, id)
}

/// An account by id.
pub fn get_account(conn: &mut DbConnection, id: i64) -> QueryResult<Account> {
    la::table.find(id).select(Account::as_select()).first(conn)
}

/// The accounts of `kind` that `owner` holds, one per currency, by currency.
pub fn accounts_of(
    conn: &mut DbConnection,
    kind: AccountKind,
    owner: i64,
) -> QueryResult<Vec<Account>> {
    la::table
        .filter(la::kind.eq(kind.as_str()))
        .filter(la::owner_id.eq(owner))
        .select(Account::as_select())
        .order(la::currency)
        .load(conn)
}

/// The transfers touching `owner`'s payable accounts, newest first, ids
/// below `before`; with the ids of those accounts (to tell credits from
/// debits).
pub fn user_transfers(
    conn: &mut DbConnection,
    owner: i64,
    before: Option<i64>,
    limit: i64,
) -> QueryResult<(Vec<i64>, Vec<Transfer>)> {
    use crate::db::schema::ledger_transfers as lt;
    let mine: Vec<i64> = la::table
        .filter(la::kind.eq(AccountKind::UserPayable.as_str()))
        .filter(la::owner_id.eq(owner))
        .select(la::id)
        .load(conn)?;
    let mut q = lt::table
        .filter(
            lt::debit_account_id
                .eq_any(&mine)
                .or(lt::credit_account_id.eq_any(&mine)),
        )
        .select(Transfer::as_select())
        .order(lt::id.desc())
        .limit(limit)
        .into_boxed();
    if let Some(b) = before {
        q = q.filter(lt::id.lt(b));
    }
    let rows = q.load(conn)?;
    Ok((mine, rows))
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

/// One chain in one transaction. PostgreSQL: one call of the chain function
/// ([`apply_pg`]). SQLite: keyed probes for the replay check, the pending
/// transfers and the accounts (`BEGIN IMMEDIATE` already serializes
/// writers); the chain is checked and summed in memory against those rows
/// and written as one UPDATE per touched account plus one INSERT … RETURNING
/// per transfer. Both paths apply the same rules.
fn apply_once(
    conn: &mut DbConnection,
    chain: &[NewTransfer],
) -> Result<Vec<Transfer>, LedgerError> {
    if let DbConnection::Pg(pg) = conn {
        return apply_pg(pg, chain);
    }
    write_tx(conn, |conn| {
        if let Some(done) = existing(conn, chain)? {
            return Ok(done);
        }
        let mut pendings: HashMap<i64, Transfer> = HashMap::new();
        for pid in chain.iter().filter_map(|t| t.pending_id) {
            if let Some(p) = lt::table
                .find(pid)
                .filter(lt::kind.eq(TransferKind::Pending.as_str()))
                .select(Transfer::as_select())
                .first(conn)
                .optional()?
            {
                pendings.insert(p.id, p);
            }
        }
        let mut ids: Vec<i64> = Vec::with_capacity(chain.len() * 2);
        for t in chain {
            if let Some(p) = t.pending_id.and_then(|pid| pendings.get(&pid)) {
                ids.extend([p.debit_account_id, p.credit_account_id]);
            }
            ids.extend([t.debit, t.credit].into_iter().filter(|id| *id != 0));
        }
        ids.sort_unstable();
        ids.dedup();
        let mut accounts = load_accounts(conn, &ids)?;
        let plan = plan_chain(chain, &pendings, &mut accounts)?;
        for (pid, status) in &plan.flips {
            // Only the chain that flips the status goes on (also guards a
            // pending row read before a concurrent post committed).
            let flipped = crate::per_backend!(conn, |c| diesel::update(
                lt::table.find(pid).filter(lt::pending_status.eq("pending"))
            )
            .set(lt::pending_status.eq(status))
            .execute(c))?;
            if flipped == 0 {
                return Err(LedgerError::AlreadyResolved(*pid));
            }
        }
        for (id, d) in &plan.deltas {
            crate::per_backend!(conn, |c| diesel::update(la::table.find(id))
                .set((
                    la::debits_posted.eq(la::debits_posted + d.debits_posted),
                    la::credits_posted.eq(la::credits_posted + d.credits_posted),
                    la::debits_pending.eq(la::debits_pending + d.debits_pending),
                    la::credits_pending.eq(la::credits_pending + d.credits_pending),
                ))
                .execute(c))?;
        }
        let chain_key = chain[0].key.as_str();
        let at = crate::domain::now();
        let mut out = Vec::with_capacity(chain.len());
        for (t, row) in chain.iter().zip(&plan.rows) {
            out.push(crate::per_backend!(conn, |c| {
                diesel::insert_into(lt::table)
                    .values((
                        lt::transfer_key.eq(&t.key),
                        lt::kind.eq(t.kind.as_str()),
                        lt::debit_account_id.eq(row.debit),
                        lt::credit_account_id.eq(row.credit),
                        lt::amount.eq(row.amount),
                        lt::currency.eq(&row.currency),
                        lt::pending_id.eq(t.pending_id),
                        lt::pending_status
                            .eq((t.kind == TransferKind::Pending).then_some("pending")),
                        lt::chain_key.eq(chain_key),
                        lt::ticket_id.eq(t.ticket_id),
                        lt::memo.eq(&t.memo),
                        lt::created_at.eq(at),
                    ))
                    .returning(Transfer::as_returning())
                    .get_result(c)
            })?);
        }
        Ok(out)
    })
}

/// PostgreSQL: the chain in one round trip through `ledger_apply_chain`
/// (migration `ledger_chain_function`, the same rules as the Rust path
/// below). Outside a transaction the call is its own transaction; inside one
/// it runs in a savepoint so a refused chain leaves the caller's work usable.
fn apply_pg(
    pg: &mut diesel::PgConnection,
    chain: &[NewTransfer],
) -> Result<Vec<Transfer>, LedgerError> {
    use diesel::connection::{AnsiTransactionManager, TransactionManager as _};
    use diesel::sql_types::{Array, BigInt, Nullable, Text, Timestamp};
    let keys: Vec<&str> = chain.iter().map(|t| t.key.as_str()).collect();
    let kinds: Vec<&str> = chain.iter().map(|t| t.kind.as_str()).collect();
    let debits: Vec<i64> = chain.iter().map(|t| t.debit).collect();
    let credits: Vec<i64> = chain.iter().map(|t| t.credit).collect();
    let amounts: Vec<i64> = chain.iter().map(|t| t.amount).collect();
    let pending: Vec<Option<i64>> = chain.iter().map(|t| t.pending_id).collect();
    let tickets: Vec<Option<i64>> = chain.iter().map(|t| t.ticket_id).collect();
    let memos: Vec<&str> = chain.iter().map(|t| t.memo.as_str()).collect();
    let now = crate::domain::now();
    let call = |pg: &mut diesel::PgConnection| -> QueryResult<Vec<Transfer>> {
        diesel::sql_query("SELECT * FROM ledger_apply_chain($1, $2, $3, $4, $5, $6, $7, $8, $9)")
            .bind::<Array<Text>, _>(&keys)
            .bind::<Array<Text>, _>(&kinds)
            .bind::<Array<BigInt>, _>(&debits)
            .bind::<Array<BigInt>, _>(&credits)
            .bind::<Array<BigInt>, _>(&amounts)
            .bind::<Array<Nullable<BigInt>>, _>(&pending)
            .bind::<Array<Nullable<BigInt>>, _>(&tickets)
            .bind::<Array<Text>, _>(&memos)
            .bind::<Timestamp, _>(now)
            .load(pg)
    };
    let in_transaction = AnsiTransactionManager::transaction_manager_status_mut(pg)
        .transaction_depth()?
        .is_some();
    let result = if in_transaction {
        pg.transaction(call)
    } else {
        call(pg)
    };
    result.map_err(refusal)
}

/// Turns the chain function's `ledger:<reason>:<detail>` exceptions back
/// into [`LedgerError`]s; other database errors pass through.
fn refusal(e: DieselError) -> LedgerError {
    let DieselError::DatabaseError(_, info) = &e else {
        return LedgerError::Database(e);
    };
    let Some(rest) = info.message().strip_prefix("ledger:") else {
        return LedgerError::Database(e);
    };
    let (reason, detail) = rest.split_once(':').unwrap_or((rest, ""));
    let nums: Vec<i64> = detail
        .split(',')
        .filter_map(|x| x.trim().parse().ok())
        .collect();
    let num = |i: usize| nums.get(i).copied().unwrap_or(0);
    match reason {
        "idempotency_mismatch" => LedgerError::IdempotencyMismatch(detail.to_owned()),
        "insufficient_funds" => LedgerError::InsufficientFunds(num(0)),
        "frozen" => LedgerError::Frozen(num(0)),
        "account_mismatch" => LedgerError::AccountMismatch(num(0), num(1)),
        "pending_not_found" => LedgerError::PendingNotFound(num(0)),
        "already_resolved" => LedgerError::AlreadyResolved(num(0)),
        "exceeds_pending" => LedgerError::ExceedsPending {
            pending: num(0),
            amount: num(1),
            reserved: num(2),
        },
        _ => LedgerError::Invalid(detail.to_owned()),
    }
}

/// The chain's accounts by id (SQLite: `BEGIN IMMEDIATE` has already
/// serialized writers, so what is read here stays true until commit).
fn load_accounts(conn: &mut DbConnection, ids: &[i64]) -> QueryResult<HashMap<i64, Account>> {
    // One probe per id: a fixed-shape statement SQLite keeps prepared
    // (an IN list of varying length is prepared anew each time).
    let mut out = HashMap::with_capacity(ids.len());
    for id in ids {
        if let Some(a) = la::table
            .find(id)
            .select(Account::as_select())
            .first(conn)
            .optional()?
        {
            out.insert(a.id, a);
        }
    }
    Ok(out)
}

/// Summed balance changes of one account.
#[derive(Debug, Default, Clone, Copy)]
struct Delta {
    debits_posted: i64,
    credits_posted: i64,
    debits_pending: i64,
    credits_pending: i64,
}

/// A transfer row to insert.
struct Row {
    debit: i64,
    credit: i64,
    amount: i64,
    currency: String,
}

/// What a valid chain writes.
struct Plan {
    flips: Vec<(i64, &'static str)>,
    deltas: std::collections::BTreeMap<i64, Delta>,
    rows: Vec<Row>,
}

/// Checks every transfer of the chain in order against the (locked)
/// accounts, applying each to the in-memory balances so later transfers see
/// earlier ones, and returns the writes. The first failing transfer decides
/// the error; nothing is written then.
fn plan_chain(
    chain: &[NewTransfer],
    pendings: &HashMap<i64, Transfer>,
    accounts: &mut HashMap<i64, Account>,
) -> Result<Plan, LedgerError> {
    let mut plan = Plan {
        flips: Vec::new(),
        deltas: Default::default(),
        rows: Vec::with_capacity(chain.len()),
    };
    for t in chain {
        match t.kind {
            TransferKind::Posted | TransferKind::Pending => {
                if t.amount <= 0 {
                    return Err(LedgerError::Invalid(format!(
                        "amount must be positive, got {}",
                        t.amount
                    )));
                }
                let d = match (accounts.get(&t.debit), accounts.get(&t.credit)) {
                    (Some(d), Some(c)) if d.currency == c.currency && d.id != c.id => d,
                    _ => return Err(LedgerError::AccountMismatch(t.debit, t.credit)),
                };
                if d.frozen {
                    return Err(LedgerError::Frozen(d.id));
                }
                if !d.allow_negative && d.available() < t.amount {
                    return Err(LedgerError::InsufficientFunds(d.id));
                }
                let currency = d.currency.clone();
                let pending = t.kind == TransferKind::Pending;
                let (dd, cd) = if pending {
                    (
                        Delta {
                            debits_pending: t.amount,
                            ..Delta::default()
                        },
                        Delta {
                            credits_pending: t.amount,
                            ..Delta::default()
                        },
                    )
                } else {
                    (
                        Delta {
                            debits_posted: t.amount,
                            ..Delta::default()
                        },
                        Delta {
                            credits_posted: t.amount,
                            ..Delta::default()
                        },
                    )
                };
                change(accounts, &mut plan, t.debit, dd);
                change(accounts, &mut plan, t.credit, cd);
                plan.rows.push(Row {
                    debit: t.debit,
                    credit: t.credit,
                    amount: t.amount,
                    currency,
                });
            }
            TransferKind::PostPending | TransferKind::VoidPending => {
                let pid = t
                    .pending_id
                    .ok_or_else(|| LedgerError::Invalid("post and void need pending_id".into()))?;
                let p = pendings
                    .get(&pid)
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
                if p.pending_status.as_deref() != Some("pending")
                    || plan.flips.iter().any(|(f, _)| *f == pid)
                {
                    return Err(LedgerError::AlreadyResolved(pid));
                }
                plan.flips
                    .push((pid, if post { "posted" } else { "voided" }));
                let (dd, cd) = if post {
                    let frozen = accounts.get(&p.debit_account_id).is_some_and(|a| a.frozen);
                    if frozen {
                        return Err(LedgerError::Frozen(p.debit_account_id));
                    }
                    (
                        Delta {
                            debits_pending: -p.amount,
                            debits_posted: amount,
                            ..Delta::default()
                        },
                        Delta {
                            credits_pending: -p.amount,
                            credits_posted: amount,
                            ..Delta::default()
                        },
                    )
                } else {
                    (
                        Delta {
                            debits_pending: -p.amount,
                            ..Delta::default()
                        },
                        Delta {
                            credits_pending: -p.amount,
                            ..Delta::default()
                        },
                    )
                };
                change(accounts, &mut plan, p.debit_account_id, dd);
                change(accounts, &mut plan, p.credit_account_id, cd);
                plan.rows.push(Row {
                    debit: p.debit_account_id,
                    credit: p.credit_account_id,
                    amount,
                    currency: p.currency.clone(),
                });
            }
        }
    }
    Ok(plan)
}

/// Adds `d` to the in-memory account and to the plan's summed deltas.
fn change(accounts: &mut HashMap<i64, Account>, plan: &mut Plan, id: i64, d: Delta) {
    if let Some(a) = accounts.get_mut(&id) {
        a.debits_posted += d.debits_posted;
        a.credits_posted += d.credits_posted;
        a.debits_pending += d.debits_pending;
        a.credits_pending += d.credits_pending;
    }
    let sum = plan.deltas.entry(id).or_default();
    sum.debits_posted += d.debits_posted;
    sum.credits_posted += d.credits_posted;
    sum.debits_pending += d.debits_pending;
    sum.credits_pending += d.credits_pending;
}

/// The chain's transfers if every key exists with the same content; an
/// error if any key exists with other content, or only some exist.
fn existing(
    conn: &mut DbConnection,
    chain: &[NewTransfer],
) -> Result<Option<Vec<Transfer>>, LedgerError> {
    // One probe per key: a fixed-shape statement the connection keeps
    // prepared, and an index probe whatever the statistics say.
    let mut rows: HashMap<String, Transfer> = HashMap::with_capacity(chain.len());
    for t in chain {
        if let Some(r) = lt::table
            .filter(lt::transfer_key.eq(&t.key))
            .select(Transfer::as_select())
            .first(conn)
            .optional()?
        {
            rows.insert(r.transfer_key.clone(), r);
        }
    }
    if rows.is_empty() {
        return Ok(None);
    }
    let mut found = Vec::with_capacity(chain.len());
    for t in chain {
        match rows.get(&t.key) {
            Some(row) if same(row, t) => found.push(row.clone()),
            Some(_) => return Err(LedgerError::IdempotencyMismatch(t.key.clone())),
            None => return Err(LedgerError::IdempotencyMismatch(chain[0].key.clone())),
        }
    }
    Ok(Some(found))
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
