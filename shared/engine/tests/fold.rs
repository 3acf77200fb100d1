//! Repeats of a single-event finding within one log object fold into one
//! finding (`Session::fold_repeats`): records alike in everything a finding
//! shows but their time and id; any difference there is a finding of its
//! own; a rule matching once makes the finding and id it always did.

use serde_json::{json, Value};
use trailwarden_cloudtrail::Record;
use trailwarden_engine::{finding_id, Engine, Finding, MemoryStore, RuleSetBuilder, Session};
use trailwarden_engine::{FOLD_RECORDS, MAX_EVENT_IDS, MAX_FOLDED, MAX_FOLDED_BYTES};

const RULE: &str = r#"
title: Model listed
id: 00000000-0000-4000-8000-00000000f01d
logsource: {product: aws, service: cloudtrail}
detection:
  selection:
    eventSource|startswith: bedrock
  condition: selection
level: low
"#;

fn engine() -> Engine {
    let mut b = RuleSetBuilder::new();
    b.add_yaml("fold.yml", RULE);
    let set = b.build();
    assert!(set.problems.is_empty(), "{:?}", set.problems);
    Engine::from_set(set)
}

/// A Bedrock call as CloudTrail logs one; `i` makes its time and id.
fn event(i: u32) -> Value {
    json!({
        "eventVersion": "1.08",
        "eventTime": format!("2026-11-02T08:{:02}:{:02}Z", i / 60 % 60, i % 60),
        "eventSource": "bedrock.amazonaws.com",
        "eventName": "ListFoundationModels",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "198.51.100.7",
        "userAgent": "Boto3/1.35.0 md/Botocore#1.35.0",
        "eventID": format!("ev-{i}"),
        "recipientAccountId": "111122223333",
        "userIdentity": {
            "type": "AssumedRole",
            "principalId": "AROAEXAMPLE:worker",
            "arn": "arn:aws:sts::111122223333:assumed-role/app/worker",
            "accountId": "111122223333",
            "accessKeyId": "ASIAEXAMPLE",
            "sessionContext": {"attributes": {"creationDate": "2026-11-02T07:00:00Z"}}
        }
    })
}

/// The events as one log object, read with folding on or off.
fn read(events: &[Value], fold: bool) -> Vec<Finding> {
    let positions: Vec<u64> = (0..events.len() as u64).collect();
    read_at(events, &positions, fold)
}

/// The events at those positions of one log object (the records between
/// matched nothing).
fn read_at(events: &[Value], positions: &[u64], fold: bool) -> Vec<Finding> {
    let engine = engine();
    let mut session = Session::new(&engine);
    session.fold_repeats(fold);
    let mut out = Vec::new();
    for (e, at) in events.iter().zip(positions) {
        let text = e.to_string();
        session.next_record(*at, &mut |f| out.push(f));
        session.record(&Record::parse(&text).unwrap(), &mut |f| out.push(f));
    }
    out.extend(session.flush(&mut MemoryStore::new()).unwrap());
    out
}

const RULE_ID: &str = "00000000-0000-4000-8000-00000000f01d";

#[test]
fn records_alike_but_for_time_and_id_make_one_finding_with_the_first_ones_id() {
    // Out of time order within the object, as CloudTrail files may be.
    let events = [event(5), event(2), event(9)];
    let found = read(&events, true);
    assert_eq!(found.len(), 1, "{found:#?}");
    let f = &found[0];
    assert_eq!(f.id, finding_id(RULE_ID, &["ev-5".to_owned()]));
    assert_eq!(f.count, 3);
    assert_eq!(f.event_ids, ["ev-5", "ev-2", "ev-9"]);
    assert_eq!(f.event_time, "2026-11-02T08:00:05Z");
    assert_eq!(f.last_event_time.as_deref(), Some("2026-11-02T08:00:09Z"));
    assert_eq!(f.latest_event_time(), "2026-11-02T08:00:09Z");
    assert_eq!(
        f.note.as_deref(),
        Some(
            "3 matching events in one log file with the same caller, account, Region, source \
             address, user agent, call and error code, 2026-11-02T08:00:02Z to \
             2026-11-02T08:00:09Z (event_ids lists the first 3)"
        )
    );
    // Everything else is the first record's single-event finding.
    let single = &read(&events[..1], true)[0];
    assert_eq!(single.count, 1);
    assert_eq!(single.note, None);
    let unfolded = read(&events, false);
    assert_eq!(unfolded.len(), 3);
    assert_eq!(single, &unfolded[0]);
    let mut expected = unfolded[0].clone();
    expected.count = 3;
    expected.event_ids = f.event_ids.clone();
    expected.note = f.note.clone();
    expected.last_event_time = f.last_event_time.clone();
    assert_eq!(f, &expected);
    assert_eq!(single.last_event_time, None);
    assert_eq!(single.latest_event_time(), single.event_time);
}

