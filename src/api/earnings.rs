//! A helper's statement of what they earned: every release of a ticket
//! they resolved (their part, the project's commission and the platform's
//! fee), every other credit to their payable account (a project's revenue
//! handed to them as its maintainer, …), and every payout, with totals —
//! as JSON, CSV, and the page `/me/earnings`.

use super::money::{csv_text, parse_bound, StatementQuery};
use super::views::utc;
use crate::auth::AuthUser;
use crate::db::schema::{
    ledger_accounts as la, ledger_transfers as lt, payouts as po, projects as pr, releases as r,
    tickets as t,
};
use crate::domain::now;
use crate::error::{AppError, AppResult, Problem};
use crate::ledger::AccountKind;
use crate::state::AppState;
use actix_web::{web, HttpResponse};
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;

/// One release to the helper.
#[derive(Debug, Serialize, ToSchema)]
pub struct EarningLine {
    /// Ticket.
    pub ticket_id: i64,
    /// Its title.
    pub title: String,
    /// The project's slug.
    pub project: String,
    /// When the escrow was released.
    pub released_at: DateTime<Utc>,
    /// Currency.
    pub currency: String,
    /// Whole amount released, minor units.
    pub amount: i64,
    /// The helper's part: what they earned.
    pub earned: i64,
    /// The project's commission.
    pub commission: i64,
    /// The platform's fee.
    pub platform_fee: i64,
}

/// Another credit to the helper's payable account (not a release).
#[derive(Debug, Serialize, ToSchema)]
pub struct OtherCredit {
    /// When.
    pub at: DateTime<Utc>,
    /// Currency.
    pub currency: String,
    /// Minor units.
    pub amount: i64,
    /// What it was.
    pub memo: String,
}

/// One payout to the helper's payout account.
#[derive(Debug, Serialize, ToSchema)]
pub struct PayoutLine {
    /// Payout id.
    pub id: i64,
    /// `pending`, `paid` or `failed`.
    pub status: String,
    /// Currency.
    pub currency: String,
    /// Minor units.
    pub amount: i64,
    /// When it was started.
    pub created_at: DateTime<Utc>,
    /// When it was paid.
    pub paid_at: Option<DateTime<Utc>>,
}

/// Totals in one currency.
#[derive(Debug, Serialize, ToSchema)]
pub struct EarningTotals {
    /// Currency.
    pub currency: String,
    /// Earned from releases in the range.
    pub earned: i64,
    /// Other credits in the range.
    pub other: i64,
    /// Paid out in the range.
    pub paid_out: i64,
    /// What the account holds now, not yet paid or in flight.
    pub available_now: i64,
}

/// A helper's earnings statement.
#[derive(Debug, Serialize, ToSchema)]
pub struct Earnings {
    /// The helper.
    pub user_id: i64,
    /// Range start (inclusive), if given.
    pub from: Option<DateTime<Utc>>,
    /// Range end (exclusive).
    pub to: DateTime<Utc>,
    /// Releases, oldest first.
    pub lines: Vec<EarningLine>,
    /// Other credits, oldest first.
    pub other_credits: Vec<OtherCredit>,
    /// Payouts started in the range, oldest first.
    pub payouts: Vec<PayoutLine>,
    /// Per currency.
    pub totals: Vec<EarningTotals>,
}

/// (ticket, title, project, released, currency, amount, earned,
/// commission, platform fee).
type ReleaseRow = (
    i64,
    String,
    String,
    NaiveDateTime,
    String,
    i64,
    i64,
    i64,
    i64,
);

