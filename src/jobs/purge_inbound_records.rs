//! Forgets old records of inbound deliveries: reply mail after 90 days,
//! GitHub deliveries after 30 (GitHub redelivers within days, and a reply
//! delivered twice is delivered within hours), chat interactions and
//! expired chat link tokens after a day, chat questions that never became
//! tickets after 30 days. Nothing but the
//! deduplication reads them.

use super::JobContext;
use guildhall_jobs::BackgroundJob;
use serde::{Deserialize, Serialize};

/// Daily clean-up of inbound delivery records.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PurgeInboundRecords;

impl BackgroundJob for PurgeInboundRecords {
    const JOB_NAME: &'static str = "purge_inbound_records";
    const DEDUPLICATED: bool = true;
    type Context = JobContext;

    fn run(&self, ctx: &JobContext) -> anyhow::Result<()> {
        let mut conn = ctx.pool.get()?;
        let now = chrono::Utc::now().naive_utc();
        let mails =
            crate::channels::email::purge_records(&mut conn, now - chrono::Duration::days(90))?;
        let deliveries =
            crate::channels::github::purge_deliveries(&mut conn, now - chrono::Duration::days(30))?;
        // Chat interactions older than their five-minute window cannot be
        // replayed; a day is plenty.
        let chat = crate::channels::chat::purge(
            &mut conn,
            now - chrono::Duration::days(1),
            now - chrono::Duration::days(30),
        )?;
        tracing::info!(mails, deliveries, chat, "purged inbound delivery records");
        Ok(())
    }
}
