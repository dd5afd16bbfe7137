//! Tickets: the lifecycle from draft to close, who may see and change them,
//! messages, ratings and the event log.
//!
//! ```text
//! draft ──submit──▶ open ──claim──▶ claimed ──resolve──▶ resolved ──accept──▶ closed
//!   │                 ▲ ◀──unclaim──  │  ▲                   │ reopen (back to the claimant)
//!   │                 │               │  └───────────────────┘
//!   └──cancel──▶ cancelled ◀──cancel──┘ (draft, open, claimed)
//! open / claimed / resolved ──close──▶ closed      closed / auto_closed ──reopen──▶ open
//! open / claimed / resolved ──(no activity for auto_close_days)──▶ auto_closed
//! ```
//!
//! Every transition is one conditional UPDATE (`… WHERE status IN (allowed)`),
//! so of many concurrent attempts exactly one succeeds; the others get 409.
//! Each success writes a `ticket_events` row and enqueues the index sync job
//! in the same transaction.

use crate::db::schema::{projects, response_templates, ticket_events, ticket_messages, tickets};
use crate::db::{write_tx, DbConnection};
use crate::domain::{helpers, now, projects as project_domain};
use crate::error::ErrorCode;
use crate::error::{AppError, AppResult, FieldError};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use guildhall_jobs::BackgroundJob;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

macro_rules! string_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident = $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vm])* $variant),+ }
        impl $name {
            /// Stored and serialized form.
            pub fn as_str(self) -> &'static str { match self { $($name::$variant => $s),+ } }
            /// Parses the stored form.
            pub fn parse(s: &str) -> Option<Self> { match s { $($s => Some($name::$variant),)+ _ => None } }
        }
    };
}

string_enum!(
    /// Where a ticket is in its life.
    Status {
        /// Written but not submitted; only the requester sees it.
        Draft = "draft",
        /// In the project's queue.
        Open = "open",
        /// A helper is working on it.
        Claimed = "claimed",
        /// The helper proposed a resolution; the requester may accept or reopen.
        Resolved = "resolved",
        /// Done.
        Closed = "closed",
        /// Withdrawn by the requester.
        Cancelled = "cancelled",
        /// Closed for inactivity.
        AutoClosed = "auto_closed",
    }
);

string_enum!(
    /// What kind of help is asked for.
    Kind {
        /// A how-to question.
        Question = "question",
        /// Something seems broken.
        Bug = "bug",
        /// Making it work with something else.
        Integration = "integration",
        /// A wish.
        Feature = "feature",
    }
);

string_enum!(
    /// Who may see a ticket.
    Visibility {
        /// Everyone (once submitted).
        Public = "public",
        /// The requester, the project's maintainers and approved helpers.
        Private = "private",
    }
);

impl Status {
    /// Closed, cancelled or auto-closed: no money may stay in or enter its
    /// escrow until it is reopened.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Status::Closed | Status::Cancelled | Status::AutoClosed
        )
    }
}

/// A row of `tickets`.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = tickets)]
pub struct Ticket {
    /// Id.
    pub id: i64,
    /// Project.
    pub project_id: i64,
    /// Who asked.
    pub requester_id: i64,
    /// Title.
    pub title: String,
    /// Body (plain text / Markdown).
    pub body: String,
    /// [`Kind`].
    pub kind: String,
    /// [`Visibility`].
    pub visibility: String,
    /// [`Status`].
    pub status: String,
    /// JSON array of tags.
    pub tags: String,
    /// The helper working on it.
    pub claimed_by: Option<i64>,
    /// The helper who resolved it.
    pub resolved_by: Option<i64>,
    /// The message holding the resolution.
    pub resolution_message_id: Option<i64>,
    /// Minor units paid into escrow for it.
    pub paid_amount: i64,
    /// Since the requester's last message (queue order).
    pub waiting_since: NaiveDateTime,
    /// Last activity of anyone (auto-close).
    pub last_activity_at: NaiveDateTime,
    /// Submitted.
    pub submitted_at: Option<NaiveDateTime>,
    /// Claimed.
    pub claimed_at: Option<NaiveDateTime>,
    /// Resolved.
    pub resolved_at: Option<NaiveDateTime>,
    /// Closed.
    pub closed_at: Option<NaiveDateTime>,
    /// Why it was closed.
    pub close_reason: Option<String>,
    /// Requester's rating 1–5.
    pub rating_stars: Option<i32>,
    /// Requester's comment.
    pub rating_comment: Option<String>,
    /// When rated.
    pub rated_at: Option<NaiveDateTime>,
    /// Source of an imported ticket, e.g. `se:ai.stackexchange.com:42`.
    pub external_ref: Option<String>,
    /// Bumped by every change of the ticket row's state or content; a
    /// transition applies only to the version it was decided on.
    #[diesel(column_name = index_version)]
    pub version: i64,
    /// Created.
    pub created_at: NaiveDateTime,
    /// Updated.
    pub updated_at: NaiveDateTime,
    /// Hidden by flags until reviewed (seen only by its requester and the
    /// team meanwhile).
    pub hidden_at: Option<NaiveDateTime>,
}

impl Ticket {
    /// A claimed public ticket with money on it, for benchmarks and
    /// examples (never stored).
    pub fn sample(at: NaiveDateTime) -> Ticket {
        Ticket {
            id: 42,
            project_id: 1,
            requester_id: 3,
            title: "Segments pile up after a bulk load".into(),
            body: "After importing ten million documents the index has 400 segments. \
                   What should the merge policy be?"
                .into(),
            kind: "question".into(),
            visibility: "public".into(),
            status: "claimed".into(),
            tags: r#"["merge","segments"]"#.into(),
            claimed_by: Some(2),
            resolved_by: None,
            resolution_message_id: None,
            paid_amount: 5_000,
            waiting_since: at,
            last_activity_at: at,
            submitted_at: Some(at),
            claimed_at: Some(at),
            resolved_at: None,
            closed_at: None,
            close_reason: None,
            rating_stars: None,
            rating_comment: None,
            rated_at: None,
            external_ref: None,
            version: 1,
            created_at: at,
            updated_at: at,
            hidden_at: None,
        }
    }
}

impl Ticket {
    /// The status as an enum.
    pub fn status(&self) -> Status {
        Status::parse(&self.status).unwrap_or(Status::Closed)
    }
    /// Tags as a list.
    pub fn tag_list(&self) -> Vec<String> {
        serde_json::from_str(&self.tags).unwrap_or_default()
    }
    /// Whether only the requester and the team may see it.
    pub fn is_private(&self) -> bool {
        // A ticket hidden by flags is private until reviewed.
        self.visibility == Visibility::Private.as_str() || self.hidden_at.is_some()
    }
}

/// The caller's relation to a ticket.
#[derive(Debug, Clone, Copy, Default)]
pub struct Access {
    /// Logged-in user, if any.
    pub user_id: Option<i64>,
    /// The caller asked it.
    pub requester: bool,
    /// The caller maintains its project.
    pub maintainer: bool,
    /// The caller is an approved helper of its project.
    pub helper: bool,
}

