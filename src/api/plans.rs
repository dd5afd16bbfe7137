//! Plans, subscriptions and ticket upgrades (`domain::plans`).

use super::idempotency::{idempotent, Claim, IdempotencyKey};
use super::money::{BountyView, PaymentView};
use super::views::{utc, Money};
use crate::auth::AuthUser;
use crate::domain::plans::{self, Plan, Subscription};
use crate::domain::projects::{self, Project};
use crate::error::{AppError, AppResult, Problem};
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A plan as offered.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlanView {
    /// Id; null for pay as you go, which is no subscription.
    pub id: Option<i64>,
    /// `pay_as_you_go`, `monthly` or `enterprise`.
    pub kind: String,
    /// Name.
    pub name: String,
    /// Smallest monthly price (pay as you go: 0); a subscriber may pay more.
    pub price: Money,
    /// Ticket upgrades included per month.
    pub included_upgrades: i32,
    /// Price of an upgrade beyond the included ones.
    pub upgrade_price: Money,
    /// Consulting hours included per month.
    pub consulting_hours: i32,
    /// Enterprise: first response guaranteed within, business hours.
    pub response_hours: Option<i32>,
    /// Months booked and paid at a time (pay as you go: 0).
    pub term_months: i32,
    /// Discount for requesters working for another open-source project,
    /// percent (granted after proof through GitHub).
    pub floss_discount_pct: i32,
    /// Enterprise: share of a month's fee credited per breached ticket.
    pub service_credit_pct: i32,
}

/// The pay-as-you-go offer of `p`.
pub fn pay_as_you_go(p: &Project) -> PlanView {
    PlanView {
        id: None,
        kind: "pay_as_you_go".into(),
        name: "Pay as you go".into(),
        price: Money {
            amount: 0,
            currency: p.currency.clone(),
        },
        included_upgrades: 0,
        upgrade_price: Money {
            amount: p.upgrade_price,
            currency: p.currency.clone(),
        },
        consulting_hours: 0,
        response_hours: None,
        term_months: 0,
        floss_discount_pct: 0,
        service_credit_pct: 0,
    }
}

/// The view of a plan of `p`.
pub fn plan_view(plan: &Plan, p: &Project) -> PlanView {
    PlanView {
        id: Some(plan.id),
        kind: plan.kind.clone(),
        name: plan.name.clone(),
        price: Money {
            amount: plan.price,
            currency: plan.currency.clone(),
        },
        included_upgrades: plan.included_upgrades,
        upgrade_price: Money {
            amount: plan.upgrade_price.unwrap_or(p.upgrade_price),
            currency: plan.currency.clone(),
        },
        consulting_hours: plan.consulting_hours,
        response_hours: plan.response_hours,
        term_months: plan.term_months,
        floss_discount_pct: plan.floss_discount_pct,
        service_credit_pct: plan.service_credit_pct,
    }
}

/// A new plan.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanBody {
    /// `monthly` or `enterprise`.
    pub kind: String,
    /// 1–80 characters, unique in the project.
    pub name: String,
    /// The smallest monthly price, in the project's currency.
    pub price: Money,
    /// Upgrades included per month, 0–1000.
    pub included_upgrades: Option<i32>,
    /// Price of a further upgrade (default: the project's).
    pub upgrade_price: Option<Money>,
    /// Consulting hours per month, 0–160.
    pub consulting_hours: Option<i32>,
    /// Enterprise (required): first response within 1–720 business hours.
    pub response_hours: Option<i32>,
    /// Monthly: 1; enterprise: 6 (default) or 12.
    pub term_months: Option<i32>,
    /// FLOSS discount, 0–90 percent.
    pub floss_discount_pct: Option<i32>,
    /// Enterprise: service credit per breach, 0–100 percent of a month's fee (default 10).
    pub service_credit_pct: Option<i32>,
}

