//! The project team's pages: the queue (helpers and maintainers), and for
//! maintainers the helpers, the settings with response templates, and the
//! dashboard with its statement. A visitor who may not see a page gets 404,
//! as in the API.

use super::pages::{people_errors, redirect, short_wait, Page};
use super::session::{self, Session};
use super::{money, render, Layout, WebError};
use crate::domain::dashboard::{self, Dashboard};
use crate::domain::tickets as ticket_domain;
use crate::domain::{helpers, projects, queue, reputation};
use crate::error::AppError;
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

/// Project `slug` and whether the caller maintains it, or 404 when the
/// page is not theirs (`maintainers_only`, or else the team: maintainers
/// and approved helpers).
fn project_for(
    conn: &mut crate::db::DbConnection,
    slug: &str,
    user: Option<i64>,
    maintainers_only: bool,
) -> Result<(projects::Project, bool), AppError> {
    let p = projects::by_slug(conn, slug)?;
    let Some(user) = user else {
        return Err(AppError::not_found("page"));
    };
    let maintainer = projects::is_maintainer(conn, p.id, user)?;
    if maintainer || (!maintainers_only && helpers::is_approved(conn, p.id, user)?) {
        Ok((p, maintainer))
    } else {
        Err(AppError::not_found("page"))
    }
}

/// Signed-out visitors are sent to sign in first.
fn sign_in_first(l: &Layout, back: &str) -> Option<HttpResponse> {
    l.user
        .is_none()
        .then(|| redirect(&format!("/login?next={back}")))
}

// ---------------------------------------------------------------------------
// Queue

/// A place in the queue.
pub struct QueueRow {
    position: usize,
    /// None when the caller may not see the ticket (someone's private one).
    ticket: Option<(i64, String, String)>,
    paid: String,
    eta: String,
}

#[derive(Template)]
#[template(path = "queue.html", config = "src/web/askama.toml")]
struct QueuePage {
    l: Layout,
    slug: String,
    name: String,
    maintainer: bool,
    /// Whether the viewer may claim (an approved helper).
    helper: bool,
    total: usize,
    rows: Vec<QueueRow>,
    prev: Option<usize>,
    next: Option<usize>,
}

/// `?page=`.
#[derive(Debug, Deserialize)]
pub struct PageQuery {
    page: Option<usize>,
}

const QUEUE_PAGE: usize = 50;

/// `/p/{slug}/queue`: open tickets in serving order, for the team.
pub async fn queue_page(
    state: web::Data<AppState>,
    req: HttpRequest,
    slug: web::Path<String>,
    q: web::Query<PageQuery>,
) -> Page {
    let slug = slug.into_inner();
    let l = Layout::of(&state, &req).await?;
    if let Some(r) = sign_in_first(&l, &format!("/p/{slug}/queue")) {
        return Ok(r);
    }
    let user = l.user.as_ref().map(|u| u.id);
    let page_no = q.page.unwrap_or(1).clamp(1, 10_000);
    let (p, (maintainer, helper), total, rows) = state
        .db(move |conn| {
            let (p, maintainer) = project_for(conn, &slug, user, false)?;
            let helper = helpers::is_approved(conn, p.id, user.unwrap_or_default())?;
            let entries = queue::entries(conn, &p)?;
            let total = entries.len();
            let mut rows = Vec::new();
            for e in entries
                .into_iter()
                .skip((page_no - 1) * QUEUE_PAGE)
                .take(QUEUE_PAGE)
            {
                let ticket = match ticket_domain::load_visible(conn, e.ticket_id, user) {
                    Ok((t, _)) => Some((t.id, t.tag_list().join(" "), t.title))
                        .map(|(id, tags, title)| (id, title, tags)),
                    Err(AppError::NotFound(_)) => None,
                    Err(other) => return Err(other),
                };
                rows.push(QueueRow {
                    position: e.position,
                    ticket,
                    paid: if e.paid {
                        money(e.paid_amount, &p.currency)
                    } else {
                        String::new()
                    },
                    eta: if e.eta_hours < 1 {
                        "under an hour".into()
                    } else {
                        format!("about {} h", e.eta_hours)
                    },
                });
            }
            Ok((p, (maintainer, helper), total, rows))
        })
        .await?;
    let page = QueuePage {
        l,
        slug: p.slug,
        name: p.name,
        maintainer,
        helper,
        total,
        rows,
        prev: (page_no > 1).then(|| page_no - 1),
        next: (page_no * QUEUE_PAGE < total).then(|| page_no + 1),
    };
    render(StatusCode::OK, &page)
}

