//! Where stateful detection keeps its state, and the other stores the
//! pipeline writes to.
//!
//! The traits are shaped after DynamoDB so that the AWS side is a direct
//! mapping: one item per (rule, group key), read in batches, written with a
//! condition on its version (optimistic concurrency), with an expiry time
//! for TTL. [`MemoryStore`] implements them in memory; the command's embedded
//! file store and the DynamoDB stores implement the same contracts.
//!
//! The item body is our own serialised format ([`Body`]), versioned by its
//! `v` tag, so a store never depends on rsigma's internal types.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::finding::Finding;

/// Largest serialised item body (bytes) any traffic can make. DynamoDB
/// refuses items over 400 KB
/// (<https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ServiceQuotas.html>);
/// this budget keeps every write small (a write costs one write unit per
/// KB) and far below that limit. [`Body::fit`] enforces it.
pub const ITEM_BUDGET_BYTES: usize = 32 * 1024;

/// Longest text (bytes) kept of one attacker-chosen value in state: each
/// readable group value and each field of a [`Snapshot`].
pub const MAX_STATE_TEXT: usize = 256;

/// Longest text (bytes) a finding keeps of one field of its event
/// (principal, user agent, …): a hostile record cannot make a finding item
/// larger than the findings table accepts.
pub const MAX_FINDING_TEXT: usize = 2048;

/// Longest event id (bytes) kept as it is; a longer one (CloudTrail's are
/// 36-character UUIDs, a hostile file may say anything) is kept as a digest.
pub const MAX_EVENT_ID: usize = 64;

/// The key of one state item.
///
/// Both parts are bounded whatever the input: `rule` is a rule id from the
/// loaded rules, and `group` is [`group_digest`] of the group-by values
/// (32 hexadecimal characters), never the values themselves, which live
/// (truncated) in the item body.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct StateKey {
    /// The rule (correlation or baseline) id.
    pub rule: String,
    /// The group's digest, or `""` for the rule's own bookkeeping item.
    pub group: String,
}

/// The digest naming a group: 128 bits of SHA-256 over the group-by values
/// as a JSON array, in hexadecimal (32 characters). Fixed length, so no
/// value (an 1,100-character model id, say) can break a store's key.
pub fn group_digest(values_json: &str) -> String {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(values_json.as_bytes());
    hex::encode(&d[..16])
}

/// A short digest (64 bits of SHA-256, 16 hexadecimal characters) of one
/// counted value or value tuple: what state keeps instead of the text.
pub fn value_digest(text: &str) -> String {
    digest_text(value_digest_u64(text))
}

/// [`value_digest`] as the number its 16 hexadecimal characters spell
/// (the first 8 bytes of SHA-256, big-endian).
pub fn value_digest_u64(text: &str) -> u64 {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(text.as_bytes());
    u64::from_be_bytes(d[..8].try_into().expect("8 bytes"))
}

/// A [`value_digest_u64`] as its 16 hexadecimal characters.
pub fn digest_text(digest: u64) -> String {
    format!("{digest:016x}")
}

/// An event id as state keeps it: itself when it is at most
/// [`MAX_EVENT_ID`] bytes, else `h:` and its [`value_digest`] (an
/// attacker cannot grow an item through its ids).
pub fn bounded_event_id(id: &str) -> std::borrow::Cow<'_, str> {
    if id.len() > MAX_EVENT_ID {
        std::borrow::Cow::Owned(format!("h:{}", value_digest(id)))
    } else {
        std::borrow::Cow::Borrowed(id)
    }
}

/// `s` cut to at most `max` bytes on a character boundary.
pub fn truncate_text(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// One stored item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateItem {
    /// Its key.
    pub key: StateKey,
    /// Incremented on every write; writes are conditional on it.
    pub version: u64,
    /// When the item may be deleted (Unix seconds, by event time).
    pub expires_at: i64,
    /// What the rule remembers.
    pub body: Body,
}

/// What became of one conditional write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutOutcome {
    /// Stored.
    Stored,
    /// The stored version changed (another writer): re-read and merge again.
    Conflict,
    /// The store refused the item for good (for example DynamoDB's
    /// `ValidationException`), with its reason. The group's batch is given
    /// up, so that one group never blocks its object's other groups and
    /// findings; the caller logs it with rule and group and counts it.
    Refused(String),
}

