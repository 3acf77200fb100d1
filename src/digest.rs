//! The audit digest ([`trailwarden_engine::digest`]): built here from the
//! command's stores, and by the deployment's daily audit function from its
//! tables.

pub use trailwarden_engine::digest::*;

#[cfg(test)]
mod tests {
    use super::*;
    use trailwarden_engine::{Engine, Finding, Level};
    use trailwarden_engine::{Policy, RuleSetBuilder};

    fn finding(id: &str, rule_id: &str, level: &str, principal: &str, time: &str) -> Finding {
        serde_json::from_value(serde_json::json!({
            "id": id, "rule_id": rule_id, "rule_title": format!("title of {rule_id}"),
            "level": level, "tags": [], "description": "", "event_time": time,
            "account": "111122223333", "region": "us-east-1", "principal": principal,
            "principal_type": null, "access_key_id": null, "source_ip": null,
            "user_agent": null, "event_source": "bedrock.amazonaws.com",
            "event_name": "InvokeModel", "error_code": null, "event_ids": [id], "count": 1
        }))
        .unwrap()
    }

    #[test]
    fn counts_ranks_and_first_seen_sections() {
        let policy = Policy::from_yaml(
            "policy.example.yaml",
            crate::simulate::example_policy_yaml(),
        )
        .unwrap();
        let mut b = RuleSetBuilder::with_policy(policy);
        for (path, text) in trailwarden_engine::builtin::builtin_rules() {
            b.add_yaml(path, text);
        }
        let engine = Engine::from_set(b.build());
        // First use of a model by a role; first use of Bedrock by a user.
        let model_rule = "4922f1b9-9685-480d-a577-bc9e56dbefcb";
        let principal_rule = "91b9c3b8-422a-435a-8935-d62e5b0843de";
        let open = |f: Finding| (f, Some("open".to_string()));
        let findings = vec![
            finding("tw-1", "r-a", "low", "p1", "2026-11-30T01:00:00Z"),
            finding("tw-2", "r-a", "low", "p2", "2026-11-30T02:00:00Z"),
            finding(
                "tw-3",
                "r-b",
                "high",
                "evil\u{1b}[2J\u{202e}",
                "2026-11-30T03:00:00Z",
            ),
            finding("tw-4", model_rule, "low", "role", "2026-11-30T04:00:00Z"),
            finding(
                "tw-5",
                principal_rule,
                "medium",
                "user",
                "2026-11-30T05:00:00Z",
            ),
        ];
        let mut findings: Vec<Row> = findings.into_iter().map(open).collect();
        findings[0].1 = Some("resolved".into());
        let d = Digest::build(
            &findings,
            &engine,
            &[],
            Some(90),
            None,
            "2026-11-29T06:00:00Z".into(),
            "2026-11-30T06:00:00Z".into(),
            "trailwarden findings --local s.db show",
        );
        assert_eq!(d.total, 5);
        assert_eq!(
            d.by_level,
            vec![(Level::High, 1), (Level::Medium, 1), (Level::Low, 3)]
        );
        assert_eq!(d.by_rule[0].rule_id, "r-a");
        assert_eq!(d.by_rule[0].count, 2);
        assert_eq!(d.by_account, vec![("111122223333".to_string(), 5)]);
        assert_eq!(d.top[0].id, "tw-3", "most severe first");
        assert_eq!(d.top[1].id, "tw-5");
        assert_eq!(d.top[2].id, "tw-4", "then latest");
        assert_eq!(d.new_models.len(), 1);
        assert_eq!(d.new_models[0].id, "tw-4");
        assert_eq!(d.new_principals.len(), 1);
        assert_eq!(d.new_principals[0].id, "tw-5");
        let text = d.to_text();
        assert!(
            !text.contains('\u{1b}') && !text.contains('\u{202e}'),
            "{text}"
        );
        assert!(
            text.contains("Findings: 5 (1 high, 1 medium, 3 low)"),
            "{text}"
        );
        assert!(text.contains("not recorded in a findings table"));
        let json = serde_json::to_value(&d).unwrap();
        assert_eq!(
            json["top"][0]["show"],
            "trailwarden findings --local s.db show tw-3"
        );
        assert!(
            d.top.iter().all(|i| i.id != "tw-1"),
            "a resolved finding is counted, not listed"
        );
    }
}
