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
use crate::db::{write_tx, DbConnection};
use crate::domain::now;
use crate::domain::tickets::{self as ticket_domain, Status, Ticket};
use crate::error::{AppError, AppResult};
use crate::ledger::{self, AccountKind, NewTransfer, TransferKind};
use crate::payments::{Payment, PaymentGateway, PaymentRequest, PaymentStatus};
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
    /// `pending_payment`, `funded`, `released`, `refunded` or `failed`.
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
}

fn escrow(conn: &mut DbConnection, ticket_id: i64, currency: &str) -> QueryResult<ledger::Account> {
    ledger::account(conn, AccountKind::TicketEscrow, Some(ticket_id), currency)
}

/// Creates a bounty on a ticket the caller can see and collects the money.
/// With a gateway that settles at once (the sandbox) it is funded on return.
pub fn fund_bounty(
    conn: &mut DbConnection,
    gateway: &dyn PaymentGateway,
    ticket_id: i64,
    backer: i64,
    amount: i64,
    currency: &str,
    expires_in_days: Option<i64>,
) -> AppResult<(Bounty, Payment)> {
    if expires_in_days.is_some_and(|d| !(1..=365).contains(&d)) {
        return Err(AppError::field(
            "expires_in_days",
            "must be between 1 and 365",
        ));
    }
    let (t, _) = ticket_domain::load_visible(conn, ticket_id, Some(backer))?;
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
    if !matches!(t.status(), Status::Open | Status::Claimed) {
        return Err(AppError::conflict(
            "ticket_not_open",
            format!("a {} ticket cannot take a bounty", t.status),
        ));
    }
    let id: i64 = diesel::insert_into(bounties::table)
        .values((
            bounties::ticket_id.eq(ticket_id),
            bounties::backer_id.eq(backer),
            bounties::amount.eq(amount),
            bounties::currency.eq(currency),
            bounties::status.eq("pending_payment"),
            bounties::gateway.eq(gateway.name()),
            bounties::created_at.eq(now()),
            bounties::expires_at.eq(expires_in_days.map(|d| now() + chrono::Duration::days(d))),
        ))
        .returning(bounties::id)
        .get_result(conn)?;
    let payment = collect_payment(
        conn,
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
            AppError::conflict("payment_failed", "the payment could not be created")
        }
        CollectError::App(e) => e,
    })?;
    let b = bounties::table
        .find(id)
        .select(Bounty::as_select())
        .first(conn)?;
    Ok((b, payment))
}

/// Why [`collect_payment`] did not get a payment.
pub enum CollectError {
    /// The gateway refused or failed; the bounty is marked `failed`.
    Gateway(anyhow::Error),
    /// Our own failure.
    App(AppError),
}

/// Asks the gateway to collect a `pending_payment` bounty (idempotency key
/// `bounty:{id}`), records the payment id, and books it into escrow at once
/// when it already succeeded; a refused payment marks the bounty `failed`.
/// Shared by bounties and accepted bids.
pub fn collect_payment(
    conn: &mut DbConnection,
    gateway: &dyn PaymentGateway,
    bounty_id: i64,
    description: String,
    metadata: Vec<(String, String)>,
) -> Result<Payment, CollectError> {
    let b: Bounty = bounties::table
        .find(bounty_id)
        .select(Bounty::as_select())
        .first(conn)
        .map_err(|e| CollectError::App(e.into()))?;
    let result = gateway.create_payment(&PaymentRequest {
        amount: b.amount,
        currency: b.currency.clone(),
        description,
        metadata,
        idempotency_key: format!("bounty:{bounty_id}"),
    });
    let mark_failed = |conn: &mut DbConnection| -> Result<(), CollectError> {
        diesel::update(bounties::table.find(bounty_id))
            .set(bounties::status.eq("failed"))
            .execute(conn)
            .map_err(|e| CollectError::App(e.into()))?;
        Ok(())
    };
    let payment = match result {
        Ok(p) => p,
        Err(e) => {
            mark_failed(conn)?;
            return Err(CollectError::Gateway(e));
        }
    };
    diesel::update(bounties::table.find(bounty_id))
        .set(bounties::payment_id.eq(&payment.id))
        .execute(conn)
        .map_err(|e| CollectError::App(e.into()))?;
    match payment.status {
        PaymentStatus::Succeeded => {
            settle_payment(conn, gateway.name(), &payment.id).map_err(CollectError::App)?;
        }
        PaymentStatus::Failed => {
            mark_failed(conn)?;
            return Err(CollectError::Gateway(anyhow::anyhow!(
                "payment {} failed",
                payment.id
            )));
        }
        PaymentStatus::RequiresAction | PaymentStatus::Processing => {}
    }
    Ok(payment)
}

