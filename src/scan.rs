//! `trailwarden scan`: inputs in, findings out, with a summary of everything
//! read, skipped and rejected.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};

use trailwarden_cloudtrail::{
    read_object, read_object_pipelined, ObjectSummary, ReadFailure, ReaderOptions, Record,
    RecordReject, RecordSink,
};
use trailwarden_engine::{
    Engine, Finding, FindingStore, Ledger, Level, MemoryStore, ObjectRef, Policy, Session,
    StateStore, StoreError,
};

use crate::store::{LedgerEntry, SqliteStore};

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
                out.inputs.extend(files.into_iter().map(Input::File));
            }
            Ok(_) => out.inputs.push(Input::File(path.clone())),
            Err(e) => out
                .unreadable
                .push((path.display().to_string(), format!("cannot read: {e}"))),
        }
    }
    out
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
    /// Objects not read again because the ledger says they were processed
    /// (by the same rules and policy).
    pub already_done: u64,
    /// Objects the ledger says were processed, but by other rules or
    /// another policy, read again.
    pub reread: u64,
    /// Objects skipped, with the reason (digest files).
    pub skipped: Vec<(String, String)>,
    /// Inputs that could not be opened or not be read as CloudTrail (not
    /// JSON, empty, truncated, over the size cap, no record readable), with
    /// the reason.
    pub unreadable: Vec<(String, String)>,
    /// Objects read whose findings or state could not be stored, with the
    /// error (they are read again next time).
    pub not_stored: Vec<(String, String)>,
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
    /// Inputs that could not be opened (also listed in `unreadable`).
    pub unopened: u64,
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
pub trait Stores: StateStore + Ledger + FindingStore {
    /// Store a batch of findings, in one transaction where the store has
    /// them. Each is counted as [`FindingStore::put_finding`] would; its
    /// JSON text (the same text the output writes) is the stored body.
    fn put_findings(&mut self, findings: &[Encoded]) -> Result<(), StoreError>;

    /// What the ledger says of `object` for a scan whose rules and policy
    /// have `fingerprint`. By default the fingerprint is not kept: an
    /// object processed is done whatever the rules.
    fn ledger_entry(
        &mut self,
        object: &ObjectRef,
        fingerprint: &str,
    ) -> Result<LedgerEntry, StoreError> {
        let _ = fingerprint;
        Ok(if self.is_done(object)? {
            LedgerEntry::Done
        } else {
            LedgerEntry::New
        })
    }

    /// Mark `object` done, read by rules and policy with `fingerprint`.
    fn mark_done_with(
        &mut self,
        object: &ObjectRef,
        records: u64,
        fingerprint: Option<&str>,
    ) -> Result<(), StoreError> {
        let _ = fingerprint;
        self.mark_done(object, records)
    }
}

impl Stores for SqliteStore {
    fn put_findings(&mut self, findings: &[Encoded]) -> Result<(), StoreError> {
        SqliteStore::put_encoded(self, findings.iter().map(|e| (&e.finding, e.json.as_str())))
            .map(|_| ())
    }

    fn ledger_entry(
        &mut self,
        object: &ObjectRef,
        fingerprint: &str,
    ) -> Result<LedgerEntry, StoreError> {
        SqliteStore::ledger_entry(self, object, fingerprint)
    }

    fn mark_done_with(
        &mut self,
        object: &ObjectRef,
        records: u64,
        fingerprint: Option<&str>,
    ) -> Result<(), StoreError> {
        SqliteStore::mark_done_with(self, object, records, fingerprint)
    }
}

impl Stores for MemoryStore {
    fn put_findings(&mut self, findings: &[Encoded]) -> Result<(), StoreError> {
        findings
            .iter()
            .try_for_each(|e| self.put_finding(&e.finding).map(|_| ()))
    }
}

