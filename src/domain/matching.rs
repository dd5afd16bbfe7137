//! Who should answer a ticket: helpers ranked by a weighted sum of
//! features, in three lanes (experts, community, AI).
//!
//! Candidates are the approved helpers of the ticket's project and, marked
//! `cross_project`, helpers who resolved similar tickets in other projects.
//! Each gets seven features in [0, 1], combined with [`WEIGHTS`]:
//!
//! | feature | definition |
//! |---|---|
//! | expertise | Σ BM25 of the similar solved tickets the helper answered (the index's more-like-this on this ticket's text; the accepted answer counts fully, other answers half, tickets of other projects half again), divided by the best candidate's |
//! | experience | ln(1 + the helper's public answers on others' tickets in this project) / ln(1 + the most any candidate has) |
//! | reputation | the helper's score in this project / 100 (for cross-project candidates: their best score elsewhere); 0.5 before any recompute |
//!
//! Experience, acceptance and speed come from the aggregates the
//! reputation job stores with each score, so a request reads them in one
//! query.
//! | acceptance | (accepted + 1) / (accepted + reopened + refunded + 2) in this project |
//! | speed | 1 / (1 + median first-response hours / the project's `min_response_hours`) |
//! | availability | 1 / (1 + open claims) |
//! | price fit | community: 1; expert with rate r: min(1, money on the ticket / r) |
//!
//! `score = 100 · w · f`; `reasons[]` names the two strongest contributions
//! in plain words.

use crate::db::schema::{
    project_helpers, projects, reputation_scores as rs, ticket_messages, tickets, users,
};
use crate::db::DbConnection;
use crate::domain::reputation::Score;
use crate::domain::search::{self, VisibleHit};
use crate::domain::tickets as ticket_domain;
use crate::error::AppResult;
use diesel::prelude::*;
use guildhall_index::TicketIndex;
use ndarray::{arr1, Array1};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use utoipa::ToSchema;

/// Feature weights: expertise, experience, reputation, acceptance, speed,
/// availability, price fit.
pub const WEIGHTS: [f64; 7] = [0.25, 0.40, 0.12, 0.08, 0.05, 0.05, 0.05];
const FEATURES: [&str; 7] = [
    "expertise",
    "experience",
    "reputation",
    "acceptance",
    "speed",
    "availability",
    "price_fit",
];
/// How much an answer that was not the accepted one counts towards
/// expertise, relative to the accepted one.
pub const OTHER_ANSWER_WEIGHT: f64 = 0.5;
/// How much a similar ticket solved in another project counts towards
/// expertise, relative to one solved in this project.
pub const CROSS_PROJECT_DISCOUNT: f64 = 0.5;
/// How many similar solved tickets feed expertise and the AI lane.
pub const SIMILAR: usize = 50;

/// A ranked helper.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Candidate {
    /// The helper.
    pub user_id: i64,
    /// Public name.
    pub display_name: String,
    /// 0–100.
    pub score: f64,
    /// The strongest features, in plain words.
    pub reasons: Vec<String>,
    /// Hourly rate in minor units (experts).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hourly_rate: Option<i64>,
    /// Not a helper of this project: proven on similar tickets elsewhere.
    pub cross_project: bool,
    /// Each feature's value, 0–1.
    pub features: BTreeMap<&'static str, f64>,
    #[serde(skip)]
    tier: String,
}

/// Everything [`rank`] computed for one ticket.
pub struct Ranking {
    /// The ticket, as loaded for the caller.
    pub ticket: ticket_domain::Ticket,
    /// Approved experts of the project, best first.
    pub experts: Vec<Candidate>,
    /// Community helpers and cross-project candidates, best first.
    pub community: Vec<Candidate>,
    /// The similar solved tickets (visible to the caller), best first.
    pub similar: Vec<VisibleHit>,
}

