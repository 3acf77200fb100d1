//! Repeats of a single-event finding folded into one (see
//! [`Session::fold_repeats`](super::Session::fold_repeats)).
//!
//! Within one log object, the matches of one single-event rule by records
//! alike in everything a finding shows of an event (the caller's
//! `userIdentity` fields a finding takes its principal, principal type,
//! access key and account from, `recipientAccountId`, `awsRegion`, `sourceIPAddress`,
//! `userAgent`, `eventSource`, `eventName` and `errorCode`) make one
//! finding: the first record's, with `count` the number of records and
//! `event_ids` the first [`MAX_EVENT_IDS`] of them. Only `eventTime`,
//! `eventID` and the request and response differ between the records
//! folded; the note gives the span of their event times.
//!
//! The folded finding keeps the id of the first record's finding
//! ([`crate::finding::finding_id`] of the rule and that record's event id), so a rule that
//! matched once has the finding and id it always had, and reading the
//! same object again gives the same findings with the same counts (the
//! fold depends on the object's records and their order alone).

use hashbrown::HashTable;
use std::hash::BuildHasher;
use trailwarden_cloudtrail::Record;

use crate::finding::{event_id, event_id_ref, Finding, MAX_EVENT_IDS};
use crate::rules::Rule;
use crate::state::{truncate_text, MAX_FINDING_TEXT};

/// Most findings held for folding at once: past it, those held are handed
/// out and folding starts over (memory stays bounded on an object where
/// every caller differs).
pub const MAX_FOLDED: usize = 4096;

/// Most bytes of text the findings held for folding and their keys may
/// take (an estimate: their texts' lengths): a new finding that would pass
/// it hands out those held first, so an object of records with long
/// attacker-chosen fields cannot grow memory past it (each field is cut to
/// [`MAX_FINDING_TEXT`] bytes in the key, as in the finding).
pub const MAX_FOLDED_BYTES: usize = 16 << 20;

/// Records of an object one fold spans at most: the held findings are
/// handed out as the reader passes each multiple of it (see
/// [`Session::next_record`](super::Session::next_record)), so a reader
/// stopped part way through a very large object (a function out of time)
/// has stored what it found before the last multiple.
pub const FOLD_RECORDS: u64 = 50_000;

/// The findings held for folding, with the text that says which records
/// fold together.
#[derive(Default)]
pub(super) struct Folds {
    /// Whether to fold at all.
    pub(super) on: bool,
    /// Per held finding: the hash of its key and its position in `held`.
    table: HashTable<(u64, u32)>,
    held: Vec<Held>,
    /// The current record's key (reused).
    key: Vec<u8>,
    hasher: hashbrown::DefaultHashBuilder,
    /// The [`FOLD_RECORDS`] stretch of the object the held findings are of.
    stretch: u64,
    /// Digests of (held finding, event id) folded so far: a record that
    /// appears twice in an object counts once, as its id makes one finding
    /// without folding.
    seen: hashbrown::HashSet<u64>,
    /// The bytes the held findings and keys take (see [`MAX_FOLDED_BYTES`]).
    bytes: usize,
}

struct Held {
    key: Box<[u8]>,
    finding: Finding,
    /// The earliest and latest event times (epoch milliseconds) folded.
    span: Option<(i64, i64)>,
}

/// Write what decides whether two matches fold together: the rule's
/// position and each field as the finding shows it (cut to
/// [`MAX_FINDING_TEXT`] bytes), length-prefixed (so no two different
/// tuples write the same bytes), absent told from empty.
fn write_key(out: &mut Vec<u8>, rule: usize, record: &Record<'_>) {
    out.extend_from_slice(&(rule as u64).to_le_bytes());
    let identity = record.identity();
    for field in [
        identity.kind.as_deref(),
        identity.arn.as_deref(),
        identity.account_id.as_deref(),
        identity.access_key_id.as_deref(),
        identity.user_name.as_deref(),
        identity.session_issuer_arn.as_deref(),
        identity.principal_id.as_deref(),
        identity.invoked_by.as_deref(),
        record.recipient_account_id(),
        record.aws_region(),
        record.source_ip_address(),
        record.user_agent(),
        record.event_source(),
        record.event_name(),
        record.error_code(),
    ] {
        match field {
            None => out.push(0),
            Some(text) => {
                let text = truncate_text(text, MAX_FINDING_TEXT);
                out.push(1);
                out.extend_from_slice(&(text.len() as u64).to_le_bytes());
                out.extend_from_slice(text.as_bytes());
            }
        }
    }
}

