//! Throughput and memory of the reader and the engine, on one core.
//!
//! `cargo bench --bench throughput` generates (once) a realistic 200,000-record
//! gzip CloudTrail file with the project's own generator, then measures, each
//! in a fresh child process so that peak memory is its own:
//!
//! - `decompress`: gzip inflate alone (the floor under any reader);
//! - `reader`: decompress, frame and parse every record;
//! - `pack-all`: reader + the full built-in pack (single-event rules,
//!   correlations, baselines; the example policy so every rule runs), every
//!   rule tried on every record, state in memory;
//! - `pack`: the same through the dispatch index;
//! - `pack-sqlite`: `pack` with state, ledger and findings in the embedded
//!   SQLite store, as `trailwarden scan` runs it;
//! - `pack-rsigma`: `pack` with every rule evaluated by
//!   `rsigma_eval::evaluate_rule` instead of the engine's own evaluation
//!   (the same matches; what the engine's evaluation gains);
//! - `sigmahq-all` / `sigmahq`: the 57 SigmaHQ CloudTrail rules, and
//!   `pack-sigmahq` / `pack-sigmahq-rsigma`: the built-in pack and the SigmaHQ
//!   rules together (when `../shared/corpus` is present).
//!
//! The input is `trailwarden simulate benign --background N`.
//!
//! Figures are records per second (best of three runs) and peak RSS, with
//! ratios against the reader measured in the same run: machines are noisy,
//! ratios less so. Options: `--records N` (default 200000), `--runs N`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use trailwarden::builtin::builtin_rules;
use trailwarden::simulate::{self, example_policy_yaml, SimOptions};
use trailwarden::store::SqliteStore;
use trailwarden_cloudtrail::{read_object, ReaderOptions, Record, RecordReject, RecordSink};
use trailwarden_engine::{Engine, Policy, RuleSetBuilder, Session, StateStore};

const SIGMAHQ: &str = "../shared/corpus/sigmahq-cloudtrail-rules";

struct Count<'e> {
    session: Option<Session<'e>>,
    store: Box<dyn StateStore>,
    records: u64,
    matches: u64,
}

impl RecordSink for Count<'_> {
    fn record(&mut self, _index: u64, record: &Record<'_>) {
        self.records += 1;
        if let Some(session) = &mut self.session {
            let mut n = 0;
            session.record(record, &mut |_| n += 1);
            self.matches += n;
            // As the scanner does: bounded memory on a large object.
            if session.should_flush() {
                self.matches += session.flush(self.store.as_mut()).unwrap().len() as u64;
            }
        }
    }
    fn reject(&mut self, reject: RecordReject) {
        panic!("benchmark input has a bad record: {reject:?}");
    }
}

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The engine a mode measures: `pack`, `sigmahq` or `pack-sigmahq` rules,
/// then a variant suffix (`-all`: no index; `-rsigma`: rsigma's evaluation;
/// `-sqlite`: only the store differs).
fn engine_for(mode: &str) -> Engine {
    let rules = ["-all", "-rsigma", "-sqlite"]
        .iter()
        .fold(mode, |m, suffix| m.strip_suffix(suffix).unwrap_or(m));
    let policy = Policy::from_yaml("policy.example.yaml", example_policy_yaml()).unwrap();
    let mut builder = RuleSetBuilder::with_policy(policy);
    if rules.starts_with("pack") {
        for (path, text) in builtin_rules() {
            builder.add_yaml(path, text);
        }
    }
    if rules.ends_with("sigmahq") {
        builder.add_path(Path::new(SIGMAHQ));
    }
    let set = builder.build();
    assert!(set.problems.is_empty(), "rule problems: {:?}", set.problems);
    let engine = Engine::from_set(set);
    if mode.ends_with("-all") {
        engine.without_index()
    } else if mode.ends_with("-rsigma") {
        engine.evaluated_by_rsigma()
    } else {
        engine
    }
}

/// Child: run one measurement and print `records seconds peak_kib matches`.
fn child(mode: &str, file: &Path) {
    let engine = match mode {
        "decompress" | "reader" => None,
        other => Some(engine_for(other)),
    };
    let start = Instant::now();
    let (records, matches) = if mode == "decompress" {
        let mut dec = flate2::read::MultiGzDecoder::new(std::fs::File::open(file).unwrap());
        let mut buf = vec![0u8; 1 << 20];
        let mut total = 0u64;
        loop {
            let n = dec.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            total += n as u64;
        }
        (total, 0)
    } else {
        let store: Box<dyn StateStore> = if mode == "pack-sqlite" {
            let path = file.with_extension("bench.db");
            let _ = std::fs::remove_file(&path);
            Box::new(SqliteStore::open(&path).unwrap())
        } else {
            Box::new(trailwarden_engine::MemoryStore::new())
        };
        let mut sink = Count {
            session: engine.as_ref().map(Session::new),
            store,
            records: 0,
            matches: 0,
        };
        let f = std::fs::File::open(file).unwrap();
        read_object(f, &ReaderOptions::default(), &mut sink).unwrap();
        if let Some(mut session) = sink.session.take() {
            let found = session.flush(sink.store.as_mut()).unwrap();
            sink.matches += found.len() as u64;
        }
        (sink.records, sink.matches)
    };
    let secs = start.elapsed().as_secs_f64();
    println!("{records} {secs} {} {matches}", peak_rss_kib());
}

