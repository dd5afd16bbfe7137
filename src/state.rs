//! Shared application state handed to every handler.

use crate::auth::ratelimit::FailureLimiter;
use crate::auth::tokens::TokenService;
use crate::config::Config;
use crate::db::{DbConnection, DbPool};
use crate::error::{AppError, AppResult};
use crate::metrics::Metrics;
use actix_web::web;
use std::sync::Arc;

/// Everything a handler may need.
#[derive(Clone)]
pub struct AppState {
    /// Database pool.
    pub pool: DbPool,
    /// Validated configuration.
    pub config: Arc<Config>,
    /// Token issuer and verifier.
    pub tokens: Arc<TokenService>,
    /// Failed-login limiter.
    pub login_failures: Arc<FailureLimiter>,
    /// Registrations per client address (an hour's window).
    pub registrations: Arc<FailureLimiter>,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// Bounds concurrent argon2 work (memory- and CPU-hard by design).
    pub hashing: Arc<tokio::sync::Semaphore>,
    /// The payment gateway (the sandbox by default).
    pub gateway: Arc<dyn crate::payments::PaymentGateway>,
    /// The ticket search index (read by handlers; written only by the index job).
    pub index: Arc<guildhall_index::TicketIndex>,
    /// Outbound mail and the signed links mail carries.
    pub mail: Arc<crate::mail::Mail>,
    /// The GitHub App, when configured (tickets become issues with it).
    pub github: Option<Arc<crate::integrations::github::GithubApp>>,
    /// Sign in with GitHub, when configured.
    pub github_oauth: Option<Arc<crate::integrations::github::OAuthApp>>,
}

impl AppState {
    /// Runs blocking database work on actix's blocking pool, never on an
    /// async worker thread.
    pub async fn db<T, F>(&self, f: F) -> AppResult<T>
    where
        F: FnOnce(&mut DbConnection) -> AppResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let pool = self.pool.clone();
        web::block(move || {
            let mut conn = pool.get()?;
            f(&mut conn)
        })
        .await
        .map_err(AppError::from)?
    }

    /// Runs blocking work that takes its own connections from the pool as
    /// it needs them (and none while it waits on an outside service), on
    /// actix's blocking pool.
    pub async fn blocking<T, F>(&self, f: F) -> AppResult<T>
    where
        F: FnOnce(&DbPool) -> AppResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let pool = self.pool.clone();
        web::block(move || f(&pool)).await.map_err(AppError::from)?
    }
}
