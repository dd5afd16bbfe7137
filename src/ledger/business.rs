//! The business agrees with the ledger: tickets, bounties, releases and
//! payouts say what the ledger's accounts hold. Part of [`super::check`].

use super::{Account, AccountKind};
use crate::db::schema::{
    bounties as b, ledger_accounts as la, ledger_transfers as lt, payouts as po, releases as r,
    tickets as t,
};
use crate::db::DbConnection;
use diesel::prelude::*;
use std::collections::{BTreeMap, HashMap};

/// What the business rows say of one ticket's money.
#[derive(Default, Debug)]
struct TicketMoney {
    funded: i128,
    refunded: i128,
    released: i128,
}

/// Checks that a terminal ticket's escrow is empty; that each ticket's
/// funded − refunded − released equals its escrow balance, and so does its
/// `paid_amount`; that every bounty's status and refunded total agree with
/// its ledger lines; and that no payee was paid out more than it earned.
pub fn check(conn: &mut DbConnection) -> QueryResult<Vec<String>> {
    let mut violations = Vec::new();
    let escrows: Vec<Account> = la::table
        .filter(la::kind.eq(AccountKind::TicketEscrow.as_str()))
        .select(Account::as_select())
        .load(conn)?;
    let mut escrow_of: BTreeMap<i64, i128> = BTreeMap::new();
    for a in &escrows {
        if let Some(ticket) = a.owner_id {
            *escrow_of.entry(ticket).or_default() += i128::from(a.balance());
        }
    }
    let mut money: BTreeMap<i64, TicketMoney> = BTreeMap::new();

    // Bounties against their ledger lines.
    let bounties: Vec<(i64, i64, i64, String, i64, bool)> = b::table
        .select((
            b::id,
            b::ticket_id,
            b::amount,
            b::status,
            b::refunded_amount,
            b::funded_at.is_not_null(),
        ))
        .load(conn)?;
    let lines: Vec<(String, i64)> = lt::table
        .filter(lt::transfer_key.like("bounty:%"))
        .select((lt::transfer_key, lt::amount))
        .load(conn)?;
    let mut funded_line: HashMap<i64, i64> = HashMap::new();
    let mut refund_lines: HashMap<i64, i64> = HashMap::new();
    for (key, amount) in lines {
        let mut parts = key.splitn(3, ':');
        let (_, id, what) = (parts.next(), parts.next(), parts.next().unwrap_or(""));
        let Some(id) = id.and_then(|i| i.parse::<i64>().ok()) else {
            continue;
        };
        if what == "fund" {
            *funded_line.entry(id).or_default() += amount;
        } else if what.starts_with("refund") {
            *refund_lines.entry(id).or_default() += amount;
        }
    }
    for (id, ticket, amount, status, refunded, funded) in bounties {
        let fund = funded_line.get(&id).copied().unwrap_or(0);
        let refund = refund_lines.get(&id).copied().unwrap_or(0);
        let m = money.entry(ticket).or_default();
        m.funded += i128::from(fund);
        m.refunded += i128::from(refund);
        if funded != (fund > 0) || (funded && fund != amount) {
            violations.push(format!(
                "bounty {id} ({status}, funded: {funded}) has funding lines of {fund}, not {}",
                if funded { amount } else { 0 }
            ));
        }
        if refund != refunded {
            violations.push(format!(
                "bounty {id} says {refunded} was refunded, its ledger lines {refund}"
            ));
        }
        let consistent = match status.as_str() {
            "pending_payment" | "failed" => !funded && refunded == 0,
            "funded" => funded && refunded < amount,
            "refunded" => funded && refunded == amount,
            "released" => funded && refunded < amount,
            _ => false,
        };
        if !consistent {
            violations.push(format!(
                "bounty {id} is {status} but was funded: {funded}, refunded {refunded} of {amount}"
            ));
        }
    }
    let released: Vec<(i64, i64)> = r::table.select((r::ticket_id, r::amount)).load(conn)?;
    for (ticket, amount) in released {
        money.entry(ticket).or_default().released += i128::from(amount);
    }

    // Tickets: their escrow, their business rows and paid_amount agree.
    let with_money: Vec<i64> = escrow_of.keys().chain(money.keys()).copied().collect();
    let mut tickets: HashMap<i64, (String, i64)> = HashMap::new();
    for chunk in with_money.chunks(5000) {
        let rows: Vec<(i64, String, i64)> = t::table
            .filter(t::id.eq_any(chunk))
            .select((t::id, t::status, t::paid_amount))
            .load(conn)?;
        tickets.extend(rows.into_iter().map(|(id, s, p)| (id, (s, p))));
    }
    let stray: Vec<(i64, String, i64)> = t::table
        .filter(t::paid_amount.ne(0))
        .select((t::id, t::status, t::paid_amount))
        .load(conn)?;
    for (id, s, p) in stray {
        tickets.entry(id).or_insert((s, p));
    }
    let mut ids: Vec<i64> = tickets.keys().copied().collect();
    ids.sort_unstable();
    for id in ids {
        let (status, paid) = &tickets[&id];
        let held = escrow_of.get(&id).copied().unwrap_or(0);
        let m = money.remove(&id).unwrap_or_default();
        let expected = m.funded - m.refunded - m.released;
        if held != 0 && matches!(status.as_str(), "closed" | "cancelled" | "auto_closed") {
            violations.push(format!(
                "ticket {id} is {status} but its escrow holds {held}"
            ));
        }
        if expected != held {
            violations.push(format!(
                "ticket {id}: funded {} − refunded {} − released {} = {expected}, but its escrow holds {held}",
                m.funded, m.refunded, m.released
            ));
        }
        if i128::from(*paid) != held {
            violations.push(format!(
                "ticket {id}: paid_amount {paid} differs from its escrow balance {held}"
            ));
        }
    }
    for (id, _) in money {
        violations.push(format!(
            "money rows refer to ticket {id}, which does not exist"
        ));
    }

    // Money events a person must look at (a refund or a lost dispute on
    // money already released to a helper).
    let review: Vec<(String, String)> = crate::db::schema::stripe_events::table
        .filter(crate::db::schema::stripe_events::outcome.like("%needs review%"))
        .select((
            crate::db::schema::stripe_events::event_id,
            crate::db::schema::stripe_events::outcome,
        ))
        .load(conn)?;
    for (event, outcome) in review {
        violations.push(format!("payment event {event}: {outcome}"));
    }
    // A frozen escrow has an open dispute on its ticket.
    for a in escrows.iter().filter(|a| a.frozen) {
        let Some(ticket) = a.owner_id else { continue };
        let open: i64 = b::table
            .filter(b::ticket_id.eq(ticket))
            .filter(b::dispute_status.eq("open"))
            .count()
            .get_result(conn)?;
        if open == 0 {
            violations.push(format!(
                "ticket {ticket}'s escrow is frozen but no dispute on it is open"
            ));
        }
    }

    violations.extend(subscriptions(conn)?);
    violations.extend(consulting(conn)?);
    violations.extend(invoices(conn)?);

    // Payouts never exceed what their account earned.
    let payouts: Vec<(i64, i64)> = po::table
        .filter(po::status.ne("failed"))
        .select((po::ledger_account_id, po::amount))
        .load(conn)?;
    let mut paid_out: BTreeMap<i64, i128> = BTreeMap::new();
    for (account, amount) in payouts {
        *paid_out.entry(account).or_default() += i128::from(amount);
    }
    for (account, total) in paid_out {
        let earned: Option<i64> = la::table
            .find(account)
            .select(la::credits_posted)
            .first(conn)
            .optional()?;
        match earned {
            Some(earned) if total <= i128::from(earned) => {}
            Some(earned) => violations.push(format!(
                "account {account} was paid out {total}, more than the {earned} it earned"
            )),
            None => violations.push(format!(
                "payouts refer to account {account}, which does not exist"
            )),
        }
    }
    Ok(violations)
}

