//! Ticket search and similar tickets: the index ranks, the database decides.
//!
//! The index applies the visibility rule itself (private tickets only for
//! their requester and their project's team), and every hit is checked again
//! against the database before it is shown, so a stale index can never leak
//! a ticket that became private or a team member who lost their rights.

use crate::db::schema::projects;
use crate::db::DbConnection;
use crate::domain::tickets::{self, Ticket};
use crate::error::ErrorCode;
use crate::error::{AppError, AppResult};
use diesel::prelude::*;
use guildhall_index::{Highlights, Hit, SearchRequest, SearchResults, TicketIndex, Viewer};

/// Who is searching, as the index needs it.
pub fn viewer(conn: &mut DbConnection, user: Option<i64>) -> AppResult<Viewer> {
    let team_projects = match user {
        Some(u) => {
            let ids = tickets::team_project_ids(conn, u)?;
            projects::table
                .filter(projects::id.eq_any(ids))
                .select(projects::slug)
                .load(conn)?
        }
        None => Vec::new(),
    };
    Ok(Viewer {
        user_id: user,
        team_projects,
    })
}

/// A hit the caller may see, with its ticket.
pub struct VisibleHit {
    /// The ticket, from the database.
    pub ticket: Ticket,
    /// BM25 score.
    pub score: f32,
    /// Snippets.
    pub highlights: Highlights,
}

/// Keeps the hits whose tickets exist and are visible to `user`, in order.
pub fn visible_hits(
    conn: &mut DbConnection,
    hits: Vec<Hit>,
    user: Option<i64>,
) -> AppResult<Vec<VisibleHit>> {
    let mut out = Vec::with_capacity(hits.len());
    for hit in hits {
        match tickets::load_visible(conn, hit.id, user) {
            Ok((ticket, _)) => out.push(VisibleHit {
                ticket,
                score: hit.score,
                highlights: hit.highlights,
            }),
            Err(AppError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// Runs a search for `user`.
pub fn search(
    conn: &mut DbConnection,
    index: &TicketIndex,
    mut req: SearchRequest,
    user: Option<i64>,
) -> AppResult<(Vec<VisibleHit>, SearchResults)> {
    req.viewer = viewer(conn, user)?;
    let mut results = index.search(&req).map_err(map_index_error)?;
    let hits = visible_hits(conn, std::mem::take(&mut results.hits), user)?;
    Ok((hits, results))
}

/// Resolved tickets most like ticket `id` (which the caller must be able to see).
pub fn similar(
    conn: &mut DbConnection,
    index: &TicketIndex,
    id: i64,
    user: Option<i64>,
    limit: usize,
) -> AppResult<Vec<VisibleHit>> {
    tickets::load_visible(conn, id, user)?;
    let viewer = viewer(conn, user)?;
    let hits = index.similar(id, &viewer, limit).map_err(map_index_error)?;
    visible_hits(conn, hits, user)
}

/// Index errors: a bad cursor is the client's fault, anything else ours.
pub fn map_index_error(e: guildhall_index::IndexError) -> AppError {
    match e {
        guildhall_index::IndexError::InvalidCursor => AppError::bad_request(
            ErrorCode::InvalidCursor,
            "the cursor is not one this API issued",
        ),
        other => AppError::internal(other),
    }
}

/// Solved or open tickets like a question that is not a ticket yet (the
/// home page's Ask box, the new-ticket form's suggestions), as `user` may
/// see them, best first; within `project` when given.
pub fn similar_to_question(
    conn: &mut DbConnection,
    index: &guildhall_index::TicketIndex,
    title: &str,
    body: &str,
    project: Option<&str>,
    user: Option<i64>,
    limit: usize,
) -> AppResult<Vec<VisibleHit>> {
    if title.trim().is_empty() && body.trim().is_empty() {
        return Ok(Vec::new());
    }
    let viewer = viewer(conn, user)?;
    let hits = index
        .similar_to_text(title, body, &viewer, project, limit)
        .map_err(map_index_error)?;
    visible_hits(conn, hits, user)
}
