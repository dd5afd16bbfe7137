//! Behaviour of the ticket index through its public API.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use guildhall_index::{
    FacetCount, IndexError, SearchRequest, SearchResults, TicketDoc, TicketIndex, Viewer,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000 + secs, 0).unwrap_or_default()
}

fn ticket(id: i64, project: &str, title: &str, body: &str) -> TicketDoc {
    TicketDoc {
        id,
        project: project.into(),
        title: title.into(),
        body: body.into(),
        answer: None,
        tags: Vec::new(),
        status: "open".into(),
        kind: "question".into(),
        created: at(id),
        resolved: None,
        private: false,
        requester_id: 1000 + id,
    }
}

fn resolved(mut doc: TicketDoc, answer: &str) -> TicketDoc {
    doc.status = "resolved".into();
    doc.answer = Some(answer.into());
    doc.resolved = Some(doc.created + chrono::Duration::hours(1));
    doc
}

fn index_with(docs: &[TicketDoc]) -> Result<TicketIndex, IndexError> {
    let index = TicketIndex::create_in_ram()?;
    for doc in docs {
        index.upsert(doc)?;
    }
    index.commit()?;
    Ok(index)
}

fn query(q: &str) -> SearchRequest {
    SearchRequest {
        query: q.into(),
        limit: 20,
        ..SearchRequest::default()
    }
}

fn ids(results: &SearchResults) -> Vec<i64> {
    results.hits.iter().map(|h| h.id).collect()
}

fn sorted_ids(results: &SearchResults) -> Vec<i64> {
    let mut ids = ids(results);
    ids.sort_unstable();
    ids
}

fn count(value: &str, n: u64) -> FacetCount {
    FacetCount {
        value: value.into(),
        count: n,
    }
}

#[test]
fn upsert_is_searchable_right_after_commit_and_not_before() -> TestResult {
    let index = TicketIndex::create_in_ram()?;
    index.upsert(&ticket(
        1,
        "tantivy",
        "Merge policy tuning",
        "segments pile up",
    ))?;
    assert!(index.search(&query("merge"))?.hits.is_empty());
    assert_eq!(index.num_docs(), 0);
    index.commit()?;
    let results = index.search(&query("merge"))?;
    assert_eq!(ids(&results), vec![1]);
    assert_eq!(results.total, 1);
    let hit = &results.hits[0];
    assert_eq!(hit.project, "tantivy");
    assert_eq!(hit.title, "Merge policy tuning");
    assert_eq!(hit.status, "open");
    assert!(hit.score > 0.0);
    assert_eq!(index.num_docs(), 1);
    Ok(())
}

#[test]
fn upsert_with_same_id_replaces_the_ticket() -> TestResult {
    let index = index_with(&[ticket(1, "p", "Old title about widgets", "body")])?;
    index.upsert(&ticket(1, "p", "New title about gadgets", "body"))?;
    index.commit()?;
    assert_eq!(index.num_docs(), 1);
    assert!(index.search(&query("widgets"))?.hits.is_empty());
    let results = index.search(&query("gadgets"))?;
    assert_eq!(ids(&results), vec![1]);
    assert_eq!(results.hits[0].title, "New title about gadgets");
    assert_eq!(index.search(&query(""))?.total, 1);
    // Two upserts of one id in the same commit also leave one document.
    index.upsert(&ticket(1, "p", "Third title", "body"))?;
    index.upsert(&ticket(1, "p", "Fourth title", "body"))?;
    index.commit()?;
    assert_eq!(index.num_docs(), 1);
    assert_eq!(index.search(&query("title"))?.hits[0].title, "Fourth title");
    Ok(())
}

#[test]
fn delete_removes_the_ticket() -> TestResult {
    let index = index_with(&[
        ticket(1, "p", "Crash on startup", "segfault"),
        ticket(2, "p", "Crash on shutdown", "panic"),
    ])?;
    index.delete(1)?;
    index.delete(999)?; // unknown ids are fine
    index.commit()?;
    assert_eq!(ids(&index.search(&query("crash"))?), vec![2]);
    assert_eq!(index.num_docs(), 1);
    Ok(())
}

