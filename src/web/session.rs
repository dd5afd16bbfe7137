//! The browser session and CSRF protection.
//!
//! * **Session**: the cookie `gh_session` holds a refresh token of the same
//!   families the API uses (`domain::sessions`), `HttpOnly`, `SameSite=Lax`,
//!   `Secure` when the public URL is https. Each page resumes it (one indexed
//!   lookup); a token older than the access-token lifetime is rotated, and a
//!   replaced token presented again later revokes its family, as in the API.
//!   Signing out revokes the family, so the cookie is dead everywhere.
//! * **CSRF**: a random `gh_csrf` cookie; every form carries
//!   `HMAC-SHA256(server key, cookie)` and every state-changing POST checks
//!   it (the signed double-submit cookie), plus the `Origin` (or `Referer`)
//!   when the browser sends one.

use crate::domain::sessions::{self, Resumed};
use crate::state::AppState;
use actix_web::body::MessageBody;
use actix_web::cookie::{time::Duration as CookieDuration, Cookie, SameSite};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::{web, HttpMessage, HttpRequest};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::time::Duration;

/// The session cookie (a refresh token).
pub const SESSION_COOKIE: &str = "gh_session";
/// The CSRF cookie.
pub const CSRF_COOKIE: &str = "gh_csrf";
/// How long after its rotation a replaced token may still arrive from the
/// same browser's parallel requests without counting as a leak.
const ROTATION_GRACE: Duration = Duration::from_secs(60);

/// Who is browsing, resolved once per request by [`layer`].
#[derive(Debug, Clone)]
pub struct Session {
    /// The signed-in user.
    pub user_id: Option<i64>,
    /// The token forms must carry.
    pub csrf: String,
}

impl Session {
    /// The session of a request that went through [`layer`].
    pub fn of(req: &HttpRequest) -> Session {
        req.extensions()
            .get::<Session>()
            .cloned()
            .unwrap_or(Session {
                user_id: None,
                csrf: String::new(),
            })
    }
}

fn secure(state: &AppState) -> bool {
    state.config.public_url.starts_with("https://")
}

/// A cookie with the flags every Guildhall cookie has.
pub fn cookie(
    state: &AppState,
    name: &'static str,
    value: String,
    max_age: Duration,
) -> Cookie<'static> {
    Cookie::build(name, value)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure(state))
        .max_age(CookieDuration::seconds(
            i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX),
        ))
        .finish()
}

/// The session cookie for `token`.
pub fn session_cookie(state: &AppState, token: String) -> Cookie<'static> {
    cookie(state, SESSION_COOKIE, token, state.tokens.refresh_ttl)
}

/// A cookie that removes the session from the browser.
pub fn removal(state: &AppState) -> Cookie<'static> {
    let mut c = cookie(state, SESSION_COOKIE, String::new(), Duration::ZERO);
    c.make_removal();
    c
}

fn csrf_token(state: &AppState, cookie_value: &str) -> String {
    let key = state.tokens.csrf_key();
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(b"guildhall-csrf:");
    mac.update(cookie_value.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Resolves the session and the CSRF cookie before a page runs, and sets
/// any cookie that changed on its response.
pub async fn layer(
    req: ServiceRequest,
    next: actix_web::middleware::Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return next.call(req).await;
    };
    let mut cookies = Vec::new();
    let mut user_id = None;
    if let Some(presented) = req
        .cookie(SESSION_COOKIE)
        .map(|c| c.value().to_owned())
        .filter(|v| !v.is_empty())
    {
        let rotate_after = state.tokens.access_ttl;
        let resumed = state
            .db(move |conn| sessions::resume(conn, &presented, rotate_after, ROTATION_GRACE))
            .await;
        match resumed {
            Ok(Resumed::Active { user_id: u }) => user_id = Some(u),
            Ok(Resumed::Rotated { user_id: u, token }) => {
                user_id = Some(u);
                cookies.push(session_cookie(&state, token));
            }
            Ok(Resumed::Anonymous) => cookies.push(removal(&state)),
            Err(e) => return Err(crate::web::WebError::from(e).into()),
        }
    }
    let csrf_value = match req.cookie(CSRF_COOKIE).map(|c| c.value().to_owned()) {
        Some(v) if v.len() >= 16 => v,
        _ => {
            let v = crate::auth::tokens::random_token(24);
            cookies.push(cookie(
                &state,
                CSRF_COOKIE,
                v.clone(),
                Duration::from_secs(365 * 24 * 3600),
            ));
            v
        }
    };
    req.extensions_mut().insert(Session {
        user_id,
        csrf: csrf_token(&state, &csrf_value),
    });
    let mut res = next.call(req).await?;
    for c in cookies {
        // A handler that set the same cookie (sign in, sign out) wins.
        let already = res
            .response()
            .cookies()
            .any(|existing| existing.name() == c.name());
        if !already {
            res.response_mut().add_cookie(&c)?;
        }
    }
    Ok(res)
}

/// Refuses a state-changing form whose CSRF token does not match this
/// browser's cookie, or that comes from another origin.
pub fn check_form(req: &HttpRequest, presented: &str) -> Result<(), crate::web::WebError> {
    let session = Session::of(req);
    let forbidden = || {
        crate::web::WebError::forbidden(
            "This form has expired or did not come from Guildhall. Go back, reload the page and try again.",
        )
    };
    if session.csrf.is_empty() || !ct_eq(presented.as_bytes(), session.csrf.as_bytes()) {
        return Err(forbidden());
    }
    let state = req.app_data::<web::Data<AppState>>();
    let origin = req
        .headers()
        .get("origin")
        .or_else(|| req.headers().get("referer"))
        .and_then(|v| v.to_str().ok());
    if let (Some(origin), Some(state)) = (origin, state) {
        if !same_origin(origin, &state.config.public_url, req) {
            return Err(forbidden());
        }
    }
    Ok(())
}

/// Compares every byte whatever the first difference (constant time for
/// equal lengths).
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `scheme://host[:port]` of a URL.
fn origin_of(url: &str) -> Option<&str> {
    let scheme_end = url.find("://")? + 3;
    let rest = &url[scheme_end..];
    let end = rest.find('/').map_or(url.len(), |i| scheme_end + i);
    Some(&url[..end])
}

/// Whether `origin` (an Origin or Referer value) is Guildhall's own: the
/// public URL's origin or the host this request was sent to.
fn same_origin(origin: &str, public_url: &str, req: &HttpRequest) -> bool {
    let Some(origin) = origin_of(origin) else {
        return false;
    };
    if origin_of(public_url).is_some_and(|o| o.eq_ignore_ascii_case(origin)) {
        return true;
    }
    let info = req.connection_info();
    let here = format!("{}://{}", info.scheme(), info.host());
    here.eq_ignore_ascii_case(origin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        assert_eq!(
            origin_of("https://a.example/x/y"),
            Some("https://a.example")
        );
        assert_eq!(
            origin_of("http://127.0.0.1:8080"),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(origin_of("null"), None);
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
    }
}
