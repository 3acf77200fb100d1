#[test]
fn logs_are_told_from_other_files_by_their_first_bytes() {
    for head in [
        &b"{\"Records\":[]}"[..],
        b"[{}]",
        b"\n\t {\"eventVersion\"",
        b"\xef\xbb\xbf{}",
        b"\x1f\x8b\x08\x00",
        b"",
        b"   \n",
    ] {
        assert!(looks_like_a_log(head), "{head:?}");
    }
    for head in [
        &b"Apache License"[..],
        b"# README",
        b"\x89PNG\r\n",
        b"PK\x03\x04",
        b"\xef\xbb\xbfname: x",
        b"eventVersion,eventTime",
    ] {
        assert!(!looks_like_a_log(head), "{head:?}");
    }
}
use super::*;
use trailwarden_engine::builtin::builtin_rules;
use trailwarden_engine::rules::RuleSetBuilder;
use trailwarden_engine::state::{PutOutcome, StateItem, StateKey, StateWrite};

/// What a scan stored: findings (id, times made, body) and state items.
fn stored(path: &Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut out = Vec::new();
    for sql in [
        "SELECT id || ' ' || times_seen || ' ' || body FROM findings ORDER BY id",
        "SELECT rule || ' ' || grp || ' ' || version || ' ' || body FROM state ORDER BY rule, grp",
    ] {
        let mut stmt = conn.prepare(sql).unwrap();
        let rows = stmt.query_map([], |r| r.get::<_, String>(0)).unwrap();
        out.extend(rows.map(Result::unwrap));
    }
    out
}

/// A store that refuses the `fail_at`-th state write (counting from 1)
/// as unreachable, and does everything else as its store does.
struct Flaky<'s> {
    store: &'s mut SqliteStore,
    writes: usize,
    fail_at: usize,
}

impl StateStore for Flaky<'_> {
    fn get_many(&mut self, keys: &[StateKey]) -> Result<Vec<Option<StateItem>>, StoreError> {
        self.store.get_many(keys)
    }
    fn put_many(&mut self, writes: &[StateWrite]) -> Result<Vec<PutOutcome>, StoreError> {
        self.writes += 1;
        if self.writes == self.fail_at {
            return Err(StoreError("unreachable (a test)".into()));
        }
        self.store.put_many(writes)
    }
    fn scan_rule(&mut self, rule: &str) -> Result<Vec<StateItem>, StoreError> {
        self.store.scan_rule(rule)
    }
}

impl Ledger for Flaky<'_> {
    fn is_done(&mut self, object: &ObjectRef) -> Result<bool, StoreError> {
        self.store.is_done(object)
    }
    fn mark_done(&mut self, object: &ObjectRef, records: u64) -> Result<(), StoreError> {
        self.store.mark_done(object, records)
    }
}

impl FindingStore for Flaky<'_> {
    fn put_finding(&mut self, finding: &Finding) -> Result<bool, StoreError> {
        self.store.put_finding(finding)
    }
}

impl Stores for Flaky<'_> {
    fn put_findings(&mut self, findings: &[Encoded]) -> Result<(), StoreError> {
        Stores::put_findings(&mut *self.store, findings)
    }
}

/// The engine of the built-in pack and the example policy, and a file
/// of the LLMjacking scenario in `dir`.
fn pack_and_file(dir: &Path) -> (Engine, Policy, PathBuf) {
    let file = dir.join("llmjacking.json.gz");
    let options = crate::simulate::SimOptions {
        background: 800,
        ..Default::default()
    };
    crate::simulate::write("llmjacking", &options, &file).unwrap();
    let policy = Policy::from_yaml("example", crate::simulate::example_policy_yaml()).unwrap();
    let mut builder = RuleSetBuilder::with_policy(policy.clone());
    for (path, text) in builtin_rules() {
        builder.add_yaml(&format!("builtin:{path}"), text);
    }
    (Engine::from_set(builder.build()), policy, file)
}

/// Scan `inputs` into the store at `db` on `threads` threads: what the
/// progress hook was told (bytes, calls) and the inputs that failed.
fn scan_counting(
    engine: &Engine,
    policy: &Policy,
    db: &Path,
    inputs: &[Input],
    threads: usize,
) -> (u64, u64, Vec<String>) {
    use std::sync::atomic::{AtomicU64, Ordering};
    let (total, calls) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let (t, c) = (Arc::clone(&total), Arc::clone(&calls));
    let mut store = crate::store::SqliteStore::open(db).unwrap();
    let mut failed = Vec::new();
    Scanner::new(
        engine,
        ReaderOptions::default(),
        Level::Informational,
        policy.clone(),
        &mut store,
    )
    .threads(threads)
    .progress(Arc::new(move |n| {
        t.fetch_add(n, Ordering::Relaxed);
        c.fetch_add(1, Ordering::Relaxed);
    }))
    .scan(inputs, &mut |_| {}, &mut |input, failure| {
        if failure.is_some() {
            failed.push(input.name());
        }
    })
    .unwrap();
    (
        total.load(Ordering::Relaxed),
        calls.load(Ordering::Relaxed),
        failed,
    )
}

