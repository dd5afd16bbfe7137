//! Fair queue ordering and ETA estimate for a project's open tickets.
//!
//! `GET /projects/{slug}/queue` lists the open tickets in serving order.
//! Each entry has its 1-based position, whether it is paid, and an
//! `eta_hours` estimate.
//!
//! # Priority order
//!
//! * A ticket is **paid** when `paid_amount > 0` or its requester's plan
//!   entitles it (an included upgrade spent on it, or an enterprise plan).
//!   Otherwise it counts as **unpaid**.
//! * Paid tickets are ordered by entitlement (enterprise, then upgraded,
//!   then none), then `paid_amount` descending, then by
//!   `waiting_since` ascending (the ticket that has waited longest since the
//!   requester's last message comes first), then by `ticket_id` ascending.
//! * Unpaid tickets are ordered by `waiting_since` ascending, then by
//!   `ticket_id` ascending. The last tie-break, `paid_amount` descending,
//!   only matters for corrupt rows that share an id and a timestamp.
//! * Paid tickets and unpaid tickets each keep their own order. The only
//!   decision left is which positions go to paid tickets and which to unpaid
//!   ones.
//!
//! # Free-share guarantee
//!
//! Each project sets `free_share_pct` (0–100, default
//! [`DEFAULT_FREE_SHARE_PCT`] = 20). Values below 0 count as 0; values above
//! 100 count as 100. The quota is
//!
//! ```text
//! q = ceil(free_share_pct / 10)        (0..=10, see `free_quota`)
//! ```
//!
//! For a final list of `n` tickets at positions `1..=n`:
//!
//! * **Window.** For every start `p` in `1..=n`, the window `W(p)` is the
//!   set of positions `p..=p+9` that exist, meaning those `<= n`. Windows
//!   that run past the end of the queue are included, cut short at `n`.
//! * **Still waiting.** `R(p)` is the number of unpaid tickets at positions
//!   `>= p`. These are the unpaid tickets still waiting when position `p`
//!   comes up.
//! * **Guarantee.** For every `p` in `1..=n`:
//!
//!   ```text
//!   unpaid(W(p)) >= min(q, R(p))
//!   ```
//!
//!   Every 10 consecutive serving slots hold at least `q` unpaid tickets.
//!   If fewer than `q` unpaid tickets are left, the window must hold all of
//!   them.
//!
//! A window shorter than 10 (a tail window) always passes. It is short only
//! because it reaches position `n`, so it contains every ticket from `p`
//! onwards, and `unpaid(W(p)) = R(p)`. A tail window therefore needs
//! exactly the unpaid tickets still waiting, and it always has them.
//!
//! Two things follow from this:
//!
//! * The full windows `p..=p+9` (with `p + 9 <= n`) are the only real
//!   constraints.
//! * A queue of at most 10 tickets comes out in pure priority order. All of
//!   its unpaid tickets are already inside the first 10 serving slots.
//!
//! Extreme settings:
//!
//! * `free_share_pct = 0` gives `q = 0`: pure priority order, with all paid
//!   tickets first.
//! * `free_share_pct` in `91..=100` gives `q = 10`: every slot must be
//!   unpaid while unpaid tickets remain, so all unpaid tickets come first.
//! * The share always rounds up to whole slots per window. For example,
//!   11–20 % gives `q = 2`, and 1–10 % gives `q = 1`.
//!
//! # Placement (greedy)
//!
//! Slots are filled from position 1 onwards. A slot goes to the next paid
//! ticket unless no valid completion of the queue would exist afterwards.
//! In that case it goes to the next unpaid ticket. When one kind runs out,
//! the rest of the queue is the other kind.
//!
//! So paid tickets sit as early as the guarantee allows. Among all valid
//! paid/unpaid layouts, the result is the lexicographically earliest-paid
//! one. In particular, moving an unpaid ticket that directly precedes a
//! paid ticket one place later always breaks the guarantee.
//!
//! Checking a paid ticket at position `i` needs at most 10 look-ups. For
//! each full window `s..=s+9` with `i-9 <= s <= i`, let `u` be the number of
//! unpaid tickets left and `have` the unpaid slots already placed in
//! `s..i`. The window still needs `min(q - have, u)` unpaid slots. They must
//! fit in the `s + 9 - i` slots after `i`.
//!
//! This check is necessary, because `R(s) = have + u` whatever is placed
//! later. It is also sufficient: if it passes, "all remaining unpaid next,
//! then the remaining paid" is a valid completion. The whole ordering costs
//! `O(n log n)` for the two sorts, plus `O(10 n)` for the placement.
//!
//! # ETA
//!
//! The estimate uses the project's throughput over the last 30 days:
//!
//! ```text
//! throughput_per_hour = resolved_last_30_days / (30 * 24)
//! eta_hours(p)        = max(min_response_hours, ceil(p / throughput_per_hour))
//!                     = max(min_response_hours, ceil(p * 720 / resolved_last_30_days))
//! ```
//!
//! * `p` is the 1-based position. The `p`-th ticket is served after `p`
//!   resolutions at the observed rate.
//! * The result is rounded up to whole hours using exact integer
//!   arithmetic.
//! * **Zero throughput.** If `resolved_last_30_days <= 0` (nothing resolved
//!   in 30 days), the fallback rate is one resolution per day
//!   ([`FALLBACK_RESOLVED_LAST_30_DAYS`] = 30). That gives
//!   `eta_hours(p) = max(min_response_hours, 24 * p)`.
//! * Position 0 is treated as position 1.
//! * Results that would not fit in `i64` saturate at `i64::MAX`.
//! * The estimate is never below `min_response_hours` and is always at
//!   least 1. It never decreases as the position grows.

