//! Sigma constructs as the specification writes them: filters applied to
//! the rules they name, correlation aliases, and the building blocks of a
//! refused correlation kept silent. Event in, findings out.

use trailwarden_cloudtrail::Record;
use trailwarden_engine::{Engine, Finding, MemoryStore, RuleSet, RuleSetBuilder, Session};

fn load(yaml: &[&str]) -> RuleSet {
    let mut b = RuleSetBuilder::new();
    for (i, y) in yaml.iter().enumerate() {
        b.add_yaml(&format!("file{i}.yml"), y);
    }
    b.build()
}

fn engine(yaml: &[&str]) -> Engine {
    let set = load(yaml);
    assert!(set.problems.is_empty(), "{:?}", set.problems);
    Engine::from_set(set)
}

fn event(name: &str, user: &str, ip: &str, extra: &str) -> String {
    format!(
        r#"{{"eventVersion":"1.08","eventTime":"2026-11-02T08:00:{extra}Z","eventSource":"bedrock.amazonaws.com","eventName":"{name}","eventID":"{name}-{user}-{extra}","sourceIPAddress":"{ip}","userIdentity":{{"type":"IAMUser","userName":"{user}","arn":"arn:aws:iam::111122223333:user/{user}"}},"requestParameters":{{"roleName":"{user}"}}}}"#
    )
}

fn run(engine: &Engine, events: &[String]) -> Vec<Finding> {
    let mut store = MemoryStore::new();
    let mut session = Session::new(engine);
    let mut out = Vec::new();
    for e in events {
        session.record(&Record::parse(e).unwrap(), &mut |f| out.push(f));
    }
    out.extend(session.flush(&mut store).unwrap());
    out
}

const DELETE_GUARDRAIL: &str = r#"
title: Guardrail Deleted
id: 20000000-0000-4000-8000-000000000001
name: guardrail_deleted
logsource: {product: aws, service: cloudtrail}
detection:
  selection:
    eventName: DeleteGuardrail
  condition: 1 of selection*
level: high
"#;

const FILTER: &str = r#"
title: Pipeline deletes guardrails it owns
id: 20000000-0000-4000-8000-0000000000f1
logsource: {product: aws, service: cloudtrail}
filter:
  rules:
    - guardrail_deleted
  selection:
    userIdentity.userName: deploy-bot
    sourceIPAddress|cidr: 10.0.0.0/8
  condition: not selection
"#;

#[test]
fn a_filter_excludes_what_it_names_from_the_rules_it_names() {
    // The filter before or after its rule, in another file.
    for files in [[DELETE_GUARDRAIL, FILTER], [FILTER, DELETE_GUARDRAIL]] {
        let e = engine(&files);
        let found = run(
            &e,
            &[
                event("DeleteGuardrail", "deploy-bot", "10.1.2.3", "01"),
                // Near misses: the same user from outside, another user inside.
                event("DeleteGuardrail", "deploy-bot", "203.0.113.5", "02"),
                event("DeleteGuardrail", "mallory", "10.1.2.3", "03"),
            ],
        );
        let ids: Vec<&str> = found.iter().map(|f| f.event_ids[0].as_str()).collect();
        assert_eq!(
            ids,
            [
                "DeleteGuardrail-deploy-bot-02",
                "DeleteGuardrail-mallory-03"
            ]
        );
    }
    // A filter naming a rule that is not loaded is a problem, not a no-op.
    let set = load(&[FILTER]);
    assert_eq!(set.problems.len(), 1, "{:?}", set.problems);
    assert!(set.problems[0].reason.contains("guardrail_deleted"));
}

const CHAIN: &str = r#"
title: Role created
id: 20000000-0000-4000-8000-000000000011
name: role_created
logsource: {product: aws, service: cloudtrail}
detection:
  selection:
    eventName: CreateRole
  condition: selection
level: low
---
title: Model invoked
id: 20000000-0000-4000-8000-000000000012
name: model_invoked
logsource: {product: aws, service: cloudtrail}
detection:
  selection:
    eventName: InvokeModel
  condition: selection
level: low
---
title: New role used for a model at once
id: 20000000-0000-4000-8000-000000000013
correlation:
  type: temporal_ordered
  rules: [role_created, model_invoked]
  aliases:
    actor:
      role_created: requestParameters.roleName
      model_invoked: userIdentity.userName
  group-by: [actor]
  timespan: 10m
