//! [`TicketIndex`]: the index of tickets, its single writer and its searcher.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};

use tantivy::collector::{Count, FacetCollector, FacetCounts, TopDocs};
use tantivy::directory::MmapDirectory;
use tantivy::query::{
    AllQuery, BooleanQuery, BoostQuery, ConstScoreQuery, Occur, Query, QueryClone, QueryParser,
    TermQuery, TermSetQuery,
};
use tantivy::schema::{Facet, Field, IndexRecordOption, Value};
use tantivy::snippet::SnippetGenerator;
use tantivy::tokenizer::{TextAnalyzer, TokenStream};
use tantivy::{
    DocAddress, Index, IndexReader, IndexWriter, Order, ReloadPolicy, Searcher, TantivyDocument,
    Term,
};

use crate::lock;
use crate::schema::{self, Fields, FACET_KIND, FACET_PROJECT, FACET_STATUS, FACET_TAG};
use crate::search::{
    clean_user_query, decode_cursor, encode_cursor, FacetCount, Facets, Highlights, Hit,
    SearchRequest, SearchResults, Viewer, MAX_FACET_VALUES, MAX_LIMIT, MAX_WINDOW,
};
use crate::{IndexError, TicketDoc};

/// Ranking boost of title matches.
const TITLE_BOOST: f32 = 2.0;
/// Ranking boost of body matches.
const BODY_BOOST: f32 = 1.0;
/// Ranking boost of accepted-answer matches.
const ANSWER_BOOST: f32 = 1.2;
/// Longest highlighted snippet, in characters.
const SNIPPET_CHARS: usize = 200;
/// Most terms a "more like this" query is built from.
const SIMILAR_MAX_TERMS: usize = 25;
/// Statuses a ticket must have to be offered as a similar, solved ticket.
const SOLVED_STATUSES: [&str; 2] = ["resolved", "closed"];
/// Words too common to say what a ticket is about; stemmed with the index
/// analyzer before use. Only used to pick "more like this" terms.
const SIMILAR_STOP_WORDS: &[&str] = &[
    "a", "about", "after", "again", "all", "also", "am", "an", "and", "any", "are", "as", "at",
    "be", "because", "been", "before", "being", "but", "by", "can", "could", "did", "do", "does",
    "doing", "for", "from", "get", "got", "had", "has", "have", "having", "how", "i", "if", "in",
    "into", "is", "it", "its", "just", "me", "my", "no", "not", "of", "on", "only", "or", "other",
    "our", "so", "some", "such", "than", "that", "the", "their", "them", "then", "there", "these",
    "they", "this", "those", "to", "too", "try", "tried", "use", "using", "very", "want", "was",
    "we", "were", "what", "when", "where", "which", "while", "who", "why", "will", "with", "would",
    "you", "your",
];

/// The full-text index of tickets.
///
/// It owns the one `IndexWriter` of its directory (behind a mutex: writes
/// from several threads are serialised) and a manually reloaded reader:
/// changes become visible to searches when [`TicketIndex::commit`] returns,
/// not before. It is `Send + Sync`; share it behind an `Arc`.
pub struct TicketIndex {
    index: Index,
    reader: IndexReader,
    writer: Mutex<IndexWriter<TantivyDocument>>,
    fields: Fields,
    parser: QueryParser,
    analyzer: TextAnalyzer,
    stop_terms: HashSet<String>,
}

impl std::fmt::Debug for TicketIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TicketIndex")
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

impl TicketIndex {
    /// Opens the index in `dir`, creating the directory and an empty index if
    /// needed.
    ///
    /// Lock files left by a crashed process do not prevent opening (see the
    /// crate documentation, "Locks"): tantivy's locks are `flock` locks that
    /// die with their process; a lock that stays busy for about a second is
    /// removed only when the writer that last recorded itself in the
    /// directory is provably dead, otherwise this returns
    /// [`IndexError::WriterLocked`]. An existing index built with a different
    /// schema is an [`IndexError::Tantivy`] schema error: delete the
    /// directory and rebuild, the index is derived data.
    pub fn open_or_create(dir: &Path) -> Result<Self, IndexError> {
        std::fs::create_dir_all(dir)?;
        let directory = MmapDirectory::open(dir)?;
        lock::recover_stale_locks(&directory, dir)?;
        let (schema, fields) = schema::build();
        let index = Index::open_or_create(directory, schema)?;
        Self::from_index(index, fields, Some(dir))
    }

