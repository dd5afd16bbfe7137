//! Projects: creation, settings, maintainers, code-of-conduct acceptance.

use crate::db::schema::{coc_acceptances, project_maintainers, projects};
use crate::db::{write_tx, DbConnection};
use crate::error::ErrorCode;
use crate::error::{AppError, AppResult, FieldError};
use chrono::NaiveDateTime;
use diesel::prelude::*;

diesel::define_sql_function!(
    /// SQL `lower(text)`.
    fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text);

/// Default platform-independent commission of a project, in basis points.
pub const DEFAULT_COMMISSION_BPS: i32 = 1000;
/// Highest commission a project may take, in basis points.
pub const MAX_COMMISSION_BPS: i32 = 3000;

/// A row of `projects`.
#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = projects)]
pub struct Project {
    /// Id.
    pub id: i64,
    /// Unique URL name.
    pub slug: String,
    /// Display name.
    pub name: String,
    /// Source repository.
    pub repo_url: String,
    /// What the project is.
    pub description: String,
    /// JSON array of topics.
    pub topics: String,
    /// ISO 4217 code, lower case.
    pub currency: String,
    /// Commission on paid work, basis points.
    pub commission_bps: i32,
    /// Share of queue positions guaranteed to unpaid tickets, percent.
    pub free_share_pct: i32,
    /// Floor of promised response times, hours.
    pub min_response_hours: i32,
    /// Days without activity before a ticket auto-closes.
    pub auto_close_days: i32,
    /// Support guidelines shown to requesters.
    pub guidelines: String,
    /// Code of conduct requesters accept once.
    pub code_of_conduct: String,
    /// Legal entity that contracts with requesters.
    pub legal_entity: Option<String>,
    /// Creator.
    pub created_by: i64,
    /// Created (UTC).
    pub created_at: NaiveDateTime,
    /// Updated (UTC).
    pub updated_at: NaiveDateTime,
    /// Days the requester has to accept or reopen a resolution.
    pub acceptance_days: i32,
    /// The notification level of the project's people until they choose.
    pub notification_default: String,
    /// When the project proved control of its repository (or a platform
    /// admin vouched for it); needed to take real money.
    pub verified_at: Option<NaiveDateTime>,
    /// How: `github_app`, `github_admin` or `platform_admin`.
    pub verified_via: Option<String>,
    /// `public` or `private`: what issues imported by `+support` become
    /// (an issue of a private repository is always private).
    pub github_import_visibility: String,
    /// Pay as you go: the price of moving one ticket up the queue, minor
    /// units.
    pub upgrade_price: i64,
    /// The code of conduct's version: a change of its text makes the next.
    pub coc_version: i32,
}

impl Project {
    /// Topics as a list.
    pub fn topic_list(&self) -> Vec<String> {
        serde_json::from_str(&self.topics).unwrap_or_default()
    }
}

/// Fields of a new project.
#[derive(Debug, Clone)]
pub struct NewProject {
    /// See [`Project`].
    pub slug: String,
    /// See [`Project`].
    pub name: String,
    /// See [`Project`].
    pub repo_url: String,
    /// See [`Project`].
    pub description: String,
    /// See [`Project`].
    pub topics: Vec<String>,
    /// See [`Project`].
    pub currency: Option<String>,
    /// See [`Project`].
    pub commission_bps: Option<i32>,
}

/// A partial update of a project's settings; `None` leaves a field alone.
#[derive(Debug, Clone, Default)]
pub struct ProjectPatch {
    /// See [`Project`].
    pub name: Option<String>,
    /// See [`Project`].
    pub description: Option<String>,
    /// See [`Project`].
    pub repo_url: Option<String>,
    /// See [`Project`].
    pub topics: Option<Vec<String>>,
    /// See [`Project`].
    pub commission_bps: Option<i32>,
    /// See [`Project`].
    pub free_share_pct: Option<i32>,
    /// See [`Project`].
    pub min_response_hours: Option<i32>,
    /// See [`Project`].
    pub auto_close_days: Option<i32>,
    /// See [`Project`].
    pub guidelines: Option<String>,
    /// See [`Project`].
    pub code_of_conduct: Option<String>,
    /// See [`Project`]; `Some(None)` clears it.
    pub legal_entity: Option<Option<String>>,
    /// See [`Project`].
    pub acceptance_days: Option<i32>,
    /// See [`Project`]: `all`, `digest` or `mute`.
    pub notification_default: Option<String>,
    /// See [`Project`]: `public` or `private`.
    pub github_import_visibility: Option<String>,
    /// See [`Project`]: 100–10,000,000 minor units.
    pub upgrade_price: Option<i64>,
}

