//! Stateful detection over one batch of records (one log object).
//!
//! A [`Session`] evaluates records as they stream: single-event rules make
//! findings at once; matches that feed correlations and baselines are
//! gathered per (rule, group) in memory. At the end of the object,
//! [`Session::flush`] reads the stored state of exactly those groups, merges
//! the batch in (one write per group however many events it had), decides
//! what fires, and writes back with conditional puts, retrying a group whose
//! item changed underneath.
//!
//! Everything runs on **event time**: windows, baselines and idle times use
//! `eventTime`, so logs that arrive late or out of order give the same
//! result. Entries carry event ids, so a redelivered object changes nothing.
//!
//! The phases are public ([`Session::state_keys`], [`Session::merge`],
//! [`Session::committed`]) so that an async store can drive them without
//! this crate knowing about async.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use hashbrown::{HashMap, HashSet};

use rsigma_eval::{Event, EventValue};
use rsigma_parser::{
    ConditionExpr, ConditionOperator, CorrelationType, Quantifier, SelectorPattern,
};
use trailwarden_cloudtrail::Record;

use crate::eval::Fields;
use crate::finding::{event_id, event_id_ref, finding_id, Finding, MAX_EVENT_IDS};
use crate::rules::{BaselineKind, Correlation, Rule, CHAINED};
use crate::state::{
    bounded_event_id, bounded_group, digest_text, group_digest, value_digest, value_digest_u64,
    BaselineBody, Body, Entry, Fired, MetaBody, PutOutcome, Snapshot, StateItem, StateKey,
    StateStore, StateWrite, StoreError, WindowBody, ITEM_BUDGET_BYTES, MAX_FIRED,
};
use crate::Engine;

mod fold;
mod merge;
pub use fold::{FOLD_RECORDS, MAX_FOLDED, MAX_FOLDED_BYTES};
use merge::*;

/// How late (in event time) an event may arrive and still join a window.
pub const LATENESS_MS: i64 = 2 * 3_600_000;
/// Most events a correlation group keeps one by one. Past it, events of
/// the same referenced rule and value within [`RUN_FRACTION`]th of the
/// timespan are folded into runs (see `ARCHITECTURE.md`, "Bounded state").
pub const MAX_EXACT_ENTRIES: usize = 200;
/// A run spans at most this fraction of the correlation's timespan (and at
/// least a second): an `event_count` window counts a run at its first
/// event, so its edges are exact to within `timespan / RUN_FRACTION`;
/// `value_count` and `temporal` windows see a value or rule present
/// anywhere in a run, which is exact.
pub const RUN_FRACTION: i64 = 8;
/// Most entries (events and runs) a correlation group keeps at all; the
/// oldest go first (counted in [`SessionStats::trimmed`]).
pub const MAX_ENTRIES: usize = 2 * MAX_EXACT_ENTRIES;
/// Most events a counting window (`event_count` and the `value_*` kinds
/// but `value_count`) holds from the real-time path ahead of their log
/// files ([`crate::state::WindowBody::early`]); past that, real-time events
/// of the window wait for their log file.
pub const MAX_EARLY_ENTRIES: usize = 100;
/// Most value tuples kept per baseline group, the least recently seen
/// forgotten first (a forgotten tuple seen again is reported as new).
pub const MAX_TUPLES: usize = 512;
/// Most batch digests a window remembers (redelivery idempotency).
pub const MAX_BATCHES: usize = 16;
/// Attempts at writing a group whose item keeps changing.
pub const MAX_ATTEMPTS: usize = 8;
/// Rounds of a flush: the attempts, plus one round per level of chained
/// correlations ([`crate::rules::MAX_CHAIN_DEPTH`]).
pub const FLUSH_ROUNDS: usize = MAX_ATTEMPTS + crate::rules::MAX_CHAIN_DEPTH;

/// Whose state a pending group is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Owner {
    /// A correlation (index into the engine's correlations).
    Correlation(u32),
    /// A baseline rule (index into the engine's rules).
    Baseline(u32),
}

/// What one group gathered in this batch. Per match it costs an entry (or
/// a tuple update), never a copy of the event: the latest event's text is
/// kept once per group, and becomes the finding's who-and-where at flush.
#[derive(Debug, Default, Clone)]
struct Pending {
    group: Vec<String>,
    entries: Vec<Gathered>,
    tuples: HashMap<String, TupleObs>,
    last: Option<(i64, Arc<str>)>,
    /// The latest who-and-where that came from a referenced correlation's
    /// finding (chained correlations), which has no record text.
    chained_last: Option<(i64, Snapshot)>,
}

impl Pending {
    /// Keep the text of the group's latest event (for the finding's
    /// context): shared with every group the record updates, not copied.
    fn note_latest(&mut self, t: i64, raw: &Arc<str>) {
        match &self.last {
            Some((lt, _)) if *lt > t => {}
            _ => self.last = Some((t, Arc::clone(raw))),
        }
    }
}

/// A baseline's sightings of one value tuple in this batch.
#[derive(Debug, Clone)]
struct TupleObs {
    /// The earliest sighting: time, and the event's text.
    first: (i64, Arc<str>),
    /// The latest sighting's time.
    last_t: i64,
    /// The sightings as runs: a gap inside the batch can matter too (a
    /// tuple forgotten after `history`, a group idle for `idle`), so every
    /// gap that could report is kept, and only sightings no gap rule can
    /// report on are folded (see [`Sightings`]).
    runs: Vec<Sightings>,
}

/// Sightings of one value tuple, gathered in arrival order: the first
/// (`start`, with its event id) and the last (`end`) of a chain in which
/// each sighting came at most [`crate::rules::Baseline::quiet_gap_ms`] after the one
/// before. A sighting after such a gap cannot be reported (its previous
/// sighting is too recent), and `end` stands for the chain's others as the
/// previous sighting of whatever comes after: reading the runs by start
/// gives the findings that reading every sighting would, with the same
/// event ids.
#[derive(Debug, Clone)]
struct Sightings {
    start: i64,
    id: String,
    end: i64,
}

