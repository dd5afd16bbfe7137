//! A ticket becomes a GitHub issue: with the App installed on the
//! project's linked repository, one click opens the issue through an
//! installation token and links both ways (the issue's body links the
//! ticket, the ticket shows the issue); without it, a prefilled
//! `issues/new` link. Private tickets stay private: they never become
//! (public) issues.
//!
//! One issue per ticket, even when the button is pressed twice at once: a
//! pending link row (keyed by the ticket) is written before GitHub is
//! asked, so the second press finds it; the row takes the issue's node id
//! when GitHub answers, and goes if GitHub refuses.

use crate::db::schema::{
    github_installations as gi, github_issue_links as gl, github_repositories as gr,
};
use crate::db::{write_tx, DbConnection};
use crate::domain::tickets::{self as ticket_domain, Ticket};
use crate::error::{AppError, AppResult, ErrorCode};
use chrono::Utc;
use diesel::prelude::*;

/// The project's linked repository: (id, owner/name, the installation that
/// covers it when one is live).
pub fn issue_target(
    conn: &mut DbConnection,
    project: i64,
) -> AppResult<Option<(i64, String, Option<i64>)>> {
    let row: Option<(i64, String, Option<i64>)> = gr::table
        .filter(gr::project_id.eq(project))
        .select((gr::id, gr::full_name, gr::installation_id))
        .first(conn)
        .optional()?;
    let Some((id, name, installation)) = row else {
        return Ok(None);
    };
    let live = match installation {
        Some(i) => {
            gi::table
                .find(i)
                .filter(gi::removed_at.is_null())
                .count()
                .get_result::<i64>(conn)?
                > 0
        }
        None => false,
    };
    Ok(Some((id, name, installation.filter(|_| live))))
}

/// The GitHub issue of a ticket (imported from it, or opened from it):
/// (owner/name, number).
pub fn issue_of_ticket(conn: &mut DbConnection, ticket: i64) -> AppResult<Option<(String, i64)>> {
    Ok(gl::table
        .inner_join(gr::table.on(gr::id.eq(gl::repository_id)))
        .filter(gl::ticket_id.eq(ticket))
        .filter(gl::withdrawn_at.is_null())
        .filter(gl::issue_number.gt(0))
        .order(gl::created_at.desc())
        .select((gr::full_name, gl::issue_number))
        .first(conn)
        .optional()?)
}

fn pending_key(ticket: i64) -> String {
    format!("pending:ticket:{ticket}")
}

/// What the issue is made of.
#[derive(Debug, Clone)]
pub struct Reserved {
    /// The installation that opens it.
    pub installation: i64,
    /// owner/name.
    pub repository: String,
    /// Title.
    pub title: String,
    /// Body, ending with the link to the ticket.
    pub body: String,
}

/// The issue's body: the ticket's text and a link back.
pub fn issue_body(t: &Ticket, public_url: &str) -> String {
    let link = format!(
        "\n\n---\nGuildhall ticket: {}/t/{}",
        public_url.trim_end_matches('/'),
        t.id
    );
    // GitHub takes 65,536 characters.
    let room = 60_000 - link.len();
    let mut body: String = t.body.chars().take(room).collect();
    body.push_str(&link);
    body
}