/// Whether `slug` is 2–64 characters of a-z, 0-9 and '-'.
pub fn valid_slug(slug: &str) -> bool {
    (2..=64).contains(&slug.len())
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn check_text(errors: &mut Vec<FieldError>, field: &str, value: &str, min: usize, max: usize) {
    let n = value.trim().chars().count();
    if n < min || n > max {
        errors.push(FieldError::new(
            field,
            format!("must be {min} to {max} characters"),
        ));
    }
}

fn check_url(errors: &mut Vec<FieldError>, value: &str) {
    let ok = (value.starts_with("https://") || value.starts_with("http://"))
        && value.len() <= 500
        && !value.chars().any(char::is_whitespace)
        && value
            .split("://")
            .nth(1)
            .is_some_and(|rest| !rest.is_empty());
    if !ok {
        errors.push(FieldError::new(
            "repo_url",
            "must be an http(s) URL of at most 500 characters",
        ));
    }
}

fn check_topics(errors: &mut Vec<FieldError>, topics: &[String]) {
    if topics.len() > 20 {
        errors.push(FieldError::new("topics", "at most 20 topics"));
    }
    for (i, t) in topics.iter().enumerate() {
        if t.trim().is_empty() || t.chars().count() > 50 {
            errors.push(FieldError::new(
                format!("topics[{i}]"),
                "must be 1 to 50 characters",
            ));
        }
    }
}

fn check_range(errors: &mut Vec<FieldError>, field: &str, value: Option<i32>, min: i32, max: i32) {
    if let Some(v) = value {
        if v < min || v > max {
            errors.push(FieldError::new(
                field,
                format!("must be between {min} and {max}"),
            ));
        }
    }
}

fn normalize_topics(topics: &[String]) -> String {
    let list: Vec<String> = topics.iter().map(|t| t.trim().to_lowercase()).collect();
    serde_json::to_string(&list).unwrap_or_else(|_| "[]".into())
}

/// Validates and inserts a project; its creator becomes a maintainer in the
/// same transaction. A taken slug is 409 `slug_taken`.
pub fn create(conn: &mut DbConnection, creator: i64, new: &NewProject) -> AppResult<Project> {
    let mut errors = Vec::new();
    if !valid_slug(&new.slug) {
        errors.push(FieldError::new(
            "slug",
            "must be 2 to 64 characters of a-z, 0-9 and '-'",
        ));
    }
    check_text(&mut errors, "name", &new.name, 1, 100);
    check_text(&mut errors, "description", &new.description, 0, 5000);
    check_url(&mut errors, &new.repo_url);
    check_topics(&mut errors, &new.topics);
    check_range(
        &mut errors,
        "commission_bps",
        new.commission_bps,
        0,
        MAX_COMMISSION_BPS,
    );
    let currency = new
        .currency
        .as_deref()
        .unwrap_or("usd")
        .to_ascii_lowercase();
    if !is_iso_4217(&currency) {
        errors.push(FieldError::new(
            "currency",
            "must be an ISO 4217 currency code, e.g. usd or eur",
        ));
    }
    if !errors.is_empty() {
        return Err(AppError::Validation(errors));
    }
    let now = super::now();
    write_tx(conn, |conn| {
        let inserted = diesel::insert_into(projects::table)
            .values((
                projects::slug.eq(&new.slug),
                projects::name.eq(new.name.trim()),
                projects::repo_url.eq(&new.repo_url),
                projects::description.eq(new.description.trim()),
                projects::topics.eq(normalize_topics(&new.topics)),
                projects::currency.eq(&currency),
                projects::commission_bps.eq(new.commission_bps.unwrap_or(DEFAULT_COMMISSION_BPS)),
                projects::created_by.eq(creator),
                projects::created_at.eq(now),
                projects::updated_at.eq(now),
            ))
            .execute(conn);
        match inserted {
            Ok(_) => {}
            Err(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _,
            )) => {
                return Err(AppError::conflict(
                    ErrorCode::SlugTaken,
                    "a project with this slug already exists",
                ))
            }
            Err(e) => return Err(e.into()),
        }
        let project = by_slug(conn, &new.slug)?;
        diesel::insert_into(project_maintainers::table)
            .values((
                project_maintainers::project_id.eq(project.id),
                project_maintainers::user_id.eq(creator),
                project_maintainers::added_by.eq(Some(creator)),
                project_maintainers::created_at.eq(now),
            ))
            .execute(conn)?;
        Ok(project)
    })
}

