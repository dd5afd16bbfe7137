//! Bids: approved helpers offer a price and a time; the requester accepts
//! one, which pays into escrow and assigns the ticket to the bidder; the
//! other open bids are rejected. A bidder may withdraw an open bid.

use crate::db::schema::{bids, bounties, tickets};
use crate::db::{write_tx, DbConnection};
use crate::domain::money::{self, Bounty};
use crate::domain::tickets::{self as ticket_domain, Status};
use crate::domain::{now, projects};
use crate::error::{AppError, AppResult, FieldError};
use crate::payments::PaymentGateway;
use chrono::NaiveDateTime;
use diesel::prelude::*;

/// A row of `bids`.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = bids)]
pub struct Bid {
    /// Id.
    pub id: i64,
    /// Ticket.
    pub ticket_id: i64,
    /// The bidding helper.
    pub helper_id: i64,
    /// Price, minor units.
    pub amount: i64,
    /// Currency.
    pub currency: String,
    /// Promised hours to resolve.
    pub eta_hours: i32,
    /// Pitch.
    pub message: String,
    /// `open`, `accepted`, `rejected` or `withdrawn`.
    pub status: String,
    /// Created.
    pub created_at: NaiveDateTime,
    /// Accepted, rejected or withdrawn.
    pub decided_at: Option<NaiveDateTime>,
}

fn get(conn: &mut DbConnection, id: i64) -> AppResult<Bid> {
    bids::table
        .find(id)
        .select(Bid::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| AppError::not_found("bid"))
}

/// An approved helper of the ticket's project bids on an open ticket.
pub fn create(
    conn: &mut DbConnection,
    ticket_id: i64,
    helper: i64,
    amount: i64,
    currency: &str,
    eta_hours: i32,
    message: &str,
) -> AppResult<Bid> {
    let (t, a) = ticket_domain::load_visible(conn, ticket_id, Some(helper))?;
    if !a.helper {
        return Err(AppError::forbidden(
            "only approved helpers of the project may bid",
        ));
    }
    if a.requester {
        return Err(AppError::forbidden("you cannot bid on your own ticket"));
    }
    let slug: String = crate::db::schema::projects::table
        .find(t.project_id)
        .select(crate::db::schema::projects::slug)
        .first(conn)?;
    let project = projects::by_slug(conn, &slug)?;
    let mut errors = Vec::new();
    if !(money::MIN_BOUNTY..=money::MAX_BOUNTY).contains(&amount) {
        errors.push(FieldError::new(
            "amount",
            format!(
                "must be between {} and {} minor units",
                money::MIN_BOUNTY,
                money::MAX_BOUNTY
            ),
        ));
    }
    if currency != project.currency {
        errors.push(FieldError::new(
            "currency",
            format!("this project is paid in {}", project.currency),
        ));
    }
    if !(1..=24 * 365).contains(&eta_hours) {
        errors.push(FieldError::new("eta_hours", "must be between 1 and 8760"));
    }
    if message.chars().count() > 5000 {
        errors.push(FieldError::new(
            "message",
            "must be at most 5000 characters",
        ));
    }
    if !errors.is_empty() {
        return Err(AppError::Validation(errors));
    }
    if t.status() != Status::Open {
        return Err(AppError::conflict(
            "ticket_not_open",
            "bids are taken on open tickets only",
        ));
    }
    let inserted = diesel::insert_into(bids::table)
        .values((
            bids::ticket_id.eq(ticket_id),
            bids::helper_id.eq(helper),
            bids::amount.eq(amount),
            bids::currency.eq(currency),
            bids::eta_hours.eq(eta_hours),
            bids::message.eq(message),
            bids::status.eq("open"),
            bids::created_at.eq(now()),
        ))
        .returning(bids::id)
        .get_result::<i64>(conn);
    match inserted {
        Ok(id) => get(conn, id),
        Err(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        )) => Err(AppError::conflict(
            "already_bid",
            "you already have an open bid on this ticket",
        )),
        Err(e) => Err(e.into()),
    }
}

/// Bids on a ticket: the requester and the project's maintainers see all;
/// a helper sees only their own (bidders do not see each other's prices).
pub fn list(conn: &mut DbConnection, ticket_id: i64, user: i64) -> AppResult<Vec<Bid>> {
    let (_, a) = ticket_domain::load_visible(conn, ticket_id, Some(user))?;
    let mut q = bids::table
        .filter(bids::ticket_id.eq(ticket_id))
        .select(Bid::as_select())
        .order(bids::id)
        .into_boxed();
    if !(a.requester || a.maintainer) {
        q = q.filter(bids::helper_id.eq(user));
    }
    Ok(q.load(conn)?)
}