/// Subscription periods against their ledger lines: a paid period's
/// revenue and fee lines add up to its amount and to its recorded split,
/// and its credits were issued; a refunded one was booked back in full; an
/// unpaid one has no lines. A ticket marked upgraded spent exactly one
/// credit, and no credit was spent on a ticket not marked. An ended
/// subscription holds no credits.
fn subscriptions(conn: &mut DbConnection) -> QueryResult<Vec<String>> {
    use crate::db::schema::{subscription_periods as sp, subscriptions as s};
    let mut violations = Vec::new();
    let lines: Vec<(String, i64)> = lt::table
        .filter(lt::transfer_key.like("subscription_period:%"))
        .select((lt::transfer_key, lt::amount))
        .load(conn)?;
    // period → (suffix → amount)
    let mut by_period: HashMap<i64, BTreeMap<String, i64>> = HashMap::new();
    for (key, amount) in lines {
        let mut parts = key.splitn(3, ':');
        let (_, id, what) = (parts.next(), parts.next(), parts.next().unwrap_or(""));
        if let Some(id) = id.and_then(|i| i.parse::<i64>().ok()) {
            *by_period
                .entry(id)
                .or_default()
                .entry(what.to_owned())
                .or_default() += amount;
        }
    }
    type Row = (i64, String, i64, i64, i64, (i32, i32, i64), bool);
    let periods: Vec<Row> = sp::table
        .select((
            sp::id,
            sp::status,
            sp::amount,
            sp::project_amount,
            sp::platform_amount,
            (
                sp::upgrades_granted,
                sp::consulting_minutes_granted,
                sp::credit_applied,
            ),
            sp::payment_id.is_not_null().and(sp::paid_at.is_not_null()),
        ))
        .load(conn)?;
    for (id, status, amount, project, platform, (upgrades, minutes, credit), has_payment) in periods
    {
        let l = by_period.remove(&id).unwrap_or_default();
        let get = |k: &str| l.get(k).copied().unwrap_or(0);
        let (p_line, f_line) = (get("project"), get("platform"));
        let refunded = get("refund:project") + get("refund:platform");
        let ok = match status.as_str() {
            "paid" => {
                p_line + f_line == amount
                    && p_line == project
                    && f_line == platform
                    && refunded == 0
                    && get(&format!("grant:{}", crate::ledger::CREDIT_UPGRADES))
                        == i64::from(upgrades)
                    && get(&format!(
                        "grant:{}",
                        crate::ledger::CREDIT_CONSULTING_MINUTES
                    )) == i64::from(minutes)
                    && get("credit") == credit
                    && has_payment
            }
            "refunded" => {
                p_line + f_line == amount && refunded == amount && has_payment && get("credit") == 0
            }
            "pending_payment" | "failed" => l.is_empty(),
            _ => false,
        };
        if !ok {
            violations.push(format!(
                "subscription period {id} is {status} ({amount}; project {project}, platform {platform}) but its ledger lines are {l:?}"
            ));
        }
    }
    for (id, l) in by_period {
        violations.push(format!(
            "ledger lines {l:?} refer to subscription period {id}, which does not exist"
        ));
    }
    // Upgrades: one credit per ticket marked upgraded, none elsewhere.
    let spent: Vec<(String, i64)> = lt::table
        .filter(lt::transfer_key.like("ticket:%:upgrade"))
        .select((lt::transfer_key, lt::amount))
        .load(conn)?;
    let mut spent_on: HashMap<i64, i64> = HashMap::new();
    for (key, amount) in spent {
        if let Some(id) = key.split(':').nth(1).and_then(|i| i.parse::<i64>().ok()) {
            *spent_on.entry(id).or_default() += amount;
        }
    }
    let upgraded: Vec<i64> = t::table
        .filter(t::upgraded_at.is_not_null())
        .select(t::id)
        .load(conn)?;
    for id in upgraded {
        match spent_on.remove(&id) {
            Some(1) => {}
            other => violations.push(format!(
                "ticket {id} is upgraded but spent {} included upgrades",
                other.unwrap_or(0)
            )),
        }
    }
    for (id, n) in spent_on {
        violations.push(format!(
            "{n} included upgrades were spent on ticket {id}, which is not marked upgraded"
        ));
    }
    // Each breach's service credit is the one ledger line it booked.
    let clocks: Vec<(i64, i64)> = crate::db::schema::sla_clocks::table
        .select((
            crate::db::schema::sla_clocks::id,
            crate::db::schema::sla_clocks::credit_amount,
        ))
        .load(conn)?;
    let credit_lines: HashMap<i64, i64> = lt::table
        .filter(lt::transfer_key.like("sla_clock:%:credit"))
        .select((lt::transfer_key, lt::amount))
        .load::<(String, i64)>(conn)?
        .into_iter()
        .filter_map(|(k, a)| Some((k.split(':').nth(1)?.parse().ok()?, a)))
        .collect();
    for (id, credit) in clocks {
        let line = credit_lines.get(&id).copied().unwrap_or(0);
        if line != credit {
            violations.push(format!(
                "service-level clock {id} records a credit of {credit}, its ledger line {line}"
            ));
        }
    }
    // An ended subscription keeps no credits; a live one no more than its
    // current period granted.
    let subs: Vec<(i64, String, i32)> = s::table
        .select((s::id, s::status, s::current_period))
        .load(conn)?;
    let ended: std::collections::HashSet<i64> = subs
        .iter()
        .filter(|(_, st, _)| matches!(st.as_str(), "cancelled" | "lapsed" | "failed"))
        .map(|(id, _, _)| *id)
        .collect();
    let grants: HashMap<(i64, i32), (i32, i32)> = sp::table
        .select((
            sp::subscription_id,
            sp::number,
            sp::upgrades_granted,
            sp::consulting_minutes_granted,
        ))
        .load::<(i64, i32, i32, i32)>(conn)?
        .into_iter()
        .map(|(sub, n, u, m)| ((sub, n), (u, m)))
        .collect();
    let current: HashMap<i64, i32> = subs.iter().map(|(id, _, n)| (*id, *n)).collect();
    let held: Vec<Account> = la::table
        .filter(la::kind.eq(AccountKind::ServiceCredit.as_str()))
        .select(Account::as_select())
        .load(conn)?;
    // Each project owes exactly the service credit its subscribers hold.
    let project_of: HashMap<i64, i64> = s::table
        .select((s::id, s::project_id))
        .load::<(i64, i64)>(conn)?
        .into_iter()
        .collect();
    let mut held_per_project: BTreeMap<(i64, String), i128> = BTreeMap::new();
    for a in &held {
        if let Some(p) = a.owner_id.and_then(|o| project_of.get(&o)) {
            *held_per_project
                .entry((*p, a.currency.clone()))
                .or_default() += i128::from(a.balance());
        }
    }
    let owed: Vec<Account> = la::table
        .filter(la::kind.eq(AccountKind::ServiceCreditsOwed.as_str()))
        .select(Account::as_select())
        .load(conn)?;
    for a in &owed {
        let key = (a.owner_id.unwrap_or(0), a.currency.clone());
        let held = held_per_project.remove(&key).unwrap_or(0);
        if i128::from(a.balance()) + held != 0 {
            violations.push(format!(
                "project {} owes {} in service credit but its subscribers hold {held}",
                key.0,
                -a.balance()
            ));
        }
    }
    for ((project, _), held) in held_per_project {
        if held != 0 {
            violations.push(format!(
                "subscribers of project {project} hold {held} in service credit nobody owes"
            ));
        }
    }
    for a in held {
        if a.owner_id.is_some_and(|o| ended.contains(&o)) && a.balance() != 0 {
            violations.push(format!(
                "subscription {} ended but still holds {} of service credit",
                a.owner_id.unwrap_or(0),
                a.balance()
            ));
        }
    }
    let credits: Vec<Account> = la::table
        .filter(la::kind.eq(AccountKind::PlanCredits.as_str()))
        .select(Account::as_select())
        .load(conn)?;
    for a in credits {
        let Some(owner) = a.owner_id else { continue };
        if ended.contains(&owner) && a.balance() != 0 {
            violations.push(format!(
                "subscription {owner} ended but still holds {} {}",
                a.balance(),
                a.currency
            ));
        }
        let granted = current
            .get(&owner)
            .and_then(|n| grants.get(&(owner, *n)))
            .map_or(0, |(u, m)| {
                if a.currency == crate::ledger::CREDIT_UPGRADES {
                    i64::from(*u)
                } else {
                    i64::from(*m)
                }
            });
        if a.balance() > granted {
            violations.push(format!(
                "subscription {owner} holds {} {}, more than its current period granted ({granted})",
                a.balance(),
                a.currency
            ));
        }
    }
    Ok(violations)
}

