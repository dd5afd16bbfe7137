//! The daily digest: at the hour each person chose, in their own time zone
//! (right across daylight-saving changes), one mail with what happened on
//! their tickets since the last one (notifications at level `digest`), and
//! the top of each queue they help in. A row per person and local date
//! claims the digest, so it goes out once a day even with several workers.

use super::notifications::{self, Settings};
use super::{helpers, now, projects, queue};
use crate::db::schema::{digests, notifications as n, users};
use crate::db::DbConnection;
use crate::error::AppResult;
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use diesel::prelude::*;

/// The local date whose digest is due at `at` for someone with `settings`:
/// `Some(date)` from their digest hour on that local day (an unknown zone
/// counts as UTC). A day whose chosen hour does not exist (the spring
/// change skips it) is due from the next hour that does.
pub fn due_date(settings: &Settings, at: DateTime<Utc>) -> Option<NaiveDate> {
    let zone: chrono_tz::Tz = settings.time_zone.parse().unwrap_or(chrono_tz::UTC);
    let local = at.with_timezone(&zone);
    let hour = u32::try_from(settings.digest_hour).ok()?;
    let date = local.date_naive();
    // The instant of the chosen hour on that local day; when the clock
    // jumps over it, the first instant after the gap.
    let start = date.and_hms_opt(hour, 0, 0)?;
    let due_at = match zone.from_local_datetime(&start) {
        chrono::LocalResult::Single(t) => t,
        chrono::LocalResult::Ambiguous(first, _) => first,
        chrono::LocalResult::None => zone
            .from_local_datetime(&(start + chrono::Duration::hours(1)))
            .earliest()?,
    };
    (local >= due_at).then_some(date)
}

/// One ticket's lines in a digest.
#[derive(Debug, Clone)]
pub struct TicketNews {
    /// Ticket.
    pub ticket_id: i64,
    /// Its title.
    pub title: String,
    /// What happened, oldest first.
    pub lines: Vec<String>,
}

/// One queue in a digest.
#[derive(Debug, Clone)]
pub struct QueueTop {
    /// Project name.
    pub project: String,
    /// Project slug.
    pub slug: String,
    /// Open tickets waiting.
    pub total: usize,
    /// (position, ticket id, title, paid) of the first ten the helper may
    /// see.
    pub top: Vec<(usize, i64, String, bool)>,
}

/// A digest ready to send.
#[derive(Debug, Clone)]
pub struct Digest {
    /// Recipient.
    pub user_id: i64,
    /// Their local date.
    pub date: NaiveDate,
    /// News per ticket.
    pub tickets: Vec<TicketNews>,
    /// Their queues.
    pub queues: Vec<QueueTop>,
    /// The notifications it carries (marked sent with it).
    pub notification_ids: Vec<i64>,
}

/// Claims today's digest for `user` (false when it was already claimed
/// by a run or another worker).
fn claim(conn: &mut DbConnection, user: i64, date: NaiveDate) -> QueryResult<bool> {
    let n = crate::per_backend!(conn, |c| diesel::insert_into(digests::table)
        .values((
            digests::user_id.eq(user),
            digests::local_date.eq(date),
            digests::created_at.eq(now()),
        ))
        .on_conflict_do_nothing()
        .execute(c))?;
    Ok(n == 1)
}

/// The people whose digest is due at `at` and not yet claimed for their
/// local date, claimed now: each with what goes in it. People with nothing
/// to read get no mail (their day is still claimed).
pub fn due(conn: &mut DbConnection, at: DateTime<Utc>) -> AppResult<Vec<Digest>> {
    // Candidates: anyone with digest news, and every approved helper (the
    // queues). Only addresses that can sign in and are verified.
    let mut candidates: Vec<i64> = n::table
        .filter(n::channel.eq(notifications::EMAIL))
        .filter(n::status.eq("digest"))
        .select(n::user_id)
        .distinct()
        .load(conn)?;
    candidates.extend(helpers::approved_user_ids(conn)?);
    candidates.sort_unstable();
    candidates.dedup();
    let verified: Vec<i64> = users::table
        .filter(users::id.eq_any(&candidates))
        .filter(users::can_login.eq(true))
        .filter(users::email_verified_at.is_not_null())
        .select(users::id)
        .load(conn)?;
    let mut out = Vec::new();
    for user in verified {
        let settings = notifications::settings(conn, user)?;
        if settings.level == notifications::Level::Mute {
            continue;
        }
        let Some(date) = due_date(&settings, at) else {
            continue;
        };
        if !claim(conn, user, date)? {
            continue;
        }
        let digest = gather(conn, user, date)?;
        if digest.tickets.is_empty() && digest.queues.iter().all(|q| q.top.is_empty()) {
            continue;
        }
        out.push(digest);
    }
    Ok(out)
}

