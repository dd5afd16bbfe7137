//! The payloads of the jobs the domain enqueues, in a leaf module: the
//! domain names what should happen next without depending on `jobs`, which
//! runs it (and depends on the domain). Their `BackgroundJob` impls live in
//! `jobs/`, one file each.

use serde::{Deserialize, Serialize};

/// Indexes every ticket whose index version lags (`jobs::sync_index`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SyncIndex;

/// Returns one refunded bounty's money through the gateway it came from.
/// Queued in the transaction that books the refund; the idempotency key
/// `bounty:{id}:refund` makes a retry after a crash or lost answer return
/// the first refund instead of refunding twice.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefundPayment {
    /// The refunded bounty.
    pub bounty_id: i64,
    /// What was left of the bounty when the refund was booked (for the
    /// record: the gateway is asked for whatever remains of the payment).
    #[serde(default)]
    pub amount: Option<i64>,
}

/// Returns through the gateway a subscription period paid after its
/// subscription ended (`jobs::refund_subscription_period`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefundSubscriptionPeriod {
    /// The period.
    pub period_id: i64,
}

/// Mails a user the link that verifies their address
/// (`jobs::send_verification_email`). Queued at registration and when they
/// ask again; deduplicated while one waits.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SendVerificationEmail {
    /// The user.
    pub user_id: i64,
}

/// Reads what happened past the notification cursors and emails those who
/// asked to hear at once (`jobs::send_notifications`); scheduled every few
/// seconds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SendNotifications;

/// Sends the daily digests that are due (`jobs::send_digests`); scheduled
/// every five minutes, each person's at their own local hour.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SendDigests;

/// Answers a mail sent to a ticket's reply address that was not posted
/// (`jobs::send_inbound_refusal`), saying why and pointing to the web page.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SendInboundRefusal {
    /// The sender's address.
    pub to: String,
    /// The ticket the mail was for.
    pub ticket_id: i64,
    /// Why it was not posted, in a sentence.
    pub reason: String,
}

/// Acts on a `+support` or `-support` comment on a GitHub issue
/// (`jobs::github_support`): imports the issue as a draft ticket, comments
/// once, labels and closes it — or withdraws the untouched draft and
/// reopens it. Queued by the webhook in the transaction that records the
/// delivery.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GithubSupport {
    /// `import` or `withdraw`.
    pub command: String,
    /// The installation to act as.
    pub installation_id: i64,
    /// The repository (GitHub's id).
    pub repository_id: i64,
    /// Its `owner/name` when the comment was made.
    pub repository: String,
    /// The issue's number.
    pub issue_number: i64,
    /// The issue's node id.
    pub issue_node_id: String,
    /// The project the repository is linked to.
    pub project_id: i64,
    /// The repository is private: the ticket is private too.
    #[serde(default)]
    pub private: bool,
}

/// Answers a question asked in Discord or Slack (`jobs::chat_answer`): the
/// AI lane's answer from the project's solved tickets, with its buttons,
/// completing Discord's deferred response or through Slack's
/// `response_url`. Queued by the command, which was acknowledged at once.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChatAnswer {
    /// `discord` or `slack`.
    pub provider: String,
    /// The recorded question.
    pub question_id: i64,
    /// Discord: the interaction token; Slack: the `response_url`.
    pub target: String,
    /// The question's text.
    pub question: String,
    /// The project's name.
    pub project: String,
    /// The grounding, read when the question was asked (the search index
    /// lives in the serving process): confidence, and the solved tickets
    /// to quote as (id, title, accepted answer) — none when nothing is
    /// close enough, with `note` saying why.
    pub confidence: f64,
    /// See `confidence`.
    pub sources: Vec<(i64, String, String)>,
    /// See `confidence`.
    pub note: Option<String>,
}

/// Sends a short private reply through Slack's `response_url`
/// (`jobs::chat_answer`): a button's outcome, after the press was
/// acknowledged.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChatReply {
    /// The `response_url`.
    pub target: String,
    /// The text.
    pub text: String,
    /// Instead of the text: a one-time link to tie this Slack user (id,
    /// name) to an account, made when the job runs (so the token is never
    /// stored in the payload).
    #[serde(default)]
    pub link_for: Option<(String, String)>,
}

/// Mails a user a short notice about their account (`jobs::send_notice`):
/// a project's handover to its subscribers, a ban with how to appeal.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SendNotice {
    /// The user.
    pub user_id: i64,
    /// Subject line.
    pub subject: String,
    /// The notice, plain text.
    pub text: String,
    /// The page it concerns, a path on the public URL.
    pub link: String,
    /// A ban the user may appeal by replying: the mail's Reply-To is its
    /// appeal address (when replies are received).
    #[serde(default)]
    pub appeal_ban: Option<i64>,
}

/// Ends a subscription at the gateway that bills it
/// (`jobs::end_gateway_subscription`): at the end of its paid period (the
/// subscriber cancelled) or now (it lapsed, failed or was ended by a ban).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EndGatewaySubscription {
    /// Our subscription.
    pub subscription_id: i64,
    /// Whether it ends with its paid period.
    pub at_period_end: bool,
}

/// Keeps the FLOSS discounts of gateway-billed subscriptions in step with
/// the proofs (`jobs::sync_floss_discounts`): daily, and when someone proves
/// their open-source work.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SyncFlossDiscounts;

/// Gives the gateway that bills a subscription the service credit it holds
/// (`jobs::push_service_credit`), queued with the breach that booked it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PushServiceCredit {
    /// The subscription.
    pub subscription_id: i64,
}