level: high
"#;

#[test]
fn correlation_aliases_group_by_each_rules_own_field() {
    let e = engine(&[CHAIN]);
    // Alice creates role "bob"; "bob" invokes a model: one actor, bob.
    let mut create = event("CreateRole", "alice", "1.1.1.1", "01");
    create = create.replace(r#""roleName":"alice""#, r#""roleName":"bob""#);
    let found = run(
        &e,
        &[create.clone(), event("InvokeModel", "bob", "1.1.1.1", "02")],
    );
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].group.get("actor").map(String::as_str), Some("bob"));
    // Near miss: someone else invokes.
    let found = run(
        &e,
        &[create, event("InvokeModel", "carol", "1.1.1.1", "02")],
    );
    assert!(found.is_empty(), "{found:#?}");
}

#[test]
fn the_building_blocks_of_a_refused_correlation_stay_silent() {
    let refused = r#"
title: Block
id: 20000000-0000-4000-8000-000000000021
name: block
logsource: {product: aws, service: cloudtrail}
detection:
  selection:
    eventName: InvokeModel
  condition: selection
level: informational
---
title: Refused correlation
id: 20000000-0000-4000-8000-000000000022
correlation:
  type: event_count
  rules: [block]
  group-by: [userIdentity.userName]
  timespan: 0s
  condition:
    gte: 2
level: high
"#;
    let set = load(&[refused]);
    assert_eq!(set.problems.len(), 1, "{:?}", set.problems);
    let e = Engine::from_set(set);
    let found = run(&e, &[event("InvokeModel", "a", "1.1.1.1", "01")]);
    assert!(found.is_empty(), "the block fired on its own: {found:#?}");
}

#[test]
fn constructs_not_run_are_load_errors_that_say_so() {
    let aggregation = r#"
title: Old aggregation
id: 20000000-0000-4000-8000-000000000031
logsource: {product: aws, service: cloudtrail}
detection:
  selection:
    eventName: GetObject
  timeframe: 5m
  condition: selection | count() by sourceIPAddress > 10
level: low
"#;
    let chained = r#"
title: Block
id: 20000000-0000-4000-8000-000000000032
name: blk
logsource: {product: aws, service: cloudtrail}
detection:
  selection:
    eventName: GetObject
  condition: selection
level: low
---
title: Sum
id: 20000000-0000-4000-8000-000000000033
name: sum
correlation:
  type: value_sum
  rules: [blk]
  group-by: [userIdentity.arn]
  timespan: 1h
  condition:
    field: additionalEventData.bytesTransferredOut
    gte: 1000000
level: high
---
title: Chain
id: 20000000-0000-4000-8000-000000000034
correlation:
  type: event_count
  rules: [sum]
  group-by: [sourceIPAddress]
  timespan: 1h
  condition:
    gte: 2
level: high
"#;
    let set = load(&[aggregation, chained]);
    let reasons: Vec<String> = set
        .problems
        .iter()
        .map(|p| format!("{}: {:?}: {}", p.source, p.rule, p.reason))
        .collect();
    assert_eq!(reasons.len(), 2, "{reasons:#?}");
    assert!(reasons[0].starts_with("file0.yml") && reasons[0].contains("Sigma 1 aggregation"));
    assert!(!reasons[0].contains('\n'));
    // A chained correlation reads only the group-by fields of the one it
    // refers to.
    assert!(reasons.iter().any(|r| r.contains("\"Chain\"")
        && r.contains("\"sourceIPAddress\"")
        && r.contains("carry only its group-by fields (userIdentity.arn)")));
    // The block stays silent (it feeds the value_sum correlation).
    let e = Engine::from_set(set);
    let found = run(&e, &[event("GetObject", "a", "1.1.1.1", "01")]);
    assert!(found.is_empty(), "{found:#?}");
}

