//! `top_only` returns the same top hits without counting every match.

use guildhall_index::{SearchRequest, TicketDoc, TicketIndex, Viewer};

fn doc(id: i64, title: &str) -> TicketDoc {
    TicketDoc {
        id,
        project: "p".into(),
        title: title.into(),
        body: "body text".into(),
        answer: None,
        tags: vec![],
        status: "open".into(),
        kind: "question".into(),
        created: chrono::DateTime::from_timestamp(1_700_000_000 + id, 0).unwrap_or_default(),
        resolved: None,
        private: false,
        requester_id: 1,
    }
}

#[test]
fn top_only_matches_the_full_search_and_pages() {
    let index = TicketIndex::create_in_ram().unwrap();
    for i in 0..25 {
        let title = if i % 2 == 0 {
            format!("tokio runtime panic {i}")
        } else {
            format!("tokio scheduler {i}")
        };
        index.upsert(&doc(i, &title)).unwrap();
    }
    index.commit().unwrap();
    let full = SearchRequest {
        query: "runtime panic".into(),
        viewer: Viewer::anonymous(),
        limit: 5,
        ..SearchRequest::default()
    };
    let fast = SearchRequest {
        top_only: true,
        ..full.clone()
    };
    let a = index.search(&full).unwrap();
    let b = index.search(&fast).unwrap();
    let ids = |r: &guildhall_index::SearchResults| r.hits.iter().map(|h| h.id).collect::<Vec<_>>();
    assert_eq!(ids(&a), ids(&b));
    assert_eq!(a.total, 13);
    assert!(!a.facets.project.is_empty());
    assert!(b.facets.project.is_empty());
    assert_eq!(b.total, 6, "a lower bound: this page plus one more");
    // Walk every page in top-only mode.
    let mut seen = ids(&b);
    let mut cursor = b.next_cursor.clone();
    while let Some(c) = cursor {
        let page = index
            .search(&SearchRequest {
                cursor: Some(c),
                ..fast.clone()
            })
            .unwrap();
        seen.extend(ids(&page));
        cursor = page.next_cursor;
    }
    seen.sort_unstable();
    assert_eq!(seen, (0..25).step_by(2).collect::<Vec<_>>());
}
