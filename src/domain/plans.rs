//! What a project sells: plans, the subscriptions to them and their paid
//! periods, and the credits a period includes.
//!
//! * **Pay as you go** is always offered and is no row: a ticket is moved up
//!   the queue by a bounty of the project's `upgrade_price`.
//! * A **monthly** plan has a minimum price (a subscriber may pay more),
//!   included ticket upgrades and consulting hours per month, and a price for
//!   further upgrades. An **enterprise** plan is booked in terms of 6 (or 12)
//!   months, paid at the start of each term, with a guaranteed first
//!   response in business hours and a service credit per breach.
//! * A subscription keeps the terms it was taken at (price, discount,
//!   platform fee); a plan's later change applies from the next period.
//! * Each period is charged through the payment gateway (idempotency key
//!   `subscription_period:{id}`) and booked exactly once however often the
//!   gateway reports it: gateway clearing → the project's revenue and the
//!   platform's fee, and the period's credits issued to the subscription's
//!   credit accounts (units [`ledger::CREDIT_UPGRADES`] and
//!   [`ledger::CREDIT_CONSULTING_MINUTES`]). What is left of a period's
//!   credits expires when the next begins or the subscription ends.
//! * A failed renewal leaves the subscription `past_due` with the plan kept
//!   for [`GRACE_DAYS`]; then it lapses to pay as you go. Money that arrives
//!   for a subscription that already ended is booked and returned at once.
//!   Nothing already paid is taken back by a cancellation: the plan runs to
//!   the end of the paid period.

use crate::db::schema::{
    floss_proofs, plans, subscription_periods as periods, subscriptions as subs, tickets,
};
use crate::db::{write_tx, DbConnection, DbPool};
use crate::domain::money::CollectError;
use crate::domain::now;
use crate::domain::projects::{self as project_domain, Project};
use crate::error::{AppError, AppResult, ErrorCode, FieldError};
use crate::ledger::{self, AccountKind, NewTransfer, TransferKind};
use crate::payments::{BillingRequest, Payment, PaymentGateway, PaymentRequest, PaymentStatus};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use guildhall_jobs::BackgroundJob as _;

/// Smallest monthly price and upgrade price, minor units.
pub const MIN_PRICE: i64 = 100;
/// Largest monthly price and upgrade price, minor units.
pub const MAX_PRICE: i64 = 10_000_000;
/// Plans one project may offer.
pub const MAX_PLANS: i64 = 20;
/// Days a subscription whose renewal failed keeps its plan.
pub const GRACE_DAYS: i64 = 7;
/// How long a FLOSS proof holds before it is checked again.
pub const PROOF_VALID_DAYS: i64 = 365;
/// The contexts a requester subscribes in.
pub const CONTEXTS: [&str; 3] = ["professional", "personal", "floss"];
/// Subscription states in which the plan applies.
pub const LIVE: [&str; 2] = ["active", "past_due"];

/// A row of `plans`.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = plans)]
pub struct Plan {
    /// Id.
    pub id: i64,
    /// Project.
    pub project_id: i64,
    /// `monthly` or `enterprise`.
    pub kind: String,
    /// Shown to buyers.
    pub name: String,
    /// Smallest monthly price, minor units.
    pub price: i64,
    /// The project's currency.
    pub currency: String,
    /// Ticket upgrades included per month.
    pub included_upgrades: i32,
    /// Price of a further upgrade; `None`: the project's.
    pub upgrade_price: Option<i64>,
    /// Consulting hours included per month.
    pub consulting_hours: i32,
    /// Enterprise: first response guaranteed within, business hours.
    pub response_hours: Option<i32>,
    /// Months booked and paid at a time.
    pub term_months: i32,
    /// Discount for requesters working for another open-source project.
    pub floss_discount_pct: i32,
    /// Enterprise: share of a month's fee credited per breached ticket.
    pub service_credit_pct: i32,
    /// Maintainer who made it.
    pub created_by: i64,
    /// Created.
    pub created_at: NaiveDateTime,
}

/// A plan as a maintainer asks for it; absent values take the defaults.
#[derive(Debug, Clone, Default)]
pub struct NewPlan {
    /// `monthly` or `enterprise`.
    pub kind: String,
    /// Shown to buyers, 1–80 characters.
    pub name: String,
    /// Smallest monthly price, minor units.
    pub price: i64,
    /// Must be the project's.
    pub currency: String,
    /// 0–1000 per month (default 0).
    pub included_upgrades: Option<i32>,
    /// Price and currency of a further upgrade.
    pub upgrade_price: Option<(i64, String)>,
    /// 0–160 per month (default 0).
    pub consulting_hours: Option<i32>,
    /// Enterprise only, required: 1–720 business hours.
    pub response_hours: Option<i32>,
    /// Monthly: 1; enterprise: 6 (default) or 12.
    pub term_months: Option<i32>,
    /// 0–90 (default 0).
    pub floss_discount_pct: Option<i32>,
    /// Enterprise only: 0–100 (default 10).
    pub service_credit_pct: Option<i32>,
}

fn check_range<T: PartialOrd + std::fmt::Display + Copy>(
    errors: &mut Vec<FieldError>,
    field: &str,
    value: Option<T>,
    range: std::ops::RangeInclusive<T>,
) {
    if let Some(v) = value {
        if !range.contains(&v) {
            errors.push(FieldError::new(
                field,
                format!(
                    "must be between {} and {} (got {v})",
                    range.start(),
                    range.end()
                ),
            ));
        }
    }
}

