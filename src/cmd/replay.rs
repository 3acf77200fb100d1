//! `trailwarden replay`: S3 history through a deployment's engine and tables.

use super::*;

#[derive(Args)]
pub(crate) struct ReplayArgs {
    /// s3://BUCKET/PREFIX (CloudTrail log keys under it are read).
    pub(crate) source: String,
    /// Only objects delivered on or after this date (YYYY-MM-DD, from the
    /// key): the trail's region folders are then listed day by day, never
    /// the whole bucket.
    #[arg(long, value_name = "DATE")]
    pub(crate) since: Option<String>,
    /// Only objects delivered on or before this date (YYYY-MM-DD) [default:
    /// today; needs --since].
    #[arg(long, value_name = "DATE", requires = "since")]
    pub(crate) until: Option<String>,
    /// Read objects the deployment already read again (a new rule over old
    /// logs): findings already stored are not counted again.
    #[arg(long)]
    pub(crate) rescan: bool,
    /// The deployment's policy, where its functions read it (the stack's
    /// PolicyUri: s3://bucket/key.yaml or ssm:/name).
    #[arg(long, value_name = "URI", conflicts_with = "policy")]
    pub(crate) policy_uri: Option<String>,
    /// The deployment's extra rules, where its functions read them (the
    /// stack's ExtraRulesUri: s3://bucket/prefix/, ssm:/name or ssm:/path/*).
    #[arg(long, value_name = "URI", conflicts_with_all = ["rules", "no_builtin"])]
    pub(crate) extra_rules_uri: Option<String>,
    /// Read the objects on the deployment's backfill state machine (its
    /// ARN: the stack's BackfillStateMachineArn) instead of here: the keys
    /// are listed here, written as a manifest to --manifest-bucket, and the
    /// ingest function reads them in batches, --concurrency at once, with
    /// the deployment's own policy and rules.
    #[arg(long, value_name = "ARN", requires = "manifest_bucket", conflicts_with_all = ["rules", "no_builtin", "policy", "policy_uri", "extra_rules_uri"])]
    pub(crate) distributed: Option<String>,
    /// With --distributed: the stack's BackfillBucketName.
    #[arg(long, value_name = "BUCKET", requires = "distributed")]
    pub(crate) manifest_bucket: Option<String>,
    /// With --distributed: batches read at once (the Distributed Map's
    /// MaxConcurrency; each is one ingest invocation, from the account's
    /// Lambda concurrency that live ingestion also uses).
    #[arg(long, value_name = "N", default_value_t = 10, requires = "distributed", value_parser = clap::value_parser!(u32).range(1..=100))]
    pub(crate) concurrency: u32,
    /// With --distributed: the share of batches (percent) that may fail
    /// (after their retries) before the run stops; the failed ones, with
    /// the keys that failed, are in the results.
    #[arg(long, value_name = "PERCENT", default_value_t = 5, requires = "distributed", value_parser = clap::value_parser!(u32).range(0..=100))]
    pub(crate) tolerated_failure_percentage: u32,
    /// With --distributed: start the execution and return, without
    /// following it.
    #[arg(long, requires = "distributed")]
    pub(crate) no_wait: bool,
    /// The deployment's findings table.
    #[arg(long, value_name = "NAME", required_unless_present = "distributed")]
    pub(crate) table: Option<String>,
    /// The deployment's state table.
    #[arg(long, value_name = "NAME", required_unless_present = "distributed")]
    pub(crate) state_table: Option<String>,
    #[command(flatten)]
    pub(crate) rules: RuleArgs,
}

pub(crate) fn replay(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    #[cfg(feature = "aws")]
    return runtime()?.block_on(replay_async(args));
    #[cfg(not(feature = "aws"))]
    return Err(without_aws(&format!("replay {}", args.source)));
}

