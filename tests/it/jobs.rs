//! The durable job queue on the test's database.

use crate::util::{wait_until, TestApp};
use guildhall::db::write_tx;
use guildhall_jobs::{list_jobs, BackgroundJob, Runner, RunnerConfig, STATUS_FAILED};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone, Default)]
struct Ctx {
    ran: Arc<Mutex<Vec<String>>>,
}

#[derive(Serialize, Deserialize)]
struct Record {
    label: String,
}

impl BackgroundJob for Record {
    const JOB_NAME: &'static str = "test_record";
    type Context = Ctx;
    fn run(&self, ctx: &Ctx) -> anyhow::Result<()> {
        // Long enough for another worker to try the same row.
        std::thread::sleep(Duration::from_millis(2));
        ctx.ran.lock().unwrap().push(self.label.clone());
        Ok(())
    }
}

#[derive(Serialize, Deserialize)]
struct Deduped {
    key: String,
}

impl BackgroundJob for Deduped {
    const JOB_NAME: &'static str = "test_deduped";
    const DEDUPLICATED: bool = true;
    type Context = Ctx;
    fn run(&self, ctx: &Ctx) -> anyhow::Result<()> {
        ctx.ran.lock().unwrap().push(format!("dedup:{}", self.key));
        Ok(())
    }
}

#[derive(Serialize, Deserialize)]
struct AlwaysFails;

impl BackgroundJob for AlwaysFails {
    const JOB_NAME: &'static str = "test_always_fails";
    const MAX_ATTEMPTS: i32 = 3;
    type Context = Ctx;
    fn run(&self, ctx: &Ctx) -> anyhow::Result<()> {
        ctx.ran.lock().unwrap().push("fail".into());
        anyhow::bail!("deliberate failure")
    }
}

#[derive(Serialize, Deserialize)]
struct Panics;

impl BackgroundJob for Panics {
    const JOB_NAME: &'static str = "test_panics";
    const MAX_ATTEMPTS: i32 = 2;
    type Context = Ctx;
    fn run(&self, _: &Ctx) -> anyhow::Result<()> {
        panic!("deliberate panic")
    }
}

fn runner(app: &TestApp, ctx: &Ctx, workers: usize) -> Runner<Ctx> {
    let config = RunnerConfig {
        workers,
        poll_interval: Duration::from_millis(10),
        backoff_base: Duration::ZERO,
        ..RunnerConfig::default()
    };
    Runner::new(app.pool.clone(), ctx.clone(), config)
        .register::<Record>()
        .register::<Deduped>()
        .register::<AlwaysFails>()
        .register::<Panics>()
}

#[test]
fn a_job_enqueued_in_a_rolled_back_transaction_never_runs() {
    let app = TestApp::new();
    let ctx = Ctx::default();
    let mut conn = app.conn();
    let result: Result<(), anyhow::Error> = write_tx(&mut conn, |c| {
        Record {
            label: "ghost".into(),
        }
        .enqueue(c)?;
        anyhow::bail!("the caller's write failed")
    });
    assert!(result.is_err());
    write_tx(&mut conn, |c| {
        Record {
            label: "real".into(),
        }
        .enqueue(c)
        .map(|_| ())
    })
    .unwrap();
    drop(conn);
    assert_eq!(runner(&app, &ctx, 1).run_pending().unwrap(), 1);
    assert_eq!(*ctx.ran.lock().unwrap(), ["real"]);
    assert!(
        list_jobs(&mut app.conn()).unwrap().is_empty(),
        "finished jobs are deleted"
    );
}

#[test]
fn deduplicated_jobs_are_enqueued_once_while_waiting() {
    let app = TestApp::new();
    let ctx = Ctx::default();
    let mut conn = app.conn();
    assert!(Deduped { key: "a".into() }
        .enqueue(&mut conn)
        .unwrap()
        .is_some());
    assert!(Deduped { key: "a".into() }
        .enqueue(&mut conn)
        .unwrap()
        .is_none());
    assert!(Deduped { key: "b".into() }
        .enqueue(&mut conn)
        .unwrap()
        .is_some());
    drop(conn);
    runner(&app, &ctx, 1).run_pending().unwrap();
    let mut ran = ctx.ran.lock().unwrap().clone();
    ran.sort();
    assert_eq!(ran, ["dedup:a", "dedup:b"]);
    // Once it ran, the same job may be enqueued again.
    assert!(Deduped { key: "a".into() }
        .enqueue(&mut app.conn())
        .unwrap()
        .is_some());
}

