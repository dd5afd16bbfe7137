//! `serve --demo`: a world a newcomer can explore at once — projects, users
//! and approved helpers; one project carrying the history of a Stack
//! Exchange site (the committed genai fixture, embedded in the binary and
//! imported through the normal importer), so search, similar tickets, the
//! AI lane, matching and reputation have real content; and tickets in every
//! state, a funded bounty, an open bid and some revenue. Idempotent:
//! existing demo rows are left alone.

use crate::auth::password;
use crate::db::{DbConnection, DbPool};
use crate::domain::helpers::{self, Application, HelperStatus, Tier};
use crate::domain::{projects, users};
use crate::error::AppResult;

/// Password of every demo account (they are for local trials only).
pub const DEMO_PASSWORD: &str = "guildhall-demo-password";

/// A seeded account.
pub struct DemoAccount {
    /// Email to log in with.
    pub email: &'static str,
    /// What the account is for.
    pub role: &'static str,
}

/// The seeded accounts.
pub const ACCOUNTS: &[DemoAccount] = &[
    DemoAccount {
        email: "maintainer@demo.guildhall.dev",
        role: "maintainer of every demo project",
    },
    DemoAccount {
        email: "expert@demo.guildhall.dev",
        role: "approved expert helper (rate 120.00 usd/h)",
    },
    DemoAccount {
        email: "community@demo.guildhall.dev",
        role: "approved community helper",
    },
    DemoAccount {
        email: "requester@demo.guildhall.dev",
        role: "a business user posting tickets",
    },
];

const PROJECTS: &[(&str, &str, &str, &[&str])] = &[
    (
        "actix-web",
        "Actix Web",
        "A powerful, pragmatic and fast web framework for Rust.",
        &["rust", "web", "http"],
    ),
    (
        "diesel",
        "Diesel",
        "A safe, extensible ORM and query builder for Rust.",
        &["rust", "sql", "orm", "database"],
    ),
    (
        "tantivy",
        "Tantivy",
        "A full-text search engine library inspired by Lucene.",
        &["rust", "search", "bm25"],
    ),
];

/// The Stack Exchange history the demo imports (tests/fixtures; CC BY-SA,
/// genai.stackexchange.com, see tests/fixtures/NOTICE.md).
const HISTORY: &[u8] =
    include_bytes!("../tests/fixtures/stackexchange/genai.stackexchange.com/Posts.xml");

/// Seeds the demo world; returns true if anything was created.
pub fn seed(pool: &DbPool) -> anyhow::Result<bool> {
    let created = seed_people(&mut *pool.get()?).map_err(|e| anyhow::anyhow!("{e}"))?;
    if !created {
        return Ok(false);
    }
    let dir = tempfile::tempdir()?;
    let site = dir.path().join("genai.stackexchange.com");
    std::fs::create_dir(&site)?;
    std::fs::write(site.join("Posts.xml"), HISTORY)?;
    crate::import::import_stackexchange(pool, &site, "genai", |_, _| {})?;
    tickets_in_every_state(pool).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(true)
}

