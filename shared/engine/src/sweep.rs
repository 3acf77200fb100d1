//! The stale AI principal sweep: every group that a dormant baseline tracks
//! (principals that touched Bedrock, SageMaker or training data) and that
//! has been idle for at least a given time, as findings.
//!
//! Run on a schedule, it lists the AI credentials nobody uses any more:
//! the keys and roles an intruder would most like to find.

use crate::finding::{finding_id, Finding, Level, RuleHeader};
use crate::rules::{BaselineKind, Rule};
use crate::state::{Body, StateItem, StateStore, StoreError};
use crate::Engine;

pub use crate::rules::SWEEP_RULE_ID;
/// The title of the sweep's findings.
pub const SWEEP_TITLE: &str = "Stale AI Principal";

/// The rules whose state the sweep reads (dormant baselines).
pub fn dormant_rules(engine: &Engine) -> impl Iterator<Item = &Rule> {
    engine.rules().iter().filter(|r| {
        r.baseline
            .as_ref()
            .is_some_and(|b| b.kind == BaselineKind::Dormant)
    })
}

/// Idle AI principals as of `as_of_ms`, idle for at least `idle_ms`.
pub fn stale_principals(
    engine: &Engine,
    store: &mut dyn StateStore,
    as_of_ms: i64,
    idle_ms: i64,
) -> Result<Vec<Finding>, StoreError> {
    let mut out = Vec::new();
    for rule in dormant_rules(engine) {
        out.extend(stale_in(
            rule,
            store.scan_rule(&rule.meta.id)?,
            as_of_ms,
            idle_ms,
            engine.sweep_level(),
        ));
    }
    out.sort_by(|a, b| a.event_time.cmp(&b.event_time));
    Ok(out)
}

/// The stale groups among one dormant rule's items.
/// Each finding is at `level` ([`Engine::sweep_level`]).
pub fn stale_in(
    rule: &Rule,
    items: Vec<StateItem>,
    as_of_ms: i64,
    idle_ms: i64,
    level: Level,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let tags = vec!["ai.governance".to_owned(), "attack.t1078.004".to_owned()];
    let Some(spec) = &rule.baseline else {
        return out;
    };
    {
        for item in items {
            let Body::Baseline(body) = item.body else {
                continue;
            };
            let Some(last) = body.seen.values().copied().max() else {
                continue;
            };
            if as_of_ms - last < idle_ms {
                continue;
            }
            let snap = body.last.unwrap_or_default();
            let group: std::collections::BTreeMap<String, String> = spec
                .group_by
                .iter()
                .cloned()
                .zip(body.group.iter().cloned())
                .collect();
            let last_time = chrono::DateTime::from_timestamp_millis(last)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                .unwrap_or_default();
            let days = (as_of_ms - last) / 86_400_000;
            let header = RuleHeader {
                id: SWEEP_RULE_ID,
                title: SWEEP_TITLE,
                level,
                tags: &tags,
                description: &format!(
                    "An identity that used AI services has been idle for {days} days. Unused AI credentials are what LLMjacking runs on: remove them or rotate their keys. Tracked by the rule {:?}.",
                    rule.meta.title
                ),
            };
            let mut finding = snap.into_finding(header);
            finding.id = finding_id(SWEEP_RULE_ID, &[item.key.group.clone(), last.to_string()]);
            finding.event_time = last_time.clone();
            finding.error_code = None;
            finding.group = group;
            finding.note = Some(format!("idle {days} days; last AI activity {last_time}"));
            out.push(finding);
        }
    }
    out
}
