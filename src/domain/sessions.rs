//! Refresh-token families: start, rotate (with reuse detection), revoke.
//!
//! Each login starts a family. Every refresh marks the presented token used
//! and issues its successor in the same family. Presenting a token that was
//! already used (or revoked) means it leaked: the whole family is revoked, so
//! both the thief and the victim must log in again.

use crate::auth::tokens::{hash_refresh_token, new_refresh_token, random_token};
use crate::db::schema::refresh_tokens as rt;
use crate::db::{write_tx, DbConnection};
use crate::error::AppResult;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use std::time::Duration;

/// Result of presenting a refresh token.
#[derive(Debug)]
pub enum Rotation {
    /// A new token for `user_id`; the presented one is now used.
    Rotated {
        /// The owner.
        user_id: i64,
        /// The successor (plain text; only its hash is stored).
        token: String,
    },
    /// The token had been used or revoked before: its family is now revoked.
    Reused,
    /// Unknown or expired.
    Invalid,
}

fn insert(
    conn: &mut DbConnection,
    user_id: i64,
    family: &str,
    expires: NaiveDateTime,
) -> AppResult<String> {
    let token = new_refresh_token();
    let now = super::now();
    diesel::insert_into(rt::table)
        .values((
            rt::user_id.eq(user_id),
            rt::family_id.eq(family),
            rt::token_hash.eq(hash_refresh_token(&token)),
            rt::created_at.eq(now),
            rt::expires_at.eq(expires),
        ))
        .execute(conn)?;
    Ok(token)
}

/// Starts a new family for `user_id` and returns its first token.
pub fn start(conn: &mut DbConnection, user_id: i64, ttl: Duration) -> AppResult<String> {
    let expires =
        super::now() + chrono::Duration::from_std(ttl).map_err(crate::error::AppError::internal)?;
    insert(conn, user_id, &random_token(16), expires)
}

/// Rotates `presented`, detecting reuse. The revocation on reuse is
/// committed even though the caller answers with an error. A successor
/// inherits its family's expiry: a family lives at most the refresh TTL from
/// its login, however often it rotates. A user who can no longer log in
/// cannot refresh either.
pub fn rotate(conn: &mut DbConnection, presented: &str) -> AppResult<Rotation> {
    let hash = hash_refresh_token(presented);
    write_tx(conn, |conn| {
        let row: Option<(i64, i64, String, NaiveDateTime)> = rt::table
            .filter(rt::token_hash.eq(&hash))
            .select((rt::id, rt::user_id, rt::family_id, rt::expires_at))
            .first(conn)
            .optional()?;
        let Some((id, user_id, family, expires_at)) = row else {
            return Ok(Rotation::Invalid);
        };
        let now = super::now();
        // Only one presenter can flip an unused, unrevoked token to used.
        if !claim(conn, id, now)? {
            revoke_family(conn, &family)?;
            tracing::warn!(
                user_id,
                "refresh token reuse detected; token family revoked"
            );
            return Ok(Rotation::Reused);
        }
        if expires_at <= now || !can_login(conn, user_id)? {
            return Ok(Rotation::Invalid);
        }
        let token = insert(conn, user_id, &family, expires_at)?;
        Ok(Rotation::Rotated { user_id, token })
    })
}

/// What a browser session's cookie (a refresh token) is worth now.
#[derive(Debug)]
pub enum Resumed {
    /// The current token of a live family: the user is signed in.
    Active {
        /// The user.
        user_id: i64,
    },
    /// The token was older than the rotation age and has been replaced:
    /// signed in, and the browser must store `token`.
    Rotated {
        /// The user.
        user_id: i64,
        /// The successor to set as the cookie.
        token: String,
    },
    /// Not signed in (unknown, expired, revoked; or just replaced by a
    /// request racing this one, within `grace`).
    Anonymous,
}

