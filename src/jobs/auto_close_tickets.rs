//! Hourly sweep of inactive tickets.

use super::JobContext;
use guildhall_jobs::BackgroundJob;
use serde::{Deserialize, Serialize};

/// Hourly sweep of inactive tickets.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AutoCloseTickets;

impl BackgroundJob for AutoCloseTickets {
    const JOB_NAME: &'static str = "auto_close_tickets";
    const DEDUPLICATED: bool = true;
    type Context = JobContext;

    fn run(&self, ctx: &JobContext) -> anyhow::Result<()> {
        let mut conn = ctx.pool.get()?;
        let n = crate::domain::tickets::auto_close_stale(&mut conn)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        if n > 0 {
            tracing::info!(closed = n, "auto-closed inactive tickets");
        }
        Ok(())
    }
}
