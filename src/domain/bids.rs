//! Bids: approved helpers offer a price and a time; the requester accepts
//! one, which pays into escrow and assigns the ticket to the bidder; the
//! other open bids are rejected. A bidder may withdraw an open bid.

use crate::db::schema::{bids, bounties, tickets};
use crate::db::{write_tx, DbConnection, DbPool};
use crate::domain::money::{self, Bounty};
use crate::domain::tickets::{self as ticket_domain, Status};
use crate::domain::{now, projects};
use crate::error::ErrorCode;
use crate::error::{AppError, AppResult, FieldError};
use crate::payments::{Payment, PaymentGateway};
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
    crate::domain::moderation::require_not_banned(conn, t.project_id, helper)?;
    projects::require_coc(conn, t.project_id, helper)?;
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
            ErrorCode::TicketNotOpen,
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
            ErrorCode::AlreadyBid,
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

/// A helper's own bids with their tickets' titles, newest first.
pub fn of_helper(
    conn: &mut DbConnection,
    helper: i64,
    limit: i64,
) -> QueryResult<Vec<(Bid, String)>> {
    use crate::db::schema::tickets;
    bids::table
        .inner_join(tickets::table.on(tickets::id.eq(bids::ticket_id)))
        .filter(bids::helper_id.eq(helper))
        .order(bids::id.desc())
        .limit(limit)
        .select((Bid::as_select(), tickets::title))
        .load(conn)
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
            ErrorCode::BidNotOpen,
            format!("the bid is {}", bid.status),
        ));
    }
    get(conn, id)
}

/// Whether an accepted bid's payment on the ticket is still on its way.
pub fn payment_pending(conn: &mut DbConnection, ticket_id: i64) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        bounties::table
            .filter(bounties::ticket_id.eq(ticket_id))
            .filter(bounties::bid_id.is_not_null())
            .filter(bounties::status.eq("pending_payment")),
    ))
    .get_result(conn)
}

/// Withdraws every open bid of `helper` on the project's tickets (their
/// helper rights ended). Call inside the caller's transaction. Returns how
/// many.
pub fn withdraw_open_of(conn: &mut DbConnection, project_id: i64, helper: i64) -> AppResult<usize> {
    let of_project = tickets::table
        .filter(tickets::project_id.eq(project_id))
        .select(tickets::id);
    Ok(diesel::update(
        bids::table
            .filter(bids::helper_id.eq(helper))
            .filter(bids::status.eq("open"))
            .filter(bids::ticket_id.eq_any(of_project)),
    )
    .set((
        bids::status.eq("withdrawn"),
        bids::decided_at.eq(Some(now())),
    ))
    .execute(conn)?)
}

/// The requester accepts a bid: the bid is marked accepted and its price
/// collected into escrow. The ticket is assigned to the bidder (and the
/// other open bids rejected) only when the money has arrived — at once with
/// a gateway that settles at once, later by the gateway's webhook otherwise
/// ([`on_paid`]). If the payment fails, the bid is open to acceptance again
/// and the ticket never left the queue. `request_key` (the request's
/// `Idempotency-Key`) lets a retry of a request that died carry on with the
/// bounty and payment it made. No connection is held during the gateway
/// call.
pub fn accept(
    pool: &DbPool,
    gateway: &dyn PaymentGateway,
    id: i64,
    user: i64,
    request_key: Option<&str>,
) -> AppResult<(Bid, Bounty, Payment)> {
    let (bid, bounty_id) = {
        let mut conn = pool.get()?;
        let conn = &mut *conn;
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
        crate::domain::projects::require_verified_for_live(
            conn,
            !gateway.test_money(),
            t.project_id,
        )?;
        let earlier =
            money::bounty_by_request(conn, user, request_key)?.filter(|b| b.bid_id == Some(id));
        let bounty_id = match earlier {
            Some(b) => b.id,
            None => start_acceptance(conn, gateway.name(), &bid, t.id, user, request_key)?,
        };
        (bid, bounty_id)
    };
    let collected = money::collect_payment(
        pool,
        gateway,
        bounty_id,
        format!("Accepted bid on ticket #{}", bid.ticket_id),
        vec![
            ("ticket_id".into(), bid.ticket_id.to_string()),
            ("bid_id".into(), id.to_string()),
        ],
    );
    let (b, payment) = match collected {
        Ok(done) => done,
        Err(money::CollectError::Gateway(e)) => {
            tracing::warn!(bid = id, error = %e, "payment for an accepted bid failed");
            return Err(AppError::conflict(
                ErrorCode::PaymentFailed,
                "the payment for this bid failed; the bid is open again",
            ));
        }
        Err(money::CollectError::App(e)) => return Err(e),
    };
    Ok((get(&mut *pool.get()?, id)?, b, payment))
}