impl Access {
    /// Maintainer or approved helper.
    pub fn team(&self) -> bool {
        self.maintainer || self.helper
    }
    /// Whether the caller may see the ticket at all.
    pub fn can_view(&self, t: &Ticket) -> bool {
        // Never submitted (a draft, or a draft that was cancelled): the requester's alone.
        if t.submitted_at.is_none() {
            return self.requester;
        }
        !t.is_private() || self.requester || self.team()
    }
}

/// Works out the caller's relation to `t`.
pub fn access(conn: &mut DbConnection, t: &Ticket, user_id: Option<i64>) -> AppResult<Access> {
    let Some(uid) = user_id else {
        return Ok(Access::default());
    };
    Ok(Access {
        user_id,
        requester: t.requester_id == uid,
        maintainer: project_domain::is_maintainer(conn, t.project_id, uid)?,
        helper: helpers::is_approved(conn, t.project_id, uid)?,
    })
}

/// The ticket, whoever asks (callers authorize).
pub(crate) fn get(conn: &mut DbConnection, id: i64) -> AppResult<Ticket> {
    tickets::table
        .find(id)
        .select(Ticket::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| AppError::not_found("ticket"))
}

/// The ticket if the caller may see it; 404 otherwise (never 403, so private
/// tickets do not reveal that they exist).
pub fn load_visible(
    conn: &mut DbConnection,
    id: i64,
    user_id: Option<i64>,
) -> AppResult<(Ticket, Access)> {
    let t = get(conn, id)?;
    let a = access(conn, &t, user_id)?;
    if !a.can_view(&t) {
        return Err(AppError::not_found("ticket"));
    }
    Ok((t, a))
}

/// Fields of a new ticket.
#[derive(Debug, Clone)]
pub struct NewTicket {
    /// Project slug.
    pub project: String,
    /// Title, 3–200 characters.
    pub title: String,
    /// Body, up to 50 000 characters.
    pub body: String,
    /// Up to 10 tags.
    pub tags: Vec<String>,
    /// Kind.
    pub kind: Kind,
    /// Visibility.
    pub visibility: Visibility,
}

/// Changes to a ticket by its requester; `None` leaves a field alone.
#[derive(Debug, Clone, Default)]
pub struct TicketPatch {
    /// Title.
    pub title: Option<String>,
    /// Body.
    pub body: Option<String>,
    /// Tags.
    pub tags: Option<Vec<String>>,
    /// Kind.
    pub kind: Option<Kind>,
    /// Visibility.
    pub visibility: Option<Visibility>,
}

fn validate_content(
    errors: &mut Vec<FieldError>,
    title: Option<&str>,
    body: Option<&str>,
    tags: Option<&[String]>,
) {
    if let Some(t) = title {
        let n = super::text::visible_len(t);
        if !(3..=200).contains(&n) {
            errors.push(FieldError::new("title", "must be 3 to 200 characters"));
        }
    }
    if let Some(b) = body {
        if b.chars().count() > 50_000 {
            errors.push(FieldError::new("body", "must be at most 50000 characters"));
        }
    }
    if let Some(tags) = tags {
        if tags.len() > 10 {
            errors.push(FieldError::new("tags", "at most 10 tags"));
        }
        for (i, t) in tags.iter().enumerate() {
            let n = super::text::visible_len(t);
            if n == 0 || n > 40 || super::text::trim(t).contains(char::is_whitespace) {
                errors.push(FieldError::new(
                    format!("tags[{i}]"),
                    "must be 1 to 40 characters without spaces",
                ));
            }
        }
    }
}

fn tags_json(tags: &[String]) -> String {
    // Lower case, trimmed, each once (first occurrence kept), wherever the repeats stand.
    let mut seen = std::collections::HashSet::new();
    let list: Vec<String> = tags
        .iter()
        .map(|t| super::text::trim(t).to_lowercase())
        .filter(|t| seen.insert(t.clone()))
        .collect();
    serde_json::to_string(&list).unwrap_or_else(|_| "[]".into())
}

/// Enqueues the (deduplicated) index sync job; call inside the write's transaction.
fn enqueue_index(conn: &mut DbConnection) -> AppResult<()> {
    crate::job_payloads::SyncIndex.enqueue(conn)?;
    Ok(())
}

fn record_event(
    conn: &mut DbConnection,
    ticket_id: i64,
    actor: Option<i64>,
    action: &str,
    from: Option<Status>,
    to: Status,
    reason: Option<&str>,
) -> AppResult<()> {
    diesel::insert_into(ticket_events::table)
        .values((
            ticket_events::ticket_id.eq(ticket_id),
            ticket_events::actor_id.eq(actor),
            ticket_events::action.eq(action),
            ticket_events::from_status.eq(from.map(Status::as_str)),
            ticket_events::to_status.eq(to.as_str()),
            ticket_events::reason.eq(reason),
            ticket_events::created_at.eq(now()),
        ))
        .execute(conn)?;
    Ok(())
}

/// Records a service-level event (`sla_warning`, `sla_breach`) on the
/// ticket, its status unchanged; the notifications carry it.
pub(crate) fn record_sla_event(
    conn: &mut DbConnection,
    ticket_id: i64,
    action: &str,
    reason: &str,
) -> AppResult<()> {
    let status: String = tickets::table
        .find(ticket_id)
        .select(tickets::status)
        .first(conn)?;
    let status = Status::parse(&status).unwrap_or(Status::Open);
    record_event(
        conn,
        ticket_id,
        None,
        action,
        Some(status),
        status,
        Some(reason),
    )
}

/// Creates a draft. The project must exist.
pub fn create(conn: &mut DbConnection, requester: i64, new: &NewTicket) -> AppResult<Ticket> {
    let mut errors = Vec::new();
    validate_content(
        &mut errors,
        Some(&new.title),
        Some(&new.body),
        Some(&new.tags),
    );
    if !errors.is_empty() {
        return Err(AppError::Validation(errors));
    }
    let project = project_domain::by_slug(conn, &new.project).map_err(|e| match e {
        AppError::NotFound(_) => AppError::field("project", "no such project"),
        other => other,
    })?;
    crate::domain::moderation::require_not_banned(conn, project.id, requester)?;
    let at = now();
    write_tx(conn, |conn| {
        let id: i64 = diesel::insert_into(tickets::table)
            .values((
                tickets::project_id.eq(project.id),
                tickets::requester_id.eq(requester),
                tickets::title.eq(super::text::trim(&new.title)),
                tickets::body.eq(&new.body),
                tickets::kind.eq(new.kind.as_str()),
                tickets::visibility.eq(new.visibility.as_str()),
                tickets::status.eq(Status::Draft.as_str()),
                tickets::tags.eq(tags_json(&new.tags)),
                tickets::waiting_since.eq(at),
                tickets::last_activity_at.eq(at),
                tickets::created_at.eq(at),
                tickets::updated_at.eq(at),
            ))
            .returning(tickets::id)
            .get_result(conn)?;
        record_event(
            conn,
            id,
            Some(requester),
            "create",
            None,
            Status::Draft,
            None,
        )?;
        enqueue_index(conn)?;
        get(conn, id)
    })
}

