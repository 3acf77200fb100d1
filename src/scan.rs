//! `trailwarden scan`: inputs in, findings out, with a summary of everything
//! read, skipped and rejected.

use std::collections::{BTreeMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use trailwarden_cloudtrail::{
    read_object, ObjectSummary, ReadFailure, ReaderOptions, Record, RecordReject, RecordSink,
};
use trailwarden_engine::{
    Engine, Finding, FindingStore, Ledger, Level, ObjectRef, Policy, Session, StateStore,
    StoreError,
};

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
    /// Objects not read again because the ledger says they were processed.
    pub already_done: u64,
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
    /// Findings suppressed by the policy, per reason.
    pub suppressed: BTreeMap<String, u64>,
    /// Findings below `--min-level`.
    pub below_level: u64,
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

/// Everything a scan keeps: correlation state, the ledger, findings.
pub trait Stores: StateStore + Ledger + FindingStore {}
impl<T: StateStore + Ledger + FindingStore> Stores for T {}

/// What happens to a finding once made: filtered by level and policy,
/// de-duplicated, stored, then emitted.
struct Outlet<'s, F> {
    min_level: Level,
    policy: &'s Policy,
    seen: &'s mut HashSet<String>,
    stats: &'s mut ScanStats,
    emit: &'s mut F,
}

impl<F: FnMut(Finding)> Outlet<'_, F> {
    /// Store the finding, then report it. A store error is returned (the
    /// object then fails and is read again next time); the finding is
    /// reported either way.
    fn take(&mut self, store: &mut dyn Stores, finding: Finding) -> Result<(), StoreError> {
        if finding.level < self.min_level {
            self.stats.below_level += 1;
            return Ok(());
        }
        let t = trailwarden_cloudtrail::parse_event_time(&finding.event_time);
        if let Some(reason) = self.policy.suppressed(&finding, t) {
            *self.stats.suppressed.entry(reason.to_owned()).or_default() += 1;
            return Ok(());
        }
        if !self.seen.insert(finding.id.clone()) {
            self.stats.duplicates += 1;
            return Ok(());
        }
        // Stored before it is reported.
        let stored = store.put_finding(&finding);
        self.stats.findings[finding.level as usize] += 1;
        (self.emit)(finding);
        stored.map(|_| ())
    }

    /// Write a session's state, its findings stored first (the outbox order
    /// of `Session::flush_with`).
    fn flush(
        &mut self,
        session: &mut Session<'_>,
        store: &mut dyn Stores,
    ) -> Result<(), StoreError> {
        session.flush_with(store, &mut |store, found| {
            found.into_iter().try_for_each(|f| self.take(store, f))
        })
    }
}

/// Runs the engine over objects and reports findings.
pub struct Scanner<'e> {
    engine: &'e Engine,
    reader: ReaderOptions,
    min_level: Level,
    policy: Policy,
    store: &'e mut dyn Stores,
    rescan: bool,
    seen: HashSet<String>,
    /// Counts so far.
    pub stats: ScanStats,
}

struct Sink<'a, 'o, 'e, F> {
    session: &'a mut Session<'e>,
    outlet: &'a mut Outlet<'o, F>,
    store: &'a mut dyn Stores,
    store_error: &'a mut Option<StoreError>,
    object: &'a str,
}

impl<F: FnMut(Finding)> RecordSink for Sink<'_, '_, '_, F> {
    fn record(&mut self, _index: u64, record: &Record<'_>) {
        let (outlet, store, store_error) =
            (&mut *self.outlet, &mut *self.store, &mut *self.store_error);
        self.session.record(record, &mut |f| {
            if let Err(e) = outlet.take(store, f) {
                store_error.get_or_insert(e);
            }
        });
        // A very large object: write what was gathered so memory stays bounded.
        if self.session.should_flush() && store_error.is_none() {
            if let Err(e) = outlet.flush(self.session, store) {
                *store_error = Some(e);
            }
        }
    }

    fn reject(&mut self, reject: RecordReject) {
        let stats = &mut *self.outlet.stats;
        if stats.reject_samples.len() < REJECT_SAMPLES {
            stats.reject_samples.push(Rejected {
                object: self.object.to_owned(),
                reject,
            });
        }
    }
}

