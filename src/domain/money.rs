//! Bounties, escrow release and refunds, on top of the ledger.
//!
//! Funding: a bounty row (`pending_payment`) → the gateway collects → the
//! payment is settled exactly once (`settle_payment`): gateway clearing →
//! ticket escrow, the bounty `funded`, the ticket's `paid_amount` raised.
//! Accepting a resolution releases the whole escrow in one linked chain,
//! split helper / project / platform. Cancelling or closing without a
//! resolution refunds every funded bounty back through the gateway's
//! clearing account.

use crate::db::schema::{bounties, projects, releases, tickets};
use crate::db::{write_tx, DbConnection, DbPool};
use crate::domain::now;
use crate::domain::tickets::{self as ticket_domain, Status, Ticket};
use crate::error::ErrorCode;
use crate::error::{AppError, AppResult};
use crate::ledger::{self, AccountKind, NewTransfer, TransferKind};
use crate::payments::{Payment, PaymentEvent, PaymentGateway, PaymentRequest, PaymentStatus};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use guildhall_jobs::BackgroundJob as _;

/// Smallest bounty, minor units.
pub const MIN_BOUNTY: i64 = 100;
/// Largest bounty, minor units.
pub const MAX_BOUNTY: i64 = 10_000_000;

/// A row of `bounties`.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = bounties)]
pub struct Bounty {
    /// Id.
    pub id: i64,
    /// Ticket.
    pub ticket_id: i64,
    /// Who pays.
    pub backer_id: i64,
    /// Minor units.
    pub amount: i64,
    /// Currency.
    pub currency: String,
    /// `pending_payment`, `funded`, `released`, `refunded` or `failed`. A
    /// partly refunded bounty stays `funded` with `refunded_amount` set.
    pub status: String,
    /// Gateway name.
    pub gateway: String,
    /// Gateway payment id.
    pub payment_id: Option<String>,
    /// Created.
    pub created_at: NaiveDateTime,
    /// Funded.
    pub funded_at: Option<NaiveDateTime>,
    /// Released or refunded.
    pub settled_at: Option<NaiveDateTime>,
    /// The accepted bid this funds, if any.
    pub bid_id: Option<i64>,
    /// When an unspent bounty goes back to its backer.
    pub expires_at: Option<NaiveDateTime>,
    /// The gateway's refund id, once the money went back.
    pub refund_id: Option<String>,
    /// What was refunded of it so far (partial refunds), minor units.
    pub refunded_amount: i64,
    /// A dispute of its payment: `open`, `won` or `lost`.
    pub dispute_status: Option<String>,
    /// The disputed amount, minor units.
    pub disputed_amount: i64,
}

fn escrow(conn: &mut DbConnection, ticket_id: i64, currency: &str) -> QueryResult<ledger::Account> {
    ledger::account(conn, AccountKind::TicketEscrow, Some(ticket_id), currency)
}

/// The bounty `backer` made with the request keyed `request_key`, if any.
pub(crate) fn bounty_by_request(
    conn: &mut DbConnection,
    backer: i64,
    request_key: Option<&str>,
) -> QueryResult<Option<Bounty>> {
    let Some(key) = request_key else {
        return Ok(None);
    };
    bounties::table
        .filter(bounties::backer_id.eq(backer))
        .filter(bounties::request_key.eq(key))
        .select(Bounty::as_select())
        .first(conn)
        .optional()
}

/// A request key that made another bounty than this request asks for.
pub(crate) fn key_reused() -> AppError {
    AppError::field(
        "Idempotency-Key",
        "idempotency_mismatch: this key was used with a different request",
    )
}

