//! The `trailwarden` command.

use std::collections::HashSet;
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
use trailwarden::scan::{expand_inputs, Input, ObjectFailure, ScanStats, Scanner, Stores};
use trailwarden::store::{self, SqliteStore};
use trailwarden::terminal::{self, json_escape};
use trailwarden::{say, tell};
use trailwarden_cloudtrail::ReaderOptions;
use trailwarden_engine::{rules::rule_files, Engine, Level, Policy, RuleSet, RuleSetBuilder};

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
    /// List AI principals idle for N days or more (from the dormant
    /// baselines' state), as findings.
    Sweep(SweepArgs),
    /// Query stored findings; show or acknowledge one.
    Findings(FindingsArgs),
    /// Write a realistic CloudTrail log file (S3 delivery format, gzip) for an
    /// attack scenario woven into benign background activity.
    Simulate(SimulateArgs),
    /// Backfill history: run CloudTrail objects under an S3 prefix through
    /// a deployment's engine and tables (for a new rule or deployment).
    Replay(ReplayArgs),
    /// The audit digest of a window: findings by level, rule and account,
    /// the most severe, AI principals and models seen for the first time,
    /// idle AI principals, and the pipeline's health.
    Digest(DigestArgs),
    /// One self-contained HTML page of a window's findings (a timeline by
    /// level, by rule and account, AI activity by principal, correlation
    /// evidence), to open in a browser or send on.
    Report(ReportArgs),
}

#[derive(Args)]
struct ReportArgs {
    /// The window: findings whose event time is within this long (24h, 7d)
    /// or since this time (RFC 3339, YYYY-MM-DD) [default: every stored
    /// finding].
    #[arg(long, value_name = "WHEN")]
    since: Option<String>,
    /// The local store to read [default: as for scan].
    #[arg(long, value_name = "PATH", conflicts_with = "table")]
    local: Option<PathBuf>,
    /// Read a deployment's DynamoDB findings table instead (standard AWS
    /// credential chain).
    #[arg(long, value_name = "NAME")]
    table: Option<String>,
    /// Idle days that make an AI principal stale.
    #[arg(long, value_name = "N", default_value_t = 90)]
    idle_days: u32,
    #[command(flatten)]
    rules: RuleArgs,
    /// Write the page to FILE [default: standard output].
    #[arg(short = 'o', long, value_name = "FILE")]
    output: Option<PathBuf>,
}

#[derive(Args)]
struct DigestArgs {
    /// The window: findings whose event time is within this long (24h, 7d)
    /// or since this time (RFC 3339, YYYY-MM-DD).
    #[arg(long, value_name = "WHEN", default_value = "24h")]
    since: String,
    /// The local store to read [default: as for scan].
    #[arg(long, value_name = "PATH", conflicts_with = "table")]
    local: Option<PathBuf>,
    /// Read a deployment's DynamoDB findings table instead (standard AWS
    /// credential chain); idle principals and health then come from the
    /// deployment's own sweeper findings and metrics.
    #[arg(long, value_name = "NAME")]
    table: Option<String>,
    /// Idle days that make an AI principal stale.
    #[arg(long, value_name = "N", default_value_t = 90)]
    idle_days: u32,
    #[command(flatten)]
    rules: RuleArgs,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    format: DigestFormat,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum DigestFormat {
    /// Sections of text, for a terminal or an email.
    Text,
    /// One JSON document.
    Json,
}

#[derive(Args)]
struct ReplayArgs {
    /// s3://BUCKET/PREFIX (CloudTrail log keys under it are read).
    source: String,
    /// Only objects delivered on or after this date (YYYY-MM-DD, from the key).
    #[arg(long, value_name = "DATE")]
    since: Option<String>,
    /// The deployment's findings table.
    #[arg(long, value_name = "NAME")]
    table: String,
    /// The deployment's state table.
    #[arg(long, value_name = "NAME")]
    state_table: String,
    #[command(flatten)]
    rules: RuleArgs,
}

#[derive(Args)]
struct SimulateArgs {
    /// The scenario (see --list).
    #[arg(required_unless_present = "list")]
    scenario: Option<String>,
    /// List the scenarios and exit.
    #[arg(long)]
    list: bool,
    /// Output file [default: trailwarden-<scenario>.json.gz].
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// The account the activity happens in.
    #[arg(long, value_name = "ID", default_value = "111122223333")]
    account: String,
    /// The region.
    #[arg(long, value_name = "REGION", default_value = "us-east-1")]
    region: String,
    /// Benign background records to mix in.
    #[arg(long, value_name = "N", default_value_t = 2000)]
    background: usize,
    /// Random seed: the same seed (and --start) writes the same file
    /// [default: a new one each run, so each file has fresh event ids].
    #[arg(long, value_name = "S")]
    seed: Option<u64>,
    /// When the simulated activity starts (RFC 3339) [default: so that it
    /// ends a minute ago; with --seed, 2026-11-02T08:00:00Z].
    #[arg(long, value_name = "TIME")]
    start: Option<String>,
}

#[derive(Args)]
struct SweepArgs {
    /// The time to measure idleness from (RFC 3339 or YYYY-MM-DD) [default: now].
    #[arg(long, value_name = "TIME")]
    as_of: Option<String>,
    /// Idle days that make a principal stale.
    #[arg(long, value_name = "N", default_value_t = 90)]
    idle_days: u32,
    #[command(flatten)]
    rules: RuleArgs,
    #[command(flatten)]
    store: StoreArgs,
    /// Output format [default: table on a terminal, jsonl otherwise].
    #[arg(long, value_enum)]
    format: Option<output::Format>,
}

#[derive(Args)]
struct FindingsArgs {
    #[command(subcommand)]
    action: Option<FindingsAction>,
    /// The local store to read [default: as for scan].
    #[arg(long, value_name = "PATH", global = true, conflicts_with = "table")]
    local: Option<PathBuf>,
    /// Read a deployment's DynamoDB findings table instead (standard AWS
    /// credential chain).
    #[arg(long, value_name = "NAME", global = true)]
    table: Option<String>,
    /// Only findings whose event time is within this long (24h, 7d) or since
    /// this time (RFC 3339, YYYY-MM-DD) [default: every stored finding, in
    /// the local store and in a table alike].
    #[arg(long, value_name = "WHEN")]
    since: Option<String>,
    /// Only findings at or above this level.
    #[arg(long, value_name = "LEVEL")]
    level: Option<Level>,
    /// Only findings of this rule id.
    #[arg(long, value_name = "ID")]
    rule: Option<String>,
    /// Only findings of this principal ARN.
    #[arg(long, value_name = "ARN")]
    principal: Option<String>,
    /// Only findings in this account.
    #[arg(long, value_name = "ID")]
    account: Option<String>,
    /// Output format [default: table on a terminal, jsonl otherwise].
    #[arg(long, value_enum)]
    format: Option<output::Format>,
    #[command(flatten)]
    out: output::OutputArgs,
}

#[derive(Subcommand)]
enum FindingsAction {
    /// Show one finding in full.
    Show {
        /// The finding id.
        id: String,
    },
    /// Mark a finding acknowledged (or resolved).
    Ack {
        /// The finding id.
        id: String,
        /// Why, or what was done.
        #[arg(long)]
        note: Option<String>,
        /// Mark it resolved rather than acknowledged.
        #[arg(long)]
        resolve: bool,
    },
}

#[derive(Args)]
struct RuleArgs {
    /// Add Sigma rules from a file or directory (repeatable).
    #[arg(long = "rules", value_name = "PATH")]
    rules: Vec<PathBuf>,
    /// Do not load the built-in rule pack.
    #[arg(long)]
    no_builtin: bool,
    /// The organisation policy (facts for rule placeholders, suppressions,
    /// level overrides). YAML; see policy.example.yaml.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
}

#[derive(Args)]
struct StoreArgs {
    /// The local store file (state, ledger, findings), or `memory` for a
    /// store that is dropped at exit [default: $TRAILWARDEN_STORE, else
    /// ~/.local/share/trailwarden/trailwarden.db].
    #[arg(long, value_name = "PATH")]
    store: Option<PathBuf>,
}

impl StoreArgs {
    fn open(&self) -> anyhow::Result<SqliteStore> {
        let path = self.store.clone().unwrap_or_else(store::default_path);
        let store = if path.as_os_str() == "memory" {
            SqliteStore::in_memory()?
        } else {
            SqliteStore::open(&path)?
        };
        for note in store.notes() {
            say!("trailwarden: {note}");
        }
        Ok(store)
    }