/// A finding and its JSON text, written once: the store keeps the text as
/// the finding's body and `jsonl` output writes the same text.
#[derive(Debug, Clone)]
pub struct Encoded {
    /// The finding.
    pub finding: Finding,
    /// `serde_json::to_string(&finding)`.
    pub json: String,
}

impl Encoded {
    /// Encode `finding`.
    pub fn new(finding: Finding) -> Self {
        let json = serde_json::to_string(&finding).expect("a finding serialises");
        Encoded { finding, json }
    }
}

/// Findings a reading hands to the storing side at once (at every flush
/// point too: before a session's state, before the ledger marks an object
/// done).
pub const FINDINGS_BATCH: usize = 512;

/// Findings held (with their JSON text, about 2.5 KB each) before they are
/// stored in one transaction and then written out: with a rule matching
/// most records, fewer, larger transactions write the random id index's
/// pages to the log fewer times (4096 rather than 1024: 10% less time in
/// the command with the SigmaHQ rules). Memory for findings is bounded by
/// this and [`OBJECT_QUEUE`].
const STORE_BATCH: usize = 4096;

/// Messages one object's reading may queue for the storing thread before
/// the reader waits (each holds at most [`FINDINGS_BATCH`] findings).
const OBJECT_QUEUE: usize = 3;

/// The key a finding id is de-duplicated by: its 128 bits (`tw-` and 32
/// hexadecimal digits), so a long scan keeps 16 bytes per finding, not the
/// finding. Any other id is hashed.
fn id_key(id: &str) -> u128 {
    let hex = id.strip_prefix("tw-").unwrap_or(id);
    match u128::from_str_radix(hex, 16) {
        Ok(n) if hex.len() == 32 => n,
        _ => {
            use std::hash::{Hash, Hasher};
            let half = |salt: u8| {
                let mut h = std::collections::hash_map::DefaultHasher::new();
                (salt, id).hash(&mut h);
                u128::from(h.finish())
            };
            half(0) << 64 | half(1)
        }
    }
}

/// What happens to a finding once made: filtered by level and policy,
/// de-duplicated, held, then stored in a batch and emitted.
struct Outlet<'s, F> {
    min_level: Level,
    policy: &'s Policy,
    seen: &'s mut HashSet<u128>,
    stats: &'s mut ScanStats,
    emit: &'s mut F,
    /// Findings to store at the next batch or flush point.
    held: Vec<Encoded>,
}

impl<F: FnMut(Encoded)> Outlet<'_, F> {
    /// Filter a finding and hold it for the next batch.
    fn take(&mut self, encoded: Encoded) {
        let finding = &encoded.finding;
        if finding.level < self.min_level {
            self.stats.below_level += 1;
            return;
        }
        let t = trailwarden_cloudtrail::parse_event_time(&finding.event_time);
        if let Some(reason) = self.policy.suppressed(finding, t) {
            *self.stats.suppressed.entry(reason.to_owned()).or_default() += 1;
            return;
        }
        if !self.seen.insert(id_key(&finding.id)) {
            self.stats.duplicates += 1;
            return;
        }
        self.held.push(encoded);
    }

    /// Take single-event findings, storing them once a batch is full.
    fn take_all(&mut self, store: &mut dyn Stores, found: Vec<Encoded>) -> Result<(), StoreError> {
        for f in found {
            self.take(f);
        }
        if self.held.len() >= STORE_BATCH {
            self.store(store)
        } else {
            Ok(())
        }
    }

    /// Store the held findings in one batch, then report them. A store
    /// error is returned (the object then fails and is read again next
    /// time); the findings are reported either way.
    fn store(&mut self, store: &mut dyn Stores) -> Result<(), StoreError> {
        if self.held.is_empty() {
            return Ok(());
        }
        // Stored before they are reported.
        let stored = store.put_findings(&self.held);
        for encoded in self.held.drain(..) {
            self.stats.findings[encoded.finding.level as usize] += 1;
            (self.emit)(encoded);
        }
        stored
    }

    /// Store the held findings, then write a session's state, each round's
    /// findings stored first (the outbox order of `Session::flush_with`).
    fn flush(
        &mut self,
        session: &mut Session<'_>,
        store: &mut dyn Stores,
    ) -> Result<(), StoreError> {
        self.store(store)?;
        session.flush_with(store, &mut |store, found| {
            for f in found {
                self.take(Encoded::new(f));
            }
            self.store(store)
        })
    }
}

