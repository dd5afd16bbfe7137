//! Reputation: a user's scores per project, and a project's leaderboard.

use crate::domain::projects;
use crate::domain::reputation::{self, Score};
use crate::error::{AppError, AppResult, Problem};
use crate::state::AppState;
use actix_web::web;
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};

/// One score with its components and where it applies.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScoreView {
    /// The project's slug (in a user's list) or the helper's public name
    /// (in a leaderboard).
    pub label: String,
    /// The score and its components (see README "Reputation").
    #[serde(flatten)]
    pub score: Score,
    /// Events behind it, by kind (in a user's list).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events: Option<BTreeMap<String, i64>>,
    /// When the scores were last computed.
    pub computed_at: DateTime<Utc>,
}

fn view(
    label: String,
    score: Score,
    at: NaiveDateTime,
    events: Option<BTreeMap<String, i64>>,
) -> ScoreView {
    ScoreView {
        label,
        score,
        events,
        computed_at: at.and_utc(),
    }
}

/// A user's reputation in each project, best first.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserReputation {
    /// The user.
    pub user_id: i64,
    /// One per project the user has a score in.
    pub projects: Vec<ScoreView>,
}

/// A user's reputation per project, with each score's components: the
/// Bayesian quality, the project's prior, the decayed evidence, the
/// EigenTrust term and the events behind them.
#[utoipa::path(get, path = "/api/v1/users/{id}/reputation", tag = "reputation",
    params(("id" = i64, Path, description = "user id")),
    responses((status = 200, body = UserReputation), (status = 404, body = Problem)))]
pub async fn user_reputation(
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> AppResult<web::Json<UserReputation>> {
    let id = id.into_inner();
    state
        .db(move |conn| {
            let rows = reputation::of_user(conn, id)?;
            let mut counts = reputation::event_counts(conn, id)?;
            let projects = rows
                .into_iter()
                .map(|(slug, s, at)| {
                    let events = counts.remove(&s.project_id).unwrap_or_default();
                    view(slug, s, at, Some(events))
                })
                .collect();
            Ok(web::Json(UserReputation {
                user_id: id,
                projects,
            }))
        })
        .await
}

/// Paging of a leaderboard.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LeaderboardQuery {
    /// 1–100, default 20.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// Rows to skip, default 0.
    #[param(minimum = 0)]
    pub offset: Option<i64>,
}

/// A page of a project's leaderboard.
#[derive(Debug, Serialize, ToSchema)]
pub struct Leaderboard {
    /// The project.
    pub project: String,
    /// Best first; `label` is the helper's public name.
    pub items: Vec<ScoreView>,
    /// Offset of the next page, when there is one.
    pub next_offset: Option<i64>,
}

/// A project's helpers ranked by reputation.
#[utoipa::path(get, path = "/api/v1/projects/{slug}/reputation", tag = "reputation",
    params(("slug" = String, Path, description = "project slug"), LeaderboardQuery),
    responses((status = 200, body = Leaderboard), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn leaderboard(
    state: web::Data<AppState>,
    slug: web::Path<String>,
    query: web::Query<LeaderboardQuery>,
) -> AppResult<web::Json<Leaderboard>> {
    let slug = slug.into_inner();
    let q = query.into_inner();
    let limit = crate::domain::page_limit(q.limit)?;
    let offset = q.offset.unwrap_or(0);
    if offset < 0 {
        return Err(AppError::field("offset", "must not be negative"));
    }
    state
        .db(move |conn| {
            let p = projects::by_slug(conn, &slug)?;
            let mut rows = reputation::leaderboard(conn, p.id, limit + 1, offset)?;
            let more = rows.len() as i64 > limit;
            rows.truncate(limit as usize);
            Ok(web::Json(Leaderboard {
                project: p.slug,
                items: rows
                    .into_iter()
                    .map(|(name, s, at)| view(name, s, at, None))
                    .collect(),
                // Checked: `then_some` would add even on the last page, and
                // an offset near i64::MAX overflowed (a panic, then a 500).
                next_offset: offset.checked_add(limit).filter(|_| more),
            }))
        })
        .await
}
