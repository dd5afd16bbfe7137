//! Matching: who should answer a ticket, in three lanes.

use crate::auth::MaybeUser;
use crate::domain::ai::{self, AiAnswer};
use crate::domain::matching::{self, Candidate};
use crate::error::{AppResult, Problem};
use crate::state::AppState;
use actix_web::web;
use serde::Serialize;
use utoipa::ToSchema;

/// Helpers shown per lane.
const PER_LANE: usize = 10;

/// The three lanes for a ticket.
#[derive(Debug, Serialize, ToSchema)]
pub struct Matches {
    /// The ticket.
    pub ticket_id: i64,
    /// An answer from similar solved tickets, or why there is none.
    pub ai: AiAnswer,
    /// Community helpers of the project and, marked `cross_project`,
    /// helpers proven on similar tickets elsewhere; best first.
    pub community: Vec<Candidate>,
    /// The project's vetted experts, with their rate; best first.
    pub experts: Vec<Candidate>,
}

/// Ranked helpers for a ticket the caller can see, each with a score, the
/// features behind it and the strongest of them in plain words, plus the
/// AI lane's answer.
#[utoipa::path(get, path = "/api/v1/tickets/{id}/matches", tag = "matching", security((), ("bearer" = [])),
    params(("id" = i64, Path, description = "ticket id")),
    responses((status = 200, body = Matches), (status = 404, body = Problem)))]
pub async fn matches(
    state: web::Data<AppState>,
    user: MaybeUser,
    id: web::Path<i64>,
) -> AppResult<web::Json<Matches>> {
    let id = id.into_inner();
    let index = state.index.clone();
    let llm = state.config.ai.clone();
    let min_confidence = state.config.ai_min_confidence;
    let user = user.0.map(|u| u.id);
    let (ranking, grounding) = state
        .db(move |conn| {
            let ranking = matching::rank(conn, &index, id, user)?;
            let grounding = ai::ground(conn, &ranking.similar, min_confidence)?;
            Ok((ranking, grounding))
        })
        .await?;
    // The language model may take seconds: asked with no connection held.
    let (title, body) = (ranking.ticket.title.clone(), ranking.ticket.body.clone());
    let ai = web::block(move || ai::compose(grounding, &title, &body, llm.as_ref())).await?;
    let mut experts = ranking.experts;
    let mut community = ranking.community;
    experts.truncate(PER_LANE);
    community.truncate(PER_LANE);
    Ok(web::Json(Matches {
        ticket_id: id,
        ai,
        community,
        experts,
    }))
}

/// A question that names no project.
#[derive(Debug, serde::Deserialize, ToSchema)]
pub struct RouteBody {
    /// 1–300 characters, not blank.
    #[schema(min_length = 1, max_length = 300, pattern = r"\S")]
    pub title: String,
    /// Up to 20,000 characters.
    #[serde(default)]
    #[schema(max_length = 20000)]
    pub body: String,
}

/// Projects ranked for a question.
#[derive(Debug, Serialize, ToSchema)]
pub struct Routed {
    /// Best first; at most 10.
    pub projects: Vec<crate::domain::routing::RoutedProject>,
}

/// Which projects a question belongs to, from similar solved tickets and
/// the projects' descriptions and topics.
#[utoipa::path(post, path = "/api/v1/route", tag = "matching", security((), ("bearer" = [])), request_body = RouteBody,
    responses((status = 200, body = Routed), (status = 422, body = Problem)))]
pub async fn route(
    state: web::Data<AppState>,
    user: MaybeUser,
    body: web::Json<RouteBody>,
) -> AppResult<web::Json<Routed>> {
    let b = body.into_inner();
    let index = state.index.clone();
    let user = user.0.map(|u| u.id);
    state
        .db(move |conn| {
            let mut projects =
                crate::domain::routing::route(conn, &index, &b.title, &b.body, user)?;
            projects.truncate(10);
            Ok(web::Json(Routed { projects }))
        })
        .await
}