/// Where the reading of an object hands what it made.
trait Handoff<'e> {
    /// Single-event findings, in record order (encoded where they were
    /// made: on a reading thread, not the storing one).
    fn findings(&mut self, found: Vec<Encoded>);
    /// Write the session's state now (a very large object); `false` when
    /// the store failed, which stops flushes until the end of the object.
    fn flush(&mut self, session: &mut Session<'e>) -> bool;
}

/// An object read to its end (or to a fault): what remains to store.
struct ObjectRead<'e> {
    result: Result<ObjectSummary, ReadFailure>,
    /// State gathered since the last flush.
    session: Session<'e>,
    /// Single-event findings not yet handed off.
    found: Vec<Encoded>,
    /// The first rejects (all of them are counted in the summary).
    rejects: Vec<RecordReject>,
}

/// The reader's sink: records into a session, findings handed off in
/// batches, the session handed off to be flushed when it is large.
struct Reading<'a, 'e, H> {
    session: Session<'e>,
    found: Vec<Encoded>,
    rejects: Vec<RecordReject>,
    handoff: &'a mut H,
    flushing: bool,
}

impl<'e, H: Handoff<'e>> RecordSink for Reading<'_, 'e, H> {
    fn record(&mut self, _index: u64, record: &Record<'_>) {
        let found = &mut self.found;
        self.session
            .record(record, &mut |f| found.push(Encoded::new(f)));
        if self.found.len() >= FINDINGS_BATCH {
            self.handoff.findings(std::mem::take(&mut self.found));
        }
        // A very large object: write what was gathered so memory stays
        // bounded; its findings so far are stored first.
        if self.flushing && self.session.should_flush() {
            if !self.found.is_empty() {
                self.handoff.findings(std::mem::take(&mut self.found));
            }
            self.flushing = self.handoff.flush(&mut self.session);
        }
    }

    fn reject(&mut self, reject: RecordReject) {
        if self.rejects.len() < REJECT_SAMPLES {
            self.rejects.push(reject);
        }
    }
}

/// Read one object into a new session (named by `object` for batch
/// idempotency), handing findings and large sessions to `handoff`;
/// `pipelined`: gzip inflated on a thread of its own (a core to spare).
fn read_one<'e, R: Read + Send, H: Handoff<'e>>(
    engine: &'e Engine,
    options: &ReaderOptions,
    object: Option<&ObjectRef>,
    input: R,
    handoff: &mut H,
    pipelined: bool,
) -> ObjectRead<'e> {
    let mut session = Session::new(engine);
    if let Some(o) = object {
        session.set_source(&format!("{}@{}", o.id, o.version));
    }
    let mut sink = Reading {
        session,
        found: Vec::new(),
        rejects: Vec::new(),
        handoff,
        flushing: true,
    };
    let result = if pipelined {
        read_object_pipelined(input, options, &mut sink)
    } else {
        read_object(input, options, &mut sink)
    };
    ObjectRead {
        result,
        session: sink.session,
        found: sink.found,
        rejects: sink.rejects,
    }
}

/// Open an input for reading.
fn open(input: &Input) -> Result<Box<dyn Read + Send>, String> {
    match input {
        Input::Stdin => Ok(Box::new(std::io::stdin())),
        Input::File(path) => std::fs::File::open(path)
            .map(|f| Box::new(f) as Box<dyn Read + Send>)
            .map_err(|e| format!("cannot open: {e}")),
    }
}

