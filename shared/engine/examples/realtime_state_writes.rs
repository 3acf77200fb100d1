//! The state writes the real-time queue costs (template parameter
//! `RealtimeCorrelations`): reads a CloudTrail log file (plain or gzip),
//! keeps the events the real-time rule passes by default (the template's
//! `RealtimeEventSources`), gathers them into batches of `WINDOW` seconds
//! of event time, at most 1,000 events each (the queue's event source
//! mapping: `MaximumBatchingWindowInSeconds`, `BatchSize`), and counts the
//! state items (correlation windows, baselines and their bookkeeping) each
//! batch's one flush writes with the built-in pack.
//!
//! ```text
//! cargo run --release -p trailwarden-engine --example realtime_state_writes -- FILE [WINDOW_SECONDS] [POLICY]
//! ```
//!
//! Prints the events passed, their rate, the batches, and the state items
//! written per batch and per event. Every window or baseline item a batch
//! touches is counted as written (an upper bound: a batch whose events
//! change nothing writes nothing); baseline rules' bookkeeping items are
//! counted apart (read each batch, seldom written).

use std::collections::BTreeMap;

use trailwarden_cloudtrail::{read_object, ReaderOptions, Record, RecordReject, RecordSink};
use trailwarden_engine::builtin::builtin_rules;
use trailwarden_engine::{Engine, Policy, RuleSetBuilder, Session};

/// The template's default `RealtimeEventSources`.
const SOURCES: &[&str] = &[
    "bedrock.amazonaws.com",
    "bedrock-mantle.amazonaws.com",
    "sagemaker.amazonaws.com",
    "iam.amazonaws.com",
    "sts.amazonaws.com",
    "kms.amazonaws.com",
    "cloudtrail.amazonaws.com",
    "s3.amazonaws.com",
    "guardduty.amazonaws.com",
    "securityhub.amazonaws.com",
    "macie2.amazonaws.com",
    "config.amazonaws.com",
    "signin.amazonaws.com",
];

/// Most events in a batch (the mapping's `BatchSize`).
const BATCH_SIZE: usize = 1000;

#[derive(Default)]
struct Passed {
    /// (event time ms, record text) of the events the rule passes.
    events: Vec<(i64, String)>,
    read: u64,
}

impl RecordSink for Passed {
    fn record(&mut self, _index: u64, record: &Record<'_>) {
        self.read += 1;
        let passes = record.event_source().is_some_and(|s| SOURCES.contains(&s));
        if let (true, Some(t)) = (passes, record.event_time_millis()) {
            self.events.push((t, record.raw().to_owned()));
        }
    }

    fn reject(&mut self, _reject: RecordReject) {}
}

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(file) = args.next() else {
        eprintln!("usage: realtime_state_writes FILE [WINDOW_SECONDS] [POLICY]");
        std::process::exit(2);
    };
    let window_s: i64 = args
        .next()
        .map_or(60, |w| w.parse().expect("WINDOW_SECONDS: a number"));
    let policy = match args.next() {
        Some(path) => {
            let text = std::fs::read_to_string(&path).expect("the policy file");
            Policy::from_yaml(&path, &text).expect("a valid policy")
        }
        None => Policy::empty(),
    };
    let mut builder = RuleSetBuilder::with_policy(policy);
    for (path, text) in builtin_rules() {
        builder.add_yaml(path, text);
    }
    let engine = Engine::from_set(builder.build());

    let mut passed = Passed::default();
    let input = std::fs::File::open(&file).expect("the log file");
    read_object(input, &ReaderOptions::default(), &mut passed).expect("a CloudTrail log file");
    passed.events.sort_by_key(|(t, _)| *t);

    let mut windows: BTreeMap<i64, Vec<&str>> = BTreeMap::new();
    for (t, text) in &passed.events {
        windows
            .entry(t.div_euclid(window_s * 1000))
            .or_default()
            .push(text);
    }
    let (mut batches, mut writes, mut bookkeeping) = (0u64, 0u64, 0u64);
    for events in windows.values() {
        for batch in events.chunks(BATCH_SIZE) {
            let mut session = Session::new(&engine);
            session.set_early(true);
            for text in batch {
                let record = Record::parse(text).expect("read once already");
                session.record(&record, &mut |_| {});
            }
            batches += 1;
            for key in session.state_keys() {
                // A baseline rule's bookkeeping item is read every batch and
                // written only when the batch's earliest event is earlier.
                if key.group.is_empty() {
                    bookkeeping += 1;
                } else {
                    writes += 1;
                }
            }
        }
    }
    let events = passed.events.len() as u64;
    println!("records read: {}", passed.read);
    println!("events the real-time rule passes: {events}");
    println!("batches of {window_s} s (at most {BATCH_SIZE} events): {batches}");
    println!(
        "events per second of event time: {:.2}",
        events as f64
            / ((passed.events.last().map_or(0, |e| e.0) - passed.events.first().map_or(0, |e| e.0))
                as f64
                / 1000.0)
                .max(1.0)
    );
    println!(
        "state items written (windows and baselines): {writes} ({:.1} a batch, {:.3} an event)",
        writes as f64 / batches.max(1) as f64,
        writes as f64 / events.max(1) as f64
    );
    println!(
        "bookkeeping items read: {bookkeeping} ({:.1} a batch)",
        bookkeeping as f64 / batches.max(1) as f64
    );
}