/// Checks every field of `new` for `project`, naming each bad one.
fn validate(new: &NewPlan, project: &Project) -> Result<(), AppError> {
    let mut errors = Vec::new();
    let enterprise = match new.kind.as_str() {
        "monthly" => false,
        "enterprise" => true,
        _ => {
            errors.push(FieldError::new(
                "kind",
                "must be monthly or enterprise (pay as you go is always offered)",
            ));
            false
        }
    };
    let name = new.name.trim();
    if name.is_empty() || name.chars().count() > 80 || name.chars().any(char::is_control) {
        errors.push(FieldError::new(
            "name",
            "must be 1 to 80 characters without control characters",
        ));
    }
    check_range(
        &mut errors,
        "price.amount",
        Some(new.price),
        MIN_PRICE..=MAX_PRICE,
    );
    if new.currency != project.currency {
        errors.push(FieldError::new(
            "price.currency",
            format!("this project is paid in {}", project.currency),
        ));
    }
    check_range(
        &mut errors,
        "included_upgrades",
        new.included_upgrades,
        0..=1000,
    );
    if let Some((amount, currency)) = &new.upgrade_price {
        check_range(
            &mut errors,
            "upgrade_price.amount",
            Some(*amount),
            MIN_PRICE..=MAX_PRICE,
        );
        if *currency != project.currency {
            errors.push(FieldError::new(
                "upgrade_price.currency",
                format!("this project is paid in {}", project.currency),
            ));
        }
    }
    check_range(
        &mut errors,
        "consulting_hours",
        new.consulting_hours,
        0..=160,
    );
    check_range(
        &mut errors,
        "floss_discount_pct",
        new.floss_discount_pct,
        0..=90,
    );
    if enterprise {
        match new.response_hours {
            None => errors.push(FieldError::new(
                "response_hours",
                "an enterprise plan guarantees a first response: 1 to 720 business hours",
            )),
            r => check_range(&mut errors, "response_hours", r, 1..=720),
        }
        if new.term_months.is_some_and(|m| m != 6 && m != 12) {
            errors.push(FieldError::new(
                "term_months",
                "an enterprise plan is booked in terms of 6 or 12 months",
            ));
        }
        check_range(
            &mut errors,
            "service_credit_pct",
            new.service_credit_pct,
            0..=100,
        );
    } else if new.kind == "monthly" {
        if new.response_hours.is_some() {
            errors.push(FieldError::new(
                "response_hours",
                "only an enterprise plan guarantees a response time",
            ));
        }
        if new.term_months.is_some_and(|m| m != 1) {
            errors.push(FieldError::new(
                "term_months",
                "a monthly plan is booked a month at a time",
            ));
        }
        if new.service_credit_pct.is_some_and(|p| p != 0) {
            errors.push(FieldError::new(
                "service_credit_pct",
                "only an enterprise plan has service credits",
            ));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(AppError::Validation(errors))
    }
}

/// Publishes a plan of `project` (its maintainers only). 422 names every bad
/// field; 409 for a second plan of the same name or past [`MAX_PLANS`].
pub fn create_plan(
    conn: &mut DbConnection,
    project: &Project,
    user: i64,
    new: &NewPlan,
) -> AppResult<Plan> {
    project_domain::require_maintainer(conn, project.id, user)?;
    validate(new, project)?;
    let enterprise = new.kind == "enterprise";
    write_tx(conn, |conn| {
        let count: i64 = plans::table
            .filter(plans::project_id.eq(project.id))
            .count()
            .get_result(conn)?;
        if count >= MAX_PLANS {
            return Err(AppError::conflict(
                ErrorCode::Conflict,
                format!("a project offers at most {MAX_PLANS} plans"),
            ));
        }
        let id: i64 = diesel::insert_into(plans::table)
            .values((
                plans::project_id.eq(project.id),
                plans::kind.eq(&new.kind),
                plans::name.eq(new.name.trim()),
                plans::price.eq(new.price),
                plans::currency.eq(&new.currency),
                plans::included_upgrades.eq(new.included_upgrades.unwrap_or(0)),
                plans::upgrade_price.eq(new.upgrade_price.as_ref().map(|(a, _)| *a)),
                plans::consulting_hours.eq(new.consulting_hours.unwrap_or(0)),
                plans::response_hours.eq(new.response_hours),
                plans::term_months.eq(new.term_months.unwrap_or(if enterprise { 6 } else { 1 })),
                plans::floss_discount_pct.eq(new.floss_discount_pct.unwrap_or(0)),
                plans::service_credit_pct.eq(new.service_credit_pct.unwrap_or(if enterprise {
                    10
                } else {
                    0
                })),
                plans::created_by.eq(user),
                plans::created_at.eq(now()),
            ))
            .returning(plans::id)
            .get_result(conn)
            .map_err(AppError::on_unique(
                ErrorCode::Conflict,
                "the project already has a plan of this name",
            ))?;
        Ok(get_plan(conn, id)?)
    })
}

/// A plan by id.
pub fn get_plan(conn: &mut DbConnection, id: i64) -> QueryResult<Plan> {
    plans::table.find(id).select(Plan::as_select()).first(conn)
}

/// The project's plans: monthly ones first, then enterprise, each cheapest
/// first.
pub fn list_plans(conn: &mut DbConnection, project_id: i64) -> QueryResult<Vec<Plan>> {
    plans::table
        .filter(plans::project_id.eq(project_id))
        .order((plans::kind.desc(), plans::price, plans::id))
        .select(Plan::as_select())
        .load(conn)
}

/// A row of `subscriptions`.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = subs)]
pub struct Subscription {
    /// Id.
    pub id: i64,
    /// Plan.
    pub plan_id: i64,
    /// Project.
    pub project_id: i64,
    /// Who pays.
    pub subscriber_id: i64,
    /// `professional`, `personal` or `floss`.
    pub context: String,
    /// Monthly price chosen (before the discount), minor units.
    pub monthly_price: i64,
    /// Currency.
    pub currency: String,
    /// FLOSS discount, percent.
    pub discount_pct: i32,
    /// Platform fee, basis points.
    pub platform_bps: i32,
    /// `pending_payment`, `active`, `past_due`, `cancelled`, `lapsed` or
    /// `failed`.
    pub status: String,
    /// Gateway name.
    pub gateway: String,
    /// The period being served (0 before the first is paid).
    pub current_period: i32,
    /// Start of the period being served.
    pub period_start: Option<NaiveDateTime>,
    /// End of the period being served.
    pub period_end: Option<NaiveDateTime>,
    /// A `past_due` subscription lapses then.
    pub grace_until: Option<NaiveDateTime>,
    /// Ends when the paid period ends.
    pub cancel_at_period_end: bool,
    /// The request that made it.
    pub request_key: Option<String>,
    /// Created.
    pub created_at: NaiveDateTime,
    /// Ended (cancelled, lapsed or failed).
    pub ended_at: Option<NaiveDateTime>,
    /// The gateway's own subscription, when the gateway bills it (Stripe
    /// Billing): renewals then come from the gateway's invoices.
    pub gateway_subscription_id: Option<String>,
    /// The payer's customer at the gateway.
    pub gateway_customer_id: Option<String>,
    /// Whether the gateway's subscription carries the FLOSS discount now.
    pub gateway_discounted: bool,
    /// Service credit given to the gateway (a negative invoice item) and
    /// not yet seen taken off one of its invoices.
    pub gateway_credit_outstanding: i64,
}

impl Subscription {
    /// Whether the plan applies now.
    pub fn is_live(&self) -> bool {
        LIVE.contains(&self.status.as_str())
    }
}

/// A row of `subscription_periods`.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = periods)]
pub struct Period {
    /// Id.
    pub id: i64,
    /// Subscription.
    pub subscription_id: i64,
    /// 1, 2, …
    pub number: i32,
    /// Starts.
    pub starts_at: NaiveDateTime,
    /// Ends.
    pub ends_at: NaiveDateTime,
    /// Charged for it, minor units.
    pub amount: i64,
    /// `pending_payment`, `paid`, `failed` or `refunded`.
    pub status: String,
    /// Gateway's payment id.
    pub payment_id: Option<String>,
    /// The project's part of a paid period.
    pub project_amount: i64,
    /// The platform's fee.
    pub platform_amount: i64,
    /// Upgrades included.
    pub upgrades_granted: i32,
    /// Consulting minutes included.
    pub consulting_minutes_granted: i32,
    /// Created.
    pub created_at: NaiveDateTime,
    /// Paid.
    pub paid_at: Option<NaiveDateTime>,
    /// The gateway's refund id (a period paid after its subscription ended).
    pub refund_id: Option<String>,
    /// Service credit taken off its charge (`amount` is what was charged).
    pub credit_applied: i64,
    /// The gateway's invoice that billed it (Stripe Billing).
    pub gateway_invoice_id: Option<String>,
}

/// What a period costs: the monthly price for each month of the term, less
/// the discount (floored).
pub fn period_amount(monthly_price: i64, term_months: i32, discount_pct: i32) -> Option<i64> {
    let gross = i128::from(monthly_price) * i128::from(term_months);
    i64::try_from(gross * i128::from(100 - discount_pct) / 100).ok()
}

/// `at` plus `months` calendar months (the last day of a shorter month when
/// the day does not exist).
pub fn add_months(at: NaiveDateTime, months: i32) -> NaiveDateTime {
    at.checked_add_months(chrono::Months::new(months.unsigned_abs()))
        .unwrap_or(at)
}

/// Whether `user` holds a FLOSS proof checked within the last year.
pub fn has_floss_proof(conn: &mut DbConnection, user: i64) -> QueryResult<bool> {
    let since = now() - chrono::Duration::days(PROOF_VALID_DAYS);
    let n: i64 = floss_proofs::table
        .filter(floss_proofs::user_id.eq(user))
        .filter(floss_proofs::checked_at.ge(since))
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}

/// A subscription by id.
pub fn get_subscription(conn: &mut DbConnection, id: i64) -> QueryResult<Subscription> {
    subs::table
        .find(id)
        .select(Subscription::as_select())
        .first(conn)
}

/// A period by subscription and number.
pub fn period(conn: &mut DbConnection, sub: i64, number: i32) -> QueryResult<Option<Period>> {
    periods::table
        .filter(periods::subscription_id.eq(sub))
        .filter(periods::number.eq(number))
        .select(Period::as_select())
        .first(conn)
        .optional()
}

/// What a subscriber asks for.
#[derive(Debug, Clone)]
pub struct SubscribeRequest {
    /// Plan.
    pub plan_id: i64,
    /// `professional`, `personal` or `floss`.
    pub context: String,
    /// A monthly price above the plan's minimum, if they wish.
    pub price: Option<i64>,
}

/// Subscribes `user` to a plan and charges its first period. With a gateway
/// that settles at once (the sandbox) it is active on return. The request
/// key makes a retry carry on with the same subscription and payment.
pub fn subscribe(
    pool: &DbPool,
    gateway: &dyn PaymentGateway,
    platform_bps: i32,
    user: i64,
    req: &SubscribeRequest,
    request_key: Option<&str>,
) -> AppResult<(Subscription, Payment)> {
    let period_id = {
        let mut conn = pool.get()?;
        let conn = &mut *conn;
        let existing = match request_key {
            Some(key) => subs::table
                .filter(subs::subscriber_id.eq(user))
                .filter(subs::request_key.eq(key))
                .select(Subscription::as_select())
                .first(conn)
                .optional()?,
            None => None,
        };
        match existing {
            Some(s)
                if s.plan_id == req.plan_id
                    && s.context == req.context
                    && req.price.is_none_or(|p| p == s.monthly_price) =>
            {
                project_domain::require_verified_for_live(
                    conn,
                    !gateway.test_money(),
                    s.project_id,
                )?;
                period(conn, s.id, 1)?
                    .ok_or_else(|| AppError::internal(anyhow::anyhow!("no first period")))?
                    .id
            }
            Some(_) => return Err(crate::domain::money::key_reused()),
            None => create_subscription(conn, gateway, platform_bps, user, req, request_key)?,
        }
    };
    collect_period(pool, gateway, period_id).map_err(|e| match e {
        CollectError::Gateway(e) => {
            tracing::warn!(period = period_id, error = %e, "payment gateway refused a subscription");
            AppError::conflict(ErrorCode::PaymentFailed, "the payment could not be created")
        }
        CollectError::App(e) => e,
    })
}

fn create_subscription(
    conn: &mut DbConnection,
    gateway: &dyn PaymentGateway,
    platform_bps: i32,
    user: i64,
    req: &SubscribeRequest,
    request_key: Option<&str>,
) -> AppResult<i64> {
    let plan = match get_plan(conn, req.plan_id).optional()? {
        Some(p) => p,
        None => return Err(AppError::field("plan_id", "no such plan")),
    };
    project_domain::require_verified_for_live(conn, !gateway.test_money(), plan.project_id)?;
    if !CONTEXTS.contains(&req.context.as_str()) {
        return Err(AppError::field(
            "context",
            "must be professional, personal or floss",
        ));
    }
    let floss = req.context == "floss";
    if floss && !has_floss_proof(conn, user)? {
        return Err(AppError::conflict(
            ErrorCode::FlossProofRequired,
            "the FLOSS discount needs proof through GitHub that you maintain a public repository under an OSI licence: prove it at /me/floss",
        ));
    }
    let monthly = req.price.unwrap_or(plan.price);
    if monthly < plan.price || monthly > MAX_PRICE {
        return Err(AppError::field(
            "price",
            format!(
                "must be between the plan's price of {} and {MAX_PRICE} minor units",
                plan.price
            ),
        ));
    }
    let discount = if floss { plan.floss_discount_pct } else { 0 };
    let amount = period_amount(monthly, plan.term_months, discount)
        .filter(|a| *a > 0)
        .ok_or_else(|| AppError::field("price", "is out of range"))?;
    let start = now();
    write_tx(conn, |conn| {
        let id: i64 = diesel::insert_into(subs::table)
            .values((
                subs::plan_id.eq(plan.id),
                subs::project_id.eq(plan.project_id),
                subs::subscriber_id.eq(user),
                subs::context.eq(&req.context),
                subs::monthly_price.eq(monthly),
                subs::currency.eq(&plan.currency),
                subs::discount_pct.eq(discount),
                subs::platform_bps.eq(platform_bps),
                subs::status.eq("pending_payment"),
                subs::gateway.eq(gateway.name()),
                subs::current_period.eq(0),
                subs::cancel_at_period_end.eq(false),
                subs::request_key.eq(request_key),
                subs::created_at.eq(start),
            ))
            .returning(subs::id)
            .get_result(conn)
            .map_err(AppError::on_unique(
                ErrorCode::AlreadySubscribed,
                "you already have a subscription to this project; cancel it first",
            ))?;
        Ok(insert_period(conn, id, 1, start, &plan, amount, 0)?)
    })
}

fn insert_period(
    conn: &mut DbConnection,
    sub: i64,
    number: i32,
    starts_at: NaiveDateTime,
    plan: &Plan,
    amount: i64,
    credit_applied: i64,
) -> QueryResult<i64> {
    diesel::insert_into(periods::table)
        .values((
            periods::credit_applied.eq(credit_applied),
            periods::subscription_id.eq(sub),
            periods::number.eq(number),
            periods::starts_at.eq(starts_at),
            periods::ends_at.eq(add_months(starts_at, plan.term_months)),
            periods::amount.eq(amount),
            periods::status.eq("pending_payment"),
            periods::upgrades_granted.eq(plan.included_upgrades * plan.term_months),
            periods::consulting_minutes_granted.eq(plan.consulting_hours * 60 * plan.term_months),
            periods::created_at.eq(now()),
        ))
        .returning(periods::id)
        .get_result(conn)
}

/// Asks the gateway to collect a `pending_payment` period (idempotency key
/// `subscription_period:{id}`), records the payment, and books it at once
/// when it already succeeded; a refusal marks it failed. No connection is
/// held during the gateway call.
pub fn collect_period(
    pool: &DbPool,
    gateway: &dyn PaymentGateway,
    period_id: i64,
) -> Result<(Subscription, Payment), CollectError> {
    let (p, sub) = {
        let mut conn = pool.get()?;
        let p: Period = periods::table
            .find(period_id)
            .select(Period::as_select())
            .first(&mut *conn)
            .map_err(AppError::from)?;
        let sub = get_subscription(&mut conn, p.subscription_id).map_err(AppError::from)?;
        (p, sub)
    };
    if p.status != "pending_payment" {
        let status = if p.status == "failed" {
            PaymentStatus::Failed
        } else {
            PaymentStatus::Succeeded
        };
        if status == PaymentStatus::Failed {
            return Err(CollectError::Gateway(anyhow::anyhow!(
                "payment of period {period_id} failed"
            )));
        }
        let payment = Payment {
            id: p.payment_id.unwrap_or_default(),
            status,
            client_secret: None,
        };
        return Ok((sub, payment));
    }
    if gateway.bills_subscriptions() && p.number == 1 {
        return start_billing(pool, gateway, &sub, &p);
    }
    let result = gateway.create_payment(&PaymentRequest {
        amount: p.amount,
        currency: sub.currency.clone(),
        description: format!(
            "Subscription #{} to project {}, period {}",
            sub.id, sub.project_id, p.number
        ),
        metadata: vec![
            ("subscription_id".into(), sub.id.to_string()),
            ("subscription_period_id".into(), p.id.to_string()),
        ],
        idempotency_key: format!("subscription_period:{period_id}"),
    });
    let mut conn = pool.get()?;
    let conn = &mut *conn;
    let payment = match result {
        Ok(p) => p,
        Err(e) => {
            mark_period_failed(conn, period_id)?;
            return Err(CollectError::Gateway(e));
        }
    };
    diesel::update(periods::table.find(period_id))
        .set(periods::payment_id.eq(&payment.id))
        .execute(conn)
        .map_err(AppError::from)?;
    match payment.status {
        PaymentStatus::Succeeded => {
            settle_period(conn, gateway.name(), &payment.id)?;
        }
        PaymentStatus::Failed => {
            mark_period_failed(conn, period_id)?;
            return Err(CollectError::Gateway(anyhow::anyhow!(
                "payment {} failed",
                payment.id
            )));
        }
        PaymentStatus::RequiresAction | PaymentStatus::Processing => {}
    }
    let sub = get_subscription(conn, sub.id).map_err(AppError::from)?;
    Ok((sub, payment))
}

/// Starts a subscription the gateway bills by itself (Stripe Billing) for
/// the first period `p` of `sub`: its first invoice is the period's
/// payment (booked when it succeeds), its renewals come from the gateway's
/// invoices ([`invoice_paid`]). The subscription's id keys the call, so a
/// retry finds the same one.
fn start_billing(
    pool: &DbPool,
    gateway: &dyn PaymentGateway,
    sub: &Subscription,
    p: &Period,
) -> Result<(Subscription, Payment), CollectError> {
    let req = {
        let mut conn = pool.get()?;
        let conn = &mut *conn;
        let plan = get_plan(conn, sub.plan_id).map_err(AppError::from)?;
        let project = project_domain::by_id(conn, sub.project_id)?;
        let email = crate::domain::users::get(conn, sub.subscriber_id)?.email;
        // The payer's customer from an earlier subscription, if any.
        let customer: Option<String> = subs::table
            .filter(subs::subscriber_id.eq(sub.subscriber_id))
            .filter(subs::gateway.eq(gateway.name()))
            .filter(subs::gateway_customer_id.is_not_null())
            .order(subs::id.desc())
            .select(subs::gateway_customer_id)
            .first::<Option<String>>(conn)
            .optional()
            .map_err(AppError::from)?
            .flatten();
        BillingRequest {
            customer,
            email,
            payer_key: format!("user:{}", sub.subscriber_id),
            product_id: format!("guildhall_plan_{}", plan.id),
            product_name: format!("{}: {}", project.name, plan.name),
            amount: sub.monthly_price * i64::from(plan.term_months),
            currency: sub.currency.clone(),
            term_months: plan.term_months,
            discount_pct: sub.discount_pct,
            schedule: plan.kind == "enterprise",
            metadata: vec![
                ("subscription_id".into(), sub.id.to_string()),
                ("project_id".into(), sub.project_id.to_string()),
            ],
            idempotency_key: format!("subscription:{}", sub.id),
        }
    };
    // A retry after the gateway made it carries on with the same one.
    let result = match &sub.gateway_subscription_id {
        Some(id) => gateway.resume_subscription(id),
        None => gateway.start_subscription(&req),
    };
    let mut conn = pool.get()?;
    let conn = &mut *conn;
    let started = match result {
        Ok(s) => s,
        Err(e) => {
            mark_period_failed(conn, p.id)?;
            return Err(CollectError::Gateway(e));
        }
    };
    write_tx(conn, |conn| {
        diesel::update(subs::table.find(sub.id))
            .set((
                subs::gateway_subscription_id.eq(Some(&started.subscription)),
                subs::gateway_customer_id.eq(Some(&started.customer)),
                subs::gateway_discounted.eq(sub.discount_pct > 0),
            ))
            .execute(conn)?;
        // What the gateway asks (its coupon rounds as it does) is what is
        // booked.
        diesel::update(
            periods::table
                .find(p.id)
                .filter(periods::status.eq("pending_payment")),
        )
        .set((
            periods::payment_id.eq(Some(&started.payment.id)),
            periods::gateway_invoice_id.eq(Some(&started.invoice)),
            periods::amount.eq(started.amount_due),
        ))
        .execute(conn)?;
        Ok::<_, AppError>(())
    })?;
    match started.payment.status {
        PaymentStatus::Succeeded => {
            settle_period(conn, gateway.name(), &started.payment.id)?;
        }
        PaymentStatus::Failed => {
            mark_period_failed(conn, p.id)?;
            return Err(CollectError::Gateway(anyhow::anyhow!(
                "payment {} failed",
                started.payment.id
            )));
        }
        PaymentStatus::RequiresAction | PaymentStatus::Processing => {}
    }
    let sub = get_subscription(conn, sub.id).map_err(AppError::from)?;
    Ok((sub, started.payment))
}

/// Gives the gateway that bills `sub_id` the service credit it holds and
/// the gateway has not been given yet, as a negative item on its next
/// invoice (at most what leaves the smallest price charged); the invoice's
/// `invoice.paid` then uses it ([`invoice_paid`]). Returns the amount given.
pub fn push_service_credit(
    pool: &DbPool,
    gateway: &dyn PaymentGateway,
    sub_id: i64,
) -> AppResult<i64> {
    // Reserved first, under the subscription's lock, so a concurrent
    // invoice or push sees what is on its way to the gateway.
    let reserved = {
        let mut conn = pool.get()?;
        write_tx(
            &mut conn,
            |conn| -> AppResult<Option<(Subscription, i64, String)>> {
                let sub = lock_subscription(conn, sub_id)?;
                if !sub.is_live()
                    || sub.gateway != gateway.name()
                    || sub.gateway_subscription_id.is_none()
                    || sub.gateway_customer_id.is_none()
                {
                    return Ok(None);
                }
                let held = service_credit_left(conn, &sub)?;
                let term = get_plan(conn, sub.plan_id)?.term_months;
                // Capped by the most discounted price, so the item never takes
                // an invoice to nothing whatever the coupon becomes.
                let charge = period_amount(sub.monthly_price, term, sub.discount_pct).unwrap_or(0);
                let target = held.min(charge - MIN_PRICE).max(0);
                let give = target - sub.gateway_credit_outstanding;
                if give <= 0 {
                    return Ok(None);
                }
                // A key no other push shares: the held account's totals only
                // grow (credits as breaches book, debits as invoices use them).
                let (_, held_account) = service_credit_accounts(conn, &sub)?;
                let key = format!(
                    "service-credit:{}:{}:{}",
                    sub.id, held_account.credits_posted, held_account.debits_posted
                );
                diesel::update(subs::table.find(sub.id))
                    .set(subs::gateway_credit_outstanding.eq(sub.gateway_credit_outstanding + give))
                    .execute(conn)?;
                Ok(Some((sub, give, key)))
            },
        )?
    };
    let Some((sub, give, key)) = reserved else {
        return Ok(0);
    };
    let (Some(gid), Some(customer)) = (&sub.gateway_subscription_id, &sub.gateway_customer_id)
    else {
        return Ok(0);
    };
    if let Err(e) = gateway.credit_subscription(customer, gid, give, &sub.currency, &key) {
        tracing::warn!(subscription = sub.id, error = %e, "could not give the service credit to the gateway");
        // Not given: the reservation goes, and the job tries again.
        let mut conn = pool.get()?;
        write_tx(&mut conn, |conn| -> AppResult<()> {
            let now_sub = lock_subscription(conn, sub.id)?;
            diesel::update(subs::table.find(sub.id))
                .set(
                    subs::gateway_credit_outstanding
                        .eq((now_sub.gateway_credit_outstanding - give).max(0)),
                )
                .execute(conn)?;
            Ok(())
        })?;
        return Err(AppError::Unavailable);
    }
    tracing::info!(
        subscription = sub.id,
        amount = give,
        "service credit given to the gateway"
    );
    Ok(give)
}

/// Keeps the FLOSS discount of the subscriptions the gateway bills in step
/// with their subscribers' proofs: a proof more than a year old takes the
/// discount off at the gateway (its renewals are then charged in full, as
/// the sandbox's are), a new proof puts it back. Returns how many changed.
pub fn sync_floss_discounts(pool: &DbPool, gateway: &dyn PaymentGateway) -> AppResult<usize> {
    if !gateway.bills_subscriptions() {
        return Ok(0);
    }
    let candidates: Vec<Subscription> = subs::table
        .filter(subs::gateway.eq(gateway.name()))
        .filter(subs::gateway_subscription_id.is_not_null())
        .filter(subs::context.eq("floss"))
        .filter(subs::discount_pct.gt(0))
        .filter(subs::status.eq_any(LIVE))
        .order(subs::id)
        .select(Subscription::as_select())
        .load(&mut *pool.get()?)?;
    let mut changed = 0;
    for sub in candidates {
        let Some(gid) = sub.gateway_subscription_id.as_deref() else {
            continue;
        };
        let want = has_floss_proof(&mut *pool.get()?, sub.subscriber_id)?;
        if want == sub.gateway_discounted {
            continue;
        }
        // No connection is held while the gateway answers.
        let pct = want.then_some(sub.discount_pct);
        if let Err(e) = gateway.set_subscription_discount(gid, pct) {
            tracing::warn!(subscription = sub.id, error = %e, "could not change the discount at the gateway");
            continue;
        }
        let n = diesel::update(
            subs::table
                .find(sub.id)
                .filter(subs::gateway_discounted.eq(sub.gateway_discounted)),
        )
        .set(subs::gateway_discounted.eq(want))
        .execute(&mut *pool.get()?)?;
        // A proof recorded meanwhile (or a concurrent run) decides again.
        if n == 0 || has_floss_proof(&mut *pool.get()?, sub.subscriber_id)? != want {
            crate::job_payloads::SyncFlossDiscounts
                .enqueue(&mut *pool.get()?)
                .map_err(AppError::internal)?;
        }
        tracing::info!(
            subscription = sub.id,
            discounted = want,
            "FLOSS discount changed at the gateway"
        );
        changed += 1;
    }
    Ok(changed)
}

/// The subscription a gateway bills as `gateway_id`; failing that, ours
/// named by the metadata we gave it, when we never learned the gateway's id
/// (the answer to our call was lost): it is adopted.
fn by_gateway_id(
    conn: &mut DbConnection,
    gateway: &str,
    (gateway_id, ours): (&str, Option<i64>),
) -> QueryResult<Option<Subscription>> {
    let found = subs::table
        .filter(subs::gateway.eq(gateway))
        .filter(subs::gateway_subscription_id.eq(gateway_id))
        .select(Subscription::as_select())
        .first(conn)
        .optional()?;
    if found.is_some() {
        return Ok(found);
    }
    let Some(id) = ours else { return Ok(None) };
    let n = diesel::update(
        subs::table
            .find(id)
            .filter(subs::gateway.eq(gateway))
            .filter(subs::gateway_subscription_id.is_null()),
    )
    .set(subs::gateway_subscription_id.eq(Some(gateway_id)))
    .execute(conn)?;
    if n == 0 {
        return Ok(None);
    }
    tracing::warn!(
        subscription = id,
        gateway_subscription = gateway_id,
        "adopted a gateway subscription we had not recorded"
    );
    get_subscription(conn, id).map(Some)
}

/// Ends `sub` at the gateway now (a job): it bills a subscription that no
/// longer runs here.
fn end_at_gateway(conn: &mut DbConnection, sub: &Subscription) -> AppResult<()> {
    if sub.gateway_subscription_id.is_some() {
        crate::job_payloads::EndGatewaySubscription {
            subscription_id: sub.id,
            at_period_end: false,
        }
        .enqueue(conn)
        .map_err(AppError::internal)?;
    }
    Ok(())
}

/// The gateway billed `invoice` of its subscription `gateway_sub` and was
/// paid `amount` through `payment` (the `invoice.paid` webhook): the first
/// invoice settles the first period; a later one is the next period,
/// booked at what the gateway charged. Exactly once per invoice (a unique
/// index on the invoice id, and the period's status).
pub fn invoice_paid(
    conn: &mut DbConnection,
    gateway: &str,
    invoice: &str,
    gateway_sub: (&str, Option<i64>),
    payment: Option<&str>,
    amount: i64,
    credit_lines: i64,
) -> AppResult<&'static str> {
    write_tx(conn, |conn| {
        let Some(sub) = by_gateway_id(conn, gateway, gateway_sub)? else {
            return Ok("unknown subscription");
        };
        let sub = lock_subscription(conn, sub.id)?;
        let known: Option<Period> = periods::table
            .filter(periods::gateway_invoice_id.eq(invoice))
            .select(Period::as_select())
            .first(conn)
            .optional()?;
        if amount <= 0 {
            return Ok("nothing was charged");
        }
        let Some(payment) = payment else {
            // Money was taken but we cannot tell by what: refuse, so the
            // gateway delivers it again.
            return Err(AppError::Unavailable);
        };
        let period = match known {
            Some(p) if p.status == "paid" || p.status == "refunded" => {
                return Ok("subscription period already paid")
            }
            Some(p) => p,
            None => {
                // A renewal the gateway billed: the next period (made by
                // the renewal job when the paid one ended, or now).
                let id = next_period(conn, &sub)?;
                periods::table
                    .find(id)
                    .select(Period::as_select())
                    .first(conn)?
            }
        };
        if period.status != "pending_payment" && period.status != "failed" {
            return Ok("subscription period already paid");
        }
        // What the gateway charged is what is booked. The service credit
        // this invoice took off (its lines of our credit items) is used.
        let held = service_credit_left(conn, &sub)?;
        let applied = credit_lines.min(held).max(0);
        diesel::update(periods::table.find(period.id))
            .set((
                periods::payment_id.eq(Some(payment)),
                periods::gateway_invoice_id.eq(Some(invoice)),
                periods::amount.eq(amount),
                periods::credit_applied.eq(applied),
            ))
            .execute(conn)?;
        if credit_lines > 0 {
            diesel::update(subs::table.find(sub.id))
                .set(
                    subs::gateway_credit_outstanding
                        .eq((sub.gateway_credit_outstanding - credit_lines).max(0)),
                )
                .execute(conn)?;
        }
        // Credit still held (over the cap, or booked meanwhile) goes to the
        // gateway for the next invoice.
        if sub.is_live() && held - applied > 0 {
            crate::job_payloads::PushServiceCredit {
                subscription_id: sub.id,
            }
            .enqueue(conn)
            .map_err(AppError::internal)?;
        }
        let booked = settle_period(conn, gateway, payment)?;
        // Paid for a subscription that no longer runs here (settling
        // refunded it): the gateway must stop billing it.
        if !sub.is_live() && sub.status != "pending_payment" {
            end_at_gateway(conn, &sub)?;
        }
        Ok(if booked {
            "subscription period paid"
        } else {
            "subscription period already paid"
        })
    })
}

