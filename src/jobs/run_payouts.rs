//! Every 15 minutes: pays out balances through the gateway.

use super::JobContext;
use guildhall_jobs::BackgroundJob;
use serde::{Deserialize, Serialize};

/// Every 15 minutes: pays out balances through the gateway (see
/// `domain::payouts`; retried payouts reuse their idempotency key).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunPayouts;

impl BackgroundJob for RunPayouts {
    const JOB_NAME: &'static str = "run_payouts";
    const DEDUPLICATED: bool = true;
    type Context = JobContext;

    fn run(&self, ctx: &JobContext) -> anyhow::Result<()> {
        let report =
            crate::domain::payouts::run(&ctx.pool, ctx.gateway.as_ref(), ctx.payout_minimum)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        if report.paid + report.failed > 0 {
            tracing::info!(paid = report.paid, failed = report.failed, "payout run");
        }
        Ok(())
    }
}