/// Edits by the requester while the ticket is a draft or open.
pub fn update(
    conn: &mut DbConnection,
    id: i64,
    user: i64,
    patch: &TicketPatch,
) -> AppResult<Ticket> {
    let (t, a) = load_visible(conn, id, Some(user))?;
    if !a.requester {
        return Err(AppError::forbidden("only the requester may edit a ticket"));
    }
    crate::domain::moderation::require_not_banned(conn, t.project_id, user)?;
    if !matches!(t.status(), Status::Draft | Status::Open) {
        return Err(AppError::conflict(
            ErrorCode::NotEditable,
            format!("a {} ticket cannot be edited", t.status),
        ));
    }
    let mut errors = Vec::new();
    validate_content(
        &mut errors,
        patch.title.as_deref(),
        patch.body.as_deref(),
        patch.tags.as_deref(),
    );
    if !errors.is_empty() {
        return Err(AppError::Validation(errors));
    }
    write_tx(conn, |conn| {
        let target = tickets::table
            .find(id)
            .filter(tickets::status.eq_any([Status::Draft.as_str(), Status::Open.as_str()]));
        let at = now();
        let n = diesel::update(target)
            .set((
                tickets::updated_at.eq(at),
                tickets::last_activity_at.eq(at),
                tickets::index_version.eq(tickets::index_version + 1),
            ))
            .execute(conn)?;
        if n == 0 {
            return Err(AppError::conflict(
                ErrorCode::NotEditable,
                "the ticket changed state meanwhile",
            ));
        }
        if let Some(v) = &patch.title {
            diesel::update(tickets::table.find(id))
                .set(tickets::title.eq(super::text::trim(v)))
                .execute(conn)?;
        }
        if let Some(v) = &patch.body {
            diesel::update(tickets::table.find(id))
                .set(tickets::body.eq(v))
                .execute(conn)?;
        }
        if let Some(v) = &patch.tags {
            diesel::update(tickets::table.find(id))
                .set(tickets::tags.eq(tags_json(v)))
                .execute(conn)?;
        }
        if let Some(v) = patch.kind {
            diesel::update(tickets::table.find(id))
                .set(tickets::kind.eq(v.as_str()))
                .execute(conn)?;
        }
        if let Some(v) = patch.visibility {
            diesel::update(tickets::table.find(id))
                .set(tickets::visibility.eq(v.as_str()))
                .execute(conn)?;
        }
        enqueue_index(conn)?;
        get(conn, id)
    })
}

/// Moves `id` from one of `from` to `to` atomically, with the event and the
/// index job; extra column changes run in the same transaction.
#[allow(clippy::too_many_arguments)]
fn transition(
    conn: &mut DbConnection,
    t: &Ticket,
    actor: Option<i64>,
    action: &str,
    from: &[Status],
    to: Status,
    reason: Option<&str>,
    extra: impl FnOnce(&mut DbConnection, NaiveDateTime) -> AppResult<()>,
) -> AppResult<Ticket> {
    let allowed: Vec<&str> = from.iter().map(|s| s.as_str()).collect();
    write_tx(conn, |conn| {
        let at = now();
        let n = diesel::update(
            tickets::table
                .find(t.id)
                .filter(tickets::status.eq_any(&allowed))
                // Only the ticket the decision was made on: who claimed it,
                // what it says. A change meanwhile makes this a conflict.
                .filter(tickets::index_version.eq(t.version)),
        )
        .set((
            tickets::status.eq(to.as_str()),
            tickets::updated_at.eq(at),
            tickets::last_activity_at.eq(at),
            tickets::index_version.eq(tickets::index_version + 1),
        ))
        .execute(conn)?;
        if n == 0 {
            let current: String = tickets::table
                .find(t.id)
                .select(tickets::status)
                .first(conn)?;
            if allowed.contains(&current.as_str()) {
                return Err(AppError::conflict(
                    ErrorCode::TicketChanged,
                    "the ticket changed meanwhile; reload it and try again",
                ));
            }
            return Err(AppError::conflict(
                ErrorCode::InvalidTransition,
                format!("cannot {action} a ticket that is {current}"),
            ));
        }
        let from_status = Status::parse(&t.status);
        extra(conn, at)?;
        record_event(conn, t.id, actor, action, from_status, to, reason)?;
        enqueue_index(conn)?;
        get(conn, t.id)
    })
}

/// Submits a draft into the queue. The requester must have accepted the
/// project's code of conduct.
pub fn submit(conn: &mut DbConnection, id: i64, user: i64) -> AppResult<Ticket> {
    let (t, a) = load_visible(conn, id, Some(user))?;
    if !a.requester {
        return Err(AppError::forbidden(
            "only the requester may submit a ticket",
        ));
    }
    crate::domain::moderation::require_not_banned(conn, t.project_id, user)?;
    project_domain::require_coc(conn, t.project_id, user)?;
    transition(
        conn,
        &t,
        Some(user),
        "submit",
        &[Status::Draft],
        Status::Open,
        None,
        |conn, at| {
            diesel::update(tickets::table.find(id))
                .set((tickets::submitted_at.eq(at), tickets::waiting_since.eq(at)))
                .execute(conn)?;
            Ok(())
        },
    )
}

/// An approved helper of the project takes the ticket; exactly one of many
/// concurrent claims wins.
pub fn claim(conn: &mut DbConnection, id: i64, user: i64) -> AppResult<Ticket> {
    let (t, a) = load_visible(conn, id, Some(user))?;
    if !a.helper {
        return Err(AppError::forbidden(
            "only approved helpers of the project may claim its tickets",
        ));
    }
    if a.requester {
        return Err(AppError::forbidden("you cannot claim your own ticket"));
    }
    crate::domain::moderation::require_not_banned(conn, t.project_id, user)?;
    project_domain::require_coc(conn, t.project_id, user)?;
    transition(
        conn,
        &t,
        Some(user),
        "claim",
        &[Status::Open],
        Status::Claimed,
        None,
        |conn, at| {
            diesel::update(tickets::table.find(id))
                .set((
                    tickets::claimed_by.eq(Some(user)),
                    tickets::claimed_at.eq(Some(at)),
                ))
                .execute(conn)?;
            Ok(())
        },
    )
    .map_err(|e| match e {
        AppError::Conflict {
            code: ErrorCode::InvalidTransition,
            ..
        } if t.status() == Status::Open || t.status() == Status::Claimed => AppError::conflict(
            ErrorCode::AlreadyClaimed,
            "another helper claimed this ticket first",
        ),
        other => other,
    })
}

fn require_claimant_or_maintainer(t: &Ticket, a: &Access) -> AppResult<()> {
    // A claimant acts only while still an approved helper.
    if a.maintainer || (a.helper && a.user_id.is_some() && t.claimed_by == a.user_id) {
        Ok(())
    } else {
        Err(AppError::forbidden(
            "only the claimant or a maintainer may do this",
        ))
    }
}