/// The bidder withdraws an open bid.
pub fn withdraw(conn: &mut DbConnection, id: i64, user: i64) -> AppResult<Bid> {
    let bid = get(conn, id)?;
    if bid.helper_id != user {
        return Err(AppError::not_found("bid"));
    }
    let n = diesel::update(bids::table.find(id).filter(bids::status.eq("open")))
        .set((
            bids::status.eq("withdrawn"),
            bids::decided_at.eq(Some(now())),
        ))
        .execute(conn)?;
    if n == 0 {
        return Err(AppError::conflict(
            "bid_not_open",
            format!("the bid is {}", bid.status),
        ));
    }
    get(conn, id)
}

/// The requester accepts a bid: the bid is accepted and the others
/// rejected, the ticket assigned to the bidder, and the price collected into
/// escrow — all decided in one transaction before the gateway is asked; if
/// the payment fails, the bid and the ticket go back.
pub fn accept(
    conn: &mut DbConnection,
    gateway: &dyn PaymentGateway,
    id: i64,
    user: i64,
) -> AppResult<(Bid, Bounty)> {
    let bid = get(conn, id)?;
    let (t, a) = ticket_domain::load_visible(conn, bid.ticket_id, Some(user))
        .map_err(|_| AppError::not_found("bid"))?;
    if !a.requester {
        // Other people's bids are not theirs to know about.
        return Err(if a.team() || bid.helper_id == user {
            AppError::forbidden("only the requester may accept a bid")
        } else {
            AppError::not_found("bid")
        });
    }
    let bounty_id = write_tx(conn, |conn| -> AppResult<i64> {
        let n = diesel::update(bids::table.find(id).filter(bids::status.eq("open")))
            .set((
                bids::status.eq("accepted"),
                bids::decided_at.eq(Some(now())),
            ))
            .execute(conn)?;
        if n == 0 {
            return Err(AppError::conflict(
                "bid_not_open",
                "the bid is no longer open",
            ));
        }
        diesel::update(
            bids::table
                .filter(bids::ticket_id.eq(bid.ticket_id))
                .filter(bids::status.eq("open")),
        )
        .set((
            bids::status.eq("rejected"),
            bids::decided_at.eq(Some(now())),
        ))
        .execute(conn)?;
        ticket_domain::assign(conn, &t, bid.helper_id, user)?;
        Ok(diesel::insert_into(bounties::table)
            .values((
                bounties::ticket_id.eq(bid.ticket_id),
                bounties::backer_id.eq(user),
                bounties::amount.eq(bid.amount),
                bounties::currency.eq(&bid.currency),
                bounties::status.eq("pending_payment"),
                bounties::gateway.eq(gateway.name()),
                bounties::bid_id.eq(Some(id)),
                bounties::created_at.eq(now()),
            ))
            .returning(bounties::id)
            .get_result(conn)?)
    })?;
    let collected = money::collect_payment(
        conn,
        gateway,
        bounty_id,
        format!("Accepted bid on ticket #{}", bid.ticket_id),
        vec![
            ("ticket_id".into(), bid.ticket_id.to_string()),
            ("bid_id".into(), id.to_string()),
        ],
    );
    let failed = match collected {
        Ok(_) => false,
        Err(money::CollectError::Gateway(e)) => {
            tracing::warn!(bid = id, error = %e, "payment for an accepted bid failed");
            true
        }
        Err(money::CollectError::App(e)) => return Err(e),
    };
    if failed {
        write_tx(conn, |conn| -> AppResult<()> {
            diesel::update(bids::table.find(id))
                .set(bids::status.eq("open"))
                .execute(conn)?;
            diesel::update(
                tickets::table
                    .find(bid.ticket_id)
                    .filter(tickets::claimed_by.eq(bid.helper_id)),
            )
            .set((
                tickets::status.eq(Status::Open.as_str()),
                tickets::claimed_by.eq(None::<i64>),
            ))
            .execute(conn)?;
            Ok(())
        })?;
        return Err(AppError::conflict(
            "payment_failed",
            "the payment for this bid failed; the bid is open again",
        ));
    }
    let b = bounties::table
        .find(bounty_id)
        .select(Bounty::as_select())
        .first(conn)?;
    Ok((get(conn, id)?, b))
}
