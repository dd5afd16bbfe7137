//! Hourly: refunds bounties whose expiry passed before a resolution.

use super::JobContext;
use guildhall_jobs::BackgroundJob;
use serde::{Deserialize, Serialize};

/// Hourly: refunds bounties whose expiry passed before a resolution.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExpireBounties;

impl BackgroundJob for ExpireBounties {
    const JOB_NAME: &'static str = "expire_bounties";
    const DEDUPLICATED: bool = true;
    type Context = JobContext;

    fn run(&self, ctx: &JobContext) -> anyhow::Result<()> {
        let mut conn = ctx.pool.get()?;
        let n =
            crate::domain::money::expire_bounties(&mut conn).map_err(|e| anyhow::anyhow!("{e}"))?;
        if n > 0 {
            tracing::info!(refunded = n, "refunded expired bounties");
        }
        Ok(())
    }
}
