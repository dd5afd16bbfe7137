//! HTML to plain text, for imported post bodies: what a browser would show,
//! as text a ticket can hold. Independent of any dump format.

/// Converts a post body (HTML) to plain text for a ticket.
///
/// * Tags are removed; entities are decoded (named ones such as `&amp;`,
///   `&lt;`, `&gt;`, `&quot;`, `&apos;`, `&nbsp;` (as a plain space), `&mdash;`,
///   and numeric ones, decimal `&#39;` or hex `&#x27;`); an unknown entity
///   is kept as written. A `<` that does not start a tag is kept.
/// * Outside `<pre>` and `<code>`, runs of whitespace become one space, as a
///   browser shows them. Text inside `<pre>` and `<code>` is kept verbatim
///   (spaces and line breaks), with its entities decoded, so `&lt;` in code
///   becomes `<`; the newline right after `<pre>` is dropped, as in HTML.
/// * `<p>`, `<pre>`, `<blockquote>`, `<h1>`-`<h6>`, `<table>`, `<hr>` and
///   top-level lists start and end a paragraph (blank line); `<br>`, `<div>`,
///   `<li>`, `<tr>` and nested lists break the line. Each `<li>` starts with
///   `- `, indented two spaces per level of list nesting; `<td>`/`<th>` are
///   separated by a space.
/// * Contents of `<script>` and `<style>`, and comments, are dropped. Link
///   targets and image sources are dropped too (only text is kept).
/// * Finally trailing whitespace is removed from every line, runs of blank
///   lines become one blank line, and blank lines at both ends are removed.
pub fn html_to_text(html: &str) -> String {
    let mut sink = TextSink::default();
    let mut pos = 0;
    let mut text_start = 0;
    while let Some(offset) = html[pos..].find('<') {
        let lt = pos + offset;
        let Some(markup) = parse_markup(html, lt) else {
            // A literal '<': stays part of the text run.
            pos = lt + 1;
            continue;
        };
        sink.text(&html[text_start..lt]);
        pos = match markup {
            Markup::Skip { end } => end,
            Markup::Tag(tag) => {
                let name = tag.name.to_ascii_lowercase();
                if tag.closing {
                    sink.close(&name);
                    tag.end
                } else if name == "script" || name == "style" {
                    if tag.self_closing {
                        tag.end
                    } else {
                        skip_raw_text(html, tag.end, &name)
                    }
                } else {
                    sink.open(&name);
                    if tag.self_closing && !is_void_element(&name) {
                        sink.close(&name);
                    }
                    tag.end
                }
            }
        };
        text_start = pos;
    }
    sink.text(&html[text_start..]);
    sink.finish()
}

/// A piece of markup starting at a `<`.
enum Markup<'a> {
    /// A comment, doctype or processing instruction, ending before `end`.
    Skip { end: usize },
    /// An element's start or end tag.
    Tag(Tag<'a>),
}

struct Tag<'a> {
    name: &'a str,
    closing: bool,
    self_closing: bool,
    /// Index just past the `>`.
    end: usize,
}

/// Recognises markup at `html[lt] == '<'`; `None` if the `<` is plain text.
fn parse_markup(html: &str, lt: usize) -> Option<Markup<'_>> {
    let next = *html.as_bytes().get(lt + 1)?;
    match next {
        b'!' if html[lt..].starts_with("<!--") => {
            let body = lt + 4;
            let end = html[body..]
                .find("-->")
                .map_or(html.len(), |i| body + i + 3);
            Some(Markup::Skip { end })
        }
        b'!' | b'?' => {
            let end = lt + html[lt..].find('>')? + 1;
            Some(Markup::Skip { end })
        }
        b'/' => parse_tag(html, lt + 2, true),
        c if c.is_ascii_alphabetic() => parse_tag(html, lt + 1, false),
        _ => None,
    }
}

fn parse_tag(html: &str, name_start: usize, closing: bool) -> Option<Markup<'_>> {
    let bytes = html.as_bytes();
    if !bytes.get(name_start)?.is_ascii_alphabetic() {
        return None;
    }
    let mut i = name_start;
    while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'-') {
        i += 1;
    }
    let name = &html[name_start..i];
    let mut last = 0u8; // last non-whitespace byte seen
    while i < bytes.len() {
        match bytes[i] {
            b'>' => {
                return Some(Markup::Tag(Tag {
                    name,
                    closing,
                    self_closing: last == b'/',
                    end: i + 1,
                }));
            }
            quote @ (b'"' | b'\'') if last == b'=' => {
                // A quoted attribute value may contain '>'.
                let len = html[i + 1..].find(quote as char)?;
                i += len + 2;
                last = quote;
                continue;
            }
            c if c.is_ascii_whitespace() => {}
            c => last = c,
        }
        i += 1;
    }
    None
}

