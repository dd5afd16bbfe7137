//! Flags, their review and bans (`domain::moderation`).

use super::views::utc;
use crate::auth::AuthUser;
use crate::domain::moderation::{self, Ban, Flag};
use crate::domain::projects;
use crate::error::{AppError, AppResult, Problem};
use crate::state::AppState;
use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A flag.
#[derive(Debug, Serialize, ToSchema)]
pub struct FlagView {
    /// Id.
    pub id: i64,
    /// `ticket` or `message`.
    pub target: String,
    /// Its id.
    pub target_id: i64,
    /// `spam`, `rude`, `illegal` or `other`.
    pub reason: String,
    /// The flagger's note.
    pub note: Option<String>,
    /// What it weighed.
    pub weight: i32,
    /// `open`, `upheld` or `dismissed`.
    pub status: String,
    /// Flagged.
    pub created_at: DateTime<Utc>,
}

fn flag_view(f: &Flag) -> FlagView {
    FlagView {
        id: f.id,
        target: f.target_type.clone(),
        target_id: f.target_id,
        reason: f.reason.clone(),
        note: f.note.clone(),
        weight: f.weight,
        status: f.status.clone(),
        created_at: utc(f.created_at),
    }
}

/// A flag to raise.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FlagBody {
    /// `ticket` or `message`.
    pub target: String,
    /// Its id.
    pub id: i64,
    /// `spam`, `rude`, `illegal` or `other`.
    pub reason: String,
    /// Up to 1000 characters.
    pub note: Option<String>,
}

/// A raised flag, and whether the item is now hidden until review.
#[derive(Debug, Serialize, ToSchema)]
pub struct FlagCreated {
    /// The flag.
    pub flag: FlagView,
    /// The flags on the item weigh enough to hide it until reviewed.
    pub hidden: bool,
}

/// Flag a ticket or message you can see.
#[utoipa::path(post, path = "/api/v1/flags", tag = "moderation", security(("bearer" = [])),
    request_body = FlagBody,
    responses((status = 201, body = FlagCreated), (status = 401, body = Problem), (status = 404, body = Problem),
              (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create(
    state: web::Data<AppState>,
    user: AuthUser,
    body: web::Json<FlagBody>,
) -> AppResult<HttpResponse> {
    let b = body.into_inner();
    let (f, hidden) = state
        .db(move |conn| {
            moderation::flag(conn, user.id, &b.target, b.id, &b.reason, b.note.as_deref())
        })
        .await?;
    Ok(HttpResponse::Created().json(FlagCreated {
        flag: flag_view(&f),
        hidden,
    }))
}

/// The project's open flags, oldest first (maintainers and admins).
#[utoipa::path(get, path = "/api/v1/projects/{slug}/flags", tag = "moderation", security(("bearer" = [])),
    params(("slug" = String, Path, description = "project slug")),
    responses((status = 200, body = [FlagView]), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem)))]
pub async fn list(
    state: web::Data<AppState>,
    user: AuthUser,
    slug: web::Path<String>,
) -> AppResult<web::Json<Vec<FlagView>>> {
    let slug = slug.into_inner();
    state
        .db(move |conn| {
            let p = projects::by_slug(conn, &slug)?;
            if !moderation::can_moderate(conn, p.id, user.id)? {
                return Err(AppError::forbidden(
                    "only the project's maintainers and platform admins review flags",
                ));
            }
            Ok(web::Json(
                moderation::open_flags(conn, p.id)?
                    .iter()
                    .map(flag_view)
                    .collect(),
            ))
        })
        .await
}

/// A review's outcome.
#[derive(Debug, Serialize, ToSchema)]
pub struct Reviewed {
    /// Flags on the item decided by it (0: it was reviewed already).
    pub decided: usize,
}

async fn review(
    state: web::Data<AppState>,
    user: AuthUser,
    id: i64,
    uphold: bool,
) -> AppResult<web::Json<Reviewed>> {
    let decided = state
        .db(move |conn| moderation::review(conn, id, user.id, uphold))
        .await?;
    Ok(web::Json(Reviewed { decided }))
}

/// Uphold a flag: the item stays hidden (maintainers and admins).
#[utoipa::path(post, path = "/api/v1/flags/{id}/uphold", tag = "moderation", security(("bearer" = [])),
    params(("id" = i64, Path, description = "flag id")),
    responses((status = 200, body = Reviewed), (status = 401, body = Problem), (status = 404, body = Problem)))]
pub async fn uphold(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
) -> AppResult<web::Json<Reviewed>> {
    review(state, user, id.into_inner(), true).await
}

