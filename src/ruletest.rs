//! Rule test events: each rule file `x.yml` may have `x.test.json` beside it,
//!
//! ```json
//! {"cases": [
//!   {"name": "what it shows", "expect": 1, "events": [ {CloudTrail record}, … ]}
//! ]}
//! ```
//!
//! where `expect` is how many findings the file's rules make from the events
//! (single-event rules, correlations and baselines; rules that only feed a
//! correlation make none of their own). The events run against the whole set
//! of rule files tested together, as a scan with those rules would load them
//! (a correlation may refer to a rule in another file), and the findings of
//! the rules defined in the file are counted. Each case runs on fresh state,
//! its events in order, as one batch. An optional top-level `"policy"` gives
//! the organisation facts the rules' placeholders need.
//!
//! A rule that counts (a bulk read, a burst) needs many events; one event
//! stands for `repeat` copies of itself, `every` apart in event time
//! (`30s`, `5m`, `1h`; `1s` when not given):
//!
//! ```json
//! {"repeat": 120, "every": "4s", "event": {CloudTrail record with "{i}" in its eventID}}
//! ```
//!
//! Copy `i` (from 0) has `{i}` in every string value (not in keys)
//! replaced by `i` and its
//! `eventTime` moved on by `i × every`. The record's `eventID` must hold
//! `{i}`, so each copy is a different event (CloudTrail never repeats an id;
//! the engine counts an id once). At most [`MAX_REPEAT`] copies an event.
//!
//! A rule file without a test file is reported untested, not failed (third-
//! party rules come without test events); `rules validate` checks that it
//! loads.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use trailwarden_cloudtrail::Record;
use trailwarden_engine::{Engine, Finding, MemoryStore, Policy, RuleSetBuilder, Session};

/// A rule's test file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestFile {
    /// Organisation facts for the rules' placeholders (policy file keys).
    #[serde(default)]
    pub policy: Option<serde_json::Value>,
    /// The cases.
    pub cases: Vec<Case>,
}

/// One case: events in, a number of findings out.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// What the case shows.
    pub name: String,
    /// Findings the rule must make.
    pub expect: u64,
    /// CloudTrail records, in order.
    pub events: Vec<serde_json::Value>,
}

/// Most copies one `repeat` entry makes (a correlation test needs a few
/// hundred; a million would only slow the suite).
pub const MAX_REPEAT: u64 = 10_000;

/// A case's events with every `{"repeat": N, "every": D, "event": {…}}`
/// entry expanded into its `N` copies (see the module's documentation).
/// Errors name the entry and what is wrong with it.
pub fn expand_events(events: &[serde_json::Value]) -> Result<Vec<serde_json::Value>, String> {
    let mut out = Vec::with_capacity(events.len());
    // Each eventID with the entry it came from: a copy may not reuse one
    // (the engine counts an id once, so the case would count short).
    let mut ids: HashMap<String, usize> = HashMap::new();
    for (n, entry) in events.iter().enumerate() {
        let Some(fields) = entry.as_object().filter(|o| o.contains_key("repeat")) else {
            if let Some(id) = entry.get("eventID").and_then(|v| v.as_str()) {
                ids.entry(id.to_owned()).or_insert(n + 1);
            }
            out.push(entry.clone());
            continue;
        };
        let at = format!("event {}", n + 1);
        if let Some(k) = fields
            .keys()
            .find(|k| !matches!(k.as_str(), "repeat" | "every" | "event"))
        {
            return Err(format!(
                "{at}: unknown key {k:?} beside \"repeat\" (use repeat, every and event)"
            ));
        }
        let count = fields["repeat"]
            .as_u64()
            .filter(|c| (1..=MAX_REPEAT).contains(c))
            .ok_or_else(|| {
                format!("{at}: \"repeat\" must be a whole number from 1 to {MAX_REPEAT}")
            })?;
        let every_ms = match fields.get("every") {
            None => 1_000,
            Some(v) => v.as_str().and_then(duration_ms).ok_or_else(|| {
                format!("{at}: \"every\" must be a duration such as \"30s\", \"5m\" or \"1h\"")
            })?,
        };
        let event = fields
            .get("event")
            .filter(|e| e.is_object())
            .ok_or_else(|| format!("{at}: \"event\" must be the CloudTrail record to repeat"))?;
        if !event
            .get("eventID")
            .and_then(|v| v.as_str())
            .is_some_and(|id| id.contains("{i}"))
        {
            return Err(format!(
                "{at}: the repeated record's eventID must contain {{i}}, so each copy is a different event"
            ));
        }
        let start = event
            .get("eventTime")
            .and_then(|v| v.as_str())
            .and_then(trailwarden_cloudtrail::parse_event_time)
            .ok_or_else(|| {
                format!(
                    "{at}: the repeated record needs an eventTime such as \"2026-11-30T09:00:00Z\""
                )
            })?;
        for i in 0..count {
            let mut copy = event.clone();
            substitute_index(&mut copy, &i.to_string());
            let t = chrono::DateTime::from_timestamp_millis(start + i as i64 * every_ms)
                .filter(|t| chrono::Datelike::year(t) <= 9999)
                .ok_or_else(|| format!("{at}: copy {i} falls after the year 9999"))?;
            let id = copy["eventID"].as_str().unwrap_or_default().to_owned();
            if let Some(first) = ids.insert(id.clone(), n + 1) {
                return Err(format!(
                    "{at}: copy {i}'s eventID {id:?} is already the id of an event of entry {first}; give each entry its own eventID"
                ));
            }
            copy["eventTime"] = t
                .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
                .into();
            out.push(copy);
        }
    }
    Ok(out)
}