/// Counts of what a session did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SessionStats {
    /// Matches that fed a correlation or baseline.
    pub stateful_matches: u64,
    /// Matches skipped because a group-by field, the counted field or the
    /// event time was missing.
    pub ungrouped: u64,
    /// Groups written.
    pub groups_written: u64,
    /// Conditional writes that had to be retried.
    pub retries: u64,
    /// Group writes the store refused for good (the group's batch given up;
    /// see [`Session::refusals`]).
    pub refused: u64,
    /// Entries or tuples dropped to keep an item within its budget.
    pub trimmed: u64,
}

/// A group write the store refused for good: which rule and group, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The item's key.
    pub key: StateKey,
    /// The group-by values (each cut to [`crate::state::MAX_STATE_TEXT`] bytes).
    pub group: Vec<String>,
    /// The store's reason.
    pub reason: String,
}

/// Stateful evaluation of one batch.
pub struct Session<'e> {
    engine: &'e Engine,
    pending: PendingMap,
    /// Value digests computed in this batch, by value text.
    digests: hashbrown::HashMap<String, u64>,
    /// The event ids of the batch's gathered entries.
    ids: EventIds,
    /// The slots whose values `scratch` holds for the current record.
    group_of: Option<&'e [u32]>,
    /// The current record's text, once a group keeps it (one copy per
    /// record, shared by the groups it updates).
    raw: Option<Arc<str>>,
    /// Scratch buffers for group and value text, and the matched rules.
    scratch: String,
    scratch2: String,
    matched: Vec<usize>,
    /// Per baseline rule (by id), the earliest event time of the batch: the
    /// start of the rule's learning period once merged with the stored one.
    meta: BTreeMap<String, i64>,
    /// The baseline rules' ids (whose learning clock every record moves).
    baseline_ids: Vec<&'e str>,
    /// The earliest event time of any record this session has seen.
    seen_first: Option<i64>,
    /// Stateful matches gathered since the last flush.
    gathered: usize,
    /// Where the batch comes from (an object's identity and version), for
    /// batch digests; `None`: no batch-level idempotency.
    source: Option<String>,
    /// Flushes completed so far (a very large object flushes several times).
    flushes: u64,
    /// Refused group writes not yet taken by the caller.
    refusals: Vec<Refusal>,
    /// Stateful matches after which [`Session::should_flush`] says to flush.
    flush_after: usize,
    /// Single-event findings held for folding (see
    /// [`Session::fold_repeats`]).
    folds: fold::Folds,
    /// The events come ahead of the log files that will deliver them
    /// again (see [`Session::set_early`]).
    early: bool,
    /// Counts so far.
    pub stats: SessionStats,
}

/// Stateful matches a session gathers before [`Session::should_flush`] says
/// to write them out, so memory stays bounded on very large objects.
pub const FLUSH_AFTER: usize = 100_000;

/// The result of merging loaded state with a batch.
#[derive(Debug, Default)]
pub struct Merge {
    /// Writes to make, one per changed item.
    pub writes: Vec<StateWrite>,
    /// Findings per key. Store them before the writes (see
    /// [`Merge::take_findings`]).
    pub findings: Vec<(StateKey, Vec<Finding>)>,
    /// Entries or tuples dropped to keep items within their budget.
    pub trimmed: u64,
    /// Firings of correlations that other correlations refer to (chained
    /// correlations), by key and correlation, whether reported or not: once
    /// their key is written, [`Session::settle`] makes each an event of
    /// those others.
    pub chained: Vec<(StateKey, usize, ChainEvent)>,
}

impl Merge {
    /// The findings of this merge, to be stored *before* its writes: a
    /// write records a window or baseline as fired, so a finding stored
    /// after it would be lost to a failure in between (the retry would
    /// see the state and not fire again). Stored first, a failure in
    /// between makes the retry find it again, with the same id.
    pub fn take_findings(&mut self) -> Vec<Finding> {
        self.findings
            .iter_mut()
            .flat_map(|(_, f)| std::mem::take(f))
            .collect()
    }
}

/// How many of a group's latest entries an event may extend into a run.
const RECENT_RUNS: usize = 8;

/// An event (or a run of events) a correlation group gathered in this
/// batch: an [`Entry`] without text of its own. The event id is an index
/// into the batch's [`EventIds`] and the counted value is its digest as a
/// number, so a match allocates nothing; the merge turns each into the
/// [`Entry`] the window stores ([`Gathered::entry`]).
#[derive(Debug, Clone, Copy)]
struct Gathered {
    /// Event time (ms); a run's first.
    t: i64,
    /// A run's last event time (ms); `t` for a single event.
    end: i64,
    /// The numeric field (`value_sum` and the others); a run's sum.
    x: Option<f64>,
    /// The counted value's [`value_digest_u64`] (`value_count` only).
    v: Option<u64>,
    /// The event id, in the batch's [`EventIds`]; a run's first event's.
    id: u32,
    /// Events this stands for.
    n: u32,
    /// Which referenced rule matched.
    r: Option<u16>,
}

impl Gathered {
    /// One event of rule `r` at `t`, its id at `id` in the batch's
    /// [`EventIds`], counting value `v` (`value_count`) or number `x`.
    fn single(t: i64, id: u32, r: Option<u16>, v: Option<u64>, x: Option<f64>) -> Gathered {
        Gathered {
            t,
            end: t,
            x,
            v,
            id,
            n: 1,
            r,
        }
    }

    /// The stored form. A run (`n` > 1) has a last time even when all its
    /// events share one.
    fn entry(&self, ids: &EventIds) -> Entry {
        Entry {
            t: self.t,
            id: ids.get(self.id).to_owned(),
            r: self.r,
            v: self.v.map(digest_text),
            n: self.n,
            t1: (self.n > 1).then_some(self.end),
            x: self.x,
        }
    }
}

