//! What the subcommands share: the rule and store options, loading the
//! policy and the rules, reading time options, and (with the `aws`
//! feature) the tokio runtime of the subcommands that reach AWS.

pub(crate) mod digest;
pub(crate) mod findings;
pub(crate) mod replay;
pub(crate) mod rules;
pub(crate) mod scan;
pub(crate) mod simulate;
pub(crate) mod sweep;

pub(crate) use anyhow::Context;
pub(crate) use clap::{Args, Subcommand};
pub(crate) use indicatif::{ProgressBar, ProgressStyle};
pub(crate) use std::collections::HashSet;
pub(crate) use std::io::{self, IsTerminal, Write};
pub(crate) use std::path::PathBuf;
pub(crate) use std::process::ExitCode;
pub(crate) use std::time::Instant;
pub(crate) use trailwarden::builtin::builtin_rules;
pub(crate) use trailwarden::output::{self, FindingWriter};
pub(crate) use trailwarden::ruletest;
pub(crate) use trailwarden::scan::{
    expand_inputs, Input, ObjectFailure, ScanStats, Scanner, Stores,
};
pub(crate) use trailwarden::store::{self, SqliteStore};
pub(crate) use trailwarden::terminal::{self, json_escape};
pub(crate) use trailwarden::{say, tell};
pub(crate) use trailwarden_cloudtrail::ReaderOptions;
pub(crate) use trailwarden_engine::{
    rules::rule_files, Engine, Level, Policy, RuleSet, RuleSetBuilder,
};

#[derive(Args)]
pub(crate) struct RuleArgs {
    /// Add Sigma rules from a file or directory (repeatable).
    #[arg(long = "rules", value_name = "PATH")]
    pub(crate) rules: Vec<PathBuf>,
    /// Do not load the built-in rule pack.
    #[arg(long)]
    pub(crate) no_builtin: bool,
    /// The organisation policy (facts for rule placeholders, suppressions,
    /// level overrides). YAML; see policy.example.yaml.
    #[arg(long, value_name = "FILE")]
    pub(crate) policy: Option<PathBuf>,
}

#[derive(Args)]
pub(crate) struct StoreArgs {
    /// The local store file (state, ledger, findings), or `memory` for a
    /// store that is dropped at exit [default: $TRAILWARDEN_STORE, else
    /// ~/.local/share/trailwarden/trailwarden.db].
    #[arg(long, value_name = "PATH")]
    pub(crate) store: Option<PathBuf>,
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

pub(crate) fn load_policy(args: &RuleArgs) -> anyhow::Result<Policy> {
    Ok(match &args.policy {
        // The error names the file and says why (the OS error once).
        Some(path) => Policy::from_file(path).map_err(|e| anyhow::anyhow!("{e}"))?,
        None => Policy::empty(),
    })
}

/// The built-in pack (unless `--no-builtin`) and the extra rule paths, with
/// the policy's facts: detection rules, correlations and baselines.
pub(crate) fn rule_set(args: &RuleArgs, policy: &Policy) -> RuleSet {
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

/// What [`load_engine`] says of rules it sets aside.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Notes {
    /// Nothing.
    Quiet,
    /// Rules waiting for organisation facts in one line; others one a line.
    Summary,
    /// Every rule set aside, one a line, with why.
    Each,
}

/// Does `reason` (a [`trailwarden_engine::rules::RuleNote`]'s) say the
/// rule waits for a fact the policy does not give?
pub(crate) fn waits_for_facts(reason: &str) -> bool {
    // "not run: the policy gives no value for …", or a correlation over
    // such a rule ("not run: it refers to rules / a correlation that …").
    reason.starts_with("not run: the policy gives no value for ")
        || reason.starts_with("not run: it refers to ")
}

/// The facts a "the policy gives no value for %a%, %b%" reason names, in
/// order, once each.
pub(crate) fn facts_named(reasons: impl Iterator<Item = String>) -> Vec<String> {
    let mut facts: Vec<String> = Vec::new();
    for reason in reasons {
        let Some(list) = reason.strip_prefix("not run: the policy gives no value for ") else {
            continue;
        };
        // "… for %a% (absent or an empty list, …)"
        let list = list.split(" (").next().unwrap_or_default();
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
pub(crate) fn load_engine(
    args: &RuleArgs,
    policy: &Policy,
    notes: Notes,
) -> anyhow::Result<Engine> {
    load_engine_counted(args, policy, notes).map(|(engine, _)| engine)
}

/// [`load_engine`], with how many rules wait for organisation facts the
/// policy does not give.
pub(crate) fn load_engine_counted(
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

/// One field of a tab-separated line, escaped for a terminal (tabs too).
pub(crate) fn esc(s: &str) -> std::borrow::Cow<'_, str> {
    terminal::escape(s)
}

/// A time option as ms since the epoch: a duration back from `now_ms`
/// (24h, 7d), a date (YYYY-MM-DD) or an RFC 3339 time; before year 1 is an
/// error.
pub(crate) fn parse_when(text: &str, now_ms: i64) -> anyhow::Result<i64> {
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
pub(crate) fn parse_since(text: &str, now_ms: i64) -> anyhow::Result<String> {
    let ms = parse_when(text, now_ms)?;
    anyhow::ensure!(
        ms <= now_ms,
        "--since {text:?} is in the future: name a time before now"
    );
    Ok(format_millis(ms))
}

pub(crate) fn format_millis(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

pub(crate) fn default_format() -> output::Format {
    if io::stdout().is_terminal() {
        output::Format::Table
    } else {
        output::Format::Jsonl
    }
}

/// Stored findings out: the table shows the findings, OCSF the findings
/// with their status (`status_id`); JSON keeps the bookkeeping (times seen,
/// status) too. `parts` gives a row's finding and status.
pub(crate) fn print_rows<T: serde::Serialize>(
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

/// Without the `aws` feature: the error of a subcommand or option that
/// reaches a deployment on AWS (`what`), saying how to build one that can.
#[cfg(not(feature = "aws"))]
pub(crate) fn without_aws(what: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "{what} reaches a deployment on AWS, and this trailwarden was built without it: \
         build it with the `aws` feature (cargo run --release --features aws -- …, or \
         cargo install --path . --features aws)"
    )
}

/// The tokio runtime of the subcommands that reach AWS.
#[cfg(feature = "aws")]
pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}