struct Measure {
    per_sec: f64,
    peak_kib: u64,
    matches: u64,
}

fn measure(mode: &str, file: &Path, runs: usize) -> Measure {
    let exe = std::env::current_exe().unwrap();
    let mut best = Measure {
        per_sec: 0.0,
        peak_kib: 0,
        matches: 0,
    };
    for _ in 0..runs {
        let out = Command::new(&exe)
            .args(["--child", mode])
            .arg(file)
            .output()
            .expect("run child");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let f: Vec<&str> = text.split_whitespace().collect();
        let (n, secs, kib, matches): (f64, f64, u64, u64) = (
            f[0].parse().unwrap(),
            f[1].parse().unwrap(),
            f[2].parse().unwrap(),
            f[3].parse().unwrap(),
        );
        let per_sec = n / secs;
        if per_sec > best.per_sec {
            best.per_sec = per_sec;
        }
        best.peak_kib = best.peak_kib.max(kib);
        best.matches = matches;
    }
    best
}

fn input_file(records: usize) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-data");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("benign-{records}.json.gz"));
    if !path.exists() {
        eprintln!(
            "generating {} (simulate benign --background {records}) …",
            path.display()
        );
        let options = SimOptions {
            background: records,
            ..SimOptions::default()
        };
        let tmp = path.with_extension("tmp");
        simulate::write("benign", &options, &tmp).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
    }
    path
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        child(&args[i + 1], Path::new(&args[i + 2]));
        return;
    }
    let opt = |name: &str, default: usize| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let records = opt("--records", 200_000);
    let runs = opt("--runs", 3);
    let file = input_file(records);
    let compressed = std::fs::metadata(&file).unwrap().len();

    let decompress = measure("decompress", &file, runs);
    let reader = measure("reader", &file, runs);
    let raw_bytes = {
        let mut dec = flate2::read::MultiGzDecoder::new(std::fs::File::open(&file).unwrap());
        std::io::copy(&mut dec, &mut std::io::sink()).unwrap()
    };
    println!(
        "input: {} ({records} records, {:.2} KB/record, {:.0} MB decompressed, {:.1} MB gzip)",
        file.display(),
        raw_bytes as f64 / records as f64 / 1000.0,
        raw_bytes as f64 / 1e6,
        compressed as f64 / 1e6
    );
    let decompress_records = decompress.per_sec / (raw_bytes as f64 / records as f64);
    println!(
        "{:<28}{:>14}{:>14}{:>12}{:>10}",
        "mode", "records/s", "vs reader", "peak RSS", "matches"
    );
    let row = |name: &str, m: &Measure, per_sec: f64| {
        println!(
            "{:<28}{:>14.0}{:>14.2}{:>9.1} MiB{:>10}",
            name,
            per_sec,
            per_sec / reader.per_sec,
            m.peak_kib as f64 / 1024.0,
            m.matches
        );
    };
    row("decompress (equivalent)", &decompress, decompress_records);
    row("reader", &reader, reader.per_sec);
    let mut modes = vec!["pack-all", "pack", "pack-rsigma", "pack-sqlite"];
    if Path::new(SIGMAHQ).is_dir() {
        modes.extend([
            "sigmahq-all",
            "sigmahq",
            "pack-sigmahq",
            "pack-sigmahq-rsigma",
        ]);
    } else {
        println!("(sigmahq and pack-sigmahq rows skipped: {SIGMAHQ} is absent)");
    }
    let mut results = Vec::new();
    for mode in modes {
        let m = measure(mode, &file, runs);
        row(mode, &m, m.per_sec);
        results.push((mode, m));
    }
    let get = |name: &str| {
        results
            .iter()
            .find(|(m, _)| *m == name)
            .map(|(_, m)| m.per_sec)
    };
    for (all, dispatch) in [("pack-all", "pack"), ("sigmahq-all", "sigmahq")] {
        if let (Some(a), Some(d)) = (get(all), get(dispatch)) {
            println!("dispatch index gain ({dispatch} vs {all}): {:.2}x", d / a);
        }
    }
    for (rsigma, own) in [
        ("pack-rsigma", "pack"),
        ("pack-sigmahq-rsigma", "pack-sigmahq"),
    ] {
        if let (Some(r), Some(o)) = (get(rsigma), get(own)) {
            println!("own evaluation gain ({own} vs {rsigma}): {:.2}x", o / r);
        }
    }
    let target = |name: &str, min: f64| match get(name) {
        Some(per_sec) => format!(
            "{name} >= {min} of reader: {} ({:.2})",
            if per_sec / reader.per_sec >= min {
                "met"
            } else {
                "NOT met"
            },
            per_sec / reader.per_sec
        ),
        None => format!("{name} >= {min} of reader: not measured"),
    };
    println!(
        "engine targets: {}; {}",
        target("pack", 0.5),
        target("pack-sigmahq", 0.4)
    );
    println!(
        "reader target: >= 380000 records/s and <= 64 MiB peak: {} ({:.0} records/s, {:.1} MiB)",
        if reader.per_sec >= 380_000.0 && reader.peak_kib <= 64 * 1024 {
            "met"
        } else {
            "NOT met"
        },
        reader.per_sec,
        reader.peak_kib as f64 / 1024.0
    );
}
