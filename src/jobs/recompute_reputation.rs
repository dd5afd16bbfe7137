//! Hourly: derives new reputation events and recomputes every score.

use super::JobContext;
use guildhall_jobs::BackgroundJob;
use serde::{Deserialize, Serialize};

/// Hourly: derives new reputation events and recomputes every score.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecomputeReputation;

impl BackgroundJob for RecomputeReputation {
    const JOB_NAME: &'static str = "recompute_reputation";
    const DEDUPLICATED: bool = true;
    type Context = JobContext;

    fn run(&self, ctx: &JobContext) -> anyhow::Result<()> {
        let mut conn = ctx.pool.get()?;
        let report = crate::domain::reputation::recompute(&mut conn, &ctx.reputation)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        tracing::info!(
            events_added = report.events_added,
            scores = report.scores,
            projects = report.projects,
            "reputation recomputed"
        );
        Ok(())
    }
}
