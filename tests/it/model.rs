//! A model-based random test of the money paths, through the HTTP API.
//!
//! Random sequences of operations by several actors (including ones who may
//! not act: a stranger, a rival helper, the requester acting as a helper)
//! run against the real application, on the backend the environment selects
//! (SQLite, or PostgreSQL with `GUILDHALL_TEST_DATABASE_URL`). Beside it an
//! independent [`Model`] predicts every HTTP status and keeps who holds what:
//! per ticket its status and escrow, per bounty its state, per payee what it
//! may be paid. After every step the invariants are checked:
//!
//! - `guildhall::ledger::check` reports no violation;
//! - the model's balances equal the ledger's (escrow per ticket, helper and
//!   project payables, the platform's revenue);
//! - a closed, cancelled or auto-closed ticket holds no escrow;
//! - a ticket's `paid_amount` equals its escrow balance;
//! - statuses of tickets and bounties are the ones the model predicts, and
//!   each response's status code is the predicted one (where the intended
//!   behaviour is not pinned down, one of a few; never a 5xx).
//!
//! Each case runs in one of two payment modes: the sandbox gateway (money
//! settles at once) or a Stripe-like gateway whose payments wait for signed
//! webhooks, with which the case also sends `payment_intent.succeeded` and
//! `payment_failed`, full and partial `charge.refunded`, disputes created and
//! closed (won and lost) and duplicate deliveries. The scheduled jobs
//! (auto-accept, auto-close, bounty expiry, payouts) run after backdating the
//! timestamps that make them due.
//!
//! Environment:
//! - `GUILDHALL_MODEL_CASES`: how many cases per run (default
//!   [`DEFAULT_CASES`]); `GUILDHALL_MODEL_STEPS`: operations per case;
//! - `GUILDHALL_MODEL_SEED`: replays the one case with that seed (printed on
//!   failure); `GUILDHALL_MODEL_BASE_SEED`: where the case seeds start;
//! - `GUILDHALL_MODEL_SHRINK=0`: report failures without shrinking them;
//! - `GUILDHALL_MODEL_KEEP_GOING=1`: after a failure go on with the next case
//!   and report every distinct failure (shrunk) at the end;
//! - `GUILDHALL_MODEL_IGNORE=text,…`: failures whose kind contains one of
//!   these are not reported (a wrong status is then followed by the model),
//!   to look past a known defect;
//! - `GUILDHALL_MODEL_MODE=sandbox` or `webhook`: only cases of that mode.
//!
//! Sandbox cases also subscribe to the project's monthly plan, cancel,
//! renew (paid or declined), lapse after the grace, and upgrade tickets
//! (spending an included upgrade, or paying the upgrade price as a bounty);
//! the model keeps each subscription's state and credits, and its revenue
//! in the project's and the platform's balances. Enterprise subscribers'
//! tickets miss their guaranteed response time (an SLA breach): the service
//! credit is booked and taken off the next renewal's charge, or lapses
//! with the subscription.
//!
//! To add an operation: a variant of [`Op`], a line in [`generate`], its
//! prediction and effect in [`Model::predict`] / [`Model::apply`], and how it
//! is sent in [`Harness::send`].

use crate::util::{AwaitingWebhook, TestApp, User};
use actix_web::test::TestRequest;
use diesel::prelude::*;
use guildhall::db::schema::{bounties, ledger_accounts as la, tickets};
use guildhall::ledger::{Account, AccountKind};
use guildhall::payments::stripe_webhook::sign;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Cases per backend by default: bounded for CI.
pub const DEFAULT_CASES: u64 = 32;
/// Operations per case by default.
pub const DEFAULT_STEPS: usize = 40;
/// Cases that share one application (and its registered users). One: the
/// jobs see every ticket in the database, so cases must not share one.
const CASES_PER_APP: u64 = 1;
/// The webhook signing secret of the webhook-mode app.
const WEBHOOK_SECRET: &str = "whsec_model_secret";
/// Tickets per case.
const TICKETS: usize = 3;
/// Platform fee (the default configuration), basis points.
const PLATFORM_BPS: i64 = 500;
/// Project commission (the default), basis points.
const COMMISSION_BPS: i64 = 1000;
/// The project's acceptance window, days.
const ACCEPTANCE_DAYS: i64 = 7;
/// The project's inactivity window, days.
const AUTO_CLOSE_DAYS: i64 = 30;
/// The case's monthly plan: price, included upgrades, further upgrade price.
const PLAN_PRICE: i64 = 4_900;
const PLAN_UPGRADES: i64 = 2;
const PLAN_UPGRADE_PRICE: i64 = 1_500;
/// The project's pay-as-you-go upgrade price (the default).
const PAYG_UPGRADE_PRICE: i64 = 2_500;
/// The case's enterprise plan: monthly price, term, and the service credit
/// one missed response earns (10% of a month).
const ENT_PRICE: i64 = 10_000;
const ENT_TERM: i64 = 6;
const ENT_CREDIT: i64 = 1_000;

// ---------------------------------------------------------------------------
// Actors, operations

/// Who acts. Owner maintains the project; Requester asks tickets 0 and 2
/// and is also an approved helper (of others' tickets); Backer asks ticket 1
/// and backs; H1 and H2 are approved helpers (rivals of each other); Stranger
/// is on no team.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Actor {
    /// The project's owner (a maintainer, not a helper).
    Owner,
    /// Requester of tickets 0 and 2, approved helper of the project.
    Requester,
    /// Requester of ticket 1; backs bounties; not on the team.
    Backer,
    /// Approved helper, with a ready payout account.
    H1,
    /// Approved helper, without a payout account.
    H2,
    /// Logged in, on no team.
    Stranger,
}

/// Every actor.
const ACTORS: [Actor; 6] = [
    Actor::Owner,
    Actor::Requester,
    Actor::Backer,
    Actor::H1,
    Actor::H2,
    Actor::Stranger,
];

/// Actors that start as approved helpers.
const HELPERS: [Actor; 3] = [Actor::Requester, Actor::H1, Actor::H2];

/// The requester of each ticket.
const REQUESTERS: [Actor; TICKETS] = [Actor::Requester, Actor::Backer, Actor::Requester];

/// A Stripe event to send (webhook mode).
#[derive(Clone, Debug)]
pub enum Hook {
    /// `payment_intent.succeeded` for the bounty's payment.
    Succeeded { bounty: usize },
    /// `payment_intent.payment_failed`.
    Failed { bounty: usize },
    /// `charge.refunded`, fully or by `part` more minor units (cumulative).
    Refunded { bounty: usize, part: Option<i64> },
    /// `charge.dispute.created` over what the bounty still holds.
    DisputeCreated { bounty: usize },
    /// `charge.dispute.closed`, won or lost.
    DisputeClosed { bounty: usize, won: bool },
    /// The `n`th event sent before, delivered again verbatim.
    Redeliver { n: usize },
}

/// One operation of a case. Tickets, bounties and bids are referred to by
/// their index in the model (order of creation), so a shortened sequence
/// still means something; an operation whose target does not exist (yet)
/// is skipped.
#[derive(Clone, Debug)]
pub enum Op {
    /// POST /tickets/{id}/bounties.
    Fund {
        actor: Actor,
        ticket: usize,
        amount: i64,
        expires: bool,
    },
    /// POST /tickets/{id}/bids.
    Bid {
        actor: Actor,
        ticket: usize,
        amount: i64,
    },
    /// POST /bids/{id}/accept.
    AcceptBid { actor: Actor, bid: usize },
    /// POST /tickets/{id}/claim.
    Claim { actor: Actor, ticket: usize },
    /// POST /tickets/{id}/unclaim.
    Unclaim { actor: Actor, ticket: usize },
    /// POST /tickets/{id}/transfer.
    Transfer {
        actor: Actor,
        ticket: usize,
        to: Actor,
    },
    /// POST /tickets/{id}/resolve.
    Resolve { actor: Actor, ticket: usize },
    /// POST /tickets/{id}/accept.
    Accept { actor: Actor, ticket: usize },
    /// POST /tickets/{id}/reopen.
    Reopen { actor: Actor, ticket: usize },
    /// POST /tickets/{id}/close.
    Close { actor: Actor, ticket: usize },
    /// POST /tickets/{id}/cancel.
    Cancel { actor: Actor, ticket: usize },
    /// POST /projects/{slug}/helpers/{id}/revoke.
    Revoke { actor: Actor, helper: Actor },
    /// POST /projects/{slug}/helpers/{id}/approve (reinstates), by the owner.
    Reinstate { helper: Actor },
    /// A signed Stripe webhook.
    Webhook(Hook),
    /// The ticket's resolution is older than the acceptance window; the
    /// auto-accept job runs.
    AutoAccept { ticket: usize },
    /// The ticket saw no activity for the inactivity window; the
    /// auto-close job runs.
    AutoClose { ticket: usize },
    /// The bounty's expiry passed (if it has one); the expiry job runs.
    Expire { bounty: usize },
    /// The payout run.
    Payouts,
    /// POST /projects/{slug}/subscriptions to the case's monthly (or
    /// enterprise) plan.
    Subscribe { actor: Actor, enterprise: bool },
    /// `of` opens a ticket that waits past its guaranteed response time;
    /// the service-level sweep runs.
    SlaBreach { of: Actor },
    /// POST /subscriptions/{id}/cancel of `of`'s latest subscription.
    CancelSub { actor: Actor, of: Actor },
    /// `of`'s paid period ended; the renewal job runs (its card refused
    /// when `declined`).
    Renew { of: Actor, declined: bool },
    /// The grace after `of`'s refused renewal ran out; the renewal job runs.
    Lapse { of: Actor },
    /// POST /tickets/{id}/upgrade.
    Upgrade { actor: Actor, ticket: usize },
    /// The owner hands the project to H1 (proposed, accepted, proved,
    /// applied by the job), then reverses it: what the project earned
    /// before moves to the owner's payable account.
    Handover,
}

impl Op {
    /// The variant's name, for grouping failures.
    fn name(&self) -> &'static str {
        match self {
            Op::Fund { .. } => "fund",
            Op::Bid { .. } => "bid",
            Op::AcceptBid { .. } => "accept_bid",
            Op::Claim { .. } => "claim",
            Op::Unclaim { .. } => "unclaim",
            Op::Transfer { .. } => "transfer",
            Op::Resolve { .. } => "resolve",
            Op::Accept { .. } => "accept",
            Op::Reopen { .. } => "reopen",
            Op::Close { .. } => "close",
            Op::Cancel { .. } => "cancel",
            Op::Revoke { .. } => "revoke",
            Op::Reinstate { .. } => "reinstate",
            Op::Webhook(Hook::Succeeded { .. }) => "webhook succeeded",
            Op::Webhook(Hook::Failed { .. }) => "webhook payment_failed",
            Op::Webhook(Hook::Refunded { .. }) => "webhook refunded",
            Op::Webhook(Hook::DisputeCreated { .. }) => "webhook dispute created",
            Op::Webhook(Hook::DisputeClosed { .. }) => "webhook dispute closed",
            Op::Webhook(Hook::Redeliver { .. }) => "webhook redelivery",
            Op::AutoAccept { .. } => "auto-accept job",
            Op::AutoClose { .. } => "auto-close job",
            Op::Expire { .. } => "expiry job",
            Op::Payouts => "payout job",
            Op::Subscribe { .. } => "subscribe",
            Op::CancelSub { .. } => "cancel subscription",
            Op::Renew {
                declined: false, ..
            } => "renewal job",
            Op::Renew { declined: true, .. } => "renewal job (declined)",
            Op::Lapse { .. } => "lapse job",
            Op::Upgrade { .. } => "upgrade",
            Op::SlaBreach { .. } => "SLA breach",
            Op::Handover => "handover and reversal",
        }
    }
}

