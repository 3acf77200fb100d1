//! Stateful detection: correlations and baselines on event time, once per
//! group per window, across batches, out of order, and redelivered.

use trailwarden_cloudtrail::Record;
use trailwarden_engine::state::{PutOutcome, StateItem, StateKey, StateWrite};
use trailwarden_engine::{
    Engine, Finding, MemoryStore, Policy, RuleSetBuilder, Session, StateStore, StoreError,
};

fn engine(yaml: &str) -> Engine {
    engine_with(yaml, Policy::empty())
}

fn engine_with(yaml: &str, policy: Policy) -> Engine {
    let mut b = RuleSetBuilder::with_policy(policy);
    b.add_yaml("test.yml", yaml);
    let set = b.build();
    assert!(set.problems.is_empty(), "{:?}", set.problems);
    Engine::from_set(set)
}

/// A record at `minute:second` past 08:00 on 2026-11-02 (or a full time).
fn rec(time: &str, name: &str, key: &str, extra: &str) -> String {
    let time = if time.len() <= 5 {
        format!("2026-11-02T08:{time}Z")
    } else {
        time.to_owned()
    };
    let id =
        format!("{name}-{key}-{time}-{extra}").replace(|c: char| !c.is_ascii_alphanumeric(), "");
    format!(
        r#"{{"eventVersion":"1.08","eventTime":"{time}","eventSource":"bedrock.amazonaws.com","eventName":"{name}","awsRegion":"us-east-1","sourceIPAddress":"{extra}","userAgent":"ua","eventID":"{id}","recipientAccountId":"111122223333","userIdentity":{{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/{key}","accessKeyId":"{key}","accountId":"111122223333"}},"requestParameters":{{"modelId":"{extra}"}}}}"#
    )
}

/// Run batches (each a log object) through one store; all findings.
fn run(engine: &Engine, store: &mut MemoryStore, batches: &[Vec<String>]) -> Vec<Finding> {
    let mut out = Vec::new();
    for batch in batches {
        let mut session = Session::new(engine);
        for text in batch {
            let record = Record::parse(text).unwrap();
            session.record(&record, &mut |f| out.push(f));
        }
        out.extend(session.flush(store).unwrap());
    }
    out
}

const BURST: &str = r#"
title: Invocation
id: 00000000-0000-4000-8000-000000000001
name: invoke
logsource: {product: aws, service: cloudtrail}
detection:
  selection:
    eventName: InvokeModel
  condition: selection
level: informational
---
title: Burst of invocations
id: 00000000-0000-4000-8000-000000000002
correlation:
  type: event_count
  rules: [invoke]
  group-by: [userIdentity.accessKeyId]
  timespan: 1m
  condition:
    gte: 3
level: high
"#;

#[test]
fn event_count_fires_once_per_group_per_window() {
    let e = engine(BURST);
    let mut store = MemoryStore::new();
    let batch: Vec<String> = ["00:00", "00:10", "00:20", "00:30", "00:40", "00:50"]
        .iter()
        .map(|t| rec(t, "InvokeModel", "AKIA1", "m"))
        .collect();
    let found = run(&e, &mut store, &[batch]);
    assert_eq!(found.len(), 1, "{found:#?}");
    let f = &found[0];
    assert_eq!(f.rule_title, "Burst of invocations");
    assert_eq!(f.count, 6);
    assert_eq!(
        f.group.get("userIdentity.accessKeyId").map(String::as_str),
        Some("AKIA1")
    );
    assert_eq!(
        f.principal.as_deref(),
        Some("arn:aws:iam::111122223333:user/AKIA1")
    );
    // The base rule makes no finding of its own.
    assert!(found.iter().all(|f| f.rule_title != "Invocation"));
}

