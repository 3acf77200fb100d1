//! Derived policy fields from rule to finding: rules that read them load,
//! run and match on the documents CloudTrail logs; a rule that names a
//! derived field that does not exist is refused; one that needs the
//! `trusted_accounts` fact is not run without it.

use rsigma_eval::Event;
use trailwarden_cloudtrail::Record;
use trailwarden_engine::derived::FIELDS;
use trailwarden_engine::{Engine, Policy, RecordEvent, RuleSetBuilder};

const RULE: &str = r#"
title: Trust Policy Grants an Untrusted Account
id: 30000000-0000-4000-8000-0000000000d1
logsource: {product: aws, service: cloudtrail}
detection:
  selection:
    eventName: UpdateAssumeRolePolicy
    derived.policy.untrustedAccounts|exists: true
  condition: selection
level: high
---
title: Trust Policy Public
id: 30000000-0000-4000-8000-0000000000d2
logsource: {product: aws, service: cloudtrail}
detection:
  selection:
    eventName: UpdateAssumeRolePolicy
    derived.policy.public: true
  condition: selection
level: high
---
title: Trust Policy Names a Service
id: 30000000-0000-4000-8000-0000000000d3
logsource: {product: aws, service: cloudtrail}
detection:
  selection:
    eventName: UpdateAssumeRolePolicy
    derived.policy.principals|endswith: .amazonaws.com
  condition: selection
level: low
"#;