use std::cmp::Ordering;

use chrono::NaiveDateTime;
use serde::Serialize;

/// Number of consecutive positions the free-share guarantee is measured over.
pub const WINDOW: usize = 10;

/// `free_share_pct` a project gets when it has not configured one.
pub const DEFAULT_FREE_SHARE_PCT: i32 = 20;

/// Assumed `resolved_last_30_days` when a project resolved nothing in the
/// last 30 days: one resolution per day.
pub const FALLBACK_RESOLVED_LAST_30_DAYS: i64 = 30;

/// Hours in the 30-day throughput period (`30 * 24`).
pub const HOURS_IN_PERIOD: i64 = 30 * 24;

/// One open ticket waiting in a project's queue.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct QueueItem {
    /// Ticket id. It is the last tie-breaker, so the order is deterministic.
    pub ticket_id: i64,
    /// Amount paid in minor currency units. `0` (or less) means unpaid.
    pub paid_amount: i64,
    /// Time of the requester's last message. Older means waiting longer.
    pub waiting_since: NaiveDateTime,
    /// What the requester's plan entitles the ticket to: `0` nothing, `1`
    /// an upgrade spent on it, `2` the requester's enterprise plan. Ranks
    /// before the amount among paid tickets.
    pub entitlement: u8,
}

impl QueueItem {
    /// Whether the ticket counts as paid: money on it, or a plan's
    /// entitlement (the unpaid share guarantee counts it as paid).
    #[must_use]
    pub fn is_paid(&self) -> bool {
        self.paid_amount > 0 || self.entitlement > 0
    }
}

/// One row of the serving-order response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueueEntry {
    /// 1-based serving position.
    pub position: usize,
    /// Ticket id.
    pub ticket_id: i64,
    /// Whether the ticket is paid (`paid_amount > 0`).
    pub paid: bool,
    /// Amount paid in minor currency units, exactly as stored.
    pub paid_amount: i64,
    /// Estimated hours until this ticket is served (see the module docs).
    pub eta_hours: i64,
}

/// A project's recent throughput, the input to the ETA estimate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throughput {
    /// Tickets resolved in the last 30 days. `<= 0` selects the fallback rate.
    pub resolved_last_30_days: i64,
    /// Lower bound for every ETA, in hours.
    pub min_response_hours: i64,
}

/// A project's queue as its support page tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Figures {
    /// Open tickets waiting.
    pub open: usize,
    /// Tickets resolved in the last 30 days.
    pub resolved_last_30_days: i64,
    /// The ETA a ticket submitted now would get, hours.
    pub new_ticket_eta_hours: i64,
}

/// Measures a project's queue: how many wait, how many were resolved in 30
/// days, and the ETA a new (unpaid) ticket would get behind them.
pub fn figures(
    conn: &mut crate::db::DbConnection,
    p: &crate::domain::projects::Project,
) -> diesel::QueryResult<Figures> {
    use crate::db::schema::tickets;
    use diesel::prelude::*;
    let open: i64 = tickets::table
        .filter(tickets::project_id.eq(p.id))
        .filter(tickets::status.eq("open"))
        .count()
        .get_result(conn)?;
    let t = throughput(conn, p)?;
    let open = usize::try_from(open).unwrap_or(0);
    Ok(Figures {
        open,
        resolved_last_30_days: t.resolved_last_30_days,
        new_ticket_eta_hours: eta_hours(open + 1, &t),
    })
}