#[test]
fn windows_use_event_time_across_batches_and_out_of_order() {
    let e = engine(BURST);
    let mut store = MemoryStore::new();
    // Three events within a minute, delivered in three objects, newest first.
    let found = run(
        &e,
        &mut store,
        &[
            vec![rec("05:50", "InvokeModel", "AKIA1", "m")],
            vec![rec("05:10", "InvokeModel", "AKIA1", "m")],
            vec![rec("05:30", "InvokeModel", "AKIA1", "m")],
        ],
    );
    assert_eq!(found.len(), 1);
    // Spread wider than the window: nothing.
    let mut store = MemoryStore::new();
    let found = run(
        &e,
        &mut store,
        &[vec![
            rec("00:00", "InvokeModel", "AKIA1", "m"),
            rec("01:10", "InvokeModel", "AKIA1", "m"),
            rec("02:20", "InvokeModel", "AKIA1", "m"),
        ]],
    );
    assert!(found.is_empty());
    // Different keys: separate groups, nothing.
    let mut store = MemoryStore::new();
    let found = run(
        &e,
        &mut store,
        &[vec![
            rec("00:00", "InvokeModel", "AKIA1", "m"),
            rec("00:01", "InvokeModel", "AKIA2", "m"),
            rec("00:02", "InvokeModel", "AKIA3", "m"),
        ]],
    );
    assert!(found.is_empty());
}

#[test]
fn redelivery_neither_double_counts_nor_refires() {
    let e = engine(BURST);
    let mut store = MemoryStore::new();
    let two = vec![
        rec("00:00", "InvokeModel", "AKIA1", "m"),
        rec("00:10", "InvokeModel", "AKIA1", "m"),
    ];
    // The same two events three times are still two events.
    let found = run(&e, &mut store, &[two.clone(), two.clone(), two.clone()]);
    assert!(found.is_empty());
    let third = vec![rec("00:20", "InvokeModel", "AKIA1", "m")];
    let found = run(&e, &mut store, std::slice::from_ref(&third));
    assert_eq!(found.len(), 1);
    let again = run(&e, &mut store, &[third, two]);
    assert!(again.is_empty(), "{again:#?}");
    // A later window fires again.
    let later: Vec<String> = ["10:00", "10:05", "10:09"]
        .iter()
        .map(|t| rec(t, "InvokeModel", "AKIA1", "m"))
        .collect();
    assert_eq!(run(&e, &mut store, &[later]).len(), 1);
}

#[test]
fn value_count_counts_distinct_values() {
    let e = engine(
        r#"
title: Any call
id: 00000000-0000-4000-8000-000000000011
name: any_call
logsource: {product: aws, service: cloudtrail}
detection:
  selection:
    eventSource: bedrock.amazonaws.com
  filter:
    sourceIPAddress|endswith: .amazonaws.com
  condition: selection and not filter
level: informational
---
title: Key used from many addresses
id: 00000000-0000-4000-8000-000000000012
correlation:
  type: value_count
  rules: [any_call]
  group-by: [userIdentity.accessKeyId]
  timespan: 1h
  condition:
    field: sourceIPAddress
    gte: 3
level: medium
"#,
    );
    let mut store = MemoryStore::new();
    let same_ip: Vec<String> = (0..5)
        .map(|i| {
            rec(
                &format!("1{i}:00"),
                "ListFoundationModels",
                "AKIA1",
                "198.51.100.1",
            )
        })
        .collect();
    assert!(run(&e, &mut store, &[same_ip]).is_empty());
    let services: Vec<String> = ["a.amazonaws.com", "b.amazonaws.com", "c.amazonaws.com"]
        .iter()
        .map(|ip| rec("20:00", "ListFoundationModels", "AKIA9", ip))
        .collect();
    assert!(run(&e, &mut store, &[services]).is_empty());
    let many: Vec<String> = ["198.51.100.1", "203.0.113.9", "192.0.2.44"]
        .iter()
        .enumerate()
        .map(|(i, ip)| rec(&format!("3{i}:00"), "InvokeModel", "AKIA2", ip))
        .collect();
    let found = run(&e, &mut store, &[many]);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].count, 3);
}

const SEQUENCE: &str = r#"
title: Recon
id: 00000000-0000-4000-8000-000000000021
name: recon
logsource: {product: aws, service: cloudtrail}
detection:
  selection:
    eventName: ListFoundationModels
  condition: selection