/// Creates a bounty on a ticket the caller can see and collects the money.
/// With a gateway that settles at once (the sandbox) it is funded on return.
/// `request_key` (the request's `Idempotency-Key`) makes a retry of a
/// request that died find the bounty it made and carry on with the same
/// payment, never pay twice. No database connection is held while the
/// gateway is asked.
#[allow(clippy::too_many_arguments)]
pub fn fund_bounty(
    pool: &DbPool,
    gateway: &dyn PaymentGateway,
    ticket_id: i64,
    backer: i64,
    amount: i64,
    currency: &str,
    expires_in_days: Option<i64>,
    request_key: Option<&str>,
) -> AppResult<(Bounty, Payment)> {
    if expires_in_days.is_some_and(|d| !(1..=365).contains(&d)) {
        return Err(AppError::field(
            "expires_in_days",
            "must be between 1 and 365",
        ));
    }
    let id = {
        let mut conn = pool.get()?;
        let conn = &mut *conn;
        match bounty_by_request(conn, backer, request_key)? {
            Some(b)
                if b.ticket_id == ticket_id
                    && b.amount == amount
                    && b.currency == currency
                    && b.bid_id.is_none() =>
            {
                // A retry is refused too once the project lost its proof.
                let project: i64 = crate::db::schema::tickets::table
                    .find(b.ticket_id)
                    .select(crate::db::schema::tickets::project_id)
                    .first(conn)?;
                crate::domain::projects::require_verified_for_live(
                    conn,
                    !gateway.test_money(),
                    project,
                )?;
                b.id
            }
            Some(_) => return Err(key_reused()),
            None => create_bounty_row(
                conn,
                gateway,
                ticket_id,
                backer,
                amount,
                currency,
                expires_in_days,
                request_key,
            )?,
        }
    };
    collect_payment(
        pool,
        gateway,
        id,
        format!("Bounty on ticket #{ticket_id}"),
        vec![
            ("ticket_id".into(), ticket_id.to_string()),
            ("bounty_id".into(), id.to_string()),
        ],
    )
    .map_err(|e| match e {
        CollectError::Gateway(e) => {
            tracing::warn!(bounty = id, error = %e, "payment gateway refused a bounty");
            AppError::conflict(ErrorCode::PaymentFailed, "the payment could not be created")
        }
        CollectError::App(e) => e,
    })
}

#[allow(clippy::too_many_arguments)]
fn create_bounty_row(
    conn: &mut DbConnection,
    gateway: &dyn PaymentGateway,
    ticket_id: i64,
    backer: i64,
    amount: i64,
    currency: &str,
    expires_in_days: Option<i64>,
    request_key: Option<&str>,
) -> AppResult<i64> {
    let (t, _) = ticket_domain::load_visible(conn, ticket_id, Some(backer))?;
    crate::domain::projects::require_verified_for_live(conn, !gateway.test_money(), t.project_id)?;
    if !(MIN_BOUNTY..=MAX_BOUNTY).contains(&amount) {
        return Err(AppError::field(
            "amount",
            format!("must be between {MIN_BOUNTY} and {MAX_BOUNTY} minor units"),
        ));
    }
    let project_currency: String = projects::table
        .find(t.project_id)
        .select(projects::currency)
        .first(conn)?;
    if currency != project_currency {
        return Err(AppError::field(
            "currency",
            format!("this project is paid in {project_currency}"),
        ));
    }
    // A first look; settlement checks again under the ticket's lock.
    if !matches!(t.status(), Status::Open | Status::Claimed) {
        return Err(AppError::conflict(
            ErrorCode::TicketNotOpen,
            format!("a {} ticket cannot take a bounty", t.status),
        ));
    }
    let expires_at = match expires_in_days {
        Some(d) => Some(
            chrono::Duration::try_days(d)
                .and_then(|d| now().checked_add_signed(d))
                .ok_or_else(|| AppError::field("expires_in_days", "is out of range"))?,
        ),
        None => None,
    };
    Ok(diesel::insert_into(bounties::table)
        .values((
            bounties::ticket_id.eq(ticket_id),
            bounties::backer_id.eq(backer),
            bounties::amount.eq(amount),
            bounties::currency.eq(currency),
            bounties::status.eq("pending_payment"),
            bounties::gateway.eq(gateway.name()),
            bounties::created_at.eq(now()),
            bounties::expires_at.eq(expires_at),
            bounties::request_key.eq(request_key),
        ))
        .returning(bounties::id)
        .get_result(conn)?)
}

/// Why [`collect_payment`] did not get a payment.
pub enum CollectError {
    /// The gateway refused or failed; the bounty is marked `failed`.
    Gateway(anyhow::Error),
    /// Our own failure.
    App(AppError),
}

impl From<AppError> for CollectError {
    fn from(e: AppError) -> Self {
        CollectError::App(e)
    }
}

impl From<diesel::r2d2::PoolError> for CollectError {
    fn from(e: diesel::r2d2::PoolError) -> Self {
        CollectError::App(e.into())
    }
}

