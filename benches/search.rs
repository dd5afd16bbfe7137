//! Search latency, indexing throughput and index size: tantivy (the
//! guildhall-index crate) against SQLite FTS5 (bm25) and PostgreSQL full-text
//! search (tsvector + GIN + ts_rank), on one deterministic corpus and one
//! fixed query set.
//!
//! Corpus: documents made from a Zipfian draw over the vocabulary of the six
//! shared Stack Exchange dumps (ranked by real frequency), mixed with the real
//! question titles and bodies of those dumps. Queries: 40 fixed queries, half
//! two mid-frequency vocabulary words, half three words of real titles.
//!
//! ```sh
//! cargo bench --bench search                                  # 10k and 100k
//! GUILDHALL_BENCH_SIZES=10000,100000,1000000 cargo bench --bench search
//! GUILDHALL_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo bench --bench search
//! ```
//! SQL engines run up to GUILDHALL_BENCH_SQL_MAX (default 100000) documents.
//! p50/p99 are computed from every timed query and printed as a table.

use criterion::{criterion_group, criterion_main, Criterion};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Double, Float};
use guildhall::import::stackexchange::{self, Post};
use guildhall_index::{SearchRequest, TicketDoc, TicketIndex, Viewer};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

struct Corpus {
    vocab: Vec<String>,
    cumulative: Vec<f64>,
    real: Vec<(String, String)>,
}

impl Corpus {
    fn load() -> Corpus {
        // The dumps to draw words and titles from: GUILDHALL_BENCH_DUMPS, else
        // the six shared sites beside the repository, else the committed three.
        let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let dir = std::env::var_os("GUILDHALL_BENCH_DUMPS")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo.join("../shared/data/stackexchange"));
        let dir = if dir.is_dir() {
            dir
        } else {
            repo.join("tests/fixtures/stackexchange")
        };
        let mut counts: HashMap<String, u64> = HashMap::new();
        let mut real = Vec::new();
        let mut sites: Vec<PathBuf> = std::fs::read_dir(&dir)
            .expect("a directory of Stack Exchange dumps")
            .flatten()
            .map(|e| e.path())
            .collect();
        sites.sort();
        for site in sites {
            stackexchange::read_posts(&site.join("Posts.xml"), |post| {
                let text = match post {
                    Post::Question(q) => {
                        let body = guildhall::import::html_text::html_to_text(&q.body_html);
                        real.push((q.title.clone(), body.chars().take(800).collect()));
                        format!("{} {body}", q.title)
                    }
                    Post::Answer(a) => guildhall::import::html_text::html_to_text(&a.body_html),
                };
                for w in words(&text) {
                    *counts.entry(w).or_default() += 1;
                }
                Ok(())
            })
            .expect("read posts");
        }
        let mut vocab: Vec<(String, u64)> = counts.into_iter().collect();
        vocab.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        vocab.truncate(30_000);
        let vocab: Vec<String> = vocab.into_iter().map(|(w, _)| w).collect();
        let mut cumulative = Vec::with_capacity(vocab.len());
        let mut acc = 0.0;
        for rank in 1..=vocab.len() {
            acc += 1.0 / (rank as f64).powf(1.07);
            cumulative.push(acc);
        }
        Corpus {
            vocab,
            cumulative,
            real,
        }
    }

    fn zipf_word(&self, rng: &mut Rng) -> &str {
        let total = self.cumulative[self.cumulative.len() - 1];
        let x = (rng.next() as f64 / u64::MAX as f64) * total;
        let i = self
            .cumulative
            .partition_point(|c| *c < x)
            .min(self.vocab.len() - 1);
        &self.vocab[i]
    }

    fn zipf_text(&self, rng: &mut Rng, n: usize) -> String {
        (0..n)
            .map(|_| self.zipf_word(rng))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Document `i`, the same on every run.
    fn doc(&self, i: usize) -> TicketDoc {
        let mut rng = Rng::new(i as u64 + 1);
        let (title, body) = if rng.below(10) < 3 {
            let (t, b) = &self.real[rng.below(self.real.len())];
            (t.clone(), format!("{b} {}", self.zipf_text(&mut rng, 30)))
        } else {
            let n = 5 + rng.below(5);
            let m = 60 + rng.below(40);
            (self.zipf_text(&mut rng, n), self.zipf_text(&mut rng, m))
        };
        let status = ["open", "resolved", "closed", "closed"][rng.below(4)];
        let answer = (status != "open").then(|| self.zipf_text(&mut rng, 30));
        let tags = (0..1 + rng.below(3))
            .map(|_| self.vocab[rng.below(200)].clone())
            .collect();
        TicketDoc {
            id: i as i64 + 1,
            project: format!("project-{}", i % 50),
            title,
            body,
            answer,
            tags,
            status: status.into(),
            kind: "question".into(),
            created: chrono::DateTime::from_timestamp(1_600_000_000 + i as i64 * 60, 0)
                .unwrap_or_default(),
            resolved: None,
            private: false,
            requester_id: 1,
        }
    }

    fn queries(&self) -> Vec<Vec<String>> {
        let mut rng = Rng::new(4242);
        let mut out = Vec::new();
        for _ in 0..20 {
            out.push(vec![
                self.vocab[50 + rng.below(3000)].clone(),
                self.vocab[50 + rng.below(3000)].clone(),
            ]);
        }
        for _ in 0..20 {
            let (title, _) = &self.real[rng.below(self.real.len())];
            let ws: Vec<String> = words(title)
                .into_iter()
                .filter(|w| w.len() > 3)
                .take(3)
                .collect();
            if !ws.is_empty() {
                out.push(ws);
            }
        }
        out
    }
}

fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.len() >= 3 && w.chars().all(|c| c.is_ascii_alphabetic()))
        .map(str::to_lowercase)
        .collect()
}

fn dir_size(path: &Path) -> u64 {
    std::fs::read_dir(path)
        .map(|rd| {
            rd.flatten()
                .map(|e| {
                    e.metadata()
                        .map(|m| {
                            if m.is_dir() {
                                dir_size(&e.path())
                            } else {
                                m.len()
                            }
                        })
                        .unwrap_or(0)
                })
                .sum()
        })
        .unwrap_or(0)
}

#[derive(QueryableByName)]
struct SqlHit {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Double)]
    score: f64,
}

#[derive(QueryableByName)]
struct PgHit {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Float)]
    score: f32,
}

trait Engine {
    fn name(&self) -> &'static str;
    fn search(&mut self, terms: &[String]) -> usize;
}

/// The product's search path: top 10 with highlights; with `facets`, also
/// the exact total and facet counts over every match (what the API's first
/// page returns unless `facets=false`).
struct Tantivy {
    index: TicketIndex,
    facets: bool,
}

impl Engine for Tantivy {
    fn name(&self) -> &'static str {
        if self.facets {
            "tantivy_with_facets"
        } else {
            "tantivy"
        }
    }
    fn search(&mut self, terms: &[String]) -> usize {
        let req = SearchRequest {
            query: terms.join(" "),
            viewer: Viewer::anonymous(),
            limit: 10,
            top_only: !self.facets,
            ..SearchRequest::default()
        };
        self.index.search(&req).expect("search").hits.len()
    }
}

struct Fts5(SqliteConnection);

impl Engine for Fts5 {
    fn name(&self) -> &'static str {
        "sqlite_fts5"
    }
    fn search(&mut self, terms: &[String]) -> usize {
        let q = terms
            .iter()
            .map(|t| format!("\"{t}\""))
            .collect::<Vec<_>>()
            .join(" OR ");
        let hits: Vec<SqlHit> = diesel::sql_query(
            "SELECT rowid AS id, bm25(docs, 2.0, 1.0, 1.2) AS score FROM docs WHERE docs MATCH ? ORDER BY score LIMIT 10",
        )
        .bind::<diesel::sql_types::Text, _>(q)
        .load(&mut self.0)
        .expect("fts5 query");
        hits.iter()
            .filter(|h| h.id > 0 && h.score.is_finite())
            .count()
    }
}

struct PgFts(PgConnection);

impl Engine for PgFts {
    fn name(&self) -> &'static str {
        "postgres_fts"
    }
    fn search(&mut self, terms: &[String]) -> usize {
        let q = terms.join(" | ");
        let hits: Vec<PgHit> = diesel::sql_query(
            "SELECT id, ts_rank(tsv, q) AS score FROM docs, to_tsquery('english', $1) q WHERE tsv @@ q ORDER BY score DESC LIMIT 10",
        )
        .bind::<diesel::sql_types::Text, _>(q)
        .load(&mut self.0)
        .expect("pg query");
        hits.iter()
            .filter(|h| h.id > 0 && h.score.is_finite())
            .count()
    }
}

