//! `trailwarden scan`: inputs in, findings out, with a summary of everything
//! read, skipped and rejected.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};

use trailwarden_cloudtrail::{
    read_object, read_object_pipelined, Layout, ObjectSummary, ReadFailure, ReaderOptions, Record,
    RecordReject, RecordSink,
};
use trailwarden_engine::{
    Engine, Finding, FindingStore, Ledger, Level, MemoryStore, ObjectRef, Policy, Session,
    StateStore, StoreError,
};

use crate::store::{LedgerEntry, SqliteStore};

mod inputs;
pub use inputs::*;
mod scanner;
pub use scanner::*;

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
    /// them. Each is counted as [`FindingStore::put_finding`] would; the
    /// stored body is cut from its JSON text (the text the output writes)
    /// where the store can, not serialised again.
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
        SqliteStore::put_finding_batch(
            self,
            findings.iter().map(|e| (&e.finding, Some(e.json.as_str()))),
        )
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

/// A finding and its JSON text, written once: `jsonl` output writes the
/// text, and the store cuts its row's body from it.
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
/// the reader waits (each holds at most [`FINDINGS_BATCH`] findings, or one
/// batch of state: see [`Sender`]'s flush).
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
        let t = trailwarden_cloudtrail::parse_event_time(finding.latest_event_time());
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
    /// Write the batch of state gathered so far (a very large object),
    /// taken from `session` with [`Session::take_batch`], which goes on
    /// with the next batch whether or not the write succeeds. So an
    /// object's batches (and their numbers, which make a batch merged twice
    /// count once) are the same on every read of it, whatever failed
    /// before: a store error fails the object, and reading it again writes
    /// the batches that were not written, and only those.
    fn flush(&mut self, session: &mut Session<'e>);
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
}

impl<'e, H: Handoff<'e>> Reading<'_, 'e, H> {
    /// Hand off full batches of findings, and the session when it is large.
    fn after_record(&mut self) {
        if self.found.len() >= FINDINGS_BATCH {
            self.handoff.findings(std::mem::take(&mut self.found));
        }
        // A very large object: write what was gathered so memory stays
        // bounded; its findings so far are stored first.
        if self.session.should_flush() {
            if !self.found.is_empty() {
                self.handoff.findings(std::mem::take(&mut self.found));
            }
            self.handoff.flush(&mut self.session);
        }
    }

    /// The object's record at `index` comes next: the folded findings of
    /// the stretch before it, if it starts another, are handed off at once
    /// (see `Session::next_record`).
    fn next_record(&mut self, index: u64) {
        let found = &mut self.found;
        let before = found.len();
        self.session
            .next_record(index, &mut |f| found.push(Encoded::new(f)));
        if self.found.len() > before {
            self.handoff.findings(std::mem::take(&mut self.found));
        }
    }

    /// Records read on another thread had event times from `t` on (see
    /// `Session::saw`).
    fn saw(&mut self, t: i64) {
        self.session.saw(t);
    }

    /// A record evaluated on another thread (see [`Evaluated`]).
    fn evaluated(&mut self, index: u64, record: &Record<'_>, matched: &[usize]) {
        self.next_record(index);
        let found = &mut self.found;
        self.session
            .record_evaluated(record, matched, &mut |f| found.push(Encoded::new(f)));
        self.after_record();
    }
}

impl<'e, H: Handoff<'e>> RecordSink for Reading<'_, 'e, H> {
    fn record(&mut self, index: u64, record: &Record<'_>) {
        self.next_record(index);
        let found = &mut self.found;
        self.session
            .record(record, &mut |f| found.push(Encoded::new(f)));
        self.after_record();
    }

    fn reject(&mut self, reject: RecordReject) {
        keep_sample(&mut self.rejects, reject);
    }
}

/// Keep a reject among the first [`REJECT_SAMPLES`] (all are counted in
/// the object's summary).
fn keep_sample(rejects: &mut Vec<RecordReject>, reject: RecordReject) {
    if rejects.len() < REJECT_SAMPLES {
        rejects.push(reject);
    }
}

/// Read one object into a new session (named by `object` for batch
/// idempotency), handing findings and large sessions to `handoff`.
/// `pipelined` (cores to spare): gzip inflated on a thread of its own, and
/// records framed, parsed and evaluated on another ([`read_split`]).
fn read_one<'e, R: Read + Send, H: Handoff<'e>>(
    engine: &'e Engine,
    options: &ReaderOptions,
    object: Option<&ObjectRef>,
    input: R,
    handoff: &mut H,
    (pipelined, flush_after): (bool, usize),
) -> ObjectRead<'e> {
    let mut session = Session::new(engine);
    session.set_flush_after(flush_after);
    session.fold_repeats(true);
    if let Some(o) = object {
        session.set_source(&format!("{}@{}", o.id, o.version));
    }
    let mut sink = Reading {
        session,
        found: Vec::new(),
        rejects: Vec::new(),
        handoff,
    };
    let result = if pipelined {
        read_split(engine, input, options, &mut sink)
    } else {
        read_object(input, options, &mut sink)
    };
    let Reading {
        mut session,
        mut found,
        rejects,
        ..
    } = sink;
    session.release_findings(&mut |f| found.push(Encoded::new(f)));
    ObjectRead {
        result,
        session,
        found,
        rejects,
    }
}

