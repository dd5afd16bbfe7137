//! The error type of the crate.

use tantivy::directory::error::{LockError, OpenDirectoryError};
use tantivy::query::QueryParserError;
use tantivy::TantivyError;

/// Everything that can go wrong while opening, writing or searching the index.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// An error reported by tantivy (I/O, corrupted segments, schema mismatch
    /// with an existing index, ...).
    #[error("search index error: {0}")]
    Tantivy(#[from] TantivyError),
    /// The index directory could not be opened.
    #[error("cannot open the index directory: {0}")]
    OpenDirectory(#[from] OpenDirectoryError),
    /// A query could not be parsed. User queries are parsed leniently and never
    /// produce this; it is kept for internal queries.
    #[error("invalid query: {0}")]
    Query(#[from] QueryParserError),
    /// A directory lock could not be probed because of an I/O error.
    #[error("index lock error: {0}")]
    Lock(#[from] LockError),
    /// The pagination cursor was not one this crate produced (bad base64,
    /// wrong format, or an offset beyond the paging window).
    #[error("invalid pagination cursor")]
    InvalidCursor,
    /// The index writer lock is held by a process that is (or may be) alive,
    /// so the index cannot be opened for writing. `owner` is the process id
    /// recorded by the last writer, when known.
    #[error("the index is locked by another writer (recorded owner pid: {owner:?})")]
    WriterLocked {
        /// Process id recorded by the writer that last opened the index.
        owner: Option<u32>,
    },
    /// A stored document lacks a field every indexed ticket has.
    #[error("stored document is missing field `{0}`")]
    MissingField(&'static str),
    /// A filesystem operation failed (creating the directory, recording the
    /// writer owner, removing a stale lock file).
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}
