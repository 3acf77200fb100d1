//! `trailwarden scan`: inputs in, findings out, with a summary of everything
//! read, skipped and rejected.

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use trailwarden_cloudtrail::{
    read_object, ObjectSummary, ReadFailure, ReaderOptions, Record, RecordReject, RecordSink,
};
use trailwarden_engine::{Engine, Finding, Level};

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

/// Expand command-line paths: `-` is standard input, a directory is every
/// file under it (recursively, sorted, hidden files skipped). Paths that do
/// not exist are returned as errors with their reason.
pub fn expand_inputs(paths: &[PathBuf]) -> (Vec<Input>, Vec<(String, String)>) {
    let mut inputs = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        if path.as_os_str() == "-" {
            inputs.push(Input::Stdin);
            continue;
        }
        match std::fs::metadata(path) {
            Ok(m) if m.is_dir() => {
                let mut files = Vec::new();
                if let Err(e) = walk(path, &mut files) {
                    errors.push((path.display().to_string(), format!("cannot list: {e}")));
                }
                files.sort();
                inputs.extend(files.into_iter().map(Input::File));
            }
            Ok(_) => inputs.push(Input::File(path.clone())),
            Err(e) => errors.push((path.display().to_string(), format!("cannot read: {e}"))),
        }
    }
    (inputs, errors)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
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

/// A record rejected by the reader, with the object it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// The object (file) name.
    pub object: String,
    /// The reader's reject.
    pub reject: RecordReject,
}

/// Counts over a whole scan.
#[derive(Debug, Default, Clone)]
pub struct ScanStats {
    /// Objects read to the end.
    pub objects: u64,
    /// Objects skipped, with the reason (digest files).
    pub skipped: Vec<(String, String)>,
    /// Objects that could not be read (fully), with the error.
    pub failed: Vec<(String, String)>,
    /// Records evaluated.
    pub records: u64,
    /// Records rejected.
    pub rejected: u64,
    /// The first rejects, for the summary.
    pub reject_samples: Vec<Rejected>,
    /// Decompressed bytes read.
    pub bytes: u64,
    /// Findings per level, least severe first.
    pub findings: [u64; 5],
    /// Findings dropped because the same finding was already reported.
    pub duplicates: u64,
}

/// How many rejects the summary lists one by one.
pub const REJECT_SAMPLES: usize = 20;

impl ScanStats {
    /// Total findings reported.
    pub fn total_findings(&self) -> u64 {
        self.findings.iter().sum()
    }

    /// The most severe level reported, if any finding was.
    pub fn max_level(&self) -> Option<Level> {
        Level::ALL
            .into_iter()
            .zip(self.findings)
            .filter(|(_, n)| *n > 0)
            .map(|(l, _)| l)
            .next_back()
    }
}

/// Runs the engine over objects and reports findings.
pub struct Scanner<'e> {
    engine: &'e Engine,
    reader: ReaderOptions,
    min_level: Level,
    seen: HashSet<String>,
    /// Counts so far.
    pub stats: ScanStats,
}

struct Sink<'s, 'e, F> {
    scanner: &'s mut Scanner<'e>,
    object: &'s str,
    emit: &'s mut F,
}

impl<F: FnMut(Finding)> RecordSink for Sink<'_, '_, F> {
    fn record(&mut self, _index: u64, record: &Record<'_>) {
        let scanner = &mut *self.scanner;
        let emit = &mut *self.emit;
        scanner.engine.evaluate(record, |rule| {
            if rule.level < scanner.min_level {
                return;
            }
            let finding = Finding::from_record(rule, record);
            if !scanner.seen.insert(finding.id.clone()) {
                scanner.stats.duplicates += 1;
                return;
            }
            scanner.stats.findings[finding.level as usize] += 1;
            emit(finding);
        });
    }

    fn reject(&mut self, reject: RecordReject) {
        let stats = &mut self.scanner.stats;
        if stats.reject_samples.len() < REJECT_SAMPLES {
            stats.reject_samples.push(Rejected {
                object: self.object.to_owned(),
                reject,
            });
        }
    }
}

impl<'e> Scanner<'e> {
    /// A scanner reporting findings at or above `min_level`.
    pub fn new(engine: &'e Engine, reader: ReaderOptions, min_level: Level) -> Self {
        Scanner {
            engine,
            reader,
            min_level,
            seen: HashSet::new(),
            stats: ScanStats::default(),
        }
    }

    /// Read one object, calling `emit` for each new finding. Errors are
    /// recorded in the stats and returned.
    pub fn scan_object<R: Read>(
        &mut self,
        name: &str,
        input: R,
        emit: &mut impl FnMut(Finding),
    ) -> Result<(), ReadFailure> {
        let options = self.reader.clone();
        let mut sink = Sink {
            scanner: self,
            object: name,
            emit,
        };
        let result = read_object(input, &options, &mut sink);
        match result {
            Ok(summary) => {
                self.stats.objects += 1;
                self.count(&summary);
                if let Some(reason) = summary.skipped {
                    self.stats.skipped.push((name.to_owned(), reason));
                }
                Ok(())
            }
            Err(failure) => {
                // The records before the fault were evaluated; count them.
                self.count(&failure.summary);
                self.stats
                    .failed
                    .push((name.to_owned(), failure.error.to_string()));
                Err(failure)
            }
        }
    }

    fn count(&mut self, summary: &ObjectSummary) {
        self.stats.records += summary.records;
        self.stats.rejected += summary.rejected;
        self.stats.bytes += summary.bytes;
    }
}
