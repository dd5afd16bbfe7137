//! `/projects/*`: projects, maintainers, helpers, code of conduct.

use super::views::{HelperView, Page, Paging, ProjectView};
use crate::auth::AuthUser;
use crate::domain::helpers::{self, Application, HelperStatus, Tier};
use crate::domain::projects::{self, NewProject, ProjectPatch};
use crate::error::{AppError, AppResult, Problem};
use crate::state::AppState;
use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Body of `POST /projects`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateProjectBody {
    /// 2–64 characters of a-z, 0-9 and '-'; unique.
    #[schema(min_length = 2, max_length = 64, pattern = "^[a-z0-9-]+$")]
    pub slug: String,
    /// Display name, 1–100 characters.
    #[schema(min_length = 1, max_length = 100, pattern = r"\S")]
    pub name: String,
    /// Source repository: an http(s) URL of at most 500 characters.
    #[schema(max_length = 500, pattern = r"^https?://\S+$")]
    pub repo_url: String,
    /// What the project is, at most 5000 characters.
    #[serde(default)]
    #[schema(max_length = 5000)]
    pub description: String,
    /// Topics.
    #[serde(default)]
    #[schema(schema_with = super::openapi::topics)]
    pub topics: Vec<String>,
    /// Three-letter ISO 4217 code (stored lower case); default `usd`.
    #[schema(pattern = "^[A-Za-z]{3}$")]
    pub currency: Option<String>,
    /// 0–3000; default 1000.
    #[schema(minimum = 0, maximum = 3000)]
    pub commission_bps: Option<i32>,
}

/// Body of `PATCH /projects/{slug}`; absent fields stay as they are.
#[derive(Debug, Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct PatchProjectBody {
    /// Display name, 1–100 characters.
    #[schema(min_length = 1, max_length = 100, pattern = r"\S")]
    pub name: Option<String>,
    /// Description, at most 5000 characters.
    #[schema(max_length = 5000)]
    pub description: Option<String>,
    /// Repository: an http(s) URL of at most 500 characters.
    #[schema(max_length = 500, pattern = r"^https?://\S+$")]
    pub repo_url: Option<String>,
    /// Topics (replaces the list).
    #[schema(schema_with = super::openapi::topics_patch)]
    pub topics: Option<Vec<String>>,
    /// 0–3000.
    #[schema(minimum = 0, maximum = 3000)]
    pub commission_bps: Option<i32>,
    /// 0–100.
    #[schema(minimum = 0, maximum = 100)]
    pub free_share_pct: Option<i32>,
    /// 0–8760.
    #[schema(minimum = 0, maximum = 8760)]
    pub min_response_hours: Option<i32>,
    /// 1–365.
    #[schema(minimum = 1, maximum = 365)]
    pub auto_close_days: Option<i32>,
    /// 1–60: days to accept or reopen a resolution before it is accepted automatically.
    #[schema(minimum = 1, maximum = 60)]
    pub acceptance_days: Option<i32>,
    /// The notification level (`all`, `digest`, `mute`) of the project's
    /// people until they choose for themselves.
    #[schema(pattern = "^(all|digest|mute)$")]
    pub notification_default: Option<String>,
    /// What issues imported from GitHub by `+support` become: `public` or
    /// `private` (an issue of a private repository is always private).
    #[schema(pattern = "^(public|private)$")]
    pub github_import_visibility: Option<String>,
    /// Pay as you go: the price of moving one ticket up the queue, minor
    /// units (100–10,000,000).
    #[schema(minimum = 100, maximum = 10000000)]
    pub upgrade_price: Option<i64>,
    /// Support guidelines, at most 20,000 characters.
    #[schema(max_length = 20000)]
    pub guidelines: Option<String>,
    /// Code of conduct, at most 20,000 characters.
    #[schema(max_length = 20000)]
    pub code_of_conduct: Option<String>,
    /// Legal entity, 1–300 characters; `null` clears it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 300, pattern = r"\S")]
    pub legal_entity: Option<Option<String>>,
}

fn double_option<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// `?q=&limit=&cursor=`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Words to find in name, description or topics.
    pub q: Option<String>,
    /// Page size, 1–100, default 20.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// From the previous page's `next_cursor`.
    pub cursor: Option<String>,
}

