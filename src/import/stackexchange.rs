//! Streaming reader for Stack Exchange data dumps (`Posts.xml`, `Users.xml`).
//!
//! A dump is one XML file per table: a root element (`<posts>`, `<users>`)
//! holding one `<row .../>` element per record, every field an attribute.
//! Questions (`PostTypeId="1"`) and answers (`PostTypeId="2"`, pointing to
//! their question by `ParentId`) become [`Post`]s; every other post type (tag
//! wikis, moderator nominations, ...) is skipped and counted.
//!
//! # Errors
//!
//! * A row whose fields do not make sense (missing `Id`, unparsable date or
//!   number, question without a title, answer without a `ParentId`, ...) is
//!   skipped and counted in [`ReadStats::malformed`]; reading goes on.
//! * A file that is not well-formed XML (bad markup, mismatched or missing end
//!   tags, truncated file, broken attribute syntax, a broken escape in a field
//!   that is read) is an error whose message names the byte offset in the
//!   file (counted from its first byte), as is a file whose root
//!   element is not the expected one (e.g. `Users.xml` given to
//!   [`read_posts`]).
//! * An error returned by the caller's callback stops reading and is returned
//!   (with the row's byte offset and the file name added as context).
//!
//! # Memory
//!
//! Memory stays bounded by the largest single row, not by the file: the file
//! is read through a [`BufReader`] of fixed capacity ([`READ_BUFFER_BYTES`])
//! by [`quick_xml::Reader::from_reader`], and every XML event is decoded into
//! one `Vec<u8>` that is cleared (keeping its allocation) after each event, so
//! it grows only to the size of the largest `<row>` element (a few hundred KiB
//! at most in real dumps: bodies are capped by the sites). Each row is turned
//! into an owned [`Post`] or [`User`], handed to the callback and dropped by
//! the reader before the next row is read; nothing accumulates across rows
//! apart from the counters in [`ReadStats`] and at most
//! [`MAX_MALFORMED_SAMPLES`] short error descriptions.

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use anyhow::{bail, Context, Result};
use chrono::NaiveDateTime;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::QName;
use quick_xml::{Reader, XmlVersion};

/// Capacity of the [`BufReader`] that the `read_*` functions wrap a file in.
pub const READ_BUFFER_BYTES: usize = 64 * 1024;

/// The progress callback is called at most once per this many bytes of input
/// (and once more at the end).
pub const PROGRESS_STEP_BYTES: u64 = 64 * 1024;

/// How many malformed-row descriptions [`ReadStats::malformed_samples`] keeps.
pub const MAX_MALFORMED_SAMPLES: usize = 10;

/// A question (`PostTypeId="1"`): one imported ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    /// Post id, unique within the site.
    pub id: i64,
    /// Title, plain text (entities already decoded), trimmed; never empty.
    pub title: String,
    /// Body as HTML (already XML-unescaped); see [`super::html_text::html_to_text`].
    pub body_html: String,
    /// Tags in the order given, without duplicates; see [`parse_tags`].
    pub tags: Vec<String>,
    /// Author's user id on this site; `None` for deleted or anonymous users.
    pub owner_user_id: Option<i64>,
    /// Author's name when the dump gives it instead of (or as well as) an id,
    /// typically for deleted users.
    pub owner_display_name: Option<String>,
    /// When the question was asked (UTC).
    pub created: NaiveDateTime,
    /// Last activity on the question or its answers (UTC).
    pub last_activity: Option<NaiveDateTime>,
    /// When the question was closed by the site (UTC), if it was.
    pub closed: Option<NaiveDateTime>,
    /// Id of the accepted answer, if any (it may have been deleted since).
    pub accepted_answer_id: Option<i64>,
    /// Votes up minus votes down (0 when the dump omits it).
    pub score: i64,
    /// Licence of the text (e.g. `CC BY-SA 4.0`), when the dump says.
    pub content_license: Option<String>,
}

/// An answer (`PostTypeId="2"`): one reply on an imported ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// Post id, unique within the site (shared with questions).
    pub id: i64,
    /// Id of the question answered (`ParentId`).
    pub parent_id: i64,
    /// Body as HTML (already XML-unescaped); see [`super::html_text::html_to_text`].
    pub body_html: String,
    /// Author's user id on this site; `None` for deleted or anonymous users.
    pub owner_user_id: Option<i64>,
    /// Author's name when the dump gives it instead of (or as well as) an id.
    pub owner_display_name: Option<String>,
    /// When the answer was posted (UTC).
    pub created: NaiveDateTime,
    /// Votes up minus votes down (0 when the dump omits it).
    pub score: i64,
    /// Licence of the text (e.g. `CC BY-SA 4.0`), when the dump says.
    pub content_license: Option<String>,
}

/// One question or answer from `Posts.xml`, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Post {
    /// A question (`PostTypeId="1"`).
    Question(Question),
    /// An answer (`PostTypeId="2"`).
    Answer(Answer),
}

impl Post {
    /// The post's id, whichever kind it is.
    pub fn id(&self) -> i64 {
        match self {
            Post::Question(q) => q.id,
            Post::Answer(a) => a.id,
        }
    }
}