/// The storing side of a scan, on one thread: findings filtered,
/// de-duplicated, stored and emitted; sessions flushed; objects marked done
/// in the ledger, one object after the other in input order.
struct Storing<'s, F> {
    outlet: Outlet<'s, F>,
    store: &'s mut dyn Stores,
    rescan: bool,
    /// The rule set's and policy's fingerprint, kept in the ledger.
    fingerprint: Option<&'s str>,
    /// The first store error of the current object.
    store_error: Option<StoreError>,
}

impl<'e, F: FnMut(Encoded)> Handoff<'e> for Storing<'_, F> {
    fn findings(&mut self, found: Vec<Encoded>) {
        if let Err(e) = self.outlet.take_all(&mut *self.store, found) {
            self.store_error.get_or_insert(e);
        }
    }

    fn flush(&mut self, session: &mut Session<'e>) -> bool {
        if self.store_error.is_some() {
            return false;
        }
        match self.outlet.flush(session, &mut *self.store) {
            Ok(()) => true,
            Err(e) => {
                self.store_error = Some(e);
                false
            }
        }
    }
}

impl<F: FnMut(Encoded)> Storing<'_, F> {
    /// What the ledger says of this object ([`LedgerEntry::New`] with
    /// `--rescan`).
    fn ledger(&mut self, object: Option<&ObjectRef>) -> Result<LedgerEntry, StoreError> {
        match (object, self.fingerprint) {
            (Some(o), Some(fp)) if !self.rescan => self.store.ledger_entry(o, fp),
            (Some(o), None) if !self.rescan => Ok(if self.store.is_done(o)? {
                LedgerEntry::Done
            } else {
                LedgerEntry::New
            }),
            _ => Ok(LedgerEntry::New),
        }
    }

    /// Whether the object is to be skipped as already processed (counted),
    /// or read (counted as read again when the ledger names other rules).
    fn skip(&mut self, object: Option<&ObjectRef>) -> Result<bool, StoreError> {
        match self.ledger(object)? {
            LedgerEntry::Done => {
                self.outlet.stats.already_done += 1;
                Ok(true)
            }
            LedgerEntry::DoneWithOtherRules => {
                self.outlet.stats.reread += 1;
                Ok(false)
            }
            LedgerEntry::New => Ok(false),
        }
    }

    /// Store what remains of an object read: its findings, then its state;
    /// when all of it succeeded, mark it done in the ledger. Errors are
    /// recorded in the stats and returned.
    fn finish(
        &mut self,
        name: &str,
        object: Option<&ObjectRef>,
        read: ObjectRead<'_>,
    ) -> Result<(), ObjectFailure> {
        let ObjectRead {
            result,
            mut session,
            found,
            rejects,
        } = read;
        Handoff::findings(self, found);
        // The records before a fault were evaluated: their state counts too.
        let flush_error = self.outlet.flush(&mut session, &mut *self.store).err();
        let stats = &mut *self.outlet.stats;
        let summary = match &result {
            Ok(summary) => summary,
            Err(failure) => &failure.summary,
        };
        stats.records += summary.records;
        stats.rejected += summary.rejected;
        stats.bytes += summary.bytes;
        let room = REJECT_SAMPLES.saturating_sub(stats.reject_samples.len());
        stats
            .reject_samples
            .extend(rejects.into_iter().take(room).map(|reject| Rejected {
                object: name.to_owned(),
                reject,
            }));
        let failure = match (result, self.store_error.take().or(flush_error)) {
            (Err(read), _) => Some(ObjectFailure::Read(read)),
            (Ok(_), Some(store)) => Some(ObjectFailure::Store(store)),
            // Values in record positions, none of them a record: not CloudTrail.
            (Ok(summary), None) if summary.records == 0 && summary.rejected > 0 => {
                Some(ObjectFailure::NoRecord(summary.rejected))
            }
            (Ok(summary), None) => match object.map(|o| {
                self.store
                    .mark_done_with(o, summary.records, self.fingerprint)
            }) {
                Some(Err(e)) => Some(ObjectFailure::Store(e)),
                _ => {
                    stats.objects += 1;
                    if let Some(reason) = summary.skipped {
                        stats.skipped.push((name.to_owned(), reason));
                    }
                    None
                }
            },
        };
        match failure {
            None => Ok(()),
            Some(f) => {
                self.fail(name, &f);
                Err(f)
            }
        }
    }

    /// Count a failure in the stats.
    fn fail(&mut self, name: &str, failure: &ObjectFailure) {
        let stats = &mut *self.outlet.stats;
        let entry = (name.to_owned(), failure.to_string());
        match failure {
            ObjectFailure::Store(_) => stats.not_stored.push(entry),
            ObjectFailure::Unopened(_) => {
                stats.unopened += 1;
                stats.unreadable.push(entry);
            }
            ObjectFailure::Read(_) | ObjectFailure::NoRecord(_) => stats.unreadable.push(entry),
        }
    }

    /// An input that could not be opened.
    fn unopened(&mut self, name: &str, reason: String) -> ObjectFailure {
        let failure = ObjectFailure::Unopened(reason);
        self.fail(name, &failure);
        failure
    }
}

