//! `trailwarden scan`: files in, findings and a summary out.

use super::*;

#[derive(Args)]
pub(crate) struct ScanArgs {
    /// Files, directories (read recursively; hidden files, and files that
    /// are neither gzip nor JSON, are skipped) or - for standard input.
    #[arg(required = true, value_name = "PATH")]
    pub(crate) paths: Vec<PathBuf>,
    #[command(flatten)]
    pub(crate) rules: RuleArgs,
    /// Output format [default: table on a terminal, jsonl otherwise].
    #[arg(long, value_enum)]
    pub(crate) format: Option<output::Format>,
    #[command(flatten)]
    pub(crate) out: output::OutputArgs,
    /// Report only findings at or above this level.
    #[arg(long, value_name = "LEVEL", default_value = "informational")]
    pub(crate) min_level: Level,
    /// Exit 1 when a finding at or above this level is found.
    #[arg(long, value_name = "LEVEL")]
    pub(crate) fail_on: Option<Level>,
    /// Largest decompressed size of one object, in bytes; larger objects
    /// (gzip bombs) are rejected.
    #[arg(long, value_name = "BYTES", default_value_t = ReaderOptions::default().max_object_bytes)]
    pub(crate) max_object_bytes: u64,
    /// No progress bar and no summary.
    #[arg(long, short)]
    pub(crate) quiet: bool,
    /// Each rule set aside, and why, on a line of its own (by default
    /// the rules waiting for organisation facts are counted in one line).
    #[arg(long, short, conflicts_with = "quiet")]
    pub(crate) verbose: bool,
    /// Read files again even if the store's ledger says they were processed.
    #[arg(long)]
    pub(crate) rescan: bool,
    /// Threads that read and evaluate files [default: the number of
    /// cores]; with two per file or more, one file is split between them.
    /// Findings, counts and stored state are the same for any number.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub(crate) threads: Option<u16>,
    #[command(flatten)]
    pub(crate) store: StoreArgs,
}

/// The fingerprint of the rules and policy a scan runs, and of the minimum
/// level (which decides what is stored): the text of every rule file it
/// loads, built-in or given, the policy file's text.
pub(crate) fn scan_fingerprint(args: &RuleArgs, min_level: Level) -> String {
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

pub(crate) fn scan(args: ScanArgs) -> anyhow::Result<ExitCode> {
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

pub(crate) fn progress_bar(inputs: &[Input], quiet: bool) -> ProgressBar {
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

pub(crate) fn print_summary(stats: &ScanStats, inputs: usize, secs: f64) {
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