/// `30s`, `5m`, `2h` (or a whole number of seconds) in milliseconds; at
/// most a day.
fn duration_ms(text: &str) -> Option<i64> {
    let (number, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((at, _)) => text.split_at(at),
        None => (text, "s"),
    };
    let n: i64 = number.parse().ok()?;
    let ms = match unit {
        "ms" => n,
        "s" => n.checked_mul(1_000)?,
        "m" => n.checked_mul(60_000)?,
        "h" => n.checked_mul(3_600_000)?,
        _ => return None,
    };
    (0..=86_400_000).contains(&ms).then_some(ms)
}

/// Every `{i}` in the strings of `value` (keys left alone) replaced by `i`.
fn substitute_index(value: &mut serde_json::Value, i: &str) {
    match value {
        serde_json::Value::String(s) if s.contains("{i}") => *s = s.replace("{i}", i),
        serde_json::Value::Array(items) => items.iter_mut().for_each(|v| substitute_index(v, i)),
        serde_json::Value::Object(map) => map.values_mut().for_each(|v| substitute_index(v, i)),
        _ => {}
    }
}

/// The outcome of one case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseResult {
    /// The case's name.
    pub name: String,
    /// Findings expected.
    pub expected: u64,
    /// Findings made.
    pub got: u64,
}

impl CaseResult {
    /// Whether the case passed.
    pub fn passed(&self) -> bool {
        self.expected == self.got
    }
}

/// The outcome of one rule file's tests.
#[derive(Debug, Clone)]
pub struct RuleTestReport {
    /// The rule file.
    pub rule_file: String,
    /// The rule's title (of the first rule in the file).
    pub title: String,
    /// Per-case results; empty when `error` is set.
    pub cases: Vec<CaseResult>,
    /// A problem that stopped the tests (bad rule, bad JSON, no cases).
    pub error: Option<String>,
    /// The rule file has no test file beside it: nothing was run.
    pub untested: bool,
}

impl RuleTestReport {
    /// Whether every case passed and nothing stopped the tests (an
    /// untested rule has not passed).
    pub fn passed(&self) -> bool {
        !self.untested && self.error.is_none() && self.cases.iter().all(CaseResult::passed)
    }

    /// Whether the tests failed: a case failed or something stopped them
    /// (an untested rule has not failed).
    pub fn failed(&self) -> bool {
        !self.untested && !self.passed()
    }
}

/// The test file beside a rule file: `x.yml` → `x.test.json`.
pub fn test_file_for(rule_file: &Path) -> PathBuf {
    let stem = rule_file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    rule_file.with_file_name(format!("{stem}.test.json"))
}

/// Run the test cases of one rule file, loaded on its own.
pub fn run_rule_file(rule_file: &Path) -> RuleTestReport {
    RuleTester::new(vec![rule_file.to_path_buf()]).run(rule_file)
}

