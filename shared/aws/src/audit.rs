//! The deployment's daily audit digest: the last hours' findings from the
//! findings table, the idle AI principals the sweeper stored, and the
//! pipeline's health (what each account and region of the trail delivered,
//! the sources gone silent, the dead-letter queues), built as
//! [`Digest`] and sent by email and Slack. A source gone silent is also a
//! finding of its own ([`silent_source_finding`]), so it alerts like any
//! other.

use aws_sdk_sqs::types::QueueAttributeName;
use chrono::{DateTime, Utc};
use trailwarden_engine::digest::{Digest, Health, Row, SourceHealth};
use trailwarden_engine::{finding_id, Finding, Level};

use crate::dynamo::error_chain;
use crate::Service;

/// The rule id of a source (an account and region of the trail) that
/// delivered log objects before a digest's window and none in it.
pub const SILENT_SOURCE_RULE_ID: &str = "trailwarden-silent-source";

/// The title of [`SILENT_SOURCE_RULE_ID`]'s findings.
pub const SILENT_SOURCE_TITLE: &str = "CloudTrail Logs Stopped Arriving";

/// Most silent-source findings one digest stores (each alerts): a bucket
/// writer who invents sources cannot flood the alert channels or run the
/// function out of time; the digest still lists how many there are.
pub const MAX_SILENT_FINDINGS: usize = 50;

/// How long before a run its window ends (hours): CloudTrail delivers a
/// log file within about 15 minutes of its events, so a window that ends
/// an hour before the run holds the findings of all its events, and
/// back-to-back windows meet.
pub const WINDOW_LAG_HOURS: i64 = 1;

/// The longest email body sent (bytes): SNS takes at most 256 KiB.
pub const MAX_EMAIL_BYTES: usize = 250 * 1024;