/// A conditional write: store `item` if the stored version is `expected`
/// (`None`: only if no item exists).
#[derive(Debug, Clone, PartialEq)]
pub struct StateWrite {
    /// The new item (its `version` is `expected + 1`).
    pub item: StateItem,
    /// The version the write is conditional on.
    pub expected: Option<u64>,
}

/// What a correlation or baseline remembers for one group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Body {
    /// A correlation's window of events.
    Window(WindowBody),
    /// A first-seen or dormant baseline for one group.
    Baseline(BaselineBody),
    /// A rule's own bookkeeping (when its baseline started learning).
    Meta(MetaBody),
}

/// A correlation's events for one group.
///
/// Bounded by [`ITEM_BUDGET_BYTES`] whatever the traffic: values are kept
/// as digests, event ids are capped at [`MAX_EVENT_ID`] bytes, at most
/// `MAX_EXACT_ENTRIES` (session) events are kept one by one and beyond that
/// events of the same rule and value close in time are folded into runs
/// (see [`Entry::n`]), and [`Body::fit`] drops the oldest entries as a last
/// resort.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct WindowBody {
    /// The group-by values, readable, each cut to [`MAX_STATE_TEXT`] bytes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub group: Vec<String>,
    /// Events (and runs of events) in time order.
    pub entries: Vec<Entry>,
    /// Events the real-time path merged ahead of their log files, in time
    /// order, one by one with their ids (counting windows only, at most
    /// `MAX_EARLY_ENTRIES` (session)): counted with `entries`, and
    /// replaced by the log file's copy of the event when it comes, so an
    /// event seen both ways counts once (see `Session::set_early`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub early: Vec<Entry>,
    /// The batches (an object, or one flush of a very large object) merged
    /// into this item, most recent last, as 16-hex digests; a batch merged
    /// again (a redelivered object, a retried message) changes nothing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub batches: Vec<String>,
    /// Events at or before this time (ms) belong to a window that already
    /// fired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fired_until: Option<i64>,
    /// Who and where, from the latest event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<Snapshot>,
    /// The latest firings (at most [`MAX_FIRED`]), for correlations over
    /// this one (chained correlations): merging a batch this window already
    /// holds, or a batch with an event of a window that already fired,
    /// hands them on again, so a chain that failed between rounds, or a
    /// correlation over this one added later, still gets them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fired: Vec<Fired>,
}

/// Most firings a window remembers for chained correlations (about 60
/// bytes each): a correlation over this one added later, or a chain
/// whose next round failed, gets at most this many of a group's latest
/// firings again.
pub const MAX_FIRED: usize = 32;

/// One firing of a correlation window.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Fired {
    /// The time of the window's last event, ms since the epoch.
    pub t: i64,
    /// The finding's id.
    pub id: String,
}

/// One event in a correlation window, or a run of events of the same rule
/// and value (`n` > 1, from `t` to `t1`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Event time, ms since the epoch (a run's first event).
    pub t: i64,
    /// The event id, at most [`MAX_EVENT_ID`] bytes (duplicates are
    /// ignored, so the same event from two objects counts once); a run's
    /// first event's.
    pub id: String,
    /// Which referenced rule matched (index into the correlation's rules).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r: Option<u16>,
    /// The value counted by `value_count`, as [`value_digest`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub v: Option<String>,
    /// How many events this entry stands for (1 unless it is a run).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub n: u32,
    /// A run's last event time (ms); absent for a single event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub t1: Option<i64>,
    /// The numeric field of `value_sum`, `value_avg`, `value_percentile` and
    /// `value_median` (a run's: the sum over its events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<f64>,
}

fn one() -> u32 {
    1
}

fn is_one(n: &u32) -> bool {
    *n == 1
}

impl Entry {
    /// A single event.
    pub fn single(t: i64, id: &str, r: Option<u16>, v: Option<String>) -> Entry {
        Entry {
            t,
            id: bounded_event_id(id).into_owned(),
            r,
            v,
            n: 1,
            t1: None,
            x: None,
        }
    }

    /// The last event time this entry covers.
    pub fn end(&self) -> i64 {
        self.t1.unwrap_or(self.t)
    }
}