/// The project's measured throughput: tickets resolved in the last 30 days,
/// and its response-time floor.
pub fn throughput(
    conn: &mut crate::db::DbConnection,
    p: &crate::domain::projects::Project,
) -> diesel::QueryResult<Throughput> {
    use crate::db::schema::tickets;
    use diesel::prelude::*;
    let since = crate::domain::now() - chrono::Duration::days(30);
    let resolved: i64 = tickets::table
        .filter(tickets::project_id.eq(p.id))
        .filter(tickets::resolved_at.ge(since))
        .count()
        .get_result(conn)?;
    Ok(Throughput {
        resolved_last_30_days: resolved,
        min_response_hours: i64::from(p.min_response_hours),
    })
}

/// Minimum unpaid tickets per window of 10.
///
/// Returns `ceil(free_share_pct / 10)`, with `free_share_pct` clamped to
/// `0..=100` first. The result is always in `0..=10`.
#[must_use]
pub fn free_quota(free_share_pct: i32) -> usize {
    let pct = free_share_pct.clamp(0, 100);
    usize::try_from(pct).map_or(0, |p| p.div_ceil(WINDOW))
}

/// Puts the tickets in serving order.
///
/// The paid and unpaid tickets are each sorted by priority. They are then
/// interleaved so that paid tickets come as early as the free-share
/// guarantee for `free_share_pct` allows. See the module docs for the exact
/// rules. Runs in `O(n log n)`.
#[must_use]
pub fn order(items: Vec<QueueItem>, free_share_pct: i32) -> Vec<QueueItem> {
    let quota = free_quota(free_share_pct);
    let (mut paid, mut unpaid): (Vec<QueueItem>, Vec<QueueItem>) =
        items.into_iter().partition(QueueItem::is_paid);
    paid.sort_by(paid_priority);
    unpaid.sort_by(unpaid_priority);

    let slots = slot_pattern(paid.len(), unpaid.len(), quota);
    let mut paid = paid.into_iter();
    let mut unpaid = unpaid.into_iter();
    let mut out = Vec::with_capacity(slots.len());
    for is_paid_slot in slots {
        let next = if is_paid_slot {
            paid.next()
        } else {
            unpaid.next()
        };
        // `slot_pattern` gives out exactly `paid.len()` paid slots and
        // `unpaid.len()` unpaid slots, so `next` is always `Some`.
        out.extend(next);
    }
    // Defensive: keep the output a permutation of the input even if the
    // invariant above were ever broken.
    out.extend(paid);
    out.extend(unpaid);
    out
}

/// Estimated hours until the ticket at 1-based `position` is served.
///
/// Returns `max(min_response_hours, ceil(position * 720 / resolved_last_30_days))`.
/// When nothing was resolved, the fallback rate of 30 resolutions per 30
/// days is used. Position 0 counts as 1, and the result saturates at
/// `i64::MAX`. See the module docs.
#[must_use]
pub fn eta_hours(position: usize, t: &Throughput) -> i64 {
    let resolved = if t.resolved_last_30_days > 0 {
        t.resolved_last_30_days
    } else {
        FALLBACK_RESOLVED_LAST_30_DAYS
    };
    let position = u128::try_from(position.max(1)).unwrap_or(u128::MAX);
    let resolved = u128::try_from(resolved).unwrap_or(1);
    let period = u128::try_from(HOURS_IN_PERIOD).unwrap_or(720);
    let hours = position.saturating_mul(period).div_ceil(resolved);
    let hours = i64::try_from(hours).unwrap_or(i64::MAX);
    hours.max(t.min_response_hours)
}

/// Orders the tickets (see [`order`]) and attaches positions and ETAs (see
/// [`eta_hours`]).
#[must_use]
pub fn build(items: Vec<QueueItem>, free_share_pct: i32, t: &Throughput) -> Vec<QueueEntry> {
    order(items, free_share_pct)
        .into_iter()
        .enumerate()
        .map(|(index, item)| {
            let position = index + 1;
            QueueEntry {
                position,
                ticket_id: item.ticket_id,
                paid: item.is_paid(),
                paid_amount: item.paid_amount,
                eta_hours: eta_hours(position, t),
            }
        })
        .collect()
}