/// Records that matched at least one rule, framed, parsed and evaluated on
/// one thread, for the session on another: each record's text, where it
/// was, and the positions of the rules it matched. Records that matched
/// nothing are not sent (a session does nothing with them).
#[derive(Default)]
struct Evaluated {
    /// The records' texts, one after the other.
    text: String,
    /// The rules matched, record after record.
    matched: Vec<usize>,
    /// Per record: its index in the object, where its text and its
    /// matches end in `text` and `matched`, and where its fields lie in
    /// its text (so it need not be parsed again).
    records: Vec<(u64, usize, usize, Layout)>,
    /// The earliest event time of every record evaluated for the batch,
    /// matched or not, when the session asks for it (baseline learning
    /// starts there: see `Session::saw`).
    first_time: Option<i64>,
}

/// Records per [`Evaluated`] batch, and the text that ends one early.
const EVALUATED_RECORDS: usize = 512;
const EVALUATED_BYTES: usize = 1 << 20;
/// Batches queued between the evaluating and the session's thread.
const EVALUATED_QUEUE: usize = 4;

/// The evaluating thread's sink in [`read_split`].
struct Evaluating<'e> {
    engine: &'e Engine,
    /// Whether the session wants every record's event time.
    every_time: bool,
    batch: Evaluated,
    tx: SyncSender<Evaluated>,
    /// Batches the session's thread is done with, to fill again (their
    /// buffers already grown).
    recycled: Receiver<Evaluated>,
    rejects: Vec<RecordReject>,
}

impl Evaluating<'_> {
    fn send(&mut self) {
        if !self.batch.records.is_empty() || self.batch.first_time.is_some() {
            let mut next = self.recycled.try_recv().unwrap_or_default();
            next.text.clear();
            next.matched.clear();
            next.records.clear();
            next.first_time = None;
            // The session's thread gone (it stopped early): nothing to do.
            let _ = self.tx.send(std::mem::replace(&mut self.batch, next));
        }
    }
}

impl RecordSink for Evaluating<'_> {
    fn record(&mut self, index: u64, record: &Record<'_>) {
        let batch = &mut self.batch;
        if self.every_time {
            if let Some(t) = record.event_time_millis() {
                batch.first_time = Some(batch.first_time.map_or(t, |f| f.min(t)));
            }
        }
        let before = batch.matched.len();
        let fields = self.engine.fields(record);
        self.engine
            .evaluate_fields(&fields, |i, _| batch.matched.push(i));
        if batch.matched.len() == before {
            return;
        }
        batch.text.push_str(record.raw());
        batch.records.push((
            index,
            batch.text.len(),
            batch.matched.len(),
            record.layout(),
        ));
        if batch.records.len() >= EVALUATED_RECORDS || batch.text.len() >= EVALUATED_BYTES {
            self.send();
        }
    }

    fn reject(&mut self, reject: RecordReject) {
        keep_sample(&mut self.rejects, reject);
    }
}

