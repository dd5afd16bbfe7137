//! Keeping order (issue 13 §4): flags, their review, and bans.
//!
//! * Anyone signed in flags a ticket or a message they can see (spam, rude,
//!   illegal, other, with a note). A flag weighs 1, more for people whose
//!   past flags were upheld (up to [`MAX_WEIGHT`]), less again for those
//!   dismissed. When the open flags on an item weigh [`HIDE_AT`] or more,
//!   the item is hidden until reviewed: a ticket becomes visible only to its
//!   requester and team (and leaves public search), a message only to its
//!   author and the team.
//! * The project's maintainers (and platform admins) review: uphold (the
//!   item stays hidden) or dismiss (it shows again); every open flag on the
//!   item gets the decision.
//! * Bans, per project or platform-wide, with a reason and an optional end:
//!   a banned user cannot open, submit, claim, bid on or write on tickets
//!   there. Escrow already funded is untouched (refunds and releases follow
//!   the normal rules); their subscriptions there end without refund, as
//!   the platform's terms say.
//! * Every review, ban and lift is written to the audit log.

use crate::db::schema::{bans, flags, ticket_messages as tm, tickets as t};
use crate::db::{write_tx, DbConnection};
use crate::domain::now;
use crate::error::{AppError, AppResult, ErrorCode, FieldError};
use chrono::NaiveDateTime;
use diesel::prelude::*;

/// What a flag may say.
pub const REASONS: [&str; 4] = ["spam", "rude", "illegal", "other"];
/// Open flags weighing this much hide the item until review.
pub const HIDE_AT: i64 = 3;
/// The most one flag weighs.
pub const MAX_WEIGHT: i32 = 3;

/// A row of `flags`.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = flags)]
pub struct Flag {
    /// Id.
    pub id: i64,
    /// `ticket` or `message`.
    pub target_type: String,
    /// Which.
    pub target_id: i64,
    /// Its project.
    pub project_id: i64,
    /// Who flagged.
    pub flagger_id: i64,
    /// `spam`, `rude`, `illegal` or `other`.
    pub reason: String,
    /// Their note.
    pub note: Option<String>,
    /// What it weighed.
    pub weight: i32,
    /// `open`, `upheld` or `dismissed`.
    pub status: String,
    /// Reviewer.
    pub reviewed_by: Option<i64>,
    /// Reviewed.
    pub reviewed_at: Option<NaiveDateTime>,
    /// Flagged.
    pub created_at: NaiveDateTime,
}

/// A row of `bans`.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = bans)]
pub struct Ban {
    /// Id.
    pub id: i64,
    /// The project; `None`: the whole platform.
    pub project_id: Option<i64>,
    /// Who.
    pub user_id: i64,
    /// Why.
    pub reason: String,
    /// Until (`None`: until lifted).
    pub until: Option<NaiveDateTime>,
    /// Who banned.
    pub created_by: i64,
    /// When.
    pub created_at: NaiveDateTime,
    /// Lifted.
    pub lifted_at: Option<NaiveDateTime>,
    /// By whom.
    pub lifted_by: Option<i64>,
}

/// What a flag's weight is for `user` now: 1, plus one per upheld flag,
/// less one per two dismissed, between 1 and [`MAX_WEIGHT`].
pub fn weight_of(conn: &mut DbConnection, user: i64) -> QueryResult<i32> {
    let count = |conn: &mut DbConnection, status: &str| -> QueryResult<i64> {
        flags::table
            .filter(flags::flagger_id.eq(user))
            .filter(flags::status.eq(status))
            .count()
            .get_result(conn)
    };
    let upheld = count(conn, "upheld")?;
    let dismissed = count(conn, "dismissed")?;
    Ok(i32::try_from((1 + upheld - dismissed / 2).clamp(1, i64::from(MAX_WEIGHT))).unwrap_or(1))
}

/// The project and author of a target the user can see (404 otherwise).
fn target_of(conn: &mut DbConnection, kind: &str, id: i64, user: i64) -> AppResult<(i64, i64)> {
    match kind {
        "ticket" => {
            let (ticket, _) = crate::domain::tickets::load_visible(conn, id, Some(user))?;
            Ok((ticket.project_id, ticket.requester_id))
        }
        "message" => {
            let (ticket, author, internal): (i64, i64, bool) = tm::table
                .find(id)
                .select((tm::ticket_id, tm::author_id, tm::internal))
                .first(conn)
                .optional()?
                .ok_or_else(|| AppError::not_found("message"))?;
            let (tk, a) = crate::domain::tickets::load_visible(conn, ticket, Some(user))
                .map_err(|_| AppError::not_found("message"))?;
            if internal && !a.team() {
                return Err(AppError::not_found("message"));
            }
            Ok((tk.project_id, author))
        }
        _ => Err(AppError::field("target", "must be ticket or message")),
    }
}

