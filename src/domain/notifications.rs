//! Notifications: who is told what happened to a ticket, how, and when.
//!
//! Each person chooses a level — **all** (at once), **digest** (the
//! default) or **mute** — for everything, and may override it per project
//! and per ticket (the ticket's wins, then the project's). The dispatcher
//! reads the append-only logs (ticket events, messages, bids) past a cursor
//! per channel and source, and writes one row per recipient, thing and
//! channel; a unique key on that row makes "told exactly once" hold across
//! restarts and any number of workers racing on the same logs (a second
//! insert is a no-op, and a cursor only moves forward). Sending is the
//! channel's job (`jobs::send_notifications` for email).

use super::{helpers, now, projects};
use crate::db::schema::{
    bids, notification_cursors as nc, notification_levels as nl, notification_settings as ns,
    notifications as n, projects as p, ticket_events as te, ticket_messages as tm, tickets as t,
    users,
};
use crate::db::DbConnection;
use crate::error::{AppError, AppResult, FieldError};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use std::collections::{BTreeSet, HashMap};

/// The email channel.
pub const EMAIL: &str = "email";
/// The chat channel: updates on tickets posted from Discord or Slack, to
/// the account that posted them, by direct message.
pub const CHAT: &str = "chat";
/// How many log entries one dispatch reads per source.
const BATCH: i64 = 500;

/// How much a person wants to hear.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Each thing at once.
    All,
    /// Gathered into the daily digest.
    Digest,
    /// Nothing, mentions included.
    Mute,
}

impl Level {
    /// Stored and API form.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::All => "all",
            Level::Digest => "digest",
            Level::Mute => "mute",
        }
    }

    /// Parses the stored and API form.
    pub fn parse(s: &str) -> Option<Level> {
        match s {
            "all" => Some(Level::All),
            "digest" => Some(Level::Digest),
            "mute" => Some(Level::Mute),
            _ => None,
        }
    }
}

/// A person's overall choice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// For everything not overridden.
    pub level: Level,
    /// Local hour (0–23) the digest goes out.
    pub digest_hour: i32,
    /// IANA time zone, e.g. `Europe/Berlin`.
    pub time_zone: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            level: Level::Digest,
            digest_hour: 8,
            time_zone: "UTC".into(),
        }
    }
}

/// `user`'s settings (the defaults until they choose).
pub fn settings(conn: &mut DbConnection, user: i64) -> QueryResult<Settings> {
    let row: Option<(String, i32, String)> = ns::table
        .find(user)
        .select((ns::level, ns::digest_hour, ns::time_zone))
        .first(conn)
        .optional()?;
    Ok(
        row.map_or_else(Settings::default, |(level, digest_hour, time_zone)| {
            Settings {
                level: Level::parse(&level).unwrap_or(Level::Digest),
                digest_hour,
                time_zone,
            }
        }),
    )
}

/// Parses a level from a request.
pub fn level_field(field: &str, s: &str) -> AppResult<Level> {
    Level::parse(s).ok_or_else(|| AppError::field(field, "must be all, digest or mute"))
}

/// Validates and stores `user`'s settings: a level, an hour 0–23 and a
/// known IANA time zone (422 otherwise, nothing stored).
pub fn set_settings(
    conn: &mut DbConnection,
    user: i64,
    level: &str,
    digest_hour: i32,
    time_zone: &str,
) -> AppResult<Settings> {
    let mut errors = Vec::new();
    let parsed = Level::parse(level);
    if parsed.is_none() {
        errors.push(FieldError::new("level", "must be all, digest or mute"));
    }
    if !(0..=23).contains(&digest_hour) {
        errors.push(FieldError::new("digest_hour", "must be between 0 and 23"));
    }
    let zone = time_zone.trim();
    if zone.parse::<chrono_tz::Tz>().is_err() {
        errors.push(FieldError::new(
            "time_zone",
            "must be an IANA time zone such as Europe/Berlin",
        ));
    }
    if !errors.is_empty() {
        return Err(AppError::Validation(errors));
    }
    let level = parsed.unwrap_or(Level::Digest);
    let at = now();
    crate::per_backend!(conn, |c| diesel::insert_into(ns::table)
        .values((
            ns::user_id.eq(user),
            ns::level.eq(level.as_str()),
            ns::digest_hour.eq(digest_hour),
            ns::time_zone.eq(zone),
            ns::updated_at.eq(at),
        ))
        .on_conflict(ns::user_id)
        .do_update()
        .set((
            ns::level.eq(level.as_str()),
            ns::digest_hour.eq(digest_hour),
            ns::time_zone.eq(zone),
            ns::updated_at.eq(at),
        ))
        .execute(c))?;
    Ok(settings(conn, user)?)
}

