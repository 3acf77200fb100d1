//! What a finding says of its event whatever the record looked like: event
//! times in every accepted layout as RFC 3339, and always an actor.

use trailwarden_cloudtrail::Record;
use trailwarden_engine::{Engine, RuleSetBuilder};

fn engine(yaml: &str) -> Engine {
    let mut b = RuleSetBuilder::new();
    b.add_yaml("test.yml", yaml);
    let set = b.build();
    assert!(set.problems.is_empty(), "{:?}", set.problems);
    Engine::from_set(set)
}

/// Published attack-simulation logs write `eventTime` as
/// `YYYY-MM-DD HH:MM:SS.000000000`: findings carry RFC 3339 UTC all the
/// same, so `findings --since` compares both layouts alike.
#[test]
fn findings_carry_rfc3339_event_times_whatever_the_layout() {
    let e = engine(
        r#"
title: Logging deleted
id: 10000000-0000-4000-8000-000000000009
logsource: {product: aws, service: cloudtrail}
detection:
  selection:
    eventName: DeleteModelInvocationLoggingConfiguration
  condition: selection
level: high
"#,
    );
    for layout in [
        "2026-11-02 08:06:41.000000000",
        "2026-11-02T08:06:41Z",
        "2026-11-02T08:06:41.000Z",
    ] {
        let text = format!(
            r#"{{"eventVersion":"1.08","eventTime":"{layout}","eventSource":"bedrock.amazonaws.com","eventName":"DeleteModelInvocationLoggingConfiguration","eventID":"e1","userIdentity":{{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/a"}}}}"#
        );
        let found = e.findings(&Record::parse(&text).unwrap());
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].event_time, "2026-11-02T08:06:41Z", "{layout}");
    }
}

/// Every finding names its actor, in the documented order of
/// `Identity::principal`.
#[test]
fn every_finding_names_its_actor() {
    let e = engine(
        r#"
title: Any model call
id: 10000000-0000-4000-8000-00000000000a
logsource: {product: aws, service: cloudtrail}
detection:
  selection:
    eventName: InvokeModel
  condition: selection
level: low
"#,
    );
    for (identity, expected) in [
        (
            r#"{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/a","userName":"a"}"#,
            "arn:aws:iam::111122223333:user/a",
        ),
        (
            r#"{"type":"AssumedRole","principalId":"AROAEXAMPLE:build-42","sessionContext":{"sessionIssuer":{"type":"Role","arn":"arn:aws:iam::111122223333:role/ci"}}}"#,
            "arn:aws:iam::111122223333:role/ci/build-42",
        ),
        (
            r#"{"type":"WebIdentityUser","principalId":"arn:aws:iam::111122223333:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/X:system:serviceaccount:ml:trainer","userName":"system:serviceaccount:ml:trainer","identityProvider":"arn:aws:iam::111122223333:oidc-provider/oidc.eks"}"#,
            "system:serviceaccount:ml:trainer",
        ),
        (r#"{"type":"Unknown","principalId":"P123"}"#, "P123"),
        (
            r#"{"type":"AWSService","invokedBy":"sagemaker.amazonaws.com"}"#,
            "sagemaker.amazonaws.com",
        ),
        (r#"{"type":"AWSAccount"}"#, "anonymous"),
    ] {
        let text = format!(
            r#"{{"eventVersion":"1.08","eventTime":"2026-11-02T08:06:41Z","eventSource":"bedrock.amazonaws.com","eventName":"InvokeModel","eventID":"e1","userIdentity":{identity}}}"#
        );
        let found = e.findings(&Record::parse(&text).unwrap());
        assert_eq!(found[0].principal.as_deref(), Some(expected), "{identity}");
    }
    // No userIdentity at all (an anonymous call).
    let text = r#"{"eventVersion":"1.08","eventTime":"2026-11-02T08:06:41Z","eventSource":"bedrock.amazonaws.com","eventName":"InvokeModel","eventID":"e2"}"#;
    let found = e.findings(&Record::parse(text).unwrap());
    assert_eq!(found[0].principal.as_deref(), Some("anonymous"));
}
