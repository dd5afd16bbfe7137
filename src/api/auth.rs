//! `/auth/*` and `/me`.

use super::views::{MeView, Membership, TokenPair, UserView};
use crate::auth::{password, AuthUser};
use crate::domain::{helpers, sessions, users};
use crate::error::ErrorCode;
use crate::error::{AppError, AppResult, Problem};
use crate::state::AppState;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use utoipa::ToSchema;

/// Registration body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RegisterBody {
    /// Unique (case-insensitively); `local@domain.tld`, at most 254 characters.
    #[schema(max_length = 254, pattern = r"^\s*[^@\s]+@[^@\s]+\.[^@\s]+\s*$")]
    pub email: String,
    /// 12 to 1024 characters.
    #[schema(min_length = 12, max_length = 1024)]
    pub password: String,
    /// Public name, 1 to 100 characters (not counting surrounding spaces).
    #[schema(min_length = 1, max_length = 100, pattern = r"\S")]
    pub display_name: String,
}

/// Login body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginBody {
    /// Email, any case.
    pub email: String,
    /// Password.
    pub password: String,
}

/// Body carrying a refresh token.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RefreshBody {
    /// The refresh token from login or the last refresh.
    pub refresh_token: String,
}

/// Create an account.
#[utoipa::path(post, path = "/api/v1/auth/register", tag = "accounts", request_body = RegisterBody,
    responses((status = 201, body = UserView), (status = 409, body = Problem, description = "email taken"),
              (status = 422, body = Problem),
              (status = 429, body = Problem, description = "too many registrations from this address; see Retry-After")))]
pub async fn register(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<RegisterBody>,
) -> AppResult<HttpResponse> {
    let body = body.into_inner();
    let user = register_account(
        &state,
        &body.email,
        body.password,
        &body.display_name,
        &client_address(&req),
    )
    .await?;
    Ok(HttpResponse::Created().json(UserView::from(&user)))
}

/// Validates and creates an account under the per-address registration
/// limit. Shared by the API and the web app's registration form.
pub async fn register_account(
    state: &AppState,
    email: &str,
    password: String,
    display_name: &str,
    address: &str,
) -> AppResult<users::User> {
    users::validate_registration(email, &password, display_name)?;
    let address_key = format!("address:{address}");
    if let Err(wait) = state
        .registrations
        .reserve(&[(address_key.as_str(), state.config.register_max_per_address)])
    {
        return Err(AppError::TooManyRequests {
            retry_after_secs: wait.as_secs().max(1),
            detail: "too many registrations from this address; try again later".into(),
        });
    }
    let owned = email.to_owned();
    let taken = state
        .db(move |conn| Ok(users::find_by_email(conn, &owned)?.is_some()))
        .await?;
    if taken {
        return Err(AppError::conflict(
            ErrorCode::EmailTaken,
            "an account with this email already exists",
        ));
    }
    let hash = super::hashing(state, move || password::hash(&password))
        .await?
        .map_err(AppError::internal)?;
    let (email, name) = (email.to_owned(), display_name.to_owned());
    // The account and the mail that verifies its address, together.
    let user = state
        .db(move |conn| {
            crate::db::write_tx(conn, |conn| {
                let user = users::create(conn, &email, &name, Some(&hash), false)?;
                guildhall_jobs::BackgroundJob::enqueue(
                    &crate::job_payloads::SendVerificationEmail { user_id: user.id },
                    conn,
                )?;
                Ok(user)
            })
        })
        .await?;
    tracing::info!(user_id = user.id, "user registered");
    Ok(user)
}

/// The client's address, as the rate limits key it.
pub fn client_address(req: &HttpRequest) -> String {
    req.peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|| "unknown".into())
}

async fn issue_pair(
    state: &web::Data<AppState>,
    user_id: i64,
    refresh_token: String,
) -> AppResult<TokenPair> {
    Ok(TokenPair {
        access_token: state.tokens.issue_access(user_id)?,
        refresh_token,
        token_type: "Bearer".into(),
        expires_in: state.tokens.access_ttl.as_secs(),
    })
}

/// Log in with email and password.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "accounts", request_body = LoginBody,
    responses((status = 200, body = TokenPair), (status = 401, body = Problem),
              (status = 429, body = Problem, description = "too many failed logins; see Retry-After")))]
pub async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<LoginBody>,
) -> AppResult<web::Json<TokenPair>> {
    let body = body.into_inner();
    let (user_id, refresh) =
        password_login(&state, &body.email, body.password, &client_address(&req)).await?;
    issue_pair(&state, user_id, refresh).await.map(web::Json)
}

