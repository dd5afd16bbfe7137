//! Handing a project's support business to another user (issue 13 §5).
//!
//! The maintainer of record (the project's *steward*: whoever a handover
//! last made it, else the maintainer who created the project) proposes a
//! handover to another user with a date; that user accepts. Before the date
//! the new maintainer must prove, with their own GitHub token, that they
//! administer or maintain the project's repository, and have a payout
//! account that is ready. At the date, or as soon after it as the new
//! maintainer is ready (the `apply-handovers` job, every minute):
//!
//! * what the project earned and has not paid out yet moves, ticket by
//!   ticket, to the outgoing maintainer's payable account (it accrued under
//!   them), and from then on the project's revenue is paid out to the new
//!   maintainer's payout account;
//! * the new maintainer becomes a maintainer and the steward, the outgoing
//!   one steps down; plans, SLA terms, subscriptions, vetted helpers and
//!   open escrows belong to the project and so move with it;
//! * subscribers are told by mail and may cancel.
//!
//! Either party (or a platform admin) can reverse an applied handover for
//! [`REVERSE_DAYS`] days: what the project earned meanwhile goes to the new
//! maintainer, and the steward, maintainers and payouts are as they were.
//! Every step is audit-logged. A handover whose new maintainer is still not
//! ready [`READY_DAYS`] days after its date fails, saying why.

use super::{audit, now, projects};
use crate::db::schema::{handovers as h, projects as pr};
use crate::db::write_tx;
use crate::db::DbConnection;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::ledger::{self, AccountKind, NewTransfer, TransferKind};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use guildhall_jobs::BackgroundJob as _;

/// Days an applied handover may be reversed.
pub const REVERSE_DAYS: i64 = 14;
/// Furthest date a handover may be proposed for, days ahead.
pub const MAX_DAYS_AHEAD: i64 = 365;
/// Days after its date a handover waits for the new maintainer to be ready
/// before it fails.
pub const READY_DAYS: i64 = 7;

/// A row of `handovers`.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = h)]
pub struct Handover {
    /// Id.
    pub id: i64,
    /// Project.
    pub project_id: i64,
    /// The maintainer handing over.
    pub from_user_id: i64,
    /// The new maintainer.
    pub to_user_id: i64,
    /// From when the revenue accrues to the new maintainer.
    pub effective_at: NaiveDateTime,
    /// `proposed`, `accepted`, `applied`, `reversed`, `cancelled` or `failed`.
    pub status: String,
    /// Why it failed.
    pub failure: Option<String>,
    /// When the new maintainer proved their rights on the repository.
    pub repo_verified_at: Option<NaiveDateTime>,
    /// Who received the revenue before (restored by a reversal).
    pub prev_steward_id: Option<i64>,
    /// Whether the new maintainer already maintained the project.
    pub to_was_maintainer: bool,
    /// Proposed.
    pub created_at: NaiveDateTime,
    /// Accepted by the new maintainer.
    pub accepted_at: Option<NaiveDateTime>,
    /// Applied.
    pub applied_at: Option<NaiveDateTime>,
    /// Reversed.
    pub reversed_at: Option<NaiveDateTime>,
    /// Who reversed it.
    pub reversed_by: Option<i64>,
}

impl Handover {
    /// Until when an applied handover may be reversed.
    pub fn reversible_until(&self) -> Option<NaiveDateTime> {
        self.applied_at
            .filter(|_| self.status == "applied")
            .map(|a| a + chrono::Duration::days(REVERSE_DAYS))
    }
}

/// The project's steward: who holds its support business.
pub fn steward(conn: &mut DbConnection, project: i64) -> QueryResult<i64> {
    let (steward, creator): (Option<i64>, i64) = pr::table
        .find(project)
        .select((pr::steward_id, pr::created_by))
        .first(conn)?;
    Ok(steward.unwrap_or(creator))
}

/// Whoever the project's revenue is paid out to when set (a handover made
/// them steward); `None`: the project's own payout account.
pub fn revenue_payee(conn: &mut DbConnection, project: i64) -> QueryResult<Option<i64>> {
    pr::table.find(project).select(pr::steward_id).first(conn)
}

