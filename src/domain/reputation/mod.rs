//! Reputation per (helper, project).
//!
//! Events are derived, each exactly once (a unique `dedup_key`), from the
//! tables that already record what happened — so no write path can forget
//! to report one and an import brings its history along:
//!
//! | kind | outcome | weight | from |
//! |---|---|---|---|
//! | `accepted_resolution` | 1 | 1 | a ticket closed as accepted (by the requester, automatically, or imported with an accepted answer): its resolver |
//! | `rating` | (stars − 1)/4 | 1 | a rated ticket: its resolver |
//! | `first_response` | 1 on time, 0 late | 0.5 | the first message of the ticket's helper vs the project's `min_response_hours` after submission |
//! | `reopen` | 0 | 1 | a reopen of a resolved ticket: who had resolved it |
//! | `refund` | 0 | 1 | a claimed ticket whose bounty went back to its backer: the claimant |
//! | `dispute` | 0 | 2 | a ticket whose escrow is frozen by a payment dispute: its helper |
//! | `approval` | — | 0 | a maintainer approved the helper (feeds trust: the approving maintainer's edge) |
//! | `endorsement` | — | 0 | an endorsement (feeds trust, not quality) |
//! | `answer_score` | 1 if score > 0 else 0 | min(|score|, 5)/10 | an imported answer's votes |
//!
//! [`recompute`] turns them into scores with the model in [`model`] and
//! stores each score's components in `reputation_scores`.

// Query rows are loaded as tuples and destructured into names right away.
#![allow(clippy::type_complexity)]

pub mod model;

use crate::db::schema::{
    endorsements, ledger_accounts, project_helpers, project_maintainers, projects,
    reputation_events as re, reputation_scores as rs, ticket_events, ticket_messages, tickets,
    users,
};
use crate::db::{write_tx, DbConnection};
use crate::error::{AppError, AppResult};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use model::{Outcome, Params};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use utoipa::ToSchema;

/// Ticket close reasons that mean the resolution was accepted.
const ACCEPTED: [&str; 3] = ["accepted", "accepted automatically", "imported"];

struct NewEvent {
    user_id: i64,
    project_id: i64,
    kind: &'static str,
    value: f64,
    weight: f64,
    ticket_id: Option<i64>,
    source: Option<i64>,
    key: String,
    at: NaiveDateTime,
}

