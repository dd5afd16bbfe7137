//! GitHub App webhooks: `X-Hub-Signature-256` over the raw body, each
//! `X-GitHub-Delivery` applied once, and what installations tell us — which
//! repositories the app may act on, and so which projects are linked to
//! their repository.
//!
//! A project is linked when its `repo_url` names a repository the app is
//! installed on and no other project names it (two claimants: neither, until
//! a maintainer proves it). The link is what `+support` needs. It counts as
//! proof of control (`verified_at`) only when the GitHub account that
//! installed the app is a maintainer's linked identity.

use crate::db::schema::{
    github_deliveries as gd, github_installations as gi, github_repositories as gr, projects as p,
    user_identities as ui,
};
use crate::db::{write_tx, DbConnection};
use crate::error::{AppError, AppResult, ErrorCode};
use chrono::Utc;
use diesel::prelude::*;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The largest delivery accepted (GitHub caps payloads at 25 MB; the
/// events we read are far smaller).
pub const MAX_BYTES: usize = 5 * 1024 * 1024;

/// Why a delivery's signature was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No `X-Hub-Signature-256`.
    #[error("the X-Hub-Signature-256 header is missing")]
    Missing,
    /// Not `sha256=<64 hex digits>`.
    #[error("the X-Hub-Signature-256 header is malformed")]
    Malformed,
    /// Does not match the body.
    #[error("the signature does not match the body")]
    Mismatch,
}

/// Checks `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>`
/// in constant time.
pub fn verify(secret: &[u8], header: Option<&str>, body: &[u8]) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let hex_sig = header
        .trim()
        .strip_prefix("sha256=")
        .ok_or(SignatureError::Malformed)?;
    let sig = hex::decode(hex_sig).map_err(|_| SignatureError::Malformed)?;
    if sig.len() != 32 {
        return Err(SignatureError::Malformed);
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| SignatureError::Mismatch)?;
    mac.update(body);
    mac.verify_slice(&sig).map_err(|_| SignatureError::Mismatch)
}

/// A repository as events name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repo {
    /// GitHub's id (stable).
    pub id: i64,
    /// GitHub's node id (stable).
    pub node_id: String,
    /// `owner/name` now.
    pub full_name: String,
}

/// What a verified delivery says, in the terms we act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The webhook was set up.
    Ping,
    /// `installation`: created (with its repositories), deleted, suspended…
    Installation {
        /// `created`, `deleted`, `suspend`, `unsuspend`, `new_permissions_accepted`.
        action: String,
        /// The installation.
        id: i64,
        /// The account it is installed on.
        account_login: String,
        /// That account's id.
        account_id: i64,
        /// The GitHub user who did it.
        sender_id: i64,
        /// The repositories it covers (when it lists them).
        repos: Vec<Repo>,
    },
    /// `installation_repositories`: repositories added to or removed from
    /// an installation.
    InstallationRepositories {
        /// The installation.
        id: i64,
        /// The GitHub user who did it.
        sender_id: i64,
        /// Added.
        added: Vec<Repo>,
        /// Removed.
        removed: Vec<Repo>,
    },
    /// `issue_comment`: a comment on an issue (or pull request).
    IssueComment {
        /// `created`, `edited`, `deleted`.
        action: String,
        /// The installation the delivery is for.
        installation: i64,
        /// The repository.
        repo: Repo,
        /// The issue's number.
        issue_number: i64,
        /// The issue's node id.
        issue_node_id: String,
        /// A pull request's conversation (not imported).
        pull_request: bool,
        /// The comment's text.
        body: String,
        /// How the commenter relates to the repository (`OWNER`, `MEMBER`,
        /// `COLLABORATOR`, `CONTRIBUTOR`, `NONE`…).
        association: String,
        /// The commenter's GitHub id.
        commenter: i64,
        /// A bot wrote it (ours included).
        bot: bool,
        /// The repository is private (its issues become private tickets).
        private: bool,
    },
    /// Any other event: acknowledged and recorded, nothing done.
    Other(String),
}

/// What a comment asks for: a line that is exactly `+support` or
/// `-support`.
pub fn command(body: &str) -> Option<&'static str> {
    body.lines().find_map(|l| match l.trim() {
        "+support" => Some("import"),
        "-support" => Some("withdraw"),
        _ => None,
    })
}