/// The gateway could not collect `invoice` of its subscription
/// `gateway_sub` (`invoice.payment_failed`): a renewal makes the
/// subscription past due, its plan holding through the grace.
pub fn invoice_payment_failed(
    conn: &mut DbConnection,
    gateway: &str,
    invoice: &str,
    gateway_sub: (&str, Option<i64>),
) -> AppResult<&'static str> {
    write_tx(conn, |conn| {
        let Some(sub) = by_gateway_id(conn, gateway, gateway_sub)? else {
            return Ok("unknown subscription");
        };
        let sub = lock_subscription(conn, sub.id)?;
        let known: Option<Period> = periods::table
            .filter(periods::gateway_invoice_id.eq(invoice))
            .select(Period::as_select())
            .first(conn)
            .optional()?;
        if let Some(p) = known {
            return Ok(if p.number == 1 && mark_period_failed(conn, p.id)? {
                "first subscription payment failed"
            } else {
                "subscription payment failure already recorded"
            });
        }
        if sub.status != "active" {
            return Ok("subscription not active");
        }
        let id = next_period(conn, &sub)?;
        diesel::update(
            periods::table
                .find(id)
                .filter(periods::gateway_invoice_id.is_null()),
        )
        .set(periods::gateway_invoice_id.eq(Some(invoice)))
        .execute(conn)?;
        past_due(conn, id)?;
        Ok("subscription renewal failed; past due")
    })
}

