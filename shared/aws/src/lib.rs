//! The AWS side of trailwarden.
//!
//! - [`config`]: configuration from the environment, read once.
//! - [`dynamo`]: DynamoDB state, ledger and findings stores.
//! - [`s3`]: queue messages → objects; object bodies streamed into the reader.
//! - [`notify`]: SNS, Chatbot and Slack delivery.
//! - [`Service`]: everything a function builds at cold start (clients,
//!   engine, stores), and the work each function does with it: process an
//!   object, evaluate an EventBridge event, alert on a stored finding, sweep.
//!
//! Functions stay thin: `main.rs` builds a [`Service`] once and lends it to
//! the handler.

pub mod audit;
pub mod canary;
pub mod config;
pub mod dynamo;
pub mod events;
pub mod findings;
pub mod notify;
pub mod s3;
pub mod securityhub;

use std::collections::HashMap;

use trailwarden_cloudtrail::key::{parse_key, KeyKind};
use trailwarden_cloudtrail::{ObjectSummary, ReaderOptions, Record, RecordReject, RecordSink};
use trailwarden_engine::builtin::builtin_rules;
use trailwarden_engine::session::{attempts_exhausted, FLUSH_ROUNDS};
use trailwarden_engine::{Engine, Finding, Level, Policy, RuleSetBuilder, Session, StoreError};

pub use config::{Config, ConfigError, Location, Needs};
pub use dynamo::{DynamoStore, FindingPut};
pub use s3::{parse_notice, ObjectNotice};

/// Everything built once at cold start.
pub struct Service {
    /// The configuration.
    pub config: Config,
    /// The rules.
    pub engine: Engine,
    /// The organisation policy (suppressions).
    pub policy: Policy,
    /// DynamoDB stores.
    pub store: DynamoStore,
    /// S3 client.
    pub s3: aws_sdk_s3::Client,
    /// Rule response guides by rule id, for alerts.
    pub responses: HashMap<String, String>,
    /// Rules loaded but not run: the policy does not give their facts.
    pub not_run: usize,
    /// Read objects the ledger says were read to their end, again
    /// (`trailwarden replay --rescan`: a new rule over old logs). Findings
    /// already stored are counted once per object whatever; state merges
    /// ignore a batch they hold already.
    pub rescan: bool,
    /// Count each object read in its source's delivery health (the ingest
    /// function; `replay` reads history, which is not delivery).
    pub record_health: bool,
}

/// A cold-start failure: configuration, policy or rules.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StartError(pub String);

/// JSON logs for a Lambda function (`RUST_LOG` filters; info by default).
pub fn init_logging() {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::from_default_env()
                .add_directive(tracing::Level::INFO.into()),
        )
        .with_current_span(false)
        .without_time()
        .init();
}

/// A function's cold start: logging, configuration (every problem named),
/// SDK configuration, and the [`Service`].
pub async fn cold_start(needs: Needs) -> Result<(Service, aws_config::SdkConfig), StartError> {
    init_logging();
    let config = Config::from_env(needs).map_err(|errors| {
        StartError(
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        )
    })?;
    let sdk = sdk_config().await;
    let service = Service::start(config, &sdk).await?;
    Ok((service, sdk))
}

/// The SDK configuration from the environment (credentials, region,
/// `AWS_ENDPOINT_URL`).
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

/// An S3 client; path-style addressing when an endpoint is overridden.
pub fn s3_client(sdk: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    let mut b = aws_sdk_s3::config::Builder::from(sdk);
    if sdk.endpoint_url().is_some() {
        b = b.force_path_style(true);
    }
    aws_sdk_s3::Client::from_conf(b.build())
}

