//! Inbound adapters: where requests arrive from outside the web app and the
//! API. Each verifies its sender (a shared secret or a signature over the
//! raw bytes) before parsing, deduplicates deliveries, and then calls the
//! same domain functions as the API.

pub mod chat;
pub mod email;
pub mod github;
pub mod github_export;
pub mod github_identity;
