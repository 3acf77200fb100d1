//! Findings as OCSF Detection Findings hold what the OCSF schema requires.
//!
//! The checks below are the schema's own requirements for class 2004 and
//! the objects it uses, taken from the OCSF schema files
//! (`events/base_event.json`: `activity_id`, `category_uid`, `class_uid`,
//! `metadata`, `severity_id`, `time`, `type_uid` required;
//! `events/findings/finding.json`: `finding_info` required, `activity_id`
//! 1–3, `status_id` 1–6; `objects/metadata.json`: `product` and `version`;
//! `objects/product.json`: `name`; `objects/finding_info.json`: `uid`;
//! `objects/analytic.json`: `type_id`; `objects/cloud.json`: `provider`;
//! `objects/api.json`: `operation`; `objects/user.json`: at least one of
//! `account`, `name`, `uid`; `objects/attack.json`: at least one of
//! `tactic`, `technique`, `sub_technique`; `objects/account.json`:
//! `type_id` 10 is "AWS Account"), with their types (`timestamp_t` is
//! epoch milliseconds, `integer_t`, `string_t`); and every top-level
//! attribute is one the class has: the base event's, the Finding's, the
//! Detection Finding's and the `cloud` profile's (`profiles/cloud.json`:
//! `api`, `cloud`).
//!
//! Findings come from real rule matches on records built from CloudTrail's
//! documented shapes: an IAM user, an assumed role, a service calling on a
//! principal's behalf (no address), and hostile text.

use serde_json::Value;
use trailwarden_cloudtrail::Record;
use trailwarden_engine::ocsf::{detection_finding, OCSF_VERSION};
use trailwarden_engine::{Engine, Finding, RuleSetBuilder};

const RULE: &str = r#"
title: Model invoked
id: 6f0d3f5e-0000-4000-8000-000000000001
status: test
description: A Bedrock model was invoked.
tags:
  - attack.t1078.004
  - attack.initial-access
  - attack.t1530
logsource:
  product: aws
  service: cloudtrail
detection:
  selection:
    eventSource: bedrock.amazonaws.com
  condition: selection
level: high
"#;

fn findings(records: &[&str]) -> Vec<Finding> {
    let mut builder = RuleSetBuilder::new();
    builder.add_yaml("model_invoked.yml", RULE);
    let set = builder.build();
    assert!(set.problems.is_empty(), "{:?}", set.problems);
    let engine = Engine::from_set(set);
    records
        .iter()
        .flat_map(|raw| engine.findings(&Record::parse(raw).unwrap()))
        .collect()
}

fn at<'v>(v: &'v Value, path: &str) -> &'v Value {
    path.split('.').fold(v, |v, k| {
        let found = match k.parse::<usize>() {
            Ok(i) => v.get(i),
            Err(_) => v.get(k),
        };
        found.unwrap_or_else(|| panic!("{path} missing in {v}"))
    })
}

fn int(v: &Value, path: &str) -> i64 {
    at(v, path)
        .as_i64()
        .unwrap_or_else(|| panic!("{path} is not an integer"))
}

fn text<'v>(v: &'v Value, path: &str) -> &'v str {
    at(v, path)
        .as_str()
        .unwrap_or_else(|| panic!("{path} is not a string"))
}

/// The top-level attributes of a Detection Finding with the `cloud`
/// profile (OCSF 1.3.0: base event, Finding, Detection Finding, cloud).
const CLASS_ATTRIBUTES: &[&str] = &[
    // Base event.
    "activity_id",
    "activity_name",
    "category_name",
    "category_uid",
    "class_name",
    "class_uid",
    "count",
    "duration",
    "end_time",
    "enrichments",
    "message",
    "metadata",
    "observables",
    "raw_data",
    "severity",
    "severity_id",
    "start_time",
    "status",
    "status_code",
    "status_detail",
    "status_id",
    "time",
    "timezone_offset",
    "type_name",
    "type_uid",
    "unmapped",
    // Finding.
    "comment",
    "confidence",
    "confidence_id",
    "confidence_score",
    "device",
    "finding_info",
    "vendor_attributes",
    // Detection Finding.
    "evidences",
    "impact",
    "impact_id",
    "impact_score",
    "malware",
    "remediation",
    "resources",
    "risk_details",
    "risk_level",
    "risk_level_id",
    "risk_score",
    "vulnerabilities",
    // The cloud profile.
    "api",
    "cloud",
];

