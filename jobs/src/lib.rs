//! guildhall-jobs: a durable background job queue on SQLite or PostgreSQL.
//!
//! Jobs are serde structs implementing [`BackgroundJob`]. [`BackgroundJob::enqueue`]
//! writes a row into `background_jobs` on the caller's connection, so a job
//! enqueued inside a transaction exists only if that transaction commits.
//! A [`Runner`] claims due jobs (PostgreSQL: `FOR UPDATE SKIP LOCKED`, so many
//! workers share the table; SQLite: an immediate transaction), runs them on
//! worker threads, deletes them on success and retries failures with
//! exponential backoff until `MAX_ATTEMPTS`, after which the row is kept with
//! status `failed` for inspection. A panicking job counts as a failure.
//! Named cron schedules enqueue jobs at most once per occurrence, however many
//! runners share the database.
//!
//! The crate knows nothing of the application: it owns only its two tables.

pub mod db;
mod runner;
pub mod schema;

pub use runner::{Outcome, Runner, RunnerConfig, RunnerHandle};

use chrono::{NaiveDateTime, Utc};
use db::DbConnection;
use diesel::prelude::*;
use schema::background_jobs;
use serde::{de::DeserializeOwned, Serialize};

/// Status of a row that waits to run.
pub const STATUS_QUEUED: &str = "queued";
/// Status of a row claimed by a worker.
pub const STATUS_RUNNING: &str = "running";
/// Status of a row that reached its maximum attempts.
pub const STATUS_FAILED: &str = "failed";

/// A unit of background work.
pub trait BackgroundJob: Serialize + DeserializeOwned + Send + 'static {
    /// Stable name stored in the table; renaming it orphans queued jobs.
    const JOB_NAME: &'static str;
    /// Higher runs first.
    const PRIORITY: i32 = 0;
    /// When true, enqueueing a job whose payload equals one still waiting to
    /// run adds nothing.
    const DEDUPLICATED: bool = false;
    /// Attempts before the job is given up.
    const MAX_ATTEMPTS: i32 = 5;
    /// What the job needs to run (pools, clients, configuration).
    type Context: Clone + Send + Sync + 'static;

    /// Does the work. An `Err` or a panic schedules a retry.
    fn run(&self, ctx: &Self::Context) -> anyhow::Result<()>;

    /// Enqueues the job to run now. Returns the new row id, or `None` when a
    /// deduplicated twin is already waiting.
    fn enqueue(&self, conn: &mut DbConnection) -> Result<Option<i64>, EnqueueError> {
        self.enqueue_at(conn, Utc::now().naive_utc())
    }

    /// Enqueues the job to run no earlier than `run_at` (UTC).
    fn enqueue_at(
        &self,
        conn: &mut DbConnection,
        run_at: NaiveDateTime,
    ) -> Result<Option<i64>, EnqueueError> {
        let data = serde_json::to_string(self)?;
        let dedup_key = Self::DEDUPLICATED.then(|| data.clone());
        insert_job(
            conn,
            NewJob {
                job_type: Self::JOB_NAME,
                data: &data,
                priority: Self::PRIORITY,
                status: STATUS_QUEUED,
                attempts: 0,
                max_attempts: Self::MAX_ATTEMPTS,
                dedup_key: dedup_key.as_deref(),
                run_at,
                created_at: Utc::now().naive_utc(),
            },
        )
    }
}

/// Why a job could not be enqueued.
#[derive(Debug, thiserror::Error)]
pub enum EnqueueError {
    /// The payload did not serialize.
    #[error("job payload does not serialize: {0}")]
    Serialize(#[from] serde_json::Error),
    /// The insert failed.
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
}

#[derive(Insertable)]
#[diesel(table_name = background_jobs)]
struct NewJob<'a> {
    job_type: &'a str,
    data: &'a str,
    priority: i32,
    status: &'a str,
    attempts: i32,
    max_attempts: i32,
    dedup_key: Option<&'a str>,
    run_at: NaiveDateTime,
    created_at: NaiveDateTime,
}

fn insert_job(conn: &mut DbConnection, job: NewJob<'_>) -> Result<Option<i64>, EnqueueError> {
    // The partial unique index on (job_type, dedup_key) for queued rows turns
    // a duplicate into "no row inserted".
    let id: Option<i64> = per_backend!(conn, |c| diesel::insert_into(background_jobs::table)
        .values(&job)
        .on_conflict_do_nothing()
        .returning(background_jobs::id)
        .get_result(c)
        .optional())?;
    Ok(id)
}

/// A row of `background_jobs`, as tests and operators see it.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = background_jobs)]
pub struct JobRow {
    /// Row id.
    pub id: i64,
    /// [`BackgroundJob::JOB_NAME`].
    pub job_type: String,
    /// JSON payload.
    pub data: String,
    /// Priority, higher first.
    pub priority: i32,
    /// `queued`, `running` or `failed`.
    pub status: String,
    /// Attempts so far.
    pub attempts: i32,
    /// Attempts allowed.
    pub max_attempts: i32,
    /// Deduplication key, if the job type deduplicates.
    pub dedup_key: Option<String>,
    /// Earliest time to run (UTC).
    pub run_at: NaiveDateTime,
    /// While running: when the claim lapses and another worker may take it.
    pub locked_until: Option<NaiveDateTime>,
    /// The last failure's message.
    pub last_error: Option<String>,
    /// When enqueued (UTC).
    pub created_at: NaiveDateTime,
}

/// Every row in the queue, oldest first (for tests and `ledger`-style checks).
pub fn list_jobs(conn: &mut DbConnection) -> QueryResult<Vec<JobRow>> {
    background_jobs::table
        .select(JobRow::as_select())
        .order(background_jobs::id)
        .load(conn)
}