/// The progress hook is told every byte of every file as it is read,
/// many times within one file, on one thread and on several (a file
/// split between threads included): its sum is the files' sizes.
#[test]
fn progress_is_told_each_byte_as_it_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, policy, file) = pack_and_file(dir.path());
    let plain = dir.path().join("plain.json");
    let mut text = Vec::new();
    flate2::read::MultiGzDecoder::new(std::fs::File::open(&file).unwrap())
        .read_to_end(&mut text)
        .unwrap();
    std::fs::write(&plain, &text).unwrap();
    let inputs = [Input::File(file.clone()), Input::File(plain.clone())];
    let size = |p: &Path| std::fs::metadata(p).unwrap().len();
    for threads in [1, 2, 4] {
        let db = dir.path().join(format!("p{threads}.db"));
        let (total, calls, failed) = scan_counting(&engine, &policy, &db, &inputs, threads);
        assert!(failed.is_empty(), "{failed:?}");
        assert_eq!(total, size(&file) + size(&plain), "{threads}");
        assert!(calls > 4, "{threads}");
    }
}

/// A file that fails part way, one that cannot be opened and files
/// already read (the ledger skips them) still count their whole size:
/// the bar ends full, on one thread and on several.
#[test]
fn progress_counts_every_file_however_its_reading_ends() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, policy, file) = pack_and_file(dir.path());
    // A gzip member followed by 200 KB that is not one: the reader
    // fails at the second member's header and reads no further.
    let mut broken = std::fs::read(&file).unwrap();
    broken.extend(std::iter::repeat_n(b'x', 200_000));
    let truncated = dir.path().join("broken.json.gz");
    std::fs::write(&truncated, &broken).unwrap();
    let empty = dir.path().join("empty.json");
    std::fs::write(&empty, b"{\"Records\":[]}").unwrap();
    let inputs = [
        Input::File(file.clone()),
        Input::File(truncated.clone()),
        Input::File(empty.clone()),
    ];
    let size = |p: &Path| std::fs::metadata(p).unwrap().len();
    let expected = size(&file) + size(&truncated) + size(&empty);
    for threads in [1, 2] {
        let db = dir.path().join(format!("c{threads}.db"));
        // Read, then read again: the second time the ledger skips what
        // was done, and the truncated file fails again.
        for round in 0..2 {
            let (total, _, failed) = scan_counting(&engine, &policy, &db, &inputs, threads);
            assert_eq!(failed.len(), 1, "{threads} {round}: {failed:?}");
            assert_eq!(total, expected, "{threads} threads, round {round}");
        }
    }
}

/// A state write that fails in the middle of an object fails the
/// object; reading it again writes what was not written and nothing
/// twice: the state ends as if nothing had failed, on one thread and
/// on two.
#[test]
fn an_object_read_again_after_a_failed_state_write_counts_each_batch_once() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, policy, file) = pack_and_file(dir.path());
    // Findings, and state rows without the item's version (it counts
    // writes, the failed run's included) and without the list of
    // batches merged (the same batches, merged in another order): what
    // was found and counted.
    let state = |db: &Path| -> Vec<String> {
        stored(db)
            .into_iter()
            .map(|row| {
                // A finding: its id and body (its count says how many
                // times it was stored, the failed read's included).
                if row.starts_with("tw-") {
                    let words: Vec<&str> = row.splitn(3, ' ').collect();
                    return format!("{} {}", words[0], words[2]);
                }
                let words: Vec<&str> = row.splitn(4, ' ').collect();
                let mut body: serde_json::Value = serde_json::from_str(words[3]).unwrap();
                if let Some(body) = body.as_object_mut() {
                    body.remove("batches");
                }
                format!("{} {} {body}", words[0], words[1])
            })
            .collect()
    };
    let scan = |store: &mut dyn Stores, threads: usize| {
        let mut scanner = Scanner::new(
            &engine,
            ReaderOptions::default(),
            Level::Informational,
            policy.clone(),
            store,
        )
        .threads(threads)
        .flush_after(50);
        let mut failed = false;
        scanner
            .scan(
                &[Input::File(file.clone())],
                &mut |_| {},
                &mut |_, failure| failed |= failure.is_some(),
            )
            .unwrap();
        failed
    };
    let reference = dir.path().join("reference.db");
    assert!(!scan(&mut SqliteStore::open(&reference).unwrap(), 1));
    let expected = state(&reference);
    assert!(expected.len() > 10, "{expected:?}");
    for threads in [1, 2] {
        for fail_at in [2, 5] {
            let db = dir.path().join(format!("flaky-{threads}-{fail_at}.db"));
            let mut store = SqliteStore::open(&db).unwrap();
            let mut flaky = Flaky {
                store: &mut store,
                writes: 0,
                fail_at,
            };
            assert!(
                scan(&mut flaky, threads),
                "the failed write fails the object"
            );
            assert!(!scan(&mut store, threads), "read again, it is done");
            drop(store);
            let got = state(&db);
            let differ: Vec<String> = got
                .iter()
                .filter(|row| !expected.contains(row))
                .chain(expected.iter().filter(|row| !got.contains(row)))
                .map(|row| row.chars().take(600).collect())
                .collect();
            assert!(
                differ.is_empty(),
                "{threads} threads, write {fail_at} failed: {} rows differ: {differ:#?}",
                differ.len()
            );
        }
    }
}

