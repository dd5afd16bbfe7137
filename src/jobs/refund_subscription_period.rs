//! Returns through the gateway a subscription period that was paid after its
//! subscription ended (booked back in the same transaction that queued this).

use super::JobContext;
use crate::job_payloads::RefundSubscriptionPeriod;
use guildhall_jobs::BackgroundJob;

impl BackgroundJob for RefundSubscriptionPeriod {
    const JOB_NAME: &'static str = "refund_subscription_period";
    const DEDUPLICATED: bool = true;
    const PRIORITY: i32 = 10;
    const MAX_ATTEMPTS: i32 = 10;
    type Context = JobContext;

    fn run(&self, ctx: &JobContext) -> anyhow::Result<()> {
        use crate::db::schema::{subscription_periods as periods, subscriptions as subs};
        use diesel::prelude::*;
        let (status, payment_id, refund_id, gateway): (
            String,
            Option<String>,
            Option<String>,
            String,
        ) = periods::table
            .inner_join(subs::table.on(subs::id.eq(periods::subscription_id)))
            .filter(periods::id.eq(self.period_id))
            .select((
                periods::status,
                periods::payment_id,
                periods::refund_id,
                subs::gateway,
            ))
            .first(&mut *ctx.pool.get()?)?;
        if status != "refunded" || refund_id.is_some() {
            return Ok(());
        }
        let payment_id = payment_id
            .ok_or_else(|| anyhow::anyhow!("period {} has no payment", self.period_id))?;
        anyhow::ensure!(
            gateway == ctx.gateway.name(),
            "period {} was paid through {gateway}, but this process runs the {} gateway",
            self.period_id,
            ctx.gateway.name()
        );
        let refund = ctx.gateway.refund(
            &payment_id,
            None,
            &format!("subscription_period:{}:refund", self.period_id),
        )?;
        crate::domain::plans::record_period_refund(&mut *ctx.pool.get()?, self.period_id, &refund)?;
        tracing::info!(period = self.period_id, refund = %refund, "subscription period refunded");
        Ok(())
    }
}