/// Assigns an open ticket to `helper` (an accepted bid), as `actor`; call
/// inside the caller's transaction.
pub fn assign(conn: &mut DbConnection, t: &Ticket, helper: i64, actor: i64) -> AppResult<Ticket> {
    if helper == t.requester_id {
        return Err(AppError::forbidden(
            "a ticket cannot be assigned to its own requester",
        ));
    }
    let reason = format!("bid accepted: assigned to user {helper}");
    transition(
        conn,
        t,
        Some(actor),
        "assign",
        &[Status::Open],
        Status::Claimed,
        Some(&reason),
        |conn, at| {
            diesel::update(tickets::table.find(t.id))
                .set((
                    tickets::claimed_by.eq(Some(helper)),
                    tickets::claimed_at.eq(Some(at)),
                ))
                .execute(conn)?;
            Ok(())
        },
    )
}

/// Puts a claimed ticket back into the queue.
pub fn unclaim(conn: &mut DbConnection, id: i64, user: i64) -> AppResult<Ticket> {
    let (t, a) = load_visible(conn, id, Some(user))?;
    require_claimant_or_maintainer(&t, &a)?;
    transition(
        conn,
        &t,
        Some(user),
        "unclaim",
        &[Status::Claimed],
        Status::Open,
        None,
        |conn, _| {
            diesel::update(tickets::table.find(id))
                .set((
                    tickets::claimed_by.eq(None::<i64>),
                    tickets::claimed_at.eq(None::<NaiveDateTime>),
                ))
                .execute(conn)?;
            Ok(())
        },
    )
}

/// Hands a claimed ticket to another approved helper.
pub fn transfer(conn: &mut DbConnection, id: i64, user: i64, to: i64) -> AppResult<Ticket> {
    let (t, a) = load_visible(conn, id, Some(user))?;
    require_claimant_or_maintainer(&t, &a)?;
    if !helpers::is_approved(conn, t.project_id, to)? {
        return Err(AppError::field(
            "to_user_id",
            "must be an approved helper of the project",
        ));
    }
    if t.claimed_by == Some(to) {
        return Err(AppError::field(
            "to_user_id",
            "the ticket is already theirs",
        ));
    }
    if to == t.requester_id {
        return Err(AppError::field(
            "to_user_id",
            "a ticket cannot be handed to its own requester",
        ));
    }
    // Not to someone banned there.
    crate::domain::moderation::require_not_banned(conn, t.project_id, to)?;
    let reason = format!("transferred to user {to}");
    transition(
        conn,
        &t,
        Some(user),
        "transfer",
        &[Status::Claimed],
        Status::Claimed,
        Some(&reason),
        |conn, at| {
            diesel::update(tickets::table.find(id))
                .set((
                    tickets::claimed_by.eq(Some(to)),
                    tickets::claimed_at.eq(Some(at)),
                ))
                .execute(conn)?;
            Ok(())
        },
    )
}

/// The claimant proposes a resolution, optionally pointing at a public message.
pub fn resolve(
    conn: &mut DbConnection,
    id: i64,
    user: i64,
    message_id: Option<i64>,
) -> AppResult<Ticket> {
    let (t, a) = load_visible(conn, id, Some(user))?;
    crate::domain::moderation::require_not_banned(conn, t.project_id, user)?;
    if t.claimed_by != Some(user) || !a.helper {
        return Err(AppError::forbidden(
            "only the helper who claimed the ticket may resolve it",
        ));
    }
    if a.requester {
        return Err(AppError::forbidden(
            "the requester cannot resolve their own ticket",
        ));
    }
    if let Some(mid) = message_id {
        let ok: bool = diesel::select(diesel::dsl::exists(
            ticket_messages::table
                .filter(ticket_messages::id.eq(mid))
                .filter(ticket_messages::ticket_id.eq(id))
                .filter(ticket_messages::internal.eq(false)),
        ))
        .get_result(conn)?;
        if !ok {
            return Err(AppError::field(
                "message_id",
                "must be a public message of this ticket",
            ));
        }
    }
    transition(
        conn,
        &t,
        Some(user),
        "resolve",
        &[Status::Claimed],
        Status::Resolved,
        None,
        |conn, at| {
            diesel::update(tickets::table.find(id))
                .set((
                    tickets::resolved_by.eq(Some(user)),
                    tickets::resolved_at.eq(Some(at)),
                    tickets::resolution_message_id.eq(message_id),
                ))
                .execute(conn)?;
            Ok(())
        },
    )
}

/// The requester accepts the resolution: closed.
/// Accepting releases the ticket's escrow to the resolving helper, the
/// project and the platform (`platform_bps`) in the same transaction.
pub fn accept(conn: &mut DbConnection, id: i64, user: i64, platform_bps: i32) -> AppResult<Ticket> {
    let (t, a) = load_visible(conn, id, Some(user))?;
    if !a.requester {
        return Err(AppError::forbidden(
            "only the requester may accept a resolution",
        ));
    }
    transition(
        conn,
        &t,
        Some(user),
        "accept",
        &[Status::Resolved],
        Status::Closed,
        Some("accepted"),
        |conn, at| {
            diesel::update(tickets::table.find(id))
                .set((
                    tickets::closed_at.eq(Some(at)),
                    tickets::close_reason.eq(Some("accepted")),
                ))
                .execute(conn)?;
            crate::domain::money::release(conn, &t, platform_bps)?;
            Ok(())
        },
    )
}

/// Whether the caller may close or reopen a ticket someone works on or
/// resolved: its requester, its claimant or resolver (while still an
/// approved helper) and the project's maintainers — never a rival helper,
/// whose reopen would refund the money or count against the resolver.
fn may_undo_resolution(t: &Ticket, a: &Access) -> bool {
    let mine = a.helper
        && a.user_id.is_some()
        && (t.claimed_by == a.user_id || t.resolved_by == a.user_id);
    a.requester || a.maintainer || mine
}

fn check_reason(reason: Option<&str>) -> AppResult<()> {
    if reason.is_some_and(|r| r.chars().count() > 500) {
        return Err(AppError::field("reason", "must be at most 500 characters"));
    }
    if reason.is_some_and(|r| r.trim().eq_ignore_ascii_case(AI_ANSWER_REASON)) {
        // Reserved: the dashboard counts it as the AI lane's.
        return Err(AppError::field("reason", "this reason is reserved"));
    }
    Ok(())
}

/// The requester closes their open ticket because the AI lane's answer
/// solved it (the dashboard's AI lane). Only the requester, only while it
/// waits in the queue.
pub fn close_answered_by_ai(conn: &mut DbConnection, id: i64, user: i64) -> AppResult<Ticket> {
    let (t, a) = load_visible(conn, id, Some(user))?;
    if !a.requester {
        return Err(AppError::forbidden(
            "only the requester can say the answer solved it",
        ));
    }
    if t.status() != Status::Open {
        return Err(AppError::conflict(
            ErrorCode::InvalidTransition,
            "only a ticket waiting in the queue can be closed as answered",
        ));
    }
    close_checked(conn, id, user, Some(AI_ANSWER_REASON))
}

