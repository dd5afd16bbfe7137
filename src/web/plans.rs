//! Plans and subscriptions in the web app: a project's plans page (what it
//! sells, subscribing, and for maintainers publishing plans and the
//! pay-as-you-go upgrade price), the subscriber's own subscriptions with
//! their credits, and cancelling.

use super::pages::{redirect, when, Page};
use super::session::{self, Session};
use super::{money, parse_money, render, Layout, WebError};
use crate::domain::plans::{self, Plan};
use crate::domain::projects;
use crate::error::AppError;
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, ResponseError as _};
use askama::Template;
use serde::Deserialize;

/// One offer as the page shows it.
pub struct Offer {
    id: i64,
    kind: &'static str,
    name: String,
    price: String,
    lines: Vec<String>,
    floss_discount_pct: i32,
}

fn offer(plan: &Plan, project_upgrade_price: i64) -> Offer {
    let c = &plan.currency;
    let mut lines = Vec::new();
    if plan.included_upgrades > 0 {
        lines.push(format!(
            "{} ticket upgrade{} included a month",
            plan.included_upgrades,
            if plan.included_upgrades == 1 { "" } else { "s" }
        ));
    }
    lines.push(format!(
        "Further upgrades {}",
        money(plan.upgrade_price.unwrap_or(project_upgrade_price), c)
    ));
    if plan.consulting_hours > 0 {
        lines.push(format!(
            "{} consulting hour{} a month",
            plan.consulting_hours,
            if plan.consulting_hours == 1 { "" } else { "s" }
        ));
    }
    if let Some(h) = plan.response_hours {
        lines.push(format!(
            "First response guaranteed within {h} business hours; {}% of a month's fee credited for each miss",
            plan.service_credit_pct
        ));
    }
    if plan.term_months > 1 {
        lines.push(format!(
            "Booked and paid in terms of {} months",
            plan.term_months
        ));
    }
    if plan.floss_discount_pct > 0 {
        lines.push(format!(
            "{}% off for people working on another open-source project",
            plan.floss_discount_pct
        ));
    }
    Offer {
        id: plan.id,
        kind: if plan.kind == "enterprise" {
            "Enterprise"
        } else {
            "Monthly"
        },
        name: plan.name.clone(),
        price: format!("from {} a month", money(plan.price, c)),
        lines,
        floss_discount_pct: plan.floss_discount_pct,
    }
}

/// The publish-a-plan form, as typed.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PlanForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    price: String,
    #[serde(default)]
    included_upgrades: String,
    #[serde(default)]
    upgrade_price: String,
    #[serde(default)]
    consulting_hours: String,
    #[serde(default)]
    response_hours: String,
    #[serde(default)]
    term_months: String,
    #[serde(default)]
    floss_discount_pct: String,
    #[serde(default)]
    service_credit_pct: String,
}

fn int(errors: &mut Vec<crate::error::FieldError>, field: &str, text: &str) -> Option<i32> {
    let t = text.trim();
    if t.is_empty() {
        return None;
    }
    match t.parse() {
        Ok(v) => Some(v),
        Err(_) => {
            errors.push(crate::error::FieldError::new(
                field,
                format!("{field}: must be a whole number"),
            ));
            None
        }
    }
}

impl PlanForm {
    fn to_new(&self, currency: &str) -> Result<plans::NewPlan, AppError> {
        let mut errors = Vec::new();
        let price = parse_money(&self.price, currency).unwrap_or_else(|| {
            errors.push(crate::error::FieldError::new(
                "price",
                "price: an amount such as 49 or 49.50",
            ));
            0
        });
        let upgrade_price = if self.upgrade_price.trim().is_empty() {
            None
        } else {
            match parse_money(&self.upgrade_price, currency) {
                Some(a) => Some((a, currency.to_owned())),
                None => {
                    errors.push(crate::error::FieldError::new(
                        "upgrade_price",
                        "upgrade price: an amount such as 25",
                    ));
                    None
                }
            }
        };
        let new = plans::NewPlan {
            kind: self.kind.clone(),
            name: self.name.clone(),
            price,
            currency: currency.to_owned(),
            included_upgrades: int(&mut errors, "included upgrades", &self.included_upgrades),
            upgrade_price,
            consulting_hours: int(&mut errors, "consulting hours", &self.consulting_hours),
            response_hours: int(&mut errors, "response hours", &self.response_hours),
            term_months: int(&mut errors, "term months", &self.term_months),
            floss_discount_pct: int(&mut errors, "FLOSS discount", &self.floss_discount_pct),
            service_credit_pct: int(&mut errors, "service credit", &self.service_credit_pct),
        };
        if errors.is_empty() {
            Ok(new)
        } else {
            Err(AppError::Validation(errors))
        }
    }
}