/// Why an object was not fully processed.
#[derive(Debug, thiserror::Error)]
pub enum ObjectFailure {
    /// The input could not be opened.
    #[error("{0}")]
    Unopened(String),
    /// The object could not be read to the end.
    #[error(transparent)]
    Read(#[from] ReadFailure),
    /// The object was read to its end, but nothing in it was a record.
    #[error(
        "no CloudTrail record could be read: all {0} value(s) in record position were rejected"
    )]
    NoRecord(u64),
    /// State or findings could not be written.
    #[error("store: {0}; the object is not marked done and will be read again next time")]
    Store(#[from] StoreError),
}

/// What a reading thread sends the storing thread about one object.
enum Message<'e> {
    /// Single-event findings, in record order.
    Findings(Vec<Encoded>),
    /// A session to flush now (a very large object), given back on the
    /// channel with whether the flush succeeded.
    Flush(Session<'e>, SyncSender<(Session<'e>, bool)>),
    /// The object was read.
    End(ObjectRead<'e>),
    /// The input could not be opened.
    Unopened(String),
}

/// A reading thread's side of [`Handoff`]: everything goes over the
/// object's bounded channel to the storing thread.
struct Sender<'e> {
    engine: &'e Engine,
    tx: SyncSender<Message<'e>>,
}

impl<'e> Handoff<'e> for Sender<'e> {
    fn findings(&mut self, found: Vec<Encoded>) {
        // The storing thread gone (it stopped early): nothing to do.
        let _ = self.tx.send(Message::Findings(found));
    }

    fn flush(&mut self, session: &mut Session<'e>) -> bool {
        let (reply, back) = mpsc::sync_channel(1);
        let taken = std::mem::replace(session, Session::new(self.engine));
        if self.tx.send(Message::Flush(taken, reply)).is_err() {
            return false;
        }
        match back.recv() {
            Ok((returned, ok)) => {
                *session = returned;
                ok
            }
            Err(_) => false,
        }
    }
}

/// One object for a reading thread.
struct Job<'e> {
    input: Input,
    object: Option<ObjectRef>,
    tx: SyncSender<Message<'e>>,
}

/// An object in the storing thread's queue, in input order.
enum Queued<'e> {
    /// The ledger says it was processed.
    AlreadyDone,
    /// Being read; its messages arrive here.
    Reading(Option<ObjectRef>, Receiver<Message<'e>>),
}