#[test]
fn clear_empties_the_index_and_it_can_be_rebuilt() -> TestResult {
    let index = index_with(&[ticket(1, "p", "alpha", "x"), ticket(2, "p", "beta", "y")])?;
    index.upsert(&ticket(3, "p", "gamma", "uncommitted"))?;
    index.clear()?;
    assert_eq!(index.num_docs(), 0);
    assert_eq!(index.search(&query(""))?.total, 0);
    index.upsert(&ticket(4, "p", "delta", "z"))?;
    index.commit()?;
    assert_eq!(ids(&index.search(&query(""))?), vec![4]);
    Ok(())
}

#[test]
fn title_match_outranks_body_only_match() -> TestResult {
    let index = index_with(&[
        ticket(
            1,
            "p",
            "General question",
            "The tokenizer drops my accents somehow",
        ),
        ticket(
            2,
            "p",
            "Tokenizer drops accents",
            "Something about my text looks off",
        ),
    ])?;
    let results = index.search(&query("tokenizer"))?;
    assert_eq!(ids(&results), vec![2, 1]);
    assert!(results.hits[0].score > results.hits[1].score);
    Ok(())
}

#[test]
fn accepted_answers_are_searchable() -> TestResult {
    let index = index_with(&[resolved(
        ticket(1, "p", "Slow queries", "my searches are slow"),
        "Enable the mmap directory",
    )])?;
    assert_eq!(ids(&index.search(&query("mmap"))?), vec![1]);
    Ok(())
}

#[test]
fn stemming_and_case_folding_match_word_forms() -> TestResult {
    let index = index_with(&[
        ticket(1, "p", "Documents indexed twice", "after a restart"),
        ticket(2, "p", "Unrelated", "nothing here"),
    ])?;
    assert_eq!(ids(&index.search(&query("indexing"))?), vec![1]);
    assert_eq!(ids(&index.search(&query("INDEXES"))?), vec![1]);
    assert_eq!(ids(&index.search(&query("document"))?), vec![1]);
    Ok(())
}

fn catalogue() -> Vec<TicketDoc> {
    let mut docs = Vec::new();
    let specs: [(i64, &str, &str, &str, &[&str]); 6] = [
        (1, "tantivy", "open", "question", &["indexing", "perf"]),
        (2, "tantivy", "resolved", "bug", &["indexing"]),
        (3, "tantivy", "open", "bug", &["query"]),
        (4, "diesel", "open", "question", &["sqlite"]),
        (5, "diesel", "closed", "feature", &["sqlite", "perf"]),
        (6, "actix", "resolved", "question", &["perf", "perf"]),
    ];
    for (id, project, status, kind, tags) in specs {
        let mut doc = ticket(id, project, &format!("Widget trouble {id}"), "widget body");
        doc.status = status.into();
        doc.kind = kind.into();
        doc.tags = tags.iter().map(|t| (*t).to_owned()).collect();
        docs.push(doc);
    }
    docs
}

#[test]
fn filters_are_exact_and_combine() -> TestResult {
    let index = index_with(&catalogue())?;
    let with = |f: &dyn Fn(&mut SearchRequest)| -> Result<Vec<i64>, IndexError> {
        let mut req = query("widget");
        f(&mut req);
        Ok(sorted_ids(&index.search(&req)?))
    };
    assert_eq!(
        with(&|r| r.project = Some("tantivy".into()))?,
        vec![1, 2, 3]
    );
    assert_eq!(with(&|r| r.status = Some("open".into()))?, vec![1, 3, 4]);
    assert_eq!(with(&|r| r.tag = Some("perf".into()))?, vec![1, 5, 6]);
    assert_eq!(with(&|r| r.kind = Some("bug".into()))?, vec![2, 3]);
    assert_eq!(
        with(&|r| {
            r.project = Some("tantivy".into());
            r.kind = Some("bug".into());
            r.status = Some("open".into());
        })?,
        vec![3]
    );
    assert_eq!(
        with(&|r| r.project = Some("Tantivy".into()))?,
        Vec::<i64>::new()
    );
    assert_eq!(
        with(&|r| r.project = Some("tant".into()))?,
        Vec::<i64>::new()
    );
    // Filters also apply to the empty (match-all) query.
    let mut req = query("");
    req.tag = Some("sqlite".into());
    assert_eq!(sorted_ids(&index.search(&req)?), vec![4, 5]);
    Ok(())
}