/// The event ids a batch's [`Gathered`] entries refer to, one after another
/// in one buffer, each already bounded ([`bounded_event_id`]).
#[derive(Debug, Default)]
struct EventIds {
    text: String,
    /// Where each id ends in `text`.
    ends: Vec<usize>,
}

impl EventIds {
    /// Keep `id` (bounded) and return its index.
    fn push(&mut self, id: &str) -> u32 {
        self.text.push_str(&bounded_event_id(id));
        self.ends.push(self.text.len());
        u32::try_from(self.ends.len() - 1).expect("fewer ids than a batch's matches")
    }

    fn get(&self, index: u32) -> &str {
        let i = index as usize;
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.text[start..self.ends[i]]
    }

    fn clear(&mut self) {
        self.text.clear();
        self.ends.clear();
    }
}

/// Whether a correlation asks only whether rules or values occur in a
/// window (`value_count`, `temporal`, `temporal_ordered`), not how often.
fn is_presence(kind: CorrelationType) -> bool {
    matches!(
        kind,
        CorrelationType::ValueCount | CorrelationType::Temporal | CorrelationType::TemporalOrdered
    )
}

/// A correlation's firing as an event of the correlations over it.
#[derive(Debug, Clone)]
pub struct ChainEvent {
    /// The time of the firing window's last event, ms since the epoch.
    pub t: i64,
    /// The finding's id (the event id).
    pub id: String,
    /// The firing group's group-by values, by the correlation's group-by
    /// names, each cut to [`crate::state::MAX_STATE_TEXT`] bytes.
    pub group: BTreeMap<String, String>,
    /// Who and where, from the window's latest event.
    pub last: Option<Snapshot>,
}

/// A finding's group-by values as an event (the fields of a chained
/// correlation's event).
struct Strings<'g>(&'g BTreeMap<String, String>);

impl Event for Strings<'_> {
    fn get_field(&self, path: &str) -> Option<EventValue<'_>> {
        self.0
            .get(path)
            .map(|v| EventValue::Str(std::borrow::Cow::Borrowed(v.as_str())))
    }
    fn any_string_value(&self, pred: &dyn Fn(&str) -> bool) -> bool {
        self.0.values().any(|v| pred(v))
    }
    fn all_string_values(&self) -> Vec<std::borrow::Cow<'_, str>> {
        self.0.values().map(|v| v.as_str().into()).collect()
    }
    fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self.0).unwrap_or_default()
    }
}

pub use crate::rules::is_numeric;

/// A field's value as a finite number: JSON numbers, and strings that
/// hold one (CloudTrail writes some sizes as text).
fn number_of(v: EventValue<'_>) -> Option<f64> {
    let x = match v {
        EventValue::Int(i) => i as f64,
        EventValue::Float(f) => f,
        other => other.as_str()?.trim().parse::<f64>().ok()?,
    };
    x.is_finite().then_some(x)
}

/// The value at `rank` (0–100) of weighted values sorted ascending, by
/// linear interpolation between closest ranks (as rsigma and numpy's
/// default do); each value stands `weight` times.
fn weighted_percentile(values: &[(f64, u64)], rank: f64) -> Option<f64> {
    let total: u64 = values.iter().map(|(_, w)| w).sum();
    if total == 0 {
        return None;
    }
    let pos = rank.clamp(0.0, 100.0) / 100.0 * (total - 1) as f64;
    let (lo, hi) = (pos.floor() as u64, pos.ceil() as u64);
    let at = |k: u64| {
        let mut seen = 0;
        for (v, w) in values {
            seen += w;
            if k < seen {
                return *v;
            }
        }
        values.last().map_or(0.0, |(v, _)| *v)
    };
    let (a, b) = (at(lo), at(hi));
    Some(a + (b - a) * (pos - lo as f64))
}

fn value_text(v: EventValue<'_>) -> Option<String> {
    match v {
        EventValue::Null => None,
        EventValue::Array(items) => {
            let parts: Vec<String> = items.into_iter().filter_map(value_text).collect();
            (!parts.is_empty()).then(|| parts.join(","))
        }
        EventValue::Map(_) => None,
        other => other
            .as_str()
            .map(|s| s.into_owned())
            .filter(|s| !s.is_empty()),
    }
}

/// Write the values of `fields` as a JSON array of strings into `out` (the
/// same text as `serde_json::to_string(&Vec<String>)`, which group and
/// value digests are taken over). False when a value is missing.
fn write_values(event: &impl Event, fields: &[String], out: &mut String) -> bool {
    write_found(fields.iter().map(|f| event.get_field(f)), out)
}

/// [`write_values`] over field slots of a record's cache.
fn write_slots(fields: &Fields<'_, '_, '_>, slots: &[u32], out: &mut String) -> bool {
    write_found(slots.iter().map(|s| fields.value(*s)), out)
}

/// [`write_values`] over values already looked up.
fn write_found<'v>(values: impl Iterator<Item = Option<EventValue<'v>>>, out: &mut String) -> bool {
    out.clear();
    out.push('[');
    for (i, found) in values.enumerate() {
        if i > 0 {
            out.push(',');
        }
        match found {
            // The common case, without a copy.
            Some(EventValue::Str(s)) if !s.is_empty() => push_json_string(out, &s),
            Some(v) => match value_text(v) {
                Some(v) => push_json_string(out, &v),
                None => return false,
            },
            None => return false,
        }
    }
    out.push(']');
    true
}

