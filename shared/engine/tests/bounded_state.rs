//! State that stays small whatever the traffic: a busy benign key, hostile
//! values, and redelivery, with the item sizes measured as the store keeps
//! them (`Body::encoded_len`) against `ITEM_BUDGET_BYTES`.

use trailwarden_cloudtrail::Record;
use trailwarden_engine::state::{Body, PutOutcome, StateItem, ITEM_BUDGET_BYTES};
use trailwarden_engine::{Engine, Finding, MemoryStore, RuleSetBuilder, Session, StateStore};

fn engine(yaml: &str) -> Engine {
    let mut b = RuleSetBuilder::new();
    b.add_yaml("test.yml", yaml);
    let set = b.build();
    assert!(set.problems.is_empty(), "{:?}", set.problems);
    Engine::from_set(set)
}

/// Two credential-sharing correlations over every call with an access key,
/// as the built-in pack has them (source IPs and user agents per key), and
/// a per-model event count.
const RULES: &str = r#"
title: Call with an access key
id: 10000000-0000-4000-8000-000000000001
name: keyed_call
logsource: {product: aws, service: cloudtrail}
detection:
  selection:
    userIdentity.accessKeyId|startswith: 'A'
  condition: selection
level: informational
---
title: Access key used from several source IPs
id: 10000000-0000-4000-8000-000000000002
correlation:
  type: value_count
  rules: [keyed_call]
  group-by: [userIdentity.accessKeyId]
  timespan: 1h
  condition:
    field: sourceIPAddress
    gte: 3
level: high
---
title: Access key used with several user agents
id: 10000000-0000-4000-8000-000000000003
correlation:
  type: value_count
  rules: [keyed_call]
  group-by: [userIdentity.accessKeyId]
  timespan: 1h
  condition:
    field: userAgent
    gte: 4
level: medium
---
title: Invocation
id: 10000000-0000-4000-8000-000000000004
name: invoke
logsource: {product: aws, service: cloudtrail}
detection:
  selection:
    eventName: InvokeModel
  condition: selection
level: informational
---
title: Many invocations of one model by one principal
id: 10000000-0000-4000-8000-000000000005
correlation:
  type: event_count
  rules: [invoke]
  group-by: [userIdentity.arn, requestParameters.modelId]
  timespan: 1h
  condition:
    gte: 5000
level: medium
"#;

const START_MS: i64 = 1_793_606_400_000; // 2026-11-02T00:00:00Z

fn time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// One call by key `AKIABUSY`, from `ip`, with user agent `ua`.
fn call(ms: i64, name: &str, ip: &str, ua: &str, model: &str, n: u64) -> String {
    format!(
        r#"{{"eventVersion":"1.08","eventTime":"{}","eventSource":"kms.amazonaws.com","eventName":"{name}","awsRegion":"us-east-1","sourceIPAddress":"{ip}","userAgent":"{ua}","eventID":"ev-{n:012}","recipientAccountId":"111122223333","userIdentity":{{"type":"AssumedRole","arn":"arn:aws:sts::111122223333:assumed-role/app/busy","accessKeyId":"AKIABUSY","accountId":"111122223333"}},"requestParameters":{{"modelId":"{model}"}}}}"#,
        time(ms)
    )
}

/// Merge one batch (a log object) named `source`; its findings.
fn batch(
    engine: &Engine,
    store: &mut MemoryStore,
    source: &str,
    records: &[String],
) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut session = Session::new(engine);
    session.set_source(source);
    for text in records {
        let record = Record::parse(text).unwrap();
        session.record(&record, &mut |f| out.push(f));
    }
    out.extend(session.flush(store).unwrap());
    out
}

fn items(engine: &Engine, store: &mut MemoryStore) -> Vec<StateItem> {
    engine
        .correlations()
        .iter()
        .flat_map(|c| store.scan_rule(&c.meta.id).unwrap())
        .collect()
}

fn largest(engine: &Engine, store: &mut MemoryStore) -> usize {
    items(engine, store)
        .iter()
        .map(|i| i.body.encoded_len())
        .max()
        .unwrap_or(0)
}