/// A handover by id.
pub fn get(conn: &mut DbConnection, id: i64) -> AppResult<Handover> {
    h::table
        .find(id)
        .select(Handover::as_select())
        .first(conn)
        .optional()?
        .ok_or(AppError::not_found("handover"))
}

/// The project's handovers, newest first.
pub fn of_project(conn: &mut DbConnection, project: i64) -> QueryResult<Vec<Handover>> {
    h::table
        .filter(h::project_id.eq(project))
        .order(h::id.desc())
        .limit(100)
        .select(Handover::as_select())
        .load(conn)
}

/// Handovers `user` is party to, newest first.
pub fn of_user(conn: &mut DbConnection, user: i64) -> QueryResult<Vec<Handover>> {
    h::table
        .filter(h::from_user_id.eq(user).or(h::to_user_id.eq(user)))
        .order(h::id.desc())
        .limit(100)
        .select(Handover::as_select())
        .load(conn)
}

/// Whether `user` may see handover `x`: its parties, the project's
/// maintainers and platform admins.
pub fn may_see(conn: &mut DbConnection, x: &Handover, user: i64) -> AppResult<bool> {
    Ok(x.from_user_id == user
        || x.to_user_id == user
        || projects::is_maintainer(conn, x.project_id, user)?
        || super::users::get(conn, user)?.is_admin)
}

/// A handover `user` may see, else 404.
pub fn visible(conn: &mut DbConnection, id: i64, user: i64) -> AppResult<Handover> {
    let x = get(conn, id)?;
    if may_see(conn, &x, user)? {
        Ok(x)
    } else {
        Err(AppError::not_found("handover"))
    }
}

fn lock(conn: &mut DbConnection, id: i64) -> AppResult<Handover> {
    if let DbConnection::Pg(pg) = conn {
        h::table
            .find(id)
            .select(h::id)
            .for_update()
            .first::<i64>(pg)
            .optional()?
            .ok_or(AppError::not_found("handover"))?;
    }
    get(conn, id)
}

/// Locks the project's row until the transaction ends (PostgreSQL; SQLite
/// has one writer), so proposals, applications and reversals of one
/// project happen one at a time.
fn lock_project(conn: &mut DbConnection, project: i64) -> AppResult<()> {
    if let DbConnection::Pg(pg) = conn {
        pr::table
            .find(project)
            .select(pr::id)
            .for_update()
            .first::<i64>(pg)?;
    }
    Ok(())
}

fn wrong_state(x: &Handover, action: &str) -> AppError {
    AppError::conflict(
        ErrorCode::InvalidTransition,
        format!("the handover is {} and cannot be {action}", x.status),
    )
}