/// Why a verified delivery could not be read.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Not JSON.
    #[error("the delivery is not JSON")]
    NotJson,
    /// A field the event needs is missing or has the wrong type.
    #[error("the delivery has no {0}")]
    Missing(&'static str),
}

fn repos(v: &serde_json::Value, field: &'static str) -> Result<Vec<Repo>, ParseError> {
    let Some(list) = v.get(field) else {
        return Ok(Vec::new());
    };
    let list = list.as_array().ok_or(ParseError::Missing(field))?;
    list.iter()
        .map(|r| {
            Ok(Repo {
                id: r["id"]
                    .as_i64()
                    .ok_or(ParseError::Missing("repository id"))?,
                node_id: r["node_id"]
                    .as_str()
                    .ok_or(ParseError::Missing("repository node_id"))?
                    .to_owned(),
                full_name: r["full_name"]
                    .as_str()
                    .filter(|n| n.contains('/') && n.len() <= 200)
                    .ok_or(ParseError::Missing("repository full_name"))?
                    .to_owned(),
            })
        })
        .collect()
}

/// Reads a verified delivery of event `event` (the `X-GitHub-Event` header).
pub fn parse(event: &str, body: &[u8]) -> Result<Event, ParseError> {
    let v: serde_json::Value = serde_json::from_slice(body).map_err(|_| ParseError::NotJson)?;
    if !v.is_object() {
        return Err(ParseError::NotJson);
    }
    let installation_id = || v["installation"]["id"].as_i64();
    let sender_id = || {
        v["sender"]["id"]
            .as_i64()
            .ok_or(ParseError::Missing("sender"))
    };
    Ok(match event {
        "ping" => Event::Ping,
        "installation" => Event::Installation {
            action: v["action"]
                .as_str()
                .ok_or(ParseError::Missing("action"))?
                .to_owned(),
            id: installation_id().ok_or(ParseError::Missing("installation id"))?,
            account_login: v["installation"]["account"]["login"]
                .as_str()
                .ok_or(ParseError::Missing("installation account"))?
                .to_owned(),
            account_id: v["installation"]["account"]["id"]
                .as_i64()
                .ok_or(ParseError::Missing("installation account"))?,
            sender_id: sender_id()?,
            repos: repos(&v, "repositories")?,
        },
        "installation_repositories" => Event::InstallationRepositories {
            id: installation_id().ok_or(ParseError::Missing("installation id"))?,
            sender_id: sender_id()?,
            added: repos(&v, "repositories_added")?,
            removed: repos(&v, "repositories_removed")?,
        },
        "issue_comment" => {
            let repo = &v["repository"];
            Event::IssueComment {
                action: v["action"]
                    .as_str()
                    .ok_or(ParseError::Missing("action"))?
                    .to_owned(),
                installation: installation_id().ok_or(ParseError::Missing("installation id"))?,
                repo: Repo {
                    id: repo["id"]
                        .as_i64()
                        .ok_or(ParseError::Missing("repository id"))?,
                    node_id: repo["node_id"].as_str().unwrap_or_default().to_owned(),
                    full_name: repo["full_name"]
                        .as_str()
                        .filter(|n| n.contains('/') && n.len() <= 200)
                        .ok_or(ParseError::Missing("repository full_name"))?
                        .to_owned(),
                },
                issue_number: v["issue"]["number"]
                    .as_i64()
                    .ok_or(ParseError::Missing("issue number"))?,
                issue_node_id: v["issue"]["node_id"]
                    .as_str()
                    .filter(|n| !n.is_empty() && n.len() <= 200)
                    .ok_or(ParseError::Missing("issue node_id"))?
                    .to_owned(),
                pull_request: v["issue"].get("pull_request").is_some(),
                body: v["comment"]["body"].as_str().unwrap_or_default().to_owned(),
                association: v["comment"]["author_association"]
                    .as_str()
                    .unwrap_or("NONE")
                    .to_owned(),
                commenter: v["comment"]["user"]["id"]
                    .as_i64()
                    .ok_or(ParseError::Missing("comment user"))?,
                bot: v["comment"]["user"]["type"].as_str() == Some("Bot"),
                private: repo["private"].as_bool().unwrap_or(true),
            }
        }
        other => Event::Other(other.chars().take(64).collect()),
    })
}

/// What applying a delivery did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// In a word: `pong`, `installed`, `removed`, `repositories`, `ignored`.
    pub outcome: &'static str,
    /// Projects newly linked to their repository.
    pub linked: Vec<i64>,
}

