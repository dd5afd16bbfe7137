//! Closes tickets that saw no activity for their project's auto_close_days.

use super::JobContext;
use guildhall_jobs::BackgroundJob;
use serde::{Deserialize, Serialize};

/// Hourly sweep of inactive tickets.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AutoCloseTickets;

impl BackgroundJob for AutoCloseTickets {
    const JOB_NAME: &'static str = "auto_close_tickets";
    const DEDUPLICATED: bool = true;
    type Context = JobContext;

    fn run(&self, ctx: &JobContext) -> anyhow::Result<()> {
        let mut conn = ctx.pool.get()?;
        let n = crate::domain::tickets::auto_close_stale(&mut conn)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        if n > 0 {
            tracing::info!(closed = n, "auto-closed inactive tickets");
        }
        Ok(())
    }
}

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

/// Hourly: refunds bounties whose expiry passed before a resolution.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExpireBounties;

impl BackgroundJob for ExpireBounties {
    const JOB_NAME: &'static str = "expire_bounties";
    const DEDUPLICATED: bool = true;
    type Context = JobContext;

    fn run(&self, ctx: &JobContext) -> anyhow::Result<()> {
        let mut conn = ctx.pool.get()?;
        let n =
            crate::domain::money::expire_bounties(&mut conn).map_err(|e| anyhow::anyhow!("{e}"))?;
        if n > 0 {
            tracing::info!(refunded = n, "refunded expired bounties");
        }
        Ok(())
    }
}

/// Returns one refunded bounty's money through the gateway it came from.
/// Queued in the transaction that books the refund; the idempotency key
/// `bounty:{id}:refund` makes a retry after a crash or lost answer return
/// the first refund instead of refunding twice.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefundPayment {
    /// The refunded bounty.
    pub bounty_id: i64,
    /// How much to return (what was left of the bounty when the refund was
    /// booked; earlier partial refunds happened at the gateway already).
    /// Jobs queued before partial refunds existed carry none: the whole.
    #[serde(default)]
    pub amount: Option<i64>,
}

impl BackgroundJob for RefundPayment {
    const JOB_NAME: &'static str = "refund_payment";
    const DEDUPLICATED: bool = true;
    const PRIORITY: i32 = 10;
    const MAX_ATTEMPTS: i32 = 10;
    type Context = JobContext;

    fn run(&self, ctx: &JobContext) -> anyhow::Result<()> {
        use crate::db::schema::bounties;
        use diesel::prelude::*;
        let (status, gateway, payment_id, amount, refund_id): (
            String,
            String,
            Option<String>,
            i64,
            Option<String>,
        ) = bounties::table
            .find(self.bounty_id)
            .select((
                bounties::status,
                bounties::gateway,
                bounties::payment_id,
                bounties::amount,
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
        let refund = ctx.gateway.refund(
            &payment_id,
            self.amount.unwrap_or(amount),
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