/// A benign session key calling KMS `Decrypt` twice a second from one
/// address with one long SDK user agent, six hours of it in 5-minute
/// objects: no finding, every item within budget, state that stops growing.
#[test]
fn a_busy_benign_key_keeps_state_within_budget() {
    let e = engine(RULES);
    let mut store = MemoryStore::new();
    let ua = format!(
        "aws-sdk-java/2.25.11 Linux/6.1 OpenJDK_64-Bit_Server_VM/21 Java/21 vendor/Amazon.com_Inc. exec-env/AWS_ECS_FARGATE {}",
        "md/internal ".repeat(40)
    );
    let mut n = 0u64;
    let mut sizes = Vec::new();
    for object in 0..72i64 {
        let records: Vec<String> = (0..600)
            .map(|i| {
                n += 1;
                let ms = START_MS + object * 300_000 + i * 500;
                call(ms, "Decrypt", "10.0.0.1", &ua, "none", n)
            })
            .collect();
        let found = batch(&e, &mut store, &format!("obj-{object}"), &records);
        assert!(found.is_empty(), "benign traffic fired: {found:#?}");
        sizes.push(largest(&e, &mut store));
    }
    let max = *sizes.iter().max().unwrap();
    assert!(
        max <= ITEM_BUDGET_BYTES,
        "largest item {max} bytes > {ITEM_BUDGET_BYTES}"
    );
    // State stops growing once the window and its lateness are full (3 h).
    assert!(
        sizes[71] <= sizes[40] + 512,
        "state keeps growing: {:?}",
        &sizes[36..]
    );
    // A typical busy item is a few KB.
    assert!(max <= 16 * 1024, "largest item {max} bytes");
    eprintln!("largest state item after 6 h of 2 calls/s: {max} bytes");

    // Detection still works on top of the folded history: two new
    // addresses within the hour make three distinct ones.
    let t = START_MS + 72 * 300_000;
    let more = vec![
        call(t + 1_000, "Decrypt", "198.51.100.7", &ua, "none", 900_001),
        call(t + 2_000, "Decrypt", "203.0.113.9", &ua, "none", 900_002),
    ];
    let found = batch(&e, &mut store, "obj-attack", &more);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(
        found[0].rule_title,
        "Access key used from several source IPs"
    );
    // A near miss: one new address is two distinct ones, not three.
    let mut store = MemoryStore::new();
    for object in 0..12i64 {
        let records: Vec<String> = (0..600)
            .map(|i| {
                call(
                    START_MS + object * 300_000 + i * 500,
                    "Decrypt",
                    "10.0.0.1",
                    &ua,
                    "none",
                    (object * 600 + i) as u64,
                )
            })
            .collect();
        batch(&e, &mut store, &format!("obj-{object}"), &records);
    }
    let t = START_MS + 12 * 300_000;
    let one = vec![call(t, "Decrypt", "198.51.100.7", &ua, "none", 800_000)];
    assert!(batch(&e, &mut store, "obj-near-miss", &one).is_empty());
}

/// Redelivery of a busy object (same source) changes nothing, even once
/// its events are folded into runs: no item is written again.
#[test]
fn a_redelivered_busy_object_changes_nothing() {
    let e = engine(RULES);
    let mut store = MemoryStore::new();
    let objects: Vec<Vec<String>> = (0..4i64)
        .map(|object| {
            (0..600)
                .map(|i| {
                    let ms = START_MS + object * 300_000 + i * 500;
                    call(
                        ms,
                        "InvokeModel",
                        "10.0.0.1",
                        "ua",
                        "m",
                        (object * 600 + i) as u64,
                    )
                })
                .collect()
        })
        .collect();
    for (i, o) in objects.iter().enumerate() {
        batch(&e, &mut store, &format!("obj-{i}"), o);
    }
    let before = items(&e, &mut store);
    for (i, o) in objects.iter().enumerate() {
        assert!(batch(&e, &mut store, &format!("obj-{i}"), o).is_empty());
    }
    assert_eq!(items(&e, &mut store), before, "a redelivery changed state");
}