/// Applies a verified delivery once: the delivery id and the body's hash
/// are recorded in the same transaction, so a replay — the same delivery,
/// or its signed body under a new id — is refused (409) and writes
/// nothing, and a delivery that fails leaves no trace either.
/// `app_ready`: the app can call GitHub (its id and key are configured);
/// without it `+support` is acknowledged and ignored.
pub fn apply(
    conn: &mut DbConnection,
    delivery: &str,
    body: &[u8],
    event: &Event,
    app_ready: bool,
) -> AppResult<Applied> {
    use sha2::Digest as _;
    let body_hash = hex::encode(Sha256::digest(body));
    if delivery.is_empty() || delivery.len() > 100 {
        return Err(AppError::bad_request(
            ErrorCode::InvalidBody,
            "X-GitHub-Delivery is missing or too long",
        ));
    }
    write_tx(conn, |conn| {
        let kind = match event {
            Event::Ping => "ping",
            Event::Installation { .. } => "installation",
            Event::InstallationRepositories { .. } => "installation_repositories",
            Event::IssueComment { .. } => "issue_comment",
            Event::Other(name) => name.as_str(),
        };
        let fresh = crate::per_backend!(conn, |c| diesel::insert_into(gd::table)
            .values((
                gd::delivery_id.eq(delivery),
                gd::body_sha256.eq(&body_hash),
                gd::event.eq(kind),
                gd::received_at.eq(Utc::now().naive_utc()),
            ))
            .on_conflict_do_nothing()
            .execute(c))?;
        if fresh == 0 {
            return Err(AppError::conflict(
                ErrorCode::DuplicateDelivery,
                "this delivery was received before",
            ));
        }
        match event {
            Event::Ping => Ok(Applied {
                outcome: "pong",
                linked: Vec::new(),
            }),
            Event::Other(_) => Ok(Applied {
                outcome: "ignored",
                linked: Vec::new(),
            }),
            Event::IssueComment {
                action,
                installation,
                repo,
                issue_number,
                issue_node_id,
                pull_request,
                body,
                association,
                commenter,
                bot,
                private,
            } => {
                let ignored = Applied {
                    outcome: "ignored",
                    linked: Vec::new(),
                };
                let Some(cmd) = command(body) else {
                    return Ok(ignored);
                };
                if action != "created" || *bot || *pull_request || !app_ready {
                    return Ok(ignored);
                }
                // The repository must be covered by a known installation
                // and linked to a project.
                let linked: Option<(Option<i64>, Option<i64>)> = gr::table
                    .find(repo.id)
                    .select((gr::installation_id, gr::project_id))
                    .first(conn)
                    .optional()?;
                let (Some(covered), Some(project)) = linked.unwrap_or((None, None)) else {
                    return Err(AppError::field(
                        "repository",
                        "the repository is not linked to a project here",
                    ));
                };
                if covered != *installation {
                    return Err(AppError::field(
                        "installation",
                        "the installation does not cover this repository here",
                    ));
                }
                if !may_command(conn, project, association, *commenter)? {
                    return Ok(Applied {
                        outcome: "not_allowed",
                        linked: Vec::new(),
                    });
                }
                guildhall_jobs::BackgroundJob::enqueue(
                    &crate::job_payloads::GithubSupport {
                        command: cmd.to_owned(),
                        installation_id: *installation,
                        repository_id: repo.id,
                        repository: repo.full_name.clone(),
                        issue_number: *issue_number,
                        issue_node_id: issue_node_id.clone(),
                        project_id: project,
                        private: *private,
                    },
                    conn,
                )?;
                Ok(Applied {
                    outcome: if cmd == "import" {
                        "import_queued"
                    } else {
                        "withdraw_queued"
                    },
                    linked: Vec::new(),
                })
            }
            Event::Installation {
                action,
                id,
                account_login,
                account_id,
                sender_id,
                repos,
            } => match action.as_str() {
                "created" | "new_permissions_accepted" | "unsuspend" => {
                    let at = Utc::now().naive_utc();
                    let known: bool = gi::table.find(id).count().get_result::<i64>(conn)? > 0;
                    if known {
                        diesel::update(gi::table.find(id))
                            .set((
                                gi::removed_at.eq(None::<chrono::NaiveDateTime>),
                                gi::account_login.eq(account_login),
                            ))
                            .execute(conn)?;
                    } else {
                        diesel::insert_into(gi::table)
                            .values((
                                gi::id.eq(id),
                                gi::account_login.eq(account_login),
                                gi::account_id.eq(account_id),
                                gi::installed_by.eq(sender_id),
                                gi::created_at.eq(at),
                            ))
                            .execute(conn)?;
                    }
                    let linked = cover(conn, *id, *sender_id, repos)?;
                    Ok(Applied {
                        outcome: "installed",
                        linked,
                    })
                }
                "deleted" | "suspend" => {
                    let known: i64 = gi::table.find(id).count().get_result(conn)?;
                    if known == 0 {
                        return Err(AppError::field(
                            "installation",
                            "the installation is not known here",
                        ));
                    }
                    diesel::update(gi::table.find(id))
                        .set(gi::removed_at.eq(Some(Utc::now().naive_utc())))
                        .execute(conn)?;
                    diesel::update(gr::table.filter(gr::installation_id.eq(id)))
                        .set(gr::installation_id.eq(None::<i64>))
                        .execute(conn)?;
                    Ok(Applied {
                        outcome: "removed",
                        linked: Vec::new(),
                    })
                }
                _ => Ok(Applied {
                    outcome: "ignored",
                    linked: Vec::new(),
                }),
            },
            Event::InstallationRepositories {
                id,
                sender_id,
                added,
                removed,
            } => {
                let known: i64 = gi::table
                    .find(id)
                    .filter(gi::removed_at.is_null())
                    .count()
                    .get_result(conn)?;
                if known == 0 {
                    return Err(AppError::field(
                        "installation",
                        "the installation is not known here (its `installation` event never arrived)",
                    ));
                }
                for r in removed {
                    diesel::update(gr::table.find(r.id).filter(gr::installation_id.eq(id)))
                        .set(gr::installation_id.eq(None::<i64>))
                        .execute(conn)?;
                }
                let linked = cover(conn, *id, *sender_id, added)?;
                Ok(Applied {
                    outcome: "repositories",
                    linked,
                })
            }
        }
    })
}