/// `s` as a JSON string literal, escaped as serde_json escapes it.
fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    // Most values need no escape: one pass without an early exit, which
    // the compiler vectorises (`all` stops at each byte to test).
    let plain = s
        .bytes()
        .fold(true, |ok, b| ok & (b >= 0x20) & (b != b'"') & (b != b'\\'));
    if plain {
        out.push_str(s);
        out.push('"');
        return;
    }
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let esc: Option<&str> = match b {
            b'"' => Some("\\\""),
            b'\\' => Some("\\\\"),
            b'\n' => Some("\\n"),
            b'\r' => Some("\\r"),
            b'\t' => Some("\\t"),
            0x08 => Some("\\b"),
            0x0c => Some("\\f"),
            0..=0x1f => None,
            _ => continue,
        };
        out.push_str(&s[start..i]);
        match esc {
            Some(e) => out.push_str(e),
            None => out.push_str(&format!("\\u{b:04x}")),
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// The pending group of `owner` whose values are `group` (JSON text),
/// created on first use.
fn pending_for<'p>(pending: &'p mut PendingMap, owner: Owner, group: &str) -> &'p mut Pending {
    let key = GroupRef(owner, group);
    if !pending.contains_key(&key) {
        let values: Vec<String> = serde_json::from_str(group).unwrap_or_default();
        let p = Pending {
            group: values,
            ..Pending::default()
        };
        pending.insert((owner, group.to_owned()), p);
    }
    pending.get_mut(&key).expect("inserted above")
}

/// The pending groups, by owner and group values (JSON text).
type PendingMap = hashbrown::HashMap<(Owner, String), Pending>;

/// A borrowed key of [`PendingMap`], hashed and compared as the owned one.
#[derive(Hash)]
struct GroupRef<'a>(Owner, &'a str);

impl hashbrown::Equivalent<(Owner, String)> for GroupRef<'_> {
    fn equivalent(&self, key: &(Owner, String)) -> bool {
        self.0 == key.0 && self.1 == key.1
    }
}