/// Elements that have no content nor end tag (`<br>`, `<br/>` alike).
fn is_void_element(name: &str) -> bool {
    matches!(
        name,
        "area"
            | "base"
            | "br"
            | "col"
            | "embed"
            | "hr"
            | "img"
            | "input"
            | "link"
            | "meta"
            | "param"
            | "source"
            | "track"
            | "wbr"
    )
}

/// Index just past the end tag `</name ...>` at or after `from` (case
/// insensitive), or the end of `html` if there is none.
fn skip_raw_text(html: &str, from: usize, name: &str) -> usize {
    let bytes = html.as_bytes();
    let mut i = from;
    while let Some(offset) = html[i..].find("</") {
        let name_start = i + offset + 2;
        let name_end = name_start + name.len();
        if bytes
            .get(name_start..name_end)
            .is_some_and(|n| n.eq_ignore_ascii_case(name.as_bytes()))
        {
            return html[name_end..]
                .find('>')
                .map_or(html.len(), |g| name_end + g + 1);
        }
        i = name_start;
    }
    html.len()
}

/// Decodes the entity at the start of `s` (which starts with `&`): the
/// character and the length of the entity, or `None` if it is not one.
fn decode_entity(s: &str) -> Option<(char, usize)> {
    let semi = s.bytes().take(40).position(|b| b == b';')?;
    let name = &s[1..semi];
    let c = if let Some(number) = name.strip_prefix('#') {
        let (digits, radix) = match number.strip_prefix(['x', 'X']) {
            Some(hex) => (hex, 16),
            None => (number, 10),
        };
        if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
            return None;
        }
        u32::from_str_radix(digits, radix)
            .ok()
            .and_then(char::from_u32)
            .filter(|&c| c != '\0')
            .unwrap_or(char::REPLACEMENT_CHARACTER)
    } else {
        named_entity(name)?
    };
    Some((c, semi + 1))
}

fn named_entity(name: &str) -> Option<char> {
    Some(match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => '\u{a0}',
        "ndash" => '–',
        "mdash" => '—',
        "hellip" => '…',
        "lsquo" => '‘',
        "rsquo" => '’',
        "sbquo" => '‚',
        "ldquo" => '“',
        "rdquo" => '”',
        "bdquo" => '„',
        "laquo" => '«',
        "raquo" => '»',
        "middot" => '·',
        "bull" => '•',
        "copy" => '©',
        "reg" => '®',
        "trade" => '™',
        "deg" => '°',
        "plusmn" => '±',
        "times" => '×',
        "divide" => '÷',
        "minus" => '−',
        "le" => '≤',
        "ge" => '≥',
        "ne" => '≠',
        "larr" => '←',
        "rarr" => '→',
        "uarr" => '↑',
        "darr" => '↓',
        "euro" => '€',
        "pound" => '£',
        "cent" => '¢',
        "yen" => '¥',
        "sect" => '§',
        "para" => '¶',
        "frac12" => '½',
        "frac14" => '¼',
        "frac34" => '¾',
        "shy" => '\u{ad}',
        "zwj" => '\u{200d}',
        "zwnj" => '\u{200c}',
        _ => return None,
    })
}

/// Accumulates text, turning block structure into line breaks lazily: breaks,
/// spaces and list markers are only written once more text follows, so
/// nested blocks (`<li><p>`) do not pile up empty lines or dangling markers.
#[derive(Default)]
struct TextSink {
    out: String,
    /// Line breaks owed before the next text (blocks take the maximum, `<br>`
    /// adds one).
    pending_breaks: usize,
    /// Whitespace was seen since the last text.
    pending_space: bool,
    /// A `<li>` opened: write its `- ` before the next text.
    pending_marker: bool,
    list_depth: usize,
    pre_depth: usize,
    code_depth: usize,
    /// Just after `<pre>`: a first newline is dropped.
    pre_start: bool,
}

impl TextSink {
    fn block(&mut self, breaks: usize) {
        self.pending_breaks = self.pending_breaks.max(breaks);
        self.pending_space = false;
    }

    fn open(&mut self, name: &str) {
        match name {
            "br" => self.line_break(),
            "li" => {
                self.block(1);
                self.pending_marker = true;
            }
            "ul" | "ol" | "menu" => {
                self.block(if self.list_depth == 0 { 2 } else { 1 });
                self.list_depth += 1;
            }
            "pre" => {
                self.block(2);
                self.pre_depth += 1;
                self.pre_start = true;
            }
            "code" => self.code_depth += 1,
            "td" | "th" => self.pending_space = true,
            _ => self.block_for(name),
        }
    }