    /// Creates an empty index held in memory (for tests and tools).
    pub fn create_in_ram() -> Result<Self, IndexError> {
        let (schema, fields) = schema::build();
        Self::from_index(Index::create_in_ram(schema), fields, None)
    }

    fn from_index(index: Index, fields: Fields, dir: Option<&Path>) -> Result<Self, IndexError> {
        let analyzer = schema::analyzer();
        index
            .tokenizers()
            .register(schema::ANALYZER, analyzer.clone());
        let writer = lock::acquire_writer(&index, dir)?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        let mut parser =
            QueryParser::for_index(&index, vec![fields.title, fields.body, fields.answer]);
        parser.set_field_boost(fields.title, TITLE_BOOST);
        parser.set_field_boost(fields.body, BODY_BOOST);
        parser.set_field_boost(fields.answer, ANSWER_BOOST);
        let mut stemmer = analyzer.clone();
        let stop_terms = SIMILAR_STOP_WORDS
            .iter()
            .flat_map(|w| analyze(&mut stemmer, w))
            .collect();
        Ok(TicketIndex {
            index,
            reader,
            writer: Mutex::new(writer),
            fields,
            parser,
            analyzer,
            stop_terms,
        })
    }

    /// The writer; a panic in another thread while it held the lock leaves
    /// the writer usable (uncommitted operations are simply pending), so a
    /// poisoned mutex is recovered.
    fn writer(&self) -> MutexGuard<'_, IndexWriter<TantivyDocument>> {
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds `doc`, replacing any ticket with the same id. Visible to searches
    /// after the next [`TicketIndex::commit`].
    pub fn upsert(&self, doc: &TicketDoc) -> Result<(), IndexError> {
        let tantivy_doc = schema::to_document(&self.fields, doc);
        let writer = self.writer();
        writer.delete_term(Term::from_field_i64(self.fields.id, doc.id));
        writer.add_document(tantivy_doc)?;
        Ok(())
    }

    /// Removes the ticket `id` (no error if it is not indexed). Visible to
    /// searches after the next [`TicketIndex::commit`].
    pub fn delete(&self, id: i64) -> Result<(), IndexError> {
        self.writer()
            .delete_term(Term::from_field_i64(self.fields.id, id));
        Ok(())
    }

    /// Commits pending changes and reloads the reader, so that a search
    /// started after this returns sees them.
    pub fn commit(&self) -> Result<(), IndexError> {
        let mut writer = self.writer();
        writer.commit()?;
        self.reader.reload()?;
        Ok(())
    }

    /// Deletes every ticket and commits (used before a full rebuild).
    /// Pending uncommitted changes are deleted too.
    pub fn clear(&self) -> Result<(), IndexError> {
        let mut writer = self.writer();
        writer.delete_query(Box::new(AllQuery))?;
        writer.commit()?;
        self.reader.reload()?;
        Ok(())
    }

