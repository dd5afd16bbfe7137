-- Every moderation and admin action: who (NULL: the command line), what,
-- on what, when. Rows are only ever added.
CREATE TABLE audit_log (
    id BIGSERIAL PRIMARY KEY,
    actor_id BIGINT REFERENCES users(id),
    action TEXT NOT NULL,
    target_type TEXT NOT NULL,
    target_id BIGINT,
    detail TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