fn format_millis(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

impl<'e> Session<'e> {
    /// A session over `engine`'s rules.
    pub fn new(engine: &'e Engine) -> Self {
        Session {
            engine,
            pending: PendingMap::default(),
            digests: hashbrown::HashMap::new(),
            ids: EventIds::default(),
            raw: None,
            group_of: None,
            scratch: String::new(),
            scratch2: String::new(),
            matched: Vec::new(),
            meta: BTreeMap::new(),
            baseline_ids: engine
                .rules()
                .iter()
                .filter(|r| r.baseline.is_some())
                .map(|r| r.meta.id.as_str())
                .collect(),
            seen_first: None,
            gathered: 0,
            source: None,
            flushes: 0,
            refusals: Vec::new(),
            flush_after: FLUSH_AFTER,
            folds: fold::Folds::default(),
            early: false,
            stats: SessionStats::default(),
        }
    }

    /// Say that this session's events come ahead of the CloudTrail log
    /// files that will deliver them again (the real-time path: EventBridge
    /// delivers an event minutes before its log file does), so that an
    /// event seen both ways counts once in every correlation.
    ///
    /// Presence-based windows (`value_count`, `temporal`,
    /// `temporal_ordered`) and baselines need nothing: an event counted
    /// twice there changes nothing. A counting window (`event_count`,
    /// `value_sum`, `value_avg`, `value_percentile`, `value_median`) keeps
    /// an early event apart, one by one with its id
    /// ([`crate::state::WindowBody::early`], at most
    /// [`MAX_EARLY_ENTRIES`]), counted with the others; the log file's
    /// copy of the event takes its place. An early event that the window
    /// may already count (inside a run of its rule, whose events have no
    /// ids), or that finds the early list full, is left to its log file:
    /// it costs latency, never a double count.
    pub fn set_early(&mut self, on: bool) {
        self.early = on;
    }

    /// Fold repeats of a single-event finding within the object this
    /// session reads (see `session/fold.rs`): records alike in everything a
    /// finding shows of an event but its time and id make one finding, the
    /// first record's (same id), with `count` the number of records, the
    /// first [`MAX_EVENT_IDS`] event ids and a note of the span of event
    /// times. A rule matching once makes the finding it always did.
    ///
    /// Folded findings are held until [`Session::release_findings`] (or
    /// until [`MAX_FOLDED`] are held, when all are handed out and folding
    /// starts over, or until a record of the next [`FOLD_RECORDS`] stretch
    /// of the object comes, see [`Session::next_record`]): the caller
    /// releases them at the end of the object ([`Session::flush`] does). Flushes of state in between
    /// ([`Session::flush_with`], [`Session::take_batch`]) leave them held:
    /// no state records a single-event finding, and an object read again
    /// after a failure makes them again. So the fold depends on the
    /// object's records and their order alone, and the same object read
    /// again gives the same findings.
    pub fn fold_repeats(&mut self, on: bool) {
        self.folds.on = on;
    }

    /// Say that the object's record at position `index` (from 0) comes
    /// next, before [`Session::record`] or [`Session::record_evaluated`]
    /// of it: a fold spans at most the [`FOLD_RECORDS`] stretch of the
    /// object a record is in, and the held findings are handed out (to
    /// `emit`) when a record of the next stretch comes. A caller that never
    /// says so folds over the whole object.
    pub fn next_record(&mut self, index: u64, emit: &mut dyn FnMut(Finding)) {
        if self.folds.on {
            self.folds.next_record(index, emit);
        }
    }

    /// Hand out the single-event findings held for folding, in the order
    /// of their first records (see [`Session::fold_repeats`]).
    pub fn release_findings(&mut self, emit: &mut dyn FnMut(Finding)) {
        self.folds.release(emit);
    }

    /// Say to flush after `matches` stateful matches instead of
    /// [`FLUSH_AFTER`] (at least 1): less memory, more writes. An object
    /// must be read again with the same figure for its batches to be the
    /// same (see [`Session::set_source`]).
    pub fn set_flush_after(&mut self, matches: usize) {
        self.flush_after = matches.max(1);
    }

    /// Name the batch's source: an object's identity and version (for
    /// example `s3://bucket/key` and its ETag). Each flush of the session is
    /// then a batch with a digest of the source and the flush's number,
    /// which every window it touches records: merging the same batch again
    /// (a redelivered object, a retried message, a file scanned again)
    /// changes nothing.
    pub fn set_source(&mut self, source: &str) {
        self.source = Some(source.to_owned());
    }

    /// The digest of the current batch, when a source is named.
    fn batch(&self) -> Option<String> {
        self.source
            .as_ref()
            .map(|s| crate::state::value_digest(&format!("{s}\n{}", self.flushes)))
    }

    /// The group writes the store refused since the last call, for the
    /// caller to log (rule, group, reason) and count.
    pub fn refusals(&mut self) -> Vec<Refusal> {
        std::mem::take(&mut self.refusals)
    }

    /// Whether anything waits to be flushed.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty() && self.meta.is_empty()
    }

    /// Take what was gathered since the last flush as a session of its own,
    /// to be flushed elsewhere (another thread) while this one goes on
    /// gathering. The batch taken has this session's source and batch
    /// number; this session goes on with the next number, as after that
    /// batch's flush succeeded, so flushing the taken batches in order
    /// writes exactly what flushing this session at those points would.
    /// Counts of the flush itself (groups written, retries, refusals) are
    /// the taken session's; counts of matches stay here.
    pub fn take_batch(&mut self) -> Session<'e> {
        let mut batch = Session::new(self.engine);
        batch.pending = std::mem::take(&mut self.pending);
        batch.meta = std::mem::take(&mut self.meta);
        batch.digests = std::mem::take(&mut self.digests);
        batch.ids = std::mem::take(&mut self.ids);
        batch.gathered = std::mem::take(&mut self.gathered);
        batch.source = self.source.clone();
        batch.flushes = self.flushes;
        batch.flush_after = self.flush_after;
        batch.early = self.early;
        self.flushes += 1;
        batch
    }

    /// Whether enough has been gathered that the caller should flush now
    /// rather than at the end of the object (bounded memory for huge files).
    pub fn should_flush(&self) -> bool {
        self.gathered >= self.flush_after
    }

    fn owner_id(&self, owner: Owner) -> &str {
        match owner {
            Owner::Correlation(c) => &self.engine.correlations()[c as usize].meta.id,
            Owner::Baseline(r) => &self.engine.rules()[r as usize].meta.id,
        }
    }

    fn state_key(&self, owner: Owner, group: &str) -> StateKey {
        StateKey {
            rule: self.owner_id(owner).to_owned(),
            group: group_digest(group),
        }
    }

    /// Evaluate one record: single-event findings go to `emit` now; stateful
    /// matches wait for [`Session::flush`].
    pub fn record(&mut self, record: &Record<'_>, emit: &mut dyn FnMut(Finding)) {
        let engine = self.engine;
        let mut matched = std::mem::take(&mut self.matched);
        matched.clear();
        let fields = engine.fields(record);
        engine.evaluate_fields(&fields, |i, _| matched.push(i));
        // The event time, read once, when baselines or matches need it.
        let baselines = !self.baseline_ids.is_empty();
        let t = if baselines || !matched.is_empty() {
            record.event_time_millis()
        } else {
            None
        };
        if let (true, Some(t)) = (baselines, t) {
            self.saw(t);
        }
        self.matched_record(record, &fields, &matched, t, emit);
        self.matched = matched;
    }

    /// Whether a record's event time matters to this session without a
    /// match: the engine has baseline rules, whose learning period starts
    /// at the first record the deployment sees (see [`Session::saw`]).
    pub fn wants_every_time(&self) -> bool {
        !self.baseline_ids.is_empty()
    }

    /// A record with event time `t` (epoch milliseconds) was read, matched
    /// or not: the learning period of every baseline rule starts at the
    /// earliest record its deployment has seen with the rule loaded, not at
    /// the rule's own first match, so the first rare call after learning is
    /// reported even when it is the rule's first match. [`Session::record`]
    /// calls it; a caller that evaluates elsewhere and hands over only
    /// matched records ([`Session::record_evaluated`]) calls it with the
    /// earliest time of the records it left out.
    pub fn saw(&mut self, t: i64) {
        if self.seen_first.is_some_and(|first| first <= t) {
            return;
        }
        self.seen_first = Some(t);
        for id in &self.baseline_ids {
            match self.meta.get_mut(*id) {
                Some(first) => *first = (*first).min(t),
                None => {
                    self.meta.insert((*id).to_owned(), t);
                }
            }
        }
    }

    /// [`Session::record`] for a record already evaluated elsewhere (on
    /// another thread, by [`Engine::evaluate_fields`] of this session's
    /// engine): `matched` holds the positions of the rules it matched, in
    /// the order evaluation gave them. The same findings and state result
    /// as from [`Session::record`] on that record.
    pub fn record_evaluated(
        &mut self,
        record: &Record<'_>,
        matched: &[usize],
        emit: &mut dyn FnMut(Finding),
    ) {
        if matched.is_empty() {
            return;
        }
        let fields = self.engine.fields(record);
        self.matched_record(record, &fields, matched, record.event_time_millis(), emit);
    }

    /// The findings and state of the rules a record matched (`t`: its
    /// event time).
    fn matched_record(
        &mut self,
        record: &Record<'_>,
        fields: &Fields<'_, '_, '_>,
        matched: &[usize],
        t: Option<i64>,
        emit: &mut dyn FnMut(Finding),
    ) {
        let engine = self.engine;
        self.group_of = None;
        self.raw = None;
        if !matched.is_empty() {
            let event = fields;
            let mut id: Option<String> = None;
            let mut at: Option<u32> = None;
            for &i in matched {
                let rule = &engine.rules()[i];
                if rule.generate {
                    if self.folds.on {
                        self.folds.add(i, rule, record, emit);
                    } else {
                        emit(Finding::from_record(rule, record));
                    }
                }
                if rule.baseline.is_some() {
                    self.observe(i, t, record, event, &mut id);
                }
                for &c in engine.feeds(i) {
                    self.add_entry(c, i, t, record, event, (&id, &mut at));
                }
            }
        }
    }

    fn observe(
        &mut self,
        rule_index: usize,
        t: Option<i64>,
        record: &Record<'_>,
        event: &Fields<'_, '_, '_>,
        id: &mut Option<String>,
    ) {
        let rule = &self.engine.rules()[rule_index];
        let Some(t) = t else {
            self.stats.ungrouped += 1;
            return;
        };
        let (group_slots, value_slots) = self.engine.slots().baselines[rule_index]
            .as_ref()
            .expect("baseline slots");
        self.group_of = None;
        if !write_slots(event, group_slots, &mut self.scratch)
            || !write_slots(event, value_slots, &mut self.scratch2)
        {
            self.stats.ungrouped += 1;
            return;
        }
        self.stats.stateful_matches += 1;
        self.gathered += 1;
        match self.meta.get_mut(rule.meta.id.as_str()) {
            Some(m) => *m = (*m).min(t),
            None => {
                self.meta.insert(rule.meta.id.clone(), t);
            }
        }
        let pending = pending_for(
            &mut self.pending,
            Owner::Baseline(rule_index as u32),
            &self.scratch,
        );
        let raw = self.raw.get_or_insert_with(|| Arc::from(record.raw()));
        let quiet = rule.baseline.as_ref().map_or(-1, |b| b.quiet_gap_ms());
        match pending.tuples.get_mut(self.scratch2.as_str()) {
            Some(obs) => {
                if t < obs.first.0 {
                    obs.first = (t, Arc::clone(raw));
                }
                obs.last_t = obs.last_t.max(t);
                let last = obs.runs.last_mut().expect("a tuple has a sighting");
                if last.end <= t && t - last.end <= quiet {
                    last.end = t;
                    if t == last.start {
                        // Read by (time, id), the smaller id of two
                        // sightings at the same time is the one reported.
                        let event_id = id.get_or_insert_with(|| event_id(record));
                        if *event_id < last.id {
                            last.id.clone_from(event_id);
                        }
                    }
                } else if !(last.start < t && t <= last.end) {
                    let event_id = id.get_or_insert_with(|| event_id(record)).clone();
                    obs.runs.push(Sightings {
                        start: t,
                        id: event_id,
                        end: t,
                    });
                }
            }
            None => {
                let event_id = id.get_or_insert_with(|| event_id(record)).clone();
                pending.tuples.insert(
                    self.scratch2.clone(),
                    TupleObs {
                        first: (t, Arc::clone(raw)),
                        last_t: t,
                        runs: vec![Sightings {
                            start: t,
                            id: event_id,
                            end: t,
                        }],
                    },
                );
            }
        }
        pending.note_latest(t, raw);
    }

    fn add_entry(
        &mut self,
        c: usize,
        rule_index: usize,
        t: Option<i64>,
        record: &Record<'_>,
        event: &Fields<'_, '_, '_>,
        (id, at): (&Option<String>, &mut Option<u32>),
    ) {
        let corr = &self.engine.correlations()[c];
        let value = match corr.kind {
            CorrelationType::ValueCount => {
                let slots = &self.engine.slots().values[c];
                if slots.is_empty() || !write_slots(event, slots, &mut self.scratch2) {
                    self.stats.ungrouped += 1;
                    return;
                }
                // One digest per distinct value per batch (one lookup).
                let text = self.scratch2.as_str();
                Some(
                    *self
                        .digests
                        .entry_ref(text)
                        .or_insert_with(|| value_digest_u64(text)),
                )
            }
            _ => None,
        };
        let number = if is_numeric(corr.kind) {
            let field = corr
                .condition
                .field
                .as_deref()
                .and_then(|f| f.first())
                .map(String::as_str)
                .unwrap_or_default();
            match event.get_field(field).and_then(number_of) {
                Some(x) => Some(x),
                None => {
                    self.stats.ungrouped += 1;
                    return;
                }
            }
        } else {
            None
        };
        let Some(t) = t else {
            self.stats.ungrouped += 1;
            return;
        };
        let position = corr.rules.iter().position(|r| *r == rule_index);
        let engine: &'e Engine = self.engine;
        let (all, per_rule) = &engine.slots().groups[c];
        let slots = position.map_or(all, |p| &per_rule[p]);
        // Correlations over the same group-by fields (the credential-sharing
        // pair) share the group text of a record.
        if self.group_of != Some(slots.as_slice()) {
            self.group_of = None;
            if !write_slots(event, slots, &mut self.scratch) {
                self.stats.ungrouped += 1;
                return;
            }
            self.group_of = Some(slots.as_slice());
        }
        self.stats.stateful_matches += 1;
        self.gathered += 1;
        let raw = self.raw.get_or_insert_with(|| Arc::from(record.raw()));
        let pending = pending_for(
            &mut self.pending,
            Owner::Correlation(c as u32),
            &self.scratch,
        );
        let r = position.map(|p| p as u16);
        // A `value_count` window asks only whether a value occurs: an event
        // close after a recent one of the same rule and value extends that
        // one into a run (see `fold_runs`) instead of costing an entry, so
        // a busy group gathers a few entries per batch. (Sequences report
        // the events that complete them, so they keep theirs.)
        if corr.kind == CorrelationType::ValueCount {
            let reach = (corr.timespan_ms / RUN_FRACTION).max(1_000);
            let recent = pending.entries.iter_mut().rev().take(RECENT_RUNS);
            if let Some(run) = recent
                .filter(|e| e.r == r && e.v == value)
                .find(|e| e.t <= t && t - e.t <= reach)
            {
                run.n = run.n.saturating_add(1);
                run.end = run.end.max(t);
                pending.note_latest(t, raw);
                return;
            }
        }
        let index = match *at {
            Some(index) => index,
            None => {
                // The id a baseline of this record took, or the record's
                // own without a copy.
                let index = match id {
                    Some(known) => self.ids.push(known),
                    None => self.ids.push(&event_id_ref(record)),
                };
                *at = Some(index);
                index
            }
        };
        pending
            .entries
            .push(Gathered::single(t, index, r, value, number));
        pending.note_latest(t, raw);
    }

    /// The items this batch needs: one per touched group, plus each
    /// baseline rule's bookkeeping item.
    pub fn state_keys(&self) -> Vec<StateKey> {
        let mut keys: Vec<StateKey> = self
            .meta
            .keys()
            .map(|rule| StateKey {
                rule: rule.clone(),
                group: String::new(),
            })
            .collect();
        let mut groups: Vec<StateKey> = self
            .pending
            .keys()
            .map(|(owner, group)| self.state_key(*owner, group))
            .collect();
        groups.sort();
        keys.extend(groups);
        keys
    }

    /// Merge the loaded items (in the order of `keys`) with the batch.
    pub fn merge(&self, keys: &[StateKey], loaded: Vec<Option<StateItem>>) -> Merge {
        let items: HashMap<&StateKey, Option<StateItem>> = keys.iter().zip(loaded).collect();
        let mut out = Merge::default();
        // Bookkeeping first: baselines need the learning start.
        let mut first_event: HashMap<&str, i64> = HashMap::new();
        for (rule, batch_first) in &self.meta {
            let key = StateKey {
                rule: rule.clone(),
                group: String::new(),
            };
            let stored = items.get(&key).cloned().flatten();
            let stored_first = match stored.as_ref().map(|i| &i.body) {
                Some(Body::Meta(m)) => Some(m.first_event),
                _ => None,
            };
            let first = stored_first.map_or(*batch_first, |s| s.min(*batch_first));
            first_event.insert(rule.as_str(), first);
            if stored_first != Some(first) {
                out.writes.push(StateWrite {
                    expected: stored.as_ref().map(|i| i.version),
                    item: StateItem {
                        key,
                        version: stored.as_ref().map_or(1, |i| i.version + 1),
                        expires_at: i64::MAX / 2,
                        body: Body::Meta(MetaBody { first_event: first }),
                    },
                });
            }
        }
        let mut pending: Vec<(StateKey, Owner, &Pending)> = self
            .pending
            .iter()
            .map(|((owner, group), p)| (self.state_key(*owner, group), *owner, p))
            .filter(|(key, _, _)| items.contains_key(key))
            .collect();
        pending.sort_by(|a, b| a.0.cmp(&b.0));
        let batch = self.batch();
        for (key, owner, pending) in pending {
            let stored = items.get(&key).cloned().flatten();
            let (write, findings, trimmed) = match owner {
                Owner::Correlation(c) => {
                    let corr = &self.engine.correlations()[c as usize];
                    let chained = !self.engine.chained_into(c as usize).is_empty();
                    let (write, findings, trimmed, events) = merge_window(
                        corr,
                        &key,
                        stored,
                        (pending, &self.ids),
                        batch.as_deref(),
                        chained,
                        self.early,
                    );
                    out.chained
                        .extend(events.into_iter().map(|e| (key.clone(), c as usize, e)));
                    let reported = if corr.generate { findings } else { Vec::new() };
                    (write, reported, trimmed)
                }
                Owner::Baseline(r) => {
                    let rule = &self.engine.rules()[r as usize];
                    let first = first_event
                        .get(key.rule.as_str())
                        .copied()
                        .unwrap_or(i64::MIN);
                    merge_baseline(rule, &key, stored, pending, first)
                }
            };
            out.writes.extend(write);
            out.trimmed += trimmed;
            out.findings.push((key, findings));
        }
        out
    }

    /// Forget the groups whose state was written (or needed no write).
    pub fn committed(&mut self, keys: &[StateKey]) {
        let done: BTreeSet<&StateKey> = keys.iter().collect();
        for key in keys.iter().filter(|k| k.group.is_empty()) {
            self.meta.remove(&key.rule);
        }
        let engine = self.engine;
        self.pending.retain(|(owner, group), _| {
            let rule = match owner {
                Owner::Correlation(c) => &engine.correlations()[*c as usize].meta.id,
                Owner::Baseline(r) => &engine.rules()[*r as usize].meta.id,
            };
            !done.contains(&StateKey {
                rule: rule.clone(),
                group: group_digest(group),
            })
        });
        if self.pending.is_empty() && self.meta.is_empty() {
            self.gathered = 0;
            self.digests.clear();
            self.ids.clear();
            self.flushes += 1;
        }
    }

    /// After the writes of a [`Merge`] (whether each was stored, in order):
    /// forget what was written and return the keys to read and merge again
    /// (their items changed underneath).
    pub fn settle(
        &mut self,
        keys: &[StateKey],
        merge: Merge,
        written: &[PutOutcome],
    ) -> Vec<StateKey> {
        let failed: BTreeSet<&StateKey> = merge
            .writes
            .iter()
            .zip(written)
            .filter(|(_, o)| **o == PutOutcome::Conflict)
            .map(|(w, _)| &w.item.key)
            .collect();
        self.stats.trimmed += merge.trimmed;
        self.stats.groups_written +=
            written.iter().filter(|o| **o == PutOutcome::Stored).count() as u64;
        for (w, o) in merge.writes.iter().zip(written) {
            if let PutOutcome::Refused(reason) = o {
                self.stats.refused += 1;
                let group = match &w.item.body {
                    Body::Window(b) => b.group.clone(),
                    Body::Baseline(b) => b.group.clone(),
                    Body::Meta(_) => Vec::new(),
                };
                self.refusals.push(Refusal {
                    key: w.item.key.clone(),
                    group,
                    reason: reason.clone(),
                });
            }
        }
        let mut done = Vec::new();
        for (key, _) in merge.findings {
            if !failed.contains(&key) {
                done.push(key);
            }
        }
        let mut retry: Vec<StateKey> = failed.into_iter().cloned().collect();
        for key in keys {
            if key.group.is_empty() && !retry.contains(key) {
                done.push(key.clone());
            }
        }
        self.committed(&done);
        // Chained correlations: a stored firing is an event of the
        // correlations over it; their groups are merged in the next round.
        // (After `committed`, which forgets the groups just written: a
        // group over a firing may be one of them.)
        let mut chained_keys = Vec::new();
        for (key, c, event) in &merge.chained {
            if retry.contains(key) {
                continue;
            }
            for &(outer, p) in self.engine.chained_into(*c) {
                if let Some(key) = self.chain_event(outer, p, event) {
                    if !chained_keys.contains(&key) {
                        chained_keys.push(key);
                    }
                }
            }
        }
        // Bookkeeping items change learning; re-read them with the retried groups.
        if !retry.is_empty() {
            for rule in self.meta.keys() {
                let k = StateKey {
                    rule: rule.clone(),
                    group: String::new(),
                };
                if !retry.contains(&k) {
                    retry.insert(0, k);
                }
            }
            self.stats.retries += retry.len() as u64;
        }
        for key in chained_keys {
            if !retry.contains(&key) {
                retry.push(key);
            }
        }
        retry
    }

    /// Add a referenced correlation's firing as an event of correlation
    /// `outer` (reference position `p`): at the firing's time, with its
    /// group-by values as fields, the finding id as the event id. The key
    /// of the group it joins, or `None` when a field `outer` needs is not
    /// among them (counted in [`SessionStats::ungrouped`]).
    fn chain_event(&mut self, outer: usize, p: u16, event: &ChainEvent) -> Option<StateKey> {
        let engine = self.engine;
        let corr = &engine.correlations()[outer];
        let t = Some(event.t);
        let group = Strings(&event.group);
        let value = match corr.kind {
            CorrelationType::ValueCount => {
                let fields = corr.condition.field.as_deref().unwrap_or_default();
                write_values(&group, fields, &mut self.scratch2)
                    .then(|| value_digest_u64(&self.scratch2))
            }
            _ => Some(0),
        };
        let number = if is_numeric(corr.kind) {
            let field = corr.condition.field.as_deref().and_then(|f| f.first());
            field
                .and_then(|f| event.group.get(f))
                .and_then(|v| v.trim().parse::<f64>().ok())
                .filter(|x| x.is_finite())
        } else {
            None
        };
        self.group_of = None;
        let grouped = write_values(&group, &corr.group_fields[p as usize], &mut self.scratch);
        let (Some(t), Some(value), true) = (t, value, grouped) else {
            self.stats.ungrouped += 1;
            return None;
        };
        if is_numeric(corr.kind) && number.is_none() {
            self.stats.ungrouped += 1;
            return None;
        }
        self.stats.stateful_matches += 1;
        let key = self.state_key(Owner::Correlation(outer as u32), &self.scratch);
        let pending = pending_for(
            &mut self.pending,
            Owner::Correlation(outer as u32),
            &self.scratch,
        );
        let value = (corr.kind == CorrelationType::ValueCount).then_some(value);
        let index = self.ids.push(&event.id);
        pending
            .entries
            .push(Gathered::single(t, index, Some(p), value, number));
        if let Some(last) = &event.last {
            if pending.chained_last.as_ref().is_none_or(|(lt, _)| *lt <= t) {
                pending.chained_last = Some((t, last.clone()));
            }
        }
        Some(key)
    }

    /// Write the batch's state, handing each round's findings to `keep`
    /// before the round's state writes (the outbox order of
    /// [`Merge::take_findings`]): when `keep` or a write fails, the flush
    /// fails and the batch is read again later, and no finding is lost.
    /// A finding may come twice (a round whose write lost a race to another
    /// writer is merged again); it has the same id when its events are the
    /// same. [`Session::state_keys`], [`Session::merge`] and
    /// [`Session::settle`] give the same loop to an async store.
    pub fn flush_with<S: StateStore + ?Sized>(
        &mut self,
        store: &mut S,
        keep: &mut Keep<'_, S>,
    ) -> Result<(), StoreError> {
        let mut keys = self.state_keys();
        for _ in 0..FLUSH_ROUNDS {
            if keys.is_empty() {
                return Ok(());
            }
            let loaded = store.get_many(&keys)?;
            let mut merge = self.merge(&keys, loaded);
            let found = merge.take_findings();
            if !found.is_empty() {
                keep(store, found)?;
            }
            let written = store.put_many(&merge.writes)?;
            keys = self.settle(&keys, merge, &written);
        }
        if keys.is_empty() {
            return Ok(());
        }
        Err(attempts_exhausted(keys.len()))
    }

    /// Write the batch's state and return the findings it made (each id
    /// once), for callers that keep findings in memory, after the
    /// single-event findings held for folding (see
    /// [`Session::fold_repeats`]): the call at the end of an object.
    pub fn flush(&mut self, store: &mut dyn StateStore) -> Result<Vec<Finding>, StoreError> {
        let mut findings: Vec<Finding> = Vec::new();
        self.folds.release(&mut |f| findings.push(f));
        let mut seen = HashSet::new();
        self.flush_with(store, &mut |_, found| {
            findings.extend(found.into_iter().filter(|f| seen.insert(f.id.clone())));
            Ok(())
        })?;
        Ok(findings)
    }
}