/// Asks the gateway to collect a `pending_payment` bounty (idempotency key
/// `bounty:{id}`, so asking again returns the same payment), records the
/// payment id, and books it into escrow at once when it already succeeded;
/// a refused payment marks the bounty `failed`. A bounty past
/// `pending_payment` is not collected again: its state is returned. No
/// connection is held during the gateway call. Shared by bounties and
/// accepted bids.
pub fn collect_payment(
    pool: &DbPool,
    gateway: &dyn PaymentGateway,
    bounty_id: i64,
    description: String,
    metadata: Vec<(String, String)>,
) -> Result<(Bounty, Payment), CollectError> {
    let b = get_bounty(&mut *pool.get()?, bounty_id).map_err(AppError::from)?;
    if b.status != "pending_payment" {
        let status = match b.status.as_str() {
            "failed" => PaymentStatus::Failed,
            _ => PaymentStatus::Succeeded,
        };
        let payment = Payment {
            id: b.payment_id.clone().unwrap_or_default(),
            status,
            client_secret: None,
        };
        if status == PaymentStatus::Failed {
            return Err(CollectError::Gateway(anyhow::anyhow!(
                "payment of bounty {bounty_id} failed"
            )));
        }
        return Ok((b, payment));
    }
    let result = gateway.create_payment(&PaymentRequest {
        amount: b.amount,
        currency: b.currency.clone(),
        description,
        metadata,
        idempotency_key: format!("bounty:{bounty_id}"),
    });
    let mut conn = pool.get()?;
    let conn = &mut *conn;
    let payment = match result {
        Ok(p) => p,
        Err(e) => {
            mark_failed(conn, &b)?;
            return Err(CollectError::Gateway(e));
        }
    };
    diesel::update(bounties::table.find(bounty_id))
        .set(bounties::payment_id.eq(&payment.id))
        .execute(conn)
        .map_err(AppError::from)?;
    match payment.status {
        PaymentStatus::Succeeded => {
            settle_payment(conn, gateway.name(), &payment.id)?;
        }
        PaymentStatus::Failed => {
            mark_failed(conn, &b)?;
            return Err(CollectError::Gateway(anyhow::anyhow!(
                "payment {} failed",
                payment.id
            )));
        }
        PaymentStatus::RequiresAction | PaymentStatus::Processing => {}
    }
    let b = get_bounty(conn, bounty_id).map_err(AppError::from)?;
    Ok((b, payment))
}

/// A pending bounty's payment failed: `failed`, and its bid (if any) is
/// open to acceptance again. Returns whether this call marked it.
fn mark_failed(conn: &mut DbConnection, b: &Bounty) -> AppResult<bool> {
    write_tx(conn, |conn| {
        lock_ticket(conn, b.ticket_id)?;
        let n = diesel::update(
            bounties::table
                .find(b.id)
                .filter(bounties::status.eq("pending_payment")),
        )
        .set(bounties::status.eq("failed"))
        .execute(conn)?;
        if let (1, Some(bid)) = (n, b.bid_id) {
            crate::domain::bids::on_payment_failed(conn, bid)?;
        }
        Ok(n == 1)
    })
}

/// Books a succeeded payment into escrow, exactly once however often it is
/// reported (the response of the create call, webhooks, retries); a success
/// reported after a failure for the same payment is booked too. The ticket
/// is re-checked under its row lock: money that arrives for a ticket that
/// can no longer take it (cancelled or closed meanwhile, or a bid whose
/// ticket went to someone else) is booked and refunded at once. An accepted
/// bid's payment assigns the ticket to the bidder now, not before. Returns
/// whether this call did the booking.
pub fn settle_payment(conn: &mut DbConnection, gateway: &str, payment_id: &str) -> AppResult<bool> {
    write_tx(conn, |conn| {
        let Some(b) = bounty_by_payment(conn, gateway, payment_id)? else {
            return Ok(false);
        };
        lock_ticket(conn, b.ticket_id)?;
        let n = diesel::update(
            bounties::table
                .find(b.id)
                .filter(bounties::status.eq_any(["pending_payment", "failed"])),
        )
        .set((
            bounties::status.eq("funded"),
            bounties::funded_at.eq(Some(now())),
        ))
        .execute(conn)?;
        if n == 0 {
            return Ok(false);
        }
        let clearing = ledger::clearing_account(conn, gateway, &b.currency)?;
        let escrow = escrow(conn, b.ticket_id, &b.currency)?;
        ledger::apply(
            conn,
            &[NewTransfer {
                key: format!("bounty:{}:fund", b.id),
                kind: TransferKind::Posted,
                debit: clearing.id,
                credit: escrow.id,
                amount: b.amount,
                pending_id: None,
                ticket_id: Some(b.ticket_id),
                memo: format!("bounty {} funded by user {}", b.id, b.backer_id),
            }],
        )?;
        diesel::update(tickets::table.find(b.ticket_id))
            .set((
                tickets::paid_amount.eq(tickets::paid_amount + b.amount),
                tickets::index_version.eq(tickets::index_version + 1),
            ))
            .execute(conn)?;
        crate::domain::invoices::bounty_paid(conn, &b)?;
        let t = ticket_domain::get(conn, b.ticket_id)?;
        let takes_money = match b.bid_id {
            None => !t.status().is_terminal(),
            Some(bid) => crate::domain::bids::on_paid(conn, &t, bid, b.id, b.backer_id)?,
        };
        if !takes_money {
            tracing::warn!(
                ticket = b.ticket_id,
                bounty = b.id,
                status = %t.status,
                "payment arrived for a ticket that cannot take it; refunding at once"
            );
            let funded = get_bounty(conn, b.id)?;
            // Not disputed money: a freeze of the escrow for another bounty
            // does not keep this one.
            with_thawed_escrow(conn, &funded, |conn| refund_bounty(conn, &funded))?;
        }
        Ok(true)
    })
}