level: informational
---
title: Invoke
id: 00000000-0000-4000-8000-000000000022
name: invoke2
logsource: {product: aws, service: cloudtrail}
detection:
  selection:
    eventName: InvokeModel
  condition: selection
level: informational
---
title: Recon then invoke
id: 00000000-0000-4000-8000-000000000023
correlation:
  type: temporal_ordered
  rules: [recon, invoke2]
  group-by: [userIdentity.accessKeyId]
  timespan: 15m
level: high
"#;

#[test]
fn temporal_ordered_needs_the_order_and_the_window() {
    let e = engine(SEQUENCE);
    let mut store = MemoryStore::new();
    let found = run(
        &e,
        &mut store,
        &[vec![
            rec("00:00", "ListFoundationModels", "AKIA1", "m"),
            rec("05:00", "InvokeModel", "AKIA1", "m"),
            rec("06:00", "InvokeModel", "AKIA1", "m"),
        ]],
    );
    assert_eq!(found.len(), 1);
    assert_eq!(
        found[0].count, 2,
        "the sequence ends at its completing event"
    );
    // Wrong order.
    let mut store = MemoryStore::new();
    let wrong = run(
        &e,
        &mut store,
        &[vec![
            rec("00:00", "InvokeModel", "AKIA1", "m"),
            rec("05:00", "ListFoundationModels", "AKIA1", "m"),
        ]],
    );
    assert!(wrong.is_empty());
    // Right order, but delivered in reverse across objects: event time decides.
    let mut store = MemoryStore::new();
    let late = run(
        &e,
        &mut store,
        &[
            vec![rec("05:00", "InvokeModel", "AKIA1", "m")],
            vec![rec("00:00", "ListFoundationModels", "AKIA1", "m")],
        ],
    );
    assert_eq!(late.len(), 1);
    // Too far apart.
    let mut store = MemoryStore::new();
    let slow = run(
        &e,
        &mut store,
        &[vec![
            rec("00:00", "ListFoundationModels", "AKIA1", "m"),
            rec("20:00", "InvokeModel", "AKIA1", "m"),
        ]],
    );
    assert!(slow.is_empty());
}

const FIRST_SEEN: &str = r#"
title: First use of a model by a principal
id: 00000000-0000-4000-8000-000000000031
logsource: {product: aws, service: cloudtrail}
detection:
  selection:
    eventName: InvokeModel
  condition: selection
baseline:
  type: first_seen
  group-by: [userIdentity.arn]
  fields: [requestParameters.modelId]
  history: 90d
  learning: 7d
level: low
"#;

#[test]
fn first_seen_learns_then_reports_new_tuples_once() {
    let e = engine(FIRST_SEEN);
    let mut store = MemoryStore::new();
    let learning = vec![
        rec("2026-10-01T08:00:00Z", "InvokeModel", "alice", "claude"),
        rec("2026-10-02T08:00:00Z", "InvokeModel", "bob", "titan"),
    ];
    // During learning, new tuples are remembered, not reported.
    assert!(run(&e, &mut store, &[learning]).is_empty());
    let later = vec![
        rec("2026-10-20T08:00:00Z", "InvokeModel", "alice", "claude"),
        rec("2026-10-20T09:00:00Z", "InvokeModel", "alice", "llama"),
        rec("2026-10-20T10:00:00Z", "InvokeModel", "alice", "llama"),
    ];
    let found = run(&e, &mut store, std::slice::from_ref(&later));
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(
        found[0].note.as_deref(),
        Some("first seen: requestParameters.modelId=llama")
    );
    assert_eq!(found[0].event_time, "2026-10-20T09:00:00Z");
    // Redelivered: nothing new.
    assert!(run(&e, &mut store, &[later]).is_empty());
    // Forgotten after the history window: new again.
    let much_later = vec![rec("2027-03-01T08:00:00Z", "InvokeModel", "bob", "titan")];
    assert_eq!(run(&e, &mut store, &[much_later]).len(), 1);
}