impl PlanBody {
    /// The domain's form of it.
    pub fn to_new(&self) -> plans::NewPlan {
        plans::NewPlan {
            kind: self.kind.clone(),
            name: self.name.clone(),
            price: self.price.amount,
            currency: self.price.currency.to_ascii_lowercase(),
            included_upgrades: self.included_upgrades,
            upgrade_price: self
                .upgrade_price
                .as_ref()
                .map(|m| (m.amount, m.currency.to_ascii_lowercase())),
            consulting_hours: self.consulting_hours,
            response_hours: self.response_hours,
            term_months: self.term_months,
            floss_discount_pct: self.floss_discount_pct,
            service_credit_pct: self.service_credit_pct,
        }
    }
}

/// Publish a plan (maintainers).
#[utoipa::path(post, path = "/api/v1/projects/{slug}/plans", tag = "plans", security(("bearer" = [])),
    params(("slug" = String, Path, description = "project slug")), request_body = PlanBody,
    responses((status = 201, body = PlanView), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create_plan(
    state: web::Data<AppState>,
    user: AuthUser,
    slug: web::Path<String>,
    body: web::Json<PlanBody>,
) -> AppResult<HttpResponse> {
    let slug = slug.into_inner();
    let body = body.into_inner();
    let view = state
        .db(move |conn| {
            let p = projects::by_slug(conn, &slug)?;
            let plan = plans::create_plan(conn, &p, user.id, &body.to_new())?;
            tracing::info!(project = %p.slug, plan = plan.id, user_id = user.id, "plan published");
            Ok(plan_view(&plan, &p))
        })
        .await?;
    Ok(HttpResponse::Created().json(view))
}

/// Every plan of a project, pay as you go first (anyone).
#[utoipa::path(get, path = "/api/v1/projects/{slug}/plans", tag = "plans",
    params(("slug" = String, Path, description = "project slug")),
    responses((status = 200, body = [PlanView]), (status = 404, body = Problem)))]
pub async fn list_plans(
    state: web::Data<AppState>,
    slug: web::Path<String>,
) -> AppResult<web::Json<Vec<PlanView>>> {
    let slug = slug.into_inner();
    state
        .db(move |conn| {
            let p = projects::by_slug(conn, &slug)?;
            let mut out = vec![pay_as_you_go(&p)];
            out.extend(
                plans::list_plans(conn, p.id)?
                    .iter()
                    .map(|plan| plan_view(plan, &p)),
            );
            Ok(web::Json(out))
        })
        .await
}

/// A subscription with its period and what is left of its credits.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriptionView {
    /// Id.
    pub id: i64,
    /// Plan.
    pub plan_id: i64,
    /// The plan's name.
    pub plan: String,
    /// `monthly` or `enterprise`.
    pub kind: String,
    /// The project's slug.
    pub project: String,
    /// `professional`, `personal` or `floss`.
    pub context: String,
    /// `pending_payment`, `active`, `past_due` (a renewal failed; the plan
    /// holds until `grace_until`), `cancelled`, `lapsed` or `failed`.
    pub status: String,
    /// Monthly price chosen, before the discount.
    pub monthly_price: Money,
    /// FLOSS discount, percent.
    pub discount_pct: i32,
    /// The period being served (0 before the first is paid).
    pub current_period: i32,
    /// Its start.
    pub period_start: Option<DateTime<Utc>>,
    /// Its end: the next renewal, or the end when cancelled.
    pub period_end: Option<DateTime<Utc>>,
    /// A past-due subscription lapses to pay as you go then.
    pub grace_until: Option<DateTime<Utc>>,
    /// Ends at the end of the paid period.
    pub cancel_at_period_end: bool,
    /// Included upgrades left this period.
    pub upgrades_left: i64,
    /// Included consulting minutes left this period.
    pub consulting_minutes_left: i64,
    /// Service credit for missed response times, taken off the next charges.
    pub service_credit: Money,
    /// Ended.
    pub ended_at: Option<DateTime<Utc>>,
}