/// Marks the bid accepted and makes the bounty that will pay for it, in one
/// transaction, after checking the ticket is open and the bidder still
/// vetted. Returns the bounty's id.
fn start_acceptance(
    conn: &mut DbConnection,
    gateway_name: &str,
    bid: &Bid,
    ticket_id: i64,
    user: i64,
    request_key: Option<&str>,
) -> AppResult<i64> {
    write_tx(conn, |conn| -> AppResult<i64> {
        let t = ticket_domain::get(conn, ticket_id)?;
        if t.status() != Status::Open {
            return Err(AppError::conflict(
                ErrorCode::TicketNotOpen,
                format!("a {} ticket takes no bids", t.status),
            ));
        }
        // Vetted when the bid was made is not enough: vetted now.
        if !crate::domain::helpers::is_approved(conn, t.project_id, bid.helper_id)? {
            return Err(AppError::conflict(
                ErrorCode::BidderNotApproved,
                "the bidder is no longer an approved helper of this project",
            ));
        }
        if crate::domain::moderation::active_ban(conn, Some(t.project_id), bid.helper_id)?.is_some()
        {
            return Err(AppError::conflict(
                ErrorCode::BidderNotApproved,
                "the bidder is banned from this project",
            ));
        }
        let n = diesel::update(bids::table.find(bid.id).filter(bids::status.eq("open")))
            .set((
                bids::status.eq("accepted"),
                bids::decided_at.eq(Some(now())),
            ))
            .execute(conn)?;
        if n == 0 {
            return Err(AppError::conflict(
                ErrorCode::BidNotOpen,
                "the bid is no longer open",
            ));
        }
        Ok(diesel::insert_into(bounties::table)
            .values((
                bounties::ticket_id.eq(bid.ticket_id),
                bounties::backer_id.eq(user),
                bounties::amount.eq(bid.amount),
                bounties::currency.eq(&bid.currency),
                bounties::status.eq("pending_payment"),
                bounties::gateway.eq(gateway_name),
                bounties::bid_id.eq(Some(bid.id)),
                bounties::created_at.eq(now()),
                bounties::request_key.eq(request_key),
            ))
            .returning(bounties::id)
            .get_result(conn)?)
    })
}

/// The money for accepted bid `bid_id` arrived (call inside the settling
/// transaction, ticket row locked): the ticket goes to the bidder and the
/// other open bids are rejected. Returns false when the ticket can no
/// longer be given to the bidder (someone else took it meanwhile, or the
/// bidder is no longer vetted): the caller refunds the money and the bid is
/// rejected. A ticket the bidder already holds keeps the money.
pub(crate) fn on_paid(
    conn: &mut DbConnection,
    t: &crate::domain::tickets::Ticket,
    bid_id: i64,
    bounty_id: i64,
    backer: i64,
) -> AppResult<bool> {
    let bid = get(conn, bid_id)?;
    // The bid paid for already (an earlier attempt's payment that succeeded
    // after all, once the bid was accepted again): this money goes back.
    let paid_before: bool = diesel::select(diesel::dsl::exists(
        bounties::table
            .filter(bounties::bid_id.eq(bid_id))
            .filter(bounties::status.eq_any(["funded", "released"]))
            .filter(bounties::funded_at.is_not_null())
            .filter(bounties::id.ne(bounty_id)),
    ))
    .get_result(conn)?;
    if paid_before {
        return Ok(false);
    }
    let assignable = matches!(bid.status.as_str(), "accepted" | "open")
        && crate::domain::helpers::is_approved(conn, t.project_id, bid.helper_id)?;
    let taken = if !assignable {
        false
    } else if t.status() == Status::Open {
        ticket_domain::assign(conn, t, bid.helper_id, backer)?;
        true
    } else {
        // The bidder already holds it (claimed it meanwhile, or resolved it):
        // the money is theirs to earn, nothing to move.
        matches!(t.status(), Status::Claimed | Status::Resolved)
            && t.claimed_by == Some(bid.helper_id)
    };
    let decided = Some(now());
    if taken {
        diesel::update(bids::table.find(bid_id))
            .set((bids::status.eq("accepted"), bids::decided_at.eq(decided)))
            .execute(conn)?;
        diesel::update(
            bids::table
                .filter(bids::ticket_id.eq(bid.ticket_id))
                .filter(bids::status.eq_any(["open", "accepted"]))
                .filter(bids::id.ne(bid_id)),
        )
        .set((bids::status.eq("rejected"), bids::decided_at.eq(decided)))
        .execute(conn)?;
    } else {
        diesel::update(
            bids::table
                .find(bid_id)
                .filter(bids::status.ne("withdrawn")),
        )
        .set((bids::status.eq("rejected"), bids::decided_at.eq(decided)))
        .execute(conn)?;
    }
    Ok(taken)
}

/// The payment for accepted bid `bid_id` failed: the bid is open to
/// acceptance again, unless its bidder made a newer offer meanwhile (call
/// inside the transaction that marks the payment failed).
pub(crate) fn on_payment_failed(conn: &mut DbConnection, bid_id: i64) -> AppResult<()> {
    let bid = get(conn, bid_id)?;
    if bid.status != "accepted" {
        return Ok(());
    }
    // The bidder may have made a newer offer on the ticket meanwhile: that
    // one stands, and this one is withdrawn (one open bid per bidder).
    let newer: bool = diesel::select(diesel::dsl::exists(
        bids::table
            .filter(bids::ticket_id.eq(bid.ticket_id))
            .filter(bids::helper_id.eq(bid.helper_id))
            .filter(bids::status.eq("open")),
    ))
    .get_result(conn)?;
    let (status, decided) = if newer {
        ("withdrawn", Some(now()))
    } else {
        ("open", None)
    };
    diesel::update(bids::table.find(bid_id).filter(bids::status.eq("accepted")))
        .set((bids::status.eq(status), bids::decided_at.eq(decided)))
        .execute(conn)?;
    Ok(())
}