#[test]
fn facet_counts_cover_the_filtered_match_set() -> TestResult {
    let index = index_with(&catalogue())?;
    let all = index.search(&query("widget"))?;
    assert_eq!(all.total, 6);
    assert_eq!(
        all.facets.project,
        vec![count("tantivy", 3), count("diesel", 2), count("actix", 1)]
    );
    assert_eq!(
        all.facets.status,
        vec![count("open", 3), count("resolved", 2), count("closed", 1)]
    );
    assert_eq!(
        all.facets.kind,
        vec![count("question", 3), count("bug", 2), count("feature", 1)]
    );
    // Ticket 6 lists "perf" twice but counts once.
    assert_eq!(
        all.facets.tags,
        vec![
            count("perf", 3),
            count("indexing", 2),
            count("sqlite", 2),
            count("query", 1)
        ]
    );

    let mut req = query("widget");
    req.project = Some("tantivy".into());
    req.limit = 1; // facets are over all matches, not the page
    let tantivy = index.search(&req)?;
    assert_eq!(tantivy.hits.len(), 1);
    assert_eq!(tantivy.total, 3);
    assert_eq!(tantivy.facets.project, vec![count("tantivy", 3)]);
    assert_eq!(
        tantivy.facets.status,
        vec![count("open", 2), count("resolved", 1)]
    );
    assert_eq!(
        tantivy.facets.tags,
        vec![count("indexing", 2), count("perf", 1), count("query", 1)]
    );
    Ok(())
}

/// Ticket 1: public. Ticket 2: private, requester 7, project "secret".
/// Ticket 3: resolved public. Ticket 4: resolved private (requester 7,
/// project "secret"). All about the same subject.
fn visibility_set() -> Vec<TicketDoc> {
    let public = ticket(1, "secret", "Vault token rotation", "rotate vault tokens");
    let mut private = ticket(2, "secret", "Vault token leak", "my vault token leaked");
    private.private = true;
    private.requester_id = 7;
    let solved = resolved(
        ticket(3, "secret", "Vault token expiry", "vault tokens expire"),
        "renew the vault token",
    );
    let mut solved_private = resolved(
        ticket(4, "secret", "Vault token scope", "vault token scopes"),
        "narrow the vault token",
    );
    solved_private.private = true;
    solved_private.requester_id = 7;
    vec![public, private, solved, solved_private]
}

#[test]
fn private_tickets_are_visible_only_to_requester_and_project_team() -> TestResult {
    let index = index_with(&visibility_set())?;
    let as_viewer = |viewer: Viewer| -> Result<SearchResults, IndexError> {
        let mut req = query("vault");
        req.viewer = viewer;
        index.search(&req)
    };

    let anonymous = as_viewer(Viewer::anonymous())?;
    assert_eq!(sorted_ids(&anonymous), vec![1, 3]);
    assert_eq!(anonymous.total, 2);
    assert_eq!(anonymous.facets.project, vec![count("secret", 2)]);

    let stranger = Viewer {
        user_id: Some(8),
        team_projects: vec!["other".into()],
    };
    assert_eq!(sorted_ids(&as_viewer(stranger)?), vec![1, 3]);

    assert_eq!(sorted_ids(&as_viewer(Viewer::user(7))?), vec![1, 2, 3, 4]);

    let team = Viewer {
        user_id: Some(9),
        team_projects: vec!["other".into(), "secret".into()],
    };
    let team_results = as_viewer(team)?;
    assert_eq!(sorted_ids(&team_results), vec![1, 2, 3, 4]);
    assert_eq!(team_results.facets.project, vec![count("secret", 4)]);

    // A team member of another project does not see them; neither does a
    // query that tries to name the hidden fields.
    let mut probe = query("private:1 OR requester_id:7");
    probe.viewer = Viewer::anonymous();
    let probed = index.search(&probe)?;
    assert!(probed.hits.iter().all(|h| h.id == 1 || h.id == 3));
    Ok(())
}