/// Reopens: a resolved ticket goes back to its claimant; a closed one back to the queue.
pub fn reopen(
    conn: &mut DbConnection,
    id: i64,
    user: i64,
    reason: Option<&str>,
) -> AppResult<Ticket> {
    check_reason(reason)?;
    let (t, a) = load_visible(conn, id, Some(user))?;
    crate::domain::moderation::require_not_banned(conn, t.project_id, user)?;
    if !may_undo_resolution(&t, &a) {
        return Err(AppError::forbidden(
            "only the requester, the helper who had it and the project's maintainers may reopen",
        ));
    }
    match t.status() {
        Status::Resolved => transition(
            conn,
            &t,
            Some(user),
            "reopen",
            &[Status::Resolved],
            Status::Claimed,
            reason,
            |conn, _| {
                diesel::update(tickets::table.find(id))
                    .set((
                        tickets::resolved_by.eq(None::<i64>),
                        tickets::resolved_at.eq(None::<NaiveDateTime>),
                        tickets::resolution_message_id.eq(None::<i64>),
                    ))
                    .execute(conn)?;
                Ok(())
            },
        ),
        _ => transition(
            conn,
            &t,
            Some(user),
            "reopen",
            &[Status::Closed, Status::AutoClosed],
            Status::Open,
            reason,
            |conn, at| {
                diesel::update(tickets::table.find(id))
                    .set((
                        tickets::claimed_by.eq(None::<i64>),
                        tickets::claimed_at.eq(None::<NaiveDateTime>),
                        tickets::resolved_by.eq(None::<i64>),
                        tickets::resolved_at.eq(None::<NaiveDateTime>),
                        tickets::resolution_message_id.eq(None::<i64>),
                        tickets::closed_at.eq(None::<NaiveDateTime>),
                        tickets::close_reason.eq(None::<String>),
                        tickets::waiting_since.eq(at),
                        // A new money round: what it is paid now is
                        // released under keys of its own.
                        tickets::round.eq(tickets::round + 1),
                    ))
                    .execute(conn)?;
                Ok(())
            },
        ),
    }
}

/// Closes without (or before) acceptance, by the requester or the team.
pub fn close(
    conn: &mut DbConnection,
    id: i64,
    user: i64,
    reason: Option<&str>,
) -> AppResult<Ticket> {
    check_reason(reason)?;
    close_checked(conn, id, user, reason)
}

fn close_checked(
    conn: &mut DbConnection,
    id: i64,
    user: i64,
    reason: Option<&str>,
) -> AppResult<Ticket> {
    let (t, a) = load_visible(conn, id, Some(user))?;
    let allowed = match t.status() {
        // Triage of the queue is the team's, unless backers' money is on
        // it (closing refunds them): then the requester's or a maintainer's.
        Status::Open
            if t.paid_amount == 0 && !crate::domain::bids::payment_pending(conn, t.id)? =>
        {
            a.requester || a.team()
        }
        Status::Open => a.requester || a.maintainer,
        // A ticket someone works on, or resolved and perhaps paid for: not a rival's to close.
        _ => may_undo_resolution(&t, &a),
    };
    if !allowed {
        return Err(AppError::forbidden(
            "only the requester, the helper working on it and the project's maintainers may close it",
        ));
    }
    let reason = reason
        .unwrap_or(if a.requester {
            "closed by requester"
        } else {
            "closed by team"
        })
        .to_owned();
    let stored = reason.clone();
    transition(
        conn,
        &t,
        Some(user),
        "close",
        &[Status::Open, Status::Claimed, Status::Resolved],
        Status::Closed,
        Some(&reason),
        move |conn, at| {
            diesel::update(tickets::table.find(id))
                .set((
                    tickets::closed_at.eq(Some(at)),
                    tickets::close_reason.eq(Some(stored)),
                ))
                .execute(conn)?;
            // Closed without an accepted resolution: the backers get their money back.
            crate::domain::money::refund_all(conn, id)?;
            Ok(())
        },
    )
}

/// The requester withdraws the ticket.
pub fn cancel(conn: &mut DbConnection, id: i64, user: i64) -> AppResult<Ticket> {
    let (t, a) = load_visible(conn, id, Some(user))?;
    if !a.requester {
        return Err(AppError::forbidden("only the requester may cancel"));
    }
    transition(
        conn,
        &t,
        Some(user),
        "cancel",
        &[Status::Draft, Status::Open, Status::Claimed],
        Status::Cancelled,
        None,
        |conn, at| {
            diesel::update(tickets::table.find(id))
                .set((
                    tickets::closed_at.eq(Some(at)),
                    tickets::close_reason.eq(Some("cancelled")),
                ))
                .execute(conn)?;
            crate::domain::money::refund_all(conn, id)?;
            Ok(())
        },
    )
}

/// The requester rates a closed ticket once, 1–5 stars.
pub fn rate(
    conn: &mut DbConnection,
    id: i64,
    user: i64,
    stars: i32,
    comment: Option<&str>,
) -> AppResult<Ticket> {
    let (t, a) = load_visible(conn, id, Some(user))?;
    crate::domain::moderation::require_not_banned(conn, t.project_id, user)?;
    if !a.requester {
        return Err(AppError::forbidden("only the requester may rate"));
    }
    if !(1..=5).contains(&stars) {
        return Err(AppError::field("stars", "must be between 1 and 5"));
    }
    if comment.is_some_and(|c| c.chars().count() > 2000) {
        return Err(AppError::field(
            "comment",
            "must be at most 2000 characters",
        ));
    }
    if !matches!(t.status(), Status::Closed | Status::AutoClosed) {
        return Err(AppError::conflict(
            ErrorCode::NotClosed,
            "a ticket can be rated after it is closed",
        ));
    }
    write_tx(conn, |conn| {
        let n = diesel::update(
            tickets::table
                .find(id)
                .filter(tickets::rating_stars.is_null()),
        )
        .set((
            tickets::rating_stars.eq(Some(stars)),
            tickets::rating_comment.eq(comment),
            tickets::rated_at.eq(Some(now())),
        ))
        .execute(conn)?;
        if n == 0 {
            return Err(AppError::conflict(
                ErrorCode::AlreadyRated,
                "this ticket was already rated",
            ));
        }
        get(conn, id)
    })
}

/// `at` minus `days` days, or `None` when that is not a representable date
/// (a corrupt setting must not panic a job).
fn days_before(at: NaiveDateTime, days: i32) -> Option<NaiveDateTime> {
    chrono::Duration::try_days(i64::from(days)).and_then(|d| at.checked_sub_signed(d))
}

