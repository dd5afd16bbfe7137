//! Ends a subscription at the gateway that bills it
//! (`job_payloads::EndGatewaySubscription`), retried until the gateway
//! answers.

use super::JobContext;
use crate::job_payloads::EndGatewaySubscription;
use guildhall_jobs::BackgroundJob;

impl BackgroundJob for EndGatewaySubscription {
    const JOB_NAME: &'static str = "end_gateway_subscription";
    const DEDUPLICATED: bool = true;
    type Context = JobContext;

    fn run(&self, ctx: &JobContext) -> anyhow::Result<()> {
        let sub =
            crate::domain::plans::get_subscription(&mut *ctx.pool.get()?, self.subscription_id)?;
        let Some(id) = sub.gateway_subscription_id.clone() else {
            return Ok(());
        };
        anyhow::ensure!(
            sub.gateway == ctx.gateway.name(),
            "subscription {} is billed by {}, this worker runs {}",
            sub.id,
            sub.gateway,
            ctx.gateway.name()
        );
        // A cancellation at the period's end that the subscriber took back
        // meanwhile, or a subscription that ended since: decided by now.
        let at_period_end = self.at_period_end && sub.is_live();
        ctx.gateway.end_subscription(&id, at_period_end)?;
        tracing::info!(
            subscription = sub.id,
            at_period_end,
            "subscription ended at the gateway"
        );
        Ok(())
    }
}
