//! The application's background jobs, one file each, registered in one place.

mod purge_tokens;

pub use purge_tokens::PurgeExpiredRefreshTokens;

use crate::config::Config;
use crate::db::DbPool;
use guildhall_jobs::{Runner, RunnerConfig};

/// What every job may use.
#[derive(Clone)]
pub struct JobContext {
    /// Database pool.
    pub pool: DbPool,
}

/// A runner with every job type and schedule registered.
pub fn runner(pool: DbPool, config: &Config) -> anyhow::Result<Runner<JobContext>> {
    let runner_config = RunnerConfig {
        workers: config.job_workers.max(1),
        poll_interval: config.job_poll,
        ..RunnerConfig::default()
    };
    Runner::new(pool.clone(), JobContext { pool }, runner_config).schedule(
        "purge-expired-refresh-tokens",
        "0 17 3 * * *",
        PurgeExpiredRefreshTokens,
    )
}