#[derive(Template)]
#[template(path = "plans.html", config = "src/web/askama.toml")]
struct PlansPage {
    l: Layout,
    slug: String,
    project: String,
    maintainer: bool,
    /// Pay as you go: the upgrade price.
    payg_price: String,
    /// The same as typed in the maintainers' form.
    payg_input: String,
    offers: Vec<Offer>,
    /// The caller's live subscription here: (plan, status, period end).
    mine: Option<(String, String, String)>,
    /// Whether the caller holds a FLOSS proof.
    floss_proof: bool,
    notice: String,
    errors: Vec<String>,
    f: PlanForm,
}

fn notice_text(code: &str) -> &'static str {
    match code {
        "published" => "The plan is published.",
        "price" => "The pay-as-you-go upgrade price is saved.",
        _ => "",
    }
}

async fn plans_page(
    state: &AppState,
    req: &HttpRequest,
    slug: String,
    notice: String,
    errors: Vec<String>,
    f: PlanForm,
    status: StatusCode,
) -> Page {
    let l = Layout::of(state, req).await?;
    let user = l.user.as_ref().map(|u| u.id);
    let (p, maintainer, offers, mine, floss_proof) = state
        .db(move |conn| {
            let p = projects::by_slug(conn, &slug)?;
            let maintainer = match user {
                Some(u) => projects::is_maintainer(conn, p.id, u)?,
                None => false,
            };
            let offers: Vec<Offer> = plans::list_plans(conn, p.id)?
                .iter()
                .map(|plan| offer(plan, p.upgrade_price))
                .collect();
            let (mine, proof) = match user {
                Some(u) => {
                    let mine = match plans::live_subscription(conn, u, p.id)? {
                        Some(s) => Some((
                            plans::get_plan(conn, s.plan_id)?.name,
                            s.status.replace('_', " "),
                            s.period_end.map(when).unwrap_or_default(),
                        )),
                        None => None,
                    };
                    (mine, plans::has_floss_proof(conn, u)?)
                }
                None => (None, false),
            };
            Ok((p, maintainer, offers, mine, proof))
        })
        .await?;
    let payg_price = money(p.upgrade_price, &p.currency);
    let page = PlansPage {
        l,
        slug: p.slug,
        project: p.name,
        maintainer,
        payg_input: format!("{}.{:02}", p.upgrade_price / 100, p.upgrade_price % 100),
        payg_price,
        offers,
        mine,
        floss_proof,
        notice,
        errors,
        f,
    };
    render(status, &page)
}

/// `GET /p/{slug}/plans`: what the project sells.
pub async fn plans_index(
    state: web::Data<AppState>,
    req: HttpRequest,
    slug: web::Path<String>,
    q: web::Query<super::NoticeQuery>,
) -> Page {
    let notice = notice_text(&q.notice).to_owned();
    plans_page(
        &state,
        &req,
        slug.into_inner(),
        notice,
        Vec::new(),
        PlanForm {
            kind: "monthly".into(),
            ..PlanForm::default()
        },
        StatusCode::OK,
    )
    .await
}

fn messages(e: &AppError) -> Vec<String> {
    match e {
        AppError::Validation(errors) => errors.iter().map(|e| e.message.clone()).collect(),
        other => vec![other.to_string()],
    }
}