/// Learning is per deployment: it starts at the first record the store
/// sees with the rule loaded, matched or not, so the first rare call after
/// the learning period is reported even when it is the rule's first match;
/// a first match within learning is not.
#[test]
fn learning_starts_at_the_first_record_seen_not_the_first_match() {
    let e = engine(FIRST_SEEN);
    let mut store = MemoryStore::new();
    // Day 0: other traffic only.
    let quiet = vec![
        rec("2026-10-01T08:00:00Z", "ListBuckets", "alice", "x"),
        rec("2026-10-01T09:00:00Z", "GetObject", "bob", "y"),
    ];
    assert!(run(&e, &mut store, &[quiet]).is_empty());
    // Day 3, within learning: remembered, not reported.
    let early = vec![rec("2026-10-04T08:00:00Z", "InvokeModel", "bob", "titan")];
    assert!(run(&e, &mut store, &[early]).is_empty());
    // Day 19: the first call by alice is past learning: reported.
    let late = vec![rec(
        "2026-10-20T08:00:00Z",
        "InvokeModel",
        "alice",
        "claude",
    )];
    let found = run(&e, &mut store, &[late]);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(
        found[0].note.as_deref(),
        Some("first seen: requestParameters.modelId=claude")
    );

    // A deployment whose first record is the rare call itself learns it.
    let mut fresh = MemoryStore::new();
    let first = vec![rec(
        "2026-10-20T08:00:00Z",
        "InvokeModel",
        "alice",
        "claude",
    )];
    assert!(run(&e, &mut fresh, &[first]).is_empty());

    // Records that matched nothing but came earlier in the same batch
    // start the clock too.
    let mut one = MemoryStore::new();
    let batch = vec![
        rec("2026-10-01T08:00:00Z", "ListBuckets", "alice", "x"),
        rec("2026-10-20T08:00:00Z", "InvokeModel", "alice", "claude"),
    ];
    assert_eq!(run(&e, &mut one, &[batch]).len(), 1);
}

#[test]
fn dormant_reports_a_group_active_again_after_idle_time() {
    let e = engine(
        r#"
title: Dormant AI principal active again
id: 00000000-0000-4000-8000-000000000041
logsource: {product: aws, service: cloudtrail}
detection:
  selection:
    eventSource: bedrock.amazonaws.com
  condition: selection
baseline:
  type: dormant
  group-by: [userIdentity.arn]
  idle: 30d
level: medium
"#,
    );
    let mut store = MemoryStore::new();
    let found = run(
        &e,
        &mut store,
        &[
            vec![rec("2026-08-01T08:00:00Z", "InvokeModel", "alice", "m")],
            vec![rec("2026-08-25T08:00:00Z", "InvokeModel", "alice", "m")],
            vec![rec("2026-09-23T08:00:00Z", "InvokeModel", "alice", "m")],
            vec![rec("2026-11-02T08:00:00Z", "InvokeModel", "alice", "m")],
        ],
    );
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(found[0]
        .note
        .as_deref()
        .unwrap()
        .starts_with("active again after 40 days idle"));
}

#[test]
fn placeholders_are_filled_from_the_policy_and_empty_facts_disable_the_rule() {
    let yaml = r#"
title: Training bucket policy changed
id: 00000000-0000-4000-8000-000000000051
logsource: {product: aws, service: cloudtrail}
detection:
  selection:
    eventName: InvokeModel
    requestParameters.modelId|expand: '%approved_models%'
  condition: selection
level: high
"#;
    let mut policy = Policy::empty();
    policy.set_fact("approved_models", vec!["claude*".into(), "titan".into()]);
    let e = engine_with(yaml, policy);
    let hits = |e: &Engine, model: &str| {
        let text = rec("00:00", "InvokeModel", "k", model);
        e.findings(&Record::parse(&text).unwrap()).len()
    };
    assert_eq!(hits(&e, "claude-3"), 1);
    assert_eq!(hits(&e, "titan"), 1);
    assert_eq!(hits(&e, "llama"), 0);
    assert_eq!(hits(&e, "%approved_models%"), 0);

    let mut b = RuleSetBuilder::with_policy(Policy::empty());
    b.add_yaml("test.yml", yaml);
    let set = b.build();
    assert!(set.rules.is_empty());
    assert!(
        set.notes[0].reason.contains("%approved_models%"),
        "{:?}",
        set.notes
    );
}