// ---------------------------------------------------------------------------
// The model

/// A ticket's status, as the API spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum St {
    /// In the queue.
    Open,
    /// A helper works on it.
    Claimed,
    /// Waiting for the requester's acceptance.
    Resolved,
    /// Accepted or closed.
    Closed,
    /// Withdrawn by the requester.
    Cancelled,
    /// Closed for inactivity.
    AutoClosed,
}

impl St {
    fn as_str(self) -> &'static str {
        match self {
            St::Open => "open",
            St::Claimed => "claimed",
            St::Resolved => "resolved",
            St::Closed => "closed",
            St::Cancelled => "cancelled",
            St::AutoClosed => "auto_closed",
        }
    }
    /// Closed, cancelled or auto-closed: no money may stay.
    fn terminal(self) -> bool {
        matches!(self, St::Closed | St::Cancelled | St::AutoClosed)
    }
}

/// What the model knows of one ticket.
#[derive(Clone, Debug)]
pub struct TicketM {
    /// Server id.
    pub id: i64,
    /// Who asked.
    pub requester: Actor,
    /// Status.
    pub status: St,
    /// `claimed_by` (kept after resolve and close, as the API does).
    pub claimant: Option<Actor>,
    /// `resolved_by`.
    pub resolver: Option<Actor>,
    /// The resolution was backdated beyond the acceptance window.
    pub accept_due: bool,
    /// The last activity was backdated beyond the inactivity window.
    pub stale: bool,
    /// An included upgrade was spent on it.
    pub upgraded: bool,
}

/// A subscription's state in the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubSt {
    /// Paid for the current period.
    Active,
    /// Its renewal was refused; the plan holds through the grace.
    PastDue,
    /// Cancelled or lapsed.
    Ended,
}

/// What the model knows of an actor's latest subscription.
#[derive(Clone, Debug)]
pub struct SubM {
    /// Server id.
    pub id: i64,
    /// State.
    pub status: SubSt,
    /// Included upgrades left this period.
    pub credits: i64,
    /// Ends at the end of the paid period.
    pub cancel_at_end: bool,
    /// On the enterprise plan.
    pub enterprise: bool,
    /// Service credit held, minor units.
    pub service_credit: i64,
}

impl SubM {
    fn live(&self) -> bool {
        self.status != SubSt::Ended
    }
    /// Ended: its credits of every kind lapse.
    fn end(&mut self) {
        self.status = SubSt::Ended;
        self.credits = 0;
        self.service_credit = 0;
    }
    /// A period's full charge and included upgrades.
    fn terms(&self) -> (i64, i64) {
        if self.enterprise {
            (ENT_PRICE * ENT_TERM, 0)
        } else {
            (PLAN_PRICE, PLAN_UPGRADES)
        }
    }
}

/// A bounty's state in the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BSt {
    /// Waiting for its payment.
    Pending,
    /// The payment failed (a later success still funds it).
    Failed,
    /// In escrow.
    Funded,
    /// Released to the resolver with the ticket's escrow.
    Released,
    /// Went back to the backer.
    Refunded,
    /// Its money arrived for a terminal ticket and went straight back.
    RefundedOnArrival,
    /// A lost dispute took what it held.
    DisputeLost,
}

/// What the model knows of one bounty.
#[derive(Clone, Debug)]
pub struct BountyM {
    /// Server id.
    pub id: i64,
    /// Ticket index.
    pub ticket: usize,
    /// Amount paid.
    pub amount: i64,
    /// State.
    pub status: BSt,
    /// What of it is in escrow now.
    pub held: i64,
    /// Refunded at Stripe so far (cumulative `amount_refunded`).
    pub refunded: i64,
    /// An open dispute over this many minor units.
    pub dispute: Option<i64>,
    /// Created with an expiry.
    pub has_expiry: bool,
    /// Its expiry was backdated into the past.
    pub expired: bool,
    /// The bid it pays for (index), if any.
    pub bid: Option<usize>,
    /// The gateway's payment id (webhook mode).
    pub payment_id: Option<String>,
}

/// A bid's state in the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BidSt {
    /// Can be accepted.
    Open,
    /// Accepted.
    Accepted,
    /// Another bid was accepted, or withdrawn on revocation.
    Closed,
}

/// What the model knows of one bid.
#[derive(Clone, Debug)]
pub struct BidM {
    /// Server id.
    pub id: i64,
    /// Ticket index.
    pub ticket: usize,
    /// Bidder.
    pub helper: Actor,
    /// Price.
    pub amount: i64,
    /// State.
    pub status: BidSt,
    /// Its state depends on details the issue leaves open (a Stripe
    /// acceptance whose payment is pending): predictions about it are lenient.
    pub uncertain: bool,
}

/// Who can be paid out of releases.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Payee {
    /// A user's payable account.
    User(Actor),
    /// The case's project.
    Project,
    /// The platform's revenue.
    Platform,
}

/// The independent model of one case.
#[derive(Clone, Debug)]
pub struct Model {
    /// Payments wait for webhooks.
    pub webhook_mode: bool,
    /// Tickets, by index.
    pub tickets: Vec<TicketM>,
    /// Bounties, in order of creation.
    pub bounties: Vec<BountyM>,
    /// Bids, in order of creation.
    pub bids: Vec<BidM>,
    /// Which actors are approved helpers now.
    pub approved: HashMap<Actor, bool>,
    /// What each payee holds (available), read once at the case's start.
    pub payable: BTreeMap<Payee, i64>,
    /// Payees with a ready payout account.
    pub onboarded: Vec<Payee>,
    /// Events sent so far (for redelivery).
    pub events: Vec<Value>,
    /// Each actor's latest subscription to the case's plan.
    pub subs: BTreeMap<Actor, SubM>,
}

/// A predicted response status.
#[derive(Clone, Debug)]
pub enum Pred {
    /// Exactly this status.
    Is(u16),
    /// One of these (the intended behaviour leaves a choice).
    OneOf(Vec<u16>),
}

impl Pred {
    fn admits(&self, status: u16) -> bool {
        match self {
            Pred::Is(s) => *s == status,
            Pred::OneOf(v) => v.contains(&status),
        }
    }
}

impl fmt::Display for Pred {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pred::Is(s) => write!(f, "{s}"),
            Pred::OneOf(v) => write!(f, "one of {v:?}"),
        }
    }
}

/// How a release of `amount` splits: (helper, project, platform).
fn split(amount: i64) -> (i64, i64, i64) {
    let platform = amount * PLATFORM_BPS / 10_000;
    let project = amount * COMMISSION_BPS / 10_000;
    (amount - platform - project, project, platform)
}

/// How a paid subscription period splits: (project, platform).
fn period_split(amount: i64) -> (i64, i64) {
    let platform = amount * PLATFORM_BPS / 10_000;
    (amount - platform, platform)
}

impl Model {
    fn approved(&self, a: Actor) -> bool {
        self.approved.get(&a).copied().unwrap_or(false)
    }

    /// What the ticket's escrow holds.
    pub fn escrow(&self, t: usize) -> i64 {
        self.bounties
            .iter()
            .filter(|b| b.ticket == t)
            .map(|b| b.held)
            .sum()
    }

    /// Whether an open dispute freezes the ticket's escrow.
    pub fn frozen(&self, t: usize) -> bool {
        self.bounties
            .iter()
            .any(|b| b.ticket == t && b.dispute.is_some())
    }

    /// Whether the op's target exists and its preconditions (for webhooks
    /// and jobs, which model outside events) hold; otherwise it is skipped.
    fn applicable(&self, op: &Op) -> bool {
        let bounty = |i: &usize| self.bounties.get(*i);
        match op {
            Op::AcceptBid { bid, .. } => *bid < self.bids.len(),
            Op::Webhook(h) => {
                if !self.webhook_mode {
                    return false;
                }
                match h {
                    Hook::Succeeded { bounty: i } | Hook::Failed { bounty: i } => {
                        bounty(i).is_some_and(|b| b.payment_id.is_some())
                    }
                    Hook::Refunded { bounty: i, .. } => bounty(i).is_some_and(|b| {
                        b.payment_id.is_some()
                            && matches!(b.status, BSt::Funded | BSt::Refunded)
                            && !self.frozen(b.ticket)
                    }),
                    Hook::DisputeCreated { bounty: i } => bounty(i).is_some_and(|b| {
                        b.payment_id.is_some()
                            && b.status == BSt::Funded
                            && b.dispute.is_none()
                            && b.held > 0
                    }),
                    Hook::DisputeClosed { bounty: i, .. } => {
                        bounty(i).is_some_and(|b| b.dispute.is_some())
                    }
                    Hook::Redeliver { n } => *n < self.events.len(),
                }
            }
            Op::Expire { bounty: i } => bounty(i).is_some_and(|b| b.has_expiry),
            // Plans are exercised on the sandbox, where payments settle.
            Op::Subscribe { .. } | Op::Upgrade { .. } => !self.webhook_mode,
            Op::SlaBreach { of } => !self.webhook_mode && self.subs.contains_key(of),
            Op::CancelSub { of, .. } => !self.webhook_mode && self.subs.contains_key(of),
            Op::Renew { of, .. } => self.subs.get(of).is_some_and(|s| s.status == SubSt::Active),
            Op::Lapse { of } => self
                .subs
                .get(of)
                .is_some_and(|s| s.status == SubSt::PastDue),
            _ => true,
        }
    }