/// Accepts resolutions the requester neither accepted nor reopened within
/// their project's `acceptance_days`, releasing the escrow as an accept
/// would (the event's actor is the system). Each ticket is its own
/// transaction: one that fails is logged and counted and the others go on.
/// Returns how many were accepted.
pub fn auto_accept_lapsed(conn: &mut DbConnection, platform_bps: i32) -> AppResult<usize> {
    let candidates: Vec<(i64, Option<NaiveDateTime>, i32)> = tickets::table
        .inner_join(projects::table)
        .filter(tickets::status.eq(Status::Resolved.as_str()))
        .select((tickets::id, tickets::resolved_at, projects::acceptance_days))
        .load(conn)?;
    let at = now();
    let due = candidates.into_iter().filter(|(_, resolved_at, days)| {
        match (resolved_at, days_before(at, *days)) {
            (Some(resolved_at), Some(cutoff)) => *resolved_at <= cutoff,
            _ => false,
        }
    });
    Ok(crate::domain::each_row(
        "auto_accept_resolutions",
        due,
        |&(id, _, days)| {
            let t = get(conn, id)?;
            let reason = format!("not accepted or reopened within {days} days");
            let result = transition(
                conn,
                &t,
                None,
                "auto_accept",
                &[Status::Resolved],
                Status::Closed,
                Some(&reason),
                |conn, at| {
                    diesel::update(tickets::table.find(id))
                        .set((
                            tickets::closed_at.eq(Some(at)),
                            tickets::close_reason.eq(Some("accepted automatically")),
                        ))
                        .execute(conn)?;
                    crate::domain::money::release(conn, &t, platform_bps)?;
                    Ok(())
                },
            );
            match result {
                Ok(_) => Ok(true),
                // Changed meanwhile (accepted, reopened): nothing to do.
                Err(AppError::Conflict {
                    code: ErrorCode::TicketChanged | ErrorCode::InvalidTransition,
                    ..
                }) => Ok(false),
                Err(e) => Err(e),
            }
        },
    ))
}

/// Puts every ticket `helper` holds in the project back into the queue
/// (when their helper rights are revoked), each with an `unclaim` event.
pub fn release_claims_of(
    conn: &mut DbConnection,
    project_id: i64,
    helper: i64,
    actor: i64,
) -> AppResult<usize> {
    let held: Vec<i64> = tickets::table
        .filter(tickets::project_id.eq(project_id))
        .filter(tickets::claimed_by.eq(helper))
        .filter(tickets::status.eq(Status::Claimed.as_str()))
        .select(tickets::id)
        .load(conn)?;
    let at = now();
    for id in &held {
        diesel::update(tickets::table.find(id))
            .set((
                tickets::status.eq(Status::Open.as_str()),
                tickets::claimed_by.eq(None::<i64>),
                tickets::claimed_at.eq(None::<NaiveDateTime>),
                tickets::updated_at.eq(at),
                tickets::index_version.eq(tickets::index_version + 1),
            ))
            .execute(conn)?;
        record_event(
            conn,
            *id,
            Some(actor),
            "unclaim",
            Some(Status::Claimed),
            Status::Open,
            Some("helper rights revoked"),
        )?;
    }
    if !held.is_empty() {
        enqueue_index(conn)?;
    }
    Ok(held.len())
}

/// Closes open and claimed tickets with no activity for their project's
/// `auto_close_days`, recording the reason as an event and refunding any
/// funded bounty (it closed without a resolution). Resolved tickets are left
/// to the acceptance window, which releases their escrow. Each close is one
/// conditional UPDATE that re-checks status and inactivity, so activity that
/// lands meanwhile keeps the ticket open. Returns how many were closed.
pub fn auto_close_stale(conn: &mut DbConnection) -> AppResult<usize> {
    let active = [Status::Open.as_str(), Status::Claimed.as_str()];
    let candidates: Vec<(i64, String, NaiveDateTime, i32)> = tickets::table
        .inner_join(projects::table)
        .filter(tickets::status.eq_any(active))
        .select((
            tickets::id,
            tickets::status,
            tickets::last_activity_at,
            projects::auto_close_days,
        ))
        .load(conn)?;
    let at = now();
    let due = candidates
        .into_iter()
        .filter_map(|(id, status, last_activity, days)| {
            let cutoff = days_before(at, days)?;
            (last_activity <= cutoff).then_some((id, status, cutoff, days))
        });
    Ok(crate::domain::each_row(
        "auto_close_tickets",
        due,
        |(id, status, cutoff, days)| {
            let (id, cutoff) = (*id, *cutoff);
            let reason = format!("no activity for {days} days");
            write_tx(conn, |conn| -> AppResult<bool> {
                let n = diesel::update(
                    tickets::table
                        .find(id)
                        .filter(tickets::status.eq_any(active))
                        .filter(tickets::last_activity_at.le(cutoff)),
                )
                .set((
                    tickets::status.eq(Status::AutoClosed.as_str()),
                    tickets::closed_at.eq(Some(at)),
                    tickets::close_reason.eq(Some(&reason)),
                    tickets::updated_at.eq(at),
                    tickets::index_version.eq(tickets::index_version + 1),
                ))
                .execute(conn)?;
                if n == 0 {
                    return Ok(false);
                }
                record_event(
                    conn,
                    id,
                    None,
                    "auto_close",
                    Status::parse(status),
                    Status::AutoClosed,
                    Some(&reason),
                )?;
                crate::domain::money::refund_all(conn, id)?;
                enqueue_index(conn)?;
                Ok(true)
            })
        },
    ))
}

/// A row of `ticket_messages`.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = ticket_messages)]
pub struct Message {
    /// Id.
    pub id: i64,
    /// Ticket.
    pub ticket_id: i64,
    /// Author.
    pub author_id: i64,
    /// Text.
    pub body: String,
    /// Visible only to the project's team.
    pub internal: bool,
    /// Template used, if any.
    pub template_id: Option<i64>,
    /// Imported answer score.
    pub score: i32,
    /// Source of an imported message.
    pub external_ref: Option<String>,
    /// Posted.
    pub created_at: NaiveDateTime,
    /// Where it was written: `web` (the site or the API) or `email`.
    pub via: String,
    /// Hidden by flags until reviewed (seen only by its author and the
    /// team meanwhile).
    pub hidden_at: Option<NaiveDateTime>,
}

/// Posts a message. Internal notes are for the team only; a template of the
/// caller's own or of the project may supply the body.
pub fn post_message(
    conn: &mut DbConnection,
    id: i64,
    user: i64,
    body: Option<&str>,
    internal: bool,
    template_id: Option<i64>,
) -> AppResult<Message> {
    post_message_via(conn, id, user, body, internal, template_id, "web")
}

