//! A project's figures for a period, for its maintainers' dashboard:
//! tickets handled and by which lane, who helped, how fast, and what the
//! work earned with the commission broken out. Everything is read from the
//! tickets, messages and releases (the ledger's release rows), so the
//! dashboard agrees with the statement.

use super::projects::{self, Project};
use super::tickets::AI_ANSWER_REASON;
use crate::db::schema::{releases, ticket_events, ticket_messages, tickets, users};
use crate::db::DbConnection;
use crate::error::AppResult;
use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use std::collections::{BTreeMap, HashMap};

/// How the period is cut for the charts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    /// One bar a day (periods up to 31 days).
    Day,
    /// One bar a week, from Monday (up to 26 weeks).
    Week,
    /// One bar a month.
    Month,
}

impl Bucket {
    /// The bucket a period of `days` is best shown in.
    pub fn for_days(days: i64) -> Bucket {
        match days {
            d if d <= 31 => Bucket::Day,
            d if d <= 182 => Bucket::Week,
            _ => Bucket::Month,
        }
    }

    /// The first day of the bucket holding `d`.
    pub fn start_of(self, d: NaiveDate) -> NaiveDate {
        match self {
            Bucket::Day => d,
            Bucket::Week => d - Duration::days(i64::from(d.weekday().num_days_from_monday())),
            Bucket::Month => d.with_day(1).unwrap_or(d),
        }
    }

    fn next(self, d: NaiveDate) -> NaiveDate {
        match self {
            Bucket::Day => d + Duration::days(1),
            Bucket::Week => d + Duration::days(7),
            Bucket::Month => {
                let (y, m) = if d.month() == 12 {
                    (d.year() + 1, 1)
                } else {
                    (d.year(), d.month() + 1)
                };
                NaiveDate::from_ymd_opt(y, m, 1).unwrap_or(d + Duration::days(31))
            }
        }
    }

    /// A bucket's label.
    pub fn label(self, d: NaiveDate) -> String {
        match self {
            Bucket::Day | Bucket::Week => d.format("%Y-%m-%d").to_string(),
            Bucket::Month => d.format("%Y-%m").to_string(),
        }
    }
}

/// One bar of the charts.
#[derive(Debug, Clone, Default)]
pub struct Period {
    /// First day.
    pub start: Option<NaiveDate>,
    /// Tickets handled.
    pub handled: i64,
    /// Money released, minor units.
    pub released: i64,
    /// The project's commission on it.
    pub commission: i64,
    /// Guaranteed responses (enterprise plans) whose wait began in it, decided.
    pub sla_decided: i64,
    /// Of those, met.
    pub sla_met: i64,
}

/// The dashboard's figures.
#[derive(Debug, Clone)]
pub struct Dashboard {
    /// The project.
    pub project: Project,
    /// Inclusive start.
    pub from: NaiveDateTime,
    /// Exclusive end.
    pub to: NaiveDateTime,
    /// How the series is cut.
    pub bucket: Bucket,
    /// Tickets handled: resolved, or closed as answered by the AI lane, in
    /// the period (from the event log).
    pub handled: i64,
    /// Handled with money on them (a bounty, an accepted bid).
    pub paid: i64,
    /// Handled for free by the community.
    pub community: i64,
    /// Closed by the requester as answered by the AI lane.
    pub ai: i64,
    /// Money released in the period, minor units.
    pub released: i64,
    /// The helpers' part of it.
    pub helpers_amount: i64,
    /// The project's commission.
    pub commission: i64,
    /// The platform's fee.
    pub platform_fee: i64,
    /// Median from submission to the first answer by someone else, of
    /// tickets submitted in the period.
    pub median_first_response: Option<Duration>,
    /// Median from submission to resolution, of tickets handled.
    pub median_resolution: Option<Duration>,
    /// (user id, name, answers posted, tickets resolved), most resolved
    /// first.
    pub helpers: Vec<(i64, String, i64, i64)>,
    /// The series for the charts, oldest first, one per bucket.
    pub series: Vec<Period>,
    /// Guaranteed responses (enterprise plans) decided in the period, and
    /// of those met.
    pub sla: (i64, i64),
}