/// `user`'s override for a project or ticket, if any.
pub fn override_of(
    conn: &mut DbConnection,
    user: i64,
    scope: &str,
    id: i64,
) -> QueryResult<Option<Level>> {
    let level: Option<String> = nl::table
        .find((user, scope, id))
        .select(nl::level)
        .first(conn)
        .optional()?;
    Ok(level.as_deref().and_then(Level::parse))
}

fn set_override(
    conn: &mut DbConnection,
    user: i64,
    scope: &str,
    id: i64,
    level: Level,
) -> QueryResult<()> {
    let at = now();
    crate::per_backend!(conn, |c| diesel::insert_into(nl::table)
        .values((
            nl::user_id.eq(user),
            nl::scope.eq(scope),
            nl::scope_id.eq(id),
            nl::level.eq(level.as_str()),
            nl::updated_at.eq(at),
        ))
        .on_conflict((nl::user_id, nl::scope, nl::scope_id))
        .do_update()
        .set((nl::level.eq(level.as_str()), nl::updated_at.eq(at)))
        .execute(c))?;
    Ok(())
}

/// Sets `user`'s level for a ticket they may see (404 otherwise).
pub fn set_ticket_level(
    conn: &mut DbConnection,
    user: i64,
    ticket: i64,
    level: Level,
) -> AppResult<()> {
    super::tickets::load_visible(conn, ticket, Some(user))?;
    set_override(conn, user, "ticket", ticket, level)?;
    Ok(())
}

/// Sets `user`'s level for a project.
pub fn set_project_level(
    conn: &mut DbConnection,
    user: i64,
    slug: &str,
    level: Level,
) -> AppResult<Level> {
    let project = projects::by_slug(conn, slug)?;
    set_override(conn, user, "project", project.id, level)?;
    Ok(level)
}

/// What `user` hears about ticket `ticket` of project `project`: the
/// ticket's override, else the project's, else their overall level.
pub fn effective(
    conn: &mut DbConnection,
    user: i64,
    ticket: i64,
    project: i64,
) -> QueryResult<Level> {
    if let Some(l) = override_of(conn, user, "ticket", ticket)? {
        return Ok(l);
    }
    if let Some(l) = override_of(conn, user, "project", project)? {
        return Ok(l);
    }
    // Their own overall choice, once they made one; until then the
    // project's default.
    let chose: bool = diesel::select(diesel::dsl::exists(ns::table.find(user))).get_result(conn)?;
    if chose {
        return Ok(settings(conn, user)?.level);
    }
    let default: String = p::table
        .find(project)
        .select(p::notification_default)
        .first(conn)?;
    Ok(Level::parse(&default).unwrap_or(Level::Digest))
}

/// One thing that happened, as the dispatcher reads it from a log.
struct Happening {
    /// A message's text, to find the people it mentions (`@Name`).
    text: Option<String>,
    source: &'static str,
    id: i64,
    ticket: i64,
    actor: Option<i64>,
    /// Only the project's team is told (internal notes).
    team_only: bool,
    /// Also told, whatever else: e.g. the helper a ticket was assigned to.
    also: Option<i64>,
    /// Only these (a bid: the requester).
    only: Option<i64>,
    summary: String,
    at: NaiveDateTime,
}