/// An `event_count` over many events still counts them once they are
/// folded into runs: 2 calls a second reach 5,000 in an hour (7,200);
/// 1 call a second (3,600) never does.
#[test]
fn event_counts_hold_past_the_exact_entries() {
    let e = engine(RULES);
    for (every_ms, expect) in [(500i64, true), (1_000, false)] {
        let mut store = MemoryStore::new();
        let mut found = Vec::new();
        let per_object = 300_000 / every_ms;
        for object in 0..12i64 {
            let records: Vec<String> = (0..per_object)
                .map(|i| {
                    let ms = START_MS + object * 300_000 + i * every_ms;
                    let n = (object * per_object + i) as u64;
                    call(ms, "InvokeModel", "10.0.0.1", "ua", "m", n)
                })
                .collect();
            found.extend(batch(&e, &mut store, &format!("obj-{object}"), &records));
            assert!(largest(&e, &mut store) <= ITEM_BUDGET_BYTES);
        }
        let counts: Vec<&Finding> = found
            .iter()
            .filter(|f| f.rule_title.starts_with("Many invocations"))
            .collect();
        if expect {
            assert_eq!(counts.len(), 1, "{counts:#?}");
            assert!(counts[0].count >= 5_000, "{}", counts[0].count);
            assert!(counts[0].event_ids.len() <= trailwarden_engine::finding::MAX_EVENT_IDS);
        } else {
            assert!(counts.is_empty(), "{counts:#?}");
        }
    }
}

/// Attacker-chosen text never reaches a key and never passes the budget:
/// an 1,100-character model id (a group-by value), a 300 KB user agent
/// (a counted value and the snapshot), 100 KB event ids.
#[test]
fn hostile_values_keep_keys_fixed_and_items_within_budget() {
    let e = engine(RULES);
    let mut store = MemoryStore::new();
    let model = "m".repeat(1_100);
    let ua = "\u{202e}é".repeat(100_000);
    let mut records = Vec::new();
    for i in 0..400i64 {
        let mut r = call(
            START_MS + i * 1_000,
            "InvokeModel",
            "10.0.0.1",
            &ua,
            &model,
            i as u64,
        );
        if i % 2 == 0 {
            r = r.replace(
                &format!("ev-{:012}", i),
                &format!("{i}-{}", "x".repeat(100_000)),
            );
        }
        records.push(r);
    }
    batch(&e, &mut store, "hostile", &records);
    let all = items(&e, &mut store);
    assert!(!all.is_empty());
    for item in &all {
        assert_eq!(item.key.group.len(), 32, "{:?}", item.key);
        assert!(item.key.group.bytes().all(|b| b.is_ascii_hexdigit()));
        let len = item.body.encoded_len();
        assert!(len <= ITEM_BUDGET_BYTES, "{len} bytes: {:?}", item.key);
        if let Body::Window(w) = &item.body {
            assert!(w.group.iter().all(|g| g.len() <= 256), "group kept whole");
            assert!(w.entries.iter().all(|x| x.id.len() <= 64));
        }
    }
}

/// A store that refuses every write of one rule's items for good (as
/// DynamoDB refuses an invalid item) and stores the rest.
struct Refuses {
    inner: MemoryStore,
    rule: String,
}

impl StateStore for Refuses {
    fn get_many(
        &mut self,
        keys: &[trailwarden_engine::state::StateKey],
    ) -> Result<Vec<Option<StateItem>>, trailwarden_engine::StoreError> {
        self.inner.get_many(keys)
    }
    fn put_many(
        &mut self,
        writes: &[trailwarden_engine::state::StateWrite],
    ) -> Result<Vec<PutOutcome>, trailwarden_engine::StoreError> {
        let mut out = Vec::new();
        for w in writes {
            if w.item.key.rule == self.rule {
                out.push(PutOutcome::Refused(
                    "ValidationException: item too large".into(),
                ));
            } else {
                out.extend(self.inner.put_many(std::slice::from_ref(w))?);
            }
        }
        Ok(out)
    }
    fn scan_rule(&mut self, rule: &str) -> Result<Vec<StateItem>, trailwarden_engine::StoreError> {
        self.inner.scan_rule(rule)
    }
}

