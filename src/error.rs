//! The one error type of the HTTP API, rendered as `application/problem+json`
//! (RFC 9457) with a stable snake_case `code`.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use std::borrow::Cow;
use utoipa::ToSchema;

/// A field that failed validation.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
pub struct FieldError {
    /// The request field, e.g. `email` or `topics[2]`.
    pub field: String,
    /// What is wrong with it, for a person.
    pub message: String,
}

impl FieldError {
    /// A field error.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// The problem document every error response carries.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// URI naming the problem type.
    #[serde(rename = "type")]
    pub type_: String,
    /// Short summary of the problem type.
    pub title: String,
    /// HTTP status.
    #[schema(minimum = 400, maximum = 599)]
    pub status: u16,
    /// What happened in this case.
    pub detail: String,
    /// Stable machine-readable code.
    pub code: String,
    /// Field errors (422 only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

macro_rules! error_codes {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $s:literal,)+ }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name { $($(#[$vdoc])* $variant,)+ }
        impl $name {
            /// The stable code as clients see it in `code` (and in `type`).
            pub fn as_str(self) -> &'static str { match self { $($name::$variant => $s,)+ } }
            /// Every code, for documentation and tests.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];
        }
    };
}

error_codes!(
    /// The stable machine-readable codes of 400 and 409 problems (the other
    /// statuses each have one code of their own), in one place so a client
    /// can rely on the list and no handler invents a spelling.
    ErrorCode {
        /// `account_frozen`.
        AccountFrozen = "account_frozen",
        /// `already_applied`.
        AlreadyApplied = "already_applied",
        /// `already_bid`.
        AlreadyBid = "already_bid",
        /// `already_claimed`.
        AlreadyClaimed = "already_claimed",
        /// `already_rated`.
        AlreadyRated = "already_rated",
        /// `bid_not_open`.
        BidNotOpen = "bid_not_open",
        /// `already_subscribed`.
        AlreadySubscribed = "already_subscribed",
        /// `bidder_not_approved`.
        BidderNotApproved = "bidder_not_approved",
        /// `code_of_conduct_not_accepted`.
        CodeOfConductNotAccepted = "code_of_conduct_not_accepted",
        /// `conflict`.
        Conflict = "conflict",
        /// `duplicate_delivery`.
        DuplicateDelivery = "duplicate_delivery",
        /// `email_taken`.
        EmailTaken = "email_taken",
        /// `floss_proof_required`.
        FlossProofRequired = "floss_proof_required",
        /// `hold_already_resolved`.
        HoldAlreadyResolved = "hold_already_resolved",
        /// `insufficient_funds`.
        InsufficientFunds = "insufficient_funds",
        /// `invalid_body`.
        InvalidBody = "invalid_body",
        /// `invalid_cursor`.
        InvalidCursor = "invalid_cursor",
        /// `invalid_idempotency_key`.
        InvalidIdempotencyKey = "invalid_idempotency_key",
        /// `invalid_json`.
        InvalidJson = "invalid_json",
        /// `invalid_query`.
        InvalidQuery = "invalid_query",
        /// `invalid_signature`.
        InvalidSignature = "invalid_signature",
        /// `invalid_transition`.
        InvalidTransition = "invalid_transition",
        /// `no_resolver`.
        NoResolver = "no_resolver",
        /// `not_closed`.
        NotClosed = "not_closed",
        /// `not_editable`.
        NotEditable = "not_editable",
        /// `payment_failed`.
        PaymentFailed = "payment_failed",
        /// `project_unverified`.
        ProjectUnverified = "project_unverified",
        /// `request_in_progress`.
        RequestInProgress = "request_in_progress",
        /// `resolver_is_requester`.
        ResolverIsRequester = "resolver_is_requester",
        /// `slug_taken`.
        SlugTaken = "slug_taken",
        /// `ticket_cancelled`.
        TicketCancelled = "ticket_cancelled",
        /// `ticket_changed`.
        TicketChanged = "ticket_changed",
        /// `ticket_not_open`.
        TicketNotOpen = "ticket_not_open",
    }
);

/// Every way a request can fail.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// 400: the request is malformed.
    #[error("{detail}")]
    BadRequest {
        code: ErrorCode,
        detail: Cow<'static, str>,
    },
    /// 401: no valid credentials.
    #[error("{0}")]
    Unauthorized(Cow<'static, str>),
    /// 403: authenticated but not allowed.
    #[error("{0}")]
    Forbidden(Cow<'static, str>),
    /// 404: absent, or not visible to the caller.
    #[error("{0} not found")]
    NotFound(Cow<'static, str>),
    /// 409: conflicts with the current state.
    #[error("{detail}")]
    Conflict {
        code: ErrorCode,
        detail: Cow<'static, str>,
    },
    /// 413: the body is over the limit.
    #[error("request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// 415: not JSON.
    #[error("{0}")]
    UnsupportedMediaType(Cow<'static, str>),
    /// 422: field errors.
    #[error("the request has invalid fields")]
    Validation(Vec<FieldError>),
    /// 429: slow down.
    #[error("{detail}")]
    TooManyRequests {
        retry_after_secs: u64,
        detail: Cow<'static, str>,
    },
    /// 503: the database does not answer.
    #[error("the service is temporarily unavailable")]
    Unavailable,
    /// 500: a bug or an unexpected failure; logged, never shown.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

/// Result of a handler.
pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    /// 422 with a single field error.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        AppError::Validation(vec![FieldError::new(field, message)])
    }
    /// 404 for a kind of object.
    pub fn not_found(what: &'static str) -> Self {
        AppError::NotFound(Cow::Borrowed(what))
    }
    /// 403 with a reason.
    pub fn forbidden(why: &'static str) -> Self {
        AppError::Forbidden(Cow::Borrowed(why))
    }
    /// 409 with a code and a reason.
    pub fn conflict(code: ErrorCode, detail: impl Into<Cow<'static, str>>) -> Self {
        AppError::Conflict {
            code,
            detail: detail.into(),
        }
    }
    /// 400 with a code and a reason.
    pub fn bad_request(code: ErrorCode, detail: impl Into<Cow<'static, str>>) -> Self {
        AppError::BadRequest {
            code,
            detail: detail.into(),
        }
    }
    /// 500 from anything.
    pub fn internal(e: impl Into<anyhow::Error>) -> Self {
        AppError::Internal(e.into())
    }

    fn code(&self) -> &'static str {
        match self {
            AppError::BadRequest { code, .. } | AppError::Conflict { code, .. } => code.as_str(),
            AppError::Unauthorized(_) => "unauthorized",
            AppError::Forbidden(_) => "forbidden",
            AppError::NotFound(_) => "not_found",
            AppError::PayloadTooLarge { .. } => "payload_too_large",
            AppError::UnsupportedMediaType(_) => "unsupported_media_type",
            AppError::Validation(_) => "validation_failed",
            AppError::TooManyRequests { .. } => "rate_limited",
            AppError::Unavailable => "service_unavailable",
            AppError::Internal(_) => "internal_error",
        }
    }

    /// The problem document for this error.
    pub fn problem(&self) -> Problem {
        let status = self.status_code();
        let errors = match self {
            AppError::Validation(errors) => errors.clone(),
            _ => Vec::new(),
        };
        let code = self.code();
        Problem {
            type_: format!("https://guildhall.dev/problems/{}", code.replace('_', "-")),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: self.to_string(),
            code: code.to_owned(),
            errors,
        }
    }
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            AppError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            AppError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::Conflict { .. } => StatusCode::CONFLICT,
            AppError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AppError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let AppError::Internal(e) = self {
            tracing::error!(error = %format!("{e:#}"), "request failed with an internal error");
        }
        let mut builder = HttpResponse::build(self.status_code());
        builder.insert_header((header::CONTENT_TYPE, "application/problem+json"));
        match self {
            AppError::TooManyRequests {
                retry_after_secs, ..
            } => {
                builder.insert_header((header::RETRY_AFTER, retry_after_secs.to_string()));
            }
            AppError::Unauthorized(_) => {
                builder.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
            }
            AppError::Unavailable => {
                builder.insert_header((header::RETRY_AFTER, "5"));
            }
            _ => {}
        }
        builder.body(serde_json::to_string(&self.problem()).unwrap_or_default())
    }
}

impl AppError {
    /// Maps a unique-index violation to 409 `code` with `detail` (the
    /// database decided a race), any other error as usual: for `map_err`.
    pub fn on_unique(
        code: ErrorCode,
        detail: &'static str,
    ) -> impl FnOnce(diesel::result::Error) -> AppError {
        move |e| match e {
            diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _,
            ) => AppError::conflict(code, detail),
            e => e.into(),
        }
    }
}

