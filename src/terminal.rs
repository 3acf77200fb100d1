//! Text bound for a terminal: control characters and bidirectional
//! overrides from log data (keys, names, values) are shown as visible
//! escapes, so a record cannot move the cursor, recolour the screen,
//! rewrite earlier lines or reorder what is shown.

use std::borrow::Cow;
use std::io::{self, Write};

pub use trailwarden_engine::render::{escape, is_unsafe, push_escaped};

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
    // Below DEL every character is safe here: one pass over the bytes
    // without an early exit, which the compiler vectorises (`all` stops at
    // each byte to test), since most output is ASCII.
    let below_del = json.bytes().fold(true, |ok, b| ok & (b < 0x7f));
    if below_del || !json.chars().any(unsafe_raw) {
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

/// A command's output stream on which a reader that has gone away (a
/// closed pipe: `trailwarden … | head -1`) is not an error: from then on
/// what is written is dropped, and the command goes on as it would have
/// (its messages on standard error, its exit code). Other write errors are
/// returned.
#[derive(Debug)]
pub struct Out<W: Write> {
    inner: W,
    closed: bool,
}

/// Standard output as an [`Out`].
pub fn stdout() -> Out<io::Stdout> {
    Out::new(io::stdout())
}

impl<W: Write> Out<W> {
    /// `inner`, with a closed pipe dropped quietly.
    pub fn new(inner: W) -> Self {
        Out {
            inner,
            closed: false,
        }
    }

    /// Whether the reader has gone away.
    pub fn closed(&self) -> bool {
        self.closed
    }

    fn gone<T>(&mut self, result: io::Result<T>, written: T) -> io::Result<T> {
        match result {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(written)
            }
            other => other,
        }
    }
}

impl<W: Write> Write for Out<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.closed {
            return Ok(buf.len());
        }
        let result = self.inner.write(buf);
        self.gone(result, buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.closed {
            return Ok(());
        }
        let result = self.inner.flush();
        self.gone(result, ())
    }
}

/// `eprintln!` with the whole message escaped for a terminal. Standard
/// error that cannot be written to (closed) is not written to.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        use ::std::io::Write as _;
        let _ = writeln!(
            ::std::io::stderr(),
            "{}",
            $crate::terminal::escape(&format!($($arg)*))
        );
    }};
}

/// `writeln!` to `out` (an [`Out`], or any writer) with the whole line
/// escaped for a terminal.
#[macro_export]
macro_rules! tell {
    ($out:expr, $($arg:tt)*) => {{
        use ::std::io::Write as _;
        writeln!($out, "{}", $crate::terminal::escape(&format!($($arg)*)))
    }};
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

    /// A writer whose reader has gone after `room` bytes.
    struct Pipe {
        got: Vec<u8>,
        room: usize,
        other: Option<io::ErrorKind>,
    }

    impl Write for Pipe {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if let Some(kind) = self.other {
                return Err(kind.into());
            }
            if self.got.len() + buf.len() > self.room {
                return Err(io::ErrorKind::BrokenPipe.into());
            }
            self.got.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_closed_pipe_drops_the_rest_and_other_errors_are_returned() {
        let mut out = Out::new(Pipe {
            got: Vec::new(),
            room: 7,
            other: None,
        });
        for n in 0..100 {
            crate::tell!(out, "line {n}").unwrap();
        }
        out.flush().unwrap();
        assert!(out.closed());
        assert_eq!(out.inner.got, b"line 0\n");

        let mut out = Out::new(Pipe {
            got: Vec::new(),
            room: 100,
            other: Some(io::ErrorKind::StorageFull),
        });
        assert!(crate::tell!(out, "x").is_err());
        assert!(!out.closed());
    }
}
