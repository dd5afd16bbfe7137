//! The pages: each loads what it shows through the domain (as the API
//! does, so the same rules decide who sees what) and renders a template.

use super::session::{self, Session};
use super::{money, render, Layout, WebError};
use crate::domain::tickets::{self as ticket_domain, Status};
use crate::domain::{helpers, projects, queue, search, users};
use crate::error::AppError;
use crate::state::AppState;
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use guildhall_index::SearchRequest;
use serde::Deserialize;

type Page = Result<HttpResponse, WebError>;

// ---------------------------------------------------------------------------
// Home

/// A project card.
pub struct ProjectCard {
    slug: String,
    name: String,
    description: String,
}

/// A project a question was routed to.
pub struct Routed {
    slug: String,
    name: String,
    reasons: String,
}

#[derive(Template)]
#[template(path = "index.html", config = "src/web/askama.toml")]
struct Home {
    l: Layout,
    ask: String,
    routed: Vec<Routed>,
    projects: Vec<ProjectCard>,
}

/// `?ask=`.
#[derive(Debug, Deserialize)]
pub struct HomeQuery {
    ask: Option<String>,
}

/// `/`: search, ask, projects.
pub async fn home(state: web::Data<AppState>, req: HttpRequest, q: web::Query<HomeQuery>) -> Page {
    let l = Layout::of(&state, &req).await?;
    let ask: String = q
        .into_inner()
        .ask
        .unwrap_or_default()
        .chars()
        .take(300)
        .collect();
    let index = state.index.clone();
    let user = l.user.as_ref().map(|u| u.id);
    let question = ask.trim().to_owned();
    let (projects, routed) = state
        .db(move |conn| {
            let list = projects::list(conn, None, None, 100)?;
            let routed = if question.is_empty() {
                Vec::new()
            } else {
                crate::domain::routing::route(conn, &index, &question, "", user)?
            };
            Ok((list, routed))
        })
        .await?;
    let page = Home {
        l,
        ask,
        routed: routed
            .into_iter()
            .take(5)
            .map(|r| Routed {
                slug: r.slug,
                name: r.name,
                reasons: r.reasons.join("; "),
            })
            .collect(),
        projects: projects
            .into_iter()
            .map(|p| ProjectCard {
                slug: p.slug,
                name: p.name,
                description: p.description,
            })
            .collect(),
    };
    render(StatusCode::OK, &page)
}

// ---------------------------------------------------------------------------
// Search

/// One result.
pub struct Hit {
    id: i64,
    title: String,
    status: String,
    project: String,
    /// HTML-escaped by the index, matches in `<b>`.
    snippet: String,
}

#[derive(Template)]
#[template(path = "search.html", config = "src/web/askama.toml")]
struct SearchPage {
    l: Layout,
    q: String,
    project: String,
    total: usize,
    hits: Vec<Hit>,
    next: Option<String>,
    facet_projects: Vec<(String, u64)>,
}

/// `?q=&project=&cursor=`.
#[derive(Debug, Deserialize)]
pub struct SearchQuery {
    q: Option<String>,
    project: Option<String>,
    cursor: Option<String>,
}

/// `/search`: results with highlights, a project facet and paging.
pub async fn search(
    state: web::Data<AppState>,
    req: HttpRequest,
    q: web::Query<SearchQuery>,
) -> Page {
    let l = Layout::of(&state, &req).await?;
    let q = q.into_inner();
    let text = q.q.unwrap_or_default().trim().to_owned();
    let project = q.project.unwrap_or_default();
    let mut page = SearchPage {
        l,
        q: text.clone(),
        project: project.clone(),
        total: 0,
        hits: Vec::new(),
        next: None,
        facet_projects: Vec::new(),
    };
    if !text.is_empty() {
        let index = state.index.clone();
        let user = page.l.user.as_ref().map(|u| u.id);
        let (hits, results, slugs) = state
            .db(move |conn| {
                let request = SearchRequest {
                    query: text,
                    project: (!project.is_empty()).then_some(project),
                    status: None,
                    tag: None,
                    kind: None,
                    viewer: guildhall_index::Viewer {
                        user_id: None,
                        team_projects: Vec::new(),
                    },
                    limit: 20,
                    cursor: q.cursor,
                    top_only: false,
                };
                let (hits, results) = search::search(conn, &index, request, user)?;
                let slugs = projects::slugs(conn)?;
                Ok((hits, results, slugs))
            })
            .await?;
        page.total = results.total;
        page.next = results.next_cursor;
        page.facet_projects = results
            .facets
            .project
            .into_iter()
            .map(|f| (f.value, f.count))
            .collect();
        page.hits = hits
            .into_iter()
            .map(|h| Hit {
                id: h.ticket.id,
                snippet: h
                    .highlights
                    .body
                    .or(h.highlights.answer)
                    .unwrap_or_default(),
                project: slugs.get(&h.ticket.project_id).cloned().unwrap_or_default(),
                status: h.ticket.status.clone(),
                title: h.ticket.title,
            })
            .collect();
    }
    render(StatusCode::OK, &page)
}

// ---------------------------------------------------------------------------
// Accounts

