//! Text from outside (a registry, a token server, an archive, a credential helper) made safe to
//! print: control characters are shown as escapes (`\x1b`, `\r`, `\u{9b}`) so that they can
//! neither move the cursor, retitle the window nor overwrite a line; every other character,
//! non-ASCII letters included, is shown as it is. `--json` output escapes on its own.

use std::fmt::{self, Display, Formatter};

/// A string shown with its control characters made visible (see [`inert`]).
#[derive(Clone, Copy)]
pub struct Inert<'a> {
    text: &'a str,
    keep_newlines: bool,
}

/// `text` with every control character shown as an escape, line ends included: for a value
/// that should be one line (a tag, a registry's message, a field of a config).
pub fn inert(text: &str) -> Inert<'_> {
    Inert {
        text,
        keep_newlines: false,
    }
}

/// `text` with every control character but the line end `\n` shown as an escape: for a whole
/// message of this program's own that may span lines.
pub fn inert_lines(text: &str) -> Inert<'_> {
    Inert {
        text,
        keep_newlines: true,
    }
}

/// Whether a terminal would act on `c` rather than show it: C0 and C1 controls, DEL, and the
/// bidirectional overrides and isolates that reorder what follows them.
fn is_active(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

impl Display for Inert<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let mut rest = self.text;
        while let Some(at) = rest.find(|c: char| is_active(c) && !(self.keep_newlines && c == '\n'))
        {
            f.write_str(&rest[..at])?;
            let c = rest[at..].chars().next().unwrap_or_default();
            match c {
                '\n' => f.write_str("\\n")?,
                '\r' => f.write_str("\\r")?,
                '\t' => f.write_str("\\t")?,
                '\0'..='\u{7f}' => write!(f, "\\x{:02x}", c as u32)?,
                _ => write!(f, "\\u{{{:x}}}", c as u32)?,
            }
            rest = &rest[at + c.len_utf8()..];
        }
        f.write_str(rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_shown_and_letters_kept() {
        let hostile = "v1\x1b]0;owned\x07\r\n\tx\u{9b}2J\x7f é漢字";
        assert_eq!(
            inert(hostile).to_string(),
            "v1\\x1b]0;owned\\x07\\r\\n\\tx\\u{9b}2J\\x7f é漢字"
        );
    }

    #[test]
    fn a_message_keeps_its_lines_only() {
        assert_eq!(
            inert_lines("one\ntwo\r\x1b[2J").to_string(),
            "one\ntwo\\r\\x1b[2J"
        );
    }

    #[test]
    fn bidirectional_overrides_are_shown() {
        assert_eq!(
            inert("a\u{202e}b\u{2066}").to_string(),
            "a\\u{202e}b\\u{2066}"
        );
    }

    #[test]
    fn plain_text_is_untouched() {
        assert_eq!(
            inert("registry.example.com/app:v1").to_string(),
            "registry.example.com/app:v1"
        );
    }
}
