//! Text hygiene shared by every field people type: what counts as empty,
//! and characters a name may not carry.

/// Unicode format characters (category Cf) that render as nothing or
/// reorder text: soft hyphen, zero-width spaces and joiners, bidi marks,
/// embeddings, overrides and isolates, word joiners, the BOM.
fn is_format(c: char) -> bool {
    matches!(c,
        '\u{AD}'
        | '\u{600}'..='\u{605}'
        | '\u{61C}'
        | '\u{6DD}'
        | '\u{70F}'
        | '\u{180E}'
        | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{206F}'
        | '\u{FEFF}'
        | '\u{FFF9}'..='\u{FFFB}')
}

/// Whitespace or an invisible format character.
fn is_blank(c: char) -> bool {
    c.is_whitespace() || is_format(c)
}

/// `s` without leading and trailing Unicode whitespace and format
/// characters, so a title of zero-width spaces is empty.
pub fn trim(s: &str) -> &str {
    s.trim_matches(is_blank)
}

/// Characters of trimmed `s`, for length checks.
pub fn visible_len(s: &str) -> usize {
    trim(s).chars().count()
}

/// Whether `s` holds a control character (NUL, newlines, escapes) or a bidi
/// embedding, override or isolate, which a display name must not: they
/// forge how names and the text around them read.
pub fn has_control_or_bidi(s: &str) -> bool {
    s.chars()
        .any(|c| c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invisible_characters_do_not_count() {
        assert_eq!(trim("\u{200B}\u{200B}\u{FEFF} \u{2060}"), "");
        assert_eq!(visible_len("\u{200B}abc\u{200D}"), 3);
        assert_eq!(trim("  a\u{200B}b  "), "a\u{200B}b");
        assert!(has_control_or_bidi("Ann\u{0}"));
        assert!(has_control_or_bidi("evil\u{202E}gnp.exe"));
        assert!(has_control_or_bidi("a\u{2067}b"));
        assert!(!has_control_or_bidi("Zoë O'Brien-Łukasz 李"));
    }
}