#[derive(Template)]
#[template(path = "login.html", config = "src/web/askama.toml")]
struct LoginPage {
    l: Layout,
    errors: Vec<String>,
    email: String,
    next: String,
}

/// `?next=`.
#[derive(Debug, Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

/// Only a path on this site: never an open redirect.
fn local_path(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_owned(),
        _ => "/".to_owned(),
    }
}

/// `GET /login`.
pub async fn login_form(
    state: web::Data<AppState>,
    req: HttpRequest,
    q: web::Query<NextQuery>,
) -> Page {
    let l = Layout::of(&state, &req).await?;
    let page = LoginPage {
        l,
        errors: Vec::new(),
        email: String::new(),
        next: local_path(q.next.as_deref()),
    };
    render(StatusCode::OK, &page)
}

/// The sign-in form.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    csrf: String,
    email: String,
    password: String,
    next: Option<String>,
}

fn redirect(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to.to_owned()))
        .finish()
}

fn signed_in(state: &AppState, token: String, to: &str) -> HttpResponse {
    let mut res = redirect(to);
    // A failure to add a cookie leaves the visitor signed out, nothing worse.
    let _ = res.add_cookie(&session::session_cookie(state, token));
    res
}

/// `POST /login`: signs in and goes back where the visitor came from.
pub async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<LoginForm>,
) -> Page {
    let form = form.into_inner();
    session::check_form(&req, &form.csrf)?;
    let next = local_path(form.next.as_deref());
    let address = crate::api::auth::client_address(&req);
    match crate::api::auth::password_login(&state, &form.email, form.password, &address).await {
        Ok((_, token)) => Ok(signed_in(&state, token, &next)),
        Err(e @ (AppError::Unauthorized(_) | AppError::TooManyRequests { .. })) => {
            let status = actix_web::ResponseError::status_code(&e);
            let page = LoginPage {
                l: Layout::of(&state, &req).await?,
                errors: vec![e.to_string()],
                email: form.email,
                next,
            };
            render(status, &page)
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "register.html", config = "src/web/askama.toml")]
struct RegisterPage {
    l: Layout,
    errors: Vec<String>,
    email: String,
    display_name: String,
}

/// `GET /register`.
pub async fn register_form(state: web::Data<AppState>, req: HttpRequest) -> Page {
    let page = RegisterPage {
        l: Layout::of(&state, &req).await?,
        errors: Vec::new(),
        email: String::new(),
        display_name: String::new(),
    };
    render(StatusCode::OK, &page)
}

/// The registration form.
#[derive(Debug, Deserialize)]
pub struct RegisterForm {
    csrf: String,
    email: String,
    password: String,
    display_name: String,
}

/// `POST /register`: the API's validation, errors inline; signs the new
/// account in.
pub async fn register(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<RegisterForm>,
) -> Page {
    let form = form.into_inner();
    session::check_form(&req, &form.csrf)?;
    let address = crate::api::auth::client_address(&req);
    let created = crate::api::auth::register_account(
        &state,
        &form.email,
        form.password,
        &form.display_name,
        &address,
    )
    .await;
    match created {
        Ok(user) => {
            let ttl = state.tokens.refresh_ttl;
            let token = state
                .db(move |conn| crate::domain::sessions::start(conn, user.id, ttl))
                .await?;
            Ok(signed_in(&state, token, "/"))
        }
        Err(e) => {
            let status = actix_web::ResponseError::status_code(&e);
            let errors = match e {
                AppError::Validation(fields) => fields
                    .into_iter()
                    .map(|f| format!("{}: {}", f.field.replace('_', " "), f.message))
                    .collect(),
                e @ (AppError::Conflict { .. } | AppError::TooManyRequests { .. }) => {
                    vec![e.to_string()]
                }
                e => return Err(e.into()),
            };
            let page = RegisterPage {
                l: Layout::of(&state, &req).await?,
                errors,
                email: form.email,
                display_name: form.display_name,
            };
            render(status, &page)
        }
    }
}

/// The sign-out form.
#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

/// `POST /logout`: revokes the session's whole token family and forgets
/// the cookie.
pub async fn logout(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<CsrfForm>,
) -> Page {
    session::check_form(&req, &form.csrf)?;
    if let Some(token) = req.cookie(session::SESSION_COOKIE) {
        let token = token.value().to_owned();
        state
            .db(move |conn| crate::domain::sessions::logout(conn, &token))
            .await?;
    }
    let mut res = redirect("/");
    let _ = res.add_cookie(&session::removal(&state));
    Ok(res)
}

// ---------------------------------------------------------------------------
// Projects

/// A helper row.
pub struct HelperRow {
    user_id: i64,
    name: String,
    tier: String,
    reputation: String,
    rate: String,
}

#[derive(Template)]
#[template(path = "project.html", config = "src/web/askama.toml")]
struct ProjectPage {
    l: Layout,
    p: projects::Project,
    helpers: Vec<HelperRow>,
    queue_length: usize,
    eta_hours: i64,
    resolved_30: i64,
}

/// `/p/{slug}`: the project's support page.
pub async fn project(
    state: web::Data<AppState>,
    req: HttpRequest,
    slug: web::Path<String>,
) -> Page {
    let l = Layout::of(&state, &req).await?;
    let slug = slug.into_inner();
    let (p, helpers, figures) = state
        .db(move |conn| {
            let p = projects::by_slug(conn, &slug)?;
            let rows = helpers::list(conn, p.id, helpers::HelperStatus::Approved, None, 100)?;
            let mut out = Vec::with_capacity(rows.len());
            for (h, name) in rows {
                let score = crate::domain::reputation::score_of(conn, p.id, h.user_id)?;
                out.push(HelperRow {
                    user_id: h.user_id,
                    name,
                    reputation: score.map_or_else(|| "new".into(), |s| format!("{s:.0}")),
                    rate: h.hourly_rate.map_or_else(
                        || "—".into(),
                        |r| format!("{} / hour", money(r, &p.currency)),
                    ),
                    tier: h.tier,
                });
            }
            let figures = queue::figures(conn, &p)?;
            Ok((p, out, figures))
        })
        .await?;
    let page = ProjectPage {
        l,
        helpers,
        queue_length: figures.open,
        eta_hours: figures.new_ticket_eta_hours,
        resolved_30: figures.resolved_last_30_days,
        p,
    };
    render(StatusCode::OK, &page)
}

// ---------------------------------------------------------------------------
// Tickets

/// A message as the thread shows it.
pub struct MessageRow {
    id: i64,
    author: String,
    at: String,
    body: String,
    internal: bool,
    resolution: bool,
}

#[derive(Template)]
#[template(path = "ticket.html", config = "src/web/askama.toml")]
struct TicketPage {
    l: Layout,
    t: ticket_domain::Ticket,
    tags: Vec<String>,
    status_label: &'static str,
    paid: i64,
    paid_label: String,
    project_slug: String,
    project_name: String,
    requester: String,
    messages: Vec<MessageRow>,
    bounties: Vec<(i64, String, String)>,
    events: Vec<String>,
}

fn status_label(s: Status) -> &'static str {
    match s {
        Status::Draft => "draft",
        Status::Open => "open",
        Status::Claimed => "claimed",
        Status::Resolved => "resolved",
        Status::Closed => "closed",
        Status::Cancelled => "cancelled",
        Status::AutoClosed => "closed for inactivity",
    }
}