async fn fetch_text(
    location: &Location,
    s3: &aws_sdk_s3::Client,
    ssm: &aws_sdk_ssm::Client,
) -> Result<String, String> {
    match location {
        Location::S3 { bucket, key } => {
            let out = s3
                .get_object()
                .bucket(bucket)
                .key(key)
                .send()
                .await
                .map_err(|e| {
                    format!("GetObject s3://{bucket}/{key}: {}", dynamo::error_chain(&e))
                })?;
            let bytes = out
                .body
                .collect()
                .await
                .map_err(|e| format!("reading s3://{bucket}/{key}: {e}"))?;
            String::from_utf8(bytes.to_vec())
                .map_err(|_| format!("s3://{bucket}/{key} is not UTF-8 text"))
        }
        Location::Ssm(name) => {
            let out = ssm
                .get_parameter()
                .name(name)
                .with_decryption(true)
                .send()
                .await
                .map_err(|e| format!("GetParameter {name}: {}", dynamo::error_chain(&e)))?;
            out.parameter
                .and_then(|p| p.value)
                .ok_or_else(|| format!("SSM parameter {name} has no value"))
        }
    }
}

/// Extra Sigma rules: every `.yml`/`.yaml` under an S3 prefix, one SSM
/// parameter (one or more YAML documents), or every parameter under an SSM
/// path (`ssm:/path/*`, recursively). A location that cannot be listed or
/// read fails the cold start; a file that cannot be read is logged with its
/// name and the others load; a rule that does not parse is a rule problem
/// (logged with its source by the caller).
async fn load_extra_rules(
    location: &Location,
    s3: &aws_sdk_s3::Client,
    ssm: &aws_sdk_ssm::Client,
    builder: &mut RuleSetBuilder,
) -> Result<(), StartError> {
    match location {
        Location::S3 { bucket, key } => {
            let mut token = None;
            loop {
                let out = s3
                    .list_objects_v2()
                    .bucket(bucket)
                    .prefix(key)
                    .set_continuation_token(token)
                    .send()
                    .await
                    .map_err(|e| {
                        StartError(format!(
                            "extra rules: ListObjectsV2 s3://{bucket}/{key}: {}",
                            dynamo::error_chain(&e)
                        ))
                    })?;
                for object in out.contents() {
                    let Some(k) = object
                        .key()
                        .filter(|k| k.ends_with(".yml") || k.ends_with(".yaml"))
                    else {
                        continue;
                    };
                    let file = Location::S3 {
                        bucket: bucket.clone(),
                        key: k.to_owned(),
                    };
                    match fetch_text(&file, s3, ssm).await {
                        Ok(text) => {
                            builder.add_yaml(&format!("s3://{bucket}/{k}"), &text);
                        }
                        Err(e) => {
                            tracing::error!(rule_file = %k, error = %e, "extra rule file not read")
                        }
                    }
                }
                match out.next_continuation_token {
                    Some(t) => token = Some(t),
                    None => return Ok(()),
                }
            }
        }
        Location::Ssm(name) => {
            let Some(path) = name.strip_suffix("/*") else {
                let text = fetch_text(location, s3, ssm)
                    .await
                    .map_err(|e| StartError(format!("extra rules: {e}")))?;
                builder.add_yaml(&format!("ssm:{name}"), &text);
                return Ok(());
            };
            let mut token = None;
            loop {
                let out = ssm
                    .get_parameters_by_path()
                    .path(path)
                    .recursive(true)
                    .with_decryption(true)
                    .set_next_token(token)
                    .send()
                    .await
                    .map_err(|e| {
                        StartError(format!(
                            "extra rules: GetParametersByPath {path}: {}",
                            dynamo::error_chain(&e)
                        ))
                    })?;
                for p in out.parameters() {
                    let n = p.name().unwrap_or_default();
                    match p.value() {
                        Some(text) => {
                            builder.add_yaml(&format!("ssm:{n}"), text);
                        }
                        None => {
                            tracing::error!(rule_file = %n, "extra rule parameter has no value")
                        }
                    }
                }
                match out.next_token {
                    Some(t) => token = Some(t),
                    None => return Ok(()),
                }
            }
        }
    }
}