/// Derives every event not yet recorded. Returns how many were added.
pub fn collect_events(conn: &mut DbConnection) -> QueryResult<usize> {
    let mut events = Vec::new();

    // Accepted resolutions and ratings.
    let resolved: Vec<(
        i64,
        i64,
        i64,
        Option<String>,
        Option<i32>,
        Option<NaiveDateTime>,
        NaiveDateTime,
    )> = tickets::table
        .filter(tickets::resolved_by.is_not_null())
        .select((
            tickets::id,
            tickets::project_id,
            tickets::resolved_by.assume_not_null(),
            tickets::close_reason,
            tickets::rating_stars,
            tickets::closed_at,
            tickets::updated_at,
        ))
        .load(conn)?;
    for (ticket, project, helper, reason, stars, closed, updated) in resolved {
        let at = closed.unwrap_or(updated);
        if reason.as_deref().is_some_and(|r| ACCEPTED.contains(&r)) {
            events.push(NewEvent {
                user_id: helper,
                project_id: project,
                kind: "accepted_resolution",
                value: 1.0,
                weight: 1.0,
                ticket_id: Some(ticket),
                source: None,
                key: format!("accepted:{ticket}"),
                at,
            });
        }
        if let Some(stars) = stars {
            events.push(NewEvent {
                user_id: helper,
                project_id: project,
                kind: "rating",
                value: (f64::from(stars.clamp(1, 5)) - 1.0) / 4.0,
                weight: 1.0,
                ticket_id: Some(ticket),
                source: None,
                key: format!("rating:{ticket}"),
                at,
            });
        }
    }

    // First responses: the helper's first public message after submission.
    let helped: Vec<(i64, i64, NaiveDateTime, Option<i64>, Option<i64>, i32)> = tickets::table
        .inner_join(projects::table)
        .filter(tickets::submitted_at.is_not_null())
        .filter(
            tickets::resolved_by
                .is_not_null()
                .or(tickets::claimed_by.is_not_null()),
        )
        .select((
            tickets::id,
            tickets::project_id,
            tickets::submitted_at.assume_not_null(),
            tickets::resolved_by,
            tickets::claimed_by,
            projects::min_response_hours,
        ))
        .load(conn)?;
    if !helped.is_empty() {
        let mut first: HashMap<(i64, i64), NaiveDateTime> = HashMap::new();
        let messages: Vec<(i64, i64, NaiveDateTime)> = ticket_messages::table
            .filter(ticket_messages::internal.eq(false))
            .select((
                ticket_messages::ticket_id,
                ticket_messages::author_id,
                ticket_messages::created_at,
            ))
            .load(conn)?;
        for (ticket, author, at) in messages {
            first
                .entry((ticket, author))
                .and_modify(|t| *t = (*t).min(at))
                .or_insert(at);
        }
        for (ticket, project, submitted, resolver, claimant, hours) in helped {
            let Some(helper) = resolver.or(claimant) else {
                continue;
            };
            let Some(&at) = first.get(&(ticket, helper)) else {
                continue;
            };
            let on_time = at - submitted <= chrono::Duration::hours(i64::from(hours));
            events.push(NewEvent {
                user_id: helper,
                project_id: project,
                kind: "first_response",
                value: if on_time { 1.0 } else { 0.0 },
                weight: 0.5,
                ticket_id: Some(ticket),
                source: None,
                key: format!("first_response:{ticket}"),
                at,
            });
        }
    }

    // Reopens of resolved tickets, charged to whoever had resolved them.
    let transitions: Vec<(
        i64,
        i64,
        i64,
        Option<i64>,
        String,
        Option<String>,
        NaiveDateTime,
    )> = ticket_events::table
        .inner_join(tickets::table)
        .filter(ticket_events::action.eq_any(["resolve", "reopen"]))
        .order((ticket_events::ticket_id, ticket_events::id))
        .select((
            ticket_events::id,
            ticket_events::ticket_id,
            tickets::project_id,
            ticket_events::actor_id,
            ticket_events::action,
            ticket_events::from_status,
            ticket_events::created_at,
        ))
        .load(conn)?;
    let mut last_resolver: HashMap<i64, i64> = HashMap::new();
    for (event, ticket, project, actor, action, from, at) in transitions {
        if action == "resolve" {
            if let Some(a) = actor {
                last_resolver.insert(ticket, a);
            }
        } else if from.as_deref() == Some("resolved") {
            if let Some(&helper) = last_resolver.get(&ticket) {
                events.push(NewEvent {
                    user_id: helper,
                    project_id: project,
                    kind: "reopen",
                    value: 0.0,
                    weight: 1.0,
                    ticket_id: Some(ticket),
                    source: None,
                    key: format!("reopen:{event}"),
                    at,
                });
            }
        }
    }

    // Refunds of claimed tickets, charged to the claimant.
    let refunded: Vec<(i64, i64, i64, NaiveDateTime)> = tickets::table
        .inner_join(
            crate::db::schema::bounties::table
                .on(crate::db::schema::bounties::ticket_id.eq(tickets::id)),
        )
        .filter(crate::db::schema::bounties::status.eq("refunded"))
        .filter(tickets::claimed_by.is_not_null())
        .select((
            tickets::id,
            tickets::project_id,
            tickets::claimed_by.assume_not_null(),
            tickets::updated_at,
        ))
        .load(conn)?;
    for (ticket, project, helper, at) in refunded {
        events.push(NewEvent {
            user_id: helper,
            project_id: project,
            kind: "refund",
            value: 0.0,
            weight: 1.0,
            ticket_id: Some(ticket),
            source: None,
            key: format!("refund:{ticket}"),
            at,
        });
    }

    // Disputes: frozen ticket escrow, charged to the ticket's helper.
    let disputed: Vec<(i64, i64, Option<i64>, Option<i64>, NaiveDateTime)> = ledger_accounts::table
        .inner_join(tickets::table.on(ledger_accounts::owner_id.eq(tickets::id.nullable())))
        .filter(ledger_accounts::kind.eq(crate::ledger::AccountKind::TicketEscrow.as_str()))
        .filter(ledger_accounts::frozen.eq(true))
        .select((
            tickets::id,
            tickets::project_id,
            tickets::resolved_by,
            tickets::claimed_by,
            tickets::updated_at,
        ))
        .load(conn)?;
    for (ticket, project, resolver, claimant, at) in disputed {
        let Some(helper) = resolver.or(claimant) else {
            continue;
        };
        events.push(NewEvent {
            user_id: helper,
            project_id: project,
            kind: "dispute",
            value: 0.0,
            weight: 2.0,
            ticket_id: Some(ticket),
            source: None,
            key: format!("dispute:{ticket}"),
            at,
        });
    }

    // Maintainer approvals.
    let approved: Vec<(i64, i64, Option<NaiveDateTime>, NaiveDateTime)> = project_helpers::table
        .filter(project_helpers::status.eq("approved"))
        .select((
            project_helpers::project_id,
            project_helpers::user_id,
            project_helpers::decided_at,
            project_helpers::created_at,
        ))
        .load(conn)?;
    for (project, user, decided, created) in approved {
        events.push(NewEvent {
            user_id: user,
            project_id: project,
            kind: "approval",
            value: 1.0,
            weight: 0.0,
            ticket_id: None,
            source: None,
            key: format!("approval:{project}:{user}"),
            at: decided.unwrap_or(created),
        });
    }

    // Endorsements (trust only).
    let endorsed: Vec<(i64, i64, i64, i64, NaiveDateTime)> = endorsements::table
        .filter(endorsements::endorser_id.ne(endorsements::endorsee_id))
        .select((
            endorsements::id,
            endorsements::project_id,
            endorsements::endorser_id,
            endorsements::endorsee_id,
            endorsements::created_at,
        ))
        .load(conn)?;
    for (id, project, endorser, endorsee, at) in endorsed {
        events.push(NewEvent {
            user_id: endorsee,
            project_id: project,
            kind: "endorsement",
            value: 1.0,
            weight: 0.0,
            ticket_id: None,
            source: Some(endorser),
            key: format!("endorsement:{id}"),
            at,
        });
    }

    // Imported answers' votes.
    let scored: Vec<(i64, i64, i64, i64, i32, NaiveDateTime)> = ticket_messages::table
        .inner_join(tickets::table)
        .filter(ticket_messages::external_ref.is_not_null())
        .filter(ticket_messages::score.ne(0))
        .filter(ticket_messages::author_id.ne(tickets::requester_id))
        .select((
            ticket_messages::id,
            tickets::id,
            tickets::project_id,
            ticket_messages::author_id,
            ticket_messages::score,
            ticket_messages::created_at,
        ))
        .load(conn)?;
    for (message, ticket, project, author, score, at) in scored {
        events.push(NewEvent {
            user_id: author,
            project_id: project,
            kind: "answer_score",
            value: if score > 0 { 1.0 } else { 0.0 },
            weight: f64::from(score.unsigned_abs().min(5)) / 10.0,
            ticket_id: Some(ticket),
            source: None,
            key: format!("answer_score:{message}"),
            at,
        });
    }

    insert_events(conn, &events)
}