/// One user from `Users.xml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// User id on this site (`-1` is the "Community" bot).
    pub id: i64,
    /// Display name; never empty.
    pub display_name: String,
    /// Reputation on this site (1, the site minimum, when the dump omits it).
    pub reputation: i64,
    /// When the account was created on this site (UTC).
    pub created: Option<NaiveDateTime>,
    /// Network-wide account id: the same person on every Stack Exchange site.
    pub account_id: Option<i64>,
}

/// What a `read_*` call went through.
///
/// `rows == delivered + skipped`, where delivered rows are the ones handed to
/// the callback.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadStats {
    /// `<row>` elements read.
    pub rows: u64,
    /// Rows not handed to the callback: malformed rows plus, for posts, rows
    /// of other post types than question and answer.
    pub skipped: u64,
    /// Of `skipped`, the rows skipped because a field was missing or invalid.
    pub malformed: u64,
    /// Bytes of input consumed, counted from the start of the file (a UTF-8
    /// byte order mark included): the file's size once reading has succeeded.
    pub bytes: u64,
    /// Up to [`MAX_MALFORMED_SAMPLES`] descriptions of malformed rows, each
    /// with the row's byte offset and the reason, for logging.
    pub malformed_samples: Vec<String>,
}

/// Streams the questions and answers of a `Posts.xml` file, one at a time and
/// in file order, to `f`, and returns how many rows were read and skipped.
///
/// Never holds the whole file in memory (see the module documentation).
pub fn read_posts(path: &Path, f: impl FnMut(Post) -> Result<()>) -> Result<ReadStats> {
    read_posts_with_progress(path, |_| {}, f)
}

/// Like [`read_posts`], and also calls `progress` with the number of bytes of
/// the file consumed so far (at most once per [`PROGRESS_STEP_BYTES`], and
/// once at the end with the total), to drive a progress bar against the
/// file's size.
pub fn read_posts_with_progress(
    path: &Path,
    progress: impl FnMut(u64),
    f: impl FnMut(Post) -> Result<()>,
) -> Result<ReadStats> {
    let input = open(path)?;
    read_posts_from(input, progress, f).with_context(|| format!("reading {}", path.display()))
}

/// Like [`read_posts_with_progress`], from any buffered reader (a decompressor,
/// a test fixture, ...); byte counts are relative to its start.
pub fn read_posts_from<R: BufRead>(
    input: R,
    progress: impl FnMut(u64),
    mut f: impl FnMut(Post) -> Result<()>,
) -> Result<ReadStats> {
    read_rows(input, "posts", POST_FIELDS, progress, |mut row| {
        Ok(match parse_post(&mut row) {
            Ok(Some(post)) => {
                f(post)?;
                RowOutcome::Delivered
            }
            Ok(None) => RowOutcome::Ignored,
            Err(reason) => RowOutcome::Malformed(reason),
        })
    })
}

/// Streams the users of a `Users.xml` file, one at a time and in file order,
/// to `f`, and returns how many rows were read and skipped.
///
/// Never holds the whole file in memory (see the module documentation).
pub fn read_users(path: &Path, f: impl FnMut(User) -> Result<()>) -> Result<ReadStats> {
    read_users_with_progress(path, |_| {}, f)
}

/// Like [`read_users`], and also calls `progress` with the number of bytes of
/// the file consumed so far (at most once per [`PROGRESS_STEP_BYTES`], and
/// once at the end with the total).
pub fn read_users_with_progress(
    path: &Path,
    progress: impl FnMut(u64),
    f: impl FnMut(User) -> Result<()>,
) -> Result<ReadStats> {
    let input = open(path)?;
    read_users_from(input, progress, f).with_context(|| format!("reading {}", path.display()))
}

/// Like [`read_users_with_progress`], from any buffered reader; byte counts
/// are relative to its start.
pub fn read_users_from<R: BufRead>(
    input: R,
    progress: impl FnMut(u64),
    mut f: impl FnMut(User) -> Result<()>,
) -> Result<ReadStats> {
    read_rows(input, "users", USER_FIELDS, progress, |mut row| {
        Ok(match parse_user(&mut row) {
            Ok(user) => {
                f(user)?;
                RowOutcome::Delivered
            }
            Err(reason) => RowOutcome::Malformed(reason),
        })
    })
}

/// Splits a `Tags` attribute into tag names.
///
/// Accepts the `<a><b>` form, the `|a|b|` form and whitespace-separated tags
/// (Stack Exchange tag names contain none of `<`, `>`, `|` or whitespace).
/// Keeps the order, drops empty pieces and repeated tags; `""` gives no tags.
pub fn parse_tags(raw: &str) -> Vec<String> {
    let mut tags: Vec<String> = Vec::new();
    for piece in raw.split(|c: char| c == '<' || c == '>' || c == '|' || c.is_whitespace()) {
        if !piece.is_empty() && !tags.iter().any(|t| t == piece) {
            tags.push(piece.to_owned());
        }
    }
    tags
}