impl Service {
    /// Build everything from the configuration: the policy (file, then the
    /// facts from the environment over it), the built-in pack plus extra
    /// rules, the stores.
    pub async fn start(config: Config, sdk: &aws_config::SdkConfig) -> Result<Service, StartError> {
        let s3 = s3_client(sdk);
        let ssm = aws_sdk_ssm::Client::new(sdk);
        let mut policy = match &config.policy {
            None => Policy::empty(),
            Some(location) => {
                let text = fetch_text(location, &s3, &ssm)
                    .await
                    .map_err(|e| StartError(format!("policy: {e}")))?;
                Policy::from_yaml(&format!("{location:?}"), &text)
                    .map_err(|e| StartError(e.to_string()))?
            }
        };
        for (fact, values) in &config.facts {
            policy.set_fact(fact, values.clone());
        }
        let mut builder = RuleSetBuilder::with_policy(policy.clone());
        for (path, text) in builtin_rules() {
            builder.add_yaml(&format!("builtin:{path}"), text);
        }
        if let Some(location) = &config.extra_rules {
            load_extra_rules(location, &s3, &ssm, &mut builder).await?;
        }
        let set = builder.build();
        for p in &set.problems {
            // One bad rule file does not stop the others; it is logged with its source.
            tracing::error!(source = %p.source, rule = ?p.rule, reason = %p.reason, "rule problem");
        }
        for n in &set.notes {
            tracing::info!(source = %n.source, rule = %n.rule, reason = %n.reason, "rule not run");
        }
        if set.rules.is_empty() {
            return Err(StartError("no rules loaded".into()));
        }
        let mut responses = HashMap::new();
        for r in &set.rules {
            if let Some(text) = &r.meta.response {
                responses.insert(r.meta.id.clone(), text.clone());
            }
        }
        for c in &set.correlations {
            if let Some(text) = &c.meta.response {
                responses.insert(c.meta.id.clone(), text.clone());
            }
        }
        let not_run = set.notes.len();
        let engine = Engine::from_set(set);
        let store = DynamoStore::new(
            aws_sdk_dynamodb::Client::new(sdk),
            &config.state_table,
            &config.findings_table,
        );
        Ok(Service {
            config,
            engine,
            policy,
            store,
            s3,
            responses,
            not_run,
            rescan: false,
            record_health: true,
        })
    }

    fn reader_options(&self) -> ReaderOptions {
        ReaderOptions {
            max_object_bytes: self.config.max_object_bytes,
            ..ReaderOptions::default()
        }
    }

    /// Store findings made by `source` (see [`DynamoStore::put_finding`]),
    /// dropping suppressed ones. Stored before anything alerts on them: the
    /// alert function reads the table's stream.
    pub async fn store_findings(
        &self,
        findings: Vec<Finding>,
        source: &str,
        counts: &mut Counts,
    ) -> Result<(), StoreError> {
        let canary = self
            .config
            .canary_bucket
            .as_ref()
            .is_some_and(|b| source.starts_with(&format!("s3://{b}/")));
        for mut f in findings {
            // The tag is the ingest function's to give: a rule that carries
            // it does not keep its findings from the alert channels.
            f.tags.retain(|t| t != canary::CANARY_TAG);
            if canary {
                f.tags.push(canary::CANARY_TAG.to_owned());
            }
            let t = trailwarden_cloudtrail::parse_event_time(f.latest_event_time());
            if let Some(reason) = self.policy.suppressed(&f, t) {
                tracing::info!(finding = %f.id, rule = %f.rule_id, reason, "suppressed by policy");
                counts.suppressed += 1;
                continue;
            }
            match self.store.put_finding(&f, source).await? {
                FindingPut::New => counts.findings_new += 1,
                FindingPut::Repeat => counts.findings_repeat += 1,
                FindingPut::RepeatNotCounted(reason) => {
                    tracing::warn!(finding = %f.id, rule = %f.rule_id, reason = %reason, "finding seen again; DynamoDB refused to count the repeat, the stored finding stands");
                    counts.findings_repeat += 1;
                }
                FindingPut::Bare(reason) => {
                    tracing::error!(finding = %f.id, rule = %f.rule_id, reason = %reason, "finding refused by DynamoDB with its index keys; stored without them (alerted on, not found by the indexes)");
                    counts.findings_new += 1;
                    counts.findings_refused += 1;
                }
                FindingPut::Refused(reason) => {
                    // Given up alone, so that it never blocks the delivery's
                    // other findings (nor, retried, the delivery itself).
                    tracing::error!(finding = %f.id, rule = %f.rule_id, principal = ?f.principal.as_deref().map(|p| trailwarden_engine::state::truncate_text(p, 256)), reason = %reason, "finding refused by DynamoDB; not stored, the others are");
                    counts.findings_refused += 1;
                }
            }
        }
        Ok(())
    }

