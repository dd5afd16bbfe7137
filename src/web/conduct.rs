//! `/code-of-conduct`: the platform's code of conduct, accepting it, and
//! for platform admins publishing a new version.

use super::pages::{redirect, when, Page};
use super::session::{self, Session};
use super::{render, Layout};
use crate::domain::conduct;
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest};
use askama::Template;
use serde::Deserialize;

#[derive(Template)]
#[template(path = "conduct.html", config = "src/web/askama.toml")]
struct ConductPage {
    l: Layout,
    /// (version, text, published).
    current: Option<(i32, String, String)>,
    /// When the signed-in person accepted the current version.
    accepted: String,
    admin: bool,
    notice: String,
}

/// `GET /code-of-conduct`.
pub async fn page(
    state: web::Data<AppState>,
    req: HttpRequest,
    q: web::Query<super::NoticeQuery>,
) -> Page {
    let l = Layout::of(&state, &req).await?;
    let user = l.user.as_ref().map(|u| u.id);
    let (current, accepted, admin) = state
        .db(move |conn| {
            let current = conduct::current(conn)?;
            let (accepted, admin) = match user {
                Some(u) if current.is_some() => (
                    conduct::accepted_at(conn, u)?.map(when).unwrap_or_default(),
                    crate::domain::users::get(conn, u)?.is_admin,
                ),
                Some(u) => (String::new(), crate::domain::users::get(conn, u)?.is_admin),
                None => (String::new(), false),
            };
            Ok((current, accepted, admin))
        })
        .await?;
    let notice = match q.notice.as_str() {
        "accepted" => "Accepted.",
        "published" => {
            "Published: everyone accepts the new version before they next post, claim or bid."
        }
        _ => "",
    }
    .to_owned();
    render(
        StatusCode::OK,
        &ConductPage {
            l,
            current: current.map(|(v, body, at)| (v, body, when(at))),
            accepted,
            admin,
            notice,
        },
    )
}

/// `POST /code-of-conduct/accept`.
pub async fn accept(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<super::TokenForm>,
) -> Page {
    session::check_form(&req, &form.csrf)?;
    let Some(user) = Session::of(&req).user_id else {
        return Ok(redirect("/login?next=/code-of-conduct"));
    };
    state.db(move |conn| conduct::accept(conn, user)).await?;
    Ok(redirect("/code-of-conduct?notice=accepted"))
}

/// The publishing form.
#[derive(Debug, Deserialize)]
pub struct PublishForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    body: String,
}

/// `POST /admin/code-of-conduct` (platform admins).
pub async fn publish(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<PublishForm>,
) -> Page {
    let form = form.into_inner();
    session::check_form(&req, &form.csrf)?;
    let Some(user) = Session::of(&req).user_id else {
        return Ok(redirect("/login?next=/code-of-conduct"));
    };
    state
        .db(move |conn| conduct::publish(conn, user, &form.body))
        .await?;
    Ok(redirect("/code-of-conduct?notice=published"))
}
