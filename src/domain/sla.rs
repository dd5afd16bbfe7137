//! Service levels that are measured: the response clocks of enterprise
//! tickets (issue 13 §2).
//!
//! A ticket is an enterprise ticket while its requester holds a live
//! enterprise subscription to its project. Its clock runs while the ticket
//! waits on the team — from its submission, or from the requester's first
//! reply after the team last spoke — and stops at the team's next response
//! (a message that is not an internal note, or the resolution), from any
//! channel: the web, email, chat and GitHub all write the same messages.
//! While the ticket waits on the requester no clock runs. Each clock's
//! deadline is the plan's `response_hours` in the project's business time
//! ([`crate::domain::calendar`]); the team is warned at three quarters of
//! it.
//!
//! Clocks are derived from the ticket's own rows by [`sweep`] (every
//! minute), with the instants the rows record: a response written before
//! the deadline counts as met however late the sweep runs. A breach is
//! recorded once, the requester told (a ticket event the notifications
//! carry), and the plan's service credit booked in the ledger: the
//! project's service-credit debt → the subscription's service credit, taken
//! off its next charges ([`crate::domain::plans`]); unused credit lapses
//! with the subscription, as the platform's terms say.

use crate::db::schema::{
    plans, sla_clocks as sc, subscriptions as subs, ticket_messages as tm, tickets as t,
};
use crate::db::{write_tx, DbConnection};
use crate::domain::now;
use crate::error::AppResult;
use crate::ledger::{self, AccountKind, NewTransfer, TransferKind};
use chrono::NaiveDateTime;
use diesel::prelude::*;

/// A row of `sla_clocks`.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = sc)]
pub struct Clock {
    /// Id.
    pub id: i64,
    /// Ticket.
    pub ticket_id: i64,
    /// The enterprise subscription it serves.
    pub subscription_id: i64,
    /// `first_response` or `next_response`.
    pub kind: String,
    /// Since when the ticket waits on the team.
    pub started_at: NaiveDateTime,
    /// When the team is warned.
    pub warn_at: NaiveDateTime,
    /// The deadline.
    pub due_at: NaiveDateTime,
    /// Warned.
    pub warned_at: Option<NaiveDateTime>,
    /// Breached (recorded by the sweep).
    pub breached_at: Option<NaiveDateTime>,
    /// Stopped.
    pub closed_at: Option<NaiveDateTime>,
    /// `responded` or `ended`.
    pub closed_reason: Option<String>,
    /// Service credit booked for the breach, minor units.
    pub credit_amount: i64,
    /// Its currency.
    pub currency: String,
}

/// What one sweep did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    /// Clocks started.
    pub started: usize,
    /// Clocks stopped by a response (or the ticket leaving the queue).
    pub stopped: usize,
    /// Teams warned.
    pub warned: usize,
    /// Breaches recorded (and credited).
    pub breached: usize,
}

/// An enterprise ticket: (ticket, requester, project, status, submitted,
/// resolved, subscription, response hours, service credit %, subscription
/// start).
type Enterprise = (
    i64,
    i64,
    i64,
    String,
    Option<NaiveDateTime>,
    Option<NaiveDateTime>,
    i64,
    Option<i32>,
    i32,
    NaiveDateTime,
);