    /// Process one S3 object named by a notification: ledger check, stream,
    /// detect, write state and findings, mark done. Objects that are not
    /// CloudTrail logs are skipped with a reason.
    pub async fn process_object(
        &self,
        notice: &ObjectNotice,
    ) -> Result<ObjectOutcome, ObjectError> {
        self.process_object_as(notice, self.rescan, self.record_health)
            .await
    }

    /// [`Service::process_object`], reading the object again even when the
    /// ledger says it was read when `rescan`, and counting it in its
    /// source's health only when `record_health` (a backfill reads
    /// history, which is not delivery).
    pub async fn process_object_as(
        &self,
        notice: &ObjectNotice,
        rescan: bool,
        record_health: bool,
    ) -> Result<ObjectOutcome, ObjectError> {
        let kind = parse_key(&notice.key).kind;
        if !kind.has_records() {
            let reason = match kind {
                KeyKind::Digest => "CloudTrail digest file",
                KeyKind::WritabilityCheck => "CloudTrail writability check",
                _ => "not a CloudTrail log key (AWSLogs/<account>/CloudTrail/…)",
            };
            return Ok(ObjectOutcome::Skipped(reason.into()));
        }
        let store_err = |e: StoreError| ObjectError::Store(e.to_string());
        // A canary object is evaluated by the single-event rules alone: it
        // writes no correlation or baseline state and counts in no source's
        // health, so it can neither mask a silent source nor teach a
        // baseline its made-up principal.
        let canary = self.config.canary_bucket.as_deref() == Some(notice.bucket.as_str());
        if !rescan
            && self
                .store
                .is_done(&notice.bucket, &notice.key, &notice.version)
                .await
                .map_err(store_err)?
        {
            return Ok(ObjectOutcome::AlreadyDone);
        }
        let mut session = Session::new(&self.engine);
        session.set_source(&format!(
            "s3://{}/{}@{}",
            notice.bucket, notice.key, notice.version
        ));
        session.fold_repeats(true);
        let source = format!("s3://{}/{}", notice.bucket, notice.key);
        let mut sink = SessionSink {
            service: self,
            runtime: tokio::runtime::Handle::current(),
            source: &source,
            session,
            findings: Vec::new(),
            rejects: Vec::new(),
            counts: Counts::default(),
            error: None,
            stateless: canary,
        };
        let summary = s3::read_s3_object(
            &self.s3,
            notice,
            // The canary bucket is the stack's own, whoever owns the trail's.
            if canary {
                None
            } else {
                self.config.expected_bucket_owner.as_deref()
            },
            &self.reader_options(),
            &mut sink,
        )
        .await;
        let SessionSink {
            mut session,
            mut findings,
            rejects,
            mut counts,
            error,
            ..
        } = sink;
        let rejected = match &summary {
            Ok(s) => s.rejected,
            Err(s3::ObjectFetchError::Read { failure, .. }) => failure.summary.rejected,
            Err(_) => 0,
        };
        for r in &rejects {
            tracing::warn!(bucket = %notice.bucket, key = %notice.key, record = r.index, offset = r.offset, reason = %r.reason, "record rejected");
        }
        if rejected > rejects.len() as u64 {
            tracing::warn!(bucket = %notice.bucket, key = %notice.key, rejected, logged = rejects.len(), "more records rejected than logged");
        }
        if let Err(missing @ s3::ObjectFetchError::Missing { .. }) = &summary {
            // Nothing was read; a retry would fail the same way.
            return Ok(ObjectOutcome::Missing(missing.to_string()));
        }
        if let Some(e) = error {
            return Err(store_err(e));
        }
        session.release_findings(&mut |f| findings.push(f));
        // State and findings of the records read before any fault are
        // written either way: state merges are idempotent per event, and
        // findings are stored before the state that records them, so the
        // retry of a failed object loses nothing and counts nothing twice.
        self.store_findings(findings, &source, &mut counts)
            .await
            .map_err(store_err)?;
        if !canary {
            self.flush(&mut session, &source, &mut counts)
                .await
                .map_err(store_err)?;
        }
        let summary = summary.map_err(|e| ObjectError::Read(e.to_string()))?;
        self.store
            .mark_done(
                &notice.bucket,
                &notice.key,
                &notice.version,
                summary.records,
            )
            .await
            .map_err(store_err)?;
        // The source's health, for the daily digest: a failure here loses
        // one object's count, not its findings, so it is logged, not retried.
        if !canary && record_health {
            if let Err(e) = self
                .store
                .record_source_health(
                    &notice.key,
                    summary.records,
                    summary.rejected,
                    chrono::Utc::now(),
                )
                .await
            {
                tracing::warn!(bucket = %notice.bucket, key = %notice.key, error = %e, "source health not recorded");
            }
        }
        counts.records = summary.records;
        counts.rejected = summary.rejected;
        Ok(ObjectOutcome::Done(summary, counts))
    }