/// Why an object was not fully processed.
#[derive(Debug, thiserror::Error)]
pub enum ObjectFailure {
    /// The object could not be read to the end.
    #[error(transparent)]
    Read(#[from] ReadFailure),
    /// State or findings could not be written.
    #[error("store: {0}; the object is not marked done and will be read again next time")]
    Store(#[from] StoreError),
}

impl<'e> Scanner<'e> {
    /// A scanner reporting findings at or above `min_level`, keeping state in `store`.
    pub fn new(
        engine: &'e Engine,
        reader: ReaderOptions,
        min_level: Level,
        policy: Policy,
        store: &'e mut dyn Stores,
    ) -> Self {
        Scanner {
            engine,
            reader,
            min_level,
            policy,
            store,
            rescan: false,
            seen: HashSet::new(),
            stats: ScanStats::default(),
        }
    }

    /// Read objects again even when the ledger says they were processed.
    pub fn rescan(mut self, rescan: bool) -> Self {
        self.rescan = rescan;
        self
    }

    /// Whether the ledger says this object was processed (and `--rescan` is off).
    pub fn already_done(&mut self, object: &ObjectRef) -> Result<bool, StoreError> {
        Ok(!self.rescan && self.store.is_done(object)?)
    }

    /// Read one object, calling `emit` for each new finding; then write its
    /// state and, when everything succeeded, mark it done in the ledger.
    /// Errors are recorded in the stats and returned.
    pub fn scan_object<R: Read>(
        &mut self,
        name: &str,
        object: Option<&ObjectRef>,
        input: R,
        emit: &mut impl FnMut(Finding),
    ) -> Result<(), ObjectFailure> {
        let options = self.reader.clone();
        let mut session = Session::new(self.engine);
        if let Some(o) = object {
            session.set_source(&format!("{}@{}", o.id, o.version));
        }
        let mut store_error = None;
        let (mut outlet, store) = self.outlet(emit);
        let result = read_object(
            input,
            &options,
            &mut Sink {
                session: &mut session,
                outlet: &mut outlet,
                store: &mut *store,
                store_error: &mut store_error,
                object: name,
            },
        );
        // The records before a fault were evaluated: their state counts too.
        let flush_error = outlet.flush(&mut session, store).err();
        let summary = match &result {
            Ok(summary) => summary.clone(),
            Err(failure) => failure.summary.clone(),
        };
        self.count(&summary);
        let failure = match (result, store_error.or(flush_error)) {
            (Err(read), _) => Some(ObjectFailure::Read(read)),
            (Ok(_), Some(store)) => Some(ObjectFailure::Store(store)),
            (Ok(summary), None) => {
                self.stats.objects += 1;
                if let Some(reason) = summary.skipped {
                    self.stats.skipped.push((name.to_owned(), reason));
                }
                match object.map(|o| self.store.mark_done(o, summary.records)) {
                    Some(Err(e)) => Some(ObjectFailure::Store(e)),
                    _ => None,
                }
            }
        };
        match failure {
            None => Ok(()),
            Some(f) => {
                self.stats.failed.push((name.to_owned(), f.to_string()));
                Err(f)
            }
        }
    }

    fn outlet<'s, F>(&'s mut self, emit: &'s mut F) -> (Outlet<'s, F>, &'s mut dyn Stores) {
        let outlet = Outlet {
            min_level: self.min_level,
            policy: &self.policy,
            seen: &mut self.seen,
            stats: &mut self.stats,
            emit,
        };
        (outlet, &mut *self.store)
    }

    fn count(&mut self, summary: &ObjectSummary) {
        self.stats.records += summary.records;
        self.stats.rejected += summary.rejected;
        self.stats.bytes += summary.bytes;
    }
}

/// The ledger identity of a local file: its canonical path, size and
/// modification time.
pub fn file_ref(path: &Path) -> Option<ObjectRef> {
    let meta = std::fs::metadata(path).ok()?;
    let modified = meta
        .modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?;
    let canonical = std::fs::canonicalize(path).ok()?;
    Some(ObjectRef {
        id: canonical.display().to_string(),
        version: format!(
            "{}:{}.{:09}",
            meta.len(),
            modified.as_secs(),
            modified.subsec_nanos()
        ),
    })
}
