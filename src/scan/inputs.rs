//! What `scan` reads: the paths given, expanded (directories walked, files
//! that are not logs set aside with the reason), and each input's kind.

use super::*;

/// One input to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Standard input (`-`).
    Stdin,
    /// A file.
    File(PathBuf),
}

impl Input {
    /// The name used in messages.
    pub fn name(&self) -> String {
        match self {
            Input::Stdin => "<stdin>".into(),
            Input::File(p) => p.display().to_string(),
        }
    }
}

/// Command-line paths expanded into inputs.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Expanded {
    /// The inputs to read, in order.
    pub inputs: Vec<Input>,
    /// Paths that do not exist or cannot be listed, with the reason.
    pub unreadable: Vec<(String, String)>,
    /// Directories given that hold no file to read (none, or only hidden
    /// ones).
    pub empty_dirs: Vec<String>,
    /// Files found under a directory that are clearly not logs (a
    /// `LICENSE`, a `README.md`, an image): neither gzip nor JSON, by
    /// their first bytes ([`looks_like_a_log`]), with the reason. A file
    /// named on the command line is always read, and rejected if it is
    /// not a log.
    pub not_logs: Vec<(String, String)>,
}

/// Whether a file's first bytes (up to 512 of them) can begin a log the
/// reader reads: gzip (`1f 8b`, RFC 1952 section 2.3.1), or JSON text
/// (after an optional UTF-8 byte order mark and whitespace, `{` or `[`:
/// a CloudTrail log object, an array of records, JSON lines). Empty or
/// blank text counts as a log (the reader says what it holds).
pub fn looks_like_a_log(head: &[u8]) -> bool {
    if trailwarden_cloudtrail::reader::is_gzip(head) {
        return true;
    }
    let text = head.strip_prefix(b"\xef\xbb\xbf").unwrap_or(head);
    match text.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b) => matches!(b, b'{' | b'['),
        // Empty, or only whitespace so far: the reader says what it holds.
        None => true,
    }
}

/// The reason a file under a directory is skipped as not a log, or `None`
/// when it may be one (or cannot be opened: reading it says why).
pub(crate) fn not_a_log(path: &Path) -> Option<String> {
    use std::io::Read;
    // A pipe, socket or device is not opened twice (reading its first bytes
    // would take them from the reader).
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => {
            return Some(
                "a symbolic link to a directory (not followed); name it to read it".to_owned(),
            )
        }
        Ok(m) if !m.is_file() => {
            return Some(
                "not a regular file (a pipe, socket or device); name it to read it".to_owned(),
            )
        }
        _ => {}
    }
    let mut head = [0u8; 512];
    let mut file = std::fs::File::open(path).ok()?;
    let mut n = 0;
    while n < head.len() {
        match file.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(_) => return None,
        }
    }
    (!looks_like_a_log(&head[..n])).then(|| {
        "not a log: neither gzip nor JSON (CloudTrail delivers gzip-compressed JSON); name the file to read it anyway".to_owned()
    })
}

/// Expand command-line paths: `-` is standard input, a directory is every
/// file under it (recursively, sorted, hidden files skipped). Paths that do
/// not exist are returned as unreadable with their reason, directories with
/// no file under them as empty.
pub fn expand_inputs(paths: &[PathBuf]) -> Expanded {
    let mut out = Expanded::default();
    for path in paths {
        if path.as_os_str() == "-" {
            out.inputs.push(Input::Stdin);
            continue;
        }
        match std::fs::metadata(path) {
            Ok(m) if m.is_dir() => {
                let mut files = Vec::new();
                if let Err(e) = walk(path, &mut files) {
                    out.unreadable
                        .push((path.display().to_string(), format!("cannot list: {e}")));
                } else if files.is_empty() {
                    out.empty_dirs.push(path.display().to_string());
                }
                files.sort();
                for file in files {
                    match not_a_log(&file) {
                        Some(reason) => out.not_logs.push((file.display().to_string(), reason)),
                        None => out.inputs.push(Input::File(file)),
                    }
                }
            }
            Ok(_) => out.inputs.push(Input::File(path.clone())),
            Err(e) => out
                .unreadable
                .push((path.display().to_string(), format!("cannot read: {e}"))),
        }
    }
    out
}

pub(crate) fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            walk(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}