/// Books a succeeded payment into escrow, exactly once however often it is
/// reported (the response of the create call, webhooks, retries). Returns
/// whether this call did the booking.
pub fn settle_payment(conn: &mut DbConnection, gateway: &str, payment_id: &str) -> AppResult<bool> {
    write_tx(conn, |conn| {
        let b: Option<Bounty> = bounties::table
            .filter(bounties::gateway.eq(gateway))
            .filter(bounties::payment_id.eq(payment_id))
            .select(Bounty::as_select())
            .first(conn)
            .optional()?;
        let Some(b) = b else { return Ok(false) };
        lock_ticket(conn, b.ticket_id)?;
        let n = diesel::update(
            bounties::table
                .find(b.id)
                .filter(bounties::status.eq("pending_payment")),
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
        Ok(true)
    })
}

/// What a release paid out.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = releases)]
pub struct Release {
    /// Ticket.
    pub ticket_id: i64,
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
/// in one linked chain; call inside the accept transition's transaction.
/// Does nothing when the escrow is empty. The rates are recorded.
pub fn release(
    conn: &mut DbConnection,
    t: &Ticket,
    platform_bps: i32,
) -> AppResult<Option<Release>> {
    let (commission_bps, currency): (i32, String) = projects::table
        .find(t.project_id)
        .select((projects::commission_bps, projects::currency))
        .first(conn)?;
    let escrow = escrow(conn, t.id, &currency)?;
    let amount = escrow.available();
    if amount <= 0 {
        return Ok(None);
    }
    let helper = t.resolved_by.ok_or_else(|| {
        AppError::conflict("no_resolver", "the ticket has no resolving helper to pay")
    })?;
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
        key: format!("ticket:{}:release:{who}", t.id),
        kind: TransferKind::Posted,
        debit: escrow.id,
        credit: account,
        amount: part,
        pending_id: None,
        ticket_id: Some(t.id),
        memo: format!("release of ticket {} to the {who}", t.id),
    })
    .collect();
    ledger::apply(conn, &chain)?;
    diesel::insert_into(releases::table)
        .values((
            releases::ticket_id.eq(t.id),
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
            .select(Release::as_select())
            .first(conn)?,
    ))
}