fn get_bounty(conn: &mut DbConnection, id: i64) -> QueryResult<Bounty> {
    bounties::table
        .find(id)
        .select(Bounty::as_select())
        .first(conn)
}

/// What a release paid out.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = releases)]
pub struct Release {
    /// Ticket.
    pub ticket_id: i64,
    /// The money round of the ticket it closed (1, then one more for each
    /// reopening of a closed ticket).
    pub round: i32,
    /// The resolving helper.
    pub helper_id: i64,
    /// Project.
    pub project_id: i64,
    /// Whole amount released.
    pub amount: i64,
    /// Currency.
    pub currency: String,
    /// Helper's part.
    pub helper_amount: i64,
    /// Project's commission.
    pub project_amount: i64,
    /// Platform's fee.
    pub platform_amount: i64,
    /// Platform rate used.
    pub platform_bps: i32,
    /// Commission rate used.
    pub commission_bps: i32,
    /// When.
    pub created_at: NaiveDateTime,
}

/// Releases a ticket's escrow to its resolving helper, project and platform
/// in one linked chain, keyed by the ticket's current money round (a ticket
/// reopened after a release is paid again in its next round); call inside
/// the accept transition's transaction. Does nothing when the escrow is
/// empty. The rates are recorded; `paid_amount` drops to what the escrow
/// still holds (nothing).
pub fn release(
    conn: &mut DbConnection,
    t: &Ticket,
    platform_bps: i32,
) -> AppResult<Option<Release>> {
    let (commission_bps, currency): (i32, String) = projects::table
        .find(t.project_id)
        .select((projects::commission_bps, projects::currency))
        .first(conn)?;
    let round: i32 = tickets::table
        .find(t.id)
        .select(tickets::round)
        .first(conn)?;
    let escrow = escrow(conn, t.id, &currency)?;
    let amount = escrow.available();
    if amount <= 0 {
        return Ok(None);
    }
    let helper = t.resolved_by.ok_or_else(|| {
        AppError::conflict(
            ErrorCode::NoResolver,
            "the ticket has no resolving helper to pay",
        )
    })?;
    if helper == t.requester_id {
        return Err(AppError::conflict(
            ErrorCode::ResolverIsRequester,
            "the requester cannot be paid for their own ticket",
        ));
    }
    let split = ledger::split(amount, platform_bps, commission_bps).ok_or_else(|| {
        AppError::internal(anyhow::anyhow!(
            "invalid fee rates {platform_bps}/{commission_bps}"
        ))
    })?;
    let helper_acct = ledger::account(conn, AccountKind::UserPayable, Some(helper), &currency)?;
    let project_acct = ledger::account(
        conn,
        AccountKind::ProjectRevenue,
        Some(t.project_id),
        &currency,
    )?;
    let platform_acct = ledger::account(conn, AccountKind::PlatformRevenue, None, &currency)?;
    let chain: Vec<NewTransfer> = [
        ("helper", helper_acct.id, split.helper),
        ("project", project_acct.id, split.project),
        ("platform", platform_acct.id, split.platform),
    ]
    .into_iter()
    .filter(|(_, _, part)| *part > 0)
    .map(|(who, account, part)| NewTransfer {
        // Round 1 keeps the key releases always had.
        key: if round == 1 {
            format!("ticket:{}:release:{who}", t.id)
        } else {
            format!("ticket:{}:round:{round}:release:{who}", t.id)
        },
        kind: TransferKind::Posted,
        debit: escrow.id,
        credit: account,
        amount: part,
        pending_id: None,
        ticket_id: Some(t.id),
        memo: format!("release of ticket {} (round {round}) to the {who}", t.id),
    })
    .collect();
    ledger::apply(conn, &chain)?;
    diesel::insert_into(releases::table)
        .values((
            releases::ticket_id.eq(t.id),
            releases::round.eq(round),
            releases::helper_id.eq(helper),
            releases::project_id.eq(t.project_id),
            releases::amount.eq(amount),
            releases::currency.eq(&currency),
            releases::helper_amount.eq(split.helper),
            releases::project_amount.eq(split.project),
            releases::platform_amount.eq(split.platform),
            releases::platform_bps.eq(platform_bps),
            releases::commission_bps.eq(commission_bps),
            releases::created_at.eq(now()),
        ))
        .execute(conn)?;
    diesel::update(tickets::table.find(t.id))
        .set(tickets::paid_amount.eq(tickets::paid_amount - amount))
        .execute(conn)?;
    diesel::update(
        bounties::table
            .filter(bounties::ticket_id.eq(t.id))
            .filter(bounties::status.eq("funded")),
    )
    .set((
        bounties::status.eq("released"),
        bounties::settled_at.eq(Some(now())),
    ))
    .execute(conn)?;
    Ok(Some(
        releases::table
            .filter(releases::ticket_id.eq(t.id))
            .filter(releases::round.eq(round))
            .select(Release::as_select())
            .first(conn)?,
    ))
}

