//! guildhall-index: full-text search over Guildhall tickets.
//!
//! The index is a derived view of the database, rebuildable at any time.
//! Only the index worker writes it; every other writer of tickets enqueues an
//! index job in its own database transaction. This crate defines the document
//! the service hands to the index; the tantivy schema, writer and searcher
//! arrive with the ticket-search work (issue "Tickets, the fair queue and
//! tantivy search"), behind this same document type.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

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
        };
        let json = serde_json::to_string(&doc).unwrap_or_default();
        let back: TicketDoc = serde_json::from_str(&json).unwrap_or_else(|_| doc.clone());
        assert_eq!(back, doc);
        assert!(json.contains("\"project\":\"tantivy\""));
    }
}
