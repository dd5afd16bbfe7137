//! Guildhall: a marketplace and reputation engine for the open-source helper
//! economy. This crate is the service: configuration, database access, the
//! HTTP API, the domain logic and the concrete background jobs.

pub mod api;
pub mod app;
pub mod auth;
pub mod channels;
pub mod config;
pub mod db;
pub mod demo;
pub mod domain;
pub mod error;
pub mod eval;
pub mod import;
pub mod integrations;
pub mod job_payloads;
pub mod jobs;
pub mod ledger;
pub mod mail;
pub mod metrics;
pub mod payments;
pub mod state;
pub mod web;

pub use guildhall_jobs::per_backend;
