//! `trailwarden simulate`: a scenario's CloudTrail log file.

use super::*;

#[derive(Args)]
pub(crate) struct SimulateArgs {
    /// The scenario (see --list).
    #[arg(required_unless_present = "list")]
    pub(crate) scenario: Option<String>,
    /// List the scenarios and exit.
    #[arg(long)]
    pub(crate) list: bool,
    /// Output file [default: trailwarden-<scenario>.json.gz].
    #[arg(short, long, value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,
    /// The account the activity happens in.
    #[arg(long, value_name = "ID", default_value = "111122223333")]
    pub(crate) account: String,
    /// The region.
    #[arg(long, value_name = "REGION", default_value = "us-east-1")]
    pub(crate) region: String,
    /// Benign background records to mix in.
    #[arg(long, value_name = "N", default_value_t = 2000)]
    pub(crate) background: usize,
    /// Random seed: the same seed (and --start) writes the same file
    /// [default: a new one each run, so each file has fresh event ids].
    #[arg(long, value_name = "S")]
    pub(crate) seed: Option<u64>,
    /// When the simulated activity starts (RFC 3339) [default: so that it
    /// ends a minute ago; with --seed, 2026-11-02T08:00:00Z].
    #[arg(long, value_name = "TIME")]
    pub(crate) start: Option<String>,
}

pub(crate) fn simulate(args: SimulateArgs) -> anyhow::Result<ExitCode> {
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