/// Runs rule files' test events against the whole set of rule files tested
/// together.
pub struct RuleTester {
    /// The rule files, each loaded once per set.
    files: Vec<PathBuf>,
    /// The set, loaded with a test file's policy (its JSON text; `None`
    /// for the empty policy), for each policy met so far.
    sets: HashMap<Option<String>, LoadedSet>,
}

/// The rule files loaded with one policy.
struct LoadedSet {
    engine: Engine,
    /// Load problems: (source, the problem as shown).
    problems: Vec<(String, String)>,
    /// Rules set aside: (source, rule, reason).
    notes: Vec<(String, String, String)>,
}

impl RuleTester {
    /// A tester for `files` (duplicates are loaded once).
    pub fn new(files: Vec<PathBuf>) -> Self {
        let mut seen = HashSet::new();
        let files = files
            .into_iter()
            .filter(|f| seen.insert(f.clone()))
            .collect();
        RuleTester {
            files,
            sets: HashMap::new(),
        }
    }

    /// The rule files, in load order.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    fn load(files: &[PathBuf], policy: Policy) -> LoadedSet {
        let mut builder = RuleSetBuilder::with_policy(policy);
        for file in files {
            builder.add_path(file);
        }
        let mut set = builder.build();
        let problems = std::mem::take(&mut set.problems)
            .into_iter()
            .map(|p| (p.source.clone(), p.to_string()))
            .collect();
        let notes = std::mem::take(&mut set.notes)
            .into_iter()
            .map(|n| (n.source, n.rule, n.reason))
            .collect();
        LoadedSet {
            engine: Engine::from_set(set),
            problems,
            notes,
        }
    }

    /// Run the test cases of one rule file of the set: its events against
    /// every rule of the set, counting the findings of the rules the file
    /// defines.
    pub fn run(&mut self, rule_file: &Path) -> RuleTestReport {
        let mut report = RuleTestReport {
            rule_file: rule_file.display().to_string(),
            title: String::new(),
            cases: Vec::new(),
            error: None,
            untested: false,
        };
        let test_path = test_file_for(rule_file);
        let text = match std::fs::read_to_string(&test_path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                report.untested = true;
                return report;
            }
            Err(e) => {
                report.error = Some(format!(
                    "no test events: cannot read {} ({e}); every rule needs a positive and a negative case",
                    test_path.display()
                ));
                return report;
            }
        };
        let tests: TestFile = match serde_json::from_str(&text) {
            Ok(t) => t,
            Err(e) => {
                report.error = Some(format!(
                    "{}: not a valid test file: {e}",
                    test_path.display()
                ));
                return report;
            }
        };
        let policy_text = tests.policy.as_ref().map(|p| p.to_string());
        let policy = match &policy_text {
            None => Policy::empty(),
            Some(p) => match Policy::from_yaml(&test_path.display().to_string(), p) {
                Ok(p) => p,
                Err(e) => {
                    report.error = Some(e.to_string());
                    return report;
                }
            },
        };
        let files = &self.files;
        let set = self
            .sets
            .entry(policy_text)
            .or_insert_with(|| Self::load(files, policy));
        let source = rule_file.display().to_string();
        if let Some((_, p)) = set.problems.iter().find(|(s, _)| *s == source) {
            report.error = Some(p.clone());
            return report;
        }
        if let Some((_, rule, reason)) = set.notes.iter().find(|(s, _, _)| *s == source) {
            report.error = Some(format!("rule {rule:?}: {reason}"));
            return report;
        }
        let engine = &set.engine;
        let rules = engine.rules().iter().map(|r| &r.meta);
        let correlations = engine.correlations().iter().map(|c| &c.meta);
        let own: Vec<_> = rules
            .chain(correlations)
            .filter(|m| m.source == source)
            .collect();
        let ids: HashSet<&str> = own.iter().map(|m| m.id.as_str()).collect();
        // The last correlation of the file, else its last rule.
        report.title = engine
            .correlations()
            .iter()
            .rev()
            .find(|c| c.meta.source == source)
            .map(|c| c.meta.title.clone())
            .or_else(|| own.last().map(|m| m.title.clone()))
            .unwrap_or_default();
        if ids.is_empty() || report.title.is_empty() {
            report.error = Some("no rule to test".into());
            return report;
        }
        for case in tests.cases {
            let events = match expand_events(&case.events) {
                Ok(events) => events,
                Err(e) => {
                    report.error = Some(format!(
                        "{}: case {:?}: {e}",
                        test_path.display(),
                        case.name
                    ));
                    return report;
                }
            };
            let mut store = MemoryStore::new();
            // The events as one log file, read as the product reads one.
            let mut session = Session::new(engine);
            session.fold_repeats(true);
            let mut got = 0u64;
            for (index, event) in events.iter().enumerate() {
                let text = event.to_string();
                let mut count = |f: Finding| {
                    if ids.contains(f.rule_id.as_str()) {
                        got += 1;
                    }
                };
                session.next_record(index as u64, &mut count);
                match Record::parse(&text) {
                    Ok(record) => session.record(&record, &mut count),
                    Err(e) => {
                        report.error = Some(format!(
                            "{}: case {:?}: an event is not a CloudTrail record: {e}",
                            test_path.display(),
                            case.name
                        ));
                        return report;
                    }
                }
            }
            match session.flush(&mut store) {
                Ok(findings) => {
                    got += findings
                        .iter()
                        .filter(|f| ids.contains(f.rule_id.as_str()))
                        .count() as u64
                }
                Err(e) => {
                    report.error = Some(format!("case {:?}: state store: {e}", case.name));
                    return report;
                }
            }
            report.cases.push(CaseResult {
                name: case.name,
                expected: case.expect,
                got,
            });
        }
        if report.cases.is_empty() {
            report.error = Some(format!("{}: no cases", test_path.display()));
        }
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_repeated_event_becomes_its_copies_each_a_different_event_later_in_time() {
        let event = json!({"eventID": "id-{i}", "eventTime": "2026-11-30T23:59:58Z",
            "requestParameters": {"key": ["shard-{i}.parquet"]}});
        let events = expand_events(&[
            json!({"eventID": "first", "eventTime": "2026-11-30T00:00:00Z"}),
            json!({"repeat": 3, "every": "1500ms", "event": event}),
        ])
        .unwrap();
        assert_eq!(events.len(), 4);
        assert_eq!(events[0]["eventID"], "first");
        let ids: Vec<_> = events[1..]
            .iter()
            .map(|e| e["eventID"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["id-0", "id-1", "id-2"]);
        let times: Vec<_> = events[1..]
            .iter()
            .map(|e| e["eventTime"].as_str().unwrap())
            .collect();
        assert_eq!(
            times,
            [
                "2026-11-30T23:59:58Z",
                "2026-11-30T23:59:59.500Z",
                "2026-12-01T00:00:01Z"
            ]
        );
        assert_eq!(events[3]["requestParameters"]["key"][0], "shard-2.parquet");
    }

    #[test]
    fn a_bad_repeat_is_an_error_that_names_the_entry_and_the_fix() {
        let event = json!({"eventID": "id-{i}", "eventTime": "2026-11-30T00:00:00Z"});
        for (entry, says) in [
            (json!({"repeat": 0, "event": event}), "from 1 to 10000"),
            (json!({"repeat": 10_001, "event": event}), "from 1 to 10000"),
            (json!({"repeat": "5", "event": event}), "whole number"),
            (
                json!({"repeat": 2, "every": "5 minutes", "event": event}),
                "\"30s\"",
            ),
            (
                json!({"repeat": 2, "every": "2d", "event": event}),
                "duration",
            ),
            (json!({"repeat": 2}), "\"event\" must be"),
            (
                json!({"repeat": 2, "times": 3, "event": event}),
                "unknown key \"times\"",
            ),
            (
                json!({"repeat": 2, "event": {"eventID": "same", "eventTime": "2026-11-30T00:00:00Z"}}),
                "must contain {i}",
            ),
            (
                json!({"repeat": 2, "event": {"eventID": "x-{i}"}}),
                "needs an eventTime",
            ),
            (
                json!({"repeat": 2, "event": {"eventID": "{i}a", "eventTime": "2026-11-30T00:00:00Z"}}),
                "already the id of an event of entry 1",
            ),
            (
                json!({"repeat": 2, "every": "1h", "event": {"eventID": "x-{i}", "eventTime": "9999-12-31T23:30:00Z"}}),
                "copy 1 falls after the year 9999",
            ),
        ] {
            let e = expand_events(&[json!({"eventID": "1a"}), entry]).unwrap_err();
            assert!(e.starts_with("event 2: ") && e.contains(says), "{e}");
        }
    }
}
