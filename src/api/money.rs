//! Money endpoints: bounties, balances, ledger lines; `Idempotency-Key`.

use super::idempotency::{idempotent, Claim, IdempotencyKey};
use super::views::{utc, Money, Page, Paging};
use crate::auth::{AuthUser, MaybeUser};
use crate::domain::money::{self, Bounty};
use crate::domain::{now, tickets};
use crate::error::{AppError, AppResult, Problem};
use crate::ledger::AccountKind;
use crate::payments::PaymentStatus;
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Body of `POST /tickets/{id}/bounties`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"amount": 2500, "currency": "usd", "expires_in_days": 30}))]
pub struct BountyBody {
    /// Minor units, 100 to 10,000,000.
    #[schema(minimum = 100, maximum = 10_000_000)]
    pub amount: i64,
    /// The project's currency (ISO 4217, any case).
    #[schema(pattern = "^[A-Za-z]{3}$")]
    pub currency: String,
    /// Days until an unspent bounty goes back to its backer (1–365); none:
    /// it stays until the ticket is resolved, cancelled or closed.
    #[schema(minimum = 1, maximum = 365)]
    pub expires_in_days: Option<i64>,
}

/// A bounty.
#[derive(Debug, Serialize, ToSchema)]
pub struct BountyView {
    /// Id.
    pub id: i64,
    /// Ticket.
    pub ticket_id: i64,
    /// Who pays.
    pub backer_id: i64,
    /// How much.
    pub amount: Money,
    /// `pending_payment`, `funded`, `released`, `refunded` or `failed`.
    pub status: String,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Funded.
    pub funded_at: Option<DateTime<Utc>>,
    /// When it goes back to the backer if unspent.
    pub expires_at: Option<DateTime<Utc>>,
}

impl From<&Bounty> for BountyView {
    fn from(b: &Bounty) -> Self {
        BountyView {
            id: b.id,
            ticket_id: b.ticket_id,
            backer_id: b.backer_id,
            amount: Money {
                amount: b.amount,
                currency: b.currency.clone(),
            },
            status: b.status.clone(),
            created_at: utc(b.created_at),
            funded_at: b.funded_at.map(utc),
            expires_at: b.expires_at.map(utc),
        }
    }
}

/// The payment behind a bounty.
#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentView {
    /// `sandbox` (test money) or `stripe`.
    pub gateway: String,
    /// Where it stands.
    pub status: PaymentStatus,
    /// For the payer's browser when they must act.
    pub client_secret: Option<String>,
    /// True for the sandbox: no real money moved.
    pub test_money: bool,
}

/// A funded (or funding) bounty with its payment.
#[derive(Debug, Serialize, ToSchema)]
pub struct BountyCreated {
    /// The bounty.
    pub bounty: BountyView,
    /// Its payment.
    pub payment: PaymentView,
}

/// Put money on a ticket; funded when the payment succeeds (sandbox: at once).
#[utoipa::path(post, path = "/api/v1/tickets/{id}/bounties", tag = "money", security(("bearer" = [])),
    params(("id" = i64, Path, description = "ticket id"), ("Idempotency-Key" = Option<String>, Header, description = "replays the first response")),
    request_body = BountyBody,
    responses((status = 201, body = BountyCreated), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create_bounty(
    state: web::Data<AppState>,
    req: HttpRequest,
    key: IdempotencyKey,
    user: AuthUser,
    id: web::Path<i64>,
    body: web::Json<BountyBody>,
) -> AppResult<HttpResponse> {
    let id = id.into_inner();
    let body = body.into_inner();
    let st = state.clone();
    let (amount, currency, expires) = (
        body.amount,
        body.currency.to_ascii_lowercase(),
        body.expires_in_days,
    );
    idempotent(&state, &req, key, user.id, &body, |claim| async move {
        let gateway = st.gateway.clone();
        let (b, p) = st
            .blocking(move |pool| {
                money::fund_bounty(
                    pool,
                    gateway.as_ref(),
                    id,
                    user.id,
                    amount,
                    &currency,
                    expires,
                    claim.as_ref().map(Claim::key),
                )
            })
            .await?;
        let view = BountyCreated {
            bounty: BountyView::from(&b),
            payment: PaymentView {
                gateway: b.gateway.clone(),
                status: p.status,
                client_secret: p.client_secret,
                test_money: st.gateway.test_money(),
            },
        };
        Ok((
            StatusCode::CREATED,
            serde_json::to_value(view).map_err(AppError::internal)?,
        ))
    })
    .await
}

/// Bounties on a ticket the caller can see.
#[utoipa::path(get, path = "/api/v1/tickets/{id}/bounties", tag = "money", security((), ("bearer" = [])),
    params(("id" = i64, Path, description = "ticket id")),
    responses((status = 200, body = [BountyView]), (status = 404, body = Problem)))]