/// Derives, stops, warns and breaches every clock that is due; safe to run
/// in any number of workers (each clock changes under a conditional update
/// or a unique index).
pub fn sweep(conn: &mut DbConnection) -> AppResult<Swept> {
    let mut out = Swept::default();
    let at = now();
    // Start: enterprise tickets in the queue waiting on the team.
    let tickets: Vec<Enterprise> = t::table
        .inner_join(
            subs::table.on(subs::subscriber_id
                .eq(t::requester_id)
                .and(subs::project_id.eq(t::project_id))),
        )
        .inner_join(plans::table.on(plans::id.eq(subs::plan_id)))
        .filter(t::status.eq_any(["open", "claimed"]))
        .filter(subs::status.eq_any(crate::domain::plans::LIVE))
        .filter(plans::kind.eq("enterprise"))
        .select((
            t::id,
            t::requester_id,
            t::project_id,
            t::status,
            t::submitted_at,
            t::resolved_at,
            subs::id,
            plans::response_hours,
            plans::service_credit_pct,
            subs::created_at,
        ))
        .load(conn)?;
    // Every running clock; a ticket that has one starts none (its wait is
    // measured).
    let running: Vec<Clock> = sc::table
        .filter(sc::closed_at.is_null())
        .order(sc::id)
        .select(Clock::as_select())
        .load(conn)?;
    let busy: std::collections::HashSet<i64> = running.iter().map(|c| c.ticket_id).collect();
    // One failing row never stops the others.
    out.started = crate::domain::each_row(
        "sla_sweep",
        tickets.iter().filter(|e| !busy.contains(&e.0)),
        |e| start_clock(conn, e),
    );
    // The clocks just started are tended in the same sweep.
    let running: Vec<Clock> = if out.started > 0 {
        sc::table
            .filter(sc::closed_at.is_null())
            .order(sc::id)
            .select(Clock::as_select())
            .load(conn)?
    } else {
        running
    };
    for c in running {
        let done = tend(conn, &c, at);
        match done {
            Ok((s, w, b)) => {
                out.stopped += s;
                out.warned += w;
                out.breached += b;
            }
            Err(e) => {
                tracing::error!(clock = c.id, error = %e, "service-level clock failed; going on");
                crate::metrics::job_row_failed("sla_sweep");
            }
        }
    }
    Ok(out)
}

/// Stops, breaches or warns one running clock: how many it stopped,
/// warned and breached (each 0 or 1).
fn tend(conn: &mut DbConnection, c: &Clock, at: NaiveDateTime) -> AppResult<(usize, usize, usize)> {
    let mut out = (0, 0, 0);
    type TicketRow = (
        String,
        Option<NaiveDateTime>,
        i64,
        Option<NaiveDateTime>,
        NaiveDateTime,
    );
    let (status, resolved_at, requester, closed_at, updated_at): TicketRow = t::table
        .find(c.ticket_id)
        .select((
            t::status,
            t::resolved_at,
            t::requester_id,
            t::closed_at,
            t::updated_at,
        ))
        .first(conn)?;
    let (sub_status, sub_ended): (String, Option<NaiveDateTime>) = subs::table
        .find(c.subscription_id)
        .select((subs::status, subs::ended_at))
        .first(conn)?;
    let sub_live = crate::domain::plans::LIVE.contains(&sub_status.as_str());
    let reply: Option<NaiveDateTime> = tm::table
        .filter(tm::ticket_id.eq(c.ticket_id))
        .filter(tm::internal.eq(false))
        .filter(tm::author_id.ne(requester))
        .filter(tm::created_at.ge(c.started_at))
        .select(diesel::dsl::min(tm::created_at))
        .first(conn)?;
    let response = [reply, resolved_at.filter(|r| *r >= c.started_at)]
        .into_iter()
        .flatten()
        .min();
    // When the ticket left the queue, if it did: the instant recorded, not
    // the sweep's.
    let left = (status != "open" && status != "claimed").then(|| closed_at.unwrap_or(updated_at));
    // Missed: the ticket still waited at the deadline (answered after it,
    // or left the queue after it, counts too) and the subscription still
    // ran then.
    let waited_until = response.or(left).unwrap_or(at);
    let ended_by_deadline = match sub_ended {
        Some(e) => e <= c.due_at,
        None => !sub_live,
    };
    if c.breached_at.is_none()
        && at >= c.due_at
        && waited_until > c.due_at
        && !ended_by_deadline
        && breach(conn, c)?
    {
        out.2 = 1;
    }
    let stop = match (response, left) {
        (Some(r), _) => Some((r, "responded")),
        (None, Some(l)) => Some((l, "ended")),
        (None, None) if !sub_live => Some((sub_ended.unwrap_or(at), "ended")),
        (None, None) => None,
    };
    if let Some((when, why)) = stop {
        out.0 = diesel::update(sc::table.find(c.id).filter(sc::closed_at.is_null()))
            .set((
                sc::closed_at.eq(Some(when)),
                sc::closed_reason.eq(Some(why)),
            ))
            .execute(conn)?;
        return Ok(out);
    }
    if c.warned_at.is_none() && c.breached_at.is_none() && at >= c.warn_at && at < c.due_at {
        out.1 = write_tx(conn, |conn| -> AppResult<usize> {
            let n = diesel::update(sc::table.find(c.id).filter(sc::warned_at.is_null()))
                .set(sc::warned_at.eq(Some(at)))
                .execute(conn)?;
            if n == 1 {
                crate::domain::tickets::record_sla_event(
                    conn,
                    c.ticket_id,
                    "sla_warning",
                    &format!(
                        "the response is due by {} UTC",
                        c.due_at.format("%Y-%m-%d %H:%M")
                    ),
                )?;
            }
            Ok(n)
        })?;
    }
    Ok(out)
}

