//! `/chat/link?token=`: the one-time link a chat's `link` command gives,
//! which ties a Discord or Slack account to the signed-in Guildhall
//! account (confirmed with a form, so following a link alone changes
//! nothing).

use super::pages::{redirect, Page};
use super::session::{self, Session};
use super::{render, Layout};
use crate::channels::chat;
use crate::error::AppError;
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest};
use askama::Template;
use serde::Deserialize;

#[derive(Template)]
#[template(path = "chat_link.html", config = "src/web/askama.toml")]
struct ChatLinkPage {
    l: Layout,
    state: &'static str,
    provider: String,
    login: String,
    /// The chat account's id there, shown so nobody confirms a stranger's.
    external: String,
    token: String,
    problem: String,
}

/// `?token=`.
#[derive(Debug, Deserialize)]
pub struct LinkQuery {
    #[serde(default)]
    token: String,
}

fn provider_name(p: &str) -> String {
    match p {
        "discord" => "Discord".into(),
        "slack" => "Slack".into(),
        other => other.to_owned(),
    }
}

async fn page(
    state: &AppState,
    req: &HttpRequest,
    status: StatusCode,
    result: Result<(&'static str, String, String, String), String>,
    token: String,
) -> Page {
    let l = Layout::of(state, req).await?;
    let page = match result {
        Ok((s, provider, login, external)) => ChatLinkPage {
            l,
            state: s,
            provider: provider_name(&provider),
            login,
            external,
            token,
            problem: String::new(),
        },
        Err(problem) => ChatLinkPage {
            l,
            state: "invalid",
            provider: String::new(),
            login: String::new(),
            external: String::new(),
            token: String::new(),
            problem,
        },
    };
    render(status, &page)
}

/// `GET /chat/link?token=`: what the link would tie, for a signed-in user.
pub async fn link_form(
    state: web::Data<AppState>,
    req: HttpRequest,
    q: web::Query<LinkQuery>,
) -> Page {
    let token = q.into_inner().token;
    if Session::of(&req).user_id.is_none() {
        let next = format!("/chat/link?token={}", urlencode(&token));
        return Ok(redirect(&format!("/login?next={}", urlencode(&next))));
    }
    let t = token.clone();
    match state.db(move |conn| chat::peek_link(conn, &t)).await {
        Ok((provider, login, external)) => {
            page(
                &state,
                &req,
                StatusCode::OK,
                Ok(("confirm", provider, login, external)),
                token,
            )
            .await
        }
        Err(e @ AppError::BadRequest { .. }) => {
            page(
                &state,
                &req,
                StatusCode::BAD_REQUEST,
                Err(e.to_string()),
                String::new(),
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

/// The confirmation.
#[derive(Debug, Deserialize)]
pub struct LinkForm {
    csrf: String,
    token: String,
}

/// `POST /chat/link`: spends the link for the signed-in user.
pub async fn link(state: web::Data<AppState>, req: HttpRequest, form: web::Form<LinkForm>) -> Page {
    let form = form.into_inner();
    session::check_form(&req, &form.csrf)?;
    let Some(user) = Session::of(&req).user_id else {
        return Ok(redirect("/login"));
    };
    let token = form.token;
    match state
        .db(move |conn| chat::redeem_link(conn, &token, user))
        .await
    {
        Ok((provider, login)) => {
            tracing::info!(user_id = user, provider = %provider, "chat account linked");
            page(
                &state,
                &req,
                StatusCode::OK,
                Ok(("done", provider, login, String::new())),
                String::new(),
            )
            .await
        }
        Err(e @ (AppError::BadRequest { .. } | AppError::Conflict { .. })) => {
            let status = actix_web::ResponseError::status_code(&e);
            page(&state, &req, status, Err(e.to_string()), String::new()).await
        }
        Err(e) => Err(e.into()),
    }
}

/// Which chat account to untie.
#[derive(Debug, Deserialize)]
pub struct UnlinkForm {
    csrf: String,
    provider: String,
}

/// `POST /me/chat/unlink`: unties the signed-in user's Discord or Slack
/// account.
pub async fn unlink(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<UnlinkForm>,
) -> Page {
    let form = form.into_inner();
    session::check_form(&req, &form.csrf)?;
    let Some(user) = Session::of(&req).user_id else {
        return Ok(redirect("/login?next=/me"));
    };
    let provider = form.provider;
    state
        .db(move |conn| Ok(chat::unlink(conn, user, &provider)?))
        .await?;
    Ok(redirect("/me"))
}

fn urlencode(s: &str) -> String {
    serde_urlencoded::to_string([("x", s)])
        .unwrap_or_default()
        .trim_start_matches("x=")
        .to_owned()
}
