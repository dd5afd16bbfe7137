//! Importing history from other Q&A systems as closed tickets.

pub mod html_text;
pub mod stackexchange;

use crate::db::schema::{project_helpers, ticket_messages, tickets, users};
use crate::db::{write_tx, DbConnection, DbPool};
use crate::domain::helpers::{HelperStatus, Tier};
use crate::domain::tickets::{Kind, Status, Visibility};
use crate::domain::{now, projects};
use anyhow::Context as _;
use diesel::prelude::*;
use guildhall_jobs::BackgroundJob;
use std::collections::HashMap;
use std::path::Path;

/// What an import did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImportReport {
    /// Questions read.
    pub questions: u64,
    /// Answers read.
    pub answers: u64,
    /// Tickets created (0 on a repeated run).
    pub tickets_created: u64,
    /// Messages created (0 on a repeated run).
    pub messages_created: u64,
    /// Imported users created.
    pub users_created: u64,
    /// Rows skipped: malformed, or answers whose question is missing.
    pub skipped: u64,
}

const IMPORTER_EMAIL: &str = "importer@imported.guildhall.invalid";
const BATCH: usize = 500;

/// An account that owns imported projects and cannot log in.
fn importer(conn: &mut DbConnection) -> anyhow::Result<i64> {
    if let Some(u) = crate::domain::users::find_by_email(conn, IMPORTER_EMAIL)? {
        return Ok(u.id);
    }
    match crate::domain::users::create(conn, IMPORTER_EMAIL, "Guildhall importer", None, false) {
        Ok(u) => Ok(u.id),
        Err(_) => crate::domain::users::find_by_email(conn, IMPORTER_EMAIL)?
            .map(|u| u.id)
            .context("could not create the importer account"),
    }
}

struct Importer<'a> {
    site: String,
    project_id: i64,
    importer_id: i64,
    names: HashMap<i64, String>,
    user_ids: HashMap<i64, i64>,
    question_tickets: HashMap<i64, (i64, Option<i64>)>,
    report: &'a mut ImportReport,
}

impl Importer<'_> {
    fn user(
        &mut self,
        conn: &mut DbConnection,
        se_id: Option<i64>,
        fallback_name: Option<&str>,
    ) -> anyhow::Result<i64> {
        let Some(se_id) = se_id else {
            return Ok(self.importer_id);
        };
        if let Some(id) = self.user_ids.get(&se_id) {
            return Ok(*id);
        }
        let email = format!("se-{}-{}@imported.guildhall.invalid", self.site, se_id);
        let name = self
            .names
            .get(&se_id)
            .cloned()
            .or_else(|| fallback_name.map(str::to_owned))
            .unwrap_or_else(|| format!("{} user {se_id}", self.site));
        let at = now();
        let inserted = crate::per_backend!(conn, |c| diesel::insert_into(users::table)
            .values((
                users::email.eq(&email),
                users::email_normalized.eq(email.to_lowercase()),
                users::display_name.eq(name.chars().take(100).collect::<String>()),
                users::password_hash.eq(None::<String>),
                users::can_login.eq(false),
                users::is_admin.eq(false),
                users::created_at.eq(at),
                users::updated_at.eq(at),
            ))
            .on_conflict_do_nothing()
            .execute(c))?;
        self.report.users_created += inserted as u64;
        let id: i64 = users::table
            .filter(users::email_normalized.eq(email.to_lowercase()))
            .select(users::id)
            .first(conn)?;
        self.user_ids.insert(se_id, id);
        Ok(id)
    }

    fn question(
        &mut self,
        conn: &mut DbConnection,
        q: stackexchange::Question,
    ) -> anyhow::Result<()> {
        self.report.questions += 1;
        let requester = self.user(conn, q.owner_user_id, q.owner_display_name.as_deref())?;
        let external = format!("se:{}:q{}", self.site, q.id);
        let last = q.last_activity.unwrap_or(q.created).max(q.created);
        let closed = q.closed.unwrap_or(last);
        let tags =
            serde_json::to_string(&q.tags.iter().map(|t| t.to_lowercase()).collect::<Vec<_>>())?;
        let body = html_text::html_to_text(&q.body_html);
        let inserted = crate::per_backend!(conn, |c| diesel::insert_into(tickets::table)
            .values((
                tickets::project_id.eq(self.project_id),
                tickets::requester_id.eq(requester),
                tickets::title.eq(&q.title),
                tickets::body.eq(&body),
                tickets::kind.eq(Kind::Question.as_str()),
                tickets::visibility.eq(Visibility::Public.as_str()),
                tickets::status.eq(Status::Closed.as_str()),
                tickets::tags.eq(&tags),
                tickets::waiting_since.eq(q.created),
                tickets::last_activity_at.eq(last),
                tickets::submitted_at.eq(Some(q.created)),
                tickets::closed_at.eq(Some(closed)),
                tickets::close_reason.eq(Some("imported")),
                tickets::external_ref.eq(&external),
                tickets::created_at.eq(q.created),
                tickets::updated_at.eq(last),
            ))
            .on_conflict_do_nothing()
            .execute(c))?;
        self.report.tickets_created += inserted as u64;
        let id: i64 = tickets::table
            .filter(tickets::external_ref.eq(&external))
            .select(tickets::id)
            .first(conn)?;
        self.question_tickets
            .insert(q.id, (id, q.accepted_answer_id));
        Ok(())
    }

    fn answer(&mut self, conn: &mut DbConnection, a: stackexchange::Answer) -> anyhow::Result<()> {
        self.report.answers += 1;
        let found = self.question_tickets.get(&a.parent_id).copied();
        let Some((ticket_id, accepted)) = found else {
            self.report.skipped += 1;
            return Ok(());
        };
        let author = self.user(conn, a.owner_user_id, a.owner_display_name.as_deref())?;
        let external = format!("se:{}:a{}", self.site, a.id);
        let body = html_text::html_to_text(&a.body_html);
        let inserted = crate::per_backend!(conn, |c| diesel::insert_into(ticket_messages::table)
            .values((
                ticket_messages::ticket_id.eq(ticket_id),
                ticket_messages::author_id.eq(author),
                ticket_messages::body.eq(&body),
                ticket_messages::internal.eq(false),
                ticket_messages::score.eq(i32::try_from(a.score).unwrap_or(0)),
                ticket_messages::external_ref.eq(&external),
                ticket_messages::created_at.eq(a.created),
            ))
            .on_conflict_do_nothing()
            .execute(c))?;
        self.report.messages_created += inserted as u64;
        if author != self.importer_id {
            let at = now();
            crate::per_backend!(conn, |c| diesel::insert_into(project_helpers::table)
                .values((
                    project_helpers::project_id.eq(self.project_id),
                    project_helpers::user_id.eq(author),
                    project_helpers::tier.eq(Tier::Community.as_str()),
                    project_helpers::status.eq(HelperStatus::Approved.as_str()),
                    project_helpers::bio.eq("imported from the project's Q&A history"),
                    project_helpers::decided_by.eq(Some(self.importer_id)),
                    project_helpers::decided_at.eq(Some(at)),
                    project_helpers::created_at.eq(at),
                    project_helpers::updated_at.eq(at),
                ))
                .on_conflict_do_nothing()
                .execute(c))?;
        }
        if accepted == Some(a.id) && inserted == 1 {
            let message_id: i64 = ticket_messages::table
                .filter(ticket_messages::external_ref.eq(&external))
                .select(ticket_messages::id)
                .first(conn)?;
            diesel::update(tickets::table.find(ticket_id))
                .set((
                    tickets::resolved_by.eq(Some(author)),
                    tickets::resolution_message_id.eq(Some(message_id)),
                    tickets::resolved_at.eq(Some(a.created)),
                    tickets::index_version.eq(tickets::index_version + 1),
                ))
                .execute(conn)?;
        }
        Ok(())
    }
}