/// Runs the engine over objects and reports findings.
pub struct Scanner<'e> {
    engine: &'e Engine,
    reader: ReaderOptions,
    min_level: Level,
    policy: Policy,
    store: &'e mut dyn Stores,
    rescan: bool,
    fingerprint: Option<String>,
    threads: usize,
    seen: HashSet<u128>,
    /// Counts so far.
    pub stats: ScanStats,
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
            fingerprint: None,
            threads: 1,
            seen: HashSet::new(),
            stats: ScanStats::default(),
        }
    }

    /// Read objects again even when the ledger says they were processed.
    pub fn rescan(mut self, rescan: bool) -> Self {
        self.rescan = rescan;
        self
    }

    /// Keep `fingerprint` (of the rules and policy) with each object marked
    /// done; an object done with another fingerprint is read again.
    pub fn fingerprint(mut self, fingerprint: String) -> Self {
        self.fingerprint = Some(fingerprint);
        self
    }

    /// Read and evaluate up to `threads` objects at once (at least 1).
    /// Findings, counts and stored state are the same whatever the number:
    /// one thread stores everything in input order.
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = threads.max(1);
        self
    }

    fn storing<'s, F>(&'s mut self, emit: &'s mut F) -> Storing<'s, F> {
        Storing {
            outlet: Outlet {
                min_level: self.min_level,
                policy: &self.policy,
                seen: &mut self.seen,
                stats: &mut self.stats,
                emit,
                held: Vec::new(),
            },
            store: &mut *self.store,
            rescan: self.rescan,
            fingerprint: self.fingerprint.as_deref(),
            store_error: None,
        }
    }

    /// Scan `inputs` in order, calling `emit` for each new finding (after it
    /// is stored) and `done` after each object read, with its failure if it
    /// failed (the failure is also in the stats). Objects the ledger says
    /// were processed are counted and skipped. A store error reading the
    /// ledger stops the scan.
    pub fn scan(
        &mut self,
        inputs: &[Input],
        emit: &mut impl FnMut(Encoded),
        done: &mut dyn FnMut(&Input, Option<&ObjectFailure>),
    ) -> Result<(), StoreError> {
        if self.threads <= 1 {
            self.scan_here(inputs, emit, done)
        } else {
            self.scan_parallel(inputs, emit, done)
        }
    }

    /// Every object read and stored on this thread.
    fn scan_here(
        &mut self,
        inputs: &[Input],
        emit: &mut impl FnMut(Encoded),
        done: &mut dyn FnMut(&Input, Option<&ObjectFailure>),
    ) -> Result<(), StoreError> {
        let (engine, options) = (self.engine, self.reader.clone());
        let mut storing = self.storing(emit);
        for input in inputs {
            let object = match input {
                Input::File(path) => file_ref(path),
                Input::Stdin => None,
            };
            if storing.skip(object.as_ref())? {
                continue;
            }
            let name = input.name();
            let reader = match open(input) {
                Ok(reader) => reader,
                Err(reason) => {
                    let failure = storing.unopened(&name, reason);
                    done(input, Some(&failure));
                    continue;
                }
            };
            let read = read_one(
                engine,
                &options,
                object.as_ref(),
                reader,
                &mut storing,
                false,
            );
            let result = storing.finish(&name, object.as_ref(), read);
            done(input, result.as_ref().err());
        }
        Ok(())
    }

    /// Objects read and evaluated by `threads` reading threads, each with
    /// its own session; this thread takes their findings and sessions one
    /// object after the other in input order, and stores them exactly as
    /// [`Scanner::scan_here`] does. At most two objects per reading thread
    /// are in flight, each with a bounded queue.
    fn scan_parallel(
        &mut self,
        inputs: &[Input],
        emit: &mut impl FnMut(Encoded),
        done: &mut dyn FnMut(&Input, Option<&ObjectFailure>),
    ) -> Result<(), StoreError> {
        let (engine, options, threads) = (self.engine, self.reader.clone(), self.threads);
        let lookahead = threads * 2;
        // A core to spare for inflating each input.
        let pipelined = inputs.len() * 2 <= threads;
        let mut storing = self.storing(emit);
        std::thread::scope(|scope| {
            let (jobs, queue) = mpsc::channel::<Job<'_>>();
            let queue = Arc::new(Mutex::new(queue));
            for _ in 0..threads {
                let queue = Arc::clone(&queue);
                let options = &options;
                scope.spawn(move || loop {
                    let job = match queue.lock() {
                        Ok(q) => q.recv(),
                        Err(_) => return,
                    };
                    let Ok(job) = job else { return };
                    let reader = match open(&job.input) {
                        Ok(reader) => reader,
                        Err(reason) => {
                            let _ = job.tx.send(Message::Unopened(reason));
                            continue;
                        }
                    };
                    let mut sender = Sender { engine, tx: job.tx };
                    let read = read_one(
                        engine,
                        options,
                        job.object.as_ref(),
                        reader,
                        &mut sender,
                        pipelined,
                    );
                    let _ = sender.tx.send(Message::End(read));
                });
            }
            let mut pending: VecDeque<(&Input, Queued<'_>)> = VecDeque::new();
            let mut next = inputs.iter();
            loop {
                while pending.len() < lookahead {
                    let Some(input) = next.next() else { break };
                    let object = match input {
                        Input::File(path) => file_ref(path),
                        Input::Stdin => None,
                    };
                    if storing.ledger(object.as_ref())? == LedgerEntry::Done {
                        pending.push_back((input, Queued::AlreadyDone));
                        continue;
                    }
                    let (tx, rx) = mpsc::sync_channel(OBJECT_QUEUE);
                    jobs.send(Job {
                        input: input.clone(),
                        object: object.clone(),
                        tx,
                    })
                    .expect("reading threads run until the job queue closes");
                    pending.push_back((input, Queued::Reading(object, rx)));
                }
                let Some((input, queued)) = pending.pop_front() else {
                    break;
                };
                let (object, rx) = match queued {
                    Queued::AlreadyDone => {
                        storing.outlet.stats.already_done += 1;
                        continue;
                    }
                    Queued::Reading(object, rx) => (object, rx),
                };
                // An earlier input of this scan (the same file named twice)
                // may have been marked done since this one was queued.
                if storing.skip(object.as_ref())? {
                    drain(rx);
                    continue;
                }
                let name = input.name();
                for message in rx {
                    match message {
                        Message::Findings(found) => Handoff::findings(&mut storing, found),
                        Message::Flush(mut session, reply) => {
                            let ok = Handoff::flush(&mut storing, &mut session);
                            let _ = reply.send((session, ok));
                        }
                        Message::Unopened(reason) => {
                            let failure = storing.unopened(&name, reason);
                            done(input, Some(&failure));
                            break;
                        }
                        Message::End(read) => {
                            let result = storing.finish(&name, object.as_ref(), read);
                            done(input, result.as_ref().err());
                            break;
                        }
                    }
                }
            }
            // Closing the job queue ends the reading threads.
            drop(jobs);
            Ok(())
        })
    }
}

/// Let an object's reading finish without storing anything of it (its
/// sessions are handed back unflushed).
fn drain(rx: Receiver<Message<'_>>) {
    for message in rx {
        match message {
            Message::Flush(session, reply) => {
                let _ = reply.send((session, false));
            }
            Message::End(_) | Message::Unopened(_) => break,
            Message::Findings(_) => {}
        }
    }
}

/// The fingerprint of what decides a scan's findings: each part (the text
/// of every rule file loaded, the policy file, the minimum level) named by
/// its kind, length-prefixed, in order, under SHA-256; 32 hexadecimal
/// digits. Kept with each ledger entry: a file read before by other rules
/// or another policy is read again.
pub fn fingerprint<'a>(parts: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> String {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    hash.update(b"trailwarden ledger fingerprint 1\n");
    for (kind, bytes) in parts {
        hash.update((kind.len() as u64).to_le_bytes());
        hash.update(kind.as_bytes());
        hash.update((bytes.len() as u64).to_le_bytes());
        hash.update(bytes);
    }
    hex::encode(&hash.finalize()[..16])
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