// ---------------------------------------------------------------------------
// Helpers

/// A helper or applicant as the maintainers see them.
pub struct HelperAdminRow {
    user_id: i64,
    name: String,
    tier: String,
    rate: String,
    bio: String,
    reputation: String,
    endorsements: i64,
    applied: String,
}

#[derive(Template)]
#[template(path = "helpers.html", config = "src/web/askama.toml")]
struct HelpersPage {
    l: Layout,
    slug: String,
    name: String,
    /// Whether the viewer is an approved helper too (and may endorse).
    can_endorse: bool,
    me: i64,
    pending: Vec<HelperAdminRow>,
    approved: Vec<HelperAdminRow>,
    revoked: Vec<HelperAdminRow>,
    notice: String,
    errors: Vec<String>,
}

async fn helpers_page(
    state: &AppState,
    req: &HttpRequest,
    slug: String,
    status: StatusCode,
    notice: String,
    errors: Vec<String>,
) -> Page {
    let l = Layout::of(state, req).await?;
    if let Some(r) = sign_in_first(&l, &format!("/p/{slug}/helpers")) {
        return Ok(r);
    }
    let user = l.user.as_ref().map(|u| u.id);
    let me = user.unwrap_or_default();
    let (p, can_endorse, lists) = state
        .db(move |conn| {
            let (p, _) = project_for(conn, &slug, user, true)?;
            let can_endorse = helpers::is_approved(conn, p.id, me)?;
            let mut lists = Vec::new();
            for st in [
                helpers::HelperStatus::Pending,
                helpers::HelperStatus::Approved,
                helpers::HelperStatus::Revoked,
            ] {
                let mut rows = Vec::new();
                for (h, name) in helpers::list(conn, p.id, st, None, 200)? {
                    let score = reputation::score_of(conn, p.id, h.user_id)?;
                    rows.push(HelperAdminRow {
                        user_id: h.user_id,
                        name,
                        rate: h.hourly_rate.map_or_else(
                            || "—".into(),
                            |r| format!("{} / hour", money(r, &p.currency)),
                        ),
                        bio: h.bio,
                        reputation: score.map_or_else(|| "new".into(), |s| format!("{s:.0}")),
                        endorsements: helpers::endorsement_count(conn, p.id, h.user_id)?,
                        applied: h.created_at.format("%Y-%m-%d").to_string(),
                        tier: h.tier,
                    });
                }
                lists.push(rows);
            }
            Ok((p, can_endorse, lists))
        })
        .await?;
    let mut lists = lists.into_iter();
    let page = HelpersPage {
        l,
        slug: p.slug,
        name: p.name,
        can_endorse,
        me,
        pending: lists.next().unwrap_or_default(),
        approved: lists.next().unwrap_or_default(),
        revoked: lists.next().unwrap_or_default(),
        notice,
        errors,
    };
    render(status, &page)
}

/// `/p/{slug}/helpers`: applications and helpers, for maintainers.
pub async fn helpers_list(
    state: web::Data<AppState>,
    req: HttpRequest,
    slug: web::Path<String>,
) -> Page {
    helpers_page(
        &state,
        &req,
        slug.into_inner(),
        StatusCode::OK,
        String::new(),
        Vec::new(),
    )
    .await
}

/// A form that carries only its CSRF token.
#[derive(Debug, Deserialize)]
pub struct CsrfOnly {
    csrf: String,
}

/// `POST /p/{slug}/helpers/{user_id}/{approve|revoke|endorse}`.
pub async fn helper_action(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, i64, String)>,
    form: web::Form<CsrfOnly>,
) -> Page {
    session::check_form(&req, &form.csrf)?;
    let (slug, helper, action) = path.into_inner();
    let Some(user) = Session::of(&req).user_id else {
        return Ok(redirect(&format!("/login?next=/p/{slug}/helpers")));
    };
    let s = slug.clone();
    let done = state
        .db(move |conn| {
            let (p, _) = project_for(conn, &s, Some(user), true)?;
            let status = match action.as_str() {
                "approve" => helpers::HelperStatus::Approved,
                "revoke" => helpers::HelperStatus::Revoked,
                "endorse" => {
                    // A maintainer who helps too; the domain checks.
                    helpers::endorse(conn, p.id, user, helper)?;
                    return Ok("Endorsement recorded.".to_owned());
                }
                _ => return Err(AppError::not_found("action")),
            };
            let h = helpers::decide(conn, p.id, helper, status, user)?;
            let name = crate::domain::users::get(conn, h.user_id)?.display_name;
            Ok(format!("{name} is now {}.", h.status))
        })
        .await;
    match done {
        Ok(notice) => helpers_page(&state, &req, slug, StatusCode::OK, notice, Vec::new()).await,
        Err(e @ (AppError::Validation(_) | AppError::Conflict { .. } | AppError::Forbidden(_))) => {
            let status = actix_web::ResponseError::status_code(&e);
            helpers_page(&state, &req, slug, status, String::new(), people_errors(e)).await
        }
        Err(e) => Err(e.into()),
    }
}

