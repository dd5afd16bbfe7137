//! `GET /projects/{slug}/queue`: open tickets in serving order.

use super::tickets::views;
use super::views::TicketView;
use crate::auth::MaybeUser;
use crate::db::schema::tickets;
use crate::domain::queue;
use crate::domain::tickets::{access, Ticket};
use crate::domain::{decode_cursor, encode_cursor, page_limit, projects};
use crate::error::{AppResult, Problem};
use crate::state::AppState;
use actix_web::web;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// `?limit=&cursor=`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct QueueQuery {
    /// Page size, 1–100, default 20.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// From the previous page.
    pub cursor: Option<String>,
}

/// One place in the queue.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueueEntryView {
    /// 1-based serving position.
    pub position: usize,
    /// The ticket, or null when the caller may not see it (a private ticket
    /// of someone else): its place still counts.
    pub ticket: Option<TicketView>,
    /// Whether money is attached to it, or the requester's plan entitles it
    /// (an included upgrade, an enterprise plan).
    pub paid: bool,
    /// Estimated hours until a helper takes it up (see README: queue ETA).
    pub eta_hours: i64,
}

/// A page of the queue.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueuePage {
    /// This page, in serving order.
    pub items: Vec<QueueEntryView>,
    /// Open tickets in the queue.
    pub total: usize,
    /// Pass as `?cursor=` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// Open tickets in serving order: paid first (plan entitlements, then by
/// amount), then longest waiting,
/// with the project's free share of places guaranteed to unpaid tickets.
#[utoipa::path(get, path = "/api/v1/projects/{slug}/queue", tag = "tickets", security((), ("bearer" = [])),
    params(("slug" = String, Path, description = "project slug"), QueueQuery),
    responses((status = 200, body = QueuePage), (status = 404, body = Problem)))]
pub async fn queue(
    state: web::Data<AppState>,
    user: MaybeUser,
    slug: web::Path<String>,
    query: web::Query<QueueQuery>,
) -> AppResult<web::Json<QueuePage>> {
    let slug = slug.into_inner();
    let limit = page_limit(query.limit)? as usize;
    let offset = match query.cursor.as_deref() {
        Some(c) => usize::try_from(decode_cursor(c)?).unwrap_or(0),
        None => 0,
    };
    let uid = user.0.map(|u| u.id);
    state
        .db(move |conn| {
            let p = projects::by_slug(conn, &slug)?;
            let entries = queue::entries(conn, &p)?;
            let total = entries.len();
            let page: Vec<_> = entries.into_iter().skip(offset).take(limit).collect();
            let mut out = Vec::with_capacity(page.len());
            for e in &page {
                let t: Ticket = tickets::table
                    .find(e.ticket_id)
                    .select(Ticket::as_select())
                    .first(conn)?;
                let visible = access(conn, &t, uid)?.can_view(&t);
                let ticket = if visible {
                    views(conn, std::slice::from_ref(&t))?.pop()
                } else {
                    None
                };
                out.push(QueueEntryView {
                    position: e.position,
                    ticket,
                    paid: e.paid,
                    eta_hours: e.eta_hours,
                });
            }
            let next = offset + page.len();
            let next_cursor = (next < total).then(|| encode_cursor(next as i64));
            Ok(web::Json(QueuePage {
                items: out,
                total,
                next_cursor,
            }))
        })
        .await
}