    /// Evaluate one CloudTrail record from EventBridge with the single-event
    /// rules (finding ids equal the S3 path's, so both paths make one
    /// finding; where the S3 path folds repeats, its finding has the first
    /// event's id and replaces that event's, see `DynamoStore::put_finding`).
    pub async fn process_event(&self, record_json: &str) -> Result<Counts, String> {
        let record =
            Record::parse(record_json).map_err(|e| format!("not a CloudTrail event: {e}"))?;
        let findings = self.engine.findings(&record);
        let mut counts = Counts {
            records: 1,
            ..Counts::default()
        };
        self.store_findings(findings, "eventbridge", &mut counts)
            .await
            .map_err(|e| e.to_string())?;
        Ok(counts)
    }

    /// Evaluate a batch of CloudTrail records from EventBridge (the
    /// real-time queue) with every rule, correlations and baselines
    /// included: single-event findings stored, then the batch's state
    /// written in one flush. Finding ids are the S3 path's; the session is
    /// early ([`Session::set_early`]), so each event counts once in every
    /// correlation when its log file delivers it again, and retrying the
    /// batch counts nothing twice (state merges are idempotent per event
    /// id). Repeats are not folded: a real-time batch is not a log file.
    ///
    /// `records` are the records' JSON texts; one that is not a CloudTrail
    /// record is returned with its position and the reason, and the others
    /// are evaluated. An error (a store failure) fails the whole batch.
    pub async fn process_events(&self, records: &[&str]) -> Result<EventsOutcome, StoreError> {
        let mut session = Session::new(&self.engine);
        session.set_early(true);
        let mut findings = Vec::new();
        let mut outcome = EventsOutcome::default();
        for (i, text) in records.iter().enumerate() {
            match Record::parse(text) {
                Ok(record) => {
                    session.record(&record, &mut |f| findings.push(f));
                    outcome.counts.records += 1;
                }
                Err(e) => {
                    outcome.counts.rejected += 1;
                    outcome
                        .unreadable
                        .push((i, format!("not a CloudTrail record: {e}")));
                }
            }
        }
        let source = "eventbridge";
        self.store_findings(findings, source, &mut outcome.counts)
            .await?;
        self.flush(&mut session, source, &mut outcome.counts)
            .await?;
        Ok(outcome)
    }