/// [`post_message`] recording where the message was written (`web` or
/// `email`).
pub fn post_message_via(
    conn: &mut DbConnection,
    id: i64,
    user: i64,
    body: Option<&str>,
    internal: bool,
    template_id: Option<i64>,
    via: &'static str,
) -> AppResult<Message> {
    let (t, a) = load_visible(conn, id, Some(user))?;
    if !(a.requester || a.team()) {
        return Err(AppError::forbidden(
            "only the requester and the project's team may post messages",
        ));
    }
    if internal && !a.team() {
        return Err(AppError::forbidden(
            "only the project's team may post internal notes",
        ));
    }
    crate::domain::moderation::require_not_banned(conn, t.project_id, user)?;
    if matches!(t.status(), Status::Cancelled) {
        return Err(AppError::conflict(
            ErrorCode::TicketCancelled,
            "the ticket was cancelled",
        ));
    }
    if template_id.is_some() && !a.team() {
        return Err(AppError::forbidden("templates are for the project's team"));
    }
    // A template named is checked even when a body is given (the message
    // records it).
    let template_text = match template_id {
        Some(tid) => Some(template_body(conn, t.project_id, user, tid)?),
        None => None,
    };
    let text = match (body, template_text) {
        (Some(b), _) => b.to_owned(),
        (None, Some(text)) => text,
        (None, None) => {
            return Err(AppError::field(
                "body",
                "a body or a template_id is required",
            ))
        }
    };
    let n = text.trim().chars().count();
    if n == 0 || n > 50_000 {
        return Err(AppError::field("body", "must be 1 to 50000 characters"));
    }
    write_tx(conn, |conn| {
        let at = now();
        let mid: i64 = diesel::insert_into(ticket_messages::table)
            .values((
                ticket_messages::ticket_id.eq(id),
                ticket_messages::author_id.eq(user),
                ticket_messages::body.eq(&text),
                ticket_messages::internal.eq(internal),
                ticket_messages::template_id.eq(template_id),
                ticket_messages::created_at.eq(at),
                ticket_messages::via.eq(via),
            ))
            .returning(ticket_messages::id)
            .get_result(conn)?;
        diesel::update(tickets::table.find(id))
            .set(tickets::last_activity_at.eq(at))
            .execute(conn)?;
        if a.requester && !internal {
            diesel::update(tickets::table.find(id))
                .set(tickets::waiting_since.eq(at))
                .execute(conn)?;
        }
        Ok(ticket_messages::table
            .find(mid)
            .select(Message::as_select())
            .first(conn)?)
    })
}

/// Messages of a ticket the caller may see, oldest first, after the cursor id.
pub fn list_messages(
    conn: &mut DbConnection,
    id: i64,
    user: Option<i64>,
    after: Option<i64>,
    limit: i64,
) -> AppResult<Vec<Message>> {
    let (_, a) = load_visible(conn, id, user)?;
    let mut q = ticket_messages::table
        .filter(ticket_messages::ticket_id.eq(id))
        .select(Message::as_select())
        .order(ticket_messages::id.asc())
        .limit(limit)
        .into_boxed();
    if !a.team() {
        q = q.filter(ticket_messages::internal.eq(false));
        // Hidden by flags: only its author (and the team) still see it.
        q = match user {
            Some(u) => q.filter(
                ticket_messages::hidden_at
                    .is_null()
                    .or(ticket_messages::author_id.eq(u)),
            ),
            None => q.filter(ticket_messages::hidden_at.is_null()),
        };
    }
    if let Some(after) = after {
        q = q.filter(ticket_messages::id.gt(after));
    }
    Ok(q.load(conn)?)
}

/// A row of `ticket_events`.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = ticket_events)]
pub struct Event {
    /// Id.
    pub id: i64,
    /// Ticket.
    pub ticket_id: i64,
    /// Who (None: the system).
    pub actor_id: Option<i64>,
    /// What was done.
    pub action: String,
    /// Status before.
    pub from_status: Option<String>,
    /// Status after.
    pub to_status: String,
    /// Why.
    pub reason: Option<String>,
    /// When.
    pub created_at: NaiveDateTime,
}

/// The event log of a ticket the caller may see.
pub fn events(conn: &mut DbConnection, id: i64, user: Option<i64>) -> AppResult<Vec<Event>> {
    let (_, a) = load_visible(conn, id, user)?;
    let mut q = ticket_events::table
        .filter(ticket_events::ticket_id.eq(id))
        .select(Event::as_select())
        .order(ticket_events::id.asc())
        .into_boxed();
    // Service-level events are the plan's business: a breach for the
    // requester and the team, a warning for the team only.
    if !a.team() {
        q = q.filter(ticket_events::action.ne("sla_warning"));
        if !a.requester {
            q = q.filter(ticket_events::action.ne("sla_breach"));
        }
    }
    Ok(q.load(conn)?)
}

/// A row of `response_templates`.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = response_templates)]
pub struct Template {
    /// Id.
    pub id: i64,
    /// Project.
    pub project_id: i64,
    /// Owner; None for project-wide templates.
    pub owner_id: Option<i64>,
    /// Short name.
    pub name: String,
    /// Text.
    pub body: String,
    /// Created.
    pub created_at: NaiveDateTime,
    /// Updated.
    pub updated_at: NaiveDateTime,
}

fn template_body(
    conn: &mut DbConnection,
    project_id: i64,
    user: i64,
    template_id: i64,
) -> AppResult<String> {
    let t: Option<Template> = response_templates::table
        .find(template_id)
        .select(Template::as_select())
        .first(conn)
        .optional()?;
    match t {
        Some(t)
            if t.project_id == project_id && (t.owner_id.is_none() || t.owner_id == Some(user)) =>
        {
            Ok(t.body)
        }
        _ => Err(AppError::field(
            "template_id",
            "no such template of yours or of this project",
        )),
    }
}

/// Creates a template: `project_wide` ones by maintainers, personal ones by
/// any team member.
pub fn create_template(
    conn: &mut DbConnection,
    project_id: i64,
    user: i64,
    name: &str,
    body: &str,
    project_wide: bool,
) -> AppResult<Template> {
    let maintainer = project_domain::is_maintainer(conn, project_id, user)?;
    let helper = helpers::is_approved(conn, project_id, user)?;
    if project_wide && !maintainer {
        return Err(AppError::forbidden(
            "only maintainers may create project-wide templates",
        ));
    }
    if !(maintainer || helper) {
        return Err(AppError::forbidden("templates are for the project's team"));
    }
    let mut errors = Vec::new();
    if !(1..=100).contains(&name.trim().chars().count()) {
        errors.push(FieldError::new("name", "must be 1 to 100 characters"));
    }
    if !(1..=20_000).contains(&body.trim().chars().count()) {
        errors.push(FieldError::new("body", "must be 1 to 20000 characters"));
    }
    if !errors.is_empty() {
        return Err(AppError::Validation(errors));
    }
    let at = now();
    let id: i64 = diesel::insert_into(response_templates::table)
        .values((
            response_templates::project_id.eq(project_id),
            response_templates::owner_id.eq((!project_wide).then_some(user)),
            response_templates::name.eq(name.trim()),
            response_templates::body.eq(body),
            response_templates::created_at.eq(at),
            response_templates::updated_at.eq(at),
        ))
        .returning(response_templates::id)
        .get_result(conn)?;
    Ok(response_templates::table
        .find(id)
        .select(Template::as_select())
        .first(conn)?)
}

