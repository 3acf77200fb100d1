//! `trailwarden digest` and `trailwarden report`: a window of stored
//! findings as text, JSON or one HTML page.

use super::*;

/// Where `digest` and `report` read a window's findings, and with what.
#[derive(Args)]
pub(crate) struct WindowArgs {
    /// The local store to read [default: as for scan].
    #[arg(long, value_name = "PATH", conflicts_with = "table")]
    pub(crate) local: Option<PathBuf>,
    /// Read a deployment's DynamoDB findings table instead (standard AWS
    /// credential chain; needs the `aws` feature); idle principals and
    /// health then come from the deployment's own sweeper findings and
    /// metrics.
    #[arg(long, value_name = "NAME")]
    pub(crate) table: Option<String>,
    /// With --table, the deployment's state table: the pipeline's health
    /// (each account's and region's log delivery, the silent ones, the last
    /// canary result) as the deployment's own digest reports it.
    #[arg(long, value_name = "NAME", requires = "table")]
    pub(crate) state_table: Option<String>,
    /// Idle days that make an AI principal stale.
    #[arg(long, value_name = "N", default_value_t = 90)]
    pub(crate) idle_days: u32,
    #[command(flatten)]
    pub(crate) rules: RuleArgs,
}

#[derive(Args)]
pub(crate) struct ReportArgs {
    /// The window: findings whose event time is within this long (24h, 7d)
    /// or since this time (RFC 3339, YYYY-MM-DD) [default: every stored
    /// finding].
    #[arg(long, value_name = "WHEN")]
    pub(crate) since: Option<String>,
    #[command(flatten)]
    pub(crate) from: WindowArgs,
    /// Write the page to FILE [default: standard output].
    #[arg(short = 'o', long, value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,
}

