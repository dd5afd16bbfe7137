//! Sign in with GitHub and what a GitHub identity proves.
//!
//! * A GitHub account is linked to at most one Guildhall account, and an
//!   account to at most one GitHub account.
//! * The account made for the author of an imported issue (no password, an
//!   `…@github.guildhall.invalid` address, cannot sign in) becomes theirs
//!   when they sign in with GitHub: signed out, it becomes a real account
//!   with their verified address; signed in to another account, its drafts
//!   and tickets move to that account.
//! * An address that already has an account is never taken over by a
//!   GitHub sign-in: its owner signs in first and links GitHub.
//! * A maintainer who administers the repository (as GitHub says to their
//!   own token) links it to the project, which proves control.

use crate::db::schema::{
    github_repositories as gr, notifications, ticket_events, ticket_messages, tickets,
    user_identities as ui, users,
};
use crate::db::{write_tx, DbConnection};
use crate::error::{AppError, AppResult, ErrorCode};
use chrono::Utc;
use diesel::prelude::*;

/// The domain of the addresses of accounts made for GitHub users.
pub const PLACEHOLDER_DOMAIN: &str = "@github.guildhall.invalid";

/// A GitHub user as their token showed them.
#[derive(Debug, Clone)]
pub struct GithubUser {
    /// Id (stable).
    pub id: i64,
    /// Login (may change).
    pub login: String,
    /// Display name.
    pub name: Option<String>,
    /// Primary address, when GitHub verified it.
    pub email: Option<String>,
}

/// What a sign-in with GitHub did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignIn {
    /// Signed in as this account (made now, claimed now, or linked before).
    SignedIn(i64),
    /// The signed-in account is now (or already was) linked.
    Linked(i64),
}

impl SignIn {
    /// The account.
    pub fn user(self) -> i64 {
        match self {
            SignIn::SignedIn(u) | SignIn::Linked(u) => u,
        }
    }
}

fn refused(why: impl Into<std::borrow::Cow<'static, str>>) -> AppError {
    AppError::conflict(ErrorCode::Conflict, why)
}

/// Whether `user` is an account made for a GitHub user who never signed in.
fn is_placeholder(conn: &mut DbConnection, user: i64) -> QueryResult<bool> {
    let (email, hash, can_login): (String, Option<String>, bool) = users::table
        .find(user)
        .select((
            users::email_normalized,
            users::password_hash,
            users::can_login,
        ))
        .first(conn)?;
    Ok(email.ends_with(PLACEHOLDER_DOMAIN) && hash.is_none() && !can_login)
}

/// The account linked to GitHub account `github_id`.
pub fn linked_user(conn: &mut DbConnection, github_id: i64) -> QueryResult<Option<i64>> {
    ui::table
        .filter(ui::provider.eq("github"))
        .filter(ui::external_id.eq(github_id.to_string()))
        .select(ui::user_id)
        .first(conn)
        .optional()
}

/// The GitHub login linked to `user`, if any.
pub fn login_of(conn: &mut DbConnection, user: i64) -> QueryResult<Option<String>> {
    ui::table
        .filter(ui::provider.eq("github"))
        .filter(ui::user_id.eq(user))
        .select(ui::login)
        .first(conn)
        .optional()
}

fn email_owner(conn: &mut DbConnection, email: &str) -> QueryResult<Option<i64>> {
    users::table
        .filter(users::email_normalized.eq(crate::domain::users::normalize_email(email)))
        .select(users::id)
        .first(conn)
        .optional()
}

fn taken(email: &str) -> AppError {
    refused(format!(
        "An account with {email} exists already. Sign in to it with your password, then link GitHub from your account page."
    ))
}

