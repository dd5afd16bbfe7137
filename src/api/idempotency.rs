//! `Idempotency-Key` on the requests that move money: a retry with the
//! same key and request replays the first answer; with another request it
//! is 422 `idempotency_mismatch`; while the first still runs it is 409.
//!
//! A request first claims its key with a short lease. Handlers store their
//! answer through the [`Claim`] in the same transaction as their effect, so
//! an effect never commits without its answer; the effects that span a
//! gateway call are keyed by the request themselves (a bounty remembers the
//! key that made it), so a retry carries on where the first stopped. A key
//! whose request died (no answer, lease over) is taken over by the next
//! retry instead of answering 409 for ever.

use crate::db::schema::idempotency_keys as ik;
use crate::db::DbConnection;
use crate::domain::now;
use crate::error::ErrorCode;
use crate::error::{AppError, AppResult, FieldError};
use crate::state::AppState;
use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError};
use diesel::prelude::*;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::future::{ready, Future, Ready};

/// How long a claimed key waits for its request's answer before a retry may
/// take it over: longer than the slowest request can run (two waits for a
/// pooled connection and a gateway call, each bounded by its timeout).
pub const LEASE: chrono::Duration = chrono::Duration::seconds(120);

/// The validated `Idempotency-Key` header, if sent (1 to 255 visible
/// characters; anything else is 400 `invalid_idempotency_key`).
#[derive(Debug, Clone)]
pub struct IdempotencyKey(pub Option<String>);

impl FromRequest for IdempotencyKey {
    type Error = AppError;
    type Future = Ready<Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let Some(raw) = req.headers().get("idempotency-key") else {
            return ready(Ok(IdempotencyKey(None)));
        };
        ready(
            raw.to_str()
                .ok()
                .filter(|k| (1..=255).contains(&k.len()))
                .map(|k| IdempotencyKey(Some(k.to_owned())))
                .ok_or_else(|| {
                    AppError::bad_request(
                        ErrorCode::InvalidIdempotencyKey,
                        "Idempotency-Key must be 1 to 255 visible characters",
                    )
                }),
        )
    }
}

/// A key this request holds: store the answer through it, in the
/// transaction of the effect.
#[derive(Debug, Clone)]
pub struct Claim {
    user: i64,
    key: String,
}

impl Claim {
    /// The client's key, to key effects that span a gateway call.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Records the answer to replay (once).
    pub fn store(
        &self,
        conn: &mut DbConnection,
        status: StatusCode,
        body: &str,
    ) -> QueryResult<usize> {
        diesel::update(
            ik::table
                .filter(ik::user_id.eq(self.user))
                .filter(ik::idem_key.eq(&self.key))
                .filter(ik::status_code.is_null()),
        )
        .set((
            ik::status_code.eq(Some(i32::from(status.as_u16()))),
            ik::response_body.eq(Some(body)),
            ik::locked_until.eq(None::<chrono::NaiveDateTime>),
        ))
        .execute(conn)
    }
}

/// A stored key: the request's hash, the answer (status, body) once there
/// is one, and the lease of the request that holds it.
type KeyRow = (
    String,
    Option<i32>,
    Option<String>,
    Option<chrono::NaiveDateTime>,
);

enum Start {
    Replay(i32, String),
    Run,
}

fn request_in_progress() -> AppError {
    AppError::conflict(
        ErrorCode::RequestInProgress,
        "a request with this Idempotency-Key is still running",
    )
}