/// The steward of the project proposes handing it to `to` from
/// `effective_at` (now or up to a year ahead).
pub fn propose(
    conn: &mut DbConnection,
    project_id: i64,
    from: i64,
    to: i64,
    effective_at: NaiveDateTime,
) -> AppResult<Handover> {
    write_tx(conn, |conn| {
        lock_project(conn, project_id)?;
        require_steward(conn, project_id, from)?;
        // A handover still reversible stays reversible: the project cannot
        // be handed on before its window closes.
        let reversible: Vec<Handover> = h::table
            .filter(h::project_id.eq(project_id))
            .filter(h::status.eq("applied"))
            .select(Handover::as_select())
            .load(conn)?;
        if reversible
            .iter()
            .any(|x| x.reversible_until().is_some_and(|u| u > now()))
        {
            return Err(AppError::conflict(
                ErrorCode::Conflict,
                format!("the project was handed over less than {REVERSE_DAYS} days ago; it can be handed on once that handover can no longer be reversed"),
            ));
        }
        let mut bad = Vec::new();
        if to == from {
            bad.push(("to_user_id", "must be someone else".to_owned()));
        } else if super::users::get(conn, to).is_err() {
            bad.push(("to_user_id", "no such user".to_owned()));
        } else if super::moderation::active_ban(conn, Some(project_id), to)?.is_some() {
            bad.push(("to_user_id", "is banned from this project".to_owned()));
        }
        let at = now();
        if effective_at < at - chrono::Duration::minutes(5) {
            bad.push(("effective_at", "must not be in the past".to_owned()));
        } else if effective_at > at + chrono::Duration::days(MAX_DAYS_AHEAD) {
            bad.push((
                "effective_at",
                format!("must be within {MAX_DAYS_AHEAD} days"),
            ));
        }
        if !bad.is_empty() {
            return Err(AppError::Validation(
                bad.into_iter()
                    .map(|(f, m)| crate::error::FieldError::new(f, m))
                    .collect(),
            ));
        }
        let id: i64 = diesel::insert_into(h::table)
            .values((
                h::project_id.eq(project_id),
                h::from_user_id.eq(from),
                h::to_user_id.eq(to),
                h::effective_at.eq(effective_at.max(at)),
                h::status.eq("proposed"),
                h::to_was_maintainer.eq(false),
                h::created_at.eq(at),
            ))
            .returning(h::id)
            .get_result(conn)
            .map_err(AppError::on_unique(
                ErrorCode::Conflict,
                "a handover of this project is already under way; cancel it first",
            ))?;
        audit::record(
            conn,
            Some(from),
            "handover.propose",
            "handover",
            Some(id),
            &format!("project {project_id} to user {to} from {effective_at}"),
        )?;
        let x = get(conn, id)?;
        let project = projects::by_id(conn, project_id)?;
        let from_name = name_of(conn, from)?;
        crate::job_payloads::SendNotice {
            user_id: to,
            subject: format!("{from_name} would hand {} over to you", project.name),
            text: format!(
                "{from_name} proposes to hand the support of {} on Guildhall over to you from {}. To take it on, accept on the handover's page, prove through GitHub that you administer or maintain the repository, and set up your payout account before that date.",
                project.name,
                x.effective_at.format("%Y-%m-%d %H:%M UTC")
            ),
            link: format!("/handovers/{id}"),
            appeal_ban: None,
        }
        .enqueue(conn)
        .map_err(AppError::internal)?;
        Ok(x)
    })
}

/// 403 unless `user` is the project's maintainer of record (and still a
/// maintainer).
pub fn require_steward(conn: &mut DbConnection, project: i64, user: i64) -> AppResult<()> {
    projects::require_maintainer(conn, project, user)?;
    if steward(conn, project)? != user {
        return Err(AppError::forbidden(
            "only the project's maintainer of record may hand it over",
        ));
    }
    Ok(())
}

/// The new maintainer accepts (and with it the project's code of conduct).
pub fn accept(conn: &mut DbConnection, id: i64, user: i64) -> AppResult<Handover> {
    write_tx(conn, |conn| {
        let x = lock(conn, id)?;
        if !may_see(conn, &x, user)? {
            return Err(AppError::not_found("handover"));
        }
        if x.to_user_id != user {
            return Err(AppError::forbidden(
                "only the new maintainer may accept the handover",
            ));
        }
        if x.status != "proposed" {
            return Err(wrong_state(&x, "accepted"));
        }
        super::moderation::require_not_banned(conn, x.project_id, user)?;
        projects::accept_coc(conn, x.project_id, user)?;
        diesel::update(h::table.find(id))
            .set((h::status.eq("accepted"), h::accepted_at.eq(Some(now()))))
            .execute(conn)?;
        audit::record(
            conn,
            Some(user),
            "handover.accept",
            "handover",
            Some(id),
            "",
        )?;
        get(conn, id)
    })
}

/// Either party calls off a handover not yet applied.
pub fn cancel(conn: &mut DbConnection, id: i64, user: i64) -> AppResult<Handover> {
    write_tx(conn, |conn| {
        let x = lock(conn, id)?;
        if !may_see(conn, &x, user)? {
            return Err(AppError::not_found("handover"));
        }
        if x.from_user_id != user && x.to_user_id != user {
            return Err(AppError::forbidden(
                "only the two maintainers may call the handover off",
            ));
        }
        if !matches!(x.status.as_str(), "proposed" | "accepted") {
            return Err(wrong_state(&x, "cancelled"));
        }
        diesel::update(h::table.find(id))
            .set(h::status.eq("cancelled"))
            .execute(conn)?;
        audit::record(
            conn,
            Some(user),
            "handover.cancel",
            "handover",
            Some(id),
            "",
        )?;
        get(conn, id)
    })
}

