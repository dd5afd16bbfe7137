//! `GET /search/tickets` and `GET /tickets/{id}/similar`.

use super::tickets::views;
use super::views::TicketView;
use crate::auth::MaybeUser;
use crate::domain::page_limit;
use crate::domain::search::{self, VisibleHit};
use crate::error::{AppResult, Problem};
use crate::state::AppState;
use actix_web::web;
use guildhall_index::{Facets, Highlights, SearchRequest, Viewer};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// `?q=&project=&status=&tag=&kind=&limit=&cursor=`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// Words; empty matches everything. Title matches weigh most.
    #[serde(default)]
    pub q: String,
    /// Project slug.
    pub project: Option<String>,
    /// Status.
    pub status: Option<String>,
    /// Tag.
    pub tag: Option<String>,
    /// Kind.
    pub kind: Option<String>,
    /// Page size, 1–100, default 20.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// From the previous page.
    pub cursor: Option<String>,
    /// `false` skips facet counts and the exact total (faster on large
    /// indexes; `total` is then a lower bound). Default `true`.
    pub facets: Option<bool>,
}

/// One search result.
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchItem {
    /// The ticket.
    pub ticket: TicketView,
    /// BM25 relevance.
    pub score: f32,
    /// HTML snippets with `<b>` around matched words.
    #[schema(value_type = Object)]
    pub highlights: Highlights,
}

/// Search results.
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchPage {
    /// This page, best first.
    pub items: Vec<SearchItem>,
    /// Counts per project, status, tag and kind over all matches.
    #[schema(value_type = Object)]
    pub facets: Facets,
    /// Matches in all pages.
    pub total: usize,
    /// Pass as `?cursor=` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// Similar resolved tickets.
#[derive(Debug, Serialize, ToSchema)]
pub struct SimilarPage {
    /// Most similar first.
    pub items: Vec<SearchItem>,
}

fn items(conn: &mut crate::db::DbConnection, hits: Vec<VisibleHit>) -> AppResult<Vec<SearchItem>> {
    let tickets: Vec<_> = hits.iter().map(|h| h.ticket.clone()).collect();
    let views = views(conn, &tickets)?;
    Ok(hits
        .into_iter()
        .zip(views)
        .map(|(h, ticket)| SearchItem {
            ticket,
            score: h.score,
            highlights: h.highlights,
        })
        .collect())
}

/// Full-text search over every project's tickets the caller may see.
#[utoipa::path(get, path = "/api/v1/search/tickets", tag = "search", security((), ("bearer" = [])), params(SearchQuery),
    responses((status = 200, body = SearchPage), (status = 400, body = Problem), (status = 422, body = Problem)))]
pub async fn search_tickets(
    state: web::Data<AppState>,
    user: MaybeUser,
    query: web::Query<SearchQuery>,
) -> AppResult<web::Json<SearchPage>> {
    let q = query.into_inner();
    let limit = page_limit(q.limit)? as usize;
    let index = state.index.clone();
    let uid = user.0.map(|u| u.id);
    state
        .db(move |conn| {
            let req = SearchRequest {
                query: q.q,
                project: q.project,
                status: q.status,
                tag: q.tag,
                kind: q.kind,
                viewer: Viewer {
                    user_id: None,
                    team_projects: Vec::new(),
                },
                limit,
                cursor: q.cursor,
                top_only: !q.facets.unwrap_or(true),
            };
            let (hits, results) = search::search(conn, &index, req, uid)?;
            Ok(web::Json(SearchPage {
                items: items(conn, hits)?,
                facets: results.facets,
                total: results.total,
                next_cursor: results.next_cursor,
            }))
        })
        .await
}

/// `?limit=` for similar tickets.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SimilarQuery {
    /// 1–100, default 10.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

/// Resolved tickets most like this one.
#[utoipa::path(get, path = "/api/v1/tickets/{id}/similar", tag = "search", security((), ("bearer" = [])),
    params(("id" = i64, Path, description = "ticket id"), SimilarQuery),
    responses((status = 200, body = SimilarPage), (status = 404, body = Problem)))]
pub async fn similar(
    state: web::Data<AppState>,
    user: MaybeUser,
    id: web::Path<i64>,
    query: web::Query<SimilarQuery>,
) -> AppResult<web::Json<SimilarPage>> {
    let id = id.into_inner();
    let limit = page_limit(Some(query.limit.unwrap_or(10)))? as usize;
    let index = state.index.clone();
    state
        .db(move |conn| {
            let hits = search::similar(conn, &index, id, user.0.map(|u| u.id), limit)?;
            Ok(web::Json(SimilarPage {
                items: items(conn, hits)?,
            }))
        })
        .await
}
