//! `/tickets/*`: lifecycle, messages, events, templates.

use super::views::{EventView, MessageView, Page, Paging, TemplateView, TicketView};
use crate::api::idempotency::{idempotent, IdempotencyKey};
use crate::auth::{AuthUser, MaybeUser};
use crate::db::schema::projects;
use crate::db::DbConnection;
use crate::domain::projects as project_domain;
use crate::domain::tickets::{
    self, Kind, ListFilter, NewTicket, Status, Ticket, TicketPatch, Visibility,
};
use crate::error::{AppError, AppResult, ErrorCode, Problem};
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use diesel::prelude::*;
use serde::Deserialize;
use std::collections::HashMap;
use utoipa::{IntoParams, ToSchema};

/// Body of `POST /tickets`.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({
    "project": "actix-web",
    "title": "How do I share a database pool between handlers?",
    "body": "Each worker seems to open its own connections.",
    "tags": ["web-data", "state"],
    "kind": "question"
}))]
pub struct CreateTicketBody {
    /// Project slug.
    pub project: String,
    /// 3–200 characters, not counting surrounding spaces.
    #[schema(min_length = 3, max_length = 200, pattern = r"\S")]
    pub title: String,
    /// Details, at most 50,000 characters.
    #[serde(default)]
    #[schema(max_length = 50000)]
    pub body: String,
    /// Tags.
    #[serde(default)]
    #[schema(schema_with = super::openapi::tags)]
    pub tags: Vec<String>,
    /// Default `question`.
    pub kind: Option<Kind>,
    /// Default `public`.
    pub visibility: Option<Visibility>,
}

/// Body of `PATCH /tickets/{id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchTicketBody {
    /// Title, 3–200 characters, not counting surrounding spaces.
    #[schema(min_length = 3, max_length = 200, pattern = r"\S")]
    pub title: Option<String>,
    /// Body, at most 50,000 characters.
    #[schema(max_length = 50000)]
    pub body: Option<String>,
    /// Tags.
    #[schema(schema_with = super::openapi::tags_patch)]
    pub tags: Option<Vec<String>>,
    /// Kind.
    pub kind: Option<Kind>,
    /// Visibility.
    pub visibility: Option<Visibility>,
}

/// `?project=&status=&mine=&limit=&cursor=`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListTicketsQuery {
    /// Project slug.
    pub project: Option<String>,
    /// Status.
    pub status: Option<Status>,
    /// Only tickets I asked.
    #[serde(default)]
    pub mine: bool,
    /// Page size, 1–100, default 20.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// From the previous page.
    pub cursor: Option<String>,
}

/// `?limit=&cursor=`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Page size, 1–100, default 20.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// From the previous page.
    pub cursor: Option<String>,
}

/// Body of `POST /tickets/{id}/messages`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct MessageBody {
    /// Text, 1–50,000 characters; may be omitted when `template_id` is given.
    #[schema(min_length = 1, max_length = 50000, pattern = r"\S")]
    pub body: Option<String>,
    /// Team-only note.
    #[serde(default)]
    pub internal: bool,
    /// A template of yours or of the project to use as the body.
    pub template_id: Option<i64>,
}

/// Body of `POST /tickets/{id}/transfer`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct TransferBody {
    /// An approved helper of the project.
    pub to_user_id: i64,
}

/// Body of `POST /tickets/{id}/resolve`.
#[derive(Debug, Deserialize, ToSchema, Default)]
pub struct ResolveBody {
    /// The public message that resolves the ticket.
    pub message_id: Option<i64>,
}

/// Optional reason for reopen and close.
#[derive(Debug, Deserialize, ToSchema, Default)]
pub struct ReasonBody {
    /// Why, at most 500 characters.
    #[schema(max_length = 500)]
    pub reason: Option<String>,
}

/// Body of `POST /tickets/{id}/rating`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RatingBody {
    /// 1–5.
    #[schema(minimum = 1, maximum = 5)]
    pub stars: i32,
    /// Comment, at most 2000 characters.
    #[schema(max_length = 2000)]
    pub comment: Option<String>,
}

