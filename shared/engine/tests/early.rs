//! Events seen both ways: the real-time path (EventBridge, a session set
//! `early`) merges an event minutes before its log file delivers it again,
//! and every correlation counts it once, also past the point where a busy
//! window folds events into runs that keep no ids.

use trailwarden_cloudtrail::Record;
use trailwarden_engine::state::Body;
use trailwarden_engine::{
    Engine, Finding, MemoryStore, RuleSetBuilder, Session, StateStore, MAX_EARLY_ENTRIES,
};

fn engine(yaml: &str) -> Engine {
    let mut b = RuleSetBuilder::new();
    b.add_yaml("test.yml", yaml);
    let set = b.build();
    assert!(set.problems.is_empty(), "{:?}", set.problems);
    Engine::from_set(set)
}

/// `InvokeModel` by access key `key`, `second` seconds after 08:00 on
/// 2026-11-02, with event id `e<second>`.
fn call(second: u32, key: &str) -> String {
    let time = format!(
        "2026-11-02T{:02}:{:02}:{:02}Z",
        8 + second / 3600,
        second / 60 % 60,
        second % 60
    );
    format!(
        r#"{{"eventVersion":"1.09","eventTime":"{time}","eventSource":"bedrock.amazonaws.com","eventName":"InvokeModel","awsRegion":"us-east-1","sourceIPAddress":"198.51.100.7","userAgent":"ua","eventID":"e{second}-{key}","recipientAccountId":"111122223333","userIdentity":{{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/{key}","accessKeyId":"{key}","accountId":"111122223333"}},"requestParameters":{{"modelId":"m"}}}}"#
    )
}

fn calls(seconds: std::ops::Range<u32>) -> Vec<String> {
    seconds.map(|s| call(s, "AKIA1")).collect()
}

/// One batch through `store`: a log file (`early` false) or a real-time
/// batch (`early` true). Its findings.
fn merge(
    engine: &Engine,
    store: &mut MemoryStore,
    records: &[String],
    early: bool,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut session = Session::new(engine);
    session.set_early(early);
    for text in records {
        session.record(&Record::parse(text).unwrap(), &mut |f| out.push(f));
    }
    out.extend(session.flush(store).unwrap());
    out
}

/// The events a correlation's window counts now (entries, runs counted by
/// their events, and early events), and how many of them are early.
fn counted(store: &mut MemoryStore, rule: &str) -> (u64, usize) {
    let items = store.scan_rule(rule).unwrap();
    assert_eq!(items.len(), 1, "one group");
    match &items[0].body {
        Body::Window(w) => (
            w.entries
                .iter()
                .chain(&w.early)
                .map(|e| u64::from(e.n))
                .sum(),
            w.early.len(),
        ),
        other => panic!("not a window: {other:?}"),
    }
}

/// The base rule of every correlation here: every `InvokeModel`.
const INVOCATION: &str = r#"
title: Invocation
id: 00000000-0000-4000-8000-0000000000e1
name: invoke
logsource: {product: aws, service: cloudtrail}
detection:
  selection:
    eventName: InvokeModel
  condition: selection
level: informational
"#;

fn burst(threshold: u32) -> String {
    format!(
        r#"
{INVOCATION}---
title: Burst of invocations
id: 00000000-0000-4000-8000-0000000000e2
correlation:
  type: event_count
  rules: [invoke]
  group-by: [userIdentity.accessKeyId]
  timespan: 1h
  condition:
    gte: {threshold}
level: high
"#
    )
}

const BURST_ID: &str = "00000000-0000-4000-8000-0000000000e2";

#[test]
fn an_event_seen_both_ways_counts_once() {
    let e = engine(&burst(3));
    let mut store = MemoryStore::new();
    // EventBridge brings two calls; their log file brings them again.
    assert!(merge(&e, &mut store, &calls(0..2), true).is_empty());
    assert_eq!(counted(&mut store, BURST_ID), (2, 2));
    assert!(merge(&e, &mut store, &calls(0..2), false).is_empty());
    assert_eq!(
        counted(&mut store, BURST_ID),
        (2, 0),
        "the log file's copies replace the early ones"
    );
    // A real-time batch delivered twice counts once too.
    assert!(merge(&e, &mut store, &calls(10..11), true).len() == 1);
    assert!(merge(&e, &mut store, &calls(10..11), true).is_empty());
    let f = merge(&e, &mut store, &calls(0..11), false);
    assert!(f.is_empty(), "the window fired once: {f:#?}");
}