/// `POST /p/{slug}/plans`: a maintainer publishes a plan.
pub async fn publish(
    state: web::Data<AppState>,
    req: HttpRequest,
    slug: web::Path<String>,
    form: web::Form<PlanForm>,
) -> Page {
    let form = form.into_inner();
    session::check_form(&req, &form.csrf)?;
    let slug = slug.into_inner();
    let Some(user) = Session::of(&req).user_id else {
        return Ok(redirect(&format!("/login?next=/p/{slug}/plans")));
    };
    let (f, s) = (form.clone(), slug.clone());
    let done = state
        .db(move |conn| {
            let p = projects::by_slug(conn, &s)?;
            projects::require_maintainer(conn, p.id, user)?;
            let new = f.to_new(&p.currency)?;
            plans::create_plan(conn, &p, user, &new)
        })
        .await;
    match done {
        Ok(_) => Ok(redirect(&format!("/p/{slug}/plans?notice=published"))),
        Err(e @ (AppError::Validation(_) | AppError::Conflict { .. })) => {
            let status = e.status_code();
            plans_page(
                &state,
                &req,
                slug,
                String::new(),
                messages(&e),
                form,
                status,
            )
            .await
        }
        Err(e) => Err(WebError(e)),
    }
}

/// The pay-as-you-go price form.
#[derive(Debug, Deserialize)]
pub struct PriceForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    upgrade_price: String,
}