fn insert_events(conn: &mut DbConnection, events: &[NewEvent]) -> QueryResult<usize> {
    let now = crate::domain::now();
    let existing: HashSet<String> = re::table
        .select(re::dedup_key)
        .load::<String>(conn)?
        .into_iter()
        .collect();
    let fresh: Vec<&NewEvent> = events
        .iter()
        .filter(|e| !existing.contains(&e.key))
        .collect();
    let mut added = 0;
    for chunk in fresh.chunks(500) {
        added += write_tx(conn, |conn| -> QueryResult<usize> {
            let mut n = 0;
            for e in chunk {
                n += crate::per_backend!(conn, |c| diesel::insert_into(re::table)
                    .values((
                        re::user_id.eq(e.user_id),
                        re::project_id.eq(e.project_id),
                        re::kind.eq(e.kind),
                        re::value.eq(e.value),
                        re::weight.eq(e.weight),
                        re::ticket_id.eq(e.ticket_id),
                        re::source_user_id.eq(e.source),
                        re::dedup_key.eq(&e.key),
                        re::occurred_at.eq(e.at),
                        re::created_at.eq(now),
                    ))
                    .on_conflict_do_nothing()
                    .execute(c))?;
            }
            Ok(n)
        })?;
    }
    Ok(added)
}