fn when(at: chrono::NaiveDateTime) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// `/t/{id}`: the thread and timeline, for whoever may see the ticket (404
/// otherwise, as in the API).
pub async fn ticket(state: web::Data<AppState>, req: HttpRequest, id: web::Path<String>) -> Page {
    let l = Layout::of(&state, &req).await?;
    let id: i64 = id
        .parse()
        .map_err(|_| WebError(AppError::not_found("ticket")))?;
    let user = Session::of(&req).user_id;
    let page = state
        .db(move |conn| {
            let (t, _) = ticket_domain::load_visible(conn, id, user)?;
            let messages = ticket_domain::list_messages(conn, id, user, None, 500)?;
            let events = ticket_domain::events(conn, id, user)?;
            let bounties = crate::domain::money::bounties_of(conn, id)?;
            let p = projects::by_id(conn, t.project_id)?;
            let mut ids: Vec<i64> = messages.iter().map(|m| m.author_id).collect();
            ids.extend(events.iter().filter_map(|e| e.actor_id));
            ids.push(t.requester_id);
            let names = users::names(conn, &ids)?;
            let name = |id: i64| {
                names
                    .get(&id)
                    .cloned()
                    .unwrap_or_else(|| format!("user {id}"))
            };
            Ok(TicketPage {
                tags: t.tag_list(),
                status_label: status_label(t.status()),
                paid: t.paid_amount,
                paid_label: money(t.paid_amount, &p.currency),
                project_slug: p.slug,
                project_name: p.name,
                requester: name(t.requester_id),
                messages: messages
                    .into_iter()
                    .map(|m| MessageRow {
                        id: m.id,
                        author: name(m.author_id),
                        at: when(m.created_at),
                        resolution: t.resolution_message_id == Some(m.id),
                        body: m.body,
                        internal: m.internal,
                    })
                    .collect(),
                bounties: bounties
                    .into_iter()
                    .map(|b| (b.id, money(b.amount, &b.currency), b.status))
                    .collect(),
                events: events
                    .into_iter()
                    .map(|e| {
                        let who = e.actor_id.map_or_else(|| "Guildhall".to_owned(), name);
                        let why = e.reason.map(|r| format!(" ({r})")).unwrap_or_default();
                        format!("{} — {who}: {}{why}", when(e.created_at), e.action)
                    })
                    .collect(),
                t,
                l: Layout {
                    user: None,
                    csrf: String::new(),
                    test_money: false,
                },
            })
        })
        .await?;
    render(StatusCode::OK, &TicketPage { l, ..page })
}

/// Any other path: a page, not JSON.
pub async fn not_found(state: web::Data<AppState>, req: HttpRequest) -> Page {
    let _ = (&state, &req);
    Err(WebError(AppError::not_found("page")))
}
