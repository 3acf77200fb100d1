//! Text bound for a terminal: control characters and bidirectional
//! overrides from log data (keys, names, values) are shown as visible
//! escapes, so a record cannot move the cursor, recolour the screen,
//! rewrite earlier lines or reorder what is shown.

use std::borrow::Cow;

/// Whether a character is shown escaped on a terminal: C0 and C1 controls
/// and DEL, the bidirectional embeddings, overrides and isolates
/// (U+202A–U+202E, U+2066–U+2069), the directional marks (U+200E, U+200F,
/// U+061C), and the line and paragraph separators (U+2028, U+2029).
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{061c}'
                | '\u{2028}'
                | '\u{2029}'
        )
}

/// `s` with every [`is_unsafe`] character written as a visible Rust-style
/// escape (`\u{1b}`, `\u{202e}`; tab, newline and carriage return as `\t`,
/// `\n`, `\r`). Borrowed when there is nothing to escape.
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        push_escaped(&mut out, c);
    }
    Cow::Owned(out)
}

/// Append `c` to `out`, escaped if it is [`is_unsafe`].
pub fn push_escaped(out: &mut String, c: char) {
    if !is_unsafe(c) {
        out.push(c);
        return;
    }
    match c {
        '\t' => out.push_str("\\t"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        _ => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
    }
}

/// JSON text with every [`is_unsafe`] character that JSON allows raw (DEL,
/// C1 controls, bidirectional controls, separators) written as a `\uXXXX`
/// escape. The value the text stands for is unchanged, and it stays valid
/// JSON: these characters can only occur inside JSON strings, where the
/// escape means the same character. (C0 controls are escaped by the JSON
/// writer already.)
pub fn json_escape(json: &str) -> Cow<'_, str> {
    // C0 controls in JSON text are the layout's newlines and indents (the
    // writer escapes them inside strings).
    let unsafe_raw = |c: char| c >= ' ' && is_unsafe(c);
    if !json.chars().any(unsafe_raw) {
        return Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if unsafe_raw(c) {
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// `eprintln!` with the whole message escaped for a terminal.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {
        eprintln!("{}", $crate::terminal::escape(&format!($($arg)*)))
    };
}

/// `println!` with the whole line escaped for a terminal.
#[macro_export]
macro_rules! tell {
    ($($arg:tt)*) => {
        println!("{}", $crate::terminal::escape(&format!($($arg)*)))
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_and_bidi_overrides_are_escaped() {
        for (raw, shown) in [
            ("a\u{1b}[31mb", "a\\u{1b}[31mb"),
            ("\u{9b}2J", "\\u{9b}2J"),
            ("x\u{7f}y", "x\\u{7f}y"),
            ("admin\u{202e}txt.exe", "admin\\u{202e}txt.exe"),
            (
                "\u{2066}\u{2069}\u{200e}\u{200f}\u{61c}",
                "\\u{2066}\\u{2069}\\u{200e}\\u{200f}\\u{61c}",
            ),
            ("line\nnext\ttab\r", "line\\nnext\\ttab\\r"),
            ("\u{2028}", "\\u{2028}"),
        ] {
            assert_eq!(escape(raw), shown);
        }
    }

    #[test]
    fn ordinary_text_is_borrowed_unchanged() {
        for s in [
            "",
            "arn:aws:iam::1:user/é",
            "日本語",
            "aws-cli/2.15 Python/3.11",
        ] {
            assert!(matches!(escape(s), Cow::Borrowed(_)));
            assert_eq!(escape(s), s);
        }
    }

    #[test]
    fn json_escapes_keep_the_value() {
        let value = serde_json::json!({"k\u{202e}": "a\u{1b}b\u{9b}c\u{7f}d\u{2067}"});
        for text in [
            serde_json::to_string(&value).unwrap(),
            serde_json::to_string_pretty(&value).unwrap(),
        ] {
            let safe = json_escape(&text);
            assert!(!safe.chars().any(|c| c != '\n' && is_unsafe(c)), "{safe}");
            assert_eq!(safe.lines().count(), text.lines().count());
            let back: serde_json::Value = serde_json::from_str(&safe).unwrap();
            assert_eq!(back, value);
        }
    }
}
