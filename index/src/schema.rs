//! The tantivy schema for tickets and the conversion of [`TicketDoc`] into a
//! tantivy document.

use tantivy::schema::{
    Facet, FacetOptions, Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, FAST,
    INDEXED, STORED, STRING,
};
use tantivy::tokenizer::{
    Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer, TextAnalyzer,
};
use tantivy::TantivyDocument;

use crate::TicketDoc;

/// Name under which the English analyzer is registered with the index.
pub(crate) const ANALYZER: &str = "guildhall_en";

/// Tokens longer than this (in bytes) are dropped by the analyzer.
const MAX_TOKEN_LEN: usize = 40;

/// Facet roots, one per faceted attribute.
pub(crate) const FACET_PROJECT: &str = "project";
pub(crate) const FACET_STATUS: &str = "status";
pub(crate) const FACET_TAG: &str = "tag";
pub(crate) const FACET_KIND: &str = "kind";

/// Handles on every field of the schema.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fields {
    pub id: Field,
    pub project: Field,
    pub title: Field,
    pub body: Field,
    pub answer: Field,
    pub tags: Field,
    pub status: Field,
    pub kind: Field,
    pub private: Field,
    pub requester_id: Field,
    pub created: Field,
    pub resolved: Field,
    pub facets: Field,
}

/// The English analyzer used for title, body and answer:
/// simple tokenizer, long-token removal, lowercasing, English stemming.
pub(crate) fn analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(MAX_TOKEN_LEN))
        .filter(LowerCaser)
        .filter(Stemmer::new(Language::English))
        .build()
}

/// Builds the schema and returns it with the field handles.
pub(crate) fn build() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let text = TextOptions::default()
        .set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(ANALYZER)
                .set_index_option(IndexRecordOption::WithFreqsAndPositions),
        )
        .set_stored();
    let fields = Fields {
        id: b.add_i64_field("id", INDEXED | FAST | STORED),
        project: b.add_text_field("project", STRING | STORED | FAST),
        title: b.add_text_field("title", text.clone()),
        body: b.add_text_field("body", text.clone()),
        answer: b.add_text_field("answer", text),
        tags: b.add_text_field("tags", STRING | STORED),
        status: b.add_text_field("status", STRING | STORED),
        kind: b.add_text_field("kind", STRING | STORED),
        private: b.add_u64_field("private", INDEXED | FAST),
        requester_id: b.add_i64_field("requester_id", INDEXED | FAST),
        created: b.add_i64_field("created", FAST | STORED),
        resolved: b.add_i64_field("resolved", FAST | STORED),
        facets: b.add_facet_field("facets", FacetOptions::default()),
    };
    (b.build(), fields)
}

/// A facet path component: tantivy separates levels with NUL, so NUL is
/// dropped from values. Returns `None` for values that end up empty.
pub(crate) fn facet(root: &str, value: &str) -> Option<Facet> {
    let clean: String = value.chars().filter(|c| *c != '\0').collect();
    if clean.is_empty() {
        None
    } else {
        Some(Facet::from_path([root, clean.as_str()]))
    }
}

/// Converts a ticket into the tantivy document that represents it.
///
/// `created` and `resolved` are stored as microseconds since the Unix epoch.
pub(crate) fn to_document(f: &Fields, doc: &TicketDoc) -> TantivyDocument {
    let mut d = TantivyDocument::default();
    d.add_i64(f.id, doc.id);
    d.add_text(f.project, &doc.project);
    d.add_text(f.title, &doc.title);
    d.add_text(f.body, &doc.body);
    if let Some(answer) = &doc.answer {
        d.add_text(f.answer, answer);
    }
    let mut seen_tags: Vec<&str> = Vec::with_capacity(doc.tags.len());
    for tag in &doc.tags {
        d.add_text(f.tags, tag);
        // A ticket counts once per tag in the facet counts, even if the tag
        // is listed twice.
        if seen_tags.contains(&tag.as_str()) {
            continue;
        }
        seen_tags.push(tag);
        if let Some(facet) = facet(FACET_TAG, tag) {
            d.add_facet(f.facets, facet);
        }
    }
    d.add_text(f.status, &doc.status);
    d.add_text(f.kind, &doc.kind);
    d.add_u64(f.private, u64::from(doc.private));
    d.add_i64(f.requester_id, doc.requester_id);
    d.add_i64(f.created, doc.created.timestamp_micros());
    if let Some(resolved) = doc.resolved {
        d.add_i64(f.resolved, resolved.timestamp_micros());
    }
    for (root, value) in [
        (FACET_PROJECT, &doc.project),
        (FACET_STATUS, &doc.status),
        (FACET_KIND, &doc.kind),
    ] {
        if let Some(facet) = facet(root, value) {
            d.add_facet(f.facets, facet);
        }
    }
    d
}
