//! Every minute: derives, stops, warns and breaches the service-level
//! clocks of enterprise tickets (`domain::sla::sweep`).

use super::JobContext;
use guildhall_jobs::BackgroundJob;
use serde::{Deserialize, Serialize};

/// Runs the service-level sweep.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SlaSweep;

impl BackgroundJob for SlaSweep {
    const JOB_NAME: &'static str = "sla_sweep";
    const DEDUPLICATED: bool = true;
    type Context = JobContext;

    fn run(&self, ctx: &JobContext) -> anyhow::Result<()> {
        let s =
            crate::domain::sla::sweep(&mut *ctx.pool.get()?).map_err(|e| anyhow::anyhow!("{e}"))?;
        if s != crate::domain::sla::Swept::default() {
            tracing::info!(?s, "service-level clocks swept");
        }
        Ok(())
    }
}