/// One stored score with its components.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema, Queryable, Selectable)]
#[diesel(table_name = rs)]
pub struct Score {
    /// The helper.
    pub user_id: i64,
    /// The project.
    pub project_id: i64,
    /// 0–100: `100 · quality · (1 − β + β · trust)`.
    pub score: f64,
    /// Bayesian average of decayed outcomes with the project's prior, 0–1.
    pub quality: f64,
    /// EigenTrust over endorsements and approvals, relative to the average scored member, capped at 1.
    pub trust: f64,
    /// The project's prior mean outcome.
    pub prior: f64,
    /// Σ weight · decay of the outcomes behind `quality`.
    pub evidence: f64,
    /// How many outcome events.
    pub outcomes: i32,
    /// How many endorsements from approved helpers or maintainers.
    pub endorsements: i32,
    /// Public answers on other people's tickets in the project.
    pub answers: i32,
    /// Accepted resolutions.
    pub accepted: i32,
    /// Reopens, refunds and disputes.
    pub setbacks: i32,
    /// Median hours from submission to the helper's first response.
    pub median_response_hours: Option<f64>,
}

/// What a recompute did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Report {
    /// Events derived this time.
    pub events_added: usize,
    /// Scores written.
    pub scores: usize,
    /// Projects scored.
    pub projects: usize,
}

/// Per project, the inputs of the model.
#[derive(Default)]
struct ProjectInput {
    outcomes: BTreeMap<i64, Vec<Outcome>>,
    endorsements: Vec<(i64, i64)>,
    approvals: Vec<(i64, i64)>,
    members: HashSet<i64>,
    maintainers: Vec<i64>,
    /// Per member: answers, accepted, setbacks, first-response hours.
    activity: HashMap<i64, Activity>,
}

/// What matching reads besides the score.
#[derive(Default)]
struct Activity {
    answers: i32,
    accepted: i32,
    setbacks: i32,
    response_hours: Vec<f64>,
}

/// Scores every (helper, project) from the events, as of `now`.
pub fn compute(
    conn: &mut DbConnection,
    params: &Params,
    now: NaiveDateTime,
) -> QueryResult<Vec<Score>> {
    let mut input: BTreeMap<i64, ProjectInput> = BTreeMap::new();
    let events: Vec<(i64, i64, String, f64, f64, Option<i64>, NaiveDateTime)> = re::table
        .select((
            re::user_id,
            re::project_id,
            re::kind,
            re::value,
            re::weight,
            re::source_user_id,
            re::occurred_at,
        ))
        .load(conn)?;
    for (user, project, kind, value, weight, source, at) in events {
        let p = input.entry(project).or_default();
        if kind == "approval" {
            // Trust only (the approving maintainer's edge, below); keeps
            // the member in the project.
            p.members.insert(user);
            continue;
        }
        if kind == "endorsement" {
            if let Some(s) = source {
                p.endorsements.push((s, user));
            }
            continue;
        }
        p.members.insert(user);
        let a = p.activity.entry(user).or_default();
        match kind.as_str() {
            "accepted_resolution" => a.accepted += 1,
            "reopen" | "refund" | "dispute" => a.setbacks += 1,
            _ => {}
        }
        let age_days = (now - at).num_seconds() as f64 / 86_400.0;
        p.outcomes.entry(user).or_default().push(Outcome {
            value,
            weight,
            age_days,
        });
    }
    let approved: Vec<(i64, i64, Option<i64>)> = project_helpers::table
        .filter(project_helpers::status.eq("approved"))
        .select((
            project_helpers::project_id,
            project_helpers::user_id,
            project_helpers::decided_by,
        ))
        .load(conn)?;
    for (project, user, approver) in approved {
        let p = input.entry(project).or_default();
        p.members.insert(user);
        // Approving a helper is the maintainer vouching for them.
        if let Some(m) = approver {
            p.approvals.push((m, user));
        }
    }
    let maintainers: Vec<(i64, i64)> = project_maintainers::table
        .select((
            project_maintainers::project_id,
            project_maintainers::user_id,
        ))
        .load(conn)?;
    for (project, user) in maintainers {
        input.entry(project).or_default().maintainers.push(user);
    }
    // First-response times, from submission to the helper's first message.
    let responses: Vec<(i64, i64, NaiveDateTime, Option<NaiveDateTime>)> = re::table
        .inner_join(tickets::table.on(tickets::id.nullable().eq(re::ticket_id)))
        .filter(re::kind.eq("first_response"))
        .select((
            re::user_id,
            re::project_id,
            re::occurred_at,
            tickets::submitted_at,
        ))
        .load(conn)?;
    for (user, project, at, submitted) in responses {
        if let Some(s) = submitted {
            let hours = (at - s).num_seconds().max(0) as f64 / 3600.0;
            let p = input.entry(project).or_default();
            p.activity
                .entry(user)
                .or_default()
                .response_hours
                .push(hours);
        }
    }
    // Public answers on other people's tickets.
    let answers: Vec<(i64, i64)> = ticket_messages::table
        .inner_join(tickets::table)
        .filter(ticket_messages::internal.eq(false))
        .filter(ticket_messages::author_id.ne(tickets::requester_id))
        .select((ticket_messages::author_id, tickets::project_id))
        .load(conn)?;
    for (user, project) in answers {
        if let Some(p) = input.get_mut(&project) {
            p.activity.entry(user).or_default().answers += 1;
        }
    }
    Ok(input
        .into_iter()
        .flat_map(|(project, p)| score_project(project, p, params))
        .collect())
}

fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    Some(v[v.len() / 2])
}

fn score_project(project: i64, p: ProjectInput, params: &Params) -> Vec<Score> {
    let activity = &p.activity;
    // The project's prior: its members' weighted mean outcome.
    let (w, wo) = p
        .outcomes
        .values()
        .map(|o| model::evidence(o, params.half_life_days))
        .fold((0.0, 0.0), |(a, b), (x, y)| (a + x, b + y));
    let prior = if w > 0.0 { wo / w } else { 0.5 };

    // Trust graph: maintainers and approved or active members; an
    // endorsement counts when its endorser is one of them.
    let mut nodes: Vec<i64> = p.maintainers.clone();
    nodes.extend(p.members.iter().copied());
    nodes.sort_unstable();
    nodes.dedup();
    let index: HashMap<i64, usize> = nodes.iter().enumerate().map(|(i, &u)| (u, i)).collect();
    let edge = |(from, to): &(i64, i64)| Some((*index.get(from)?, *index.get(to)?));
    let endorsement_edges: Vec<(usize, usize)> = p.endorsements.iter().filter_map(edge).collect();
    let mut endorsed_count: HashMap<usize, i32> = HashMap::new();
    for &(i, j) in &endorsement_edges {
        if i != j {
            *endorsed_count.entry(j).or_default() += 1;
        }
    }
    let mut edges = endorsement_edges;
    edges.extend(p.approvals.iter().filter_map(edge));
    let pretrusted: Vec<usize> = p
        .maintainers
        .iter()
        .filter_map(|m| index.get(m).copied())
        .collect();
    let trust = model::eigentrust(nodes.len(), &edges, &pretrusted, params.damping);
    let maintainers: HashSet<i64> = p.maintainers.iter().copied().collect();
    let scored: Vec<i64> = p
        .members
        .iter()
        .copied()
        .filter(|u| !maintainers.contains(u) || p.outcomes.contains_key(u))
        .collect();
    // Relative to the average trust of those scored, capped at 1: a helper
    // vouched for as much as the average one gets the full trust term
    // (maintainers, who hold the restart mass, are left out of the average).
    let mean_trust = if scored.is_empty() {
        0.0
    } else {
        scored.iter().map(|u| trust[index[u]]).sum::<f64>() / scored.len() as f64
    };

    scored
        .iter()
        .map(|&user| {
            let outcomes = p.outcomes.get(&user).map(Vec::as_slice).unwrap_or(&[]);
            let (ew, ewo) = model::evidence(outcomes, params.half_life_days);
            let quality = model::quality(ew, ewo, prior, params.prior_weight);
            let i = index[&user];
            let t = if mean_trust > 0.0 {
                (trust[i] / mean_trust).min(1.0)
            } else {
                0.0
            };
            Score {
                user_id: user,
                project_id: project,
                score: model::score(quality, t, params.trust_weight),
                quality,
                trust: t,
                prior,
                evidence: ew,
                outcomes: i32::try_from(outcomes.len()).unwrap_or(i32::MAX),
                endorsements: endorsed_count.get(&i).copied().unwrap_or(0),
                answers: activity.get(&user).map_or(0, |a| a.answers),
                accepted: activity.get(&user).map_or(0, |a| a.accepted),
                setbacks: activity.get(&user).map_or(0, |a| a.setbacks),
                median_response_hours: activity.get(&user).and_then(|a| median(&a.response_hours)),
            }
        })
        .collect()
}