pub async fn list_bounties(
    state: web::Data<AppState>,
    user: MaybeUser,
    id: web::Path<i64>,
) -> AppResult<web::Json<Vec<BountyView>>> {
    let id = id.into_inner();
    state
        .db(move |conn| {
            tickets::load_visible(conn, id, user.0.map(|u| u.id))?;
            Ok(web::Json(
                money::bounties_of(conn, id)?
                    .iter()
                    .map(BountyView::from)
                    .collect(),
            ))
        })
        .await
}

/// A balance in one currency.
#[derive(Debug, Serialize, ToSchema)]
pub struct BalanceView {
    /// Can be paid out.
    pub available: i64,
    /// Reserved, not yet settled.
    pub pending: i64,
    /// Currency.
    pub currency: String,
}

/// The caller's balances.
#[derive(Debug, Serialize, ToSchema)]
pub struct Balances {
    /// One per currency.
    pub items: Vec<BalanceView>,
}

/// The caller's balance per currency.
#[utoipa::path(get, path = "/api/v1/me/balance", tag = "money", security(("bearer" = [])),
    responses((status = 200, body = Balances), (status = 401, body = Problem)))]
pub async fn balance(state: web::Data<AppState>, user: AuthUser) -> AppResult<web::Json<Balances>> {
    state
        .db(move |conn| {
            let accounts = crate::ledger::accounts_of(conn, AccountKind::UserPayable, user.id)?;
            Ok(web::Json(Balances {
                items: accounts
                    .iter()
                    .map(|a| BalanceView {
                        available: a.available(),
                        pending: a.credits_pending,
                        currency: a.currency.clone(),
                    })
                    .collect(),
            }))
        })
        .await
}

/// One ledger line of the caller's.
#[derive(Debug, Serialize, ToSchema)]
pub struct LedgerLine {
    /// Transfer id.
    pub id: i64,
    /// `credit` (money in) or `debit` (money out).
    pub direction: String,
    /// How much.
    pub amount: Money,
    /// `posted`, `pending`, `post_pending` or `void_pending`.
    pub kind: String,
    /// The ticket it concerns.
    pub ticket_id: Option<i64>,
    /// What it was.
    pub memo: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// `?limit=&cursor=`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LinesQuery {
    /// 1–100, default 20.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// From the previous page.
    pub cursor: Option<String>,
}

/// The caller's ledger lines, newest first.
#[utoipa::path(get, path = "/api/v1/me/transfers", tag = "money", security(("bearer" = [])), params(LinesQuery),
    responses((status = 200, body = Page<LedgerLine>), (status = 401, body = Problem)))]
pub async fn transfers(
    state: web::Data<AppState>,
    user: AuthUser,
    query: web::Query<LinesQuery>,
) -> AppResult<web::Json<Page<LedgerLine>>> {
    let paging = Paging::parse(query.limit, query.cursor.as_deref())?;
    state
        .db(move |conn| {
            let (mine, rows) =
                crate::ledger::user_transfers(conn, user.id, paging.cursor, paging.fetch())?;
            Page::from_rows(
                rows,
                &paging,
                |t| t.id,
                |t| {
                    Ok(LedgerLine {
                        id: t.id,
                        direction: if mine.contains(&t.credit_account_id) {
                            "credit"
                        } else {
                            "debit"
                        }
                        .into(),
                        amount: Money {
                            amount: t.amount,
                            currency: t.currency,
                        },
                        kind: t.kind,
                        ticket_id: t.ticket_id,
                        memo: t.memo,
                        created_at: utc(t.created_at),
                    })
                },
            )
            .map(web::Json)
        })
        .await
}

