//! Sign in with GitHub (the OAuth web flow), linking a project's repository
//! as its administrator, and turning a ticket into a GitHub issue.
//!
//! The flow starts with a GET (a form could not follow the redirect to
//! GitHub under the pages' `form-action 'self'`): a random `state` goes to
//! GitHub and into a short-lived `HttpOnly` cookie with what the flow is for;
//! the callback accepts only the same `state` from the same browser, spends
//! the cookie, and trades the code for the user's token, which is used for
//! this request only and never stored.

use super::pages::Page;
use super::pages::{local_path, redirect, signed_in};
use super::session::{self, Session};
use super::WebError;
use crate::channels::github_identity::{self, GithubUser, SignIn};
use crate::error::AppError;
use crate::state::AppState;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use std::time::Duration;

/// The cookie that carries the flow's state.
const FLOW_COOKIE: &str = "gh_oauth";
/// How long a person may take on GitHub's page.
const FLOW_TTL: Duration = Duration::from_secs(600);

fn oauth(
    state: &AppState,
) -> Result<std::sync::Arc<crate::integrations::github::OAuthApp>, WebError> {
    state
        .github_oauth
        .clone()
        .ok_or_else(|| WebError(AppError::not_found("page")))
}

fn callback_uri(state: &AppState) -> String {
    format!(
        "{}/auth/github/callback",
        state.config.public_url.trim_end_matches('/')
    )
}

/// Sends the browser to GitHub for a flow `purpose` (`in`, or `link:{id}`),
/// coming back to `next`.
fn begin(state: &AppState, purpose: &str, next: &str) -> Result<HttpResponse, WebError> {
    let oauth = oauth(state)?;
    let flow = crate::auth::tokens::random_token(24);
    let mut res = redirect(&oauth.authorize_url(&flow, &callback_uri(state)));
    let value = format!("{flow} {purpose} {next}");
    let _ = res.add_cookie(&session::cookie(state, FLOW_COOKIE, value, FLOW_TTL));
    Ok(res)
}

/// `?next=&csrf=`.
#[derive(Debug, Deserialize)]
pub struct StartQuery {
    next: Option<String>,
    /// The page's CSRF token: only our own pages start a flow (another
    /// site could otherwise link a signed-in visitor's GitHub account, or
    /// prove a repository with their rights, behind their back).
    csrf: Option<String>,
}

/// `GET /auth/github`: sign in (or, signed in, link GitHub).
pub async fn start(
    state: web::Data<AppState>,
    req: HttpRequest,
    q: web::Query<StartQuery>,
) -> Page {
    session::check_form(&req, q.csrf.as_deref().unwrap_or_default())?;
    begin(&state, "in", &local_path(q.next.as_deref()))
}

/// `GET /p/{slug}/github/link`: a maintainer proves they administer the
/// project's repository.
pub async fn link_repository(
    state: web::Data<AppState>,
    req: HttpRequest,
    slug: web::Path<String>,
    q: web::Query<StartQuery>,
) -> Page {
    let slug = slug.into_inner();
    let Some(user) = Session::of(&req).user_id else {
        return Ok(redirect(&format!("/login?next=/p/{slug}/settings")));
    };
    session::check_form(&req, q.csrf.as_deref().unwrap_or_default())?;
    let project = {
        let slug = slug.clone();
        state
            .db(move |conn| {
                let p = crate::domain::projects::by_slug(conn, &slug)?;
                crate::domain::projects::require_maintainer(conn, p.id, user)?;
                Ok(p.id)
            })
            .await?
    };
    begin(
        &state,
        &format!("link:{project}"),
        &format!("/p/{slug}/settings"),
    )
}

/// `?repo=&csrf=`.
#[derive(Debug, Deserialize)]
pub struct FlossQuery {
    #[serde(default)]
    repo: String,
    csrf: Option<String>,
}

/// `GET /me/floss/github`: the signed-in person proves, with their own
/// GitHub token, that they maintain the public repository `repo`.
pub async fn floss_start(
    state: web::Data<AppState>,
    req: HttpRequest,
    q: web::Query<FlossQuery>,
) -> Page {
    if Session::of(&req).user_id.is_none() {
        return Ok(redirect("/login?next=/me/floss"));
    }
    session::check_form(&req, q.csrf.as_deref().unwrap_or_default())?;
    let repo = q.repo.trim();
    if !crate::domain::floss::valid_repository(repo) {
        return Err(WebError(AppError::field(
            "repo",
            "Name the repository as owner/name, e.g. rust-lang/rust.",
        )));
    }
    begin(&state, &format!("floss:{repo}"), "/me/floss")
}

/// `?csrf=`.
#[derive(Debug, Deserialize)]
pub struct CsrfQuery {
    csrf: Option<String>,
}