/// A baseline's memory for one group.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct BaselineBody {
    /// The group-by values, readable, each cut to [`MAX_STATE_TEXT`] bytes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub group: Vec<String>,
    /// Value tuple ([`value_digest`] of the values as a JSON array) → last
    /// seen (ms); at most `MAX_TUPLES` (session), the least recently seen
    /// forgotten first. For dormant rules the tuple is empty and this is
    /// the group's last activity.
    pub seen: BTreeMap<String, i64>,
    /// Who and where, from the latest event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<Snapshot>,
}

/// A rule's own bookkeeping.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MetaBody {
    /// The earliest event time (ms) the rule has seen.
    pub first_event: i64,
}

/// The reportable fields of an event, kept with state so a finding made
/// later can say who did it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Snapshot {
    /// `eventTime`.
    pub event_time: String,
    /// The event id.
    pub event_id: String,
    /// Account.
    #[serde(default)]
    pub account: Option<String>,
    /// Region.
    #[serde(default)]
    pub region: Option<String>,
    /// Principal ARN.
    #[serde(default)]
    pub principal: Option<String>,
    /// `userIdentity.type`.
    #[serde(default)]
    pub principal_type: Option<String>,
    /// Access key id.
    #[serde(default)]
    pub access_key_id: Option<String>,
    /// Source IP.
    #[serde(default)]
    pub source_ip: Option<String>,
    /// User agent.
    #[serde(default)]
    pub user_agent: Option<String>,
    /// `eventSource`.
    pub event_source: String,
    /// `eventName`.
    pub event_name: String,
    /// `errorCode`.
    #[serde(default)]
    pub error_code: Option<String>,
}

impl Body {
    /// The size of the body as stored (its JSON text), in bytes.
    pub fn encoded_len(&self) -> usize {
        serde_json::to_vec(self).map_or(usize::MAX, |v| v.len())
    }

    /// Make the body fit in `budget` bytes: drop the oldest window entries
    /// (or least recently seen baseline tuples), then the snapshot, until
    /// it does. Returns how many entries or tuples were dropped. Normal
    /// traffic never reaches this (see [`WindowBody`]); it is the guarantee
    /// that no input can make an item the store refuses.
    pub fn fit(&mut self, budget: usize) -> usize {
        let mut dropped = 0;
        loop {
            let len = self.encoded_len();
            if len <= budget {
                return dropped;
            }
            // Drop in proportion to the excess (at least one).
            let share = |n: usize| ((n * (len - budget)) / len).max(1).min(n);
            match self {
                Body::Window(w) if !w.entries.is_empty() => {
                    let k = share(w.entries.len());
                    w.entries.drain(..k);
                    dropped += k;
                }
                Body::Window(w) if !w.early.is_empty() => {
                    let k = share(w.early.len());
                    w.early.drain(..k);
                    dropped += k;
                }
                Body::Baseline(b) if !b.seen.is_empty() => {
                    let k = share(b.seen.len());
                    let mut by_age: Vec<(i64, String)> =
                        b.seen.iter().map(|(k, t)| (*t, k.clone())).collect();
                    by_age.sort();
                    for (_, key) in by_age.into_iter().take(k) {
                        b.seen.remove(&key);
                    }
                    dropped += k;
                }
                Body::Window(WindowBody { last, .. }) if last.is_some() => *last = None,
                Body::Baseline(BaselineBody { last, .. }) if last.is_some() => *last = None,
                Body::Window(w) if !w.group.is_empty() => w.group.clear(),
                Body::Baseline(b) if !b.group.is_empty() => b.group.clear(),
                // Nothing attacker-sized is left.
                _ => return dropped,
            }
        }
    }
}

/// Readable group values for a body: each cut to [`MAX_STATE_TEXT`] bytes.
pub fn bounded_group(values: &[String]) -> Vec<String> {
    values
        .iter()
        .map(|v| truncate_text(v, MAX_STATE_TEXT).to_owned())
        .collect()
}

impl Snapshot {
    /// The snapshot with every field cut to [`MAX_STATE_TEXT`] bytes, as
    /// state keeps it.
    pub fn bounded(self) -> Snapshot {
        self.bounded_to(MAX_STATE_TEXT)
    }

