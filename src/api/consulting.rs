//! Booking consulting time (`domain::consulting`).

use super::views::utc;
use crate::auth::AuthUser;
use crate::domain::consulting::{self, Booking};
use crate::domain::projects;
use crate::error::{AppError, AppResult, Problem};
use crate::state::AppState;
use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A booking.
#[derive(Debug, Serialize, ToSchema)]
pub struct BookingView {
    /// Id.
    pub id: i64,
    /// The subscription whose minutes it spent.
    pub subscription_id: i64,
    /// The project's slug.
    pub project: String,
    /// The subscriber.
    pub requester_id: i64,
    /// Minutes.
    pub minutes: i32,
    /// What it is about.
    pub topic: String,
    /// When the subscriber would like it.
    pub preferred_at: Option<DateTime<Utc>>,
    /// `requested`, `scheduled`, `done` or `cancelled`.
    pub status: String,
    /// When it takes place.
    pub scheduled_at: Option<DateTime<Utc>>,
    /// Whether its cancellation gave the minutes back.
    pub returned: bool,
    /// Requested.
    pub created_at: DateTime<Utc>,
}

fn view(conn: &mut crate::db::DbConnection, b: &Booking) -> AppResult<BookingView> {
    Ok(BookingView {
        id: b.id,
        subscription_id: b.subscription_id,
        project: projects::by_id(conn, b.project_id)?.slug,
        requester_id: b.requester_id,
        minutes: b.minutes,
        topic: b.topic.clone(),
        preferred_at: b.preferred_at.map(utc),
        status: b.status.clone(),
        scheduled_at: b.scheduled_at.map(utc),
        returned: b.returned,
        created_at: utc(b.created_at),
    })
}

/// `POST /subscriptions/{id}/consulting`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BookBody {
    /// Minutes, a multiple of 15 from 15 to 480.
    pub minutes: i32,
    /// What it is about.
    pub topic: String,
    /// When they would like it.
    pub preferred_at: Option<DateTime<Utc>>,
}

/// Book consulting time from the plan's included minutes (the subscriber).
#[utoipa::path(post, path = "/api/v1/subscriptions/{id}/consulting", tag = "plans", security(("bearer" = [])),
    params(("id" = i64, Path, description = "subscription id")), request_body = BookBody,
    responses((status = 201, body = BookingView), (status = 401, body = Problem), (status = 404, body = Problem),
              (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn book(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
    body: web::Json<BookBody>,
) -> AppResult<HttpResponse> {
    let id = id.into_inner();
    let body = body.into_inner();
    let v = state
        .db(move |conn| {
            let b = consulting::book(
                conn,
                id,
                user.id,
                &consulting::Request {
                    minutes: body.minutes,
                    topic: body.topic,
                    preferred_at: body.preferred_at.map(|p| p.naive_utc()),
                },
            )?;
            tracing::info!(
                booking = b.id,
                subscription = id,
                user_id = user.id,
                "consulting booked"
            );
            view(conn, &b)
        })
        .await?;
    Ok(HttpResponse::Created().json(v))
}

/// The subscription's bookings (the subscriber).
#[utoipa::path(get, path = "/api/v1/subscriptions/{id}/consulting", tag = "plans", security(("bearer" = [])),
    params(("id" = i64, Path, description = "subscription id")),
    responses((status = 200, body = [BookingView]), (status = 401, body = Problem), (status = 404, body = Problem)))]
pub async fn of_subscription(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
) -> AppResult<web::Json<Vec<BookingView>>> {
    let id = id.into_inner();
    state
        .db(move |conn| {
            let sub = crate::domain::plans::get_subscription(conn, id)
                .ok()
                .filter(|s| s.subscriber_id == user.id)
                .ok_or_else(|| AppError::not_found("subscription"))?;
            let rows = consulting::of_subscription(conn, sub.id)?;
            Ok(web::Json(
                rows.iter()
                    .map(|b| view(conn, b))
                    .collect::<AppResult<_>>()?,
            ))
        })
        .await
}

/// The project's bookings (its maintainers).
#[utoipa::path(get, path = "/api/v1/projects/{slug}/consulting", tag = "plans", security(("bearer" = [])),
    params(("slug" = String, Path, description = "project slug")),
    responses((status = 200, body = [BookingView]), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem)))]
pub async fn of_project(
    state: web::Data<AppState>,
    user: AuthUser,
    slug: web::Path<String>,
) -> AppResult<web::Json<Vec<BookingView>>> {
    let slug = slug.into_inner();
    state
        .db(move |conn| {
            let p = projects::by_slug(conn, &slug)?;
            projects::require_maintainer(conn, p.id, user.id)?;
            let rows = consulting::of_project(conn, p.id)?;
            Ok(web::Json(
                rows.iter()
                    .map(|b| view(conn, b))
                    .collect::<AppResult<_>>()?,
            ))
        })
        .await
}

/// `POST /consulting/{id}/schedule`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleBody {
    /// When it takes place.
    pub at: DateTime<Utc>,
}

/// Schedule a booking (the project's maintainers).
#[utoipa::path(post, path = "/api/v1/consulting/{id}/schedule", tag = "plans", security(("bearer" = [])),
    params(("id" = i64, Path, description = "booking id")), request_body = ScheduleBody,
    responses((status = 200, body = BookingView), (status = 401, body = Problem), (status = 404, body = Problem),
              (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn schedule(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
    body: web::Json<ScheduleBody>,
) -> AppResult<web::Json<BookingView>> {
    let id = id.into_inner();
    let at = body.into_inner().at.naive_utc();
    state
        .db(move |conn| {
            let b = consulting::schedule(conn, id, user.id, at)?;
            Ok(web::Json(view(conn, &b)?))
        })
        .await
}

macro_rules! action {
    ($name:ident, $path:literal, $f:path, $doc:literal) => {
        #[doc = $doc]
        #[utoipa::path(post, path = $path, tag = "plans", security(("bearer" = [])),
            params(("id" = i64, Path, description = "booking id")),
            responses((status = 200, body = BookingView), (status = 401, body = Problem), (status = 404, body = Problem),
                      (status = 409, body = Problem)))]
        pub async fn $name(
            state: web::Data<AppState>,
            user: AuthUser,
            id: web::Path<i64>,
        ) -> AppResult<web::Json<BookingView>> {
            let id = id.into_inner();
            state
                .db(move |conn| {
                    let b = $f(conn, id, user.id)?;
                    Ok(web::Json(view(conn, &b)?))
                })
                .await
        }
    };
}

action!(
    done,
    "/api/v1/consulting/{id}/done",
    consulting::done,
    "Mark a scheduled booking done (the project's maintainers)."
);
action!(
    cancel,
    "/api/v1/consulting/{id}/cancel",
    consulting::cancel,
    "Cancel a booking (the subscriber or the project's maintainers); the minutes come back while their period runs."
);
