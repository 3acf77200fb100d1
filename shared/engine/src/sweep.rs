//! The stale AI principal sweep: every group that a dormant baseline tracks
//! (principals that touched Bedrock, SageMaker or training data) and that
//! has been idle for at least a given time, as findings.
//!
//! Run on a schedule, it lists the AI credentials nobody uses any more:
//! the keys and roles an intruder would most like to find.

use crate::finding::{finding_id, Finding, Level};
use crate::rules::BaselineKind;
use crate::state::{Body, StateStore, StoreError};
use crate::Engine;

/// The id of the sweep's findings.
pub const SWEEP_RULE_ID: &str = "3f1b6c2e-9a4d-4e8b-b7a1-5c2d8e9f0a13";
/// The title of the sweep's findings.
pub const SWEEP_TITLE: &str = "Stale AI Principal";

/// Idle AI principals as of `as_of_ms`, idle for at least `idle_ms`.
pub fn stale_principals(
    engine: &Engine,
    store: &mut dyn StateStore,
    as_of_ms: i64,
    idle_ms: i64,
) -> Result<Vec<Finding>, StoreError> {
    let mut out = Vec::new();
    for rule in engine.rules() {
        let Some(spec) = &rule.baseline else {
            continue;
        };
        if spec.kind != BaselineKind::Dormant {
            continue;
        }
        for item in store.scan_rule(&rule.id)? {
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
            let group: std::collections::BTreeMap<String, String> = {
                let values: Vec<String> = serde_json::from_str(&item.key.group).unwrap_or_default();
                spec.group_by.iter().cloned().zip(values).collect()
            };
            let last_time = chrono::DateTime::from_timestamp_millis(last)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                .unwrap_or_default();
            let days = (as_of_ms - last) / 86_400_000;
            out.push(Finding {
                id: finding_id(SWEEP_RULE_ID, &[item.key.group.clone(), last.to_string()]),
                rule_id: SWEEP_RULE_ID.to_owned(),
                rule_title: SWEEP_TITLE.to_owned(),
                level: Level::Low,
                tags: vec!["ai.governance".into(), "attack.t1078.004".into()],
                description: format!(
                    "An identity that used AI services has been idle for {days} days. Unused AI credentials are what LLMjacking runs on: remove them or rotate their keys. Tracked by the rule {:?}.",
                    rule.title
                ),
                event_time: last_time.clone(),
                account: snap.account,
                region: snap.region,
                principal: snap.principal,
                principal_type: snap.principal_type,
                access_key_id: snap.access_key_id,
                source_ip: snap.source_ip,
                user_agent: snap.user_agent,
                event_source: snap.event_source,
                event_name: snap.event_name,
                error_code: None,
                event_ids: if snap.event_id.is_empty() {
                    Vec::new()
                } else {
                    vec![snap.event_id]
                },
                count: 1,
                group,
                note: Some(format!("idle {days} days; last AI activity {last_time}")),
            });
        }
    }
    out.sort_by(|a, b| a.event_time.cmp(&b.event_time));
    Ok(out)
}