/// `value_sum`, `value_avg`, `value_percentile` and `value_median` over a
/// numeric field, each with a positive case and a near miss.
#[test]
fn numeric_aggregations_fire_on_their_threshold() {
    let rules = |kind: &str, extra: &str, op: &str, threshold: u64| {
        format!(
            r#"
title: Download
id: 20000000-0000-4000-8000-000000000041
name: download
logsource: {{product: aws, service: cloudtrail}}
detection:
  selection:
    eventName: GetObject
  condition: selection
level: informational
---
title: Large downloads
id: 20000000-0000-4000-8000-000000000042
correlation:
  type: {kind}
  rules: [download]
  group-by: [userIdentity.userName]
  timespan: 1h
  condition:
    field: additionalEventData.bytesTransferredOut
    {extra}
    {op}: {threshold}
level: high
"#
        )
    };
    let download = |i: u32, bytes: &str| {
        format!(
            r#"{{"eventVersion":"1.08","eventTime":"2026-11-02T08:{i:02}:00Z","eventSource":"s3.amazonaws.com","eventName":"GetObject","eventID":"dl-{i}","userIdentity":{{"type":"IAMUser","userName":"u","arn":"arn:aws:iam::111122223333:user/u"}},"additionalEventData":{{"bytesTransferredOut":{bytes}}}}}"#
        )
    };
    // A string-typed 1000 first, then 40, 30, 20, 10: the window from the
    // first event has sum 1100, avg 220, median 30, 80th percentile 232;
    // every later window (sliding, one per event) has less of each.
    let events: Vec<String> = ["\"1000\"", "40", "30", "20", "10"]
        .iter()
        .enumerate()
        .map(|(i, b)| download(i as u32, b))
        .collect();
    for (kind, extra, fires, misses) in [
        ("value_sum", "", 1100, 1101),
        ("value_avg", "", 220, 221),
        ("value_median", "", 30, 31),
        ("value_percentile", "percentile: 80", 232, 233),
    ] {
        let e = engine(&[&rules(kind, extra, "gte", fires)]);
        let found = run(&e, &events);
        assert_eq!(found.len(), 1, "{kind} gte {fires}: {found:#?}");
        assert_eq!(found[0].count, 5);
        let e = engine(&[&rules(kind, extra, "gte", misses)]);
        assert!(run(&e, &events).is_empty(), "{kind} gte {misses}");
    }
    // An event without the field (or with a non-number) is not counted.
    let e = engine(&[&rules("value_sum", "", "gte", 20)]);
    let found = run(&e, &[download(1, "\"n/a\""), download(2, "10")]);
    assert!(found.is_empty(), "{found:#?}");
}

fn console_login(user: &str, at: &str, outcome: &str) -> String {
    format!(
        r#"{{"eventVersion":"1.08","eventTime":"2026-11-02T08:{at}Z","eventSource":"signin.amazonaws.com","eventName":"ConsoleLogin","eventID":"login-{user}-{at}","sourceIPAddress":"198.51.100.7","userIdentity":{{"type":"IAMUser","userName":"{user}","arn":"arn:aws:iam::111122223333:user/{user}","accountId":"111122223333"}},"responseElements":{{"ConsoleLogin":"{outcome}"}}}}"#
    )
}

/// The specification's own example ("Failed Logins Followed by Successful
/// Login"), on CloudTrail sign-in events: a `temporal_ordered`
/// correlation over an `event_count` correlation and a rule.
const BRUTE_FORCE: &str = r#"
title: Failed console logins followed by a successful one
id: 20000000-0000-4000-8000-000000000061
correlation:
  type: temporal_ordered
  rules:
    - multiple_failed_login
    - successful_login
  group-by:
    - userIdentity.userName
  timespan: 10m
level: high
---
title: Multiple failed console logins
id: 20000000-0000-4000-8000-000000000062
name: multiple_failed_login
correlation:
  type: event_count
  rules:
    - failed_login
  group-by:
    - userIdentity.userName
  timespan: 10m
  condition:
    gte: 3
level: medium
---
title: Failed console login
id: 20000000-0000-4000-8000-000000000063
name: failed_login
logsource: {product: aws, service: cloudtrail}
detection:
  selection:
    eventName: ConsoleLogin
    responseElements.ConsoleLogin: Failure
  condition: selection
level: low
---
title: Successful console login
id: 20000000-0000-4000-8000-000000000064
name: successful_login
logsource: {product: aws, service: cloudtrail}
detection:
  selection:
    eventName: ConsoleLogin
    responseElements.ConsoleLogin: Success
  condition: selection
level: low
"#;

