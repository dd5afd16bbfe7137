//! Offline evaluation of matching and routing on Stack Exchange dumps.
//!
//! Every site is imported as a project into a temporary SQLite database.
//! Each site's questions are split by creation time: the first 70% are
//! history, the last 30% the test set. The test period is then erased as if
//! it had not happened yet — its answers deleted, its questions reopened —
//! helpers without a history answer lose their approval, projects get the
//! top tags of their history as topics, and the index and the reputation
//! scores are rebuilt from history alone.
//!
//! * **matching**: for each test question whose accepted answer is by
//!   someone other than the asker, the candidates are ranked by the
//!   matcher (`GET /tickets/{id}/matches`, both lanes merged by score) and
//!   by two baselines over the same approved helpers: *activity* (most
//!   history answers) and *BM25-profile* (each helper's profile is the text
//!   of their history answers, ranked by BM25 against the question). The
//!   accepted answer's author is the one relevant helper: P@1, MRR, NDCG@3
//!   (= 1/log2(1 + rank) within 3) and Recall@10.
//! * **routing**: for each test question, `POST /route`'s ranking of the
//!   projects; top-1 and top-3 accuracy of the question's own site.

use crate::config::Config;
use crate::db::schema::{project_helpers, projects, ticket_messages, tickets};
use crate::db::{self, DbConnection};
use anyhow::Context as _;
use chrono::{NaiveDateTime, Utc};
use diesel::prelude::*;
use guildhall_index::{TicketDoc, TicketIndex, Viewer};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

/// Ranking quality over a set of questions with one relevant item each.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Metrics {
    /// Questions evaluated.
    pub questions: usize,
    /// Precision at 1.
    pub p_at_1: f64,
    /// Mean reciprocal rank.
    pub mrr: f64,
    /// NDCG at 3.
    pub ndcg_at_3: f64,
    /// Recall at 10.
    pub recall_at_10: f64,
}

#[derive(Default)]
struct Acc {
    n: usize,
    p1: f64,
    rr: f64,
    ndcg3: f64,
    r10: f64,
}

impl Acc {
    fn add(&mut self, rank: Option<usize>) {
        self.n += 1;
        if let Some(r) = rank {
            let r = r as f64;
            if r == 1.0 {
                self.p1 += 1.0;
            }
            self.rr += 1.0 / r;
            if r <= 3.0 {
                self.ndcg3 += 1.0 / (1.0 + r).log2();
            }
            if r <= 10.0 {
                self.r10 += 1.0;
            }
        }
    }
    fn metrics(&self) -> Metrics {
        let n = self.n.max(1) as f64;
        Metrics {
            questions: self.n,
            p_at_1: self.p1 / n,
            mrr: self.rr / n,
            ndcg_at_3: self.ndcg3 / n,
            recall_at_10: self.r10 / n,
        }
    }
}

/// One site's (or all sites') matching results.
#[derive(Debug, Clone, Serialize)]
pub struct MatchingRow {
    /// Site, or `all`.
    pub site: String,
    /// The matcher.
    pub matcher: Metrics,
    /// Most history answers first.
    pub activity: Metrics,
    /// BM25 of the question against each helper's history answers.
    pub bm25_profile: Metrics,
}

/// Routing results.
#[derive(Debug, Clone, Serialize)]
pub struct RoutingRow {
    /// Site, or `all`.
    pub site: String,
    /// Questions routed.
    pub questions: usize,
    /// Share whose own site ranked first.
    pub top_1: f64,
    /// Share whose own site ranked in the first three.
    pub top_3: f64,
}

struct Site {
    slug: String,
    name: String,
    project_id: i64,
    /// Test questions: (ticket id, accepted answer author if not the asker).
    test: Vec<(i64, Option<i64>)>,
}

/// The prepared world: the database, the index, the sites.
pub struct World {
    _dir: tempfile::TempDir,
    pool: db::DbPool,
    index: TicketIndex,
    sites: Vec<Site>,
}

fn slug_for(dir: &Path) -> String {
    let name = dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("site")
        .to_lowercase();
    let slug: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    slug.trim_matches('-').chars().take(64).collect()
}