/// Where [`Session::flush_with`] hands each round's findings, with the store.
pub type Keep<'k, S> = dyn FnMut(&mut S, Vec<Finding>) -> Result<(), StoreError> + 'k;

/// The error when groups kept changing during every attempt.
pub fn attempts_exhausted(groups: usize) -> StoreError {
    StoreError(format!(
        "state of {groups} group(s) kept changing during {MAX_ATTEMPTS} attempts; the batch will be retried"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_text_is_serde_json_text() {
        for values in [
            vec![],
            vec!["AKIA1".to_owned()],
            vec![
                "a\"b\\c".to_owned(),
                "\u{0}\u{1f}\u{7f}\n\t\r\u{8}\u{c}".to_owned(),
            ],
            vec!["é\u{202e}𝔸".to_owned(), String::new()],
            // Long enough for the vectorised check's wide steps, with the
            // one byte to escape at either end or in the middle.
            vec![
                "a".repeat(100) + "\"",
                "\u{1}".to_owned() + &"b".repeat(70),
                "c".repeat(33) + "\\" + &"d".repeat(40),
                "e".repeat(200),
            ],
        ] {
            let mut out = String::from("junk");
            out.clear();
            out.push('[');
            for (i, v) in values.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_json_string(&mut out, v);
            }
            out.push(']');
            assert_eq!(out, serde_json::to_string(&values).unwrap());
        }
    }
}
