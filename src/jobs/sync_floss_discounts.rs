//! Daily, and when someone proves their open-source work: keeps the FLOSS
//! discount of gateway-billed subscriptions in step with the proofs
//! (`domain::plans::sync_floss_discounts`).

use super::JobContext;
use crate::job_payloads::SyncFlossDiscounts;
use guildhall_jobs::BackgroundJob;

impl BackgroundJob for SyncFlossDiscounts {
    const JOB_NAME: &'static str = "sync_floss_discounts";
    const DEDUPLICATED: bool = true;
    type Context = JobContext;

    fn run(&self, ctx: &JobContext) -> anyhow::Result<()> {
        let n = crate::domain::plans::sync_floss_discounts(&ctx.pool, ctx.gateway.as_ref())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        if n > 0 {
            tracing::info!(changed = n, "FLOSS discounts synced with the gateway");
        }
        Ok(())
    }
}
