//! Response and request bodies. Rows never reach JSON directly: each view is
//! built from a model, so a new column (a password hash, say) cannot leak.

use crate::domain::helpers::Helper;
use crate::domain::projects::Project;
use crate::domain::users::User;
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One page of a list: its items, in the list's order, and the cursor of
/// the next page (pass it as `?cursor=`; null on the last page).
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    /// This page.
    pub items: Vec<T>,
    /// Pass as `?cursor=` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// A page from the rows a query fetched with [`Paging::fetch`] (`limit + 1`
    /// in list order): the extra row only tells that a next page exists,
    /// which starts after `key` of the last row kept. `view` turns each kept
    /// row into an item.
    pub fn from_rows<R>(
        mut rows: Vec<R>,
        paging: &Paging,
        key: impl Fn(&R) -> i64,
        view: impl FnMut(R) -> Result<T, crate::error::AppError>,
    ) -> Result<Self, crate::error::AppError> {
        let keep = usize::try_from(paging.limit).unwrap_or(usize::MAX);
        let more = rows.len() > keep;
        rows.truncate(keep);
        let next_cursor = more
            .then(|| rows.last().map(|r| crate::domain::encode_cursor(key(r))))
            .flatten();
        Ok(Page {
            items: rows.into_iter().map(view).collect::<Result<_, _>>()?,
            next_cursor,
        })
    }
}

/// `?limit=&cursor=` of a list, checked: the page size (1–100, default 20)
/// and the id the page starts after (or before, for newest-first lists).
#[derive(Debug, Clone, Copy)]
pub struct Paging {
    /// Page size.
    pub limit: i64,
    /// The previous page's last id, decoded from its cursor.
    pub cursor: Option<i64>,
}

impl Paging {
    /// Parses `limit` and `cursor` as given in the query string.
    pub fn parse(limit: Option<i64>, cursor: Option<&str>) -> Result<Self, crate::error::AppError> {
        Ok(Paging {
            limit: crate::domain::page_limit(limit)?,
            cursor: cursor.map(crate::domain::decode_cursor).transpose()?,
        })
    }

    /// How many rows to fetch: one more than the page, to learn whether
    /// another page follows.
    pub fn fetch(&self) -> i64 {
        self.limit + 1
    }
}

/// A stored UTC time as an RFC 3339 timestamp.
pub fn utc(t: NaiveDateTime) -> DateTime<Utc> {
    DateTime::from_naive_utc_and_offset(t, Utc)
}

/// An amount of money in minor units.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct Money {
    /// Integer minor units (cents for usd).
    pub amount: i64,
    /// ISO 4217 code, lower case.
    pub currency: String,
}

/// A user as others may see them after registration.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    /// Id.
    pub id: i64,
    /// Email.
    pub email: String,
    /// Public name.
    pub display_name: String,
    /// Registered.
    pub created_at: DateTime<Utc>,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        UserView {
            id: u.id,
            email: u.email.clone(),
            display_name: u.display_name.clone(),
            created_at: utc(u.created_at),
        }
    }
}

/// A project the caller has a role in.
#[derive(Debug, Serialize, ToSchema)]
pub struct Membership {
    /// Project slug.
    pub project: String,
    /// `maintainer` or `helper`.
    pub role: String,
    /// Helper tier (helpers only).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<crate::domain::helpers::Tier>)]
    pub tier: Option<String>,
    /// Helper status (helpers only): `pending`, `approved` or `revoked`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<crate::domain::helpers::HelperStatus>)]
    pub status: Option<String>,
}

/// The current user with roles and memberships.
#[derive(Debug, Serialize, ToSchema)]
pub struct MeView {
    /// Id.
    pub id: i64,
    /// Email.
    pub email: String,
    /// Public name.
    pub display_name: String,
    /// Platform roles: `user`, and `admin` for administrators.
    pub roles: Vec<String>,
    /// Whether the address was verified by the link mailed at
    /// registration (until then Guildhall mails it nothing else).
    pub email_verified: bool,
    /// Maintainerships and helper applications.
    pub memberships: Vec<Membership>,
    /// Registered.
    pub created_at: DateTime<Utc>,
}

/// A pair of tokens.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TokenPair {
    /// JWT access token, 15 minutes.
    pub access_token: String,
    /// Opaque refresh token, single use.
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
}