#[test]
fn any_difference_a_finding_shows_is_a_finding_of_its_own() {
    let changes: [(&str, &[&str], Value); 14] = [
        ("eventSource", &[], json!("bedrock-mantle.amazonaws.com")),
        ("userIdentity", &["principalId"], json!("AROAEXAMPLE:other")),
        (
            "userIdentity",
            &["invokedBy"],
            json!("sagemaker.amazonaws.com"),
        ),
        ("userAgent", &[], json!("aws-cli/2.15.0")),
        ("userAgent", &[], Value::Null),
        ("sourceIPAddress", &[], json!("198.51.100.8")),
        ("errorCode", &[], json!("AccessDenied")),
        ("eventName", &[], json!("GetFoundationModel")),
        ("awsRegion", &[], json!("eu-west-1")),
        ("recipientAccountId", &[], json!("444455556666")),
        ("userIdentity", &["accessKeyId"], json!("ASIAOTHER")),
        (
            "userIdentity",
            &["arn"],
            json!("arn:aws:sts::111122223333:assumed-role/app/other"),
        ),
        ("userIdentity", &["type"], json!("IAMUser")),
        ("userIdentity", &["accountId"], json!("444455556666")),
    ];
    for (field, path, value) in changes {
        let mut other = event(1);
        let mut slot = &mut other[field];
        for p in path {
            slot = &mut slot[*p];
        }
        *slot = value.clone();
        let found = read(&[event(0), other, event(2)], true);
        assert_eq!(
            found.iter().map(|f| f.count).collect::<Vec<_>>(),
            [2, 1],
            "{field} {path:?} = {value}"
        );
        assert_eq!(found[1].id, finding_id(RULE_ID, &["ev-1".to_owned()]));
        assert_eq!(found[1].note, None);
    }
    // What a finding does not show folds: the request, the response and
    // the rest of the session's attributes.
    let mut other = event(1);
    other["requestParameters"] = json!({"byProvider": "Anthropic"});
    other["userIdentity"]["sessionContext"]["attributes"]["mfaAuthenticated"] = json!("true");
    let found = read(&[event(0), other], true);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].count, 2);
}

#[test]
fn the_same_object_read_again_gives_the_same_findings() {
    let events: Vec<Value> = (0..300)
        .map(|i| {
            let mut e = event(i);
            e["sourceIPAddress"] = json!(format!("198.51.100.{}", i % 7));
            e
        })
        .collect();
    let first = read(&events, true);
    assert_eq!(first.len(), 7);
    assert_eq!(first.iter().map(|f| f.count).sum::<u64>(), 300);
    assert!(first
        .iter()
        .all(|f| f.event_ids.len() == MAX_EVENT_IDS && f.count > MAX_EVENT_IDS as u64));
    assert_eq!(read(&events, true), first);
}

#[test]
fn past_the_most_held_every_finding_is_handed_out_and_folding_starts_over() {
    // MAX_FOLDED + 1 callers (one address each), then the first again:
    // the last new caller hands out those held, so the first caller's
    // repeat is a finding of its own.
    let n = MAX_FOLDED as u32 + 1;
    let mut events: Vec<Value> = (0..=n)
        .map(|i| {
            let mut e = event(i);
            e["sourceIPAddress"] = json!(format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255));
            e
        })
        .collect();
    events[n as usize]["sourceIPAddress"] = json!("10.0.0.0");
    let found = read(&events, true);
    assert_eq!(found.len(), MAX_FOLDED + 2);
    assert!(found.iter().all(|f| f.count == 1));
    // Handed out in the order of their first records.
    let firsts: Vec<&str> = found.iter().map(|f| f.event_ids[0].as_str()).collect();
    let expected: Vec<String> = (0..=n).map(|i| format!("ev-{i}")).collect();
    assert_eq!(firsts, expected);
    // Below the most held, the same repeat folds.
    let mut few = events[..3].to_vec();
    few.push(events[n as usize].clone());
    let found = read(&few, true);
    assert_eq!(found.iter().map(|f| f.count).collect::<Vec<_>>(), [2, 1, 1]);
}

#[test]
fn a_fold_spans_one_stretch_of_the_object_at_most() {
    // Alike records at positions on both sides of the first stretch's end,
    // as a reader that hands over only matching records reports them.
    let n = FOLD_RECORDS;
    let events: Vec<Value> = (0..5).map(event).collect();
    let found = read_at(&events, &[0, 7, n - 1, n, 2 * n + 3], true);
    assert_eq!(found.iter().map(|f| f.count).collect::<Vec<_>>(), [3, 1, 1]);
    assert_eq!(found[1].event_ids, ["ev-3"]);
    assert_eq!(found[2].event_ids, ["ev-4"]);
    // Within one stretch, however far apart.
    let found = read_at(&events[..2], &[n, 2 * n - 1], true);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].count, 2);
}

#[test]
fn a_record_twice_in_one_object_counts_once() {
    let events = [event(0), event(1), event(1), event(0), event(2)];
    let found = read(&events, true);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].count, 3);
    assert_eq!(found[0].event_ids, ["ev-0", "ev-1", "ev-2"]);
}

#[test]
fn long_fields_fold_as_the_finding_shows_them_and_memory_stays_bounded() {
    // User agents alike in their first 2,048 bytes (all a finding shows of
    // one) fold.
    let long = "A".repeat(2048);
    let mut a = event(0);
    a["userAgent"] = json!(format!("{long}-one"));
    let mut b = event(1);
    b["userAgent"] = json!(format!("{long}-two"));
    let found = read(&[a, b], true);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].count, 2);
    // Records that each bring 2 KB or more of distinct text: the findings
    // held are handed out long before MAX_FOLDED of them are held, so the
    // first caller's repeat after them is a finding of its own.
    // Fewer than MAX_FOLDED records, each holding over 4 KB (its user
    // agent in the key and in the finding): over MAX_FOLDED_BYTES.
    let n = MAX_FOLDED as u32 - 1;
    assert!(n as usize * 2 * 2045 > MAX_FOLDED_BYTES / 2);
    let mut events: Vec<Value> = (0..n)
        .map(|i| {
            let mut e = event(i);
            e["userAgent"] = json!(format!("{i:05}{}", "B".repeat(2040)));
            e
        })
        .collect();
    let mut again = events[0].clone();
    again["eventID"] = json!("ev-again");
    events.push(again);
    let found = read(&events, true);
    assert_eq!(found.len(), n as usize + 1);
    assert!(found.iter().all(|f| f.count == 1));
    assert_eq!(found[n as usize].event_ids, ["ev-again"]);
}
