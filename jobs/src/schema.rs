//! Tables owned by the queue. The DDL lives in the application's migrations.

diesel::table! {
    /// Queued, running and given-up jobs. Finished jobs are deleted.
    background_jobs (id) {
        id -> BigInt,
        job_type -> Text,
        data -> Text,
        priority -> Integer,
        status -> Text,
        attempts -> Integer,
        max_attempts -> Integer,
        dedup_key -> Nullable<Text>,
        run_at -> Timestamp,
        locked_until -> Nullable<Timestamp>,
        last_error -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    /// When each named schedule next fires.
    background_job_schedules (name) {
        name -> Text,
        next_run_at -> Timestamp,
    }
}
