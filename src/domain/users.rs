//! Users: registration, lookup and the `/me` view.

use crate::db::schema::users;
use crate::db::DbConnection;
use crate::error::ErrorCode;
use crate::error::{AppError, AppResult, FieldError};
use chrono::NaiveDateTime;
use diesel::prelude::*;

/// A row of `users`. Never serialized: see [`crate::api::views`].
#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = users)]
pub struct User {
    /// Id.
    pub id: i64,
    /// Email as entered.
    pub email: String,
    /// Lower-cased email, unique.
    pub email_normalized: String,
    /// Public name.
    pub display_name: String,
    /// argon2id PHC string; `None` for imported users.
    pub password_hash: Option<String>,
    /// False for imported users who never registered.
    pub can_login: bool,
    /// Platform administrator.
    pub is_admin: bool,
    /// Created (UTC).
    pub created_at: NaiveDateTime,
    /// Updated (UTC).
    pub updated_at: NaiveDateTime,
    /// When the address was verified by its link; `None` until then.
    pub email_verified_at: Option<NaiveDateTime>,
}

/// Trims and lower-cases an email for uniqueness and lookup.
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// Checks the fields of a registration.
pub fn validate_registration(
    email: &str,
    password: &str,
    display_name: &str,
) -> Result<(), AppError> {
    let mut errors = Vec::new();
    let email = email.trim();
    let valid_email = email.len() <= 254
        && !email.chars().any(char::is_whitespace)
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                // `.invalid` (RFC 2606) names the accounts Guildhall makes
                // for people it imports: nobody may register one.
                && !domain.to_ascii_lowercase().ends_with(".invalid")
        });
    if !valid_email {
        errors.push(FieldError::new("email", "must be a valid email address"));
    }
    let len = password.chars().count();
    if len < super::super::auth::password::MIN_LEN {
        errors.push(FieldError::new(
            "password",
            "must be at least 12 characters",
        ));
    } else if len > super::super::auth::password::MAX_LEN {
        errors.push(FieldError::new(
            "password",
            "must be at most 1024 characters",
        ));
    }
    let name_len = super::text::visible_len(display_name);
    if name_len == 0 || name_len > 100 {
        errors.push(FieldError::new(
            "display_name",
            "must be 1 to 100 characters",
        ));
    } else if super::text::has_control_or_bidi(display_name) {
        errors.push(FieldError::new(
            "display_name",
            "must not contain control characters or bidirectional overrides",
        ));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(AppError::Validation(errors))
    }
}

/// The platform admins' ids.
pub fn admins(conn: &mut DbConnection) -> QueryResult<Vec<i64>> {
    users::table
        .filter(users::is_admin.eq(true))
        .order(users::id)
        .select(users::id)
        .load(conn)
}

/// 403 with `why` unless `user` is a platform admin.
pub fn require_admin(conn: &mut DbConnection, user: i64, why: &'static str) -> AppResult<()> {
    if get(conn, user)?.is_admin {
        Ok(())
    } else {
        Err(AppError::forbidden(why))
    }
}

/// Makes the account with `email` a platform admin (from the command line)
/// and records it in the audit log; false when there is no such account.
pub fn grant_admin(conn: &mut DbConnection, email: &str) -> QueryResult<bool> {
    crate::db::write_tx(conn, |conn| {
        let id: Option<i64> = users::table
            .filter(users::email_normalized.eq(normalize_email(email)))
            .select(users::id)
            .first(conn)
            .optional()?;
        let Some(id) = id else {
            return Ok(false);
        };
        diesel::update(users::table.find(id))
            .set(users::is_admin.eq(true))
            .execute(conn)?;
        super::audit::record(
            conn,
            None,
            "admin.grant",
            "user",
            Some(id),
            "from the command line",
        )?;
        Ok(true)
    })
}

/// Inserts a user. A taken email (case-insensitively) is 409 `email_taken`.
pub fn create(
    conn: &mut DbConnection,
    email: &str,
    display_name: &str,
    password_hash: Option<&str>,
    is_admin: bool,
) -> AppResult<User> {
    let now = super::now();
    let normalized = normalize_email(email);
    let inserted = diesel::insert_into(users::table)
        .values((
            users::email.eq(email.trim()),
            users::email_normalized.eq(&normalized),
            users::display_name.eq(super::text::trim(display_name)),
            users::password_hash.eq(password_hash),
            users::can_login.eq(password_hash.is_some()),
            users::is_admin.eq(is_admin),
            users::created_at.eq(now),
            users::updated_at.eq(now),
        ))
        .execute(conn);
    match inserted {
        Ok(_) => {}
        Err(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        )) => {
            return Err(AppError::conflict(
                ErrorCode::EmailTaken,
                "an account with this email already exists",
            ))
        }
        Err(e) => return Err(e.into()),
    }
    Ok(users::table
        .filter(users::email_normalized.eq(&normalized))
        .select(User::as_select())
        .first(conn)?)
}

/// The user with this email (any case), if any.
pub fn find_by_email(conn: &mut DbConnection, email: &str) -> QueryResult<Option<User>> {
    users::table
        .filter(users::email_normalized.eq(normalize_email(email)))
        .select(User::as_select())
        .first(conn)
        .optional()
}

/// The user with this id, or 404.
pub fn get(conn: &mut DbConnection, id: i64) -> AppResult<User> {
    users::table
        .find(id)
        .select(User::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| AppError::not_found("user"))
}

/// Display names of `ids` (the ones that exist), for pages that show who
/// wrote or did what.
pub fn names(
    conn: &mut DbConnection,
    ids: &[i64],
) -> QueryResult<std::collections::HashMap<i64, String>> {
    Ok(users::table
        .filter(users::id.eq_any(ids))
        .select((users::id, users::display_name))
        .load::<(i64, String)>(conn)?
        .into_iter()
        .collect())
}

/// Marks `id`'s address verified, if it is still `email_normalized` (a
/// link for an address the user has since changed verifies nothing).
/// Returns whether the address is verified now.
pub fn mark_verified(conn: &mut DbConnection, id: i64, email_normalized: &str) -> AppResult<bool> {
    let now = super::now();
    diesel::update(
        users::table
            .filter(users::id.eq(id))
            .filter(users::email_normalized.eq(email_normalized))
            .filter(users::email_verified_at.is_null()),
    )
    .set((
        users::email_verified_at.eq(Some(now)),
        users::updated_at.eq(now),
    ))
    .execute(conn)?;
    let verified: Option<Option<NaiveDateTime>> = users::table
        .filter(users::id.eq(id))
        .filter(users::email_normalized.eq(email_normalized))
        .select(users::email_verified_at)
        .first(conn)
        .optional()?;
    Ok(matches!(verified, Some(Some(_))))
}
