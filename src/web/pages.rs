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

pub(super) type Page = Result<HttpResponse, WebError>;

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
    ai: Option<super::answers::AiView>,
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
    let min_confidence = state.config.ai_min_confidence;
    let q = question.clone();
    let (projects, routed, grounding) = state
        .db(move |conn| {
            let list = projects::list(conn, None, None, 100)?;
            if q.is_empty() {
                return Ok((list, Vec::new(), None));
            }
            let routed = crate::domain::routing::route(conn, &index, &q, "", user)?;
            let similar = search::similar_to_question(conn, &index, &q, "", None, user, 6)?;
            let grounding = crate::domain::ai::ground(conn, &similar, min_confidence)?;
            Ok((list, routed, Some(grounding)))
        })
        .await?;
    let ai = match grounding {
        Some(g) => Some(super::answers::compose(&state, g, question, String::new()).await?),
        None => None,
    };
    let page = Home {
        l,
        ask,
        ai,
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
    status: String,
    tag: String,
    total: usize,
    hits: Vec<Hit>,
    next: Option<String>,
    /// (heading, its values).
    facets: Vec<(&'static str, Vec<FacetLink>)>,
    /// Links that drop one chosen filter: (what, link).
    chosen: Vec<(String, String)>,
}

/// A facet value: (value, count, link narrowing to it, chosen now).
type FacetLink = (String, u64, String, bool);

/// `?q=&project=&status=&tag=&cursor=`.
#[derive(Debug, Deserialize, Clone, Default)]
pub struct SearchQuery {
    q: Option<String>,
    project: Option<String>,
    status: Option<String>,
    tag: Option<String>,
    cursor: Option<String>,
}

impl SearchQuery {
    /// `/search?…` for these filters (empty ones left out).
    fn link(&self) -> String {
        let pairs: Vec<(&str, &str)> = [
            ("q", &self.q),
            ("project", &self.project),
            ("status", &self.status),
            ("tag", &self.tag),
            ("cursor", &self.cursor),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_deref().filter(|v| !v.is_empty()).map(|v| (k, v)))
        .collect();
        format!(
            "/search?{}",
            serde_urlencoded::to_string(pairs).unwrap_or_default()
        )
    }
}

/// `/search`: results with highlights, facets (project, status, tag) that
/// narrow the search, and paging.
pub async fn search(
    state: web::Data<AppState>,
    req: HttpRequest,
    q: web::Query<SearchQuery>,
) -> Page {
    let l = Layout::of(&state, &req).await?;
    let mut q = q.into_inner();
    q.q = Some(q.q.unwrap_or_default().trim().chars().take(500).collect());
    let text = q.q.clone().unwrap_or_default();
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    let mut page = SearchPage {
        l,
        q: text.clone(),
        project: opt(&q.project),
        status: opt(&q.status),
        tag: opt(&q.tag),
        total: 0,
        hits: Vec::new(),
        next: None,
        facets: Vec::new(),
        chosen: Vec::new(),
    };
    if text.is_empty() {
        return render(StatusCode::OK, &page);
    }
    let index = state.index.clone();
    let user = page.l.user.as_ref().map(|u| u.id);
    let filter = |v: &Option<String>| v.clone().filter(|v| !v.is_empty());
    let request = SearchRequest {
        query: text,
        project: filter(&q.project),
        status: filter(&q.status),
        tag: filter(&q.tag),
        kind: None,
        viewer: guildhall_index::Viewer {
            user_id: None,
            team_projects: Vec::new(),
        },
        limit: 20,
        cursor: q.cursor.clone(),
        top_only: false,
    };
    let (hits, results, slugs) = state
        .db(move |conn| {
            let (hits, results) = search::search(conn, &index, request, user)?;
            let slugs = projects::slugs(conn)?;
            Ok((hits, results, slugs))
        })
        .await?;
    page.total = results.total;
    page.next = results.next_cursor.map(|c| {
        SearchQuery {
            cursor: Some(c),
            ..q.clone()
        }
        .link()
    });
    let base = SearchQuery {
        cursor: None,
        ..q.clone()
    };
    let facet = |values: Vec<guildhall_index::FacetCount>,
                 set: fn(&mut SearchQuery, Option<String>),
                 current: &str| {
        values
            .into_iter()
            .take(12)
            .map(|f| {
                let mut link = base.clone();
                set(&mut link, Some(f.value.clone()));
                let chosen = f.value == current;
                (f.value, f.count, link.link(), chosen)
            })
            .collect::<Vec<_>>()
    };
    page.facets = vec![
        (
            "Projects",
            facet(results.facets.project, |s, v| s.project = v, &page.project),
        ),
        (
            "Status",
            facet(results.facets.status, |s, v| s.status = v, &page.status),
        ),
        (
            "Tags",
            facet(results.facets.tags, |s, v| s.tag = v, &page.tag),
        ),
    ];
    let drop = |what: String, set: fn(&mut SearchQuery)| {
        let mut link = base.clone();
        set(&mut link);
        (what, link.link())
    };
    if !page.project.is_empty() {
        page.chosen
            .push(drop(format!("project {}", page.project), |s| {
                s.project = None
            }));
    }
    if !page.status.is_empty() {
        page.chosen
            .push(drop(format!("status {}", page.status), |s| s.status = None));
    }
    if !page.tag.is_empty() {
        page.chosen
            .push(drop(format!("tag {}", page.tag), |s| s.tag = None));
    }
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
    /// Whether Sign in with GitHub is offered.
    github: bool,
}

/// `?next=`.
#[derive(Debug, Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

/// Only a path on this site: never an open redirect.
pub(super) fn local_path(next: Option<&str>) -> String {
    match next {
        // Browsers drop tabs and newlines inside URLs (`/\t/evil` is
        // `//evil`), and the path also rides in a cookie.
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.chars().any(|c| {
                    c == '\\' || c == ';' || c == ',' || c.is_whitespace() || c.is_control()
                }) =>
        {
            n.to_owned()
        }
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
        github: state.github_oauth.is_some(),
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

pub(super) fn redirect(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to.to_owned()))
        .finish()
}

pub(super) fn signed_in(state: &AppState, token: String, to: &str) -> HttpResponse {
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
                github: state.github_oauth.is_some(),
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
    first_response_90: String,
    resolution_90: String,
    /// Guaranteed responses (enterprise plans) decided in 90 days, and met.
    sla_90: (i64, i64),
    /// The viewer's place: "maintainer", "helper" or "".
    role: &'static str,
}

/// `/p/{slug}`: the project's support page.
pub async fn project(
    state: web::Data<AppState>,
    req: HttpRequest,
    slug: web::Path<String>,
) -> Page {
    let l = Layout::of(&state, &req).await?;
    let slug = slug.into_inner();
    let viewer = l.user.as_ref().map(|u| u.id);
    let (p, helpers, figures, medians, role) = state
        .db(move |conn| {
            let p = projects::by_slug(conn, &slug)?;
            let role = match viewer {
                Some(u) if projects::is_maintainer(conn, p.id, u)? => "maintainer",
                Some(u) if helpers::is_approved(conn, p.id, u)? => "helper",
                _ => "",
            };
            let now = crate::domain::now();
            let medians = (
                ticket_domain::median_first_response(conn, p.id, 90)?,
                ticket_domain::median_resolution(conn, p.id, 90)?,
                crate::domain::sla::share_met(conn, p.id, now - chrono::Duration::days(90), now)?,
            );
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
            Ok((p, out, figures, medians, role))
        })
        .await?;
    let wait = |d: Option<chrono::Duration>| d.map_or_else(|| "no data yet".to_owned(), short_wait);
    let page = ProjectPage {
        l,
        helpers,
        first_response_90: wait(medians.0),
        resolution_90: wait(medians.1),
        sla_90: medians.2,
        role,
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
    /// The viewer may report it (signed in, not its author).
    reportable: bool,
    author: String,
    at: String,
    body: String,
    internal: bool,
    resolution: bool,
    by_email: bool,
}

/// The ticket page.
#[derive(Template)]
#[template(path = "ticket.html", config = "src/web/askama.toml")]
pub struct TicketPage {
    l: Layout,
    t: ticket_domain::Ticket,
    tags: Vec<String>,
    status_label: &'static str,
    paid: i64,
    paid_label: String,
    currency: String,
    project_slug: String,
    project_name: String,
    requester: String,
    messages: Vec<MessageRow>,
    bounties: Vec<(i64, String, String)>,
    events: Vec<String>,
    /// (path segment, button label, secondary).
    actions: Vec<(&'static str, &'static str, bool)>,
    can_fund: bool,
    can_rate: bool,
    can_message: bool,
    team: bool,
    errors: Vec<String>,
    bids: Vec<BidRow>,
    can_bid: bool,
    can_accept_bids: bool,
    /// Approved helpers the ticket may be handed to.
    transfer_to: Vec<(i64, String)>,
    /// The AI lane's answer (for the requester and the team, while open).
    ai: Option<super::answers::AiView>,
    /// Whether the requester may close it as answered by the AI lane.
    can_ai_solve: bool,
    /// Ranked helpers for the team: (lane, user id, name, reasons).
    matches: Vec<(&'static str, i64, String, String)>,
    /// The team's response templates: (id, name).
    templates: Vec<(i64, String)>,
    /// (position, of, ETA in words) while the ticket waits in the queue.
    queue_place: Option<(usize, usize, String)>,
    /// The running service-level clock, as the requester and team read it.
    sla: Option<String>,
    /// The viewer may report the ticket (signed in, not its requester).
    can_report: bool,
    /// A fresh key for the funding form (see `fund`).
    fund_key: String,
    /// The viewer's notification level for this ticket, "" when they
    /// follow their overall setting.
    notify_level: String,
    /// Whether the requester may edit it (a draft or open ticket).
    can_edit: bool,
    /// Whether submitting must accept the project's code of conduct.
    coc_needed: bool,
    /// Its GitHub issue, for everyone: (owner/name#number, URL).
    github_issue: Option<(String, String)>,
    /// For maintainers: what turning it into a GitHub issue takes.
    github_export: Option<super::github::Export>,
}

/// A bid as the ticket page shows it.
pub struct BidRow {
    id: i64,
    helper_id: i64,
    helper: String,
    amount: String,
    eta_hours: i32,
    message: String,
    status: String,
    mine: bool,
}

pub(super) fn status_label(s: Status) -> &'static str {
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

pub(super) fn when(at: chrono::NaiveDateTime) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// The buttons the caller sees: what their role may do in this state (the
/// domain decides again when they press one).
fn actions_for(
    t: &ticket_domain::Ticket,
    a: &ticket_domain::Access,
) -> Vec<(&'static str, &'static str, bool)> {
    let me = a.user_id;
    let holds = a.helper && me.is_some() && t.claimed_by == me;
    let mut out = Vec::new();
    match t.status() {
        Status::Draft => {
            if a.requester {
                out.push(("submit", "Submit", false));
            }
        }
        Status::Open => {
            if a.helper && !a.requester {
                out.push(("claim", "Claim", false));
            }
            if a.requester {
                out.push(("upgrade", "Move up the queue", false));
                out.push(("cancel", "Cancel ticket", true));
            }
            if a.team() && !a.requester && t.paid_amount == 0 {
                out.push(("close", "Close (triage)", true));
            }
        }
        Status::Claimed => {
            if holds && !a.requester {
                out.push(("resolve", "Resolve", false));
            }
            if a.requester {
                out.push(("upgrade", "Move up the queue", false));
            }
            if holds || a.maintainer {
                out.push(("unclaim", "Give back to the queue", true));
            }
            if a.requester {
                out.push(("cancel", "Cancel ticket", true));
            }
        }
        Status::Resolved => {
            if a.requester {
                out.push(("accept", "Accept resolution", false));
            }
            if a.requester || holds || a.maintainer {
                out.push(("reopen", "Reopen", true));
            }
        }
        Status::Closed | Status::AutoClosed => {
            if a.requester || a.maintainer {
                out.push(("reopen", "Reopen", true));
            }
        }
        Status::Cancelled => {}
    }
    out
}

/// Renders the ticket page for the caller, with `errors` (from an action
/// that failed) shown above the actions.
async fn ticket_page(
    state: &AppState,
    req: &HttpRequest,
    id: i64,
    status: StatusCode,
    errors: Vec<String>,
) -> Page {
    let l = Layout::of(state, req).await?;
    let user = Session::of(req).user_id;
    let index = state.index.clone();
    let min_confidence = state.config.ai_min_confidence;
    let public_url = state.config.public_url.clone();
    let github_web = crate::integrations::github::web_base(&state.config.github_api_base);
    let github_app = state.github.is_some();
    let (page, grounding) = state
        .db(move |conn| {
            let (t, a) = ticket_domain::load_visible(conn, id, user)?;
            let messages = ticket_domain::list_messages(conn, id, user, None, 500)?;
            let events = ticket_domain::events(conn, id, user)?;
            let bounties = crate::domain::money::bounties_of(conn, id)?;
            let p = projects::by_id(conn, t.project_id)?;
            let status = t.status();
            let me = user.unwrap_or_default();
            let holds = a.helper && user.is_some() && t.claimed_by == user;
            let bids = match user {
                Some(u) => crate::domain::bids::list(conn, id, u)?,
                None => Vec::new(),
            };
            let transfer_to = if status == Status::Claimed && (holds || a.maintainer) {
                helpers::list(conn, p.id, helpers::HelperStatus::Approved, None, 200)?
                    .into_iter()
                    .filter(|(h, _)| Some(h.user_id) != t.claimed_by)
                    .map(|(h, name)| (h.user_id, name))
                    .collect()
            } else {
                Vec::new()
            };
            let working = matches!(status, Status::Draft | Status::Open | Status::Claimed);
            let (matches, grounding) = if working && (a.requester || a.team()) {
                let ranking = crate::domain::matching::rank(conn, &index, id, user)?;
                let grounding = crate::domain::ai::ground(conn, &ranking.similar, min_confidence)?;
                let matches = if a.team() {
                    let lane = |lane: &'static str, c: crate::domain::matching::Candidate| {
                        (lane, c.user_id, c.display_name, c.reasons.join("; "))
                    };
                    ranking
                        .experts
                        .into_iter()
                        .take(5)
                        .map(|c| lane("expert", c))
                        .chain(
                            ranking
                                .community
                                .into_iter()
                                .take(5)
                                .map(|c| lane("community", c)),
                        )
                        .collect()
                } else {
                    Vec::new()
                };
                (matches, Some(grounding))
            } else {
                (Vec::new(), None)
            };
            let templates = if a.team() {
                ticket_domain::list_templates(conn, p.id, me)?
                    .into_iter()
                    .map(|t| (t.id, t.name))
                    .collect()
            } else {
                Vec::new()
            };
            let sla = if a.requester || a.team() {
                crate::domain::sla::of_ticket(conn, id)?
                    .into_iter()
                    .rev()
                    .find(|c| c.closed_at.is_none())
                    .map(|c| match c.breached_at {
                        None => format!(
                            "Enterprise plan: a response is guaranteed by {} (business hours).",
                            when(c.due_at)
                        ),
                        Some(_) => format!(
                            "Enterprise plan: the guaranteed response time passed at {}; a service credit of {} was booked.",
                            when(c.due_at),
                            money(c.credit_amount, &c.currency)
                        ),
                    })
            } else {
                None
            };
            let queue_place = if status == Status::Open {
                let entries = queue::entries(conn, &p)?;
                let total = entries.len();
                entries.into_iter().find(|e| e.ticket_id == id).map(|e| {
                    let eta = if e.eta_hours < 1 {
                        "under an hour".to_owned()
                    } else {
                        format!("about {} hours", e.eta_hours)
                    };
                    (e.position, total, eta)
                })
            } else {
                None
            };
            let mut ids: Vec<i64> = messages.iter().map(|m| m.author_id).collect();
            ids.extend(events.iter().filter_map(|e| e.actor_id));
            ids.extend(bids.iter().map(|b| b.helper_id));
            ids.push(t.requester_id);
            let names = users::names(conn, &ids)?;
            let name = |id: i64| {
                names
                    .get(&id)
                    .cloned()
                    .unwrap_or_else(|| format!("user {id}"))
            };
            let has_open_bid = bids.iter().any(|b| b.helper_id == me && b.status == "open");
            let coc_needed = a.requester
                && status == Status::Draft
                && projects::coc_accepted_at(conn, p.id, me)?.is_none();
            let github_issue = crate::channels::github_export::issue_of_ticket(conn, id)?
                .map(|(r, n)| (format!("{r}#{n}"), format!("{github_web}/{r}/issues/{n}")));
            let github_export = if a.maintainer && github_issue.is_none() && working {
                Some(super::github::export_for(
                    conn,
                    &t,
                    &p,
                    &public_url,
                    &github_web,
                    github_app,
                )?)
            } else {
                None
            };
            let page = TicketPage {
                can_edit: a.requester && matches!(status, Status::Draft | Status::Open),
                coc_needed,
                github_issue,
                github_export,
                actions: actions_for(&t, &a),
                can_fund: user.is_some() && matches!(status, Status::Open | Status::Claimed),
                can_rate: a.requester
                    && matches!(status, Status::Closed | Status::AutoClosed)
                    && t.rating_stars.is_none(),
                can_message: (a.requester || a.team()) && status != Status::Cancelled,
                team: a.team(),
                can_bid: a.helper && !a.requester && status == Status::Open && !has_open_bid,
                can_accept_bids: a.requester && status == Status::Open,
                can_ai_solve: a.requester && status == Status::Open,
                errors: Vec::new(),
                tags: t.tag_list(),
                status_label: status_label(status),
                paid: t.paid_amount,
                paid_label: money(t.paid_amount, &p.currency),
                currency: p.currency.to_ascii_uppercase(),
                bids: bids
                    .into_iter()
                    .map(|b| BidRow {
                        id: b.id,
                        helper_id: b.helper_id,
                        helper: name(b.helper_id),
                        amount: money(b.amount, &b.currency),
                        eta_hours: b.eta_hours,
                        mine: b.helper_id == me,
                        message: b.message,
                        status: b.status,
                    })
                    .collect(),
                transfer_to,
                ai: None,
                matches,
                templates,
                queue_place,
                sla,
                can_report: user.is_some() && !a.requester,
                // One key per rendered page: a double submit of its forms
                // pays once.
                fund_key: crate::auth::tokens::random_token(16),
                notify_level: match user {
                    Some(u) => crate::domain::notifications::override_of(conn, u, "ticket", id)?
                        .map(|l| l.as_str().to_owned())
                        .unwrap_or_default(),
                    None => String::new(),
                },
                project_slug: p.slug,
                project_name: p.name,
                requester: name(t.requester_id),
                messages: messages
                    .into_iter()
                    .map(|m| MessageRow {
                        id: m.id,
                        reportable: user.is_some_and(|u| u != m.author_id) && !m.internal,
                        author: name(m.author_id),
                        at: when(m.created_at),
                        resolution: t.resolution_message_id == Some(m.id),
                        by_email: m.via == "email",
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
            };
            Ok((page, grounding))
        })
        .await?;
    let ai = match grounding {
        Some(g) => Some(
            super::answers::compose(state, g, page.t.title.clone(), page.t.body.clone()).await?,
        ),
        None => None,
    };
    render(
        status,
        &TicketPage {
            l,
            errors,
            ai,
            ..page
        },
    )
}

impl TicketPage {
    /// A ticket page with `messages` messages as a helper of the project
    /// sees it (bids, matches, templates, the AI answer), for the render
    /// benchmark.
    pub fn sample(messages: usize) -> TicketPage {
        let at = chrono::NaiveDate::from_ymd_opt(2026, 11, 2)
            .and_then(|d| d.and_hms_opt(9, 30, 0))
            .unwrap_or_default();
        let text = "The merge policy keeps small segments around until enough of them \
                    pile up; call the writer's merge once the bulk load ends, then commit. \
                    <b>Escaped</b> & quoted \"text\" stays text.";
        let t = ticket_domain::Ticket::sample(at);
        TicketPage {
            l: Layout {
                user: Some(super::NavUser {
                    id: 2,
                    name: "helper".into(),
                }),
                csrf: "c".repeat(43),
                test_money: true,
            },
            tags: vec!["merge".into(), "segments".into()],
            status_label: "claimed",
            paid: 5_000,
            paid_label: money(5_000, "usd"),
            currency: "USD".into(),
            project_slug: "tantivy".into(),
            project_name: "Tantivy".into(),
            requester: "requester".into(),
            messages: (0..messages)
                .map(|i| MessageRow {
                    reportable: false,
                    id: i as i64,
                    author: if i % 2 == 0 {
                        "helper".into()
                    } else {
                        "requester".into()
                    },
                    at: when(at),
                    body: format!("{text} ({i})"),
                    internal: i % 7 == 3,
                    resolution: false,
                    by_email: i % 5 == 4,
                })
                .collect(),
            bounties: vec![(1, money(5_000, "usd"), "held".into())],
            events: (0..12)
                .map(|i| format!("{} — helper: step {i}", when(at)))
                .collect(),
            actions: vec![
                ("resolve", "Resolve", false),
                ("unclaim", "Give back to the queue", true),
            ],
            can_fund: true,
            can_rate: false,
            can_message: true,
            can_edit: false,
            coc_needed: false,
            github_issue: None,
            github_export: None,
            team: true,
            errors: Vec::new(),
            bids: (0..3)
                .map(|i| BidRow {
                    id: i,
                    helper_id: 10 + i,
                    helper: format!("expert {i}"),
                    amount: money(8_000 + i * 500, "usd"),
                    eta_hours: 24,
                    message: "I can do it today.".into(),
                    status: "open".into(),
                    mine: i == 0,
                })
                .collect(),
            can_bid: false,
            can_accept_bids: false,
            transfer_to: (0..5).map(|i| (20 + i, format!("helper {i}"))).collect(),
            ai: Some(super::answers::AiView {
                answer: Some(text.repeat(3)),
                citations: (0..3)
                    .map(|i| (100 + i, format!("A similar ticket {i}")))
                    .collect(),
                confidence: 82,
                source: "retrieval",
                note: String::new(),
            }),
            can_ai_solve: false,
            matches: (0..10)
                .map(|i| {
                    (
                        "community",
                        30 + i,
                        format!("helper {i}"),
                        "answered 12 similar tickets".into(),
                    )
                })
                .collect(),
            templates: (0..5).map(|i| (i, format!("Template {i}"))).collect(),
            queue_place: None,
            sla: None,
            can_report: false,
            fund_key: "k".repeat(22),
            notify_level: String::new(),
            t,
        }
    }

    /// The page's HTML.
    pub fn html(&self) -> Result<String, askama::Error> {
        self.render()
    }
}

/// `/t/{id}`: the thread and timeline, for whoever may see the ticket (404
/// otherwise, as in the API), with what the caller may do.
pub async fn ticket(state: web::Data<AppState>, req: HttpRequest, id: web::Path<String>) -> Page {
    let id: i64 = id
        .parse()
        .map_err(|_| WebError(AppError::not_found("ticket")))?;
    ticket_page(&state, &req, id, StatusCode::OK, Vec::new()).await
}

/// What a ticket's action forms post.
#[derive(Debug, Deserialize)]
pub struct ActionForm {
    csrf: String,
    amount: Option<String>,
    stars: Option<i32>,
    body: Option<String>,
    internal: Option<String>,
    /// A response template to post (team).
    template: Option<String>,
    /// A bid's promised hours.
    eta_hours: Option<String>,
    /// The bid accepted or withdrawn.
    bid: Option<i64>,
    /// Who a transfer goes to.
    to: Option<i64>,
    /// The funding form's one-time key.
    request_key: Option<String>,
    /// A notification level for this ticket.
    level: Option<String>,
    /// A draft's new title.
    title: Option<String>,
    /// A draft's new tags, comma separated.
    tags: Option<String>,
    /// `yes`: the project's code of conduct is accepted with this submit.
    coc: Option<String>,
    /// A report: `ticket` or `message`, which one, why and a note.
    target: Option<String>,
    target_id: Option<i64>,
    reason: Option<String>,
    note: Option<String>,
}

/// `POST /t/{id}/{action}`: one of the ticket's actions through the same
/// domain functions as the API; back to the ticket, or the ticket with the
/// reason it was refused.
pub async fn ticket_action(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    form: web::Form<ActionForm>,
) -> Page {
    let form = form.into_inner();
    session::check_form(&req, &form.csrf)?;
    let (id, action) = path.into_inner();
    let id: i64 = id
        .parse()
        .map_err(|_| WebError(AppError::not_found("ticket")))?;
    let Some(user) = Session::of(&req).user_id else {
        return Ok(redirect(&format!("/login?next=/t/{id}")));
    };
    let bps = state.config.platform_fee_bps;
    let done: Result<Option<PayNeeded>, AppError> = match action.as_str() {
        "fund" => {
            let gateway = state.gateway.clone();
            let amount = form.amount.unwrap_or_default();
            // One key per rendered form: a double submit funds once.
            let request_key = form
                .request_key
                .filter(|k| !k.is_empty() && k.len() <= 64)
                .map(|k| format!("web:{k}"));
            state
                .blocking(move |pool| {
                    let currency = {
                        let mut conn = pool.get()?;
                        let t = ticket_domain::load_visible(&mut conn, id, Some(user))?.0;
                        projects::by_id(&mut conn, t.project_id)?.currency
                    };
                    let minor = super::parse_money(&amount, &currency)
                        .ok_or_else(|| AppError::field("amount", "must be an amount like 50.00"))?;
                    crate::domain::money::fund_bounty(
                        pool,
                        gateway.as_ref(),
                        id,
                        user,
                        minor,
                        &currency,
                        None,
                        request_key.as_deref(),
                    )
                    .map(|(b, payment)| PayNeeded::of(b.amount, &b.currency, payment))
                })
                .await
        }
        "upgrade" => {
            let gateway = state.gateway.clone();
            let request_key = form
                .request_key
                .filter(|k| !k.is_empty() && k.len() <= 64)
                .map(|k| format!("web:{k}"));
            state
                .blocking(move |pool| {
                    match crate::domain::plans::upgrade(
                        pool,
                        gateway.as_ref(),
                        id,
                        user,
                        request_key.as_deref(),
                    )? {
                        crate::domain::plans::Upgrade::Included { .. } => Ok(None),
                        crate::domain::plans::Upgrade::Paid(paid) => {
                            let (b, payment) = *paid;
                            Ok(PayNeeded::of(b.amount, &b.currency, payment))
                        }
                    }
                })
                .await
        }
        "github-issue" => super::github::export_action(&state, id, user)
            .await
            .map(|()| None),
        "accept-bid" => {
            let gateway = state.gateway.clone();
            let bid = form.bid.unwrap_or_default();
            state
                .blocking(move |pool| {
                    bid_of_ticket(&mut *pool.get()?, id, bid, user)?;
                    crate::domain::bids::accept(pool, gateway.as_ref(), bid, user, None)
                        .map(|(_, b, payment)| PayNeeded::of(b.amount, &b.currency, payment))
                })
                .await
        }
        _ => {
            state
                .db(move |conn| {
                    ticket_other_action(conn, id, user, bps, &action, form).map(|()| None)
                })
                .await
        }
    };
    match done {
        Ok(Some(pay)) => pay_page(&state, &req, id, pay).await,
        Ok(None) => Ok(redirect(&format!("/t/{id}"))),
        Err(e @ (AppError::NotFound(_) | AppError::Internal(_) | AppError::Unavailable)) => {
            Err(e.into())
        }
        Err(e) => {
            let status = actix_web::ResponseError::status_code(&e);
            ticket_page(&state, &req, id, status, people_errors(e)).await
        }
    }
}

/// A payment the payer must confirm in the browser (Stripe): the amount
/// and the PaymentIntent's client secret.
pub struct PayNeeded {
    amount: String,
    client_secret: String,
}

impl PayNeeded {
    pub(super) fn of(
        amount: i64,
        currency: &str,
        p: crate::payments::Payment,
    ) -> Option<PayNeeded> {
        match (p.status, p.client_secret) {
            (crate::payments::PaymentStatus::RequiresAction, Some(secret)) => Some(PayNeeded {
                amount: money(amount, currency),
                client_secret: secret,
            }),
            _ => None,
        }
    }
}

#[derive(Template)]
#[template(path = "pay.html", config = "src/web/askama.toml")]
struct PayPage {
    l: Layout,
    /// Where the payer goes back to, and its link text.
    back: String,
    back_label: String,
    /// What happens to the money.
    explain: &'static str,
    amount: String,
    client_secret: String,
    stripe: Option<crate::config::StripeJs>,
}

/// The card form: Stripe.js confirms the PaymentIntent with its client
/// secret (the card never touches Guildhall); the signed
/// `payment_intent.succeeded` webhook then books the money into escrow.
/// The page's Content-Security-Policy allows Stripe.js's origin.
async fn pay_page(state: &AppState, req: &HttpRequest, ticket: i64, pay: PayNeeded) -> Page {
    card_page(
        state,
        req,
        format!("/t/{ticket}"),
        format!("Back to ticket #{ticket}"),
        "Your card is charged by Stripe; the money waits in escrow until you accept the resolution, and comes back to you if the ticket is cancelled.",
        pay,
    )
    .await
}

/// The card form for a payment the payer must confirm, coming back to
/// `back`.
pub(super) async fn card_page(
    state: &AppState,
    req: &HttpRequest,
    back: String,
    back_label: String,
    explain: &'static str,
    pay: PayNeeded,
) -> Page {
    let l = Layout::of(state, req).await?;
    let stripe = state.config.stripe_js.clone();
    let csp = match &stripe {
        Some(s) => {
            let (script, connect, frame) = s.origins();
            format!(
                "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self' {script}; connect-src 'self' {connect}; frame-src {frame}; frame-ancestors 'none'; form-action 'self'"
            )
        }
        None => super::CSP.to_owned(),
    };
    let page = PayPage {
        l,
        back,
        back_label,
        explain,
        amount: pay.amount,
        client_secret: pay.client_secret,
        stripe,
    };
    let mut res = render(StatusCode::OK, &page)?;
    if let Ok(v) = actix_web::http::header::HeaderValue::from_str(&csp) {
        res.headers_mut()
            .insert(actix_web::http::header::CONTENT_SECURITY_POLICY, v);
    }
    // The client secret must not be cached or leak through a shared cache.
    res.headers_mut().insert(
        actix_web::http::header::CACHE_CONTROL,
        actix_web::http::header::HeaderValue::from_static("no-store"),
    );
    Ok(res)
}

/// 404 unless `bid` is a bid on ticket `id` that `user` may see: a form
/// acts on the ticket in its URL, not on some other ticket's bid.
fn bid_of_ticket(
    conn: &mut crate::db::DbConnection,
    id: i64,
    bid: i64,
    user: i64,
) -> Result<(), AppError> {
    if crate::domain::bids::list(conn, id, user)?
        .iter()
        .any(|b| b.id == bid)
    {
        Ok(())
    } else {
        Err(AppError::not_found("bid"))
    }
}

/// The ticket's actions that need only the database.
fn ticket_other_action(
    conn: &mut crate::db::DbConnection,
    id: i64,
    user: i64,
    bps: i32,
    action: &str,
    form: ActionForm,
) -> Result<(), AppError> {
    {
        {
            {
                match action {
                    "flag" => {
                        let target = form.target.as_deref().unwrap_or("ticket");
                        let target_id = form.target_id.unwrap_or(id);
                        // A message reported here must be of this ticket.
                        if target == "message" {
                            use diesel::{OptionalExtension as _, QueryDsl as _, RunQueryDsl as _};
                            let of: Option<i64> = crate::db::schema::ticket_messages::table
                                .find(target_id)
                                .select(crate::db::schema::ticket_messages::ticket_id)
                                .first(conn)
                                .optional()?;
                            if of != Some(id) {
                                return Err(AppError::not_found("message"));
                            }
                        }
                        crate::domain::moderation::flag(
                            conn,
                            user,
                            target,
                            target_id,
                            form.reason.as_deref().unwrap_or_default(),
                            form.note.as_deref(),
                        )
                        .map(|_| ())
                    }
                    "submit" => crate::db::write_tx(conn, |conn| {
                        if form.coc.as_deref() == Some("yes") {
                            let (t, a) = ticket_domain::load_visible(conn, id, Some(user))?;
                            if a.requester {
                                projects::accept_coc(conn, t.project_id, user)?;
                            }
                        }
                        ticket_domain::submit(conn, id, user).map(|_| ())
                    }),
                    "edit" => {
                        let tags = form.tags.as_deref().map(|t| {
                            t.split(',')
                                .map(str::trim)
                                .filter(|t| !t.is_empty())
                                .map(str::to_owned)
                                .collect()
                        });
                        let patch = ticket_domain::TicketPatch {
                            title: form.title,
                            body: form.body,
                            tags,
                            kind: None,
                            visibility: None,
                        };
                        ticket_domain::update(conn, id, user, &patch).map(|_| ())
                    }
                    "claim" => ticket_domain::claim(conn, id, user).map(|_| ()),
                    "unclaim" => ticket_domain::unclaim(conn, id, user).map(|_| ()),
                    "resolve" => ticket_domain::resolve(conn, id, user, None).map(|_| ()),
                    "accept" => ticket_domain::accept(conn, id, user, bps).map(|_| ()),
                    "reopen" => ticket_domain::reopen(conn, id, user, None).map(|_| ()),
                    "close" => ticket_domain::close(conn, id, user, None).map(|_| ()),
                    "cancel" => ticket_domain::cancel(conn, id, user).map(|_| ()),
                    "rate" => ticket_domain::rate(conn, id, user, form.stars.unwrap_or(0), None)
                        .map(|_| ()),
                    "message" => {
                        let template = form
                            .template
                            .as_deref()
                            .filter(|t| !t.is_empty())
                            .map(|t| {
                                t.parse::<i64>()
                                    .map_err(|_| AppError::field("template", "unknown template"))
                            })
                            .transpose()?;
                        let body = form.body.as_deref().filter(|b| !b.trim().is_empty());
                        ticket_domain::post_message(
                            conn,
                            id,
                            user,
                            body,
                            form.internal.as_deref() == Some("yes"),
                            template,
                        )
                        .map(|_| ())
                    }
                    "bid" => {
                        let t = ticket_domain::load_visible(conn, id, Some(user))?.0;
                        let currency = projects::by_id(conn, t.project_id)?.currency;
                        let amount = super::parse_money(
                            form.amount.as_deref().unwrap_or_default(),
                            &currency,
                        )
                        .ok_or_else(|| AppError::field("amount", "must be an amount like 80.00"))?;
                        let eta = form
                            .eta_hours
                            .as_deref()
                            .unwrap_or_default()
                            .trim()
                            .parse::<i32>()
                            .map_err(|_| {
                                AppError::field("eta_hours", "must be a whole number of hours")
                            })?;
                        crate::domain::bids::create(
                            conn,
                            id,
                            user,
                            amount,
                            &currency,
                            eta,
                            form.body.as_deref().unwrap_or_default(),
                        )
                        .map(|_| ())
                    }
                    "notifications" => {
                        let level = crate::domain::notifications::level_field(
                            "level",
                            form.level.as_deref().unwrap_or_default(),
                        )?;
                        crate::domain::notifications::set_ticket_level(conn, user, id, level)
                    }
                    "withdraw-bid" => {
                        let bid = form.bid.unwrap_or_default();
                        bid_of_ticket(conn, id, bid, user)?;
                        crate::domain::bids::withdraw(conn, bid, user).map(|_| ())
                    }
                    "transfer" => {
                        ticket_domain::transfer(conn, id, user, form.to.unwrap_or_default())
                            .map(|_| ())
                    }
                    "ai-solved" => ticket_domain::close_answered_by_ai(conn, id, user).map(|_| ()),
                    _ => Err(AppError::not_found("action")),
                }
            }
        }
    }
}

/// An error as sentences for the page.
pub(super) fn people_errors(e: AppError) -> Vec<String> {
    match e {
        AppError::Validation(fields) => fields
            .into_iter()
            .map(|f| format!("{}: {}", f.field.replace('_', " "), f.message))
            .collect(),
        other => vec![other.to_string()],
    }
}

// ---------------------------------------------------------------------------
// New ticket

#[derive(Template)]
#[template(path = "new_ticket.html", config = "src/web/askama.toml")]
struct NewTicketPage {
    l: Layout,
    errors: Vec<String>,
    project: String,
    project_name: String,
    code_of_conduct: String,
    coc_accepted: bool,
    title: String,
    body: String,
    tags: String,
    private: bool,
    similar: Vec<super::answers::Suggestion>,
    asked: bool,
}

/// `?project=`.
#[derive(Debug, Deserialize)]
pub struct NewQuery {
    project: Option<String>,
}

async fn new_ticket_page(
    state: &AppState,
    req: &HttpRequest,
    status: StatusCode,
    form: NewTicketForm,
    errors: Vec<String>,
) -> Page {
    let l = Layout::of(state, req).await?;
    let Some(user) = l.user.as_ref().map(|u| u.id) else {
        return Ok(redirect(&format!(
            "/login?next=/new?project={}",
            form.project
        )));
    };
    let asked = form.preview.is_some();
    let similar = if asked {
        super::answers::similar_for(
            state,
            Some(user),
            form.project.clone(),
            form.title.clone(),
            form.body.clone(),
        )
        .await?
    } else {
        Vec::new()
    };
    let slug = form.project.clone();
    let (p, accepted) = state
        .db(move |conn| {
            let p = projects::by_slug(conn, &slug)?;
            let accepted = projects::coc_accepted_at(conn, p.id, user)?.is_some();
            Ok((p, accepted))
        })
        .await?;
    let page = NewTicketPage {
        l,
        errors,
        project: p.slug,
        project_name: p.name,
        code_of_conduct: p.code_of_conduct,
        coc_accepted: accepted,
        title: form.title,
        body: form.body,
        tags: form.tags,
        private: form.visibility == "private",
        similar,
        asked,
    };
    render(status, &page)
}

/// `GET /new?project=`: the new-ticket form.
pub async fn new_ticket_form(
    state: web::Data<AppState>,
    req: HttpRequest,
    q: web::Query<NewQuery>,
) -> Page {
    let form = NewTicketForm {
        csrf: String::new(),
        project: q.into_inner().project.unwrap_or_default(),
        title: String::new(),
        body: String::new(),
        tags: String::new(),
        visibility: "public".into(),
        coc: None,
        preview: None,
        draft: None,
    };
    new_ticket_page(&state, &req, StatusCode::OK, form, Vec::new()).await
}

/// The new-ticket form.
#[derive(Debug, Clone, Deserialize)]
pub struct NewTicketForm {
    csrf: String,
    project: String,
    title: String,
    #[serde(default)]
    body: String,
    #[serde(default)]
    tags: String,
    visibility: String,
    coc: Option<String>,
    /// "Find similar tickets" (without JavaScript): show suggestions, post
    /// nothing.
    preview: Option<String>,
    /// "Save as draft": create it without submitting it to the queue.
    draft: Option<String>,
}

/// `POST /new`: creates the draft, records the code of conduct when
/// accepted, submits it, and goes to the ticket.
pub async fn new_ticket(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<NewTicketForm>,
) -> Page {
    let form = form.into_inner();
    session::check_form(&req, &form.csrf)?;
    let Some(user) = Session::of(&req).user_id else {
        return Ok(redirect("/login"));
    };
    if form.preview.is_some() {
        return new_ticket_page(&state, &req, StatusCode::OK, form, Vec::new()).await;
    }
    let f = form.clone();
    let made = state
        .db(move |conn| {
            let p = projects::by_slug(conn, &f.project)?;
            let new = ticket_domain::NewTicket {
                project: f.project.clone(),
                title: f.title.clone(),
                body: f.body.clone(),
                tags: f.tags.split_whitespace().map(str::to_owned).collect(),
                kind: ticket_domain::Kind::Question,
                visibility: if f.visibility == "private" {
                    ticket_domain::Visibility::Private
                } else {
                    ticket_domain::Visibility::Public
                },
            };
            if f.coc.as_deref() != Some("yes")
                && projects::coc_accepted_at(conn, p.id, user)?.is_none()
            {
                return Err(AppError::field(
                    "code_of_conduct",
                    "accept the project's code of conduct to post",
                ));
            }
            crate::db::write_tx(conn, |conn| {
                let t = ticket_domain::create(conn, user, &new)?;
                if f.coc.as_deref() == Some("yes") {
                    projects::accept_coc(conn, p.id, user)?;
                }
                if f.draft.is_none() {
                    ticket_domain::submit(conn, t.id, user)?;
                }
                Ok(t.id)
            })
        })
        .await;
    match made {
        Ok(id) => Ok(redirect(&format!("/t/{id}"))),
        Err(e @ (AppError::Validation(_) | AppError::Conflict { .. })) => {
            let status = actix_web::ResponseError::status_code(&e);
            new_ticket_page(&state, &req, status, form, people_errors(e)).await
        }
        Err(e) => Err(e.into()),
    }
}

// ---------------------------------------------------------------------------
// Helping a project

#[derive(Template)]
#[template(path = "apply.html", config = "src/web/askama.toml")]
struct ApplyPage {
    l: Layout,
    errors: Vec<String>,
    project: String,
    project_name: String,
    currency: String,
    status: Option<String>,
    rate: String,
    bio: String,
}

/// The application form.
#[derive(Debug, Clone, Deserialize)]
pub struct ApplyForm {
    csrf: String,
    tier: String,
    #[serde(default)]
    rate: String,
    #[serde(default)]
    bio: String,
}

async fn apply_page(
    state: &AppState,
    req: &HttpRequest,
    slug: String,
    status: StatusCode,
    form: Option<ApplyForm>,
    errors: Vec<String>,
) -> Page {
    let l = Layout::of(state, req).await?;
    let Some(user) = l.user.as_ref().map(|u| u.id) else {
        return Ok(redirect(&format!("/login?next=/p/{slug}/apply")));
    };
    let (p, current) = state
        .db(move |conn| {
            let p = projects::by_slug(conn, &slug)?;
            let current = helpers::get(conn, p.id, user)?
                .filter(|h| h.status != "revoked")
                .map(|h| h.status);
            Ok((p, current))
        })
        .await?;
    let form = form.unwrap_or(ApplyForm {
        csrf: String::new(),
        tier: "community".into(),
        rate: String::new(),
        bio: String::new(),
    });
    let page = ApplyPage {
        l,
        errors,
        currency: p.currency.to_ascii_uppercase(),
        project: p.slug,
        project_name: p.name,
        status: current,
        rate: form.rate,
        bio: form.bio,
    };
    render(status, &page)
}

/// `GET /p/{slug}/apply`: apply as a community helper or a paid expert.
pub async fn apply_form(
    state: web::Data<AppState>,
    req: HttpRequest,
    slug: web::Path<String>,
) -> Page {
    apply_page(
        &state,
        &req,
        slug.into_inner(),
        StatusCode::OK,
        None,
        Vec::new(),
    )
    .await
}

/// `POST /p/{slug}/apply`.
pub async fn apply(
    state: web::Data<AppState>,
    req: HttpRequest,
    slug: web::Path<String>,
    form: web::Form<ApplyForm>,
) -> Page {
    let form = form.into_inner();
    session::check_form(&req, &form.csrf)?;
    let slug = slug.into_inner();
    let Some(user) = Session::of(&req).user_id else {
        return Ok(redirect(&format!("/login?next=/p/{slug}/apply")));
    };
    let (f, s) = (form.clone(), slug.clone());
    let done = state
        .db(move |conn| {
            let p = projects::by_slug(conn, &s)?;
            let tier = if f.tier == "expert" {
                helpers::Tier::Expert
            } else {
                helpers::Tier::Community
            };
            let hourly_rate = match f.rate.trim() {
                "" => None,
                text => Some(super::parse_money(text, &p.currency).ok_or_else(|| {
                    AppError::field("hourly_rate", "must be an amount like 120.00")
                })?),
            };
            let app = helpers::Application {
                tier,
                hourly_rate,
                bio: f.bio.clone(),
                skills: Vec::new(),
            };
            helpers::apply(conn, p.id, user, &app).map(|_| ())
        })
        .await;
    match done {
        Ok(()) => Ok(redirect(&format!("/p/{slug}/apply"))),
        Err(e @ (AppError::Validation(_) | AppError::Conflict { .. })) => {
            let status = actix_web::ResponseError::status_code(&e);
            apply_page(&state, &req, slug, status, Some(form), people_errors(e)).await
        }
        Err(e) => Err(e.into()),
    }
}

// ---------------------------------------------------------------------------
// Me

#[derive(Template)]
#[template(path = "me.html", config = "src/web/askama.toml")]
struct MePage {
    l: Layout,
    /// (available, on its way out).
    balances: Vec<(String, String)>,
    /// (project slug, tier, status, reputation).
    helping: Vec<(String, String, String, String)>,
    /// (id, title, status, in escrow).
    tickets: Vec<(i64, String, String, String)>,
    /// Tickets the user works on: (id, title).
    claims: Vec<(i64, String)>,
    /// The user's bids: (ticket id, title, amount, status).
    bids: Vec<(i64, String, String, String)>,
    /// Recent ledger lines: (when, credit or debit, amount, kind, ticket).
    transfers: Vec<(String, &'static str, String, String, Option<i64>)>,
    /// Whether the user has a payout account that is ready.
    payouts_ready: bool,
    notice: String,
    /// Whether the address is verified.
    email_verified: bool,
    /// The linked GitHub login.
    github_login: Option<String>,
    /// Linked chat accounts: (provider, name there).
    chat_accounts: Vec<(String, String)>,
    /// Whether Sign in with GitHub is offered.
    github: bool,
}

/// `?payouts=&verify=`.
#[derive(Debug, Deserialize)]
pub struct MeQuery {
    payouts: Option<String>,
    verify: Option<String>,
}

/// `/me`: the signed-in user's tickets, balance and standing in projects.
pub async fn me(state: web::Data<AppState>, req: HttpRequest, q: web::Query<MeQuery>) -> Page {
    let l = Layout::of(&state, &req).await?;
    let Some(user) = l.user.as_ref().map(|u| u.id) else {
        return Ok(redirect("/login?next=/me"));
    };
    let gateway = state.gateway.name().to_owned();
    let (
        balances,
        helping,
        tickets,
        (claims, bids, transfers, payouts_ready, email_verified, (github_login, chat_accounts)),
    ) = state
        .db(move |conn| {
            let balances =
                crate::ledger::accounts_of(conn, crate::ledger::AccountKind::UserPayable, user)?
                    .into_iter()
                    .map(|a| {
                        let out = if a.debits_pending > 0 {
                            money(a.debits_pending, &a.currency)
                        } else {
                            String::new()
                        };
                        (money(a.available(), &a.currency), out)
                    })
                    .collect();
            let slugs = projects::slugs(conn)?;
            let mut helping = Vec::new();
            for h in helpers::of_user(conn, user)? {
                let score = crate::domain::reputation::score_of(conn, h.project_id, user)?;
                helping.push((
                    slugs.get(&h.project_id).cloned().unwrap_or_default(),
                    h.tier,
                    h.status,
                    score.map_or_else(|| "new".into(), |s| format!("{s:.0}")),
                ));
            }
            let filter = ticket_domain::ListFilter {
                project_id: None,
                status: None,
                mine: true,
            };
            let mut currencies = std::collections::HashMap::new();
            let mut tickets = Vec::new();
            for t in ticket_domain::list(conn, Some(user), &filter, None, 100)? {
                let currency = match currencies.entry(t.project_id) {
                    std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                    std::collections::hash_map::Entry::Vacant(e) => {
                        e.insert(projects::by_id(conn, t.project_id)?.currency)
                    }
                };
                tickets.push((
                    t.id,
                    t.title.clone(),
                    t.status.clone(),
                    money(t.paid_amount, currency),
                ));
            }
            let claims = ticket_domain::claimed_by(conn, user, 100)?
                .into_iter()
                .map(|t| (t.id, t.title))
                .collect();
            let bids = crate::domain::bids::of_helper(conn, user, 50)?
                .into_iter()
                .map(|(b, title)| (b.ticket_id, title, money(b.amount, &b.currency), b.status))
                .collect();
            let (mine, rows) = crate::ledger::user_transfers(conn, user, None, 20)?;
            let transfers = rows
                .into_iter()
                .map(|t| {
                    let credit = mine.contains(&t.credit_account_id);
                    (
                        when(t.created_at),
                        if credit { "in" } else { "out" },
                        money(t.amount, &t.currency),
                        t.kind.replace('_', " "),
                        t.ticket_id,
                    )
                })
                .collect();
            let ready = crate::domain::payouts::is_ready(
                conn,
                crate::domain::payouts::Payee::User(user),
                &gateway,
            )?;
            let verified = users::get(conn, user)?.email_verified_at.is_some();
            let github_login = crate::channels::github_identity::login_of(conn, user)?;
            let chat_accounts = crate::channels::chat::linked_accounts(conn, user)?;
            Ok((
                balances,
                helping,
                tickets,
                (
                    claims,
                    bids,
                    transfers,
                    ready,
                    verified,
                    (github_login, chat_accounts),
                ),
            ))
        })
        .await?;
    let notice = match (q.payouts.as_deref(), q.verify.as_deref()) {
        (Some("ready"), _) => "Your payout account is ready: accepted work is paid out to it.",
        (Some("pending"), _) => "Finish setting up your payout account with the payment provider.",
        (_, Some("sent")) => "We mailed you a new link to verify your address.",
        _ => "",
    };

    render(
        StatusCode::OK,
        &MePage {
            l,
            balances,
            helping,
            tickets,
            claims,
            bids,
            transfers,
            payouts_ready,
            notice: notice.to_owned(),
            email_verified,
            github_login,
            chat_accounts,
            github: state.github_oauth.is_some(),
        },
    )
}

/// `POST /me/payouts`: creates (once) the user's payout account with the
/// gateway and sends them to its onboarding, or back to `/me` when it is
/// ready (the sandbox's is at once).
pub async fn payouts(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<CsrfForm>,
) -> Page {
    session::check_form(&req, &form.csrf)?;
    let Some(user) = Session::of(&req).user_id else {
        return Ok(redirect("/login?next=/me"));
    };
    let gateway = state.gateway.clone();
    let o = state
        .blocking(move |pool| {
            crate::domain::payouts::onboard(
                pool,
                gateway.as_ref(),
                crate::domain::payouts::Payee::User(user),
            )
        })
        .await?;
    if o.ready {
        Ok(redirect("/me?payouts=ready"))
    } else if o.url.starts_with("https://") {
        Ok(redirect(&o.url))
    } else {
        Ok(redirect("/me?payouts=pending"))
    }
}

/// `/payouts/return` and `/payouts/refresh`: where the payment provider's
/// onboarding sends the payee back; their page says where they stand.
pub async fn payouts_back() -> HttpResponse {
    redirect("/me")
}

// ---------------------------------------------------------------------------
// Public profile and badge

#[derive(Template)]
#[template(path = "user.html", config = "src/web/askama.toml")]
struct UserPage {
    l: Layout,
    name: String,
    /// (project slug, tier, reputation).
    helping: Vec<(String, String, String)>,
    /// (ticket id, title).
    solved: Vec<(i64, String)>,
}

/// `/u/{id}`: a helper's public profile: the projects they help, their
/// reputation in each, and the public tickets they solved.
pub async fn user(state: web::Data<AppState>, req: HttpRequest, id: web::Path<String>) -> Page {
    let l = Layout::of(&state, &req).await?;
    let id: i64 = id
        .parse()
        .map_err(|_| WebError(AppError::not_found("user")))?;
    let (name, helping, solved) = state
        .db(move |conn| {
            let u = users::get(conn, id)?;
            let slugs = projects::slugs(conn)?;
            let mut helping = Vec::new();
            for h in helpers::of_user(conn, id)?
                .into_iter()
                .filter(|h| h.status == helpers::HelperStatus::Approved.as_str())
            {
                let score = crate::domain::reputation::score_of(conn, h.project_id, id)?;
                helping.push((
                    slugs.get(&h.project_id).cloned().unwrap_or_default(),
                    h.tier,
                    score.map_or_else(|| "new".into(), |s| format!("{s:.0}")),
                ));
            }
            let solved = ticket_domain::solved_by(conn, id, 50)?
                .into_iter()
                .map(|t| (t.id, t.title))
                .collect();
            Ok((u.display_name, helping, solved))
        })
        .await?;
    render(
        StatusCode::OK,
        &UserPage {
            l,
            name,
            helping,
            solved,
        },
    )
}

#[derive(Template)]
#[template(path = "badge.svg", config = "src/web/askama.toml")]
struct Badge {
    label: &'static str,
    value: String,
    width: usize,
    label_width: usize,
    value_width: usize,
    value_x: usize,
}

/// A wait in the words a badge has room for.
pub(super) fn short_wait(d: chrono::Duration) -> String {
    let minutes = d.num_minutes().max(1);
    match minutes {
        m if m < 60 => format!("{m} min"),
        m if m < 48 * 60 => format!("{} h", m.div_euclid(60)),
        m => format!("{} days", m.div_euclid(24 * 60)),
    }
}

/// `/p/{slug}/badge.svg`: the project's measured median first response over
/// 90 days, for its README.
pub async fn badge(state: web::Data<AppState>, slug: web::Path<String>) -> Page {
    let slug = slug.into_inner();
    let median = state
        .db(move |conn| {
            let p = projects::by_slug(conn, &slug)?;
            Ok(ticket_domain::median_first_response(conn, p.id, 90)?)
        })
        .await?;
    let label = "first response";
    let value = median.map_or_else(|| "no data yet".to_owned(), short_wait);
    // Verdana 11 px is about 7 px a character.
    let label_width = 12 + 7 * label.chars().count();
    let value_width = 12 + 7 * value.chars().count();
    let svg = Badge {
        label,
        value_x: label_width + 6,
        width: label_width + value_width,
        label_width,
        value_width,
        value,
    }
    .render()
    .map_err(|e| WebError(AppError::internal(anyhow::anyhow!("template: {e}"))))?;
    Ok(HttpResponse::Ok()
        .content_type("image/svg+xml; charset=utf-8")
        .insert_header(("cache-control", "public, max-age=3600"))
        .body(svg))
}

/// Any other path: a page, not JSON.
pub async fn not_found(state: web::Data<AppState>, req: HttpRequest) -> Page {
    let _ = (&state, &req);
    Err(WebError(AppError::not_found("page")))
}

// ---------------------------------------------------------------------------
// Verifying an address

/// `?u=&e=&t=` of a verification link.
#[derive(Debug, Deserialize)]
pub struct VerifyQuery {
    u: Option<i64>,
    e: Option<i64>,
    t: Option<String>,
}

#[derive(Template)]
#[template(path = "verify.html", config = "src/web/askama.toml")]
struct VerifyPage {
    l: Layout,
    /// "confirm", "done" or "invalid".
    state: &'static str,
    u: i64,
    e: i64,
    t: String,
}

fn verify_parts(q: &VerifyQuery) -> Option<(i64, i64, String)> {
    Some((q.u?, q.e?, q.t.clone().filter(|t| t.len() <= 64)?))
}

/// `GET /verify?u=&e=&t=`: the link from the mail. It only shows a button:
/// mail scanners that open links must not verify anything.
pub async fn verify_form(
    state: web::Data<AppState>,
    req: HttpRequest,
    q: web::Query<VerifyQuery>,
) -> Page {
    let l = Layout::of(&state, &req).await?;
    let page = match verify_parts(&q) {
        Some((u, e, t)) => VerifyPage {
            l,
            state: "confirm",
            u,
            e,
            t,
        },
        None => VerifyPage {
            l,
            state: "invalid",
            u: 0,
            e: 0,
            t: String::new(),
        },
    };
    let status = if page.state == "invalid" {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    render(status, &page)
}

/// The verification form.
#[derive(Debug, Deserialize)]
pub struct VerifyForm {
    csrf: String,
    u: i64,
    e: i64,
    t: String,
}

/// `POST /verify`: checks the link's signature and expiry against the
/// account's current address and marks it verified.
pub async fn verify(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<VerifyForm>,
) -> Page {
    let form = form.into_inner();
    session::check_form(&req, &form.csrf)?;
    let mail = state.mail.clone();
    let (u, e, t) = (form.u, form.e, form.t.clone());
    let verified = state
        .db(move |conn| {
            let Ok(user) = users::get(conn, u) else {
                return Ok(false);
            };
            if !mail.check_verify(user.id, &user.email_normalized, e, &t) {
                return Ok(false);
            }
            users::mark_verified(conn, user.id, &user.email_normalized)
        })
        .await?;
    let page = VerifyPage {
        l: Layout::of(&state, &req).await?,
        state: if verified { "done" } else { "invalid" },
        u: form.u,
        e: form.e,
        t: String::new(),
    };
    let status = if verified {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    render(status, &page)
}

/// `POST /me/verify-email`: mails the verification link again.
pub async fn resend_verification(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<CsrfForm>,
) -> Page {
    session::check_form(&req, &form.csrf)?;
    let Some(user) = Session::of(&req).user_id else {
        return Ok(redirect("/login?next=/me"));
    };
    // At most three a day per account: the button must not become a way
    // to flood someone else's inbox from our domain.
    if let Err(wait) = state
        .registrations
        .reserve(&[(format!("verify-mail:{user}").as_str(), 3)])
    {
        return Err(WebError(AppError::TooManyRequests {
            retry_after_secs: wait.as_secs().max(1),
            detail: "we mailed the link a short while ago; please look for it, or try again later"
                .into(),
        }));
    }
    state
        .db(move |conn| {
            guildhall_jobs::BackgroundJob::enqueue(
                &crate::job_payloads::SendVerificationEmail { user_id: user },
                conn,
            )?;
            Ok(())
        })
        .await?;
    Ok(redirect("/me?verify=sent"))
}

// ---------------------------------------------------------------------------
// Notifications

#[derive(Template)]
#[template(path = "notifications.html", config = "src/web/askama.toml")]
struct NotificationsPage {
    l: Layout,
    level: String,
    digest_hour: i32,
    time_zone: String,
    notice: String,
    errors: Vec<String>,
    can_reply: bool,
}

/// The notification settings form.
#[derive(Debug, Deserialize)]
pub struct NotificationsForm {
    csrf: String,
    level: String,
    digest_hour: String,
    time_zone: String,
}

/// `GET /me/notifications`: how often Guildhall writes.
pub async fn notifications_form(state: web::Data<AppState>, req: HttpRequest) -> Page {
    let l = Layout::of(&state, &req).await?;
    let Some(user) = l.user.as_ref().map(|u| u.id) else {
        return Ok(redirect("/login?next=/me/notifications"));
    };
    let s = state
        .db(move |conn| Ok(crate::domain::notifications::settings(conn, user)?))
        .await?;
    render(
        StatusCode::OK,
        &NotificationsPage {
            l,
            level: s.level.as_str().to_owned(),
            digest_hour: s.digest_hour,
            time_zone: s.time_zone,
            notice: String::new(),
            errors: Vec::new(),
            can_reply: state.mail.reply_domain().is_some(),
        },
    )
}

/// `POST /me/notifications`: the API's validation, errors inline.
pub async fn save_notifications(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<NotificationsForm>,
) -> Page {
    let form = form.into_inner();
    session::check_form(&req, &form.csrf)?;
    let Some(user) = Session::of(&req).user_id else {
        return Ok(redirect("/login?next=/me/notifications"));
    };
    let hour = form.digest_hour.trim().parse::<i32>().unwrap_or(-1);
    let (level, zone) = (form.level.clone(), form.time_zone.clone());
    let saved = state
        .db(move |conn| crate::domain::notifications::set_settings(conn, user, &level, hour, &zone))
        .await;
    let (status, notice, errors) = match saved {
        Ok(_) => (StatusCode::OK, "Saved.".to_owned(), Vec::new()),
        Err(e @ AppError::Validation(_)) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            String::new(),
            people_errors(e),
        ),
        Err(e) => return Err(e.into()),
    };
    render(
        status,
        &NotificationsPage {
            l: Layout::of(&state, &req).await?,
            level: form.level,
            digest_hour: hour,
            time_zone: form.time_zone,
            notice,
            errors,
            can_reply: state.mail.reply_domain().is_some(),
        },
    )
}

/// `?u=&t=&s=` of an unsubscribe link.
#[derive(Debug, Deserialize)]
pub struct UnsubscribeQuery {
    u: i64,
    t: i64,
    s: String,
}

/// 404 unless the unsubscribe link is one Guildhall signed.
fn genuine(state: &AppState, q: &UnsubscribeQuery) -> Result<(), WebError> {
    if state.mail.check_unsubscribe(q.u, q.t, &q.s) {
        Ok(())
    } else {
        Err(WebError(AppError::not_found("link")))
    }
}

#[derive(Template)]
#[template(path = "unsubscribe.html", config = "src/web/askama.toml")]
struct UnsubscribePage {
    l: Layout,
    done: bool,
    action: String,
}

/// `GET /unsubscribe?u=&t=&s=`: the mail's "mute this ticket" link shows a
/// button (scanners that follow links change nothing).
pub async fn unsubscribe_form(
    state: web::Data<AppState>,
    req: HttpRequest,
    q: web::Query<UnsubscribeQuery>,
) -> Page {
    genuine(&state, &q)?;
    let action = format!("/unsubscribe?u={}&t={}&s={}", q.u, q.t, q.s);
    render(
        StatusCode::OK,
        &UnsubscribePage {
            l: Layout::of(&state, &req).await?,
            done: false,
            action,
        },
    )
}

/// `POST /unsubscribe?u=&t=&s=`: one-click unsubscribe (RFC 8058): mail
/// clients post `List-Unsubscribe=One-Click` without cookies, so the
/// link's signature is the authorization (no CSRF token: the only change
/// it can make is muting this ticket for this person). Mutes this ticket.
pub async fn unsubscribe(
    state: web::Data<AppState>,
    req: HttpRequest,
    q: web::Query<UnsubscribeQuery>,
) -> Page {
    genuine(&state, &q)?;
    let (user, ticket) = (q.u, q.t);
    state
        .db(move |conn| {
            crate::domain::notifications::set_ticket_level(
                conn,
                user,
                ticket,
                crate::domain::notifications::Level::Mute,
            )
        })
        .await?;
    render(
        StatusCode::OK,
        &UnsubscribePage {
            l: Layout::of(&state, &req).await?,
            done: true,
            action: String::new(),
        },
    )
}