/// `GET /handovers/{id}/github`: the new maintainer of a handover proves,
/// with their own GitHub token, that they administer or maintain the
/// project's repository.
pub async fn handover_start(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<i64>,
    q: web::Query<CsrfQuery>,
) -> Page {
    let id = id.into_inner();
    let Some(user) = Session::of(&req).user_id else {
        return Ok(redirect(&format!("/login?next=/handovers/{id}")));
    };
    session::check_form(&req, q.csrf.as_deref().unwrap_or_default())?;
    state
        .db(move |conn| crate::domain::handovers::visible(conn, id, user))
        .await?;
    begin(
        &state,
        &format!("handover:{id}"),
        &format!("/handovers/{id}"),
    )
}

/// What GitHub sends back.
#[derive(Debug, Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

fn refused(detail: impl Into<std::borrow::Cow<'static, str>>) -> WebError {
    WebError(AppError::bad_request(
        crate::error::ErrorCode::Conflict,
        detail,
    ))
}

/// `GET /auth/github/callback`.
pub async fn callback(
    state: web::Data<AppState>,
    req: HttpRequest,
    q: web::Query<CallbackQuery>,
) -> Page {
    let q = q.into_inner();
    let cookie = req.cookie(FLOW_COOKIE).map(|c| c.value().to_owned());
    let result = finish(&state, &req, q, cookie).await;
    // The flow's cookie is spent whatever happened.
    let mut spent = session::cookie(&state, FLOW_COOKIE, String::new(), Duration::ZERO);
    spent.make_removal();
    match result {
        Ok(mut res) => {
            let _ = res.add_removal_cookie(&spent);
            Ok(res)
        }
        Err(e) => {
            let mut res = actix_web::ResponseError::error_response(&e);
            let _ = res.add_removal_cookie(&spent);
            Ok(res)
        }
    }
}

async fn finish(
    state: &web::Data<AppState>,
    req: &HttpRequest,
    q: CallbackQuery,
    cookie: Option<String>,
) -> Result<HttpResponse, WebError> {
    let oauth = oauth(state)?;
    let stale = || {
        refused(
            "This GitHub sign-in expired or was not started in this browser. Please start again.",
        )
    };
    let cookie = cookie.ok_or_else(stale)?;
    let mut parts = cookie.splitn(3, ' ');
    let (flow, purpose, next) = match (parts.next(), parts.next(), parts.next()) {
        (Some(f), Some(p), Some(n)) => (f.to_owned(), p.to_owned(), local_path(Some(n))),
        _ => return Err(stale()),
    };
    let presented = q.state.unwrap_or_default();
    if flow.is_empty() || !session::ct_eq(flow.as_bytes(), presented.as_bytes()) {
        return Err(stale());
    }
    if q.error.is_some() {
        return Ok(redirect(&next));
    }
    let code = q.code.filter(|c| !c.is_empty()).ok_or_else(stale)?;
    let redirect_uri = callback_uri(state);
    let session_user = Session::of(req).user_id;
    let floss_repo = purpose.strip_prefix("floss:").map(str::to_owned);
    let handover = match purpose.strip_prefix("handover:") {
        Some(id) => Some(id.parse::<i64>().map_err(|_| stale())?),
        None => None,
    };
    let link_project = match purpose.as_str() {
        "in" => None,
        _ if floss_repo.is_some() => None,
        _ if handover.is_some() => None,
        p => Some(
            p.strip_prefix("link:")
                .and_then(|id| id.parse::<i64>().ok())
                .ok_or_else(stale)?,
        ),
    };
    if (link_project.is_some() || floss_repo.is_some() || handover.is_some())
        && session_user.is_none()
    {
        return Ok(redirect(&format!("/login?next={next}")));
    }
    let handover_project = match (handover, session_user) {
        (Some(id), Some(user)) => Some(
            state
                .db(move |conn| {
                    crate::domain::handovers::visible(conn, id, user).map(|x| x.project_id)
                })
                .await?,
        ),
        _ => None,
    };
    let repo_name = match link_project.or(handover_project) {
        None if floss_repo.is_some() => floss_repo.clone(),
        Some(p) => {
            let project = state
                .db(move |conn| crate::domain::projects::by_id(conn, p))
                .await?;
            Some(
                crate::channels::github::repo_of_url(&project.repo_url).ok_or_else(|| {
                    refused("The project's repository URL is not a github.com repository.")
                })?,
            )
        }
        None => None,
    };
    // GitHub, with the user's token, off the async workers.
    let fetched = web::block(move || -> anyhow::Result<_> {
        let token = oauth.exchange(&code, &redirect_uri)?;
        let who = oauth.user(&token)?;
        let email = oauth.verified_email(&token)?;
        let repo = match &repo_name {
            Some(name) => oauth.repository(&token, name)?,
            None => None,
        };
        Ok((who, email, repo, repo_name))
    })
    .await
    .map_err(|e| WebError(AppError::Internal(anyhow::anyhow!("{e}"))))?;
    let (who, email, repo, repo_name) = match fetched {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(error = %e, "GitHub sign-in failed");
            return Err(refused(
                "GitHub did not confirm the sign-in (the code may have expired). Please start again.",
            ));
        }
    };
    if let (Some(name), Some(user)) = (floss_repo, session_user) {
        let repo =
            repo.ok_or_else(|| refused(format!("GitHub did not show you the repository {name}.")))?;
        let login = who.login.clone();
        state
            .db(move |conn| crate::domain::floss::record(conn, user, &login, &repo))
            .await
            .map_err(|e| match e {
                AppError::Conflict { detail, .. } => refused(detail),
                other => WebError(other),
            })?;
        return Ok(redirect("/me/floss?notice=proved"));
    }
    if let (Some(id), Some(user)) = (handover, session_user) {
        let repo = repo.ok_or_else(|| {
            refused(format!(
                "GitHub did not show you the repository {}.",
                repo_name.unwrap_or_default()
            ))
        })?;
        state
            .db(move |conn| crate::domain::handovers::record_repo_proof(conn, id, user, &repo))
            .await
            .map_err(|e| match e {
                AppError::Conflict { detail, .. } => refused(detail),
                other => WebError(other),
            })?;
        return Ok(redirect(&format!("/handovers/{id}?notice=verified")));
    }
    if let (Some(project), Some(user)) = (link_project, session_user) {
        // The proof is the maintainer's own token; nothing else of theirs
        // changes (linking their GitHub account is a separate choice).
        let repo = repo.ok_or_else(|| {
            refused(format!(
                "GitHub did not show you the repository {}.",
                repo_name.unwrap_or_default()
            ))
        })?;
        state
            .db(move |conn| github_identity::link_by_admin(conn, project, user, &repo))
            .await
            .map_err(|e| match e {
                AppError::Conflict { detail, .. } => refused(detail),
                other => WebError(other),
            })?;
        tracing::info!(project, user, "repository linked by its administrator");
        return Ok(redirect(&next));
    }
    let gh = GithubUser {
        id: who.id,
        login: who.login,
        name: who.name,
        email,
    };
    let outcome = state
        .db(move |conn| github_identity::sign_in(conn, session_user, &gh))
        .await?;
    match outcome {
        SignIn::SignedIn(user) => {
            let ttl = state.tokens.refresh_ttl;
            let token = state
                .db(move |conn| crate::domain::sessions::start(conn, user, ttl))
                .await?;
            tracing::info!(user_id = user, "signed in with GitHub");
            Ok(signed_in(state, token, &next))
        }
        SignIn::Linked(user) => {
            tracing::info!(user_id = user, "GitHub linked");
            Ok(redirect(&next))
        }
    }
}