/// Every requirement of the schema that applies to our events.
fn check_schema(event: &Value) {
    for key in event.as_object().unwrap().keys() {
        assert!(
            CLASS_ATTRIBUTES.contains(&key.as_str()),
            "{key} is not an attribute of the class"
        );
    }
    // Base event and Finding.
    assert_eq!(int(event, "class_uid"), 2004);
    assert_eq!(int(event, "category_uid"), 2);
    let activity = int(event, "activity_id");
    assert!((1..=3).contains(&activity), "activity_id {activity}");
    assert_eq!(int(event, "type_uid"), 2004 * 100 + activity);
    let severity = int(event, "severity_id");
    assert!((0..=6).contains(&severity) || severity == 99);
    assert!(int(event, "time") >= 0);
    let status = int(event, "status_id");
    // The Finding's 1-6, and the dictionary's 99 (Other) for a status the
    // source names itself.
    assert!(
        (1..=6).contains(&status) || status == 99,
        "status_id {status}"
    );
    // Metadata, product.
    assert_eq!(text(event, "metadata.version"), OCSF_VERSION);
    let semver: Vec<&str> = OCSF_VERSION.split('.').collect();
    assert!(semver.len() == 3 && semver.iter().all(|p| p.parse::<u32>().is_ok()));
    assert!(!text(event, "metadata.product.name").is_empty());
    // The cloud profile.
    assert_eq!(text(event, "cloud.provider"), "AWS");
    // Finding info and its analytic.
    assert!(!text(event, "finding_info.uid").is_empty());
    assert_eq!(int(event, "finding_info.analytic.type_id"), 1);
    for attack in at(event, "finding_info.attacks")
        .as_array()
        .into_iter()
        .flatten()
    {
        assert!(
            ["tactic", "technique", "sub_technique"]
                .iter()
                .any(|k| attack.get(k).is_some()),
            "attack without tactic or technique: {attack}"
        );
    }
    // API, user, accounts, endpoints (where present).
    assert!(!text(event, "api.operation").is_empty());
    let mut users = vec![];
    for evidence in at(event, "evidences")
        .as_array()
        .expect("evidences is a list")
    {
        assert!(evidence.as_object().is_some_and(|e| !e.is_empty()));
        assert!(!text(evidence, "api.operation").is_empty());
        if let Some(user) = evidence.pointer("/actor/user") {
            users.push(user);
        }
    }
    for user in users {
        assert!(
            ["account", "name", "uid"]
                .iter()
                .any(|k| user.get(k).is_some()),
            "user without account, name or uid: {user}"
        );
    }
    for account in [
        event.pointer("/cloud/account"),
        event.pointer("/evidences/0/actor/user/account"),
    ]
    .into_iter()
    .flatten()
    {
        assert_eq!(int(account, "type_id"), 10);
        assert!(text(account, "uid").len() == 12);
    }
    if let Some(ip) = event.pointer("/evidences/0/src_endpoint/ip") {
        assert!(ip.as_str().unwrap().parse::<std::net::IpAddr>().is_ok());
    }
}