/// Dismiss a flag: the item shows again (maintainers and admins).
#[utoipa::path(post, path = "/api/v1/flags/{id}/dismiss", tag = "moderation", security(("bearer" = [])),
    params(("id" = i64, Path, description = "flag id")),
    responses((status = 200, body = Reviewed), (status = 401, body = Problem), (status = 404, body = Problem)))]
pub async fn dismiss(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
) -> AppResult<web::Json<Reviewed>> {
    review(state, user, id.into_inner(), false).await
}

/// A ban to impose.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BanBody {
    /// Who.
    pub user_id: i64,
    /// Why, 1–500 characters.
    pub reason: String,
    /// Until (RFC 3339 or a date), in the future; none: until lifted.
    pub until: Option<String>,
}

/// A ban.
#[derive(Debug, Serialize, ToSchema)]
pub struct BanView {
    /// Id.
    pub id: i64,
    /// Who.
    pub user_id: i64,
    /// The project's slug; null: platform-wide.
    pub project: Option<String>,
    /// Why.
    pub reason: String,
    /// Until.
    pub until: Option<DateTime<Utc>>,
    /// When.
    pub created_at: DateTime<Utc>,
}

fn ban_view(b: &Ban, project: Option<String>) -> BanView {
    BanView {
        id: b.id,
        user_id: b.user_id,
        project,
        reason: b.reason.clone(),
        until: b.until.map(utc),
        created_at: utc(b.created_at),
    }
}

fn until(b: &BanBody) -> AppResult<Option<chrono::NaiveDateTime>> {
    b.until
        .as_deref()
        .map(|u| super::money::parse_bound("until", u))
        .transpose()
}

/// Ban a user from the project (maintainers and admins).
#[utoipa::path(post, path = "/api/v1/projects/{slug}/bans", tag = "moderation", security(("bearer" = [])),
    params(("slug" = String, Path, description = "project slug")), request_body = BanBody,
    responses((status = 201, body = BanView), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn ban_from_project(
    state: web::Data<AppState>,
    user: AuthUser,
    slug: web::Path<String>,
    body: web::Json<BanBody>,
) -> AppResult<HttpResponse> {
    let slug = slug.into_inner();
    let b = body.into_inner();
    let until = until(&b)?;
    let view = state
        .db(move |conn| {
            let p = projects::by_slug(conn, &slug)?;
            let ban = moderation::ban(conn, user.id, Some(p.id), b.user_id, &b.reason, until)?;
            Ok(ban_view(&ban, Some(p.slug)))
        })
        .await?;
    Ok(HttpResponse::Created().json(view))
}

/// Lift a user's ban from the project.
#[utoipa::path(delete, path = "/api/v1/projects/{slug}/bans/{user_id}", tag = "moderation", security(("bearer" = [])),
    params(("slug" = String, Path, description = "project slug"), ("user_id" = i64, Path, description = "the banned user")),
    responses((status = 204, description = "lifted"), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem)))]
pub async fn lift_project_ban(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<(String, i64)>,
) -> AppResult<HttpResponse> {
    let (slug, banned) = path.into_inner();
    state
        .db(move |conn| {
            let p = projects::by_slug(conn, &slug)?;
            moderation::lift(conn, user.id, Some(p.id), banned)
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Ban a user from the whole platform (admins).
#[utoipa::path(post, path = "/api/v1/admin/bans", tag = "moderation", security(("bearer" = [])),
    request_body = BanBody,
    responses((status = 201, body = BanView), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn ban_from_platform(
    state: web::Data<AppState>,
    user: AuthUser,
    body: web::Json<BanBody>,
) -> AppResult<HttpResponse> {
    let b = body.into_inner();
    let until = until(&b)?;
    let view = state
        .db(move |conn| {
            let ban = moderation::ban(conn, user.id, None, b.user_id, &b.reason, until)?;
            Ok(ban_view(&ban, None))
        })
        .await?;
    Ok(HttpResponse::Created().json(view))
}

/// Lift a platform ban (admins).
#[utoipa::path(delete, path = "/api/v1/admin/bans/{user_id}", tag = "moderation", security(("bearer" = [])),
    params(("user_id" = i64, Path, description = "the banned user")),
    responses((status = 204, description = "lifted"), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem)))]
pub async fn lift_platform_ban(
    state: web::Data<AppState>,
    user: AuthUser,
    banned: web::Path<i64>,
) -> AppResult<HttpResponse> {
    let banned = banned.into_inner();
    state
        .db(move |conn| moderation::lift(conn, user.id, None, banned))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// An appeal of a ban.
#[derive(Debug, Serialize, ToSchema)]
pub struct AppealView {
    /// Id.
    pub id: i64,
    /// The ban appealed.
    pub ban_id: i64,
    /// The appellant.
    pub user_id: i64,
    /// The ban's reason.
    pub ban_reason: String,
    /// What they wrote.
    pub body: String,
    /// `open`, `granted` or `declined`.
    pub status: String,
    /// The decision's note.
    pub note: Option<String>,
    /// Received.
    pub created_at: chrono::DateTime<chrono::Utc>,
}

fn appeal_view(a: &crate::domain::appeals::Appeal, reason: &str) -> AppealView {
    AppealView {
        id: a.id,
        ban_id: a.ban_id,
        user_id: a.user_id,
        ban_reason: reason.to_owned(),
        body: a.body.clone(),
        status: a.status.clone(),
        note: a.note.clone(),
        created_at: super::views::utc(a.created_at),
    }
}

/// Open appeals of the project's bans (its maintainers and admins).
#[utoipa::path(get, path = "/api/v1/projects/{slug}/appeals", tag = "moderation", security(("bearer" = [])),
    params(("slug" = String, Path, description = "project slug")),
    responses((status = 200, body = [AppealView]), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem)))]
