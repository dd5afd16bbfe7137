//! Escrow cycles per second: fund (gateway clearing → ticket escrow), hold
//! (pending escrow → helper), release (one linked chain: post the hold's
//! helper part, escrow → project commission, escrow → platform fee), each a
//! ledger transaction — against the raw ceiling of a plain 3-row insert
//! transaction on the same database. One client and 8 concurrent clients,
//! on SQLite and (with GUILDHALL_TEST_DATABASE_URL) PostgreSQL.
//!
//! `GUILDHALL_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo bench --bench escrow`

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use diesel::connection::SimpleConnection;
use diesel::Connection;
use guildhall::db::{self, DbPool};
use guildhall::ledger::{self, AccountKind, NewTransfer, TransferKind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

static SEQ: AtomicU64 = AtomicU64::new(0);

struct Accounts {
    clearing: i64,
    escrow: i64,
    helper: i64,
    project: i64,
    platform: i64,
}

fn accounts(pool: &DbPool, client: i64) -> Accounts {
    let mut c = pool.get().expect("connection");
    Accounts {
        clearing: ledger::clearing_account(&mut c, "sandbox", "usd")
            .expect("clearing")
            .id,
        escrow: ledger::account(&mut c, AccountKind::TicketEscrow, Some(client), "usd")
            .expect("escrow")
            .id,
        helper: ledger::account(&mut c, AccountKind::UserPayable, Some(client), "usd")
            .expect("helper")
            .id,
        project: ledger::account(&mut c, AccountKind::ProjectRevenue, Some(1), "usd")
            .expect("project")
            .id,
        platform: ledger::account(&mut c, AccountKind::PlatformRevenue, None, "usd")
            .expect("platform")
            .id,
    }
}

fn transfer(
    key: String,
    kind: TransferKind,
    debit: i64,
    credit: i64,
    amount: i64,
    pending: Option<i64>,
) -> NewTransfer {
    NewTransfer {
        key,
        kind,
        debit,
        credit,
        amount,
        pending_id: pending,
        ticket_id: None,
        memo: String::new(),
    }
}

fn cycle(pool: &DbPool, a: &Accounts) {
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let mut c = pool.get().expect("connection");
    let split = ledger::split(10_000, 500, 1000).expect("split");
    ledger::apply(
        &mut c,
        &[transfer(
            format!("f{n}"),
            TransferKind::Posted,
            a.clearing,
            a.escrow,
            10_000,
            None,
        )],
    )
    .expect("fund");
    let hold = ledger::apply(
        &mut c,
        &[transfer(
            format!("h{n}"),
            TransferKind::Pending,
            a.escrow,
            a.helper,
            10_000,
            None,
        )],
    )
    .expect("hold")[0]
        .id;
    ledger::apply(
        &mut c,
        &[
            transfer(
                format!("r{n}h"),
                TransferKind::PostPending,
                0,
                0,
                split.helper,
                Some(hold),
            ),
            transfer(
                format!("r{n}p"),
                TransferKind::Posted,
                a.escrow,
                a.project,
                split.project,
                None,
            ),
            transfer(
                format!("r{n}f"),
                TransferKind::Posted,
                a.escrow,
                a.platform,
                split.platform,
                None,
            ),
        ],
    )
    .expect("release");
}

fn raw_insert(pool: &DbPool) {
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let mut c = pool.get().expect("connection");
    guildhall::db::write_tx(&mut c, |c| -> diesel::QueryResult<()> {
        c.batch_execute(&format!(
            "INSERT INTO bench_raw (k, v) VALUES ('a{n}', 1); INSERT INTO bench_raw (k, v) VALUES ('b{n}', 2); INSERT INTO bench_raw (k, v) VALUES ('c{n}', 3);"
        ))
    })
    .expect("raw insert");
}

fn run(c: &mut Criterion, name: &str, pool: DbPool) {
    db::migrate(&mut pool.get().expect("connection")).expect("migrate");
    pool.get()
        .expect("connection")
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS bench_raw (k TEXT PRIMARY KEY, v BIGINT NOT NULL)",
        )
        .expect("raw table");
    let per_client: Vec<Accounts> = (0..8).map(|i| accounts(&pool, i)).collect();
    let mut group = c.benchmark_group(format!("escrow/{name}"));
    group
        .throughput(Throughput::Elements(1))
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    for clients in [1usize, 8] {
        group.bench_function(format!("cycle/{clients}_clients"), |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                std::thread::scope(|s| {
                    for (i, acct) in per_client.iter().take(clients).enumerate() {
                        let pool = &pool;
                        let share =
                            iters / clients as u64 + u64::from((i as u64) < iters % clients as u64);
                        s.spawn(move || (0..share).for_each(|_| cycle(pool, acct)));
                    }
                });
                start.elapsed()
            })
        });
        group.bench_function(format!("raw_3_row_insert_tx/{clients}_clients"), |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                std::thread::scope(|s| {
                    for i in 0..clients {
                        let pool = &pool;
                        let share =
                            iters / clients as u64 + u64::from((i as u64) < iters % clients as u64);
                        s.spawn(move || (0..share).for_each(|_| raw_insert(pool)));
                    }
                });
                start.elapsed()
            })
        });
    }
    group.finish();
    let mut conn = pool.get().expect("connection");
    let violations = ledger::check(&mut conn).expect("check");
    assert!(
        violations.is_empty(),
        "ledger check after the benchmark: {violations:?}"
    );
}

fn benches(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let sqlite = db::connect(
        &dir.path().join("escrow.db").to_string_lossy(),
        8,
        Duration::from_secs(30),
    )
    .expect("sqlite");
    run(c, "sqlite", sqlite);
    if let Ok(base) = std::env::var("GUILDHALL_TEST_DATABASE_URL") {
        let mut admin = diesel::PgConnection::establish(&base).expect("postgres");
        let _ = admin.batch_execute("DROP DATABASE IF EXISTS guildhall_bench_escrow WITH (FORCE)");
        admin
            .batch_execute("CREATE DATABASE guildhall_bench_escrow")
            .expect("create db");
        let url = format!(
            "{}/guildhall_bench_escrow",
            base.rsplit_once('/').map(|(h, _)| h).unwrap_or(&base)
        );
        run(
            c,
            "postgres",
            db::connect(&url, 8, Duration::from_secs(30)).expect("pg pool"),
        );
        let _ = admin.batch_execute("DROP DATABASE IF EXISTS guildhall_bench_escrow WITH (FORCE)");
    }
}

criterion_group!(escrow, benches);
criterion_main!(escrow);