#[test]
fn priority_and_run_at_order_jobs() {
    #[derive(Serialize, Deserialize)]
    struct Urgent;
    impl BackgroundJob for Urgent {
        const JOB_NAME: &'static str = "test_urgent";
        const PRIORITY: i32 = 10;
        type Context = Ctx;
        fn run(&self, ctx: &Ctx) -> anyhow::Result<()> {
            ctx.ran.lock().unwrap().push("urgent".into());
            Ok(())
        }
    }
    let app = TestApp::new();
    let ctx = Ctx::default();
    let mut conn = app.conn();
    Record {
        label: "normal".into(),
    }
    .enqueue(&mut conn)
    .unwrap();
    Record {
        label: "later".into(),
    }
    .enqueue_at(
        &mut conn,
        chrono::Utc::now().naive_utc() + chrono::Duration::hours(1),
    )
    .unwrap();
    Urgent.enqueue(&mut conn).unwrap();
    drop(conn);
    let r = runner(&app, &ctx, 1).register::<Urgent>();
    assert_eq!(r.run_pending().unwrap(), 2);
    assert_eq!(*ctx.ran.lock().unwrap(), ["urgent", "normal"]);
    let left = list_jobs(&mut app.conn()).unwrap();
    assert_eq!(left.len(), 1);
    assert!(left[0].data.contains("later"));
}

#[test]
fn a_failing_job_is_retried_then_given_up() {
    let app = TestApp::new();
    let ctx = Ctx::default();
    AlwaysFails.enqueue(&mut app.conn()).unwrap();
    let r = runner(&app, &ctx, 1);
    assert_eq!(r.run_pending().unwrap(), 3, "three attempts, then no more");
    assert_eq!(ctx.ran.lock().unwrap().len(), 3);
    let rows = list_jobs(&mut app.conn()).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].status, STATUS_FAILED);
    assert_eq!(rows[0].attempts, 3);
    assert!(rows[0]
        .last_error
        .as_deref()
        .unwrap()
        .contains("deliberate failure"));
    assert_eq!(r.run_pending().unwrap(), 0, "a given-up job stays given up");
}

#[test]
fn retries_back_off_exponentially() {
    let app = TestApp::new();
    let ctx = Ctx::default();
    AlwaysFails.enqueue(&mut app.conn()).unwrap();
    let config = RunnerConfig {
        backoff_base: Duration::from_secs(60),
        ..RunnerConfig::default()
    };
    let r = Runner::new(app.pool.clone(), ctx.clone(), config).register::<AlwaysFails>();
    let before = chrono::Utc::now().naive_utc();
    assert_eq!(r.run_pending().unwrap(), 1, "the retry is not due yet");
    let row = &list_jobs(&mut app.conn()).unwrap()[0];
    assert_eq!(row.status, "queued");
    let delay = (row.run_at - before).num_seconds();
    assert!(
        (59..=61).contains(&delay),
        "first retry after the base delay, got {delay}s"
    );
}

#[test]
fn a_panicking_job_is_caught_and_the_worker_survives() {
    let app = TestApp::new();
    let ctx = Ctx::default();
    Panics.enqueue(&mut app.conn()).unwrap();
    let handle = runner(&app, &ctx, 1).start();
    assert!(wait_until(Duration::from_secs(10), || list_jobs(
        &mut app.conn()
    )
    .unwrap()
    .iter()
    .any(|j| j.status == STATUS_FAILED)));
    // The same worker thread still runs jobs.
    Record {
        label: "after-panic".into(),
    }
    .enqueue(&mut app.conn())
    .unwrap();
    assert!(wait_until(Duration::from_secs(10), || ctx
        .ran
        .lock()
        .unwrap()
        .contains(&"after-panic".to_owned())));
    handle.shutdown();
    let rows = list_jobs(&mut app.conn()).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].attempts, 2);
    assert!(rows[0]
        .last_error
        .as_deref()
        .unwrap()
        .contains("deliberate panic"));
}

#[test]
fn concurrent_workers_never_run_the_same_job() {
    let app = TestApp::new();
    let ctx = Ctx::default();
    let mut conn = app.conn();
    let total = 150;
    for i in 0..total {
        Record {
            label: format!("job-{i}"),
        }
        .enqueue(&mut conn)
        .unwrap();
    }
    drop(conn);
    // Two independent runners (as two `guildhall worker` processes would be),
    // with two threads each, on one database.
    let a = runner(&app, &ctx, 2).start();
    let b = runner(&app, &ctx, 2).start();
    assert!(wait_until(Duration::from_secs(60), || ctx
        .ran
        .lock()
        .unwrap()
        .len()
        >= total
        && list_jobs(&mut app.conn()).unwrap().is_empty()));
    a.shutdown();
    b.shutdown();
    let ran = ctx.ran.lock().unwrap().clone();
    let unique: HashSet<_> = ran.iter().collect();
    assert_eq!(ran.len(), total, "every job ran exactly once");
    assert_eq!(unique.len(), total);
}

#[test]
fn a_scheduled_job_fires_once_per_occurrence() {
    let app = TestApp::new();
    let ctx = Ctx::default();
    let make = || {
        runner(&app, &ctx, 1)
            .schedule(
                "every-second",
                "* * * * * *",
                Record {
                    label: "tick".into(),
                },
            )
            .unwrap()
    };
    let (r1, r2) = (make(), make());
    assert_eq!(
        r1.tick_schedules().unwrap(),
        0,
        "the first tick only records the next occurrence"
    );
    std::thread::sleep(Duration::from_millis(1100));
    // Two runners tick for the same occurrence: one enqueues.
    let fired = r1.tick_schedules().unwrap() + r2.tick_schedules().unwrap();
    assert_eq!(fired, 1);
    assert_eq!(r1.run_pending().unwrap(), 1);
    assert_eq!(*ctx.ran.lock().unwrap(), ["tick"]);
    assert!(runner(&app, &ctx, 1)
        .schedule("bad", "not cron", Record { label: "x".into() })
        .is_err());
}