/// `POST /p/{slug}/upgrade-price`: a maintainer sets the pay-as-you-go
/// upgrade price.
pub async fn set_upgrade_price(
    state: web::Data<AppState>,
    req: HttpRequest,
    slug: web::Path<String>,
    form: web::Form<PriceForm>,
) -> Page {
    session::check_form(&req, &form.csrf)?;
    let slug = slug.into_inner();
    let Some(user) = Session::of(&req).user_id else {
        return Ok(redirect(&format!("/login?next=/p/{slug}/plans")));
    };
    let (text, s) = (form.upgrade_price.clone(), slug.clone());
    let done = state
        .db(move |conn| {
            let p = projects::by_slug(conn, &s)?;
            projects::require_maintainer(conn, p.id, user)?;
            let amount = parse_money(&text, &p.currency).ok_or_else(|| {
                AppError::field("upgrade_price", "upgrade price: an amount such as 25")
            })?;
            projects::update(
                conn,
                p.id,
                &projects::ProjectPatch {
                    upgrade_price: Some(amount),
                    ..Default::default()
                },
            )
        })
        .await;
    match done {
        Ok(_) => Ok(redirect(&format!("/p/{slug}/plans?notice=price"))),
        Err(e @ AppError::Validation(_)) => {
            plans_page(
                &state,
                &req,
                slug,
                String::new(),
                messages(&e),
                PlanForm::default(),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(e) => Err(WebError(e)),
    }
}

/// The subscribe form.
#[derive(Debug, Deserialize)]
pub struct SubscribeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    plan_id: String,
    #[serde(default)]
    context: String,
    /// Optional, major units.
    #[serde(default)]
    price: String,
}

/// `POST /p/{slug}/subscribe`: subscribe to a plan; the first period is
/// charged at once.
pub async fn subscribe(
    state: web::Data<AppState>,
    req: HttpRequest,
    slug: web::Path<String>,
    form: web::Form<SubscribeForm>,
) -> Page {
    let form = form.into_inner();
    session::check_form(&req, &form.csrf)?;
    let slug = slug.into_inner();
    let Some(user) = Session::of(&req).user_id else {
        return Ok(redirect(&format!("/login?next=/p/{slug}/plans")));
    };
    let gateway = state.gateway.clone();
    let bps = state.config.platform_fee_bps;
    let s = slug.clone();
    let done = state
        .blocking(move |pool| {
            let plan_id: i64 = form
                .plan_id
                .parse()
                .map_err(|_| AppError::field("plan_id", "choose one of the plans"))?;
            let price = {
                let mut conn = pool.get()?;
                let p = projects::by_slug(&mut conn, &s)?;
                let plan = plans::get_plan(&mut conn, plan_id)
                    .ok()
                    .filter(|pl| pl.project_id == p.id)
                    .ok_or_else(|| AppError::field("plan_id", "not a plan of this project"))?;
                match form.price.trim() {
                    "" => None,
                    t => Some(parse_money(t, &plan.currency).ok_or_else(|| {
                        AppError::field("price", "monthly price: an amount such as 49")
                    })?),
                }
            };
            plans::subscribe(
                pool,
                gateway.as_ref(),
                bps,
                user,
                &plans::SubscribeRequest {
                    plan_id,
                    context: form.context.clone(),
                    price,
                },
                None,
            )
            .and_then(|(sub, payment)| {
                let first = plans::period(&mut *pool.get()?, sub.id, 1)?;
                Ok((first, payment))
            })
        })
        .await;
    match done {
        // Stripe: the payer confirms the first payment with their card.
        Ok((Some(first), payment)) => {
            let currency = state
                .db(move |conn| Ok(plans::get_subscription(conn, first.subscription_id)?.currency))
                .await?;
            match super::pages::PayNeeded::of(first.amount, &currency, payment) {
                Some(pay) => {
                    super::pages::card_page(
                        &state,
                        &req,
                        "/me/subscriptions".into(),
                        "Back to your subscriptions".into(),
                        "Your card is charged by Stripe for the first period; the subscription starts when the payment succeeds.",
                        pay,
                    )
                    .await
                }
                None => Ok(redirect("/me/subscriptions?notice=subscribed")),
            }
        }
        Ok(_) => Ok(redirect("/me/subscriptions?notice=subscribed")),
        Err(e @ (AppError::Validation(_) | AppError::Conflict { .. })) => {
            let status = e.status_code();
            plans_page(
                &state,
                &req,
                slug,
                String::new(),
                messages(&e),
                PlanForm::default(),
                status,
            )
            .await
        }
        Err(e) => Err(WebError(e)),
    }
}

/// One subscription as the page shows it.
pub struct SubRow {
    id: i64,
    project: String,
    plan: String,
    status: String,
    price: String,
    period: String,
    credits: String,
    cancellable: bool,
    cancelling: bool,
    /// How long a booking may be, minutes (none left: empty).
    minute_options: Vec<i64>,
    /// (id, minutes, topic, status with its time, cancellable).
    bookings: Vec<(i64, i32, String, String, bool)>,
}

#[derive(Template)]
#[template(path = "subscriptions.html", config = "src/web/askama.toml")]
struct SubscriptionsPage {
    l: Layout,
    rows: Vec<SubRow>,
    notice: String,
}

/// `GET /me/subscriptions`: the caller's subscriptions with their periods
/// and the credits left.
pub async fn mine(
    state: web::Data<AppState>,
    req: HttpRequest,
    q: web::Query<super::NoticeQuery>,
) -> Page {
    let l = Layout::of(&state, &req).await?;
    let Some(user) = l.user.as_ref().map(|u| u.id) else {
        return Ok(redirect("/login?next=/me/subscriptions"));
    };
    let rows = state
        .db(move |conn| {
            let subs = plans::of_user(conn, user)?;
            let mut rows = Vec::with_capacity(subs.len());
            for s in subs {
                let plan = plans::get_plan(conn, s.plan_id)?;
                let project = projects::by_id(conn, s.project_id)?;
                let (upgrades, minutes) = plans::credits_left(conn, &s)?;
                let mut price = format!("{} a month", money(s.monthly_price, &s.currency));
                if s.discount_pct > 0 {
                    price.push_str(&format!(", less {}% (FLOSS)", s.discount_pct));
                }
                let period = match (s.period_start, s.period_end) {
                    (Some(a), Some(b)) => format!("{} to {}", when(a), when(b)),
                    _ => "not paid yet".into(),
                };
                let credits = if s.is_live() {
                    format!(
                        "{upgrades} upgrade{} and {minutes} minutes of consulting left",
                        if upgrades == 1 { "" } else { "s" },
                    )
                } else {
                    "—".into()
                };
                let status = match (s.status.as_str(), s.grace_until) {
                    ("past_due", Some(g)) => format!(
                        "renewal failed; the plan holds until {}, then lapses to pay as you go",
                        when(g)
                    ),
                    (st, _) => st.replace('_', " "),
                };
                rows.push(SubRow {
                    id: s.id,
                    project: project.slug,
                    plan: plan.name,
                    status,
                    price,
                    period,
                    credits,
                    cancellable: matches!(s.status.as_str(), "pending_payment" | "past_due")
                        || (s.status == "active" && !s.cancel_at_period_end),
                    cancelling: s.status == "active" && s.cancel_at_period_end,
                    minute_options: if s.is_live() {
                        [15, 30, 45, 60, 90, 120, 180, 240]
                            .into_iter()
                            .filter(|m| *m <= minutes)
                            .collect()
                    } else {
                        Vec::new()
                    },
                    bookings: crate::domain::consulting::of_subscription(conn, s.id)?
                        .into_iter()
                        .map(|b| {
                            let status = match (b.status.as_str(), b.scheduled_at) {
                                ("scheduled", Some(at)) => format!("scheduled for {}", when(at)),
                                (st, _) => st.to_owned(),
                            };
                            let open = matches!(b.status.as_str(), "requested" | "scheduled");
                            (b.id, b.minutes, b.topic, status, open)
                        })
                        .collect(),
                });
            }
            Ok(rows)
        })
        .await?;
    let notice = match q.notice.as_str() {
        "booked" => "Booked: the project's maintainers were told and will schedule it.",
        "booking_cancelled" => "The booking is cancelled.",
        "subscribed" => "You are subscribed.",
        "cancelled" => "Cancelled: the plan runs to the end of the period you paid for.",
        _ => "",
    }
    .to_owned();
    render(StatusCode::OK, &SubscriptionsPage { l, rows, notice })
}

/// `POST /me/subscriptions/{id}/cancel`.
pub async fn cancel(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<i64>,
    form: web::Form<super::TokenForm>,
) -> Page {
    session::check_form(&req, &form.csrf)?;
    let Some(user) = Session::of(&req).user_id else {
        return Ok(redirect("/login?next=/me/subscriptions"));
    };
    let id = id.into_inner();
    state.db(move |conn| plans::cancel(conn, id, user)).await?;
    Ok(redirect("/me/subscriptions?notice=cancelled"))
}

#[derive(Template)]
#[template(path = "floss.html", config = "src/web/askama.toml")]
struct FlossPage {
    l: Layout,
    /// (repository, licence, permission, proved, valid until, still valid).
    proof: Option<(String, String, String, String, String, bool)>,
    /// Whether Sign in with GitHub is configured.
    github: bool,
    notice: String,
}

/// `GET /me/floss`: the caller's proof of open-source work (for FLOSS
/// discounts) and the way to prove it through GitHub.
pub async fn floss(
    state: web::Data<AppState>,
    req: HttpRequest,
    q: web::Query<super::NoticeQuery>,
) -> Page {
    let l = Layout::of(&state, &req).await?;
    let Some(user) = l.user.as_ref().map(|u| u.id) else {
        return Ok(redirect("/login?next=/me/floss"));
    };
    let proof = state
        .db(move |conn| Ok(crate::domain::floss::of_user(conn, user)?))
        .await?;
    let proof = proof.map(|p| {
        let until = p.checked_at + chrono::Duration::days(plans::PROOF_VALID_DAYS);
        (
            p.repository,
            p.license,
            p.permission,
            when(p.checked_at),
            when(until),
            until > crate::domain::now(),
        )
    });
    let notice = if q.notice == "proved" {
        "Proved: FLOSS discounts apply to your subscriptions for a year."
    } else {
        ""
    }
    .to_owned();
    let github = state.github_oauth.is_some();
    render(
        StatusCode::OK,
        &FlossPage {
            l,
            proof,
            github,
            notice,
        },
    )
}

/// The consulting booking form.
#[derive(Debug, Deserialize)]
pub struct BookForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    minutes: String,
    #[serde(default)]
    topic: String,
    #[serde(default)]
    preferred_at: String,
}