/// The view of `sub` (reads its plan, project and credits).
pub fn subscription_view(
    conn: &mut crate::db::DbConnection,
    sub: &Subscription,
) -> AppResult<SubscriptionView> {
    let plan = plans::get_plan(conn, sub.plan_id)?;
    let project = projects::by_id(conn, sub.project_id)?;
    let (upgrades_left, consulting_minutes_left) = plans::credits_left(conn, sub)?;
    Ok(SubscriptionView {
        id: sub.id,
        plan_id: sub.plan_id,
        plan: plan.name,
        kind: plan.kind,
        project: project.slug,
        context: sub.context.clone(),
        status: sub.status.clone(),
        monthly_price: Money {
            amount: sub.monthly_price,
            currency: sub.currency.clone(),
        },
        discount_pct: sub.discount_pct,
        current_period: sub.current_period,
        period_start: sub.period_start.map(utc),
        period_end: sub.period_end.map(utc),
        grace_until: sub.grace_until.map(utc),
        cancel_at_period_end: sub.cancel_at_period_end,
        upgrades_left,
        consulting_minutes_left,
        service_credit: Money {
            amount: plans::service_credit_left(conn, sub)?,
            currency: sub.currency.clone(),
        },
        ended_at: sub.ended_at.map(utc),
    })
}

/// A subscription request.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscribeBody {
    /// A plan of the project.
    pub plan_id: i64,
    /// `professional`, `personal` or `floss` (needs proof through GitHub).
    pub context: String,
    /// A monthly price above the plan's minimum, minor units.
    pub price: Option<i64>,
}

/// A new subscription and its first payment.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriptionCreated {
    /// The subscription (active once the payment succeeded).
    pub subscription: SubscriptionView,
    /// The first period's payment.
    pub payment: PaymentView,
}

/// Subscribe to a plan of the project; the first period is charged at once.
#[utoipa::path(post, path = "/api/v1/projects/{slug}/subscriptions", tag = "plans", security(("bearer" = [])),
    params(("slug" = String, Path, description = "project slug"), ("Idempotency-Key" = Option<String>, Header, description = "replays the first response")),
    request_body = SubscribeBody,
    responses((status = 201, body = SubscriptionCreated), (status = 401, body = Problem), (status = 404, body = Problem),
              (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn subscribe(
    state: web::Data<AppState>,
    req: HttpRequest,
    key: IdempotencyKey,
    user: AuthUser,
    slug: web::Path<String>,
    body: web::Json<SubscribeBody>,
) -> AppResult<HttpResponse> {
    let slug = slug.into_inner();
    let body = body.into_inner();
    let st = state.clone();
    let request = plans::SubscribeRequest {
        plan_id: body.plan_id,
        context: body.context.clone(),
        price: body.price,
    };
    idempotent(&state, &req, key, user.id, &body, |claim| async move {
        let gateway = st.gateway.clone();
        let bps = st.config.platform_fee_bps;
        let view = st
            .blocking(move |pool| {
                {
                    let mut conn = pool.get()?;
                    let p = projects::by_slug(&mut conn, &slug)?;
                    let plan = plans::get_plan(&mut conn, request.plan_id).ok();
                    if plan.is_none_or(|pl| pl.project_id != p.id) {
                        return Err(AppError::field("plan_id", "is not a plan of this project"));
                    }
                }
                let (sub, payment) = plans::subscribe(
                    pool,
                    gateway.as_ref(),
                    bps,
                    user.id,
                    &request,
                    claim.as_ref().map(Claim::key),
                )?;
                tracing::info!(subscription = sub.id, user_id = user.id, status = %sub.status, "subscribed");
                let mut conn = pool.get()?;
                Ok(SubscriptionCreated {
                    subscription: subscription_view(&mut conn, &sub)?,
                    payment: PaymentView {
                        gateway: sub.gateway.clone(),
                        status: payment.status,
                        client_secret: payment.client_secret,
                        test_money: gateway.test_money(),
                    },
                })
            })
            .await?;
        Ok((
            StatusCode::CREATED,
            serde_json::to_value(view).map_err(AppError::internal)?,
        ))
    })
    .await
}

/// The caller's subscriptions, newest first, with periods and credits left.
#[utoipa::path(get, path = "/api/v1/me/subscriptions", tag = "plans", security(("bearer" = [])),
    responses((status = 200, body = [SubscriptionView]), (status = 401, body = Problem)))]