/// Derives new events, recomputes every score and replaces the stored ones
/// in one transaction (readers see the old or the new table, never half).
pub fn recompute(conn: &mut DbConnection, params: &Params) -> AppResult<Report> {
    let events_added = collect_events(conn)?;
    let now = crate::domain::now();
    let scores = compute(conn, params, now)?;
    let projects: HashSet<i64> = scores.iter().map(|s| s.project_id).collect();
    write_tx(conn, |conn| -> QueryResult<()> {
        diesel::delete(rs::table).execute(conn)?;
        for s in &scores {
            diesel::insert_into(rs::table)
                .values((
                    rs::user_id.eq(s.user_id),
                    rs::project_id.eq(s.project_id),
                    rs::score.eq(s.score),
                    rs::quality.eq(s.quality),
                    rs::trust.eq(s.trust),
                    rs::prior.eq(s.prior),
                    rs::evidence.eq(s.evidence),
                    rs::outcomes.eq(s.outcomes),
                    rs::endorsements.eq(s.endorsements),
                    rs::answers.eq(s.answers),
                    rs::accepted.eq(s.accepted),
                    rs::setbacks.eq(s.setbacks),
                    rs::median_response_hours.eq(s.median_response_hours),
                    rs::computed_at.eq(now),
                ))
                .execute(conn)?;
        }
        Ok(())
    })?;
    Ok(Report {
        events_added,
        scores: scores.len(),
        projects: projects.len(),
    })
}

/// A user's stored scores with the project slug, best first.
pub fn of_user(
    conn: &mut DbConnection,
    user_id: i64,
) -> AppResult<Vec<(String, Score, NaiveDateTime)>> {
    let exists: i64 = users::table
        .filter(users::id.eq(user_id))
        .count()
        .get_result(conn)?;
    if exists == 0 {
        return Err(AppError::not_found("user"));
    }
    Ok(rs::table
        .inner_join(projects::table.on(projects::id.eq(rs::project_id)))
        .filter(rs::user_id.eq(user_id))
        .order(rs::score.desc())
        .select((projects::slug, Score::as_select(), rs::computed_at))
        .load(conn)?)
}

/// A project's leaderboard page, best first.
pub fn leaderboard(
    conn: &mut DbConnection,
    project_id: i64,
    limit: i64,
    offset: i64,
) -> QueryResult<Vec<(String, Score, NaiveDateTime)>> {
    rs::table
        .inner_join(users::table.on(users::id.eq(rs::user_id)))
        .filter(rs::project_id.eq(project_id))
        .order((rs::score.desc(), rs::user_id))
        .limit(limit)
        .offset(offset)
        .select((users::display_name, Score::as_select(), rs::computed_at))
        .load(conn)
}

/// A helper's stored score in a project, if computed.
pub fn score_of(
    conn: &mut DbConnection,
    project_id: i64,
    user_id: i64,
) -> QueryResult<Option<f64>> {
    rs::table
        .find((user_id, project_id))
        .select(rs::score)
        .first(conn)
        .optional()
}

/// How many events of each kind a user has in each project.
pub fn event_counts(
    conn: &mut DbConnection,
    user_id: i64,
) -> QueryResult<HashMap<i64, BTreeMap<String, i64>>> {
    let rows: Vec<(i64, String)> = re::table
        .filter(re::user_id.eq(user_id))
        .select((re::project_id, re::kind))
        .load(conn)?;
    let mut out: HashMap<i64, BTreeMap<String, i64>> = HashMap::new();
    for (project, kind) in rows {
        *out.entry(project).or_default().entry(kind).or_default() += 1;
    }
    Ok(out)
}
