//! Appeals of bans by email (issue 13 §4). The ban's notice is mailed with
//! a Reply-To address of its own (`a{ban}.{user}.{tag}@{reply domain}`,
//! the tag an HMAC like the tickets' reply addresses); the banned user's
//! reply — from their own verified address — becomes an appeal, once per
//! message. The project's maintainers (or, for a platform ban, the
//! platform admins) are mailed, review it (`GET /projects/{slug}/appeals`,
//! `GET /admin/appeals`) and decide (`POST /appeals/{id}/decide`): granted
//! lifts the ban, declined keeps it; the appellant is told either way.
//! Everything is audit-logged.

use super::{audit, moderation, now, projects};
use crate::db::schema::{appeals as ap, bans};
use crate::db::{write_tx, DbConnection};
use crate::error::{AppError, AppResult, ErrorCode};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use guildhall_jobs::BackgroundJob as _;

/// Longest appeal kept, characters (the rest is cut).
pub const MAX_BODY: usize = 20_000;
/// Days after a declined appeal before the same ban may be appealed again.
pub const RETRY_DAYS: i64 = 7;

/// A row of `appeals`.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = ap)]
pub struct Appeal {
    /// Id.
    pub id: i64,
    /// The ban appealed.
    pub ban_id: i64,
    /// The appellant.
    pub user_id: i64,
    /// The mail's Message-ID (or hash).
    pub message_ref: String,
    /// What they wrote.
    pub body: String,
    /// `open`, `granted` or `declined`.
    pub status: String,
    /// Who decided.
    pub decided_by: Option<i64>,
    /// When.
    pub decided_at: Option<NaiveDateTime>,
    /// The decision's note to the appellant.
    pub note: Option<String>,
    /// Received.
    pub created_at: NaiveDateTime,
}

/// What became of a mailed appeal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// Recorded; the moderators were told.
    Recorded(i64),
    /// The same message again.
    Duplicate,
    /// The ban is no longer in force.
    NotBanned,
    /// An appeal of the ban is open, or one was declined less than
    /// [`RETRY_DAYS`] days ago.
    TooSoon,
}

/// Records the appeal of `user` against `ban` from message `message_ref`
/// (the caller checked the address's tag and that the sender is the user).
pub fn receive(
    conn: &mut DbConnection,
    ban: i64,
    user: i64,
    message_ref: &str,
    body: &str,
) -> AppResult<Received> {
    write_tx(conn, |conn| {
        let b = moderation::get_ban(conn, ban)?;
        if b.user_id != user {
            return Err(AppError::not_found("ban"));
        }
        if b.lifted_at.is_some() || b.until.is_some_and(|u| u <= now()) {
            return Ok(Received::NotBanned);
        }
        // One open appeal per ban, and a pause after a decline: the
        // moderators are not flooded.
        let recent: Option<(String, Option<NaiveDateTime>)> = ap::table
            .filter(ap::ban_id.eq(ban))
            .order(ap::id.desc())
            .select((ap::status, ap::decided_at))
            .first(conn)
            .optional()?;
        if let Some((status, decided)) = recent {
            let too_soon = status == "open"
                || decided.is_some_and(|d| d + chrono::Duration::days(RETRY_DAYS) > now());
            if too_soon {
                let dup: bool = diesel::select(diesel::dsl::exists(
                    ap::table
                        .filter(ap::ban_id.eq(ban))
                        .filter(ap::message_ref.eq(message_ref)),
                ))
                .get_result(conn)?;
                return Ok(if dup {
                    Received::Duplicate
                } else {
                    Received::TooSoon
                });
            }
        }
        let body: String = body.trim().chars().take(MAX_BODY).collect();
        let inserted: Option<i64> = crate::per_backend!(conn, |c| diesel::insert_into(ap::table)
            .values((
                ap::ban_id.eq(ban),
                ap::user_id.eq(user),
                ap::message_ref.eq(message_ref),
                ap::body.eq(&body),
                ap::status.eq("open"),
                ap::created_at.eq(now()),
            ))
            .on_conflict_do_nothing()
            .returning(ap::id)
            .get_result::<i64>(c)
            .optional())?;
        let Some(id) = inserted else {
            return Ok(Received::Duplicate);
        };
        audit::record(conn, Some(user), "ban.appeal", "appeal", Some(id), "")?;
        let who = super::users::get(conn, user)?.display_name;
        let (reviewers, scope, link) = match b.project_id {
            Some(p) => {
                let project = projects::by_id(conn, p)?;
                (
                    projects::maintainers(conn, p)?,
                    project.name,
                    format!("/p/{}/flags#appeals", project.slug),
                )
            }
            None => (
                super::users::admins(conn)?,
                "Guildhall".to_owned(),
                "/admin/appeals".to_owned(),
            ),
        };
        for reviewer in reviewers {
            crate::job_payloads::SendNotice {
                user_id: reviewer,
                subject: format!("{who} appeals their ban from {scope}"),
                text: format!(
                    "{who} appeals the ban from {scope} (\"{}\"):\n\n{body}\n\nGrant it to lift the ban, or decline it.",
                    b.reason
                ),
                link: link.clone(),
                appeal_ban: None,
            }
            .enqueue(conn)
            .map_err(AppError::internal)?;
        }
        Ok(Received::Recorded(id))
    })
}