/// A refused group write gives up that group alone: the flush completes,
/// the other correlations' state is written and their findings made, and
/// the refusal names the rule and group for the caller to log.
#[test]
fn a_refused_write_gives_up_only_its_group() {
    let e = engine(RULES);
    let ips_rule = "10000000-0000-4000-8000-000000000002";
    let mut store = Refuses {
        inner: MemoryStore::new(),
        rule: ips_rule.into(),
    };
    let records: Vec<String> = (0..5i64)
        .map(|i| {
            let ua = format!("agent-{i}");
            call(
                START_MS + i * 1_000,
                "Decrypt",
                &format!("10.0.0.{i}"),
                &ua,
                "none",
                i as u64,
            )
        })
        .collect();
    let mut session = Session::new(&e);
    session.set_source("obj");
    let mut found = Vec::new();
    for text in &records {
        session.record(&Record::parse(text).unwrap(), &mut |f| found.push(f));
    }
    found.extend(session.flush(&mut store).unwrap());
    assert!(
        session.is_empty(),
        "the refused group is not retried forever"
    );
    let titles: Vec<&str> = found.iter().map(|f| f.rule_title.as_str()).collect();
    assert!(
        titles.contains(&"Access key used with several user agents"),
        "{titles:?}"
    );
    let refusals = session.refusals();
    assert_eq!(refusals.len(), 1, "{refusals:?}");
    assert_eq!(refusals[0].key.rule, ips_rule);
    assert_eq!(refusals[0].group, ["AKIABUSY"]);
    assert!(refusals[0].reason.contains("ValidationException"));
    assert_eq!(session.stats.refused, 1);
    assert!(store.inner.scan_rule(ips_rule).unwrap().is_empty());
    assert_eq!(
        store
            .inner
            .scan_rule("10000000-0000-4000-8000-000000000003")
            .unwrap()
            .len(),
        1
    );
}

/// A `value_count` window sees a run of one address at both its ends: a
/// key busy from one address for a few minutes, then two other addresses
/// just under an hour after the run's *last* event (so more than an hour
/// after its first) make three distinct addresses in one hour. One minute
/// later it is two, a near miss. The busy minutes also cost a handful of
/// entries, not one per event.
#[test]
fn a_run_counts_at_its_last_event_too() {
    let e = engine(RULES);
    let ua = "aws-cli/2.15.0";
    let busy: Vec<String> = (0..400)
        .map(|i| {
            call(
                START_MS + i * 500,
                "Decrypt",
                "10.0.0.1",
                ua,
                "none",
                i as u64,
            )
        })
        .collect();
    let last = START_MS + 399 * 500;
    for (after_ms, fires) in [(3_500_000, true), (3_660_000, false)] {
        let mut store = MemoryStore::new();
        assert!(batch(&e, &mut store, "obj-busy", &busy).is_empty());
        let entries: usize = items(&e, &mut store)
            .iter()
            .map(|i| match &i.body {
                Body::Window(w) => w.entries.len(),
                _ => 0,
            })
            .max()
            .unwrap();
        assert!(
            entries <= 8,
            "{entries} entries for 400 events of one address"
        );
        let later = vec![
            call(
                last + after_ms,
                "Decrypt",
                "198.51.100.7",
                ua,
                "none",
                1_000,
            ),
            call(
                last + after_ms + 1_000,
                "Decrypt",
                "203.0.113.9",
                ua,
                "none",
                1_001,
            ),
        ];
        let found = batch(&e, &mut store, "obj-later", &later);
        assert_eq!(found.len(), usize::from(fires), "{after_ms} ms: {found:#?}");
        if fires {
            assert_eq!(
                found[0].rule_title,
                "Access key used from several source IPs"
            );
            let ids = &found[0].event_ids;
            let mut unique = ids.clone();
            unique.sort();
            unique.dedup();
            assert_eq!(unique.len(), ids.len(), "an id twice: {ids:?}");
        }
    }
}

/// Stored items name values and long event ids by digest: the digests keep
/// the form items already written hold (the first 8 bytes of SHA-256 as 16
/// lowercase hexadecimal characters), whichever way the engine computes
/// them, so state written by an earlier version still matches.
#[test]
fn digests_keep_their_stored_form() {
    use trailwarden_engine::state::{
        bounded_event_id, digest_text, value_digest, value_digest_u64, MAX_EVENT_ID,
    };
    // SHA-256("abc") = ba7816bf8f01cfea414140de5dae2223…
    assert_eq!(value_digest("abc"), "ba7816bf8f01cfea");
    assert_eq!(value_digest_u64("abc"), 0xba78_16bf_8f01_cfea);
    assert_eq!(digest_text(0xab), "00000000000000ab");
    let long = "e".repeat(MAX_EVENT_ID + 1);
    assert_eq!(
        bounded_event_id(&long),
        format!("h:{}", value_digest(&long))
    );
    let short = "e".repeat(MAX_EVENT_ID);
    assert_eq!(bounded_event_id(&short), short);
}
