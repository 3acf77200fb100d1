//! Count the records in CloudTrail files: `cargo run --release -p trailwarden-cloudtrail --example count -- FILE...`
//! Prints records, rejects and reader throughput per file.

use std::time::Instant;

use trailwarden_cloudtrail::{read_object, ReaderOptions, Record, RecordReject, RecordSink};

#[derive(Default)]
struct Count {
    records: u64,
    rejected: u64,
    names: usize,
}

impl RecordSink for Count {
    fn record(&mut self, _index: u64, record: &Record<'_>) {
        self.records += 1;
        self.names += record.event_name().map_or(0, str::len);
    }
    fn reject(&mut self, reject: RecordReject) {
        self.rejected += 1;
        eprintln!("  rejected record {}: {}", reject.index, reject.reason);
    }
}

fn main() {
    for path in std::env::args().skip(1) {
        let start = Instant::now();
        let mut count = Count::default();
        let file = std::fs::File::open(&path).expect("open");
        let result = read_object(file, &ReaderOptions::default(), &mut count);
        let secs = start.elapsed().as_secs_f64();
        match result {
            Ok(summary) => println!(
                "{path}: {} records, {} rejected, {} ({}), {:.0} records/s",
                summary.records,
                summary.rejected,
                summary.format.name(),
                summary.bytes,
                summary.records as f64 / secs
            ),
            Err(e) => println!("{path}: error after {} records: {e}", e.summary.records),
        }
    }
}