/// Deletes the records of deliveries received before `before`; returns
/// how many.
pub fn purge_deliveries(
    conn: &mut DbConnection,
    before: chrono::NaiveDateTime,
) -> QueryResult<usize> {
    diesel::delete(gd::table.filter(gd::received_at.lt(before))).execute(conn)
}

/// Records that installation `installation` covers `repos`, and links each
/// to the one project that names it; returns the projects newly linked.
fn cover(
    conn: &mut DbConnection,
    installation: i64,
    sender: i64,
    repos: &[Repo],
) -> AppResult<Vec<i64>> {
    let at = Utc::now().naive_utc();
    let mut linked = Vec::new();
    for r in repos {
        let exists: i64 = gr::table.find(r.id).count().get_result(conn)?;
        if exists > 0 {
            diesel::update(gr::table.find(r.id))
                .set((
                    gr::full_name.eq(&r.full_name),
                    gr::node_id.eq(&r.node_id),
                    gr::installation_id.eq(installation),
                    gr::updated_at.eq(at),
                ))
                .execute(conn)?;
        } else {
            diesel::insert_into(gr::table)
                .values((
                    gr::id.eq(r.id),
                    gr::node_id.eq(&r.node_id),
                    gr::full_name.eq(&r.full_name),
                    gr::installation_id.eq(installation),
                    gr::updated_at.eq(at),
                ))
                .execute(conn)?;
        }
        let already: Option<Option<i64>> = gr::table
            .find(r.id)
            .select(gr::project_id)
            .first(conn)
            .optional()?;
        if already.flatten().is_some() {
            continue;
        }
        let Some(project) = sole_claimant(conn, &r.full_name)? else {
            continue;
        };
        // A project is linked to one repository: one already linked (its
        // repo_url since changed) keeps its link until it is undone.
        let linked_elsewhere: i64 = gr::table
            .filter(gr::project_id.eq(project))
            .count()
            .get_result(conn)?;
        if linked_elsewhere > 0 {
            continue;
        }
        diesel::update(gr::table.find(r.id))
            .set(gr::project_id.eq(project))
            .execute(conn)?;
        // Proof of control: the account that installed the app on the
        // repository is the GitHub identity of the project's maintainer of
        // record — who created it, or to whom it was handed over
        // (co-maintainers are added without their consent, and accounts
        // Guildhall made for imported authors cannot sign in).
        use crate::db::schema::users as u;
        let steward = crate::domain::handovers::steward(conn, project)?;
        let creator: i64 = ui::table
            .inner_join(u::table.on(u::id.eq(ui::user_id)))
            .filter(ui::user_id.eq(steward))
            .filter(ui::provider.eq("github"))
            .filter(ui::external_id.eq(sender.to_string()))
            .filter(u::can_login.eq(true))
            .count()
            .get_result(conn)?;
        if creator > 0 {
            diesel::update(p::table.find(project).filter(p::verified_at.is_null()))
                .set((
                    p::verified_at.eq(Some(at)),
                    p::verified_via.eq("github_app"),
                ))
                .execute(conn)?;
        }
        linked.push(project);
    }
    Ok(linked)
}