pub async fn my_subscriptions(
    state: web::Data<AppState>,
    user: AuthUser,
) -> AppResult<web::Json<Vec<SubscriptionView>>> {
    state
        .db(move |conn| {
            let subs = plans::of_user(conn, user.id)?;
            let views = subs
                .iter()
                .map(|s| subscription_view(conn, s))
                .collect::<AppResult<Vec<_>>>()?;
            Ok(web::Json(views))
        })
        .await
}

/// Cancel a subscription (the subscriber): it runs to the end of the paid
/// period and is not renewed; nothing paid is refunded.
#[utoipa::path(post, path = "/api/v1/subscriptions/{id}/cancel", tag = "plans", security(("bearer" = [])),
    params(("id" = i64, Path, description = "subscription id")),
    responses((status = 200, body = SubscriptionView), (status = 401, body = Problem), (status = 404, body = Problem),
              (status = 409, body = Problem)))]
pub async fn cancel(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<i64>,
) -> AppResult<web::Json<SubscriptionView>> {
    let id = id.into_inner();
    state
        .db(move |conn| {
            let sub = plans::cancel(conn, id, user.id)?;
            tracing::info!(
                subscription = sub.id,
                user_id = user.id,
                "subscription cancelled"
            );
            Ok(web::Json(subscription_view(conn, &sub)?))
        })
        .await
}

/// How a ticket was upgraded.
#[derive(Debug, Serialize, ToSchema)]
pub struct UpgradeView {
    /// The ticket.
    pub ticket_id: i64,
    /// `included` (a credit of the requester's plan) or `paid` (a bounty of
    /// the upgrade price).
    pub via: String,
    /// With `included`: upgrades left this period.
    pub upgrades_left: Option<i64>,
    /// With `paid`: the bounty.
    pub bounty: Option<BountyView>,
    /// With `paid`: its payment.
    pub payment: Option<PaymentView>,
}

/// Move a ticket up the queue (the requester): spends an included upgrade
/// of their plan, or pays the upgrade price as a bounty.
#[utoipa::path(post, path = "/api/v1/tickets/{id}/upgrade", tag = "plans", security(("bearer" = [])),
    params(("id" = i64, Path, description = "ticket id"), ("Idempotency-Key" = Option<String>, Header, description = "replays the first response")),
    responses((status = 200, body = UpgradeView), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn upgrade(
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
        let test_money = gateway.test_money();
        let done = st
            .blocking(move |pool| {
                plans::upgrade(
                    pool,
                    gateway.as_ref(),
                    id,
                    user.id,
                    claim.as_ref().map(Claim::key),
                )
            })
            .await?;
        tracing::info!(ticket = id, user_id = user.id, "ticket upgraded");
        let view = match done {
            plans::Upgrade::Included { upgrades_left } => UpgradeView {
                ticket_id: id,
                via: "included".into(),
                upgrades_left: Some(upgrades_left),
                bounty: None,
                payment: None,
            },
            plans::Upgrade::Paid(paid) => {
                let (b, p) = *paid;
                UpgradeView {
                    ticket_id: id,
                    via: "paid".into(),
                    upgrades_left: None,
                    payment: Some(PaymentView {
                        gateway: b.gateway.clone(),
                        status: p.status,
                        client_secret: p.client_secret,
                        test_money,
                    }),
                    bounty: Some(BountyView::from(&b)),
                }
            }
        };
        Ok((
            StatusCode::OK,
            serde_json::to_value(view).map_err(AppError::internal)?,
        ))
    })
    .await
}
