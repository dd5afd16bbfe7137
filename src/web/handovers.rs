//! Handing a project over in the web app: the maintainer's page to propose
//! it (`/p/{slug}/handover`), and the handover's own page where the new
//! maintainer accepts, proves their rights on the repository and sets up
//! payouts, and where either party calls it off or reverses it.

use super::pages::{redirect, when, Page};
use super::session::{self, Session};
use super::{render, Layout, WebError};
use crate::domain::handovers::{self, Handover};
use crate::domain::projects;
use crate::error::AppError;
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest};
use askama::Template;
use serde::Deserialize;

/// A handover as a row.
pub struct Row {
    id: i64,
    from: String,
    to: String,
    effective: String,
    status: String,
}

fn row(conn: &mut crate::db::DbConnection, x: &Handover) -> Result<Row, AppError> {
    Ok(Row {
        id: x.id,
        from: crate::domain::users::get(conn, x.from_user_id)?.display_name,
        to: crate::domain::users::get(conn, x.to_user_id)?.display_name,
        effective: when(x.effective_at),
        status: x.status.clone(),
    })
}

#[derive(Template)]
#[template(path = "handovers.html", config = "src/web/askama.toml")]
struct ProjectHandovers {
    l: Layout,
    slug: String,
    project: String,
    steward: String,
    is_steward: bool,
    rows: Vec<Row>,
    notice: String,
}

/// `GET /p/{slug}/handover`: the project's handovers and, for its
/// maintainer of record, the form to hand it over.
pub async fn project_page(
    state: web::Data<AppState>,
    req: HttpRequest,
    slug: web::Path<String>,
    q: web::Query<super::NoticeQuery>,
) -> Page {
    let slug = slug.into_inner();
    let l = Layout::of(&state, &req).await?;
    let Some(user) = l.user.as_ref().map(|u| u.id) else {
        return Ok(redirect(&format!("/login?next=/p/{slug}/handover")));
    };
    let s = slug.clone();
    let (project, steward, is_steward, rows) = state
        .db(move |conn| {
            let p = projects::by_slug(conn, &s)?;
            if !crate::domain::moderation::can_moderate(conn, p.id, user)? {
                return Err(AppError::forbidden(
                    "only the project's maintainers may see its handovers",
                ));
            }
            let steward = handovers::steward(conn, p.id)?;
            let name = crate::domain::users::get(conn, steward)?.display_name;
            let rows = handovers::of_project(conn, p.id)?
                .iter()
                .map(|x| row(conn, x))
                .collect::<Result<Vec<_>, _>>()?;
            Ok((p.name, name, steward == user, rows))
        })
        .await?;
    let notice = match q.notice.as_str() {
        "proposed" => {
            "Proposed. The new maintainer was told by mail and accepts on the handover's page."
        }
        _ => "",
    }
    .to_owned();
    render(
        StatusCode::OK,
        &ProjectHandovers {
            l,
            slug,
            project,
            steward,
            is_steward,
            rows,
            notice,
        },
    )
}

/// The proposal form.
#[derive(Debug, Deserialize)]
pub struct ProposeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    effective: String,
}

/// `POST /p/{slug}/handover`.
pub async fn propose(
    state: web::Data<AppState>,
    req: HttpRequest,
    slug: web::Path<String>,
    form: web::Form<ProposeForm>,
) -> Page {
    let form = form.into_inner();
    session::check_form(&req, &form.csrf)?;
    let slug = slug.into_inner();
    let Some(user) = Session::of(&req).user_id else {
        return Ok(redirect(&format!("/login?next=/p/{slug}/handover")));
    };
    let today = crate::domain::now();
    let at = match form.effective.trim() {
        "" => today,
        // A date means from its start, or from now when it is today.
        e => match crate::api::money::parse_bound("effective", e)? {
            d if d.date() == today.date() => today,
            d => d,
        },
    };
    let s = slug.clone();
    let id = state
        .db(move |conn| {
            let p = projects::by_slug(conn, &s)?;
            // Who may hand it over is checked before anyone's address is
            // looked up.
            handovers::require_steward(conn, p.id, user)?;
            let to = crate::domain::users::find_by_email(conn, form.email.trim())?
                .ok_or_else(|| AppError::field("email", "nobody on Guildhall has this address"))?;
            Ok(handovers::propose(conn, p.id, user, to.id, at)?.id)
        })
        .await?;
    tracing::info!(handover = id, project = %slug, user_id = user, "handover proposed");
    Ok(redirect(&format!("/p/{slug}/handover?notice=proposed")))
}

