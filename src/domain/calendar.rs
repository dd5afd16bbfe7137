//! A project's business calendar — time zone, working days and hours,
//! holidays — and time measured in it: how many business minutes lie
//! between two instants, and which instant is N business minutes after
//! another. Service-level clocks run on it.
//!
//! Days are taken in the project's zone, so daylight-saving changes move
//! the window with the wall clock (09:00–17:00 stays 09:00–17:00 local);
//! a working hour that does not exist on the night clocks jump forward is
//! simply not counted, and one that happens twice counts once.

use crate::db::schema::project_calendars as pc;
use crate::db::DbConnection;
use crate::error::{AppError, AppResult, FieldError};
use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use diesel::prelude::*;
use std::collections::BTreeSet;

/// The most holidays a calendar lists.
pub const MAX_HOLIDAYS: usize = 400;
/// How far [`Calendar::add_business_minutes`] looks ahead before giving up
/// (a calendar whose every day is a holiday has no business time).
const HORIZON_DAYS: i64 = 3 * 366;

/// A business calendar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Calendar {
    /// The zone its days and hours are in.
    pub zone: Tz,
    /// Working days, ISO numbers (1 = Monday … 7 = Sunday), ascending.
    pub working_days: Vec<u32>,
    /// Start of the working day, minutes after local midnight.
    pub start_minute: u32,
    /// End of the working day, minutes after local midnight (after the
    /// start).
    pub end_minute: u32,
    /// Days off, in the calendar's zone.
    pub holidays: BTreeSet<NaiveDate>,
}

impl Default for Calendar {
    /// Monday to Friday, 09:00–17:00 UTC, no holidays.
    fn default() -> Calendar {
        Calendar {
            zone: chrono_tz::UTC,
            working_days: vec![1, 2, 3, 4, 5],
            start_minute: 9 * 60,
            end_minute: 17 * 60,
            holidays: BTreeSet::new(),
        }
    }
}

/// `HH:MM` of minutes after midnight (`24:00` for the end of the day).
pub fn clock(minutes: u32) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

/// Minutes after midnight of `HH:MM` (`24:00` allowed).
pub fn parse_clock(text: &str) -> Option<u32> {
    let (h, m) = text.trim().split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    let total = h * 60 + m;
    (m < 60 && total <= 24 * 60).then_some(total)
}

impl Calendar {
    /// Builds and checks a calendar from what a person typed; the errors
    /// name the fields.
    pub fn parse(
        time_zone: &str,
        working_days: &[u32],
        start: &str,
        end: &str,
        holidays: &[String],
    ) -> AppResult<Calendar> {
        let mut errors = Vec::new();
        let zone = match time_zone.trim().parse::<Tz>() {
            Ok(z) => Some(z),
            Err(_) => {
                errors.push(FieldError::new(
                    "time_zone",
                    "must be an IANA time zone such as Europe/Berlin",
                ));
                None
            }
        };
        let days: BTreeSet<u32> = working_days.iter().copied().collect();
        if days.is_empty()
            || days.len() != working_days.len()
            || days.iter().any(|d| !(1..=7).contains(d))
        {
            errors.push(FieldError::new(
                "working_days",
                "must list distinct days 1 (Monday) to 7 (Sunday), at least one",
            ));
        }
        let start_minute = parse_clock(start).filter(|m| *m < 24 * 60);
        let end_minute = parse_clock(end);
        match (start_minute, end_minute) {
            (None, _) => errors.push(FieldError::new("hours.start", "must be a time HH:MM")),
            (_, None) => errors.push(FieldError::new(
                "hours.end",
                "must be a time HH:MM (24:00 allowed)",
            )),
            (Some(s), Some(e)) if e <= s => {
                errors.push(FieldError::new("hours.end", "must be after the start"))
            }
            _ => {}
        }
        let mut set = BTreeSet::new();
        if holidays.len() > MAX_HOLIDAYS {
            errors.push(FieldError::new(
                "holidays",
                format!("at most {MAX_HOLIDAYS} days"),
            ));
        }
        for (i, h) in holidays.iter().enumerate() {
            match NaiveDate::parse_from_str(h.trim(), "%Y-%m-%d") {
                Ok(d) if (2000..=2100).contains(&d.year()) => {
                    set.insert(d);
                }
                _ => errors.push(FieldError::new(
                    format!("holidays[{i}]"),
                    "must be a date YYYY-MM-DD between 2000 and 2100",
                )),
            }
        }
        if !errors.is_empty() {
            return Err(AppError::Validation(errors));
        }
        Ok(Calendar {
            zone: zone.unwrap_or(chrono_tz::UTC),
            working_days: days.into_iter().collect(),
            start_minute: start_minute.unwrap_or_default(),
            end_minute: end_minute.unwrap_or_default(),
            holidays: set,
        })
    }