/// Body of `POST /projects/{slug}/templates`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct TemplateBody {
    /// Short name, 1–100 characters.
    #[schema(min_length = 1, max_length = 100, pattern = r"\S")]
    pub name: String,
    /// Text, 1–20,000 characters.
    #[schema(min_length = 1, max_length = 20000, pattern = r"\S")]
    pub body: String,
    /// `personal` (default, any team member) or `project` (maintainers).
    #[schema(value_type = Option<TemplateScope>)]
    pub scope: Option<String>,
}

/// Who may use a template.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TemplateScope {
    /// The author's own.
    Personal,
    /// Every team member of the project (maintainers create these).
    Project,
}

/// Views for tickets, looking each project up once.
pub fn views(conn: &mut DbConnection, list: &[Ticket]) -> AppResult<Vec<TicketView>> {
    let mut cache: HashMap<i64, (String, String)> = HashMap::new();
    let mut out = Vec::with_capacity(list.len());
    for t in list {
        let (slug, currency) = match cache.entry(t.project_id) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                let p: (String, String) = projects::table
                    .find(t.project_id)
                    .select((projects::slug, projects::currency))
                    .first(conn)?;
                e.insert(p)
            }
        };
        out.push(TicketView::new(t, slug, currency));
    }
    Ok(out)
}

fn view(conn: &mut DbConnection, t: &Ticket) -> AppResult<TicketView> {
    Ok(views(conn, std::slice::from_ref(t))?.remove(0))
}

/// Create a draft ticket.
#[utoipa::path(post, path = "/api/v1/tickets", tag = "tickets", security(("bearer" = [])), request_body = CreateTicketBody,
    responses((status = 201, body = TicketView), (status = 401, body = Problem), (status = 422, body = Problem)))]
pub async fn create(
    state: web::Data<AppState>,
    user: AuthUser,
    body: web::Json<CreateTicketBody>,
) -> AppResult<HttpResponse> {
    let b = body.into_inner();
    let new = NewTicket {
        project: b.project,
        title: b.title,
        body: b.body,
        tags: b.tags,
        kind: b.kind.unwrap_or(Kind::Question),
        visibility: b.visibility.unwrap_or(Visibility::Public),
    };
    let v = state
        .db(move |conn| {
            let t = tickets::create(conn, user.id, &new)?;
            view(conn, &t)
        })
        .await?;
    Ok(HttpResponse::Created().json(v))
}

/// Tickets the caller may see, newest first.
#[utoipa::path(get, path = "/api/v1/tickets", tag = "tickets", security((), ("bearer" = [])), params(ListTicketsQuery),
    responses((status = 200, body = Page<TicketView>), (status = 400, body = Problem),
              (status = 404, body = Problem, description = "`project` names no project")))]
pub async fn list(
    state: web::Data<AppState>,
    user: MaybeUser,
    query: web::Query<ListTicketsQuery>,
) -> AppResult<web::Json<Page<TicketView>>> {
    let q = query.into_inner();
    let paging = Paging::parse(q.limit, q.cursor.as_deref())?;
    let uid = user.0.map(|u| u.id);
    if q.mine && uid.is_none() {
        return Err(crate::error::AppError::Unauthorized(
            "log in to list your own tickets".into(),
        ));
    }
    state
        .db(move |conn| {
            let project_id = match &q.project {
                Some(slug) => Some(project_domain::by_slug(conn, slug)?.id),
                None => None,
            };
            let filter = ListFilter {
                project_id,
                status: q.status,
                mine: q.mine && uid.is_some(),
            };
            let rows = tickets::list(conn, uid, &filter, paging.cursor, paging.fetch())?;
            let page = Page::from_rows(rows, &paging, |t| t.id, Ok)?;
            Ok(web::Json(Page {
                items: views(conn, &page.items)?,
                next_cursor: page.next_cursor,
            }))
        })
        .await
}