    /// The snapshot with every field cut to `max` bytes (on a character
    /// boundary).
    pub fn bounded_to(mut self, max: usize) -> Snapshot {
        let cut = |s: &mut String| {
            let n = truncate_text(s, max).len();
            s.truncate(n);
        };
        for s in [
            &mut self.event_time,
            &mut self.event_id,
            &mut self.event_source,
            &mut self.event_name,
        ] {
            cut(s);
        }
        for s in [
            &mut self.account,
            &mut self.region,
            &mut self.principal,
            &mut self.principal_type,
            &mut self.access_key_id,
            &mut self.source_ip,
            &mut self.user_agent,
            &mut self.error_code,
        ]
        .into_iter()
        .flatten()
        {
            cut(s);
        }
        self
    }

    /// The snapshot of a record, from its text.
    pub fn from_raw(raw: &str) -> Option<Snapshot> {
        let record = trailwarden_cloudtrail::Record::parse(raw).ok()?;
        Some(Snapshot::of_record(&record))
    }

    /// The snapshot of a record, each field cut to [`MAX_FINDING_TEXT`]
    /// bytes (so no record can make a finding the findings table refuses).
    pub fn of_record(record: &trailwarden_cloudtrail::Record<'_>) -> Snapshot {
        Self::of_record_whole(record).bounded_to(MAX_FINDING_TEXT)
    }

    fn of_record_whole(record: &trailwarden_cloudtrail::Record<'_>) -> Snapshot {
        let identity = record.identity();
        let principal = Some(identity.principal());
        let s = |v: Option<&str>| v.map(str::to_owned);
        Snapshot {
            // Every accepted layout (ISO 8601, or the space-separated one of
            // published attack-simulation logs) stored as RFC 3339 UTC, so
            // times compare as text everywhere.
            event_time: match record.event_time() {
                Some(t) if trailwarden_cloudtrail::is_canonical_event_time(t) => t.to_owned(),
                _ => record
                    .event_time_millis()
                    .and_then(chrono::DateTime::from_timestamp_millis)
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                    .unwrap_or_else(|| record.event_time().unwrap_or_default().to_owned()),
            },
            event_id: crate::finding::event_id(record),
            account: s(record.recipient_account_id()).or(identity.account_id),
            region: s(record.aws_region()),
            principal,
            principal_type: identity.kind,
            access_key_id: identity.access_key_id,
            source_ip: s(record.source_ip_address()),
            user_agent: s(record.user_agent()),
            event_source: record.event_source().unwrap_or_default().to_owned(),
            event_name: record.event_name().unwrap_or_default().to_owned(),
            error_code: s(record.error_code()),
        }
    }

    /// A finding about this event by the rule `rule_id`: who and where from
    /// the snapshot, the rest from the rule. The caller sets the id, and the
    /// count, group and note where they differ from a single event's.
    pub fn into_finding(self, rule: crate::finding::RuleHeader<'_>) -> Finding {
        Finding {
            id: String::new(),
            rule_id: rule.id.to_owned(),
            rule_title: rule.title.to_owned(),
            level: rule.level,
            tags: rule.tags.to_vec(),
            description: rule.description.to_owned(),
            event_time: self.event_time,
            last_event_time: None,
            account: self.account,
            region: self.region,
            principal: self.principal,
            principal_type: self.principal_type,
            access_key_id: self.access_key_id,
            source_ip: self.source_ip,
            user_agent: self.user_agent,
            event_source: self.event_source,
            event_name: self.event_name,
            error_code: self.error_code,
            event_ids: if self.event_id.is_empty() {
                Vec::new()
            } else {
                vec![self.event_id]
            },
            count: 1,
            group: BTreeMap::new(),
            note: None,
        }
    }

    /// The snapshot of a single-event finding.
    pub fn of(f: &Finding) -> Snapshot {
        Snapshot {
            event_time: f.event_time.clone(),
            event_id: f.event_ids.first().cloned().unwrap_or_default(),
            account: f.account.clone(),
            region: f.region.clone(),
            principal: f.principal.clone(),
            principal_type: f.principal_type.clone(),
            access_key_id: f.access_key_id.clone(),
            source_ip: f.source_ip.clone(),
            user_agent: f.user_agent.clone(),
            event_source: f.event_source.clone(),
            event_name: f.event_name.clone(),
            error_code: f.error_code.clone(),
        }
    }
}