/// The gateway ended its subscription `gateway_sub`
/// (`customer.subscription.deleted`): ours ends too (a past-due one
/// lapses), with nothing refunded.
pub fn gateway_subscription_ended(
    conn: &mut DbConnection,
    gateway: &str,
    gateway_sub: &str,
) -> AppResult<&'static str> {
    write_tx(conn, |conn| {
        let Some(sub) = by_gateway_id(conn, gateway, (gateway_sub, None))? else {
            return Ok("unknown subscription");
        };
        let sub = lock_subscription(conn, sub.id)?;
        let status = match sub.status.as_str() {
            "active" => "cancelled",
            "past_due" => "lapsed",
            "pending_payment" => "failed",
            _ => return Ok("subscription already ended"),
        };
        end_rows(conn, &sub, status)?;
        Ok("subscription ended at the gateway")
    })
}

/// The gateway's subscription changed (`customer.subscription.updated`):
/// a cancellation at the end of the period made there is kept here too.
pub fn gateway_subscription_updated(
    conn: &mut DbConnection,
    gateway: &str,
    gateway_sub: &str,
    cancel_at_period_end: bool,
) -> AppResult<&'static str> {
    write_tx(conn, |conn| {
        let Some(sub) = by_gateway_id(conn, gateway, (gateway_sub, None))? else {
            return Ok("unknown subscription");
        };
        let sub = lock_subscription(conn, sub.id)?;
        if cancel_at_period_end && !sub.cancel_at_period_end && sub.is_live() {
            diesel::update(subs::table.find(sub.id))
                .set(subs::cancel_at_period_end.eq(true))
                .execute(conn)?;
            return Ok("subscription ends with its period");
        }
        Ok("acknowledged")
    })
}