fn build_tantivy(corpus: &Corpus, n: usize, dir: &Path) -> (Tantivy, f64, u64) {
    let index = TicketIndex::open_or_create(dir).expect("index");
    let start = Instant::now();
    for i in 0..n {
        index.upsert(&corpus.doc(i)).expect("upsert");
        if i > 0 && i % 200_000 == 0 {
            index.commit().expect("commit");
        }
    }
    index.commit().expect("commit");
    let rate = n as f64 / start.elapsed().as_secs_f64();
    (
        Tantivy {
            index,
            facets: false,
        },
        rate,
        dir_size(dir),
    )
}

fn sql_escape(s: &str) -> String {
    s.replace('\'', "''").replace('\0', "")
}

fn build_fts5(corpus: &Corpus, n: usize, dir: &Path) -> (Fts5, f64, u64) {
    let path = dir.join("fts.db");
    let mut conn = SqliteConnection::establish(&path.to_string_lossy()).expect("sqlite");
    conn.batch_execute("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; CREATE VIRTUAL TABLE docs USING fts5(title, body, answer, tokenize='porter unicode61');")
        .expect("fts5 table");
    let start = Instant::now();
    for chunk in (0..n).collect::<Vec<_>>().chunks(5000) {
        let mut sql = String::from("BEGIN;");
        for &i in chunk {
            let d = corpus.doc(i);
            sql.push_str(&format!(
                "INSERT INTO docs(rowid, title, body, answer) VALUES ({}, '{}', '{}', '{}');",
                d.id,
                sql_escape(&d.title),
                sql_escape(&d.body),
                sql_escape(d.answer.as_deref().unwrap_or(""))
            ));
        }
        sql.push_str("COMMIT;");
        conn.batch_execute(&sql).expect("fts5 insert");
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    (Fts5(conn), rate, dir_size(dir))
}

fn build_pg(corpus: &Corpus, n: usize, base: &str) -> (PgFts, f64, u64) {
    let mut admin = PgConnection::establish(base).expect("postgres");
    let _ = admin.batch_execute("DROP DATABASE IF EXISTS guildhall_bench_search WITH (FORCE)");
    admin
        .batch_execute("CREATE DATABASE guildhall_bench_search")
        .expect("create db");
    let url = format!(
        "{}/guildhall_bench_search",
        base.rsplit_once('/').map(|(h, _)| h).unwrap_or(base)
    );
    let mut conn = PgConnection::establish(&url).expect("bench db");
    conn.batch_execute("CREATE TABLE docs (id BIGINT PRIMARY KEY, tsv TSVECTOR NOT NULL)")
        .expect("table");
    let start = Instant::now();
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        let rows: Vec<String> = chunk
            .iter()
            .map(|&i| {
                let d = corpus.doc(i);
                format!(
                    "({}, setweight(to_tsvector('english', '{}'), 'A') || setweight(to_tsvector('english', '{}'), 'C') || setweight(to_tsvector('english', '{}'), 'B'))",
                    d.id,
                    sql_escape(&d.title),
                    sql_escape(&d.body),
                    sql_escape(d.answer.as_deref().unwrap_or(""))
                )
            })
            .collect();
        conn.batch_execute(&format!(
            "INSERT INTO docs (id, tsv) VALUES {}",
            rows.join(",")
        ))
        .expect("insert");
    }
    conn.batch_execute("CREATE INDEX docs_tsv ON docs USING GIN (tsv); ANALYZE docs;")
        .expect("gin");
    let rate = n as f64 / start.elapsed().as_secs_f64();
    #[derive(QueryableByName)]
    struct Size {
        #[diesel(sql_type = BigInt)]
        bytes: i64,
    }
    let size: Vec<Size> = diesel::sql_query("SELECT pg_total_relation_size('docs') AS bytes")
        .load(&mut conn)
        .expect("size");
    (
        PgFts(conn),
        rate,
        size.first().map(|s| s.bytes as u64).unwrap_or(0),
    )
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

struct Row {
    engine: &'static str,
    docs: usize,
    p50: Duration,
    p99: Duration,
    rate: f64,
    size: u64,
}

fn measure(
    c: &mut Criterion,
    engine: &mut dyn Engine,
    n: usize,
    queries: &[Vec<String>],
    rate: f64,
    size: u64,
    rows: &mut Vec<Row>,
) {
    let name = engine.name();
    let mut samples: Vec<Duration> = Vec::new();
    let mut next = 0usize;
    let mut group = c.benchmark_group("search_top10");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(8))
        .warm_up_time(Duration::from_secs(1));
    group.bench_function(format!("{name}/{n}"), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let q = &queries[next % queries.len()];
                next += 1;
                let t = Instant::now();
                std::hint::black_box(engine.search(q));
                let d = t.elapsed();
                samples.push(d);
                total += d;
            }
            total
        })
    });
    group.finish();
    samples.sort();
    let row = Row {
        engine: name,
        docs: n,
        p50: percentile(&samples, 0.5),
        p99: percentile(&samples, 0.99),
        rate,
        size,
    };
    println!(
        "RESULT {} docs={} p50={:.3}ms p99={:.3}ms index_rate={:.0}/s size={:.1}MiB queries_timed={}",
        row.engine,
        row.docs,
        row.p50.as_secs_f64() * 1e3,
        row.p99.as_secs_f64() * 1e3,
        row.rate,
        row.size as f64 / 1048576.0,
        samples.len()
    );
    rows.push(row);
}