impl From<diesel::result::Error> for AppError {
    fn from(e: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match e {
            Error::NotFound => AppError::not_found("object"),
            Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
                AppError::conflict(ErrorCode::Conflict, "the object already exists")
            }
            Error::DatabaseError(DatabaseErrorKind::ClosedConnection, _)
            | Error::BrokenTransactionManager => AppError::Unavailable,
            Error::DatabaseError(DatabaseErrorKind::Unknown, ref info)
                if is_unavailable_message(info.message()) =>
            {
                AppError::Unavailable
            }
            other => AppError::Internal(other.into()),
        }
    }
}

fn is_unavailable_message(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("database is locked")
        || m.contains("server closed the connection")
        || m.contains("connection refused")
        || m.contains("terminating connection")
}

impl From<diesel::r2d2::PoolError> for AppError {
    fn from(e: diesel::r2d2::PoolError) -> Self {
        tracing::warn!(error = %e, "database pool could not provide a connection");
        AppError::Unavailable
    }
}

impl From<actix_web::error::BlockingError> for AppError {
    fn from(e: actix_web::error::BlockingError) -> Self {
        AppError::Internal(anyhow::anyhow!("blocking task failed: {e}"))
    }
}

impl From<guildhall_jobs::EnqueueError> for AppError {
    fn from(e: guildhall_jobs::EnqueueError) -> Self {
        match e {
            guildhall_jobs::EnqueueError::Database(d) => d.into(),
            other => AppError::internal(other),
        }
    }
}