/// A ticket (404 when the caller may not see it).
#[utoipa::path(get, path = "/api/v1/tickets/{id}", tag = "tickets", security((), ("bearer" = [])), params(("id" = i64, Path, description = "ticket id")),
    responses((status = 200, body = TicketView), (status = 404, body = Problem)))]
pub async fn get(
    state: web::Data<AppState>,
    user: MaybeUser,
    id: web::Path<i64>,
) -> AppResult<web::Json<TicketView>> {
    let id = id.into_inner();
    state
        .db(move |conn| {
            let (t, _) = tickets::load_visible(conn, id, user.0.map(|u| u.id))?;
            view(conn, &t).map(web::Json)
        })
        .await
}

/// Edit (requester, while draft or open).
#[utoipa::path(patch, path = "/api/v1/tickets/{id}", tag = "tickets", security(("bearer" = [])),
    params(("id" = i64, Path, description = "ticket id")), request_body = PatchTicketBody,
    responses((status = 200, body = TicketView), (status = 403, body = Problem), (status = 404, body = Problem),
              (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn patch(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
    body: web::Json<PatchTicketBody>,
) -> AppResult<web::Json<TicketView>> {
    let id = id.into_inner();
    let b = body.into_inner();
    let p = TicketPatch {
        title: b.title,
        body: b.body,
        tags: b.tags,
        kind: b.kind,
        visibility: b.visibility,
    };
    state
        .db(move |conn| {
            let t = tickets::update(conn, id, user.id, &p)?;
            view(conn, &t).map(web::Json)
        })
        .await
}

async fn act(
    state: web::Data<AppState>,
    f: impl FnOnce(&mut DbConnection) -> AppResult<Ticket> + Send + 'static,
) -> AppResult<web::Json<TicketView>> {
    state
        .db(move |conn| {
            let t = f(conn)?;
            view(conn, &t).map(web::Json)
        })
        .await
}

/// [`act`] for transitions that move money (accept releases the escrow;
/// cancel and close refund it): an `Idempotency-Key` replays the first
/// answer, as on every money-moving POST. The answer is stored in the
/// transition's own transaction.
async fn act_money(
    state: web::Data<AppState>,
    req: &HttpRequest,
    key: IdempotencyKey,
    user: i64,
    body: &impl serde::Serialize,
    f: impl FnOnce(&mut DbConnection) -> AppResult<Ticket> + Send + 'static,
) -> AppResult<HttpResponse> {
    let st = state.clone();
    idempotent(&state, req, key, user, body, |claim| async move {
        let json = st
            .db(move |conn| {
                crate::db::write_tx(conn, |conn| {
                    let t = f(conn)?;
                    let json = serde_json::to_value(view(conn, &t)?).map_err(AppError::internal)?;
                    if let Some(claim) = &claim {
                        // The key is no longer ours (its lease ran out and a
                        // retry took it): do nothing rather than act twice.
                        if claim.store(conn, StatusCode::OK, &json.to_string())? == 0 {
                            return Err(AppError::conflict(
                                ErrorCode::RequestInProgress,
                                "a retry with this Idempotency-Key took over this request",
                            ));
                        }
                    }
                    Ok(json)
                })
            })
            .await?;
        Ok((StatusCode::OK, json))
    })
    .await
}

/// Submit a draft into the project's queue (requires the code of conduct).
#[utoipa::path(post, path = "/api/v1/tickets/{id}/submit", tag = "tickets", security(("bearer" = [])),
    params(("id" = i64, Path, description = "ticket id")),
    responses((status = 200, body = TicketView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn submit(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
) -> AppResult<web::Json<TicketView>> {
    let id = id.into_inner();
    act(state, move |c| tickets::submit(c, id, user.id)).await
}

/// A ticket's GitHub issue.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct GithubIssueView {
    /// owner/name.
    pub repository: String,
    /// The issue's number.
    pub number: i64,
    /// Its page.
    pub url: String,
}

/// Open the ticket as a GitHub issue in the project's linked repository
/// (maintainers; the GitHub App must be installed there). Its body links
/// the ticket and the ticket shows the issue. Private tickets never become
/// issues; one issue per ticket. 404 when the App is not configured.
#[utoipa::path(post, path = "/api/v1/tickets/{id}/github-issue", tag = "tickets", security(("bearer" = [])),
    params(("id" = i64, Path, description = "ticket id")),
    responses((status = 201, body = GithubIssueView), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem), (status = 409, body = Problem), (status = 503, body = Problem)))]