/// `?status=&limit=&cursor=` for helpers.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HelperQuery {
    /// `approved` (default, public) or `pending` / `revoked` (maintainers only).
    pub status: Option<HelperStatus>,
    /// Page size, 1–100, default 20.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// From the previous page's `next_cursor`.
    pub cursor: Option<String>,
}

/// Body of `POST /projects/{slug}/maintainers`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct AddMaintainerBody {
    /// The user to add.
    pub user_id: i64,
}

/// Body of `POST /projects/{slug}/helpers/apply`; its schema is written by
/// hand below, because an expert must state a rate and a community helper
/// need not.
#[derive(Debug, Deserialize)]
pub struct ApplyBody {
    /// `expert` or `community`.
    pub tier: Tier,
    /// Minor units per hour, in the project's currency; required for experts.
    pub hourly_rate: Option<i64>,
    /// Self-description.
    #[serde(default)]
    pub bio: String,
    /// Skills.
    #[serde(default)]
    pub skills: Vec<String>,
}

impl utoipa::PartialSchema for ApplyBody {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{
            KnownFormat, ObjectBuilder, OneOfBuilder, SchemaFormat, SchemaType, Type,
        };
        let application = |tier: &str, rate_required: bool, description: &str| {
            let rate = ObjectBuilder::new()
                .schema_type(if rate_required {
                    SchemaType::from(Type::Integer)
                } else {
                    [Type::Integer, Type::Null].into_iter().collect()
                })
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
                .minimum(Some(1))
                .maximum(Some(100_000_000))
                .description(Some(if rate_required {
                    "Minor units per hour in the project's currency, 1–100,000,000; required."
                } else {
                    "Minor units per hour in the project's currency, 1–100,000,000; optional."
                }));
            let mut o = ObjectBuilder::new()
                .description(Some(description))
                .property(
                    "tier",
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .enum_values(Some([tier])),
                )
                .required("tier")
                .property("hourly_rate", rate)
                .property(
                    "bio",
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .max_length(Some(5000))
                        .description(Some("Self-description, at most 5000 characters.")),
                )
                .property("skills", super::openapi::skills());
            if rate_required {
                o = o.required("hourly_rate");
            }
            o
        };
        OneOfBuilder::new()
            .description(Some("An application to help a project: as a vetted paid `expert` (with an hourly rate) or as a `community` helper."))
            .item(application("expert", true, "An expert's application."))
            .item(application("community", false, "A community helper's application."))
            .into()
    }
}

impl ToSchema for ApplyBody {}

/// Result of accepting the code of conduct.
#[derive(Debug, Serialize, ToSchema)]
pub struct CocAccepted {
    /// Project slug.
    pub project: String,
    /// When the caller first accepted it.
    pub accepted_at: DateTime<Utc>,
}

/// Result of an endorsement.
#[derive(Debug, Serialize, ToSchema)]
pub struct Endorsed {
    /// The endorsed helper.
    pub user_id: i64,
    /// Approved helpers endorsing them now.
    pub endorsements: i64,
}

fn project_view(
    conn: &mut crate::db::DbConnection,
    p: &projects::Project,
) -> AppResult<ProjectView> {
    Ok(ProjectView::new(p, projects::maintainers(conn, p.id)?))
}

/// Create a project; the caller becomes its maintainer.
#[utoipa::path(post, path = "/api/v1/projects", tag = "projects", security(("bearer" = [])),
    request_body = CreateProjectBody,
    responses((status = 201, body = ProjectView), (status = 401, body = Problem),
              (status = 409, body = Problem, description = "slug taken"), (status = 422, body = Problem)))]
pub async fn create(
    state: web::Data<AppState>,
    user: AuthUser,
    body: web::Json<CreateProjectBody>,
) -> AppResult<HttpResponse> {
    let b = body.into_inner();
    let new = NewProject {
        slug: b.slug,
        name: b.name,
        repo_url: b.repo_url,
        description: b.description,
        topics: b.topics,
        currency: b.currency,
        commission_bps: b.commission_bps,
    };
    let view = state
        .db(move |conn| {
            let p = projects::create(conn, user.id, &new)?;
            project_view(conn, &p)
        })
        .await?;
    tracing::info!(project = %view.slug, user_id = user.id, "project created");
    Ok(HttpResponse::Created().json(view))
}

