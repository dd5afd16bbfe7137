//! guildhall-index: full-text search over Guildhall tickets.
//!
//! The index is a derived view of the database, rebuildable at any time
//! ([`TicketIndex::clear`] then [`TicketIndex::upsert`] every ticket).
//! Only the index worker writes it; every other writer of tickets enqueues an
//! index job in its own database transaction.
//!
//! # Single writer
//!
//! A [`TicketIndex`] owns the one tantivy `IndexWriter` of its directory for
//! its whole life, behind a mutex. Open one `TicketIndex` per directory per
//! process and share it (`Arc<TicketIndex>`); a second open of the same
//! directory, in this or another process, fails with
//! [`IndexError::WriterLocked`]. Writes become visible to searches when
//! [`TicketIndex::commit`] returns (the reader is reloaded explicitly).
//!
//! # Locks
//!
//! tantivy's lock files (`.tantivy-writer.lock`, `.tantivy-meta.lock`) are
//! `flock` locks, released by the kernel when their process dies, so lock
//! files left by a crash never prevent opening. If a lock stays busy for about
//! a second with no live holder (possible on filesystems whose lock state
//! outlives processes), the lock file is removed only when the process that
//! last opened the index for writing, recorded in `.guildhall-writer.owner`,
//! is provably dead; otherwise opening fails. Committed documents are never
//! touched by this recovery.
//!
//! # Visibility
//!
//! A private ticket is visible only to its requester and to the team of its
//! project ([`Viewer`]); this is a required clause of every search, facet
//! count and similarity query.

#![warn(missing_docs)]

mod error;
mod lock;
mod schema;
mod search;
mod ticket_index;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use error::IndexError;
pub use search::{
    FacetCount, Facets, Highlights, Hit, SearchRequest, SearchResults, Viewer, MAX_FACET_VALUES,
    MAX_LIMIT, MAX_QUERY_CHARS, MAX_WINDOW,
};
pub use ticket_index::TicketIndex;

/// One ticket as the index sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TicketDoc {
    /// Ticket id in the database.
    pub id: i64,
    /// Project slug.
    pub project: String,
    /// Title (boosted in ranking).
    pub title: String,
    /// Body as plain text.
    pub body: String,
    /// Text of the accepted answer, if resolved.
    pub answer: Option<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// Lifecycle status.
    pub status: String,
    /// Kind: question, bug, integration, feature.
    pub kind: String,
    /// Created.
    pub created: DateTime<Utc>,
    /// Resolved, if it was.
    pub resolved: Option<DateTime<Utc>>,
    /// Private tickets are visible only to their requester and to the team
    /// of their project.
    pub private: bool,
    /// User who opened the ticket.
    pub requester_id: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_round_trip_through_json() {
        let doc = TicketDoc {
            id: 7,
            project: "tantivy".into(),
            title: "Merge policy".into(),
            body: "How do I tune merges?".into(),
            answer: None,
            tags: vec!["indexing".into()],
            status: "open".into(),
            kind: "question".into(),
            created: DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default(),
            resolved: None,
            private: true,
            requester_id: 42,
        };
        let json = serde_json::to_string(&doc).unwrap_or_default();
        let back: TicketDoc = serde_json::from_str(&json).unwrap_or_else(|_| doc.clone());
        assert_eq!(back, doc);
        assert!(json.contains("\"project\":\"tantivy\""));
        assert!(json.contains("\"private\":true"));
    }

    #[test]
    fn ticket_index_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<TicketIndex>();
    }
}