    /// The status the API should answer `op` with.
    pub fn predict(&self, op: &Op) -> Pred {
        use Pred::{Is, OneOf};
        match op {
            Op::Fund { ticket, .. } => {
                let t = &self.tickets[*ticket];
                if matches!(t.status, St::Open | St::Claimed) {
                    Is(201)
                } else {
                    Is(409)
                }
            }
            Op::Bid { actor, ticket, .. } => {
                let t = &self.tickets[*ticket];
                if !self.approved(*actor) || *actor == t.requester {
                    return Is(403);
                }
                if t.status != St::Open {
                    return Is(409);
                }
                let mine: Vec<&BidM> = self
                    .bids
                    .iter()
                    .filter(|b| b.ticket == *ticket && b.helper == *actor)
                    .collect();
                if self.awaiting_bid_payment(*ticket) || mine.iter().any(|b| b.uncertain) {
                    OneOf(vec![201, 409])
                } else if mine.iter().any(|b| b.status == BidSt::Open) {
                    Is(409)
                } else {
                    Is(201)
                }
            }
            Op::AcceptBid { actor, bid } => {
                let b = &self.bids[*bid];
                let t = &self.tickets[b.ticket];
                if *actor != t.requester {
                    let team = *actor == Actor::Owner || self.approved(*actor);
                    return if team || *actor == b.helper {
                        Is(403)
                    } else {
                        Is(404)
                    };
                }
                if self.webhook_mode
                    && (b.uncertain
                        || self
                            .bids
                            .iter()
                            .any(|o| o.ticket == b.ticket && o.uncertain))
                {
                    return OneOf(vec![200, 201, 202, 409]);
                }
                if b.status != BidSt::Open || t.status != St::Open || !self.approved(b.helper) {
                    return Is(409);
                }
                if self.webhook_mode {
                    OneOf(vec![200, 201, 202])
                } else {
                    Is(200)
                }
            }
            Op::Claim { actor, ticket } => {
                let t = &self.tickets[*ticket];
                if !self.approved(*actor) || *actor == t.requester {
                    Is(403)
                } else if t.status != St::Open {
                    Is(409)
                } else if self.awaiting_bid_payment(*ticket) {
                    // Whether a bid being paid for holds the ticket is open.
                    OneOf(vec![200, 409])
                } else {
                    Is(200)
                }
            }
            Op::Unclaim { actor, ticket } => {
                let t = &self.tickets[*ticket];
                if !self.claimant_or_maintainer(*actor, t) {
                    Is(403)
                } else if t.status != St::Claimed {
                    Is(409)
                } else {
                    Is(200)
                }
            }
            Op::Transfer { actor, ticket, to } => {
                let t = &self.tickets[*ticket];
                if !self.claimant_or_maintainer(*actor, t) {
                    Is(403)
                } else if !self.approved(*to) || t.claimant == Some(*to) {
                    Is(422)
                } else if *to == t.requester {
                    // Never to its requester; how it is refused is open.
                    OneOf(vec![403, 409, 422])
                } else if t.status != St::Claimed {
                    Is(409)
                } else {
                    Is(200)
                }
            }
            Op::Resolve { actor, ticket } => {
                let t = &self.tickets[*ticket];
                if t.claimant != Some(*actor) || !self.approved(*actor) {
                    Is(403)
                } else if t.status != St::Claimed {
                    Is(409)
                } else {
                    Is(200)
                }
            }
            Op::Accept { actor, ticket } => {
                let t = &self.tickets[*ticket];
                if *actor != t.requester {
                    Is(403)
                } else if t.status != St::Resolved || self.frozen(*ticket) {
                    Is(409)
                } else {
                    Is(200)
                }
            }
            Op::Reopen { actor, ticket } => {
                let t = &self.tickets[*ticket];
                let privileged = *actor == t.requester || *actor == Actor::Owner;
                let helper = self.approved(*actor);
                if !(privileged || helper) {
                    return Is(403);
                }
                match t.status {
                    St::Resolved if privileged || t.claimant == Some(*actor) => Is(200),
                    St::Resolved => Is(403),
                    St::Closed | St::AutoClosed if privileged => Is(200),
                    // A helper reopening a closed ticket: left open by the issue.
                    St::Closed | St::AutoClosed => OneOf(vec![200, 403]),
                    _ if privileged => Is(409),
                    _ => OneOf(vec![403, 409]),
                }
            }
            Op::Close { actor, ticket } => {
                let t = &self.tickets[*ticket];
                let privileged = *actor == t.requester || *actor == Actor::Owner;
                let helper = self.approved(*actor);
                if !(privileged || helper) {
                    return Is(403);
                }
                let allowed = privileged || t.claimant == Some(*actor);
                match t.status {
                    St::Open | St::Claimed | St::Resolved if self.frozen(*ticket) => {
                        if allowed {
                            Is(409)
                        } else {
                            OneOf(vec![403, 409])
                        }
                    }
                    St::Resolved if allowed => Is(200),
                    St::Resolved => Is(403),
                    St::Open | St::Claimed if allowed => Is(200),
                    // Another helper closing an unresolved ticket: left open.
                    St::Open | St::Claimed => OneOf(vec![200, 403]),
                    _ if allowed => Is(409),
                    _ => OneOf(vec![403, 409]),
                }
            }
            Op::Cancel { actor, ticket } => {
                let t = &self.tickets[*ticket];
                if *actor != t.requester {
                    Is(403)
                } else if !matches!(t.status, St::Open | St::Claimed) || self.frozen(*ticket) {
                    Is(409)
                } else {
                    Is(200)
                }
            }
            Op::Revoke { actor, .. } => {
                if *actor == Actor::Owner {
                    Is(200)
                } else {
                    Is(403)
                }
            }
            Op::Reinstate { .. } => Is(200),
            Op::SlaBreach { .. } => Is(200),
            Op::Subscribe { actor, .. } => {
                if self.subs.get(actor).is_some_and(SubM::live) {
                    Is(409)
                } else {
                    Is(201)
                }
            }
            Op::CancelSub { actor, of } => {
                if actor != of {
                    Is(404)
                } else if self.subs[of].live() {
                    Is(200)
                } else {
                    Is(409)
                }
            }
            Op::Renew { .. } | Op::Lapse { .. } => Is(200),
            Op::Upgrade { actor, ticket } => {
                let t = &self.tickets[*ticket];
                if *actor != t.requester {
                    Is(403)
                } else if !matches!(t.status, St::Open | St::Claimed) || t.upgraded {
                    Is(409)
                } else {
                    Is(200)
                }
            }
            Op::Webhook(_) => Is(200),
            Op::AutoAccept { .. }
            | Op::AutoClose { .. }
            | Op::Expire { .. }
            | Op::Payouts
            | Op::Handover => Is(200),
        }
    }

    /// Whether an accepted bid's payment is still pending (webhook mode).
    fn awaiting_bid_payment(&self, t: usize) -> bool {
        self.bounties
            .iter()
            .any(|b| b.ticket == t && b.bid.is_some() && b.status == BSt::Pending)
    }

    fn claimant_or_maintainer(&self, actor: Actor, t: &TicketM) -> bool {
        actor == Actor::Owner || (self.approved(actor) && t.claimant == Some(actor))
    }

    fn release(&mut self, t: usize) {
        let amount = self.escrow(t);
        if amount > 0 {
            let (helper, project, platform) = split(amount);
            if let Some(r) = self.tickets[t].resolver {
                *self.payable.entry(Payee::User(r)).or_default() += helper;
            }
            *self.payable.entry(Payee::Project).or_default() += project;
            *self.payable.entry(Payee::Platform).or_default() += platform;
        }
        for b in self.bounties.iter_mut().filter(|b| b.ticket == t) {
            if b.status == BSt::Funded {
                b.status = BSt::Released;
                b.held = 0;
            }
        }
    }

    fn refund_all(&mut self, t: usize) {
        for b in self.bounties.iter_mut().filter(|b| b.ticket == t) {
            if b.status == BSt::Funded {
                b.status = BSt::Refunded;
                b.held = 0;
            }
        }
    }

    /// A state change through a transition: the job windows start again.
    fn moved(&mut self, t: usize, to: St) {
        let tm = &mut self.tickets[t];
        tm.status = to;
        tm.accept_due = false;
        tm.stale = false;
    }

    /// Money for bounty `i` arrived.
    fn arrived(&mut self, i: usize) {
        let t = self.bounties[i].ticket;
        if self.tickets[t].status.terminal() {
            let b = &mut self.bounties[i];
            b.status = BSt::RefundedOnArrival;
            b.held = 0;
            return;
        }
        if let Some(bid) = self.bounties[i].bid {
            let helper = self.bids[bid].helper;
            let approved = self.approved(helper);
            let tm = &self.tickets[t];
            let holds =
                matches!(tm.status, St::Claimed | St::Resolved) && tm.claimant == Some(helper);
            if approved && tm.status == St::Open {
                // Assigned only now, and only to a bidder still approved.
                self.moved(t, St::Claimed);
                self.tickets[t].claimant = Some(helper);
            } else if !(approved && holds) {
                // The ticket went elsewhere meanwhile: the money goes back.
                self.bids[bid].status = BidSt::Closed;
                let b = &mut self.bounties[i];
                b.status = BSt::RefundedOnArrival;
                b.held = 0;
                return;
            }
            self.bids[bid].status = BidSt::Accepted;
        }
        let b = &mut self.bounties[i];
        b.status = BSt::Funded;
        b.held = b.amount - b.refunded;
    }

    /// Applies `op`'s effect, given the status the server answered (which
    /// the caller has checked against [`Model::predict`]).
    pub fn apply(&mut self, op: &Op, status: u16) {
        let ok = (200..300).contains(&status);
        match op {
            Op::Fund { .. } | Op::Bid { .. } => {} // recorded by the harness, which knows the ids
            Op::AcceptBid { bid, .. } => {
                if !ok {
                    return;
                }
                let t = self.bids[*bid].ticket;
                for (i, o) in self.bids.iter_mut().enumerate() {
                    if o.ticket == t && o.status == BidSt::Open && i != *bid {
                        o.status = BidSt::Closed;
                    }
                    if self.webhook_mode && o.ticket == t {
                        o.uncertain = true;
                    }
                }
                self.bids[*bid].status = BidSt::Accepted;
                if !self.webhook_mode {
                    let helper = self.bids[*bid].helper;
                    self.moved(t, St::Claimed);
                    self.tickets[t].claimant = Some(helper);
                }
                // The bounty itself is recorded by the harness.
            }
            Op::Claim { actor, ticket } if ok => {
                self.moved(*ticket, St::Claimed);
                self.tickets[*ticket].claimant = Some(*actor);
            }
            Op::Unclaim { ticket, .. } if ok => {
                self.moved(*ticket, St::Open);
                self.tickets[*ticket].claimant = None;
            }
            Op::Transfer { ticket, to, .. } if ok => {
                self.moved(*ticket, St::Claimed);
                self.tickets[*ticket].claimant = Some(*to);
            }
            Op::Resolve { actor, ticket } if ok => {
                self.moved(*ticket, St::Resolved);
                self.tickets[*ticket].resolver = Some(*actor);
            }
            Op::Accept { ticket, .. } if ok => {
                self.release(*ticket);
                self.moved(*ticket, St::Closed);
            }
            Op::Reopen { ticket, .. } if ok => {
                let t = &self.tickets[*ticket];
                if t.status == St::Resolved {
                    self.moved(*ticket, St::Claimed);
                    self.tickets[*ticket].resolver = None;
                } else {
                    self.moved(*ticket, St::Open);
                    self.tickets[*ticket].claimant = None;
                    self.tickets[*ticket].resolver = None;
                }
            }
            Op::Close { ticket, .. } if ok => {
                self.refund_all(*ticket);
                self.moved(*ticket, St::Closed);
            }
            Op::Cancel { ticket, .. } if ok => {
                self.refund_all(*ticket);
                self.moved(*ticket, St::Cancelled);
            }
            Op::Revoke { helper, .. } if ok => {
                self.approved.insert(*helper, false);
                for t in self.tickets.iter_mut() {
                    if t.status == St::Claimed && t.claimant == Some(*helper) {
                        t.status = St::Open;
                        t.claimant = None;
                    }
                }
                for b in self.bids.iter_mut() {
                    if b.helper == *helper && b.status == BidSt::Open {
                        b.status = BidSt::Closed;
                    }
                }
            }
            Op::Reinstate { helper } if ok => {
                self.approved.insert(*helper, true);
            }
            Op::Webhook(h) => self.apply_hook(h),
            Op::AutoAccept { .. } => {
                for t in 0..self.tickets.len() {
                    let tm = &self.tickets[t];
                    if tm.status == St::Resolved && tm.accept_due && !self.frozen(t) {
                        self.release(t);
                        self.moved(t, St::Closed);
                    }
                }
            }
            Op::AutoClose { .. } => {
                for t in 0..self.tickets.len() {
                    let tm = &self.tickets[t];
                    if matches!(tm.status, St::Open | St::Claimed) && tm.stale && !self.frozen(t) {
                        self.refund_all(t);
                        self.moved(t, St::AutoClosed);
                    }
                }
            }
            Op::Expire { .. } => {
                for i in 0..self.bounties.len() {
                    let b = &self.bounties[i];
                    let t = &self.tickets[b.ticket];
                    if b.status == BSt::Funded
                        && b.expired
                        && matches!(t.status, St::Open | St::Claimed)
                        && !self.frozen(b.ticket)
                    {
                        let b = &mut self.bounties[i];
                        b.status = BSt::Refunded;
                        b.held = 0;
                    }
                }
            }
            Op::CancelSub { of, .. } if ok => {
                let s = self.subs.get_mut(of).expect("applicable");
                if s.status == SubSt::Active {
                    s.cancel_at_end = true;
                } else {
                    s.end();
                }
            }
            Op::Renew { of, declined } => {
                let s = self.subs.get_mut(of).expect("applicable");
                if s.cancel_at_end {
                    s.end();
                } else if *declined {
                    s.status = SubSt::PastDue;
                } else {
                    let (full, upgrades) = s.terms();
                    // Service credit comes off the charge; at least the
                    // smallest price is still charged.
                    let applied = s.service_credit.min(full - 100).max(0);
                    s.service_credit -= applied;
                    s.credits = upgrades;
                    self.period_paid(full - applied);
                }
            }
            Op::Lapse { of } => {
                self.subs.get_mut(of).expect("applicable").end();
            }
            Op::SlaBreach { of } => {
                let s = self.subs.get_mut(of).expect("applicable");
                if s.live() && s.enterprise {
                    s.service_credit += ENT_CREDIT;
                }
            }
            Op::Handover => {
                let earned = self.payable.insert(Payee::Project, 0).unwrap_or(0);
                *self.payable.entry(Payee::User(Actor::Owner)).or_default() += earned;
            }
            Op::Payouts => {
                for p in self.onboarded.clone() {
                    if let Some(v) = self.payable.get_mut(&p) {
                        if *v > 0 {
                            *v = 0;
                        }
                    }
                }
            }
            _ => {}
        }
    }