/// Records the new maintainer's proof, with their own GitHub token, that
/// they administer or maintain the project's repository.
pub fn record_repo_proof(
    conn: &mut DbConnection,
    id: i64,
    user: i64,
    repo: &crate::integrations::github::UserRepository,
) -> AppResult<Handover> {
    write_tx(conn, |conn| {
        let x = lock(conn, id)?;
        if x.to_user_id != user {
            return Err(AppError::forbidden(
                "only the new maintainer proves their rights on the repository",
            ));
        }
        if !matches!(x.status.as_str(), "proposed" | "accepted") {
            return Err(wrong_state(&x, "verified"));
        }
        let project = projects::by_id(conn, x.project_id)?;
        let named = crate::channels::github::repo_of_url(&project.repo_url);
        if named.as_deref() != Some(repo.full_name.to_ascii_lowercase().as_str()) {
            return Err(AppError::conflict(
                ErrorCode::Conflict,
                format!(
                    "The project's repository URL does not name {}.",
                    repo.full_name
                ),
            ));
        }
        if !(repo.admin || repo.maintain) {
            return Err(AppError::conflict(
                ErrorCode::Conflict,
                format!(
                    "GitHub says you neither administer nor maintain {}.",
                    repo.full_name
                ),
            ));
        }
        diesel::update(h::table.find(id))
            .set(h::repo_verified_at.eq(Some(now())))
            .execute(conn)?;
        audit::record(
            conn,
            Some(user),
            "handover.verify_repository",
            "handover",
            Some(id),
            &repo.full_name,
        )?;
        get(conn, id)
    })
}

/// What the new maintainer still lacks for the handover to happen.
pub fn missing(conn: &mut DbConnection, x: &Handover, gateway: &str) -> AppResult<Vec<String>> {
    let mut out = Vec::new();
    if x.accepted_at.is_none() {
        out.push("the new maintainer has not accepted".to_owned());
    }
    if x.repo_verified_at.is_none() {
        out.push(
            "the new maintainer has not proved through GitHub that they administer or maintain the repository"
                .to_owned(),
        );
    }
    if !super::payouts::is_ready(conn, super::payouts::Payee::User(x.to_user_id), gateway)? {
        out.push("the new maintainer has no payout account ready".to_owned());
    }
    Ok(out)
}

/// Moves what the project earned and has not paid out, ticket by ticket,
/// to `to`'s payable account (key `handover:{id}:{step}:…`). Returns the
/// amount moved.
fn sweep(
    conn: &mut DbConnection,
    project: i64,
    to: i64,
    handover: i64,
    step: &str,
) -> AppResult<i64> {
    let mut moved = 0;
    for account in ledger::accounts_of(conn, AccountKind::ProjectRevenue, project)? {
        let account = ledger::lock_account(conn, account.id)?;
        if account.frozen {
            continue;
        }
        let mut left = account.credits_posted - account.debits_posted - account.debits_pending;
        if left <= 0 {
            continue;
        }
        let payable = ledger::account(conn, AccountKind::UserPayable, Some(to), &account.currency)?;
        let mut chain = Vec::new();
        for (ticket, unpaid) in super::payouts::unpaid_by_ticket(conn, account.id)? {
            let amount = unpaid.min(left);
            if amount <= 0 {
                break;
            }
            left -= amount;
            chain.push(NewTransfer {
                key: format!(
                    "handover:{handover}:{step}:{}:{}",
                    account.currency,
                    ticket.map_or_else(|| "none".to_owned(), |t| t.to_string())
                ),
                kind: TransferKind::Posted,
                debit: account.id,
                credit: payable.id,
                amount,
                pending_id: None,
                ticket_id: ticket,
                memo: format!("project {project} revenue to its maintainer (handover {handover})"),
            });
        }
        if left > 0 {
            // Earned but not attributable to a ticket's unpaid credit (it
            // should not happen): it moves too, under no ticket.
            chain.push(NewTransfer {
                key: format!("handover:{handover}:{step}:{}:rest", account.currency),
                kind: TransferKind::Posted,
                debit: account.id,
                credit: payable.id,
                amount: left,
                pending_id: None,
                ticket_id: None,
                memo: format!("project {project} revenue to its maintainer (handover {handover})"),
            });
        }
        moved += chain.iter().map(|t| t.amount).sum::<i64>();
        ledger::apply(conn, &chain)?;
    }
    Ok(moved)
}