/// Imports a Stack Exchange site dump (`Posts.xml`, and `Users.xml` when
/// present) from `dir` into the project `slug` (created, owned by the
/// importer account, if missing). Streams the files; batches writes in
/// transactions of 500 posts, each enqueueing the index job; idempotent
/// through `external_ref`. `progress(bytes_read, total_bytes)` is called as
/// Posts.xml is read.
pub fn import_stackexchange(
    pool: &DbPool,
    dir: &Path,
    slug: &str,
    mut progress: impl FnMut(u64, u64),
) -> anyhow::Result<ImportReport> {
    let posts = dir.join("Posts.xml");
    anyhow::ensure!(posts.is_file(), "{} has no Posts.xml", dir.display());
    let site = dir
        .file_name()
        .and_then(|n| n.to_str())
        .context("the dump directory needs a name (the site, e.g. ai.stackexchange.com)")?
        .to_owned();
    let mut conn = pool.get()?;
    let importer_id = importer(&mut conn)?;
    let project = match projects::by_slug(&mut conn, slug) {
        Ok(p) => p,
        Err(crate::error::AppError::NotFound(_)) => projects::create(
            &mut conn,
            importer_id,
            &projects::NewProject {
                slug: slug.to_owned(),
                name: site.clone(),
                repo_url: format!("https://{site}"),
                description: format!("Questions and answers imported from {site}."),
                topics: Vec::new(),
                currency: None,
                commission_bps: None,
            },
        )
        .map_err(|e| anyhow::anyhow!("cannot create project {slug}: {e}"))?,
        Err(e) => return Err(anyhow::anyhow!("cannot load project {slug}: {e}")),
    };
    let mut names = HashMap::new();
    let users_file = dir.join("Users.xml");
    if users_file.is_file() {
        stackexchange::read_users(&users_file, |u| {
            names.insert(u.id, u.display_name);
            Ok(())
        })?;
    }
    let mut report = ImportReport::default();
    let total = std::fs::metadata(&posts)?.len();
    let mut imp = Importer {
        site,
        project_id: project.id,
        importer_id,
        names,
        user_ids: HashMap::new(),
        question_tickets: HashMap::new(),
        report: &mut report,
    };
    let mut batch: Vec<stackexchange::Post> = Vec::with_capacity(BATCH);
    let flush = |imp: &mut Importer<'_>,
                 batch: &mut Vec<stackexchange::Post>,
                 conn: &mut DbConnection|
     -> anyhow::Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        write_tx(conn, |conn| -> anyhow::Result<()> {
            for post in batch.drain(..) {
                match post {
                    stackexchange::Post::Question(q) => imp.question(conn, q)?,
                    stackexchange::Post::Answer(a) => imp.answer(conn, a)?,
                }
            }
            crate::job_payloads::SyncIndex.enqueue(conn)?;
            Ok(())
        })
    };
    let stats = stackexchange::read_posts_with_progress(
        &posts,
        |bytes| progress(bytes, total),
        |post| {
            batch.push(post);
            if batch.len() >= BATCH {
                flush(&mut imp, &mut batch, &mut conn)?;
            }
            Ok(())
        },
    )?;
    flush(&mut imp, &mut batch, &mut conn)?;
    report.skipped += stats.skipped;
    progress(total, total);
    Ok(report)
}