    fn works_on(&self, day: NaiveDate) -> bool {
        self.working_days
            .contains(&day.weekday().number_from_monday())
            && !self.holidays.contains(&day)
    }

    /// The working window of local `day` in UTC, if it works that day.
    fn window(&self, day: NaiveDate) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        if !self.works_on(day) {
            return None;
        }
        let at = |minute: u32| -> Option<DateTime<Utc>> {
            let local = if minute >= 24 * 60 {
                day.succ_opt()?.and_time(NaiveTime::MIN)
            } else {
                day.and_time(NaiveTime::from_num_seconds_from_midnight_opt(
                    minute * 60,
                    0,
                )?)
            };
            // A clock time skipped by a jump forward: the first instant
            // after the gap; one that happens twice: the first.
            match self.zone.from_local_datetime(&local) {
                chrono::LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
                chrono::LocalResult::Ambiguous(a, _) => Some(a.with_timezone(&Utc)),
                chrono::LocalResult::None => (1..=180).find_map(|m| {
                    self.zone
                        .from_local_datetime(&(local + Duration::minutes(m)))
                        .earliest()
                        .map(|t| t.with_timezone(&Utc))
                }),
            }
        };
        let (s, e) = (at(self.start_minute)?, at(self.end_minute)?);
        (e > s).then_some((s, e))
    }

    fn local_day(&self, t: DateTime<Utc>) -> NaiveDate {
        t.with_timezone(&self.zone).date_naive()
    }

    /// Business minutes from `from` to `to` (0 when `to` is not later).
    pub fn business_minutes_between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
        if to <= from {
            return 0;
        }
        let mut total = Duration::zero();
        // One day before and after: a window may cross UTC midnight.
        let mut day = self.local_day(from) - Duration::days(1);
        let last = self.local_day(to) + Duration::days(1);
        while day <= last {
            if let Some((s, e)) = self.window(day) {
                let (s, e) = (s.max(from), e.min(to));
                if e > s {
                    total += e - s;
                }
            }
            day += Duration::days(1);
        }
        total.num_minutes()
    }

    /// The instant `minutes` business minutes after `from`; `None` when the
    /// calendar has no business time within three years.
    pub fn add_business_minutes(&self, from: DateTime<Utc>, minutes: i64) -> Option<DateTime<Utc>> {
        let mut left = Duration::minutes(minutes.max(0));
        let mut day = self.local_day(from) - Duration::days(1);
        let last = day + Duration::days(HORIZON_DAYS);
        while day <= last {
            if let Some((s, e)) = self.window(day) {
                let s = s.max(from);
                if e > s {
                    if e - s >= left {
                        return Some(s + left);
                    }
                    left -= e - s;
                }
            }
            day += Duration::days(1);
        }
        None
    }
}

/// The project's calendar (the default until a maintainer sets one).
pub fn of_project(conn: &mut DbConnection, project: i64) -> AppResult<Calendar> {
    let row: Option<(String, String, i32, i32, String)> = pc::table
        .find(project)
        .select((
            pc::time_zone,
            pc::working_days,
            pc::start_minute,
            pc::end_minute,
            pc::holidays,
        ))
        .first(conn)
        .optional()?;
    let Some((zone, days, start, end, holidays)) = row else {
        return Ok(Calendar::default());
    };
    Ok(Calendar {
        zone: zone.parse().unwrap_or(chrono_tz::UTC),
        working_days: serde_json::from_str(&days).unwrap_or_else(|_| vec![1, 2, 3, 4, 5]),
        start_minute: u32::try_from(start).unwrap_or(9 * 60),
        end_minute: u32::try_from(end).unwrap_or(17 * 60),
        holidays: serde_json::from_str::<Vec<NaiveDate>>(&holidays)
            .unwrap_or_default()
            .into_iter()
            .collect(),
    })
}

