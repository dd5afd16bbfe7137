//! Pages for platform admins: the audit log.

use super::pages::{redirect, when, Page};
use super::{render, Layout, WebError};
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest};
use askama::Template;
use serde::Deserialize;

/// Entries a page shows.
const PER_PAGE: i64 = 50;

#[derive(Template)]
#[template(path = "admin_audit.html", config = "src/web/askama.toml")]
struct AuditPage {
    l: Layout,
    /// (when, who, what, on, details).
    rows: Vec<(String, String, String, String, String)>,
    /// The id to continue before.
    next: Option<i64>,
}

/// `?before=`.
#[derive(Debug, Deserialize)]
pub struct AuditQuery {
    before: Option<i64>,
}

/// `GET /admin/audit`: the audit log, newest first (platform admins).
pub async fn audit(
    state: web::Data<AppState>,
    req: HttpRequest,
    q: web::Query<AuditQuery>,
) -> Page {
    let l = Layout::of(&state, &req).await?;
    let Some(user) = l.user.as_ref().map(|u| u.id) else {
        return Ok(redirect("/login?next=/admin/audit"));
    };
    let before = q.before;
    let (rows, next) = state
        .db(move |conn| {
            crate::domain::users::require_admin(
                conn,
                user,
                "only a platform admin may read the audit log",
            )?;
            let mut entries = crate::domain::audit::list(conn, before, PER_PAGE + 1)?;
            let next = (entries.len() > PER_PAGE as usize).then(|| {
                entries.truncate(PER_PAGE as usize);
                entries.last().map(|e| e.id)
            });
            let ids: Vec<i64> = entries.iter().filter_map(|e| e.actor_id).collect();
            let names = crate::domain::users::names(conn, &ids)?;
            let rows = entries
                .into_iter()
                .map(|e| {
                    let who = match e.actor_id {
                        Some(a) => names
                            .get(&a)
                            .cloned()
                            .unwrap_or_else(|| format!("user {a}")),
                        None => "command line".into(),
                    };
                    let on = match e.target_id {
                        Some(t) => format!("{} {t}", e.target_type),
                        None => e.target_type,
                    };
                    (when(e.created_at), who, e.action, on, e.detail)
                })
                .collect();
            Ok((rows, next.flatten()))
        })
        .await
        .map_err(WebError)?;
    render(StatusCode::OK, &AuditPage { l, rows, next })
}