/// A `datetime-local` value read as UTC (`""` → none).
pub fn local_time(field: &str, raw: &str) -> Result<Option<chrono::NaiveDateTime>, WebError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    chrono::NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M")
        .map(Some)
        .map_err(|_| WebError(AppError::field(field, "must be a date and time")))
}

/// `POST /me/subscriptions/{id}/consulting`: the subscriber books time.
pub async fn book_consulting(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<i64>,
    form: web::Form<BookForm>,
) -> Page {
    let form = form.into_inner();
    session::check_form(&req, &form.csrf)?;
    let Some(user) = Session::of(&req).user_id else {
        return Ok(redirect("/login?next=/me/subscriptions"));
    };
    let minutes = form
        .minutes
        .trim()
        .parse::<i32>()
        .map_err(|_| WebError(AppError::field("minutes", "must be a number of minutes")))?;
    let preferred_at = local_time("preferred_at", &form.preferred_at)?;
    let id = id.into_inner();
    state
        .db(move |conn| {
            crate::domain::consulting::book(
                conn,
                id,
                user,
                &crate::domain::consulting::Request {
                    minutes,
                    topic: form.topic,
                    preferred_at,
                },
            )
        })
        .await?;
    Ok(redirect("/me/subscriptions?notice=booked"))
}