/// What a maintainer sees for turning a ticket into a GitHub issue.
pub struct Export {
    /// The repository a button opens the issue in (the App is installed).
    pub one_click: Option<String>,
    /// Otherwise a prefilled `issues/new` link.
    pub prefilled: Option<String>,
    /// Why neither is offered, if so.
    pub why_not: Option<&'static str>,
}

/// The export offer for ticket `t` of project `p`.
pub fn export_for(
    conn: &mut crate::db::DbConnection,
    t: &crate::domain::tickets::Ticket,
    p: &crate::domain::projects::Project,
    public_url: &str,
    github_web: &str,
    app_configured: bool,
) -> Result<Export, AppError> {
    let none = |why| Export {
        one_click: None,
        prefilled: None,
        why_not: Some(why),
    };
    if t.is_private() {
        return Ok(none("Private tickets do not become public GitHub issues."));
    }
    let target = crate::channels::github_export::issue_target(conn, p.id)?;
    if let (true, true, Some((_, repo, Some(_)))) =
        (app_configured, p.verified_at.is_some(), &target)
    {
        return Ok(Export {
            one_click: Some(repo.clone()),
            prefilled: None,
            why_not: None,
        });
    }
    let repo = target
        .map(|(_, r, _)| r)
        .or_else(|| crate::channels::github::repo_of_url(&p.repo_url));
    let Some(repo) = repo else {
        return Ok(none("The project's repository is not on GitHub."));
    };
    let body = crate::channels::github_export::issue_body(t, public_url);
    // Browsers and GitHub cut long URLs: the prefilled body stays short.
    let body: String = if body.chars().count() > 4_000 {
        let link = format!(
            "\n\n…\n\n---\nGuildhall ticket: {}/t/{}",
            public_url.trim_end_matches('/'),
            t.id
        );
        t.body.chars().take(3_500).collect::<String>() + &link
    } else {
        body
    };
    let query = serde_urlencoded::to_string([("title", t.title.as_str()), ("body", body.as_str())])
        .unwrap_or_default();
    Ok(Export {
        one_click: None,
        prefilled: Some(format!("{github_web}/{repo}/issues/new?{query}")),
        why_not: None,
    })
}

/// `POST /t/{id}/github-issue`: opens the ticket's issue with the App.
pub async fn export_action(state: &AppState, ticket: i64, user: i64) -> Result<(), AppError> {
    let app = state
        .github
        .clone()
        .ok_or_else(|| AppError::not_found("page"))?;
    let public_url = state.config.public_url.clone();
    state
        .blocking(move |pool| {
            crate::channels::github_export::export(pool, &app, ticket, user, &public_url)
                .map(|_| ())
        })
        .await
}