/// The project with this slug, or 404.
pub fn by_slug(conn: &mut DbConnection, slug: &str) -> AppResult<Project> {
    projects::table
        .filter(projects::slug.eq(slug))
        .select(Project::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| AppError::not_found("project"))
}

/// The project with this id, or 404.
pub fn by_id(conn: &mut DbConnection, id: i64) -> AppResult<Project> {
    projects::table
        .find(id)
        .select(Project::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| AppError::not_found("project"))
}

/// Every project's slug by id (for labelling tickets of many projects).
pub fn slugs(conn: &mut DbConnection) -> QueryResult<std::collections::HashMap<i64, String>> {
    Ok(projects::table
        .select((projects::id, projects::slug))
        .load::<(i64, String)>(conn)?
        .into_iter()
        .collect())
}

/// Projects whose name, description or topics contain `q` (any case), by id,
/// after the cursor id.
pub fn list(
    conn: &mut DbConnection,
    q: Option<&str>,
    after: Option<i64>,
    limit: i64,
) -> AppResult<Vec<Project>> {
    let mut query = projects::table
        .select(Project::as_select())
        .order(projects::id.asc())
        .limit(limit)
        .into_boxed();
    if let Some(q) = q.map(str::trim).filter(|q| !q.is_empty()) {
        let escaped = q
            .to_lowercase()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        let pattern = format!("%{escaped}%");
        query = query.filter(
            lower(projects::name)
                .like(pattern.clone())
                .escape('\\')
                .or(lower(projects::description)
                    .like(pattern.clone())
                    .escape('\\'))
                .or(lower(projects::topics).like(pattern).escape('\\')),
        );
    }
    if let Some(after) = after {
        query = query.filter(projects::id.gt(after));
    }
    Ok(query.load(conn)?)
}

/// Longest acceptance window a project may set, days.
pub const MAX_ACCEPTANCE_DAYS: i32 = 60;

/// Active ISO 4217 codes of money people pay with (no funds, metals or
/// test codes), lower case as the API takes them.
const ISO_4217: &str = "aed afn all amd ang aoa ars aud awg azn bam bbd bdt bgn bhd bif bmd bnd bob brl \
bsd btn bwp byn bzd cad cdf chf clp cny cop crc cuc cup cve czk djf dkk dop dzd egp ern etb eur fjd \
fkp gbp gel ghs gip gmd gnf gtq gyd hkd hnl htg huf idr ils inr iqd irr isk jmd jod jpy kes kgs khr \
kmf kpw krw kwd kyd kzt lak lbp lkr lrd lsl lyd mad mdl mga mkd mmk mnt mop mru mur mvr mwk mxn myr \
mzn nad ngn nio nok npr nzd omr pab pen pgk php pkr pln pyg qar ron rsd rub rwf sar sbd scr sdg sek \
sgd shp sle sll sos srd ssp stn svc syp szl thb tjs tmt tnd top try ttd twd tzs uah ugx usd uyu uzs \
ved ves vnd vuv wst xaf xcd xcg xof xpf yer zar zmw zwg zwl";

/// Whether `code` is an active ISO 4217 currency code (lower case).
pub fn is_iso_4217(code: &str) -> bool {
    code.len() == 3 && ISO_4217.split_ascii_whitespace().any(|c| c == code)
}