/// Project-wide templates and the caller's own, for team members.
pub fn list_templates(
    conn: &mut DbConnection,
    project_id: i64,
    user: i64,
) -> AppResult<Vec<Template>> {
    if !(project_domain::is_maintainer(conn, project_id, user)?
        || helpers::is_approved(conn, project_id, user)?)
    {
        return Err(AppError::forbidden("templates are for the project's team"));
    }
    Ok(response_templates::table
        .filter(response_templates::project_id.eq(project_id))
        .filter(
            response_templates::owner_id
                .is_null()
                .or(response_templates::owner_id.eq(user)),
        )
        .select(Template::as_select())
        .order(response_templates::id)
        .load(conn)?)
}

/// Ids of projects where `user` is on the team (maintainer or approved helper).
pub fn team_project_ids(conn: &mut DbConnection, user: i64) -> QueryResult<Vec<i64>> {
    use crate::db::schema::{project_helpers, project_maintainers};
    let mut ids: Vec<i64> = project_maintainers::table
        .filter(project_maintainers::user_id.eq(user))
        .select(project_maintainers::project_id)
        .load(conn)?;
    ids.extend(
        project_helpers::table
            .filter(project_helpers::user_id.eq(user))
            .filter(project_helpers::status.eq(helpers::HelperStatus::Approved.as_str()))
            .select(project_helpers::project_id)
            .load::<i64>(conn)?,
    );
    ids.sort_unstable();
    ids.dedup();
    Ok(ids)
}

/// Filters for listing tickets.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// Only this project.
    pub project_id: Option<i64>,
    /// Only this status.
    pub status: Option<Status>,
    /// Only tickets the caller asked.
    pub mine: bool,
}

/// Tickets the caller may see, newest first, before the cursor id. Drafts
/// only to their requester; private tickets only to the requester and team.
pub fn list(
    conn: &mut DbConnection,
    user: Option<i64>,
    filter: &ListFilter,
    before: Option<i64>,
    limit: i64,
) -> AppResult<Vec<Ticket>> {
    let team = match user {
        Some(u) => team_project_ids(conn, u)?,
        None => Vec::new(),
    };
    let me = user.unwrap_or(-1);
    let not_draft = tickets::submitted_at.is_not_null();
    let visible = tickets::requester_id.eq(me).or(not_draft.and(
        tickets::visibility
            .eq(Visibility::Public.as_str())
            // Hidden by flags: private until reviewed.
            .and(tickets::hidden_at.is_null())
            .or(tickets::project_id.eq_any(team)),
    ));
    let mut q = tickets::table
        .filter(visible)
        .select(Ticket::as_select())
        .order(tickets::id.desc())
        .limit(limit)
        .into_boxed();
    if let Some(p) = filter.project_id {
        q = q.filter(tickets::project_id.eq(p));
    }
    if let Some(s) = filter.status {
        q = q.filter(tickets::status.eq(s.as_str()));
    }
    if filter.mine {
        q = q.filter(tickets::requester_id.eq(me));
    }
    if let Some(b) = before {
        q = q.filter(tickets::id.lt(b));
    }
    Ok(q.load(conn)?)
}

/// Tickets `user` has claimed and works on now, oldest claim first.
pub fn claimed_by(conn: &mut DbConnection, user: i64, limit: i64) -> QueryResult<Vec<Ticket>> {
    tickets::table
        .filter(tickets::claimed_by.eq(user))
        .filter(tickets::status.eq(Status::Claimed.as_str()))
        .order(tickets::claimed_at.asc())
        .limit(limit)
        .select(Ticket::as_select())
        .load(conn)
}

/// Public tickets `user` resolved and their requester accepted (closed),
/// newest first: what a helper's public profile shows.
pub fn solved_by(conn: &mut DbConnection, user: i64, limit: i64) -> QueryResult<Vec<Ticket>> {
    tickets::table
        .filter(tickets::resolved_by.eq(user))
        .filter(tickets::status.eq(Status::Closed.as_str()))
        .filter(tickets::visibility.eq(Visibility::Public.as_str()))
        .filter(tickets::hidden_at.is_null())
        .filter(tickets::submitted_at.is_not_null())
        .order(tickets::closed_at.desc())
        .limit(limit)
        .select(Ticket::as_select())
        .load(conn)
}

/// The close reason of a ticket its requester closed because the AI
/// lane's answer solved it (the dashboard's AI lane).
pub const AI_ANSWER_REASON: &str = "answered by the AI lane";

/// Median time from submission to resolution of the project's tickets
/// resolved in the last `days` days; `None` without any.
pub fn median_resolution(
    conn: &mut DbConnection,
    project_id: i64,
    days: i64,
) -> QueryResult<Option<chrono::Duration>> {
    let since = now() - chrono::Duration::days(days);
    let rows: Vec<(Option<NaiveDateTime>, Option<NaiveDateTime>)> = tickets::table
        .filter(tickets::project_id.eq(project_id))
        .filter(tickets::resolved_at.ge(since))
        .select((tickets::submitted_at, tickets::resolved_at))
        .load(conn)?;
    let mut waits: Vec<chrono::Duration> = rows
        .into_iter()
        .filter_map(|(s, r)| Some((r? - s?).max(chrono::Duration::zero())))
        .collect();
    if waits.is_empty() {
        return Ok(None);
    }
    waits.sort();
    Ok(Some(waits[waits.len() / 2]))
}

/// The median time from submission to the first public message by someone
/// other than the requester, over the project's tickets submitted in the
/// last `days` days that got one; `None` when none did.
pub fn median_first_response(
    conn: &mut DbConnection,
    project_id: i64,
    days: i64,
) -> QueryResult<Option<chrono::Duration>> {
    let since = now() - chrono::Duration::days(days);
    let rows: Vec<(i64, i64, Option<NaiveDateTime>, NaiveDateTime)> = tickets::table
        .inner_join(ticket_messages::table.on(ticket_messages::ticket_id.eq(tickets::id)))
        .filter(tickets::project_id.eq(project_id))
        .filter(tickets::submitted_at.ge(since))
        .filter(ticket_messages::internal.eq(false))
        .filter(ticket_messages::author_id.ne(tickets::requester_id))
        .select((
            tickets::id,
            tickets::requester_id,
            tickets::submitted_at,
            ticket_messages::created_at,
        ))
        .load(conn)?;
    let mut first: std::collections::HashMap<i64, chrono::Duration> =
        std::collections::HashMap::new();
    for (id, _, submitted, at) in rows {
        let Some(submitted) = submitted else { continue };
        let waited = (at - submitted).max(chrono::Duration::zero());
        first
            .entry(id)
            .and_modify(|d| *d = (*d).min(waited))
            .or_insert(waited);
    }
    let mut waits: Vec<chrono::Duration> = first.into_values().collect();
    if waits.is_empty() {
        return Ok(None);
    }
    waits.sort();
    Ok(Some(waits[waits.len() / 2]))
}