    /// Number of committed tickets.
    pub fn num_docs(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// Full-text search with filters, visibility, facets and pagination.
    ///
    /// * Ranking: BM25 over title (boost 2.0), body (1.0) and answer (1.2);
    ///   terms are OR-ed. The query is parsed leniently and never fails.
    ///   An empty query matches everything, newest `created` first.
    /// * `project`, `status`, `tag` and `kind` are exact, case-sensitive
    ///   filters.
    /// * Only tickets visible to `viewer` are counted or returned.
    /// * `limit` is clamped to `1..=100`; a cursor that this crate did not
    ///   produce is [`IndexError::InvalidCursor`]. Paging stops after
    ///   [`MAX_WINDOW`] results. Pages come from the searcher current at
    ///   each call: a commit between two pages can shift results.
    pub fn search(&self, req: &SearchRequest) -> Result<SearchResults, IndexError> {
        let offset = match &req.cursor {
            Some(cursor) => decode_cursor(cursor)?,
            None => 0,
        };
        let limit = req.limit.clamp(1, MAX_LIMIT).min(MAX_WINDOW - offset);
        let f = &self.fields;
        let searcher = self.reader.searcher();

        let text = req.query.trim();
        let text_query = if text.is_empty() {
            None
        } else {
            let (query, _errors) = self.parser.parse_query_lenient(&clean_user_query(text));
            Some(query)
        };

        let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![(
            Occur::Must,
            text_query
                .as_ref()
                .map_or_else(|| Box::new(AllQuery) as Box<dyn Query>, |q| q.box_clone()),
        )];
        for (field, value) in [
            (f.project, &req.project),
            (f.status, &req.status),
            (f.tags, &req.tag),
            (f.kind, &req.kind),
        ] {
            if let Some(value) = value {
                clauses.push((Occur::Must, filter(term_query(field, value))));
            }
        }
        clauses.push((Occur::Must, self.visibility(&req.viewer)));
        let query = BooleanQuery::new(clauses);

        if req.top_only {
            let top = TopDocs::with_limit(limit + 1).and_offset(offset);
            let mut scored: Vec<(f32, DocAddress)> = if text_query.is_some() {
                searcher.search(&query, &top)?
            } else {
                searcher
                    .search(
                        &query,
                        &top.order_by_fast_field::<i64>("created", Order::Desc),
                    )?
                    .into_iter()
                    .map(|(_, addr)| (0.0, addr))
                    .collect()
            };
            let more = scored.len() > limit;
            scored.truncate(limit);
            let hits = self.hits(&searcher, text_query.as_deref(), scored)?;
            let next = offset + hits.len();
            return Ok(SearchResults {
                total: next + usize::from(more),
                next_cursor: (more && next < MAX_WINDOW).then(|| encode_cursor(next)),
                hits,
                facets: Facets::default(),
            });
        }

        let mut facet_collector = FacetCollector::for_field("facets");
        for root in [FACET_PROJECT, FACET_STATUS, FACET_TAG, FACET_KIND] {
            facet_collector.add_facet(Facet::from_path([root]));
        }
        let top = TopDocs::with_limit(limit).and_offset(offset);

        let (scored, total, facet_counts): (Vec<(f32, DocAddress)>, usize, FacetCounts) =
            if text_query.is_some() {
                searcher.search(&query, &(top, Count, facet_collector))?
            } else {
                let by_created = top.order_by_fast_field::<i64>("created", Order::Desc);
                let (docs, total, facets) =
                    searcher.search(&query, &(by_created, Count, facet_collector))?;
                let docs = docs.into_iter().map(|(_, addr)| (0.0, addr)).collect();
                (docs, total, facets)
            };

        let hits = self.hits(&searcher, text_query.as_deref(), scored)?;

        let next = offset + hits.len();
        let next_cursor =
            (!hits.is_empty() && next < total && next < MAX_WINDOW).then(|| encode_cursor(next));
        Ok(SearchResults {
            hits,
            total,
            facets: facets_from(&facet_counts),
            next_cursor,
        })
    }

    /// Stored fields and highlights of scored documents.
    fn hits(
        &self,
        searcher: &Searcher,
        text_query: Option<&dyn Query>,
        scored: Vec<(f32, DocAddress)>,
    ) -> Result<Vec<Hit>, IndexError> {
        let snippets = match text_query {
            Some(q) => Some(self.snippet_generators(searcher, q)?),
            None => None,
        };
        scored
            .into_iter()
            .map(|(score, addr)| self.hit(searcher, addr, score, snippets.as_ref()))
            .collect()
    }

    /// Resolved or closed tickets most like ticket `id`, best first.
    ///
    /// The query is built from the ticket's most distinctive terms (term
    /// frequency in its title, body and answer, weighted like the ranking
    /// boosts, times inverse document frequency; common English words are
    /// skipped), each searched in all three text fields. Ticket `id` itself
    /// is never returned, nor anything `viewer` may not see.
    ///
    /// An unknown id, or a ticket `viewer` may not see (so that its subject
    /// does not leak through its neighbours), gives `Ok(vec![])`; so does
    /// `limit == 0`. `limit` is clamped to 100.
    pub fn similar(&self, id: i64, viewer: &Viewer, limit: usize) -> Result<Vec<Hit>, IndexError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let f = &self.fields;
        let searcher = self.reader.searcher();
        let source = BooleanQuery::new(vec![
            (
                Occur::Must,
                Box::new(TermQuery::new(
                    Term::from_field_i64(f.id, id),
                    IndexRecordOption::Basic,
                )) as Box<dyn Query>,
            ),
            (Occur::Must, self.visibility(viewer)),
        ]);
        let found = searcher.search(&source, &TopDocs::with_limit(1))?;
        let Some((_, addr)) = found.first() else {
            return Ok(Vec::new());
        };
        let doc: TantivyDocument = searcher.doc(*addr)?;
        let text = |field: Field| {
            doc.get_first(field)
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
        };
        let texts = [
            (f.title, text(f.title)),
            (f.body, text(f.body)),
            (f.answer, text(f.answer)),
        ];
        let exclude = Term::from_field_i64(f.id, id);
        self.similar_hits(&searcher, &texts, viewer, None, Some(exclude), limit)
    }