/// Refunds what is left of one funded bounty: escrow → its gateway's
/// clearing account, once, and queues the [`crate::job_payloads::RefundPayment`]
/// job that returns the money through the gateway (same transaction: no
/// refund is booked without being sent, none is sent without being booked).
/// Call inside a transaction. Returns whether this call refunded it.
pub fn refund_bounty(conn: &mut DbConnection, b: &Bounty) -> AppResult<bool> {
    let remaining = b.amount - b.refunded_amount;
    let refunded = book_refund(conn, b, remaining)?;
    if refunded {
        crate::job_payloads::RefundPayment {
            bounty_id: b.id,
            amount: Some(remaining),
        }
        .enqueue(conn)?;
    }
    Ok(refunded)
}

/// Takes the ticket's row lock (PostgreSQL) before any bounty or ledger
/// row, the order every ticket transition uses, so a webhook or job moving
/// a bounty never deadlocks with an accept or close of its ticket. (SQLite's
/// `BEGIN IMMEDIATE` already serializes writers.)
fn lock_ticket(conn: &mut DbConnection, ticket_id: i64) -> QueryResult<()> {
    if let DbConnection::Pg(pg) = conn {
        tickets::table
            .find(ticket_id)
            .select(tickets::id)
            .for_update()
            .first::<i64>(pg)?;
    }
    Ok(())
}

/// Records a refund the gateway has made on request of the job.
pub fn record_gateway_refund(
    conn: &mut DbConnection,
    bounty_id: i64,
    refund_id: &str,
) -> QueryResult<usize> {
    diesel::update(
        bounties::table
            .find(bounty_id)
            .filter(bounties::refund_id.is_null()),
    )
    .set(bounties::refund_id.eq(refund_id))
    .execute(conn)
}

/// Books `amount` of a funded bounty's money going back to its payer
/// (escrow → clearing), in the ledger only: the gateway has moved, or will
/// move, the money. The bounty's refunded total grows by `amount` and it is
/// `refunded` once nothing of it is left; `paid_amount` follows. Refuses
/// more than is left. Returns whether this call booked anything.
fn book_refund(conn: &mut DbConnection, b: &Bounty, amount: i64) -> AppResult<bool> {
    if amount <= 0 {
        return Ok(false);
    }
    lock_ticket(conn, b.ticket_id)?;
    // Re-read under the lock: the conditional update below applies only to
    // the refunded total this decision was made on.
    let current = get_bounty(conn, b.id)?;
    if current.status != "funded" || current.refunded_amount != b.refunded_amount {
        return Ok(false);
    }
    let total = b.refunded_amount + amount;
    if total > b.amount {
        return Err(AppError::internal(anyhow::anyhow!(
            "refund of {amount} exceeds what is left of bounty {}",
            b.id
        )));
    }
    let done = total == b.amount;
    let n = diesel::update(
        bounties::table
            .find(b.id)
            .filter(bounties::status.eq("funded"))
            .filter(bounties::refunded_amount.eq(b.refunded_amount)),
    )
    .set((
        bounties::refunded_amount.eq(total),
        bounties::status.eq(if done { "refunded" } else { "funded" }),
        bounties::settled_at.eq(done.then(now)),
    ))
    .execute(conn)?;
    if n == 0 {
        return Ok(false);
    }
    let clearing = ledger::clearing_account(conn, &b.gateway, &b.currency)?;
    let escrow = escrow(conn, b.ticket_id, &b.currency)?;
    ledger::apply(
        conn,
        &[NewTransfer {
            // The first refund keeps the key refunds always had; each later
            // part is keyed by the refunded total it brings the bounty to.
            key: if b.refunded_amount == 0 && done {
                format!("bounty:{}:refund", b.id)
            } else {
                format!("bounty:{}:refund:{total}", b.id)
            },
            kind: TransferKind::Posted,
            debit: escrow.id,
            credit: clearing.id,
            amount,
            pending_id: None,
            ticket_id: Some(b.ticket_id),
            memo: format!("bounty {} refunded {amount} to user {}", b.id, b.backer_id),
        }],
    )?;
    diesel::update(tickets::table.find(b.ticket_id))
        .set(tickets::paid_amount.eq(tickets::paid_amount - amount))
        .execute(conn)?;
    crate::domain::invoices::bounty_refunded(conn, b, amount, total)?;
    Ok(true)
}