#[test]
fn chained_correlations_run_as_the_specification_writes_them() {
    let e = engine(&[BRUTE_FORCE]);
    let fail = |user: &str, at: &str| console_login(user, at, "Failure");
    let ok = |user: &str, at: &str| console_login(user, at, "Success");
    let titles =
        |found: &[Finding]| -> Vec<String> { found.iter().map(|f| f.rule_title.clone()).collect() };

    // Three failures, then a success: the outer correlation fires alone
    // (the referenced correlation and rules are building blocks).
    let found = run(
        &e,
        &[
            fail("bob", "00:01"),
            fail("bob", "00:02"),
            fail("bob", "00:03"),
            ok("bob", "01:00"),
        ],
    );
    assert_eq!(
        titles(&found),
        ["Failed console logins followed by a successful one"],
        "{found:#?}"
    );
    let f = &found[0];
    assert_eq!(
        f.group.get("userIdentity.userName").map(String::as_str),
        Some("bob")
    );
    assert_eq!(
        f.principal.as_deref(),
        Some("arn:aws:iam::111122223333:user/bob")
    );
    assert_eq!(
        f.count, 2,
        "the firing of the inner correlation and the success"
    );

    // Near misses: two failures; the success before the failures; the
    // success of another user; the success more than 10 minutes later.
    for (case, events) in [
        (
            "two failures",
            vec![
                fail("bob", "00:01"),
                fail("bob", "00:02"),
                ok("bob", "01:00"),
            ],
        ),
        (
            "success first",
            vec![
                ok("bob", "00:00"),
                fail("bob", "00:01"),
                fail("bob", "00:02"),
                fail("bob", "00:03"),
            ],
        ),
        (
            "another user",
            vec![
                fail("bob", "00:01"),
                fail("bob", "00:02"),
                fail("bob", "00:03"),
                ok("eve", "01:00"),
            ],
        ),
        (
            "too late",
            vec![
                fail("bob", "00:01"),
                fail("bob", "00:02"),
                fail("bob", "00:03"),
                ok("bob", "14:00"),
            ],
        ),
    ] {
        let found = run(&e, &events);
        assert!(found.is_empty(), "{case}: {found:#?}");
    }

    // Across batches: the failures in one object, the success in a later
    // one, through the same store; the same object again adds nothing.
    let mut store = MemoryStore::new();
    let batch = |store: &mut MemoryStore, name: &str, events: &[String]| {
        let mut session = Session::new(&e);
        session.set_source(name);
        let mut out = Vec::new();
        for text in events {
            session.record(&Record::parse(text).unwrap(), &mut |f| out.push(f));
        }
        out.extend(session.flush(store).unwrap());
        out
    };
    let failures = [
        fail("bob", "00:01"),
        fail("bob", "00:02"),
        fail("bob", "00:03"),
    ];
    assert!(batch(&mut store, "obj-1", &failures).is_empty());
    assert!(batch(&mut store, "obj-1", &failures).is_empty());
    let found = batch(&mut store, "obj-2", &[ok("bob", "02:00")]);
    assert_eq!(
        titles(&found),
        ["Failed console logins followed by a successful one"]
    );
    assert!(batch(&mut store, "obj-2", &[ok("bob", "02:00")]).is_empty());

    // `generate: true` on the outer correlation reports what it refers to
    // (the inner correlation and the success); the failures stay building
    // blocks of the inner one, which does not say `generate: true`.
    let generating = BRUTE_FORCE.replacen(
        "  timespan: 10m\nlevel: high",
        "  timespan: 10m\ngenerate: true\nlevel: high",
        1,
    );
    let e = engine(&[&generating]);
    let found = run(
        &e,
        &[
            fail("bob", "00:01"),
            fail("bob", "00:02"),
            fail("bob", "00:03"),
            ok("bob", "01:00"),
        ],
    );
    let mut got = titles(&found);
    got.sort();
    assert_eq!(
        got,
        [
            "Failed console logins followed by a successful one",
            "Multiple failed console logins",
            "Successful console login",
        ],
        "{found:#?}"
    );
}