fn benches(c: &mut Criterion) {
    let sizes: Vec<usize> = std::env::var("GUILDHALL_BENCH_SIZES")
        .unwrap_or_else(|_| "10000,100000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let sql_max: usize = std::env::var("GUILDHALL_BENCH_SQL_MAX")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let pg = std::env::var("GUILDHALL_TEST_DATABASE_URL").ok();
    let corpus = Corpus::load();
    let queries = corpus.queries();
    let mut rows = Vec::new();
    for &n in &sizes {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut t, rate, size) = build_tantivy(&corpus, n, &dir.path().join("tantivy"));
        measure(c, &mut t, n, &queries, rate, size, &mut rows);
        t.facets = true;
        measure(c, &mut t, n, &queries, rate, size, &mut rows);
        drop(t);
        if n <= sql_max {
            std::fs::create_dir_all(dir.path().join("fts")).expect("dir");
            let (mut f, rate, size) = build_fts5(&corpus, n, &dir.path().join("fts"));
            measure(c, &mut f, n, &queries, rate, size, &mut rows);
            if let Some(base) = &pg {
                let (mut p, rate, size) = build_pg(&corpus, n, base);
                measure(c, &mut p, n, &queries, rate, size, &mut rows);
                drop(p);
                if let Ok(mut admin) = PgConnection::establish(base) {
                    let _ = admin.batch_execute(
                        "DROP DATABASE IF EXISTS guildhall_bench_search WITH (FORCE)",
                    );
                }
            }
        }
    }
    println!(
        "\n| engine | tickets | p50 (ms) | p99 (ms) | indexing (tickets/s) | index size (MiB) |"
    );
    println!("|---|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {} | {:.3} | {:.3} | {:.0} | {:.1} |",
            r.engine,
            r.docs,
            r.p50.as_secs_f64() * 1e3,
            r.p99.as_secs_f64() * 1e3,
            r.rate,
            r.size as f64 / 1048576.0
        );
    }
}

fn indexing(c: &mut Criterion) {
    let corpus = Corpus::load();
    let docs: Vec<TicketDoc> = (0..10_000).map(|i| corpus.doc(i)).collect();
    let mut group = c.benchmark_group("indexing");
    group
        .sample_size(10)
        .throughput(criterion::Throughput::Elements(docs.len() as u64));
    group.bench_function("tantivy/10k_tickets_in_ram", |b| {
        b.iter(|| {
            let index = TicketIndex::create_in_ram().expect("index");
            for d in &docs {
                index.upsert(d).expect("upsert");
            }
            index.commit().expect("commit");
            index.num_docs()
        })
    });
    group.finish();
}

criterion_group!(name = search; config = Criterion::default(); targets = indexing, benches);
criterion_main!(search);