/// Whether a commenter may give `+support`/`-support` on the project's
/// repository: its owner, members and collaborators, or an approved helper
/// of the project by their linked GitHub identity.
fn may_command(
    conn: &mut DbConnection,
    project: i64,
    association: &str,
    commenter: i64,
) -> AppResult<bool> {
    if ["OWNER", "MEMBER", "COLLABORATOR"].contains(&association) {
        return Ok(true);
    }
    use crate::db::schema::project_helpers as ph;
    let helper: i64 = ui::table
        .inner_join(ph::table.on(ph::user_id.eq(ui::user_id)))
        .filter(ui::provider.eq("github"))
        .filter(ui::external_id.eq(commenter.to_string()))
        .filter(ph::project_id.eq(project))
        .filter(ph::status.eq("approved"))
        .count()
        .get_result(conn)?;
    Ok(helper > 0)
}

/// `owner/name` from a repository URL on github.com, lower case.
pub fn repo_of_url(url: &str) -> Option<String> {
    let rest = url
        .trim()
        .strip_prefix("https://")
        .or_else(|| url.trim().strip_prefix("http://"))?;
    let rest = rest.strip_prefix("www.").unwrap_or(rest);
    let path = rest.strip_prefix("github.com/")?;
    let mut parts = path.trim_end_matches('/').splitn(3, '/');
    let owner = parts.next().filter(|s| !s.is_empty())?;
    let name = parts.next().filter(|s| !s.is_empty())?;
    let name = name.strip_suffix(".git").unwrap_or(name);
    // Deeper paths (…/tree/main) still name the repository.
    Some(format!("{owner}/{name}").to_ascii_lowercase())
}

/// The repository (owner/name) linked to the project, if any.
pub fn linked_repository(conn: &mut DbConnection, project: i64) -> AppResult<Option<String>> {
    Ok(gr::table
        .filter(gr::project_id.eq(project))
        .select(gr::full_name)
        .first(conn)
        .optional()?)
}

/// The one project whose `repo_url` names `full_name`; none when no
/// project or several do.
fn sole_claimant(conn: &mut DbConnection, full_name: &str) -> AppResult<Option<i64>> {
    let want = full_name.to_ascii_lowercase();
    let pattern = format!("%{}%", want.split('/').next_back().unwrap_or(&want));
    let candidates: Vec<(i64, String)> = p::table
        .filter(crate::domain::projects::lower(p::repo_url).like(pattern))
        .select((p::id, p::repo_url))
        .load(conn)?;
    let mut matching = candidates
        .into_iter()
        .filter(|(_, url)| repo_of_url(url).as_deref() == Some(want.as_str()));
    match (matching.next(), matching.next()) {
        (Some((id, _)), None) => Ok(Some(id)),
        _ => Ok(None),
    }
}