/// Refunds every funded bounty of a ticket (cancelled or closed without a
/// resolution). Call inside the transition's transaction. Returns how many
/// were refunded.
pub fn refund_all(conn: &mut DbConnection, ticket_id: i64) -> AppResult<usize> {
    let funded: Vec<Bounty> = bounties::table
        .filter(bounties::ticket_id.eq(ticket_id))
        .filter(bounties::status.eq("funded"))
        .select(Bounty::as_select())
        .load(conn)?;
    let mut refunded = 0;
    for b in &funded {
        refunded += usize::from(refund_bounty(conn, b)?);
    }
    Ok(refunded)
}

fn bounty_by_payment(
    conn: &mut DbConnection,
    gateway: &str,
    payment_id: &str,
) -> QueryResult<Option<Bounty>> {
    bounties::table
        .filter(bounties::gateway.eq(gateway))
        .filter(bounties::payment_id.eq(payment_id))
        .select(Bounty::as_select())
        .first(conn)
        .optional()
}

/// The bounty of a payment, read again after its ticket's row lock is
/// taken, so an event decides on what no concurrent event can change.
fn locked_bounty_by_payment(
    conn: &mut DbConnection,
    gateway: &str,
    payment_id: &str,
) -> QueryResult<Option<Bounty>> {
    let Some(b) = bounty_by_payment(conn, gateway, payment_id)? else {
        return Ok(None);
    };
    lock_ticket(conn, b.ticket_id)?;
    get_bounty(conn, b.id).map(Some)
}

/// An event about money whose arrival we have not booked yet: refused
/// (503), so the gateway delivers it again once the success is booked.
fn not_yet_funded(b: &Bounty) -> AppError {
    tracing::warn!(
        bounty = b.id,
        "a refund or dispute arrived before the payment's success; asking the gateway to retry"
    );
    AppError::Unavailable
}

/// Runs `f` (a booking of money the gateway has already moved, such as a
/// refund made at the gateway) with the bounty's escrow thawed if a dispute
/// froze it, and freezes it again after.
fn with_thawed_escrow<T>(
    conn: &mut DbConnection,
    b: &Bounty,
    f: impl FnOnce(&mut DbConnection) -> AppResult<T>,
) -> AppResult<T> {
    let escrow = escrow(conn, b.ticket_id, &b.currency)?;
    if escrow.frozen {
        ledger::set_frozen(conn, escrow.id, false)?;
    }
    let result = f(conn);
    if escrow.frozen {
        ledger::set_frozen(conn, escrow.id, true)?;
    }
    result
}

/// A payment failed: a pending bounty is marked `failed`, and the bid it
/// paid for (if any) is open to acceptance again. A later success for the
/// same payment is still booked ([`settle_payment`]).
pub fn payment_failed(conn: &mut DbConnection, gateway: &str, payment_id: &str) -> AppResult<bool> {
    match bounty_by_payment(conn, gateway, payment_id)? {
        Some(b) => mark_failed(conn, &b),
        None => Ok(false),
    }
}

/// Applies a verified payment-gateway event exactly once per event id: the
/// event row and its effects commit together, so a failed application is
/// retried by the gateway and a repeated delivery changes nothing. Returns
/// what it did.
pub fn apply_payment_event(
    conn: &mut DbConnection,
    gateway: &str,
    event_id: &str,
    event_type: &str,
    event: &PaymentEvent,
) -> AppResult<String> {
    use crate::db::schema::stripe_events as se;
    write_tx(conn, |conn| {
        let fresh = crate::per_backend!(conn, |c| diesel::insert_into(se::table)
            .values((
                se::event_id.eq(event_id),
                se::event_type.eq(event_type),
                se::outcome.eq("applying"),
                se::received_at.eq(now()),
            ))
            .on_conflict_do_nothing()
            .execute(c))?;
        if fresh == 0 {
            return Ok("duplicate delivery; already applied".to_owned());
        }
        let outcome = apply_event(conn, gateway, event)?;
        diesel::update(se::table.filter(se::event_id.eq(event_id)))
            .set(se::outcome.eq(outcome))
            .execute(conn)?;
        Ok(outcome.to_owned())
    })
}