/// Body of `POST /tickets/{id}/bids`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BidBody {
    /// Price, minor units, 100 to 10,000,000.
    #[schema(minimum = 100, maximum = 10_000_000)]
    pub amount: i64,
    /// The project's currency (ISO 4217, any case).
    #[schema(pattern = "^[A-Za-z]{3}$")]
    pub currency: String,
    /// Promised hours to resolve, 1–8760.
    #[schema(minimum = 1, maximum = 8760)]
    pub eta_hours: i32,
    /// Pitch to the requester, at most 5000 characters.
    #[serde(default)]
    #[schema(max_length = 5000)]
    pub message: String,
}

/// A bid.
#[derive(Debug, Serialize, ToSchema)]
pub struct BidView {
    /// Id.
    pub id: i64,
    /// Ticket.
    pub ticket_id: i64,
    /// The bidding helper.
    pub helper_id: i64,
    /// Price.
    pub amount: Money,
    /// Promised hours.
    pub eta_hours: i32,
    /// Pitch.
    pub message: String,
    /// `open`, `accepted`, `rejected` or `withdrawn`.
    pub status: String,
    /// Created.
    pub created_at: DateTime<Utc>,
}

impl From<&crate::domain::bids::Bid> for BidView {
    fn from(b: &crate::domain::bids::Bid) -> Self {
        BidView {
            id: b.id,
            ticket_id: b.ticket_id,
            helper_id: b.helper_id,
            amount: Money {
                amount: b.amount,
                currency: b.currency.clone(),
            },
            eta_hours: b.eta_hours,
            message: b.message.clone(),
            status: b.status.clone(),
            created_at: utc(b.created_at),
        }
    }
}

/// An accepted bid with the bounty that funds it.
#[derive(Debug, Serialize, ToSchema)]
pub struct BidAccepted {
    /// The bid.
    pub bid: BidView,
    /// The escrow funding.
    pub bounty: BountyView,
    /// Its payment: the ticket goes to the bidder when it succeeds (with
    /// `requires_action`, once the payer confirmed with `client_secret`).
    pub payment: PaymentView,
}

/// Bid on an open ticket (approved helpers of its project).
#[utoipa::path(post, path = "/api/v1/tickets/{id}/bids", tag = "money", security(("bearer" = [])),
    params(("id" = i64, Path, description = "ticket id")), request_body = BidBody,
    responses((status = 201, body = BidView), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create_bid(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
    body: web::Json<BidBody>,
) -> AppResult<HttpResponse> {
    let id = id.into_inner();
    let b = body.into_inner();
    let bid = state
        .db(move |conn| {
            crate::domain::bids::create(
                conn,
                id,
                user.id,
                b.amount,
                &b.currency.to_ascii_lowercase(),
                b.eta_hours,
                &b.message,
            )
        })
        .await?;
    Ok(HttpResponse::Created().json(BidView::from(&bid)))
}

/// Bids on a ticket: all for its requester and maintainers, one's own for a helper.
#[utoipa::path(get, path = "/api/v1/tickets/{id}/bids", tag = "money", security(("bearer" = [])),
    params(("id" = i64, Path, description = "ticket id")),
    responses((status = 200, body = [BidView]), (status = 401, body = Problem), (status = 404, body = Problem)))]
pub async fn list_bids(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
) -> AppResult<web::Json<Vec<BidView>>> {
    let id = id.into_inner();
    state
        .db(move |conn| {
            Ok(web::Json(
                crate::domain::bids::list(conn, id, user.id)?
                    .iter()
                    .map(BidView::from)
                    .collect(),
            ))
        })
        .await
}