    /// Write a session's state to DynamoDB: the rounds of
    /// `Session::flush_with`, each round's findings stored before its state
    /// writes (a window recorded as fired always has its finding stored).
    async fn flush(
        &self,
        session: &mut Session<'_>,
        source: &str,
        counts: &mut Counts,
    ) -> Result<(), StoreError> {
        let mut keys = session.state_keys();
        for _ in 0..FLUSH_ROUNDS {
            if keys.is_empty() {
                return Ok(());
            }
            let loaded = self.store.get_many(&keys).await?;
            let mut merge = session.merge(&keys, loaded);
            self.store_findings(merge.take_findings(), source, counts)
                .await?;
            let written = self.store.put_many(&merge.writes).await?;
            keys = session.settle(&keys, merge, &written);
            for r in session.refusals() {
                // One group's state is given up so that it never blocks
                // the object's other groups and findings.
                tracing::error!(rule = %r.key.rule, group_digest = %r.key.group, group = ?r.group, reason = %r.reason, "state write refused; this group's batch is not counted");
                counts.state_refused += 1;
            }
        }
        if keys.is_empty() {
            return Ok(());
        }
        Err(attempts_exhausted(keys.len()))
    }

    /// The response guide of a rule, for alerts.
    pub fn response_for(&self, rule_id: &str) -> Option<&str> {
        self.responses.get(rule_id).map(String::as_str)
    }

    /// Whether a finding is at or above the alert threshold of some
    /// channel.
    pub fn should_alert(&self, level: Level) -> bool {
        ["sns", "chatbot", "slack"]
            .iter()
            .any(|c| self.should_alert_on(c, level))
    }

    /// Whether a finding at `level` goes to `channel` (`sns`, `chatbot` or
    /// `slack`): at or above the channel's own minimum, else the general one.
    pub fn should_alert_on(&self, channel: &str, level: Level) -> bool {
        let min = self
            .config
            .channel_min_levels
            .iter()
            .find(|(c, _)| *c == channel)
            .map_or(self.config.min_alert_level, |(_, l)| *l);
        level >= min
    }
}

/// What [`Service::process_events`] did with a batch.
#[derive(Debug, Default)]
pub struct EventsOutcome {
    /// The records evaluated and the findings and state they made.
    pub counts: Counts,
    /// The records that are not CloudTrail records: position in the batch,
    /// and why.
    pub unreadable: Vec<(usize, String)>,
}

/// The partial batch response of an SQS or stream event source
/// (`ReportBatchItemFailures`): only the items named are retried.
#[derive(Debug, Default, serde::Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct BatchResponse {
    /// The items to retry.
    pub batch_item_failures: Vec<ItemFailure>,
}

/// One item to retry: an SQS message id, or a stream record's sequence
/// number.
#[derive(Debug, serde::Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ItemFailure {
    /// The message id or sequence number.
    pub item_identifier: String,
}

impl BatchResponse {
    /// Retry this item.
    pub fn fail(&mut self, item_identifier: String) {
        self.batch_item_failures
            .push(ItemFailure { item_identifier });
    }
}

/// Counts for logs and metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Records evaluated.
    pub records: u64,
    /// Records rejected.
    pub rejected: u64,
    /// New findings stored.
    pub findings_new: u64,
    /// Findings seen again (count incremented).
    pub findings_repeat: u64,
    /// Findings suppressed by policy.
    pub suppressed: u64,
    /// State writes DynamoDB refused for good (logged with rule and group).
    pub state_refused: u64,
    /// Findings DynamoDB refused with their index keys (logged with id and
    /// rule): stored bare (also counted new) or, refused bare too, not
    /// stored.
    pub findings_refused: u64,
}