/// Validates and applies a settings patch.
pub fn update(
    conn: &mut DbConnection,
    project_id: i64,
    patch: &ProjectPatch,
) -> AppResult<Project> {
    let mut errors = Vec::new();
    if let Some(name) = &patch.name {
        check_text(&mut errors, "name", name, 1, 100);
    }
    if let Some(d) = &patch.description {
        check_text(&mut errors, "description", d, 0, 5000);
    }
    if let Some(u) = &patch.repo_url {
        check_url(&mut errors, u);
    }
    if let Some(t) = &patch.topics {
        check_topics(&mut errors, t);
    }
    check_range(
        &mut errors,
        "commission_bps",
        patch.commission_bps,
        0,
        MAX_COMMISSION_BPS,
    );
    check_range(&mut errors, "free_share_pct", patch.free_share_pct, 0, 100);
    check_range(
        &mut errors,
        "min_response_hours",
        patch.min_response_hours,
        0,
        24 * 365,
    );
    check_range(
        &mut errors,
        "auto_close_days",
        patch.auto_close_days,
        1,
        365,
    );
    check_range(
        &mut errors,
        "acceptance_days",
        patch.acceptance_days,
        1,
        MAX_ACCEPTANCE_DAYS,
    );
    if let Some(g) = &patch.guidelines {
        check_text(&mut errors, "guidelines", g, 0, 20_000);
    }
    if let Some(c) = &patch.code_of_conduct {
        check_text(&mut errors, "code_of_conduct", c, 0, 20_000);
    }
    if let Some(Some(l)) = &patch.legal_entity {
        check_text(&mut errors, "legal_entity", l, 1, 300);
    }
    if let Some(v) = patch.upgrade_price {
        let range = crate::domain::plans::MIN_PRICE..=crate::domain::plans::MAX_PRICE;
        if !range.contains(&v) {
            errors.push(FieldError::new(
                "upgrade_price",
                format!(
                    "must be between {} and {} minor units",
                    range.start(),
                    range.end()
                ),
            ));
        }
    }
    if let Some(v) = &patch.github_import_visibility {
        if v != "public" && v != "private" {
            errors.push(FieldError::new(
                "github_import_visibility",
                "must be public or private",
            ));
        }
    }
    if let Some(level) = &patch.notification_default {
        if super::notifications::Level::parse(level).is_none() {
            errors.push(FieldError::new(
                "notification_default",
                "must be all, digest or mute",
            ));
        }
    }
    if !errors.is_empty() {
        return Err(AppError::Validation(errors));
    }
    let target = projects::table.find(project_id);
    write_tx(conn, |conn| {
        macro_rules! set {
            ($field:ident, $value:expr) => {
                diesel::update(target)
                    .set(projects::$field.eq($value))
                    .execute(conn)?;
            };
        }
        if let Some(v) = &patch.name {
            set!(name, v.trim());
        }
        if let Some(v) = &patch.description {
            set!(description, v.trim());
        }
        if let Some(v) = &patch.repo_url {
            let old: String = target.select(projects::repo_url).first(conn)?;
            if old != *v {
                // The proof was for the old repository.
                set!(repo_url, v);
                unverify(conn, project_id)?;
            }
        }
        if let Some(v) = &patch.topics {
            set!(topics, normalize_topics(v));
        }
        if let Some(v) = patch.commission_bps {
            set!(commission_bps, v);
        }
        if let Some(v) = patch.free_share_pct {
            set!(free_share_pct, v);
        }
        if let Some(v) = patch.min_response_hours {
            set!(min_response_hours, v);
        }
        if let Some(v) = patch.auto_close_days {
            set!(auto_close_days, v);
        }
        if let Some(v) = patch.acceptance_days {
            set!(acceptance_days, v);
        }
        if let Some(v) = patch.upgrade_price {
            set!(upgrade_price, v);
        }
        if let Some(v) = &patch.guidelines {
            set!(guidelines, v);
        }
        if let Some(v) = &patch.code_of_conduct {
            let old: String = target.select(projects::code_of_conduct).first(conn)?;
            if old != *v {
                // A new text is a new version: everyone accepts it again.
                diesel::update(target)
                    .set((
                        projects::code_of_conduct.eq(v),
                        projects::coc_version.eq(projects::coc_version + 1),
                    ))
                    .execute(conn)?;
            }
        }
        if let Some(v) = &patch.legal_entity {
            set!(legal_entity, v.as_deref().map(str::trim));
        }
        if let Some(v) = &patch.notification_default {
            set!(notification_default, v);
        }
        if let Some(v) = &patch.github_import_visibility {
            set!(github_import_visibility, v);
        }
        set!(updated_at, super::now());
        Ok(projects::table
            .find(project_id)
            .select(Project::as_select())
            .first(conn)?)
    })
}