    /// [`StoreArgs::open`] for commands that only read it: a store that is
    /// not there is an error (a mistyped path must not read as a quiet
    /// window), not a new empty one.
    fn open_existing(&self) -> anyhow::Result<SqliteStore> {
        let path = self.store.clone().unwrap_or_else(store::default_path);
        anyhow::ensure!(
            path.as_os_str() == "memory" || path.is_file(),
            "no findings store at {}: scan CloudTrail files into it first (trailwarden scan FILES{}), or name the store with --local",
            path.display(),
            match &self.store {
                Some(p) => format!(" --store {}", p.display()),
                None => String::new(),
            }
        );
        self.open()
    }
}

#[derive(Args)]
struct ScanArgs {
    /// Files, directories (read recursively; hidden files, and files that
    /// are neither gzip nor JSON, are skipped) or - for standard input.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    #[command(flatten)]
    rules: RuleArgs,
    /// Output format [default: table on a terminal, jsonl otherwise].
    #[arg(long, value_enum)]
    format: Option<output::Format>,
    #[command(flatten)]
    out: output::OutputArgs,
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
    /// Each rule set aside, and why, on a line of its own (by default
    /// the rules waiting for organisation facts are counted in one line).
    #[arg(long, short, conflicts_with = "quiet")]
    verbose: bool,
    /// Read files again even if the store's ledger says they were processed.
    #[arg(long)]
    rescan: bool,
    /// Threads that read and evaluate files [default: the number of
    /// cores]; with two per file or more, one file is split between them.
    /// Findings, counts and stored state are the same for any number.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    threads: Option<u16>,
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(Args)]
struct ValidateArgs {
    /// Rule files or directories [default: the built-in pack]. The
    /// built-in pack is loaded beside them (their correlations may refer
    /// to its rules), and only they are reported on.
    paths: Vec<PathBuf>,
    /// Exit 1 when a lint issue is found, as for a load problem.
    #[arg(long)]
    fail_on_issues: bool,
    /// Output format: text, or one JSON document.
    #[arg(long, value_enum, default_value = "text")]
    format: ValidateFormat,
    /// Validate the given files alone: do not load the built-in pack beside
    /// them (as scan's --no-builtin).
    #[arg(long)]
    no_builtin: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ValidateFormat {
    /// One line per problem and issue, then a count.
    Text,
    /// One JSON document: problems, issues, skipped rules, counts.
    Json,
}

#[derive(Subcommand)]
enum RulesCommand {
    /// List the loaded rules: id, level, kind, title, source.
    List(RuleArgs),
    /// Check rule files: load problems, and lint issues (missing metadata,
    /// duplicate ids and titles, unknown ATT&CK tags, the Sigma
    /// specification's constraints), each named with its file. Exits 1 on
    /// any problem (or, with --fail-on-issues, any issue).
    Validate(ValidateArgs),
    /// Run each rule's test events (`x.test.json` beside `x.yml`); rules
    /// without a test file are counted untested. Exits 1 on any failure.
    Test {
        /// Rule files or directories [default: the built-in pack, with the
        /// test events built in beside it].
        paths: Vec<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Scan(args) => scan(args),
        Command::Rules(RulesCommand::List(args)) => rules_list(args),
        Command::Rules(RulesCommand::Validate(args)) => rules_validate(args),
        Command::Rules(RulesCommand::Test { paths }) => rules_test(paths),
        Command::Sweep(args) => sweep(args),
        Command::Findings(args) => findings(args),
        Command::Simulate(args) => simulate(args),
        Command::Replay(args) => replay(args),
        Command::Digest(args) => digest(args),
        Command::Report(args) => report(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            say!("trailwarden: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn load_policy(args: &RuleArgs) -> anyhow::Result<Policy> {
    Ok(match &args.policy {
        // The error names the file and says why (the OS error once).
        Some(path) => Policy::from_file(path).map_err(|e| anyhow::anyhow!("{e}"))?,
        None => Policy::empty(),
    })
}

/// The built-in pack (unless `--no-builtin`) and the extra rule paths, with
/// the policy's facts: detection rules, correlations and baselines.
fn rule_set(args: &RuleArgs, policy: &Policy) -> RuleSet {
    let mut builder = RuleSetBuilder::with_policy(policy.clone());
    if !args.no_builtin {
        for (path, text) in builtin_rules() {
            builder.add_yaml(&format!("builtin:{path}"), text);
        }
    }
    for path in &args.rules {
        builder.add_path(path);
    }
    builder.build()
}

/// The fingerprint of the rules and policy a scan runs, and of the minimum
/// level (which decides what is stored): the text of every rule file it
/// loads, built-in or given, the policy file's text.
fn scan_fingerprint(args: &RuleArgs, min_level: Level) -> String {
    let mut texts: Vec<(&str, Vec<u8>)> = Vec::new();
    if !args.no_builtin {
        for (_, text) in builtin_rules() {
            texts.push(("rule", text.as_bytes().to_vec()));
        }
    }
    for path in &args.rules {
        match rule_files(path) {
            Ok(files) => {
                for file in files {
                    let text = std::fs::read(&file)
                        .unwrap_or_else(|e| format!("unreadable: {e}").into_bytes());
                    texts.push(("rule", text));
                }
            }
            Err(e) => texts.push(("rules unreadable", e.to_string().into_bytes())),
        }
    }
    if let Some(policy) = &args.policy {
        let text = std::fs::read(policy).unwrap_or_default();
        texts.push(("policy", text));
    }
    texts.push(("min-level", min_level.as_str().as_bytes().to_vec()));
    trailwarden::scan::fingerprint(texts.iter().map(|(k, t)| (*k, t.as_slice())))
}

/// What [`load_engine`] says of rules it sets aside.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Notes {
    /// Nothing.
    Quiet,
    /// Rules waiting for organisation facts in one line; others one a line.
    Summary,
    /// Every rule set aside, one a line, with why.
    Each,
}

/// Does `reason` (a [`trailwarden_engine::rules::RuleNote`]'s) say the
/// rule waits for a fact the policy does not give?
fn waits_for_facts(reason: &str) -> bool {
    // "not run: the policy gives no value for …", or a correlation over
    // such a rule ("not run: it refers to rules / a correlation that …").
    reason.starts_with("not run:")
}

/// The facts a "the policy gives no value for %a%, %b%" reason names, in
/// order, once each.
fn facts_named(reasons: impl Iterator<Item = String>) -> Vec<String> {
    let mut facts: Vec<String> = Vec::new();
    for reason in reasons {
        let Some(list) = reason.strip_prefix("not run: the policy gives no value for ") else {
            continue;
        };
        for name in list.split(", ") {
            let name = name.trim_matches('%');
            if !name.is_empty() && !facts.iter().any(|f| f == name) {
                facts.push(name.to_owned());
            }
        }
    }
    facts
}

/// Load the rules (correlations included), printing problems to stderr,
/// and the rules set aside as `notes` says.
fn load_engine(args: &RuleArgs, policy: &Policy, notes: Notes) -> anyhow::Result<Engine> {
    load_engine_counted(args, policy, notes).map(|(engine, _)| engine)
}

/// [`load_engine`], with how many rules wait for organisation facts the
/// policy does not give.
fn load_engine_counted(
    args: &RuleArgs,
    policy: &Policy,
    notes: Notes,
) -> anyhow::Result<(Engine, usize)> {
    let set = rule_set(args, policy);
    let not_run = set
        .notes
        .iter()
        .filter(|n| waits_for_facts(&n.reason))
        .count();
    for p in &set.problems {
        say!("trailwarden: rule problem: {p}");
    }
    let each = |n: &trailwarden_engine::rules::RuleNote| {
        say!(
            "trailwarden: rule skipped: {}: {:?}: {}",
            n.source,
            n.rule,
            n.reason
        );
    };
    match notes {
        Notes::Quiet => {}
        Notes::Each => set.notes.iter().for_each(each),
        Notes::Summary => {
            let (waiting, other): (Vec<_>, Vec<_>) =
                set.notes.iter().partition(|n| waits_for_facts(&n.reason));
            other.into_iter().for_each(each);
            if !waiting.is_empty() {
                let facts = facts_named(waiting.iter().map(|n| n.reason.clone()));
                let how = match &args.policy {
                    Some(path) => format!("add them to {}", path.display()),
                    None => {
                        "give them with --policy FILE (policy.example.yaml is a commented start)"
                            .to_owned()
                    }
                };
                say!(
                    "trailwarden: {} rule(s) not run: they need organisation facts the policy does not give ({}); \
                     {how}; -v lists each rule.",
                    waiting.len(),
                    facts
                        .iter()
                        .map(|f| format!("%{f}%"))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
        }
    }
    anyhow::ensure!(
        !set.rules.is_empty(),
        "no rules to run: {} rule problem(s); fix them or drop --no-builtin",
        set.problems.len()
    );
    Ok((Engine::from_set(set), not_run))
}

fn scan(args: ScanArgs) -> anyhow::Result<ExitCode> {
    let policy = load_policy(&args.rules)?;
    let notes = match (args.quiet, args.verbose) {
        (true, _) => Notes::Quiet,
        (false, true) => Notes::Each,
        (false, false) => Notes::Summary,
    };
    let engine = load_engine(&args.rules, &policy, notes)?;
    let mut store = args.store.open()?;
    let expanded = expand_inputs(&args.paths);
    let (inputs, missing) = (expanded.inputs, expanded.unreadable);
    if let Some(output) = &args.out.output {
        // Created (emptied) before anything is read: never an input (named,
        // or under a directory given: it may be a log, or an earlier run's
        // output) nor the store.
        let same = |p: &std::path::Path| {
            p == output
                || matches!((p.canonicalize(), output.canonicalize()), (Ok(a), Ok(b)) if a == b)
        };
        let input = inputs
            .iter()
            .any(|i| matches!(i, Input::File(p) if same(p)));
        if input || same(std::path::Path::new(store.path())) {
            say!(
                "trailwarden: error: --output {} is {}; write the findings outside the files and directories scanned",
                terminal::escape(&output.display().to_string()),
                if input { "one of the inputs" } else { "the store" }
            );
            return Ok(ExitCode::from(2));
        }
    }
    for (path, reason) in &missing {
        say!("trailwarden: {path}: unreadable: {reason}");
    }
    for dir in &expanded.empty_dirs {
        say!("trailwarden: {dir}: no files in this directory");
    }
    let not_logs = expanded.not_logs;
    if inputs.is_empty() {
        for (path, reason) in &not_logs {
            say!("trailwarden: {path}: skipped: {reason}");
        }
        say!("trailwarden: error: no input could be read");
        return Ok(ExitCode::from(2));
    }
    let format = args.out.format(args.format);
    let mut writer =
        FindingWriter::new(args.out.open()?, format).with_style(args.out.table_style());
    let reader = ReaderOptions {
        max_object_bytes: args.max_object_bytes,
        ..ReaderOptions::default()
    };
    let store_name = store.path().to_owned();
    let stores: &mut dyn Stores = &mut store;
    let threads = match args.threads {
        Some(n) => usize::from(n),
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let progress = progress_bar(&inputs, args.quiet);
    let mut scanner = Scanner::new(&engine, reader, args.min_level, policy, stores)
        .rescan(args.rescan)
        .fingerprint(scan_fingerprint(&args.rules, args.min_level))
        .threads(threads);
    if !progress.is_hidden() {
        // The bar moves as bytes are read, within a large file too.
        let bar = progress.clone();
        scanner = scanner.progress(std::sync::Arc::new(move |n| bar.inc(n)));
    }
    // Paths that do not exist are inputs that could not be read.
    scanner.stats.unopened += missing.len() as u64;
    scanner.stats.unreadable.extend(missing);
    // Files under a directory that are not logs: skipped, said once, in
    // the summary.
    scanner.stats.objects += not_logs.len() as u64;
    let tried = inputs.len() + scanner.stats.unreadable.len();
    let input_count = tried + not_logs.len();
    scanner.stats.skipped.extend(not_logs);
    let started = Instant::now();
    let mut write_error = None;
    let mut emit = |f| {
        if write_error.is_none() {
            if let Err(e) = writer.push_encoded(f) {
                write_error = Some(e);
            }
        }
    };
    scanner.scan(&inputs, &mut emit, &mut |input, failure| {
        let name = input.name();
        progress.set_message(terminal::escape(&name).into_owned());
        match failure {
            Some(failure @ ObjectFailure::Store(_)) => {
                progress.suspend(|| say!("trailwarden: {name}: not stored: {failure}"))
            }
            Some(failure) => {
                progress.suspend(|| say!("trailwarden: {name}: unreadable: {failure}"))
            }
            None => {}
        }
    })?;
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
        say!("--");
        say!(
            "rules: {} ({} dispatched by eventName/eventSource, {} tried on every record), {} correlations",
            engine.rules().len(),
            engine.rules().len() - unrouted,
            unrouted,
            engine.correlations().len()
        );
        print_summary(stats, input_count, started.elapsed().as_secs_f64());
        if stats.reread > 0 {
            say!(
                "re-read: {} file(s) read before with other rules or policy",
                stats.reread
            );
        }
        if stats.already_done > 0 {
            say!(
                "already processed: {} file(s) skipped, as recorded in {store_name} (use --rescan to read them again)",
                stats.already_done
            );
        }
    }
    // Nothing read, whatever --fail-on says: every input unreadable and not
    // one record evaluated (a file that broke off after some records was read).
    // (Files skipped as not logs were never tried.)
    if stats.unreadable.len() == tried && stats.records == 0 {
        say!("trailwarden: error: none of the {tried} input(s) could be read as CloudTrail");
        return Ok(ExitCode::from(2));
    }
    // The store refused writes: the run did not complete, whatever
    // --fail-on says (those inputs are read again next time).
    if !stats.not_stored.is_empty() {
        say!(
            "trailwarden: error: {} input(s) could not be stored; they are not marked done and will be read again next time",
            stats.not_stored.len()
        );
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
    let not_stored = match stats.not_stored.len() {
        0 => String::new(),
        n => format!(", {n} not stored"),
    };
    say!(
        "files: {inputs} ({} read, {} skipped, {} unreadable, {} already processed{not_stored})",
        stats.objects - stats.skipped.len() as u64,
        stats.skipped.len(),
        stats.unreadable.len(),
        stats.already_done
    );
    for (name, reason) in &stats.skipped {
        say!("  skipped {name}: {reason}");
    }
    // Unreadable and unstored files were named, with the reason, as they
    // were met.
    if !stats.unreadable.is_empty() || !stats.not_stored.is_empty() {
        say!("  (unreadable and not stored files are named above, each with its reason)");
    }
    say!(
        "records: {} evaluated, {} rejected",
        stats.records,
        stats.rejected
    );
    for r in &stats.reject_samples {
        say!(
            "  {}: record {} (byte {}): {}",
            r.object,
            r.reject.index,
            r.reject.offset,
            r.reject.reason
        );
    }
    if stats.rejected > stats.reject_samples.len() as u64 {
        say!(
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
    say!(
        "findings: {}{}",
        stats.total_findings(),
        if by_level.is_empty() {
            String::new()
        } else {
            format!(" ({})", by_level.join(", "))
        }
    );
    for (reason, n) in &stats.suppressed {
        say!("  {n} suppressed by policy: {reason}");
    }
    let secs = secs.max(1e-9);
    say!(
        "throughput: {:.0} records/s, {:.1} MB/s decompressed, {:.2}s",
        stats.records as f64 / secs,
        stats.bytes as f64 / secs / 1e6,
        secs
    );
}

/// One field of a tab-separated line, escaped for a terminal (tabs too).
fn esc(s: &str) -> std::borrow::Cow<'_, str> {
    terminal::escape(s)
}

fn rules_list(args: RuleArgs) -> anyhow::Result<ExitCode> {
    let policy = load_policy(&args)?;
    let set = rule_set(&args, &policy);
    let mut out = io::BufWriter::new(terminal::stdout());
    writeln!(out, "ID\tLEVEL\tKIND\tTITLE\tSOURCE")?;
    for r in &set.rules {
        let kind = match (&r.baseline, r.generate) {
            (Some(b), _) => match b.kind {
                trailwarden_engine::BaselineKind::FirstSeen => "first_seen",
                trailwarden_engine::BaselineKind::Dormant => "dormant",
            },
            (None, true) => "detection",
            (None, false) => "detection (feeds a correlation)",
        };
        writeln!(
            out,
            "{}\t{}\t{kind}\t{}\t{}",
            esc(&r.meta.id),
            r.meta.level,
            esc(&r.meta.title),
            esc(&r.meta.source)
        )?;
    }
    for c in &set.correlations {
        let kind = format!("{:?}", c.kind).to_lowercase();
        // A correlation another refers to without `generate: true` reports
        // nothing of its own (chained correlations).
        let feeds = if c.generate {
            ""
        } else {
            " (feeds a correlation)"
        };
        writeln!(
            out,
            "{}\t{}\tcorrelation ({kind}){feeds}\t{}\t{}",
            esc(&c.meta.id),
            c.meta.level,
            esc(&c.meta.title),
            esc(&c.meta.source)
        )?;
    }
    for n in &set.notes {
        writeln!(
            out,
            "-\t-\tskipped: {}\t{}\t{}",
            esc(&n.reason),
            esc(&n.rule),
            esc(&n.source)
        )?;
    }
    out.flush()?;
    for p in &set.problems {
        say!("trailwarden: rule problem: {p}");
    }
    Ok(ExitCode::SUCCESS)
}

fn rules_validate(args: ValidateArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        !(args.paths.is_empty() && args.no_builtin),
        "nothing to validate: give rule files or directories, or drop --no-builtin"
    );
    let mut builder = RuleSetBuilder::new();
    // The texts linted: those the builder reads (a file it cannot read is
    // a load problem).
    let mut texts: Vec<(String, String)> = Vec::new();
    // With paths given, the built-in pack is loaded beside them, as a scan
    // loads it (their correlations may refer to its rules), and linted with
    // them (an id or title they repeat), but not reported on.
    let mut pack: HashSet<String> = HashSet::new();
    if !args.no_builtin {
        for (path, text) in builtin_rules() {
            let source = format!("builtin:{path}");
            builder.add_yaml(&source, text);
            texts.push((source.clone(), text.to_owned()));
            if !args.paths.is_empty() {
                pack.insert(source);
            }
        }
    }
    for path in &args.paths {
        builder.add_path(path);
        for file in rule_files(path).unwrap_or_default() {
            if let Ok(text) = std::fs::read_to_string(&file) {
                texts.push((file.display().to_string(), text));
            }
        }
    }
    let set = builder.build();
    let reported = |source: &str| !pack.contains(source);
    let problems: Vec<_> = set
        .problems
        .iter()
        .filter(|p| reported(&p.source))
        .collect();
    let notes: Vec<_> = set.notes.iter().filter(|n| reported(&n.source)).collect();
    let issues: Vec<_> = trailwarden::lint::lint(&texts)
        .into_iter()
        .filter(|i| reported(&i.file))
        .collect();
    let rules = set
        .rules
        .iter()
        .filter(|r| reported(&r.meta.source))
        .count();
    let correlations = set
        .correlations
        .iter()
        .filter(|c| reported(&c.meta.source))
        .count();
    let failed = !problems.is_empty() || (args.fail_on_issues && !issues.is_empty());
    let mut out = io::BufWriter::new(terminal::stdout());
    match args.format {
        ValidateFormat::Json => {
            let doc = serde_json::json!({
                "problems": problems.iter().map(|p| serde_json::json!({
                    "file": p.source, "rule": p.rule, "reason": p.reason,
                })).collect::<Vec<_>>(),
                "issues": issues,
                "skipped": notes.iter().map(|n| serde_json::json!({
                    "file": n.source, "rule": n.rule, "reason": n.reason,
                })).collect::<Vec<_>>(),
                "rules": rules,
                "correlations": correlations,
            });
            writeln!(out, "{}", json_escape(&serde_json::to_string_pretty(&doc)?))?;
        }
        ValidateFormat::Text => {
            for p in &problems {
                tell!(out, "problem: {p}")?;
            }
            for i in &issues {
                let rule = i
                    .rule
                    .as_deref()
                    .map(|r| format!(" {r}:"))
                    .unwrap_or_default();
                tell!(
                    out,
                    "{}: {}:{rule} {} [{}]",
                    i.severity,
                    i.file,
                    i.message,
                    i.check
                )?;
            }
            for n in &notes {
                tell!(out, "skipped: {}: {:?}: {}", n.source, n.rule, n.reason)?;
            }
            tell!(
                out,
                "{rules} rules and {correlations} correlations valid, {} problems, {} issues, {} skipped",
                problems.len(),
                issues.len(),
                notes.len()
            )?;
        }
    }
    out.flush()?;
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The built-in pack and its test events, written out for
/// [`ruletest::RuleTester`] (which reads files) to a private temporary
/// directory (`tempfile`: a random name, created exclusively, mode 0700),
/// removed when dropped.
struct BuiltinPackFiles(tempfile::TempDir);

impl BuiltinPackFiles {
    fn write() -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("trailwarden-builtin-rules-")
            .tempdir()
            .context("creating a temporary directory for the built-in pack (set TMPDIR to a writable one)")?;
        let texts = builtin_rules().chain(trailwarden::builtin::builtin_rule_tests());
        for (rel, text) in texts {
            let path = dir.path().join(rel);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("creating {}", parent.display()))?;
            }
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(BuiltinPackFiles(dir))
    }

    fn path(&self) -> &std::path::Path {
        self.0.path()
    }

    /// `text` with the files' paths as the built-in pack names them
    /// (`builtin:dir/x.yml`, `/` on every system, as `rules list` does).
    fn name(&self, text: &str) -> String {
        let root = format!("{}{}", self.path().display(), std::path::MAIN_SEPARATOR);
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(at) = rest.find(&root) {
            out.push_str(&rest[..at]);
            out.push_str("builtin:");
            rest = &rest[at + root.len()..];
            // The path under the pack, up to where it ends (a space, a
            // colon, a quote or the end), with `/` between its parts.
            let end = rest
                .find(|c: char| c.is_whitespace() || c == ':' || c == '"' || c == ')')
                .unwrap_or(rest.len());
            out.push_str(&rest[..end].replace(std::path::MAIN_SEPARATOR, "/"));
            rest = &rest[end..];
        }
        out.push_str(rest);
        out
    }
}

fn rules_test(paths: Vec<PathBuf>) -> anyhow::Result<ExitCode> {
    let builtin = if paths.is_empty() {
        Some(BuiltinPackFiles::write()?)
    } else {
        None
    };
    let paths = match &builtin {
        Some(b) => vec![b.path().to_path_buf()],
        None => paths,
    };
    let name = |p: &str| match &builtin {
        Some(b) => b.name(p),
        None => p.to_owned(),
    };
    let mut files = Vec::new();
    for path in &paths {
        let found = rule_files(path).map_err(|e| {
            anyhow::anyhow!("{}", name(&format!("reading {}: {e}", path.display())))
        })?;
        files.extend(found);
    }
    // Every file's events run against all the rules given, as a scan with
    // `--rules PATHS --no-builtin` loads them.
    let mut tester = ruletest::RuleTester::new(files);
    let files = tester.files().to_vec();
    let mut out = io::BufWriter::new(terminal::stdout());
    let (mut passed, mut failed, mut untested) = (0, 0, 0);
    for file in files {
        let mut report = tester.run(&file);
        report.rule_file = name(&report.rule_file);
        report.error = report.error.map(|e| name(&e));
        if report.untested {
            untested += 1;
            tell!(
                out,
                "untested  {} (no {} beside it)",
                report.rule_file,
                ruletest::test_file_for(&file)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            )?;
        } else if report.passed() {
            passed += 1;
            tell!(
                out,
                "ok    {} ({} cases)",
                report.rule_file,
                report.cases.len()
            )?;
        } else {
            failed += 1;
            tell!(out, "FAIL  {}", report.rule_file)?;
            if let Some(e) = &report.error {
                tell!(out, "      {e}")?;
            }
            for c in report.cases.iter().filter(|c| !c.passed()) {
                tell!(
                    out,
                    "      case {:?}: expected {} finding(s), got {}",
                    c.name,
                    c.expected,
                    c.got
                )?;
            }
        }
        // A line at a time on a terminal or a pipe, as each file is done.
        out.flush()?;
    }
    tell!(out, "{passed} passed, {failed} failed, {untested} untested")?;
    out.flush()?;
    // Every built-in rule has test events (rules/README.md): one without
    // them (or a build that embedded none) is a failure there.
    let untested_fails = builtin.is_some() && (untested > 0 || passed + failed == 0);
    if untested_fails {
        say!("trailwarden: every built-in rule needs test events; {untested} have none");
    }
    Ok(if failed == 0 && !untested_fails {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Parse a point in time: RFC 3339, YYYY-MM-DD, or a duration back from now (24h, 7d).
/// A time option as ms since the epoch: a duration back from `now_ms`
/// (24h, 7d), a date (YYYY-MM-DD) or an RFC 3339 time; before year 1 is an
/// error.
fn parse_when(text: &str, now_ms: i64) -> anyhow::Result<i64> {
    let ms = match trailwarden_engine::rules::parse_duration_ms(text) {
        Some(back) => now_ms.checked_sub(back),
        None => {
            let full = if text.len() == 10 {
                format!("{text}T00:00:00Z")
            } else {
                text.to_owned()
            };
            // As CloudTrail's times are read (a zone may be left out), but
            // an offset of more than 23:59 is not one.
            let offset_ok = match full.len().checked_sub(6).map(|i| full.split_at(i)) {
                Some((_, zone)) if zone.starts_with(['+', '-']) && zone.as_bytes()[3] == b':' => {
                    matches!(
                        (zone[1..3].parse::<u32>(), zone[4..].parse::<u32>()),
                        (Ok(h), Ok(m)) if h <= 23 && m <= 59
                    )
                }
                _ => true,
            };
            trailwarden_cloudtrail::parse_event_time(&full).filter(|_| offset_ok)
        }
    };
    let ms = ms
        .filter(|ms| chrono::DateTime::from_timestamp_millis(*ms).is_some_and(|t| chrono::Datelike::year(&t) >= 1))
        .with_context(|| {
            format!("{text:?} is not a time: use RFC 3339 (2026-11-02T08:00:00Z), a date (2026-11-02) or a duration (24h, 7d)")
        })?;
    Ok(ms)
}

/// A window's `--since` (`digest`, `report`) as [`parse_when`] reads it,
/// as RFC 3339 text; a time after `now_ms` is an error: a window starting
/// in the future has no end (`findings --since` takes any time, to list
/// findings dated in the future).
fn parse_since(text: &str, now_ms: i64) -> anyhow::Result<String> {
    let ms = parse_when(text, now_ms)?;
    anyhow::ensure!(
        ms <= now_ms,
        "--since {text:?} is in the future: name a time before now"
    );
    Ok(format_millis(ms))
}

fn format_millis(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

fn default_format() -> output::Format {
    if io::stdout().is_terminal() {
        output::Format::Table
    } else {
        output::Format::Jsonl
    }
}

fn sweep(args: SweepArgs) -> anyhow::Result<ExitCode> {
    let policy = load_policy(&args.rules)?;
    let engine = load_engine(&args.rules, &policy, Notes::Quiet)?;
    let mut store = args.store.open()?;
    let now = chrono::Utc::now().timestamp_millis();
    let as_of = match &args.as_of {
        Some(t) => parse_when(t, now)?,
        None => now,
    };
    let idle_ms = i64::from(args.idle_days) * 86_400_000;
    let stale = trailwarden_engine::sweep::stale_principals(&engine, &mut store, as_of, idle_ms)?;
    let mut writer = FindingWriter::new(
        io::BufWriter::new(terminal::stdout()),
        args.format.unwrap_or_else(default_format),
    );
    for f in &stale {
        trailwarden_engine::FindingStore::put_finding(&mut store, f)?;
    }
    let n = stale.len();
    for f in stale {
        writer.push(f)?;
    }
    writer.finish()?;
    say!(
        "{n} AI principal(s) idle for {} days or more as of {} (store {})",
        args.idle_days,
        format_millis(as_of),
        store.path()
    );
    Ok(ExitCode::SUCCESS)
}

/// Stored findings out: the table shows the findings, OCSF the findings
/// with their status (`status_id`); JSON keeps the bookkeeping (times seen,
/// status) too. `parts` gives a row's finding and status.
fn print_rows<T: serde::Serialize>(
    destination: &output::OutputArgs,
    format: Option<output::Format>,
    rows: Vec<T>,
    parts: impl Fn(T) -> (trailwarden_engine::Finding, String),
) -> anyhow::Result<()> {
    let format = destination.format(format);
    let mut out = destination.open()?;
    if format == output::Format::Table {
        let mut writer = FindingWriter::new(out, format).with_style(destination.table_style());
        for row in rows {
            writer.push(parts(row).0)?;
        }
        writer.finish()?;
        return Ok(());
    }
    if format == output::Format::Ocsf {
        for row in rows {
            let (finding, status) = parts(row);
            let mut event = trailwarden_engine::ocsf::detection_finding(&finding);
            trailwarden_engine::ocsf::set_status(&mut event, &status);
            writeln!(out, "{}", json_escape(&serde_json::to_string(&event)?))?;
        }
        out.flush()?;
        return Ok(());
    }
    if format == output::Format::Json {
        writeln!(
            out,
            "{}",
            json_escape(&serde_json::to_string_pretty(&rows)?)
        )?;
    } else {
        for row in &rows {
            writeln!(out, "{}", json_escape(&serde_json::to_string(row)?))?;
        }
    }
    out.flush()?;
    Ok(())
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn findings(args: FindingsArgs) -> anyhow::Result<ExitCode> {
    if matches!(args.action, Some(FindingsAction::Ack { .. })) && args.out.output.is_some() {
        say!(
            "trailwarden: error: --output applies to the list of findings and to show, not to ack"
        );
        return Ok(ExitCode::from(2));
    }
    if let Some(table) = args.table.clone() {
        return runtime()?.block_on(findings_in_table(args, table));
    }
    let store_args = StoreArgs {
        store: args.local.clone(),
    };
    let mut store = store_args.open()?;
    match args.action {
        Some(FindingsAction::Show { id }) => {
            let rows = store.query_findings(&store::FindingFilter {
                id: Some(id.clone()),
                ..Default::default()
            })?;
            let Some(row) = rows.first() else {
                say!("trailwarden: no finding {id} in {}", store.path());
                return Ok(ExitCode::from(1));
            };
            let mut out = args.out.open()?;
            writeln!(out, "{}", json_escape(&serde_json::to_string_pretty(row)?))?;
            out.flush()?;
            Ok(ExitCode::SUCCESS)
        }
        Some(FindingsAction::Ack { id, note, resolve }) => {
            let status = if resolve { "resolved" } else { "acknowledged" };
            if store.set_status(&id, status, note.as_deref())? {
                say!("{id}: {status}");
                Ok(ExitCode::SUCCESS)
            } else {
                say!("trailwarden: no finding {id} in {}", store.path());
                Ok(ExitCode::from(1))
            }
        }
        None => {
            let now = chrono::Utc::now().timestamp_millis();
            let since = match &args.since {
                Some(s) => Some(format_millis(parse_when(s, now)?)),
                None => None,
            };
            let rows = store.query_findings(&store::FindingFilter {
                since,
                min_level: args.level,
                rule: args.rule,
                principal: args.principal,
                account: args.account,
                id: None,
            })?;
            let n = rows.len();
            print_rows(&args.out, args.format, rows, |r| (r.finding, r.status))?;
            say!("{n} finding(s) in {}", store.path());
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn simulate(args: SimulateArgs) -> anyhow::Result<ExitCode> {
    use trailwarden::simulate::{self, SimOptions, SCENARIOS};
    if args.list {
        let mut out = terminal::stdout();
        for (name, description) in SCENARIOS {
            tell!(out, "{name:<32}{description}")?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let scenario = args.scenario.expect("required by clap");
    // Without a seed, a fresh one: new event ids every run (a smoke test
    // run twice finds its findings twice), reported so the file can be
    // written again.
    let seed = args.seed.unwrap_or_else(|| fastrand::u64(..));
    let mut options = SimOptions {
        account: args.account,
        region: args.region,
        seed,
        background: args.background,
        ..SimOptions::default()
    };
    anyhow::ensure!(
        options.account.len() == 12 && options.account.bytes().all(|c| c.is_ascii_digit()),
        "--account {:?} is not a 12-digit AWS account id",
        options.account
    );
    if let Some(start) = &args.start {
        let ms = parse_when(start, 0)?;
        options.start = chrono::DateTime::from_timestamp_millis(ms)
            .with_context(|| format!("--start {start:?} is out of range"))?;
    } else if args.seed.is_none() {
        // Current times: the activity ends a minute ago (CloudTrail never
        // logs the future), whole seconds.
        let span = match simulate::span(&scenario, &options) {
            Ok(span) => span,
            Err(e) => {
                say!("trailwarden: error: {e}");
                return Ok(ExitCode::from(2));
            }
        };
        let end = chrono::Utc::now() - chrono::Duration::minutes(1);
        let start = end - span;
        options.start = chrono::DateTime::from_timestamp(start.timestamp(), 0).unwrap_or(start);
    }
    let output = args
        .output
        .unwrap_or_else(|| PathBuf::from(format!("trailwarden-{scenario}.json.gz")));
    let started = Instant::now();
    // A bar for a background that takes more than a moment to write.
    let bar = if options.background >= 100_000 && io::stderr().is_terminal() {
        let bar = ProgressBar::new(options.background as u64);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {human_pos}/{human_len} records (eta {eta})",
            )
            .expect("valid template"),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let written = simulate::write_counted(&scenario, &options, &output, |n| bar.set_position(n));
    bar.finish_and_clear();
    match written {
        Ok(records) => {
            say!(
                "wrote {records} records ({scenario}, {} background) to {} in {:.1}s \
                 (the same again: --seed {seed} --start {})",
                options.background,
                output.display(),
                started.elapsed().as_secs_f64(),
                options
                    .start
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(simulate::SimError::UnknownScenario(e)) => {
            say!("trailwarden: error: {e}");
            Ok(ExitCode::from(2))
        }
        Err(e) => Err(anyhow::Error::new(e).context(format!("writing {}", output.display()))),
    }
}

async fn findings_in_table(args: FindingsArgs, table: String) -> anyhow::Result<ExitCode> {
    use trailwarden::cloud;
    let sdk = trailwarden_aws::sdk_config().await;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    match args.action {
        Some(FindingsAction::Show { id }) => match cloud::get(&client, &table, &id)
            .await
            .map_err(anyhow::Error::msg)?
        {
            Some(row) => {
                let mut out = args.out.open()?;
                writeln!(out, "{}", json_escape(&serde_json::to_string_pretty(&row)?))?;
                out.flush()?;
                Ok(ExitCode::SUCCESS)
            }
            None => {
                say!("trailwarden: no finding {id} in table {table}");
                Ok(ExitCode::from(1))
            }
        },
        Some(FindingsAction::Ack { id, note, resolve }) => {
            let status = if resolve { "resolved" } else { "acknowledged" };
            if cloud::set_status(&client, &table, &id, status, note.as_deref())
                .await
                .map_err(anyhow::Error::msg)?
            {
                say!("{id}: {status}");
                Ok(ExitCode::SUCCESS)
            } else {
                say!("trailwarden: no finding {id} in table {table}");
                Ok(ExitCode::from(1))
            }
        }
        None => {
            let now = chrono::Utc::now();
            // As locally: every stored finding unless --since says.
            let since = match args.since.as_deref() {
                Some(when) => format_millis(parse_when(when, now.timestamp_millis())?),
                // The first time a table can hold (records before 1970
                // are findings too).
                None => "0001-01-01T00:00:00Z".to_owned(),
            };
            let rows = cloud::query(
                &client,
                &table,
                &cloud::TableQuery {
                    since,
                    min_level: args.level,
                    rule: args.rule,
                    principal: args.principal,
                    account: args.account,
                },
                now,
            )
            .await
            .map_err(anyhow::Error::msg)?;
            let n = rows.len();
            print_rows(&args.out, args.format, rows, |r| (r.finding, r.status))?;
            say!("{n} finding(s) in table {table}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn digest(args: DigestArgs) -> anyhow::Result<ExitCode> {
    let window = Window {
        since: Some(&args.since),
        local: &args.local,
        table: &args.table,
        idle_days: args.idle_days,
        rules: &args.rules,
    };
    let digest = window.load()?.digest(None);
    let mut out = io::BufWriter::new(terminal::stdout());
    match args.format {
        DigestFormat::Text => write!(out, "{}", digest.to_text())?,
        DigestFormat::Json => writeln!(
            out,
            "{}",
            json_escape(&serde_json::to_string_pretty(&digest)?)
        )?,
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn report(args: ReportArgs) -> anyhow::Result<ExitCode> {
    let window = Window {
        since: args.since.as_deref(),
        local: &args.local,
        table: &args.table,
        idle_days: args.idle_days,
        rules: &args.rules,
    };
    // `-o -`: standard output, as without -o.
    let output = args.output.as_ref().filter(|p| p.as_os_str() != "-");
    if let Some(output) = output {
        let same =
            |a: &std::path::Path, b: &std::path::Path| match (a.canonicalize(), b.canonicalize()) {
                (Ok(a), Ok(b)) => a == b,
                _ => false,
            };
        // The store read, and the default one (read with --table too).
        let stores = [window.store_path(), Some(store::default_path())];
        if stores.iter().flatten().any(|store| same(output, store)) {
            anyhow::bail!(
                "--output {} is the findings store: name another file for the report",
                output.display()
            );
        }
    }
    let loaded = window.load()?;
    let now = chrono::Utc::now().timestamp_millis();
    // Findings dated after this moment cannot be real events: they are
    // listed on their own, not drawn or counted in the window.
    let later = |f: &trailwarden_engine::Finding| {
        trailwarden_cloudtrail::parse_event_time(&f.event_time).is_some_and(|t| t > now)
    };
    let (future, present): (Vec<_>, Vec<_>) =
        loaded.findings.iter().cloned().partition(|(f, _)| later(f));
    let digest = loaded.digest(Some(&|f| !later(f)));
    let meta = trailwarden::report::Meta {
        generated: format_millis(now),
        source: loaded.source.clone(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        whole_store: args.since.is_none(),
        not_run: loaded.not_run,
        policy: args.rules.policy.as_ref().map(|p| p.display().to_string()),
        future,
        show: loaded.show.clone(),
    };
    let page = trailwarden::report::render(&digest, &present, &meta);
    match output {
        Some(path) => {
            write_whole(path, page.as_bytes())?;
            say!(
                "report: {} finding(s) from {} to {} written to {}",
                digest.total,
                digest.since,
                digest.until,
                path.display()
            );
        }
        None => {
            let mut out = terminal::stdout();
            out.write_all(page.as_bytes())?;
            out.flush()?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Write `bytes` to `path` whole or not at all: into a new file beside it
/// (a fresh name, created exclusively, so no planted link is followed),
/// then renamed over it; the new file is removed when anything fails. A
/// page cut short would look like a quiet window.
fn write_whole(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    anyhow::ensure!(
        !path.is_dir(),
        "cannot write to {}: it is a directory; name a file (report.html)",
        path.display()
    );
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => std::path::Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".trailwarden-report")
        .tempfile_in(dir)
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.flush())
        .with_context(|| format!("cannot write the report to {}", path.display()))?;
    // A page to keep and send on: readable as a file the user writes
    // would be (the temporary file is private), or as the one it replaces.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).map_or(0o644, |m| m.permissions().mode() & 0o777);
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("cannot write the report to {}", path.display()))?;
    }
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot write the report to {}", path.display()))?;
    Ok(())
}

/// The findings of a window, from the local store or a deployment's table,
/// as `digest` and `report` read them.
struct Window<'a> {
    /// `--since` (`None`: every stored finding).
    since: Option<&'a str>,
    local: &'a Option<PathBuf>,
    table: &'a Option<String>,
    idle_days: u32,
    rules: &'a RuleArgs,
}

/// What a [`Window`] read.
struct Loaded {
    engine: Engine,
    findings: Vec<trailwarden::digest::Row>,
    idle: Vec<trailwarden::digest::Row>,
    idle_days: Option<u32>,
    health: Option<trailwarden::digest::Health>,
    show: String,
    /// The window's start (RFC 3339); `None`: every stored finding.
    since: Option<String>,
    /// The window's end: now.
    until: String,
    /// Where the findings came from, in words.
    source: String,
    /// Rules not run: the policy does not give their facts.
    not_run: usize,
}

/// Which findings of a window a digest sums up.
type Keep<'k> = &'k dyn Fn(&trailwarden_engine::Finding) -> bool;

impl Loaded {
    /// The digest of the findings `keep` keeps (all: `None`). Without
    /// --since, the window is the span of those findings.
    fn digest(&self, keep: Option<Keep<'_>>) -> trailwarden::digest::Digest {
        let findings: Vec<trailwarden::digest::Row> = match keep {
            Some(keep) => self
                .findings
                .iter()
                .filter(|(f, _)| keep(f))
                .cloned()
                .collect(),
            None => self.findings.clone(),
        };
        let times = || findings.iter().map(|(f, _)| &f.event_time);
        let (since, until) = match (&self.since, times().min(), times().max()) {
            (Some(since), _, _) => (since.clone(), self.until.clone()),
            (None, Some(first), Some(last)) => (first.clone(), last.clone()),
            (None, _, _) => ("-".to_owned(), self.until.clone()),
        };
        trailwarden::digest::Digest::build(
            &findings,
            &self.engine,
            &self.idle,
            self.idle_days,
            self.health.clone(),
            since,
            until,
            &self.show,
        )
    }
}

impl Window<'_> {
    /// The local store's path, when the window reads one.
    fn store_path(&self) -> Option<PathBuf> {
        if self.table.is_some() {
            return None;
        }
        match self.local {
            Some(path) => Some(path.clone()),
            None => Some(store::default_path()),
        }
    }

    /// Read the window's findings (with their stored status), the idle
    /// principals and the store's health.
    fn load(&self) -> anyhow::Result<Loaded> {
        use trailwarden::digest::Health;
        let args = self;
        let policy = load_policy(args.rules)?;
        let (engine, not_run) = load_engine_counted(args.rules, &policy, Notes::Quiet)?;
        let now = chrono::Utc::now();
        // Without --since, from the first time a store can hold.
        let query_since = match args.since {
            Some(when) => parse_since(when, now.timestamp_millis())?,
            None => "0001-01-01T00:00:00Z".to_owned(),
        };
        let until = format_millis(now.timestamp_millis());
        let sweep_rule = trailwarden_engine::sweep::SWEEP_RULE_ID;
        let (findings, idle, idle_days, health, show) = match &args.table {
            Some(table) => {
                let query = |since: &str, rule: Option<&str>| trailwarden::cloud::TableQuery {
                    since: since.to_owned(),
                    min_level: None,
                    rule: rule.map(str::to_owned),
                    principal: None,
                    account: None,
                };
                let (rows, idle) = runtime()?.block_on(async {
                    let sdk = trailwarden_aws::sdk_config().await;
                    let client = aws_sdk_dynamodb::Client::new(&sdk);
                    let rows =
                        trailwarden::cloud::query(&client, table, &query(&query_since, None), now)
                            .await
                            .map_err(anyhow::Error::msg)?;
                    // The deployment's sweeper stores each idle principal once,
                    // at its last activity's time: all of them, whenever.
                    let idle = trailwarden::cloud::query(
                        &client,
                        table,
                        &query("0001-01-01T00:00:00Z", Some(sweep_rule)),
                        now,
                    )
                    .await
                    .map_err(anyhow::Error::msg)?;
                    anyhow::Ok((rows, idle))
                })?;
                let row = |r: trailwarden::cloud::TableFinding| (r.finding, Some(r.status));
                let findings: Vec<_> = rows
                    .into_iter()
                    .filter(|r| r.finding.rule_id != sweep_rule)
                    .map(row)
                    .collect();
                let idle: Vec<_> = idle.into_iter().map(row).collect();
                let show = format!("trailwarden findings --table {table} show");
                (findings, idle, None, None, show)
            }
            None => {
                let store_args = StoreArgs {
                    store: args.local.clone(),
                };
                let mut store = store_args.open_existing()?;
                let rows = store.query_findings(&store::FindingFilter {
                    since: args.since.map(|_| query_since.clone()),
                    ..Default::default()
                })?;
                let findings: Vec<_> = rows
                    .into_iter()
                    .map(|r| (r.finding, Some(r.status)))
                    .collect();
                let idle_ms = i64::from(args.idle_days) * 86_400_000;
                let idle = trailwarden_engine::sweep::stale_principals(
                    &engine,
                    &mut store,
                    now.timestamp_millis(),
                    idle_ms,
                )?;
                // Found by this run's sweep, not stored: no status, no show.
                let idle: Vec<_> = idle.into_iter().map(|f| (f, None)).collect();
                let (objects, records, last_object_at) = store.ledger_since(&query_since)?;
                let health = Health {
                    objects,
                    records,
                    last_object_at,
                };
                let show = match &args.local {
                    Some(path) => format!("trailwarden findings --local {} show", path.display()),
                    None => "trailwarden findings show".to_owned(),
                };
                (findings, idle, Some(args.idle_days), Some(health), show)
            }
        };
        let source = match (args.table, self.store_path()) {
            (Some(table), _) => format!("the DynamoDB table {table}"),
            (None, Some(path)) => format!("the local store {}", path.display()),
            (None, None) => "the local store".to_owned(),
        };
        Ok(Loaded {
            engine,
            findings,
            idle,
            idle_days,
            health,
            show,
            since: args.since.map(|_| query_since),
            until,
            source,
            not_run,
        })
    }
}

fn replay(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(replay_async(args))
}

async fn replay_async(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let rest = args
        .source
        .strip_prefix("s3://")
        .with_context(|| format!("{:?} is not s3://BUCKET/PREFIX", args.source))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    anyhow::ensure!(!bucket.is_empty(), "{:?} names no bucket", args.source);
    if let Some(since) = &args.since {
        parse_when(since, 0)?;
    }
    let sdk = trailwarden_aws::sdk_config().await;
    let mut env: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    env.insert("TRAILWARDEN_FINDINGS_TABLE".into(), args.table.clone());
    env.insert("TRAILWARDEN_STATE_TABLE".into(), args.state_table.clone());
    let config = trailwarden_aws::Config::from_map(&env, trailwarden_aws::Needs::Tables)
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let mut service = trailwarden_aws::Service::start(config, &sdk).await?;
    // The same rules as the deployment plus any given here.
    let policy = load_policy(&args.rules)?;
    if args.rules.policy.is_some() || !args.rules.rules.is_empty() || args.rules.no_builtin {
        service.engine = load_engine(&args.rules, &policy, Notes::Each)?;
        service.policy = policy;
    }
    let objects =
        trailwarden::cloud::list_objects(&service.s3, bucket, prefix, args.since.as_deref())
            .await
            .map_err(anyhow::Error::msg)?;
    let bar = if io::stderr().is_terminal() {
        let bar = ProgressBar::new(objects.len() as u64);
        bar.set_style(ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} objects (eta {eta}) {msg:.dim}").expect("valid template"));
        bar
    } else {
        ProgressBar::hidden()
    };
    let (mut done, mut skipped, mut failed, mut records, mut findings) =
        (0u64, 0u64, 0u64, 0u64, 0u64);
    let mut refused = 0u64;
    for notice in &objects {
        bar.set_message(notice.key.clone());
        match service.process_object(notice).await {
            Ok(trailwarden_aws::ObjectOutcome::Done(_, counts)) => {
                done += 1;
                records += counts.records;
                findings += counts.findings_new;
                if counts.findings_refused + counts.state_refused > 0 {
                    refused += counts.findings_refused + counts.state_refused;
                    bar.suspend(|| {
                        say!(
                            "trailwarden: s3://{}/{}: DynamoDB refused {} finding(s) with their index keys \
                             (stored bare, or not at all) and {} state write(s); the object counts as done",
                            notice.bucket,
                            notice.key,
                            counts.findings_refused,
                            counts.state_refused
                        )
                    });
                }
            }
            Ok(trailwarden_aws::ObjectOutcome::Missing(reason)) => {
                skipped += 1;
                bar.suspend(|| say!("trailwarden: {reason}; skipped"));
            }
            Ok(_) => skipped += 1,
            Err(e) => {
                failed += 1;
                bar.suspend(|| say!("trailwarden: s3://{}/{}: {e}", notice.bucket, notice.key));
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    say!(
        "replayed {done} object(s) ({records} records, {findings} new findings); {skipped} already processed or skipped; {failed} failed; {refused} write(s) DynamoDB refused"
    );
    Ok(if failed > 0 || refused > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