/// What happened to an object.
#[derive(Debug)]
pub enum ObjectOutcome {
    /// Processed.
    Done(ObjectSummary, Counts),
    /// The ledger says it was processed before.
    AlreadyDone,
    /// Not a log object.
    Skipped(String),
    /// The object was deleted before it was read (`NoSuchKey`): skipped,
    /// not retried, since no retry can read it.
    Missing(String),
}

/// The objects of a batch (a queue's messages, a backfill batch, a
/// replay) added up: what the callers log at the end and emit as metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    /// Objects read to the end.
    pub objects: u64,
    /// Objects the ledger had as done, or not log objects.
    pub skipped: u64,
    /// Objects deleted before they were read.
    pub missing: u64,
    /// Objects that failed (their message is retried).
    pub failed: u64,
    /// The read objects' counts, summed.
    pub counts: Counts,
}

impl Tally {
    /// Count one object's outcome; returns the read object's counts, if
    /// it was read.
    pub fn add(&mut self, outcome: &Result<ObjectOutcome, ObjectError>) -> Option<Counts> {
        match outcome {
            Ok(ObjectOutcome::Done(_, c)) => {
                self.objects += 1;
                let t = &mut self.counts;
                t.records += c.records;
                t.rejected += c.rejected;
                t.findings_new += c.findings_new;
                t.findings_repeat += c.findings_repeat;
                t.suppressed += c.suppressed;
                t.state_refused += c.state_refused;
                t.findings_refused += c.findings_refused;
                return Some(*c);
            }
            Ok(ObjectOutcome::AlreadyDone | ObjectOutcome::Skipped(_)) => self.skipped += 1,
            Ok(ObjectOutcome::Missing(_)) => self.missing += 1,
            Err(_) => self.failed += 1,
        }
        None
    }

    /// Writes DynamoDB refused: findings with their index keys, and state.
    pub fn refused(&self) -> u64 {
        self.counts.findings_refused + self.counts.state_refused
    }
}

/// Why an object failed (its message is retried, then goes to the DLQ).
#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    /// The object could not be read (fully).
    #[error("{0}")]
    Read(String),
    /// State or findings could not be written.
    #[error("store: {0}")]
    Store(String),
}

/// Single-event findings an object's reading gathers before it stores
/// them (and at each state flush): memory for findings stays bounded
/// whatever the object's size.
pub const FINDINGS_BATCH: usize = 500;

/// Rejected records logged one by one per object (all are counted).
pub const REJECTS_LOGGED: usize = 20;

/// The reader's sink for one object: records into the session; findings
/// stored in batches and the session's state flushed when it is large
/// (`Session::should_flush`), from inside the synchronous reader.
struct SessionSink<'a, 'e> {
    service: &'a Service,
    /// The runtime the reader runs under (in `block_in_place`), to wait on
    /// the stores.
    runtime: tokio::runtime::Handle,
    /// The object, as findings record it.
    source: &'a str,
    session: Session<'e>,
    findings: Vec<Finding>,
    rejects: Vec<RecordReject>,
    counts: Counts,
    /// The first store failure: the object fails and is retried, so
    /// nothing more of it is evaluated or written.
    error: Option<StoreError>,
    /// Single-event rules only, no state (a canary object).
    stateless: bool,
}

impl SessionSink<'_, '_> {
    /// Store the gathered findings and, when `state` is set, flush the
    /// session's state after them.
    async fn write(&mut self, state: bool) -> Result<(), StoreError> {
        let findings = std::mem::take(&mut self.findings);
        self.service
            .store_findings(findings, self.source, &mut self.counts)
            .await?;
        if state {
            self.service
                .flush(&mut self.session, self.source, &mut self.counts)
                .await?;
        }
        Ok(())
    }
}