/// Accept a bid (the ticket's requester): collects the price into escrow;
/// the ticket is assigned to the bidder when the payment succeeds (the
/// sandbox: at once).
#[utoipa::path(post, path = "/api/v1/bids/{id}/accept", tag = "money", security(("bearer" = [])),
    params(("id" = i64, Path, description = "bid id"), ("Idempotency-Key" = Option<String>, Header, description = "replays the first response")),
    responses((status = 200, body = BidAccepted), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn accept_bid(
    state: web::Data<AppState>,
    req: HttpRequest,
    key: IdempotencyKey,
    user: AuthUser,
    id: web::Path<i64>,
) -> AppResult<HttpResponse> {
    let id = id.into_inner();
    let st = state.clone();
    idempotent(&state, &req, key, user.id, &id, |claim| async move {
        let gateway = st.gateway.clone();
        let (bid, bounty, payment) = st
            .blocking(move |pool| {
                crate::domain::bids::accept(
                    pool,
                    gateway.as_ref(),
                    id,
                    user.id,
                    claim.as_ref().map(Claim::key),
                )
            })
            .await?;
        let view = BidAccepted {
            bid: BidView::from(&bid),
            payment: PaymentView {
                gateway: bounty.gateway.clone(),
                status: payment.status,
                client_secret: payment.client_secret,
                test_money: st.gateway.test_money(),
            },
            bounty: BountyView::from(&bounty),
        };
        Ok((
            StatusCode::OK,
            serde_json::to_value(view).map_err(AppError::internal)?,
        ))
    })
    .await
}

/// Withdraw one's own open bid.
#[utoipa::path(post, path = "/api/v1/bids/{id}/withdraw", tag = "money", security(("bearer" = [])),
    params(("id" = i64, Path, description = "bid id")),
    responses((status = 200, body = BidView), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn withdraw_bid(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
) -> AppResult<web::Json<BidView>> {
    let id = id.into_inner();
    state
        .db(move |conn| {
            Ok(web::Json(BidView::from(&crate::domain::bids::withdraw(
                conn, id, user.id,
            )?)))
        })
        .await
}

/// `?from=&to=&format=`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatementQuery {
    /// Start, inclusive: a date (`2026-11-01`) or an RFC 3339 time. Default: the beginning.
    pub from: Option<String>,
    /// End, exclusive: a date or an RFC 3339 time. Default: now.
    pub to: Option<String>,
    /// `json` (default) or `csv`.
    #[param(value_type = Option<StatementFormat>)]
    pub format: Option<String>,
}

/// The two formats of a statement.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum StatementFormat {
    /// `application/json`, a [`Statement`].
    Json,
    /// `text/csv`, one line per release.
    Csv,
}

/// One release in a statement.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatementLine {
    /// Ticket.
    pub ticket_id: i64,
    /// The ticket's money round this release closed (a ticket reopened
    /// after it was paid is paid again in its next round).
    pub round: i32,
    /// Its title.
    pub title: String,
    /// When the escrow was released.
    pub released_at: DateTime<Utc>,
    /// The resolving helper.
    pub helper_id: i64,
    /// Whole amount released, minor units.
    pub amount: i64,
    /// The helper's part.
    pub helper_amount: i64,
    /// The project's commission.
    pub commission: i64,
    /// The platform's fee.
    pub platform_fee: i64,
    /// Commission rate applied, basis points.
    pub commission_bps: i32,
    /// Platform rate applied, basis points.
    pub platform_bps: i32,
}

/// A project's revenue statement.
#[derive(Debug, Serialize, ToSchema)]
pub struct Statement {
    /// Project slug.
    pub project: String,
    /// Currency of every amount.
    pub currency: String,
    /// Range start (inclusive), if given.
    pub from: Option<DateTime<Utc>>,
    /// Range end (exclusive).
    pub to: DateTime<Utc>,
    /// Releases in the range, oldest first.
    pub lines: Vec<StatementLine>,
    /// Sum of `amount`.
    pub total_amount: i64,
    /// Sum of `commission`: the project's revenue.
    pub total_commission: i64,
    /// Sum of `platform_fee`.
    pub total_platform_fee: i64,
    /// Sum of `helper_amount`.
    pub total_helpers: i64,
    /// Paid subscription periods in the range, oldest first: the project
    /// is the seller and keeps all but the platform's fee.
    pub subscription_lines: Vec<SubscriptionLine>,
    /// Sum of the subscription lines' `project_amount`.
    pub total_subscription_revenue: i64,
}

/// A paid subscription period in a statement.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriptionLine {
    /// Subscription.
    pub subscription_id: i64,
    /// Its period, 1-based.
    pub period: i32,
    /// The plan's name.
    pub plan: String,
    /// When it was paid.
    pub paid_at: Option<DateTime<Utc>>,
    /// Charged, minor units.
    pub amount: i64,
    /// The project's part.
    pub project_amount: i64,
    /// The platform's fee.
    pub platform_fee: i64,
}

