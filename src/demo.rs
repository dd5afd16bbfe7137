//! `serve --demo`: a few projects, users and approved helpers so a new user
//! can try the API at once. Idempotent: existing demo rows are left alone.

use crate::auth::password;
use crate::db::DbConnection;
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

/// Seeds the demo data; returns true if anything was created.
pub fn seed(conn: &mut DbConnection) -> AppResult<bool> {
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
        ids.push(users::create(conn, account.email, name, Some(&hash), false)?.id);
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
