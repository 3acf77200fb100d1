//! `trailwarden findings [show|ack]`, locally or in a deployment's table.

use super::*;

#[derive(Args)]
pub(crate) struct FindingsArgs {
    #[command(subcommand)]
    pub(crate) action: Option<FindingsAction>,
    /// The local store to read [default: as for scan].
    #[arg(long, value_name = "PATH", global = true, conflicts_with = "table")]
    pub(crate) local: Option<PathBuf>,
    /// Read a deployment's DynamoDB findings table instead (standard AWS
    /// credential chain; needs the `aws` feature).
    #[arg(long, value_name = "NAME", global = true)]
    pub(crate) table: Option<String>,
    /// Only findings whose event time is within this long (24h, 7d) or since
    /// this time (RFC 3339, YYYY-MM-DD) [default: every stored finding, in
    /// the local store and in a table alike].
    #[arg(long, value_name = "WHEN")]
    pub(crate) since: Option<String>,
    /// Only findings at or above this level.
    #[arg(long, value_name = "LEVEL")]
    pub(crate) level: Option<Level>,
    /// Only findings of this rule id.
    #[arg(long, value_name = "ID")]
    pub(crate) rule: Option<String>,
    /// Only findings of this principal ARN.
    #[arg(long, value_name = "ARN")]
    pub(crate) principal: Option<String>,
    /// Only findings in this account.
    #[arg(long, value_name = "ID")]
    pub(crate) account: Option<String>,
    /// Output format [default: table on a terminal, jsonl otherwise].
    #[arg(long, value_enum)]
    pub(crate) format: Option<output::Format>,
    #[command(flatten)]
    pub(crate) out: output::OutputArgs,
}

#[derive(Subcommand)]
pub(crate) enum FindingsAction {
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

pub(crate) fn findings(args: FindingsArgs) -> anyhow::Result<ExitCode> {
    if matches!(args.action, Some(FindingsAction::Ack { .. })) && args.out.output.is_some() {
        say!(
            "trailwarden: error: --output applies to the list of findings and to show, not to ack"
        );
        return Ok(ExitCode::from(2));
    }
    if let Some(table) = args.table.clone() {
        #[cfg(feature = "aws")]
        return runtime()?.block_on(findings_in_table(args, table));
        #[cfg(not(feature = "aws"))]
        return Err(without_aws(&format!("--table {table}")));
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

#[cfg(feature = "aws")]
pub(crate) async fn findings_in_table(
    args: FindingsArgs,
    table: String,
) -> anyhow::Result<ExitCode> {
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
