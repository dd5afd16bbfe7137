-- A project's business calendar: service-level clocks run in its business
-- time. No row: Monday to Friday, 09:00–17:00 UTC.
CREATE TABLE project_calendars (
    project_id BIGINT PRIMARY KEY REFERENCES projects(id),
    -- IANA zone name.
    time_zone TEXT NOT NULL,
    -- JSON array of ISO weekdays (1 = Monday).
    working_days TEXT NOT NULL,
    -- Minutes after local midnight; end after start (1440 = midnight).
    start_minute INTEGER NOT NULL,
    end_minute INTEGER NOT NULL,
    -- JSON array of local dates (YYYY-MM-DD).
    holidays TEXT NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