/// List projects, optionally searching name, description and topics.
#[utoipa::path(get, path = "/api/v1/projects", tag = "projects", params(ListQuery),
    responses((status = 200, body = Page<ProjectView>), (status = 400, body = Problem)))]
pub async fn list(
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> AppResult<web::Json<Page<ProjectView>>> {
    let q = query.into_inner();
    let paging = Paging::parse(q.limit, q.cursor.as_deref())?;
    state
        .db(move |conn| {
            let rows = projects::list(conn, q.q.as_deref(), paging.cursor, paging.fetch())?;
            Page::from_rows(rows, &paging, |p| p.id, |p| project_view(conn, &p)).map(web::Json)
        })
        .await
}

/// A project with its public settings.
#[utoipa::path(get, path = "/api/v1/projects/{slug}", tag = "projects",
    params(("slug" = String, Path, description = "project slug")),
    responses((status = 200, body = ProjectView), (status = 404, body = Problem)))]
pub async fn get(
    state: web::Data<AppState>,
    slug: web::Path<String>,
) -> AppResult<web::Json<ProjectView>> {
    let slug = slug.into_inner();
    state
        .db(move |conn| {
            let p = projects::by_slug(conn, &slug)?;
            project_view(conn, &p).map(web::Json)
        })
        .await
}

/// Change settings (maintainers only).
#[utoipa::path(patch, path = "/api/v1/projects/{slug}", tag = "projects", security(("bearer" = [])),
    params(("slug" = String, Path, description = "project slug")), request_body = PatchProjectBody,
    responses((status = 200, body = ProjectView), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn patch(
    state: web::Data<AppState>,
    user: AuthUser,
    slug: web::Path<String>,
    body: web::Json<PatchProjectBody>,
) -> AppResult<web::Json<ProjectView>> {
    let slug = slug.into_inner();
    let b = body.into_inner();
    let patch = ProjectPatch {
        name: b.name,
        description: b.description,
        repo_url: b.repo_url,
        topics: b.topics,
        commission_bps: b.commission_bps,
        free_share_pct: b.free_share_pct,
        min_response_hours: b.min_response_hours,
        auto_close_days: b.auto_close_days,
        guidelines: b.guidelines,
        code_of_conduct: b.code_of_conduct,
        legal_entity: b.legal_entity,
        acceptance_days: b.acceptance_days,
        notification_default: b.notification_default,
        github_import_visibility: b.github_import_visibility,
        upgrade_price: b.upgrade_price,
    };
    state
        .db(move |conn| {
            let p = projects::by_slug(conn, &slug)?;
            projects::require_maintainer(conn, p.id, user.id)?;
            let p = projects::update(conn, p.id, &patch)?;
            tracing::info!(project = %p.slug, user_id = user.id, "project settings changed");
            project_view(conn, &p).map(web::Json)
        })
        .await
}

/// A business calendar.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CalendarBody {
    /// IANA time zone, e.g. `Europe/Berlin`.
    pub time_zone: String,
    /// Working days, ISO numbers: 1 = Monday … 7 = Sunday.
    pub working_days: Vec<u32>,
    /// Working hours, local.
    pub hours: HoursBody,
    /// Days off (`YYYY-MM-DD`, local), at most 400.
    #[serde(default)]
    pub holidays: Vec<String>,
}

/// Working hours.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct HoursBody {
    /// `HH:MM`.
    #[schema(example = "09:00")]
    pub start: String,
    /// `HH:MM`, after the start (`24:00` = midnight).
    #[schema(example = "17:00")]
    pub end: String,
}

fn calendar_body(c: &crate::domain::calendar::Calendar) -> CalendarBody {
    use crate::domain::calendar::clock;
    CalendarBody {
        time_zone: c.zone.name().to_owned(),
        working_days: c.working_days.clone(),
        hours: HoursBody {
            start: clock(c.start_minute),
            end: clock(c.end_minute),
        },
        holidays: c.holidays.iter().map(|d| d.to_string()).collect(),
    }
}

