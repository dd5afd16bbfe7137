//! Response and request bodies. Rows never reach JSON directly: each view is
//! built from a model, so a new column (a password hash, say) cannot leak.

use crate::domain::helpers::Helper;
use crate::domain::projects::Project;
use crate::domain::users::User;
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

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
    /// Helper tier.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
    /// Helper status: `pending`, `approved` or `revoked`.
    #[serde(skip_serializing_if = "Option::is_none")]
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
    /// Support guidelines.
    pub guidelines: String,
    /// Code of conduct.
    pub code_of_conduct: String,
    /// Legal entity contracting with requesters.
    pub legal_entity: Option<String>,
    /// Maintainer user ids.
    pub maintainers: Vec<i64>,
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
            guidelines: p.guidelines.clone(),
            code_of_conduct: p.code_of_conduct.clone(),
            legal_entity: p.legal_entity.clone(),
            maintainers,
            created_at: utc(p.created_at),
            updated_at: utc(p.updated_at),
        }
    }
}

/// A page of projects.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProjectPage {
    /// This page.
    pub items: Vec<ProjectView>,
    /// Pass as `?cursor=` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// A helper of a project.
#[derive(Debug, Serialize, ToSchema)]
pub struct HelperView {
    /// The helper's user id.
    pub user_id: i64,
    /// Public name.
    pub display_name: String,
    /// `expert` or `community`.
    pub tier: String,
    /// `pending`, `approved` or `revoked`.
    pub status: String,
    /// Hourly rate (experts).
    pub hourly_rate: Option<Money>,
    /// Self-description.
    pub bio: String,
    /// Skills.
    pub skills: Vec<String>,
    /// Approved helpers of the project who endorse this one.
    pub endorsements: i64,
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
            applied_at: utc(h.created_at),
            decided_at: h.decided_at.map(utc),
        }
    }
}

/// A page of helpers.
#[derive(Debug, Serialize, ToSchema)]
pub struct HelperPage {
    /// This page.
    pub items: Vec<HelperView>,
    /// Pass as `?cursor=` for the next page; null on the last.
    pub next_cursor: Option<String>,
}
