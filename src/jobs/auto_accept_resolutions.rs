//! Hourly: accepts resolutions whose acceptance window lapsed, releasing escrow.

use super::JobContext;
use guildhall_jobs::BackgroundJob;
use serde::{Deserialize, Serialize};

/// Hourly: accepts resolutions whose acceptance window lapsed, releasing escrow.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AutoAcceptResolutions;

impl BackgroundJob for AutoAcceptResolutions {
    const JOB_NAME: &'static str = "auto_accept_resolutions";
    const DEDUPLICATED: bool = true;
    type Context = JobContext;

    fn run(&self, ctx: &JobContext) -> anyhow::Result<()> {
        let mut conn = ctx.pool.get()?;
        let n = crate::domain::tickets::auto_accept_lapsed(&mut conn, ctx.platform_fee_bps)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        if n > 0 {
            tracing::info!(
                accepted = n,
                "accepted resolutions whose acceptance window lapsed"
            );
        }
        Ok(())
    }
}
