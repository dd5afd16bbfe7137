//! Every few minutes: renews subscriptions whose paid period ended, ends the
//! cancelled ones, and lapses those whose grace after a failed renewal ran
//! out (`domain::plans::renew_due`).

use super::JobContext;
use guildhall_jobs::BackgroundJob;
use serde::{Deserialize, Serialize};

/// Renews, ends and lapses subscriptions that are due.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RenewSubscriptions;

impl BackgroundJob for RenewSubscriptions {
    const JOB_NAME: &'static str = "renew_subscriptions";
    const DEDUPLICATED: bool = true;
    type Context = JobContext;

    fn run(&self, ctx: &JobContext) -> anyhow::Result<()> {
        let n = crate::domain::plans::renew_due(&ctx.pool, ctx.gateway.as_ref())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        if n > 0 {
            tracing::info!(subscriptions = n, "renewed, ended or lapsed subscriptions");
        }
        Ok(())
    }
}