#[test]
fn private_tickets_are_hidden_from_similar_too() -> TestResult {
    let index = index_with(&visibility_set())?;
    let team = Viewer {
        user_id: Some(9),
        team_projects: vec!["secret".into()],
    };
    let ids = |hits: Vec<guildhall_index::Hit>| -> Vec<i64> {
        let mut v: Vec<i64> = hits.into_iter().map(|h| h.id).collect();
        v.sort_unstable();
        v
    };
    // From a public ticket: the private solved ticket only for those allowed.
    assert_eq!(ids(index.similar(1, &Viewer::anonymous(), 10)?), vec![3]);
    assert_eq!(ids(index.similar(1, &Viewer::user(8), 10)?), vec![3]);
    assert_eq!(ids(index.similar(1, &Viewer::user(7), 10)?), vec![3, 4]);
    assert_eq!(ids(index.similar(1, &team, 10)?), vec![3, 4]);
    // From a private ticket: nothing for those who cannot see it.
    assert!(index.similar(2, &Viewer::anonymous(), 10)?.is_empty());
    assert!(index.similar(2, &Viewer::user(8), 10)?.is_empty());
    assert_eq!(ids(index.similar(2, &Viewer::user(7), 10)?), vec![3, 4]);
    // Text not in the index.
    let text = |v: &Viewer| index.similar_to_text("vault token", "tokens", v, None, 10);
    assert_eq!(ids(text(&Viewer::anonymous())?), vec![3]);
    assert_eq!(ids(text(&Viewer::user(8))?), vec![3]);
    assert_eq!(ids(text(&Viewer::user(7))?), vec![3, 4]);
    assert_eq!(ids(text(&team)?), vec![3, 4]);
    Ok(())
}

#[test]
fn queries_can_name_text_fields_but_not_hidden_ones() -> TestResult {
    let mut tagged = ticket(1, "p", "Alpha ticket", "first");
    tagged.requester_id = 42;
    tagged.tags = vec!["gpu".into()];
    let index = index_with(&[tagged, ticket(2, "p", "Beta ticket", "alpha in the body")])?;
    assert_eq!(ids(&index.search(&query("title:alpha"))?), vec![1]);
    assert_eq!(ids(&index.search(&query("body:alpha"))?), vec![2]);
    assert_eq!(ids(&index.search(&query("tags:gpu"))?), vec![1]);
    // Non-text fields cannot be probed: these search for their words only.
    assert!(index.search(&query("requester_id:42"))?.hits.is_empty());
    assert!(index.search(&query("id:1"))?.hits.is_empty());
    assert!(index.search(&query("private:0"))?.hits.is_empty());
    Ok(())
}

#[test]
fn cursor_pagination_walks_every_result_once() -> TestResult {
    let docs: Vec<TicketDoc> = (1..=23)
        .map(|i| {
            let body = "pagination ".repeat((i % 5 + 1) as usize);
            ticket(i, "p", &format!("Ticket {i}"), &body)
        })
        .collect();
    let index = index_with(&docs)?;
    for q in ["pagination", ""] {
        let mut req = query(q);
        req.limit = 5;
        let mut seen = Vec::new();
        let mut pages = 0;
        loop {
            let page = index.search(&req)?;
            assert_eq!(page.total, 23);
            assert!(page.hits.len() <= 5);
            seen.extend(ids(&page));
            pages += 1;
            match page.next_cursor {
                Some(cursor) => req.cursor = Some(cursor),
                None => break,
            }
            assert!(pages < 10, "pagination does not end");
        }
        assert_eq!(pages, 5);
        let mut unique = seen.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), seen.len(), "a ticket was returned twice");
        assert_eq!(unique, (1..=23).collect::<Vec<_>>());
        if q.is_empty() {
            // Match-all is ordered by creation, newest first.
            assert_eq!(seen, (1..=23).rev().collect::<Vec<_>>());
        }
    }
    Ok(())
}

#[test]
fn page_size_is_clamped_and_bad_cursors_are_rejected() -> TestResult {
    let docs: Vec<TicketDoc> = (1..=120).map(|i| ticket(i, "p", "same", "same")).collect();
    let index = index_with(&docs)?;
    let mut req = query("same");
    req.limit = 0;
    assert_eq!(index.search(&req)?.hits.len(), 1);
    req.limit = 1000;
    let page = index.search(&req)?;
    assert_eq!(page.hits.len(), 100);
    assert!(page.next_cursor.is_some());
    for bad in ["garbage!", "", "bzE6LTE", "MTIz"] {
        req.cursor = Some(bad.into());
        assert!(
            matches!(index.search(&req), Err(IndexError::InvalidCursor)),
            "{bad}"
        );
    }
    Ok(())
}

