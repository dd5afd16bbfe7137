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
    let parsed = parse_event(&body).map_err(|e| match e {
        ParseError::NotJson => AppError::bad_request(ErrorCode::InvalidJson, e.to_string()),
        ParseError::Missing(field) => AppError::field(field, e.to_string()),
    })?;
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