/// Stores the project's calendar.
pub fn set_for_project(conn: &mut DbConnection, project: i64, c: &Calendar) -> AppResult<()> {
    let days = serde_json::to_string(&c.working_days).map_err(AppError::internal)?;
    let holidays = serde_json::to_string(&c.holidays.iter().collect::<Vec<_>>())
        .map_err(AppError::internal)?;
    let now = super::now();
    let values = (
        pc::project_id.eq(project),
        pc::time_zone.eq(c.zone.name()),
        pc::working_days.eq(&days),
        pc::start_minute.eq(i32::try_from(c.start_minute).unwrap_or(0)),
        pc::end_minute.eq(i32::try_from(c.end_minute).unwrap_or(0)),
        pc::holidays.eq(&holidays),
        pc::updated_at.eq(now),
    );
    crate::per_backend!(conn, |c| diesel::insert_into(pc::table)
        .values(values)
        .on_conflict(pc::project_id)
        .do_update()
        .set(values)
        .execute(c))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn berlin() -> Calendar {
        Calendar::parse(
            "Europe/Berlin",
            &[1, 2, 3, 4, 5],
            "09:00",
            "17:00",
            &["2026-12-25".into()],
        )
        .unwrap()
    }

    #[test]
    fn a_week_has_forty_business_hours() {
        let c = berlin();
        // Monday 2026-11-30 00:00 Berlin to the next Monday 00:00.
        let from = utc("2026-11-29T23:00:00Z");
        let to = utc("2026-12-06T23:00:00Z");
        assert_eq!(c.business_minutes_between(from, to), 40 * 60);
        // Friday 16:00 Berlin plus two business hours is Monday 10:00 Berlin.
        let friday = utc("2026-12-04T15:00:00Z");
        assert_eq!(
            c.add_business_minutes(friday, 120),
            Some(utc("2026-12-07T09:00:00Z"))
        );
        assert_eq!(
            c.business_minutes_between(friday, utc("2026-12-07T09:00:00Z")),
            120
        );
    }

    #[test]
    fn holidays_and_weekends_do_not_count() {
        let c = berlin();
        // Thursday 24 Dec 16:00 Berlin + 2h: 1h that day, Christmas off,
        // weekend off → Monday 28 Dec 10:00 Berlin.
        let t = utc("2026-12-24T15:00:00Z");
        assert_eq!(
            c.add_business_minutes(t, 120),
            Some(utc("2026-12-28T09:00:00Z"))
        );
    }

    #[test]
    fn the_window_follows_the_wall_clock_across_daylight_saving() {
        let c = berlin();
        // Friday 27 March 2026 (UTC+1) and Monday 30 March (UTC+2): 09:00
        // local is 08:00Z, then 07:00Z.
        assert_eq!(
            c.add_business_minutes(utc("2026-03-27T08:00:00Z"), 8 * 60),
            Some(utc("2026-03-27T16:00:00Z"))
        );
        assert_eq!(
            c.add_business_minutes(utc("2026-03-27T16:00:00Z"), 60),
            Some(utc("2026-03-30T08:00:00Z"))
        );
        // A night-shift calendar over the jump: 02:00–04:00 local on
        // 29 March 2026 loses the hour that does not exist.
        let night = Calendar::parse("Europe/Berlin", &[7], "02:00", "04:00", &[]).unwrap();
        assert_eq!(
            night
                .business_minutes_between(utc("2026-03-28T00:00:00Z"), utc("2026-03-30T00:00:00Z")),
            60
        );
    }

    #[test]
    fn adding_and_measuring_agree_across_zones_and_seasons() {
        let zones = [
            "Europe/Berlin",
            "America/New_York",
            "Australia/Sydney",
            "Asia/Kolkata",
            "UTC",
        ];
        let mut seed: u64 = 42;
        let mut next = |n: u64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) % n
        };
        for zone in zones {
            let c = Calendar::parse(
                zone,
                &[1, 2, 3, 4, 6],
                "08:30",
                "18:15",
                &["2026-03-30".into(), "2026-11-02".into()],
            )
            .unwrap();
            for _ in 0..200 {
                let from = utc("2026-01-01T00:00:00Z")
                    + Duration::minutes(i64::try_from(next(365 * 24 * 60)).unwrap());
                let minutes = i64::try_from(next(60 * 60)).unwrap();
                let to = c
                    .add_business_minutes(from, minutes)
                    .expect("business time exists");
                assert_eq!(
                    c.business_minutes_between(from, to),
                    minutes,
                    "{zone} {from} +{minutes}"
                );
                assert!(to >= from);
            }
        }
    }

    #[test]
    fn bad_calendars_name_their_fields() {
        let e = Calendar::parse(
            "Mars/Olympus",
            &[0, 1, 1],
            "9",
            "08:00",
            &["2026-02-30".into()],
        )
        .unwrap_err();
        let AppError::Validation(errors) = e else {
            panic!("not a validation error")
        };
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            ["time_zone", "working_days", "hours.start", "holidays[0]"]
        );
        assert!(Calendar::parse("UTC", &[1], "10:00", "09:00", &[]).is_err());
        assert!(Calendar::parse("UTC", &[1], "00:00", "24:00", &[]).is_ok());
        let all_off = Calendar::parse("UTC", &[1], "09:00", "10:00", &[]).unwrap();
        assert!(all_off
            .add_business_minutes(utc("2026-01-01T00:00:00Z"), 60)
            .is_some());
    }
}