/// A subscription, locked until the transaction ends (PostgreSQL; SQLite
/// has one writer).
pub(crate) fn lock_subscription(conn: &mut DbConnection, id: i64) -> QueryResult<Subscription> {
    if let DbConnection::Pg(pg) = conn {
        subs::table
            .find(id)
            .select(subs::id)
            .for_update()
            .first::<i64>(pg)?;
    }
    get_subscription(conn, id)
}

fn period_by_payment(
    conn: &mut DbConnection,
    gateway: &str,
    payment_id: &str,
) -> QueryResult<Option<Period>> {
    periods::table
        .inner_join(subs::table.on(subs::id.eq(periods::subscription_id)))
        .filter(periods::payment_id.eq(payment_id))
        .filter(subs::gateway.eq(gateway))
        .select(Period::as_select())
        .first(conn)
        .optional()
}

fn credit_accounts(
    conn: &mut DbConnection,
    sub: &Subscription,
    unit: &str,
) -> QueryResult<(ledger::Account, ledger::Account)> {
    Ok((
        ledger::account(conn, AccountKind::CreditIssuer, Some(sub.project_id), unit)?,
        ledger::account(conn, AccountKind::PlanCredits, Some(sub.id), unit)?,
    ))
}

/// Returns what is left of the subscription's credits to the issuer
/// (the period `period_id` ended, or the subscription did).
fn expire_credits(conn: &mut DbConnection, sub: &Subscription, period_id: i64) -> AppResult<()> {
    for unit in [ledger::CREDIT_UPGRADES, ledger::CREDIT_CONSULTING_MINUTES] {
        let (issuer, credits) = credit_accounts(conn, sub, unit)?;
        // What is left, read under the account's lock: an upgrade spending
        // one meanwhile is waited for, not raced.
        let left = ledger::lock_account(conn, credits.id)?.available();
        if left > 0 {
            ledger::apply(
                conn,
                &[NewTransfer {
                    key: format!("subscription_period:{period_id}:expire:{unit}"),
                    kind: TransferKind::Posted,
                    debit: credits.id,
                    credit: issuer.id,
                    amount: left,
                    pending_id: None,
                    ticket_id: None,
                    memo: format!("unused {unit} of subscription {} expired", sub.id),
                }],
            )?;
        }
    }
    Ok(())
}

/// Books a succeeded period payment exactly once however often it is
/// reported: gateway clearing → project revenue and platform fee, the
/// period's credits issued (what was left of the previous period's
/// expires) and the subscription active for the period. Money for a
/// subscription that ended meanwhile is booked and returned at once.
/// Returns whether this call did the booking.
pub fn settle_period(conn: &mut DbConnection, gateway: &str, payment_id: &str) -> AppResult<bool> {
    write_tx(conn, |conn| {
        let Some(p) = period_by_payment(conn, gateway, payment_id)? else {
            return Ok(false);
        };
        let sub = lock_subscription(conn, p.subscription_id)?;
        let n = diesel::update(
            periods::table
                .find(p.id)
                .filter(periods::status.eq_any(["pending_payment", "failed"])),
        )
        .set((periods::status.eq("paid"), periods::paid_at.eq(Some(now()))))
        .execute(conn)?;
        if n == 0 {
            return Ok(false);
        }
        let split = ledger::split(p.amount, sub.platform_bps, 0).ok_or_else(|| {
            AppError::internal(anyhow::anyhow!("invalid fee rate {}", sub.platform_bps))
        })?;
        // The project is the seller: it keeps everything but the fee.
        let (project_part, platform_part) = (split.helper, split.platform);
        let clearing = ledger::clearing_account(conn, gateway, &sub.currency)?;
        let project_acct = ledger::account(
            conn,
            AccountKind::ProjectRevenue,
            Some(sub.project_id),
            &sub.currency,
        )?;
        let platform_acct =
            ledger::account(conn, AccountKind::PlatformRevenue, None, &sub.currency)?;
        let revenue: Vec<NewTransfer> = [
            ("project", project_acct.id, project_part),
            ("platform", platform_acct.id, platform_part),
        ]
        .into_iter()
        .filter(|(_, _, part)| *part > 0)
        .map(|(who, account, part)| NewTransfer {
            key: format!("subscription_period:{}:{who}", p.id),
            kind: TransferKind::Posted,
            debit: clearing.id,
            credit: account,
            amount: part,
            pending_id: None,
            ticket_id: None,
            memo: format!(
                "subscription {} period {} paid: the {who}'s part",
                sub.id, p.number
            ),
        })
        .collect();
        ledger::apply(conn, &revenue)?;
        diesel::update(periods::table.find(p.id))
            .set((
                periods::project_amount.eq(project_part),
                periods::platform_amount.eq(platform_part),
            ))
            .execute(conn)?;
        crate::domain::invoices::period_paid(conn, p.id)?;
        let serves = matches!(
            sub.status.as_str(),
            "pending_payment" | "active" | "past_due"
        ) && p.number == sub.current_period + 1;
        if !serves {
            tracing::warn!(
                subscription = sub.id,
                period = p.id,
                status = %sub.status,
                "payment arrived for a subscription period that no longer runs; refunding at once"
            );
            refund_period(
                conn,
                &sub,
                &p,
                clearing.id,
                project_acct.id,
                platform_acct.id,
            )?;
            return Ok(true);
        }
        if let Some(previous) = period(conn, sub.id, sub.current_period)? {
            expire_credits(conn, &sub, previous.id)?;
        }
        if p.credit_applied > 0 {
            // The service credit it used settles that much of the
            // project's debt.
            let (owed, held) = service_credit_accounts(conn, &sub)?;
            let applied = p.credit_applied.min(held.available());
            if applied > 0 {
                ledger::apply(
                    conn,
                    &[NewTransfer {
                        key: format!("subscription_period:{}:credit", p.id),
                        kind: TransferKind::Posted,
                        debit: held.id,
                        credit: owed.id,
                        amount: applied,
                        pending_id: None,
                        ticket_id: None,
                        memo: format!(
                            "service credit taken off period {} of subscription {}",
                            p.number, sub.id
                        ),
                    }],
                )?;
            }
            if applied != p.credit_applied {
                diesel::update(periods::table.find(p.id))
                    .set(periods::credit_applied.eq(applied))
                    .execute(conn)?;
            }
        }
        let mut grants = Vec::new();
        for (unit, amount) in [
            (ledger::CREDIT_UPGRADES, i64::from(p.upgrades_granted)),
            (
                ledger::CREDIT_CONSULTING_MINUTES,
                i64::from(p.consulting_minutes_granted),
            ),
        ] {
            if amount > 0 {
                let (issuer, credits) = credit_accounts(conn, &sub, unit)?;
                grants.push(NewTransfer {
                    key: format!("subscription_period:{}:grant:{unit}", p.id),
                    kind: TransferKind::Posted,
                    debit: issuer.id,
                    credit: credits.id,
                    amount,
                    pending_id: None,
                    ticket_id: None,
                    memo: format!(
                        "{unit} included in period {} of subscription {}",
                        p.number, sub.id
                    ),
                });
            }
        }
        if !grants.is_empty() {
            ledger::apply(conn, &grants)?;
        }
        diesel::update(subs::table.find(sub.id))
            .set((
                subs::status.eq("active"),
                subs::current_period.eq(p.number),
                subs::period_start.eq(Some(p.starts_at)),
                subs::period_end.eq(Some(p.ends_at)),
                subs::grace_until.eq(None::<NaiveDateTime>),
            ))
            .execute(conn)?;
        Ok(true)
    })
}

