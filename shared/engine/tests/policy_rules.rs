//! A policy entry under `levels:` or `suppressions:` that names a rule the
//! set does not know is a load problem naming the policy's line, never a
//! silent no-op; a rule set aside for a missing fact is known.

use trailwarden_engine::{Policy, RuleSetBuilder};

const RULES: &str = r#"
title: Guardrail Deleted
id: 40000000-0000-4000-8000-000000000001
logsource: {product: aws, service: cloudtrail}
detection:
  selection:
    eventName: DeleteGuardrail
  condition: selection
level: high
---
title: Training Bucket Read
id: 40000000-0000-4000-8000-000000000002
logsource: {product: aws, service: cloudtrail}
detection:
  selection:
    eventName: GetObject
    requestParameters.bucketName|expand: '%training_buckets%'
  condition: selection
level: medium
"#;

fn problems(policy: &str) -> Vec<String> {
    let mut b = RuleSetBuilder::with_policy(Policy::from_yaml("policy.yaml", policy).unwrap());
    b.add_yaml("rules.yml", RULES);
    b.build().problems.iter().map(|p| p.to_string()).collect()
}

#[test]
fn unknown_rule_ids_in_levels_and_suppressions_are_problems_naming_the_line() {
    let policy = "\
# 40000000-0000-4000-8000-00000000000f was renamed
levels:
  40000000-0000-4000-8000-000000000001: critical
  40000000-0000-4000-8000-00000000000f: low
suppressions:
  - rule: '*'
    where: {principal: 'arn:aws:iam::111122223333:user/scanner'}
    reason: the vulnerability scanner
  - rule: Guardrail Deleted
    reason: a title is not an id
";
    let found = problems(policy);
    assert_eq!(found.len(), 2, "{found:#?}");
    assert!(
        found[0].contains("policy.yaml:4")
            && found[0].contains("levels names rule \"40000000-0000-4000-8000-00000000000f\""),
        "{found:#?}"
    );
    assert!(
        found[1].contains("policy.yaml:9") && found[1].contains("suppressions names rule"),
        "{found:#?}"
    );
}

#[test]
fn known_rules_and_rules_set_aside_for_a_missing_fact_are_not_problems() {
    let policy = "\
levels:
  40000000-0000-4000-8000-000000000001: critical
  40000000-0000-4000-8000-000000000002: low
suppressions:
  - rule: 40000000-0000-4000-8000-000000000001
    reason: tested weekly
";
    assert!(problems(policy).is_empty(), "{:#?}", problems(policy));
}

/// An item listing several facts holds the values of all of them and needs
/// at least one given: the per-service approved lists beside the shared one.
#[test]
fn an_item_with_several_facts_needs_one_of_them() {
    const RULE: &str = r#"
title: Bedrock by an Unapproved Principal
id: 40000000-0000-4000-8000-000000000003
logsource: {product: aws, service: cloudtrail}
detection:
  selection:
    eventName: InvokeModel
  approved:
    userIdentity.arn|expand:
      - '%approved_principals%'
      - '%approved_bedrock_principals%'
  condition: selection and not approved
level: medium
"#;
    let findings = |policy: &str, arn: &str| {
        let mut b = RuleSetBuilder::with_policy(Policy::from_yaml("p.yaml", policy).unwrap());
        b.add_yaml("r.yml", RULE);
        let set = b.build();
        let notes = set.notes.len();
        let engine = trailwarden_engine::Engine::from_set(set);
        let record = format!(
            r#"{{"eventVersion":"1.09","eventTime":"2026-11-30T04:00:00Z","eventSource":"bedrock.amazonaws.com","eventName":"InvokeModel","eventID":"e1","userIdentity":{{"type":"IAMUser","arn":"{arn}"}}}}"#
        );
        let n = engine
            .findings(&trailwarden_cloudtrail::Record::parse(&record).unwrap())
            .len();
        (notes, n)
    };
    let user = |name: &str| format!("arn:aws:iam::111122223333:user/{name}");
    let only_bedrock = "approved_bedrock_principals: ['arn:aws:iam::111122223333:user/chat']\n";
    assert_eq!(findings(only_bedrock, &user("chat")), (0, 0));
    assert_eq!(findings(only_bedrock, &user("eve")), (0, 1));
    let both = "approved_principals: ['arn:aws:iam::111122223333:user/ops']\napproved_bedrock_principals: ['arn:aws:iam::111122223333:user/chat']\n";
    assert_eq!(findings(both, &user("ops")), (0, 0));
    assert_eq!(findings(both, &user("chat")), (0, 0));
    assert_eq!(findings("", &user("eve")), (1, 0), "neither given: not run");
}

/// `optional-facts:` (a trailwarden extension): a fact the rule names there
/// is an empty list when the policy gives none, so the rule runs (for every
/// bucket); given, its values are left out as the rule says. A fact not
/// named there still keeps the rule from running; a malformed block is a
/// load problem naming the rule.
#[test]
fn an_optional_fact_absent_is_an_empty_list_and_the_rule_runs() {
    use trailwarden_cloudtrail::Record;
    use trailwarden_engine::Engine;
    let rule = |optional: &str| {
        format!(
            r#"
title: Any Bucket Made Public
id: 40000000-0000-4000-8000-000000000003
logsource: {{product: aws, service: cloudtrail}}
detection:
  selection:
    eventName: PutBucketAcl
  filter_training:
    requestParameters.bucketName|expand: '%training_buckets%'
  condition: selection and not filter_training
{optional}level: medium
"#
        )
    };
    let event = |bucket: &str| {
        format!(
            r#"{{"eventTime":"2026-11-30T09:00:00Z","eventSource":"s3.amazonaws.com","eventName":"PutBucketAcl","eventID":"e-{bucket}","requestParameters":{{"bucketName":"{bucket}"}}}}"#
        )
    };
    let hits = |policy: &str, optional: &str| -> Option<Vec<bool>> {
        let mut b = RuleSetBuilder::with_policy(Policy::from_yaml("p.yaml", policy).unwrap());
        b.add_yaml("any.yml", &rule(optional));
        let set = b.build();
        assert!(set.problems.is_empty(), "{:?}", set.problems);
        if set.rules.is_empty() {
            return None;
        }
        let engine = Engine::from_set(set);
        Some(
            ["web-assets", "ml-train-1"]
                .iter()
                .map(|bucket| {
                    let text = event(bucket);
                    !engine.findings(&Record::parse(&text).unwrap()).is_empty()
                })
                .collect(),
        )
    };
    let optional = "optional-facts: [training_buckets]\n";
    assert_eq!(
        hits("ai_accounts: ['1']\n", optional),
        Some(vec![true, true])
    );
    assert_eq!(
        hits("training_buckets: ['ml-train-*']\n", optional),
        Some(vec![true, false])
    );
    assert_eq!(
        hits("ai_accounts: ['1']\n", ""),
        None,
        "not optional: not run"
    );
    let mut b = RuleSetBuilder::with_policy(Policy::empty());
    b.add_yaml("any.yml", &rule("optional-facts: training_buckets\n"));
    let problems = b.build().problems;
    assert!(
        problems.len() == 1
            && problems[0]
                .to_string()
                .contains("optional-facts must be a list"),
        "{problems:?}"
    );
}