/// The statement of `user` for `[from, to)`.
pub fn load_earnings(
    conn: &mut crate::db::DbConnection,
    user: i64,
    from: Option<NaiveDateTime>,
    to: NaiveDateTime,
) -> AppResult<Earnings> {
    // The epoch stands for "the beginning" (PostgreSQL's timestamps do not
    // reach chrono's minimum).
    let from_or_start = from.unwrap_or(chrono::DateTime::UNIX_EPOCH.naive_utc());
    let rows: Vec<ReleaseRow> = r::table
        .inner_join(t::table.on(t::id.eq(r::ticket_id)))
        .inner_join(pr::table.on(pr::id.eq(r::project_id)))
        .filter(r::helper_id.eq(user))
        .filter(r::created_at.ge(from_or_start))
        .filter(r::created_at.lt(to))
        .order(r::created_at.asc())
        .select((
            r::ticket_id,
            t::title,
            pr::slug,
            r::created_at,
            r::currency,
            r::amount,
            r::helper_amount,
            r::project_amount,
            r::platform_amount,
        ))
        .load(conn)?;
    let lines: Vec<EarningLine> = rows
        .into_iter()
        .map(
            |(ticket_id, title, project, at, currency, amount, earned, commission, fee)| {
                EarningLine {
                    ticket_id,
                    title,
                    project,
                    released_at: utc(at),
                    currency,
                    amount,
                    earned,
                    commission,
                    platform_fee: fee,
                }
            },
        )
        .collect();
    let accounts: Vec<(i64, String, i64)> = la::table
        .filter(la::kind.eq(AccountKind::UserPayable.as_str()))
        .filter(la::owner_id.eq(user))
        .select((
            la::id,
            la::currency,
            la::credits_posted - la::debits_posted - la::debits_pending,
        ))
        .load(conn)?;
    let ids: Vec<i64> = accounts.iter().map(|a| a.0).collect();
    // Credits that are not a release's helper line (those are keyed
    // `…:helper`).
    let other: Vec<(NaiveDateTime, String, i64, String, String)> = lt::table
        .filter(lt::credit_account_id.eq_any(&ids))
        .filter(lt::kind.eq("posted"))
        .filter(lt::created_at.ge(from_or_start))
        .filter(lt::created_at.lt(to))
        .order(lt::id.asc())
        .select((
            lt::created_at,
            lt::currency,
            lt::amount,
            lt::memo,
            lt::transfer_key,
        ))
        .load(conn)?;
    let other_credits: Vec<OtherCredit> = other
        .into_iter()
        .filter(|(_, _, _, _, key)| !key.contains(":release:"))
        .map(|(at, currency, amount, memo, _)| OtherCredit {
            at: utc(at),
            currency,
            amount,
            memo,
        })
        .collect();
    let payouts: Vec<PayoutLine> = po::table
        .filter(po::ledger_account_id.eq_any(&ids))
        .filter(po::created_at.ge(from_or_start))
        .filter(po::created_at.lt(to))
        .order(po::id.asc())
        .select((
            po::id,
            po::status,
            po::currency,
            po::amount,
            po::created_at,
            po::paid_at,
        ))
        .load::<(
            i64,
            String,
            String,
            i64,
            NaiveDateTime,
            Option<NaiveDateTime>,
        )>(conn)?
        .into_iter()
        .map(|(id, status, currency, amount, created, paid)| PayoutLine {
            id,
            status,
            currency,
            amount,
            created_at: utc(created),
            paid_at: paid.map(utc),
        })
        .collect();
    let mut currencies: Vec<String> = accounts.iter().map(|a| a.1.clone()).collect();
    currencies.extend(lines.iter().map(|l| l.currency.clone()));
    currencies.sort();
    currencies.dedup();
    let totals = currencies
        .into_iter()
        .map(|c| EarningTotals {
            earned: lines
                .iter()
                .filter(|l| l.currency == c)
                .map(|l| l.earned)
                .sum(),
            other: other_credits
                .iter()
                .filter(|l| l.currency == c)
                .map(|l| l.amount)
                .sum(),
            paid_out: payouts
                .iter()
                .filter(|p| p.currency == c && p.status == "paid")
                .map(|p| p.amount)
                .sum(),
            available_now: accounts.iter().filter(|a| a.1 == c).map(|a| a.2).sum(),
            currency: c,
        })
        .collect();
    Ok(Earnings {
        user_id: user,
        from: from.map(utc),
        to: utc(to),
        lines,
        other_credits,
        payouts,
        totals,
    })
}