/// Checks an email and password under the failed-login limits and starts a
/// refresh-token family: the user and the family's first token. Shared by
/// the API and the web app's sign-in form.
pub async fn password_login(
    state: &AppState,
    email: &str,
    password: String,
    address: &str,
) -> AppResult<(i64, String)> {
    let account = users::normalize_email(email);
    // Refused: this address guessing this account, or this address
    // guessing at all. Never the account as such, or a stranger's wrong
    // passwords would lock its owner out; guesses on it from everywhere
    // only slow it down.
    let pair_key = format!("account:{account}:address:{address}");
    let address_key = format!("address:{address}");
    let account_key = format!("account:{account}");
    let limits = [
        (pair_key.as_str(), state.config.login_max_failures_account),
        (
            address_key.as_str(),
            state.config.login_max_failures_address,
        ),
    ];
    // Count the attempt before checking the password, atomically, so that
    // concurrent guesses cannot all pass the limit; forgiven on success.
    if let Err(wait) = state.login_failures.reserve(&limits) {
        return Err(AppError::TooManyRequests {
            retry_after_secs: wait.as_secs().max(1),
            detail: "too many failed logins; try again later".into(),
        });
    }
    if state
        .login_failures
        .blocked(&account_key, state.config.login_max_failures_account)
        .is_some()
    {
        actix_web::rt::time::sleep(std::time::Duration::from_secs(1)).await;
    }
    let email = email.to_owned();
    let user = state
        .db(move |conn| Ok(users::find_by_email(conn, &email)?.filter(|u| u.can_login)))
        .await?;
    let stored = user.as_ref().and_then(|u| u.password_hash.clone());
    // The hash runs without holding a database connection, bounded by a semaphore.
    let ok = super::hashing(state, move || {
        password::verify(&password, stored.as_deref())
    })
    .await?;
    let Some(user_id) = user.filter(|_| ok).map(|u| u.id) else {
        state.login_failures.record(&account_key);
        return Err(AppError::Unauthorized("invalid email or password".into()));
    };
    let ttl = state.tokens.refresh_ttl;
    let refresh = state
        .db(move |conn| sessions::start(conn, user_id, ttl))
        .await?;
    state.login_failures.forgive(&address_key);
    state.login_failures.clear(&pair_key);
    tracing::info!(user_id, "user logged in");
    Ok((user_id, refresh))
}

/// Exchange a refresh token for a new pair; the presented token is spent.
/// Presenting a spent token revokes every token of its family.
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "accounts", request_body = RefreshBody,
    responses((status = 200, body = TokenPair), (status = 401, body = Problem)))]
pub async fn refresh(
    state: web::Data<AppState>,
    body: web::Json<RefreshBody>,
) -> AppResult<web::Json<TokenPair>> {
    let presented = body.into_inner().refresh_token;
    match state
        .db(move |conn| sessions::rotate(conn, &presented))
        .await?
    {
        sessions::Rotation::Rotated { user_id, token } => {
            issue_pair(&state, user_id, token).await.map(web::Json)
        }
        sessions::Rotation::Reused => Err(AppError::Unauthorized(
            "this refresh token was already used; all sessions from its login were revoked".into(),
        )),
        sessions::Rotation::Invalid => Err(AppError::Unauthorized(
            "invalid or expired refresh token".into(),
        )),
    }
}

/// Log out: revoke the refresh token's whole family.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "accounts", request_body = RefreshBody,
    responses((status = 204, description = "revoked (also for unknown tokens)")))]
pub async fn logout(
    state: web::Data<AppState>,
    body: web::Json<RefreshBody>,
) -> AppResult<HttpResponse> {
    let presented = body.into_inner().refresh_token;
    if let Some(user_id) = state
        .db(move |conn| sessions::logout(conn, &presented))
        .await?
    {
        tracing::info!(user_id, "user logged out");
    }
    Ok(HttpResponse::NoContent().finish())
}

/// The current user, with roles and memberships.
#[utoipa::path(get, path = "/api/v1/me", tag = "accounts", security(("bearer" = [])),
    responses((status = 200, body = MeView), (status = 401, body = Problem)))]
pub async fn me(state: web::Data<AppState>, user: AuthUser) -> AppResult<web::Json<MeView>> {
    state
        .db(move |conn| {
            let u = users::get(conn, user.id)?;
            let mut memberships = Vec::new();
            use crate::db::schema::{project_maintainers as pm, projects as p};
            use diesel::prelude::*;
            let maintained: Vec<String> = pm::table
                .inner_join(p::table)
                .filter(pm::user_id.eq(user.id))
                .select(p::slug)
                .order(p::slug)
                .load(conn)?;
            for slug in maintained {
                memberships.push(Membership {
                    project: slug,
                    role: "maintainer".into(),
                    tier: None,
                    status: None,
                });
            }
            for h in helpers::of_user(conn, user.id)? {
                let slug: String = p::table.find(h.project_id).select(p::slug).first(conn)?;
                memberships.push(Membership {
                    project: slug,
                    role: "helper".into(),
                    tier: Some(h.tier),
                    status: Some(h.status),
                });
            }
            let mut roles = vec!["user".to_owned()];
            if u.is_admin {
                roles.push("admin".into());
            }
            Ok(MeView {
                id: u.id,
                email: u.email,
                display_name: u.display_name,
                roles,
                email_verified: u.email_verified_at.is_some(),
                memberships,
                created_at: super::views::utc(u.created_at),
            })
        })
        .await
        .map(web::Json)
}