impl Folds {
    /// A match of the single-event rule at position `index` by `record`:
    /// folded into the finding held for records alike, or held as a new
    /// one (handing out everything held first when [`MAX_FOLDED`] are).
    pub(super) fn add(
        &mut self,
        index: usize,
        rule: &Rule,
        record: &Record<'_>,
        emit: &mut dyn FnMut(Finding),
    ) {
        self.key.clear();
        write_key(&mut self.key, index, record);
        let hash = self.hasher.hash_one(&self.key[..]);
        let t = record.event_time_millis();
        let Folds {
            table,
            held,
            key,
            seen,
            hasher,
            ..
        } = self;
        if let Some(&(_, at)) = table.find(hash, |&(h, at)| {
            h == hash && *held[at as usize].key == key[..]
        }) {
            if !seen.insert(hasher.hash_one((at, event_id_ref(record)))) {
                return;
            }
            let h = &mut held[at as usize];
            h.finding.count += 1;
            if h.finding.event_ids.len() < MAX_EVENT_IDS {
                h.finding.event_ids.push(event_id(record));
            }
            if let Some(t) = t {
                h.span = Some(match h.span {
                    Some((lo, hi)) => (lo.min(t), hi.max(t)),
                    None => (t, t),
                });
            }
            return;
        }
        let finding = Finding::from_record(rule, record);
        let bytes = self.key.len() + text_bytes(&finding);
        if self.held.len() >= MAX_FOLDED || self.bytes + bytes > MAX_FOLDED_BYTES {
            self.release(emit);
        }
        self.bytes += bytes;
        let at = self.held.len() as u32;
        self.seen
            .insert(self.hasher.hash_one((at, event_id_ref(record))));
        self.held.push(Held {
            key: self.key.as_slice().into(),
            finding,
            span: t.map(|t| (t, t)),
        });
        self.table.insert_unique(hash, (hash, at), |&(h, _)| h);
    }

    /// The object's record at position `index` comes next: hand out what
    /// is held when it starts another [`FOLD_RECORDS`] stretch. (Only
    /// records that match reach a session on some paths, so a stretch is
    /// told by the position, not by counting.)
    pub(super) fn next_record(&mut self, index: u64, emit: &mut dyn FnMut(Finding)) {
        let stretch = index / FOLD_RECORDS;
        if stretch != self.stretch {
            self.stretch = stretch;
            self.release(emit);
        }
    }

    /// Hand out every finding held, in the order of their first records.
    pub(super) fn release(&mut self, emit: &mut dyn FnMut(Finding)) {
        self.table.clear();
        self.seen.clear();
        self.bytes = 0;
        for Held {
            mut finding, span, ..
        } in self.held.drain(..)
        {
            if finding.count > 1 {
                finding.note = Some(fold_note(finding.count, span));
                finding.last_event_time = span.map(|(_, hi)| time_text(hi));
            }
            emit(finding);
        }
    }
}

/// The bytes of a finding's texts, the most it holds (event ids grow to
/// [`MAX_EVENT_IDS`]; each is counted at its own length as the first is).
fn text_bytes(f: &Finding) -> usize {
    let opt = |s: &Option<String>| s.as_ref().map_or(0, String::len);
    let first_id = f.event_ids.first().map_or(0, String::len);
    f.id.len()
        + f.rule_id.len()
        + f.rule_title.len()
        + f.description.len()
        + f.tags.iter().map(String::len).sum::<usize>()
        + f.event_time.len()
        + f.event_source.len()
        + f.event_name.len()
        + [
            &f.account,
            &f.region,
            &f.principal,
            &f.principal_type,
            &f.access_key_id,
            &f.source_ip,
            &f.user_agent,
            &f.error_code,
        ]
        .into_iter()
        .map(opt)
        .sum::<usize>()
        + first_id.max(64) * MAX_EVENT_IDS
}

/// Epoch milliseconds as RFC 3339 UTC to the second.
fn time_text(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// The note of a finding that folds `count` records (`span`: the earliest
/// and latest event times; records without one are counted, not spanned).
fn fold_note(count: u64, span: Option<(i64, i64)>) -> String {
    let mut note = format!(
        "{count} matching events in one log file with the same caller, account, Region, \
         source address, user agent, call and error code"
    );
    if let Some((lo, hi)) = span {
        note.push_str(&format!(", {} to {}", time_text(lo), time_text(hi)));
    }
    note.push_str(&format!(
        " (event_ids lists the first {})",
        count.min(MAX_EVENT_IDS as u64)
    ));
    note
}
