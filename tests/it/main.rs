//! The one integration-test binary. Every test gets a fresh database:
//! SQLite in a temporary directory, or, when GUILDHALL_TEST_DATABASE_URL is
//! set to a postgres:// URL, a PostgreSQL database of its own created for
//! the test and dropped after it.

mod audit;
mod auth;
mod browser;
mod chat;
mod cli;
mod conduct;
mod consulting;
mod earnings;
mod errors;
mod fake_github;
mod github;
mod github_oauth;
mod handovers;
mod inbound;
mod invoices;
mod jobs;
mod jwt;
mod ledger;
pub(crate) mod mail;
mod matching;
mod model;
mod moderation;
mod money;
mod notifications;
mod openapi;
mod plans;
mod projects;
mod reputation;
mod search;
mod sla;
pub(crate) mod stripe;
mod tickets;
mod util;
mod web;
mod webdriver;
mod webhooks;