pub async fn github_issue(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
) -> AppResult<HttpResponse> {
    let id = id.into_inner();
    let app = state
        .github
        .clone()
        .ok_or_else(|| AppError::not_found("GitHub App"))?;
    let public_url = state.config.public_url.clone();
    let web_base = crate::integrations::github::web_base(&state.config.github_api_base);
    let (repository, number) = state
        .blocking(move |pool| {
            crate::channels::github_export::export(pool, &app, id, user.id, &public_url)
        })
        .await?;
    Ok(HttpResponse::Created().json(GithubIssueView {
        url: format!("{web_base}/{repository}/issues/{number}"),
        repository,
        number,
    }))
}

/// Claim (approved helpers of the project); 409 when already claimed.
#[utoipa::path(post, path = "/api/v1/tickets/{id}/claim", tag = "tickets", security(("bearer" = [])),
    params(("id" = i64, Path, description = "ticket id")),
    responses((status = 200, body = TicketView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn claim(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
) -> AppResult<web::Json<TicketView>> {
    let id = id.into_inner();
    act(state, move |c| tickets::claim(c, id, user.id)).await
}

/// Give a claimed ticket back to the queue (claimant or maintainer).
#[utoipa::path(post, path = "/api/v1/tickets/{id}/unclaim", tag = "tickets", security(("bearer" = [])),
    params(("id" = i64, Path, description = "ticket id")),
    responses((status = 200, body = TicketView), (status = 403, body = Problem), (status = 409, body = Problem)))]
pub async fn unclaim(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
) -> AppResult<web::Json<TicketView>> {
    let id = id.into_inner();
    act(state, move |c| tickets::unclaim(c, id, user.id)).await
}

/// Hand a claimed ticket to another approved helper (claimant or maintainer).
#[utoipa::path(post, path = "/api/v1/tickets/{id}/transfer", tag = "tickets", security(("bearer" = [])),
    params(("id" = i64, Path, description = "ticket id")), request_body = TransferBody,
    responses((status = 200, body = TicketView), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn transfer(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
    body: web::Json<TransferBody>,
) -> AppResult<web::Json<TicketView>> {
    let (id, to) = (id.into_inner(), body.to_user_id);
    act(state, move |c| tickets::transfer(c, id, user.id, to)).await
}

/// The claimant proposes a resolution.
#[utoipa::path(post, path = "/api/v1/tickets/{id}/resolve", tag = "tickets", security(("bearer" = [])),
    params(("id" = i64, Path, description = "ticket id")), request_body = ResolveBody,
    responses((status = 200, body = TicketView), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn resolve(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
    body: Option<web::Json<ResolveBody>>,
) -> AppResult<web::Json<TicketView>> {
    let id = id.into_inner();
    let mid = body.and_then(|b| b.message_id);
    act(state, move |c| tickets::resolve(c, id, user.id, mid)).await
}

/// The requester accepts the resolution: closed.
#[utoipa::path(post, path = "/api/v1/tickets/{id}/accept", tag = "tickets", security(("bearer" = [])),
    params(("id" = i64, Path, description = "ticket id"), ("Idempotency-Key" = Option<String>, Header, description = "replays the first response")),
    responses((status = 200, body = TicketView), (status = 403, body = Problem), (status = 409, body = Problem)))]