#[test]
fn findings_are_valid_detection_findings() {
    let records = [
        // An IAM user with a long-term key.
        r#"{"eventVersion":"1.09","eventTime":"2026-11-02T08:00:00Z","eventSource":"bedrock.amazonaws.com",
           "eventName":"InvokeModel","awsRegion":"us-east-1","sourceIPAddress":"203.0.113.7",
           "userAgent":"Boto3/1.34","eventID":"e-1","recipientAccountId":"111122223333",
           "userIdentity":{"type":"IAMUser","principalId":"AIDAEXAMPLE","arn":"arn:aws:iam::111122223333:user/alice",
             "accountId":"111122223333","accessKeyId":"AKIAEXAMPLE","userName":"alice"}}"#,
        // An assumed role over IPv6, with an error.
        r#"{"eventVersion":"1.09","eventTime":"2026-11-02T08:00:01.250Z","eventSource":"bedrock.amazonaws.com",
           "eventName":"Converse","awsRegion":"eu-west-1","sourceIPAddress":"2001:db8::1",
           "errorCode":"AccessDenied","eventID":"e-2","recipientAccountId":"111122223333",
           "userIdentity":{"type":"AssumedRole","arn":"arn:aws:sts::111122223333:assumed-role/app/s",
             "accountId":"111122223333","accessKeyId":"ASIAEXAMPLE"}}"#,
        // A service calling on a principal's behalf: no address, no account.
        r#"{"eventVersion":"1.09","eventTime":"2026-11-02T08:00:02Z","eventSource":"bedrock.amazonaws.com",
           "eventName":"InvokeModel","sourceIPAddress":"bedrock.amazonaws.com","eventID":"e-3",
           "userIdentity":{"type":"AWSService","invokedBy":"bedrock.amazonaws.com"}}"#,
        // Hostile text, no identity.
        r#"{"eventTime":"2026-11-02T08:00:03Z","eventSource":"bedrock.amazonaws.com","eventName":"Invoke\u001b[2J\u0000",
           "userAgent":"\u202eevil\"\\","eventID":"e-4"}"#,
    ];
    let found = findings(&records);
    assert_eq!(found.len(), 4);
    let mut events: Vec<Value> = found.iter().map(detection_finding).collect();
    // A stored finding whose time cannot be read (the reader refuses such
    // records, a findings table may still hold one).
    let mut odd = found[0].clone();
    odd.event_time = "yesterday".into();
    events.push(detection_finding(&odd));
    for event in &events {
        check_schema(event);
        // A JSON round trip keeps it whole.
        let text = serde_json::to_string(event).unwrap();
        assert_eq!(&serde_json::from_str::<Value>(&text).unwrap(), event);
    }

    let user = &events[0];
    assert_eq!(int(user, "severity_id"), 4);
    assert_eq!(text(user, "severity"), "High");
    assert_eq!(int(user, "time"), 1_793_606_400_000);
    assert_eq!(text(user, "finding_info.uid"), found[0].id);
    assert_eq!(
        text(user, "finding_info.analytic.uid"),
        "6f0d3f5e-0000-4000-8000-000000000001"
    );
    assert_eq!(
        text(user, "evidences.0.actor.user.uid"),
        "arn:aws:iam::111122223333:user/alice"
    );
    assert_eq!(
        text(user, "evidences.0.actor.user.credential_uid"),
        "AKIAEXAMPLE"
    );
    assert_eq!(int(user, "evidences.0.actor.user.type_id"), 1);
    assert_eq!(text(user, "evidences.0.actor.user.type"), "IAMUser");
    assert_eq!(int(&events[1], "evidences.0.actor.user.type_id"), 99);
    assert_eq!(int(user, "status_id"), 1);
    // A stored finding's status.
    for (status, id) in [
        ("open", 1),
        ("acknowledged", 2),
        ("resolved", 4),
        ("odd", 99),
    ] {
        let mut event = events[0].clone();
        trailwarden_engine::ocsf::set_status(&mut event, status);
        assert_eq!(int(&event, "status_id"), id);
        check_schema(&event);
    }
    assert_eq!(text(user, "evidences.0.src_endpoint.ip"), "203.0.113.7");
    assert_eq!(text(user, "api.operation"), "InvokeModel");
    assert_eq!(text(user, "api.service.name"), "bedrock.amazonaws.com");
    assert_eq!(text(user, "cloud.region"), "us-east-1");
    assert_eq!(text(user, "cloud.account.uid"), "111122223333");
    assert_eq!(
        at(user, "finding_info.attacks"),
        &serde_json::json!([
            {"technique": {"uid": "T1078"}, "sub_technique": {"uid": "T1078.004"}},
            {"technique": {"uid": "T1530"}},
            {"tactic": {"uid": "TA0001", "name": "Initial Access"}},
        ])
    );
    assert_eq!(
        at(user, "unmapped.trailwarden.event_ids"),
        &serde_json::json!(["e-1"])
    );

    // Findings keep event times to the second.
    assert_eq!(int(&events[1], "time"), 1_793_606_401_000);
    assert_eq!(
        text(&events[1], "evidences.0.src_endpoint.ip"),
        "2001:db8::1"
    );
    assert_eq!(text(&events[1], "api.response.error"), "AccessDenied");

    // A service name is not an address; no account, no cloud account.
    let service = &events[2];
    assert!(service.pointer("/cloud/account").is_none());
    assert!(service.pointer("/evidences/0/src_endpoint").is_none());

    // No identity: the finding's principal is "anonymous"; hostile text
    // is kept as text (JSON escapes it; terminals get it escaped again).
    assert_eq!(text(&events[3], "evidences.0.actor.user.uid"), "anonymous");
    assert!(events[3]
        .pointer("/evidences/0/actor/user/account")
        .is_none());
    assert_eq!(text(&events[3], "api.operation"), "Invoke\u{1b}[2J\u{0}");
    assert_eq!(
        text(&events[3], "unmapped.trailwarden.user_agent"),
        "\u{202e}evil\"\\"
    );

    // An unreadable time is 0, never a missing required attribute.
    assert_eq!(int(&events[4], "time"), 0);
}