#[test]
fn hostile_queries_never_error() -> TestResult {
    let index = index_with(&[ticket(1, "p", "Quoting problem", "colon: and (parens)")])?;
    let hostile = [
        "\"unbalanced",
        "title:",
        "(((",
        ")))",
        "AND OR",
        "AND",
        "NOT",
        "*",
        "-",
        "-quoting",
        "+",
        "title:\"",
        "body:(",
        "nosuchfield:value",
        "id:abc",
        "created:[0 TO",
        "private:yes",
        "requester_id:-",
        "\\",
        "^2",
        "quoting^",
        "quoting~",
        "quoting~abc",
        "[",
        "{",
        "}",
        "IN [",
        "title:IN [a",
        "\u{0}",
        "💥 colon:",
        "'",
        "a:b:c:d",
        "quoting AND (problem OR",
    ];
    for q in hostile {
        let result = index.search(&query(q));
        assert!(result.is_ok(), "query {q:?} failed: {result:?}");
    }
    // Lenient parsing still finds the usable words.
    assert_eq!(ids(&index.search(&query("\"quoting"))?), vec![1]);
    assert_eq!(ids(&index.search(&query("colon: problem"))?), vec![1]);
    assert_eq!(ids(&index.search(&query("(((quoting"))?), vec![1]);
    Ok(())
}

#[test]
fn highlights_mark_matches_per_field() -> TestResult {
    let index = index_with(&[resolved(
        ticket(
            1,
            "p",
            "Segment merging stalls",
            "While merging segments the <writer> stalls for minutes.",
        ),
        "Lower the merge factor.",
    )])?;
    let hit = index.search(&query("merging"))?.hits.remove(0);
    let title = hit.highlights.title.unwrap_or_default();
    let body = hit.highlights.body.unwrap_or_default();
    let answer = hit.highlights.answer.unwrap_or_default();
    assert!(title.contains("<b>merging</b>"), "{title}");
    assert!(body.contains("<b>merging</b>"), "{body}");
    assert!(
        body.contains("&lt;writer&gt;"),
        "body text must be escaped: {body}"
    );
    assert!(answer.contains("<b>merge</b>"), "{answer}");

    let hit = index.search(&query("stalls"))?.hits.remove(0);
    assert!(hit.highlights.title.is_some());
    assert!(hit.highlights.answer.is_none());
    // No highlights for the match-all query.
    let hit = index.search(&query(""))?.hits.remove(0);
    assert_eq!(hit.highlights, guildhall_index::Highlights::default());
    assert_eq!(hit.score, 0.0);
    Ok(())
}

fn similar_set() -> Vec<TicketDoc> {
    vec![
        ticket(
            1,
            "tantivy",
            "Merge policy stalls indexing",
            "The merge policy stalls segment merges while indexing",
        ),
        resolved(
            ticket(
                2,
                "tantivy",
                "Segment merges stall",
                "merges of segments stall under the merge policy",
            ),
            "Use the log merge policy with a smaller merge factor",
        ),
        resolved(
            ticket(
                3,
                "tantivy",
                "Stemming of plurals",
                "tokenizer stemming plurals wrong",
            ),
            "Register an English stemmer",
        ),
        ticket(
            4,
            "tantivy",
            "Merge policy stalls again",
            "merge policy segment merges stall",
        ),
        {
            let mut closed = ticket(
                5,
                "diesel",
                "Merge policy question",
                "how does a merge policy pick segments",
            );
            closed.status = "closed".into();
            closed
        },
        resolved(
            ticket(
                6,
                "actix",
                "Websocket disconnects",
                "websocket drops after a minute",
            ),
            "Send pings",
        ),
    ]
}

