//! `POST /webhooks/stripe`.

use crate::error::ErrorCode;
use crate::error::{AppError, AppResult, Problem};
use crate::payments::stripe_webhook::{parse_event, verify, ParseError, TOLERANCE_SECS};
use crate::state::AppState;
use actix_web::{web, HttpRequest};
use serde::Serialize;
use utoipa::ToSchema;

/// What the webhook did.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookResult {
    /// Always true for a verified event.
    pub received: bool,
    /// What was applied (`duplicate delivery; already applied` on a repeat).
    pub outcome: String,
}

/// Stripe events, verified by `Stripe-Signature` and applied once per event id.
#[utoipa::path(post, path = "/api/v1/webhooks/stripe", tag = "money",
    params(("Stripe-Signature" = String, Header, description = "t=…,v1=…")),
    request_body(content = Object, description = "a Stripe event"),
    responses((status = 200, body = WebhookResult), (status = 400, body = Problem, description = "bad signature or body"),
              (status = 404, body = Problem, description = "webhooks not configured")))]
pub async fn stripe(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> AppResult<web::Json<WebhookResult>> {
    let Some(secret) = state.config.stripe_webhook_secret.clone() else {
        return Err(AppError::not_found("stripe webhook endpoint"));
    };
    let header = req
        .headers()
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok());
    if let Err(e) = verify(
        &secret.0,
        header,
        &body,
        chrono::Utc::now().timestamp(),
        TOLERANCE_SECS,
    ) {
        tracing::warn!(reason = %e, "rejected a Stripe webhook delivery");
        return Err(AppError::bad_request(
            ErrorCode::InvalidSignature,
            e.to_string(),
        ));
    }
    let mut parsed = parse_event(&body).map_err(|e| match e {
        ParseError::NotJson => AppError::bad_request(ErrorCode::InvalidJson, e.to_string()),
        ParseError::Missing(field) => AppError::field(field, e.to_string()),
    })?;
    // A paid invoice names its payment only when expanded: the gateway is
    // asked (no transaction open meanwhile); without an answer Stripe
    // delivers again later.
    if let crate::payments::PaymentEvent::InvoicePaid {
        invoice_id,
        payment_id: payment_id @ None,
        amount_paid,
        ..
    } = &mut parsed.event
    {
        if *amount_paid > 0 {
            let gateway = state.gateway.clone();
            let invoice = invoice_id.clone();
            let found = state
                .blocking(move |_| {
                    gateway.invoice_payment(&invoice).map_err(|e| {
                        tracing::warn!(error = %e, "could not ask Stripe for an invoice's payment");
                        AppError::Unavailable
                    })
                })
                .await?;
            *payment_id = found;
        }
    }
    let outcome = state
        .db(move |conn| {
            crate::domain::money::apply_payment_event(
                conn,
                "stripe",
                &parsed.id,
                &parsed.kind,
                &parsed.event,
            )
        })
        .await?;
    Ok(web::Json(WebhookResult {
        received: true,
        outcome,
    }))
}

/// What a GitHub delivery did.
#[derive(Debug, Serialize, ToSchema)]
pub struct GithubResult {
    /// `pong`, `installed`, `removed`, `repositories`, `import_queued`,
    /// `withdraw_queued`, `not_allowed` (a command from someone who may not
    /// give it) or `ignored`.
    pub outcome: String,
    /// Projects newly linked to their repository by this delivery.
    pub linked_projects: Vec<i64>,
}

/// Reads a request body up to `limit` bytes (413 beyond).
pub(crate) async fn read_limited(
    mut payload: web::Payload,
    limit: usize,
) -> AppResult<web::BytesMut> {
    use futures_util::StreamExt as _;
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            AppError::bad_request(ErrorCode::InvalidBody, format!("reading the body: {e}"))
        })?;
        if body.len() + chunk.len() > limit {
            return Err(AppError::PayloadTooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// GitHub App events: `X-Hub-Signature-256` verified over the raw body
/// before anything is parsed, each `X-GitHub-Delivery` applied once (a
/// replay is 409 and changes nothing). Installations record which
/// repositories the app covers and link each to the one project whose
/// `repo_url` names it. Counted by outcome in `/metrics`.
#[utoipa::path(post, path = "/api/v1/webhooks/github", tag = "projects",
    params(("X-Hub-Signature-256" = String, Header, description = "sha256=<hex HMAC of the body>"),
           ("X-GitHub-Event" = String, Header, description = "the event name"),
           ("X-GitHub-Delivery" = String, Header, description = "the delivery's id")),
    request_body(content = Object, description = "a GitHub webhook payload"),
    responses((status = 200, body = GithubResult),
              (status = 400, body = Problem, description = "not JSON, or a header missing"),
              (status = 401, body = Problem, description = "bad or missing signature"),
              (status = 404, body = Problem, description = "the GitHub App is not configured"),
              (status = 409, body = Problem, description = "a replayed delivery"),
              (status = 413, body = Problem, description = "body over 5 MiB"),
              (status = 422, body = Problem, description = "a field missing, or an unknown installation")))]
pub async fn github(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> AppResult<web::Json<GithubResult>> {
    use crate::channels::github;
    let Some(secret) = state.config.github_webhook_secret.clone() else {
        return Err(AppError::not_found("github webhook endpoint"));
    };
    let count = |outcome: &'static str| state.metrics.inbound("github", outcome);
    let body = match read_limited(payload, github::MAX_BYTES).await {
        Ok(b) => b,
        Err(e) => {
            count("oversize");
            return Err(e);
        }
    };
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    if let Err(e) = github::verify(&secret.0, header("x-hub-signature-256").as_deref(), &body) {
        count("bad_signature");
        tracing::warn!(reason = %e, "rejected a GitHub webhook delivery");
        return Err(AppError::Unauthorized(e.to_string().into()));
    }
    let (Some(event), Some(delivery)) = (header("x-github-event"), header("x-github-delivery"))
    else {
        count("malformed");
        return Err(AppError::bad_request(
            ErrorCode::InvalidBody,
            "X-GitHub-Event and X-GitHub-Delivery are required",
        ));
    };
    let parsed = github::parse(&event, &body).map_err(|e| {
        count("malformed");
        match e {
            github::ParseError::NotJson => {
                AppError::bad_request(ErrorCode::InvalidJson, e.to_string())
            }
            github::ParseError::Missing(field) => AppError::field(field, e.to_string()),
        }
    })?;
    let app_ready = state.config.github_app.is_some();
    let applied = state
        .db(move |conn| github::apply(conn, &delivery, &body, &parsed, app_ready))
        .await;
    match applied {
        Ok(a) => {
            count(a.outcome);
            Ok(web::Json(GithubResult {
                outcome: a.outcome.to_owned(),
                linked_projects: a.linked,
            }))
        }
        Err(e) => {
            count(match &e {
                AppError::Conflict { .. } => "duplicate",
                AppError::Validation(_) => "unknown_installation_or_project",
                _ => "failed",
            });
            Err(e)
        }
    }
}
