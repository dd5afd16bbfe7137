//! Helpers of a project: applications, vetting by maintainers, endorsements.

use crate::db::schema::{endorsements, project_helpers, users};
use crate::db::{write_tx, DbConnection};
use crate::error::ErrorCode;
use crate::error::{AppError, AppResult, FieldError};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// How a helper works for a project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// Vetted paid expert with an hourly rate.
    Expert,
    /// Community helper.
    Community,
}

impl Tier {
    /// Stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Expert => "expert",
            Tier::Community => "community",
        }
    }
}

/// Where an application stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum HelperStatus {
    /// Waiting for a maintainer.
    Pending,
    /// May claim, bid and answer as the project's helper.
    Approved,
    /// Helper rights withdrawn.
    Revoked,
}

impl HelperStatus {
    /// Stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            HelperStatus::Pending => "pending",
            HelperStatus::Approved => "approved",
            HelperStatus::Revoked => "revoked",
        }
    }
}

/// A row of `project_helpers` joined with the user's display name.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = project_helpers)]
pub struct Helper {
    /// The helper's user id.
    pub user_id: i64,
    /// The project.
    pub project_id: i64,
    /// `expert` or `community`.
    pub tier: String,
    /// `pending`, `approved` or `revoked`.
    pub status: String,
    /// Minor units per hour (experts).
    pub hourly_rate: Option<i64>,
    /// Self-description.
    pub bio: String,
    /// JSON array of skills.
    pub skills: String,
    /// Who approved or revoked.
    pub decided_by: Option<i64>,
    /// When.
    pub decided_at: Option<NaiveDateTime>,
    /// Applied (UTC).
    pub created_at: NaiveDateTime,
}

/// An application to help a project.
#[derive(Debug, Clone)]
pub struct Application {
    /// Tier applied for.
    pub tier: Tier,
    /// Minor units per hour; required for experts.
    pub hourly_rate: Option<i64>,
    /// Self-description.
    pub bio: String,
    /// Skills.
    pub skills: Vec<String>,
}

/// The user's application to (or standing in) the project, if any.
pub fn get(conn: &mut DbConnection, project_id: i64, user_id: i64) -> QueryResult<Option<Helper>> {
    project_helpers::table
        .filter(project_helpers::project_id.eq(project_id))
        .filter(project_helpers::user_id.eq(user_id))
        .select(Helper::as_select())
        .first(conn)
        .optional()
}