    /// Resolved or closed tickets most like a text that is not in the index
    /// (for instance a ticket being drafted), optionally only in `project`.
    /// Same ranking, visibility and limits as [`TicketIndex::similar`];
    /// text with no known distinctive term gives `Ok(vec![])`.
    pub fn similar_to_text(
        &self,
        title: &str,
        body: &str,
        viewer: &Viewer,
        project: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Hit>, IndexError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let f = &self.fields;
        let searcher = self.reader.searcher();
        let texts = [(f.title, title.to_owned()), (f.body, body.to_owned())];
        self.similar_hits(&searcher, &texts, viewer, project, None, limit)
    }

    fn similar_hits(
        &self,
        searcher: &Searcher,
        texts: &[(Field, String)],
        viewer: &Viewer,
        project: Option<&str>,
        exclude: Option<Term>,
        limit: usize,
    ) -> Result<Vec<Hit>, IndexError> {
        let f = &self.fields;
        let Some(like) = self.more_like_this(searcher, texts)? else {
            return Ok(Vec::new());
        };
        let solved = SOLVED_STATUSES
            .iter()
            .map(|s| Term::from_field_text(f.status, s))
            .collect::<Vec<_>>();
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![
            (Occur::Must, like.box_clone()),
            (Occur::Must, filter(Box::new(TermSetQuery::new(solved)))),
            (Occur::Must, self.visibility(viewer)),
        ];
        if let Some(project) = project {
            clauses.push((Occur::Must, filter(term_query(f.project, project))));
        }
        if let Some(term) = exclude {
            clauses.push((
                Occur::MustNot,
                Box::new(TermQuery::new(term, IndexRecordOption::Basic)),
            ));
        }
        let query = BooleanQuery::new(clauses);
        let top = searcher.search(&query, &TopDocs::with_limit(limit.min(MAX_LIMIT)))?;
        let snippets = self.snippet_generators(searcher, &like)?;
        top.into_iter()
            .map(|(score, addr)| self.hit(searcher, addr, score, Some(&snippets)))
            .collect()
    }

    /// Builds the "more like this" query for `texts`, or `None` when no term
    /// of them is both distinctive and present in the index.
    fn more_like_this(
        &self,
        searcher: &Searcher,
        texts: &[(Field, String)],
    ) -> Result<Option<BooleanQuery>, IndexError> {
        let f = &self.fields;
        let mut analyzer = self.analyzer.clone();
        let mut weighted_tf: HashMap<String, f32> = HashMap::new();
        for (field, text) in texts {
            let boost = self.boost(*field);
            for token in analyze(&mut analyzer, text) {
                if token.chars().count() < 2 || self.stop_terms.contains(&token) {
                    continue;
                }
                *weighted_tf.entry(token).or_insert(0.0) += boost;
            }
        }
        let num_docs = searcher.num_docs() as f32;
        let mut scored: Vec<(f32, String)> = Vec::new();
        for (token, tf) in weighted_tf {
            let mut doc_freq = 0u64;
            for field in [f.title, f.body, f.answer] {
                doc_freq = doc_freq.max(searcher.doc_freq(&Term::from_field_text(field, &token))?);
            }
            if doc_freq == 0 {
                continue;
            }
            let df = doc_freq as f32;
            let idf = (1.0 + (num_docs - df + 0.5).max(0.0) / (df + 0.5)).ln();
            scored.push((tf * idf, token));
        }
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        scored.truncate(SIMILAR_MAX_TERMS);
        let Some(best) = scored.first().map(|(w, _)| *w).filter(|w| *w > 0.0) else {
            return Ok(None);
        };
        let clauses = scored
            .into_iter()
            .map(|(weight, token)| {
                let per_field: Vec<(Occur, Box<dyn Query>)> = [f.title, f.body, f.answer]
                    .into_iter()
                    .map(|field| {
                        let q = TermQuery::new(
                            Term::from_field_text(field, &token),
                            IndexRecordOption::WithFreqs,
                        );
                        (
                            Occur::Should,
                            Box::new(BoostQuery::new(Box::new(q), self.boost(field)))
                                as Box<dyn Query>,
                        )
                    })
                    .collect();
                (
                    Occur::Should,
                    Box::new(BoostQuery::new(
                        Box::new(BooleanQuery::new(per_field)),
                        weight / best,
                    )) as Box<dyn Query>,
                )
            })
            .collect();
        Ok(Some(BooleanQuery::new(clauses)))
    }