pub async fn accept(
    state: web::Data<AppState>,
    req: HttpRequest,
    key: IdempotencyKey,
    user: AuthUser,
    id: web::Path<i64>,
) -> AppResult<HttpResponse> {
    let id = id.into_inner();
    let bps = state.config.platform_fee_bps;
    act_money(state, &req, key, user.id, &id, move |c| {
        tickets::accept(c, id, user.id, bps)
    })
    .await
}

/// Reopen (requester or team): resolved → claimed; closed → open.
#[utoipa::path(post, path = "/api/v1/tickets/{id}/reopen", tag = "tickets", security(("bearer" = [])),
    params(("id" = i64, Path, description = "ticket id")), request_body = ReasonBody,
    responses((status = 200, body = TicketView), (status = 403, body = Problem), (status = 409, body = Problem)))]
pub async fn reopen(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
    body: Option<web::Json<ReasonBody>>,
) -> AppResult<web::Json<TicketView>> {
    let id = id.into_inner();
    let reason = body.and_then(|b| b.into_inner().reason);
    act(state, move |c| {
        tickets::reopen(c, id, user.id, reason.as_deref())
    })
    .await
}

/// Close without acceptance (requester or team).
#[utoipa::path(post, path = "/api/v1/tickets/{id}/close", tag = "tickets", security(("bearer" = [])),
    params(("id" = i64, Path, description = "ticket id"), ("Idempotency-Key" = Option<String>, Header, description = "replays the first response")), request_body = ReasonBody,
    responses((status = 200, body = TicketView), (status = 403, body = Problem), (status = 409, body = Problem)))]
pub async fn close(
    state: web::Data<AppState>,
    req: HttpRequest,
    key: IdempotencyKey,
    user: AuthUser,
    id: web::Path<i64>,
    body: Option<web::Json<ReasonBody>>,
) -> AppResult<HttpResponse> {
    let id = id.into_inner();
    let reason = body.and_then(|b| b.into_inner().reason);
    act_money(state, &req, key, user.id, &(id, reason.clone()), move |c| {
        tickets::close(c, id, user.id, reason.as_deref())
    })
    .await
}

/// Withdraw (requester; draft, open or claimed).
#[utoipa::path(post, path = "/api/v1/tickets/{id}/cancel", tag = "tickets", security(("bearer" = [])),
    params(("id" = i64, Path, description = "ticket id"), ("Idempotency-Key" = Option<String>, Header, description = "replays the first response")),
    responses((status = 200, body = TicketView), (status = 403, body = Problem), (status = 409, body = Problem)))]
pub async fn cancel(
    state: web::Data<AppState>,
    req: HttpRequest,
    key: IdempotencyKey,
    user: AuthUser,
    id: web::Path<i64>,
) -> AppResult<HttpResponse> {
    let id = id.into_inner();
    act_money(state, &req, key, user.id, &id, move |c| {
        tickets::cancel(c, id, user.id)
    })
    .await
}

/// Rate a closed ticket once (requester).
#[utoipa::path(post, path = "/api/v1/tickets/{id}/rating", tag = "tickets", security(("bearer" = [])),
    params(("id" = i64, Path, description = "ticket id")), request_body = RatingBody,
    responses((status = 200, body = TicketView), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn rating(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
    body: web::Json<RatingBody>,
) -> AppResult<web::Json<TicketView>> {
    let id = id.into_inner();
    let b = body.into_inner();
    act(state, move |c| {
        tickets::rate(c, id, user.id, b.stars, b.comment.as_deref())
    })
    .await
}

/// Post a message (requester or team; internal notes for the team only).
#[utoipa::path(post, path = "/api/v1/tickets/{id}/messages", tag = "tickets", security(("bearer" = [])),
    params(("id" = i64, Path, description = "ticket id")), request_body = MessageBody,
    responses((status = 201, body = MessageView), (status = 403, body = Problem), (status = 404, body = Problem),
              (status = 409, body = Problem, description = "the ticket was cancelled"), (status = 422, body = Problem)))]