/// Consulting bookings against their ledger lines: each spent its minutes
/// once, and a cancelled one that gave them back has its return line (and
/// no other has one).
fn consulting(conn: &mut DbConnection) -> QueryResult<Vec<String>> {
    use crate::db::schema::consulting_bookings as cb;
    let lines: Vec<(String, i64)> = lt::table
        .filter(lt::transfer_key.like("consulting:%"))
        .select((lt::transfer_key, lt::amount))
        .load(conn)?;
    let mut by_booking: HashMap<i64, (i64, i64)> = HashMap::new();
    for (key, amount) in lines {
        let mut parts = key.splitn(3, ':');
        let (_, id, what) = (parts.next(), parts.next(), parts.next().unwrap_or(""));
        let Some(id) = id.and_then(|i| i.parse::<i64>().ok()) else {
            continue;
        };
        let e = by_booking.entry(id).or_default();
        match what {
            "spend" => e.0 += amount,
            "return" => e.1 += amount,
            _ => {}
        }
    }
    let bookings: Vec<(i64, i32, bool)> = cb::table
        .select((cb::id, cb::minutes, cb::returned))
        .load(conn)?;
    let mut violations = Vec::new();
    for (id, minutes, returned) in bookings {
        let (spent, back) = by_booking.remove(&id).unwrap_or_default();
        let minutes = i64::from(minutes);
        if spent != minutes || back != if returned { minutes } else { 0 } {
            violations.push(format!(
                "consulting booking {id} of {minutes} minutes has spend lines of {spent} and returns of {back} (returned: {returned})"
            ));
        }
    }
    for id in by_booking.keys() {
        violations.push(format!(
            "consulting lines refer to booking {id}, which does not exist"
        ));
    }
    Ok(violations)
}