#[test]
fn the_real_time_path_fires_first_with_the_id_the_log_file_would_give() {
    let e = engine(&burst(3));
    // EventBridge brings the first three of six calls in a minute: the
    // window fires at once.
    let mut both = MemoryStore::new();
    let early = merge(&e, &mut both, &calls(0..3), true);
    assert_eq!(early.len(), 1);
    assert_eq!(early[0].count, 3);
    // The log file, with all six, makes no second finding.
    assert!(merge(&e, &mut both, &calls(0..6), false).is_empty());
    // The log file alone fires the same window (all six events): the same
    // finding, by its id.
    let mut file_only = MemoryStore::new();
    let late = merge(&e, &mut file_only, &calls(0..6), false);
    assert_eq!(late.len(), 1);
    assert_eq!(late[0].count, 6);
    assert_eq!(late[0].id, early[0].id);
    // The next window of the group is another finding.
    let next = merge(&e, &mut file_only, &calls(4000..4003), false);
    assert_eq!(next.len(), 1);
    assert_ne!(next[0].id, late[0].id);
}

#[test]
fn a_busy_window_with_runs_counts_each_event_once() {
    // 300 calls in one log file fold into a run (past 200 entries), which
    // keeps no ids; the threshold is 400.
    let e = engine(&burst(400));
    let mut store = MemoryStore::new();
    assert!(merge(&e, &mut store, &calls(0..300), false).is_empty());
    assert_eq!(counted(&mut store, BURST_ID), (300, 0));
    // EventBridge then brings 50 new calls and ten the log file held (late
    // real-time deliveries, inside the run: the window may count them
    // already, so they wait for their log file, which brought them).
    let mut late = calls(300..350);
    late.extend(calls(100..110));
    assert!(merge(&e, &mut store, &late, true).is_empty());
    assert_eq!(counted(&mut store, BURST_ID), (350, 50));
    // Their log file: the 50 again, and nothing more is counted.
    assert!(merge(&e, &mut store, &calls(300..350), false).is_empty());
    assert_eq!(counted(&mut store, BURST_ID), (350, 0));
    // 49 more by log file, one by EventBridge: the 400th event fires.
    assert!(merge(&e, &mut store, &calls(350..399), false).is_empty());
    let fired = merge(&e, &mut store, &calls(399..400), true);
    assert_eq!(fired.len(), 1, "{fired:#?}");
    assert_eq!(fired[0].count, 400);
    // Its log file brings the last call again: nothing.
    assert!(merge(&e, &mut store, &calls(399..400), false).is_empty());
}

#[test]
fn past_the_early_cap_events_wait_for_their_log_file() {
    let e = engine(&burst(1000));
    let mut store = MemoryStore::new();
    let n = MAX_EARLY_ENTRIES as u32 + 50;
    assert!(merge(&e, &mut store, &calls(0..n), true).is_empty());
    assert_eq!(
        counted(&mut store, BURST_ID),
        (MAX_EARLY_ENTRIES as u64, MAX_EARLY_ENTRIES)
    );
    assert!(merge(&e, &mut store, &calls(0..n), false).is_empty());
    assert_eq!(counted(&mut store, BURST_ID), (u64::from(n), 0));
}

#[test]
fn early_events_the_log_files_never_bring_still_count_and_age_out() {
    let e = engine(&burst(3));
    let mut store = MemoryStore::new();
    // Two calls only EventBridge saw (a trail that does not log them).
    assert!(merge(&e, &mut store, &calls(0..2), true).is_empty());
    // A third, two hours later by log file: the early two are outside the
    // window and past the lateness allowance, so they are let go.
    let later = 2 * 3600 + 3 * 3600;
    assert!(merge(&e, &mut store, &calls(later..later + 1), false).is_empty());
    assert_eq!(counted(&mut store, BURST_ID), (1, 0));
    // Within the window, they count with the log file's events.
    let mut store = MemoryStore::new();
    assert!(merge(&e, &mut store, &calls(0..2), true).is_empty());
    assert_eq!(merge(&e, &mut store, &calls(5..6), false).len(), 1);
}