/// One object read on three threads: gzip inflated on one
/// ([`read_object_pipelined`]), records framed, parsed and evaluated on a
/// second, and the matches gathered into `sink`'s session, in record order,
/// on this one (each matching record laid over a copy of its text).
/// The findings, state and summary are those of [`read_object`] into `sink`.
fn read_split<'e, R: Read + Send, H: Handoff<'e>>(
    engine: &'e Engine,
    input: R,
    options: &ReaderOptions,
    sink: &mut Reading<'_, 'e, H>,
) -> Result<ObjectSummary, ReadFailure> {
    // The reader parsed each record under its own limit, or the fixed one
    // for records embedded as text (an export).
    let depth = options
        .max_depth
        .max(trailwarden_cloudtrail::PARSE_MAX_DEPTH);
    let every_time = sink.session.wants_every_time();
    let (mut result, rejects, unparsed) = std::thread::scope(|scope| {
        let (tx, rx) = mpsc::sync_channel::<Evaluated>(EVALUATED_QUEUE);
        let (recycle, recycled) = mpsc::sync_channel::<Evaluated>(EVALUATED_QUEUE + 2);
        let evaluating = scope.spawn(move || {
            let mut evaluating = Evaluating {
                engine,
                every_time,
                batch: Evaluated::default(),
                tx,
                recycled,
                rejects: Vec::new(),
            };
            let result = read_object_pipelined(input, options, &mut evaluating);
            evaluating.send();
            (result, evaluating.rejects)
        });
        let mut unparsed = Vec::new();
        for batch in rx {
            if let Some(t) = batch.first_time {
                sink.saw(t);
            }
            let (mut text_at, mut matched_at) = (0, 0);
            for (index, text_end, matched_end, layout) in &batch.records {
                let (index, text_end, matched_end) = (*index, *text_end, *matched_end);
                let text = &batch.text[text_at..text_end];
                let matched = &batch.matched[matched_at..matched_end];
                (text_at, matched_at) = (text_end, matched_end);
                if let Some(record) = layout.record(text) {
                    sink.evaluated(index, &record, matched);
                    continue;
                }
                match Record::parse_within(text, depth) {
                    Ok(record) => sink.evaluated(index, &record, matched),
                    Err(e) => unparsed.push(RecordReject {
                        index,
                        offset: 0,
                        reason: format!(
                            "the record was read but did not parse again for its rules' state ({e}); \
                             an internal error: scan with --threads 1 and report it"
                        ),
                    }),
                }
            }
            // Full (or the evaluating thread done): let it drop.
            let _ = recycle.try_send(batch);
        }
        let (result, rejects) = evaluating
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (result, rejects, unparsed)
    });
    for reject in rejects {
        sink.reject(reject);
    }
    if !unparsed.is_empty() {
        let summary = match &mut result {
            Ok(summary) => summary,
            Err(failure) => &mut failure.summary,
        };
        summary.records -= unparsed.len() as u64;
        summary.rejected += unparsed.len() as u64;
        for reject in unparsed {
            sink.reject(reject);
        }
    }
    result
}

/// Told how many bytes of an input (as stored: compressed where it is)
/// were just read, from whichever thread reads it: a progress bar that
/// moves within a large file.
pub type Progress = Arc<dyn Fn(u64) + Send + Sync>;

/// A reader that tells [`Progress`] what it reads, and, when it is
/// dropped, the rest of the file it did not read (a file that failed part
/// way, or that the reader stopped early): a file counts its whole size
/// once, however its reading ended, so the bar ends full.
struct Counted<R> {
    inner: R,
    progress: Progress,
    /// The file's size (when opened) not yet told.
    left: u64,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        (self.progress)(n as u64);
        self.left = self.left.saturating_sub(n as u64);
        Ok(n)
    }
}

impl<R> Drop for Counted<R> {
    fn drop(&mut self) {
        if self.left > 0 {
            (self.progress)(self.left);
        }
    }
}

/// Tell `progress` (if any) of a file input that is not read at all (done
/// before, or that cannot be opened): its size, as the bar's total has it.
fn passed_over(input: &Input, progress: Option<&Progress>) {
    if let (Some(progress), Input::File(path)) = (progress, input) {
        if let Ok(meta) = std::fs::metadata(path) {
            progress(meta.len());
        }
    }
}

/// Open an input for reading, telling `progress` (if any) of every byte.
fn open(input: &Input, progress: Option<&Progress>) -> Result<Box<dyn Read + Send>, String> {
    let (reader, size): (Box<dyn Read + Send>, u64) = match input {
        Input::Stdin => (Box::new(std::io::stdin()), 0),
        Input::File(path) => match std::fs::File::open(path) {
            Ok(f) => {
                let size = f.metadata().map_or(0, |m| m.len());
                (Box::new(f), size)
            }
            Err(e) => {
                passed_over(input, progress);
                return Err(format!("cannot open: {e}"));
            }
        },
    };
    Ok(match progress {
        // The bar's total is the files' sizes: standard input is not in it.
        Some(progress) if matches!(input, Input::File(_)) => Box::new(Counted {
            inner: reader,
            progress: Arc::clone(progress),
            left: size,
        }),
        _ => reader,
    })
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

    fn flush(&mut self, session: &mut Session<'e>) {
        self.write_batch(&mut session.take_batch());
    }
}

impl<F: FnMut(Encoded)> Storing<'_, F> {
    /// Write a batch taken from an object's session, unless the object
    /// already failed to store (it is read again: see [`Handoff::flush`]).
    fn write_batch(&mut self, batch: &mut Session<'_>) {
        if self.store_error.is_some() {
            return;
        }
        if let Err(e) = self.outlet.flush(batch, &mut *self.store) {
            self.store_error = Some(e);
        }
    }

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
        // Not after a store error: the object fails and is read again, and
        // its batches are then written in order.
        let flush_error = match self.store_error {
            Some(_) => None,
            None => self.outlet.flush(&mut session, &mut *self.store).err(),
        };
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

#[cfg(test)]
mod tests;