    /// A subscription period was charged `amount`: the project and the
    /// platform earn.
    fn period_paid(&mut self, amount: i64) {
        let (project, platform) = period_split(amount);
        *self.payable.entry(Payee::Project).or_default() += project;
        *self.payable.entry(Payee::Platform).or_default() += platform;
    }

    fn apply_hook(&mut self, h: &Hook) {
        match *h {
            Hook::Succeeded { bounty } => {
                if matches!(self.bounties[bounty].status, BSt::Pending | BSt::Failed) {
                    self.arrived(bounty);
                }
            }
            Hook::Failed { bounty } => {
                let b = &mut self.bounties[bounty];
                if b.status == BSt::Pending {
                    b.status = BSt::Failed;
                    if let Some(bid) = b.bid {
                        // Open again, unless the bidder made a newer offer
                        // on the ticket meanwhile (that one stands).
                        let (t, helper) = (self.bids[bid].ticket, self.bids[bid].helper);
                        let newer = self.bids.iter().any(|o| {
                            o.ticket == t && o.helper == helper && o.status == BidSt::Open
                        });
                        self.bids[bid].status = if newer { BidSt::Closed } else { BidSt::Open };
                    }
                }
            }
            Hook::Refunded { bounty, part } => {
                let b = &mut self.bounties[bounty];
                if b.status != BSt::Funded {
                    return;
                }
                let total = match part {
                    None => b.amount,
                    Some(p) => (b.refunded + p).min(b.amount),
                };
                let delta = total - b.refunded;
                b.refunded = total;
                b.held -= delta;
                if total == b.amount {
                    b.status = BSt::Refunded;
                    b.held = 0;
                }
            }
            Hook::DisputeCreated { bounty } => {
                let b = &mut self.bounties[bounty];
                b.dispute = Some(b.held);
            }
            Hook::DisputeClosed { bounty, won } => {
                let b = &mut self.bounties[bounty];
                if let Some(amount) = b.dispute.take() {
                    if !won {
                        b.held -= amount;
                        if b.held == 0 {
                            b.status = BSt::DisputeLost;
                        }
                    }
                }
            }
            Hook::Redeliver { .. } => {}
        }
    }
}

// ---------------------------------------------------------------------------
// Generating operations

/// Picks an actor: usually `likely`, sometimes anyone (who may not act).
fn actor_or(rng: &mut StdRng, likely: Option<Actor>) -> Actor {
    match likely {
        Some(a) if rng.gen_bool(0.7) => a,
        _ => ACTORS[rng.gen_range(0..ACTORS.len())],
    }
}

/// A random bounty index, preferring ones that satisfy `pred`.
fn pick_bounty(rng: &mut StdRng, m: &Model, pred: impl Fn(&BountyM) -> bool) -> usize {
    let good: Vec<usize> = (0..m.bounties.len())
        .filter(|i| pred(&m.bounties[*i]))
        .collect();
    if !good.is_empty() && rng.gen_bool(0.9) {
        good[rng.gen_range(0..good.len())]
    } else {
        rng.gen_range(0..m.bounties.len().max(1))
    }
}

/// The next operation, chosen with an eye on the model's state so that
/// sequences get deep (funded, resolved, accepted, reopened, …).
pub fn generate(rng: &mut StdRng, m: &Model) -> Op {
    // Ticket 0 gets most of the attention, so that its life gets long.
    let ticket = match rng.gen_range(0..10) {
        0..=4 => 0,
        5..=7 => 1,
        _ => 2,
    };
    let t = &m.tickets[ticket];
    let amounts = [100, 999, 2_000, 10_000];
    let amount = amounts[rng.gen_range(0..amounts.len())];
    let helper = HELPERS[rng.gen_range(0..HELPERS.len())];
    if rng.gen_bool(0.4) {
        if let Some(op) = progress(rng, m, ticket, amount, helper) {
            return op;
        }
    }
    let mut weights: Vec<(u32, u8)> = vec![
        (12, 0), // fund
        (5, 1),  // bid
        (5, 2),  // accept bid
        (10, 3), // claim
        (3, 4),  // unclaim
        (4, 5),  // transfer
        (10, 6), // resolve
        (9, 7),  // accept
        (6, 8),  // reopen
        (4, 9),  // close
        (2, 10), // cancel
        (2, 11), // revoke
        (2, 12), // reinstate
        (3, 14), // auto-accept
        (2, 15), // auto-close
        (3, 16), // expiry
        (2, 17), // payouts
        (1, 24), // handover and reversal
    ];
    if m.webhook_mode {
        weights.push((16, 13));
    } else {
        weights.extend([
            (3, 18), // subscribe
            (2, 19), // cancel a subscription
            (3, 20), // renewal
            (2, 21), // lapse
            (4, 22), // upgrade
            (3, 23), // SLA breach
        ]);
    }
    let total: u32 = weights.iter().map(|w| w.0).sum();
    let mut roll = rng.gen_range(0..total);
    let mut kind = 0;
    for (w, k) in &weights {
        if roll < *w {
            kind = *k;
            break;
        }
        roll -= w;
    }
    let claimant_or_helper = t.claimant.or(Some(helper));
    match kind {
        0 => {
            let backer = if rng.gen_bool(0.5) {
                t.requester
            } else {
                Actor::Backer
            };
            Op::Fund {
                actor: actor_or(rng, Some(backer)),
                ticket,
                amount,
                expires: rng.gen_bool(0.3),
            }
        }
        1 => Op::Bid {
            actor: actor_or(rng, Some(helper)),
            ticket,
            amount,
        },
        2 => {
            let bid = if m.bids.is_empty() {
                0
            } else {
                rng.gen_range(0..m.bids.len())
            };
            let likely = m.bids.get(bid).map(|b| m.tickets[b.ticket].requester);
            Op::AcceptBid {
                actor: actor_or(rng, likely),
                bid,
            }
        }
        3 => Op::Claim {
            actor: actor_or(rng, Some(helper)),
            ticket,
        },
        4 => Op::Unclaim {
            actor: actor_or(rng, claimant_or_helper),
            ticket,
        },
        5 => Op::Transfer {
            actor: actor_or(rng, claimant_or_helper),
            ticket,
            to: actor_or(rng, Some(helper)),
        },
        6 => Op::Resolve {
            actor: actor_or(rng, claimant_or_helper),
            ticket,
        },
        7 => Op::Accept {
            actor: actor_or(rng, Some(t.requester)),
            ticket,
        },
        8 => Op::Reopen {
            actor: actor_or(rng, Some(t.requester)),
            ticket,
        },
        9 => Op::Close {
            actor: actor_or(rng, Some(t.requester)),
            ticket,
        },
        10 => Op::Cancel {
            actor: actor_or(rng, Some(t.requester)),
            ticket,
        },
        11 => Op::Revoke {
            actor: actor_or(rng, Some(Actor::Owner)),
            helper,
        },
        12 => Op::Reinstate { helper },
        13 => {
            let hook = match rng.gen_range(0..10) {
                0..=2 => Hook::Succeeded {
                    bounty: pick_bounty(rng, m, |b| matches!(b.status, BSt::Pending | BSt::Failed)),
                },
                3 => Hook::Failed {
                    bounty: pick_bounty(rng, m, |b| b.status == BSt::Pending),
                },
                4 | 5 => Hook::Refunded {
                    bounty: pick_bounty(rng, m, |b| b.status == BSt::Funded),
                    part: rng.gen_bool(0.6).then(|| [1, 50, 100][rng.gen_range(0..3)]),
                },
                6 => Hook::DisputeCreated {
                    bounty: pick_bounty(rng, m, |b| b.status == BSt::Funded),
                },
                7 | 8 => Hook::DisputeClosed {
                    bounty: pick_bounty(rng, m, |b| b.dispute.is_some()),
                    won: rng.gen_bool(0.5),
                },
                _ => Hook::Redeliver {
                    n: rng.gen_range(0..m.events.len().max(1)),
                },
            };
            Op::Webhook(hook)
        }
        14 => Op::AutoAccept { ticket },
        15 => Op::AutoClose { ticket },
        16 => Op::Expire {
            bounty: pick_bounty(rng, m, |b| b.has_expiry && b.status == BSt::Funded),
        },
        17 => Op::Payouts,
        24 => Op::Handover,
        18 => {
            let likely = REQUESTERS[rng.gen_range(0..TICKETS)];
            Op::Subscribe {
                actor: actor_or(rng, Some(likely)),
                enterprise: rng.gen_bool(0.4),
            }
        }
        23 => Op::SlaBreach {
            of: subscriber(rng, m),
        },
        19 => {
            let of = subscriber(rng, m);
            Op::CancelSub {
                actor: actor_or(rng, Some(of)),
                of,
            }
        }
        20 => Op::Renew {
            of: subscriber(rng, m),
            declined: rng.gen_bool(0.3),
        },
        21 => Op::Lapse {
            of: subscriber(rng, m),
        },
        _ => Op::Upgrade {
            actor: actor_or(rng, Some(t.requester)),
            ticket,
        },
    }
}

/// Someone who subscribed, when anyone did.
fn subscriber(rng: &mut StdRng, m: &Model) -> Actor {
    let who: Vec<Actor> = m.subs.keys().copied().collect();
    if who.is_empty() {
        Actor::Requester
    } else {
        who[rng.gen_range(0..who.len())]
    }
}