#[test]
fn presence_windows_and_sums_count_once_too() {
    let e = engine(&format!(
        r#"{INVOCATION}---
title: Calls from several addresses
id: 00000000-0000-4000-8000-0000000000f2
correlation:
  type: value_count
  rules: [invoke]
  group-by: [userIdentity.accessKeyId]
  timespan: 1h
  condition:
    field: sourceIPAddress
    gte: 2
level: high
---
title: Sum of something
id: 00000000-0000-4000-8000-0000000000f3
correlation:
  type: value_sum
  rules: [invoke]
  group-by: [userIdentity.accessKeyId]
  timespan: 1h
  condition:
    field: additionalEventData.tokens
    gte: 30
level: high
"#
    ));
    let with_tokens = |s: u32, ip: &str| {
        call(s, "AKIA1").replace("198.51.100.7", ip).replace(
            r#""requestParameters""#,
            r#""additionalEventData":{"tokens":10},"requestParameters""#,
        )
    };
    let mut store = MemoryStore::new();
    // One address seen both ways is one value; two 10-token calls seen
    // both ways sum to 20, not 40.
    let two = vec![
        with_tokens(0, "198.51.100.7"),
        with_tokens(1, "198.51.100.7"),
    ];
    assert!(merge(&e, &mut store, &two, true).is_empty());
    assert!(merge(&e, &mut store, &two, false).is_empty());
    let third = vec![with_tokens(2, "203.0.113.9")];
    let fired = merge(&e, &mut store, &third, true);
    let titles: Vec<&str> = fired.iter().map(|f| f.rule_title.as_str()).collect();
    assert_eq!(titles.len(), 2, "{titles:?}");
    assert!(titles.contains(&"Calls from several addresses"));
    assert!(titles.contains(&"Sum of something"));
    assert!(merge(&e, &mut store, &third, false).is_empty());
}

#[test]
fn a_chained_correlation_counts_each_firing_once() {
    // Bursts of three calls per key; two bursts within a day is an
    // escalation. Firings are events of the outer correlation whichever
    // path made them, and no log file brings them again.
    let e = engine(&bursts_and_repeats(true));
    let mut store = MemoryStore::new();
    let first = merge(&e, &mut store, &calls(0..3), true);
    assert_eq!(first.len(), 1, "{first:#?}");
    let items = store
        .scan_rule("00000000-0000-4000-8000-0000000000b3")
        .unwrap();
    match &items[0].body {
        Body::Window(w) => {
            assert_eq!(
                (w.entries.len(), w.early.len()),
                (1, 0),
                "a firing is not early: {w:?}"
            )
        }
        other => panic!("{other:?}"),
    }
    assert!(merge(&e, &mut store, &calls(0..3), false).is_empty());
    let second = merge(&e, &mut store, &calls(600..603), true);
    let titles: Vec<&str> = second.iter().map(|f| f.rule_title.as_str()).collect();
    assert_eq!(titles, ["Burst", "Repeated bursts"]);
    assert!(merge(&e, &mut store, &calls(600..603), false).is_empty());
}

/// Bursts of three calls per key, and two bursts within a day.
fn bursts_and_repeats(with_outer: bool) -> String {
    let mut yaml = format!(
        r#"{INVOCATION}---
title: Burst
id: 00000000-0000-4000-8000-0000000000b2
name: burst
correlation:
  type: event_count
  rules: [invoke]
  group-by: [userIdentity.accessKeyId]
  timespan: 1m
  condition:
    gte: 3
level: medium
"#
    );
    if with_outer {
        yaml.push_str(
            r#"---
title: Repeated bursts
id: 00000000-0000-4000-8000-0000000000b3
correlation:
  type: event_count
  generate: true
  rules: [burst]
  group-by: [userIdentity.accessKeyId]
  timespan: 1d
  condition:
    gte: 2
level: high
"#,
        );
    }
    yaml
}

#[test]
fn firings_are_handed_on_again_when_their_events_come_again() {
    // The windows fire where no correlation over them ran (its round
    // failed after they were written, or it was added since): when their
    // events come again, from the log file, the outer correlation gets the
    // firings and fires once.
    let inner = engine(&bursts_and_repeats(false));
    let both = engine(&bursts_and_repeats(true));
    let mut store = MemoryStore::new();
    assert_eq!(merge(&inner, &mut store, &calls(0..3), true).len(), 1);
    assert_eq!(merge(&inner, &mut store, &calls(600..603), true).len(), 1);
    let mut file = calls(0..3);
    file.extend(calls(600..603));
    let found = merge(&both, &mut store, &file, false);
    let titles: Vec<&str> = found.iter().map(|f| f.rule_title.as_str()).collect();
    assert_eq!(titles, ["Repeated bursts"]);
    // And once only.
    assert!(merge(&both, &mut store, &file, false).is_empty());
}
