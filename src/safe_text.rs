//! Text from servers (error bodies, messages, keys, links) made safe before it reaches a
//! terminal, a log, the pass history or `status`: a server can send escape sequences that
//! repaint a terminal or forge log lines, newlines that split one record into several, bidi
//! overrides that make text read as something else, and megabytes. Titles written to GitLab
//! follow their own rules (`domain::title`); this is for diagnostics only.

/// The most of a server's text kept, in bytes.
pub const MAX_BYTES: usize = 2048;

/// `text` on one line: line breaks and tabs become spaces; other control characters (C0, DEL,
/// C1, so every escape sequence), bidi overrides and invisible characters become `�`; at most
/// [`MAX_BYTES`] kept (cut on a character boundary) with the cut said.
pub fn safe(text: &str) -> String {
    safe_within(text, MAX_BYTES)
}

/// [`safe`] with another bound (at least a few bytes).
pub fn safe_within(text: &str, max_bytes: usize) -> String {
    safe_start(text, max_bytes, text.len())
}

/// [`safe_within`] for `text`, the start of something `total_bytes` long: the cut said counts
/// the whole.
pub fn safe_start(text: &str, max_bytes: usize, total_bytes: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max_bytes) + 32);
    let mut kept = 0usize;
    for (at, c) in text.char_indices() {
        let c = if c == '\n' || c == '\r' || c == '\t' {
            ' '
        } else if c.is_control() || is_deceptive(c) {
            '\u{FFFD}'
        } else {
            c
        };
        if kept + c.len_utf8() > max_bytes {
            let rest = total_bytes.max(text.len()) - at;
            out.push_str(&format!("… ({rest} more bytes cut)"));
            return out;
        }
        kept += c.len_utf8();
        out.push(c);
    }
    if total_bytes > text.len() {
        out.push_str(&format!("… ({} more bytes cut)", total_bytes - text.len()));
    }
    out
}

/// Bidi embeddings, overrides and isolates, and invisible characters that make text display
/// as something else than it says (as `domain::clean_title` drops them from titles).
fn is_deceptive(c: char) -> bool {
    matches!(c, '\u{200B}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_controls_are_replaced_and_lines_joined() {
        let hostile =
            "ok\u{1b}[2J\u{1b}]0;owned\u{7}\nERROR forged line\r\n\u{9b}31m\u{202e}txt.exe";
        let s = safe(hostile);
        assert!(!s.chars().any(|c| c.is_control()), "{s:?}");
        assert!(!s.contains('\u{202e}'));
        assert!(s.starts_with("ok\u{FFFD}[2J"), "{s:?}");
        assert!(
            s.contains("\u{FFFD} ERROR forged line  \u{FFFD}31m"),
            "{s:?}"
        );
        assert_eq!(safe("create  VSA-1\tx"), "create  VSA-1 x", "spacing kept");
        assert_eq!(safe("Fix 🦀 ünïcode"), "Fix 🦀 ünïcode");
    }

    #[test]
    fn long_text_is_cut_on_a_character_boundary_and_says_so() {
        let long = "é".repeat(5000); // 10,000 bytes
        let s = safe(&long);
        assert!(s.len() < MAX_BYTES + 40, "{}", s.len());
        assert!(
            s.ends_with("… (7952 more bytes cut)"),
            "{}",
            &s[s.len() - 40..]
        );
        assert_eq!(
            safe(&"x".repeat(MAX_BYTES)),
            "x".repeat(MAX_BYTES),
            "exactly fits"
        );
    }
}