fn cursor(conn: &mut DbConnection, channel: &str, source: &str) -> QueryResult<i64> {
    crate::per_backend!(conn, |c| diesel::insert_into(nc::table)
        .values((
            nc::channel.eq(channel),
            nc::source.eq(source),
            nc::last_id.eq(0_i64)
        ))
        .on_conflict_do_nothing()
        .execute(c))?;
    nc::table
        .find((channel, source))
        .select(nc::last_id)
        .first(conn)
}

fn advance(conn: &mut DbConnection, channel: &str, source: &str, to: i64) -> QueryResult<()> {
    // Only forward: a slower worker never moves the cursor back.
    diesel::update(
        nc::table
            .filter(nc::channel.eq(channel))
            .filter(nc::source.eq(source))
            .filter(nc::last_id.lt(to)),
    )
    .set(nc::last_id.eq(to))
    .execute(conn)?;
    Ok(())
}

fn excerpt(text: &str, n: usize) -> String {
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= n {
        one_line
    } else {
        format!("{}…", one_line.chars().take(n).collect::<String>())
    }
}

fn event_summary(action: &str, actor: &str, reason: Option<&str>) -> Option<String> {
    let why = reason.map(|r| format!(" ({r})")).unwrap_or_default();
    Some(match action {
        // Submitting is news for the queue (the helpers' digest shows the
        // top of it), not for anyone on the ticket yet.
        "claim" => format!("{actor} claimed the ticket and is working on it"),
        "unclaim" => format!("{actor} gave the ticket back to the queue{why}"),
        "assign" => format!("{actor} assigned the ticket{why}"),
        "transfer" => format!("{actor} handed the ticket over{why}"),
        "resolve" => format!("{actor} resolved the ticket: please accept or reopen it"),
        "accept" => format!("{actor} accepted the resolution"),
        "auto_accept" => "The resolution was accepted automatically".to_owned(),
        "reopen" => format!("{actor} reopened the ticket{why}"),
        "close" => format!("{actor} closed the ticket{why}"),
        "auto_close" => format!("The ticket was closed for inactivity{why}"),
        "cancel" => format!("{actor} cancelled the ticket"),
        "sla_warning" => format!("The guaranteed response time runs out soon{why}"),
        "sla_breach" => format!("The guaranteed response time was missed{why}"),
        _ => return None,
    })
}