fn gather(conn: &mut DbConnection, user: i64, date: NaiveDate) -> AppResult<Digest> {
    let rows: Vec<notifications::Notification> = n::table
        .filter(n::user_id.eq(user))
        .filter(n::channel.eq(notifications::EMAIL))
        .filter(n::status.eq("digest"))
        .order(n::id.asc())
        .limit(500)
        .select(notifications::Notification::as_select())
        .load(conn)?;
    let mut tickets: Vec<TicketNews> = Vec::new();
    let mut ids = Vec::new();
    for row in rows {
        ids.push(row.id);
        // Seen already, or no longer theirs to see: not news.
        if notifications::active_since(conn, user, row.ticket_id, row.happened_at)?
            || !notifications::still_may_see(conn, &row)?
        {
            continue;
        }
        match tickets.iter_mut().find(|t| t.ticket_id == row.ticket_id) {
            Some(t) => t.lines.push(row.summary),
            None => {
                let (title, _) = notifications::subject_of(conn, row.ticket_id)?;
                tickets.push(TicketNews {
                    ticket_id: row.ticket_id,
                    title,
                    lines: vec![row.summary],
                });
            }
        }
    }
    let mut queues = Vec::new();
    for h in helpers::of_user(conn, user)?
        .into_iter()
        .filter(|h| h.status == helpers::HelperStatus::Approved.as_str())
    {
        let p = projects::by_id(conn, h.project_id)?;
        let entries = queue::entries(conn, &p)?;
        let total = entries.len();
        let mut top = Vec::new();
        for e in entries {
            if top.len() == 10 {
                break;
            }
            if let Ok((t, _)) = super::tickets::load_visible(conn, e.ticket_id, Some(user)) {
                top.push((e.position, t.id, t.title, e.paid));
            }
        }
        queues.push(QueueTop {
            project: p.name,
            slug: p.slug,
            total,
            top,
        });
    }
    Ok(Digest {
        user_id: user,
        date,
        tickets,
        queues,
        notification_ids: ids,
    })
}

/// Marks a sent digest's notifications as sent.
pub fn delivered(conn: &mut DbConnection, digest: &Digest) -> QueryResult<()> {
    diesel::update(n::table.filter(n::id.eq_any(&digest.notification_ids)))
        .set((n::status.eq("sent"), n::sent_at.eq(Some(now()))))
        .execute(conn)?;
    Ok(())
}

/// Gives a digest back when it could not be sent: its day is unclaimed so
/// the next run tries again.
pub fn undelivered(conn: &mut DbConnection, digest: &Digest) -> QueryResult<()> {
    diesel::delete(
        digests::table
            .filter(digests::user_id.eq(digest.user_id))
            .filter(digests::local_date.eq(digest.date)),
    )
    .execute(conn)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn berlin(hour: i32) -> Settings {
        Settings {
            level: notifications::Level::Digest,
            digest_hour: hour,
            time_zone: "Europe/Berlin".into(),
        }
    }

    #[test]
    fn the_digest_hour_is_local_across_daylight_saving() {
        let s = berlin(8);
        let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day);
        // Winter (UTC+1): 08:00 in Berlin is 07:00 UTC.
        assert_eq!(due_date(&s, at("2026-03-28T06:59:00Z")), None);
        assert_eq!(due_date(&s, at("2026-03-28T07:00:00Z")), d(2026, 3, 28));
        // Summer from 29 March (UTC+2): 08:00 in Berlin is 06:00 UTC.
        assert_eq!(due_date(&s, at("2026-03-29T05:59:00Z")), None);
        assert_eq!(due_date(&s, at("2026-03-29T06:00:00Z")), d(2026, 3, 29));
        // Back to winter on 25 October.
        assert_eq!(due_date(&s, at("2026-10-25T06:30:00Z")), None);
        assert_eq!(due_date(&s, at("2026-10-25T07:00:00Z")), d(2026, 10, 25));
        // 02:00 does not exist on 29 March in Berlin: due at 03:00 CEST.
        let s2 = berlin(2);
        assert_eq!(due_date(&s2, at("2026-03-29T00:59:00Z")), None);
        assert_eq!(due_date(&s2, at("2026-03-29T01:00:00Z")), d(2026, 3, 29));
        // 02:00 happens twice on 25 October: due from the first.
        assert_eq!(due_date(&s2, at("2026-10-25T00:00:00Z")), d(2026, 10, 25));
        // The local date, not the UTC one: 23:30 UTC is already tomorrow
        // in Tokyo.
        let tokyo = Settings {
            level: notifications::Level::Digest,
            digest_hour: 8,
            time_zone: "Asia/Tokyo".into(),
        };
        assert_eq!(due_date(&tokyo, at("2026-06-01T22:59:00Z")), None);
        assert_eq!(due_date(&tokyo, at("2026-06-01T23:00:00Z")), d(2026, 6, 2));
    }
}