/// Priority among paid tickets: entitlement descending, then amount
/// descending, then waiting longest, then id.
fn paid_priority(a: &QueueItem, b: &QueueItem) -> Ordering {
    b.entitlement
        .cmp(&a.entitlement)
        .then_with(|| b.paid_amount.cmp(&a.paid_amount))
        .then_with(|| a.waiting_since.cmp(&b.waiting_since))
        .then_with(|| a.ticket_id.cmp(&b.ticket_id))
}

/// Priority among unpaid tickets: waiting longest, then id. The amount
/// comes last, only for total determinism.
fn unpaid_priority(a: &QueueItem, b: &QueueItem) -> Ordering {
    a.waiting_since
        .cmp(&b.waiting_since)
        .then_with(|| a.ticket_id.cmp(&b.ticket_id))
        .then_with(|| b.paid_amount.cmp(&a.paid_amount))
}

/// Greedy paid/unpaid layout for `paid` paid and `unpaid` unpaid tickets
/// under `quota` unpaid per window. `true` marks a paid slot.
fn slot_pattern(paid: usize, unpaid: usize, quota: usize) -> Vec<bool> {
    let n = paid + unpaid;
    let mut slots = Vec::with_capacity(n);
    // unpaid_before[k] = number of unpaid slots among positions 0..k (0-based).
    let mut unpaid_before = Vec::with_capacity(n + 1);
    unpaid_before.push(0_usize);
    let (mut paid_left, mut unpaid_left) = (paid, unpaid);
    for i in 0..n {
        let take_paid = paid_left > 0
            && (unpaid_left == 0 || paid_fits(i, n, quota, unpaid_left, &unpaid_before));
        let placed_unpaid = unpaid_before.get(i).copied().unwrap_or(0);
        if take_paid {
            paid_left -= 1;
            unpaid_before.push(placed_unpaid);
        } else {
            unpaid_left = unpaid_left.saturating_sub(1);
            unpaid_before.push(placed_unpaid + 1);
        }
        slots.push(take_paid);
    }
    slots
}

/// Whether a paid ticket can go at 0-based position `i` and still leave the
/// queue a valid completion. `unpaid_left` unpaid tickets are not placed yet,
/// and `unpaid_before` holds prefix counts for positions `0..=i`.
fn paid_fits(
    i: usize,
    n: usize,
    quota: usize,
    unpaid_left: usize,
    unpaid_before: &[usize],
) -> bool {
    if quota == 0 {
        return true;
    }
    let placed_total = unpaid_before.get(i).copied().unwrap_or(0);
    let first_start = (i + 1).saturating_sub(WINDOW);
    (first_start..=i)
        // Tail windows (running past the end) always hold; skip them.
        .take_while(|start| start + WINDOW <= n)
        .all(|start| {
            let placed_before_start = unpaid_before.get(start).copied().unwrap_or(0);
            let have = placed_total - placed_before_start;
            let need = quota.saturating_sub(have).min(unpaid_left);
            // Slots left in the window after position i: i+1 ..= start+WINDOW-1.
            need <= start + WINDOW - 1 - i
        })
}