pub fn parse_bound(field: &str, raw: &str) -> AppResult<chrono::NaiveDateTime> {
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return Ok(t.with_timezone(&Utc).naive_utc());
    }
    chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .ok_or_else(|| AppError::field(field, "must be a date (YYYY-MM-DD) or an RFC 3339 time"))
}

/// A text cell a spreadsheet will not run: a leading `=`, `+`, `-`, `@`,
/// tab or carriage return would start a formula, so such text gets a
/// leading apostrophe (OWASP's advice on CSV injection). Quoting is the
/// csv writer's (RFC 4180).
pub(crate) fn csv_text(s: &str) -> std::borrow::Cow<'_, str> {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}").into()
    } else {
        s.into()
    }
}

/// Revenue statement of a project with commission and platform fee per
/// ticket (maintainers only), as JSON or CSV.
#[utoipa::path(get, path = "/api/v1/projects/{slug}/statement", tag = "money", security(("bearer" = [])),
    params(("slug" = String, Path, description = "project slug"), StatementQuery),
    responses((status = 200, description = "JSON, or CSV with `format=csv`",
               content((Statement = "application/json"), (String = "text/csv"))),
              (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn statement(
    state: web::Data<AppState>,
    user: AuthUser,
    slug: web::Path<String>,
    query: web::Query<StatementQuery>,
) -> AppResult<HttpResponse> {
    let slug = slug.into_inner();
    let q = query.into_inner();
    let from = q
        .from
        .as_deref()
        .map(|v| parse_bound("from", v))
        .transpose()?;
    let to =
        q.to.as_deref()
            .map(|v| parse_bound("to", v))
            .transpose()?
            .unwrap_or_else(now);
    let csv = match q.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(_) => return Err(AppError::field("format", "must be `json` or `csv`")),
    };
    let statement = state
        .db(move |conn| load_statement(conn, &slug, user.id, from, to))
        .await?;
    if !csv {
        return Ok(HttpResponse::Ok().json(statement));
    }
    let out = statement_csv(&statement)?;
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            "content-disposition",
            format!(
                "attachment; filename=\"{}-statement.csv\"",
                statement.project
            ),
        ))
        .body(out))
}

/// A project's revenue statement for `[from, to)`: maintainers only (403
/// for others, 404 for an unknown project).
pub fn load_statement(
    conn: &mut crate::db::DbConnection,
    slug: &str,
    user: i64,
    from: Option<chrono::NaiveDateTime>,
    to: chrono::NaiveDateTime,
) -> AppResult<Statement> {
    use crate::db::schema::{releases as r, tickets as t};
    let p = crate::domain::projects::by_slug(conn, slug)?;
    crate::domain::projects::require_maintainer(conn, p.id, user)?;
    let mut query = r::table
        .inner_join(t::table.on(t::id.eq(r::ticket_id)))
        .filter(r::project_id.eq(p.id))
        .filter(r::created_at.lt(to))
        .select((money::Release::as_select(), t::title))
        .order(r::created_at.asc())
        .into_boxed();
    if let Some(f) = from {
        query = query.filter(r::created_at.ge(f));
    }
    let rows: Vec<(money::Release, String)> = query.load(conn)?;
    let lines: Vec<StatementLine> = rows
        .into_iter()
        .map(|(rel, title)| StatementLine {
            ticket_id: rel.ticket_id,
            round: rel.round,
            title,
            released_at: utc(rel.created_at),
            helper_id: rel.helper_id,
            amount: rel.amount,
            helper_amount: rel.helper_amount,
            commission: rel.project_amount,
            platform_fee: rel.platform_amount,
            commission_bps: rel.commission_bps,
            platform_bps: rel.platform_bps,
        })
        .collect();
    let subscription_lines: Vec<SubscriptionLine> =
        crate::domain::plans::paid_periods(conn, p.id, from, to)?
            .into_iter()
            .map(|(period, plan)| SubscriptionLine {
                subscription_id: period.subscription_id,
                period: period.number,
                plan,
                paid_at: period.paid_at.map(utc),
                amount: period.amount,
                project_amount: period.project_amount,
                platform_fee: period.platform_amount,
            })
            .collect();
    Ok(Statement {
        project: p.slug,
        currency: p.currency,
        from: from.map(utc),
        to: utc(to),
        total_amount: lines.iter().map(|l| l.amount).sum(),
        total_commission: lines.iter().map(|l| l.commission).sum(),
        total_platform_fee: lines.iter().map(|l| l.platform_fee).sum(),
        total_helpers: lines.iter().map(|l| l.helper_amount).sum(),
        lines,
        total_subscription_revenue: subscription_lines.iter().map(|l| l.project_amount).sum(),
        subscription_lines,
    })
}

