//! Gives the gateway that bills a subscription the service credit it holds
//! (`domain::plans::push_service_credit`); retried until the gateway answers.

use super::JobContext;
use crate::job_payloads::PushServiceCredit;
use guildhall_jobs::BackgroundJob;

impl BackgroundJob for PushServiceCredit {
    const JOB_NAME: &'static str = "push_service_credit";
    const DEDUPLICATED: bool = true;
    type Context = JobContext;

    fn run(&self, ctx: &JobContext) -> anyhow::Result<()> {
        crate::domain::plans::push_service_credit(
            &ctx.pool,
            ctx.gateway.as_ref(),
            self.subscription_id,
        )
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(())
    }
}
