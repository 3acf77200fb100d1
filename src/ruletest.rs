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
//! correlation make none of their own). Each case runs on fresh state, its
//! events in order, as one batch. An optional top-level `"policy"` gives the
//! organisation facts the rules' placeholders need.
//!
//! A rule file without a test file is reported untested, not failed (third-
//! party rules come without test events); `rules validate` checks that it
//! loads.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use trailwarden_cloudtrail::Record;
use trailwarden_engine::{Engine, MemoryStore, Policy, RuleSetBuilder, Session};

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

/// Run the test cases of one rule file.
pub fn run_rule_file(rule_file: &Path) -> RuleTestReport {
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
    let policy = match &tests.policy {
        None => Policy::empty(),
        Some(p) => match Policy::from_yaml(&test_path.display().to_string(), &p.to_string()) {
            Ok(p) => p,
            Err(e) => {
                report.error = Some(e.to_string());
                return report;
            }
        },
    };
    let mut builder = RuleSetBuilder::with_policy(policy);
    builder.add_path(rule_file);
    let set = builder.build();
    if let Some(p) = set.problems.first() {
        report.error = Some(p.to_string());
        return report;
    }
    if let Some(n) = set.notes.first() {
        report.error = Some(format!("rule {:?} not run: {}", n.rule, n.reason));
        return report;
    }
    report.title = set
        .correlations
        .last()
        .map(|c| c.meta.title.clone())
        .or_else(|| set.rules.last().map(|r| r.meta.title.clone()))
        .unwrap_or_default();
    if report.title.is_empty() {
        report.error = Some("no rule to test".into());
        return report;
    }
    let engine = Engine::from_set(set);
    for case in tests.cases {
        let mut store = MemoryStore::new();
        let mut session = Session::new(&engine);
        let mut got = 0u64;
        for event in &case.events {
            let text = event.to_string();
            match Record::parse(&text) {
                Ok(record) => session.record(&record, &mut |_| got += 1),
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
            Ok(findings) => got += findings.len() as u64,
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