/// A store could not do what was asked.
#[derive(Debug, Error)]
#[error("{0}")]
pub struct StoreError(pub String);

/// State for correlations and baselines.
pub trait StateStore {
    /// Read items (missing ones are `None`), in the order of `keys`.
    fn get_many(&mut self, keys: &[StateKey]) -> Result<Vec<Option<StateItem>>, StoreError>;
    /// Write items, each only if its condition holds. Returns, per write,
    /// what became of it ([`PutOutcome`]). An `Err` is a failure of the
    /// store as a whole (unreachable): the batch is retried later.
    fn put_many(&mut self, writes: &[StateWrite]) -> Result<Vec<PutOutcome>, StoreError>;
    /// Every item of one rule (for sweeps over baselines).
    fn scan_rule(&mut self, rule: &str) -> Result<Vec<StateItem>, StoreError>;
}

/// An object that was read: its identity and version.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectRef {
    /// Where it is: a path, or `s3://bucket/key`.
    pub id: String,
    /// Which version: size and modification time locally, the ETag on S3.
    pub version: String,
}

/// The record of objects already processed, so re-reading is a no-op.
pub trait Ledger {
    /// Whether this object (at this version) was processed to the end.
    fn is_done(&mut self, object: &ObjectRef) -> Result<bool, StoreError>;
    /// Record that it was.
    fn mark_done(&mut self, object: &ObjectRef, records: u64) -> Result<(), StoreError>;
}

/// Where findings are kept.
pub trait FindingStore {
    /// Store a finding. The id is the key: a repeat increments the stored
    /// count and last-seen time instead of adding a second one. Returns true
    /// when the finding is new.
    fn put_finding(&mut self, finding: &Finding) -> Result<bool, StoreError>;
}

/// All three stores in memory.
#[derive(Debug, Default)]
pub struct MemoryStore {
    items: HashMap<StateKey, StateItem>,
    done: HashMap<ObjectRef, u64>,
    findings: BTreeMap<String, (Finding, u64)>,
    /// Fail every call (for tests of an unreachable store).
    pub fail: bool,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Findings stored, with how often each was seen.
    pub fn findings(&self) -> impl Iterator<Item = (&Finding, u64)> {
        self.findings.values().map(|(f, n)| (f, *n))
    }

    fn check(&self) -> Result<(), StoreError> {
        if self.fail {
            Err(StoreError("memory store set to fail".into()))
        } else {
            Ok(())
        }
    }
}

impl StateStore for MemoryStore {
    fn get_many(&mut self, keys: &[StateKey]) -> Result<Vec<Option<StateItem>>, StoreError> {
        self.check()?;
        Ok(keys.iter().map(|k| self.items.get(k).cloned()).collect())
    }

    fn put_many(&mut self, writes: &[StateWrite]) -> Result<Vec<PutOutcome>, StoreError> {
        self.check()?;
        Ok(writes
            .iter()
            .map(|w| {
                let current = self.items.get(&w.item.key).map(|i| i.version);
                if current == w.expected {
                    self.items.insert(w.item.key.clone(), w.item.clone());
                    PutOutcome::Stored
                } else {
                    PutOutcome::Conflict
                }
            })
            .collect())
    }

    fn scan_rule(&mut self, rule: &str) -> Result<Vec<StateItem>, StoreError> {
        self.check()?;
        let mut items: Vec<StateItem> = self
            .items
            .values()
            .filter(|i| i.key.rule == rule)
            .cloned()
            .collect();
        items.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(items)
    }
}

impl Ledger for MemoryStore {
    fn is_done(&mut self, object: &ObjectRef) -> Result<bool, StoreError> {
        self.check()?;
        Ok(self.done.contains_key(object))
    }

    fn mark_done(&mut self, object: &ObjectRef, records: u64) -> Result<(), StoreError> {
        self.check()?;
        self.done.insert(object.clone(), records);
        Ok(())
    }
}

impl FindingStore for MemoryStore {
    fn put_finding(&mut self, finding: &Finding) -> Result<bool, StoreError> {
        self.check()?;
        match self.findings.get_mut(&finding.id) {
            Some((_, n)) => {
                *n += 1;
                Ok(false)
            }
            None => {
                self.findings
                    .insert(finding.id.clone(), (finding.clone(), 1));
                Ok(true)
            }
        }
    }
}
