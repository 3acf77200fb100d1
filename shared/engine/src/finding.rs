//! Findings: what a rule match produces, with a deterministic id.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use trailwarden_cloudtrail::Record;

/// Severity, ordered from least to most severe (Sigma's levels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Worth recording, not worth a look on its own.
    Informational,
    /// Low.
    Low,
    /// Medium.
    Medium,
    /// High.
    High,
    /// Critical.
    Critical,
}

impl Level {
    /// All levels, least severe first.
    pub const ALL: [Level; 5] = [
        Level::Informational,
        Level::Low,
        Level::Medium,
        Level::High,
        Level::Critical,
    ];

    /// The lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Informational => "informational",
            Level::Low => "low",
            Level::Medium => "medium",
            Level::High => "high",
            Level::Critical => "critical",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Level {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Level::ALL
            .into_iter()
            .find(|l| l.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                format!("unknown level {s:?}: use informational, low, medium, high or critical")
            })
    }
}

impl From<rsigma_parser::Level> for Level {
    fn from(l: rsigma_parser::Level) -> Self {
        match l {
            rsigma_parser::Level::Informational => Level::Informational,
            rsigma_parser::Level::Low => Level::Low,
            rsigma_parser::Level::Medium => Level::Medium,
            rsigma_parser::Level::High => Level::High,
            rsigma_parser::Level::Critical => Level::Critical,
        }
    }
}

/// A rule match: who did what, where and when, and which rule says it matters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// Deterministic: derived from the rule id and the event ids, so the same
    /// event(s) never make two findings. A finding that folds repeats of
    /// one call has the id of its first event's single-event finding.
    pub id: String,
    /// The rule's id.
    pub rule_id: String,
    /// The rule's title.
    pub rule_title: String,
    /// Severity.
    pub level: Level,
    /// The rule's tags (ATT&CK and others).
    pub tags: Vec<String>,
    /// The rule's description.
    pub description: String,
    /// `eventTime` of the (first) event.
    pub event_time: String,
    /// For a finding that folds repeats of one call (see
    /// [`crate::Session::fold_repeats`]): the latest `eventTime` of the
    /// events folded, RFC 3339 UTC; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_event_time: Option<String>,
    /// The account the event happened in (`recipientAccountId`, else the caller's).
    pub account: Option<String>,
    /// `awsRegion`.
    pub region: Option<String>,
    /// The caller's ARN (or the invoking service).
    pub principal: Option<String>,
    /// `userIdentity.type`.
    pub principal_type: Option<String>,
    /// `userIdentity.accessKeyId`.
    pub access_key_id: Option<String>,
    /// `sourceIPAddress`.
    pub source_ip: Option<String>,
    /// `userAgent`. Attacker-controlled text: escape before display.
    pub user_agent: Option<String>,
    /// `eventSource`.
    pub event_source: String,
    /// `eventName`.
    pub event_name: String,
    /// `errorCode`, when the call failed.
    pub error_code: Option<String>,
    /// The ids of the events that caused the finding (at most
    /// [`MAX_EVENT_IDS`]; `count` says how many there were).
    pub event_ids: Vec<String>,
    /// How many events made the finding: for a single-event rule, 1, or
    /// the repeats folded into it.
    pub count: u64,
    /// For correlations and baselines: the group-by fields and their values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub group: BTreeMap<String, String>,
    /// What the engine adds: the new value for a first-seen rule, the idle
    /// time for a dormant principal, the window for a correlation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Finding {
    /// The latest event time the finding covers: `last_event_time` where
    /// it folds repeats, else `event_time`. A suppression that expires
    /// applies only to findings whose events all come before it expires.
    pub fn latest_event_time(&self) -> &str {
        self.last_event_time.as_deref().unwrap_or(&self.event_time)
    }

    /// Whether the finding folds repeats of one call (it has
    /// `last_event_time`): the stores keep the one of it made from the
    /// most events when its id comes again.
    pub fn folds_repeats(&self) -> bool {
        self.last_event_time.is_some()
    }
}

/// Most event ids a finding lists.
pub const MAX_EVENT_IDS: usize = 20;