#[cfg(feature = "aws")]
pub(crate) async fn replay_async(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let rest = args
        .source
        .strip_prefix("s3://")
        .with_context(|| format!("{:?} is not s3://BUCKET/PREFIX", args.source))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    anyhow::ensure!(!bucket.is_empty(), "{:?} names no bucket", args.source);
    let sdk = trailwarden_aws::sdk_config().await;
    if let Some(machine) = &args.distributed {
        return distributed(&args, machine, bucket, prefix, &sdk).await;
    }
    let mut env: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    env.insert(
        "TRAILWARDEN_FINDINGS_TABLE".into(),
        args.table.clone().unwrap_or_default(),
    );
    env.insert(
        "TRAILWARDEN_STATE_TABLE".into(),
        args.state_table.clone().unwrap_or_default(),
    );
    if let Some(uri) = &args.policy_uri {
        env.insert("TRAILWARDEN_POLICY".into(), uri.clone());
    }
    if let Some(uri) = &args.extra_rules_uri {
        env.insert("TRAILWARDEN_EXTRA_RULES".into(), uri.clone());
    }
    // The facts the stack gives its functions as parameters
    // (TRAILWARDEN_ALLOWED_REGIONS, …), from this environment.
    for (fact, _) in trailwarden_engine::policy::FACTS {
        let name = format!("TRAILWARDEN_{}", fact.to_uppercase());
        if let Ok(value) = std::env::var(&name) {
            env.insert(name, value);
        }
    }
    let config = trailwarden_aws::Config::from_map(&env, trailwarden_aws::Needs::Tables).map_err(
        |errors| {
            anyhow::anyhow!(
                "{}",
                errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        },
    )?;
    let mut service = trailwarden_aws::Service::start(config, &sdk).await?;
    service.rescan = args.rescan;
    // History is not delivery: the sources' health stays the ingest
    // function's.
    service.record_health = false;
    // The deployment's policy and rules (--policy-uri, --extra-rules-uri),
    // or these given here (with the deployment's policy unless --policy).
    if args.rules.policy.is_some() || !args.rules.rules.is_empty() || args.rules.no_builtin {
        let policy = match &args.rules.policy {
            Some(_) => load_policy(&args.rules)?,
            None => service.policy.clone(),
        };
        let (engine, not_run) = load_engine_counted(&args.rules, &policy, Notes::Quiet)?;
        service.engine = engine;
        service.policy = policy;
        service.not_run = not_run;
    }
    let facts_here = trailwarden_engine::policy::FACTS
        .iter()
        .any(|(fact, _)| std::env::var(format!("TRAILWARDEN_{}", fact.to_uppercase())).is_ok());
    if args.policy_uri.is_none() && args.rules.policy.is_none() && !facts_here {
        say!(
            "trailwarden: replay runs without the deployment's policy: pass --policy-uri with the stack's PolicyUri (or --policy FILE), and set TRAILWARDEN_ALLOWED_REGIONS and the other facts the stack gives as parameters; {} rule(s) are not run (trailwarden rules list)",
            service.not_run
        );
    } else if service.not_run > 0 {
        say!(
            "trailwarden: {} rule(s) are not run: the policy gives no value for their facts (trailwarden rules list --policy …)",
            service.not_run
        );
    }
    let objects = trailwarden::cloud::list_objects(
        &service.s3,
        bucket,
        prefix,
        args.since.as_deref(),
        args.until.as_deref(),
    )
    .await
    .map_err(anyhow::Error::msg)?;
    let bar = if io::stderr().is_terminal() {
        let bar = ProgressBar::new(objects.len() as u64);
        bar.set_style(ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} objects (eta {eta}) {msg:.dim}").expect("valid template"));
        bar
    } else {
        ProgressBar::hidden()
    };
    let mut tally = trailwarden_aws::Tally::default();
    for notice in &objects {
        bar.set_message(notice.key.clone());
        let outcome = service.process_object(notice).await;
        tally.add(&outcome);
        match outcome {
            Ok(trailwarden_aws::ObjectOutcome::Done(_, counts)) => {
                if counts.findings_refused + counts.state_refused > 0 {
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
                bar.suspend(|| say!("trailwarden: {reason}; skipped"));
            }
            Ok(_) => {}
            Err(e) => {
                bar.suspend(|| say!("trailwarden: s3://{}/{}: {e}", notice.bucket, notice.key));
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    say!(
        "replayed {} object(s) ({} records, {} new findings); {} already processed or skipped; {} failed; {} write(s) DynamoDB refused",
        tally.objects,
        tally.counts.records,
        tally.counts.findings_new,
        tally.skipped + tally.missing,
        tally.failed,
        tally.refused()
    );
    Ok(if tally.failed > 0 || tally.refused() > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// `replay --distributed`: list the objects here, write their manifest
/// (`manifests/<execution>.json` in the backfill bucket: a JSON array of
/// `{"Key", "ETag"}`), start the backfill state machine on it and follow
/// the execution until it ends (unless `--no-wait`).
#[cfg(feature = "aws")]
async fn distributed(
    args: &ReplayArgs,
    machine: &str,
    bucket: &str,
    prefix: &str,
    sdk: &aws_config::SdkConfig,
) -> anyhow::Result<ExitCode> {
    let manifest_bucket = args
        .manifest_bucket
        .as_deref()
        .context("--distributed needs --manifest-bucket")?;
    let s3 = trailwarden_aws::s3_client(sdk);
    // Listed a manifest at a time: memory holds one manifest's keys,
    // whatever the window (a year of a large organisation is tens of
    // millions of objects).
    let mut lister = trailwarden::cloud::ObjectLister::new(
        &s3,
        bucket,
        prefix,
        args.since.as_deref(),
        args.until.as_deref(),
    )
    .await
    .map_err(anyhow::Error::msg)?;
    let mut chunk = lister
        .next_chunk(MANIFEST_KEYS)
        .await
        .map_err(anyhow::Error::msg)?;
    if chunk.is_empty() {
        say!(
            "replay: no log objects under s3://{bucket}/{prefix} in that window: nothing to start"
        );
        return Ok(ExitCode::SUCCESS);
    }
    let run = format!(
        "replay-{}-{:08x}",
        chrono::Utc::now().format("%Y%m%dT%H%M%SZ"),
        fastrand::u32(..)
    );
    let sfn = aws_sdk_sfn::Client::new(sdk);
    let mut n = 0usize;
    while !chunk.is_empty() {
        // One execution per manifest of at most MANIFEST_KEYS keys (about
        // 100 MB): one after the other, or all at once with --no-wait.
        let name = if n == 0 && chunk.len() < MANIFEST_KEYS {
            run.clone()
        } else {
            format!("{run}-{n:03}")
        };
        let manifest: Vec<serde_json::Value> = chunk
            .iter()
            .map(|o| serde_json::json!({"Key": o.key, "ETag": o.version}))
            .collect();
        let key = format!("manifests/{name}.json");
        s3.put_object()
            .bucket(manifest_bucket)
            .key(&key)
            .content_type("application/json")
            .body(serde_json::to_vec(&manifest)?.into())
            .send()
            .await
            .map_err(cannot(format!(
                "write the manifest to s3://{manifest_bucket}/{key}"
            )))?;
        drop(manifest);
        let input = serde_json::json!({
            "bucket": bucket,
            "manifest_bucket": manifest_bucket,
            "manifest_key": key,
            "rescan": args.rescan,
            "max_concurrency": args.concurrency,
            "tolerated_failure_percentage": args.tolerated_failure_percentage,
        });
        let started = sfn
            .start_execution()
            .state_machine_arn(machine)
            .name(&name)
            .input(input.to_string())
            .send()
            .await
            .map_err(cannot(format!("start {machine}")))?;
        let execution = started.execution_arn().to_owned();
        say!(
            "replay: {} object(s) listed (manifest s3://{manifest_bucket}/{key}); execution {execution} started",
            chunk.len()
        );
        // The next manifest is listed while this execution runs.
        let listed = chunk.len();
        chunk = if listed < MANIFEST_KEYS {
            Vec::new()
        } else {
            lister
                .next_chunk(MANIFEST_KEYS)
                .await
                .map_err(anyhow::Error::msg)?
        };
        if !args.no_wait && !follow(&sfn, &execution, manifest_bucket).await? {
            return Ok(ExitCode::from(1));
        }
        n += 1;
    }
    Ok(ExitCode::SUCCESS)
}

/// Most keys in one manifest (about 100 MB of JSON); more make more
/// executions.
#[cfg(feature = "aws")]
const MANIFEST_KEYS: usize = 500_000;

/// Follow `execution` until it ends: whether it succeeded. A failed
/// `DescribeExecution` is tried again (five times in a row at most), then
/// reported with the execution, which may still be running.
#[cfg(feature = "aws")]
async fn follow(
    sfn: &aws_sdk_sfn::Client,
    execution: &str,
    manifest_bucket: &str,
) -> anyhow::Result<bool> {
    use aws_sdk_sfn::types::ExecutionStatus;
    let mut errors = 0;
    loop {
        let out = match sfn.describe_execution().execution_arn(execution).send().await {
            Ok(out) => {
                errors = 0;
                out
            }
            Err(e) if errors < 5 => {
                errors += 1;
                say!(
                    "replay: cannot read {execution} ({}); trying again",
                    trailwarden_aws::dynamo::error_chain(&e)
                );
                tokio::time::sleep(std::time::Duration::from_secs(10)).await;
                continue;
            }
            Err(e) => anyhow::bail!(
                "cannot read {execution}: {}; it may still be running (see the Step Functions console)",
                trailwarden_aws::dynamo::error_chain(&e)
            ),
        };
        match out.status() {
            ExecutionStatus::Running | ExecutionStatus::PendingRedrive => {
                tokio::time::sleep(std::time::Duration::from_secs(10)).await;
            }
            ExecutionStatus::Succeeded => {
                say!(
                    "replay: {execution} succeeded; each batch's counts (and any failed batch's keys) are under s3://{manifest_bucket}/results/"
                );
                return Ok(true);
            }
            other => {
                say!(
                    "replay: {execution} {}: {}{}",
                    other.as_str(),
                    out.error().unwrap_or("-"),
                    out.cause().map(|c| format!(" ({c})")).unwrap_or_default()
                );
                return Ok(false);
            }
        }
    }
}

/// An SDK error as `cannot <what>: <the error and its sources>`.
#[cfg(feature = "aws")]
fn cannot<E: std::error::Error + 'static>(what: String) -> impl FnOnce(E) -> anyhow::Error {
    move |e| {
        anyhow::anyhow!(
            "cannot {what}: {}",
            trailwarden_aws::dynamo::error_chain(&e)
        )
    }
}