pub async fn post_message(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
    body: web::Json<MessageBody>,
) -> AppResult<HttpResponse> {
    let id = id.into_inner();
    let b = body.into_inner();
    let m = state
        .db(move |conn| {
            tickets::post_message(
                conn,
                id,
                user.id,
                b.body.as_deref(),
                b.internal,
                b.template_id,
            )
        })
        .await?;
    Ok(HttpResponse::Created().json(MessageView::from(&m)))
}

/// Messages, oldest first; internal notes only for the team.
#[utoipa::path(get, path = "/api/v1/tickets/{id}/messages", tag = "tickets", security((), ("bearer" = [])),
    params(("id" = i64, Path, description = "ticket id"), PageQuery),
    responses((status = 200, body = Page<MessageView>), (status = 404, body = Problem)))]
pub async fn list_messages(
    state: web::Data<AppState>,
    user: MaybeUser,
    id: web::Path<i64>,
    query: web::Query<PageQuery>,
) -> AppResult<web::Json<Page<MessageView>>> {
    let id = id.into_inner();
    let paging = Paging::parse(query.limit, query.cursor.as_deref())?;
    state
        .db(move |conn| {
            let user = user.0.map(|u| u.id);
            let rows = tickets::list_messages(conn, id, user, paging.cursor, paging.fetch())?;
            Page::from_rows(rows, &paging, |m| m.id, |m| Ok(MessageView::from(&m))).map(web::Json)
        })
        .await
}

/// The ticket's event log: every transition with who, when, from and to.
#[utoipa::path(get, path = "/api/v1/tickets/{id}/events", tag = "tickets", security((), ("bearer" = [])),
    params(("id" = i64, Path, description = "ticket id")),
    responses((status = 200, body = [EventView]), (status = 404, body = Problem)))]
pub async fn events(
    state: web::Data<AppState>,
    user: MaybeUser,
    id: web::Path<i64>,
) -> AppResult<web::Json<Vec<EventView>>> {
    let id = id.into_inner();
    state
        .db(move |conn| {
            Ok(web::Json(
                tickets::events(conn, id, user.0.map(|u| u.id))?
                    .iter()
                    .map(EventView::from)
                    .collect(),
            ))
        })
        .await
}

/// Create a response template (personal: team members; project: maintainers).
#[utoipa::path(post, path = "/api/v1/projects/{slug}/templates", tag = "tickets", security(("bearer" = [])),
    params(("slug" = String, Path, description = "project slug")), request_body = TemplateBody,
    responses((status = 201, body = TemplateView), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn create_template(
    state: web::Data<AppState>,
    user: AuthUser,
    slug: web::Path<String>,
    body: web::Json<TemplateBody>,
) -> AppResult<HttpResponse> {
    let slug = slug.into_inner();
    let b = body.into_inner();
    let project_wide = match b.scope.as_deref() {
        None | Some("personal") => false,
        Some("project") => true,
        Some(_) => {
            return Err(crate::error::AppError::field(
                "scope",
                "must be `personal` or `project`",
            ))
        }
    };
    let t = state
        .db(move |conn| {
            let p = project_domain::by_slug(conn, &slug)?;
            tickets::create_template(conn, p.id, user.id, &b.name, &b.body, project_wide)
        })
        .await?;
    Ok(HttpResponse::Created().json(TemplateView::from(&t)))
}

/// Project-wide templates and the caller's own (team only).
#[utoipa::path(get, path = "/api/v1/projects/{slug}/templates", tag = "tickets", security(("bearer" = [])),
    params(("slug" = String, Path, description = "project slug")),
    responses((status = 200, body = [TemplateView]), (status = 403, body = Problem)))]
pub async fn list_templates(
    state: web::Data<AppState>,
    user: AuthUser,
    slug: web::Path<String>,
) -> AppResult<web::Json<Vec<TemplateView>>> {
    let slug = slug.into_inner();
    state
        .db(move |conn| {
            let p = project_domain::by_slug(conn, &slug)?;
            Ok(web::Json(
                tickets::list_templates(conn, p.id, user.id)?
                    .iter()
                    .map(TemplateView::from)
                    .collect(),
            ))
        })
        .await
}
