//! Matching and reputation at scale (SQLite, in-RAM index):
//! * `GET /tickets/{id}/matches`' ranking for one ticket over 100k solved
//!   tickets and 5k helpers (criterion, plus p50/p99 over 300 tickets);
//! * the reputation recompute for 50k helpers across 500 projects.
//!
//! `cargo bench --bench matching` (sizes: GUILDHALL_BENCH_TICKETS,
//! GUILDHALL_BENCH_HELPERS, GUILDHALL_BENCH_PROJECTS).

use criterion::{criterion_group, criterion_main, Criterion};
use diesel::connection::SimpleConnection;
use guildhall::db::{self, DbPool};
use guildhall::domain::projects::{self, NewProject};
use guildhall_index::TicketIndex;
use std::time::{Duration, Instant};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn pool(dir: &std::path::Path) -> DbPool {
    let pool = db::connect(
        &dir.join("bench.db").to_string_lossy(),
        4,
        Duration::from_secs(60),
    )
    .expect("db");
    db::migrate(&mut pool.get().unwrap()).expect("migrate");
    pool
}

/// Words `w0`…`w1999` mixed by `x`, so BM25 has a vocabulary to rank.
fn words(x: &str, primes: &[u32]) -> String {
    primes
        .iter()
        .map(|p| format!("'w' || (({x} * {p}) % 2000)"))
        .collect::<Vec<_>>()
        .join(" || ' ' || ")
}

fn users(pool: &DbPool, n: usize) {
    pool.get().unwrap().batch_execute(&format!(
        "WITH RECURSIVE s(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM s WHERE x < {n})
         INSERT INTO users (email, email_normalized, display_name, can_login, is_admin, created_at, updated_at)
         SELECT 'u' || x || '@bench', 'u' || x || '@bench', 'user ' || x, 0, 0, datetime('now'), datetime('now') FROM s;"
    )).expect("users");
}

fn project(pool: &DbPool, slug: &str) -> i64 {
    projects::create(
        &mut pool.get().unwrap(),
        1,
        &NewProject {
            slug: slug.into(),
            name: slug.into(),
            repo_url: format!("https://example.com/{slug}"),
            description: "benchmark".into(),
            topics: vec![],
            currency: None,
            commission_bps: None,
        },
    )
    .expect("project")
    .id
}

fn matching(c: &mut Criterion) {
    let tickets = env("GUILDHALL_BENCH_TICKETS", 100_000);
    let helpers = env("GUILDHALL_BENCH_HELPERS", 5_000);
    let dir = tempfile::tempdir().unwrap();
    let pool = pool(dir.path());
    let started = Instant::now();
    users(&pool, helpers + 1_000);
    let p = project(&pool, "big");
    let mut conn = pool.get().unwrap();
    let title = words("x", &[7, 13, 31]);
    let body = words("x", &[3, 11, 17, 19, 23, 29, 37, 41]);
    let answer = words("x", &[43, 47, 53, 59]);
    conn.batch_execute(&format!(
        "BEGIN;
         WITH RECURSIVE s(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM s WHERE x < {helpers})
         INSERT INTO project_helpers (project_id, user_id, tier, status, hourly_rate, bio, skills, decided_by, decided_at, created_at, updated_at)
         SELECT {p}, x, CASE WHEN x % 10 = 0 THEN 'expert' ELSE 'community' END, 'approved',
                CASE WHEN x % 10 = 0 THEN 10000 END, '', '[]', 1, datetime('now'), datetime('now'), datetime('now') FROM s;
         WITH RECURSIVE s(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM s WHERE x < {tickets})
         INSERT INTO tickets (project_id, requester_id, title, body, kind, visibility, status, tags, resolved_by, claimed_by,
                              waiting_since, last_activity_at, submitted_at, resolved_at, closed_at, close_reason, created_at, updated_at)
         SELECT {p}, {helpers} + 1 + x % 1000, {title}, {body}, 'question', 'public', 'closed', '[]',
                1 + (x * 7919) % {helpers}, 1 + (x * 7919) % {helpers},
                datetime('now', '-300 days'), datetime('now'), datetime('now', '-300 days'), datetime('now', '-299 days'),
                datetime('now', '-299 days'), 'accepted', datetime('now', '-300 days'), datetime('now') FROM s;
         INSERT INTO ticket_messages (ticket_id, author_id, body, internal, score, created_at)
         SELECT id, resolved_by, {answer_sql}, 0, 0, datetime('now', '-299 days') FROM tickets;
         UPDATE tickets SET resolution_message_id = (SELECT m.id FROM ticket_messages m WHERE m.ticket_id = tickets.id);
         WITH RECURSIVE s(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM s WHERE x < 300)
         INSERT INTO tickets (project_id, requester_id, title, body, kind, visibility, status, tags,
                              waiting_since, last_activity_at, submitted_at, created_at, updated_at)
         SELECT {p}, {helpers} + 1, {title_q}, {body_q}, 'question', 'public', 'open', '[]',
                datetime('now'), datetime('now'), datetime('now'), datetime('now'), datetime('now') FROM s;
         COMMIT;",
        answer_sql = answer.replace("x", "id"),
        title_q = words("(x * 101 + 7)", &[7, 13, 31]),
        body_q = words("(x * 101 + 7)", &[3, 11, 17, 19, 23, 29, 37, 41]),
    ))
    .expect("tickets");
    let index = TicketIndex::create_in_ram().unwrap();
    guildhall::jobs::sync_index::mark_all_dirty(&mut conn).unwrap();
    guildhall::jobs::sync_index::sync(&mut conn, &index, |_| {}).unwrap();
    guildhall::domain::reputation::recompute(&mut conn, &Default::default()).unwrap();
    eprintln!(
        "matching world: {tickets} solved tickets, {helpers} helpers, {} indexed, built in {:.1}s",
        index.num_docs(),
        started.elapsed().as_secs_f64()
    );
    let open: Vec<i64> = {
        use diesel::prelude::*;
        use guildhall::db::schema::tickets as t;
        t::table
            .filter(t::status.eq("open"))
            .select(t::id)
            .load(&mut conn)
            .unwrap()
    };
    // Where the time goes: the index's more-like-this alone, same tickets.
    let mut index_times: Vec<Duration> = open
        .iter()
        .map(|&id| {
            use diesel::prelude::*;
            use guildhall::db::schema::tickets as t;
            let (title, body): (String, String) = t::table
                .find(id)
                .select((t::title, t::body))
                .first(&mut conn)
                .unwrap();
            let s = Instant::now();
            index
                .similar_to_text(
                    &title,
                    &body,
                    &guildhall_index::Viewer::anonymous(),
                    None,
                    51,
                )
                .unwrap();
            s.elapsed()
        })
        .collect();
    index_times.sort();
    eprintln!(
        "  of which the index's more-like-this: p50 {:.2} ms, p99 {:.2} ms",
        index_times[index_times.len() / 2].as_secs_f64() * 1e3,
        index_times[index_times.len() * 99 / 100].as_secs_f64() * 1e3
    );
    // p50 / p99 over every open ticket.
    let mut times: Vec<Duration> = open
        .iter()
        .map(|&id| {
            let s = Instant::now();
            let r = guildhall::domain::matching::rank(&mut conn, &index, id, None).unwrap();
            let d = s.elapsed();
            assert!(!r.community.is_empty() || !r.experts.is_empty());
            d
        })
        .collect();
    times.sort();
    let pct = |p: f64| times[((times.len() as f64 * p) as usize).min(times.len() - 1)];
    eprintln!(
        "matches over {tickets} tickets / {helpers} helpers: p50 {:.2} ms, p99 {:.2} ms ({} tickets)",
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        times.len()
    );
    let mut i = 0;
    c.bench_function(
        &format!("matches/{tickets}_tickets_{helpers}_helpers"),
        |b| {
            b.iter(|| {
                i = (i + 1) % open.len();
                guildhall::domain::matching::rank(&mut conn, &index, open[i], None).unwrap()
            })
        },
    );
}

