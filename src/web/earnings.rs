//! `/me/earnings`: what the signed-in helper earned, with a range and a
//! CSV download (`/me/earnings.csv`).

use super::pages::{redirect, Page};
use super::session::Session;
use super::{money, render, Layout};
use crate::api::earnings::{earnings_csv, load_earnings, range_of};
use crate::api::money::StatementQuery;
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

/// A line as the page shows it: (when, what, link, amount, earned).
pub struct Line {
    at: String,
    what: String,
    link: String,
    amount: String,
    earned: String,
}

#[derive(Template)]
#[template(path = "earnings.html", config = "src/web/askama.toml")]
struct EarningsPage {
    l: Layout,
    from: String,
    to: String,
    /// (currency, earned, other, paid out, available now).
    totals: Vec<(String, String, String, String, String)>,
    lines: Vec<Line>,
    query: String,
}

/// `GET /me/earnings?from=&to=`.
pub async fn page(
    state: web::Data<AppState>,
    req: HttpRequest,
    q: web::Query<StatementQuery>,
) -> Page {
    let l = Layout::of(&state, &req).await?;
    let Some(user) = l.user.as_ref().map(|u| u.id) else {
        return Ok(redirect("/login?next=/me/earnings"));
    };
    let q = q.into_inner();
    let (from, to, _) = range_of(&StatementQuery {
        from: q.from.clone(),
        to: q.to.clone(),
        format: None,
    })?;
    let e = state
        .db(move |conn| load_earnings(conn, user, from, to))
        .await?;
    let day = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d %H:%M").to_string();
    let mut lines: Vec<(chrono::DateTime<chrono::Utc>, Line)> = Vec::new();
    for r in &e.lines {
        lines.push((
            r.released_at,
            Line {
                at: day(r.released_at),
                what: format!("{}: {}", r.project, r.title),
                link: format!("/t/{}", r.ticket_id),
                amount: money(r.amount, &r.currency),
                earned: money(r.earned, &r.currency),
            },
        ));
    }
    for o in &e.other_credits {
        lines.push((
            o.at,
            Line {
                at: day(o.at),
                what: o.memo.clone(),
                link: String::new(),
                amount: String::new(),
                earned: money(o.amount, &o.currency),
            },
        ));
    }
    for p in &e.payouts {
        let at = p.paid_at.unwrap_or(p.created_at);
        lines.push((
            at,
            Line {
                at: day(at),
                what: format!("Payout #{} ({})", p.id, p.status),
                link: String::new(),
                amount: String::new(),
                earned: money(-p.amount, &p.currency),
            },
        ));
    }
    lines.sort_by_key(|(at, _)| *at);
    let totals = e
        .totals
        .iter()
        .map(|t| {
            (
                t.currency.to_ascii_uppercase(),
                money(t.earned, &t.currency),
                money(t.other, &t.currency),
                money(t.paid_out, &t.currency),
                money(t.available_now, &t.currency),
            )
        })
        .collect();
    let from_s = q.from.unwrap_or_default();
    let to_s = q.to.unwrap_or_default();
    let query = serde_urlencoded::to_string([("from", &from_s), ("to", &to_s)])
        .map_err(crate::error::AppError::internal)?;
    render(
        StatusCode::OK,
        &EarningsPage {
            l,
            from: from_s,
            to: to_s,
            totals,
            lines: lines.into_iter().map(|(_, l)| l).collect(),
            query,
        },
    )
}

/// `GET /me/earnings.csv?from=&to=`: the same as a download.
pub async fn csv(
    state: web::Data<AppState>,
    req: HttpRequest,
    q: web::Query<StatementQuery>,
) -> Page {
    let Some(user) = Session::of(&req).user_id else {
        return Ok(redirect("/login?next=/me/earnings"));
    };
    let (from, to, _) = range_of(&StatementQuery {
        from: q.from.clone(),
        to: q.to.clone(),
        format: None,
    })?;
    let e = state
        .db(move |conn| load_earnings(conn, user, from, to))
        .await?;
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            "content-disposition",
            "attachment; filename=\"earnings.csv\"",
        ))
        .body(earnings_csv(&e)?))
}
