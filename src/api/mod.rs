//! The HTTP API under `/api/v1`: one route table, the OpenAPI document,
//! health and metrics.

pub mod auth;
pub mod chat;
pub mod conduct;
pub mod consulting;
pub mod earnings;
pub mod handovers;
pub mod idempotency;
pub mod inbound;
pub mod invoices;
pub mod matching;
pub mod moderation;
pub mod money;
pub mod notifications;
pub mod openapi;
pub mod plans;
pub mod projects;
pub mod queue;
pub mod reputation;
pub mod search;
pub mod tickets;
pub mod views;
pub mod webhooks;

use crate::error::{AppError, Problem};
use crate::state::AppState;
use actix_web::{web, HttpResponse};
use diesel::connection::SimpleConnection;
use openapi::ProblemResponses;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// The generated OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    info(title = "Guildhall API", description = "Marketplace and reputation engine for the open-source helper economy."),
    paths(
        auth::register, auth::login, auth::refresh, auth::logout, auth::me,
        projects::create, projects::list, projects::get, projects::patch, projects::verify, projects::get_calendar, projects::put_calendar, projects::audit, projects::add_maintainer,
        projects::apply, projects::approve, projects::revoke, projects::list_helpers, projects::endorse,
        projects::accept_coc, healthz, metrics, openapi_json,
        tickets::create, tickets::list, tickets::get, tickets::patch, tickets::submit, tickets::github_issue, tickets::claim,
        tickets::unclaim, tickets::transfer, tickets::resolve, tickets::accept, tickets::reopen, tickets::close,
        tickets::cancel, tickets::rating, tickets::post_message, tickets::list_messages, tickets::events,
        tickets::create_template, tickets::list_templates, queue::queue, search::search_tickets, search::similar,
        money::create_bounty, money::list_bounties, money::balance, money::transfers,
        money::create_bid, money::list_bids, money::accept_bid, money::withdraw_bid, webhooks::stripe,
        money::statement, money::onboarding, money::project_onboarding, earnings::mine,
        reputation::user_reputation, reputation::leaderboard, matching::matches, matching::route,
        notifications::get_settings, notifications::put_settings, notifications::put_ticket_level,
        notifications::put_project_level, inbound::email, webhooks::github,
        chat::discord, chat::slack_commands, chat::slack_interactions,
        plans::create_plan, plans::list_plans, plans::subscribe, plans::my_subscriptions, plans::cancel, plans::upgrade,
        invoices::mine, invoices::get, invoices::pdf, invoices::get_billing, invoices::put_billing,
        moderation::create, moderation::list, moderation::uphold, moderation::dismiss, moderation::ban_from_project,
        moderation::lift_project_ban, moderation::ban_from_platform, moderation::lift_platform_ban,
        handovers::propose, handovers::of_project, handovers::mine, handovers::get, handovers::accept,
        handovers::reverse, handovers::cancel,
        consulting::book, consulting::of_subscription, consulting::of_project, consulting::schedule,
        consulting::done, consulting::cancel,
        conduct::get, conduct::accept, conduct::publish,
        moderation::project_appeals, moderation::platform_appeals, moderation::decide_appeal,
        moderation::platform_flags,
    ),
    components(schemas(
        Problem, crate::error::FieldError, views::Money,
        crate::domain::tickets::Status, crate::domain::helpers::HelperStatus,
        money::StatementFormat,
    )),
    modifiers(&BearerAuth, &ProblemResponses),
    tags((name = "accounts"), (name = "projects"), (name = "helpers"), (name = "tickets"), (name = "search"), (name = "money"), (name = "plans"), (name = "moderation"), (name = "handovers"), (name = "reputation"), (name = "matching"), (name = "operations")),
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// Registers every route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/metrics", web::get().to(metrics))
        .service(
            web::scope("/api/v1")
                .default_service(web::to(not_found))
                .route("/openapi.json", web::get().to(openapi_json))
                .route("/auth/register", web::post().to(auth::register))
                .route("/auth/login", web::post().to(auth::login))
                .route("/auth/refresh", web::post().to(auth::refresh))
                .route("/auth/logout", web::post().to(auth::logout))
                .route("/me", web::get().to(auth::me))
                .route("/projects", web::post().to(projects::create))
                .route("/projects", web::get().to(projects::list))
                .route("/projects/{slug}", web::get().to(projects::get))
                .route("/projects/{slug}", web::patch().to(projects::patch))
                .route(
                    "/projects/{slug}/verification",
                    web::post().to(projects::verify),
                )
                .route("/admin/audit", web::get().to(projects::audit))
                .route(
                    "/projects/{slug}/calendar",
                    web::get().to(projects::get_calendar),
                )
                .route("/projects/{slug}/plans", web::post().to(plans::create_plan))
                .route("/projects/{slug}/plans", web::get().to(plans::list_plans))
                .route(
                    "/projects/{slug}/subscriptions",
                    web::post().to(plans::subscribe),
                )
                .route("/me/subscriptions", web::get().to(plans::my_subscriptions))
                .route("/subscriptions/{id}/cancel", web::post().to(plans::cancel))
                .route("/tickets/{id}/upgrade", web::post().to(plans::upgrade))
                .route("/me/invoices", web::get().to(invoices::mine))
                .route("/invoices/{id}", web::get().to(invoices::get))
                .route("/invoices/{id}/pdf", web::get().to(invoices::pdf))
                .route("/me/billing", web::get().to(invoices::get_billing))
                .route("/me/billing", web::put().to(invoices::put_billing))
                .route("/flags", web::post().to(moderation::create))
                .route("/projects/{slug}/flags", web::get().to(moderation::list))
                .route("/flags/{id}/uphold", web::post().to(moderation::uphold))
                .route("/flags/{id}/dismiss", web::post().to(moderation::dismiss))
                .route(
                    "/projects/{slug}/bans",
                    web::post().to(moderation::ban_from_project),
                )
                .route(
                    "/projects/{slug}/bans/{user_id}",
                    web::delete().to(moderation::lift_project_ban),
                )
                .route(
                    "/projects/{slug}/handovers",
                    web::post().to(handovers::propose),
                )
                .route(
                    "/projects/{slug}/handovers",
                    web::get().to(handovers::of_project),
                )
                .route("/me/handovers", web::get().to(handovers::mine))
                .route("/me/earnings", web::get().to(earnings::mine))
                .route(
                    "/projects/{slug}/appeals",
                    web::get().to(moderation::project_appeals),
                )
                .route("/admin/flags", web::get().to(moderation::platform_flags))
                .route(
                    "/admin/appeals",
                    web::get().to(moderation::platform_appeals),
                )
                .route(
                    "/appeals/{id}/decide",
                    web::post().to(moderation::decide_appeal),
                )
                .route("/code-of-conduct", web::get().to(conduct::get))
                .route("/code-of-conduct/accept", web::post().to(conduct::accept))
                .route("/admin/code-of-conduct", web::put().to(conduct::publish))
                .route(
                    "/subscriptions/{id}/consulting",
                    web::post().to(consulting::book),
                )
                .route(
                    "/subscriptions/{id}/consulting",
                    web::get().to(consulting::of_subscription),
                )
                .route(
                    "/projects/{slug}/consulting",
                    web::get().to(consulting::of_project),
                )
                .route(
                    "/consulting/{id}/schedule",
                    web::post().to(consulting::schedule),
                )
                .route("/consulting/{id}/done", web::post().to(consulting::done))
                .route(
                    "/consulting/{id}/cancel",
                    web::post().to(consulting::cancel),
                )
                .route("/handovers/{id}", web::get().to(handovers::get))
                .route("/handovers/{id}/accept", web::post().to(handovers::accept))
                .route(
                    "/handovers/{id}/reverse",
                    web::post().to(handovers::reverse),
                )
                .route("/handovers/{id}/cancel", web::post().to(handovers::cancel))
                .route("/admin/bans", web::post().to(moderation::ban_from_platform))
                .route(
                    "/admin/bans/{user_id}",
                    web::delete().to(moderation::lift_platform_ban),
                )
                .route(
                    "/projects/{slug}/calendar",
                    web::put().to(projects::put_calendar),
                )
                .route(
                    "/projects/{slug}/maintainers",
                    web::post().to(projects::add_maintainer),
                )
                .route(
                    "/projects/{slug}/coc/accept",
                    web::post().to(projects::accept_coc),
                )
                .route(
                    "/projects/{slug}/helpers",
                    web::get().to(projects::list_helpers),
                )
                .route(
                    "/projects/{slug}/helpers/apply",
                    web::post().to(projects::apply),
                )
                .route(
                    "/projects/{slug}/helpers/{user_id}/approve",
                    web::post().to(projects::approve),
                )
                .route(
                    "/projects/{slug}/helpers/{user_id}/revoke",
                    web::post().to(projects::revoke),
                )
                .route(
                    "/projects/{slug}/helpers/{user_id}/endorse",
                    web::post().to(projects::endorse),
                )
                .route("/projects/{slug}/queue", web::get().to(queue::queue))
                .route(
                    "/projects/{slug}/reputation",
                    web::get().to(reputation::leaderboard),
                )
                .route(
                    "/users/{id}/reputation",
                    web::get().to(reputation::user_reputation),
                )
                .route("/tickets/{id}/matches", web::get().to(matching::matches))
                .route("/route", web::post().to(matching::route))
                .route(
                    "/projects/{slug}/templates",
                    web::post().to(tickets::create_template),
                )
                .route(
                    "/projects/{slug}/templates",
                    web::get().to(tickets::list_templates),
                )
                .route("/tickets", web::post().to(tickets::create))
                .route("/tickets", web::get().to(tickets::list))
                .route("/tickets/{id}", web::get().to(tickets::get))
                .route("/tickets/{id}", web::patch().to(tickets::patch))
                .route("/tickets/{id}/submit", web::post().to(tickets::submit))
                .route(
                    "/tickets/{id}/github-issue",
                    web::post().to(tickets::github_issue),
                )
                .route("/tickets/{id}/claim", web::post().to(tickets::claim))
                .route("/tickets/{id}/unclaim", web::post().to(tickets::unclaim))
                .route("/tickets/{id}/transfer", web::post().to(tickets::transfer))
                .route("/tickets/{id}/resolve", web::post().to(tickets::resolve))
                .route("/tickets/{id}/accept", web::post().to(tickets::accept))
                .route("/tickets/{id}/reopen", web::post().to(tickets::reopen))
                .route("/tickets/{id}/close", web::post().to(tickets::close))
                .route("/tickets/{id}/cancel", web::post().to(tickets::cancel))
                .route("/tickets/{id}/rating", web::post().to(tickets::rating))
                .route(
                    "/tickets/{id}/messages",
                    web::post().to(tickets::post_message),
                )
                .route(
                    "/tickets/{id}/messages",
                    web::get().to(tickets::list_messages),
                )
                .route("/tickets/{id}/events", web::get().to(tickets::events))
                .route("/tickets/{id}/similar", web::get().to(search::similar))
                .route("/search/tickets", web::get().to(search::search_tickets))
                .route(
                    "/tickets/{id}/bounties",
                    web::post().to(money::create_bounty),
                )
                .route(
                    "/tickets/{id}/bounties",
                    web::get().to(money::list_bounties),
                )
                .route("/me/balance", web::get().to(money::balance))
                .route(
                    "/me/notifications",
                    web::get().to(notifications::get_settings),
                )
                .route(
                    "/me/notifications",
                    web::put().to(notifications::put_settings),
                )
                .route(
                    "/tickets/{id}/notifications",
                    web::put().to(notifications::put_ticket_level),
                )
                .route(
                    "/projects/{slug}/notifications",
                    web::put().to(notifications::put_project_level),
                )
                .route("/me/transfers", web::get().to(money::transfers))
                .route("/tickets/{id}/bids", web::post().to(money::create_bid))
                .route("/tickets/{id}/bids", web::get().to(money::list_bids))
                .route("/bids/{id}/accept", web::post().to(money::accept_bid))
                .route("/bids/{id}/withdraw", web::post().to(money::withdraw_bid))
                .route("/webhooks/stripe", web::post().to(webhooks::stripe))
                .route("/inbound/email", web::post().to(inbound::email))
                .route("/webhooks/github", web::post().to(webhooks::github))
                .route("/webhooks/discord", web::post().to(chat::discord))
                .route(
                    "/webhooks/slack/commands",
                    web::post().to(chat::slack_commands),
                )
                .route(
                    "/webhooks/slack/interactions",
                    web::post().to(chat::slack_interactions),
                )
                .route(
                    "/projects/{slug}/statement",
                    web::get().to(money::statement),
                )
                .route("/me/payouts/onboarding", web::post().to(money::onboarding))
                .route(
                    "/projects/{slug}/payouts/onboarding",
                    web::post().to(money::project_onboarding),
                ),
        );
}