/// The statement as RFC 4180 CSV, text cells guarded against formulas.
pub fn statement_csv(statement: &Statement) -> AppResult<Vec<u8>> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    let write = |w: &mut csv::Writer<Vec<u8>>| -> csv::Result<()> {
        w.write_record([
            "ticket_id",
            "title",
            "released_at",
            "helper_id",
            "currency",
            "amount",
            "helper_amount",
            "commission",
            "platform_fee",
            "commission_bps",
            "platform_bps",
            "round",
        ])?;
        for l in &statement.lines {
            w.write_record([
                l.ticket_id.to_string().as_str(),
                &csv_text(&l.title),
                &l.released_at.to_rfc3339(),
                &l.helper_id.to_string(),
                &statement.currency,
                &l.amount.to_string(),
                &l.helper_amount.to_string(),
                &l.commission.to_string(),
                &l.platform_fee.to_string(),
                &l.commission_bps.to_string(),
                &l.platform_bps.to_string(),
                &l.round.to_string(),
            ])?;
        }
        Ok(())
    };
    write(&mut w).map_err(AppError::internal)?;
    let out = w
        .into_inner()
        .map_err(|e| AppError::internal(anyhow::anyhow!("{e}")))?;
    Ok(out)
}

/// A payout onboarding link.
#[derive(Debug, Serialize, ToSchema)]
pub struct OnboardingView {
    /// Where the payee completes onboarding with the gateway.
    pub url: String,
    /// The gateway's payout account.
    pub account_id: String,
    /// Whether payouts can be sent now.
    pub ready: bool,
    /// `sandbox` or `stripe`.
    pub gateway: String,
}

fn onboarding_view(o: crate::domain::payouts::Onboarding, gateway: &str) -> OnboardingView {
    OnboardingView {
        url: o.url,
        account_id: o.account_id,
        ready: o.ready,
        gateway: gateway.to_owned(),
    }
}

/// Set up (or resume) the caller's payout account; returns the onboarding link.
#[utoipa::path(post, path = "/api/v1/me/payouts/onboarding", tag = "money", security(("bearer" = [])),
    responses((status = 200, body = OnboardingView), (status = 401, body = Problem), (status = 503, body = Problem)))]
pub async fn onboarding(
    state: web::Data<AppState>,
    user: AuthUser,
) -> AppResult<web::Json<OnboardingView>> {
    let gateway = state.gateway.clone();
    state
        .blocking(move |pool| {
            let o = crate::domain::payouts::onboard(
                pool,
                gateway.as_ref(),
                crate::domain::payouts::Payee::User(user.id),
            )?;
            Ok(web::Json(onboarding_view(o, gateway.name())))
        })
        .await
}

/// Set up (or resume) a project's payout account (maintainers).
#[utoipa::path(post, path = "/api/v1/projects/{slug}/payouts/onboarding", tag = "money", security(("bearer" = [])),
    params(("slug" = String, Path, description = "project slug")),
    responses((status = 200, body = OnboardingView), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn project_onboarding(
    state: web::Data<AppState>,
    user: AuthUser,
    slug: web::Path<String>,
) -> AppResult<web::Json<OnboardingView>> {
    let slug = slug.into_inner();
    let gateway = state.gateway.clone();
    let project = state
        .db(move |conn| {
            let p = crate::domain::projects::by_slug(conn, &slug)?;
            crate::domain::projects::require_maintainer(conn, p.id, user.id)?;
            // The project's revenue is its maintainer of record's to direct.
            if crate::domain::handovers::steward(conn, p.id)? != user.id {
                return Err(crate::error::AppError::forbidden(
                    "only the project's maintainer of record may set up its payout account",
                ));
            }
            Ok(p.id)
        })
        .await?;
    state
        .blocking(move |pool| {
            let o = crate::domain::payouts::onboard(
                pool,
                gateway.as_ref(),
                crate::domain::payouts::Payee::Project(project),
            )?;
            Ok(web::Json(onboarding_view(o, gateway.name())))
        })
        .await
}