/// The project's business calendar, which service-level clocks run on
/// (Monday–Friday 09:00–17:00 UTC until a maintainer sets one).
#[utoipa::path(get, path = "/api/v1/projects/{slug}/calendar", tag = "projects",
    params(("slug" = String, Path, description = "project slug")),
    responses((status = 200, body = CalendarBody), (status = 404, body = Problem)))]
pub async fn get_calendar(
    state: web::Data<AppState>,
    slug: web::Path<String>,
) -> AppResult<web::Json<CalendarBody>> {
    let slug = slug.into_inner();
    state
        .db(move |conn| {
            let p = projects::by_slug(conn, &slug)?;
            Ok(web::Json(calendar_body(
                &crate::domain::calendar::of_project(conn, p.id)?,
            )))
        })
        .await
}

/// Set the project's business calendar (maintainers): time zone, working
/// days and hours, holidays; every field checked, 422 naming the bad ones.
#[utoipa::path(put, path = "/api/v1/projects/{slug}/calendar", tag = "projects", security(("bearer" = [])),
    params(("slug" = String, Path, description = "project slug")), request_body = CalendarBody,
    responses((status = 200, body = CalendarBody), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn put_calendar(
    state: web::Data<AppState>,
    user: AuthUser,
    slug: web::Path<String>,
    body: web::Json<CalendarBody>,
) -> AppResult<web::Json<CalendarBody>> {
    let slug = slug.into_inner();
    let b = body.into_inner();
    state
        .db(move |conn| {
            let p = projects::by_slug(conn, &slug)?;
            projects::require_maintainer(conn, p.id, user.id)?;
            let c = crate::domain::calendar::Calendar::parse(
                &b.time_zone,
                &b.working_days,
                &b.hours.start,
                &b.hours.end,
                &b.holidays,
            )?;
            crate::domain::calendar::set_for_project(conn, p.id, &c)?;
            tracing::info!(project = %p.slug, user_id = user.id, "business calendar set");
            Ok(web::Json(calendar_body(&c)))
        })
        .await
}

/// A line of the audit log.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditView {
    /// Id.
    pub id: i64,
    /// Who; null for the command line.
    pub actor_id: Option<i64>,
    /// What, e.g. `admin.grant`, `project.verify`.
    pub action: String,
    /// `user`, `project`, …
    pub target_type: String,
    /// Which one.
    pub target_id: Option<i64>,
    /// Details.
    pub detail: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// `?limit=&cursor=`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Page size, 1–100, default 20.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// From the previous page's `next_cursor`.
    pub cursor: Option<String>,
}

/// The audit log of moderation and admin actions, newest first (platform
/// admins only).
#[utoipa::path(get, path = "/api/v1/admin/audit", tag = "projects", security(("bearer" = [])), params(AuditQuery),
    responses((status = 200, body = Page<AuditView>), (status = 400, body = Problem), (status = 401, body = Problem),
              (status = 403, body = Problem)))]
pub async fn audit(
    state: web::Data<AppState>,
    user: AuthUser,
    query: web::Query<AuditQuery>,
) -> AppResult<web::Json<Page<AuditView>>> {
    let q = query.into_inner();
    let paging = Paging::parse(q.limit, q.cursor.as_deref())?;
    state
        .db(move |conn| {
            crate::domain::users::require_admin(
                conn,
                user.id,
                "only a platform admin may read the audit log",
            )?;
            let rows = crate::domain::audit::list(conn, paging.cursor, paging.fetch())?;
            Page::from_rows(
                rows,
                &paging,
                |e| e.id,
                |e| {
                    Ok(AuditView {
                        id: e.id,
                        actor_id: e.actor_id,
                        action: e.action,
                        target_type: e.target_type,
                        target_id: e.target_id,
                        detail: e.detail,
                        created_at: super::views::utc(e.created_at),
                    })
                },
            )
            .map(web::Json)
        })
        .await
}

/// Vouch that the project controls its repository (platform admins only),
/// for projects that cannot link it through GitHub.
#[utoipa::path(post, path = "/api/v1/projects/{slug}/verification", tag = "projects", security(("bearer" = [])),
    params(("slug" = String, Path, description = "project slug")),
    responses((status = 200, body = ProjectView), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem)))]