/// The id of a finding of `rule_id` caused by `event_ids` (order-independent).
pub fn finding_id(rule_id: &str, event_ids: &[String]) -> String {
    let mut h = Sha256::new();
    h.update(rule_id.as_bytes());
    // A single-event finding (most of them) needs no sorting.
    if let [id] = event_ids {
        h.update(b"\n");
        h.update(id.as_bytes());
    } else {
        let mut ids: Vec<&str> = event_ids.iter().map(String::as_str).collect();
        ids.sort_unstable();
        ids.dedup();
        for id in ids {
            h.update(b"\n");
            h.update(id.as_bytes());
        }
    }
    let digest = h.finalize();
    let mut text = [0u8; 3 + 32];
    text[..3].copy_from_slice(b"tw-");
    hex::encode_to_slice(&digest[..16], &mut text[3..]).expect("32 hex digits fit");
    String::from_utf8(text.to_vec()).expect("ASCII")
}

/// The id CloudTrail gave an event, or, where it gave none, a stable hash of
/// the record's text.
pub fn event_id(record: &Record<'_>) -> String {
    event_id_ref(record).into_owned()
}

/// [`event_id`], borrowed from the record where CloudTrail gave one.
pub fn event_id_ref<'r>(record: &'r Record<'_>) -> std::borrow::Cow<'r, str> {
    match record.event_id() {
        Some(id) if !id.is_empty() => std::borrow::Cow::Borrowed(id),
        _ => {
            let digest = Sha256::digest(record.raw().as_bytes());
            std::borrow::Cow::Owned(format!("sha256:{}", hex::encode(&digest[..16])))
        }
    }
}

/// What a finding takes from the rule that made it.
#[derive(Debug, Clone, Copy)]
pub struct RuleHeader<'r> {
    /// Rule id.
    pub id: &'r str,
    /// Title.
    pub title: &'r str,
    /// Level.
    pub level: Level,
    /// Tags.
    pub tags: &'r [String],
    /// Description.
    pub description: &'r str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_deterministic_and_order_free() {
        let a = finding_id("r1", &["e1".into(), "e2".into()]);
        assert_eq!(a, finding_id("r1", &["e2".into(), "e1".into()]));
        assert_ne!(a, finding_id("r2", &["e1".into(), "e2".into()]));
        assert_ne!(a, finding_id("r1", &["e1".into()]));
        assert_eq!(a.len(), 3 + 32);
        // The ids stores already hold: SHA-256 of the rule id and the
        // sorted, distinct event ids, one per line; "tw-" and the first
        // 16 bytes in hex.
        assert_eq!(a, "tw-3522951c1fc0424b10e8f63ba91ca276");
        assert_eq!(
            finding_id("r1", &["e1".into()]),
            "tw-1d4d5a747e4fc928b329033004b0ecf4"
        );
        assert_eq!(
            finding_id("r1", &["e1".into(), "e1".into()]),
            finding_id("r1", &["e1".into()])
        );
    }

    #[test]
    fn a_canonical_event_time_is_stored_as_written_and_any_other_as_rfc_3339() {
        use trailwarden_cloudtrail::{is_canonical_event_time, parse_event_time};
        let formatted = |t: &str| {
            parse_event_time(t)
                .and_then(chrono::DateTime::from_timestamp_millis)
                .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        };
        for t in [
            "2026-11-29T03:04:05Z",
            "2024-02-29T23:59:59Z",
            "2000-02-29T00:00:00Z",
            "1970-01-01T00:00:00Z",
            "0001-12-31T12:00:00Z",
            "0000-02-29T00:00:00Z",
        ] {
            assert!(is_canonical_event_time(t), "{t}");
            assert_eq!(formatted(t).as_deref(), Some(t));
        }
        // Not as CloudTrail writes it, or not a real instant: these go
        // through parsing (a day past the month's end or a leap second
        // rolls over there).
        for t in [
            "2025-02-29T00:00:00Z",
            "1900-02-29T00:00:00Z",
            "2026-04-31T00:00:00Z",
            "2026-12-31T23:59:60Z",
            "2026-13-01T00:00:00Z",
            "2026-11-29T24:00:00Z",
            "2026-11-29T03:04:05.123Z",
            "2026-11-29 03:04:05Z",
            "2026-11-29T03:04:05+01:00",
            "2026-11-29T03:04:05z",
            "2026-1a-29T03:04:05Z",
            "",
        ] {
            assert!(!is_canonical_event_time(t), "{t}");
        }
    }

    #[test]
    fn levels_order_and_parse() {
        assert!(Level::Critical > Level::High && Level::Low > Level::Informational);
        assert_eq!("HIGH".parse::<Level>(), Ok(Level::High));
        assert!("urgent".parse::<Level>().is_err());
    }
}
