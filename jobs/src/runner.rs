//! Claiming, running, retrying and scheduling jobs.

use crate::db::{write_tx, DbConnection, DbPool};
use crate::schema::{background_job_schedules, background_jobs};
use crate::{BackgroundJob, EnqueueError, JobRow, STATUS_FAILED, STATUS_QUEUED, STATUS_RUNNING};
use anyhow::Context as _;
use chrono::{NaiveDateTime, TimeZone, Utc};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// How a [`Runner`] behaves.
#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// Worker threads started by [`Runner::start`].
    pub workers: usize,
    /// Sleep between polls when nothing is due.
    pub poll_interval: Duration,
    /// Delay before the first retry; doubles on each further failure.
    pub backoff_base: Duration,
    /// Upper bound of the retry delay.
    pub backoff_max: Duration,
    /// How long a claim holds before another worker may take the job over
    /// (a worker that died mid-job loses its claim after this).
    pub lease: Duration,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        RunnerConfig {
            workers: 1,
            poll_interval: Duration::from_secs(1),
            backoff_base: Duration::from_secs(10),
            backoff_max: Duration::from_secs(6 * 3600),
            lease: Duration::from_secs(30 * 60),
        }
    }
}

type RunFn<C> = Arc<dyn Fn(&C, &str) -> anyhow::Result<()> + Send + Sync>;
type EnqueueFn = Arc<dyn Fn(&mut DbConnection) -> Result<Option<i64>, EnqueueError> + Send + Sync>;

struct Schedule {
    name: String,
    cron: cron::Schedule,
    enqueue: EnqueueFn,
}

impl Schedule {
    fn next_after(&self, now: NaiveDateTime) -> Option<NaiveDateTime> {
        self.cron
            .after(&Utc.from_utc_datetime(&now))
            .next()
            .map(|t| t.naive_utc())
    }
}

/// What happened to a claimed job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It ran and was deleted.
    Succeeded,
    /// It failed and will run again at the given time.
    Retrying(NaiveDateTime),
    /// It failed for the last time and is kept as `failed`.
    GaveUp,
}

/// Claims and runs the registered job types against one database.
pub struct Runner<C> {
    pool: DbPool,
    ctx: C,
    handlers: HashMap<&'static str, RunFn<C>>,
    schedules: Vec<Schedule>,
    config: RunnerConfig,
}

