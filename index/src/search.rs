//! Search requests and results, the pagination cursor, and the cleaning of
//! user query strings.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::Serialize;

use crate::IndexError;

/// Largest page size; larger `limit`s are clamped to it.
pub const MAX_LIMIT: usize = 100;

/// Results beyond this many (offset + page) cannot be paged to: deep paging
/// costs memory proportional to the offset. Refine the query instead.
pub const MAX_WINDOW: usize = 10_000;

/// A full-text search with filters, on behalf of a viewer.
#[derive(Debug, Clone, Default)]
pub struct SearchRequest {
    /// User query text (tantivy query syntax, parsed leniently). Empty or
    /// blank means "match everything", ordered by `created`, newest first.
    pub query: String,
    /// Only tickets of this project (exact slug).
    pub project: Option<String>,
    /// Only tickets with this status (exact).
    pub status: Option<String>,
    /// Only tickets carrying this tag (exact).
    pub tag: Option<String>,
    /// Only tickets of this kind (exact).
    pub kind: Option<String>,
    /// Who is searching; decides which private tickets are visible.
    pub viewer: Viewer,
    /// Page size, clamped to `1..=MAX_LIMIT`.
    pub limit: usize,
    /// Cursor from a previous page's `next_cursor`; `None` for the first page.
    pub cursor: Option<String>,
    /// Only the top hits: no facet counts, and `total` is only a lower bound
    /// (the hits up to this page, plus one when there are more). Much faster
    /// on large indexes, because matches past the top need not be counted.
    pub top_only: bool,
}

/// Who is searching: private tickets are visible only to their requester and
/// to the team (maintainers and approved helpers) of their project.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Viewer {
    /// The signed-in user, `None` for an anonymous visitor.
    pub user_id: Option<i64>,
    /// Slugs of the projects whose team the user is on.
    pub team_projects: Vec<String>,
}

impl Viewer {
    /// An anonymous visitor: sees public tickets only.
    pub fn anonymous() -> Self {
        Self::default()
    }

    /// A signed-in user on no project team.
    pub fn user(user_id: i64) -> Self {
        Viewer {
            user_id: Some(user_id),
            team_projects: Vec::new(),
        }
    }
}

/// One page of search results.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SearchResults {
    /// The hits of this page, best first.
    pub hits: Vec<Hit>,
    /// Number of visible tickets matching the query and filters.
    pub total: usize,
    /// Facet counts over all visible matching tickets (not only this page).
    pub facets: Facets,
    /// Cursor of the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// One matching ticket.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Hit {
    /// Ticket id.
    pub id: i64,
    /// Relevance score (BM25); `0.0` when the query was empty.
    pub score: f32,
    /// Project slug.
    pub project: String,
    /// Ticket title.
    pub title: String,
    /// Ticket status.
    pub status: String,
    /// Highlighted snippets of the matching fields.
    pub highlights: Highlights,
}

/// HTML snippets (text HTML-escaped, matches wrapped in `<b>..</b>`), `None`
/// for a field in which nothing matched.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Highlights {
    /// Snippet of the title.
    pub title: Option<String>,
    /// Snippet of the body.
    pub body: Option<String>,
    /// Snippet of the accepted answer.
    pub answer: Option<String>,
}

/// Facet counts, each sorted by count (descending) then value.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Facets {
    /// Tickets per project.
    pub project: Vec<FacetCount>,
    /// Tickets per status.
    pub status: Vec<FacetCount>,
    /// Tickets per tag (at most [`MAX_FACET_VALUES`]).
    pub tags: Vec<FacetCount>,
    /// Tickets per kind.
    pub kind: Vec<FacetCount>,
}

/// Most values reported per facet.
pub const MAX_FACET_VALUES: usize = 50;

/// Number of tickets having one facet value.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FacetCount {
    /// The value (project slug, status, tag or kind).
    pub value: String,
    /// Number of tickets with it.
    pub count: u64,
}

const CURSOR_PREFIX: &str = "o1:";

/// Encodes a result offset as an opaque cursor.
pub(crate) fn encode_cursor(offset: usize) -> String {
    URL_SAFE_NO_PAD.encode(format!("{CURSOR_PREFIX}{offset}"))
}

/// Decodes a cursor made by [`encode_cursor`].
pub(crate) fn decode_cursor(cursor: &str) -> Result<usize, IndexError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor.trim())
        .map_err(|_| IndexError::InvalidCursor)?;
    let text = std::str::from_utf8(&bytes).map_err(|_| IndexError::InvalidCursor)?;
    let digits = text
        .strip_prefix(CURSOR_PREFIX)
        .ok_or(IndexError::InvalidCursor)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(IndexError::InvalidCursor);
    }
    let offset: usize = digits.parse().map_err(|_| IndexError::InvalidCursor)?;
    if offset >= MAX_WINDOW {
        return Err(IndexError::InvalidCursor);
    }
    Ok(offset)
}