/// The project's open tickets in serving order with their ETAs.
pub fn entries(
    conn: &mut crate::db::DbConnection,
    p: &crate::domain::projects::Project,
) -> diesel::QueryResult<Vec<QueueEntry>> {
    use crate::db::schema::tickets;
    use diesel::prelude::*;
    type Row = (i64, i64, chrono::NaiveDateTime, i64, bool);
    let open: Vec<Row> = tickets::table
        .filter(tickets::project_id.eq(p.id))
        .filter(tickets::status.eq("open"))
        .select((
            tickets::id,
            tickets::paid_amount,
            tickets::waiting_since,
            tickets::requester_id,
            tickets::upgraded_at.is_not_null(),
        ))
        .load(conn)?;
    let enterprise: std::collections::HashSet<i64> =
        crate::domain::plans::enterprise_subscribers(conn, p.id)?
            .into_iter()
            .collect();
    let throughput = throughput(conn, p)?;
    let items = open
        .into_iter()
        .map(
            |(ticket_id, paid_amount, waiting_since, requester, upgraded)| QueueItem {
                ticket_id,
                paid_amount,
                waiting_since,
                entitlement: if enterprise.contains(&requester) {
                    2
                } else {
                    u8::from(upgraded)
                },
            },
        )
        .collect();
    Ok(build(items, p.free_share_pct, &throughput))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use proptest::prelude::*;
    use std::cmp::Reverse;

    fn base() -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2024, 1, 1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .expect("valid base date")
    }

    fn at(minutes: i64) -> NaiveDateTime {
        base() + chrono::Duration::minutes(minutes)
    }

    fn item(ticket_id: i64, paid_amount: i64, minutes: i64) -> QueueItem {
        QueueItem {
            ticket_id,
            paid_amount,
            waiting_since: at(minutes),
            entitlement: 0,
        }
    }

    fn ids(items: &[QueueItem]) -> Vec<i64> {
        items.iter().map(|i| i.ticket_id).collect()
    }

    /// 1-based positions of the unpaid tickets in `items`.
    fn unpaid_positions(items: &[QueueItem]) -> Vec<usize> {
        items
            .iter()
            .enumerate()
            .filter(|(_, i)| !i.is_paid())
            .map(|(k, _)| k + 1)
            .collect()
    }

    /// The documented guarantee, checked literally and independently of the
    /// implementation. `paid[k]` is true when the 0-based position `k` holds
    /// a paid ticket. For every start `i` (tail windows included), the
    /// window `[i, min(i + 10, n))` must hold at least `min(q, R(i))` unpaid
    /// tickets, where `R(i)` is the number of unpaid tickets at positions
    /// `>= i`.
    fn guarantee_holds(paid: &[bool], quota: usize) -> bool {
        let n = paid.len();
        (0..n).all(|i| {
            let end = (i + WINDOW).min(n);
            let in_window = paid[i..end].iter().filter(|p| !**p).count();
            let remaining = paid[i..].iter().filter(|p| !**p).count();
            in_window >= quota.min(remaining)
        })
    }

    fn flags(items: &[QueueItem]) -> Vec<bool> {
        items.iter().map(QueueItem::is_paid).collect()
    }

    /// Reference pure priority order, written independently of the module's
    /// comparators.
    fn pure_priority(mut items: Vec<QueueItem>) -> Vec<QueueItem> {
        items.sort_by_key(|i| {
            let paid = i.is_paid();
            (
                Reverse(paid),
                Reverse(if paid { i.paid_amount } else { 0 }),
                i.waiting_since,
                i.ticket_id,
                Reverse(i.paid_amount),
            )
        });
        items
    }

    fn sorted_multiset(items: &[QueueItem]) -> Vec<(i64, i64, NaiveDateTime)> {
        let mut v: Vec<_> = items
            .iter()
            .map(|i| (i.ticket_id, i.paid_amount, i.waiting_since))
            .collect();
        v.sort();
        v
    }

    // ---------- free_quota ----------

    #[test]
    fn free_quota_rounds_up_and_clamps() {
        let cases = [
            (-5, 0),
            (0, 0),
            (1, 1),
            (10, 1),
            (11, 2),
            (20, 2),
            (DEFAULT_FREE_SHARE_PCT, 2),
            (55, 6),
            (90, 9),
            (91, 10),
            (100, 10),
            (250, 10),
            (i32::MIN, 0),
            (i32::MAX, 10),
        ];
        for (pct, q) in cases {
            assert_eq!(free_quota(pct), q, "pct {pct}");
        }
    }

    // ---------- order ----------

    #[test]
    fn empty_queue() {
        assert!(order(Vec::new(), 20).is_empty());
        assert!(build(
            Vec::new(),
            20,
            &Throughput {
                resolved_last_30_days: 10,
                min_response_hours: 1
            }
        )
        .is_empty());
    }

    #[test]
    fn all_paid_is_priority_order() {
        let items = vec![
            item(1, 500, 10),
            item(2, 900, 50),
            item(3, 500, 5),
            item(4, 100, 0),
            item(5, 900, 50),
        ];
        let out = order(items, 20);
        assert_eq!(ids(&out), vec![2, 5, 3, 1, 4]);
    }

    #[test]
    fn all_unpaid_is_longest_waiting_first() {
        let items: Vec<_> = (0..25).map(|k| item(100 - k, 0, (k * 7) % 13)).collect();
        let out = order(items.clone(), 20);
        let mut expected = items;
        expected.sort_by_key(|i| (i.waiting_since, i.ticket_id));
        assert_eq!(out, expected);
    }

    #[test]
    fn default_share_with_30_paid_and_5_unpaid() {
        // Paid amounts 30..=1, so paid ticket k (id k) has rank k.
        let mut items: Vec<_> = (1..=30).map(|k| item(k, 31 - k, 0)).collect();
        // Unpaid: ids 101..=105, oldest first by id.
        items.extend((1..=5).map(|k| item(100 + k, 0, k)));
        let out = order(items, DEFAULT_FREE_SHARE_PCT);

        // Window 1..=10 needs 2 unpaid -> slots 9, 10. Window 10..=19 has
        // one (10), so it needs slot 19. Window 11..=20 then needs 20.
        // Window 20..=29 has 20 and needs min(2, R) with R = 2, so it takes
        // slot 29. After that nothing unpaid is left.
        assert_eq!(unpaid_positions(&out), vec![9, 10, 19, 20, 29]);
        let unpaid_ids: Vec<_> = out
            .iter()
            .filter(|i| !i.is_paid())
            .map(|i| i.ticket_id)
            .collect();
        assert_eq!(unpaid_ids, vec![101, 102, 103, 104, 105]);
        let paid_ids: Vec<_> = out
            .iter()
            .filter(|i| i.is_paid())
            .map(|i| i.ticket_id)
            .collect();
        assert_eq!(paid_ids, (1..=30).collect::<Vec<_>>());
        assert!(guarantee_holds(&flags(&out), 2));
    }

    #[test]
    fn zero_share_is_pure_priority() {
        let mut items: Vec<_> = (1..=12).map(|k| item(k, k * 10, 0)).collect();
        items.extend((1..=12).map(|k| item(100 + k, 0, -k)));
        let out = order(items.clone(), 0);
        assert_eq!(out, pure_priority(items));
        assert!(out[..12].iter().all(QueueItem::is_paid));
    }

    #[test]
    fn full_share_puts_unpaid_first() {
        let mut items: Vec<_> = (1..=12).map(|k| item(k, k * 10, 0)).collect();
        items.extend((1..=12).map(|k| item(100 + k, 0, -k)));
        for pct in [91, 100] {
            let out = order(items.clone(), pct);
            assert!(out[..12].iter().all(|i| !i.is_paid()), "pct {pct}");
            assert!(out[12..].iter().all(QueueItem::is_paid), "pct {pct}");
        }
    }

    #[test]
    fn ninety_percent_leaves_one_paid_slot_per_window() {
        let mut items: Vec<_> = (1..=5).map(|k| item(k, 100, k)).collect();
        items.extend((1..=30).map(|k| item(100 + k, 0, k)));
        let out = order(items, 90);
        // q = 9: every full window holds exactly one paid slot, so paid
        // slots are 10 apart (1, 11, 21, 31). Window 23..=32 then holds 8
        // unpaid tickets while 11 are still waiting, so 32..=34 must be
        // unpaid. Once no unpaid ticket is left, the last paid one takes 35.
        let paid_positions: Vec<_> = out
            .iter()
            .enumerate()
            .filter(|(_, i)| i.is_paid())
            .map(|(k, _)| k + 1)
            .collect();
        assert_eq!(paid_positions, vec![1, 11, 21, 31, 35]);
        assert!(guarantee_holds(&flags(&out), 9));
    }

    #[test]
    fn short_queue_is_pure_priority() {
        // At most 10 tickets: the only window already holds every unpaid
        // ticket, so paid tickets go first.
        let items = vec![item(1, 0, 0), item(2, 0, 1), item(3, 50, 2), item(4, 70, 3)];
        let out = order(items, 50);
        assert_eq!(ids(&out), vec![4, 3, 1, 2]);
    }

    #[test]
    fn ties_broken_by_waiting_then_id() {
        let items = vec![
            item(9, 100, 0),
            item(3, 100, 0),
            item(5, 100, -1),
            item(8, 0, 0),
            item(2, 0, 0),
            item(7, 0, -5),
        ];
        let out = order(items, 0);
        assert_eq!(ids(&out), vec![5, 3, 9, 7, 2, 8]);
    }

    #[test]
    fn negative_amount_counts_as_unpaid() {
        let items = vec![item(1, -10, 5), item(2, 0, 0), item(3, 1, 9)];
        let out = order(items, 0);
        assert_eq!(ids(&out), vec![3, 2, 1]);
        assert!(!out[2].is_paid());
    }

    #[test]
    fn build_sets_positions_and_etas() {
        let t = Throughput {
            resolved_last_30_days: 360,
            min_response_hours: 3,
        };
        let items = vec![item(1, 0, 0), item(2, 250, 0), item(3, 0, 1)];
        let out = build(items, 0, &t);
        assert_eq!(
            out,
            vec![
                QueueEntry {
                    position: 1,
                    ticket_id: 2,
                    paid: true,
                    paid_amount: 250,
                    eta_hours: 3
                },
                QueueEntry {
                    position: 2,
                    ticket_id: 1,
                    paid: false,
                    paid_amount: 0,
                    eta_hours: 4
                },
                QueueEntry {
                    position: 3,
                    ticket_id: 3,
                    paid: false,
                    paid_amount: 0,
                    eta_hours: 6
                },
            ]
        );
    }

    // ---------- eta ----------

    #[test]
    fn eta_basic_rates_round_up() {
        let t = |resolved| Throughput {
            resolved_last_30_days: resolved,
            min_response_hours: 0,
        };
        // 720 resolved / 720 h = 1 per hour.
        assert_eq!(eta_hours(1, &t(720)), 1);
        assert_eq!(eta_hours(5, &t(720)), 5);
        // 1000 per 720 h: 1 * 0.72 = 0.72 -> 1, 2 * 0.72 = 1.44 -> 2.
        assert_eq!(eta_hours(1, &t(1000)), 1);
        assert_eq!(eta_hours(2, &t(1000)), 2);
        // 7 per 720 h: 720 / 7 = 102.86 -> 103.
        assert_eq!(eta_hours(1, &t(7)), 103);
        // Position 0 counts as 1.
        assert_eq!(eta_hours(0, &t(7)), 103);
    }

    #[test]
    fn eta_floored_by_min_response_hours() {
        let t = Throughput {
            resolved_last_30_days: 7200,
            min_response_hours: 24,
        };
        assert_eq!(eta_hours(1, &t), 24);
        assert_eq!(eta_hours(240, &t), 24);
        assert_eq!(eta_hours(241, &t), 25);
        let t = Throughput {
            resolved_last_30_days: 720,
            min_response_hours: -5,
        };
        assert_eq!(eta_hours(1, &t), 1);
    }

    #[test]
    fn eta_with_zero_throughput_uses_one_per_day() {
        for resolved in [0, -3] {
            let t = Throughput {
                resolved_last_30_days: resolved,
                min_response_hours: 0,
            };
            assert_eq!(eta_hours(1, &t), 24);
            assert_eq!(eta_hours(3, &t), 72);
            let floored = Throughput {
                min_response_hours: 48,
                ..t
            };
            assert_eq!(eta_hours(1, &floored), 48);
            assert_eq!(eta_hours(3, &floored), 72);
        }
    }

    #[test]
    fn eta_monotonic_in_position() {
        for resolved in [0, 1, 7, 30, 720, 1000, 100_000] {
            let t = Throughput {
                resolved_last_30_days: resolved,
                min_response_hours: 2,
            };
            let etas: Vec<_> = (1..=500).map(|p| eta_hours(p, &t)).collect();
            assert!(etas.windows(2).all(|w| w[0] <= w[1]), "resolved {resolved}");
        }
    }

    #[test]
    fn eta_saturates() {
        let t = Throughput {
            resolved_last_30_days: 1,
            min_response_hours: 0,
        };
        assert_eq!(eta_hours(usize::MAX, &t), i64::MAX);
    }

    // ---------- property tests ----------

    fn items_strategy(max_len: usize) -> impl Strategy<Value = Vec<QueueItem>> {
        // Small ranges on purpose, so that ties happen often. About half the
        // tickets are unpaid.
        let amount = prop_oneof![Just(0_i64), 1_i64..40];
        prop::collection::vec((0_i64..80, amount, 0_i64..120), 0..=max_len).prop_map(|v| {
            v.into_iter()
                .map(|(id, amount, minutes)| item(id, amount, minutes))
                .collect()
        })
    }

    /// Brute force: among all paid/unpaid layouts with the same counts that
    /// satisfy the guarantee, the lexicographically earliest-paid one.
    fn brute_force_pattern(paid: usize, unpaid: usize, quota: usize) -> Option<Vec<bool>> {
        let n = paid + unpaid;
        (0_u32..(1 << n))
            .filter(|mask| mask.count_ones() as usize == paid)
            .map(|mask| {
                (0..n)
                    .map(|k| mask & (1 << (n - 1 - k)) != 0)
                    .collect::<Vec<_>>()
            })
            .filter(|p| guarantee_holds(p, quota))
            .max()
    }

    proptest! {
        #[test]
        fn prop_order_properties(items in items_strategy(300), pct in 0_i32..=100) {
            let quota = free_quota(pct);
            let out = order(items.clone(), pct);

            // (1) The output is a permutation of the input.
            prop_assert_eq!(sorted_multiset(&out), sorted_multiset(&items));

            // (2) The window guarantee holds, by the documented definition.
            let f = flags(&out);
            prop_assert!(guarantee_holds(&f, quota), "pattern {:?} q {}", f, quota);

            // (3) Paid: amount desc, then waiting asc, then id asc. Unpaid:
            // waiting asc, then id asc.
            let paid: Vec<_> = out.iter().filter(|i| i.is_paid()).collect();
            for w in paid.windows(2) {
                let a = (Reverse(w[0].paid_amount), w[0].waiting_since, w[0].ticket_id);
                let b = (Reverse(w[1].paid_amount), w[1].waiting_since, w[1].ticket_id);
                prop_assert!(a <= b, "paid out of order: {:?} before {:?}", w[0], w[1]);
            }
            let unpaid: Vec<_> = out.iter().filter(|i| !i.is_paid()).collect();
            for w in unpaid.windows(2) {
                let a = (w[0].waiting_since, w[0].ticket_id);
                let b = (w[1].waiting_since, w[1].ticket_id);
                prop_assert!(a <= b, "unpaid out of order: {:?} before {:?}", w[0], w[1]);
            }

            // (5) Greedy optimality: swapping an unpaid ticket with the paid
            // ticket right after it breaks the guarantee.
            for k in 0..f.len().saturating_sub(1) {
                if !f[k] && f[k + 1] {
                    let mut swapped = f.clone();
                    swapped.swap(k, k + 1);
                    prop_assert!(
                        !guarantee_holds(&swapped, quota),
                        "unpaid at position {} could move later; pattern {:?} q {}",
                        k + 1, f, quota
                    );
                }
            }

            // The result is deterministic and independent of input order.
            let mut reversed = items;
            reversed.reverse();
            prop_assert_eq!(order(reversed, pct), out);
        }

        #[test]
        fn prop_zero_quota_is_pure_priority(items in items_strategy(300), pct in -50_i32..=0) {
            // (4)
            prop_assert_eq!(free_quota(pct), 0);
            prop_assert_eq!(order(items.clone(), pct), pure_priority(items));
        }

        #[test]
        fn prop_matches_brute_force(paid in 0_usize..=8, unpaid in 0_usize..=6, pct in 0_i32..=100) {
            // (5, strong form) On small sizes, the layout is the
            // lexicographically earliest-paid valid layout, found by brute
            // force over every layout.
            let quota = free_quota(pct);
            let expected = brute_force_pattern(paid, unpaid, quota);
            prop_assert_eq!(Some(slot_pattern(paid, unpaid, quota)), expected);
        }

        #[test]
        fn prop_eta(
            resolved in -5_i64..20_000,
            min_hours in -5_i64..500,
            p in 1_usize..20_000,
            step in 0_usize..1_000,
        ) {
            let t = Throughput { resolved_last_30_days: resolved, min_response_hours: min_hours };
            let eta = eta_hours(p, &t);
            prop_assert!(eta >= min_hours);
            prop_assert!(eta >= 1);
            prop_assert!(eta_hours(p + step, &t) >= eta);
            let r = if resolved > 0 { resolved } else { FALLBACK_RESOLVED_LAST_30_DAYS };
            let needed = i64::try_from(p).unwrap_or(i64::MAX) * HOURS_IN_PERIOD;
            // Unless the floor applies, eta is the smallest whole number of
            // hours in which the observed rate resolves p tickets.
            if eta > min_hours {
                prop_assert!(eta * r >= needed);
                prop_assert!((eta - 1) * r < needed);
            }
        }
    }
}