    fn close(&mut self, name: &str) {
        match name {
            "br" => self.line_break(),
            "li" => self.block(1),
            "ul" | "ol" | "menu" => {
                self.list_depth = self.list_depth.saturating_sub(1);
                self.block(if self.list_depth == 0 { 2 } else { 1 });
            }
            "pre" => {
                self.pre_depth = self.pre_depth.saturating_sub(1);
                self.pre_start = false;
                self.block(2);
            }
            "code" => self.code_depth = self.code_depth.saturating_sub(1),
            _ => self.block_for(name),
        }
    }

    /// Breaks around other block elements, on both their start and end tags.
    fn block_for(&mut self, name: &str) {
        match name {
            "p" | "blockquote" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "table" | "hr"
            | "dl" | "figure" | "address" | "fieldset" | "details" => self.block(2),
            "div" | "tr" | "section" | "article" | "header" | "footer" | "nav" | "aside"
            | "main" | "dt" | "dd" | "summary" | "figcaption" | "caption" | "form" | "center" => {
                self.block(1)
            }
            _ => {}
        }
    }

    fn line_break(&mut self) {
        if self.pre_depth > 0 {
            self.push_char('\n');
        } else {
            self.pending_breaks += 1;
            self.pending_space = false;
        }
    }

    /// Raw text between tags: decodes entities.
    fn text(&mut self, raw: &str) {
        let mut rest = raw;
        while let Some(amp) = rest.find('&') {
            self.chars(&rest[..amp]);
            let entity = &rest[amp..];
            match decode_entity(entity) {
                Some((c, len)) => {
                    self.push_char(c);
                    rest = &entity[len..];
                }
                None => {
                    self.push_char('&');
                    rest = &entity[1..];
                }
            }
        }
        self.chars(rest);
    }

    fn chars(&mut self, s: &str) {
        for c in s.chars() {
            self.push_char(c);
        }
    }

    fn push_char(&mut self, c: char) {
        if c == '\r' {
            return;
        }
        if self.pre_depth > 0 {
            if std::mem::take(&mut self.pre_start) && c == '\n' {
                return;
            }
        } else if self.code_depth == 0 && c.is_ascii_whitespace() {
            self.pending_space = true;
            return;
        }
        self.flush();
        self.out.push(c);
    }

    /// Writes what is owed before the next character of text.
    fn flush(&mut self) {
        let new_line = self.out.is_empty() || self.pending_breaks > 0;
        if !self.out.is_empty() {
            for _ in 0..self.pending_breaks {
                self.out.push('\n');
            }
        }
        if new_line {
            let indent = if self.pending_marker {
                self.list_depth.saturating_sub(1)
            } else {
                self.list_depth
            };
            for _ in 0..indent {
                self.out.push_str("  ");
            }
            if self.pending_marker {
                self.out.push_str("- ");
            }
        } else if self.pending_space && !self.out.ends_with(['\n', ' ']) {
            self.out.push(' ');
        }
        self.pending_breaks = 0;
        self.pending_space = false;
        self.pending_marker = false;
    }