/// An operation that moves the ticket along its usual life, by the actor
/// who would normally do it.
fn progress(rng: &mut StdRng, m: &Model, ticket: usize, amount: i64, helper: Actor) -> Option<Op> {
    let t = &m.tickets[ticket];
    let requester = t.requester;
    if m.webhook_mode && rng.gen_bool(0.5) {
        let pending = m
            .bounties
            .iter()
            .position(|b| b.ticket == ticket && b.status == BSt::Pending);
        if let Some(bounty) = pending {
            return Some(Op::Webhook(Hook::Succeeded { bounty }));
        }
    }
    let helper = if helper == requester {
        Actor::H1
    } else {
        helper
    };
    let op = match (t.status, rng.gen_range(0..4)) {
        (St::Open | St::Claimed, 0) => Op::Fund {
            actor: Actor::Backer,
            ticket,
            amount,
            expires: rng.gen_bool(0.3),
        },
        (St::Open, 1) => {
            let open = m
                .bids
                .iter()
                .position(|b| b.ticket == ticket && b.status == BidSt::Open);
            match open {
                Some(bid) => Op::AcceptBid {
                    actor: requester,
                    bid,
                },
                None => Op::Bid {
                    actor: helper,
                    ticket,
                    amount,
                },
            }
        }
        (St::Open, _) => Op::Claim {
            actor: helper,
            ticket,
        },
        (St::Claimed, _) => Op::Resolve {
            actor: t.claimant?,
            ticket,
        },
        (St::Resolved, 0) => Op::Reopen {
            actor: requester,
            ticket,
        },
        (St::Resolved, 1) => Op::AutoAccept { ticket },
        (St::Resolved, _) => Op::Accept {
            actor: requester,
            ticket,
        },
        (St::Closed | St::AutoClosed, 0 | 1) => Op::Reopen {
            actor: requester,
            ticket,
        },
        _ => return None,
    };
    Some(op)
}

// ---------------------------------------------------------------------------
// The harness: one application, cases run against it

/// An application with its users, shared by several cases.
struct Harness {
    app: TestApp,
    users: HashMap<Actor, User>,
    webhook_mode: bool,
    cases: u64,
    event_seq: u64,
}

/// One executed step, for the report.
#[derive(Clone, Debug)]
struct StepLog {
    op: Op,
    outcome: String,
}

/// A case that broke an invariant.
#[derive(Clone, Debug)]
struct Failure {
    /// Which invariant (no ids or amounts: used to group failures).
    kind: String,
    /// The details.
    detail: String,
    /// The operations run, the last one being the one after which it broke.
    steps: Vec<StepLog>,
}

/// Per-case server handles.
struct CaseCtx {
    slug: String,
    project_id: i64,
    plan_id: i64,
    enterprise_plan_id: i64,
}