/// Imports the sites and erases each one's test period (see the module).
pub fn prepare(dirs: &[PathBuf], mut progress: impl FnMut(&str)) -> anyhow::Result<World> {
    anyhow::ensure!(
        !dirs.is_empty(),
        "name at least one Stack Exchange dump directory"
    );
    let dir = tempfile::tempdir()?;
    let env: HashMap<String, String> = [
        (
            "GUILDHALL_DATA_DIR".to_owned(),
            dir.path().to_string_lossy().into_owned(),
        ),
        (
            "GUILDHALL_JWT_SECRET".to_owned(),
            "evaluation-only-secret-evaluation-only-secret".to_owned(),
        ),
    ]
    .into_iter()
    .collect();
    let config = Config::from_sources(&env, &HashMap::new())?;
    let pool = db::connect(&config.database_url, 4, config.db_pool_timeout)?;
    db::migrate(&mut *pool.get()?)?;
    let mut sites = Vec::new();
    for d in dirs {
        let slug = slug_for(d);
        progress(&format!("importing {}", d.display()));
        let report = crate::import::import_stackexchange(&pool, d, &slug, |_, _| {})
            .with_context(|| format!("import {}", d.display()))?;
        progress(&format!(
            "  {} questions, {} answers",
            report.questions, report.answers
        ));
        let mut conn = pool.get()?;
        let p = crate::domain::projects::by_slug(&mut conn, &slug)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let test = erase_test_period(&mut conn, p.id)?;
        sites.push(Site {
            slug,
            name: p.name,
            project_id: p.id,
            test,
        });
    }
    let index = TicketIndex::create_in_ram().map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut conn = pool.get()?;
    progress("indexing history");
    crate::jobs::sync_index::mark_all_dirty(&mut conn)?;
    crate::jobs::sync_index::sync(&mut conn, &index, |_| {})?;
    progress("recomputing reputation from history");
    crate::domain::reputation::recompute(&mut conn, &config.reputation)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    drop(conn);
    Ok(World {
        _dir: dir,
        pool,
        index,
        sites,
    })
}

/// Splits a project's questions 70/30 by creation time and erases the last
/// 30% as described in the module. Returns the test questions with their
/// accepted answer's author when it is not the asker.
fn erase_test_period(
    conn: &mut DbConnection,
    project: i64,
) -> anyhow::Result<Vec<(i64, Option<i64>)>> {
    let all: Vec<(i64, NaiveDateTime, i64, Option<i64>, String)> = tickets::table
        .filter(tickets::project_id.eq(project))
        .order((tickets::created_at, tickets::id))
        .select((
            tickets::id,
            tickets::created_at,
            tickets::requester_id,
            tickets::resolved_by,
            tickets::tags,
        ))
        .load(conn)?;
    let cut = all.len() * 7 / 10;
    let (history, test) = all.split_at(cut);
    let test_ids: Vec<i64> = test.iter().map(|t| t.0).collect();
    db::write_tx(conn, |conn| -> QueryResult<()> {
        for chunk in test_ids.chunks(500) {
            diesel::delete(ticket_messages::table.filter(ticket_messages::ticket_id.eq_any(chunk)))
                .execute(conn)?;
            diesel::update(tickets::table.filter(tickets::id.eq_any(chunk)))
                .set((
                    tickets::status.eq("open"),
                    tickets::resolved_by.eq(None::<i64>),
                    tickets::resolution_message_id.eq(None::<i64>),
                    tickets::claimed_by.eq(None::<i64>),
                    tickets::resolved_at.eq(None::<NaiveDateTime>),
                    tickets::closed_at.eq(None::<NaiveDateTime>),
                    tickets::close_reason.eq(None::<String>),
                ))
                .execute(conn)?;
        }
        // Helpers are those who had answered by the end of history.
        let history_ids: Vec<i64> = history.iter().map(|t| t.0).collect();
        let mut answered: HashSet<i64> = HashSet::new();
        for chunk in history_ids.chunks(500) {
            answered.extend(
                ticket_messages::table
                    .filter(ticket_messages::ticket_id.eq_any(chunk))
                    .select(ticket_messages::author_id)
                    .load::<i64>(conn)?,
            );
        }
        let helpers: Vec<i64> = project_helpers::table
            .filter(project_helpers::project_id.eq(project))
            .select(project_helpers::user_id)
            .load(conn)?;
        let gone: Vec<i64> = helpers
            .into_iter()
            .filter(|u| !answered.contains(u))
            .collect();
        for chunk in gone.chunks(500) {
            diesel::delete(
                project_helpers::table
                    .filter(project_helpers::project_id.eq(project))
                    .filter(project_helpers::user_id.eq_any(chunk)),
            )
            .execute(conn)?;
        }
        // Topics: the history's most used tags.
        let mut tags: HashMap<String, usize> = HashMap::new();
        for t in history {
            for tag in serde_json::from_str::<Vec<String>>(&t.4).unwrap_or_default() {
                *tags.entry(tag).or_default() += 1;
            }
        }
        let mut top: Vec<(String, usize)> = tags.into_iter().collect();
        top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let topics: Vec<String> = top.into_iter().take(15).map(|(t, _)| t).collect();
        diesel::update(projects::table.find(project))
            .set(projects::topics.eq(serde_json::to_string(&topics).unwrap_or_default()))
            .execute(conn)?;
        Ok(())
    })?;
    Ok(test
        .iter()
        .map(|t| (t.0, t.3.filter(|a| *a != t.2)))
        .collect())
}