impl Dashboard {
    /// Released money per handled ticket, minor units.
    pub fn value_per_ticket(&self) -> i64 {
        if self.handled == 0 {
            0
        } else {
            self.released / self.handled
        }
    }
}

fn median(mut v: Vec<Duration>) -> Option<Duration> {
    if v.is_empty() {
        return None;
    }
    v.sort();
    Some(v[v.len() / 2])
}

/// The dashboard of project `slug` for `[from, to)`, for a maintainer (403
/// for anyone else, 404 for an unknown project).
pub fn load(
    conn: &mut DbConnection,
    slug: &str,
    user: i64,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> AppResult<Dashboard> {
    let p = projects::by_slug(conn, slug)?;
    projects::require_maintainer(conn, p.id, user)?;
    let bucket = Bucket::for_days((to - from).num_days());

    // Handled: resolved in the period, or closed as answered by the AI
    // lane, read from the event log (a later reopen does not rewrite the
    // past); a ticket counts once, at its first such event in the period.
    type Row = (
        i64,
        String,
        Option<i64>,
        NaiveDateTime,
        Option<NaiveDateTime>,
        i64,
        bool,
    );
    let rows: Vec<Row> = ticket_events::table
        .inner_join(tickets::table.on(tickets::id.eq(ticket_events::ticket_id)))
        .filter(tickets::project_id.eq(p.id))
        .filter(ticket_events::created_at.ge(from))
        .filter(ticket_events::created_at.lt(to))
        .filter(
            ticket_events::action.eq("resolve").or(ticket_events::action
                .eq("close")
                .and(ticket_events::reason.eq(AI_ANSWER_REASON))),
        )
        .order((ticket_events::created_at.asc(), ticket_events::id.asc()))
        .select((
            ticket_events::ticket_id,
            ticket_events::action,
            ticket_events::actor_id,
            ticket_events::created_at,
            tickets::submitted_at,
            tickets::paid_amount,
            diesel::dsl::exists(releases::table.filter(releases::ticket_id.eq(tickets::id))),
        ))
        .load(conn)?;
    let released: Vec<(i64, NaiveDateTime, i64, i64, i64, i64)> = releases::table
        .filter(releases::project_id.eq(p.id))
        .filter(releases::created_at.ge(from))
        .filter(releases::created_at.lt(to))
        .select((
            releases::ticket_id,
            releases::created_at,
            releases::amount,
            releases::helper_amount,
            releases::project_amount,
            releases::platform_amount,
        ))
        .load(conn)?;

    let mut series: BTreeMap<NaiveDate, Period> = BTreeMap::new();
    let mut day = bucket.start_of(from.date());
    while day < to.date() || (day == to.date() && to.time() > chrono::NaiveTime::MIN) {
        series.insert(
            day,
            Period {
                start: Some(day),
                ..Period::default()
            },
        );
        day = bucket.next(day);
    }
    let mut d = Dashboard {
        bucket,
        from,
        to,
        handled: 0,
        paid: 0,
        community: 0,
        ai: 0,
        released: 0,
        helpers_amount: 0,
        commission: 0,
        platform_fee: 0,
        median_first_response: None,
        median_resolution: None,
        helpers: Vec::new(),
        series: Vec::new(),
        sla: (0, 0),
        project: p.clone(),
    };
    let mut resolution = Vec::new();
    let mut resolved_by: HashMap<i64, i64> = HashMap::new();
    let mut seen = std::collections::HashSet::new();
    for (id, action, by, at, submitted, paid, released_ever) in &rows {
        if !seen.insert(*id) {
            continue;
        }
        d.handled += 1;
        if action == "close" {
            d.ai += 1;
        } else if *paid > 0 || *released_ever {
            d.paid += 1;
        } else {
            d.community += 1;
        }
        if let Some(s) = submitted {
            resolution.push((*at - *s).max(Duration::zero()));
        }
        if let (Some(h), "resolve") = (by, action.as_str()) {
            *resolved_by.entry(*h).or_default() += 1;
        }
        if let Some(b) = series.get_mut(&bucket.start_of(at.date())) {
            b.handled += 1;
        }
    }
    for (_, at, amount, helper, project, platform) in &released {
        d.released += amount;
        d.helpers_amount += helper;
        d.commission += project;
        d.platform_fee += platform;
        if let Some(b) = series.get_mut(&bucket.start_of(at.date())) {
            b.released += amount;
            b.commission += project;
        }
    }
    // Guaranteed responses, by when the wait began.
    for (began, met) in crate::domain::sla::decided(conn, p.id, from, to)? {
        d.sla.0 += 1;
        d.sla.1 += i64::from(met);
        if let Some(b) = series.get_mut(&bucket.start_of(began.date())) {
            b.sla_decided += 1;
            b.sla_met += i64::from(met);
        }
    }
    d.series = series.into_values().collect();
    d.median_resolution = median(resolution);

    // First responses of tickets submitted in the period.
    let answers: Vec<(i64, i64, Option<NaiveDateTime>, i64, NaiveDateTime)> = tickets::table
        .inner_join(ticket_messages::table.on(ticket_messages::ticket_id.eq(tickets::id)))
        .filter(tickets::project_id.eq(p.id))
        .filter(ticket_messages::internal.eq(false))
        .filter(ticket_messages::author_id.ne(tickets::requester_id))
        .filter(
            tickets::submitted_at
                .ge(from)
                .and(tickets::submitted_at.lt(to))
                .or(ticket_messages::created_at
                    .ge(from)
                    .and(ticket_messages::created_at.lt(to))),
        )
        .select((
            tickets::id,
            tickets::requester_id,
            tickets::submitted_at,
            ticket_messages::author_id,
            ticket_messages::created_at,
        ))
        .load(conn)?;
    let mut first: HashMap<i64, Duration> = HashMap::new();
    let mut posted: HashMap<i64, i64> = HashMap::new();
    for (id, _, submitted, author, at) in answers {
        if at >= from && at < to {
            *posted.entry(author).or_default() += 1;
        }
        let Some(s) = submitted.filter(|s| *s >= from && *s < to) else {
            continue;
        };
        let waited = (at - s).max(Duration::zero());
        first
            .entry(id)
            .and_modify(|w| *w = (*w).min(waited))
            .or_insert(waited);
    }
    d.median_first_response = median(first.into_values().collect());

    let mut ids: Vec<i64> = posted.keys().chain(resolved_by.keys()).copied().collect();
    ids.sort_unstable();
    ids.dedup();
    let names: HashMap<i64, String> = users::table
        .filter(users::id.eq_any(&ids))
        .select((users::id, users::display_name))
        .load::<(i64, String)>(conn)?
        .into_iter()
        .collect();
    d.helpers = ids
        .into_iter()
        .map(|id| {
            (
                id,
                names.get(&id).cloned().unwrap_or_default(),
                posted.get(&id).copied().unwrap_or(0),
                resolved_by.get(&id).copied().unwrap_or(0),
            )
        })
        .collect();
    d.helpers
        .sort_by(|a, b| b.3.cmp(&a.3).then(b.2.cmp(&a.2)).then(a.0.cmp(&b.0)));
    d.helpers.truncate(50);
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets() {
        let d = NaiveDate::from_ymd_opt(2026, 12, 3).unwrap(); // a Thursday
        assert_eq!(Bucket::for_days(30), Bucket::Day);
        assert_eq!(Bucket::for_days(90), Bucket::Week);
        assert_eq!(Bucket::for_days(365), Bucket::Month);
        assert_eq!(
            Bucket::Week.start_of(d),
            NaiveDate::from_ymd_opt(2026, 11, 30).unwrap()
        );
        assert_eq!(
            Bucket::Month.next(Bucket::Month.start_of(d)),
            NaiveDate::from_ymd_opt(2027, 1, 1).unwrap()
        );
        assert_eq!(Bucket::Month.label(d), "2026-12");
    }
}