/// Resumes a browser session from its cookie. A token older than
/// `rotate_after` is rotated as [`rotate`] would. A token already replaced
/// more than `grace` ago is a leaked one: its family is revoked (the same
/// reuse detection as the API); within `grace` it was a parallel request of
/// the same browser and only counts as signed out for that request.
pub fn resume(
    conn: &mut DbConnection,
    presented: &str,
    rotate_after: Duration,
    grace: Duration,
) -> AppResult<Resumed> {
    let hash = hash_refresh_token(presented);
    let row: Option<SessionRow> = rt::table
        .filter(rt::token_hash.eq(&hash))
        .select((
            rt::id,
            rt::user_id,
            rt::family_id,
            rt::created_at,
            rt::used_at,
            rt::revoked_at,
            rt::expires_at,
        ))
        .first(conn)
        .optional()?;
    let Some((id, user_id, family, created, used, revoked, expires)) = row else {
        return Ok(Resumed::Anonymous);
    };
    let now = super::now();
    let span = |d: Duration| chrono::Duration::from_std(d).unwrap_or(chrono::Duration::zero());
    if revoked.is_some() || expires <= now {
        return Ok(Resumed::Anonymous);
    }
    if let Some(used) = used {
        if now - used > span(grace) {
            // Leaked: presented again long after it was replaced.
            revoke_family(conn, &family)?;
            tracing::warn!(
                user_id,
                "replaced session cookie presented again; token family revoked"
            );
        }
        return Ok(Resumed::Anonymous);
    }
    if !can_login(conn, user_id)? {
        return Ok(Resumed::Anonymous);
    }
    if now - created < span(rotate_after) {
        return Ok(Resumed::Active { user_id });
    }
    write_tx(conn, |conn| {
        // Only one of this browser's parallel requests replaces it; the
        // others count as signed out for that one request, nothing worse.
        if !claim(conn, id, now)? {
            return Ok(Resumed::Anonymous);
        }
        let token = insert(conn, user_id, &family, expires)?;
        Ok(Resumed::Rotated { user_id, token })
    })
}

/// A stored refresh token: id, user, family, created, used, revoked, expires.
type SessionRow = (
    i64,
    i64,
    String,
    NaiveDateTime,
    Option<NaiveDateTime>,
    Option<NaiveDateTime>,
    NaiveDateTime,
);

/// Marks token `id` used if nobody has (only one presenter can). Returns
/// whether this call did.
fn claim(conn: &mut DbConnection, id: i64, now: NaiveDateTime) -> QueryResult<bool> {
    Ok(diesel::update(
        rt::table
            .find(id)
            .filter(rt::used_at.is_null())
            .filter(rt::revoked_at.is_null()),
    )
    .set(rt::used_at.eq(now))
    .execute(conn)?
        == 1)
}

/// Whether the user may still sign in (imported users may not).
fn can_login(conn: &mut DbConnection, user_id: i64) -> QueryResult<bool> {
    crate::db::schema::users::table
        .find(user_id)
        .select(crate::db::schema::users::can_login)
        .first(conn)
}

fn revoke_family(conn: &mut DbConnection, family: &str) -> QueryResult<usize> {
    diesel::update(
        rt::table
            .filter(rt::family_id.eq(family))
            .filter(rt::revoked_at.is_null()),
    )
    .set(rt::revoked_at.eq(super::now()))
    .execute(conn)
}

/// Revokes the family `presented` belongs to. `Some(user_id)` when the token
/// was known.
pub fn logout(conn: &mut DbConnection, presented: &str) -> AppResult<Option<i64>> {
    let hash = hash_refresh_token(presented);
    write_tx(conn, |conn| {
        let row: Option<(i64, String)> = rt::table
            .filter(rt::token_hash.eq(&hash))
            .select((rt::user_id, rt::family_id))
            .first(conn)
            .optional()?;
        match row {
            Some((user_id, family)) => {
                revoke_family(conn, &family)?;
                Ok(Some(user_id))
            }
            None => Ok(None),
        }
    })
}

/// Deletes tokens that expired more than a day ago (a scheduled job).
pub fn purge_expired(conn: &mut DbConnection) -> QueryResult<usize> {
    let cutoff = super::now() - chrono::Duration::days(1);
    diesel::delete(rt::table.filter(rt::expires_at.lt(cutoff))).execute(conn)
}
