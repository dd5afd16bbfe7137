//! Routing: which project a question that names none belongs to.
//!
//! Two signals, combined as `0.8 · tickets + 0.2 · profile`:
//! * **tickets** — the index's more-like-this over the question finds the
//!   most similar solved tickets of every project (up to [`HITS`]); a
//!   project's evidence is the sum of its tickets' BM25 scores, divided by
//!   the best project's.
//! * **profile** — the share of the question's distinct words (three letters
//!   or more) found in the project's name, description and topics.

use crate::db::schema::projects;
use crate::db::DbConnection;
use crate::domain::search;
use crate::error::{AppError, AppResult};
use diesel::prelude::*;
use guildhall_index::TicketIndex;
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use utoipa::ToSchema;

/// Similar solved tickets considered.
pub const HITS: usize = 100;
/// Weight of the ticket evidence (the profile gets the rest).
pub const TICKET_WEIGHT: f64 = 0.8;

/// A project ranked for a question.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RoutedProject {
    /// Slug.
    pub slug: String,
    /// Name.
    pub name: String,
    /// 0–1.
    pub score: f64,
    /// Why, in plain words.
    pub reasons: Vec<String>,
}

fn words(text: &str) -> HashSet<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() >= 3)
        .map(str::to_lowercase)
        .collect()
}

/// Ranks projects for a question, best first (only those with evidence).
pub fn route(
    conn: &mut DbConnection,
    index: &TicketIndex,
    title: &str,
    body: &str,
    user: Option<i64>,
) -> AppResult<Vec<RoutedProject>> {
    if title.trim().is_empty() {
        return Err(AppError::field("title", "must not be empty"));
    }
    if title.chars().count() > 300 || body.chars().count() > 20_000 {
        return Err(AppError::field(
            "body",
            "title ≤ 300 and body ≤ 20000 characters",
        ));
    }
    let viewer = search::viewer(conn, user)?;
    let hits = index
        .similar_to_text(title, body, &viewer, None, HITS)
        .map_err(search::map_index_error)?;
    let mut evidence: HashMap<String, (f64, usize)> = HashMap::new();
    for h in &hits {
        let e = evidence.entry(h.project.clone()).or_default();
        e.0 += f64::from(h.score);
        e.1 += 1;
    }
    let best = evidence.values().map(|e| e.0).fold(0.0, f64::max);
    let question = words(&format!("{title} {body}"));
    let all: Vec<(String, String, String, String)> = projects::table
        .select((
            projects::slug,
            projects::name,
            projects::description,
            projects::topics,
        ))
        .load(conn)?;
    let mut out: Vec<RoutedProject> = all
        .into_iter()
        .filter_map(|(slug, name, description, topics)| {
            let topics: Vec<String> = serde_json::from_str(&topics).unwrap_or_default();
            let profile = words(&format!("{name} {description} {}", topics.join(" ")));
            let shared = question.intersection(&profile).count();
            let profile_score = if question.is_empty() {
                0.0
            } else {
                shared as f64 / question.len() as f64
            };
            let (mass, count) = evidence.get(&slug).copied().unwrap_or((0.0, 0));
            let ticket_score = if best > 0.0 { mass / best } else { 0.0 };
            let score = TICKET_WEIGHT * ticket_score + (1.0 - TICKET_WEIGHT) * profile_score;
            if score <= 0.0 {
                return None;
            }
            let mut reasons = Vec::new();
            if count > 0 {
                reasons.push(format!(
                    "{count} similar solved ticket{}",
                    if count == 1 { "" } else { "s" }
                ));
            }
            if shared > 0 {
                reasons.push(format!(
                    "{shared} word{} in common with its description and topics",
                    if shared == 1 { "" } else { "s" }
                ));
            }
            Some(RoutedProject {
                slug,
                name,
                score,
                reasons,
            })
        })
        .collect();
    out.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.slug.cmp(&b.slug))
    });
    Ok(out)
}
