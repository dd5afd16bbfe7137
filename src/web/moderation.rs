//! The project's review queue in the web app: open flags with their
//! content, uphold / dismiss, and bans (impose and lift) — for the
//! project's maintainers and platform admins.

use super::pages::{redirect, when, Page};
use super::session::{self, Session};
use super::{render, Layout, WebError};
use crate::db::schema::{bans, ticket_messages as tm, tickets as t};
use crate::domain::{moderation, projects};
use crate::error::AppError;
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest};
use askama::Template;
use diesel::prelude::*;
use serde::Deserialize;

/// One open flag as the queue shows it.
pub struct FlagRow {
    id: i64,
    /// Where the item is.
    link: String,
    what: &'static str,
    excerpt: String,
    reason: String,
    note: String,
    weight: i32,
    author_id: i64,
    author: String,
    hidden: bool,
    /// The project's slug.
    slug: String,
}

#[derive(Template)]
#[template(path = "flags.html", config = "src/web/askama.toml")]
struct FlagsPage {
    l: Layout,
    slug: String,
    project: String,
    rows: Vec<FlagRow>,
    /// Active bans: (user id, name, reason, until).
    banned: Vec<(i64, String, String, String)>,
    /// Open appeals.
    appeals: Vec<AppealRow>,
    notice: String,
}

fn excerpt(s: &str) -> String {
    let one: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if one.chars().count() > 200 {
        format!("{}…", one.chars().take(200).collect::<String>())
    } else {
        one
    }
}

/// `GET /p/{slug}/flags`.
pub async fn queue(
    state: web::Data<AppState>,
    req: HttpRequest,
    slug: web::Path<String>,
    q: web::Query<super::NoticeQuery>,
) -> Page {
    let l = Layout::of(&state, &req).await?;
    let slug = slug.into_inner();
    let Some(user) = l.user.as_ref().map(|u| u.id) else {
        return Ok(redirect(&format!("/login?next=/p/{slug}/flags")));
    };
    let (p, rows, banned, appeals) = state
        .db(move |conn| {
            let p = projects::by_slug(conn, &slug)?;
            if !moderation::can_moderate(conn, p.id, user)? {
                return Err(AppError::not_found("page"));
            }
            let flags = moderation::open_flags(conn, p.id)?;
            let rows = flag_rows(conn, flags)?;
            let active: Vec<(i64, String, Option<chrono::NaiveDateTime>)> = bans::table
                .filter(bans::project_id.eq(p.id))
                .filter(bans::lifted_at.is_null())
                .order(bans::id)
                .select((bans::user_id, bans::reason, bans::until))
                .load(conn)?;
            let ids: Vec<i64> = active.iter().map(|b| b.0).collect();
            let names = crate::domain::users::names(conn, &ids)?;
            let banned = active
                .into_iter()
                .map(|(u, reason, until)| {
                    (
                        u,
                        names.get(&u).cloned().unwrap_or_default(),
                        reason,
                        until.map(when).unwrap_or_else(|| "until lifted".into()),
                    )
                })
                .collect();
            let appeals = appeal_rows(conn, Some(p.id))?;
            Ok((p, rows, banned, appeals))
        })
        .await?;
    let notice = match q.notice.as_str() {
        "upheld" => "Upheld: the item stays hidden.",
        "dismissed" => "Dismissed: the item shows again.",
        "banned" => "Banned.",
        "lifted" => "The ban is lifted.",
        "granted" => "Appeal granted: the ban is lifted and they were told.",
        "declined" => "Appeal declined: the ban stays and they were told.",
        _ => "",
    }
    .to_owned();
    render(
        StatusCode::OK,
        &FlagsPage {
            l,
            slug: p.slug,
            project: p.name,
            rows,
            banned,
            appeals,
            notice,
        },
    )
}