#[test]
fn bad_correlations_and_baselines_are_named() {
    let mut b = RuleSetBuilder::new();
    b.add_yaml(
        "c.yml",
        "title: C\nid: 00000000-0000-4000-8000-000000000061\ncorrelation:\n  type: event_count\n  rules: [nowhere]\n  group-by: [x]\n  timespan: 1m\n  condition: {gte: 2}\nlevel: high\n",
    );
    b.add_yaml(
        "b.yml",
        "title: B\nid: 00000000-0000-4000-8000-000000000062\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n  s:\n    eventName: X\n  condition: s\nbaseline:\n  type: sometimes\n  group-by: [a]\n",
    );
    let set = b.build();
    let text: Vec<String> = set.problems.iter().map(|p| p.to_string()).collect();
    assert!(
        text.iter()
            .any(|p| p.starts_with("c.yml") && p.contains("unknown rule(s) nowhere")),
        "{text:?}"
    );
    assert!(
        text.iter()
            .any(|p| p.starts_with("b.yml") && p.contains("first_seen or dormant")),
        "{text:?}"
    );
}

/// A store whose first conditional write of each key fails, as if another
/// writer got there first.
struct Contended {
    inner: MemoryStore,
    contended: std::collections::HashSet<StateKey>,
}

impl StateStore for Contended {
    fn get_many(&mut self, keys: &[StateKey]) -> Result<Vec<Option<StateItem>>, StoreError> {
        self.inner.get_many(keys)
    }
    fn put_many(&mut self, writes: &[StateWrite]) -> Result<Vec<PutOutcome>, StoreError> {
        let mut out = Vec::new();
        for w in writes {
            if self.contended.insert(w.item.key.clone()) {
                // Someone else wrote an unrelated event for this group first.
                let mut other = w.item.clone();
                other.version = w.expected.map_or(1, |v| v + 1);
                if let trailwarden_engine::state::Body::Window(b) = &mut other.body {
                    b.entries
                        .retain(|e| e.id.starts_with("InvokeModelAKIA120261102T080000"));
                    b.fired_until = None;
                }
                self.inner.put_many(&[StateWrite {
                    item: other,
                    expected: w.expected,
                }])?;
                out.push(PutOutcome::Conflict);
            } else {
                out.extend(self.inner.put_many(std::slice::from_ref(w))?);
            }
        }
        Ok(out)
    }
    fn scan_rule(&mut self, rule: &str) -> Result<Vec<StateItem>, StoreError> {
        self.inner.scan_rule(rule)
    }
}

#[test]
fn conflicting_writes_are_retried_and_nothing_is_lost() {
    let e = engine(BURST);
    let mut store = Contended {
        inner: MemoryStore::new(),
        contended: Default::default(),
    };
    let mut session = Session::new(&e);
    for t in ["00:00", "00:10", "00:20"] {
        let text = rec(t, "InvokeModel", "AKIA1", "m");
        session.record(&Record::parse(&text).unwrap(), &mut |_| {});
    }
    let found = session.flush(&mut store).unwrap();
    assert_eq!(found.len(), 1);
    assert!(session.stats.retries > 0);
    assert!(session.is_empty());
}

#[test]
fn an_unreachable_store_fails_the_flush_and_keeps_the_batch() {
    let e = engine(BURST);
    let mut store = MemoryStore::new();
    store.fail = true;
    let mut session = Session::new(&e);
    for t in ["00:00", "00:10", "00:20"] {
        let text = rec(t, "InvokeModel", "AKIA1", "m");
        session.record(&Record::parse(&text).unwrap(), &mut |_| {});
    }
    assert!(session.flush(&mut store).is_err());
    assert!(!session.is_empty(), "nothing is forgotten");
    store.fail = false;
    assert_eq!(session.flush(&mut store).unwrap().len(), 1);
}