/// Runs password hashing on the blocking pool, at most
/// [`AppState::hashing`]'s permits at once, without a database connection.
pub async fn hashing<T: Send + 'static>(
    state: &AppState,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, AppError> {
    let _permit = state
        .hashing
        .acquire()
        .await
        .map_err(|_| AppError::Unavailable)?;
    Ok(web::block(f).await?)
}

/// Answers for any path no route matches.
pub async fn not_found() -> Result<HttpResponse, AppError> {
    Err(AppError::not_found("resource"))
}

/// 200 `{"status":"ok"}` when the database answers, else 503.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "database reachable"), (status = 503, body = Problem)))]
pub async fn healthz(state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    state
        .db(|conn| {
            conn.batch_execute("SELECT 1")?;
            Ok(())
        })
        .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"status": "ok"})))
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text exposition format", content_type = "text/plain")))]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let pool = state.pool.state();
    let body = state.metrics.render(&[
        (
            "guildhall_db_pool_connections",
            "Open database connections.",
            f64::from(pool.connections),
        ),
        (
            "guildhall_db_pool_idle_connections",
            "Idle database connections.",
            f64::from(pool.idle_connections),
        ),
    ]);
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(body)
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "operations",
    responses((status = 200, description = "OpenAPI 3.1 document")))]
pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}