fn apply_event(
    conn: &mut DbConnection,
    gateway: &str,
    event: &PaymentEvent,
) -> AppResult<&'static str> {
    Ok(match event {
        PaymentEvent::Succeeded { payment_id } => {
            if settle_payment(conn, gateway, payment_id)? {
                "bounty funded"
            } else if crate::domain::plans::settle_period(conn, gateway, payment_id)? {
                "subscription period paid"
            } else {
                "nothing to fund"
            }
        }
        PaymentEvent::Failed { payment_id } => {
            if payment_failed(conn, gateway, payment_id)? {
                "bounty payment failed"
            } else if crate::domain::plans::period_payment_failed(conn, gateway, payment_id)? {
                "subscription payment failed"
            } else {
                "nothing pending"
            }
        }
        // A refund made at the gateway (dashboard, or ours reported back):
        // the money already went back, so only the ledger follows, by what
        // the refunded total grew since we last booked.
        PaymentEvent::Refunded {
            payment_id,
            total_refunded,
            refund_id,
        } => match locked_bounty_by_payment(conn, gateway, payment_id)? {
            None => crate::domain::plans::gateway_refund_outcome(conn, gateway, payment_id)?,
            Some(b) if matches!(b.status.as_str(), "pending_payment" | "failed") => {
                // Its success has not reached us yet: refuse, so the gateway
                // delivers this again after the success is booked.
                return Err(not_yet_funded(&b));
            }
            Some(b) if b.status == "released" && *total_refunded > b.refunded_amount => {
                tracing::error!(
                    bounty = b.id,
                    ticket = b.ticket_id,
                    "a refund arrived for a bounty already released to its helper; needs review"
                );
                "refund after release; needs review"
            }
            Some(b) => {
                let delta = (*total_refunded).min(b.amount) - b.refunded_amount;
                // The gateway already moved it: a dispute's freeze does not
                // stop the ledger from following.
                if with_thawed_escrow(conn, &b, |conn| book_refund(conn, &b, delta))? {
                    if b.refunded_amount + delta == b.amount {
                        record_gateway_refund(
                            conn,
                            b.id,
                            refund_id.as_deref().unwrap_or("external"),
                        )?;
                        "bounty refunded"
                    } else {
                        "bounty partly refunded"
                    }
                } else {
                    "nothing to refund"
                }
            }
        },
        PaymentEvent::DisputeOpened { payment_id, amount } => {
            match locked_bounty_by_payment(conn, gateway, payment_id)? {
                Some(b) if matches!(b.status.as_str(), "pending_payment" | "failed") => {
                    return Err(not_yet_funded(&b));
                }
                // Its close arrived first: nothing is open any more.
                Some(b) if b.dispute_status.is_some() => "dispute already recorded",
                Some(b) => {
                    diesel::update(bounties::table.find(b.id))
                        .set((
                            bounties::dispute_status.eq(Some("open")),
                            bounties::disputed_amount.eq(amount),
                        ))
                        .execute(conn)?;
                    if b.status == "funded" {
                        let escrow = escrow(conn, b.ticket_id, &b.currency)?;
                        ledger::set_frozen(conn, escrow.id, true)?;
                        tracing::warn!(
                            ticket = b.ticket_id,
                            bounty = b.id,
                            "disputed payment: escrow frozen"
                        );
                        "escrow frozen"
                    } else {
                        // Its money already left the escrow (released or
                        // refunded): nothing here to hold.
                        "dispute recorded; nothing in escrow to freeze"
                    }
                }
                None => crate::domain::plans::gateway_dispute_outcome(conn, gateway, payment_id)?,
            }
        }
        PaymentEvent::DisputeClosed {
            payment_id,
            amount,
            won,
        } => match locked_bounty_by_payment(conn, gateway, payment_id)? {
            Some(b) if matches!(b.status.as_str(), "pending_payment" | "failed") => {
                return Err(not_yet_funded(&b));
            }
            Some(b) => close_dispute(conn, &b, *amount, *won)?,
            None => crate::domain::plans::gateway_dispute_outcome(conn, gateway, payment_id)?,
        },
        PaymentEvent::PayoutAccountUpdated { account_id, ready } => {
            if crate::domain::payouts::set_ready(conn, gateway, account_id, *ready)? == 0 {
                "unknown payout account"
            } else if *ready {
                "payout account ready"
            } else {
                "payout account not ready"
            }
        }
        PaymentEvent::InvoicePaid {
            invoice_id,
            subscription_id,
            our_id,
            payment_id,
            amount_paid,
            credit_lines,
        } => crate::domain::plans::invoice_paid(
            conn,
            gateway,
            invoice_id,
            (subscription_id, *our_id),
            payment_id.as_deref(),
            *amount_paid,
            *credit_lines,
        )?,
        PaymentEvent::InvoicePaymentFailed {
            invoice_id,
            subscription_id,
            our_id,
        } => crate::domain::plans::invoice_payment_failed(
            conn,
            gateway,
            invoice_id,
            (subscription_id, *our_id),
        )?,
        PaymentEvent::SubscriptionUpdated {
            subscription_id,
            cancel_at_period_end,
        } => crate::domain::plans::gateway_subscription_updated(
            conn,
            gateway,
            subscription_id,
            *cancel_at_period_end,
        )?,
        PaymentEvent::SubscriptionEnded { subscription_id } => {
            crate::domain::plans::gateway_subscription_ended(conn, gateway, subscription_id)?
        }
        PaymentEvent::Acknowledged => "acknowledged",
        PaymentEvent::Ignored => "ignored",
    })
}