/// The Guildhall user behind GitHub account `id` (`login`): the one who
/// linked it, or an account made for them that cannot sign in until they
/// sign in with GitHub.
pub fn user_for_account(conn: &mut DbConnection, id: i64, login: &str) -> AppResult<i64> {
    if let Some(user) = super::github_identity::linked_user(conn, id)? {
        return Ok(user);
    }
    write_tx(conn, |conn| {
        let email = format!("github-{id}@github.guildhall.invalid");
        let user = match crate::domain::users::create(conn, &email, login, None, false) {
            Ok(u) => u.id,
            // Made before (its identity row is what was missing) — reused
            // only if it is still such an account: no password, no sign-in.
            Err(AppError::Conflict { .. }) => {
                use crate::db::schema::users;
                let (user, can_login, hash): (i64, bool, Option<String>) = users::table
                    .filter(users::email_normalized.eq(&email))
                    .select((users::id, users::can_login, users::password_hash))
                    .first(conn)?;
                if can_login || hash.is_some() {
                    let other = format!(
                        "github-{id}-{}@github.guildhall.invalid",
                        crate::auth::tokens::random_token(6).to_ascii_lowercase()
                    );
                    crate::domain::users::create(conn, &other, login, None, false)?.id
                } else {
                    user
                }
            }
            Err(e) => return Err(e),
        };
        crate::per_backend!(conn, |c| diesel::insert_into(ui::table)
            .values((
                ui::provider.eq("github"),
                ui::external_id.eq(id.to_string()),
                ui::user_id.eq(user),
                ui::login.eq(login),
                ui::created_at.eq(Utc::now().naive_utc()),
            ))
            .on_conflict_do_nothing()
            .execute(c))?;
        Ok(user)
    })
}

/// An issue and its comments as one ticket body: the issue's text, then
/// each comment under its author, then where it came from; cut to the
/// ticket's limit.
pub fn ticket_body(issue_body: &str, comments: &[(String, String)], html_url: &str) -> String {
    let mut body = issue_body.trim().to_owned();
    for (login, text) in comments {
        body.push_str(&format!("\n\n---\n@{login} wrote:\n\n{}", text.trim()));
    }
    let footer = format!("\n\n---\nImported from {html_url}");
    let room = 50_000 - footer.chars().count() - 2;
    if body.chars().count() > room {
        body = body.chars().take(room - 1).collect::<String>() + "…";
    }
    if body.trim().is_empty() {
        body = "(the issue has no text)".into();
    }
    body + &footer
}

/// The draft ticket an issue was imported as, if it is still live.
pub fn imported_ticket(conn: &mut DbConnection, issue_node_id: &str) -> AppResult<Option<i64>> {
    use crate::db::schema::github_issue_links as gl;
    Ok(gl::table
        .find(issue_node_id)
        .filter(gl::withdrawn_at.is_null())
        .select(gl::ticket_id)
        .first(conn)
        .optional()?)
}

/// Imports an issue as a draft ticket of `project` for `requester`, once
/// per issue: a repeated `+support` finds the ticket it made.
#[allow(clippy::too_many_arguments)]
pub fn import_issue(
    conn: &mut DbConnection,
    project: i64,
    requester: i64,
    repository_id: i64,
    issue_number: i64,
    issue_node_id: &str,
    title: &str,
    body: &str,
    private: bool,
) -> AppResult<i64> {
    use crate::db::schema::github_issue_links as gl;
    use crate::domain::tickets::{self, Kind, NewTicket, Visibility};
    let p = crate::domain::projects::by_id(conn, project)?;
    let slug = p.slug;
    // A private repository's issue stays private; otherwise the project says.
    let private = private || p.github_import_visibility == "private";
    let mut title = title.trim().chars().take(200).collect::<String>();
    if title.chars().count() < 3 {
        title = format!("Issue #{issue_number}");
    }
    // Checked inside the transaction: of two imports racing, one inserts
    // the link (its primary key is the issue) and the other fails and is
    // retried, finding the ticket.
    write_tx(conn, |conn| {
        if let Some(ticket) = imported_ticket(conn, issue_node_id)? {
            return Ok(ticket);
        }
        let t = tickets::create(
            conn,
            requester,
            &NewTicket {
                project: slug.clone(),
                title: title.clone(),
                body: body.to_owned(),
                tags: Vec::new(),
                kind: Kind::Question,
                visibility: if private {
                    Visibility::Private
                } else {
                    Visibility::Public
                },
            },
        )?;
        let at = Utc::now().naive_utc();
        let existing: i64 = gl::table.find(issue_node_id).count().get_result(conn)?;
        if existing > 0 {
            diesel::update(gl::table.find(issue_node_id))
                .set((
                    gl::ticket_id.eq(t.id),
                    gl::repository_id.eq(repository_id),
                    gl::issue_number.eq(issue_number),
                    gl::withdrawn_at.eq(None::<chrono::NaiveDateTime>),
                    gl::updated_at.eq(at),
                ))
                .execute(conn)?;
        } else {
            diesel::insert_into(gl::table)
                .values((
                    gl::issue_node_id.eq(issue_node_id),
                    gl::ticket_id.eq(t.id),
                    gl::repository_id.eq(repository_id),
                    gl::issue_number.eq(issue_number),
                    gl::created_at.eq(at),
                    gl::updated_at.eq(at),
                ))
                .execute(conn)?;
        }
        Ok(t.id)
    })
}