fn recompute(c: &mut Criterion) {
    let helpers = env("GUILDHALL_BENCH_REP_HELPERS", 50_000);
    let projects_n = env("GUILDHALL_BENCH_PROJECTS", 500);
    let dir = tempfile::tempdir().unwrap();
    let pool = pool(dir.path());
    users(&pool, helpers + 1);
    for i in 0..projects_n {
        project(&pool, &format!("p{i}"));
    }
    let per = helpers / projects_n;
    pool.get()
        .unwrap()
        .batch_execute(&format!(
            "BEGIN;
             WITH RECURSIVE s(x) AS (SELECT 2 UNION ALL SELECT x + 1 FROM s WHERE x < {last})
             INSERT INTO project_helpers (project_id, user_id, tier, status, bio, skills, decided_by, decided_at, created_at, updated_at)
             SELECT 1 + (x - 2) / {per}, x, 'community', 'approved', '', '[]', 1, datetime('now'), datetime('now'), datetime('now') FROM s;
             INSERT INTO endorsements (project_id, endorser_id, endorsee_id, created_at)
             SELECT project_id, user_id, CASE WHEN user_id % {per} = 0 THEN user_id - 1 ELSE user_id + 1 END, datetime('now')
             FROM project_helpers WHERE user_id + 1 <= {last};
             WITH RECURSIVE k(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM k WHERE n < 5)
             INSERT INTO reputation_events (user_id, project_id, kind, value, weight, dedup_key, occurred_at, created_at)
             SELECT h.user_id, h.project_id, CASE WHEN k.n = 5 THEN 'reopen' ELSE 'accepted_resolution' END,
                    CASE WHEN k.n = 5 THEN 0.0 ELSE 1.0 END, 1.0, 'bench:' || h.user_id || ':' || k.n,
                    datetime('now', '-' || ((h.user_id * k.n) % 700) || ' days'), datetime('now')
             FROM project_helpers h, k;
             COMMIT;",
            last = helpers + 1
        ))
        .expect("reputation world");
    let mut conn = pool.get().unwrap();
    // The first run derives the approval and endorsement events.
    let s = Instant::now();
    let first = guildhall::domain::reputation::recompute(&mut conn, &Default::default()).unwrap();
    eprintln!(
        "recompute {helpers} helpers / {projects_n} projects: first run {:.2}s ({} events derived, {} scores)",
        s.elapsed().as_secs_f64(),
        first.events_added,
        first.scores
    );
    let mut group = c.benchmark_group("reputation");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    group.bench_function(
        format!("recompute/{helpers}_helpers_{projects_n}_projects"),
        |b| {
            b.iter(|| {
                guildhall::domain::reputation::recompute(&mut conn, &Default::default()).unwrap()
            })
        },
    );
    group.finish();
}

criterion_group!(benches, matching, recompute);
criterion_main!(benches);