/// A few live tickets on `tantivy`: open with a funded bounty, open with an
/// open bid, claimed, resolved, closed and paid (revenue), and cancelled.
fn tickets_in_every_state(pool: &DbPool) -> AppResult<()> {
    use crate::domain::tickets::{self, Kind, NewTicket, Visibility};
    let mut conn = pool.get()?;
    let conn = &mut *conn;
    let id_of = |conn: &mut DbConnection, email: &str| -> AppResult<i64> {
        Ok(users::find_by_email(conn, email)?
            .ok_or_else(|| crate::error::AppError::not_found("demo user"))?
            .id)
    };
    let (expert, community, requester) = (
        id_of(conn, ACCOUNTS[1].email)?,
        id_of(conn, ACCOUNTS[2].email)?,
        id_of(conn, ACCOUNTS[3].email)?,
    );
    let tantivy = projects::by_slug(conn, "tantivy")?;
    projects::accept_coc(conn, tantivy.id, requester)?;
    let open = |conn: &mut DbConnection, title: &str, body: &str| -> AppResult<i64> {
        let t = tickets::create(
            conn,
            requester,
            &NewTicket {
                project: "tantivy".into(),
                title: title.into(),
                body: body.into(),
                tags: vec!["indexing".into()],
                kind: Kind::Question,
                visibility: Visibility::Public,
            },
        )?;
        tickets::submit(conn, t.id, requester)?;
        Ok(t.id)
    };
    let sandbox = crate::payments::Sandbox;
    let funded = open(
        conn,
        "Merges leave hundreds of segments after bulk indexing",
        "After indexing two million documents the merge policy leaves about 300 segments. What should I tune?",
    )?;
    let bid_on = open(
        conn,
        "Faceted search counts look wrong after deletes",
        "Facet counts still include documents I deleted an hour ago.",
    )?;
    let claimed = open(
        conn,
        "How do I index PDFs?",
        "Is there a recommended way to extract and index PDF text?",
    )?;
    let resolved = open(
        conn,
        "Query parser rejects hyphenated words",
        "Searching for state-of-the-art returns a syntax error.",
    )?;
    let paid = open(
        conn,
        "Phrase queries are slow on a large index",
        "Phrase queries take seconds on a 50 GB index.",
    )?;
    let cancelled = open(conn, "Never mind: wrong project", "Posted by mistake.")?;
    crate::domain::money::fund_bounty(pool, &sandbox, funded, requester, 5_000, "usd", None, None)?;
    crate::domain::bids::create(
        conn,
        bid_on,
        community,
        3_000,
        "usd",
        24,
        "I fixed this before: reload the searcher after deletes.",
    )?;
    tickets::claim(conn, claimed, expert)?;
    tickets::claim(conn, resolved, community)?;
    tickets::post_message(
        conn,
        resolved,
        community,
        Some("Escape the hyphen or use a phrase query: \"state-of-the-art\"."),
        false,
        None,
    )?;
    tickets::resolve(conn, resolved, community, None)?;
    crate::domain::money::fund_bounty(pool, &sandbox, paid, requester, 10_000, "usd", None, None)?;
    tickets::claim(conn, paid, expert)?;
    tickets::post_message(conn, paid, expert, Some("Enable positions only on the fields you phrase-query, and warm the searcher after each commit."), false, None)?;
    tickets::resolve(conn, paid, expert, None)?;
    tickets::accept(conn, paid, requester, 500)?;
    tickets::rate(conn, paid, requester, 5, Some("Fast and precise."))?;
    tickets::cancel(conn, cancelled, requester)?;
    Ok(())
}

fn seed_people(conn: &mut DbConnection) -> AppResult<bool> {
    if users::find_by_email(conn, ACCOUNTS[0].email)?.is_some() {
        return Ok(false);
    }
    let hash = password::hash(DEMO_PASSWORD).map_err(crate::error::AppError::internal)?;
    let names = [
        "Maya Maintainer",
        "Erin Expert",
        "Cal Community",
        "Rita Requester",
    ];
    let mut ids = Vec::new();
    for (account, name) in ACCOUNTS.iter().zip(names) {
        let user = users::create(conn, account.email, name, Some(&hash), false)?;
        // The demo's addresses are reserved examples: count them as verified.
        users::mark_verified(conn, user.id, &user.email_normalized)?;
        ids.push(user.id);
    }
    for (slug, name, description, topics) in PROJECTS {
        let p = projects::create(
            conn,
            ids[0],
            &projects::NewProject {
                slug: (*slug).into(),
                name: (*name).into(),
                repo_url: format!("https://github.com/example/{slug}"),
                description: (*description).into(),
                topics: topics.iter().map(|t| (*t).to_owned()).collect(),
                currency: None,
                commission_bps: None,
            },
        )?;
        let expert = Application {
            tier: Tier::Expert,
            hourly_rate: Some(12_000),
            bio: "Ten years of production Rust.".into(),
            skills: vec!["performance".into(), "async".into()],
        };
        let community = Application {
            tier: Tier::Community,
            hourly_rate: None,
            bio: "Happy to help newcomers.".into(),
            skills: vec!["getting-started".into()],
        };
        helpers::apply(conn, p.id, ids[1], &expert)?;
        helpers::apply(conn, p.id, ids[2], &community)?;
        helpers::decide(conn, p.id, ids[1], HelperStatus::Approved, ids[0])?;
        helpers::decide(conn, p.id, ids[2], HelperStatus::Approved, ids[0])?;
    }
    Ok(true)
}