/// Parses a dump timestamp such as `2016-08-02T15:39:14.947` (UTC, no zone;
/// the fraction of a second is optional; a trailing `Z` or a space instead of
/// the `T` is accepted). Returns `None` if it is not one.
pub fn parse_date(raw: &str) -> Option<NaiveDateTime> {
    let raw = raw.trim();
    let raw = raw.strip_suffix('Z').unwrap_or(raw);
    NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(raw, "%Y-%m-%d %H:%M:%S%.f"))
        .ok()
}

// ---------------------------------------------------------------------------
// XML rows

const POST_FIELDS: &[&str] = &[
    "Id",
    "PostTypeId",
    "ParentId",
    "AcceptedAnswerId",
    "CreationDate",
    "Score",
    "Body",
    "OwnerUserId",
    "OwnerDisplayName",
    "LastActivityDate",
    "Title",
    "Tags",
    "ClosedDate",
    "ContentLicense",
];

const USER_FIELDS: &[&str] = &[
    "Id",
    "Reputation",
    "CreationDate",
    "DisplayName",
    "AccountId",
];

/// What became of one `<row>`.
enum RowOutcome {
    Delivered,
    /// A row of a kind the caller does not want (other post types).
    Ignored,
    /// A row with a missing or invalid field; the reason.
    Malformed(String),
}

/// The unescaped values of the wanted attributes of one `<row>`.
struct Row<'a> {
    values: Vec<(&'static str, Cow<'a, str>)>,
}

impl<'a> Row<'a> {
    fn collect(start: &'a BytesStart<'_>, fields: &[&'static str]) -> Result<Self> {
        let mut values = Vec::with_capacity(fields.len());
        for attr in start.attributes() {
            let attr = attr?;
            if let Some(name) = fields.iter().find(|f| f.as_bytes() == name_bytes(attr.key)) {
                values.push((*name, attr.normalized_value(XmlVersion::Implicit1_0)?));
            }
        }
        Ok(Row { values })
    }

    /// The value, if present and not blank.
    fn get(&self, key: &str) -> Option<&str> {
        self.values
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_ref())
            .filter(|v| !v.trim().is_empty())
    }

    /// Moves the value out (to avoid copying long bodies), even if blank.
    fn take(&mut self, key: &str) -> Option<Cow<'a, str>> {
        let index = self.values.iter().position(|(k, _)| *k == key)?;
        Some(self.values.swap_remove(index).1)
    }

    fn text(&mut self, key: &str) -> Option<String> {
        self.get(key)?;
        self.take(key).map(Cow::into_owned)
    }

    fn opt_i64(&self, key: &str) -> Result<Option<i64>, String> {
        self.get(key)
            .map(|v| v.trim().parse().map_err(|_| format!("bad {key} {v:?}")))
            .transpose()
    }

    fn req_i64(&self, key: &str) -> Result<i64, String> {
        self.opt_i64(key)?.ok_or_else(|| format!("missing {key}"))
    }

    fn opt_date(&self, key: &str) -> Result<Option<NaiveDateTime>, String> {
        self.get(key)
            .map(|v| parse_date(v).ok_or_else(|| format!("bad {key} {v:?}")))
            .transpose()
    }

    fn req_date(&self, key: &str) -> Result<NaiveDateTime, String> {
        self.opt_date(key)?.ok_or_else(|| format!("missing {key}"))
    }
}

/// `Ok(None)` for post types other than question and answer.
fn parse_post(row: &mut Row<'_>) -> Result<Option<Post>, String> {
    let id = row.req_i64("Id")?;
    parse_post_fields(row, id).map_err(|reason| format!("post {id}: {reason}"))
}

fn parse_post_fields(row: &mut Row<'_>, id: i64) -> Result<Option<Post>, String> {
    let kind = row.req_i64("PostTypeId")?;
    if kind != 1 && kind != 2 {
        return Ok(None);
    }
    let created = row.req_date("CreationDate")?;
    let score = row.opt_i64("Score")?.unwrap_or(0);
    let owner_user_id = row.opt_i64("OwnerUserId")?;
    let owner_display_name = row.text("OwnerDisplayName");
    let content_license = row.text("ContentLicense");
    let body_html = row.take("Body").map(Cow::into_owned).unwrap_or_default();
    if kind == 2 {
        return Ok(Some(Post::Answer(Answer {
            id,
            parent_id: row.req_i64("ParentId")?,
            body_html,
            owner_user_id,
            owner_display_name,
            created,
            score,
            content_license,
        })));
    }
    let title = row.get("Title").ok_or("missing Title")?.trim().to_owned();
    Ok(Some(Post::Question(Question {
        id,
        title,
        body_html,
        tags: row.get("Tags").map(parse_tags).unwrap_or_default(),
        owner_user_id,
        owner_display_name,
        created,
        last_activity: row.opt_date("LastActivityDate")?,
        closed: row.opt_date("ClosedDate")?,
        accepted_answer_id: row.opt_i64("AcceptedAnswerId")?,
        score,
        content_license,
    })))
}

fn parse_user(row: &mut Row<'_>) -> Result<User, String> {
    let id = row.req_i64("Id")?;
    let fields = || -> Result<User, String> {
        Ok(User {
            id,
            display_name: row
                .get("DisplayName")
                .ok_or("missing DisplayName")?
                .to_owned(),
            reputation: row.opt_i64("Reputation")?.unwrap_or(1),
            created: row.opt_date("CreationDate")?,
            account_id: row.opt_i64("AccountId")?,
        })
    };
    fields().map_err(|reason| format!("user {id}: {reason}"))
}

