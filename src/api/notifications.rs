//! What each person wants to hear: `GET`/`PUT /me/notifications`, and
//! levels per ticket and per project.

use crate::auth::AuthUser;
use crate::domain::notifications::{self, level_field};
use crate::error::{AppResult, Problem};
use crate::state::AppState;
use actix_web::web;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A person's notification settings.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NotificationSettings {
    /// `all` (each thing at once), `digest` (one mail a day) or `mute`
    /// (nothing, mentions included), for everything not overridden per
    /// project or ticket.
    #[schema(pattern = "^(all|digest|mute)$")]
    pub level: String,
    /// The local hour, 0–23, the daily digest goes out.
    #[schema(minimum = 0, maximum = 23)]
    pub digest_hour: i32,
    /// IANA time zone of that hour, e.g. `Europe/Berlin`; an unknown zone
    /// is 422.
    #[schema(min_length = 1, max_length = 64)]
    pub time_zone: String,
}

impl From<notifications::Settings> for NotificationSettings {
    fn from(s: notifications::Settings) -> Self {
        NotificationSettings {
            level: s.level.as_str().to_owned(),
            digest_hour: s.digest_hour,
            time_zone: s.time_zone,
        }
    }
}

/// A level for one ticket or project.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LevelBody {
    /// `all`, `digest` or `mute`.
    #[schema(pattern = "^(all|digest|mute)$")]
    pub level: String,
}

/// The caller's notification settings.
#[utoipa::path(get, path = "/api/v1/me/notifications", tag = "accounts", security(("bearer" = [])),
    responses((status = 200, body = NotificationSettings), (status = 401, body = Problem)))]
pub async fn get_settings(
    state: web::Data<AppState>,
    user: AuthUser,
) -> AppResult<web::Json<NotificationSettings>> {
    state
        .db(move |conn| Ok(notifications::settings(conn, user.id)?.into()))
        .await
        .map(web::Json)
}

/// Sets the caller's level, digest hour and time zone.
#[utoipa::path(put, path = "/api/v1/me/notifications", tag = "accounts", security(("bearer" = [])),
    request_body = NotificationSettings,
    responses((status = 200, body = NotificationSettings), (status = 401, body = Problem), (status = 422, body = Problem)))]
pub async fn put_settings(
    state: web::Data<AppState>,
    user: AuthUser,
    body: web::Json<NotificationSettings>,
) -> AppResult<web::Json<NotificationSettings>> {
    let b = body.into_inner();
    state
        .db(move |conn| {
            notifications::set_settings(conn, user.id, &b.level, b.digest_hour, &b.time_zone)
                .map(Into::into)
        })
        .await
        .map(web::Json)
}

/// Sets the caller's level for a ticket they may see.
#[utoipa::path(put, path = "/api/v1/tickets/{id}/notifications", tag = "tickets", security(("bearer" = [])),
    params(("id" = i64, Path, description = "ticket id")), request_body = LevelBody,
    responses((status = 200, body = LevelBody), (status = 401, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn put_ticket_level(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
    body: web::Json<LevelBody>,
) -> AppResult<web::Json<LevelBody>> {
    let id = id.into_inner();
    let level = level_field("level", &body.level)?;
    state
        .db(move |conn| notifications::set_ticket_level(conn, user.id, id, level))
        .await?;
    Ok(web::Json(LevelBody {
        level: level.as_str().to_owned(),
    }))
}

/// Sets the caller's level for a project's tickets.
#[utoipa::path(put, path = "/api/v1/projects/{slug}/notifications", tag = "projects", security(("bearer" = [])),
    params(("slug" = String, Path, description = "project slug")), request_body = LevelBody,
    responses((status = 200, body = LevelBody), (status = 401, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn put_project_level(
    state: web::Data<AppState>,
    user: AuthUser,
    slug: web::Path<String>,
    body: web::Json<LevelBody>,
) -> AppResult<web::Json<LevelBody>> {
    let slug = slug.into_inner();
    let level = level_field("level", &body.level)?;
    state
        .db(move |conn| notifications::set_project_level(conn, user.id, &slug, level))
        .await?;
    Ok(web::Json(LevelBody {
        level: level.as_str().to_owned(),
    }))
}
