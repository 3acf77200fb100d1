//! Event times in every accepted layout come out of findings as RFC 3339.

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