// ---------------------------------------------------------------------------
// Settings

/// The settings form, every PATCHable field.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct SettingsForm {
    #[serde(default)]
    csrf: String,
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    repo_url: String,
    #[serde(default)]
    topics: String,
    commission_pct: String,
    free_share_pct: String,
    min_response_hours: String,
    auto_close_days: String,
    acceptance_days: String,
    #[serde(default)]
    guidelines: String,
    #[serde(default)]
    code_of_conduct: String,
    #[serde(default)]
    legal_entity: String,
    #[serde(default)]
    notification_default: String,
    #[serde(default)]
    github_import_visibility: String,
}

impl SettingsForm {
    fn of(p: &projects::Project) -> SettingsForm {
        SettingsForm {
            csrf: String::new(),
            name: p.name.clone(),
            description: p.description.clone(),
            repo_url: p.repo_url.clone(),
            topics: p.topic_list().join(", "),
            commission_pct: format!("{}.{:02}", p.commission_bps / 100, p.commission_bps % 100),
            free_share_pct: p.free_share_pct.to_string(),
            min_response_hours: p.min_response_hours.to_string(),
            auto_close_days: p.auto_close_days.to_string(),
            acceptance_days: p.acceptance_days.to_string(),
            guidelines: p.guidelines.clone(),
            code_of_conduct: p.code_of_conduct.clone(),
            legal_entity: p.legal_entity.clone().unwrap_or_default(),
            notification_default: p.notification_default.clone(),
            github_import_visibility: p.github_import_visibility.clone(),
        }
    }

    /// The patch, or the fields that are not numbers.
    fn patch(&self) -> Result<projects::ProjectPatch, AppError> {
        let mut errors = Vec::new();
        let mut int = |field: &str, text: &str| -> Option<i32> {
            match text.trim().parse::<i32>() {
                Ok(v) => Some(v),
                Err(_) => {
                    errors.push(crate::error::FieldError::new(
                        field,
                        "must be a whole number",
                    ));
                    None
                }
            }
        };
        let free_share_pct = int("free_share_pct", &self.free_share_pct);
        let min_response_hours = int("min_response_hours", &self.min_response_hours);
        let auto_close_days = int("auto_close_days", &self.auto_close_days);
        let acceptance_days = int("acceptance_days", &self.acceptance_days);
        // A percentage with up to two decimals, stored in basis points.
        let commission_bps =
            super::parse_money(&self.commission_pct, "usd").and_then(|v| i32::try_from(v).ok());
        let max_pct = projects::MAX_COMMISSION_BPS / 100;
        match commission_bps {
            None => errors.push(crate::error::FieldError::new(
                "commission",
                "must be a percentage like 10 or 12.5",
            )),
            Some(b) if b > projects::MAX_COMMISSION_BPS => errors.push(
                crate::error::FieldError::new("commission", format!("must be at most {max_pct}%")),
            ),
            Some(_) => {}
        }
        if !errors.is_empty() {
            return Err(AppError::Validation(errors));
        }
        let legal = self.legal_entity.trim();
        Ok(projects::ProjectPatch {
            name: Some(self.name.clone()),
            description: Some(self.description.clone()),
            repo_url: Some(self.repo_url.trim().to_owned()),
            topics: Some(
                self.topics
                    .split(',')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(str::to_owned)
                    .collect(),
            ),
            commission_bps,
            free_share_pct,
            min_response_hours,
            auto_close_days,
            guidelines: Some(self.guidelines.clone()),
            code_of_conduct: Some(self.code_of_conduct.clone()),
            legal_entity: Some((!legal.is_empty()).then(|| legal.to_owned())),
            acceptance_days,
            notification_default: (!self.notification_default.is_empty())
                .then(|| self.notification_default.clone()),
            github_import_visibility: (!self.github_import_visibility.is_empty())
                .then(|| self.github_import_visibility.clone()),
            upgrade_price: None,
        })
    }
}