fn rank_of(list: &[i64], target: i64) -> Option<usize> {
    list.iter().position(|u| *u == target).map(|i| i + 1)
}

/// Runs the matching evaluation on a prepared world.
pub fn matching(world: &World, mut progress: impl FnMut(&str)) -> anyhow::Result<Vec<MatchingRow>> {
    let mut conn = world.pool.get()?;
    let mut rows = Vec::new();
    let (mut all_m, mut all_a, mut all_b) = (Acc::default(), Acc::default(), Acc::default());
    for site in &world.sites {
        progress(&format!("matching {}", site.slug));
        let helpers: Vec<i64> = project_helpers::table
            .filter(project_helpers::project_id.eq(site.project_id))
            .filter(project_helpers::status.eq("approved"))
            .select(project_helpers::user_id)
            .load(&mut conn)?;
        let helper_set: HashSet<i64> = helpers.iter().copied().collect();
        // History answers per helper: counts and text.
        let answers: Vec<(i64, String)> = ticket_messages::table
            .inner_join(tickets::table)
            .filter(tickets::project_id.eq(site.project_id))
            .filter(ticket_messages::author_id.ne(tickets::requester_id))
            .select((ticket_messages::author_id, ticket_messages::body))
            .load(&mut conn)?;
        let mut count: HashMap<i64, usize> = HashMap::new();
        let mut text: BTreeMap<i64, String> = BTreeMap::new();
        for (u, body) in answers {
            if helper_set.contains(&u) {
                *count.entry(u).or_default() += 1;
                let t = text.entry(u).or_default();
                t.push_str(&body);
                t.push('\n');
            }
        }
        let mut activity: Vec<i64> = helpers.clone();
        activity.sort_by(|a, b| {
            count
                .get(b)
                .unwrap_or(&0)
                .cmp(count.get(a).unwrap_or(&0))
                .then(a.cmp(b))
        });
        let profiles = TicketIndex::create_in_ram().map_err(|e| anyhow::anyhow!("{e}"))?;
        for (u, body) in &text {
            profiles
                .upsert(&TicketDoc {
                    id: *u,
                    project: site.slug.clone(),
                    title: String::new(),
                    body: body.clone(),
                    answer: None,
                    tags: Vec::new(),
                    status: "closed".into(),
                    kind: "question".into(),
                    created: Utc::now(),
                    resolved: None,
                    private: false,
                    requester_id: 0,
                })
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        profiles.commit().map_err(|e| anyhow::anyhow!("{e}"))?;
        let (mut m, mut a, mut b) = (Acc::default(), Acc::default(), Acc::default());
        for &(ticket, truth) in &site.test {
            let Some(truth) = truth else { continue };
            let ranking = crate::domain::matching::rank(&mut conn, &world.index, ticket, None)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let mut merged: Vec<(f64, i64)> = ranking
                .experts
                .iter()
                .chain(ranking.community.iter())
                .map(|c| (c.score, c.user_id))
                .collect();
            merged.sort_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1)));
            let matcher: Vec<i64> = merged.into_iter().map(|(_, u)| u).collect();
            let t = &ranking.ticket;
            let bm25: Vec<i64> = profiles
                .similar_to_text(&t.title, &t.body, &Viewer::anonymous(), None, 1000)
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .into_iter()
                .map(|h| h.id)
                .collect();
            for (acc, list) in [(&mut m, &matcher), (&mut a, &activity), (&mut b, &bm25)] {
                acc.add(rank_of(list, truth));
            }
            all_m.add(rank_of(&matcher, truth));
            all_a.add(rank_of(&activity, truth));
            all_b.add(rank_of(&bm25, truth));
        }
        rows.push(MatchingRow {
            site: site.name.clone(),
            matcher: m.metrics(),
            activity: a.metrics(),
            bm25_profile: b.metrics(),
        });
    }
    rows.push(MatchingRow {
        site: "all".into(),
        matcher: all_m.metrics(),
        activity: all_a.metrics(),
        bm25_profile: all_b.metrics(),
    });
    Ok(rows)
}

