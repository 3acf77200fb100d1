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
//! - `command` / `command-sigmahq`: the `trailwarden scan` command itself,
//!   end to end (rules loaded, embedded SQLite store with state, ledger and
//!   findings, JSON lines to a null output), one thread, with the pack, or
//!   the pack and the SigmaHQ rules: against `pack-sqlite` and
//!   `pack-sigmahq`, what the command adds;
//! - `command-t2`: the same file on two threads; `command-dir` /
//!   `command-dir-t2`: the same records as 8 files in a directory, on one
//!   and two threads (what `--threads` gains).
//!
//! The input is `trailwarden simulate benign --background N`.
//!
//! Figures are records per second (best of three runs) and peak RSS, with
//! ratios against the reader measured in the same run: machines are noisy,
//! ratios less so. Options: `--records N` (default 200000), `--runs N`.

use std::io::{Read, Write};
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
    fn record(&mut self, index: u64, record: &Record<'_>) {
        self.records += 1;
        if let Some(session) = &mut self.session {
            let mut n = 0;
            session.next_record(index, &mut |_| n += 1);
            session.record(record, &mut |_| n += 1);
            self.matches += n;
            // As the scanner does: bounded memory on a large object.
            // (Single-event findings held for folding stay held to the
            // object's end, as there.)
            if session.should_flush() {
                let matches = &mut self.matches;
                session
                    .flush_with(self.store.as_mut(), &mut |_, found| {
                        *matches += found.len() as u64;
                        Ok(())
                    })
                    .unwrap();
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

/// The command's figures: run `trailwarden scan` on `input` with a fresh
/// store, poll its peak RSS, and read records and findings from its
/// summary. Prints `records seconds peak_kib findings`.
fn command_child(mode: &str, input: &Path) {
    let data = input.parent().unwrap().to_path_buf();
    let policy = data.join("policy.example.yaml");
    std::fs::write(&policy, example_policy_yaml()).unwrap();
    let db = data.join(format!("{mode}.db"));
    let _ = std::fs::remove_file(&db);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_trailwarden"));
    cmd.arg("scan")
        .arg(input)
        .arg("--policy")
        .arg(&policy)
        .arg("--store")
        .arg(&db)
        .args(["--format", "jsonl", "--threads"])
        .arg(if mode.ends_with("-t2") { "2" } else { "1" });
    if mode.starts_with("command-sigmahq") {
        cmd.arg("--rules").arg(SIGMAHQ);
    }
    let start = Instant::now();
    let mut child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run trailwarden scan");
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak_kib = 0u64;
    let mut stderr = String::new();
    let mut pipe = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        pipe.read_to_string(&mut text).unwrap();
        text
    });
    loop {
        if let Some(kib) = std::fs::read_to_string(&status_path).ok().and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        }) {
            peak_kib = peak_kib.max(kib);
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let secs = start.elapsed().as_secs_f64();
    stderr.push_str(&reader.join().unwrap());
    let status = child.wait().unwrap();
    assert!(status.success(), "trailwarden scan: {status}\n{stderr}");
    let number_after = |prefix: &str| -> u64 {
        stderr
            .lines()
            .find_map(|l| l.strip_prefix(prefix))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no {prefix:?} in the summary:\n{stderr}"))
    };
    let records = number_after("records: ");
    let findings = number_after("findings: ");
    let _ = std::fs::remove_file(&db);
    println!("{records} {secs} {peak_kib} {findings}");
}

/// The records of `file` as `parts` gzip delivery files in a directory
/// beside it (made once).
fn split_input(file: &Path, parts: usize) -> PathBuf {
    let dir = file.with_extension(format!("split{parts}"));
    if dir.is_dir() {
        return dir;
    }
    struct Texts(Vec<String>);
    impl RecordSink for Texts {
        fn record(&mut self, _index: u64, record: &Record<'_>) {
            self.0.push(record.raw().to_owned());
        }
        fn reject(&mut self, reject: RecordReject) {
            panic!("benchmark input has a bad record: {reject:?}");
        }
    }
    let mut texts = Texts(Vec::new());
    read_object(
        std::fs::File::open(file).unwrap(),
        &ReaderOptions::default(),
        &mut texts,
    )
    .unwrap();
    let tmp = dir.with_extension("tmp");
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).unwrap();
    let per = texts.0.len().div_ceil(parts);
    for (i, chunk) in texts.0.chunks(per).enumerate() {
        let out = std::fs::File::create(tmp.join(format!("part-{i:02}.json.gz"))).unwrap();
        let mut gz = flate2::write::GzEncoder::new(out, flate2::Compression::default());
        write!(gz, "{{\"Records\":[{}]}}", chunk.join(",")).unwrap();
        gz.finish().unwrap();
    }
    std::fs::rename(&tmp, &dir).unwrap();
    dir
}

/// Child: run one measurement and print `records seconds peak_kib matches`.
fn child(mode: &str, file: &Path) {
    if mode.starts_with("command") {
        let input = if mode.starts_with("command-dir") {
            split_input(file, 8)
        } else {
            file.to_path_buf()
        };
        return command_child(mode, &input);
    }
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
            session: engine.as_ref().map(|engine| {
                // As every object-reading path does.
                let mut session = Session::new(engine);
                session.fold_repeats(true);
                session
            }),
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
    }
    modes.extend(["command", "command-t2", "command-dir", "command-dir-t2"]);
    if Path::new(SIGMAHQ).is_dir() {
        modes.push("command-sigmahq");
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
    let ratio = |name: &str, of: &str, min: f64| match (get(name), get(of)) {
        (Some(a), Some(b)) => format!(
            "{name} >= {min}x {of}: {} ({:.2})",
            if a / b >= min { "met" } else { "NOT met" },
            a / b
        ),
        _ => format!("{name} >= {min}x {of}: not measured"),
    };
    println!(
        "command targets: {}; {}",
        ratio("command", "pack-sqlite", 0.9),
        ratio("command-sigmahq", "pack-sigmahq", 0.9)
    );
    println!(
        "thread targets: {}; {}",
        ratio("command-dir-t2", "command-dir", 1.7),
        ratio("command-t2", "command", 1.4)
    );
    if let Some((_, m)) = results.iter().find(|(m, _)| *m == "command-sigmahq") {
        println!(
            "command memory target: command-sigmahq peak RSS <= 64 MiB: {} ({:.1} MiB)",
            if m.peak_kib <= 64 * 1024 {
                "met"
            } else {
                "NOT met"
            },
            m.peak_kib as f64 / 1024.0
        );
    }
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