/// Closes the open appeals of ban `ban`, lifted another way.
pub fn close_for_lift(conn: &mut DbConnection, ban: i64, actor: i64) -> QueryResult<usize> {
    diesel::update(
        ap::table
            .filter(ap::ban_id.eq(ban))
            .filter(ap::status.eq("open")),
    )
    .set((
        ap::status.eq("granted"),
        ap::decided_by.eq(Some(actor)),
        ap::decided_at.eq(Some(now())),
        ap::note.eq(Some("the ban was lifted")),
    ))
    .execute(conn)
}

/// Open appeals of bans from `project` (`None`: platform bans), oldest
/// first, with their bans.
pub fn open_of(
    conn: &mut DbConnection,
    project: Option<i64>,
) -> QueryResult<Vec<(Appeal, moderation::Ban)>> {
    let mut q = ap::table
        .inner_join(bans::table.on(bans::id.eq(ap::ban_id)))
        .filter(ap::status.eq("open"))
        .order(ap::id)
        .limit(200)
        .select((Appeal::as_select(), moderation::Ban::as_select()))
        .into_boxed();
    q = match project {
        Some(p) => q.filter(bans::project_id.eq(p)),
        None => q.filter(bans::project_id.is_null()),
    };
    q.load(conn)
}

/// A moderator of the ban's scope grants (lifting the ban) or declines an
/// open appeal; the appellant is told.
pub fn decide(
    conn: &mut DbConnection,
    id: i64,
    actor: i64,
    grant: bool,
    note: Option<&str>,
) -> AppResult<Appeal> {
    let note = note.map(str::trim).filter(|n| !n.is_empty());
    if note.is_some_and(|n| n.chars().count() > 2000) {
        return Err(AppError::field("note", "must be at most 2000 characters"));
    }
    write_tx(conn, |conn| {
        let a = ap::table
            .find(id)
            .select(Appeal::as_select())
            .first(conn)
            .optional()?
            .ok_or_else(|| AppError::not_found("appeal"))?;
        let b = moderation::get_ban(conn, a.ban_id)?;
        if a.user_id == actor {
            return Err(AppError::forbidden("nobody decides their own appeal"));
        }
        let may = match b.project_id {
            Some(p) => moderation::can_moderate(conn, p, actor)?,
            None => super::users::get(conn, actor)?.is_admin,
        };
        if !may {
            return Err(AppError::not_found("appeal"));
        }
        let n = diesel::update(ap::table.find(id).filter(ap::status.eq("open")))
            .set((
                ap::status.eq(if grant { "granted" } else { "declined" }),
                ap::decided_by.eq(Some(actor)),
                ap::decided_at.eq(Some(now())),
                ap::note.eq(note),
            ))
            .execute(conn)?;
        if n == 0 {
            return Err(AppError::conflict(
                ErrorCode::InvalidTransition,
                format!("the appeal was {} already", a.status),
            ));
        }
        if b.lifted_at.is_some() || b.until.is_some_and(|u| u <= now()) {
            return Err(AppError::conflict(
                ErrorCode::InvalidTransition,
                "the ban is no longer in force",
            ));
        }
        if grant {
            moderation::lift(conn, actor, b.project_id, b.user_id)?;
        }
        audit::record(
            conn,
            Some(actor),
            if grant {
                "appeal.grant"
            } else {
                "appeal.decline"
            },
            "appeal",
            Some(id),
            note.unwrap_or(""),
        )?;
        let scope = match b.project_id {
            Some(p) => projects::by_id(conn, p)?.name,
            None => "Guildhall".to_owned(),
        };
        crate::job_payloads::SendNotice {
            user_id: a.user_id,
            subject: format!(
                "Your appeal of the ban from {scope} was {}",
                if grant { "granted" } else { "declined" }
            ),
            text: format!(
                "{}{}",
                if grant {
                    format!("Your ban from {scope} is lifted.")
                } else {
                    format!("Your ban from {scope} stays.")
                },
                note.map(|n| format!("\n\nThe moderators wrote: {n}"))
                    .unwrap_or_default()
            ),
            link: "/code-of-conduct".to_owned(),
            appeal_ban: None,
        }
        .enqueue(conn)
        .map_err(AppError::internal)?;
        Ok(ap::table.find(id).select(Appeal::as_select()).first(conn)?)
    })
}