/// Turns actix's JSON extractor errors into problems: 413 over the limit,
/// 415 for a wrong content type, 400 for malformed JSON, 422 for JSON of the
/// wrong shape (naming the field where serde says which).
pub fn json_error(err: actix_web::error::JsonPayloadError, limit: usize) -> AppError {
    use actix_web::error::JsonPayloadError as J;
    match err {
        J::Overflow { .. } | J::OverflowKnownLength { .. } => AppError::PayloadTooLarge { limit },
        J::ContentType => {
            AppError::UnsupportedMediaType("expected Content-Type: application/json".into())
        }
        J::Deserialize(e) if e.is_data() => {
            let message = e.to_string();
            let field = message
                .split('`')
                .nth(1)
                .filter(|_| message.contains("field"))
                .unwrap_or("body")
                .to_owned();
            let message = message
                .split(" at line")
                .next()
                .unwrap_or(&message)
                .to_owned();
            AppError::Validation(vec![FieldError::new(field, message)])
        }
        J::Deserialize(e) => AppError::bad_request(
            ErrorCode::InvalidJson,
            format!(
                "the body is not valid JSON: {}",
                e.to_string().split(" at line").next().unwrap_or("")
            ),
        ),
        J::Payload(actix_web::error::PayloadError::Overflow) => AppError::PayloadTooLarge { limit },
        _ => AppError::bad_request(ErrorCode::InvalidBody, "the request body could not be read"),
    }
}

/// Query-string errors become 400 problems.
pub fn query_error(err: actix_web::error::QueryPayloadError) -> AppError {
    AppError::bad_request(
        ErrorCode::InvalidQuery,
        format!("invalid query string: {err}"),
    )
}

/// Path errors (e.g. a non-numeric id) become 404: there is no such object.
pub fn path_error(_err: actix_web::error::PathError) -> AppError {
    AppError::not_found("resource")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_are_distinct_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            let s = code.as_str();
            assert!(seen.insert(s), "{s} twice");
            assert!(
                !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{s}"
            );
        }
        let p = AppError::conflict(ErrorCode::TicketChanged, "x").problem();
        assert_eq!(
            (p.code.as_str(), p.type_.as_str(), p.status),
            (
                "ticket_changed",
                "https://guildhall.dev/problems/ticket-changed",
                409
            )
        );
    }
}
