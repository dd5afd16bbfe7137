//! Job queue throughput: enqueue one job and run it (claim → run → delete),
//! on SQLite, and on PostgreSQL when GUILDHALL_TEST_DATABASE_URL is set.
//!
//! `cargo bench --bench jobs`

use criterion::{criterion_group, criterion_main, Criterion};
use diesel::connection::SimpleConnection;
use diesel::Connection;
use guildhall::db;
use guildhall_jobs::{BackgroundJob, Runner, RunnerConfig};
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Serialize, Deserialize)]
struct Noop;

impl BackgroundJob for Noop {
    const JOB_NAME: &'static str = "bench_noop";
    type Context = ();
    fn run(&self, _: &()) -> anyhow::Result<()> {
        Ok(())
    }
}

fn cycle(c: &mut Criterion, name: &str, pool: db::DbPool) {
    db::migrate(&mut pool.get().expect("connection")).expect("migrate");
    let runner = Runner::new(pool.clone(), (), RunnerConfig::default()).register::<Noop>();
    c.bench_function(&format!("job_enqueue_and_run/{name}"), |b| {
        b.iter(|| {
            Noop.enqueue(&mut pool.get().expect("connection"))
                .expect("enqueue");
            assert_eq!(runner.run_pending().expect("run"), 1);
        })
    });
}

fn benches(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bench.db");
    let pool = db::connect(&path.to_string_lossy(), 4, Duration::from_secs(5)).expect("sqlite");
    cycle(c, "sqlite", pool);
    if let Ok(base) = std::env::var("GUILDHALL_TEST_DATABASE_URL") {
        let mut admin = diesel::PgConnection::establish(&base).expect("postgres");
        let _ = admin.batch_execute("DROP DATABASE IF EXISTS guildhall_bench_jobs WITH (FORCE)");
        admin
            .batch_execute("CREATE DATABASE guildhall_bench_jobs")
            .expect("create bench db");
        let url = format!(
            "{}/guildhall_bench_jobs",
            base.rsplit_once('/').map(|(h, _)| h).unwrap_or(&base)
        );
        let pool = db::connect(&url, 4, Duration::from_secs(5)).expect("pg pool");
        cycle(c, "postgres", pool);
        let _ = admin.batch_execute("DROP DATABASE IF EXISTS guildhall_bench_jobs WITH (FORCE)");
    }
}

criterion_group!(name = jobs; config = Criterion::default().sample_size(30).measurement_time(Duration::from_secs(5)); targets = benches);
criterion_main!(jobs);
