//! Every minute: applies (or fails) the accepted handovers whose date has
//! come (`domain::handovers::apply_due`).

use super::JobContext;
use guildhall_jobs::BackgroundJob;
use serde::{Deserialize, Serialize};

/// Applies due handovers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApplyHandovers;

impl BackgroundJob for ApplyHandovers {
    const JOB_NAME: &'static str = "apply_handovers";
    const DEDUPLICATED: bool = true;
    type Context = JobContext;

    fn run(&self, ctx: &JobContext) -> anyhow::Result<()> {
        let n = crate::domain::handovers::apply_due(&mut *ctx.pool.get()?, ctx.gateway.name())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        if n > 0 {
            tracing::info!(decided = n, "handovers applied or failed");
        }
        Ok(())
    }
}