#[test]
fn temporal_needs_every_rule_in_any_order() {
    let yaml = SEQUENCE.replace("type: temporal_ordered", "type: temporal");
    let e = engine(&yaml);
    let mut store = MemoryStore::new();
    let only_one = run(
        &e,
        &mut store,
        &[vec![
            rec("00:00", "InvokeModel", "AKIA1", "m"),
            rec("01:00", "InvokeModel", "AKIA1", "m"),
        ]],
    );
    assert!(only_one.is_empty(), "{only_one:#?}");
    let both = run(
        &e,
        &mut store,
        &[vec![rec("02:00", "ListFoundationModels", "AKIA1", "m")]],
    );
    assert_eq!(both.len(), 1);
    assert_eq!(both[0].count, 3, "the window ends at the completing event");
}

/// A memory store that fails its `n`-th call (state reads, state writes and
/// finding stores alike), as a store that becomes unreachable mid-flush.
struct FailsAt {
    inner: MemoryStore,
    calls: usize,
    fail_at: Option<usize>,
    kept: Vec<Finding>,
}

impl FailsAt {
    fn step(&mut self) -> Result<(), StoreError> {
        self.calls += 1;
        if Some(self.calls) == self.fail_at {
            return Err(StoreError("unreachable".into()));
        }
        Ok(())
    }
}

impl StateStore for FailsAt {
    fn get_many(&mut self, keys: &[StateKey]) -> Result<Vec<Option<StateItem>>, StoreError> {
        self.step()?;
        self.inner.get_many(keys)
    }
    fn put_many(&mut self, writes: &[StateWrite]) -> Result<Vec<PutOutcome>, StoreError> {
        self.step()?;
        self.inner.put_many(writes)
    }
    fn scan_rule(&mut self, rule: &str) -> Result<Vec<StateItem>, StoreError> {
        self.inner.scan_rule(rule)
    }
}

/// Two objects through one store with a failure at call `fail_at`; a failed
/// object is read again (a new session) until it goes through, as a queue
/// redelivers its message. Every finding kept, in order.
fn with_failure(engine: &Engine, objects: &[Vec<String>], fail_at: Option<usize>) -> FailsAt {
    let mut store = FailsAt {
        inner: MemoryStore::new(),
        calls: 0,
        fail_at,
        kept: Vec::new(),
    };
    for object in objects {
        for _attempt in 0..2 {
            let mut session = Session::new(engine);
            for text in object {
                session.record(&Record::parse(text).unwrap(), &mut |_| {});
            }
            let flushed = session.flush_with(&mut store, &mut |store, found| {
                store.step()?;
                store.kept.extend(found);
                Ok(())
            });
            if flushed.is_ok() {
                break;
            }
        }
    }
    store
}

#[test]
fn a_store_failing_at_any_step_of_a_flush_loses_no_finding() {
    let e = engine(&format!(
        "{BURST}\n---\n{}",
        FIRST_SEEN.replace("learning: 7d", "learning: 0d")
    ));
    let objects = vec![
        vec![
            rec("00:00", "InvokeModel", "AKIA1", "m"),
            rec("00:10", "InvokeModel", "AKIA1", "m"),
        ],
        vec![
            rec("00:20", "InvokeModel", "AKIA1", "m"),
            rec("00:30", "InvokeModel", "AKIA2", "n"),
        ],
    ];
    let reference = with_failure(&e, &objects, None);
    let ids = |store: &FailsAt| {
        let mut ids: Vec<String> = store.kept.iter().map(|f| f.id.clone()).collect();
        ids.sort();
        ids.dedup();
        ids
    };
    let expected = ids(&reference);
    let titles: std::collections::BTreeSet<&str> = reference
        .kept
        .iter()
        .map(|f| f.rule_title.as_str())
        .collect();
    assert_eq!(titles.len(), 2, "a burst and first uses: {titles:?}");
    assert!(reference.calls >= 6, "{}", reference.calls);
    for fail_at in 1..=reference.calls {
        let store = with_failure(&e, &objects, Some(fail_at));
        assert_eq!(ids(&store), expected, "store failing at call {fail_at}");
    }
}