/// Checks that maintainer `user` may open a GitHub issue for the ticket
/// and reserves it (a pending link row).
pub fn reserve(
    conn: &mut DbConnection,
    ticket: i64,
    user: i64,
    public_url: &str,
) -> AppResult<Reserved> {
    write_tx(conn, |conn| {
        let (t, a) = ticket_domain::load_visible(conn, ticket, Some(user))?;
        if !a.maintainer {
            return Err(AppError::forbidden(
                "only the project's maintainers may open a GitHub issue for a ticket",
            ));
        }
        if t.is_private() {
            return Err(AppError::conflict(
                ErrorCode::Conflict,
                "a private ticket does not become a public GitHub issue",
            ));
        }
        if !crate::domain::projects::is_verified(conn, t.project_id)? {
            return Err(AppError::conflict(
                ErrorCode::ProjectUnverified,
                "the project has not proved it controls its repository, so the bot does not post there for it",
            ));
        }
        // A reservation whose run died long ago gives way.
        diesel::delete(
            gl::table
                .find(pending_key(ticket))
                .filter(gl::created_at.lt(Utc::now().naive_utc() - chrono::Duration::minutes(10))),
        )
        .execute(conn)?;
        let taken: i64 = gl::table
            .filter(gl::ticket_id.eq(ticket))
            .filter(gl::withdrawn_at.is_null())
            .count()
            .get_result(conn)?;
        if taken > 0 {
            return Err(AppError::conflict(
                ErrorCode::Conflict,
                "this ticket has a GitHub issue already",
            ));
        }
        let Some((repo_id, repository, Some(installation))) = issue_target(conn, t.project_id)?
        else {
            return Err(AppError::conflict(
                ErrorCode::Conflict,
                "the Guildhall GitHub App is not installed on the project's repository",
            ));
        };
        let now = Utc::now().naive_utc();
        diesel::insert_into(gl::table)
            .values((
                gl::issue_node_id.eq(pending_key(ticket)),
                gl::ticket_id.eq(ticket),
                gl::repository_id.eq(repo_id),
                gl::issue_number.eq(0),
                gl::created_at.eq(now),
                gl::updated_at.eq(now),
            ))
            .execute(conn)
            .map_err(|e| match e {
                diesel::result::Error::DatabaseError(
                    diesel::result::DatabaseErrorKind::UniqueViolation,
                    _,
                ) => AppError::conflict(
                    ErrorCode::Conflict,
                    "this ticket has a GitHub issue already",
                ),
                other => other.into(),
            })?;
        Ok(Reserved {
            installation,
            repository,
            title: t.title.clone(),
            body: issue_body(&t, public_url),
        })
    })
}

/// GitHub opened issue `number` (`node_id`) for the ticket.
pub fn complete(conn: &mut DbConnection, ticket: i64, node_id: &str, number: i64) -> AppResult<()> {
    let n = diesel::update(gl::table.find(pending_key(ticket)))
        .set((
            gl::issue_node_id.eq(node_id),
            gl::issue_number.eq(number),
            gl::updated_at.eq(Utc::now().naive_utc()),
        ))
        .execute(conn)?;
    if n == 0 {
        return Err(AppError::Internal(anyhow::anyhow!(
            "the reservation of ticket {ticket}'s GitHub issue #{number} was gone"
        )));
    }
    Ok(())
}

/// GitHub refused: the reservation goes.
pub fn abandon(conn: &mut DbConnection, ticket: i64) -> AppResult<()> {
    diesel::delete(gl::table.find(pending_key(ticket))).execute(conn)?;
    Ok(())
}

/// Opens the ticket's GitHub issue with the App: reserve, ask GitHub (no
/// connection held), record. Returns (owner/name, number).
pub fn export(
    pool: &crate::db::DbPool,
    app: &crate::integrations::github::GithubApp,
    ticket: i64,
    user: i64,
    public_url: &str,
) -> AppResult<(String, i64)> {
    let r = reserve(&mut *pool.get()?, ticket, user, public_url)?;
    match app.create_issue(r.installation, &r.repository, &r.title, &r.body) {
        Ok(issue) => {
            complete(&mut *pool.get()?, ticket, &issue.node_id, issue.number)?;
            tracing::info!(
                ticket,
                number = issue.number,
                "ticket opened as a GitHub issue"
            );
            Ok((r.repository, issue.number))
        }
        Err(e) => {
            abandon(&mut *pool.get()?, ticket)?;
            tracing::warn!(ticket, error = %e, "GitHub refused to open an issue");
            Err(AppError::Unavailable)
        }
    }
}
