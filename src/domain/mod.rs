//! Domain logic: validation, state changes and queries, independent of HTTP.

pub mod ai;
pub mod appeals;
pub mod audit;
pub mod bids;
pub mod calendar;
pub mod conduct;
pub mod consulting;
pub mod dashboard;
pub mod digest;
pub mod floss;
pub mod handovers;
pub mod helpers;
pub mod invoices;
pub mod matching;
pub mod moderation;
pub mod money;
pub mod notifications;
pub mod payouts;
pub mod plans;
pub mod projects;
pub mod queue;
pub mod reputation;
pub mod routing;
pub mod search;
pub mod sessions;
pub mod sla;
pub mod text;
pub mod tickets;
pub mod users;

use crate::error::ErrorCode;
use base64::Engine as _;

/// Encodes a list cursor (the last id of a page) as an opaque string.
pub fn encode_cursor(last_id: i64) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("id:{last_id}"))
}

/// Decodes a cursor made by [`encode_cursor`].
pub fn decode_cursor(cursor: &str) -> Result<i64, crate::error::AppError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.strip_prefix("id:").and_then(|n| n.parse().ok()))
        .ok_or_else(|| {
            crate::error::AppError::bad_request(
                ErrorCode::InvalidCursor,
                "the cursor is not one this API issued",
            )
        })
}

/// Page size from `?limit=`: default 20, at most 100.
pub fn page_limit(limit: Option<i64>) -> Result<i64, crate::error::AppError> {
    match limit {
        None => Ok(20),
        Some(n) if (1..=100).contains(&n) => Ok(n),
        Some(_) => Err(crate::error::AppError::field(
            "limit",
            "must be between 1 and 100",
        )),
    }
}

/// Runs `f` on each row of a scheduled job's sweep, each on its own: a row
/// that fails is logged and counted in `/metrics`
/// (`guildhall_job_row_failures_total{job=…}`) and the others go on, so one
/// bad row never stops a job for everyone else. Returns how many rows `f`
/// reported as done.
pub fn each_row<T: std::fmt::Debug>(
    job: &'static str,
    rows: impl IntoIterator<Item = T>,
    mut f: impl FnMut(&T) -> Result<bool, crate::error::AppError>,
) -> usize {
    let mut done = 0;
    for row in rows {
        match f(&row) {
            Ok(true) => done += 1,
            Ok(false) => {}
            Err(e) => {
                tracing::error!(job, row = ?row, error = %e, "a scheduled job failed on one row; going on");
                crate::metrics::job_row_failed(job);
            }
        }
    }
    done
}

/// The current time, UTC, as stored in the database.
pub fn now() -> chrono::NaiveDateTime {
    chrono::Utc::now().naive_utc()
}