/// Mails each live subscriber of the project a notice.
fn tell_subscribers(
    conn: &mut DbConnection,
    project: &projects::Project,
    subject: &str,
    text: &str,
) -> AppResult<usize> {
    use crate::db::schema::subscriptions as subs;
    let subscribers: Vec<i64> = subs::table
        .filter(subs::project_id.eq(project.id))
        .filter(subs::status.eq_any(super::plans::LIVE))
        .select(subs::subscriber_id)
        .distinct()
        .load(conn)?;
    for user in &subscribers {
        crate::job_payloads::SendNotice {
            user_id: *user,
            subject: subject.to_owned(),
            text: text.to_owned(),
            link: "/me/subscriptions".to_owned(),
            appeal_ban: None,
        }
        .enqueue(conn)
        .map_err(AppError::internal)?;
    }
    Ok(subscribers.len())
}

fn name_of(conn: &mut DbConnection, user: i64) -> AppResult<String> {
    Ok(super::users::get(conn, user)?.display_name)
}

/// Applies every handover whose date has come and whose new maintainer is
/// ready, and fails those still not ready [`READY_DAYS`] days after their
/// date. Returns how many it decided.
pub fn apply_due(conn: &mut DbConnection, gateway: &str) -> AppResult<usize> {
    let due: Vec<i64> = h::table
        .filter(h::status.eq_any(["proposed", "accepted"]))
        .filter(h::effective_at.le(now()))
        .order(h::id)
        .select(h::id)
        .load(conn)?;
    let mut n = 0;
    for id in due {
        match apply_one(conn, id, gateway) {
            Ok(true) => n += 1,
            Ok(false) => {}
            Err(e) => tracing::warn!(handover = id, error = %e, "handover not applied"),
        }
    }
    Ok(n)
}

fn apply_one(conn: &mut DbConnection, id: i64, gateway: &str) -> AppResult<bool> {
    write_tx(conn, |conn| {
        let x = get(conn, id)?;
        lock_project(conn, x.project_id)?;
        let x = lock(conn, id)?;
        if !matches!(x.status.as_str(), "proposed" | "accepted") || x.effective_at > now() {
            return Ok(false);
        }
        let project = projects::by_id(conn, x.project_id)?;
        let mut lacking = missing(conn, &x, gateway)?;
        // The one handing over must still hold the project; if not, it
        // fails at once.
        let gone = steward(conn, x.project_id)? != x.from_user_id
            || !projects::is_maintainer(conn, x.project_id, x.from_user_id)?;
        if gone {
            lacking = vec!["the project is no longer theirs to hand over".to_owned()];
        } else if !lacking.is_empty()
            && now() <= x.effective_at + chrono::Duration::days(READY_DAYS)
        {
            return Ok(false);
        }
        if !lacking.is_empty() {
            let why = lacking.join("; ");
            diesel::update(h::table.find(id))
                .set((h::status.eq("failed"), h::failure.eq(Some(&why))))
                .execute(conn)?;
            audit::record(conn, None, "handover.fail", "handover", Some(id), &why)?;
            for user in [x.from_user_id, x.to_user_id] {
                crate::job_payloads::SendNotice {
                    user_id: user,
                    subject: format!("The handover of {} did not happen", project.name),
                    text: format!(
                        "The handover of {} planned for {} did not happen within {READY_DAYS} days: {why}. The maintainer may propose it again.",
                        project.name,
                        x.effective_at.format("%Y-%m-%d %H:%M UTC")
                    ),
                    link: format!("/handovers/{id}"),
                    appeal_ban: None,
                }
                .enqueue(conn)
        .map_err(AppError::internal)?;
            }
            return Ok(true);
        }
        let moved = sweep(conn, x.project_id, x.from_user_id, id, "apply")?;
        let prev = revenue_payee(conn, x.project_id)?;
        let was = projects::is_maintainer(conn, x.project_id, x.to_user_id)?;
        projects::add_maintainer(conn, x.project_id, x.to_user_id, x.from_user_id)?;
        projects::remove_maintainer(conn, x.project_id, x.from_user_id)?;
        diesel::update(pr::table.find(x.project_id))
            .set(pr::steward_id.eq(Some(x.to_user_id)))
            .execute(conn)?;
        diesel::update(h::table.find(id))
            .set((
                h::status.eq("applied"),
                h::applied_at.eq(Some(now())),
                h::prev_steward_id.eq(prev),
                h::to_was_maintainer.eq(was),
            ))
            .execute(conn)?;
        audit::record(
            conn,
            None,
            "handover.apply",
            "handover",
            Some(id),
            &format!(
                "project {} now run by user {}; {moved} of revenue earned before went to user {}",
                x.project_id, x.to_user_id, x.from_user_id
            ),
        )?;
        let new_name = name_of(conn, x.to_user_id)?;
        tell_subscribers(
            conn,
            &project,
            &format!("{} has a new maintainer", project.name),
            &format!(
                "From {} the support of {} on Guildhall is run by {new_name}. Your plan, its terms and what you have paid are unchanged. If you would rather not continue, you can cancel your subscription at any time; it then ends with the period you paid for.",
                x.effective_at.format("%Y-%m-%d"),
                project.name
            ),
        )?;
        Ok(true)
    })
}