pub async fn verify(
    state: web::Data<AppState>,
    user: AuthUser,
    slug: web::Path<String>,
) -> AppResult<web::Json<ProjectView>> {
    let slug = slug.into_inner();
    state
        .db(move |conn| {
            crate::domain::users::require_admin(
                conn,
                user.id,
                "only a platform admin may verify a project",
            )?;
            let p = projects::by_slug(conn, &slug)?;
            crate::db::write_tx(conn, |conn| {
                if projects::verify(conn, p.id, "platform_admin")? > 0 {
                    crate::domain::audit::record(
                        conn,
                        Some(user.id),
                        "project.verify",
                        "project",
                        Some(p.id),
                        &format!("{} ({})", p.slug, p.repo_url),
                    )?;
                    tracing::info!(project = %p.slug, admin = user.id, "project verified by a platform admin");
                }
                Ok::<_, AppError>(())
            })?;
            let p = projects::by_slug(conn, &slug)?;
            project_view(conn, &p).map(web::Json)
        })
        .await
}

/// Add a maintainer (maintainers only).
#[utoipa::path(post, path = "/api/v1/projects/{slug}/maintainers", tag = "projects", security(("bearer" = [])),
    params(("slug" = String, Path, description = "project slug")), request_body = AddMaintainerBody,
    responses((status = 200, body = ProjectView), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn add_maintainer(
    state: web::Data<AppState>,
    user: AuthUser,
    slug: web::Path<String>,
    body: web::Json<AddMaintainerBody>,
) -> AppResult<web::Json<ProjectView>> {
    let slug = slug.into_inner();
    let target = body.user_id;
    state
        .db(move |conn| {
            let p = projects::by_slug(conn, &slug)?;
            projects::require_maintainer(conn, p.id, user.id)?;
            projects::add_maintainer(conn, p.id, target, user.id)?;
            project_view(conn, &p).map(web::Json)
        })
        .await
}

/// Apply to help a project.
#[utoipa::path(post, path = "/api/v1/projects/{slug}/helpers/apply", tag = "helpers", security(("bearer" = [])),
    params(("slug" = String, Path, description = "project slug")), request_body = ApplyBody,
    responses((status = 201, body = HelperView), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn apply(
    state: web::Data<AppState>,
    user: AuthUser,
    slug: web::Path<String>,
    body: web::Json<ApplyBody>,
) -> AppResult<HttpResponse> {
    let slug = slug.into_inner();
    let b = body.into_inner();
    let app = Application {
        tier: b.tier,
        hourly_rate: b.hourly_rate,
        bio: b.bio,
        skills: b.skills,
    };
    let view = state
        .db(move |conn| {
            let p = projects::by_slug(conn, &slug)?;
            let h = helpers::apply(conn, p.id, user.id, &app)?;
            let name = crate::domain::users::get(conn, user.id)?.display_name;
            Ok(HelperView::new(&h, name, &p.currency, 0))
        })
        .await?;
    Ok(HttpResponse::Created().json(view))
}

async fn decide(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<(String, i64)>,
    status: HelperStatus,
) -> AppResult<web::Json<HelperView>> {
    let (slug, helper_id) = path.into_inner();
    state
        .db(move |conn| {
            let p = projects::by_slug(conn, &slug)?;
            projects::require_maintainer(conn, p.id, user.id)?;
            let h = helpers::decide(conn, p.id, helper_id, status, user.id)?;
            tracing::info!(project = %p.slug, helper = helper_id, by = user.id, status = status.as_str(), "helper decision");
            let name = crate::domain::users::get(conn, helper_id)?.display_name;
            let endorsements = helpers::endorsement_count(conn, p.id, helper_id)?;
            Ok(web::Json(HelperView::new(&h, name, &p.currency, endorsements)))
        })
        .await
}

/// Approve a helper (maintainers only).
#[utoipa::path(post, path = "/api/v1/projects/{slug}/helpers/{user_id}/approve", tag = "helpers",
    security(("bearer" = [])),
    params(("slug" = String, Path, description = "project slug"), ("user_id" = i64, Path, description = "helper")),
    responses((status = 200, body = HelperView), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn approve(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<(String, i64)>,
) -> AppResult<web::Json<HelperView>> {
    decide(state, user, path, HelperStatus::Approved).await
}

/// Revoke a helper (maintainers only).
#[utoipa::path(post, path = "/api/v1/projects/{slug}/helpers/{user_id}/revoke", tag = "helpers",
    security(("bearer" = [])),
    params(("slug" = String, Path, description = "project slug"), ("user_id" = i64, Path, description = "helper")),
    responses((status = 200, body = HelperView), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn revoke(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<(String, i64)>,
) -> AppResult<web::Json<HelperView>> {
    decide(state, user, path, HelperStatus::Revoked).await
}

/// List a project's helpers: approved ones publicly; pending and revoked
/// ones for maintainers.
#[utoipa::path(get, path = "/api/v1/projects/{slug}/helpers", tag = "helpers", security((), ("bearer" = [])),
    params(("slug" = String, Path, description = "project slug"), HelperQuery),
    responses((status = 200, body = Page<HelperView>), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn list_helpers(
    state: web::Data<AppState>,
    user: crate::auth::MaybeUser,
    slug: web::Path<String>,
    query: web::Query<HelperQuery>,
) -> AppResult<web::Json<Page<HelperView>>> {
    let slug = slug.into_inner();
    let q = query.into_inner();
    let paging = Paging::parse(q.limit, q.cursor.as_deref())?;
    let status = q.status.unwrap_or(HelperStatus::Approved);
    state
        .db(move |conn| {
            let p = projects::by_slug(conn, &slug)?;
            if status != HelperStatus::Approved {
                let Some(u) = user.0 else {
                    return Err(AppError::Unauthorized(
                        "log in as a maintainer to see applications".into(),
                    ));
                };
                projects::require_maintainer(conn, p.id, u.id)?;
            }
            let rows = helpers::list(conn, p.id, status, paging.cursor, paging.fetch())?;
            Page::from_rows(
                rows,
                &paging,
                |(h, _)| h.user_id,
                |(h, name)| {
                    let endorsements = helpers::endorsement_count(conn, p.id, h.user_id)?;
                    let mut v = HelperView::new(&h, name, &p.currency, endorsements);
                    v.reputation = crate::domain::reputation::score_of(conn, p.id, h.user_id)?;
                    Ok(v)
                },
            )
            .map(web::Json)
        })
        .await
}

/// An approved helper endorses another approved helper of the project.
#[utoipa::path(post, path = "/api/v1/projects/{slug}/helpers/{user_id}/endorse", tag = "helpers",
    security(("bearer" = [])),
    params(("slug" = String, Path, description = "project slug"), ("user_id" = i64, Path, description = "helper to endorse")),
    responses((status = 200, body = Endorsed), (status = 403, body = Problem), (status = 404, body = Problem),
              (status = 422, body = Problem, description = "self-endorsement")))]
pub async fn endorse(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<(String, i64)>,
) -> AppResult<web::Json<Endorsed>> {
    let (slug, endorsee) = path.into_inner();
    state
        .db(move |conn| {
            let p = projects::by_slug(conn, &slug)?;
            helpers::endorse(conn, p.id, user.id, endorsee)?;
            let endorsements = helpers::endorsement_count(conn, p.id, endorsee)?;
            Ok(web::Json(Endorsed {
                user_id: endorsee,
                endorsements,
            }))
        })
        .await
}

/// Accept the project's code of conduct (needed once before submitting tickets).
#[utoipa::path(post, path = "/api/v1/projects/{slug}/coc/accept", tag = "projects", security(("bearer" = [])),
    params(("slug" = String, Path, description = "project slug")),
    responses((status = 200, body = CocAccepted), (status = 404, body = Problem)))]
pub async fn accept_coc(
    state: web::Data<AppState>,
    user: AuthUser,
    slug: web::Path<String>,
) -> AppResult<web::Json<CocAccepted>> {
    let slug = slug.into_inner();
    state
        .db(move |conn| {
            let p = projects::by_slug(conn, &slug)?;
            let at = projects::accept_coc(conn, p.id, user.id)?;
            Ok(web::Json(CocAccepted {
                project: p.slug,
                accepted_at: super::views::utc(at),
            }))
        })
        .await
}