/// Starts the ticket's clock when it waits on the team and none runs for
/// this wait yet. Returns whether it started one.
fn start_clock(conn: &mut DbConnection, e: &Enterprise) -> AppResult<bool> {
    let (ticket, requester, project, _, submitted, _, sub, hours, _, sub_start) = e.clone();
    let (Some(submitted), Some(hours)) = (submitted, hours) else {
        return Ok(false);
    };
    // The messages that are not internal notes, in order.
    let said: Vec<(i64, NaiveDateTime)> = tm::table
        .filter(tm::ticket_id.eq(ticket))
        .filter(tm::internal.eq(false))
        .filter(tm::created_at.ge(submitted))
        .order((tm::created_at, tm::id))
        .select((tm::author_id, tm::created_at))
        .load(conn)?;
    // The team last spoke: its last public message, or a resolution.
    let resolved: Option<NaiveDateTime> =
        t::table.find(ticket).select(t::resolved_at).first(conn)?;
    let last_team = said
        .iter()
        .rev()
        .find(|(a, _)| *a != requester)
        .map(|m| m.1)
        .into_iter()
        .chain(resolved.filter(|r| *r >= submitted))
        .max();
    // Waiting on the team since its submission, or since the requester's
    // first message after the team last spoke; no wait: nothing to start.
    let (since, kind) = match last_team {
        None => (submitted, "first_response"),
        Some(team) => match said.iter().find(|(a, at)| *a == requester && *at >= team) {
            Some((_, at)) => (*at, "next_response"),
            None => return Ok(false),
        },
    };
    // The plan's guarantee begins with the subscription.
    let since = since.max(sub_start);
    let known: i64 = sc::table
        .filter(sc::ticket_id.eq(ticket))
        .filter(sc::started_at.ge(since))
        .count()
        .get_result(conn)?;
    if known > 0 {
        return Ok(false);
    }
    let cal = crate::domain::calendar::of_project(conn, project)?;
    let minutes = i64::from(hours) * 60;
    let from = since.and_utc();
    let (Some(due), Some(warn)) = (
        cal.add_business_minutes(from, minutes),
        cal.add_business_minutes(from, minutes * 3 / 4),
    ) else {
        return Ok(false);
    };
    let currency: String = subs::table.find(sub).select(subs::currency).first(conn)?;
    let n = crate::per_backend!(conn, |c| diesel::insert_into(sc::table)
        .values((
            sc::ticket_id.eq(ticket),
            sc::subscription_id.eq(sub),
            sc::kind.eq(kind),
            sc::started_at.eq(since),
            sc::warn_at.eq(warn.naive_utc()),
            sc::due_at.eq(due.naive_utc()),
            sc::credit_amount.eq(0_i64),
            sc::currency.eq(&currency),
        ))
        .on_conflict_do_nothing()
        .execute(c))?;
    Ok(n == 1)
}

/// The service credit one breach earns: the plan's share of a month's fee
/// as the subscriber pays it (after any discount), floored.
pub fn credit_for(monthly_price: i64, discount_pct: i32, service_credit_pct: i32) -> i64 {
    let monthly = i128::from(monthly_price) * i128::from(100 - discount_pct) / 100;
    i64::try_from(monthly * i128::from(service_credit_pct) / 100).unwrap_or(0)
}

