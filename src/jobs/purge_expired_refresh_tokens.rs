//! Deletes refresh tokens that expired more than a day ago.

use super::JobContext;
use guildhall_jobs::BackgroundJob;
use serde::{Deserialize, Serialize};

/// Daily clean-up of expired refresh tokens.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PurgeExpiredRefreshTokens;

impl BackgroundJob for PurgeExpiredRefreshTokens {
    const JOB_NAME: &'static str = "purge_expired_refresh_tokens";
    const DEDUPLICATED: bool = true;
    type Context = JobContext;

    fn run(&self, ctx: &JobContext) -> anyhow::Result<()> {
        let mut conn = ctx.pool.get()?;
        let n = crate::domain::sessions::purge_expired(&mut conn)?;
        tracing::info!(deleted = n, "purged expired refresh tokens");
        Ok(())
    }
}