/// What `-support` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Withdrawal {
    /// The untouched draft was cancelled.
    Withdrawn,
    /// Nothing live to withdraw (never imported, or withdrawn before).
    Nothing,
    /// Its author has worked on it: it stays.
    Touched,
}

/// Withdraws an imported draft nobody has touched (the requester has not
/// edited or submitted it): cancels it and marks the link withdrawn.
pub fn withdraw_issue(conn: &mut DbConnection, issue_node_id: &str) -> AppResult<Withdrawal> {
    use crate::db::schema::github_issue_links as gl;
    use crate::domain::tickets;
    let Some(ticket) = imported_ticket(conn, issue_node_id)? else {
        return Ok(Withdrawal::Nothing);
    };
    let t = tickets::get(conn, ticket)?;
    let untouched = t.status() == tickets::Status::Draft && t.updated_at == t.created_at;
    if !untouched {
        return Ok(Withdrawal::Touched);
    }
    write_tx(conn, |conn| {
        tickets::cancel(conn, ticket, t.requester_id)?;
        diesel::update(gl::table.find(issue_node_id))
            .set((
                gl::withdrawn_at.eq(Some(Utc::now().naive_utc())),
                gl::updated_at.eq(Utc::now().naive_utc()),
            ))
            .execute(conn)?;
        Ok(Withdrawal::Withdrawn)
    })
}

/// Records the bot's comment on an imported issue.
pub fn set_bot_comment(
    conn: &mut DbConnection,
    issue_node_id: &str,
    comment: i64,
) -> AppResult<()> {
    use crate::db::schema::github_issue_links as gl;
    diesel::update(gl::table.find(issue_node_id))
        .set(gl::bot_comment_id.eq(Some(comment)))
        .execute(conn)?;
    Ok(())
}

/// The bot's comment on an imported issue, if it made one.
pub fn bot_comment(conn: &mut DbConnection, issue_node_id: &str) -> AppResult<Option<i64>> {
    use crate::db::schema::github_issue_links as gl;
    Ok(gl::table
        .find(issue_node_id)
        .select(gl::bot_comment_id)
        .first::<Option<i64>>(conn)
        .optional()?
        .flatten())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_vector_verifies() {
        // docs.github.com, "Validating webhook deliveries".
        let secret = b"It's a Secret to Everybody";
        let header = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_eq!(verify(secret, Some(header), b"Hello, World!"), Ok(()));
        assert_eq!(
            verify(secret, Some(header), b"Hello, World?"),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(secret, None, b"Hello, World!"),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify(secret, Some("sha1=757107"), b"Hello, World!"),
            Err(SignatureError::Malformed)
        );
    }

    #[test]
    fn commands_are_whole_lines() {
        assert_eq!(command("+support"), Some("import"));
        assert_eq!(command("Thanks!\n  -support  \n"), Some("withdraw"));
        assert_eq!(command("I'd +support this"), None);
        assert_eq!(command("+supported"), None);
    }

    #[test]
    fn an_issue_fits_a_ticket() {
        let body = ticket_body("", &[], "https://github.com/a/b/issues/1");
        assert!(body.starts_with("(the issue has no text)"));
        let long = "x".repeat(60_000);
        let body = ticket_body(
            &long,
            &[("octo".into(), "y".into())],
            "https://github.com/a/b/issues/1",
        );
        assert!(body.chars().count() <= 50_000);
        assert!(body.ends_with("Imported from https://github.com/a/b/issues/1"));
    }

    #[test]
    fn repository_urls_are_read() {
        for url in [
            "https://github.com/Codertocat/Hello-World",
            "https://www.github.com/codertocat/hello-world.git",
            "http://github.com/Codertocat/Hello-World/tree/main",
            "https://github.com/Codertocat/Hello-World/",
        ] {
            assert_eq!(
                repo_of_url(url).as_deref(),
                Some("codertocat/hello-world"),
                "{url}"
            );
        }
        assert_eq!(repo_of_url("https://gitlab.com/a/b"), None);
        assert_eq!(repo_of_url("https://github.com/a"), None);
    }
}
