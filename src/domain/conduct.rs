//! The platform's code of conduct, versioned (issue 13 §4), beside each
//! project's own. Platform admins publish a new text (the next version);
//! posting, claiming and bidding need the current version accepted, with
//! the time recorded — accepting a project's code of conduct accepts the
//! platform's current one too (the forms show both). Before any text is
//! published nothing is required.

use super::{audit, now};
use crate::db::schema::{platform_coc_acceptances as pca, platform_cocs as pc};
use crate::db::{write_tx, DbConnection};
use crate::error::{AppError, AppResult};
use chrono::NaiveDateTime;
use diesel::prelude::*;

/// Longest text, characters.
pub const MAX_BODY: usize = 50_000;

/// The current version and its text, if any was published.
pub fn current(conn: &mut DbConnection) -> QueryResult<Option<(i32, String, NaiveDateTime)>> {
    pc::table
        .order(pc::version.desc())
        .select((pc::version, pc::body, pc::created_at))
        .first(conn)
        .optional()
}

/// A platform admin publishes `body` as the next version; returns it.
pub fn publish(conn: &mut DbConnection, admin: i64, body: &str) -> AppResult<i32> {
    let body = body.trim();
    if body.is_empty() || body.chars().count() > MAX_BODY {
        return Err(AppError::field(
            "body",
            format!("must be the text, up to {MAX_BODY} characters"),
        ));
    }
    write_tx(conn, |conn| {
        if !super::users::get(conn, admin)?.is_admin {
            return Err(AppError::forbidden(
                "only platform admins publish the code of conduct",
            ));
        }
        let last: Option<i32> = pc::table
            .select(diesel::dsl::max(pc::version))
            .first(conn)?;
        if current(conn)?.is_some_and(|(_, text, _)| text == body) {
            return Ok(last.unwrap_or(0));
        }
        let version = last.unwrap_or(0) + 1;
        diesel::insert_into(pc::table)
            .values((
                pc::version.eq(version),
                pc::body.eq(body),
                pc::created_by.eq(Some(admin)),
                pc::created_at.eq(now()),
            ))
            .execute(conn)
            .map_err(AppError::on_unique(
                crate::error::ErrorCode::Conflict,
                "another version was published at the same moment; look and publish again",
            ))?;
        audit::record(
            conn,
            Some(admin),
            "conduct.publish",
            "platform_coc",
            Some(i64::from(version)),
            "",
        )?;
        Ok(version)
    })
}

/// When `user` accepted the current version; `Some` as well when there is
/// none to accept (the epoch).
pub fn accepted_at(conn: &mut DbConnection, user: i64) -> QueryResult<Option<NaiveDateTime>> {
    let Some((version, _, _)) = current(conn)? else {
        return Ok(Some(chrono::DateTime::UNIX_EPOCH.naive_utc()));
    };
    pca::table
        .find(user)
        .filter(pca::version.eq(version))
        .select(pca::accepted_at)
        .first(conn)
        .optional()
}

/// Records that `user` accepted the current version (keeping the first
/// time they accepted it). Returns when, or `None` when there is none.
pub fn accept(conn: &mut DbConnection, user: i64) -> AppResult<Option<NaiveDateTime>> {
    let Some((version, _, _)) = current(conn)? else {
        return Ok(None);
    };
    if let Some(at) = pca::table
        .find(user)
        .filter(pca::version.eq(version))
        .select(pca::accepted_at)
        .first(conn)
        .optional()?
    {
        return Ok(Some(at));
    }
    let at = now();
    crate::per_backend!(conn, |c| diesel::insert_into(pca::table)
        .values((
            pca::user_id.eq(user),
            pca::version.eq(version),
            pca::accepted_at.eq(at),
        ))
        .on_conflict(pca::user_id)
        .do_update()
        .set((pca::version.eq(version), pca::accepted_at.eq(at)))
        .execute(c))?;
    // As stored (PostgreSQL keeps microseconds).
    Ok(Some(
        pca::table.find(user).select(pca::accepted_at).first(conn)?,
    ))
}