#[test]
fn chained_correlations_that_cannot_run_are_refused_with_their_reason() {
    let cycle = r#"
title: Login
id: 20000000-0000-4000-8000-000000000071
name: login
logsource: {product: aws, service: cloudtrail}
detection:
  selection:
    eventName: ConsoleLogin
  condition: selection
level: low
---
title: A
id: 20000000-0000-4000-8000-000000000072
name: a
correlation:
  type: temporal
  rules: [login, b]
  group-by: [userIdentity.userName]
  timespan: 1h
level: high
---
title: B
id: 20000000-0000-4000-8000-000000000073
name: b
correlation:
  type: event_count
  rules: [a]
  group-by: [userIdentity.userName]
  timespan: 1h
  condition:
    gte: 2
level: high
---
title: Over B
id: 20000000-0000-4000-8000-000000000074
correlation:
  type: event_count
  rules: [b]
  group-by: [userIdentity.userName]
  timespan: 1h
  condition:
    gte: 2
level: high
"#;
    let set = load(&[cycle]);
    let reasons: Vec<String> = set
        .problems
        .iter()
        .map(|p| format!("{}: {:?}: {}", p.source, p.rule, p.reason))
        .collect();
    assert_eq!(reasons.len(), 3, "{reasons:#?}");
    assert!(reasons
        .iter()
        .any(|r| r.contains("\"A\"") && r.contains("loops back")));
    assert!(reasons
        .iter()
        .any(|r| r.contains("\"B\"") && r.contains("loops back")));
    assert!(reasons
        .iter()
        .any(|r| r.contains("\"Over B\"") && r.contains("refused")));
    assert!(set.correlations.is_empty());
    // The rule stays a silent building block.
    let e = Engine::from_set(set);
    assert!(run(&e, &[console_login("bob", "00:01", "Success")]).is_empty());
}

/// A chain of `depth` correlations over the login rule, each firing on one
/// event of the level below; the top one is named `c{depth}`.
fn chain(depth: usize) -> String {
    let mut yaml = String::from(
        "title: Login\nid: 20000000-0000-4000-8000-000000000100\nname: c0\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n  selection:\n    eventName: ConsoleLogin\n  condition: selection\nlevel: low\n",
    );
    for level in 1..=depth {
        yaml.push_str(&format!(
            "---\ntitle: Chain level {level}\nid: 20000000-0000-4000-8000-{level:012}\nname: c{level}\ncorrelation:\n  type: event_count\n  rules: [c{}]\n  group-by: [userIdentity.userName]\n  timespan: 1h\n  condition:\n    gte: 1\nlevel: high\n",
            level - 1
        ));
    }
    yaml
}

#[test]
fn chains_fire_to_their_full_depth_and_deeper_ones_are_refused() {
    let depth = trailwarden_engine::rules::MAX_CHAIN_DEPTH;
    let e = engine(&[&chain(depth)]);
    let found = run(&e, &[console_login("bob", "00:01", "Success")]);
    let titles: Vec<&str> = found.iter().map(|f| f.rule_title.as_str()).collect();
    assert_eq!(titles, [format!("Chain level {depth}")], "{found:#?}");

    let set = load(&[&chain(depth + 1)]);
    assert_eq!(set.problems.len(), 1, "{:#?}", set.problems);
    assert_eq!(
        set.problems[0].rule.as_deref(),
        Some(format!("Chain level {}", depth + 1).as_str())
    );
    assert!(set.problems[0]
        .reason
        .contains("more than 8 correlations deep"));
}

/// A correlation over another, added after the files were read: reading
/// them again (the same objects, so the referenced correlation's window
/// already holds the batch and does not fire again) still hands its
/// firing on. The same path recovers a chain whose second round failed.
#[test]
fn a_chained_correlation_added_later_sees_firings_on_files_read_again() {
    let inner_only = BRUTE_FORCE
        .split("\n---\n")
        .skip(1)
        .collect::<Vec<_>>()
        .join("\n---\n");
    let inner = engine(&[&inner_only]);
    let both = engine(&[BRUTE_FORCE]);
    let events = [
        console_login("bob", "00:01", "Failure"),
        console_login("bob", "00:02", "Failure"),
        console_login("bob", "00:03", "Failure"),
        console_login("bob", "01:00", "Success"),
    ];
    let batch = |e: &Engine, store: &mut MemoryStore| {
        let mut session = Session::new(e);
        session.set_source("s3://trail/obj-1@etag");
        let mut out = Vec::new();
        for text in &events {
            session.record(&Record::parse(text).unwrap(), &mut |f| out.push(f));
        }
        out.extend(session.flush(store).unwrap());
        out.into_iter().map(|f| f.rule_title).collect::<Vec<_>>()
    };
    let mut store = MemoryStore::new();
    assert_eq!(
        batch(&inner, &mut store),
        ["Successful console login", "Multiple failed console logins"]
    );
    assert_eq!(
        batch(&both, &mut store),
        ["Failed console logins followed by a successful one"]
    );
    assert!(batch(&both, &mut store).is_empty(), "once");
}