    fn finish(self) -> String {
        let mut result = String::with_capacity(self.out.len());
        let mut blank = false;
        for line in self.out.split('\n') {
            let line = line.trim_end();
            if line.is_empty() {
                blank = !result.is_empty();
                continue;
            }
            if !result.is_empty() {
                result.push_str(if blank { "\n\n" } else { "\n" });
            }
            blank = false;
            result.extend(line.chars().map(|c| if c == '\u{a0}' { ' ' } else { c }));
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // ---- html_to_text ------------------------------------------------------

    #[test]
    fn html_paragraphs_and_whitespace() {
        let html = "<p>What does &quot;backprop&quot;   mean?</p>\n\n<p>Is it\nthe same?</p>\n";
        assert_eq!(
            html_to_text(html),
            "What does \"backprop\" mean?\n\nIs it the same?"
        );
        assert_eq!(html_to_text(""), "");
        assert_eq!(html_to_text("  plain  text  "), "plain text");
        assert_eq!(html_to_text("a <em>b</em> <strong>c</strong>d"), "a b cd");
    }

    #[test]
    fn html_entities() {
        assert_eq!(
            html_to_text("&amp; &lt; &gt; &quot; &#39; &#x27; &#X41; &#233; &apos;"),
            "& < > \" ' ' A é '"
        );
        assert_eq!(html_to_text("a&nbsp;b&nbsp;&nbsp;c"), "a b  c");
        assert_eq!(html_to_text("x &mdash; y&hellip;"), "x — y…");
        // Unknown or broken entities stay as written.
        assert_eq!(
            html_to_text("AT&T &bogus; &#xZZ; &#; a & b"),
            "AT&T &bogus; &#xZZ; &#; a & b"
        );
        // Out-of-range code points become U+FFFD.
        assert_eq!(html_to_text("&#0;&#x110000;"), "\u{fffd}\u{fffd}");
        // Double escaping decodes once.
        assert_eq!(html_to_text("&amp;lt;p&amp;gt;"), "&lt;p&gt;");
    }

    #[test]
    fn html_line_breaks() {
        assert_eq!(
            html_to_text("one<br>two<br/>three<br />four"),
            "one\ntwo\nthree\nfour"
        );
        assert_eq!(html_to_text("one<br><br>two"), "one\n\ntwo");
        assert_eq!(html_to_text("one<br><br><br><br>two"), "one\n\ntwo");
        assert_eq!(html_to_text("<div>a</div><div>b</div>"), "a\nb");
        assert_eq!(
            html_to_text("<h1>Title</h1>text<hr>more"),
            "Title\n\ntext\n\nmore"
        );
        assert_eq!(
            html_to_text("<blockquote><p>quoted</p></blockquote><p>reply</p>"),
            "quoted\n\nreply"
        );
        assert_eq!(
            html_to_text("<p>a</p>\n\n\n<p></p><p> </p>\n<div></div><p>b</p>"),
            "a\n\nb"
        );
    }

    #[test]
    fn html_nested_lists() {
        let html = "<p>Steps:</p>\n<ul>\n<li>one\n<ul>\n<li>one.a</li>\n<li>one.b<ol><li>deep</li></ol></li>\n</ul>\n</li>\n<li>two</li>\n</ul>\n<p>done</p>";
        assert_eq!(
            html_to_text(html),
            "Steps:\n\n- one\n  - one.a\n  - one.b\n    - deep\n- two\n\ndone"
        );
        // Paragraphs inside items (as Stack Exchange's Markdown renders loose lists).
        let html = "<ul>\n<li><p>first</p>\n</li>\n<li><p>second</p>\n<p>more</p></li>\n</ul>";
        assert_eq!(html_to_text(html), "- first\n\n- second\n\n  more");
        // Unclosed <li> and stray end tags are tolerated.
        assert_eq!(
            html_to_text("<ol><li>a<li>b</ol></ul></li>c"),
            "- a\n- b\n\nc"
        );
    }

    #[test]
    fn html_code_is_verbatim() {
        let html = "<p>Use:</p>\n<pre><code>if a &lt; b &amp;&amp; c &gt; d {\n    x  =  &quot;&lt;p&gt;&quot;;\n}\n</code></pre>\n<p>then <code>a  &lt;b&gt;</code> inline.</p>";
        assert_eq!(
            html_to_text(html),
            "Use:\n\nif a < b && c > d {\n    x  =  \"<p>\";\n}\n\nthen a  <b> inline."
        );
        // The newline right after <pre> is dropped; indentation of the first line kept.
        assert_eq!(
            html_to_text("<pre>\n  indented\n\n\n\nend</pre>"),
            "  indented\n\nend"
        );
        // Markup inside <pre> is still markup.
        assert_eq!(
            html_to_text("<pre><b>bold</b>\r\n<i>x</i></pre>"),
            "bold\nx"
        );
    }

    #[test]
    fn html_script_style_comments() {
        let html = "<p>a</p><script type=\"text/javascript\">if (x < 1 && y > 2) { document.write('<p>no</p>'); }</script><style>p { color: red }</style>b<!-- hidden <p>c</p> -->d<SCRIPT>x</SCRIPT >e";
        assert_eq!(html_to_text(html), "a\n\nbde");
        assert_eq!(html_to_text("x<script>never closed"), "x");
        assert_eq!(html_to_text("x<!-- never closed"), "x");
        assert_eq!(html_to_text("<!DOCTYPE html><?php echo 1 ?>y"), "y");
    }

    #[test]
    fn html_tags_attributes_and_stray_angles() {
        assert_eq!(
            html_to_text("<a href=\"https://x.example/?a=1&amp;b=2\" title='a > b'>link</a> text"),
            "link text"
        );
        assert_eq!(
            html_to_text("<img src=\"x.png\" alt=\"pic\"/>caption"),
            "caption"
        );
        assert_eq!(
            html_to_text("if a < b and c<3 or <= 4 or </ 5"),
            "if a < b and c<3 or <= 4 or </ 5"
        );
        assert_eq!(html_to_text("unterminated <b tag"), "unterminated <b tag");
        assert_eq!(html_to_text("<P>Upper</P><BR>Case"), "Upper\n\nCase");
        assert_eq!(
            html_to_text(
                "<table><tr><th>h1</th><th>h2</th></tr><tr><td>a</td><td>b</td></tr></table>after"
            ),
            "h1 h2\na b\n\nafter"
        );
        assert_eq!(html_to_text("é — 日本語 <b>ü</b>"), "é — 日本語 ü");
    }
}