/// Either party (or a platform admin) reverses an applied handover within
/// [`REVERSE_DAYS`] days.
pub fn reverse(conn: &mut DbConnection, id: i64, user: i64) -> AppResult<Handover> {
    write_tx(conn, |conn| {
        let x = get(conn, id)?;
        lock_project(conn, x.project_id)?;
        let x = lock(conn, id)?;
        if !may_see(conn, &x, user)? {
            return Err(AppError::not_found("handover"));
        }
        if x.from_user_id != user
            && x.to_user_id != user
            && !super::users::get(conn, user)?.is_admin
        {
            return Err(AppError::forbidden(
                "only the two maintainers or a platform admin may reverse the handover",
            ));
        }
        if x.status != "applied" {
            return Err(wrong_state(&x, "reversed"));
        }
        if x.reversible_until().is_some_and(|until| now() > until) {
            return Err(AppError::conflict(
                ErrorCode::InvalidTransition,
                format!("a handover can be reversed only within {REVERSE_DAYS} days"),
            ));
        }
        if revenue_payee(conn, x.project_id)? != Some(x.to_user_id) {
            return Err(AppError::conflict(
                ErrorCode::InvalidTransition,
                "the project was handed on again since; reverse that first",
            ));
        }
        if super::moderation::active_ban(conn, Some(x.project_id), x.from_user_id)?.is_some() {
            return Err(AppError::conflict(
                ErrorCode::InvalidTransition,
                "the previous maintainer is banned from the project; the handover cannot be reversed",
            ));
        }
        let moved = sweep(conn, x.project_id, x.to_user_id, id, "reverse")?;
        diesel::update(pr::table.find(x.project_id))
            .set(pr::steward_id.eq(x.prev_steward_id))
            .execute(conn)?;
        projects::add_maintainer(conn, x.project_id, x.from_user_id, user)?;
        if !x.to_was_maintainer {
            projects::remove_maintainer(conn, x.project_id, x.to_user_id)?;
        }
        // Whatever the new maintainer started is called off with it.
        diesel::update(
            h::table
                .filter(h::project_id.eq(x.project_id))
                .filter(h::status.eq_any(["proposed", "accepted"])),
        )
        .set(h::status.eq("cancelled"))
        .execute(conn)?;
        diesel::update(h::table.find(id))
            .set((
                h::status.eq("reversed"),
                h::reversed_at.eq(Some(now())),
                h::reversed_by.eq(Some(user)),
            ))
            .execute(conn)?;
        audit::record(
            conn,
            Some(user),
            "handover.reverse",
            "handover",
            Some(id),
            &format!(
                "project {} back to user {}; {moved} of revenue earned meanwhile went to user {}",
                x.project_id, x.from_user_id, x.to_user_id
            ),
        )?;
        let project = projects::by_id(conn, x.project_id)?;
        let name = name_of(conn, x.from_user_id)?;
        tell_subscribers(
            conn,
            &project,
            &format!("{} is back with its previous maintainer", project.name),
            &format!(
                "The handover of {} was reversed: its support on Guildhall is run by {name} again. Your plan and its terms are unchanged.",
                project.name
            ),
        )?;
        get(conn, id)
    })
}