/// Hides or shows the target (a ticket is re-indexed: hidden, it leaves
/// public search).
fn set_hidden(conn: &mut DbConnection, kind: &str, id: i64, hidden: bool) -> AppResult<()> {
    let at = hidden.then(now);
    if kind == "ticket" {
        diesel::update(t::table.find(id))
            .set((
                t::hidden_at.eq(at),
                t::index_version.eq(t::index_version + 1),
            ))
            .execute(conn)?;
        crate::job_payloads::SyncIndex.enqueue(conn)?;
    } else {
        let ticket: i64 = diesel::update(tm::table.find(id))
            .set(tm::hidden_at.eq(at))
            .returning(tm::ticket_id)
            .get_result(conn)?;
        // The ticket's indexed answer may be this message.
        diesel::update(t::table.find(ticket))
            .set(t::index_version.eq(t::index_version + 1))
            .execute(conn)?;
        crate::job_payloads::SyncIndex.enqueue(conn)?;
    }
    Ok(())
}

use guildhall_jobs::BackgroundJob as _;

/// `user` flags a ticket or message they can see. 422 for a bad reason or
/// note, their own item; 409 when they flagged it already. Returns the
/// flag and whether the item is now hidden.
pub fn flag(
    conn: &mut DbConnection,
    user: i64,
    kind: &str,
    id: i64,
    reason: &str,
    note: Option<&str>,
) -> AppResult<(Flag, bool)> {
    let mut errors = Vec::new();
    if !REASONS.contains(&reason) {
        errors.push(FieldError::new(
            "reason",
            "must be spam, rude, illegal or other",
        ));
    }
    let note = note.map(str::trim).filter(|n| !n.is_empty());
    if note.is_some_and(|n| n.chars().count() > 1000) {
        errors.push(FieldError::new("note", "must be at most 1000 characters"));
    }
    if !errors.is_empty() {
        return Err(AppError::Validation(errors));
    }
    let (project, author) = target_of(conn, kind, id, user)?;
    require_not_banned(conn, project, user)?;
    if author == user {
        return Err(AppError::field("id", "you cannot flag what you wrote"));
    }
    let weight = weight_of(conn, user)?;
    write_tx(conn, |conn| {
        let fid: i64 = diesel::insert_into(flags::table)
            .values((
                flags::target_type.eq(kind),
                flags::target_id.eq(id),
                flags::project_id.eq(project),
                flags::flagger_id.eq(user),
                flags::reason.eq(reason),
                flags::note.eq(note),
                flags::weight.eq(weight),
                flags::status.eq("open"),
                flags::created_at.eq(now()),
            ))
            .returning(flags::id)
            .get_result(conn)
            .map_err(AppError::on_unique(
                ErrorCode::Conflict,
                "you flagged this already",
            ))?;
        let open: Option<i64> = flags::table
            .filter(flags::target_type.eq(kind))
            .filter(flags::target_id.eq(id))
            .filter(flags::status.eq("open"))
            .select(diesel::dsl::sum(flags::weight))
            .first::<Option<i64>>(conn)?;
        let hide = open.unwrap_or(0) >= HIDE_AT;
        if hide {
            set_hidden(conn, kind, id, true)?;
        }
        let f = flags::table
            .find(fid)
            .select(Flag::as_select())
            .first(conn)?;
        Ok((f, hide))
    })
}

/// Whether `user` reviews the project's flags and bans there: its
/// maintainers and platform admins.
pub fn can_moderate(conn: &mut DbConnection, project: i64, user: i64) -> AppResult<bool> {
    Ok(crate::domain::projects::is_maintainer(conn, project, user)?
        || crate::domain::users::get(conn, user)?.is_admin)
}

/// A maintainer of the flag's project (or an admin) upholds or dismisses
/// it, and with it every open flag on the same item; upheld, the item stays
/// hidden, dismissed it shows again. Audit-logged. Returns how many flags
/// were decided (0: already reviewed).
pub fn review(
    conn: &mut DbConnection,
    flag_id: i64,
    reviewer: i64,
    uphold: bool,
) -> AppResult<usize> {
    let f = flags::table
        .find(flag_id)
        .select(Flag::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| AppError::not_found("flag"))?;
    if !can_moderate(conn, f.project_id, reviewer)? {
        return Err(AppError::not_found("flag"));
    }
    write_tx(conn, |conn| {
        let n = diesel::update(
            flags::table
                .filter(flags::target_type.eq(&f.target_type))
                .filter(flags::target_id.eq(f.target_id))
                .filter(flags::status.eq("open")),
        )
        .set((
            flags::status.eq(if uphold { "upheld" } else { "dismissed" }),
            flags::reviewed_by.eq(Some(reviewer)),
            flags::reviewed_at.eq(Some(now())),
        ))
        .execute(conn)?;
        if n == 0 {
            return Ok(0);
        }
        set_hidden(conn, &f.target_type, f.target_id, uphold)?;
        crate::domain::audit::record(
            conn,
            Some(reviewer),
            if uphold {
                "flag.uphold"
            } else {
                "flag.dismiss"
            },
            &f.target_type,
            Some(f.target_id),
            &format!("{n} flag(s) in project {}", f.project_id),
        )?;
        Ok(n)
    })
}

