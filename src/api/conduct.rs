//! The platform's code of conduct (`domain::conduct`).

use super::views::utc;
use crate::auth::AuthUser;
use crate::domain::conduct;
use crate::error::{AppError, AppResult, Problem};
use crate::state::AppState;
use actix_web::web;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The current code of conduct.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConductView {
    /// Version, 1, 2, …
    pub version: i32,
    /// The text.
    pub body: String,
    /// When this version was published.
    pub published_at: DateTime<Utc>,
}

/// The platform's current code of conduct (anyone; 404 before one is
/// published).
#[utoipa::path(get, path = "/api/v1/code-of-conduct", tag = "moderation",
    responses((status = 200, body = ConductView), (status = 404, body = Problem)))]
pub async fn get(state: web::Data<AppState>) -> AppResult<web::Json<ConductView>> {
    state
        .db(|conn| {
            let (version, body, at) =
                conduct::current(conn)?.ok_or_else(|| AppError::not_found("code of conduct"))?;
            Ok(web::Json(ConductView {
                version,
                body,
                published_at: utc(at),
            }))
        })
        .await
}

/// An acceptance.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConductAccepted {
    /// The version accepted.
    pub version: i32,
    /// When it was accepted (the first time).
    pub accepted_at: DateTime<Utc>,
}

/// Accept the platform's current code of conduct.
#[utoipa::path(post, path = "/api/v1/code-of-conduct/accept", tag = "moderation", security(("bearer" = [])),
    responses((status = 200, body = ConductAccepted), (status = 401, body = Problem), (status = 404, body = Problem)))]
pub async fn accept(
    state: web::Data<AppState>,
    user: AuthUser,
) -> AppResult<web::Json<ConductAccepted>> {
    state
        .db(move |conn| {
            let (version, _, _) =
                conduct::current(conn)?.ok_or_else(|| AppError::not_found("code of conduct"))?;
            let at = conduct::accept(conn, user.id)?
                .ok_or_else(|| AppError::not_found("code of conduct"))?;
            Ok(web::Json(ConductAccepted {
                version,
                accepted_at: utc(at),
            }))
        })
        .await
}

/// `PUT /admin/code-of-conduct`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConductBody {
    /// The text; a change makes the next version.
    pub body: String,
}

/// Publish the platform's code of conduct (platform admins): a changed text
/// is the next version, which everyone must accept again.
#[utoipa::path(put, path = "/api/v1/admin/code-of-conduct", tag = "moderation", security(("bearer" = [])),
    request_body = ConductBody,
    responses((status = 200, body = ConductView), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 422, body = Problem)))]
pub async fn publish(
    state: web::Data<AppState>,
    user: AuthUser,
    body: web::Json<ConductBody>,
) -> AppResult<web::Json<ConductView>> {
    let body = body.into_inner().body;
    state
        .db(move |conn| {
            let version = conduct::publish(conn, user.id, &body)?;
            tracing::info!(
                version,
                user_id = user.id,
                "platform code of conduct published"
            );
            let (version, body, at) = conduct::current(conn)?
                .filter(|c| c.0 == version)
                .ok_or_else(|| AppError::internal(anyhow::anyhow!("no version {version}")))?;
            Ok(web::Json(ConductView {
                version,
                body,
                published_at: utc(at),
            }))
        })
        .await
}