/// Applies (or re-applies after a revocation) to help a project. A pending or
/// approved application already on file is 409 `already_applied`.
pub fn apply(
    conn: &mut DbConnection,
    project_id: i64,
    user_id: i64,
    app: &Application,
) -> AppResult<Helper> {
    let mut errors = Vec::new();
    match (app.tier, app.hourly_rate) {
        (_, Some(r)) if !(1..=100_000_000).contains(&r) => errors.push(FieldError::new(
            "hourly_rate",
            "must be between 1 and 100000000 minor units",
        )),
        (Tier::Expert, None) => errors.push(FieldError::new(
            "hourly_rate",
            "experts must state an hourly rate",
        )),
        _ => {}
    }
    if app.bio.chars().count() > 5000 {
        errors.push(FieldError::new("bio", "must be at most 5000 characters"));
    }
    if app.skills.len() > 30 {
        errors.push(FieldError::new("skills", "at most 30 skills"));
    }
    for (i, s) in app.skills.iter().enumerate() {
        if s.trim().is_empty() || s.chars().count() > 50 {
            errors.push(FieldError::new(
                format!("skills[{i}]"),
                "must be 1 to 50 characters",
            ));
        }
    }
    if !errors.is_empty() {
        return Err(AppError::Validation(errors));
    }
    let skills = serde_json::to_string(&app.skills.iter().map(|s| s.trim()).collect::<Vec<_>>())
        .map_err(AppError::internal)?;
    let now = super::now();
    write_tx(conn, |conn| {
        match get(conn, project_id, user_id)?.map(|h| h.status) {
            Some(s) if s == HelperStatus::Revoked.as_str() => {
                diesel::update(
                    project_helpers::table
                        .filter(project_helpers::project_id.eq(project_id))
                        .filter(project_helpers::user_id.eq(user_id)),
                )
                .set((
                    project_helpers::tier.eq(app.tier.as_str()),
                    project_helpers::status.eq(HelperStatus::Pending.as_str()),
                    project_helpers::hourly_rate.eq(app.hourly_rate),
                    project_helpers::bio.eq(&app.bio),
                    project_helpers::skills.eq(&skills),
                    project_helpers::decided_by.eq(None::<i64>),
                    project_helpers::decided_at.eq(None::<NaiveDateTime>),
                    project_helpers::updated_at.eq(now),
                ))
                .execute(conn)?;
            }
            Some(_) => {
                return Err(AppError::conflict(
                    ErrorCode::AlreadyApplied,
                    "you already have a pending or approved application for this project",
                ))
            }
            None => {
                let inserted = diesel::insert_into(project_helpers::table)
                    .values((
                        project_helpers::project_id.eq(project_id),
                        project_helpers::user_id.eq(user_id),
                        project_helpers::tier.eq(app.tier.as_str()),
                        project_helpers::status.eq(HelperStatus::Pending.as_str()),
                        project_helpers::hourly_rate.eq(app.hourly_rate),
                        project_helpers::bio.eq(&app.bio),
                        project_helpers::skills.eq(&skills),
                        project_helpers::created_at.eq(now),
                        project_helpers::updated_at.eq(now),
                    ))
                    .execute(conn);
                match inserted {
                    Ok(_) => {}
                    Err(diesel::result::Error::DatabaseError(
                        diesel::result::DatabaseErrorKind::UniqueViolation,
                        _,
                    )) => {
                        return Err(AppError::conflict(
                            ErrorCode::AlreadyApplied,
                            "you already applied to this project",
                        ))
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
        // Applying accepts the project's code of conduct (its current
        // version, with the time).
        crate::domain::projects::accept_project_coc(conn, project_id, user_id)?;
        get(conn, project_id, user_id)?.ok_or_else(|| AppError::not_found("application"))
    })
}

/// Sets an application's status (maintainer decision). 404 without an
/// application; approving a revoked helper reinstates them.
pub fn decide(
    conn: &mut DbConnection,
    project_id: i64,
    user_id: i64,
    status: HelperStatus,
    by: i64,
) -> AppResult<Helper> {
    write_tx(conn, |conn| {
        if get(conn, project_id, user_id)?.is_none() {
            return Err(AppError::not_found("helper application"));
        }
        let now = super::now();
        diesel::update(
            project_helpers::table
                .filter(project_helpers::project_id.eq(project_id))
                .filter(project_helpers::user_id.eq(user_id)),
        )
        .set((
            project_helpers::status.eq(status.as_str()),
            project_helpers::decided_by.eq(Some(by)),
            project_helpers::decided_at.eq(Some(now)),
            project_helpers::updated_at.eq(now),
        ))
        .execute(conn)?;
        if status == HelperStatus::Revoked {
            crate::domain::tickets::release_claims_of(conn, project_id, user_id, by)?;
        }
        if status != HelperStatus::Approved {
            // No longer vetted: their open offers in this project go too.
            crate::domain::bids::withdraw_open_of(conn, project_id, user_id)?;
        }
        get(conn, project_id, user_id)?.ok_or_else(|| AppError::not_found("helper application"))
    })
}

/// Whether `user_id` is an approved helper of the project.
pub fn is_approved(conn: &mut DbConnection, project_id: i64, user_id: i64) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        project_helpers::table
            .filter(project_helpers::project_id.eq(project_id))
            .filter(project_helpers::user_id.eq(user_id))
            .filter(project_helpers::status.eq(HelperStatus::Approved.as_str())),
    ))
    .get_result(conn)
}

/// Helpers of a project in one status with their display names, by user id
/// after the cursor.
pub fn list(
    conn: &mut DbConnection,
    project_id: i64,
    status: HelperStatus,
    after: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<(Helper, String)>> {
    let mut q = project_helpers::table
        .inner_join(users::table.on(users::id.eq(project_helpers::user_id)))
        .filter(project_helpers::project_id.eq(project_id))
        .filter(project_helpers::status.eq(status.as_str()))
        .order(project_helpers::user_id.asc())
        .limit(limit)
        .select((Helper::as_select(), users::display_name))
        .into_boxed();
    if let Some(after) = after {
        q = q.filter(project_helpers::user_id.gt(after));
    }
    q.load(conn)
}

/// Every helper record of a user (for `/me`).
pub fn of_user(conn: &mut DbConnection, user_id: i64) -> QueryResult<Vec<Helper>> {
    project_helpers::table
        .filter(project_helpers::user_id.eq(user_id))
        .select(Helper::as_select())
        .order(project_helpers::project_id)
        .load(conn)
}

/// An approved helper endorses another approved helper of the same project.
/// Self-endorsement is 422; a caller who is not an approved helper is 403;
/// an endorsee who is not one is 404. Returns false if it already existed.
pub fn endorse(
    conn: &mut DbConnection,
    project_id: i64,
    endorser: i64,
    endorsee: i64,
) -> AppResult<bool> {
    if endorser == endorsee {
        return Err(AppError::field("user_id", "you cannot endorse yourself"));
    }
    if !is_approved(conn, project_id, endorser)? {
        return Err(AppError::forbidden(
            "only approved helpers of this project may endorse",
        ));
    }
    if !is_approved(conn, project_id, endorsee)? {
        return Err(AppError::not_found("approved helper"));
    }
    let added = crate::per_backend!(conn, |c| diesel::insert_into(endorsements::table)
        .values((
            endorsements::project_id.eq(project_id),
            endorsements::endorser_id.eq(endorser),
            endorsements::endorsee_id.eq(endorsee),
            endorsements::created_at.eq(super::now()),
        ))
        .on_conflict_do_nothing()
        .execute(c))?;
    Ok(added == 1)
}

/// How many approved helpers endorse `user_id` in the project.
pub fn endorsement_count(
    conn: &mut DbConnection,
    project_id: i64,
    user_id: i64,
) -> QueryResult<i64> {
    // Only endorsements by helpers who are still approved count.
    endorsements::table
        .inner_join(
            project_helpers::table.on(project_helpers::user_id
                .eq(endorsements::endorser_id)
                .and(project_helpers::project_id.eq(endorsements::project_id))),
        )
        .filter(endorsements::project_id.eq(project_id))
        .filter(endorsements::endorsee_id.eq(user_id))
        .filter(project_helpers::status.eq(HelperStatus::Approved.as_str()))
        .count()
        .get_result(conn)
}

/// Every user who is an approved helper somewhere.
pub fn approved_user_ids(conn: &mut DbConnection) -> QueryResult<Vec<i64>> {
    project_helpers::table
        .filter(project_helpers::status.eq(HelperStatus::Approved.as_str()))
        .select(project_helpers::user_id)
        .distinct()
        .load(conn)
}