/// Runs the routing evaluation on a prepared world.
pub fn routing(world: &World, mut progress: impl FnMut(&str)) -> anyhow::Result<Vec<RoutingRow>> {
    let mut conn = world.pool.get()?;
    let mut rows = Vec::new();
    let (mut n_all, mut t1_all, mut t3_all) = (0usize, 0usize, 0usize);
    for site in &world.sites {
        progress(&format!("routing {}", site.slug));
        let (mut n, mut t1, mut t3) = (0usize, 0usize, 0usize);
        for &(ticket, _) in &site.test {
            let (title, body): (String, String) = tickets::table
                .find(ticket)
                .select((tickets::title, tickets::body))
                .first(&mut conn)?;
            let ranked =
                crate::domain::routing::route(&mut conn, &world.index, &title, &body, None)
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
            let pos = ranked.iter().position(|p| p.slug == site.slug);
            n += 1;
            t1 += usize::from(pos == Some(0));
            t3 += usize::from(pos.is_some_and(|p| p < 3));
        }
        let share = |k: usize, n: usize| if n == 0 { 0.0 } else { k as f64 / n as f64 };
        rows.push(RoutingRow {
            site: site.name.clone(),
            questions: n,
            top_1: share(t1, n),
            top_3: share(t3, n),
        });
        n_all += n;
        t1_all += t1;
        t3_all += t3;
    }
    let share = |k: usize| {
        if n_all == 0 {
            0.0
        } else {
            k as f64 / n_all as f64
        }
    };
    rows.push(RoutingRow {
        site: "all".into(),
        questions: n_all,
        top_1: share(t1_all),
        top_3: share(t3_all),
    });
    Ok(rows)
}

/// The matching table as Markdown.
pub fn matching_table(rows: &[MatchingRow]) -> String {
    let mut out = String::from(
        "| site | questions | ranker | P@1 | MRR | NDCG@3 | Recall@10 |\n|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        for (name, m) in [
            ("matcher", &r.matcher),
            ("activity", &r.activity),
            ("bm25-profile", &r.bm25_profile),
        ] {
            out.push_str(&format!(
                "| {} | {} | {} | {:.3} | {:.3} | {:.3} | {:.3} |\n",
                r.site, m.questions, name, m.p_at_1, m.mrr, m.ndcg_at_3, m.recall_at_10
            ));
        }
    }
    out
}

/// The routing table as Markdown.
pub fn routing_table(rows: &[RoutingRow]) -> String {
    let mut out = String::from("| site | questions | top-1 | top-3 |\n|---|---|---|---|\n");
    for r in rows {
        out.push_str(&format!(
            "| {} | {} | {:.3} | {:.3} |\n",
            r.site, r.questions, r.top_1, r.top_3
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_of_known_ranks() {
        let mut acc = Acc::default();
        acc.add(Some(1));
        acc.add(Some(2));
        acc.add(Some(4));
        acc.add(None);
        let m = acc.metrics();
        assert_eq!(m.questions, 4);
        assert!((m.p_at_1 - 0.25).abs() < 1e-12);
        assert!((m.mrr - (1.0 + 0.5 + 0.25) / 4.0).abs() < 1e-12);
        assert!((m.ndcg_at_3 - (1.0 + 1.0 / 3f64.log2()) / 4.0).abs() < 1e-12);
        assert!((m.recall_at_10 - 0.75).abs() < 1e-12);
    }

    #[test]
    fn slugs_from_site_directories() {
        assert_eq!(
            slug_for(Path::new("/x/ai.stackexchange.com")),
            "ai-stackexchange-com"
        );
    }
}