/// A project with its public settings.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProjectView {
    /// Id.
    pub id: i64,
    /// Unique URL name.
    pub slug: String,
    /// Display name.
    pub name: String,
    /// Source repository.
    pub repo_url: String,
    /// What it is.
    pub description: String,
    /// Topics, lower case.
    pub topics: Vec<String>,
    /// Currency of paid work.
    pub currency: String,
    /// Commission on paid work, basis points (0–3000).
    pub commission_bps: i32,
    /// Percent of queue positions guaranteed to unpaid tickets.
    pub free_share_pct: i32,
    /// Floor of response-time estimates, hours.
    pub min_response_hours: i32,
    /// Days of inactivity before a ticket closes itself.
    pub auto_close_days: i32,
    /// Days to accept or reopen a resolution before it is accepted automatically.
    pub acceptance_days: i32,
    /// The notification level of the project's people until they choose.
    pub notification_default: String,
    /// Support guidelines.
    pub guidelines: String,
    /// Code of conduct.
    pub code_of_conduct: String,
    /// Legal entity contracting with requesters.
    pub legal_entity: Option<String>,
    /// Maintainer user ids.
    pub maintainers: Vec<i64>,
    /// When the project proved control of its repository (needed before it
    /// takes real money through a live gateway); null until then.
    pub verified_at: Option<DateTime<Utc>>,
    /// How: `github_app`, `github_admin` or `platform_admin`.
    pub verified_via: Option<String>,
    /// What issues imported from GitHub become: `public` or `private`.
    pub github_import_visibility: String,
    /// Pay as you go: the price of moving one ticket up the queue.
    pub upgrade_price: Money,
    /// The code of conduct's version (a change of its text makes the next;
    /// posting, claiming and bidding need the current one accepted).
    pub coc_version: i32,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last settings change.
    pub updated_at: DateTime<Utc>,
}

impl ProjectView {
    /// Builds the view from a row and its maintainer ids.
    pub fn new(p: &Project, maintainers: Vec<i64>) -> Self {
        ProjectView {
            id: p.id,
            slug: p.slug.clone(),
            name: p.name.clone(),
            repo_url: p.repo_url.clone(),
            description: p.description.clone(),
            topics: p.topic_list(),
            currency: p.currency.clone(),
            commission_bps: p.commission_bps,
            free_share_pct: p.free_share_pct,
            min_response_hours: p.min_response_hours,
            auto_close_days: p.auto_close_days,
            acceptance_days: p.acceptance_days,
            notification_default: p.notification_default.clone(),
            guidelines: p.guidelines.clone(),
            code_of_conduct: p.code_of_conduct.clone(),
            legal_entity: p.legal_entity.clone(),
            maintainers,
            verified_at: p.verified_at.map(utc),
            verified_via: p.verified_via.clone(),
            github_import_visibility: p.github_import_visibility.clone(),
            upgrade_price: Money {
                amount: p.upgrade_price,
                currency: p.currency.clone(),
            },
            coc_version: p.coc_version,
            created_at: utc(p.created_at),
            updated_at: utc(p.updated_at),
        }
    }
}

/// A helper of a project.
#[derive(Debug, Serialize, ToSchema)]
pub struct HelperView {
    /// The helper's user id.
    pub user_id: i64,
    /// Public name.
    pub display_name: String,
    /// `expert` or `community`.
    #[schema(value_type = crate::domain::helpers::Tier)]
    pub tier: String,
    /// `pending`, `approved` or `revoked`.
    #[schema(value_type = crate::domain::helpers::HelperStatus)]
    pub status: String,
    /// Hourly rate (experts).
    pub hourly_rate: Option<Money>,
    /// Self-description.
    pub bio: String,
    /// Skills.
    pub skills: Vec<String>,
    /// Approved helpers of the project who endorse this one.
    pub endorsements: i64,
    /// Reputation in this project, 0–100, as of the last recompute (none
    /// before the first); components at `GET /users/{id}/reputation`.
    pub reputation: Option<f64>,
    /// Applied.
    pub applied_at: DateTime<Utc>,
    /// Approved or revoked.
    pub decided_at: Option<DateTime<Utc>>,
}

impl HelperView {
    /// Builds the view.
    pub fn new(h: &Helper, display_name: String, currency: &str, endorsements: i64) -> Self {
        HelperView {
            user_id: h.user_id,
            display_name,
            tier: h.tier.clone(),
            status: h.status.clone(),
            hourly_rate: h.hourly_rate.map(|amount| Money {
                amount,
                currency: currency.to_owned(),
            }),
            bio: h.bio.clone(),
            skills: serde_json::from_str(&h.skills).unwrap_or_default(),
            endorsements,
            reputation: None,
            applied_at: utc(h.created_at),
            decided_at: h.decided_at.map(utc),
        }
    }
}

/// A requester's rating.
#[derive(Debug, Serialize, ToSchema)]
pub struct RatingView {
    /// 1–5.
    #[schema(minimum = 1, maximum = 5)]
    pub stars: i32,
    /// Comment.
    pub comment: Option<String>,
    /// When.
    pub rated_at: Option<DateTime<Utc>>,
}