#[derive(Template)]
#[template(path = "handover.html", config = "src/web/askama.toml")]
struct HandoverPage {
    l: Layout,
    id: i64,
    slug: String,
    project: String,
    row: Row,
    failure: String,
    missing: Vec<String>,
    repo_verified: String,
    applied: String,
    reversible_until: String,
    is_to: bool,
    is_party: bool,
    can_accept: bool,
    can_cancel: bool,
    can_reverse: bool,
    github: bool,
    notice: String,
}

/// `GET /handovers/{id}`.
pub async fn page(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<i64>,
    q: web::Query<super::NoticeQuery>,
) -> Page {
    let id = id.into_inner();
    let l = Layout::of(&state, &req).await?;
    let Some(user) = l.user.as_ref().map(|u| u.id) else {
        return Ok(redirect(&format!("/login?next=/handovers/{id}")));
    };
    let gateway = state.gateway.name();
    let (x, p, r, missing, admin) = state
        .db(move |conn| {
            let x = handovers::visible(conn, id, user)?;
            let p = projects::by_id(conn, x.project_id)?;
            let r = row(conn, &x)?;
            let missing = if matches!(x.status.as_str(), "proposed" | "accepted") {
                handovers::missing(conn, &x, gateway)?
            } else {
                Vec::new()
            };
            let admin = crate::domain::users::get(conn, user)?.is_admin;
            Ok((x, p, r, missing, admin))
        })
        .await?;
    let is_to = x.to_user_id == user;
    let is_party = is_to || x.from_user_id == user;
    let open = matches!(x.status.as_str(), "proposed" | "accepted");
    let reversible = x
        .reversible_until()
        .is_some_and(|u| u > crate::domain::now());
    let notice = match q.notice.as_str() {
        "verified" => "Your rights on the repository are proved.",
        "accepted" => "Accepted.",
        "cancelled" => "The handover is called off.",
        "reversed" => "The handover is reversed.",
        _ => "",
    }
    .to_owned();
    render(
        StatusCode::OK,
        &HandoverPage {
            id,
            slug: p.slug,
            project: p.name,
            row: r,
            failure: x.failure.clone().unwrap_or_default(),
            missing,
            repo_verified: x.repo_verified_at.map(when).unwrap_or_default(),
            applied: x.applied_at.map(when).unwrap_or_default(),
            reversible_until: x.reversible_until().map(when).unwrap_or_default(),
            is_to,
            is_party,
            can_accept: is_to && x.status == "proposed",
            can_cancel: is_party && open,
            can_reverse: (is_party || admin) && reversible,
            github: state.github_oauth.is_some(),
            notice,
            l,
        },
    )
}

/// `POST /handovers/{id}/{action}` with `action` one of accept, cancel and
/// reverse.
pub async fn act(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(i64, String)>,
    form: web::Form<super::TokenForm>,
) -> Page {
    session::check_form(&req, &form.csrf)?;
    let (id, action) = path.into_inner();
    let Some(user) = Session::of(&req).user_id else {
        return Ok(redirect(&format!("/login?next=/handovers/{id}")));
    };
    let f = match action.as_str() {
        "accept" => handovers::accept,
        "cancel" => handovers::cancel,
        "reverse" => handovers::reverse,
        _ => return Err(WebError(AppError::not_found("action"))),
    };
    state.db(move |conn| f(conn, id, user)).await?;
    let notice = match action.as_str() {
        "accept" => "accepted",
        "cancel" => "cancelled",
        _ => "reversed",
    };
    Ok(redirect(&format!("/handovers/{id}?notice={notice}")))
}