/// The review rows of `flags`.
fn flag_rows(
    conn: &mut crate::db::DbConnection,
    flags: Vec<moderation::Flag>,
) -> Result<Vec<FlagRow>, AppError> {
    let mut rows = Vec::with_capacity(flags.len());
    for f in flags {
        let (link, what, text, author, hidden) = if f.target_type == "ticket" {
            let (title, requester, hidden): (String, i64, Option<chrono::NaiveDateTime>) = t::table
                .find(f.target_id)
                .select((t::title, t::requester_id, t::hidden_at))
                .first(conn)?;
            (
                format!("/t/{}", f.target_id),
                "Ticket",
                title,
                requester,
                hidden.is_some(),
            )
        } else {
            let (ticket, body, author, hidden): (i64, String, i64, Option<chrono::NaiveDateTime>) =
                tm::table
                    .find(f.target_id)
                    .select((tm::ticket_id, tm::body, tm::author_id, tm::hidden_at))
                    .first(conn)?;
            (
                format!("/t/{ticket}#m{}", f.target_id),
                "Message",
                body,
                author,
                hidden.is_some(),
            )
        };
        rows.push(FlagRow {
            id: f.id,
            link,
            what,
            excerpt: excerpt(&text),
            reason: f.reason,
            note: f.note.unwrap_or_default(),
            weight: f.weight,
            author_id: author,
            author: crate::domain::users::get(conn, author)?.display_name,
            hidden,
            slug: projects::by_id(conn, f.project_id)?.slug,
        });
    }
    Ok(rows)
}

/// An open appeal as the pages show it: (id, name, the ban's reason, what
/// they wrote, when).
pub type AppealRow = (i64, String, String, String, String);

/// Open appeals of the bans of `project` (`None`: the platform's) as rows.
fn appeal_rows(
    conn: &mut crate::db::DbConnection,
    project: Option<i64>,
) -> Result<Vec<AppealRow>, AppError> {
    let open = crate::domain::appeals::open_of(conn, project)?;
    let ids: Vec<i64> = open.iter().map(|(a, _)| a.user_id).collect();
    let names = crate::domain::users::names(conn, &ids)?;
    Ok(open
        .into_iter()
        .map(|(a, b)| {
            (
                a.id,
                names.get(&a.user_id).cloned().unwrap_or_default(),
                b.reason,
                a.body,
                when(a.created_at),
            )
        })
        .collect())
}

#[derive(Template)]
#[template(path = "admin_appeals.html", config = "src/web/askama.toml")]
struct AdminAppealsPage {
    l: Layout,
    appeals: Vec<AppealRow>,
    notice: String,
}

/// `GET /admin/appeals`: appeals of platform bans (platform admins).
pub async fn admin_appeals(
    state: web::Data<AppState>,
    req: HttpRequest,
    q: web::Query<super::NoticeQuery>,
) -> Page {
    let l = Layout::of(&state, &req).await?;
    let Some(user) = l.user.as_ref().map(|u| u.id) else {
        return Ok(redirect("/login?next=/admin/appeals"));
    };
    let appeals = state
        .db(move |conn| {
            if !crate::domain::users::get(conn, user)?.is_admin {
                return Err(AppError::not_found("page"));
            }
            appeal_rows(conn, None)
        })
        .await?;
    let notice = match q.notice.as_str() {
        "granted" => "Appeal granted: the ban is lifted and they were told.",
        "declined" => "Appeal declined: the ban stays and they were told.",
        _ => "",
    }
    .to_owned();
    render(StatusCode::OK, &AdminAppealsPage { l, appeals, notice })
}

/// The decision form.
#[derive(Debug, Deserialize)]
pub struct AppealForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    note: String,
}

/// `POST /appeals/{id}/{grant|decline}`: back to where it was decided.
pub async fn decide_appeal(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(i64, String)>,
    form: web::Form<AppealForm>,
) -> Page {
    let form = form.into_inner();
    session::check_form(&req, &form.csrf)?;
    let (id, action) = path.into_inner();
    let Some(user) = Session::of(&req).user_id else {
        return Ok(redirect("/login"));
    };
    let grant = match action.as_str() {
        "grant" => true,
        "decline" => false,
        _ => return Err(WebError(AppError::not_found("page"))),
    };
    let back = state
        .db(move |conn| {
            let a = crate::domain::appeals::decide(conn, id, user, grant, Some(&form.note))?;
            let b = moderation::get_ban(conn, a.ban_id)?;
            Ok(match b.project_id {
                Some(p) => format!("/p/{}/flags", projects::by_id(conn, p)?.slug),
                None => "/admin/appeals".to_owned(),
            })
        })
        .await?;
    let notice = if grant { "granted" } else { "declined" };
    Ok(redirect(&format!("{back}?notice={notice}")))
}