/// The bytes of an element or attribute name. quick-xml 0.41 stores names as
/// `&[u8]` and 0.42 as `&str`; both are `AsRef<[u8]>`, so this compiles
/// with either.
fn name_bytes(name: QName<'_>) -> &[u8] {
    fn bytes<T: AsRef<[u8]> + ?Sized>(raw: &T) -> &[u8] {
        raw.as_ref()
    }
    bytes(name.0)
}

fn open(path: &Path) -> Result<BufReader<File>> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    Ok(BufReader::with_capacity(READ_BUFFER_BYTES, file))
}

/// Consumes a UTF-8 byte order mark, returning its length (0 or 3), so that
/// the positions quick-xml reports can be turned into file offsets.
fn skip_bom<R: BufRead>(input: &mut R) -> std::io::Result<u64> {
    if input.fill_buf()?.starts_with(b"\xEF\xBB\xBF") {
        input.consume(3);
        return Ok(3);
    }
    Ok(0)
}

/// The streaming loop shared by posts and users: checks the root element,
/// hands each `<row>` directly under it to `handle`, counts, reports
/// progress. One event buffer is reused for the whole file.
fn read_rows<R: BufRead>(
    mut input: R,
    root: &'static str,
    fields: &[&'static str],
    mut progress: impl FnMut(u64),
    mut handle: impl FnMut(Row<'_>) -> Result<RowOutcome>,
) -> Result<ReadStats> {
    let base = skip_bom(&mut input).context("reading input")?;
    let mut reader = Reader::from_reader(input);
    let mut buf = Vec::with_capacity(16 * 1024);
    let mut stats = ReadStats::default();
    let mut depth: usize = 0;
    let mut root_seen = false;
    let mut last_progress = 0;
    loop {
        let event_start = base + reader.buffer_position();
        let event = match reader.read_event_into(&mut buf) {
            Ok(event) => event,
            Err(quick_xml::Error::Io(err)) => {
                return Err(anyhow::Error::new(err))
                    .with_context(|| format!("I/O error near byte {event_start}"));
            }
            Err(err) => bail!(
                "malformed XML at byte {}: {err}",
                base + reader.error_position()
            ),
        };
        let (start, is_empty) = match event {
            Event::Start(start) => (start, false),
            Event::Empty(start) => (start, true),
            Event::End(_) => {
                depth = depth.saturating_sub(1);
                buf.clear();
                continue;
            }
            Event::Eof => {
                if depth > 0 {
                    bail!(
                        "malformed XML at byte {}: file ends inside <{root}> (truncated?)",
                        base + reader.buffer_position()
                    );
                }
                if !root_seen {
                    bail!("no <{root}> element found: not a Stack Exchange {root} file");
                }
                break;
            }
            // Declaration, doctype, whitespace, comments: nothing to do.
            _ => {
                buf.clear();
                continue;
            }
        };
        if depth == 0 {
            let name = start.name();
            if root_seen {
                bail!(
                    "malformed XML at byte {event_start}: second root element <{}>",
                    String::from_utf8_lossy(name_bytes(name))
                );
            }
            if name_bytes(name) != root.as_bytes() {
                bail!(
                    "expected a <{root}> root element, found <{}> at byte {event_start}",
                    String::from_utf8_lossy(name_bytes(name))
                );
            }
            root_seen = true;
        } else if depth == 1 && name_bytes(start.name()) == b"row" {
            let row = Row::collect(&start, fields)
                .with_context(|| format!("malformed XML in <row> at byte {event_start}"))?;
            stats.rows += 1;
            let outcome =
                handle(row).with_context(|| format!("handling the row at byte {event_start}"))?;
            match outcome {
                RowOutcome::Delivered => {}
                RowOutcome::Ignored => stats.skipped += 1,
                RowOutcome::Malformed(reason) => {
                    stats.skipped += 1;
                    stats.malformed += 1;
                    if stats.malformed_samples.len() < MAX_MALFORMED_SAMPLES {
                        stats
                            .malformed_samples
                            .push(format!("row at byte {event_start}: {reason}"));
                    }
                }
            }
        }
        if !is_empty {
            depth += 1;
        }
        let position = base + reader.buffer_position();
        if position - last_progress >= PROGRESS_STEP_BYTES {
            progress(position);
            last_progress = position;
        }
        buf.clear();
    }
    stats.bytes = base + reader.buffer_position();
    progress(stats.bytes);
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::super::html_text::html_to_text;
    use super::*;
    use std::collections::{HashMap, HashSet};
    use std::io::Cursor;
    use std::path::PathBuf;

    fn data_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/stackexchange")
    }

    // ---- parse_tags / parse_date ------------------------------------------

    #[test]
    fn tags_in_both_forms() {
        assert_eq!(
            parse_tags("<neural-networks><definitions>"),
            ["neural-networks", "definitions"]
        );
        assert_eq!(parse_tags("|c++|visual-studio|"), ["c++", "visual-studio"]);
        assert_eq!(parse_tags("<single>"), ["single"]);
        assert_eq!(parse_tags("|single|"), ["single"]);
        assert_eq!(parse_tags("a b"), ["a", "b"]);
        assert_eq!(parse_tags("<a><b><a>"), ["a", "b"]);
    }

    #[test]
    fn empty_tags() {
        assert!(parse_tags("").is_empty());
        assert!(parse_tags("  ").is_empty());
        assert!(parse_tags("<>").is_empty());
        assert!(parse_tags("||").is_empty());
    }

    #[test]
    fn dates_with_and_without_fraction() {
        let d = parse_date("2016-08-02T15:39:14.947").unwrap();
        assert_eq!(d.to_string(), "2016-08-02 15:39:14.947");
        let d = parse_date("2016-08-02T15:39:14").unwrap();
        assert_eq!(d.to_string(), "2016-08-02 15:39:14");
        assert_eq!(
            parse_date("2016-08-02T15:39:14.5Z").unwrap().to_string(),
            "2016-08-02 15:39:14.500"
        );
        assert!(parse_date("2016-08-02").is_none());
        assert!(parse_date("yesterday").is_none());
        assert!(parse_date("2016-13-02T15:39:14").is_none());
    }

    // ---- synthetic dumps ---------------------------------------------------

    fn posts_from(xml: &str) -> Result<(Vec<Post>, ReadStats)> {
        let mut posts = Vec::new();
        let stats = read_posts_from(
            Cursor::new(xml.as_bytes()),
            |_| {},
            |p| {
                posts.push(p);
                Ok(())
            },
        )?;
        Ok((posts, stats))
    }

    #[test]
    fn synthetic_posts_all_fields() {
        let xml = "\u{feff}<?xml version=\"1.0\" encoding=\"utf-8\"?>\r\n<!DOCTYPE posts SYSTEM 'posts.dtd'>\r\n<posts>\r\n\
  <row Id=\"1\" PostTypeId=\"1\" AcceptedAnswerId=\"2\" CreationDate=\"2016-08-02T15:39:14.947\" Score=\"5\" Body=\"&lt;p&gt;Why &amp;amp;?&lt;/p&gt;&#xA;\" OwnerUserId=\"8\" LastActivityDate=\"2016-08-18T13:20:02\" Title=\" What is &quot;backprop&quot;? \" Tags=\"&lt;a&gt;&lt;b&gt;\" ClosedDate=\"2017-01-01T00:00:00.1\" ContentLicense=\"CC BY-SA 3.0\" />\r\n\
  <row Id=\"2\" PostTypeId=\"2\" ParentId=\"1\" CreationDate=\"2016-08-02T15:40:24.820\" Score=\"-3\" Body=\"&lt;p&gt;x&lt;/p&gt;\" OwnerDisplayName=\"gone user\" />\r\n\
  <row Id=\"3\" PostTypeId=\"5\" CreationDate=\"2016-08-02T15:40:24.820\" Body=\"wiki\" />\r\n\
  <row Id=\"4\" PostTypeId=\"1\" CreationDate=\"2016-08-02T15:40:24\" Title=\"t\" Tags=\"|x|y|\"></row>\r\n\
</posts>";
        let (posts, stats) = posts_from(xml).unwrap();
        assert_eq!(
            stats,
            ReadStats {
                rows: 4,
                skipped: 1,
                malformed: 0,
                bytes: xml.len() as u64,
                malformed_samples: vec![]
            }
        );
        assert_eq!(posts.len(), 3);
        let Post::Question(q) = &posts[0] else {
            panic!("not a question: {:?}", posts[0])
        };
        assert_eq!(q.id, 1);
        assert_eq!(q.title, "What is \"backprop\"?");
        assert_eq!(q.body_html, "<p>Why &amp;?</p>\n");
        assert_eq!(html_to_text(&q.body_html), "Why &?");
        assert_eq!(q.tags, ["a", "b"]);
        assert_eq!(q.owner_user_id, Some(8));
        assert_eq!(q.owner_display_name, None);
        assert_eq!(q.created.to_string(), "2016-08-02 15:39:14.947");
        assert_eq!(
            q.last_activity.map(|d| d.to_string()).as_deref(),
            Some("2016-08-18 13:20:02")
        );
        assert_eq!(
            q.closed.map(|d| d.to_string()).as_deref(),
            Some("2017-01-01 00:00:00.100")
        );
        assert_eq!(q.accepted_answer_id, Some(2));
        assert_eq!(q.score, 5);
        assert_eq!(q.content_license.as_deref(), Some("CC BY-SA 3.0"));
        let Post::Answer(a) = &posts[1] else {
            panic!("not an answer: {:?}", posts[1])
        };
        assert_eq!((a.id, a.parent_id, a.score), (2, 1, -3));
        assert_eq!(a.owner_user_id, None);
        assert_eq!(a.owner_display_name.as_deref(), Some("gone user"));
        assert_eq!(a.body_html, "<p>x</p>");
        let Post::Question(q4) = &posts[2] else {
            panic!("not a question: {:?}", posts[2])
        };
        assert_eq!(
            (q4.id, q4.tags.clone(), q4.score),
            (4, vec!["x".to_owned(), "y".to_owned()], 0)
        );
        assert_eq!(
            (q4.last_activity, q4.closed, q4.accepted_answer_id),
            (None, None, None)
        );
        assert_eq!(posts[2].id(), 4);
    }

    #[test]
    fn malformed_rows_are_skipped_and_counted() {
        let xml = r#"<posts>
  <row PostTypeId="1" CreationDate="2016-08-02T15:39:14" Title="no id" />
  <row Id="x" PostTypeId="1" CreationDate="2016-08-02T15:39:14" Title="bad id" />
  <row Id="2" PostTypeId="1" CreationDate="2016-02-30T15:39:14" Title="bad date" />
  <row Id="3" PostTypeId="1" Title="no date" />
  <row Id="4" PostTypeId="2" CreationDate="2016-08-02T15:39:14" />
  <row Id="5" PostTypeId="1" CreationDate="2016-08-02T15:39:14" />
  <row Id="6" CreationDate="2016-08-02T15:39:14" />
  <row Id="7" PostTypeId="1" CreationDate="2016-08-02T15:39:14" Title="t" Score="many" />
  <row Id="8" PostTypeId="1" CreationDate="2016-08-02T15:39:14" Title="t" LastActivityDate="soon" />
  <row Id="9" PostTypeId="1" CreationDate="2016-08-02T15:39:14" Title="good" OwnerUserId="" />
  <row Id="10" PostTypeId="2" ParentId="9" CreationDate="2016-08-02T15:39:14" />
  <row Id="11" PostTypeId="4" />
  <row Id="12" PostTypeId="1" CreationDate="2016-08-02T15:39:14" Title="t" ClosedDate="" />
</posts>"#;
        let (posts, stats) = posts_from(xml).unwrap();
        assert_eq!(posts.iter().map(Post::id).collect::<Vec<_>>(), [9, 10, 12]);
        assert_eq!((stats.rows, stats.skipped, stats.malformed), (13, 10, 9));
        assert_eq!(stats.malformed_samples.len(), 9);
        let all = stats.malformed_samples.join("\n");
        for reason in [
            "missing Id",
            "bad Id \"x\"",
            "post 2: bad CreationDate \"2016-02-30T15:39:14\"",
            "post 3: missing CreationDate",
            "post 4: missing ParentId",
            "post 5: missing Title",
            "post 6: missing PostTypeId",
            "post 7: bad Score \"many\"",
            "post 8: bad LastActivityDate \"soon\"",
        ] {
            assert!(all.contains(reason), "{reason:?} not in:\n{all}");
        }
        assert!(
            stats.malformed_samples[0].starts_with("row at byte 10: "),
            "{all}"
        );
    }

    #[test]
    fn malformed_samples_are_capped() {
        let mut xml = String::from("<posts>");
        for _ in 0..25 {
            xml.push_str("<row PostTypeId=\"1\"/>");
        }
        xml.push_str("</posts>");
        let (posts, stats) = posts_from(&xml).unwrap();
        assert!(posts.is_empty());
        assert_eq!((stats.rows, stats.skipped, stats.malformed), (25, 25, 25));
        assert_eq!(stats.malformed_samples.len(), MAX_MALFORMED_SAMPLES);
    }

    #[test]
    fn malformed_xml_is_an_error_with_position() {
        let cases = [
            // mismatched end tag
            ("<posts>\n<row Id=\"1\"/>\n</post>", "byte"),
            // truncated inside the root
            ("<posts>\n<row Id=\"1\"/>\n", "file ends inside <posts>"),
            // truncated inside a row
            ("<posts>\n<row Id=\"1\" Body=\"abc", "byte"),
            // unquoted attribute value
            (
                "<posts><row Id=1 /></posts>",
                "malformed XML in <row> at byte 7",
            ),
            // unknown entity in an attribute
            (
                "<posts><row Id=\"1\" Body=\"&foo;\" /></posts>",
                "malformed XML in <row> at byte 7",
            ),
            // duplicated attribute
            (
                "<posts><row Id=\"1\" Id=\"2\" /></posts>",
                "malformed XML in <row> at byte 7",
            ),
            // two roots
            ("<posts></posts><posts></posts>", "second root element"),
            // wrong kind of file
            (
                "<users><row Id=\"1\" DisplayName=\"x\"/></users>",
                "expected a <posts> root element, found <users>",
            ),
            // no root at all
            ("", "no <posts> element"),
            ("<?xml version=\"1.0\"?>\n", "no <posts> element"),
        ];
        for (xml, expected) in cases {
            let err = match posts_from(xml) {
                Ok((posts, stats)) => panic!("{xml:?} was accepted: {posts:?} {stats:?}"),
                Err(err) => format!("{err:#}"),
            };
            assert!(
                err.contains(expected),
                "{xml:?}: {err:?} lacks {expected:?}"
            );
        }
        // The position is a byte offset in the file, BOM included.
        let err = posts_from("\u{feff}<posts>\n<row Id=\"1\"/>\n</post>")
            .err()
            .map(|e| format!("{e:#}"));
        assert!(
            err.as_deref().is_some_and(|e| e.contains("at byte 25")),
            "{err:?}"
        );
    }

    #[test]
    fn file_errors_name_the_file() {
        let missing = data_dir().join("no-such-site/Posts.xml");
        let err = read_posts(&missing, |_| Ok(()))
            .err()
            .map(|e| format!("{e:#}"));
        assert!(
            err.as_deref()
                .is_some_and(|e| e.contains("no-such-site/Posts.xml")),
            "{err:?}"
        );
        // Users.xml given to read_posts.
        let users = data_dir().join("french.meta.stackexchange.com/Users.xml");
        let err = read_posts(&users, |_| Ok(()))
            .err()
            .map(|e| format!("{e:#}"));
        assert!(
            err.as_deref()
                .is_some_and(|e| e.contains("Users.xml") && e.contains("found <users>")),
            "{err:?}"
        );
    }

    #[test]
    fn callback_error_stops_reading() {
        let path = data_dir().join("beer.stackexchange.com/Posts.xml");
        let mut seen = 0;
        let err = read_posts(&path, |_| {
            seen += 1;
            if seen == 3 {
                anyhow::bail!("database is full");
            }
            Ok(())
        })
        .err()
        .map(|e| format!("{e:#}"));
        assert_eq!(seen, 3);
        assert!(
            err.as_deref()
                .is_some_and(|e| e.contains("database is full")),
            "{err:?}"
        );
    }

    #[test]
    fn synthetic_users() {
        let xml = r#"<?xml version="1.0" encoding="utf-8"?>
<users>
  <row Id="-1" Reputation="1" CreationDate="2016-08-02T00:14:10.580" DisplayName="Community" AccountId="-1" AboutMe="&lt;p&gt;bot&lt;/p&gt;" />
  <row Id="5" Reputation="1234" DisplayName="Jane &amp; Co" />
  <row Id="6" Reputation="10" />
  <row Id="7" DisplayName="x" CreationDate="never" />
  <row Id="8" DisplayName="no rep" />
</users>"#;
        let mut users = Vec::new();
        let stats = read_users_from(
            Cursor::new(xml),
            |_| {},
            |u| {
                users.push(u);
                Ok(())
            },
        )
        .unwrap();
        assert_eq!((stats.rows, stats.skipped, stats.malformed), (5, 2, 2));
        assert_eq!(users.len(), 3);
        assert_eq!(users[0].id, -1);
        assert_eq!(users[0].display_name, "Community");
        assert_eq!(users[0].account_id, Some(-1));
        assert_eq!(
            users[0].created.map(|d| d.to_string()).as_deref(),
            Some("2016-08-02 00:14:10.580")
        );
        assert_eq!(
            (users[1].id, users[1].reputation, users[1].created),
            (5, 1234, None)
        );
        assert_eq!(users[1].display_name, "Jane & Co");
        assert_eq!((users[2].id, users[2].reputation), (8, 1));
        assert!(stats
            .malformed_samples
            .iter()
            .any(|s| s.contains("user 6: missing DisplayName")));
        assert!(stats
            .malformed_samples
            .iter()
            .any(|s| s.contains("user 7: bad CreationDate")));
    }

    // ---- real dumps --------------------------------------------------------

    /// The committed subset of the shared dumps (tests/fixtures/NOTICE.md).
    const SITES: [&str; 3] = [
        "beer.stackexchange.com",
        "french.meta.stackexchange.com",
        "genai.stackexchange.com",
    ];

    const SITES_WITH_USERS: [&str; 1] = ["french.meta.stackexchange.com"];

    /// Occurrences of `needle` in the file: an independent, crude count. (In a
    /// dump, `"` inside values is escaped, so `PostTypeId="1"` only matches
    /// the attribute.)
    fn crude_count(path: &Path, needle: &str) -> u64 {
        let text = std::fs::read_to_string(path).unwrap();
        text.matches(needle).count() as u64
    }

    fn check_site(site: &str) {
        let path = data_dir().join(site).join("Posts.xml");
        let mut questions: HashMap<i64, Option<i64>> = HashMap::new();
        let mut answers: HashMap<i64, i64> = HashMap::new();
        let mut progress_calls = Vec::new();
        let stats = read_posts_with_progress(
            &path,
            |bytes| progress_calls.push(bytes),
            |post| {
                match post {
                    Post::Question(q) => {
                        assert!(!q.title.is_empty(), "question {} has no title", q.id);
                        let text = html_to_text(&q.body_html);
                        assert!(
                            !text.contains("<p>") && !text.contains("</p>"),
                            "question {}: {text}",
                            q.id
                        );
                        assert!(!text.contains("\n\n\n"), "question {}: {text}", q.id);
                        assert!(
                            q.last_activity.is_none_or(|d| d >= q.created),
                            "question {}",
                            q.id
                        );
                        assert!(
                            questions.insert(q.id, q.accepted_answer_id).is_none(),
                            "dup {}",
                            q.id
                        );
                    }
                    Post::Answer(a) => {
                        let text = html_to_text(&a.body_html);
                        assert!(
                            !text.contains("<p>") && !text.contains("</p>"),
                            "answer {}: {text}",
                            a.id
                        );
                        assert!(answers.insert(a.id, a.parent_id).is_none(), "dup {}", a.id);
                    }
                }
                Ok(())
            },
        )
        .unwrap();

        let expected_questions = crude_count(&path, "PostTypeId=\"1\"");
        let expected_answers = crude_count(&path, "PostTypeId=\"2\"");
        let expected_rows = crude_count(&path, "<row ");
        assert_eq!(
            questions.len() as u64,
            expected_questions,
            "{site} questions"
        );
        assert_eq!(answers.len() as u64, expected_answers, "{site} answers");
        assert_eq!(stats.rows, expected_rows, "{site} rows");
        assert_eq!(stats.malformed, 0, "{site}: {:?}", stats.malformed_samples);
        assert_eq!(
            stats.skipped,
            expected_rows - expected_questions - expected_answers
        );

        let size = std::fs::metadata(&path).unwrap().len();
        assert_eq!(stats.bytes, size, "{site} bytes");
        assert_eq!(progress_calls.last(), Some(&size), "{site} progress");
        assert!(
            progress_calls.windows(2).all(|w| w[0] <= w[1]),
            "{site} progress not monotonic"
        );
        assert!(
            progress_calls.len() as u64 >= size / (2 * PROGRESS_STEP_BYTES),
            "{site} progress too rare"
        );

        let orphans = answers
            .values()
            .filter(|p| !questions.contains_key(p))
            .count();
        assert!(
            orphans * 100 <= answers.len(),
            "{site}: {orphans} orphan answers"
        );
        let with_accepted = questions.values().filter(|a| a.is_some()).count();
        let resolved = questions
            .iter()
            .filter(|(q, accepted)| accepted.is_some_and(|a| answers.get(&a) == Some(q)))
            .count();
        assert!(resolved > 0, "{site}: no accepted answer resolves");
        println!(
            "{site}: rows {} questions {} answers {} skipped {} orphans {orphans} \
             accepted {with_accepted} resolved {resolved} bytes {}",
            stats.rows,
            questions.len(),
            answers.len(),
            stats.skipped,
            stats.bytes
        );

        // Streaming through a tiny buffer gives the same posts.
        let file = File::open(&path).unwrap();
        let mut ids = Vec::new();
        let small = read_posts_from(
            BufReader::with_capacity(7, file),
            |_| {},
            |p| {
                ids.push(p.id());
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(small, stats, "{site} with a 7-byte buffer");
        assert_eq!(ids.len(), questions.len() + answers.len());
    }

    #[test]
    fn site_beer() {
        check_site(SITES[0]);
    }

    #[test]
    fn site_french_meta() {
        check_site(SITES[1]);
    }

    #[test]
    fn site_genai() {
        check_site(SITES[2]);
    }

    #[test]
    fn users_of_sites_that_have_them() {
        for site in SITES_WITH_USERS {
            let path = data_dir().join(site).join("Users.xml");
            let mut ids = HashSet::new();
            let stats = read_users(&path, |u| {
                assert!(
                    !u.display_name.trim().is_empty(),
                    "{site}: user {} has no name",
                    u.id
                );
                assert!(ids.insert(u.id), "{site}: duplicate user {}", u.id);
                Ok(())
            })
            .unwrap();
            assert!(!ids.is_empty(), "{site}: no users");
            assert_eq!(
                ids.len() as u64,
                crude_count(&path, "<row "),
                "{site} users"
            );
            assert_eq!(
                (stats.skipped, stats.malformed),
                (0, 0),
                "{site}: {:?}",
                stats.malformed_samples
            );
            assert_eq!(stats.bytes, std::fs::metadata(&path).unwrap().len());

            // Most post authors are users of the same site.
            let mut owners = 0;
            let mut known = 0;
            read_posts(&data_dir().join(site).join("Posts.xml"), |p| {
                let owner = match p {
                    Post::Question(q) => q.owner_user_id,
                    Post::Answer(a) => a.owner_user_id,
                };
                if let Some(owner) = owner {
                    owners += 1;
                    known += usize::from(ids.contains(&owner));
                }
                Ok(())
            })
            .unwrap();
            println!(
                "{site}: users {} post owners known {known}/{owners}",
                ids.len()
            );
            assert!(
                known * 10 >= owners * 9,
                "{site}: only {known}/{owners} owners are users"
            );
        }
    }

    #[test]
    fn real_body_renders_sensibly() {
        // genai question 1's accepted answer: a list of <li><p> items with inline code.
        let path = data_dir().join("genai.stackexchange.com/Posts.xml");
        let mut body = None;
        read_posts(&path, |p| {
            if let Post::Answer(a) = p {
                if a.id == 2 {
                    body = Some(a.body_html);
                }
            }
            Ok(())
        })
        .unwrap();
        let text = html_to_text(&body.unwrap());
        assert!(
            text.starts_with(
                "Square brackets and parentheses are used for adjusting the weight of the contained words:\n\n\
                 - Surrounding words with (parentheses) will increase their impact on the image,\n\n\
                 - Surrounding words with [square brackets] will decrease their impact on the image."
            ),
            "{text}"
        );
    }
}