/// Reads each log past the channel's cursors and records who is to be
/// told; returns how many notifications were created. Safe to run in any
/// number of workers at once.
pub fn dispatch(conn: &mut DbConnection, channel: &str) -> AppResult<usize> {
    let mut happenings = Vec::new();
    let names = |conn: &mut DbConnection, ids: Vec<i64>| -> QueryResult<HashMap<i64, String>> {
        Ok(users::table
            .filter(users::id.eq_any(ids))
            .select((users::id, users::display_name))
            .load::<(i64, String)>(conn)?
            .into_iter()
            .collect())
    };

    // Rows are read past the cursor and, again, for a trailing window: on
    // PostgreSQL a transaction may commit a lower id after a higher one was
    // read; the unique key makes the second reading harmless.
    let window = now() - chrono::Duration::minutes(10);
    let from = cursor(conn, channel, "event")?;
    type EventRow = (
        i64,
        i64,
        Option<i64>,
        String,
        Option<String>,
        NaiveDateTime,
        Option<i64>,
    );
    let events: Vec<EventRow> = te::table
        .inner_join(t::table.on(t::id.eq(te::ticket_id)))
        .filter(te::id.gt(from).or(te::created_at.gt(window)))
        .order(te::id.asc())
        .limit(BATCH)
        .select((
            te::id,
            te::ticket_id,
            te::actor_id,
            te::action,
            te::reason,
            te::created_at,
            t::claimed_by,
        ))
        .load(conn)?;
    let event_cursor = events.last().map(|e| e.0);
    let who = names(conn, events.iter().filter_map(|e| e.2).collect())?;
    for (id, ticket, actor, action, reason, at, claimed_by) in events {
        let name = actor
            .and_then(|a| who.get(&a).cloned())
            .unwrap_or_else(|| "Guildhall".into());
        let Some(summary) = event_summary(&action, &name, reason.as_deref()) else {
            continue;
        };
        let assigned = matches!(action.as_str(), "assign" | "transfer" | "claim");
        happenings.push(Happening {
            text: None,
            source: "event",
            id,
            ticket,
            actor,
            // Warnings are for the team; a breach is for everyone on it.
            team_only: action == "sla_warning",
            also: if assigned { claimed_by } else { None },
            only: None,
            summary,
            at,
        });
    }

    let from_messages = cursor(conn, channel, "message")?;
    let messages: Vec<(i64, i64, i64, bool, String, NaiveDateTime)> = tm::table
        .filter(tm::id.gt(from_messages).or(tm::created_at.gt(window)))
        .order(tm::id.asc())
        .limit(BATCH)
        .select((
            tm::id,
            tm::ticket_id,
            tm::author_id,
            tm::internal,
            tm::body,
            tm::created_at,
        ))
        .load(conn)?;
    let message_cursor = messages.last().map(|m| m.0);
    let who = names(conn, messages.iter().map(|m| m.2).collect())?;
    for (id, ticket, author, internal, body, at) in messages {
        let name = who.get(&author).cloned().unwrap_or_default();
        let what = if internal {
            "an internal note"
        } else {
            "a message"
        };
        happenings.push(Happening {
            source: "message",
            id,
            ticket,
            actor: Some(author),
            team_only: internal,
            also: None,
            only: None,
            summary: format!("{name} wrote {what}: {}", excerpt(&body, 400)),
            text: Some(body),
            at,
        });
    }

    let from_bids = cursor(conn, channel, "bid")?;
    type BidRow = (i64, i64, i64, i64, String, i32, NaiveDateTime, i64);
    let new_bids: Vec<BidRow> = bids::table
        .inner_join(t::table.on(t::id.eq(bids::ticket_id)))
        .filter(bids::id.gt(from_bids).or(bids::created_at.gt(window)))
        .order(bids::id.asc())
        .limit(BATCH)
        .select((
            bids::id,
            bids::ticket_id,
            bids::helper_id,
            bids::amount,
            bids::currency,
            bids::eta_hours,
            bids::created_at,
            t::requester_id,
        ))
        .load(conn)?;
    let bid_cursor = new_bids.last().map(|b| b.0);
    let who = names(conn, new_bids.iter().map(|b| b.2).collect())?;
    for (id, ticket, helper, amount, currency, eta, at, requester) in new_bids {
        let name = who.get(&helper).cloned().unwrap_or_default();
        happenings.push(Happening {
            text: None,
            source: "bid",
            id,
            ticket,
            actor: Some(helper),
            team_only: false,
            also: None,
            only: Some(requester),
            summary: format!(
                "{name} offers to solve it for {} within {eta} hours",
                crate::web::money(amount, &currency)
            ),
            at,
        });
    }

    // The chat channel tells only the person who posted a ticket from a
    // chat, about that ticket.
    let chat_people = if channel == CHAT {
        let tickets: Vec<i64> = happenings.iter().map(|h| h.ticket).collect();
        let chat = crate::channels::chat::chat_recipients(conn, &tickets)?;
        // Only tickets posted from a chat concern it (the cursors above
        // still move past the rest).
        happenings.retain(|h| chat.contains_key(&h.ticket));
        Some(chat)
    } else {
        None
    };
    // Who is told what, worked out before the write transaction (SQLite
    // has one writer: keep its lock short).
    let mut planned: Vec<(i64, &Happening, &'static str, bool)> = Vec::new();
    let mut cache: HashMap<i64, (i64, BTreeSet<i64>, BTreeSet<i64>)> = HashMap::new();
    for h in &happenings {
        if let std::collections::hash_map::Entry::Vacant(e) = cache.entry(h.ticket) {
            e.insert(participants(conn, h.ticket)?);
        }
        let (project, people, team) = &cache[&h.ticket];
        let mut to: BTreeSet<i64> = match h.only {
            Some(u) => [u].into_iter().filter(|u| people.contains(u)).collect(),
            None if h.team_only => people.intersection(team).copied().collect(),
            None => people.clone(),
        };
        if let Some(a) = h.also {
            if people.contains(&a) || team.contains(&a) {
                to.insert(a);
            }
        }
        // Those a message mentions by `@Name` are told too, if they may see
        // it (an internal note: the team only). Muted means muted.
        let mut mentioned = BTreeSet::new();
        if let Some(text) = &h.text {
            for (user, name) in mentionable(conn, h.ticket, *project, h.team_only)? {
                if mentions(text, &name) {
                    mentioned.insert(user);
                }
            }
        }
        to.extend(mentioned.iter().copied());
        if let Some(actor) = h.actor {
            to.remove(&actor);
        }
        if let Some(chat) = &chat_people {
            to.retain(|u| chat.get(&h.ticket) == Some(u));
        }
        for user in to {
            let status = match effective(conn, user, h.ticket, *project)? {
                Level::Mute => continue,
                Level::All => "pending",
                // A chat has no digest: an update comes at once.
                Level::Digest if channel == CHAT => "pending",
                Level::Digest => "digest",
            };
            planned.push((user, h, status, mentioned.contains(&user)));
        }
    }
    let mut created = 0;
    crate::db::write_tx(conn, |conn| -> AppResult<()> {
        let at = now();
        for (user, h, status, mentioned) in &planned {
            let summary = if *mentioned {
                h.summary.replacen(" wrote ", " mentioned you in ", 1)
            } else {
                h.summary.clone()
            };
            let n = crate::per_backend!(conn, |c| diesel::insert_into(n::table)
                .values((
                    n::user_id.eq(user),
                    n::ticket_id.eq(h.ticket),
                    n::source.eq(h.source),
                    n::source_id.eq(h.id),
                    n::channel.eq(channel),
                    n::status.eq(status),
                    n::summary.eq(&summary),
                    n::happened_at.eq(h.at),
                    n::created_at.eq(at),
                ))
                .on_conflict_do_nothing()
                .execute(c))?;
            created += n;
        }
        for (source, to) in [
            ("event", event_cursor),
            ("message", message_cursor),
            ("bid", bid_cursor),
        ] {
            if let Some(to) = to {
                advance(conn, channel, source, to)?;
            }
        }
        Ok(())
    })?;
    Ok(created)
}

/// A ticket's project, the people on it (requester, claimant, resolver,
/// authors of its messages) and which of those are the project's team.
fn participants(
    conn: &mut DbConnection,
    ticket: i64,
) -> QueryResult<(i64, BTreeSet<i64>, BTreeSet<i64>)> {
    let (project, requester, claimed, resolved): (i64, i64, Option<i64>, Option<i64>) = t::table
        .find(ticket)
        .select((
            t::project_id,
            t::requester_id,
            t::claimed_by,
            t::resolved_by,
        ))
        .first(conn)?;
    let mut people: BTreeSet<i64> = [Some(requester), claimed, resolved]
        .into_iter()
        .flatten()
        .collect();
    people.extend(
        tm::table
            .filter(tm::ticket_id.eq(ticket))
            .select(tm::author_id)
            .distinct()
            .load::<i64>(conn)?,
    );
    // Imported people cannot sign in and are never written to.
    let can_login: BTreeSet<i64> = users::table
        .filter(users::id.eq_any(people.iter().copied().collect::<Vec<_>>()))
        .filter(users::can_login.eq(true))
        .select(users::id)
        .load::<i64>(conn)?
        .into_iter()
        .collect();
    people.retain(|u| can_login.contains(u));
    // Only those who may still see the ticket (a revoked helper of a
    // private ticket hears nothing more of it).
    let row = t::table
        .find(ticket)
        .select(super::tickets::Ticket::as_select())
        .first(conn)?;
    let mut visible = BTreeSet::new();
    for &u in &people {
        let can = super::tickets::access(conn, &row, Some(u))
            .map_err(|e| diesel::result::Error::QueryBuilderError(e.to_string().into()))?
            .can_view(&row);
        if can {
            visible.insert(u);
        }
    }
    let people = visible;
    let mut team = BTreeSet::new();
    for &u in &people {
        if projects::is_maintainer(conn, project, u)? || helpers::is_approved(conn, project, u)? {
            team.insert(u);
        }
    }
    Ok((project, people, team))
}

/// A notification waiting to be sent at once.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = n)]
pub struct Notification {
    /// Id.
    pub id: i64,
    /// Recipient.
    pub user_id: i64,
    /// Ticket.
    pub ticket_id: i64,
    /// `event`, `message` or `bid`.
    pub source: String,
    /// Id in that log.
    pub source_id: i64,
    /// What happened, in words.
    pub summary: String,
    /// When it happened.
    pub happened_at: NaiveDateTime,
}

/// Up to `limit` notifications of `channel` to send now, oldest first.
pub fn pending(
    conn: &mut DbConnection,
    channel: &str,
    limit: i64,
) -> QueryResult<Vec<Notification>> {
    n::table
        .filter(n::channel.eq(channel))
        .filter(n::status.eq("pending"))
        .order(n::id.asc())
        .limit(limit)
        .select(Notification::as_select())
        .load(conn)
}

/// Claims a pending notification for sending (false when another worker
/// has it), so each is sent by one worker.
pub fn claim(conn: &mut DbConnection, id: i64) -> QueryResult<bool> {
    let n = diesel::update(n::table.find(id).filter(n::status.eq("pending")))
        .set((n::status.eq("sending"), n::sent_at.eq(Some(now()))))
        .execute(conn)?;
    Ok(n == 1)
}

/// Records how a claimed notification ended: `sent`, or `skipped`.
pub fn finish(conn: &mut DbConnection, id: i64, status: &str) -> QueryResult<()> {
    diesel::update(n::table.find(id))
        .set((n::status.eq(status), n::sent_at.eq(Some(now()))))
        .execute(conn)?;
    Ok(())
}

/// Gives a claimed notification back (the mail server refused it for now).
pub fn release(conn: &mut DbConnection, id: i64) -> QueryResult<()> {
    diesel::update(n::table.find(id).filter(n::status.eq("sending")))
        .set(n::status.eq("pending"))
        .execute(conn)?;
    Ok(())
}

/// Whether `user` acted on `ticket` after `since` (wrote or changed it):
/// they know already, so they are not told.
pub fn active_since(
    conn: &mut DbConnection,
    user: i64,
    ticket: i64,
    since: NaiveDateTime,
) -> QueryResult<bool> {
    let wrote: bool = diesel::select(diesel::dsl::exists(
        tm::table
            .filter(tm::ticket_id.eq(ticket))
            .filter(tm::author_id.eq(user))
            .filter(tm::created_at.gt(since)),
    ))
    .get_result(conn)?;
    if wrote {
        return Ok(true);
    }
    diesel::select(diesel::dsl::exists(
        te::table
            .filter(te::ticket_id.eq(ticket))
            .filter(te::actor_id.eq(user))
            .filter(te::created_at.gt(since)),
    ))
    .get_result(conn)
}

/// The ticket's title and project name, for a mail's subject.
pub fn subject_of(conn: &mut DbConnection, ticket: i64) -> QueryResult<(String, String)> {
    t::table
        .inner_join(p::table.on(p::id.eq(t::project_id)))
        .filter(t::id.eq(ticket))
        .select((t::title, p::name))
        .first(conn)
}

/// Whether the notification is about a team-only note (a reply to its
/// mail is posted as one).
pub fn about_internal_note(conn: &mut DbConnection, n: &Notification) -> QueryResult<bool> {
    if n.source != "message" {
        return Ok(false);
    }
    Ok(tm::table
        .find(n.source_id)
        .select(tm::internal)
        .first::<bool>(conn)
        .optional()?
        // A message that is gone: treat it as the team's (fail closed).
        .unwrap_or(true))
}

/// Gives back notifications a worker claimed and never finished (it died
/// mid-send) `older_than` ago: they are sent again (at least once).
pub fn reap(conn: &mut DbConnection, older_than: chrono::Duration) -> QueryResult<usize> {
    diesel::update(
        n::table
            .filter(n::status.eq("sending"))
            .filter(n::sent_at.lt(now() - older_than)),
    )
    .set(n::status.eq("pending"))
    .execute(conn)
}

/// Whether the recipient may still see what the notification is about at
/// send time: the ticket, and for an internal note, as one of the team.
pub fn still_may_see(conn: &mut DbConnection, notification: &Notification) -> AppResult<bool> {
    let ticket = t::table
        .find(notification.ticket_id)
        .select(super::tickets::Ticket::as_select())
        .first(conn)?;
    let a = super::tickets::access(conn, &ticket, Some(notification.user_id))?;
    if !a.can_view(&ticket) {
        return Ok(false);
    }
    if notification.source == "message" {
        let internal: bool = tm::table
            .find(notification.source_id)
            .select(tm::internal)
            .first(conn)?;
        if internal && !a.team() {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Whether `text` mentions `name` as `@name` (case-insensitive, not as the
/// start of a longer word).
pub fn mentions(text: &str, name: &str) -> bool {
    let name = name.trim();
    if name.chars().count() < 2 {
        return false;
    }
    let text = text.to_lowercase();
    let needle = format!("@{}", name.to_lowercase());
    text.match_indices(&needle).any(|(at, m)| {
        text[at + m.len()..]
            .chars()
            .next()
            .is_none_or(|c| !c.is_alphanumeric() && c != '_')
    })
}

/// Who may be mentioned on a ticket: its project's maintainers and
/// approved helpers, and its requester — each only if they may see it (for
/// an internal note, only the team) — with their display names.
fn mentionable(
    conn: &mut DbConnection,
    ticket: i64,
    project: i64,
    team_only: bool,
) -> QueryResult<Vec<(i64, String)>> {
    let mut ids: Vec<i64> = projects::maintainers(conn, project)?;
    ids.extend(
        helpers::list(conn, project, helpers::HelperStatus::Approved, None, 1_000)?
            .into_iter()
            .map(|(h, _)| h.user_id),
    );
    let requester: i64 = t::table.find(ticket).select(t::requester_id).first(conn)?;
    if !team_only {
        ids.push(requester);
    }
    ids.sort_unstable();
    ids.dedup();
    let row = t::table
        .find(ticket)
        .select(super::tickets::Ticket::as_select())
        .first(conn)?;
    let mut out = Vec::new();
    for (id, name) in users::table
        .filter(users::id.eq_any(&ids))
        .filter(users::can_login.eq(true))
        .select((users::id, users::display_name))
        .load::<(i64, String)>(conn)?
    {
        let can = super::tickets::access(conn, &row, Some(id))
            .map_err(|e| diesel::result::Error::QueryBuilderError(e.to_string().into()))?
            .can_view(&row);
        if can {
            out.push((id, name));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::mentions;

    #[test]
    fn mentions_are_whole_names() {
        assert!(mentions("thanks @Erin Expert, that did it", "Erin Expert"));
        assert!(mentions("@erin expert?", "Erin Expert"));
        assert!(mentions("ping @cal", "Cal"));
        assert!(!mentions("ping @calvin", "Cal"));
        assert!(!mentions("erin expert without an at", "Erin Expert"));
        assert!(!mentions("@a", "A"));
    }
}
