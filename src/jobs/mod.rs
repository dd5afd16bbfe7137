//! The application's background jobs, one file each, registered in one place.
//!
//! Two runners: the general one (any number of processes may run it) and
//! the index runner, with one worker, in the process that owns the search
//! index (tantivy allows one writer).

mod apply_handovers;
mod auto_accept_resolutions;
mod auto_close_tickets;
pub mod chat_answer;
mod end_gateway_subscription;
mod expire_bounties;
mod github_support;
mod purge_expired_refresh_tokens;
mod purge_inbound_records;
mod push_service_credit;
mod recompute_reputation;
mod refund_payment;
mod refund_subscription_period;
mod renew_subscriptions;
mod run_payouts;
pub mod send_digests;
mod send_inbound_refusal;
mod send_notice;
mod send_notifications;
mod send_verification_email;
mod sla_sweep;
mod sync_floss_discounts;
pub mod sync_index;

pub use crate::job_payloads::{
    ChatAnswer, ChatReply, EndGatewaySubscription, GithubSupport, PushServiceCredit, RefundPayment,
    RefundSubscriptionPeriod, SendDigests, SendInboundRefusal, SendNotice, SendNotifications,
    SendVerificationEmail, SyncFlossDiscounts, SyncIndex,
};
pub use apply_handovers::ApplyHandovers;
pub use auto_accept_resolutions::AutoAcceptResolutions;
pub use auto_close_tickets::AutoCloseTickets;
pub use expire_bounties::ExpireBounties;
pub use purge_expired_refresh_tokens::PurgeExpiredRefreshTokens;
pub use purge_inbound_records::PurgeInboundRecords;
pub use recompute_reputation::RecomputeReputation;
pub use renew_subscriptions::RenewSubscriptions;
pub use run_payouts::RunPayouts;
pub use sla_sweep::SlaSweep;

use crate::config::Config;
use crate::db::DbPool;
use guildhall_index::TicketIndex;
use guildhall_jobs::{Runner, RunnerConfig};
use std::sync::Arc;

/// What every job may use.
#[derive(Clone)]
pub struct JobContext {
    /// Database pool.
    pub pool: DbPool,
    /// The search index, in the process that owns it.
    pub index: Option<Arc<TicketIndex>>,
    /// Platform fee for releases, basis points.
    pub platform_fee_bps: i32,
    /// The payment gateway payouts go through.
    pub gateway: Arc<dyn crate::payments::PaymentGateway>,
    /// Smallest balance paid out, minor units.
    pub payout_minimum: i64,
    /// The reputation model's parameters.
    pub reputation: crate::domain::reputation::model::Params,
    /// Outbound mail.
    pub mail: Arc<crate::mail::Mail>,
    /// The GitHub App, when configured.
    pub github: Option<Arc<crate::integrations::github::GithubApp>>,
    /// Discord and Slack, as configured.
    pub chat: Arc<crate::integrations::chat::Chat>,
    /// The AI lane's language model, if configured.
    pub ai: Option<crate::domain::ai::LlmSettings>,
    /// Where the web app is, for links.
    pub public_url: String,
}

/// The GitHub App `config` describes, if any.
pub(crate) fn github_app(
    config: &Config,
) -> anyhow::Result<Option<Arc<crate::integrations::github::GithubApp>>> {
    config
        .github_app
        .as_ref()
        .map(|(id, pem)| {
            crate::integrations::github::GithubApp::new(&config.github_api_base, *id, &pem.0)
                .map(Arc::new)
        })
        .transpose()
}

/// The general runner: every job type except index maintenance.
pub fn runner(pool: DbPool, config: &Config) -> anyhow::Result<Runner<JobContext>> {
    let runner_config = RunnerConfig {
        workers: config.job_workers.max(1),
        poll_interval: config.job_poll,
        ..RunnerConfig::default()
    };
    let ctx = JobContext {
        pool: pool.clone(),
        index: None,
        platform_fee_bps: config.platform_fee_bps,
        gateway: crate::payments::from_config(config)?,
        payout_minimum: config.payout_minimum,
        reputation: config.reputation,
        mail: Arc::new(crate::mail::Mail::from_config(config)?),
        github: github_app(config)?,
        chat: Arc::new(crate::integrations::chat::Chat::from_config(config)),
        ai: config.ai.clone(),
        public_url: config.public_url.clone(),
    };
    Runner::new(pool, ctx, runner_config)
        .register::<RefundPayment>()
        .register::<RefundSubscriptionPeriod>()
        .register::<GithubSupport>()
        .register::<ChatAnswer>()
        .register::<ChatReply>()
        .register::<SendVerificationEmail>()
        .register::<SendInboundRefusal>()
        .register::<SendNotice>()
        .register::<EndGatewaySubscription>()
        .register::<SyncFlossDiscounts>()
        .register::<PushServiceCredit>()
        .schedule(
            "purge-expired-refresh-tokens",
            "0 17 3 * * *",
            PurgeExpiredRefreshTokens,
        )?
        .schedule("purge-inbound-records", "0 47 3 * * *", PurgeInboundRecords)?
        .schedule("auto-close-tickets", "0 5 * * * *", AutoCloseTickets)?
        .schedule(
            "auto-accept-resolutions",
            "0 35 * * * *",
            AutoAcceptResolutions,
        )?
        .schedule("expire-bounties", "0 45 * * * *", ExpireBounties)?
        .schedule("renew-subscriptions", "0 */5 * * * *", RenewSubscriptions)?
        .schedule("sla-sweep", "15 * * * * *", SlaSweep)?
        .schedule("apply-handovers", "45 * * * * *", ApplyHandovers)?
        .schedule("sync-floss-discounts", "0 40 * * * *", SyncFlossDiscounts)?
        .schedule("run-payouts", "0 */15 * * * *", RunPayouts)?
        .schedule("recompute-reputation", "0 25 * * * *", RecomputeReputation)?
        .schedule("send-notifications", "*/5 * * * * *", SendNotifications)?
        .schedule("send-digests", "30 */5 * * * *", SendDigests)
}

/// The index runner: one worker owning `index`.
pub fn index_runner(
    pool: DbPool,
    index: Arc<TicketIndex>,
    config: &Config,
) -> anyhow::Result<Runner<JobContext>> {
    let runner_config = RunnerConfig {
        workers: 1,
        poll_interval: config.job_poll.min(std::time::Duration::from_millis(250)),
        backoff_base: std::time::Duration::from_secs(2),
        ..RunnerConfig::default()
    };
    let ctx = JobContext {
        pool: pool.clone(),
        index: Some(index),
        platform_fee_bps: config.platform_fee_bps,
        // Index jobs never move money; the sandbox keeps this runner from
        // opening gateway connections it would not use.
        gateway: Arc::new(crate::payments::Sandbox),
        payout_minimum: config.payout_minimum,
        reputation: config.reputation,
        mail: Arc::new(crate::mail::Mail::from_config(config)?),
        github: None,
        chat: Arc::new(crate::integrations::chat::Chat::from_config(config)),
        ai: None,
        public_url: config.public_url.clone(),
    };
    Ok(Runner::new(pool, ctx, runner_config).register::<SyncIndex>())
}
