//! What Guildhall already knows: the AI lane's answer with its citations
//! (home page's Ask box, the ticket page) and the similar tickets the
//! new-ticket form suggests as the title is typed (an htmx fragment, and
//! the same list on the page itself without JavaScript).

use super::pages::Page;
use super::session::Session;
use super::{render, WebError};
use crate::domain::ai::{self, Grounding};
use crate::domain::search::{self, VisibleHit};
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest};
use askama::Template;
use serde::Deserialize;
use std::collections::HashMap;

/// The AI lane's answer as a page shows it.
pub struct AiView {
    /// The answer, when there is one.
    pub answer: Option<String>,
    /// (ticket id, title) of the solved tickets it is built from.
    pub citations: Vec<(i64, String)>,
    /// Confidence in percent.
    pub confidence: i64,
    /// `llm`, `retrieval` or `none`.
    pub source: &'static str,
    /// Why there is no answer, when there is none.
    pub note: String,
}

/// Composes the answer from its grounding (the language model, when one
/// is configured, is asked on the blocking pool with no connection held).
pub async fn compose(
    state: &AppState,
    grounding: Grounding,
    title: String,
    body: String,
) -> Result<AiView, WebError> {
    let titles: HashMap<i64, String> = match &grounding {
        Grounding::Sources { sources, .. } => sources
            .iter()
            .map(|(id, title, _)| (*id, title.clone()))
            .collect(),
        Grounding::Nothing(_) => HashMap::new(),
    };
    let llm = state.config.ai.clone();
    let a = web::block(move || ai::compose(grounding, &title, &body, llm.as_ref()))
        .await
        .map_err(|e| WebError(crate::error::AppError::internal(e)))?;
    Ok(AiView {
        citations: a
            .citations
            .iter()
            .map(|id| (*id, titles.get(id).cloned().unwrap_or_default()))
            .collect(),
        confidence: (a.confidence * 100.0).round() as i64,
        source: a.source,
        note: a.note.unwrap_or_default(),
        answer: a.answer,
    })
}

/// A suggested ticket.
pub struct Suggestion {
    /// Id.
    pub id: i64,
    /// Title.
    pub title: String,
    /// Status.
    pub status: String,
}

/// Suggestions from hits: solved ones first, at most five.
pub fn suggestions(hits: Vec<VisibleHit>) -> Vec<Suggestion> {
    let mut out: Vec<Suggestion> = hits
        .into_iter()
        .map(|h| Suggestion {
            id: h.ticket.id,
            status: h.ticket.status.clone(),
            title: h.ticket.title,
        })
        .collect();
    out.sort_by_key(|s| !matches!(s.status.as_str(), "resolved" | "closed"));
    out.truncate(5);
    out
}

#[derive(Template)]
#[template(path = "similar.html", config = "src/web/askama.toml")]
struct SimilarFragment {
    similar: Vec<Suggestion>,
    asked: bool,
}

/// `?project=&title=&body=`.
#[derive(Debug, Deserialize)]
pub struct SimilarQuery {
    #[serde(default)]
    project: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    body: String,
}

/// Similar tickets for what is typed so far, within the project.
pub async fn similar_for(
    state: &AppState,
    user: Option<i64>,
    project: String,
    title: String,
    body: String,
) -> Result<Vec<Suggestion>, WebError> {
    let title: String = title.chars().take(300).collect();
    let body: String = body.chars().take(5_000).collect();
    if title.trim().chars().count() < 4 && body.trim().is_empty() {
        return Ok(Vec::new());
    }
    let index = state.index.clone();
    let hits = state
        .db(move |conn| {
            let project = (!project.is_empty()).then_some(project.as_str());
            search::similar_to_question(conn, &index, &title, &body, project, user, 10)
        })
        .await?;
    Ok(suggestions(hits))
}

/// `GET /new/similar`: the suggestions as an HTML fragment, for htmx as
/// the new-ticket form is typed.
pub async fn similar_fragment(
    state: web::Data<AppState>,
    req: HttpRequest,
    q: web::Query<SimilarQuery>,
) -> Page {
    let user = Session::of(&req).user_id;
    let q = q.into_inner();
    let asked = !q.title.trim().is_empty() || !q.body.trim().is_empty();
    let similar = similar_for(&state, user, q.project, q.title, q.body).await?;
    render(StatusCode::OK, &SimilarFragment { similar, asked })
}