/// Books a paid period back (revenue and fee → clearing) and queues the
/// refund through the gateway, in the caller's transaction.
fn refund_period(
    conn: &mut DbConnection,
    sub: &Subscription,
    p: &Period,
    clearing: i64,
    project_acct: i64,
    platform_acct: i64,
) -> AppResult<()> {
    let (project_part, platform_part): (i64, i64) = periods::table
        .find(p.id)
        .select((periods::project_amount, periods::platform_amount))
        .first(conn)?;
    let back: Vec<NewTransfer> = [
        ("project", project_acct, project_part),
        ("platform", platform_acct, platform_part),
    ]
    .into_iter()
    .filter(|(_, _, part)| *part > 0)
    .map(|(who, account, part)| NewTransfer {
        key: format!("subscription_period:{}:refund:{who}", p.id),
        kind: TransferKind::Posted,
        debit: account,
        credit: clearing,
        amount: part,
        pending_id: None,
        ticket_id: None,
        memo: format!(
            "subscription {} period {} returned: it was paid after the subscription ended",
            sub.id, p.number
        ),
    })
    .collect();
    ledger::apply(conn, &back)?;
    diesel::update(periods::table.find(p.id))
        .set(periods::status.eq("refunded"))
        .execute(conn)?;
    crate::domain::invoices::period_refunded(conn, p.id)?;
    crate::job_payloads::RefundSubscriptionPeriod { period_id: p.id }
        .enqueue(conn)
        .map_err(AppError::internal)?;
    Ok(())
}

/// Records the gateway's refund of a period.
pub fn record_period_refund(
    conn: &mut DbConnection,
    period_id: i64,
    refund_id: &str,
) -> QueryResult<usize> {
    diesel::update(
        periods::table
            .find(period_id)
            .filter(periods::refund_id.is_null()),
    )
    .set(periods::refund_id.eq(refund_id))
    .execute(conn)
}

fn mark_period_failed(conn: &mut DbConnection, period_id: i64) -> AppResult<bool> {
    write_tx(conn, |conn| {
        let p: Period = periods::table
            .find(period_id)
            .select(Period::as_select())
            .first(conn)?;
        let sub = lock_subscription(conn, p.subscription_id)?;
        let n = diesel::update(
            periods::table
                .find(p.id)
                .filter(periods::status.eq("pending_payment")),
        )
        .set(periods::status.eq("failed"))
        .execute(conn)?;
        if n == 0 {
            return Ok(false);
        }
        if sub.status == "pending_payment" && p.number == 1 {
            diesel::update(subs::table.find(sub.id))
                .set((subs::status.eq("failed"), subs::ended_at.eq(Some(now()))))
                .execute(conn)?;
            // The gateway must not bill it later either.
            end_at_gateway(conn, &sub)?;
        } else if sub.status == "active" && p.number == sub.current_period + 1 {
            // The plan holds for the grace period, then lapses.
            diesel::update(subs::table.find(sub.id))
                .set((
                    subs::status.eq("past_due"),
                    subs::grace_until.eq(Some(p.starts_at + chrono::Duration::days(GRACE_DAYS))),
                ))
                .execute(conn)?;
        }
        Ok(true)
    })
}

/// What a refund made at the gateway means for a subscription period's
/// payment: ours (a late payment returned) is confirmed; any other (the
/// gateway's dashboard) is recorded for a person to review — `ledger
/// check` reports it until then — since the revenue was booked and may be
/// paid out. Not a period's payment: nothing to refund.
pub fn gateway_refund_outcome(
    conn: &mut DbConnection,
    gateway: &str,
    payment_id: &str,
) -> AppResult<&'static str> {
    Ok(match period_by_payment(conn, gateway, payment_id)? {
        None => "nothing to refund",
        Some(p) if p.status == "refunded" => "subscription period refund confirmed",
        Some(p) => {
            tracing::error!(
                period = p.id,
                subscription = p.subscription_id,
                "a subscription payment was refunded at the gateway; needs review"
            );
            "subscription payment refunded at the gateway; needs review"
        }
    })
}

/// A dispute over a subscription period's payment: recorded for a person
/// to review (`ledger check` reports it).
pub fn gateway_dispute_outcome(
    conn: &mut DbConnection,
    gateway: &str,
    payment_id: &str,
) -> AppResult<&'static str> {
    Ok(match period_by_payment(conn, gateway, payment_id)? {
        None => "no matching bounty",
        Some(p) => {
            tracing::error!(
                period = p.id,
                subscription = p.subscription_id,
                "a subscription payment is disputed; needs review"
            );
            "subscription payment disputed; needs review"
        }
    })
}

/// A period's payment was refused (a webhook). Returns whether this call
/// marked it.
pub fn period_payment_failed(
    conn: &mut DbConnection,
    gateway: &str,
    payment_id: &str,
) -> AppResult<bool> {
    match period_by_payment(conn, gateway, payment_id)? {
        Some(p) => mark_period_failed(conn, p.id),
        None => Ok(false),
    }
}

/// Ends the subscription (locked by the caller, in its transaction) as
/// `status` and expires what is left of its credits; one the gateway bills
/// is ended there too (a job).
fn end_locked(conn: &mut DbConnection, sub: &Subscription, status: &'static str) -> AppResult<()> {
    end_rows(conn, sub, status)?;
    end_at_gateway(conn, sub)
}

/// [`end_locked`] without telling the gateway (it told us).
fn end_rows(conn: &mut DbConnection, sub: &Subscription, status: &'static str) -> AppResult<()> {
    diesel::update(subs::table.find(sub.id))
        .set((
            subs::status.eq(status),
            subs::ended_at.eq(Some(now())),
            // What was given to the gateway lapses with the credit.
            subs::gateway_credit_outstanding.eq(0),
        ))
        .execute(conn)?;
    crate::domain::consulting::cancel_open_of(conn, sub)?;
    if let Some(current) = period(conn, sub.id, sub.current_period)? {
        expire_credits(conn, sub, current.id)?;
    }
    // Unused service credit lapses with the subscription (it is taken off
    // charges, never paid out): the project's debt for it goes too.
    let (owed, held) = service_credit_accounts(conn, sub)?;
    let left = ledger::lock_account(conn, held.id)?.available();
    if left > 0 {
        ledger::apply(
            conn,
            &[NewTransfer {
                key: format!("subscription:{}:service_credit_lapse", sub.id),
                kind: TransferKind::Posted,
                debit: held.id,
                credit: owed.id,
                amount: left,
                pending_id: None,
                ticket_id: None,
                memo: format!("unused service credit of subscription {} lapsed", sub.id),
            }],
        )?;
    }
    Ok(())
}

