//! The `trailwarden` command.

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use trailwarden::builtin::builtin_rules;
use trailwarden::output::{self, FindingWriter};
use trailwarden::ruletest;
use trailwarden::scan::{expand_inputs, Input, ScanStats, Scanner};
use trailwarden_cloudtrail::ReaderOptions;
use trailwarden_engine::{rules::rule_files, Engine, Level, RuleSetBuilder};

/// CloudTrail analyzer for AI governance: Sigma rules over Bedrock, SageMaker,
/// training data, IAM, KMS and CloudTrail activity.
#[derive(Parser)]
#[command(name = "trailwarden", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Scan CloudTrail files (gzip or plain; S3 delivery files, JSON lines,
    /// JSON arrays, EventBridge events) and report findings.
    Scan(ScanArgs),
    /// List, validate and test rules.
    #[command(subcommand)]
    Rules(RulesCommand),
}

#[derive(Args)]
struct RuleArgs {
    /// Add Sigma rules from a file or directory (repeatable).
    #[arg(long = "rules", value_name = "PATH")]
    rules: Vec<PathBuf>,
    /// Do not load the built-in rule pack.
    #[arg(long)]
    no_builtin: bool,
}

#[derive(Args)]
struct ScanArgs {
    /// Files, directories (read recursively) or - for standard input.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    #[command(flatten)]
    rules: RuleArgs,
    /// Output format [default: table on a terminal, jsonl otherwise].
    #[arg(long, value_enum)]
    format: Option<output::Format>,
    /// Report only findings at or above this level.
    #[arg(long, value_name = "LEVEL", default_value = "informational")]
    min_level: Level,
    /// Exit 1 when a finding at or above this level is found.
    #[arg(long, value_name = "LEVEL")]
    fail_on: Option<Level>,
    /// Largest decompressed size of one object, in bytes; larger objects
    /// (gzip bombs) are rejected.
    #[arg(long, value_name = "BYTES", default_value_t = ReaderOptions::default().max_object_bytes)]
    max_object_bytes: u64,
    /// No progress bar and no summary.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Subcommand)]
enum RulesCommand {
    /// List the loaded rules: id, level, kind, title, source.
    List(RuleArgs),
    /// Check rule files; every problem is named with its file. Exits 1 on any problem.
    Validate {
        /// Rule files or directories [default: the built-in pack].
        paths: Vec<PathBuf>,
    },
    /// Run each rule's test events (`x.test.json` beside `x.yml`). Exits 1 on any failure.
    Test {
        /// Rule files or directories.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Scan(args) => scan(args),
        Command::Rules(RulesCommand::List(args)) => rules_list(args),
        Command::Rules(RulesCommand::Validate { paths }) => rules_validate(paths),
        Command::Rules(RulesCommand::Test { paths }) => rules_test(paths),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("trailwarden: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Load the built-in pack and/or extra rules, printing problems to stderr.
fn load_engine(args: &RuleArgs, quiet: bool) -> anyhow::Result<Engine> {
    let mut builder = RuleSetBuilder::new();
    if !args.no_builtin {
        for (path, text) in builtin_rules() {
            builder.add_yaml(&format!("builtin:{path}"), text);
        }
    }
    for path in &args.rules {
        builder.add_path(path);
    }
    let (rules, problems, notes) = builder.finish();
    for p in &problems {
        eprintln!("trailwarden: rule problem: {p}");
    }
    if !quiet {
        for n in &notes {
            eprintln!(
                "trailwarden: rule skipped: {}: {:?}: {}",
                n.source, n.rule, n.reason
            );
        }
    }
    anyhow::ensure!(
        !rules.is_empty(),
        "no rules to run: {} rule problem(s); fix them or drop --no-builtin",
        problems.len()
    );
    Ok(Engine::new(rules))
}

fn scan(args: ScanArgs) -> anyhow::Result<ExitCode> {
    let engine = load_engine(&args.rules, args.quiet)?;
    let (inputs, missing) = expand_inputs(&args.paths);
    for (path, reason) in &missing {
        eprintln!("trailwarden: {path}: {reason}");
    }
    if inputs.is_empty() {
        eprintln!("trailwarden: error: no input to read");
        return Ok(ExitCode::from(2));
    }
    let stdout = io::stdout();
    let format = args.format.unwrap_or(if stdout.is_terminal() {
        output::Format::Table
    } else {
        output::Format::Jsonl
    });
    let mut writer = FindingWriter::new(io::BufWriter::new(stdout.lock()), format);
    let reader = ReaderOptions {
        max_object_bytes: args.max_object_bytes,
        ..ReaderOptions::default()
    };
    let mut scanner = Scanner::new(&engine, reader, args.min_level);
    let progress = progress_bar(&inputs, args.quiet);
    let started = Instant::now();
    let mut write_error = None;
    let mut unreadable = 0usize;
    for input in &inputs {
        let name = input.name();
        progress.set_message(name.clone());
        let mut emit = |f| {
            if write_error.is_none() {
                if let Err(e) = writer.push(f) {
                    write_error = Some(e);
                }
            }
        };
        let result = match input {
            Input::Stdin => scanner.scan_object(&name, io::stdin().lock(), &mut emit),
            Input::File(path) => match std::fs::File::open(path) {
                Ok(file) => scanner.scan_object(&name, file, &mut emit),
                Err(e) => {
                    scanner
                        .stats
                        .failed
                        .push((name.clone(), format!("cannot open: {e}")));
                    unreadable += 1;
                    continue;
                }
            },
        };
        if let Err(failure) = result {
            progress.suspend(|| eprintln!("trailwarden: {name}: rejected: {failure}"));
        }
        if let Input::File(path) = input {
            progress.inc(std::fs::metadata(path).map_or(0, |m| m.len()));
        }
    }
    progress.finish_and_clear();
    if let Some(e) = write_error {
        if e.kind() != io::ErrorKind::BrokenPipe {
            return Err(e).context("writing findings");
        }
    }
    match writer.finish() {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
            return Err(e).context("writing findings")
        }
        _ => {}
    }
    let stats = &scanner.stats;
    if !args.quiet {
        let unrouted = engine.unrouted_rules();
        eprintln!("--");
        eprintln!(
            "rules: {} ({} dispatched by eventName/eventSource, {} tried on every record)",
            engine.rules().len(),
            engine.rules().len() - unrouted,
            unrouted
        );
        print_summary(stats, inputs.len(), started.elapsed().as_secs_f64());
    }
    if unreadable == inputs.len() && stats.objects == 0 {
        eprintln!("trailwarden: error: none of the inputs could be read");
        return Ok(ExitCode::from(2));
    }
    if let (Some(threshold), Some(max)) = (args.fail_on, stats.max_level()) {
        if max >= threshold {
            return Ok(ExitCode::from(1));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn progress_bar(inputs: &[Input], quiet: bool) -> ProgressBar {
    let total: u64 = inputs
        .iter()
        .map(|i| match i {
            Input::File(p) => std::fs::metadata(p).map_or(0, |m| m.len()),
            Input::Stdin => 0,
        })
        .sum();
    let long = total > 32 << 20 || inputs.len() > 50;
    if quiet || !long || !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} ({bytes_per_sec}, eta {eta}) {msg:.dim}",
        )
        .expect("valid template"),
    );
    bar
}

fn print_summary(stats: &ScanStats, inputs: usize, secs: f64) {
    let mut err = io::stderr().lock();
    let _ = writeln!(
        err,
        "files: {inputs} ({} read, {} skipped, {} rejected)",
        stats.objects - stats.skipped.len() as u64,
        stats.skipped.len(),
        stats.failed.len()
    );
    for (name, reason) in &stats.skipped {
        let _ = writeln!(err, "  skipped {name}: {reason}");
    }
    for (name, reason) in &stats.failed {
        let _ = writeln!(err, "  rejected {name}: {reason}");
    }
    let _ = writeln!(
        err,
        "records: {} evaluated, {} rejected",
        stats.records, stats.rejected
    );
    for r in &stats.reject_samples {
        let _ = writeln!(
            err,
            "  {}: record {} (byte {}): {}",
            r.object, r.reject.index, r.reject.offset, r.reject.reason
        );
    }
    if stats.rejected > stats.reject_samples.len() as u64 {
        let _ = writeln!(
            err,
            "  … and {} more rejected records",
            stats.rejected - stats.reject_samples.len() as u64
        );
    }
    let by_level: Vec<String> = Level::ALL
        .into_iter()
        .rev()
        .zip(stats.findings.iter().rev())
        .filter(|(_, n)| **n > 0)
        .map(|(l, n)| format!("{n} {l}"))
        .collect();
    let _ = writeln!(
        err,
        "findings: {}{}",
        stats.total_findings(),
        if by_level.is_empty() {
            String::new()
        } else {
            format!(" ({})", by_level.join(", "))
        }
    );
    let secs = secs.max(1e-9);
    let _ = writeln!(
        err,
        "throughput: {:.0} records/s, {:.1} MB/s decompressed, {:.2}s",
        stats.records as f64 / secs,
        stats.bytes as f64 / secs / 1e6,
        secs
    );
}

fn rules_list(args: RuleArgs) -> anyhow::Result<ExitCode> {
    let engine = load_engine(&args, false)?;
    let mut out = io::stdout().lock();
    writeln!(out, "ID\tLEVEL\tKIND\tTITLE\tSOURCE")?;
    for r in engine.rules() {
        writeln!(
            out,
            "{}\t{}\tdetection\t{}\t{}",
            r.id, r.level, r.title, r.source
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

fn rules_validate(paths: Vec<PathBuf>) -> anyhow::Result<ExitCode> {
    let mut builder = RuleSetBuilder::new();
    if paths.is_empty() {
        for (path, text) in builtin_rules() {
            builder.add_yaml(&format!("builtin:{path}"), text);
        }
    }
    for path in &paths {
        builder.add_path(path);
    }
    let (rules, problems, notes) = builder.finish();
    for p in &problems {
        println!("problem: {p}");
    }
    for n in &notes {
        println!("skipped: {}: {:?}: {}", n.source, n.rule, n.reason);
    }
    println!(
        "{} rules valid, {} problems, {} skipped",
        rules.len(),
        problems.len(),
        notes.len()
    );
    Ok(if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn rules_test(paths: Vec<PathBuf>) -> anyhow::Result<ExitCode> {
    let mut files = Vec::new();
    for path in &paths {
        files.extend(rule_files(path).with_context(|| format!("reading {}", path.display()))?);
    }
    let (mut passed, mut failed) = (0, 0);
    for file in files {
        let report = ruletest::run_rule_file(&file);
        if report.passed() {
            passed += 1;
            println!("ok    {} ({} cases)", report.rule_file, report.cases.len());
        } else {
            failed += 1;
            println!("FAIL  {}", report.rule_file);
            if let Some(e) = &report.error {
                println!("      {e}");
            }
            for c in report.cases.iter().filter(|c| !c.passed()) {
                println!(
                    "      case {:?}: expected {} finding(s), got {}",
                    c.name, c.expected, c.got
                );
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