/// Invoices against the money: every funded bounty and every paid period
/// has its invoice for what was charged; refunds of bounties add up to
/// their credit notes, a returned period has one; a re-issue cancels
/// exactly what it replaces; each seller's numbers run 1, 2, 3, … without
/// a gap up to its sequence.
fn invoices(conn: &mut DbConnection) -> QueryResult<Vec<String>> {
    use crate::db::schema::{
        invoice_sequences as seq, invoices as inv, subscription_periods as sp,
    };
    let mut violations = Vec::new();
    let docs: Vec<(i64, i64, i64, String, i64, String)> = inv::table
        .select((
            inv::id,
            inv::project_id,
            inv::number,
            inv::kind,
            inv::total,
            inv::source,
        ))
        .order(inv::id)
        .load(conn)?;
    let by_source: HashMap<&str, (i64, &str, i64)> = docs
        .iter()
        .map(|(id, _, _, kind, total, source)| (source.as_str(), (*id, kind.as_str(), *total)))
        .collect();
    let total_of =
        |source: &str, kind: &str| by_source.get(source).filter(|d| d.1 == kind).map(|d| d.2);
    let funded: Vec<(i64, i64, i64)> = b::table
        .filter(b::funded_at.is_not_null())
        .select((b::id, b::amount, b::refunded_amount))
        .load(conn)?;
    let mut refund_notes: HashMap<i64, i64> = HashMap::new();
    for (_, _, _, kind, total, source) in &docs {
        if kind != "credit_note" {
            continue;
        }
        if let Some(rest) = source.strip_prefix("bounty:") {
            if let Some((id, _)) = rest.split_once(":refund:") {
                if let Ok(id) = id.parse::<i64>() {
                    *refund_notes.entry(id).or_default() += total;
                }
            }
        }
    }
    for (id, amount, refunded) in funded {
        if total_of(&format!("bounty:{id}"), "invoice") != Some(amount) {
            violations.push(format!(
                "bounty {id} was paid {amount} but has no invoice for it"
            ));
        }
        let noted = refund_notes.get(&id).copied().unwrap_or(0);
        if noted != refunded {
            violations.push(format!(
                "bounty {id} was refunded {refunded}, its credit notes give back {noted}"
            ));
        }
    }
    let periods: Vec<(i64, String, i64)> = sp::table
        .filter(sp::status.eq_any(["paid", "refunded"]))
        .select((sp::id, sp::status, sp::amount))
        .load(conn)?;
    for (id, status, amount) in periods {
        if total_of(&format!("subscription_period:{id}"), "invoice") != Some(amount) {
            violations.push(format!(
                "subscription period {id} was charged {amount} but has no invoice for it"
            ));
        }
        let note = total_of(&format!("subscription_period:{id}:refund"), "credit_note");
        if (status == "refunded") != (note == Some(amount)) {
            violations.push(format!(
                "subscription period {id} is {status}; its refund credit note: {note:?}"
            ));
        }
    }
    for (id, _, _, kind, total, _) in &docs {
        if kind != "invoice" {
            continue;
        }
        let credit = total_of(&format!("reissue:{id}:credit"), "credit_note");
        let again = total_of(&format!("reissue:{id}"), "invoice");
        if credit.is_some() != again.is_some()
            || credit.is_some_and(|c| c != *total)
            || again.is_some_and(|a| a != *total)
        {
            violations.push(format!(
                "invoice {id} of {total}: re-issue credit note {credit:?}, re-issued invoice {again:?}"
            ));
        }
    }
    let mut numbers: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for (_, project, number, _, _, _) in &docs {
        numbers.entry(*project).or_default().push(*number);
    }
    let last: HashMap<i64, i64> = seq::table
        .select((seq::project_id, seq::last_number))
        .load::<(i64, i64)>(conn)?
        .into_iter()
        .collect();
    for (project, mut ns) in numbers {
        ns.sort_unstable();
        let n = ns.len() as i64;
        if ns.iter().copied().ne(1..=n) || last.get(&project) != Some(&n) {
            violations.push(format!(
                "project {project}'s document numbers are not 1..{n} without gaps (its sequence says {:?})",
                last.get(&project)
            ));
        }
    }
    Ok(violations)
}