/// Messages waiting in the queues at `urls` (visible and in flight:
/// SQS's `ApproximateNumberOfMessages` and
/// `ApproximateNumberOfMessagesNotVisible`, see
/// <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_GetQueueAttributes.html>).
pub async fn dead_letters(sqs: &aws_sdk_sqs::Client, urls: &[String]) -> Result<u64, String> {
    let mut total = 0;
    for url in urls {
        let out = sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .map_err(|e| format!("SQS GetQueueAttributes on {url}: {}", error_chain(&e)))?;
        let attributes = out.attributes.unwrap_or_default();
        for name in [
            QueueAttributeName::ApproximateNumberOfMessages,
            QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
        ] {
            total += attributes
                .get(&name)
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    Ok(total)
}

/// The digest of `hours` ending [`WINDOW_LAG_HOURS`] before `run_at`,
/// from the deployment's tables and queues (`sqs` reads the dead-letter
/// queues the configuration names). Findings are in it by their event
/// time; the sources' health is by the time objects were read, over the
/// `hours` before `run_at` itself.
pub async fn build_digest(
    service: &Service,
    sqs: &aws_sdk_sqs::Client,
    run_at: DateTime<Utc>,
    hours: u32,
) -> Result<Digest, String> {
    let as_of = run_at - chrono::TimeDelta::hours(WINDOW_LAG_HOURS);
    let since = as_of - chrono::TimeDelta::hours(i64::from(hours));
    let text = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let table = service.store.findings_table();
    let window =
        crate::findings::digest_window(service.store.client(), table, &text(since), as_of).await?;
    let row = |r: crate::findings::TableFinding| -> Row { (r.finding, Some(r.status)) };
    let findings: Vec<Row> = window.findings.into_iter().map(row).collect();
    let idle: Vec<Row> = window.idle.into_iter().map(row).collect();
    let dead_letters = match service.config.dead_letter_queues.as_slice() {
        [] => None,
        urls => Some(dead_letters(sqs, urls).await?),
    };
    let health = deployment_health(
        &service.store,
        run_at - chrono::TimeDelta::hours(i64::from(hours)),
        run_at,
        dead_letters,
    )
    .await?;
    Ok(Digest::build(
        &findings,
        &service.engine,
        &idle,
        Some(service.config.idle_days),
        Some(health),
        text(since),
        text(as_of),
        &format!("trailwarden findings --table {table} show"),
    ))
}

/// The pipeline's health a deployment's tables record, from `since` to
/// `until` (read times): each source's delivery (most objects first), the
/// silent sources, their sums and the last canary run; `dead_letters` as
/// the caller read them (`None`: not known).
pub async fn deployment_health(
    store: &crate::DynamoStore,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    dead_letters: Option<u64>,
) -> Result<Health, String> {
    let (mut sources, silent) = store
        .source_health(since, until)
        .await
        .map_err(|e| e.to_string())?;
    sources.sort_by(|a, b| {
        (b.objects, &a.account, &a.region).cmp(&(a.objects, &b.account, &b.region))
    });
    Ok(Health {
        objects: sources.iter().map(|s| s.objects).sum(),
        records: sources.iter().map(|s| s.records).sum(),
        last_object_at: sources
            .iter()
            .filter_map(|s| s.last_object_at.clone())
            .max(),
        rejected: Some(sources.iter().map(|s| s.rejected).sum()),
        sources,
        silent,
        dead_letters,
        canary: crate::canary::last_result(store).await?,
    })
}

/// The finding of a source gone silent: delivered its last object at
/// `last_object_at` and nothing since `since`. One per silence: its id
/// comes from the source and its last object's time, so each day's digest
/// counts the same silence again instead of making a new finding.
pub fn silent_source_finding(src: &SourceHealth, since: &str) -> Finding {
    let last = src.last_object_at.clone().unwrap_or_default();
    let source = format!("{}#{}", src.account, src.region);
    Finding {
        id: finding_id(SILENT_SOURCE_RULE_ID, &[source, last.clone()]),
        rule_id: SILENT_SOURCE_RULE_ID.to_owned(),
        rule_title: SILENT_SOURCE_TITLE.to_owned(),
        level: Level::Medium,
        tags: vec!["attack.t1562.008".to_owned(), "ai.governance".to_owned()],
        description: "An account and region of the trail delivered CloudTrail log objects before and none since: the trail was stopped or deleted, its bucket policy or the organisation trail changed, the account left the organisation, or delivery is failing. Until it resumes, nothing that happens there is detected.".to_owned(),
        event_time: last.clone(),
        last_event_time: None,
        account: (src.account != "other").then(|| src.account.clone()),
        region: (src.region != "other").then(|| src.region.clone()),
        principal: None,
        principal_type: None,
        access_key_id: None,
        source_ip: None,
        user_agent: None,
        event_source: "cloudtrail.amazonaws.com".to_owned(),
        event_name: "LogDelivery".to_owned(),
        error_code: None,
        event_ids: Vec::new(),
        count: 1,
        group: [
            ("account".to_owned(), src.account.clone()),
            ("region".to_owned(), src.region.clone()),
        ]
        .into(),
        note: Some(format!(
            "no log object read since {since}; the last was read at {last}"
        )),
    }
}

/// What sending the digest needs, built once at cold start.
pub struct DigestSender {
    /// The alert topic (email) and Slack.
    pub notifier: crate::notify::Notifier,
    /// For the dead-letter queues' depth.
    pub sqs: aws_sdk_sqs::Client,
}

impl DigestSender {
    /// The sender for `service`'s configuration (reads the Slack secret);
    /// `None` when the configuration asks for no digest
    /// (`TRAILWARDEN_DIGEST_HOURS` 0 or unset).
    pub async fn new(
        service: &Service,
        sdk: &aws_config::SdkConfig,
    ) -> Result<Option<DigestSender>, String> {
        if service.config.digest_hours == 0 {
            return Ok(None);
        }
        Ok(Some(DigestSender {
            notifier: crate::notify::notifier(service, sdk).await?,
            sqs: aws_sdk_sqs::Client::new(sdk),
        }))
    }

    /// Build the digest of the configured hours before `as_of`, store a
    /// finding for each source gone silent (one per silence, so it alerts
    /// once), and send the digest by email and Slack. Returns the digest.
    pub async fn send(&self, service: &Service, as_of: DateTime<Utc>) -> Result<Digest, String> {
        let started = std::time::Instant::now();
        let digest = build_digest(service, &self.sqs, as_of, service.config.digest_hours).await?;
        let silent: Vec<Finding> = digest
            .health
            .iter()
            .flat_map(|h| &h.silent)
            .take(MAX_SILENT_FINDINGS)
            .map(|src| silent_source_finding(src, &digest.since))
            .collect();
        let silent_sources = silent.len() as u64;
        let mut counts = crate::Counts::default();
        service
            .store_findings(
                silent,
                &format!("digest:{}", as_of.format("%Y-%m-%d")),
                &mut counts,
            )
            .await
            .map_err(|e| e.to_string())?;
        let mut text = digest.to_text();
        if text.len() > MAX_EMAIL_BYTES {
            let mut at = MAX_EMAIL_BYTES;
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            text.truncate(at);
            text.push_str("\n… cut to fit an email: run trailwarden digest --table for the rest\n");
        }
        match self
            .notifier
            .send_digest(&digest.subject(), &text, &digest.to_slack())
            .await
        {
            Ok(()) => {}
            // Sending again cannot succeed (a revoked webhook): the other
            // channel has it; no retry that would send it there again.
            Err(e) if e.permanent => {
                tracing::error!(channel = e.channel, reason = %e.reason, "digest refused for good");
            }
            Err(e) => return Err(e.to_string()),
        }
        crate::emit_metrics(
            "digest",
            started,
            &[
                ("DigestFindings", digest.total),
                ("SilentSources", silent_sources),
                (
                    "DeadLetters",
                    digest
                        .health
                        .as_ref()
                        .and_then(|h| h.dead_letters)
                        .unwrap_or(0),
                ),
            ],
        );
        Ok(digest)
    }
}