/// Records the clock's breach once: the service credit booked, the
/// requester told. Returns whether this call recorded it.
fn breach(conn: &mut DbConnection, c: &Clock) -> AppResult<bool> {
    write_tx(conn, |conn| {
        let at = now();
        // Under the subscription's lock: one that ended meanwhile earns no
        // credit (its credit has lapsed).
        let sub = crate::domain::plans::lock_subscription(conn, c.subscription_id)?;
        if !sub.is_live() {
            return Ok(false);
        }
        let n = diesel::update(sc::table.find(c.id).filter(sc::breached_at.is_null()))
            .set(sc::breached_at.eq(Some(at)))
            .execute(conn)?;
        if n == 0 {
            return Ok(false);
        }
        let (project, monthly, discount, pct): (i64, i64, i32, i32) = subs::table
            .inner_join(plans::table.on(plans::id.eq(subs::plan_id)))
            .filter(subs::id.eq(c.subscription_id))
            .select((
                subs::project_id,
                subs::monthly_price,
                subs::discount_pct,
                plans::service_credit_pct,
            ))
            .first(conn)?;
        let credit = credit_for(monthly, discount, pct);
        if credit > 0 {
            let owed = ledger::account(
                conn,
                AccountKind::ServiceCreditsOwed,
                Some(project),
                &c.currency,
            )?;
            let held = ledger::account(
                conn,
                AccountKind::ServiceCredit,
                Some(c.subscription_id),
                &c.currency,
            )?;
            ledger::apply(
                conn,
                &[NewTransfer {
                    key: format!("sla_clock:{}:credit", c.id),
                    kind: TransferKind::Posted,
                    debit: owed.id,
                    credit: held.id,
                    amount: credit,
                    pending_id: None,
                    ticket_id: Some(c.ticket_id),
                    memo: format!(
                        "service credit: ticket {} missed its response time",
                        c.ticket_id
                    ),
                }],
            )?;
            diesel::update(sc::table.find(c.id))
                .set(sc::credit_amount.eq(credit))
                .execute(conn)?;
            // A gateway that bills the subscription takes it off there.
            if sub.gateway_subscription_id.is_some() {
                guildhall_jobs::BackgroundJob::enqueue(
                    &crate::job_payloads::PushServiceCredit {
                        subscription_id: sub.id,
                    },
                    conn,
                )
                .map_err(crate::error::AppError::internal)?;
            }
        }
        crate::domain::tickets::record_sla_event(
            conn,
            c.ticket_id,
            "sla_breach",
            &format!(
                "the response was due by {} UTC; a service credit is taken off the next charge",
                c.due_at.format("%Y-%m-%d %H:%M")
            ),
        )?;
        tracing::warn!(
            ticket = c.ticket_id,
            clock = c.id,
            credit,
            "service level breached"
        );
        Ok(true)
    })
}

/// A ticket's clocks, oldest first.
pub fn of_ticket(conn: &mut DbConnection, ticket: i64) -> QueryResult<Vec<Clock>> {
    sc::table
        .filter(sc::ticket_id.eq(ticket))
        .order(sc::id)
        .select(Clock::as_select())
        .load(conn)
}

/// The project's guarantees whose wait began in `[from, to)` and that are
/// decided: (when the wait began, whether it was met). A clock is decided
/// once it was breached or the team responded.
pub fn decided(
    conn: &mut DbConnection,
    project: i64,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> QueryResult<Vec<(NaiveDateTime, bool)>> {
    let rows: Vec<(NaiveDateTime, Option<NaiveDateTime>, Option<String>)> = sc::table
        .inner_join(t::table.on(t::id.eq(sc::ticket_id)))
        .filter(t::project_id.eq(project))
        .filter(sc::started_at.ge(from))
        .filter(sc::started_at.lt(to))
        .select((sc::started_at, sc::breached_at, sc::closed_reason))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter(|(_, b, r)| b.is_some() || r.as_deref() == Some("responded"))
        .map(|(began, b, _)| (began, b.is_none()))
        .collect())
}

/// How a project kept its guarantees whose wait began in `[from, to)`:
/// clocks decided (met or breached), and of those met.
pub fn share_met(
    conn: &mut DbConnection,
    project: i64,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> QueryResult<(i64, i64)> {
    let d = decided(conn, project, from, to)?;
    let met = d.iter().filter(|(_, m)| *m).count();
    Ok((d.len() as i64, met as i64))
}
