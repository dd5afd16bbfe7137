//! The audit log: every moderation and admin action — who did it (none:
//! the command line), what, to what, when. Written in the transaction of
//! the action it records; never changed or deleted.

use crate::db::schema::audit_log as al;
use crate::db::DbConnection;
use chrono::NaiveDateTime;
use diesel::prelude::*;

/// A line of the log.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = al)]
pub struct Entry {
    /// Id (ascending in time).
    pub id: i64,
    /// Who; `None` for the command line.
    pub actor_id: Option<i64>,
    /// What, e.g. `admin.grant`, `project.verify`.
    pub action: String,
    /// `user`, `project`, …
    pub target_type: String,
    /// Which one.
    pub target_id: Option<i64>,
    /// Details for a person (a reason, a repository).
    pub detail: String,
    /// When (UTC).
    pub created_at: NaiveDateTime,
}

/// Records an action.
pub fn record(
    conn: &mut DbConnection,
    actor: Option<i64>,
    action: &str,
    target_type: &str,
    target_id: Option<i64>,
    detail: &str,
) -> QueryResult<()> {
    diesel::insert_into(al::table)
        .values((
            al::actor_id.eq(actor),
            al::action.eq(action),
            al::target_type.eq(target_type),
            al::target_id.eq(target_id),
            al::detail.eq(detail),
            al::created_at.eq(super::now()),
        ))
        .execute(conn)?;
    Ok(())
}

/// Newest first: `limit` entries older than entry `before`.
pub fn list(conn: &mut DbConnection, before: Option<i64>, limit: i64) -> QueryResult<Vec<Entry>> {
    let mut q = al::table.into_boxed();
    if let Some(b) = before {
        q = q.filter(al::id.lt(b));
    }
    q.order(al::id.desc())
        .limit(limit)
        .select(Entry::as_select())
        .load(conn)
}