/// An `UpdateAssumeRolePolicy` record with `statements` (JSON text) as its
/// trust policy, in account 111122223333.
fn trust_update(statements: &str) -> String {
    let document = format!(r#"{{"Version":"2012-10-17","Statement":[{statements}]}}"#);
    serde_json::json!({
        "eventVersion": "1.09",
        "eventTime": "2026-11-30T04:00:00Z",
        "eventSource": "iam.amazonaws.com",
        "eventName": "UpdateAssumeRolePolicy",
        "eventID": "e1",
        "recipientAccountId": "111122223333",
        "requestParameters": {"roleName": "ml-training-role", "policyDocument": document},
    })
    .to_string()
}

fn titles(engine: &Engine, record: &str) -> Vec<String> {
    engine
        .findings(&Record::parse(record).unwrap())
        .into_iter()
        .map(|f| f.rule_title)
        .collect()
}

fn engine(policy: &str) -> (Engine, Vec<String>) {
    let mut b = RuleSetBuilder::with_policy(Policy::from_yaml("p.yaml", policy).unwrap());
    b.add_yaml("derived.yml", RULE);
    let set = b.build();
    assert!(set.problems.is_empty(), "{:?}", set.problems);
    let notes = set.notes.iter().map(|n| n.reason.clone()).collect();
    (Engine::from_set(set), notes)
}

#[test]
fn rules_on_derived_fields_match_the_statements_they_describe() {
    let (engine, notes) = engine("trusted_accounts: ['444455556666']\n");
    assert!(notes.is_empty(), "{notes:?}");
    let outside = trust_update(
        r#"{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::444455556666:root","arn:aws:iam::999900001111:role/x"]},"Action":"sts:AssumeRole"}"#,
    );
    assert_eq!(
        titles(&engine, &outside),
        ["Trust Policy Grants an Untrusted Account"]
    );
    let trusted = trust_update(
        r#"{"Effect":"Allow","Principal":{"AWS":"444455556666","Service":"sagemaker.amazonaws.com"},"Action":"sts:AssumeRole"}"#,
    );
    assert_eq!(titles(&engine, &trusted), ["Trust Policy Names a Service"]);
    let public = trust_update(r#"{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole"}"#);
    assert_eq!(titles(&engine, &public), ["Trust Policy Public"]);
    let guarded = trust_update(
        r#"{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole","Condition":{"StringEquals":{"aws:PrincipalOrgID":"o-1"}}},{"Effect":"Deny","Principal":{"AWS":"999900001111"},"Action":"*"}"#,
    );
    assert!(titles(&engine, &guarded).is_empty());
    // Hostile documents: not JSON, not an object, nested past serde_json's
    // limit, huge.
    for junk in [
        r#""not json""#.to_owned(),
        "[1,2]".to_owned(),
        format!(r#""{}1{}""#, "[".repeat(5000), "]".repeat(5000)),
        format!(
            r#""{{\"Statement\":{}1{}}}""#,
            "[".repeat(5000),
            "]".repeat(5000)
        ),
        format!(r#""{}""#, "%7B".repeat(100_000)),
    ] {
        let record = trust_update("{}").replace(
            r#""policyDocument":"{\"Version\":\"2012-10-17\",\"Statement\":[{}]}""#,
            &format!(r#""policyDocument":{junk}"#),
        );
        assert!(record.contains(junk.as_str()));
        assert!(titles(&engine, &record).is_empty(), "{}", &record[..200]);
    }
}

#[test]
fn a_rule_needing_trusted_accounts_is_not_run_without_them() {
    let (engine, notes) = engine("training_buckets: [b]\n");
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(notes[0].contains("%trusted_accounts%"), "{notes:?}");
    let outside = trust_update(
        r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::999900001111:root"},"Action":"sts:AssumeRole"}"#,
    );
    assert!(titles(&engine, &outside).is_empty());
}

#[test]
fn an_unknown_derived_field_is_refused() {
    let mut b = RuleSetBuilder::new();
    b.add_yaml(
        "typo.yml",
        "title: t\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n  s:\n    derived.policy.publik: true\n  condition: s\n",
    );
    let set = b.build();
    assert!(set.rules.is_empty());
    assert_eq!(set.problems.len(), 1);
    let problem = set.problems[0].to_string();
    assert!(
        problem.contains("derived.policy.publik") && problem.contains("derived.policy.public"),
        "{problem}"
    );
}

/// The record as a plain Sigma event answers the derived fields too (all
/// but the one that needs the organisation's trusted accounts, which the
/// engine's view of it answers).
#[test]
fn a_plain_event_answers_derived_fields() {
    let text = trust_update(
        r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::999900001111:root"},"Action":"sts:AssumeRole"}"#,
    );
    let record = Record::parse(&text).unwrap();
    let event = RecordEvent(&record);
    let answered: Vec<&str> = FIELDS
        .iter()
        .copied()
        .filter(|f| event.get_field(f).is_some())
        .collect();
    assert_eq!(
        answered,
        [
            "derived.policy.everyone",
            "derived.policy.public",
            "derived.policy.principals",
            "derived.policy.accounts",
            "derived.policy.otherAccounts"
        ]
    );
    // The engine's view answers the last one too, from its policy.
    let (engine, _) = engine("trusted_accounts: ['444455556666']\n");
    assert_eq!(
        engine
            .event(&record)
            .get_field("derived.policy.untrustedAccounts"),
        Some(rsigma_eval::EventValue::Array(vec![
            rsigma_eval::EventValue::Str("999900001111".into())
        ]))
    );
    // Another call: no document, no value.
    let other = text.replace("UpdateAssumeRolePolicy", "GetRole");
    let record = Record::parse(&other).unwrap();
    assert!(FIELDS
        .iter()
        .all(|f| RecordEvent(&record).get_field(f).is_none()));
}

/// `trusted_accounts: []` written out says "no outside account is trusted":
/// the rule runs and every other account is untrusted.
#[test]
fn an_explicitly_empty_trusted_accounts_runs_the_rule_and_trusts_nobody() {
    let (engine, notes) = engine("trusted_accounts: []\n");
    assert!(notes.is_empty(), "{notes:?}");
    let outside = trust_update(
        r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::444455556666:root"},"Action":"sts:AssumeRole"}"#,
    );
    assert_eq!(
        titles(&engine, &outside),
        ["Trust Policy Grants an Untrusted Account"]
    );
}

/// A fact given as an empty list matches nothing: a filter on it excludes
/// nothing (the rule runs); a rule it leaves nothing to select is set aside
/// with a note saying so; an absent fact still keeps its rules from running.
#[test]
fn an_explicitly_empty_fact_matches_nothing_and_its_rules_run() {
    const RULES: &str = r#"
title: Outside the Allowed Regions
id: 30000000-0000-4000-8000-0000000000e1
logsource: {product: aws, service: cloudtrail}
detection:
  selection:
    eventName: InvokeModel
  filter_allowed:
    awsRegion|expand: '%allowed_regions%'
  condition: selection and not filter_allowed
level: medium
---
title: A Training Bucket Read
id: 30000000-0000-4000-8000-0000000000e2
logsource: {product: aws, service: cloudtrail}
detection:
  selection:
    eventName: GetObject
    requestParameters.bucketName|expand: '%training_buckets%'
  condition: selection
level: medium
"#;
    let load = |policy: &str| {
        let mut b = RuleSetBuilder::with_policy(Policy::from_yaml("p.yaml", policy).unwrap());
        b.add_yaml("facts.yml", RULES);
        let set = b.build();
        assert!(set.problems.is_empty(), "{:?}", set.problems);
        let notes: Vec<String> = set
            .notes
            .iter()
            .map(|n| format!("{}: {}", n.rule, n.reason))
            .collect();
        (Engine::from_set(set), notes)
    };
    let invoke = r#"{"eventVersion":"1.09","eventTime":"2026-11-30T04:00:00Z","eventSource":"bedrock.amazonaws.com","eventName":"InvokeModel","awsRegion":"eu-west-1","eventID":"e2","recipientAccountId":"111122223333"}"#;
    let read = r#"{"eventVersion":"1.09","eventTime":"2026-11-30T04:00:00Z","eventSource":"s3.amazonaws.com","eventName":"GetObject","awsRegion":"us-east-1","eventID":"e3","recipientAccountId":"111122223333","requestParameters":{"bucketName":"anything"}}"#;
    let (given, notes) = load("allowed_regions: []\ntraining_buckets: []\n");
    assert_eq!(
        notes,
        [
            "A Training Bucket Read: not run: the policy gives no value for %training_buckets% \
          (absent or an empty list, which leaves the rule nothing to match)"
        ]
    );
    assert_eq!(titles(&given, invoke), ["Outside the Allowed Regions"]);
    assert!(titles(&given, read).is_empty());
    let (absent, notes) = load("");
    assert_eq!(notes.len(), 2, "absent facts keep their rules from running");
    assert!(titles(&absent, invoke).is_empty());
}