/// `POST /me/consulting/{id}/cancel`: the subscriber cancels a booking.
pub async fn cancel_consulting(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<i64>,
    form: web::Form<super::TokenForm>,
) -> Page {
    session::check_form(&req, &form.csrf)?;
    let Some(user) = Session::of(&req).user_id else {
        return Ok(redirect("/login?next=/me/subscriptions"));
    };
    let id = id.into_inner();
    state
        .db(move |conn| crate::domain::consulting::cancel(conn, id, user))
        .await?;
    Ok(redirect("/me/subscriptions?notice=booking_cancelled"))
}

/// A booking as the team's page shows it.
pub struct BookingRow {
    id: i64,
    who: String,
    minutes: i32,
    topic: String,
    preferred: String,
    status: String,
    scheduled: String,
}

#[derive(Template)]
#[template(path = "consulting.html", config = "src/web/askama.toml")]
struct ConsultingPage {
    l: Layout,
    slug: String,
    project: String,
    rows: Vec<BookingRow>,
    notice: String,
}

/// `GET /p/{slug}/consulting`: the project's consulting bookings
/// (maintainers).
pub async fn consulting_page(
    state: web::Data<AppState>,
    req: HttpRequest,
    slug: web::Path<String>,
    q: web::Query<super::NoticeQuery>,
) -> Page {
    let slug = slug.into_inner();
    let l = Layout::of(&state, &req).await?;
    let Some(user) = l.user.as_ref().map(|u| u.id) else {
        return Ok(redirect(&format!("/login?next=/p/{slug}/consulting")));
    };
    let s = slug.clone();
    let (project, rows) = state
        .db(move |conn| {
            let p = projects::by_slug(conn, &s)?;
            if !projects::is_maintainer(conn, p.id, user)? {
                return Err(AppError::not_found("page"));
            }
            let mut rows = Vec::new();
            for b in crate::domain::consulting::of_project(conn, p.id)? {
                rows.push(BookingRow {
                    id: b.id,
                    who: crate::domain::users::get(conn, b.requester_id)?.display_name,
                    minutes: b.minutes,
                    topic: b.topic,
                    preferred: b.preferred_at.map(when).unwrap_or_default(),
                    status: b.status,
                    scheduled: b.scheduled_at.map(when).unwrap_or_default(),
                });
            }
            Ok((p.name, rows))
        })
        .await?;
    let notice = match q.notice.as_str() {
        "schedule" => "Scheduled; the subscriber was told.",
        "done" => "Marked done.",
        "cancel" => "Cancelled; the subscriber was told.",
        _ => "",
    }
    .to_owned();
    render(
        StatusCode::OK,
        &ConsultingPage {
            l,
            slug,
            project,
            rows,
            notice,
        },
    )
}

/// The team's form on a booking.
#[derive(Debug, Deserialize)]
pub struct DecideForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    at: String,
}

/// `POST /p/{slug}/consulting/{id}/{schedule|done|cancel}`.
pub async fn decide_consulting(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, i64, String)>,
    form: web::Form<DecideForm>,
) -> Page {
    let form = form.into_inner();
    session::check_form(&req, &form.csrf)?;
    let (slug, id, action) = path.into_inner();
    let Some(user) = Session::of(&req).user_id else {
        return Ok(redirect(&format!("/login?next=/p/{slug}/consulting")));
    };
    let at = local_time("at", &form.at)?;
    let act = action.clone();
    state
        .db(move |conn| match (act.as_str(), at) {
            ("schedule", Some(at)) => crate::domain::consulting::schedule(conn, id, user, at),
            ("schedule", None) => Err(AppError::field("at", "must be a date and time")),
            ("done", _) => crate::domain::consulting::done(conn, id, user),
            ("cancel", _) => crate::domain::consulting::cancel(conn, id, user),
            _ => Err(AppError::not_found("page")),
        })
        .await?;
    Ok(redirect(&format!("/p/{slug}/consulting?notice={action}")))
}