/// A ticket.
#[derive(Debug, Serialize, ToSchema)]
pub struct TicketView {
    /// Id.
    pub id: i64,
    /// Project slug.
    pub project: String,
    /// Who asked.
    pub requester_id: i64,
    /// Title.
    pub title: String,
    /// Body.
    pub body: String,
    /// `question`, `bug`, `integration` or `feature`.
    #[schema(value_type = crate::domain::tickets::Kind)]
    pub kind: String,
    /// `public` or `private`.
    #[schema(value_type = crate::domain::tickets::Visibility)]
    pub visibility: String,
    /// `draft`, `open`, `claimed`, `resolved`, `closed`, `cancelled` or `auto_closed`.
    #[schema(value_type = crate::domain::tickets::Status)]
    pub status: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Helper working on it.
    pub claimed_by: Option<i64>,
    /// Helper who resolved it.
    pub resolved_by: Option<i64>,
    /// Message holding the resolution.
    pub resolution_message_id: Option<i64>,
    /// Paid into escrow for it.
    pub paid: Money,
    /// Rating, once given.
    pub rating: Option<RatingView>,
    /// Why it was closed.
    pub close_reason: Option<String>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Submitted.
    pub submitted_at: Option<DateTime<Utc>>,
    /// Claimed.
    pub claimed_at: Option<DateTime<Utc>>,
    /// Resolved.
    pub resolved_at: Option<DateTime<Utc>>,
    /// Closed.
    pub closed_at: Option<DateTime<Utc>>,
    /// Last activity.
    pub last_activity_at: DateTime<Utc>,
}

impl TicketView {
    /// Builds the view with the project's slug and currency.
    pub fn new(t: &crate::domain::tickets::Ticket, project: &str, currency: &str) -> Self {
        TicketView {
            id: t.id,
            project: project.to_owned(),
            requester_id: t.requester_id,
            title: t.title.clone(),
            body: t.body.clone(),
            kind: t.kind.clone(),
            visibility: t.visibility.clone(),
            status: t.status.clone(),
            tags: t.tag_list(),
            claimed_by: t.claimed_by,
            resolved_by: t.resolved_by,
            resolution_message_id: t.resolution_message_id,
            paid: Money {
                amount: t.paid_amount,
                currency: currency.to_owned(),
            },
            rating: t.rating_stars.map(|stars| RatingView {
                stars,
                comment: t.rating_comment.clone(),
                rated_at: t.rated_at.map(utc),
            }),
            close_reason: t.close_reason.clone(),
            created_at: utc(t.created_at),
            submitted_at: t.submitted_at.map(utc),
            claimed_at: t.claimed_at.map(utc),
            resolved_at: t.resolved_at.map(utc),
            closed_at: t.closed_at.map(utc),
            last_activity_at: utc(t.last_activity_at),
        }
    }
}

/// A message on a ticket.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessageView {
    /// Id.
    pub id: i64,
    /// Ticket.
    pub ticket_id: i64,
    /// Author.
    pub author_id: i64,
    /// Text.
    pub body: String,
    /// Team-only note.
    pub internal: bool,
    /// Template used.
    pub template_id: Option<i64>,
    /// Posted.
    pub created_at: DateTime<Utc>,
    /// Where it was written: `web` (the site or the API) or `email` (a reply
    /// by mail).
    #[schema(example = "web")]
    pub via: String,
}

impl From<&crate::domain::tickets::Message> for MessageView {
    fn from(m: &crate::domain::tickets::Message) -> Self {
        MessageView {
            id: m.id,
            ticket_id: m.ticket_id,
            author_id: m.author_id,
            body: m.body.clone(),
            internal: m.internal,
            template_id: m.template_id,
            created_at: utc(m.created_at),
            via: m.via.clone(),
        }
    }
}

/// One entry of a ticket's event log.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventView {
    /// Who (null: the system).
    pub actor_id: Option<i64>,
    /// What: create, submit, claim, unclaim, transfer, resolve, accept, reopen, close, cancel, auto_close.
    pub action: String,
    /// Status before.
    pub from: Option<String>,
    /// Status after.
    pub to: String,
    /// Why.
    pub reason: Option<String>,
    /// When.
    pub at: DateTime<Utc>,
}

impl From<&crate::domain::tickets::Event> for EventView {
    fn from(e: &crate::domain::tickets::Event) -> Self {
        EventView {
            actor_id: e.actor_id,
            action: e.action.clone(),
            from: e.from_status.clone(),
            to: e.to_status.clone(),
            reason: e.reason.clone(),
            at: utc(e.created_at),
        }
    }
}

/// A response template.
#[derive(Debug, Serialize, ToSchema)]
pub struct TemplateView {
    /// Id (use as `template_id` when posting a message).
    pub id: i64,
    /// `project` (shared) or `personal`.
    pub scope: String,
    /// Name.
    pub name: String,
    /// Text.
    pub body: String,
    /// Created.
    pub created_at: DateTime<Utc>,
}

impl From<&crate::domain::tickets::Template> for TemplateView {
    fn from(t: &crate::domain::tickets::Template) -> Self {
        TemplateView {
            id: t.id,
            scope: if t.owner_id.is_some() {
                "personal"
            } else {
                "project"
            }
            .into(),
            name: t.name.clone(),
            body: t.body.clone(),
            created_at: utc(t.created_at),
        }
    }
}
