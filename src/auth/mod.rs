//! Authentication: password hashing, access and refresh tokens, login rate
//! limits, and the [`AuthUser`] extractor.

pub mod password;
pub mod ratelimit;
pub mod tokens;

use crate::error::AppError;
use crate::state::AppState;
use actix_web::{dev::Payload, http::header, web, FromRequest, HttpRequest};
use std::future::{ready, Ready};

/// The caller, proven by a valid access token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthUser {
    /// The user's id.
    pub id: i64,
}

impl FromRequest for AuthUser {
    type Error = AppError;
    type Future = Ready<Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(authenticate(req))
    }
}

/// An optional caller: `None` without an `Authorization` header; an invalid
/// token is still rejected with 401.
#[derive(Debug, Clone, Copy)]
pub struct MaybeUser(pub Option<AuthUser>);

impl FromRequest for MaybeUser {
    type Error = AppError;
    type Future = Ready<Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        if req.headers().get(header::AUTHORIZATION).is_none() {
            return ready(Ok(MaybeUser(None)));
        }
        ready(authenticate(req).map(|u| MaybeUser(Some(u))))
    }
}

fn authenticate(req: &HttpRequest) -> Result<AuthUser, AppError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("application state is missing")))?;
    let value = req
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or_else(|| AppError::Unauthorized("missing Authorization header".into()))?;
    let value = value
        .to_str()
        .map_err(|_| AppError::Unauthorized("malformed Authorization header".into()))?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .ok_or_else(|| AppError::Unauthorized("expected `Authorization: Bearer <token>`".into()))?;
    let claims = state.tokens.verify_access(token.trim())?;
    Ok(AuthUser { id: claims.user_id })
}
