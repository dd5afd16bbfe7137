//! Handing a project over (`domain::handovers`).

use super::views::utc;
use crate::auth::AuthUser;
use crate::domain::handovers::{self, Handover};
use crate::domain::projects;
use crate::error::{AppError, AppResult, Problem};
use crate::state::AppState;
use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A handover.
#[derive(Debug, Serialize, ToSchema)]
pub struct HandoverView {
    /// Id.
    pub id: i64,
    /// The project's slug.
    pub project: String,
    /// The maintainer handing over.
    pub from_user_id: i64,
    /// The new maintainer.
    pub to_user_id: i64,
    /// From when the project's revenue accrues to the new maintainer.
    pub effective_at: DateTime<Utc>,
    /// `proposed`, `accepted`, `applied`, `reversed`, `cancelled` or `failed`.
    pub status: String,
    /// Why it failed.
    pub failure: Option<String>,
    /// When the new maintainer proved their rights on the repository.
    pub repo_verified_at: Option<DateTime<Utc>>,
    /// Accepted by the new maintainer.
    pub accepted_at: Option<DateTime<Utc>>,
    /// Applied.
    pub applied_at: Option<DateTime<Utc>>,
    /// Until when it may be reversed (applied handovers).
    pub reversible_until: Option<DateTime<Utc>>,
    /// Reversed.
    pub reversed_at: Option<DateTime<Utc>>,
    /// What the new maintainer still lacks (before it is applied).
    pub missing: Vec<String>,
    /// Proposed.
    pub created_at: DateTime<Utc>,
}

/// Builds the view of `x`.
pub fn view(
    conn: &mut crate::db::DbConnection,
    x: &Handover,
    gateway: &str,
) -> AppResult<HandoverView> {
    let project = projects::by_id(conn, x.project_id)?;
    let missing = if matches!(x.status.as_str(), "proposed" | "accepted") {
        handovers::missing(conn, x, gateway)?
    } else {
        Vec::new()
    };
    Ok(HandoverView {
        id: x.id,
        project: project.slug,
        from_user_id: x.from_user_id,
        to_user_id: x.to_user_id,
        effective_at: utc(x.effective_at),
        status: x.status.clone(),
        failure: x.failure.clone(),
        repo_verified_at: x.repo_verified_at.map(utc),
        accepted_at: x.accepted_at.map(utc),
        applied_at: x.applied_at.map(utc),
        reversible_until: x.reversible_until().map(utc),
        reversed_at: x.reversed_at.map(utc),
        missing,
        created_at: utc(x.created_at),
    })
}

/// `POST /projects/{slug}/handovers`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HandoverBody {
    /// The new maintainer.
    pub to_user_id: i64,
    /// From when (now or up to a year ahead).
    pub effective_at: DateTime<Utc>,
}

/// Propose handing the project over (its maintainer of record).
#[utoipa::path(post, path = "/api/v1/projects/{slug}/handovers", tag = "handovers", security(("bearer" = [])),
    params(("slug" = String, Path, description = "project slug")), request_body = HandoverBody,
    responses((status = 201, body = HandoverView), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn propose(
    state: web::Data<AppState>,
    user: AuthUser,
    slug: web::Path<String>,
    body: web::Json<HandoverBody>,
) -> AppResult<HttpResponse> {
    let slug = slug.into_inner();
    let body = body.into_inner();
    let gateway = state.gateway.name();
    let v = state
        .db(move |conn| {
            let p = projects::by_slug(conn, &slug)?;
            let x = handovers::propose(
                conn,
                p.id,
                user.id,
                body.to_user_id,
                body.effective_at.naive_utc(),
            )?;
            tracing::info!(handover = x.id, project = %p.slug, user_id = user.id, "handover proposed");
            view(conn, &x, gateway)
        })
        .await?;
    Ok(HttpResponse::Created().json(v))
}

/// The project's handovers (its maintainers and platform admins).
#[utoipa::path(get, path = "/api/v1/projects/{slug}/handovers", tag = "handovers", security(("bearer" = [])),
    params(("slug" = String, Path, description = "project slug")),
    responses((status = 200, body = [HandoverView]), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem)))]