/// Open flags of a project, oldest first, one entry per flag.
pub fn open_flags(conn: &mut DbConnection, project: i64) -> QueryResult<Vec<Flag>> {
    flags::table
        .filter(flags::project_id.eq(project))
        .filter(flags::status.eq("open"))
        .order(flags::id)
        .limit(500)
        .select(Flag::as_select())
        .load(conn)
}

/// Open flags in every project, oldest first: the platform's review queue
/// (admins).
pub fn open_flags_everywhere(conn: &mut DbConnection) -> QueryResult<Vec<Flag>> {
    flags::table
        .filter(flags::status.eq("open"))
        .order(flags::id)
        .limit(500)
        .select(Flag::as_select())
        .load(conn)
}

/// The active ban of `user` that covers `project` (its own, or a
/// platform-wide one), if any.
pub fn active_ban(
    conn: &mut DbConnection,
    project: Option<i64>,
    user: i64,
) -> QueryResult<Option<Ban>> {
    let at = now();
    let mut q = bans::table
        .filter(bans::user_id.eq(user))
        .filter(bans::lifted_at.is_null())
        .filter(bans::until.is_null().or(bans::until.gt(at)))
        .select(Ban::as_select())
        .into_boxed();
    q = match project {
        Some(p) => q.filter(bans::project_id.eq(p).or(bans::project_id.is_null())),
        None => q.filter(bans::project_id.is_null()),
    };
    q.first(conn).optional()
}

/// 403 when `user` is banned from `project` (or the platform).
pub fn require_not_banned(conn: &mut DbConnection, project: i64, user: i64) -> AppResult<()> {
    match active_ban(conn, Some(project), user)? {
        None => Ok(()),
        Some(b) => {
            let scope = if b.project_id.is_some() {
                "this project"
            } else {
                "Guildhall"
            };
            let until = b
                .until
                .map(|u| format!(" until {}", u.format("%Y-%m-%d %H:%M UTC")))
                .unwrap_or_default();
            Err(AppError::Forbidden(
                format!("you are banned from {scope}{until}: {}", b.reason).into(),
            ))
        }
    }
}