    fn boost(&self, field: Field) -> f32 {
        if field == self.fields.title {
            TITLE_BOOST
        } else if field == self.fields.answer {
            ANSWER_BOOST
        } else {
            BODY_BOOST
        }
    }

    /// The visibility clause: `private = 0 OR requester_id = viewer OR
    /// project IN viewer's teams`, scoring nothing.
    fn visibility(&self, viewer: &Viewer) -> Box<dyn Query> {
        let f = &self.fields;
        let mut any: Vec<(Occur, Box<dyn Query>)> = vec![(
            Occur::Should,
            Box::new(TermQuery::new(
                Term::from_field_u64(f.private, 0),
                IndexRecordOption::Basic,
            )),
        )];
        if let Some(user) = viewer.user_id {
            any.push((
                Occur::Should,
                Box::new(TermQuery::new(
                    Term::from_field_i64(f.requester_id, user),
                    IndexRecordOption::Basic,
                )),
            ));
        }
        if !viewer.team_projects.is_empty() {
            let projects = viewer
                .team_projects
                .iter()
                .map(|p| Term::from_field_text(f.project, p));
            any.push((Occur::Should, Box::new(TermSetQuery::new(projects))));
        }
        filter(Box::new(BooleanQuery::new(any)))
    }

    fn snippet_generators(
        &self,
        searcher: &Searcher,
        query: &dyn Query,
    ) -> Result<[SnippetGenerator; 3], IndexError> {
        let f = &self.fields;
        let make = |field: Field| -> Result<SnippetGenerator, IndexError> {
            let mut generator = SnippetGenerator::create(searcher, query, field)?;
            generator.set_max_num_chars(SNIPPET_CHARS);
            Ok(generator)
        };
        Ok([make(f.title)?, make(f.body)?, make(f.answer)?])
    }

    fn hit(
        &self,
        searcher: &Searcher,
        addr: DocAddress,
        score: f32,
        snippets: Option<&[SnippetGenerator; 3]>,
    ) -> Result<Hit, IndexError> {
        let f = &self.fields;
        let doc: TantivyDocument = searcher.doc(addr)?;
        let text = |field: Field| {
            doc.get_first(field)
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
        };
        let id = doc
            .get_first(f.id)
            .and_then(|v| v.as_i64())
            .ok_or(IndexError::MissingField("id"))?;
        let highlights = match snippets {
            Some([title, body, answer]) => {
                let html = |generator: &SnippetGenerator| {
                    let snippet = generator.snippet_from_doc(&doc);
                    (!snippet.is_empty()).then(|| snippet.to_html())
                };
                Highlights {
                    title: html(title),
                    body: html(body),
                    answer: html(answer),
                }
            }
            None => Highlights::default(),
        };
        Ok(Hit {
            id,
            score,
            project: text(f.project),
            title: text(f.title),
            status: text(f.status),
            highlights,
        })
    }
}

/// Runs `text` through `analyzer` and returns the token texts.
fn analyze(analyzer: &mut TextAnalyzer, text: &str) -> Vec<String> {
    let mut stream = analyzer.token_stream(text);
    let mut tokens = Vec::new();
    while stream.advance() {
        tokens.push(stream.token().text.clone());
    }
    tokens
}

/// An exact match on a raw (untokenised) string field.
fn term_query(field: Field, value: &str) -> Box<dyn Query> {
    Box::new(TermQuery::new(
        Term::from_field_text(field, value),
        IndexRecordOption::Basic,
    ))
}

/// Wraps a filter so that it restricts matches without changing scores.
fn filter(query: Box<dyn Query>) -> Box<dyn Query> {
    Box::new(ConstScoreQuery::new(query, 0.0))
}

/// Children of each facet root, by count then value, capped.
fn facets_from(counts: &FacetCounts) -> Facets {
    let list = |root: &str| {
        let mut values: Vec<FacetCount> = counts
            .get(Facet::from_path([root]))
            .filter_map(|(facet, count)| {
                facet.to_path().last().map(|v| FacetCount {
                    value: (*v).to_owned(),
                    count,
                })
            })
            .collect();
        values.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
        values.truncate(MAX_FACET_VALUES);
        values
    };
    Facets {
        project: list(FACET_PROJECT),
        status: list(FACET_STATUS),
        tags: list(FACET_TAG),
        kind: list(FACET_KIND),
    }
}
