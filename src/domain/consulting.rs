//! Booking the consulting time a plan includes (issue 13 §1).
//!
//! A subscriber books minutes of their current period's consulting credit
//! (ledger unit `x-consulting-minutes`) with a topic and a preferred time;
//! the minutes are spent at once (ledger key `consulting:{id}:spend`), so
//! two bookings can never spend more than the period holds. The project's
//! maintainers are mailed; they schedule it, mark it done, or cancel it.
//! A cancellation (by either side) gives the minutes back while their
//! period runs (`consulting:{id}:return`); after it they have expired with
//! it. A subscription that ends cancels its open bookings.

use super::{audit, now, plans, projects};
use crate::db::schema::consulting_bookings as cb;
use crate::db::{write_tx, DbConnection};
use crate::error::{AppError, AppResult, ErrorCode, FieldError};
use crate::ledger::{self, NewTransfer, TransferKind};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use guildhall_jobs::BackgroundJob as _;

/// Shortest booking, minutes.
pub const MIN_MINUTES: i32 = 15;
/// Longest booking, minutes.
pub const MAX_MINUTES: i32 = 480;
/// Longest topic, characters.
pub const MAX_TOPIC: usize = 2000;

/// A row of `consulting_bookings`.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = cb)]
pub struct Booking {
    /// Id.
    pub id: i64,
    /// Subscription whose minutes it spent.
    pub subscription_id: i64,
    /// Project.
    pub project_id: i64,
    /// The subscriber.
    pub requester_id: i64,
    /// The period whose minutes it spent.
    pub period_number: i32,
    /// Minutes.
    pub minutes: i32,
    /// What it is about.
    pub topic: String,
    /// When the subscriber would like it.
    pub preferred_at: Option<NaiveDateTime>,
    /// `requested`, `scheduled`, `done` or `cancelled`.
    pub status: String,
    /// When it takes place.
    pub scheduled_at: Option<NaiveDateTime>,
    /// Whether its cancellation gave the minutes back.
    pub returned: bool,
    /// Who last decided on it.
    pub decided_by: Option<i64>,
    /// Requested.
    pub created_at: NaiveDateTime,
    /// Last changed.
    pub updated_at: NaiveDateTime,
}

/// A booking by id.
pub fn get(conn: &mut DbConnection, id: i64) -> AppResult<Booking> {
    cb::table
        .find(id)
        .select(Booking::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| AppError::not_found("booking"))
}

/// The subscription's bookings, newest first.
pub fn of_subscription(conn: &mut DbConnection, sub: i64) -> QueryResult<Vec<Booking>> {
    cb::table
        .filter(cb::subscription_id.eq(sub))
        .order(cb::id.desc())
        .limit(200)
        .select(Booking::as_select())
        .load(conn)
}

/// The project's bookings, open ones first, then newest first.
pub fn of_project(conn: &mut DbConnection, project: i64) -> QueryResult<Vec<Booking>> {
    let mut rows: Vec<Booking> = cb::table
        .filter(cb::project_id.eq(project))
        .order(cb::id.desc())
        .limit(200)
        .select(Booking::as_select())
        .load(conn)?;
    rows.sort_by_key(|b| !matches!(b.status.as_str(), "requested" | "scheduled"));
    Ok(rows)
}

/// What a subscriber asks for.
#[derive(Debug, Clone)]
pub struct Request {
    /// Minutes, a multiple of 15 between 15 and 480.
    pub minutes: i32,
    /// What it is about.
    pub topic: String,
    /// When they would like it.
    pub preferred_at: Option<NaiveDateTime>,
}