impl<C: Clone + Send + Sync + 'static> Runner<C> {
    /// A runner with no job types registered yet.
    pub fn new(pool: DbPool, ctx: C, config: RunnerConfig) -> Self {
        Runner {
            pool,
            ctx,
            handlers: HashMap::new(),
            schedules: Vec::new(),
            config,
        }
    }

    /// Lets this runner claim jobs of type `J`.
    pub fn register<J: BackgroundJob<Context = C>>(mut self) -> Self {
        let run: RunFn<C> = Arc::new(|ctx, data| {
            let job: J = serde_json::from_str(data)
                .with_context(|| format!("payload of {} does not deserialize", J::JOB_NAME))?;
            job.run(ctx)
        });
        self.handlers.insert(J::JOB_NAME, run);
        self
    }

    /// Registers `J` and enqueues `job` at every occurrence of the cron
    /// expression `cron` (seconds first: `sec min hour day month weekday`),
    /// under the unique schedule `name`.
    pub fn schedule<J>(self, name: &str, cron: &str, job: J) -> anyhow::Result<Self>
    where
        J: BackgroundJob<Context = C> + Sync,
    {
        let cron = cron::Schedule::from_str(cron)
            .with_context(|| format!("schedule {name}: invalid cron expression {cron:?}"))?;
        let job = Arc::new(job);
        let mut this = self.register::<J>();
        this.schedules.push(Schedule {
            name: name.to_owned(),
            cron,
            enqueue: Arc::new(move |conn| job.enqueue(conn)),
        });
        Ok(this)
    }

    /// Claims the most urgent due job, runs it and records the outcome.
    /// `Ok(None)` when nothing is due.
    pub fn run_one(&self) -> anyhow::Result<Option<Outcome>> {
        let mut conn = self.pool.get()?;
        let Some(job) = self.claim(&mut conn)? else {
            return Ok(None);
        };
        drop(conn);
        let result = match self.handlers.get(job.job_type.as_str()) {
            Some(handler) => match catch_unwind(AssertUnwindSafe(|| handler(&self.ctx, &job.data)))
            {
                Ok(result) => result,
                Err(panic) => Err(anyhow::anyhow!("job panicked: {}", panic_message(&panic))),
            },
            None => Err(anyhow::anyhow!("no handler for {}", job.job_type)),
        };
        let mut conn = self.pool.get()?;
        let outcome = self.finish(&mut conn, &job, result)?;
        Ok(Some(outcome))
    }

    /// Runs due jobs until none is left (jobs retried into the future are
    /// left for later). Returns how many ran. Meant for tests and `--once`.
    pub fn run_pending(&self) -> anyhow::Result<usize> {
        let mut ran = 0;
        while self.run_one()?.is_some() {
            ran += 1;
        }
        Ok(ran)
    }

    /// Enqueues the jobs of every schedule whose time has come. Safe to call
    /// from many processes at once: each occurrence enqueues once.
    pub fn tick_schedules(&self) -> anyhow::Result<usize> {
        let mut conn = self.pool.get()?;
        let mut enqueued = 0;
        for schedule in &self.schedules {
            let now = Utc::now().naive_utc();
            enqueued += write_tx(&mut conn, |conn| -> anyhow::Result<usize> {
                let next: Option<NaiveDateTime> = background_job_schedules::table
                    .find(&schedule.name)
                    .select(background_job_schedules::next_run_at)
                    .first(conn)
                    .optional()?;
                let Some(due) = next else {
                    if let Some(first) = schedule.next_after(now) {
                        crate::per_backend!(conn, |c| diesel::insert_into(
                            background_job_schedules::table
                        )
                        .values((
                            background_job_schedules::name.eq(&schedule.name),
                            background_job_schedules::next_run_at.eq(first),
                        ))
                        .on_conflict_do_nothing()
                        .execute(c))?;
                    }
                    return Ok(0);
                };
                if due > now {
                    return Ok(0);
                }
                // Compare-and-set: only the runner that moves the time on enqueues.
                let following = schedule.next_after(now).unwrap_or(NaiveDateTime::MAX);
                let moved = diesel::update(
                    background_job_schedules::table
                        .find(&schedule.name)
                        .filter(background_job_schedules::next_run_at.eq(due)),
                )
                .set(background_job_schedules::next_run_at.eq(following))
                .execute(conn)?;
                if moved == 1 {
                    (schedule.enqueue)(conn)?;
                    Ok(1)
                } else {
                    Ok(0)
                }
            })?;
        }
        Ok(enqueued)
    }

    /// Starts the worker threads and the scheduler thread.
    pub fn start(self) -> RunnerHandle {
        let stop = Arc::new(AtomicBool::new(false));
        let runner = Arc::new(self);
        let mut threads = Vec::new();
        for n in 0..runner.config.workers.max(1) {
            let (runner, stop) = (runner.clone(), stop.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("job-worker-{n}"))
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        match runner.run_one() {
                            Ok(Some(_)) => {}
                            Ok(None) => sleep_unless_stopped(&stop, runner.config.poll_interval),
                            Err(e) => {
                                tracing::warn!(error = %e, "job worker could not poll the queue");
                                sleep_unless_stopped(&stop, runner.config.poll_interval);
                            }
                        }
                    }
                });
            match spawned {
                Ok(t) => threads.push(t),
                Err(e) => tracing::error!(error = %e, "could not start a job worker thread"),
            }
        }
        if !runner.schedules.is_empty() {
            let (runner, stop) = (runner.clone(), stop.clone());
            let spawned = std::thread::Builder::new()
                .name("job-scheduler".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        if let Err(e) = runner.tick_schedules() {
                            tracing::warn!(error = %e, "job scheduler tick failed");
                        }
                        sleep_unless_stopped(&stop, Duration::from_secs(1));
                    }
                });
            match spawned {
                Ok(t) => threads.push(t),
                Err(e) => tracing::error!(error = %e, "could not start the job scheduler thread"),
            }
        }
        RunnerHandle { stop, threads }
    }

    fn claim(&self, conn: &mut DbConnection) -> anyhow::Result<Option<JobRow>> {
        use background_jobs::dsl as j;
        let types: Vec<&str> = self.handlers.keys().copied().collect();
        let lease = chrono::Duration::from_std(self.config.lease)?;
        let claimed = write_tx(conn, |conn| -> QueryResult<Option<JobRow>> {
            let now = Utc::now().naive_utc();
            let due = j::job_type.eq_any(&types).and(
                j::status
                    .eq(STATUS_QUEUED)
                    .and(j::run_at.le(now))
                    .or(j::status.eq(STATUS_RUNNING).and(j::locked_until.lt(now))),
            );
            let query = j::background_jobs.filter(due).order((
                j::priority.desc(),
                j::run_at.asc(),
                j::id.asc(),
            ));
            loop {
                let row = match conn {
                    DbConnection::Pg(c) => query
                        .clone()
                        .select(JobRow::as_select())
                        .for_update()
                        .skip_locked()
                        .first(c)
                        .optional()?,
                    DbConnection::Sqlite(c) => query
                        .clone()
                        .select(JobRow::as_select())
                        .first(c)
                        .optional()?,
                };
                let Some(mut row) = row else { return Ok(None) };
                if row.attempts >= row.max_attempts {
                    // A worker died holding the last attempt: give up without running again.
                    diesel::update(j::background_jobs.find(row.id))
                        .set((
                            j::status.eq(STATUS_FAILED),
                            j::locked_until.eq(None::<NaiveDateTime>),
                            j::last_error.eq("claim lapsed on the last attempt"),
                        ))
                        .execute(conn)?;
                    continue;
                }
                row.attempts += 1;
                row.status = STATUS_RUNNING.to_owned();
                row.locked_until = Some(now + lease);
                diesel::update(j::background_jobs.find(row.id))
                    .set((
                        j::status.eq(&row.status),
                        j::attempts.eq(row.attempts),
                        j::locked_until.eq(row.locked_until),
                    ))
                    .execute(conn)?;
                return Ok(Some(row));
            }
        })?;
        Ok(claimed)
    }

    fn finish(
        &self,
        conn: &mut DbConnection,
        job: &JobRow,
        result: anyhow::Result<()>,
    ) -> anyhow::Result<Outcome> {
        use background_jobs::dsl as j;
        // Only the claim this worker holds: if the lease lapsed and another
        // worker took the job over (attempts moved on), leave its row alone.
        let mine = j::background_jobs
            .find(job.id)
            .filter(j::status.eq(STATUS_RUNNING))
            .filter(j::attempts.eq(job.attempts));
        let error = match result {
            Ok(()) => {
                let n = diesel::delete(mine).execute(conn)?;
                if n == 0 {
                    tracing::warn!(
                        job = job.job_type,
                        id = job.id,
                        "job finished after its claim lapsed; another worker owns it now"
                    );
                }
                return Ok(Outcome::Succeeded);
            }
            Err(e) => format!("{e:#}"),
        };
        if job.attempts >= job.max_attempts {
            tracing::error!(job = job.job_type, id = job.id, attempts = job.attempts, error = %error, "job failed for the last time");
            diesel::update(mine)
                .set((
                    j::status.eq(STATUS_FAILED),
                    j::locked_until.eq(None::<NaiveDateTime>),
                    j::last_error.eq(&error),
                ))
                .execute(conn)?;
            return Ok(Outcome::GaveUp);
        }
        let run_at =
            Utc::now().naive_utc() + chrono::Duration::from_std(self.backoff(job.attempts))?;
        tracing::warn!(job = job.job_type, id = job.id, attempts = job.attempts, error = %error, %run_at, "job failed; will retry");
        let requeued = diesel::update(mine)
            .set((
                j::status.eq(STATUS_QUEUED),
                j::run_at.eq(run_at),
                j::locked_until.eq(None::<NaiveDateTime>),
                j::last_error.eq(&error),
            ))
            .execute(conn);
        match requeued {
            Ok(_) => Ok(Outcome::Retrying(run_at)),
            // A deduplicated twin was enqueued meanwhile; it will do the work.
            Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
                diesel::delete(mine).execute(conn)?;
                Ok(Outcome::Succeeded)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Delay before retry number `attempts` (1-based): base × 2^(attempts−1), capped.
    fn backoff(&self, attempts: i32) -> Duration {
        let exp = u32::try_from(attempts.saturating_sub(1))
            .unwrap_or(0)
            .min(30);
        self.config
            .backoff_base
            .saturating_mul(1u32 << exp)
            .min(self.config.backoff_max)
    }
}

/// Stops the threads of a started [`Runner`].
pub struct RunnerHandle {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl RunnerHandle {
    /// Asks every thread to stop after its current job and waits for them.
    pub fn shutdown(self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            let _ = t.join();
        }
    }
}

fn sleep_unless_stopped(stop: &AtomicBool, total: Duration) {
    let step = Duration::from_millis(50);
    let mut slept = Duration::ZERO;
    while slept < total && !stop.load(Ordering::Relaxed) {
        std::thread::sleep(step.min(total - slept));
        slept += step;
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let config = RunnerConfig {
            backoff_base: Duration::from_secs(10),
            backoff_max: Duration::from_secs(60),
            ..RunnerConfig::default()
        };
        let pool = diesel::r2d2::Pool::builder()
            .max_size(1)
            .build_unchecked(diesel::r2d2::ConnectionManager::new(":memory:"));
        let runner: Runner<()> = Runner::new(pool, (), config);
        assert_eq!(runner.backoff(1), Duration::from_secs(10));
        assert_eq!(runner.backoff(2), Duration::from_secs(20));
        assert_eq!(runner.backoff(3), Duration::from_secs(40));
        assert_eq!(runner.backoff(4), Duration::from_secs(60));
        assert_eq!(runner.backoff(40), Duration::from_secs(60));
    }
}