#[test]
fn similar_returns_solved_tickets_on_the_same_subject() -> TestResult {
    let index = index_with(&similar_set())?;
    let hits = index.similar(1, &Viewer::anonymous(), 10)?;
    let found: Vec<i64> = hits.iter().map(|h| h.id).collect();
    assert_eq!(found.first(), Some(&2), "{found:?}");
    assert!(found.contains(&5), "{found:?}");
    assert!(!found.contains(&1), "never the ticket itself: {found:?}");
    assert!(!found.contains(&4), "never an open ticket: {found:?}");
    assert!(hits
        .iter()
        .all(|h| h.status == "resolved" || h.status == "closed"));
    if let Some(pos) = found.iter().position(|id| *id == 6) {
        assert!(pos > 1, "unrelated ticket ranked too high: {found:?}");
    }
    assert!(hits[0]
        .highlights
        .title
        .as_deref()
        .unwrap_or("")
        .contains("<b>"));

    assert_eq!(index.similar(1, &Viewer::anonymous(), 1)?.len(), 1);
    assert!(index.similar(1, &Viewer::anonymous(), 0)?.is_empty());
    assert!(index.similar(4242, &Viewer::anonymous(), 10)?.is_empty());
    Ok(())
}

#[test]
fn similar_to_text_finds_solved_tickets_for_a_draft() -> TestResult {
    let index = index_with(&similar_set())?;
    let anyone = Viewer::anonymous();
    let hits = index.similar_to_text(
        "Stemmer for plurals?",
        "my plurals are not stemmed",
        &anyone,
        None,
        5,
    )?;
    assert_eq!(hits.first().map(|h| h.id), Some(3));
    let hits = index.similar_to_text(
        "merge policy",
        "segments merges",
        &anyone,
        Some("diesel"),
        5,
    )?;
    assert_eq!(hits.iter().map(|h| h.id).collect::<Vec<_>>(), vec![5]);
    assert!(index.similar_to_text("", "", &anyone, None, 5)?.is_empty());
    assert!(index
        .similar_to_text("the of and", "zzzunknownzzz", &anyone, None, 5)?
        .is_empty());
    Ok(())
}

#[test]
fn shared_between_threads() -> TestResult {
    let index = Arc::new(TicketIndex::create_in_ram()?);
    let writers: Vec<_> = (0..4)
        .map(|t| {
            let index = Arc::clone(&index);
            std::thread::spawn(move || -> Result<(), IndexError> {
                for i in 0..25 {
                    let id = t * 100 + i;
                    index.upsert(&ticket(id, "p", "concurrent ticket", "body"))?;
                    if i % 10 == 0 {
                        index.commit()?;
                        index.search(&query("concurrent"))?;
                    }
                }
                Ok(())
            })
        })
        .collect();
    for w in writers {
        w.join().map_err(|_| "writer thread panicked")??;
    }
    index.commit()?;
    assert_eq!(index.num_docs(), 100);
    assert_eq!(index.search(&query("concurrent"))?.total, 100);
    Ok(())
}

#[test]
fn results_serialize_to_json() -> TestResult {
    let index = index_with(&catalogue())?;
    let json = serde_json::to_value(index.search(&query("widget"))?)?;
    assert_eq!(json["total"], 6);
    assert!(json["hits"][0]["highlights"]["title"].is_string());
    assert!(json["facets"]["tags"].is_array());
    Ok(())
}

#[test]
fn deeply_nested_or_huge_queries_do_not_crash() -> TestResult {
    let index = index_with(&[ticket(1, "p", "nested", "x")])?;
    let patterns = [
        "(",
        ")",
        "-(",
        "+(",
        "(-",
        "NOT ",
        "NOT (",
        "a AND ",
        "a OR (",
        "\"",
        "[",
        "{",
        "a:",
        "title:(",
        "title:",
        "-",
        "+",
        "^",
        "~",
        "*",
        "\\",
        "nested ",
        "title:title:",
        "-nested ",
        "\"a\" ",
        "(a) ",
        "IN [",
        "a^2 ",
        "(\"",
        "((a OR b) AND ",
    ];
    for pattern in patterns {
        let q = pattern.repeat(100_000 / pattern.len());
        let result = index.search(&query(&q));
        assert!(result.is_ok(), "{pattern:?}: {result:?}");
    }
    let nested = format!("{}nested{}", "(".repeat(400), ")".repeat(400));
    assert_eq!(ids(&index.search(&query(&nested))?), vec![1]);
    Ok(())
}