#[test]
fn names_that_two_rules_share_and_chains_over_rules_not_run_are_reported() {
    let shared_name = r#"
title: Login
id: 20000000-0000-4000-8000-000000000201
name: dup
logsource: {product: aws, service: cloudtrail}
detection:
  selection:
    eventName: ConsoleLogin
  condition: selection
level: low
---
title: Logins
id: 20000000-0000-4000-8000-000000000202
name: dup
correlation:
  type: event_count
  rules: [20000000-0000-4000-8000-000000000201]
  group-by: [userIdentity.userName]
  timespan: 1h
  condition:
    gte: 2
level: high
"#;
    let set = load(&[shared_name]);
    assert_eq!(set.problems.len(), 1, "{:#?}", set.problems);
    assert_eq!(set.problems[0].rule.as_deref(), Some("Logins"));
    assert!(set.problems[0]
        .reason
        .contains("\"dup\" is also the name or id of another loaded rule"));

    // A rule whose policy fact is empty is not run; correlations over it,
    // and over those, are set aside with a note, not reported as problems.
    let not_run = r#"
title: Login from an untrusted network
id: 20000000-0000-4000-8000-000000000211
name: untrusted_login
logsource: {product: aws, service: cloudtrail}
detection:
  selection:
    eventName: ConsoleLogin
  trusted:
    sourceIPAddress|expand: '%trusted_networks%'
  condition: selection and not trusted
level: low
---
title: Untrusted logins
id: 20000000-0000-4000-8000-000000000212
name: untrusted_logins
correlation:
  type: event_count
  rules: [untrusted_login]
  group-by: [userIdentity.userName]
  timespan: 1h
  condition:
    gte: 2
level: medium
---
title: Over untrusted logins
id: 20000000-0000-4000-8000-000000000213
correlation:
  type: event_count
  rules: [untrusted_logins]
  group-by: [userIdentity.userName]
  timespan: 1d
  condition:
    gte: 2
level: high
"#;
    let set = load(&[not_run]);
    assert!(set.problems.is_empty(), "{:#?}", set.problems);
    let noted: Vec<&str> = set.notes.iter().map(|n| n.rule.as_str()).collect();
    assert!(
        noted.contains(&"Untrusted logins") && noted.contains(&"Over untrusted logins"),
        "{:#?}",
        set.notes
    );
    assert!(set.correlations.is_empty());
}

/// Long group values (attacker-chosen: a user agent) that share their
/// first bytes stay distinct groups of a correlation over a correlation.
#[test]
fn chained_groups_keep_whole_values() {
    let yaml = r#"
title: Login
id: 20000000-0000-4000-8000-000000000301
name: login
logsource: {product: aws, service: cloudtrail}
detection:
  selection:
    eventName: ConsoleLogin
  condition: selection
level: low
---
title: Inner
id: 20000000-0000-4000-8000-000000000302
name: inner
correlation:
  type: event_count
  rules: [login]
  group-by: [userAgent]
  timespan: 1m
  condition:
    gte: 1
level: low
---
title: Outer
id: 20000000-0000-4000-8000-000000000303
correlation:
  type: event_count
  rules: [inner]
  group-by: [userAgent]
  timespan: 1d
  condition:
    gte: 2
level: high
"#;
    let e = engine(&[yaml]);
    let login = |ua: &str, at: &str| {
        format!(
            r#"{{"eventVersion":"1.08","eventTime":"2026-11-02T08:{at}Z","eventSource":"signin.amazonaws.com","eventName":"ConsoleLogin","eventID":"l-{at}","userAgent":"{ua}","userIdentity":{{"type":"IAMUser","userName":"bob"}}}}"#
        )
    };
    let prefix = "A".repeat(300);
    let two_agents = [
        login(&format!("{prefix}x"), "00:01"),
        login(&format!("{prefix}y"), "05:01"),
    ];
    assert!(
        run(&e, &two_agents).is_empty(),
        "two groups, one firing each"
    );
    let one_agent = [
        login(&format!("{prefix}x"), "00:01"),
        login(&format!("{prefix}x"), "05:01"),
    ];
    let found = run(&e, &one_agent);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].rule_title, "Outer");
}
