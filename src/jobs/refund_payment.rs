//! Returns a refunded bounty's money through the gateway it came from.

use super::JobContext;
use crate::job_payloads::RefundPayment;
use guildhall_jobs::BackgroundJob;

impl BackgroundJob for RefundPayment {
    const JOB_NAME: &'static str = "refund_payment";
    const DEDUPLICATED: bool = true;
    const PRIORITY: i32 = 10;
    const MAX_ATTEMPTS: i32 = 10;
    type Context = JobContext;

    fn run(&self, ctx: &JobContext) -> anyhow::Result<()> {
        use crate::db::schema::bounties;
        use diesel::prelude::*;
        let (status, gateway, payment_id, refund_id): (
            String,
            String,
            Option<String>,
            Option<String>,
        ) = bounties::table
            .find(self.bounty_id)
            .select((
                bounties::status,
                bounties::gateway,
                bounties::payment_id,
                bounties::refund_id,
            ))
            .first(&mut *ctx.pool.get()?)?;
        if status != "refunded" || refund_id.is_some() {
            return Ok(());
        }
        let payment_id = payment_id
            .ok_or_else(|| anyhow::anyhow!("bounty {} has no payment to refund", self.bounty_id))?;
        anyhow::ensure!(
            gateway == ctx.gateway.name(),
            "bounty {} was paid through {gateway}, but this process runs the {} gateway",
            self.bounty_id,
            ctx.gateway.name()
        );
        // What remains at the gateway: a refund made in its dashboard
        // meanwhile is never asked for twice, and the remainder is exactly
        // what the ledger booked back.
        let refund = ctx.gateway.refund(
            &payment_id,
            None,
            &format!("bounty:{}:refund", self.bounty_id),
        )?;
        // Asked the gateway with no connection held; record with a fresh one.
        crate::domain::money::record_gateway_refund(
            &mut *ctx.pool.get()?,
            self.bounty_id,
            &refund,
        )?;
        tracing::info!(bounty = self.bounty_id, refund = %refund, "refund sent through the gateway");
        Ok(())
    }
}