impl Harness {
    async fn new(webhook_mode: bool) -> Harness {
        let mut builder = TestApp::builder().env("GUILDHALL_PAYOUT_MINIMUM", "1");
        if webhook_mode {
            builder = builder.env("GUILDHALL_STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET);
        }
        let mut app = builder.build();
        if webhook_mode {
            app.state.gateway = Arc::new(AwaitingWebhook);
        }
        // Users are made directly with an issued access token: registering
        // through the API would hash passwords, which dominates a case's time.
        let mut users = HashMap::new();
        for a in ACTORS {
            let name = format!("{a:?}").to_lowercase();
            let email = format!("{name}@example.com");
            let u = guildhall::domain::users::create(&mut app.conn(), &email, &name, None, false)
                .expect("user");
            let access = app.state.tokens.issue_access(u.id).expect("token");
            users.insert(
                a,
                User {
                    id: u.id,
                    email,
                    access,
                    refresh: String::new(),
                },
            );
        }
        // H1 gets a ready payout account.
        app.post(
            "/api/v1/me/payouts/onboarding",
            json!({}),
            Some(&users[&Actor::H1].access),
        )
        .await
        .expect(200);
        Harness {
            app,
            users,
            webhook_mode,
            cases: 0,
            event_seq: 0,
        }
    }

    fn user(&self, a: Actor) -> &User {
        &self.users[&a]
    }

    fn token(&self, a: Actor) -> Option<&str> {
        Some(self.users[&a].access.as_str())
    }

    /// A fresh project and tickets for one case; the model starts from the
    /// balances the shared accounts hold now.
    async fn setup_case(&mut self) -> (CaseCtx, Model) {
        self.cases += 1;
        let slug = format!("model{}", self.cases);
        let owner = self.user(Actor::Owner).clone();
        let project = self.app.project(&owner, &slug).await;
        let project_id = project["id"].as_i64().expect("project id");
        // Live-gateway runs take real money only for verified projects.
        self.app.verify_project(&slug);
        self.app
            .patch(
                &format!("/api/v1/projects/{slug}"),
                json!({"acceptance_days": ACCEPTANCE_DAYS, "auto_close_days": AUTO_CLOSE_DAYS}),
                Some(&owner.access),
            )
            .await
            .expect(200);
        for h in HELPERS {
            let u = self.user(h).clone();
            self.app.approved_helper(&owner, &u, &slug).await;
        }
        self.app
            .post(
                &format!("/api/v1/projects/{slug}/payouts/onboarding"),
                json!({}),
                Some(&owner.access),
            )
            .await
            .expect(200);
        let mut tickets_m = Vec::new();
        for (i, r) in REQUESTERS.iter().enumerate() {
            let u = self.user(*r).clone();
            let id = self
                .app
                .open_ticket(&u, &slug, &format!("Model ticket {i}"), "public")
                .await;
            tickets_m.push(TicketM {
                id,
                requester: *r,
                status: St::Open,
                claimant: None,
                resolver: None,
                accept_due: false,
                stale: false,
                upgraded: false,
            });
        }
        let plan_id = self
            .app
            .post(
                &format!("/api/v1/projects/{slug}/plans"),
                json!({"kind": "monthly", "name": "Team", "price": {"amount": PLAN_PRICE, "currency": "usd"},
                       "included_upgrades": PLAN_UPGRADES,
                       "upgrade_price": {"amount": PLAN_UPGRADE_PRICE, "currency": "usd"}}),
                Some(&owner.access),
            )
            .await
            .expect(201)
            .body["id"]
            .as_i64()
            .expect("plan id");
        let enterprise_plan_id = self
            .app
            .post(
                &format!("/api/v1/projects/{slug}/plans"),
                json!({"kind": "enterprise", "name": "Enterprise",
                       "price": {"amount": ENT_PRICE, "currency": "usd"},
                       "term_months": ENT_TERM, "response_hours": 1, "service_credit_pct": 10}),
                Some(&owner.access),
            )
            .await
            .expect(201)
            .body["id"]
            .as_i64()
            .expect("plan id");
        let ctx = CaseCtx {
            slug,
            project_id,
            plan_id,
            enterprise_plan_id,
        };
        let mut model = Model {
            webhook_mode: self.webhook_mode,
            tickets: tickets_m,
            bounties: Vec::new(),
            bids: Vec::new(),
            approved: HELPERS.iter().map(|h| (*h, true)).collect(),
            payable: BTreeMap::new(),
            onboarded: vec![Payee::User(Actor::H1), Payee::Project],
            events: Vec::new(),
            subs: BTreeMap::new(),
        };
        for p in self.payees() {
            let v = self.payee_available(&ctx, p);
            model.payable.insert(p, v);
        }
        (ctx, model)
    }

    fn payees(&self) -> Vec<Payee> {
        let mut v: Vec<Payee> = HELPERS.iter().map(|h| Payee::User(*h)).collect();
        v.push(Payee::User(Actor::Owner));
        v.push(Payee::Project);
        v.push(Payee::Platform);
        v
    }

    /// A ledger account, if it exists (read only: never created here).
    fn account(&self, kind: AccountKind, owner: Option<i64>) -> Option<Account> {
        let mut conn = self.app.conn();
        let mut q = la::table
            .filter(la::kind.eq(kind.as_str()))
            .filter(la::currency.eq("usd"))
            .select(Account::as_select())
            .into_boxed();
        q = match owner {
            Some(o) => q.filter(la::owner_id.eq(o)),
            None => q.filter(la::owner_id.is_null()),
        };
        q.first(&mut *conn).optional().expect("ledger account")
    }

    fn payee_available(&self, ctx: &CaseCtx, p: Payee) -> i64 {
        let acct = match p {
            Payee::User(a) => self.account(AccountKind::UserPayable, Some(self.user(a).id)),
            Payee::Project => self.account(AccountKind::ProjectRevenue, Some(ctx.project_id)),
            Payee::Platform => self.account(AccountKind::PlatformRevenue, None),
        };
        acct.map(|a| a.available()).unwrap_or(0)
    }

    /// Signs and delivers one Stripe event; returns the status.
    async fn deliver(&self, event: &Value) -> (u16, String) {
        let raw = serde_json::to_vec(event).expect("event json");
        let t = chrono::Utc::now().timestamp();
        let sig = sign(WEBHOOK_SECRET.as_bytes(), t, &raw);
        let req = TestRequest::post()
            .uri("/api/v1/webhooks/stripe")
            .insert_header(("stripe-signature", format!("t={t},v1={sig}")))
            .insert_header(("content-type", "application/json"))
            .set_payload(raw);
        let svc =
            actix_web::test::init_service(guildhall::app::build(self.app.state.clone())).await;
        let r = self.app.send(&svc, req).await;
        (r.status.as_u16(), r.text)
    }

    /// Builds the event a hook stands for, from the model's view of its bounty.
    fn event(&mut self, m: &Model, h: &Hook) -> Value {
        if let Hook::Redeliver { n } = h {
            return m.events[*n].clone();
        }
        self.event_seq += 1;
        let evt = format!("evt_model_{}_{}", self.cases, self.event_seq);
        let i = match h {
            Hook::Succeeded { bounty }
            | Hook::Failed { bounty }
            | Hook::Refunded { bounty, .. }
            | Hook::DisputeCreated { bounty }
            | Hook::DisputeClosed { bounty, .. } => *bounty,
            Hook::Redeliver { .. } => 0,
        };
        let b = &m.bounties[i];
        let pi = b.payment_id.clone().unwrap_or_default();
        let charge = format!("ch_{pi}");
        let (kind, object) = match h {
            Hook::Succeeded { .. } => (
                "payment_intent.succeeded",
                json!({"id": pi, "object": "payment_intent", "amount": b.amount,
                       "amount_received": b.amount, "currency": "usd", "status": "succeeded",
                       "latest_charge": charge, "metadata": {"bounty_id": b.id.to_string()}}),
            ),
            Hook::Failed { .. } => (
                "payment_intent.payment_failed",
                json!({"id": pi, "object": "payment_intent", "amount": b.amount,
                       "amount_received": 0, "currency": "usd", "status": "requires_payment_method",
                       "last_payment_error": {"code": "card_declined", "message": "Your card was declined."},
                       "metadata": {"bounty_id": b.id.to_string()}}),
            ),
            Hook::Refunded { part, .. } => {
                let total = match part {
                    None => b.amount,
                    Some(p) => (b.refunded + p).min(b.amount),
                };
                let total = if b.status == BSt::Refunded {
                    b.amount
                } else {
                    total
                };
                (
                    "charge.refunded",
                    json!({"id": charge, "object": "charge", "amount": b.amount,
                    "amount_captured": b.amount, "amount_refunded": total,
                    "refunded": total == b.amount, "currency": "usd", "status": "succeeded",
                    "payment_intent": pi,
                    "refunds": {"object": "list", "data": [
                        {"id": format!("re_{evt}"), "object": "refund", "amount": (total - b.refunded).max(0),
                         "charge": charge, "payment_intent": pi, "currency": "usd", "status": "succeeded"}
                    ]}}),
                )
            }
            Hook::DisputeCreated { .. } => (
                "charge.dispute.created",
                json!({"id": format!("dp_{pi}"), "object": "dispute", "amount": b.held,
                       "charge": charge, "payment_intent": pi, "currency": "usd",
                       "reason": "fraudulent", "status": "needs_response"}),
            ),
            Hook::DisputeClosed { won, .. } => (
                "charge.dispute.closed",
                json!({"id": format!("dp_{pi}"), "object": "dispute", "amount": b.dispute.unwrap_or(0),
                       "charge": charge, "payment_intent": pi, "currency": "usd",
                       "reason": "fraudulent", "status": if *won { "won" } else { "lost" }}),
            ),
            Hook::Redeliver { .. } => unreachable!("handled above"),
        };
        json!({"id": evt, "object": "event", "api_version": "2024-06-20", "type": kind,
               "created": chrono::Utc::now().timestamp(), "livemode": false,
               "pending_webhooks": 1, "data": {"object": object}})
    }

    /// Which tickets the time-driven jobs should act on, from the
    /// timestamps (the model predicts money and statuses, not which
    /// operations count as activity).
    fn read_due(&self, m: &mut Model) -> Result<(), String> {
        let now = chrono::Utc::now().naive_utc();
        for t in m.tickets.iter_mut() {
            let (resolved_at, last_activity): (
                Option<chrono::NaiveDateTime>,
                chrono::NaiveDateTime,
            ) = tickets::table
                .find(t.id)
                .select((tickets::resolved_at, tickets::last_activity_at))
                .first(&mut *self.app.conn())
                .map_err(|e| format!("read timestamps: {e}"))?;
            t.accept_due =
                resolved_at.is_some_and(|r| r <= now - chrono::Duration::days(ACCEPTANCE_DAYS));
            t.stale = last_activity <= now - chrono::Duration::days(AUTO_CLOSE_DAYS);
        }
        Ok(())
    }

    /// Runs the general job runner until nothing is due.
    fn run_general_jobs(&self) -> Result<(), String> {
        let runner = guildhall::jobs::runner(self.app.pool.clone(), &self.app.state.config)
            .map_err(|e| format!("job runner: {e:#}"))?;
        runner
            .run_pending()
            .map(|_| ())
            .map_err(|e| format!("running jobs: {e:#}"))
    }

    fn enqueue<J: guildhall_jobs::BackgroundJob>(&self, job: J) -> Result<(), String> {
        job.enqueue(&mut self.app.conn())
            .map(|_| ())
            .map_err(|e| format!("enqueue: {e}"))
    }

    /// Sends `op`; returns the status and the response body.
    async fn send(
        &mut self,
        ctx: &CaseCtx,
        m: &mut Model,
        op: &Op,
    ) -> Result<(u16, Value), String> {
        let tid = |t: &usize| m.tickets[*t].id;
        let post = |path: String, body: Value, actor: Actor| (path, body, actor);
        let req = match op {
            Op::Fund {
                actor,
                ticket,
                amount,
                expires,
            } => {
                let mut body = json!({"amount": amount, "currency": "usd"});
                if *expires {
                    body["expires_in_days"] = json!(3);
                }
                post(
                    format!("/api/v1/tickets/{}/bounties", tid(ticket)),
                    body,
                    *actor,
                )
            }
            Op::Bid {
                actor,
                ticket,
                amount,
            } => post(
                format!("/api/v1/tickets/{}/bids", tid(ticket)),
                json!({"amount": amount, "currency": "usd", "eta_hours": 24, "message": "model bid"}),
                *actor,
            ),
            Op::AcceptBid { actor, bid } => post(
                format!("/api/v1/bids/{}/accept", m.bids[*bid].id),
                json!({}),
                *actor,
            ),
            Op::Claim { actor, ticket } => post(
                format!("/api/v1/tickets/{}/claim", tid(ticket)),
                json!({}),
                *actor,
            ),
            Op::Unclaim { actor, ticket } => post(
                format!("/api/v1/tickets/{}/unclaim", tid(ticket)),
                json!({}),
                *actor,
            ),
            Op::Transfer { actor, ticket, to } => post(
                format!("/api/v1/tickets/{}/transfer", tid(ticket)),
                json!({"to_user_id": self.user(*to).id}),
                *actor,
            ),
            Op::Resolve { actor, ticket } => post(
                format!("/api/v1/tickets/{}/resolve", tid(ticket)),
                json!({}),
                *actor,
            ),
            Op::Accept { actor, ticket } => post(
                format!("/api/v1/tickets/{}/accept", tid(ticket)),
                json!({}),
                *actor,
            ),
            Op::Reopen { actor, ticket } => post(
                format!("/api/v1/tickets/{}/reopen", tid(ticket)),
                json!({}),
                *actor,
            ),
            Op::Close { actor, ticket } => post(
                format!("/api/v1/tickets/{}/close", tid(ticket)),
                json!({}),
                *actor,
            ),
            Op::Cancel { actor, ticket } => post(
                format!("/api/v1/tickets/{}/cancel", tid(ticket)),
                json!({}),
                *actor,
            ),
            Op::Revoke { actor, helper } => post(
                format!(
                    "/api/v1/projects/{}/helpers/{}/revoke",
                    ctx.slug,
                    self.user(*helper).id
                ),
                json!({}),
                *actor,
            ),
            Op::Reinstate { helper } => post(
                format!(
                    "/api/v1/projects/{}/helpers/{}/approve",
                    ctx.slug,
                    self.user(*helper).id
                ),
                json!({}),
                Actor::Owner,
            ),
            Op::Webhook(h) => {
                let event = self.event(m, h);
                let (status, text) = self.deliver(&event).await;
                if !matches!(h, Hook::Redeliver { .. }) {
                    m.events.push(event);
                }
                return Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)));
            }
            Op::AutoAccept { ticket } => {
                let old =
                    chrono::Utc::now().naive_utc() - chrono::Duration::days(ACCEPTANCE_DAYS + 1);
                diesel::update(
                    tickets::table
                        .find(tid(ticket))
                        .filter(tickets::resolved_at.is_not_null()),
                )
                .set(tickets::resolved_at.eq(Some(old)))
                .execute(&mut *self.app.conn())
                .map_err(|e| format!("backdate: {e}"))?;
                self.read_due(m)?;
                self.enqueue(guildhall::jobs::AutoAcceptResolutions)?;
                self.run_general_jobs()?;
                return Ok((200, Value::Null));
            }
            Op::AutoClose { ticket } => {
                let old =
                    chrono::Utc::now().naive_utc() - chrono::Duration::days(AUTO_CLOSE_DAYS + 1);
                diesel::update(tickets::table.find(tid(ticket)))
                    .set(tickets::last_activity_at.eq(old))
                    .execute(&mut *self.app.conn())
                    .map_err(|e| format!("backdate: {e}"))?;
                self.read_due(m)?;
                self.enqueue(guildhall::jobs::AutoCloseTickets)?;
                self.run_general_jobs()?;
                return Ok((200, Value::Null));
            }
            Op::Expire { bounty } => {
                let past = chrono::Utc::now().naive_utc() - chrono::Duration::hours(1);
                diesel::update(bounties::table.find(m.bounties[*bounty].id))
                    .set(bounties::expires_at.eq(Some(past)))
                    .execute(&mut *self.app.conn())
                    .map_err(|e| format!("backdate: {e}"))?;
                m.bounties[*bounty].expired = true;
                self.enqueue(guildhall::jobs::ExpireBounties)?;
                self.run_general_jobs()?;
                return Ok((200, Value::Null));
            }
            Op::Subscribe { actor, enterprise } => post(
                format!("/api/v1/projects/{}/subscriptions", ctx.slug),
                json!({"plan_id": if *enterprise { ctx.enterprise_plan_id } else { ctx.plan_id },
                       "context": "professional"}),
                *actor,
            ),
            Op::SlaBreach { of } => {
                use guildhall::db::schema::sla_clocks as sc;
                let u = self.user(*of).clone();
                let id = self
                    .app
                    .open_ticket(&u, &ctx.slug, "Waits past its guarantee", "public")
                    .await;
                let sweep = |h: &Self| {
                    guildhall::domain::sla::sweep(&mut h.app.conn())
                        .map(|_| ())
                        .map_err(|e| format!("sla sweep: {e}"))
                };
                sweep(self)?;
                let past = chrono::Utc::now().naive_utc() - chrono::Duration::minutes(1);
                diesel::update(sc::table.filter(sc::ticket_id.eq(id)))
                    .set((sc::due_at.eq(past), sc::warn_at.eq(past)))
                    .execute(&mut *self.app.conn())
                    .map_err(|e| format!("backdate: {e}"))?;
                sweep(self)?;
                return Ok((200, Value::Null));
            }
            Op::CancelSub { actor, of } => post(
                format!("/api/v1/subscriptions/{}/cancel", m.subs[of].id),
                json!({}),
                *actor,
            ),
            Op::Renew { of, declined } => {
                use guildhall::db::schema::subscriptions as su;
                let past = chrono::Utc::now().naive_utc() - chrono::Duration::minutes(1);
                diesel::update(su::table.find(m.subs[of].id))
                    .set(su::period_end.eq(Some(past)))
                    .execute(&mut *self.app.conn())
                    .map_err(|e| format!("backdate: {e}"))?;
                let done = if *declined {
                    guildhall::domain::plans::renew_due(&self.app.pool, &crate::util::Declining)
                } else {
                    guildhall::domain::plans::renew_due(
                        &self.app.pool,
                        &guildhall::payments::Sandbox,
                    )
                };
                done.map_err(|e| format!("renewal job: {e}"))?;
                return Ok((200, Value::Null));
            }
            Op::Lapse { of } => {
                use guildhall::db::schema::subscriptions as su;
                let past = chrono::Utc::now().naive_utc() - chrono::Duration::minutes(1);
                diesel::update(su::table.find(m.subs[of].id))
                    .set(su::grace_until.eq(Some(past)))
                    .execute(&mut *self.app.conn())
                    .map_err(|e| format!("backdate: {e}"))?;
                guildhall::domain::plans::renew_due(&self.app.pool, &guildhall::payments::Sandbox)
                    .map_err(|e| format!("renewal job: {e}"))?;
                return Ok((200, Value::Null));
            }
            Op::Upgrade { actor, ticket } => post(
                format!("/api/v1/tickets/{}/upgrade", tid(ticket)),
                json!({}),
                *actor,
            ),
            Op::Handover => {
                let (owner, heir) = (Actor::Owner, Actor::H1);
                let r = self
                    .app
                    .post(
                        &format!("/api/v1/projects/{}/handovers", ctx.slug),
                        json!({"to_user_id": self.user(heir).id, "effective_at": chrono::Utc::now().to_rfc3339()}),
                        self.token(owner),
                    )
                    .await;
                if r.status != 201 {
                    return Err(format!("handover proposal: {} {}", r.status, r.body));
                }
                let id = r.body["id"].as_i64().unwrap_or_default();
                let r = self
                    .app
                    .post(
                        &format!("/api/v1/handovers/{id}/accept"),
                        json!({}),
                        self.token(heir),
                    )
                    .await;
                if r.status != 200 {
                    return Err(format!("handover acceptance: {} {}", r.status, r.body));
                }
                let repo = guildhall::integrations::github::UserRepository {
                    id: 1,
                    node_id: "R_1".into(),
                    full_name: format!("x/{}", ctx.slug),
                    admin: true,
                    maintain: false,
                    private: false,
                    license: Some("MIT".into()),
                };
                let gateway = self.app.state.gateway.clone();
                {
                    let mut conn = self.app.conn();
                    guildhall::domain::handovers::record_repo_proof(
                        &mut conn,
                        id,
                        self.user(heir).id,
                        &repo,
                    )
                    .map_err(|e| format!("repository proof: {e}"))?;
                    guildhall::domain::handovers::apply_due(&mut conn, gateway.name())
                        .map_err(|e| format!("handover job: {e}"))?;
                }
                let r = self
                    .app
                    .post(
                        &format!("/api/v1/handovers/{id}/reverse"),
                        json!({}),
                        self.token(owner),
                    )
                    .await;
                if r.status != 200 || r.body["status"] != "reversed" {
                    return Err(format!("handover reversal: {} {}", r.status, r.body));
                }
                return Ok((200, Value::Null));
            }
            Op::Payouts => {
                let gateway = self.app.state.gateway.clone();
                guildhall::domain::payouts::run(&self.app.pool, gateway.as_ref(), 1)
                    .map_err(|e| format!("payout run failed: {e}"))?;
                return Ok((200, Value::Null));
            }
        };
        let (path, body, actor) = req;
        let r = self.app.post(&path, body, self.token(actor)).await;
        Ok((r.status.as_u16(), r.body))
    }

    /// Records what a successful op created (bounties, bids) in the model.
    fn record_created(
        &self,
        m: &mut Model,
        op: &Op,
        status: u16,
        body: &Value,
    ) -> Result<(), String> {
        if !(200..300).contains(&status) {
            return Ok(());
        }
        match op {
            Op::Fund {
                ticket,
                amount,
                expires,
                ..
            } => {
                let id = body["bounty"]["id"]
                    .as_i64()
                    .ok_or_else(|| format!("no bounty id in {body}"))?;
                let payment_id = self.payment_id(id)?;
                m.bounties.push(BountyM {
                    id,
                    ticket: *ticket,
                    amount: *amount,
                    status: BSt::Pending,
                    held: 0,
                    refunded: 0,
                    dispute: None,
                    has_expiry: *expires,
                    expired: false,
                    bid: None,
                    payment_id: if m.webhook_mode { payment_id } else { None },
                });
                if !m.webhook_mode {
                    let i = m.bounties.len() - 1;
                    m.arrived(i);
                }
            }
            Op::Subscribe { actor, enterprise } => {
                let id = body["subscription"]["id"]
                    .as_i64()
                    .ok_or_else(|| format!("no subscription id in {body}"))?;
                let sub = SubM {
                    id,
                    status: SubSt::Active,
                    credits: 0,
                    cancel_at_end: false,
                    enterprise: *enterprise,
                    service_credit: 0,
                };
                let (full, upgrades) = sub.terms();
                m.subs.insert(
                    *actor,
                    SubM {
                        credits: upgrades,
                        ..sub
                    },
                );
                m.period_paid(full);
            }
            Op::Upgrade { actor, ticket } => {
                let live = m.subs.get(actor).filter(|s| s.live()).cloned();
                let included = live.as_ref().is_some_and(|s| s.credits > 0);
                let via = body["via"].as_str().unwrap_or("?");
                if via != if included { "included" } else { "paid" } {
                    return Err(format!(
                        "upgrade went {via}, the model expected included: {included}"
                    ));
                }
                if included {
                    if let Some(s) = m.subs.get_mut(actor) {
                        s.credits -= 1;
                    }
                    m.tickets[*ticket].upgraded = true;
                } else {
                    // The monthly plan's upgrade price; the enterprise plan
                    // (none set) and pay as you go use the project's.
                    let amount = if live.as_ref().is_some_and(|s| !s.enterprise) {
                        PLAN_UPGRADE_PRICE
                    } else {
                        PAYG_UPGRADE_PRICE
                    };
                    let id = body["bounty"]["id"]
                        .as_i64()
                        .ok_or_else(|| format!("no bounty id in {body}"))?;
                    if body["bounty"]["amount"]["amount"].as_i64() != Some(amount) {
                        return Err(format!("upgrade bounty {body}, expected {amount}"));
                    }
                    m.bounties.push(BountyM {
                        id,
                        ticket: *ticket,
                        amount,
                        status: BSt::Pending,
                        held: 0,
                        refunded: 0,
                        dispute: None,
                        has_expiry: false,
                        expired: false,
                        bid: None,
                        payment_id: None,
                    });
                    let i = m.bounties.len() - 1;
                    m.arrived(i);
                }
            }
            Op::Bid {
                actor,
                ticket,
                amount,
            } => {
                let id = body["id"]
                    .as_i64()
                    .ok_or_else(|| format!("no bid id in {body}"))?;
                m.bids.push(BidM {
                    id,
                    ticket: *ticket,
                    helper: *actor,
                    amount: *amount,
                    status: BidSt::Open,
                    uncertain: false,
                });
            }
            Op::AcceptBid { bid, .. } => {
                let b = &m.bids[*bid];
                let found: Vec<(i64, Option<String>)> = bounties::table
                    .filter(bounties::bid_id.eq(b.id))
                    .select((bounties::id, bounties::payment_id))
                    .order(bounties::id)
                    .load(&mut *self.app.conn())
                    .map_err(|e| e.to_string())?;
                let known: Vec<i64> = m.bounties.iter().map(|x| x.id).collect();
                let Some((id, payment_id)) = found.into_iter().find(|(id, _)| !known.contains(id))
                else {
                    return Err(format!("accepting bid {} created no bounty", b.id));
                };
                m.bounties.push(BountyM {
                    id,
                    ticket: b.ticket,
                    amount: b.amount,
                    status: BSt::Pending,
                    held: 0,
                    refunded: 0,
                    dispute: None,
                    has_expiry: false,
                    expired: false,
                    bid: Some(*bid),
                    payment_id: if m.webhook_mode { payment_id } else { None },
                });
                if !m.webhook_mode {
                    let i = m.bounties.len() - 1;
                    m.bounties[i].status = BSt::Funded;
                    m.bounties[i].held = m.bounties[i].amount;
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn payment_id(&self, bounty: i64) -> Result<Option<String>, String> {
        bounties::table
            .find(bounty)
            .select(bounties::payment_id)
            .first(&mut *self.app.conn())
            .map_err(|e| e.to_string())
    }

    /// Every invariant, after a step. Returns (kind, detail) of the first
    /// broken one.
    async fn check(
        &self,
        ctx: &CaseCtx,
        m: &Model,
        after: &str,
        ignore: &[String],
    ) -> Result<(), (String, String)> {
        let mut found: Option<(String, String)> = None;
        // Records the first broken invariant that is not ignored.
        macro_rules! bad {
            ($kind:expr, $detail:expr $(,)?) => {{
                let kind: &str = $kind;
                let full = format!("{kind} (after {after})");
                if found.is_none() && !ignore.iter().any(|i| full.contains(i.as_str())) {
                    found = Some((kind.to_owned(), $detail));
                }
            }};
        }
        // (a) the ledger's own invariants.
        let violations = guildhall::ledger::check(&mut self.app.conn()).map_err(|e| {
            (
                "ledger check".to_owned(),
                format!("ledger check errored: {e}"),
            )
        })?;
        if !violations.is_empty() {
            bad!("ledger check", format!("ledger check: {violations:?}"));
        }
        let owner = self.token(Actor::Owner);
        for (i, tm) in m.tickets.iter().enumerate() {
            let r = self
                .app
                .get(&format!("/api/v1/tickets/{}", tm.id), owner)
                .await;
            if r.status.as_u16() != 200 {
                bad!(
                    "ticket read",
                    format!("GET ticket {i}: {} {}", r.status, r.text)
                );
                continue;
            }
            let escrow = self
                .account(AccountKind::TicketEscrow, Some(tm.id))
                .map(|a| a.balance())
                .unwrap_or(0);
            let status = r.body["status"].as_str().unwrap_or("?");
            let paid = r.body["paid"]["amount"].as_i64().unwrap_or(i64::MIN);
            // (c) a terminal ticket holds nothing.
            if matches!(status, "closed" | "cancelled" | "auto_closed") && escrow != 0 {
                bad!(
                    "terminal ticket holds escrow",
                    format!("ticket {i} is {status} but its escrow holds {escrow}"),
                );
            }
            // (d) paid_amount is what the escrow holds.
            if paid != escrow {
                bad!(
                    "paid_amount differs from escrow",
                    format!("ticket {i}: paid_amount {paid}, escrow balance {escrow}"),
                );
            }
            // (b) the model agrees.
            if status != tm.status.as_str() {
                bad!(
                    "ticket status differs from the model",
                    format!("ticket {i}: server {status}, model {}", tm.status.as_str()),
                );
            }
            if escrow != m.escrow(i) {
                bad!(
                    "escrow differs from the model",
                    format!("ticket {i}: ledger escrow {escrow}, model {}", m.escrow(i)),
                );
            }
            let claimed_by = r.body["claimed_by"].as_i64();
            if matches!(tm.status, St::Claimed | St::Resolved)
                && claimed_by != tm.claimant.map(|a| self.user(a).id)
            {
                bad!(
                    "claimant differs from the model",
                    format!(
                        "ticket {i}: claimed_by {claimed_by:?}, model {:?}",
                        tm.claimant
                    ),
                );
            }
            if claimed_by.is_some() && claimed_by == Some(self.user(tm.requester).id) {
                bad!(
                    "requester holds own ticket",
                    format!("ticket {i} is claimed by its own requester"),
                );
            }
        }
        for p in self.payees() {
            let v = self.payee_available(ctx, p);
            let want = m.payable.get(&p).copied().unwrap_or(0);
            if v != want {
                bad!(
                    "payable differs from the model",
                    format!("{p:?}: ledger available {v}, model {want}"),
                );
            }
        }
        // The API's view of a helper's balance agrees with the ledger.
        let h1 = self
            .app
            .get("/api/v1/me/balance", self.token(Actor::H1))
            .await;
        let shown = h1.body["items"][0]["available"].as_i64().unwrap_or(0);
        let want = m.payable.get(&Payee::User(Actor::H1)).copied().unwrap_or(0);
        if shown != want {
            bad!(
                "GET /me/balance differs from the model",
                format!("H1 sees available {shown}, model {want}"),
            );
        }
        // Subscriptions: state and credits as the model says.
        for (who, sm) in &m.subs {
            let mut conn = self.app.conn();
            let row = guildhall::domain::plans::get_subscription(&mut conn, sm.id)
                .map_err(|e| ("subscription read".to_owned(), e.to_string()))?;
            let credits = guildhall::domain::plans::credits_left(&mut conn, &row)
                .map_err(|e| ("subscription read".to_owned(), e.to_string()))?
                .0;
            let status_ok = match sm.status {
                SubSt::Active => row.status == "active",
                SubSt::PastDue => row.status == "past_due",
                SubSt::Ended => matches!(row.status.as_str(), "cancelled" | "lapsed"),
            };
            if !status_ok || row.cancel_at_period_end != sm.cancel_at_end {
                bad!(
                    "subscription state differs from the model",
                    format!(
                        "{who:?}'s subscription: server {} (cancel at end: {}), model {sm:?}",
                        row.status, row.cancel_at_period_end
                    ),
                );
            }
            if credits != sm.credits {
                bad!(
                    "subscription credits differ from the model",
                    format!("{who:?}: {credits} upgrades left, model {}", sm.credits),
                );
            }
            let service = guildhall::domain::plans::service_credit_left(&mut conn, &row)
                .map_err(|e| ("subscription read".to_owned(), e.to_string()))?;
            if service != sm.service_credit {
                bad!(
                    "service credit differs from the model",
                    format!("{who:?}: {service} held, model {}", sm.service_credit),
                );
            }
        }
        for (i, tm) in m.tickets.iter().enumerate() {
            let upgraded: Option<chrono::NaiveDateTime> = tickets::table
                .find(tm.id)
                .select(tickets::upgraded_at)
                .first(&mut *self.app.conn())
                .map_err(|e| ("ticket read".to_owned(), e.to_string()))?;
            if upgraded.is_some() != tm.upgraded {
                bad!(
                    "upgrade differs from the model",
                    format!(
                        "ticket {i}: upgraded {}, model {}",
                        upgraded.is_some(),
                        tm.upgraded
                    ),
                );
            }
        }
        // Bounties: none unknown, each in the predicted state.
        let mut conn = self.app.conn();
        for (i, tm) in m.tickets.iter().enumerate() {
            let rows = guildhall::domain::money::bounties_of(&mut conn, tm.id)
                .map_err(|e| ("bounty read".to_owned(), e.to_string()))?;
            for row in rows {
                let Some(bm) = m.bounties.iter().find(|b| b.id == row.id) else {
                    if matches!(row.status.as_str(), "funded" | "released") {
                        bad!(
                            "unexpected bounty",
                            format!(
                                "ticket {i} has bounty {} ({}) the model does not know",
                                row.id, row.status
                            ),
                        );
                    }
                    continue;
                };
                let want = match bm.status {
                    BSt::Pending if !tm.status.terminal() => Some("pending_payment"),
                    BSt::Failed if !tm.status.terminal() => Some("failed"),
                    BSt::Funded => Some("funded"),
                    BSt::Released => Some("released"),
                    BSt::Refunded => Some("refunded"),
                    _ => None,
                };
                if let Some(want) = want {
                    if row.status != want {
                        bad!(
                            "bounty status differs from the model",
                            format!(
                                "bounty {} of ticket {i}: server {}, model {want}",
                                row.id, row.status
                            ),
                        );
                    }
                }
            }
        }
        found.map_or(Ok(()), Err)
    }
}

// ---------------------------------------------------------------------------
// Running cases

/// Runs one case: generated from `seed`, or the given operations (a replay
/// while shrinking). Returns the steps it ran, or the failure.
async fn run_case(
    h: &mut Harness,
    seed: u64,
    steps: usize,
    given: Option<&[Op]>,
    ignore: &[String],
) -> Result<Vec<StepLog>, Failure> {
    let mut rng = StdRng::seed_from_u64(seed);
    let (ctx, mut model) = h.setup_case().await;
    let mut log: Vec<StepLog> = Vec::new();
    let total = given.map_or(steps, <[Op]>::len);
    for n in 0..total {
        let op = match given {
            Some(ops) => ops[n].clone(),
            None => generate(&mut rng, &model),
        };
        if !model.applicable(&op) {
            log.push(StepLog {
                op,
                outcome: "skipped".into(),
            });
            continue;
        }
        let pred = model.predict(&op);
        let sent = h.send(&ctx, &mut model, &op).await;
        let fail =
            |log: &mut Vec<StepLog>, op: &Op, outcome: String, kind: String, detail: String| {
                log.push(StepLog {
                    op: op.clone(),
                    outcome,
                });
                Failure {
                    kind: format!("{kind} (after {})", op.name()),
                    detail,
                    steps: log.clone(),
                }
            };
        let (status, body) = match sent {
            Ok(x) => x,
            Err(e) => {
                return Err(fail(
                    &mut log,
                    &op,
                    "error".into(),
                    "harness or job error".into(),
                    e,
                ));
            }
        };
        let outcome = format!("{status} (predicted {pred})");
        if status >= 500 || !pred.admits(status) {
            let kind = if status >= 500 {
                "server error".to_owned()
            } else {
                format!("status {status} where {pred} was predicted")
            };
            let full = format!("{kind} (after {})", op.name());
            // An ignored mismatch: the model follows the server's decision.
            if status >= 500 || !ignore.iter().any(|i| full.contains(i.as_str())) {
                return Err(fail(&mut log, &op, outcome, kind, body.to_string()));
            }
        }
        model.apply(&op, status);
        if let Err(e) = h.record_created(&mut model, &op, status, &body) {
            return Err(fail(&mut log, &op, outcome, "bookkeeping".into(), e));
        }
        if let Err((kind, detail)) = h.check(&ctx, &model, op.name(), ignore).await {
            return Err(fail(&mut log, &op, outcome, kind, detail));
        }
        log.push(StepLog { op, outcome });
    }
    Ok(log)
}

/// Replaces a harness that ran its share of cases with a fresh one: the
/// scheduled jobs act on the whole database, so a case's leftovers must not
/// meet the next case.
async fn renew_if_used(h: &mut Harness) {
    if h.cases >= CASES_PER_APP {
        *h = Harness::new(h.webhook_mode).await;
    }
}

/// Greedily drops operations from a failing sequence while it still fails
/// the same way; returns the shortest failure found.
async fn shrink(
    h: &mut Harness,
    seed: u64,
    failure: Failure,
    budget: Duration,
    ignore: &[String],
) -> Failure {
    let start = Instant::now();
    let mut best = failure;
    let mut ops: Vec<Op> = best.steps.iter().map(|s| s.op.clone()).collect();
    let mut chunk = (ops.len() / 2).max(1);
    while chunk >= 1 && start.elapsed() < budget {
        let mut i = 0;
        let mut progress = false;
        while i < ops.len() && start.elapsed() < budget {
            // The last op is the one that fails: keep it.
            let end = (i + chunk).min(ops.len().saturating_sub(1));
            if end <= i {
                break;
            }
            let mut candidate = ops.clone();
            candidate.drain(i..end);
            renew_if_used(h).await;
            match run_case(h, seed, 0, Some(&candidate), ignore).await {
                Err(f) if f.kind == best.kind => {
                    ops = f.steps.iter().map(|s| s.op.clone()).collect();
                    best = f;
                    progress = true;
                }
                _ => i += chunk,
            }
        }
        if !progress {
            if chunk == 1 {
                break;
            }
            chunk /= 2;
        }
    }
    // Drop the skipped steps from the report.
    let kept: Vec<Op> = best
        .steps
        .iter()
        .filter(|s| s.outcome != "skipped")
        .map(|s| s.op.clone())
        .collect();
    if kept.len() < best.steps.len() {
        renew_if_used(h).await;
        if let Err(f) = run_case(h, seed, 0, Some(&kept), ignore).await {
            if f.kind == best.kind {
                best = f;
            }
        }
    }
    best
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

fn backend() -> &'static str {
    if crate::util::postgres_url().is_some() {
        "postgres"
    } else {
        "sqlite"
    }
}

/// The seed of case `n` of a run starting at `base`.
fn case_seed(base: u64, n: u64) -> u64 {
    base.wrapping_add(n.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

fn render(f: &Failure, seed: u64, webhook_mode: bool, original_len: usize) -> String {
    let mut s = format!(
        "invariant broken: {}\n  {}\n  backend {}, mode {}; replay: GUILDHALL_MODEL_SEED={seed}\n  {} steps (shrunk from {original_len}):\n",
        f.kind,
        f.detail,
        backend(),
        if webhook_mode { "webhook" } else { "sandbox" },
        f.steps.len(),
    );
    for (i, st) in f.steps.iter().enumerate() {
        s.push_str(&format!(
            "    {:>2}. {:?} -> {}\n",
            i + 1,
            st.op,
            st.outcome
        ));
    }
    s
}

/// The case's payment mode follows from its seed, so a replay runs the same.
fn webhook_mode_of(seed: u64) -> bool {
    StdRng::seed_from_u64(seed ^ 0x5eed).gen_bool(0.5)
}

#[actix_web::test]
async fn model_based_money_paths() {
    let steps = env_u64("GUILDHALL_MODEL_STEPS").map_or(DEFAULT_STEPS, |s| s as usize);
    let shrink_on = std::env::var("GUILDHALL_MODEL_SHRINK").map_or(true, |v| v != "0");
    let keep_going = std::env::var("GUILDHALL_MODEL_KEEP_GOING").is_ok_and(|v| v == "1");
    let ignore: Vec<String> = std::env::var("GUILDHALL_MODEL_IGNORE")
        .map(|v| {
            v.split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let seeds: Vec<u64> = match env_u64("GUILDHALL_MODEL_SEED") {
        Some(seed) => vec![seed],
        None => {
            let cases = env_u64("GUILDHALL_MODEL_CASES").unwrap_or(DEFAULT_CASES);
            let base = env_u64("GUILDHALL_MODEL_BASE_SEED").unwrap_or(0x6775_696c_6468_616c);
            (0..cases).map(|n| case_seed(base, n)).collect()
        }
    };
    let started = Instant::now();
    let mut harnesses: [Option<Harness>; 2] = [None, None];
    let (mut cases_run, mut steps_run) = (0u64, 0usize);
    let mut failures: BTreeMap<String, String> = BTreeMap::new();
    let only_mode = std::env::var("GUILDHALL_MODEL_MODE").ok();
    for seed in seeds {
        let webhook_mode = webhook_mode_of(seed);
        if only_mode
            .as_deref()
            .is_some_and(|m| m != if webhook_mode { "webhook" } else { "sandbox" })
        {
            continue;
        }
        let slot = usize::from(webhook_mode);
        if harnesses[slot]
            .as_ref()
            .is_none_or(|h| h.cases >= CASES_PER_APP)
        {
            harnesses[slot] = None;
            harnesses[slot] = Some(Harness::new(webhook_mode).await);
        }
        let h = harnesses[slot].as_mut().expect("harness");
        cases_run += 1;
        match run_case(h, seed, steps, None, &ignore).await {
            Ok(log) => steps_run += log.len(),
            Err(f) => {
                steps_run += f.steps.len();
                let original = f.steps.len();
                let signature = f.kind.clone();
                if failures.contains_key(&signature) {
                    continue;
                }
                let f = if shrink_on {
                    shrink(h, seed, f, Duration::from_secs(90), &ignore).await
                } else {
                    f
                };
                let report = render(&f, seed, webhook_mode, original);
                eprintln!("model test: case {cases_run} (seed {seed}) failed\n{report}");
                failures.insert(signature, report);
                if !keep_going {
                    break;
                }
            }
        }
    }
    println!(
        "model test ({}): {cases_run} cases, {steps_run} steps in {:.1} s; {} distinct failures",
        backend(),
        started.elapsed().as_secs_f64(),
        failures.len()
    );
    if !failures.is_empty() {
        let all: Vec<String> = failures.into_values().collect();
        panic!(
            "model-based test found {} failure(s):\n\n{}",
            all.len(),
            all.join("\n")
        );
    }
}