#[test]
fn app_jobs_are_registered_and_scheduled() {
    let app = TestApp::new();
    let r = guildhall::jobs::runner(app.pool.clone(), &app.state.config).unwrap();
    assert_eq!(r.tick_schedules().unwrap(), 0);
    {
        use diesel::prelude::*;
        use guildhall::db::schema::background_job_schedules as s;
        let mut names: Vec<String> = s::table.select(s::name).load(&mut *app.conn()).unwrap();
        names.sort();
        assert_eq!(
            names,
            [
                "apply-handovers",
                "auto-accept-resolutions",
                "auto-close-tickets",
                "expire-bounties",
                "purge-expired-refresh-tokens",
                "purge-inbound-records",
                "recompute-reputation",
                "renew-subscriptions",
                "run-payouts",
                "send-digests",
                "send-notifications",
                "sla-sweep",
                "sync-floss-discounts"
            ]
        );
    }
    guildhall::jobs::PurgeExpiredRefreshTokens
        .enqueue(&mut app.conn())
        .unwrap();
    assert_eq!(r.run_pending().unwrap(), 1);
}

#[derive(Serialize, Deserialize)]
struct SlowThenFine;

impl BackgroundJob for SlowThenFine {
    const JOB_NAME: &'static str = "test_slow_then_fine";
    type Context = Ctx;
    fn run(&self, ctx: &Ctx) -> anyhow::Result<()> {
        let attempt = {
            let mut ran = ctx.ran.lock().unwrap();
            ran.push("run".into());
            ran.len()
        };
        if attempt == 1 {
            std::thread::sleep(Duration::from_millis(300));
            anyhow::bail!("first attempt fails late")
        }
        std::thread::sleep(Duration::from_millis(700));
        Ok(())
    }
}

#[test]
fn a_worker_whose_claim_lapsed_does_not_touch_the_new_claim() {
    let app = TestApp::new();
    let ctx = Ctx::default();
    SlowThenFine.enqueue(&mut app.conn()).unwrap();
    let make = |lease_ms: u64| {
        let config = RunnerConfig {
            lease: Duration::from_millis(lease_ms),
            backoff_base: Duration::ZERO,
            ..RunnerConfig::default()
        };
        Runner::new(app.pool.clone(), ctx.clone(), config).register::<SlowThenFine>()
    };
    let (a, b, c) = (make(100), make(10_000), make(10_000));
    let third = std::thread::scope(|s| {
        s.spawn(|| a.run_one().unwrap());
        std::thread::sleep(Duration::from_millis(150));
        // A's lease lapsed: B takes the job over while A is still running it.
        s.spawn(|| b.run_one().unwrap());
        // A fails at ~300 ms. Had that failure requeued the row B now holds,
        // C would run the job a third time at ~450 ms.
        std::thread::sleep(Duration::from_millis(300));
        c.run_one().unwrap()
    });
    assert_eq!(third, None, "nothing for a third worker to take");
    assert_eq!(ctx.ran.lock().unwrap().len(), 2);
    assert!(
        list_jobs(&mut app.conn()).unwrap().is_empty(),
        "B's success removed the job"
    );
}

/// Old records of inbound deliveries are forgotten (reply mail after 90
/// days, GitHub deliveries after 30); recent ones stay for deduplication.
#[test]
fn old_inbound_records_are_purged() {
    use diesel::prelude::*;
    use guildhall::db::schema::{github_deliveries as gd, inbound_emails as ie};
    let app = TestApp::new();
    let now = chrono::Utc::now().naive_utc();
    for (key, days) in [("old", 91), ("new", 1)] {
        diesel::insert_into(ie::table)
            .values((
                ie::message_key.eq(key),
                ie::outcome.eq("posted"),
                ie::sender.eq("a@b.test"),
                ie::ticket_id.eq(1_i64),
                ie::user_id.eq(1_i64),
                ie::received_at.eq(now - chrono::Duration::days(days)),
            ))
            .execute(&mut app.conn())
            .unwrap();
    }
    for (id, days) in [("old", 31), ("new", 29)] {
        diesel::insert_into(gd::table)
            .values((
                gd::delivery_id.eq(id),
                gd::body_sha256.eq(id),
                gd::event.eq("ping"),
                gd::received_at.eq(now - chrono::Duration::days(days)),
            ))
            .execute(&mut app.conn())
            .unwrap();
    }
    guildhall::jobs::PurgeInboundRecords
        .enqueue(&mut app.conn())
        .unwrap();
    app.run_jobs();
    let mails: Vec<String> = ie::table
        .select(ie::message_key)
        .load(&mut app.conn())
        .unwrap();
    let deliveries: Vec<String> = gd::table
        .select(gd::delivery_id)
        .load(&mut app.conn())
        .unwrap();
    assert_eq!(
        (mails, deliveries),
        (vec!["new".to_owned()], vec!["new".to_owned()])
    );
}