pub async fn of_project(
    state: web::Data<AppState>,
    user: AuthUser,
    slug: web::Path<String>,
) -> AppResult<web::Json<Vec<HandoverView>>> {
    let slug = slug.into_inner();
    let gateway = state.gateway.name();
    state
        .db(move |conn| {
            let p = projects::by_slug(conn, &slug)?;
            if !crate::domain::moderation::can_moderate(conn, p.id, user.id)? {
                return Err(AppError::forbidden(
                    "only the project's maintainers may see its handovers",
                ));
            }
            let rows = handovers::of_project(conn, p.id)?;
            Ok(web::Json(
                rows.iter()
                    .map(|x| view(conn, x, gateway))
                    .collect::<AppResult<_>>()?,
            ))
        })
        .await
}

/// The handovers the caller is party to.
#[utoipa::path(get, path = "/api/v1/me/handovers", tag = "handovers", security(("bearer" = [])),
    responses((status = 200, body = [HandoverView]), (status = 401, body = Problem)))]
pub async fn mine(
    state: web::Data<AppState>,
    user: AuthUser,
) -> AppResult<web::Json<Vec<HandoverView>>> {
    let gateway = state.gateway.name();
    state
        .db(move |conn| {
            let rows = handovers::of_user(conn, user.id)?;
            Ok(web::Json(
                rows.iter()
                    .map(|x| view(conn, x, gateway))
                    .collect::<AppResult<_>>()?,
            ))
        })
        .await
}

/// One handover (its parties, the project's maintainers, admins).
#[utoipa::path(get, path = "/api/v1/handovers/{id}", tag = "handovers", security(("bearer" = [])),
    params(("id" = i64, Path, description = "handover id")),
    responses((status = 200, body = HandoverView), (status = 401, body = Problem), (status = 404, body = Problem)))]
pub async fn get(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
) -> AppResult<web::Json<HandoverView>> {
    let id = id.into_inner();
    let gateway = state.gateway.name();
    state
        .db(move |conn| {
            let x = handovers::visible(conn, id, user.id)?;
            Ok(web::Json(view(conn, &x, gateway)?))
        })
        .await
}

macro_rules! action {
    ($name:ident, $path:literal, $f:path, $doc:literal) => {
        #[doc = $doc]
        #[utoipa::path(post, path = $path, tag = "handovers", security(("bearer" = [])),
            params(("id" = i64, Path, description = "handover id")),
            responses((status = 200, body = HandoverView), (status = 401, body = Problem), (status = 403, body = Problem),
                      (status = 404, body = Problem), (status = 409, body = Problem)))]
        pub async fn $name(
            state: web::Data<AppState>,
            user: AuthUser,
            id: web::Path<i64>,
        ) -> AppResult<web::Json<HandoverView>> {
            let id = id.into_inner();
            let gateway = state.gateway.name();
            state
                .db(move |conn| {
                    let x = $f(conn, id, user.id)?;
                    tracing::info!(handover = x.id, user_id = user.id, status = %x.status, "handover changed");
                    Ok(web::Json(view(conn, &x, gateway)?))
                })
                .await
        }
    };
}

action!(
    accept,
    "/api/v1/handovers/{id}/accept",
    handovers::accept,
    "Accept a handover (the new maintainer)."
);
action!(
    reverse,
    "/api/v1/handovers/{id}/reverse",
    handovers::reverse,
    "Reverse an applied handover within 14 days (either maintainer or a platform admin)."
);
action!(
    cancel,
    "/api/v1/handovers/{id}/cancel",
    handovers::cancel,
    "Call off a handover not yet applied (either maintainer)."
);
