//! The on-disk index: persistence, the single-writer rule and lock files
//! left behind by a crash.

use chrono::DateTime;
use guildhall_index::{IndexError, SearchRequest, TicketDoc, TicketIndex};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn ticket(id: i64, title: &str) -> TicketDoc {
    TicketDoc {
        id,
        project: "p".into(),
        title: title.into(),
        body: "body text".into(),
        answer: None,
        tags: vec!["t".into()],
        status: "open".into(),
        kind: "bug".into(),
        created: DateTime::from_timestamp(1_700_000_000 + id, 0).unwrap_or_default(),
        resolved: None,
        private: false,
        requester_id: 1,
    }
}

fn found(index: &TicketIndex, q: &str) -> Result<Vec<i64>, IndexError> {
    let req = SearchRequest {
        query: q.into(),
        limit: 10,
        ..SearchRequest::default()
    };
    Ok(index.search(&req)?.hits.iter().map(|h| h.id).collect())
}

#[test]
fn documents_survive_reopening() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("nested").join("index");
    {
        let index = TicketIndex::open_or_create(&path)?;
        index.upsert(&ticket(1, "persistent ticket"))?;
        index.upsert(&ticket(2, "uncommitted ticket"))?;
        index.commit()?;
        index.upsert(&ticket(3, "never committed"))?;
    }
    let index = TicketIndex::open_or_create(&path)?;
    assert_eq!(found(&index, "persistent")?, vec![1]);
    assert_eq!(found(&index, "never")?, Vec::<i64>::new());
    assert_eq!(index.num_docs(), 2);
    Ok(())
}

#[test]
fn stale_lock_files_from_a_crash_do_not_prevent_opening() -> TestResult {
    let dir = tempfile::tempdir()?;
    {
        let index = TicketIndex::open_or_create(dir.path())?;
        index.upsert(&ticket(1, "survivor"))?;
        index.commit()?;
    }
    // What a crashed process leaves behind: the lock files (plus an owner
    // record naming a process that is gone).
    std::fs::write(dir.path().join(".tantivy-writer.lock"), b"")?;
    std::fs::write(dir.path().join(".tantivy-meta.lock"), b"")?;
    std::fs::write(
        dir.path().join(".guildhall-writer.owner"),
        format!("pid={}\n", i32::MAX),
    )?;
    let index = TicketIndex::open_or_create(dir.path())?;
    assert_eq!(found(&index, "survivor")?, vec![1]);
    index.upsert(&ticket(2, "after recovery"))?;
    index.commit()?;
    assert_eq!(found(&index, "recovery")?, vec![2]);
    assert_eq!(index.num_docs(), 2);
    Ok(())
}

#[test]
fn a_live_writer_keeps_the_directory_locked() -> TestResult {
    let dir = tempfile::tempdir()?;
    let first = TicketIndex::open_or_create(dir.path())?;
    first.upsert(&ticket(1, "first"))?;
    first.commit()?;
    match TicketIndex::open_or_create(dir.path()) {
        Err(IndexError::WriterLocked { owner }) => {
            assert_eq!(owner, Some(std::process::id()));
        }
        other => return Err(format!("expected WriterLocked, got {other:?}").into()),
    }
    // The failed open did not disturb the live writer or its documents.
    first.upsert(&ticket(2, "second"))?;
    first.commit()?;
    assert_eq!(first.num_docs(), 2);
    drop(first);
    let reopened = TicketIndex::open_or_create(dir.path())?;
    assert_eq!(reopened.num_docs(), 2);
    Ok(())
}