/// Signs in (`session` is None) or links (`session` is the signed-in
/// account) GitHub user `gh`.
pub fn sign_in(
    conn: &mut DbConnection,
    session: Option<i64>,
    gh: &GithubUser,
) -> AppResult<SignIn> {
    write_tx(conn, |conn| {
        let now = Utc::now().naive_utc();
        let linked = linked_user(conn, gh.id)?;
        let outcome = match (linked, session) {
            (Some(u), Some(s)) if u == s => SignIn::Linked(s),
            (Some(u), Some(s)) => {
                if !is_placeholder(conn, u)? {
                    return Err(refused(
                        "This GitHub account is linked to another Guildhall account.",
                    ));
                }
                refuse_second_identity(conn, s)?;
                hand_over(conn, u, s)?;
                diesel::update(
                    ui::table
                        .filter(ui::provider.eq("github"))
                        .filter(ui::external_id.eq(gh.id.to_string())),
                )
                .set(ui::user_id.eq(s))
                .execute(conn)?;
                SignIn::Linked(s)
            }
            (Some(u), None) => {
                if is_placeholder(conn, u)? {
                    let email = gh.email.as_deref().ok_or_else(no_email)?;
                    if email_owner(conn, email)?.is_some() {
                        return Err(taken(email));
                    }
                    diesel::update(users::table.find(u))
                        .set((
                            users::email.eq(email),
                            users::email_normalized
                                .eq(crate::domain::users::normalize_email(email)),
                            users::email_verified_at.eq(Some(now)),
                            users::can_login.eq(true),
                            users::display_name.eq(display_name(gh)),
                            users::updated_at.eq(now),
                        ))
                        .execute(conn)?;
                } else {
                    let can_login: bool =
                        users::table.find(u).select(users::can_login).first(conn)?;
                    if !can_login {
                        return Err(AppError::forbidden("this account cannot sign in"));
                    }
                }
                SignIn::SignedIn(u)
            }
            (None, Some(s)) => {
                refuse_second_identity(conn, s)?;
                insert_identity(conn, gh, s)?;
                SignIn::Linked(s)
            }
            (None, None) => {
                let email = gh.email.as_deref().ok_or_else(no_email)?;
                if email_owner(conn, email)?.is_some() {
                    return Err(taken(email));
                }
                let u = crate::domain::users::create(conn, email, &display_name(gh), None, false)?;
                diesel::update(users::table.find(u.id))
                    .set((
                        users::can_login.eq(true),
                        users::email_verified_at.eq(Some(now)),
                    ))
                    .execute(conn)?;
                insert_identity(conn, gh, u.id)?;
                SignIn::SignedIn(u.id)
            }
        };
        diesel::update(
            ui::table
                .filter(ui::provider.eq("github"))
                .filter(ui::external_id.eq(gh.id.to_string())),
        )
        .set(ui::login.eq(&gh.login))
        .execute(conn)?;
        Ok(outcome)
    })
}

fn no_email() -> AppError {
    refused("Your GitHub account has no verified primary email address; verify one on GitHub and try again.")
}

fn display_name(gh: &GithubUser) -> String {
    let name = gh.name.as_deref().map(str::trim).unwrap_or("");
    let name = if name.is_empty() {
        gh.login.as_str()
    } else {
        name
    };
    name.chars().take(100).collect()
}

fn refuse_second_identity(conn: &mut DbConnection, user: i64) -> AppResult<()> {
    if let Some(login) = login_of(conn, user)? {
        return Err(refused(format!(
            "Your account is linked to the GitHub account @{login} already."
        )));
    }
    Ok(())
}

fn insert_identity(conn: &mut DbConnection, gh: &GithubUser, user: i64) -> AppResult<()> {
    diesel::insert_into(ui::table)
        .values((
            ui::provider.eq("github"),
            ui::external_id.eq(gh.id.to_string()),
            ui::user_id.eq(user),
            ui::login.eq(&gh.login),
            ui::created_at.eq(Utc::now().naive_utc()),
        ))
        .execute(conn)
        .map_err(|e| match e {
            // A link made meanwhile by a racing request.
            diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _,
            ) => refused("This account or this GitHub account was linked meanwhile."),
            other => other.into(),
        })?;
    Ok(())
}