/// `POST /p/{slug}/flags/{id}/{uphold|dismiss}`.
pub async fn review(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, i64, String)>,
    form: web::Form<super::TokenForm>,
) -> Page {
    session::check_form(&req, &form.csrf)?;
    let (slug, id, action) = path.into_inner();
    let Some(user) = Session::of(&req).user_id else {
        return Ok(redirect(&format!("/login?next=/p/{slug}/flags")));
    };
    let uphold = match action.as_str() {
        "uphold" => true,
        "dismiss" => false,
        _ => return Err(WebError(AppError::not_found("page"))),
    };
    state
        .db(move |conn| moderation::review(conn, id, user, uphold))
        .await?;
    Ok(redirect(&format!(
        "/p/{slug}/flags?notice={}",
        if uphold { "upheld" } else { "dismissed" }
    )))
}

/// The ban form.
#[derive(Debug, Deserialize)]
pub struct BanForm {
    #[serde(default)]
    csrf: String,
    user_id: i64,
    #[serde(default)]
    reason: String,
    /// A date (YYYY-MM-DD), or empty: until lifted.
    #[serde(default)]
    until: String,
}

/// `POST /p/{slug}/bans`.
pub async fn ban(
    state: web::Data<AppState>,
    req: HttpRequest,
    slug: web::Path<String>,
    form: web::Form<BanForm>,
) -> Page {
    let form = form.into_inner();
    session::check_form(&req, &form.csrf)?;
    let slug = slug.into_inner();
    let Some(user) = Session::of(&req).user_id else {
        return Ok(redirect(&format!("/login?next=/p/{slug}/flags")));
    };
    let until = match form.until.trim() {
        "" => None,
        u => Some(crate::api::money::parse_bound("until", u)?),
    };
    let s = slug.clone();
    state
        .db(move |conn| {
            let p = projects::by_slug(conn, &s)?;
            moderation::ban(conn, user, Some(p.id), form.user_id, &form.reason, until)
        })
        .await?;
    Ok(redirect(&format!("/p/{slug}/flags?notice=banned")))
}

/// `POST /p/{slug}/bans/{user_id}/lift`.
pub async fn lift(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, i64)>,
    form: web::Form<super::TokenForm>,
) -> Page {
    session::check_form(&req, &form.csrf)?;
    let (slug, banned) = path.into_inner();
    let Some(user) = Session::of(&req).user_id else {
        return Ok(redirect(&format!("/login?next=/p/{slug}/flags")));
    };
    let s = slug.clone();
    state
        .db(move |conn| {
            let p = projects::by_slug(conn, &s)?;
            moderation::lift(conn, user, Some(p.id), banned)
        })
        .await?;
    Ok(redirect(&format!("/p/{slug}/flags?notice=lifted")))
}

#[derive(Template)]
#[template(path = "admin_flags.html", config = "src/web/askama.toml")]
struct AdminFlagsPage {
    l: Layout,
    rows: Vec<FlagRow>,
    notice: String,
}

/// `GET /admin/flags`: the platform's review queue, every project's open
/// flags (platform admins).
pub async fn admin_flags(
    state: web::Data<AppState>,
    req: HttpRequest,
    q: web::Query<super::NoticeQuery>,
) -> Page {
    let l = Layout::of(&state, &req).await?;
    let Some(user) = l.user.as_ref().map(|u| u.id) else {
        return Ok(redirect("/login?next=/admin/flags"));
    };
    let rows = state
        .db(move |conn| {
            if !crate::domain::users::get(conn, user)?.is_admin {
                return Err(AppError::not_found("page"));
            }
            let flags = moderation::open_flags_everywhere(conn)?;
            flag_rows(conn, flags)
        })
        .await?;
    let notice = match q.notice.as_str() {
        "banned" => "Banned from the whole platform.",
        _ => "",
    }
    .to_owned();
    render(StatusCode::OK, &AdminFlagsPage { l, rows, notice })
}

/// `POST /admin/bans`: a platform ban from the platform's review queue.
pub async fn admin_ban(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<BanForm>,
) -> Page {
    let form = form.into_inner();
    session::check_form(&req, &form.csrf)?;
    let Some(user) = Session::of(&req).user_id else {
        return Ok(redirect("/login?next=/admin/flags"));
    };
    let until = match form.until.trim() {
        "" => None,
        u => Some(crate::api::money::parse_bound("until", u)?),
    };
    state
        .db(move |conn| moderation::ban(conn, user, None, form.user_id, &form.reason, until))
        .await?;
    Ok(redirect("/admin/flags?notice=banned"))
}