/// A baseline reads a batch's sightings by time, whatever order they came
/// in, and one batch gives the findings that the same records, in time
/// order, give one object at a time: every gap that could report is seen,
/// inside a batch as across batches. Random traffic (a fixed seed) over a
/// first-seen and a dormant rule whose windows are shorter than the
/// traffic's longest pauses, with repeated times.
#[test]
fn baselines_see_every_reportable_gap_within_a_batch() {
    let e = engine(
        r#"
title: First use of a model (short history)
id: 00000000-0000-4000-8000-000000000051
logsource: {product: aws, service: cloudtrail}
detection:
  selection:
    eventName: InvokeModel
  condition: selection
baseline:
  type: first_seen
  group-by: [userIdentity.arn]
  fields: [requestParameters.modelId]
  history: 2h
  learning: 1h
level: low
---
title: Principal active again (short idle)
id: 00000000-0000-4000-8000-000000000052
logsource: {product: aws, service: cloudtrail}
detection:
  selection:
    eventName: InvokeModel
  condition: selection
baseline:
  type: dormant
  group-by: [userIdentity.arn]
  idle: 90m
level: low
"#,
    );
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let start = chrono::DateTime::parse_from_rfc3339("2026-11-02T00:00:00Z").unwrap();
    let mut t = 0i64;
    let mut records: Vec<(i64, String)> = Vec::new();
    for i in 0..600 {
        // Mostly seconds apart, sometimes minutes, now and then hours; a
        // tenth at the same second as the one before.
        t += match next(20) {
            0 | 1 => 0,
            2 => 3_600 + next(3 * 3_600) as i64,
            3..=5 => 60 + next(1_800) as i64,
            _ => next(30) as i64,
        };
        let time = (start + chrono::Duration::seconds(t))
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string();
        let who = ["alice", "bob", "carol"][next(3) as usize];
        let model = format!("m{}", next(4));
        let text = rec(&time, "InvokeModel", who, &model).replace(
            r#""eventID":""#,
            &format!(r#""eventID":"{:04}-"#, next(10_000) + i),
        );
        records.push((t, text));
    }
    let key = |f: &Finding| (f.id.clone(), f.event_time.clone(), f.note.clone());
    let sorted = |mut found: Vec<Finding>| {
        let mut keys: Vec<_> = found.drain(..).map(|f| key(&f)).collect();
        keys.sort();
        keys
    };
    let texts = |rs: &[(i64, String)]| rs.iter().map(|(_, r)| r.clone()).collect::<Vec<_>>();
    // In time order (by time, then event id), one batch.
    let mut in_order = records.clone();
    in_order.sort_by_key(|(t, r)| (*t, Record::parse(r).unwrap().event_id().map(str::to_owned)));
    let one_batch = sorted(run(&e, &mut MemoryStore::new(), &[texts(&in_order)]));
    let dormant = one_batch
        .iter()
        .filter(|k| k.2.as_deref().unwrap_or("").starts_with("active again"))
        .count();
    assert!(
        dormant >= 3 && one_batch.len() - dormant >= 10,
        "{one_batch:#?}"
    );
    // One record an object.
    let objects: Vec<Vec<String>> = in_order.iter().map(|(_, r)| vec![r.clone()]).collect();
    assert_eq!(
        sorted(run(&e, &mut MemoryStore::new(), &objects)),
        one_batch
    );
    // Any arrival order within the batch.
    for _ in 0..3 {
        let mut shuffled = records.clone();
        for i in (1..shuffled.len()).rev() {
            shuffled.swap(i, next(i as u64 + 1) as usize);
        }
        assert_eq!(
            sorted(run(&e, &mut MemoryStore::new(), &[texts(&shuffled)])),
            one_batch
        );
    }
}
