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

/// The key of one state item.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct StateKey {
    /// The rule (correlation or baseline) id: the partition.
    pub rule: String,
    /// The group key (group-by values joined), or `""` for the rule's own
    /// bookkeeping item.
    pub group: String,
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
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct WindowBody {
    /// Events in time order.
    pub entries: Vec<Entry>,
    /// Events at or before this time (ms) belong to a window that already
    /// fired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fired_until: Option<i64>,
    /// Who and where, from the latest event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<Snapshot>,
}

/// One event in a correlation window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Event time, ms since the epoch.
    pub t: i64,
    /// The event id (duplicates are ignored, so redelivery is harmless).
    pub id: String,
    /// Which referenced rule matched (index into the correlation's rules).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r: Option<u16>,
    /// The value counted by `value_count`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub v: Option<String>,
}

/// A baseline's memory for one group.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct BaselineBody {
    /// Value tuple (joined) → last seen (ms). For dormant rules the tuple is
    /// empty and this is the group's last activity.
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

impl Snapshot {
    /// The snapshot of a record, from its text.
    pub fn from_raw(raw: &str) -> Option<Snapshot> {
        let record = trailwarden_cloudtrail::Record::parse(raw).ok()?;
        Some(Snapshot::of_record(&record))
    }

    /// The snapshot of a record.
    pub fn of_record(record: &trailwarden_cloudtrail::Record<'_>) -> Snapshot {
        let identity = record.identity();
        let s = |v: Option<&str>| v.map(str::to_owned);
        Snapshot {
            event_time: record.event_time().unwrap_or_default().to_owned(),
            event_id: crate::finding::event_id(record),
            account: s(record.recipient_account_id()).or(identity.account_id),
            region: s(record.aws_region()),
            principal: identity.arn,
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
    /// whether it was stored (false: the version changed; re-read and retry).
    fn put_many(&mut self, writes: &[StateWrite]) -> Result<Vec<bool>, StoreError>;
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

    fn put_many(&mut self, writes: &[StateWrite]) -> Result<Vec<bool>, StoreError> {
        self.check()?;
        Ok(writes
            .iter()
            .map(|w| {
                let current = self.items.get(&w.item.key).map(|i| i.version);
                if current == w.expected {
                    self.items.insert(w.item.key.clone(), w.item.clone());
                    true
                } else {
                    false
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