impl RecordSink for SessionSink<'_, '_> {
    fn record(&mut self, index: u64, record: &Record<'_>) {
        if self.error.is_some() {
            return;
        }
        let mut released = false;
        if self.stateless {
            self.findings.extend(self.service.engine.findings(record));
        } else {
            let findings = &mut self.findings;
            let before = findings.len();
            self.session.next_record(index, &mut |f| findings.push(f));
            // A stretch's folded findings are stored at once.
            released = findings.len() > before;
            self.session.record(record, &mut |f| findings.push(f));
        }
        let state = !self.stateless && self.session.should_flush();
        if state || released || self.findings.len() >= FINDINGS_BATCH {
            // The reader runs in `block_in_place`, where blocking on the
            // runtime is allowed.
            let runtime = self.runtime.clone();
            if let Err(e) = runtime.block_on(self.write(state)) {
                self.error = Some(e);
            }
        }
    }

    fn reject(&mut self, reject: RecordReject) {
        if self.rejects.len() < REJECTS_LOGGED {
            self.rejects.push(reject);
        }
    }
}

/// Print one invocation's counts, and its duration since `started`, as a
/// CloudWatch Embedded Metric Format line.
pub fn emit_metrics(function: &str, started: std::time::Instant, counts: &[(&str, u64)]) {
    let mut metrics: Vec<(&str, f64, &str)> = counts
        .iter()
        .map(|(name, n)| (*name, *n as f64, "Count"))
        .collect();
    metrics.push((
        "Duration",
        started.elapsed().as_secs_f64() * 1000.0,
        "Milliseconds",
    ));
    println!("{}", emf_line(function, &metrics));
}

/// A CloudWatch Embedded Metric Format line for per-invocation counts.
pub fn emf_line(function: &str, metrics: &[(&str, f64, &str)]) -> String {
    let now = chrono::Utc::now().timestamp_millis();
    let mut root = serde_json::Map::new();
    let defs: Vec<serde_json::Value> = metrics
        .iter()
        .map(|(name, _, unit)| serde_json::json!({"Name": name, "Unit": unit}))
        .collect();
    root.insert(
        "_aws".into(),
        serde_json::json!({
            "Timestamp": now,
            "CloudWatchMetrics": [{"Namespace": "trailwarden", "Dimensions": [["Function"]], "Metrics": defs}],
        }),
    );
    root.insert("Function".into(), function.into());
    for (name, value, _) in metrics {
        root.insert((*name).into(), (*value).into());
    }
    serde_json::Value::Object(root).to_string()
}

#[cfg(test)]
mod tally_tests {
    use super::*;

    #[test]
    fn a_tally_adds_read_objects_and_counts_the_rest_by_kind() {
        let summary = trailwarden_cloudtrail::ObjectSummary {
            format: trailwarden_cloudtrail::Format::S3Delivery,
            compressed: true,
            records: 3,
            rejected: 1,
            bytes: 10,
            skipped: None,
            insights: 0,
            repaired: 0,
        };
        let counts = Counts {
            records: 3,
            rejected: 1,
            findings_new: 2,
            findings_repeat: 1,
            suppressed: 0,
            state_refused: 1,
            findings_refused: 2,
        };
        let mut tally = Tally::default();
        for outcome in [
            Ok(ObjectOutcome::Done(summary.clone(), counts)),
            Ok(ObjectOutcome::Done(summary, counts)),
            Ok(ObjectOutcome::AlreadyDone),
            Ok(ObjectOutcome::Skipped("digest file".into())),
            Ok(ObjectOutcome::Missing("gone".into())),
            Err(ObjectError::Read("truncated".into())),
        ] {
            let read = tally.add(&outcome);
            assert_eq!(
                read.is_some(),
                matches!(outcome, Ok(ObjectOutcome::Done(..)))
            );
        }
        assert_eq!(
            (tally.objects, tally.skipped, tally.missing, tally.failed),
            (2, 2, 1, 1)
        );
        assert_eq!(tally.counts.records, 6);
        assert_eq!(tally.counts.findings_new, 4);
        assert_eq!(tally.refused(), 6);
    }
}