/// Ends `user`'s subscriptions to `project` (all of them with `None`) that
/// have not ended, without refund: they were banned. Call inside a
/// transaction. Returns how many ended.
pub fn end_for_ban(conn: &mut DbConnection, user: i64, project: Option<i64>) -> AppResult<usize> {
    let mut q = subs::table
        .filter(subs::subscriber_id.eq(user))
        .filter(subs::status.eq_any(["pending_payment", "active", "past_due"]))
        .select(subs::id)
        .into_boxed();
    if let Some(p) = project {
        q = q.filter(subs::project_id.eq(p));
    }
    let ids: Vec<i64> = q.load(conn)?;
    for id in &ids {
        let sub = lock_subscription(conn, *id)?;
        end_locked(conn, &sub, "cancelled")?;
    }
    Ok(ids.len())
}

/// The project's service-credit debt account and the subscription's
/// service credit.
fn service_credit_accounts(
    conn: &mut DbConnection,
    sub: &Subscription,
) -> QueryResult<(ledger::Account, ledger::Account)> {
    Ok((
        ledger::account(
            conn,
            AccountKind::ServiceCreditsOwed,
            Some(sub.project_id),
            &sub.currency,
        )?,
        ledger::account(
            conn,
            AccountKind::ServiceCredit,
            Some(sub.id),
            &sub.currency,
        )?,
    ))
}

/// Service credit the subscription holds, minor units.
pub fn service_credit_left(conn: &mut DbConnection, sub: &Subscription) -> QueryResult<i64> {
    use crate::db::schema::ledger_accounts as la;
    let code = ledger::account_code(AccountKind::ServiceCredit, Some(sub.id), &sub.currency);
    Ok(la::table
        .filter(la::code.eq(code))
        .select(la::credits_posted - la::debits_posted - la::debits_pending)
        .first::<i64>(conn)
        .optional()?
        .unwrap_or(0))
}

/// The subscriber cancels: a subscription not paid yet, or past due, ends
/// now (a payment that still arrives is returned); a paid one runs to the
/// end of its paid period and is not renewed (nothing paid is refunded).
/// Decided on the row as it is under its lock. 404 for anyone else's; 409
/// when it already ended.
pub fn cancel(conn: &mut DbConnection, id: i64, user: i64) -> AppResult<Subscription> {
    write_tx(conn, |conn| {
        let sub = get_subscription(conn, id)
            .optional()?
            .filter(|s| s.subscriber_id == user)
            .ok_or_else(|| AppError::not_found("subscription"))?;
        let sub = lock_subscription(conn, sub.id)?;
        match sub.status.as_str() {
            "pending_payment" | "past_due" => end_locked(conn, &sub, "cancelled")?,
            "active" => {
                diesel::update(subs::table.find(sub.id))
                    .set(subs::cancel_at_period_end.eq(true))
                    .execute(conn)?;
                if sub.gateway_subscription_id.is_some() && !sub.cancel_at_period_end {
                    crate::job_payloads::EndGatewaySubscription {
                        subscription_id: sub.id,
                        at_period_end: true,
                    }
                    .enqueue(conn)
                    .map_err(AppError::internal)?;
                }
            }
            other => {
                return Err(AppError::conflict(
                    ErrorCode::InvalidTransition,
                    format!("a {other} subscription cannot be cancelled"),
                ))
            }
        }
        Ok(get_subscription(conn, sub.id)?)
    })
}

/// How long a first payment may wait for the payer before the
/// subscription is given up (a payment that still arrives is returned).
pub const PENDING_FIRST_PAYMENT_HOURS: i64 = 24;

/// The scheduled renewal: subscriptions whose paid period ended are renewed
/// (a new period charged at the plan's current terms — never less than the
/// price the subscriber chose), or end when cancelled; past-due ones whose
/// grace ended lapse to pay as you go; a first payment that waited a day
/// fails. Each is decided again on its row under its lock. Returns how many
/// it changed.
pub fn renew_due(pool: &DbPool, gateway: &dyn PaymentGateway) -> AppResult<usize> {
    let t = now();
    let due: Vec<i64> = {
        let mut conn = pool.get()?;
        subs::table
            .filter(
                subs::status
                    .eq("active")
                    .and(subs::period_end.le(t))
                    .or(subs::status.eq("past_due").and(subs::grace_until.le(t)))
                    .or(subs::status.eq("pending_payment").and(
                        subs::created_at
                            .le(t - chrono::Duration::hours(PENDING_FIRST_PAYMENT_HOURS)),
                    )),
            )
            .order(subs::id)
            .limit(1000)
            .select(subs::id)
            .load(&mut *conn)?
    };
    Ok(crate::domain::each_row("renew_subscriptions", due, |id| {
        renew_one(pool, gateway, *id)
    }))
}

/// What the renewal does with one subscription.
enum Step {
    /// Nothing is due (any more).
    Nothing,
    /// It ended or lapsed.
    Ended,
    /// Charge this period.
    Charge(i64),
}

fn renew_one(pool: &DbPool, gateway: &dyn PaymentGateway, id: i64) -> AppResult<bool> {
    let step = {
        let mut conn = pool.get()?;
        write_tx(&mut conn, |conn| -> AppResult<Step> {
            let t = now();
            let sub = lock_subscription(conn, id)?;
            match sub.status.as_str() {
                "past_due" if sub.grace_until.is_some_and(|g| g <= t) => {
                    end_locked(conn, &sub, "lapsed")?;
                    Ok(Step::Ended)
                }
                "pending_payment"
                    if sub.created_at
                        <= t - chrono::Duration::hours(PENDING_FIRST_PAYMENT_HOURS) =>
                {
                    end_locked(conn, &sub, "failed")?;
                    Ok(Step::Ended)
                }
                "active" if sub.period_end.is_some_and(|e| e <= t) => {
                    if sub.cancel_at_period_end {
                        end_locked(conn, &sub, "cancelled")?;
                        return Ok(Step::Ended);
                    }
                    if sub.gateway_subscription_id.is_some() {
                        // The gateway bills it: its invoice (a webhook) pays
                        // the next period; until then the plan holds through
                        // the grace.
                        let next = next_period(conn, &sub)?;
                        past_due(conn, next)?;
                        return Ok(Step::Ended);
                    }
                    if sub.gateway != gateway.name() {
                        return Err(AppError::internal(anyhow::anyhow!(
                            "subscription {} is paid through {}, this process runs {}",
                            sub.id,
                            sub.gateway,
                            gateway.name()
                        )));
                    }
                    Ok(Step::Charge(next_period(conn, &sub)?))
                }
                _ => Ok(Step::Nothing),
            }
        })?
    };
    let next = match step {
        Step::Nothing => return Ok(false),
        Step::Ended => return Ok(true),
        Step::Charge(p) => p,
    };
    match collect_period(pool, gateway, next) {
        Ok((_, payment)) if payment.status != PaymentStatus::Succeeded => {
            // The payer must act (or the payment is processing): the plan
            // holds through the grace meanwhile, then lapses.
            past_due(&mut *pool.get()?, next)?;
            Ok(true)
        }
        Ok(_) => Ok(true),
        // Marked failed: the subscription is past due, the grace runs.
        Err(CollectError::Gateway(e)) => {
            tracing::warn!(subscription = id, error = %e, "renewal payment refused");
            Ok(true)
        }
        Err(CollectError::App(e)) => Err(e),
    }
}

/// The subscription's next period, made on first need (the plan's terms
/// now; the FLOSS discount only while the proof holds).
fn next_period(conn: &mut DbConnection, sub: &Subscription) -> AppResult<i64> {
    let number = sub.current_period + 1;
    if let Some(p) = period(conn, sub.id, number)? {
        return Ok(p.id);
    }
    let plan = get_plan(conn, sub.plan_id)?;
    let monthly = sub.monthly_price.max(plan.price);
    // The FLOSS proof is re-checked at each renewal: once it is a year old
    // the period is charged in full, until it is proved again.
    let discount = if sub.context == "floss"
        && sub.discount_pct > 0
        && !has_floss_proof(conn, sub.subscriber_id)?
    {
        tracing::info!(
            subscription = sub.id,
            "FLOSS proof older than a year: this period is charged without the discount"
        );
        0
    } else {
        sub.discount_pct
    };
    let amount = period_amount(monthly, plan.term_months, discount)
        .filter(|a| *a > 0)
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("period out of range")))?;
    // Service credit for missed response times comes off the charge (at
    // least the smallest price is still charged).
    let credit = service_credit_left(conn, sub)?;
    let applied = credit.min(amount - MIN_PRICE).max(0);
    let starts = sub.period_end.unwrap_or_else(now);
    Ok(insert_period(
        conn,
        sub.id,
        number,
        starts,
        &plan,
        amount - applied,
        applied,
    )?)
}

/// A renewal waits for its payer: the subscription is past due, its plan
/// holding through the grace.
fn past_due(conn: &mut DbConnection, period_id: i64) -> AppResult<()> {
    write_tx(conn, |conn| {
        let p: Period = periods::table
            .find(period_id)
            .select(Period::as_select())
            .first(conn)?;
        let sub = lock_subscription(conn, p.subscription_id)?;
        if sub.status == "active"
            && p.number == sub.current_period + 1
            && p.status == "pending_payment"
        {
            diesel::update(subs::table.find(sub.id))
                .set((
                    subs::status.eq("past_due"),
                    subs::grace_until.eq(Some(p.starts_at + chrono::Duration::days(GRACE_DAYS))),
                ))
                .execute(conn)?;
        }
        Ok(())
    })
}