/// Records that the project proved control of its repository (`via`:
/// `github_app`, `github_admin`, `platform_admin`); an earlier proof stands.
pub fn verify(conn: &mut DbConnection, project_id: i64, via: &str) -> QueryResult<usize> {
    diesel::update(
        projects::table
            .find(project_id)
            .filter(projects::verified_at.is_null()),
    )
    .set((
        projects::verified_at.eq(Some(super::now())),
        projects::verified_via.eq(Some(via)),
    ))
    .execute(conn)
}

/// Forgets the project's proof and its repository link (its repository
/// changed).
fn unverify(conn: &mut DbConnection, project_id: i64) -> QueryResult<()> {
    use crate::db::schema::github_repositories as gr;
    diesel::update(projects::table.find(project_id))
        .set((
            projects::verified_at.eq(None::<NaiveDateTime>),
            projects::verified_via.eq(None::<String>),
        ))
        .execute(conn)?;
    diesel::update(gr::table.filter(gr::project_id.eq(project_id)))
        .set(gr::project_id.eq(None::<i64>))
        .execute(conn)?;
    Ok(())
}

/// Whether the project has proved control of its repository.
pub fn is_verified(conn: &mut DbConnection, project_id: i64) -> QueryResult<bool> {
    projects::table
        .find(project_id)
        .select(projects::verified_at)
        .first::<Option<NaiveDateTime>>(conn)
        .map(|v| v.is_some())
}

/// Refuses real money (`live`: the gateway does not deal in test money)
/// for a project that has not proved control of its repository.
pub fn require_verified_for_live(
    conn: &mut DbConnection,
    live: bool,
    project_id: i64,
) -> AppResult<()> {
    if live && !is_verified(conn, project_id)? {
        return Err(AppError::conflict(
            ErrorCode::ProjectUnverified,
            "this project has not proved it controls its repository yet, so it cannot take payments; its maintainers can link the repository (install the GitHub App or link it as a repository admin)",
        ));
    }
    Ok(())
}

/// Whether `user_id` maintains the project.
pub fn is_maintainer(conn: &mut DbConnection, project_id: i64, user_id: i64) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        project_maintainers::table
            .filter(project_maintainers::project_id.eq(project_id))
            .filter(project_maintainers::user_id.eq(user_id)),
    ))
    .get_result(conn)
}

/// 403 unless `user_id` maintains the project.
pub fn require_maintainer(conn: &mut DbConnection, project_id: i64, user_id: i64) -> AppResult<()> {
    if is_maintainer(conn, project_id, user_id)? {
        Ok(())
    } else {
        Err(AppError::forbidden(
            "only the project's maintainers may do this",
        ))
    }
}

/// Maintainer ids of a project.
pub fn maintainers(conn: &mut DbConnection, project_id: i64) -> QueryResult<Vec<i64>> {
    project_maintainers::table
        .filter(project_maintainers::project_id.eq(project_id))
        .select(project_maintainers::user_id)
        .order(project_maintainers::user_id)
        .load(conn)
}

/// Adds a maintainer; `Ok(false)` if they already were one.
pub fn add_maintainer(
    conn: &mut DbConnection,
    project_id: i64,
    user_id: i64,
    by: i64,
) -> AppResult<bool> {
    super::users::get(conn, user_id)?;
    let added = crate::per_backend!(conn, |c| diesel::insert_into(project_maintainers::table)
        .values((
            project_maintainers::project_id.eq(project_id),
            project_maintainers::user_id.eq(user_id),
            project_maintainers::added_by.eq(Some(by)),
            project_maintainers::created_at.eq(super::now()),
        ))
        .on_conflict_do_nothing()
        .execute(c))?;
    Ok(added == 1)
}