/// The subscriber books consulting time on their subscription `sub_id`.
pub fn book(conn: &mut DbConnection, sub_id: i64, user: i64, req: &Request) -> AppResult<Booking> {
    let mut bad = Vec::new();
    if !(MIN_MINUTES..=MAX_MINUTES).contains(&req.minutes) || req.minutes % 15 != 0 {
        bad.push(FieldError::new(
            "minutes",
            format!("must be a multiple of 15 between {MIN_MINUTES} and {MAX_MINUTES}"),
        ));
    }
    let topic = req.topic.trim();
    if topic.is_empty() || topic.chars().count() > MAX_TOPIC {
        bad.push(FieldError::new(
            "topic",
            format!("must say what it is about, up to {MAX_TOPIC} characters"),
        ));
    }
    if req.preferred_at.is_some_and(|p| p < now()) {
        bad.push(FieldError::new("preferred_at", "must not be in the past"));
    }
    if !bad.is_empty() {
        return Err(AppError::Validation(bad));
    }
    write_tx(conn, |conn| {
        let sub = plans::get_subscription(conn, sub_id)
            .optional()?
            .filter(|s| s.subscriber_id == user)
            .ok_or_else(|| AppError::not_found("subscription"))?;
        let sub = plans::lock_subscription(conn, sub.id)?;
        if !sub.is_live() {
            return Err(AppError::conflict(
                ErrorCode::InvalidTransition,
                format!("a {} subscription has no consulting time", sub.status),
            ));
        }
        super::moderation::require_not_banned(conn, sub.project_id, user)?;
        let at = now();
        let id: i64 = diesel::insert_into(cb::table)
            .values((
                cb::subscription_id.eq(sub.id),
                cb::project_id.eq(sub.project_id),
                cb::requester_id.eq(user),
                cb::period_number.eq(sub.current_period),
                cb::minutes.eq(req.minutes),
                cb::topic.eq(topic),
                cb::preferred_at.eq(req.preferred_at),
                cb::status.eq("requested"),
                cb::returned.eq(false),
                cb::created_at.eq(at),
                cb::updated_at.eq(at),
            ))
            .returning(cb::id)
            .get_result(conn)?;
        let (issuer, credits) = credit_accounts(conn, &sub)?;
        // Read before the spend: a refused spend aborts the transaction on
        // PostgreSQL.
        let left = plans::credits_left(conn, &sub)?.1;
        ledger::apply(
            conn,
            &[NewTransfer {
                key: format!("consulting:{id}:spend"),
                kind: TransferKind::Posted,
                debit: credits,
                credit: issuer,
                amount: i64::from(req.minutes),
                pending_id: None,
                ticket_id: None,
                memo: format!(
                    "{} consulting minutes of subscription {} booked",
                    req.minutes, sub.id
                ),
            }],
        )
        .map_err(|e| match e {
            ledger::LedgerError::InsufficientFunds(_) => AppError::conflict(
                ErrorCode::InsufficientFunds,
                format!("your plan has only {left} consulting minutes left this period"),
            ),
            e => e.into(),
        })?;
        let project = projects::by_id(conn, sub.project_id)?;
        let who = super::users::get(conn, user)?.display_name;
        for maintainer in projects::maintainers(conn, sub.project_id)? {
            crate::job_payloads::SendNotice {
                user_id: maintainer,
                subject: format!("{who} booked {} minutes of consulting", req.minutes),
                text: format!(
                    "{who}, a subscriber of {}, booked {} minutes of consulting{}.\n\n{topic}\n\nSchedule it on the project's consulting page.",
                    project.name,
                    req.minutes,
                    req.preferred_at
                        .map(|p| format!(", preferably at {}", p.format("%Y-%m-%d %H:%M UTC")))
                        .unwrap_or_default()
                ),
                link: format!("/p/{}/consulting", project.slug),
                appeal_ban: None,
            }
            .enqueue(conn)
            .map_err(AppError::internal)?;
        }
        get(conn, id)
    })
}

fn credit_accounts(conn: &mut DbConnection, sub: &plans::Subscription) -> AppResult<(i64, i64)> {
    let issuer = ledger::account(
        conn,
        ledger::AccountKind::CreditIssuer,
        Some(sub.project_id),
        ledger::CREDIT_CONSULTING_MINUTES,
    )?;
    let credits = ledger::account(
        conn,
        ledger::AccountKind::PlanCredits,
        Some(sub.id),
        ledger::CREDIT_CONSULTING_MINUTES,
    )?;
    Ok((issuer.id, credits.id))
}

fn lock(conn: &mut DbConnection, id: i64) -> AppResult<Booking> {
    if let DbConnection::Pg(pg) = conn {
        cb::table
            .find(id)
            .select(cb::id)
            .for_update()
            .first::<i64>(pg)
            .optional()?
            .ok_or_else(|| AppError::not_found("booking"))?;
    }
    get(conn, id)
}

/// A booking `user` may act on as a maintainer of its project, else 404.
fn as_maintainer(conn: &mut DbConnection, id: i64, user: i64) -> AppResult<Booking> {
    let b = lock(conn, id)?;
    if !projects::is_maintainer(conn, b.project_id, user)? {
        return Err(AppError::not_found("booking"));
    }
    Ok(b)
}

fn tell_requester(
    conn: &mut DbConnection,
    b: &Booking,
    subject: String,
    text: String,
) -> AppResult<()> {
    crate::job_payloads::SendNotice {
        user_id: b.requester_id,
        subject,
        text,
        link: "/me/subscriptions".to_owned(),
        appeal_ban: None,
    }
    .enqueue(conn)
    .map_err(AppError::internal)?;
    Ok(())
}