/// Ends a dispute: won → the money stays; lost → the disputed amount (as
/// much as the bounty still has in escrow) leaves the escrow to the
/// gateway's clearing account and the bounty says `lost`. Either way the
/// escrow thaws once no dispute on the ticket is still open. A close that
/// arrives before its opening is recorded (and the loss booked) all the
/// same, so the late opening changes nothing. A loss on money already
/// released is recorded for review: `ledger check` reports it. Call with
/// the ticket locked.
fn close_dispute(
    conn: &mut DbConnection,
    b: &Bounty,
    amount: i64,
    won: bool,
) -> AppResult<&'static str> {
    let n = diesel::update(
        bounties::table.find(b.id).filter(
            bounties::dispute_status
                .eq("open")
                .or(bounties::dispute_status.is_null()),
        ),
    )
    .set((
        bounties::dispute_status.eq(Some(if won { "won" } else { "lost" })),
        bounties::disputed_amount.eq(amount),
    ))
    .execute(conn)?;
    if n == 0 {
        return Ok("dispute already closed");
    }
    let still_open: i64 = bounties::table
        .filter(bounties::ticket_id.eq(b.ticket_id))
        .filter(bounties::dispute_status.eq("open"))
        .count()
        .get_result(conn)?;
    let escrow = escrow(conn, b.ticket_id, &b.currency)?;
    if still_open == 0 && escrow.frozen {
        ledger::set_frozen(conn, escrow.id, false)?;
    }
    if won {
        return Ok("dispute won; escrow released from the freeze");
    }
    let current = get_bounty(conn, b.id)?;
    if current.status == "released" {
        tracing::error!(
            bounty = b.id,
            ticket = b.ticket_id,
            lost = amount,
            "a dispute was lost on money already released to the helper; needs review"
        );
        return Ok("dispute lost after release; needs review");
    }
    let left = if current.status == "funded" {
        current.amount - current.refunded_amount
    } else {
        0
    };
    let lost = amount.min(left);
    if lost < amount {
        tracing::error!(
            bounty = b.id,
            ticket = b.ticket_id,
            lost = amount,
            in_escrow = left,
            "a lost dispute takes more than the bounty still holds in escrow; needs review"
        );
    }
    if lost > 0 {
        with_thawed_escrow(conn, &current, |conn| book_refund(conn, &current, lost))?;
    }
    Ok("dispute lost; the disputed amount left the escrow")
}

/// Refunds funded bounties whose expiry passed while their ticket is still
/// waiting for a resolution (open or claimed). Each bounty is its own
/// transaction: one that fails is logged and counted and the rest go on.
/// Returns how many were refunded.
pub fn expire_bounties(conn: &mut DbConnection) -> AppResult<usize> {
    let due: Vec<Bounty> = bounties::table
        .inner_join(tickets::table.on(tickets::id.eq(bounties::ticket_id)))
        .filter(bounties::status.eq("funded"))
        .filter(bounties::expires_at.lt(now()))
        .filter(tickets::status.eq_any([Status::Open.as_str(), Status::Claimed.as_str()]))
        .select(Bounty::as_select())
        .load(conn)?;
    Ok(crate::domain::each_row("expire_bounties", due, |b| {
        write_tx(conn, |conn| {
            // Re-read under the lock: the ticket may have been resolved, or
            // a webhook refunded part of the bounty, meanwhile.
            lock_ticket(conn, b.ticket_id)?;
            let waiting = matches!(
                ticket_domain::get(conn, b.ticket_id)?.status(),
                Status::Open | Status::Claimed
            );
            if !waiting {
                return Ok(false);
            }
            let current = get_bounty(conn, b.id)?;
            refund_bounty(conn, &current)
        })
    }))
}

/// Bounties of a ticket, oldest first.
pub fn bounties_of(conn: &mut DbConnection, ticket_id: i64) -> QueryResult<Vec<Bounty>> {
    bounties::table
        .filter(bounties::ticket_id.eq(ticket_id))
        .select(Bounty::as_select())
        .order(bounties::id)
        .load(conn)
}