/// Removes a maintainer; `Ok(false)` if they were none.
pub fn remove_maintainer(
    conn: &mut DbConnection,
    project_id: i64,
    user_id: i64,
) -> QueryResult<bool> {
    let n = diesel::delete(
        project_maintainers::table
            .filter(project_maintainers::project_id.eq(project_id))
            .filter(project_maintainers::user_id.eq(user_id)),
    )
    .execute(conn)?;
    Ok(n == 1)
}

/// Records that `user_id` accepted the project's code of conduct (once;
/// later calls keep the first time) and the platform's current one.
/// Returns when they accepted the project's.
pub fn accept_coc(
    conn: &mut DbConnection,
    project_id: i64,
    user_id: i64,
) -> AppResult<NaiveDateTime> {
    // The platform's current code of conduct is accepted with it (the
    // forms show both).
    super::conduct::accept(conn, user_id)?;
    accept_project_coc(conn, project_id, user_id)
}

/// Records that `user_id` accepted the project's own code of conduct
/// (once; later calls keep the first time), not the platform's.
pub fn accept_project_coc(
    conn: &mut DbConnection,
    project_id: i64,
    user_id: i64,
) -> AppResult<NaiveDateTime> {
    let version: i32 = projects::table
        .find(project_id)
        .select(projects::coc_version)
        .first(conn)?;
    // Accepting the version already accepted keeps the first time;
    // accepting a new version records it and when.
    if let Some(at) = project_coc_accepted_at(conn, project_id, user_id)? {
        return Ok(at);
    }
    let at = super::now();
    crate::per_backend!(conn, |c| diesel::insert_into(coc_acceptances::table)
        .values((
            coc_acceptances::project_id.eq(project_id),
            coc_acceptances::user_id.eq(user_id),
            coc_acceptances::accepted_at.eq(at),
            coc_acceptances::version.eq(version),
        ))
        .on_conflict((coc_acceptances::project_id, coc_acceptances::user_id))
        .do_update()
        .set((
            coc_acceptances::accepted_at.eq(at),
            coc_acceptances::version.eq(version),
        ))
        .execute(c))?;
    Ok(coc_acceptances::table
        .find((project_id, user_id))
        .select(coc_acceptances::accepted_at)
        .first(conn)?)
}

/// When `user_id` accepted the current version of the project's code of
/// conduct, if they did and also accepted the platform's current one.
pub fn coc_accepted_at(
    conn: &mut DbConnection,
    project_id: i64,
    user_id: i64,
) -> QueryResult<Option<NaiveDateTime>> {
    if super::conduct::accepted_at(conn, user_id)?.is_none() {
        return Ok(None);
    }
    project_coc_accepted_at(conn, project_id, user_id)
}

/// When `user_id` accepted the current version of the project's own code
/// of conduct, if ever.
fn project_coc_accepted_at(
    conn: &mut DbConnection,
    project_id: i64,
    user_id: i64,
) -> QueryResult<Option<NaiveDateTime>> {
    // Only an acceptance of the current version counts.
    coc_acceptances::table
        .inner_join(projects::table.on(projects::id.eq(coc_acceptances::project_id)))
        .filter(coc_acceptances::project_id.eq(project_id))
        .filter(coc_acceptances::user_id.eq(user_id))
        .filter(coc_acceptances::version.eq(projects::coc_version))
        .select(coc_acceptances::accepted_at)
        .first(conn)
        .optional()
}

/// 409 `code_of_conduct_not_accepted` unless `user` accepted the current
/// version of the project's code of conduct.
pub fn require_coc(conn: &mut DbConnection, project_id: i64, user_id: i64) -> AppResult<()> {
    if coc_accepted_at(conn, project_id, user_id)?.is_none() {
        return Err(AppError::conflict(
            ErrorCode::CodeOfConductNotAccepted,
            "accept the current versions of the project's and the platform's codes of conduct first (POST /projects/{slug}/coc/accept, or POST /code-of-conduct/accept for the platform's, read at /code-of-conduct)",
        ));
    }
    Ok(())
}
