//! `trailwarden sweep`: idle AI principals from the dormant baselines.

use super::*;

#[derive(Args)]
pub(crate) struct SweepArgs {
    /// The time to measure idleness from (RFC 3339 or YYYY-MM-DD) [default: now].
    #[arg(long, value_name = "TIME")]
    pub(crate) as_of: Option<String>,
    /// Idle days that make a principal stale.
    #[arg(long, value_name = "N", default_value_t = 90)]
    pub(crate) idle_days: u32,
    #[command(flatten)]
    pub(crate) rules: RuleArgs,
    #[command(flatten)]
    pub(crate) store: StoreArgs,
    /// Output format [default: table on a terminal, jsonl otherwise].
    #[arg(long, value_enum)]
    pub(crate) format: Option<output::Format>,
}

pub(crate) fn sweep(args: SweepArgs) -> anyhow::Result<ExitCode> {
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