pub async fn project_appeals(
    state: web::Data<AppState>,
    user: AuthUser,
    slug: web::Path<String>,
) -> AppResult<web::Json<Vec<AppealView>>> {
    let slug = slug.into_inner();
    state
        .db(move |conn| {
            let p = crate::domain::projects::by_slug(conn, &slug)?;
            if !crate::domain::moderation::can_moderate(conn, p.id, user.id)? {
                return Err(AppError::forbidden(
                    "only the project's maintainers may review appeals",
                ));
            }
            let rows = crate::domain::appeals::open_of(conn, Some(p.id))?;
            Ok(web::Json(
                rows.iter()
                    .map(|(a, b)| appeal_view(a, &b.reason))
                    .collect(),
            ))
        })
        .await
}

/// Open appeals of platform bans (platform admins).
#[utoipa::path(get, path = "/api/v1/admin/appeals", tag = "moderation", security(("bearer" = [])),
    responses((status = 200, body = [AppealView]), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn platform_appeals(
    state: web::Data<AppState>,
    user: AuthUser,
) -> AppResult<web::Json<Vec<AppealView>>> {
    state
        .db(move |conn| {
            crate::domain::users::require_admin(
                conn,
                user.id,
                "only platform admins review appeals of platform bans",
            )?;
            let rows = crate::domain::appeals::open_of(conn, None)?;
            Ok(web::Json(
                rows.iter()
                    .map(|(a, b)| appeal_view(a, &b.reason))
                    .collect(),
            ))
        })
        .await
}

/// `POST /appeals/{id}/decide`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecideBody {
    /// True lifts the ban; false keeps it.
    pub grant: bool,
    /// A note to the appellant.
    pub note: Option<String>,
}

/// Grant (lifting the ban) or decline an appeal (the ban's moderators).
#[utoipa::path(post, path = "/api/v1/appeals/{id}/decide", tag = "moderation", security(("bearer" = [])),
    params(("id" = i64, Path, description = "appeal id")), request_body = DecideBody,
    responses((status = 200, body = AppealView), (status = 401, body = Problem), (status = 404, body = Problem),
              (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn decide_appeal(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
    body: web::Json<DecideBody>,
) -> AppResult<web::Json<AppealView>> {
    let id = id.into_inner();
    let body = body.into_inner();
    state
        .db(move |conn| {
            let a = crate::domain::appeals::decide(
                conn,
                id,
                user.id,
                body.grant,
                body.note.as_deref(),
            )?;
            let b = crate::domain::moderation::get_ban(conn, a.ban_id)?;
            Ok(web::Json(appeal_view(&a, &b.reason)))
        })
        .await
}

/// Open flags in every project: the platform's review queue (admins).
#[utoipa::path(get, path = "/api/v1/admin/flags", tag = "moderation", security(("bearer" = [])),
    responses((status = 200, body = [FlagView]), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn platform_flags(
    state: web::Data<AppState>,
    user: AuthUser,
) -> AppResult<web::Json<Vec<FlagView>>> {
    state
        .db(move |conn| {
            crate::domain::users::require_admin(
                conn,
                user.id,
                "only platform admins see every project's flags",
            )?;
            Ok(web::Json(
                moderation::open_flags_everywhere(conn)?
                    .iter()
                    .map(flag_view)
                    .collect(),
            ))
        })
        .await
}