/// A response template as listed.
pub struct TemplateRow {
    name: String,
    body: String,
    shared: bool,
}

#[derive(Template)]
#[template(path = "settings.html", config = "src/web/askama.toml")]
struct SettingsPage {
    l: Layout,
    slug: String,
    f: SettingsForm,
    max_commission_pct: i32,
    templates: Vec<TemplateRow>,
    template_name: String,
    template_body: String,
    notice: String,
    errors: Vec<String>,
    /// The business calendar form.
    cal: CalendarForm,
    /// (number, name) of the days of the week.
    weekdays: Vec<(u32, &'static str)>,
    /// How the project proved control of its repository, if it did.
    verified_via: Option<String>,
    /// The GitHub repository linked, if any.
    linked_repository: Option<String>,
    /// Whether linking through GitHub is offered.
    github: bool,
}

/// What a settings page shows besides the form.
struct SettingsView {
    form: Option<SettingsForm>,
    template: (String, String),
    calendar: Option<CalendarForm>,
    notice: String,
    errors: Vec<String>,
}

/// The business calendar form.
#[derive(Debug, Clone, Deserialize)]
pub struct CalendarForm {
    #[serde(default)]
    csrf: String,
    time_zone: String,
    /// Checked days, "1" … "7" (the form sends each as `day=N`).
    #[serde(default)]
    days: String,
    start: String,
    end: String,
    /// One date per line.
    #[serde(default)]
    holidays: String,
}

impl CalendarForm {
    fn of(c: &crate::domain::calendar::Calendar) -> CalendarForm {
        use crate::domain::calendar::clock;
        CalendarForm {
            csrf: String::new(),
            time_zone: c.zone.name().to_owned(),
            days: c
                .working_days
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(","),
            start: clock(c.start_minute),
            end: clock(c.end_minute),
            holidays: c
                .holidays
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }

    /// Whether day `d` is checked.
    pub fn has(&self, d: &u32) -> bool {
        self.days.split(',').any(|x| x.trim() == d.to_string())
    }

    fn calendar(&self) -> Result<crate::domain::calendar::Calendar, AppError> {
        let days: Vec<u32> = self
            .days
            .split(',')
            .filter_map(|d| d.trim().parse().ok())
            .collect();
        let holidays: Vec<String> = self
            .holidays
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect();
        crate::domain::calendar::Calendar::parse(
            &self.time_zone,
            &days,
            &self.start,
            &self.end,
            &holidays,
        )
    }
}

impl SettingsView {
    fn empty() -> SettingsView {
        SettingsView {
            form: None,
            template: (String::new(), String::new()),
            calendar: None,
            notice: String::new(),
            errors: Vec::new(),
        }
    }
}

/// The settings page after a form: the notice on success; on a refusal
/// the reasons, with what was typed kept by `keep`.
async fn settings_after(
    state: &AppState,
    req: &HttpRequest,
    slug: String,
    done: Result<String, AppError>,
    keep: impl FnOnce(&mut SettingsView),
) -> Page {
    let mut view = SettingsView::empty();
    let status = match done {
        Ok(notice) => {
            view.notice = notice;
            StatusCode::OK
        }
        Err(e @ (AppError::Validation(_) | AppError::Conflict { .. })) => {
            let status = actix_web::ResponseError::status_code(&e);
            keep(&mut view);
            view.errors = people_errors(e);
            status
        }
        Err(e) => return Err(e.into()),
    };
    settings_page(state, req, slug, status, view).await
}

async fn settings_page(
    state: &AppState,
    req: &HttpRequest,
    slug: String,
    status: StatusCode,
    view: SettingsView,
) -> Page {
    let l = Layout::of(state, req).await?;
    if let Some(r) = sign_in_first(&l, &format!("/p/{slug}/settings")) {
        return Ok(r);
    }
    let user = l.user.as_ref().map(|u| u.id);
    let (p, templates, linked_repository, calendar) = state
        .db(move |conn| {
            let (p, _) = project_for(conn, &slug, user, true)?;
            let linked = crate::channels::github::linked_repository(conn, p.id)?;
            let calendar = crate::domain::calendar::of_project(conn, p.id)?;
            let templates = ticket_domain::list_templates(conn, p.id, user.unwrap_or_default())?
                .into_iter()
                .map(|t| TemplateRow {
                    shared: t.owner_id.is_none(),
                    name: t.name,
                    body: t.body,
                })
                .collect();
            Ok((p, templates, linked, calendar))
        })
        .await?;
    let page = SettingsPage {
        l,
        cal: view.calendar.unwrap_or_else(|| CalendarForm::of(&calendar)),
        weekdays: vec![
            (1, "Monday"),
            (2, "Tuesday"),
            (3, "Wednesday"),
            (4, "Thursday"),
            (5, "Friday"),
            (6, "Saturday"),
            (7, "Sunday"),
        ],
        verified_via: p.verified_via.clone(),
        linked_repository,
        github: state.github_oauth.is_some(),
        f: view.form.unwrap_or_else(|| SettingsForm::of(&p)),
        slug: p.slug,
        max_commission_pct: projects::MAX_COMMISSION_BPS / 100,
        templates,
        template_name: view.template.0,
        template_body: view.template.1,
        notice: view.notice,
        errors: view.errors,
    };
    render(status, &page)
}

/// `/p/{slug}/settings`: every setting the API's PATCH takes, for
/// maintainers, and the response templates.
pub async fn settings(
    state: web::Data<AppState>,
    req: HttpRequest,
    slug: web::Path<String>,
) -> Page {
    settings_page(
        &state,
        &req,
        slug.into_inner(),
        StatusCode::OK,
        SettingsView::empty(),
    )
    .await
}

/// `POST /p/{slug}/settings`: validated by the same domain function as the
/// API's PATCH; errors inline, nothing saved unless all of it is valid.
pub async fn save_settings(
    state: web::Data<AppState>,
    req: HttpRequest,
    slug: web::Path<String>,
    form: web::Form<SettingsForm>,
) -> Page {
    let form = form.into_inner();
    session::check_form(&req, &form.csrf)?;
    let slug = slug.into_inner();
    let Some(user) = Session::of(&req).user_id else {
        return Ok(redirect(&format!("/login?next=/p/{slug}/settings")));
    };
    let (f, s) = (form.clone(), slug.clone());
    let done = state
        .db(move |conn| {
            let (p, _) = project_for(conn, &s, Some(user), true)?;
            let patch = f.patch()?;
            projects::update(conn, p.id, &patch).map(|_| "Settings saved.".to_owned())
        })
        .await;
    settings_after(&state, &req, slug, done, |v| v.form = Some(form)).await
}

/// The new-template form.
#[derive(Debug, Clone, Deserialize)]
pub struct TemplateForm {
    csrf: String,
    name: String,
    body: String,
    shared: Option<String>,
}

/// `POST /p/{slug}/templates`: a response template for the team (shared)
/// or for oneself.
pub async fn add_template(
    state: web::Data<AppState>,
    req: HttpRequest,
    slug: web::Path<String>,
    form: web::Form<TemplateForm>,
) -> Page {
    let form = form.into_inner();
    session::check_form(&req, &form.csrf)?;
    let slug = slug.into_inner();
    let Some(user) = Session::of(&req).user_id else {
        return Ok(redirect(&format!("/login?next=/p/{slug}/settings")));
    };
    let (f, s) = (form.clone(), slug.clone());
    let done = state
        .db(move |conn| {
            let (p, _) = project_for(conn, &s, Some(user), true)?;
            ticket_domain::create_template(
                conn,
                p.id,
                user,
                &f.name,
                &f.body,
                f.shared.as_deref() == Some("yes"),
            )
            .map(|t| format!("Template “{}” added.", t.name))
        })
        .await;
    settings_after(&state, &req, slug, done, |v| {
        v.template = (form.name, form.body)
    })
    .await
}

/// `POST /p/{slug}/calendar`: the business calendar, checked like the
/// API's PUT; errors inline with what was typed kept.
pub async fn save_calendar(
    state: web::Data<AppState>,
    req: HttpRequest,
    slug: web::Path<String>,
    body: web::Bytes,
) -> Page {
    // Checkboxes repeat `day`: read the form as pairs.
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&body)
        .map_err(|_| WebError(AppError::field("calendar", "not a form")))?;
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let form = CalendarForm {
        csrf: get("csrf"),
        time_zone: get("time_zone"),
        days: pairs
            .iter()
            .filter(|(n, _)| n == "day")
            .map(|(_, v)| v.clone())
            .collect::<Vec<_>>()
            .join(","),
        start: get("start"),
        end: get("end"),
        holidays: get("holidays"),
    };
    session::check_form(&req, &form.csrf)?;
    let slug = slug.into_inner();
    let Some(user) = Session::of(&req).user_id else {
        return Ok(redirect(&format!("/login?next=/p/{slug}/settings")));
    };
    let (f, s) = (form.clone(), slug.clone());
    let done = state
        .db(move |conn| {
            let (p, _) = project_for(conn, &s, Some(user), true)?;
            let c = f.calendar()?;
            crate::domain::calendar::set_for_project(conn, p.id, &c)?;
            Ok("Business calendar saved.".to_owned())
        })
        .await;
    settings_after(&state, &req, slug, done, |v| v.calendar = Some(form)).await
}

// ---------------------------------------------------------------------------
// Dashboard

/// One bar of a chart with its label and value as text.
pub struct Bar {
    x: u32,
    y: u32,
    width: u32,
    height: u32,
    label: String,
    value: String,
}

/// A bar chart: the bars, the axis maximum as text, its size.
pub struct Chart {
    title: String,
    bars: Vec<Bar>,
    max_label: String,
    width: u32,
    height: u32,
    /// Every n-th label is written under its bar.
    label_every: usize,
}

const CHART_W: u32 = 640;
const CHART_H: u32 = 180;
const CHART_TOP: u32 = 16;
const CHART_BOTTOM: u32 = 24;

/// Lays out a bar chart of `values` (label, value, value as text).
pub fn chart(
    title: &str,
    values: Vec<(String, i64, String)>,
    max_label: impl Fn(i64) -> String,
) -> Chart {
    let n = values.len().max(1) as u32;
    let max = values.iter().map(|v| v.1).max().unwrap_or(0).max(1);
    let slot = CHART_W / n;
    let width = (slot * 3 / 4).max(1);
    let plot = CHART_H - CHART_TOP - CHART_BOTTOM;
    let bars = values
        .into_iter()
        .enumerate()
        .map(|(i, (label, v, text))| {
            let h = u32::try_from((v.max(0) * i64::from(plot)) / max).unwrap_or(plot);
            Bar {
                x: i as u32 * slot + (slot - width) / 2,
                y: CHART_TOP + plot - h,
                width,
                height: h,
                label,
                value: text,
            }
        })
        .collect();
    Chart {
        title: title.to_owned(),
        bars,
        max_label: max_label(max),
        width: CHART_W,
        height: CHART_H,
        label_every: (n as usize).div_ceil(8).max(1),
    }
}

/// The dashboard as the page shows it.
pub struct DashboardView {
    /// The figures.
    pub d: Dashboard,
    /// Tickets handled per bucket.
    pub handled_chart: Chart,
    /// Revenue per bucket.
    pub revenue_chart: Chart,
}

/// Lays out the dashboard's charts.
pub fn dashboard_view(d: Dashboard) -> DashboardView {
    let currency = d.project.currency.clone();
    let label = |p: &dashboard::Period| p.start.map(|s| d.bucket.label(s)).unwrap_or_default();
    let handled_chart = chart(
        "Tickets handled",
        d.series
            .iter()
            .map(|p| (label(p), p.handled, p.handled.to_string()))
            .collect(),
        |m| m.to_string(),
    );
    let revenue_chart = chart(
        "Money released",
        d.series
            .iter()
            .map(|p| (label(p), p.released, money(p.released, &currency)))
            .collect(),
        |m| money(m, &currency),
    );
    DashboardView {
        d,
        handled_chart,
        revenue_chart,
    }
}

#[derive(Template)]
#[template(path = "dashboard.html", config = "src/web/askama.toml")]
pub struct DashboardPage {
    /// Layout.
    pub l: Layout,
    /// Figures and charts.
    pub v: DashboardView,
    /// The period's bounds as typed (YYYY-MM-DD).
    pub from: String,
    /// Exclusive end as typed.
    pub to: String,
}

impl DashboardPage {
    /// A year's dashboard (a bar a month, 50 helpers), for the render
    /// benchmark.
    pub fn sample_year() -> DashboardPage {
        let at = chrono::NaiveDate::from_ymd_opt(2026, 1, 1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .unwrap_or_default();
        let project = projects::Project {
            id: 1,
            slug: "tantivy".into(),
            name: "Tantivy".into(),
            repo_url: "https://github.com/quickwit-oss/tantivy".into(),
            description: "Full-text search engine library".into(),
            topics: "[]".into(),
            currency: "usd".into(),
            commission_bps: 1000,
            free_share_pct: 30,
            min_response_hours: 4,
            auto_close_days: 14,
            guidelines: String::new(),
            code_of_conduct: String::new(),
            legal_entity: None,
            notification_default: "digest".into(),
            created_by: 1,
            created_at: at,
            updated_at: at,
            acceptance_days: 7,
            verified_at: None,
            verified_via: None,
            github_import_visibility: "public".into(),
            upgrade_price: 2500,
            coc_version: 1,
        };
        let bucket = dashboard::Bucket::Month;
        let mut start = bucket.start_of(at.date());
        let mut series = Vec::new();
        for i in 0..12_i64 {
            series.push(dashboard::Period {
                start: Some(start),
                handled: 30 + i * 3,
                released: 150_000 + i * 10_000,
                commission: 15_000 + i * 1_000,
                sla_decided: 4,
                sla_met: 3,
            });
            start = bucket.start_of(start + chrono::Duration::days(32));
        }
        let d = Dashboard {
            project,
            from: at,
            to: at + chrono::Duration::days(365),
            bucket,
            handled: 558,
            paid: 200,
            community: 300,
            ai: 58,
            released: 2_460_000,
            helpers_amount: 1_968_000,
            commission: 246_000,
            platform_fee: 246_000,
            median_first_response: Some(chrono::Duration::minutes(95)),
            median_resolution: Some(chrono::Duration::hours(20)),
            helpers: (0..50)
                .map(|i| (i, format!("helper {i}"), 100 - i, 50 - i / 2))
                .collect(),
            series,
            sla: (48, 36),
        };
        DashboardPage {
            l: Layout {
                user: Some(super::NavUser {
                    id: 1,
                    name: "maintainer".into(),
                }),
                csrf: "c".repeat(43),
                test_money: true,
            },
            v: dashboard_view(d),
            from: "2026-01-01".into(),
            to: "2026-12-31".into(),
        }
    }

    /// The page's HTML.
    pub fn html(&self) -> Result<String, askama::Error> {
        self.render()
    }

    fn m(&self, amount: impl std::borrow::Borrow<i64>) -> String {
        money(*amount.borrow(), &self.v.d.project.currency)
    }

    fn wait(d: impl std::borrow::Borrow<Option<chrono::Duration>>) -> String {
        d.borrow().map_or_else(|| "no data".into(), short_wait)
    }

    fn pct(&self, part: impl std::borrow::Borrow<i64>) -> String {
        let part = *part.borrow();
        if self.v.d.handled == 0 {
            "—".into()
        } else {
            format!("{}%", part * 100 / self.v.d.handled)
        }
    }
}

/// `?from=&to=` as dates (YYYY-MM-DD); the default is the last 90 days.
#[derive(Debug, Deserialize)]
pub struct PeriodQuery {
    from: Option<String>,
    to: Option<String>,
}

fn period(q: &PeriodQuery) -> Result<(chrono::NaiveDateTime, chrono::NaiveDateTime), AppError> {
    let today = crate::domain::now().date();
    // Dates far outside anything Guildhall has seen are typos (and the
    // calendar arithmetic below must not overflow).
    let day = |field: &str, v: &Option<String>, default: chrono::NaiveDate| {
        let d = match v.as_deref() {
            None | Some("") => default,
            Some(s) => chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map_err(|_| AppError::field(field, "must be a date like 2026-01-31"))?,
        };
        if (2000..=2100).contains(&chrono::Datelike::year(&d)) {
            Ok(d)
        } else {
            Err(AppError::field(
                field,
                "must be a date between 2000 and 2100",
            ))
        }
    };
    let to = day("to", &q.to, today)?;
    let from = day("from", &q.from, to - chrono::Duration::days(90))?;
    if from > to {
        return Err(AppError::field("from", "must not be after the end"));
    }
    if (to - from).num_days() > 3 * 366 {
        return Err(AppError::field(
            "from",
            "a period may be at most three years",
        ));
    }
    let start = from.and_hms_opt(0, 0, 0).unwrap_or_default();
    // The end day is included.
    let end = (to + chrono::Duration::days(1))
        .and_hms_opt(0, 0, 0)
        .unwrap_or_default();
    Ok((start, end))
}

/// `/p/{slug}/dashboard?from=&to=`: figures, charts and tables for
/// maintainers.
pub async fn dashboard_page(
    state: web::Data<AppState>,
    req: HttpRequest,
    slug: web::Path<String>,
    q: web::Query<PeriodQuery>,
) -> Page {
    let slug = slug.into_inner();
    let l = Layout::of(&state, &req).await?;
    if let Some(r) = sign_in_first(&l, &format!("/p/{slug}/dashboard")) {
        return Ok(r);
    }
    let user = l.user.as_ref().map(|u| u.id).unwrap_or_default();
    let (from, to) = period(&q)?;
    let d = state
        .db(move |conn| {
            project_for(conn, &slug, Some(user), true)?;
            dashboard::load(conn, &slug, user, from, to)
        })
        .await?;
    let page = DashboardPage {
        l,
        v: dashboard_view(d),
        from: from.format("%Y-%m-%d").to_string(),
        to: (to - chrono::Duration::days(1))
            .format("%Y-%m-%d")
            .to_string(),
    };
    render(StatusCode::OK, &page)
}

/// `/p/{slug}/statement.{csv|json}?from=&to=`: the API's statement for the
/// dashboard's period, as a download.
pub async fn statement(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    q: web::Query<PeriodQuery>,
) -> Page {
    let (slug, format) = path.into_inner();
    let Some(user) = Session::of(&req).user_id else {
        return Err(WebError(AppError::not_found("page")));
    };
    let (from, to) = period(&q)?;
    let csv = match format.as_str() {
        "csv" => true,
        "json" => false,
        _ => return Err(WebError(AppError::not_found("page"))),
    };
    let statement = state
        .db(move |conn| {
            project_for(conn, &slug, Some(user), true)?;
            crate::api::money::load_statement(conn, &slug, user, Some(from), to)
        })
        .await?;
    let name = format!(
        "{}-statement-{}-{}",
        statement.project,
        from.format("%Y%m%d"),
        (to - chrono::Duration::days(1)).format("%Y%m%d")
    );
    let (body, content_type, ext) = if csv {
        (
            crate::api::money::statement_csv(&statement)?,
            "text/csv; charset=utf-8",
            "csv",
        )
    } else {
        (
            serde_json::to_vec_pretty(&statement).map_err(AppError::internal)?,
            "application/json",
            "json",
        )
    };
    Ok(HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((
            "content-disposition",
            format!("attachment; filename=\"{name}.{ext}\""),
        ))
        .body(body))
}

// ---------------------------------------------------------------------------
// A new project

/// The new-project form.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct NewProjectForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    slug: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    repo_url: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    topics: String,
    #[serde(default)]
    currency: String,
}

#[derive(Template)]
#[template(path = "new_project.html", config = "src/web/askama.toml")]
struct NewProjectPage {
    l: Layout,
    f: NewProjectForm,
    errors: Vec<String>,
}

/// `GET /projects/new`: a maintainer brings their project to Guildhall.
pub async fn new_project_form(state: web::Data<AppState>, req: HttpRequest) -> Page {
    let l = Layout::of(&state, &req).await?;
    if let Some(r) = sign_in_first(&l, "/projects/new") {
        return Ok(r);
    }
    let f = NewProjectForm {
        currency: "usd".into(),
        ..NewProjectForm::default()
    };
    render(
        StatusCode::OK,
        &NewProjectPage {
            l,
            f,
            errors: Vec::new(),
        },
    )
}

/// `POST /projects/new`: the API's validation; its creator becomes its
/// first maintainer; on to its settings.
pub async fn new_project(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<NewProjectForm>,
) -> Page {
    let form = form.into_inner();
    session::check_form(&req, &form.csrf)?;
    let Some(user) = Session::of(&req).user_id else {
        return Ok(redirect("/login?next=/projects/new"));
    };
    let f = form.clone();
    let made = state
        .db(move |conn| {
            let new = projects::NewProject {
                slug: f.slug.trim().to_owned(),
                name: f.name.clone(),
                repo_url: f.repo_url.trim().to_owned(),
                description: f.description.clone(),
                topics: f
                    .topics
                    .split(',')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(str::to_owned)
                    .collect(),
                currency: Some(f.currency.trim().to_ascii_lowercase()).filter(|c| !c.is_empty()),
                commission_bps: None,
            };
            projects::create(conn, user, &new)
        })
        .await;
    match made {
        Ok(p) => Ok(redirect(&format!("/p/{}/settings", p.slug))),
        Err(e @ (AppError::Validation(_) | AppError::Conflict { .. })) => {
            let status = actix_web::ResponseError::status_code(&e);
            let page = NewProjectPage {
                l: Layout::of(&state, &req).await?,
                f: form,
                errors: people_errors(e),
            };
            render(status, &page)
        }
        Err(e) => Err(e.into()),
    }
}