/// Claims `key` for `user` and this request (`hash`), or says what to
/// replay.
fn begin(conn: &mut DbConnection, user: i64, key: &str, hash: &str) -> AppResult<Start> {
    let at = now();
    let row: Option<KeyRow> = ik::table
        .filter(ik::user_id.eq(user))
        .filter(ik::idem_key.eq(key))
        .select((
            ik::request_hash,
            ik::status_code,
            ik::response_body,
            ik::locked_until,
        ))
        .first(conn)
        .optional()?;
    match row {
        Some((stored, ..)) if stored != hash => Err(AppError::Validation(vec![FieldError::new(
            "Idempotency-Key",
            "idempotency_mismatch: this key was used with a different request",
        )])),
        Some((_, Some(status), Some(body), _)) => Ok(Start::Replay(status, body)),
        Some((_, _, _, lease)) => {
            if lease.is_some_and(|until| until > at) {
                return Err(request_in_progress());
            }
            // The request that held it died: take it over, once.
            let n = diesel::update(
                ik::table
                    .filter(ik::user_id.eq(user))
                    .filter(ik::idem_key.eq(key))
                    .filter(ik::status_code.is_null())
                    .filter(ik::locked_until.is_null().or(ik::locked_until.le(at))),
            )
            .set(ik::locked_until.eq(Some(at + LEASE)))
            .execute(conn)?;
            if n == 1 {
                Ok(Start::Run)
            } else {
                Err(request_in_progress())
            }
        }
        None => {
            let inserted = crate::per_backend!(conn, |c| diesel::insert_into(ik::table)
                .values((
                    ik::user_id.eq(user),
                    ik::idem_key.eq(key),
                    ik::request_hash.eq(hash),
                    ik::created_at.eq(at),
                    ik::locked_until.eq(Some(at + LEASE)),
                ))
                .on_conflict_do_nothing()
                .execute(c))?;
            if inserted == 0 {
                return Err(request_in_progress());
            }
            Ok(Start::Run)
        }
    }
}

/// Runs a money-moving request at most once per `Idempotency-Key` (see the
/// module). `f` gets the claim (none without a key) and should store its
/// answer through it in its effect's transaction; whatever it did not
/// store is stored afterwards (a server error is not: the key is released
/// so a retry runs again).
pub async fn idempotent<F, Fut>(
    state: &AppState,
    req: &HttpRequest,
    key: IdempotencyKey,
    user: i64,
    body: &impl Serialize,
    f: F,
) -> AppResult<HttpResponse>
where
    F: FnOnce(Option<Claim>) -> Fut,
    Fut: Future<Output = AppResult<(StatusCode, serde_json::Value)>>,
{
    let Some(key) = key.0 else {
        let (status, json) = f(None).await?;
        return Ok(HttpResponse::build(status).json(json));
    };
    let mut hasher = Sha256::new();
    hasher.update(req.method().as_str());
    hasher.update(req.path());
    hasher.update(serde_json::to_vec(body).map_err(AppError::internal)?);
    let hash = hex::encode(hasher.finalize());
    let k = key.clone();
    let start = state.db(move |conn| begin(conn, user, &k, &hash)).await?;
    if let Start::Replay(status, body) = start {
        let status =
            StatusCode::from_u16(u16::try_from(status).unwrap_or(500)).unwrap_or(StatusCode::OK);
        let content_type = if status.is_success() {
            "application/json"
        } else {
            "application/problem+json"
        };
        return Ok(HttpResponse::build(status)
            .content_type(content_type)
            .insert_header(("Idempotent-Replayed", "true"))
            .body(body));
    }
    let claim = Claim { user, key };
    let outcome = f(Some(claim.clone())).await;
    // Answers that say "try again" are not kept: a retry with the key runs.
    let transient = matches!(
        &outcome,
        Err(AppError::Conflict {
            code: ErrorCode::TicketChanged
                | ErrorCode::RequestInProgress
                | ErrorCode::PaymentFailed,
            ..
        }) | Err(AppError::TooManyRequests { .. })
    );
    let (status, text, result) = match outcome {
        Ok((status, json)) => (
            status,
            json.to_string(),
            Ok(HttpResponse::build(status).json(json)),
        ),
        Err(e) => {
            let status = e.status_code();
            (
                status,
                serde_json::to_string(&e.problem()).unwrap_or_default(),
                Err(e),
            )
        }
    };
    state
        .db(move |conn| {
            if status.is_server_error() || transient {
                // Nothing to replay: let a retry run again.
                diesel::delete(
                    ik::table
                        .filter(ik::user_id.eq(claim.user))
                        .filter(ik::idem_key.eq(&claim.key))
                        .filter(ik::status_code.is_null()),
                )
                .execute(conn)?;
            } else {
                claim.store(conn, status, &text)?;
            }
            Ok(())
        })
        .await?;
    result
}
