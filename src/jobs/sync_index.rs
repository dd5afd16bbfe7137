//! Keeps the search index in step with the database.
//!
//! Every ticket write bumps `tickets.index_version` and enqueues this
//! (deduplicated) job in the same transaction. The job indexes every ticket
//! whose `indexed_version` lags, in batches: upsert, commit, then record the
//! version it indexed — only if the ticket did not change meanwhile. A crash
//! between commit and record just indexes those tickets again. Only the
//! process that owns the index runs it (one worker: tantivy has one writer).

use super::JobContext;
use crate::db::schema::{projects, ticket_messages, tickets};
use crate::domain::tickets::{Status, Ticket};
use crate::job_payloads::SyncIndex;
use anyhow::Context as _;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use guildhall_index::{TicketDoc, TicketIndex};
use guildhall_jobs::BackgroundJob;

impl BackgroundJob for SyncIndex {
    const JOB_NAME: &'static str = "sync_index";
    const DEDUPLICATED: bool = true;
    const PRIORITY: i32 = 5;
    const MAX_ATTEMPTS: i32 = 10;
    type Context = JobContext;

    fn run(&self, ctx: &JobContext) -> anyhow::Result<()> {
        let index = ctx
            .index
            .as_ref()
            .context("this process does not own the search index")?;
        let mut conn = ctx.pool.get()?;
        let n = sync(&mut conn, index, |_| {})?;
        tracing::debug!(indexed = n, "search index synchronised");
        Ok(())
    }
}

fn utc(t: chrono::NaiveDateTime) -> DateTime<Utc> {
    DateTime::from_naive_utc_and_offset(t, Utc)
}

/// Whether a ticket in this status belongs in the index (drafts and
/// cancelled tickets do not).
pub fn indexable(status: Status) -> bool {
    !matches!(status, Status::Draft | Status::Cancelled)
}

/// The index document of a ticket.
pub fn ticket_doc(
    conn: &mut crate::db::DbConnection,
    t: &Ticket,
    project: &str,
) -> QueryResult<TicketDoc> {
    let answer: Option<String> = match t.resolution_message_id {
        // A resolution hidden by flags is not indexed.
        Some(mid) => ticket_messages::table
            .find(mid)
            .filter(ticket_messages::hidden_at.is_null())
            .select(ticket_messages::body)
            .first(conn)
            .optional()?,
        None => None,
    };
    Ok(TicketDoc {
        id: t.id,
        project: project.to_owned(),
        title: t.title.clone(),
        body: t.body.clone(),
        answer,
        tags: t.tag_list(),
        status: t.status.clone(),
        kind: t.kind.clone(),
        created: utc(t.created_at),
        resolved: t.resolved_at.map(utc),
        private: t.is_private(),
        requester_id: t.requester_id,
    })
}

const BATCH: i64 = 500;

/// Indexes lagging tickets until none lags; `progress` gets the count done
/// after each batch. Returns how many tickets were written to the index.
pub fn sync(
    conn: &mut crate::db::DbConnection,
    index: &TicketIndex,
    mut progress: impl FnMut(u64),
) -> anyhow::Result<u64> {
    let mut done = 0u64;
    let mut after = 0i64;
    loop {
        let batch: Vec<(Ticket, String, i64)> = tickets::table
            .inner_join(projects::table)
            .filter(tickets::index_version.ne(tickets::indexed_version))
            .filter(tickets::id.gt(after))
            .order(tickets::id.asc())
            .limit(BATCH)
            .select((Ticket::as_select(), projects::slug, tickets::index_version))
            .load(conn)?;
        let Some(last) = batch.last() else { break };
        after = last.0.id;
        for (t, slug, _) in &batch {
            if indexable(t.status()) {
                index.upsert(&ticket_doc(conn, t, slug)?)?;
            } else {
                index.delete(t.id)?;
            }
        }
        index.commit()?;
        crate::db::write_tx(conn, |conn| -> QueryResult<()> {
            for (t, _, version) in &batch {
                diesel::update(
                    tickets::table
                        .find(t.id)
                        .filter(tickets::index_version.eq(version)),
                )
                .set(tickets::indexed_version.eq(version))
                .execute(conn)?;
            }
            Ok(())
        })?;
        done += batch.len() as u64;
        progress(done);
    }
    Ok(done)
}

/// Marks every ticket as needing indexing (before a full rebuild).
pub fn mark_all_dirty(conn: &mut crate::db::DbConnection) -> QueryResult<usize> {
    diesel::update(tickets::table)
        .set(tickets::indexed_version.eq(0))
        .execute(conn)
}