/// Bans `user` from `project` (its maintainers or an admin) or, with
/// `None`, from the platform (admins). 422 for a bad reason or an end in
/// the past; 409 when already banned, or for a project's maintainer.
/// Their live subscriptions there end without refund. Audit-logged.
pub fn ban(
    conn: &mut DbConnection,
    actor: i64,
    project: Option<i64>,
    user: i64,
    reason: &str,
    until: Option<NaiveDateTime>,
) -> AppResult<Ban> {
    match project {
        Some(p) if can_moderate(conn, p, actor)? => {}
        Some(_) => {
            return Err(AppError::forbidden(
                "only the project's maintainers may ban here",
            ))
        }
        None => crate::domain::users::require_admin(
            conn,
            actor,
            "only a platform admin may ban from the platform",
        )?,
    }
    let reason = reason.trim();
    let mut errors = Vec::new();
    if reason.is_empty() || reason.chars().count() > 500 {
        errors.push(FieldError::new("reason", "must be 1 to 500 characters"));
    }
    if until.is_some_and(|u| u <= now()) {
        errors.push(FieldError::new("until", "must be in the future"));
    }
    if user == actor {
        errors.push(FieldError::new("user_id", "you cannot ban yourself"));
    }
    if !errors.is_empty() {
        return Err(AppError::Validation(errors));
    }
    crate::domain::users::get(conn, user)
        .map_err(|_| AppError::field("user_id", "no such user"))?;
    if let Some(p) = project {
        if crate::domain::projects::is_maintainer(conn, p, user)? {
            return Err(AppError::conflict(
                ErrorCode::Conflict,
                "a maintainer of the project cannot be banned from it",
            ));
        }
    }
    write_tx(conn, |conn| {
        // A ban that ran out is over: it does not block a new one.
        let scope = bans::table
            .filter(bans::user_id.eq(user))
            .filter(bans::lifted_at.is_null())
            .filter(bans::until.le(now()))
            .select(bans::id)
            .into_boxed();
        let scope = match project {
            Some(p) => scope.filter(bans::project_id.eq(p)),
            None => scope.filter(bans::project_id.is_null()),
        };
        let expired: Vec<i64> = scope.load(conn)?;
        for e in expired {
            diesel::update(bans::table.find(e))
                .set(bans::lifted_at.eq(bans::until))
                .execute(conn)?;
        }
        let id: i64 = diesel::insert_into(bans::table)
            .values((
                bans::project_id.eq(project),
                bans::user_id.eq(user),
                bans::reason.eq(reason),
                bans::until.eq(until),
                bans::created_by.eq(actor),
                bans::created_at.eq(now()),
            ))
            .returning(bans::id)
            .get_result(conn)
            .map_err(AppError::on_unique(
                ErrorCode::Conflict,
                "the user is banned already",
            ))?;
        let ended = crate::domain::plans::end_for_ban(conn, user, project)?;
        // What they hold there goes back: claims to the queue, open bids
        // withdrawn (so nobody can still accept them).
        let projects_of: Vec<i64> = match project {
            Some(p) => vec![p],
            None => crate::db::schema::project_helpers::table
                .filter(crate::db::schema::project_helpers::user_id.eq(user))
                .select(crate::db::schema::project_helpers::project_id)
                .load(conn)?,
        };
        for p in projects_of {
            crate::domain::tickets::release_claims_of(conn, p, user, actor)?;
            crate::domain::bids::withdraw_open_of(conn, p, user)?;
        }
        crate::domain::audit::record(
            conn,
            Some(actor),
            "ban",
            "user",
            Some(user),
            &format!(
                "{}{}: {reason}{}",
                project.map_or_else(|| "platform".to_owned(), |p| format!("project {p}")),
                until.map(|u| format!(" until {u}")).unwrap_or_default(),
                if ended > 0 {
                    format!(" ({ended} subscription(s) ended)")
                } else {
                    String::new()
                }
            ),
        )?;
        // The user is told why, until when, and how to appeal: by replying.
        let scope = match project {
            Some(p) => crate::domain::projects::by_id(conn, p)?.name,
            None => "Guildhall".to_owned(),
        };
        crate::job_payloads::SendNotice {
            user_id: user,
            subject: format!("You are banned from {scope}"),
            text: format!(
                "You are banned from {scope}{}: {reason}\n\nWhile it lasts you cannot open, post, claim, bid or write there. Money you put in escrow stays held and follows the usual rules.\n\nTo appeal, reply to this mail saying why the ban should be lifted; the moderators will answer.",
                until
                    .map(|u| format!(" until {}", u.format("%Y-%m-%d %H:%M UTC")))
                    .unwrap_or_default()
            ),
            link: "/code-of-conduct".to_owned(),
            appeal_ban: Some(id),
        }
        .enqueue(conn)
        .map_err(AppError::internal)?;
        Ok(bans::table.find(id).select(Ban::as_select()).first(conn)?)
    })
}

/// A ban by id.
pub fn get_ban(conn: &mut DbConnection, id: i64) -> AppResult<Ban> {
    bans::table
        .find(id)
        .select(Ban::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| AppError::not_found("ban"))
}

/// Lifts `user`'s active ban from `project` (or the platform). 404 when
/// there is none. Audit-logged.
pub fn lift(conn: &mut DbConnection, actor: i64, project: Option<i64>, user: i64) -> AppResult<()> {
    match project {
        Some(p) if can_moderate(conn, p, actor)? => {}
        Some(_) => {
            return Err(AppError::forbidden(
                "only the project's maintainers may lift bans here",
            ))
        }
        None => crate::domain::users::require_admin(
            conn,
            actor,
            "only a platform admin may lift a platform ban",
        )?,
    }
    write_tx(conn, |conn| {
        let target = bans::table
            .filter(bans::user_id.eq(user))
            .filter(bans::lifted_at.is_null())
            .into_boxed();
        let target = match project {
            Some(p) => target.filter(bans::project_id.eq(p)),
            None => target.filter(bans::project_id.is_null()),
        };
        let id: Option<i64> = target.select(bans::id).first(conn).optional()?;
        let Some(id) = id else {
            return Err(AppError::not_found("ban"));
        };
        diesel::update(bans::table.find(id))
            .set((
                bans::lifted_at.eq(Some(now())),
                bans::lifted_by.eq(Some(actor)),
            ))
            .execute(conn)?;
        // Its open appeal has its answer.
        crate::domain::appeals::close_for_lift(conn, id, actor)?;
        crate::domain::audit::record(
            conn,
            Some(actor),
            "ban.lift",
            "user",
            Some(user),
            &project.map_or_else(|| "platform".to_owned(), |p| format!("project {p}")),
        )?;
        Ok(())
    })
}