/// The statement as CSV: one line per release, other credit and payout.
pub fn earnings_csv(e: &Earnings) -> AppResult<String> {
    // Every cell quoted: a spreadsheet that splits on `;` cannot start a
    // formula inside a text cell either.
    let mut w = csv::WriterBuilder::new()
        .quote_style(csv::QuoteStyle::Always)
        .from_writer(Vec::new());
    let err = |e: csv::Error| AppError::internal(anyhow::anyhow!(e));
    w.write_record([
        "kind",
        "at",
        "ticket_id",
        "project",
        "title",
        "currency",
        "amount",
        "earned",
        "commission",
        "platform_fee",
    ])
    .map_err(err)?;
    for l in &e.lines {
        w.write_record([
            "release",
            &l.released_at.to_rfc3339(),
            &l.ticket_id.to_string(),
            &csv_text(&l.project),
            &csv_text(&l.title),
            &l.currency,
            &l.amount.to_string(),
            &l.earned.to_string(),
            &l.commission.to_string(),
            &l.platform_fee.to_string(),
        ])
        .map_err(err)?;
    }
    for o in &e.other_credits {
        w.write_record([
            "credit",
            &o.at.to_rfc3339(),
            "",
            "",
            &csv_text(&o.memo),
            &o.currency,
            &o.amount.to_string(),
            &o.amount.to_string(),
            "",
            "",
        ])
        .map_err(err)?;
    }
    for p in &e.payouts {
        w.write_record([
            &format!("payout_{}", p.status),
            &p.paid_at.unwrap_or(p.created_at).to_rfc3339(),
            "",
            "",
            &format!("payout {}", p.id),
            &p.currency,
            &(-p.amount).to_string(),
            "",
            "",
            "",
        ])
        .map_err(err)?;
    }
    String::from_utf8(
        w.into_inner()
            .map_err(|e| AppError::internal(anyhow::anyhow!("{e}")))?,
    )
    .map_err(AppError::internal)
}

/// Parses the statement's query: the range and whether CSV is asked for.
pub fn range_of(q: &StatementQuery) -> AppResult<(Option<NaiveDateTime>, NaiveDateTime, bool)> {
    let from = q
        .from
        .as_deref()
        .filter(|v| !v.is_empty())
        .map(|v| parse_bound("from", v))
        .transpose()?;
    let to =
        q.to.as_deref()
            .filter(|v| !v.is_empty())
            .map(|v| parse_bound("to", v))
            .transpose()?
            .unwrap_or_else(now);
    let csv = match q.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(_) => return Err(AppError::field("format", "must be `json` or `csv`")),
    };
    Ok((from, to, csv))
}

/// The caller's earnings statement: releases, other credits and payouts.
#[utoipa::path(get, path = "/api/v1/me/earnings", tag = "money", security(("bearer" = [])),
    params(StatementQuery),
    responses((status = 200, description = "JSON, or CSV with `format=csv`",
               content((Earnings = "application/json"), (String = "text/csv"))),
              (status = 401, body = Problem), (status = 422, body = Problem)))]
pub async fn mine(
    state: web::Data<AppState>,
    user: AuthUser,
    query: web::Query<StatementQuery>,
) -> AppResult<HttpResponse> {
    let (from, to, csv) = range_of(&query)?;
    let e = state
        .db(move |conn| load_earnings(conn, user.id, from, to))
        .await?;
    if !csv {
        return Ok(HttpResponse::Ok().json(e));
    }
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            "content-disposition",
            "attachment; filename=\"earnings.csv\"",
        ))
        .body(earnings_csv(&e)?))
}