/// Moves what an account made for a GitHub user holds — the tickets
/// imported for them, their events and messages — to the account they
/// signed in with. Such an account never signed in, so that is all it can
/// hold; its notifications were never deliverable and go.
fn hand_over(conn: &mut DbConnection, from: i64, to: i64) -> AppResult<()> {
    diesel::update(tickets::table.filter(tickets::requester_id.eq(from)))
        .set(tickets::requester_id.eq(to))
        .execute(conn)?;
    diesel::update(ticket_events::table.filter(ticket_events::actor_id.eq(from)))
        .set(ticket_events::actor_id.eq(Some(to)))
        .execute(conn)?;
    diesel::update(ticket_messages::table.filter(ticket_messages::author_id.eq(from)))
        .set(ticket_messages::author_id.eq(to))
        .execute(conn)?;
    diesel::delete(notifications::table.filter(notifications::user_id.eq(from))).execute(conn)?;
    Ok(())
}

/// Links the project to `repo` on the word of a maintainer who administers
/// it (their own token said so), which proves control. The repository must
/// be the one the project's `repo_url` names; a repository linked to
/// another project stays there.
pub fn link_by_admin(
    conn: &mut DbConnection,
    project_id: i64,
    maintainer: i64,
    repo: &crate::integrations::github::UserRepository,
) -> AppResult<()> {
    write_tx(conn, |conn| {
        crate::domain::projects::require_maintainer(conn, project_id, maintainer)?;
        let project = crate::domain::projects::by_id(conn, project_id)?;
        // Co-maintainers are added without their consent: only the person
        // who brought the project (or to whom it was handed over) may lend
        // it their rights on GitHub.
        if crate::domain::handovers::steward(conn, project_id)? != maintainer {
            return Err(AppError::forbidden(
                "only the project's maintainer of record may link its repository",
            ));
        }
        let named = super::github::repo_of_url(&project.repo_url);
        if named.as_deref() != Some(repo.full_name.to_ascii_lowercase().as_str()) {
            return Err(refused(format!(
                "The project's repository URL does not name {}.",
                repo.full_name
            )));
        }
        if !repo.admin {
            return Err(AppError::forbidden(
                "GitHub says you do not administer this repository",
            ));
        }
        let now = Utc::now().naive_utc();
        let current: Option<Option<i64>> = gr::table
            .find(repo.id)
            .select(gr::project_id)
            .first(conn)
            .optional()?;
        if let Some(Some(other)) = current {
            if other != project_id {
                // A link by name alone gives way to a proof of control.
                if crate::domain::projects::is_verified(conn, other)? {
                    return Err(refused(
                        "This repository is linked to another, verified project.",
                    ));
                }
            }
        }
        // One repository per project: an older link gives way.
        diesel::update(
            gr::table
                .filter(gr::project_id.eq(project_id))
                .filter(gr::id.ne(repo.id)),
        )
        .set(gr::project_id.eq(None::<i64>))
        .execute(conn)?;
        if current.is_some() {
            diesel::update(gr::table.find(repo.id))
                .set((
                    gr::project_id.eq(Some(project_id)),
                    gr::full_name.eq(&repo.full_name),
                    gr::node_id.eq(&repo.node_id),
                    gr::updated_at.eq(now),
                ))
                .execute(conn)?;
        } else {
            diesel::insert_into(gr::table)
                .values((
                    gr::id.eq(repo.id),
                    gr::node_id.eq(&repo.node_id),
                    gr::full_name.eq(&repo.full_name),
                    gr::installation_id.eq(None::<i64>),
                    gr::project_id.eq(Some(project_id)),
                    gr::updated_at.eq(now),
                ))
                .execute(conn)?;
        }
        crate::domain::projects::verify(conn, project_id, "github_admin")?;
        Ok(())
    })
}