/// Refunds one funded bounty: escrow → its gateway's clearing account,
/// once, and queues the [`crate::jobs::RefundPayment`] job that returns the
/// money through the gateway (same transaction: no refund is booked without
/// being sent, none is sent without being booked). Call inside a
/// transaction. Returns whether this call refunded it.
pub fn refund_bounty(conn: &mut DbConnection, b: &Bounty) -> AppResult<bool> {
    let refunded = book_refund(conn, b)?;
    if refunded {
        crate::jobs::RefundPayment { bounty_id: b.id }.enqueue(conn)?;
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

/// Books a refund in the ledger only (the gateway has already moved, or
/// will move, the money). Returns whether this call booked it.
fn book_refund(conn: &mut DbConnection, b: &Bounty) -> AppResult<bool> {
    lock_ticket(conn, b.ticket_id)?;
    let n = diesel::update(
        bounties::table
            .find(b.id)
            .filter(bounties::status.eq("funded")),
    )
    .set((
        bounties::status.eq("refunded"),
        bounties::settled_at.eq(Some(now())),
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
            key: format!("bounty:{}:refund", b.id),
            kind: TransferKind::Posted,
            debit: escrow.id,
            credit: clearing.id,
            amount: b.amount,
            pending_id: None,
            ticket_id: Some(b.ticket_id),
            memo: format!("bounty {} refunded to user {}", b.id, b.backer_id),
        }],
    )?;
    diesel::update(tickets::table.find(b.ticket_id))
        .set(tickets::paid_amount.eq(tickets::paid_amount - b.amount))
        .execute(conn)?;
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

/// Applies a verified Stripe event exactly once per event id: the event row
/// and its effects commit together, so a failed application is retried by
/// Stripe and a repeated delivery changes nothing. Returns what it did.
pub fn apply_stripe_event(conn: &mut DbConnection, event: &serde_json::Value) -> AppResult<String> {
    let id = event["id"]
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| AppError::field("id", "the event has no id"))?;
    let kind = event["type"].as_str().unwrap_or_default().to_owned();
    let object = &event["data"]["object"];
    write_tx(conn, |conn| {
        let fresh = crate::per_backend!(conn, |c| diesel::insert_into(
            crate::db::schema::stripe_events::table
        )
        .values((
            crate::db::schema::stripe_events::event_id.eq(id),
            crate::db::schema::stripe_events::event_type.eq(&kind),
            crate::db::schema::stripe_events::outcome.eq("applying"),
            crate::db::schema::stripe_events::received_at.eq(now()),
        ))
        .on_conflict_do_nothing()
        .execute(c))?;
        if fresh == 0 {
            return Ok("duplicate delivery; already applied".to_owned());
        }
        let payment_intent = match kind.as_str() {
            "payment_intent.succeeded" | "payment_intent.payment_failed" => object["id"].as_str(),
            _ => object["payment_intent"].as_str(),
        }
        .unwrap_or_default()
        .to_owned();
        let outcome = match kind.as_str() {
            "payment_intent.succeeded" => {
                if settle_payment(conn, "stripe", &payment_intent)? {
                    "bounty funded"
                } else {
                    "nothing to fund"
                }
            }
            "payment_intent.payment_failed" => {
                let n = diesel::update(
                    bounties::table
                        .filter(bounties::gateway.eq("stripe"))
                        .filter(bounties::payment_id.eq(&payment_intent))
                        .filter(bounties::status.eq("pending_payment")),
                )
                .set(bounties::status.eq("failed"))
                .execute(conn)?;
                if n == 1 {
                    "bounty payment failed"
                } else {
                    "nothing pending"
                }
            }
            // A refund made at Stripe (dashboard, or ours reported back):
            // the money already went back, so only the ledger follows.
            "charge.refunded" => match bounty_by_payment(conn, "stripe", &payment_intent)? {
                Some(b) if book_refund(conn, &b)? => {
                    let refund_id = object["refunds"]["data"][0]["id"]
                        .as_str()
                        .unwrap_or("external");
                    record_gateway_refund(conn, b.id, refund_id)?;
                    "bounty refunded"
                }
                _ => "nothing to refund",
            },
            "charge.dispute.created" => match bounty_by_payment(conn, "stripe", &payment_intent)? {
                Some(b) => {
                    let escrow = escrow(conn, b.ticket_id, &b.currency)?;
                    ledger::set_frozen(conn, escrow.id, true)?;
                    tracing::warn!(
                        ticket = b.ticket_id,
                        bounty = b.id,
                        "disputed payment: escrow frozen"
                    );
                    "escrow frozen"
                }
                None => "no matching bounty",
            },
            "account.updated" => {
                let ready = object["payouts_enabled"].as_bool() == Some(true)
                    && object["capabilities"]["transfers"].as_str() == Some("active");
                let account = object["id"].as_str().unwrap_or_default();
                if crate::domain::payouts::set_ready(conn, "stripe", account, ready)? == 0 {
                    "unknown payout account"
                } else if ready {
                    "payout account ready"
                } else {
                    "payout account not ready"
                }
            }
            k if k.starts_with("transfer.") => "acknowledged",
            _ => "ignored",
        };
        diesel::update(
            crate::db::schema::stripe_events::table
                .filter(crate::db::schema::stripe_events::event_id.eq(id)),
        )
        .set(crate::db::schema::stripe_events::outcome.eq(outcome))
        .execute(conn)?;
        Ok(outcome.to_owned())
    })
}

/// Refunds funded bounties whose expiry passed while their ticket is still
/// waiting for a resolution (open or claimed). Returns how many.
pub fn expire_bounties(conn: &mut DbConnection) -> AppResult<usize> {
    let due: Vec<Bounty> = bounties::table
        .inner_join(tickets::table.on(tickets::id.eq(bounties::ticket_id)))
        .filter(bounties::status.eq("funded"))
        .filter(bounties::expires_at.lt(now()))
        .filter(tickets::status.eq_any([Status::Open.as_str(), Status::Claimed.as_str()]))
        .select(Bounty::as_select())
        .load(conn)?;
    let mut refunded = 0;
    for b in &due {
        refunded += usize::from(write_tx(conn, |conn| refund_bounty(conn, b))?);
    }
    Ok(refunded)
}

/// Bounties of a ticket, oldest first.
pub fn bounties_of(conn: &mut DbConnection, ticket_id: i64) -> QueryResult<Vec<Bounty>> {
    bounties::table
        .filter(bounties::ticket_id.eq(ticket_id))
        .select(Bounty::as_select())
        .order(bounties::id)
        .load(conn)
}