/// A baseline's learning period starts at the first record read, not at
/// its first match, on one thread and on two (where records that match
/// nothing never reach the session's thread, only their times do): a
/// rare call past the learning period is reported although it is the
/// rule's first match.
#[test]
fn learning_starts_at_the_first_record_on_one_thread_and_two() {
    let dir = tempfile::tempdir().unwrap();
    let mut builder = RuleSetBuilder::with_policy(Policy::empty());
    builder.add_yaml(
        "first.yml",
        "title: First model use\nid: 00000000-0000-4000-8000-0000000000b1\n\
         logsource: {product: aws, service: cloudtrail}\n\
         detection:\n  s:\n    eventName: InvokeModel\n  condition: s\n\
         baseline:\n  type: first_seen\n  group-by: [userIdentity.arn]\n  fields: [requestParameters.modelId]\n\
         \x20 history: 90d\n  learning: 7d\nlevel: medium\n",
    );
    let set = builder.build();
    assert!(set.problems.is_empty(), "{:?}", set.problems);
    let engine = Engine::from_set(set);
    // Many records that match nothing, the first weeks before the call.
    let mut records: Vec<String> = (0..3000)
        .map(|i| {
            format!(
                r#"{{"eventVersion":"1.09","eventTime":"2026-10-01T08:{:02}:{:02}Z","eventSource":"s3.amazonaws.com","eventName":"ListBuckets","eventID":"00000000-0000-4000-8000-{i:012}","userIdentity":{{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/u{i}"}}}}"#,
                (i / 60) % 60,
                i % 60
            )
        })
        .collect();
    records.push(r#"{"eventVersion":"1.09","eventTime":"2026-10-20T08:00:00Z","eventSource":"bedrock.amazonaws.com","eventName":"InvokeModel","eventID":"00000000-0000-4000-8000-ffffffffffff","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/alice"},"requestParameters":{"modelId":"claude"}}"#.to_owned());
    let file = dir.path().join("log.json");
    std::fs::write(&file, format!("{{\"Records\":[{}]}}", records.join(","))).unwrap();
    for threads in [1, 2] {
        let db = dir.path().join(format!("t{threads}.db"));
        let mut store = SqliteStore::open(&db).unwrap();
        let mut scanner = Scanner::new(
            &engine,
            ReaderOptions::default(),
            Level::Informational,
            Policy::empty(),
            &mut store,
        )
        .threads(threads);
        let mut notes = Vec::new();
        scanner
            .scan(
                &[Input::File(file.clone())],
                &mut |e| notes.push(e.finding.note.clone()),
                &mut |_, failure| assert!(failure.is_none(), "{failure:?}"),
            )
            .unwrap();
        assert_eq!(
            notes,
            [Some(
                "first seen: requestParameters.modelId=claude".to_owned()
            )],
            "{threads} thread(s)"
        );
    }
}

/// An object whose state is written many times while it is read (every
/// 50 stateful matches) gives the same findings and state on two
/// threads, where the writes happen while reading goes on, as on one.
#[test]
fn state_written_mid_object_on_two_threads_is_as_on_one() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, policy, file) = pack_and_file(dir.path());
    let scan = |threads: usize, flush_after: usize| {
        let db = dir.path().join(format!("t{threads}-{flush_after}.db"));
        let mut store = SqliteStore::open(&db).unwrap();
        let mut scanner = Scanner::new(
            &engine,
            ReaderOptions::default(),
            Level::Informational,
            policy.clone(),
            &mut store,
        )
        .threads(threads)
        .flush_after(flush_after);
        let mut ids = Vec::new();
        scanner
            .scan(
                &[Input::File(file.clone())],
                &mut |e| ids.push(e.finding.id.clone()),
                &mut |_, failure| assert!(failure.is_none(), "{failure:?}"),
            )
            .unwrap();
        assert_eq!(scanner.stats.objects, 1);
        drop(scanner);
        drop(store);
        (ids, stored(&db))
    };
    let one = scan(1, 50);
    assert!(
        one.0.len() >= 5 && one.1.len() > one.0.len(),
        "{} findings, {} stored rows",
        one.0.len(),
        one.1.len()
    );
    assert_eq!(scan(2, 50), one);
    // The writes did happen mid-object: the state records other batches
    // than one write at the end does.
    let at_end = scan(1, usize::MAX);
    assert_ne!(at_end.1, one.1);
    assert_eq!(scan(2, usize::MAX), at_end);
}
