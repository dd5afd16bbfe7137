//! `POST /api/v1/inbound/email`: reply by email. A mail server's pipe (or
//! `guildhall mail-receive`) posts each message received for the reply
//! domain, raw, with the shared secret; the domain decides what it is.

use crate::channels::email::{self, Outcome};
use crate::error::{AppError, AppResult, Problem};
use crate::state::AppState;
use actix_web::{web, HttpRequest};
use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};

/// What became of a received mail.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct InboundResult {
    /// `posted`, or why it was dropped: `oversize`, `malformed`,
    /// `auto_reply`, `bounce`, `unauthenticated`, `duplicate`,
    /// `unknown_recipient`, `bad_address`, `sender_mismatch`, `rejected`,
    /// `empty`.
    #[schema(example = "posted")]
    pub outcome: String,
    /// The ticket it was for, when known.
    pub ticket_id: Option<i64>,
    /// The message posted on the ticket.
    pub message_id: Option<i64>,
}

/// Query of the inbound endpoint.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InboundQuery {
    /// The SMTP envelope recipient (Postfix's `${recipient}`), which names
    /// the reply address even when the headers do not.
    pub recipient: Option<String>,
}

/// Receive one mail (raw RFC 822) for the reply domain. Authorized by the
/// inbound secret, checked before the body is read; every verified mail is
/// answered 200 with its outcome (dropped ones too, so the mail server does
/// not bounce them), and counted by outcome in `/metrics`.
#[utoipa::path(post, path = "/api/v1/inbound/email", tag = "accounts",
    security(("bearer" = [])), params(InboundQuery),
    request_body(content = String, content_type = "message/rfc822", description = "the message as received, headers and body"),
    responses((status = 200, body = InboundResult),
              (status = 400, body = Problem, description = "unreadable query or body"),
              (status = 401, body = Problem, description = "wrong or missing secret"),
              (status = 404, body = Problem, description = "reply by email is not configured"),
              (status = 415, body = Problem, description = "not message/rfc822")))]
pub async fn email(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<InboundQuery>,
    mut payload: web::Payload,
) -> AppResult<web::Json<InboundResult>> {
    let (Some(secret), Some(_)) = (
        state.config.inbound_email_secret.as_ref(),
        state.config.reply_domain.as_ref(),
    ) else {
        return Err(email::not_configured());
    };
    let presented = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    // Compared as digests, so the time taken says nothing about the secret.
    if Sha256::digest(presented.trim().as_bytes()) != Sha256::digest(&secret.0) {
        state
            .metrics
            .inbound("email", Outcome::Unauthorized.as_str());
        tracing::warn!("inbound mail with a wrong secret refused");
        return Err(AppError::Unauthorized(
            "the inbound mail secret is wrong or missing".into(),
        ));
    }
    let content_type = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if content_type != "message/rfc822" {
        return Err(AppError::UnsupportedMediaType(
            "send the raw message as message/rfc822".into(),
        ));
    }
    // Read at most one byte past the limit: a bigger message is dropped
    // without reading (or keeping) the rest.
    let mut raw = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            AppError::bad_request(
                crate::error::ErrorCode::InvalidBody,
                format!("reading the message: {e}"),
            )
        })?;
        raw.extend_from_slice(&chunk);
        if raw.len() > email::MAX_BYTES {
            break;
        }
    }
    // Parsed before a database connection is taken.
    let mail = state.mail.clone();
    let recipient = query.into_inner().recipient;
    let parsed = web::block(move || email::parse(&raw, &mail, recipient.as_deref())).await?;
    let mail = state.mail.clone();
    let outcome = state
        .db(move |conn| email::receive(conn, &mail, &parsed))
        .await?;
    state.metrics.inbound("email", outcome.outcome.as_str());
    if !matches!(outcome.outcome, Outcome::Posted | Outcome::Appealed) {
        tracing::info!(outcome = outcome.outcome.as_str(), ticket_id = ?outcome.ticket_id, "inbound mail dropped");
    }
    Ok(web::Json(InboundResult {
        outcome: outcome.outcome.as_str().to_owned(),
        ticket_id: outcome.ticket_id,
        message_id: outcome.message_id,
    }))
}