/// Ranks the helpers for ticket `id`, as seen by `user`.
pub fn rank(
    conn: &mut DbConnection,
    index: &TicketIndex,
    id: i64,
    user: Option<i64>,
) -> AppResult<Ranking> {
    let (t, _) = ticket_domain::load_visible(conn, id, user)?;
    let min_hours = projects::table
        .find(t.project_id)
        .select(projects::min_response_hours)
        .first::<i32>(conn)?
        .max(1);
    let paid: i64 = tickets::table
        .find(id)
        .select(tickets::paid_amount)
        .first(conn)?;
    let viewer = search::viewer(conn, user)?;
    let hits = index
        .similar_to_text(&t.title, &t.body, &viewer, None, SIMILAR + 1)
        .map_err(search::map_index_error)?;
    let mut similar = search::visible_hits(conn, hits, user)?;
    similar.retain(|h| h.ticket.id != id);
    similar.truncate(SIMILAR);

    // Expertise: BM25 mass of similar solved tickets each helper resolved.
    let resolvers: HashMap<i64, (Option<i64>, i64)> = tickets::table
        .filter(tickets::id.eq_any(similar.iter().map(|h| h.ticket.id).collect::<Vec<_>>()))
        .select((tickets::id, (tickets::resolved_by, tickets::project_id)))
        .load::<(i64, (Option<i64>, i64))>(conn)?
        .into_iter()
        .collect();
    let answered: Vec<(i64, i64)> = ticket_messages::table
        .filter(
            ticket_messages::ticket_id
                .eq_any(similar.iter().map(|h| h.ticket.id).collect::<Vec<_>>()),
        )
        .filter(ticket_messages::internal.eq(false))
        .select((ticket_messages::ticket_id, ticket_messages::author_id))
        .load(conn)?;
    let mut answerers: HashMap<i64, Vec<i64>> = HashMap::new();
    for (ticket, author) in answered {
        answerers.entry(ticket).or_default().push(author);
    }
    let mut expertise: HashMap<i64, f64> = HashMap::new();
    let mut solved_count: HashMap<i64, usize> = HashMap::new();
    let mut proven_in: HashMap<i64, i64> = HashMap::new();
    for h in &similar {
        let Some((resolver, project)) = resolvers.get(&h.ticket.id) else {
            continue;
        };
        // Evidence from another project transfers less surely.
        let discount = if *project == t.project_id {
            1.0
        } else {
            CROSS_PROJECT_DISCOUNT
        };
        let mut seen = std::collections::HashSet::new();
        for &author in answerers
            .get(&h.ticket.id)
            .map(Vec::as_slice)
            .unwrap_or(&[])
        {
            if author == h.ticket.requester_id || !seen.insert(author) {
                continue;
            }
            let accepted = Some(author) == *resolver;
            let w = if accepted { 1.0 } else { OTHER_ANSWER_WEIGHT };
            *expertise.entry(author).or_default() += discount * w * f64::from(h.score);
            if accepted {
                *solved_count.entry(author).or_default() += 1;
                if *project != t.project_id {
                    proven_in.entry(author).or_insert(*project);
                }
            }
        }
    }

    // Candidates: the project's approved helpers, then proven outsiders.
    let mut candidates: Vec<(i64, String, Option<i64>, bool)> = project_helpers::table
        .filter(project_helpers::project_id.eq(t.project_id))
        .filter(project_helpers::status.eq("approved"))
        .select((
            project_helpers::user_id,
            project_helpers::tier,
            project_helpers::hourly_rate,
        ))
        .load::<(i64, String, Option<i64>)>(conn)?
        .into_iter()
        .map(|(u, tier, rate)| (u, tier, rate, false))
        .collect();
    let members: std::collections::HashSet<i64> = candidates.iter().map(|c| c.0).collect();
    for helper in proven_in.keys() {
        if !members.contains(helper) {
            candidates.push((*helper, "community".into(), None, true));
        }
    }
    candidates.retain(|c| c.0 != t.requester_id);
    let ids: Vec<i64> = candidates.iter().map(|c| c.0).collect();

    let names: HashMap<i64, String> = users::table
        .filter(users::id.eq_any(&ids))
        .select((users::id, users::display_name))
        .load(conn)?
        .into_iter()
        .collect();
    // The recompute job's per-(helper, project) aggregates: one read.
    let mut reputation: HashMap<i64, f64> = HashMap::new();
    let mut record: HashMap<i64, f64> = HashMap::new();
    let mut outcomes: HashMap<i64, (f64, f64)> = HashMap::new();
    let mut response_median: HashMap<i64, f64> = HashMap::new();
    for sc in rs::table
        .filter(rs::project_id.eq(t.project_id))
        .select(Score::as_select())
        .load::<Score>(conn)?
    {
        reputation.insert(sc.user_id, sc.score / 100.0);
        record.insert(sc.user_id, f64::from(sc.answers));
        outcomes.insert(sc.user_id, (f64::from(sc.accepted), f64::from(sc.setbacks)));
        if let Some(m) = sc.median_response_hours {
            response_median.insert(sc.user_id, m);
        }
    }
    let outsiders: Vec<i64> = ids
        .iter()
        .copied()
        .filter(|u| !members.contains(u))
        .collect();
    if !outsiders.is_empty() {
        for (u, s) in rs::table
            .filter(rs::user_id.eq_any(&outsiders))
            .select((rs::user_id, rs::score))
            .load::<(i64, f64)>(conn)?
        {
            let e = reputation.entry(u).or_insert(0.0);
            *e = e.max(s / 100.0);
        }
    }
    let most_record = record.values().copied().fold(0.0, f64::max);
    let mut claims: HashMap<i64, f64> = HashMap::new();
    for u in tickets::table
        .filter(tickets::claimed_by.eq_any(&ids))
        .filter(tickets::status.eq("claimed"))
        .select(tickets::claimed_by.assume_not_null())
        .load::<i64>(conn)?
    {
        *claims.entry(u).or_default() += 1.0;
    }
    let project_slugs: HashMap<i64, String> = projects::table
        .select((projects::id, projects::slug))
        .filter(projects::id.eq_any(proven_in.values().copied().collect::<Vec<_>>()))
        .load(conn)?
        .into_iter()
        .collect();

    let best_expertise = expertise.values().copied().fold(0.0, f64::max);
    let weights = arr1(&WEIGHTS);
    let mut experts = Vec::new();
    let mut community = Vec::new();
    for (user_id, tier, rate, cross) in candidates {
        let exp = if best_expertise > 0.0 {
            expertise.get(&user_id).copied().unwrap_or(0.0) / best_expertise
        } else {
            0.0
        };
        let rep = reputation
            .get(&user_id)
            .copied()
            .filter(|r| *r >= 0.0)
            .unwrap_or(0.5);
        let (acc, bad) = outcomes.get(&user_id).copied().unwrap_or((0.0, 0.0));
        let acceptance = (acc + 1.0) / (acc + bad + 2.0);
        let median = response_median.get(&user_id).copied();
        let speed = median.map_or(0.5, |m| 1.0 / (1.0 + m / f64::from(min_hours)));
        let open = claims.get(&user_id).copied().unwrap_or(0.0);
        let availability = 1.0 / (1.0 + open);
        let price = match rate {
            Some(r) if r > 0 => (paid as f64 / r as f64).min(1.0),
            _ => 1.0,
        };
        let experience = if most_record > 0.0 {
            (1.0 + record.get(&user_id).copied().unwrap_or(0.0)).ln() / (1.0 + most_record).ln()
        } else {
            0.0
        };
        let f: Array1<f64> = arr1(&[exp, experience, rep, acceptance, speed, availability, price]);
        let contrib = &weights * &f;
        let score = 100.0 * contrib.sum();
        let mut order: Vec<usize> = (0..FEATURES.len()).collect();
        order.sort_by(|&a, &b| contrib[b].total_cmp(&contrib[a]));
        let mut reasons: Vec<String> = Vec::new();
        if cross {
            if let Some(slug) = proven_in.get(&user_id).and_then(|p| project_slugs.get(p)) {
                reasons.push(format!("proven on similar tickets in {slug}"));
            }
        }
        for &k in order.iter().filter(|&&k| f[k] > 0.0).take(2) {
            reasons.push(match k {
                0 => format!(
                    "resolved {} similar ticket{}",
                    solved_count.get(&user_id).copied().unwrap_or(0),
                    if solved_count.get(&user_id) == Some(&1) {
                        ""
                    } else {
                        "s"
                    }
                ),
                1 => format!(
                    "{} answer{} in this project",
                    record.get(&user_id).copied().unwrap_or(0.0),
                    if record.get(&user_id) == Some(&1.0) {
                        ""
                    } else {
                        "s"
                    }
                ),
                2 if reputation.contains_key(&user_id) => {
                    format!("reputation {:.0}/100", rep * 100.0)
                }
                2 => "no reputation yet (neutral)".to_owned(),
                3 => format!(
                    "{:.0}% of resolutions accepted",
                    100.0 * acc / (acc + bad).max(1.0)
                ),
                4 => match median {
                    Some(m) => format!("answers in about {m:.1} h (median)"),
                    None => "no response history yet".to_owned(),
                },
                5 => match open as i64 {
                    0 => "no open claims".to_owned(),
                    n => format!("{n} open claim{}", if n == 1 { "" } else { "s" }),
                },
                _ => match rate {
                    Some(_) => "rate fits the money on the ticket".to_owned(),
                    None => "free community help".to_owned(),
                },
            });
        }
        let c = Candidate {
            user_id,
            display_name: names.get(&user_id).cloned().unwrap_or_default(),
            score,
            reasons,
            hourly_rate: rate,
            cross_project: cross,
            features: FEATURES.iter().copied().zip(f.iter().copied()).collect(),
            tier: tier.clone(),
        };
        if c.tier == "expert" && !cross {
            experts.push(c);
        } else {
            community.push(c);
        }
    }
    for lane in [&mut experts, &mut community] {
        lane.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.user_id.cmp(&b.user_id)));
    }
    Ok(Ranking {
        ticket: t,
        experts,
        community,
        similar,
    })
}