#[derive(Args)]
pub(crate) struct DigestArgs {
    /// The window: findings whose event time is within this long (24h, 7d)
    /// or since this time (RFC 3339, YYYY-MM-DD).
    #[arg(long, value_name = "WHEN", default_value = "24h")]
    pub(crate) since: String,
    #[command(flatten)]
    pub(crate) from: WindowArgs,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub(crate) format: DigestFormat,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum DigestFormat {
    /// Sections of text, for a terminal or an email.
    Text,
    /// One JSON document.
    Json,
    /// The page `trailwarden report` writes, to standard output.
    Html,
}

pub(crate) fn digest(args: DigestArgs) -> anyhow::Result<ExitCode> {
    let window = Window {
        since: Some(&args.since),
        from: &args.from,
    };
    let loaded = window.load()?;
    let mut out = io::BufWriter::new(terminal::stdout());
    match args.format {
        DigestFormat::Text => write!(out, "{}", loaded.digest(&loaded.findings).to_text())?,
        DigestFormat::Json => writeln!(
            out,
            "{}",
            json_escape(&serde_json::to_string_pretty(
                &loaded.digest(&loaded.findings)
            )?)
        )?,
        DigestFormat::Html => out.write_all(window.page(&loaded).1.as_bytes())?,
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn report(args: ReportArgs) -> anyhow::Result<ExitCode> {
    let window = Window {
        since: args.since.as_deref(),
        from: &args.from,
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
    let (digest, page) = window.page(&loaded);
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
pub(crate) fn write_whole(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
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
pub(crate) struct Window<'a> {
    /// `--since` (`None`: every stored finding).
    pub(crate) since: Option<&'a str>,
    /// Where from, with what rules.
    pub(crate) from: &'a WindowArgs,
}

/// What a [`Window`] read.
pub(crate) struct Loaded {
    pub(crate) engine: Engine,
    pub(crate) findings: Vec<trailwarden::digest::Row>,
    pub(crate) idle: Vec<trailwarden::digest::Row>,
    pub(crate) idle_days: Option<u32>,
    pub(crate) health: Option<trailwarden::digest::Health>,
    pub(crate) show: String,
    /// The window's start (RFC 3339); `None`: every stored finding.
    pub(crate) since: Option<String>,
    /// The window's end: now.
    pub(crate) until: String,
    /// Where the findings came from, in words.
    pub(crate) source: String,
    /// Rules not run: the policy does not give their facts.
    pub(crate) not_run: usize,
}

impl Loaded {
    /// The digest of `findings` (the window's, or those of them a page
    /// counts). Without --since, the window is the span of those findings.
    fn digest(&self, findings: &[trailwarden::digest::Row]) -> trailwarden::digest::Digest {
        let times = || findings.iter().map(|(f, _)| &f.event_time);
        let (since, until) = match (&self.since, times().min(), times().max()) {
            (Some(since), _, _) => (since.clone(), self.until.clone()),
            (None, Some(first), Some(last)) => (first.clone(), last.clone()),
            (None, _, _) => ("-".to_owned(), self.until.clone()),
        };
        trailwarden::digest::Digest::build(
            findings,
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
    /// The report page of what [`Window::load`] read, with the digest of
    /// the findings it counts. Findings dated after this moment cannot be
    /// real events: they are listed on their own, not drawn or counted.
    fn page(&self, loaded: &Loaded) -> (trailwarden::digest::Digest, String) {
        let now = chrono::Utc::now().timestamp_millis();
        let later = |f: &trailwarden_engine::Finding| {
            trailwarden_cloudtrail::parse_event_time(&f.event_time).is_some_and(|t| t > now)
        };
        let (future, present): (Vec<_>, Vec<_>) =
            loaded.findings.iter().cloned().partition(|(f, _)| later(f));
        let digest = loaded.digest(&present);
        let meta = trailwarden::report::Meta {
            generated: format_millis(now),
            source: loaded.source.clone(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            whole_store: self.since.is_none(),
            not_run: loaded.not_run,
            policy: self
                .from
                .rules
                .policy
                .as_ref()
                .map(|p| p.display().to_string()),
            future,
            show: loaded.show.clone(),
        };
        let page = trailwarden::report::render(&digest, &present, &meta);
        (digest, page)
    }

    /// The local store's path, when the window reads one.
    fn store_path(&self) -> Option<PathBuf> {
        if self.from.table.is_some() {
            return None;
        }
        match &self.from.local {
            Some(path) => Some(path.clone()),
            None => Some(store::default_path()),
        }
    }

    /// Read the window's findings (with their stored status), the idle
    /// principals and the store's health.
    fn load(&self) -> anyhow::Result<Loaded> {
        use trailwarden::digest::Health;
        let args = self.from;
        let policy = load_policy(&args.rules)?;
        let (engine, not_run) = load_engine_counted(&args.rules, &policy, Notes::Quiet)?;
        let now = chrono::Utc::now();
        // Without --since, from the first time a store can hold.
        let query_since = match self.since {
            Some(when) => parse_since(when, now.timestamp_millis())?,
            None => "0001-01-01T00:00:00Z".to_owned(),
        };
        let until = format_millis(now.timestamp_millis());
        let (findings, idle, idle_days, health, show) = match &args.table {
            Some(table) => table_window(table, args.state_table.as_deref(), &query_since, now)?,
            None => {
                let store_args = StoreArgs {
                    store: args.local.clone(),
                };
                let mut store = store_args.open_existing()?;
                let rows = store.query_findings(&store::FindingFilter {
                    since: self.since.map(|_| query_since.clone()),
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
                    ..Health::default()
                };
                let show = match &args.local {
                    Some(path) => format!("trailwarden findings --local {} show", path.display()),
                    None => "trailwarden findings show".to_owned(),
                };
                (findings, idle, Some(args.idle_days), Some(health), show)
            }
        };
        let source = match (&args.table, self.store_path()) {
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
            since: self.since.map(|_| query_since),
            until,
            source,
            not_run,
        })
    }
}

/// A window's findings, idle principals and the command that shows one,
/// from a deployment's findings table, and with its `state` table the
/// pipeline's health (sources, silent sources, the last canary run; the
/// queues' depth is the deployment's digest's alone).
#[cfg(feature = "aws")]
fn table_window(
    table: &str,
    state: Option<&str>,
    query_since: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<TableWindow> {
    let (rows, idle, health) = runtime()?.block_on(async {
        let sdk = trailwarden_aws::sdk_config().await;
        let client = aws_sdk_dynamodb::Client::new(&sdk);
        let health = match state {
            None => None,
            Some(state) => {
                let store = trailwarden_aws::DynamoStore::new(client.clone(), state, table);
                let since = chrono::DateTime::parse_from_rfc3339(query_since)
                    .map(|t| t.with_timezone(&chrono::Utc))
                    .unwrap_or(now);
                Some(
                    trailwarden_aws::audit::deployment_health(&store, since, now, None)
                        .await
                        .map_err(anyhow::Error::msg)?,
                )
            }
        };
        let window = trailwarden_aws::findings::digest_window(&client, table, query_since, now)
            .await
            .map_err(anyhow::Error::msg)?;
        // Findings dated after now stay: the page lists them apart.
        let mut rows = window.findings;
        rows.extend(window.later);
        anyhow::Ok((rows, window.idle, health))
    })?;
    let row = |r: trailwarden::cloud::TableFinding| (r.finding, Some(r.status));
    let findings: Vec<_> = rows.into_iter().map(row).collect();
    let idle: Vec<_> = idle.into_iter().map(row).collect();
    let show = format!("trailwarden findings --table {table} show");
    Ok((findings, idle, None, health, show))
}

#[cfg(not(feature = "aws"))]
fn table_window(
    table: &str,
    _state: Option<&str>,
    _query_since: &str,
    _now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<TableWindow> {
    Err(without_aws(&format!("--table {table}")))
}

/// What [`table_window`] reads.
type TableWindow = (
    Vec<trailwarden::digest::Row>,
    Vec<trailwarden::digest::Row>,
    Option<u32>,
    Option<trailwarden::digest::Health>,
    String,
);
