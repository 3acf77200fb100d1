//! Detection over CloudTrail records with Sigma rules.
//!
//! - [`RuleSetBuilder`] loads Sigma YAML (files, directories, text) and
//!   collects every problem with its source; [`Rule`] is one compiled rule
//!   with the metadata a finding carries.
//! - [`Engine`] holds the rules and a [`Dispatch`] index from `eventName` /
//!   `eventSource` to the rules that can match, and evaluates records through
//!   rsigma's event interface ([`RecordEvent`]) without converting them to a
//!   JSON tree.
//! - [`Finding`] is what a match produces, with an id derived from the rule
//!   and the event ids, so the same event never makes two findings.
//!
//! This crate is pure: no AWS SDK, no async runtime, no I/O beyond reading
//! rule files.

pub mod dispatch;
pub mod event;
pub mod finding;
pub mod rules;

pub use dispatch::{Dispatch, Route};
pub use event::RecordEvent;
pub use finding::{event_id, finding_id, Finding, Level};
pub use rules::{Rule, RuleNote, RuleProblem, RuleSetBuilder};

use trailwarden_cloudtrail::Record;

/// Stateless detection: the compiled rules and their dispatch index.
#[derive(Debug, Clone, Default)]
pub struct Engine {
    rules: Vec<Rule>,
    dispatch: Dispatch,
}

impl Engine {
    /// An engine over these rules.
    pub fn new(rules: Vec<Rule>) -> Self {
        let dispatch = Dispatch::new(rules.iter().map(|r| &r.route));
        Engine { rules, dispatch }
    }

    /// The rules, in load order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Call `on_match` with each rule that matches `record`.
    pub fn evaluate<'e>(&'e self, record: &Record<'_>, mut on_match: impl FnMut(&'e Rule)) {
        let event = RecordEvent(record);
        let name = record.event_name().unwrap_or("");
        let source = record.event_source().unwrap_or("");
        self.dispatch.candidates(name, source, |i| {
            let rule = &self.rules[i as usize];
            if rsigma_eval::evaluate_rule(&rule.compiled, &event).is_some() {
                on_match(rule);
            }
        });
    }

    /// Like [`Engine::evaluate`] but trying every rule, ignoring the index.
    /// For measuring the index and checking that it hides nothing.
    pub fn evaluate_all<'e>(&'e self, record: &Record<'_>, mut on_match: impl FnMut(&'e Rule)) {
        let event = RecordEvent(record);
        for rule in &self.rules {
            if rsigma_eval::evaluate_rule(&rule.compiled, &event).is_some() {
                on_match(rule);
            }
        }
    }

    /// The findings `record` produces.
    pub fn findings(&self, record: &Record<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        self.evaluate(record, |rule| out.push(Finding::from_record(rule, record)));
        out
    }

    /// How many rules are tried on every record (those the index cannot route).
    pub fn unrouted_rules(&self) -> usize {
        self.dispatch.always_count()
    }
}