/// The subscription of `user` to `project` whose plan applies now.
pub fn live_subscription(
    conn: &mut DbConnection,
    user: i64,
    project: i64,
) -> QueryResult<Option<Subscription>> {
    subs::table
        .filter(subs::subscriber_id.eq(user))
        .filter(subs::project_id.eq(project))
        .filter(subs::status.eq_any(LIVE))
        .select(Subscription::as_select())
        .first(conn)
        .optional()
}

/// The user's subscriptions, newest first.
pub fn of_user(conn: &mut DbConnection, user: i64) -> QueryResult<Vec<Subscription>> {
    subs::table
        .filter(subs::subscriber_id.eq(user))
        .order(subs::id.desc())
        .limit(200)
        .select(Subscription::as_select())
        .load(conn)
}

/// What is left of a subscription's credits this period: (upgrades,
/// consulting minutes).
pub fn credits_left(conn: &mut DbConnection, sub: &Subscription) -> QueryResult<(i64, i64)> {
    use crate::db::schema::ledger_accounts as la;
    let codes = [ledger::CREDIT_UPGRADES, ledger::CREDIT_CONSULTING_MINUTES]
        .map(|unit| ledger::account_code(AccountKind::PlanCredits, Some(sub.id), unit));
    let rows: Vec<(String, i64, i64, i64)> = la::table
        .filter(la::code.eq_any(&codes))
        .select((
            la::currency,
            la::credits_posted,
            la::debits_posted,
            la::debits_pending,
        ))
        .load(conn)?;
    let left = |unit: &str| {
        rows.iter()
            .find(|r| r.0 == unit)
            .map_or(0, |r| r.1 - r.2 - r.3)
    };
    Ok((
        left(ledger::CREDIT_UPGRADES),
        left(ledger::CREDIT_CONSULTING_MINUTES),
    ))
}

/// Subscribers whose enterprise plan with `project` applies now.
pub fn enterprise_subscribers(conn: &mut DbConnection, project: i64) -> QueryResult<Vec<i64>> {
    subs::table
        .inner_join(plans::table.on(plans::id.eq(subs::plan_id)))
        .filter(subs::project_id.eq(project))
        .filter(subs::status.eq_any(LIVE))
        .filter(plans::kind.eq("enterprise"))
        .select(subs::subscriber_id)
        .load(conn)
}

/// How a ticket was moved up the queue.
#[derive(Debug)]
pub enum Upgrade {
    /// An included upgrade of the requester's plan was spent.
    Included {
        /// Upgrades left this period.
        upgrades_left: i64,
    },
    /// The requester paid the upgrade price as a bounty.
    Paid(Box<(crate::domain::money::Bounty, Payment)>),
}

/// The requester moves their ticket up the queue: with an included upgrade
/// of their live plan when one is left, otherwise by paying the plan's (or
/// the project's pay-as-you-go) upgrade price as a bounty on the ticket.
/// 403 for anyone but the requester; 409 for a ticket that is not open or
/// claimed, or was upgraded already.
pub fn upgrade(
    pool: &DbPool,
    gateway: &dyn PaymentGateway,
    ticket_id: i64,
    user: i64,
    request_key: Option<&str>,
) -> AppResult<Upgrade> {
    let (price, currency) = {
        let mut conn = pool.get()?;
        let conn = &mut *conn;
        let (t, _) = crate::domain::tickets::load_visible(conn, ticket_id, Some(user))?;
        if t.requester_id != user {
            return Err(AppError::forbidden(
                "only the requester can upgrade their ticket",
            ));
        }
        // A retry of a paid upgrade finds its bounty and carries on.
        let retry = crate::domain::money::bounty_by_request(conn, user, request_key)?
            .is_some_and(|b| b.ticket_id == t.id);
        if !retry {
            use crate::domain::tickets::Status;
            if !matches!(t.status(), Status::Open | Status::Claimed) {
                return Err(AppError::conflict(
                    ErrorCode::TicketNotOpen,
                    format!("a {} ticket cannot be upgraded", t.status),
                ));
            }
            let upgraded: Option<NaiveDateTime> = tickets::table
                .find(t.id)
                .select(tickets::upgraded_at)
                .first(conn)?;
            if upgraded.is_some() {
                return Err(AppError::conflict(
                    ErrorCode::Conflict,
                    "the ticket was upgraded already",
                ));
            }
        }
        let project = project_domain::by_id(conn, t.project_id)?;
        let sub = live_subscription(conn, user, t.project_id)?;
        if let (Some(sub), false) = (&sub, retry) {
            if credits_left(conn, sub)?.0 > 0 {
                // None: another request spent the last one meanwhile.
                if let Some(done) = spend_upgrade(conn, sub, t.id)? {
                    return Ok(done);
                }
            }
        }
        let plan_price = match &sub {
            Some(s) => get_plan(conn, s.plan_id)?.upgrade_price,
            None => None,
        };
        (
            plan_price.unwrap_or(project.upgrade_price),
            project.currency,
        )
    };
    let (b, p) = crate::domain::money::fund_bounty(
        pool,
        gateway,
        ticket_id,
        user,
        price,
        &currency,
        None,
        request_key,
    )?;
    Ok(Upgrade::Paid(Box::new((b, p))))
}

/// Spends one included upgrade on `ticket`; `None` when none is left.
fn spend_upgrade(
    conn: &mut DbConnection,
    sub: &Subscription,
    ticket: i64,
) -> AppResult<Option<Upgrade>> {
    let spent = write_tx(conn, |conn| {
        // The ticket as it is now, under its lock: closed meanwhile, it
        // takes no upgrade.
        if let DbConnection::Pg(pg) = conn {
            tickets::table
                .find(ticket)
                .select(tickets::id)
                .for_update()
                .first::<i64>(pg)?;
        }
        let status: String = tickets::table
            .find(ticket)
            .select(tickets::status)
            .first(conn)?;
        if status != "open" && status != "claimed" {
            return Err(SpendError::App(AppError::conflict(
                ErrorCode::TicketNotOpen,
                format!("a {status} ticket cannot be upgraded"),
            )));
        }
        let n = diesel::update(
            tickets::table
                .find(ticket)
                .filter(tickets::upgraded_at.is_null()),
        )
        .set((
            tickets::upgraded_at.eq(Some(now())),
            tickets::index_version.eq(tickets::index_version + 1),
        ))
        .execute(conn)?;
        if n == 0 {
            return Err(SpendError::App(AppError::conflict(
                ErrorCode::Conflict,
                "the ticket was upgraded already",
            )));
        }
        let (issuer, credits) = credit_accounts(conn, sub, ledger::CREDIT_UPGRADES)?;
        ledger::apply(
            conn,
            &[NewTransfer {
                key: format!("ticket:{ticket}:upgrade"),
                kind: TransferKind::Posted,
                debit: credits.id,
                credit: issuer.id,
                amount: 1,
                pending_id: None,
                ticket_id: Some(ticket),
                memo: format!("an included upgrade of subscription {} spent", sub.id),
            }],
        )
        .map_err(|e| match e {
            // Rolls back the mark; the caller pays instead.
            ledger::LedgerError::InsufficientFunds(_) => SpendError::NoneLeft,
            e => SpendError::App(e.into()),
        })?;
        let left = credits_left(conn, sub)?.0;
        Ok(Upgrade::Included {
            upgrades_left: left,
        })
    });
    match spent {
        Ok(u) => Ok(Some(u)),
        Err(SpendError::NoneLeft) => Ok(None),
        Err(SpendError::App(e)) => Err(e),
    }
}

/// Why an included upgrade was not spent.
enum SpendError {
    /// None is left this period.
    NoneLeft,
    /// Anything else.
    App(AppError),
}

impl From<diesel::result::Error> for SpendError {
    fn from(e: diesel::result::Error) -> Self {
        SpendError::App(e.into())
    }
}

impl From<AppError> for SpendError {
    fn from(e: AppError) -> Self {
        SpendError::App(e)
    }
}

/// The paid periods of the project's subscriptions in `[from, to)`, oldest
/// first, with their plan's name: the subscription lines of its statement.
pub fn paid_periods(
    conn: &mut DbConnection,
    project: i64,
    from: Option<NaiveDateTime>,
    to: NaiveDateTime,
) -> QueryResult<Vec<(Period, String)>> {
    let mut q = periods::table
        .inner_join(subs::table.on(subs::id.eq(periods::subscription_id)))
        .inner_join(plans::table.on(plans::id.eq(subs::plan_id)))
        .filter(subs::project_id.eq(project))
        .filter(periods::status.eq("paid"))
        .filter(periods::paid_at.lt(to))
        .order(periods::paid_at)
        .select((Period::as_select(), plans::name))
        .into_boxed();
    if let Some(f) = from {
        q = q.filter(periods::paid_at.ge(f));
    }
    q.load(conn)
}