/// A maintainer sets when it takes place.
pub fn schedule(
    conn: &mut DbConnection,
    id: i64,
    user: i64,
    at: NaiveDateTime,
) -> AppResult<Booking> {
    if at < now() {
        return Err(AppError::field("at", "must not be in the past"));
    }
    write_tx(conn, |conn| {
        let b = as_maintainer(conn, id, user)?;
        if !matches!(b.status.as_str(), "requested" | "scheduled") {
            return Err(AppError::conflict(
                ErrorCode::InvalidTransition,
                format!("a {} booking cannot be scheduled", b.status),
            ));
        }
        diesel::update(cb::table.find(id))
            .set((
                cb::status.eq("scheduled"),
                cb::scheduled_at.eq(Some(at)),
                cb::decided_by.eq(Some(user)),
                cb::updated_at.eq(now()),
            ))
            .execute(conn)?;
        let project = projects::by_id(conn, b.project_id)?;
        tell_requester(
            conn,
            &b,
            format!("Your consulting time with {} is scheduled", project.name),
            format!(
                "Your {} minutes of consulting with {} take place at {}.",
                b.minutes,
                project.name,
                at.format("%Y-%m-%d %H:%M UTC")
            ),
        )?;
        get(conn, id)
    })
}

/// A maintainer marks it done: the minutes stay spent.
pub fn done(conn: &mut DbConnection, id: i64, user: i64) -> AppResult<Booking> {
    write_tx(conn, |conn| {
        let b = as_maintainer(conn, id, user)?;
        if b.status != "scheduled" {
            return Err(AppError::conflict(
                ErrorCode::InvalidTransition,
                format!("a {} booking cannot be marked done", b.status),
            ));
        }
        diesel::update(cb::table.find(id))
            .set((
                cb::status.eq("done"),
                cb::decided_by.eq(Some(user)),
                cb::updated_at.eq(now()),
            ))
            .execute(conn)?;
        get(conn, id)
    })
}

/// The subscriber or a maintainer cancels it; the minutes come back while
/// their period runs.
pub fn cancel(conn: &mut DbConnection, id: i64, user: i64) -> AppResult<Booking> {
    write_tx(conn, |conn| {
        // The subscription first, then the booking: the order ending a
        // subscription takes them in.
        let sub_id = get(conn, id)?.subscription_id;
        let sub = plans::lock_subscription(conn, sub_id)?;
        let b = lock(conn, id)?;
        let maintainer = projects::is_maintainer(conn, b.project_id, user)?;
        if b.requester_id != user && !maintainer {
            return Err(AppError::not_found("booking"));
        }
        if !matches!(b.status.as_str(), "requested" | "scheduled") {
            return Err(AppError::conflict(
                ErrorCode::InvalidTransition,
                format!("a {} booking cannot be cancelled", b.status),
            ));
        }
        let returned = cancel_locked(conn, &b, &sub, Some(user), true)?;
        if maintainer && b.requester_id != user {
            let project = projects::by_id(conn, b.project_id)?;
            tell_requester(
                conn,
                &b,
                format!("Your consulting time with {} was cancelled", project.name),
                format!(
                    "{} cancelled your {} minutes of consulting.{}",
                    project.name,
                    b.minutes,
                    if returned {
                        " The minutes are yours to book again this period."
                    } else {
                        ""
                    }
                ),
            )?;
        }
        audit::record(
            conn,
            Some(user),
            "consulting.cancel",
            "consulting_booking",
            Some(id),
            "",
        )?;
        get(conn, id)
    })
}

/// Cancels `b` (with its subscription locked); returns whether the minutes
/// came back.
fn cancel_locked(
    conn: &mut DbConnection,
    b: &Booking,
    sub: &plans::Subscription,
    by: Option<i64>,
    may_return: bool,
) -> AppResult<bool> {
    let give_back = may_return && sub.is_live() && sub.current_period == b.period_number;
    // Only an open booking is cancelled (one marked done meanwhile stays).
    let n = diesel::update(
        cb::table
            .find(b.id)
            .filter(cb::status.eq_any(["requested", "scheduled"])),
    )
    .set((
        cb::status.eq("cancelled"),
        cb::returned.eq(give_back),
        cb::decided_by.eq(by),
        cb::updated_at.eq(now()),
    ))
    .execute(conn)?;
    if n == 0 {
        return Ok(false);
    }
    if give_back {
        let (issuer, credits) = credit_accounts(conn, sub)?;
        ledger::apply(
            conn,
            &[NewTransfer {
                key: format!("consulting:{}:return", b.id),
                kind: TransferKind::Posted,
                debit: issuer,
                credit: credits,
                amount: i64::from(b.minutes),
                pending_id: None,
                ticket_id: None,
                memo: format!("consulting booking {} cancelled: minutes back", b.id),
            }],
        )?;
    }
    Ok(give_back)
}

/// Cancels the open bookings of a subscription that ended (locked by the
/// caller); their minutes expired with it.
pub fn cancel_open_of(conn: &mut DbConnection, sub: &plans::Subscription) -> AppResult<usize> {
    let open: Vec<Booking> = cb::table
        .filter(cb::subscription_id.eq(sub.id))
        .filter(cb::status.eq_any(["requested", "scheduled"]))
        .select(Booking::as_select())
        .load(conn)?;
    for b in &open {
        cancel_locked(conn, b, sub, None, false)?;
    }
    Ok(open.len())
}