/// Fields a user query may name explicitly (`title:foo`, `tags:bar`).
const QUERYABLE_FIELDS: [&str; 7] = [
    "title", "body", "answer", "project", "tags", "status", "kind",
];

/// Longest user query used, in characters; the rest is ignored. The query
/// parser is recursive, so input size must be bounded.
pub const MAX_QUERY_CHARS: usize = 1_000;

/// Deepest parenthesis nesting kept in a user query; deeper parentheses
/// become spaces.
const MAX_QUERY_DEPTH: usize = 8;

/// Makes a user query safe to hand to the lenient query parser:
///
/// * only the first [`MAX_QUERY_CHARS`] characters are kept, and parentheses
///   nested deeper than [`MAX_QUERY_DEPTH`] become spaces (the parser
///   recurses on nesting and would overflow the stack on hostile input);
/// * `name:` field prefixes that do not name a queryable field are
///   neutralised (the colon becomes a space), so `error: cannot open`
///   searches its words and `requester_id:42` or `private:1` cannot probe
///   non-text fields.
pub(crate) fn clean_user_query(query: &str) -> String {
    let query = match query.char_indices().nth(MAX_QUERY_CHARS) {
        Some((end, _)) => &query[..end],
        None => query,
    };
    let mut out = String::with_capacity(query.len());
    let mut word_start: Option<usize> = None;
    let mut depth = 0usize;
    let mut dropped_opens = 0usize;
    for (i, c) in query.char_indices() {
        match c {
            ':' => {
                let name = word_start.map_or("", |s| &query[s..i]);
                out.push(if QUERYABLE_FIELDS.contains(&name) {
                    ':'
                } else {
                    ' '
                });
                word_start = None;
                continue;
            }
            '(' if depth >= MAX_QUERY_DEPTH => {
                dropped_opens += 1;
                out.push(' ');
            }
            '(' => {
                depth += 1;
                out.push(c);
            }
            ')' if dropped_opens > 0 => {
                dropped_opens -= 1;
                out.push(' ');
            }
            ')' => {
                depth = depth.saturating_sub(1);
                out.push(c);
            }
            _ => out.push(c),
        }
        if c.is_alphanumeric() || c == '_' {
            if word_start.is_none() && at_word_boundary(query, i) {
                word_start = Some(i);
            }
        } else {
            word_start = None;
        }
    }
    out
}

/// True when position `i` starts a field name: beginning of input, or after
/// whitespace, `(`, `+` or `-`.
fn at_word_boundary(query: &str, i: usize) -> bool {
    query[..i]
        .chars()
        .next_back()
        .is_none_or(|p| p.is_whitespace() || matches!(p, '(' | '+' | '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_and_rejects_garbage() {
        for offset in [0, 1, 20, MAX_WINDOW - 1] {
            assert_eq!(decode_cursor(&encode_cursor(offset)).ok(), Some(offset));
        }
        for bad in [
            "",
            "!!!",
            "bm90IGEgY3Vyc29y",
            &encode_cursor(MAX_WINDOW),
            &URL_SAFE_NO_PAD.encode("o1:-3"),
            &URL_SAFE_NO_PAD.encode("o1:+3"),
            &URL_SAFE_NO_PAD.encode("o1:99999999999999999999999999"),
        ] {
            assert!(
                matches!(decode_cursor(bad), Err(IndexError::InvalidCursor)),
                "{bad}"
            );
        }
    }

    #[test]
    fn user_queries_can_only_name_text_and_keyword_fields() {
        assert_eq!(clean_user_query("title:merge"), "title:merge");
        assert_eq!(clean_user_query("tags:x body:y"), "tags:x body:y");
        assert_eq!(clean_user_query("requester_id:42"), "requester_id 42");
        assert_eq!(clean_user_query("(private:1)"), "(private 1)");
        assert_eq!(clean_user_query("error: cannot"), "error  cannot");
        assert_eq!(clean_user_query("a::b"), "a  b");
        assert_eq!(clean_user_query("ütitle:x"), "ütitle x");
        assert_eq!(clean_user_query("-title:x"), "-title:x");
        assert_eq!(clean_user_query("xtitle:x"), "xtitle x");
    }

    #[test]
    fn user_queries_are_bounded_in_length_and_nesting() {
        let long = "é".repeat(MAX_QUERY_CHARS + 10);
        assert_eq!(clean_user_query(&long).chars().count(), MAX_QUERY_CHARS);
        let nested = format!("{}x{}", "(".repeat(20), ")".repeat(20));
        let cleaned = clean_user_query(&nested);
        assert_eq!(cleaned.matches('(').count(), MAX_QUERY_DEPTH);
        assert_eq!(cleaned.matches(')').count(), MAX_QUERY_DEPTH);
        assert_eq!(clean_user_query("(a) (b (c))"), "(a) (b (c))");
    }
}
