//! The alert function: the findings table's stream is the outbox. A new
//! finding (INSERT) at or above the minimum level is sent by email (SNS),
//! and to Chatbot and Slack when configured; a repeat (MODIFY: its count
//! went up) does not alert again. Each channel that takes the finding is
//! recorded on the finding's item (`delivered`); a failed send fails its
//! record, which the stream retries (then the on-failure destination keeps
//! it), and the retry sends only to the channels not yet recorded: a Slack
//! outage never sends the email twice.
//!
//! With `TRAILWARDEN_EVENT_BUS` set, every new finding (any level, even one
//! the deduplication window holds back from people) is also put on that
//! EventBridge bus as a `trailwarden Finding` event, at least once (delivery
//! record `eventbridge`; a put whose record failed to be written, or whose
//! answer was lost, is put again with the record's retry: consumers
//! deduplicate on the finding id).

use serde_json::Value;
use trailwarden_aws::dynamo::AlertWindow;
use trailwarden_aws::events::CHANNEL as EVENTBRIDGE;
use trailwarden_aws::notify::Notifier;
use trailwarden_aws::securityhub::CHANNEL as SECURITY_HUB;
use trailwarden_aws::{emit_metrics, Service};
pub use trailwarden_aws::{BatchResponse, ItemFailure};
use trailwarden_engine::Finding;

/// The finding in a stream record's new image, if the record is an INSERT.
pub fn inserted_finding(record: &Value) -> Result<Option<Finding>, String> {
    if record.get("eventName").and_then(Value::as_str) != Some("INSERT") {
        return Ok(None);
    }
    let body = record
        .pointer("/dynamodb/NewImage/body/S")
        .and_then(Value::as_str)
        .ok_or("an INSERT without NewImage.body; the stream must include new images")?;
    serde_json::from_str(body)
        .map(Some)
        .map_err(|e| format!("the finding body does not parse: {e}"))
}

/// The delivery record of a finding held back by the deduplication window
/// (see `TRAILWARDEN_ALERT_DEDUP_MINUTES`).
pub const DEDUPLICATED: &str = "deduplicated";

/// How long into an invocation a channel's rate limit may still be waited
/// out (the function's timeout is 60 s; later, the send fails and the record
/// is retried).
pub const WAIT_BUDGET: std::time::Duration = std::time::Duration::from_secs(30);

/// Handle one batch of stream records (as JSON, the shape Lambda delivers).
pub async fn handle(service: &Service, notifier: &Notifier, event: Value) -> BatchResponse {
    let started = std::time::Instant::now();
    let mut response = BatchResponse::default();
    let (mut sent, mut failed, mut refused, mut unrecorded) = (0u64, 0u64, 0u64, 0u64);
    let mut deduplicated = 0u64;
    let mut canary = 0u64;
    let (mut imported, mut import_failures, mut import_refused) = (0u64, 0u64, 0u64);
    let (mut events_put, mut event_failures, mut events_refused) = (0u64, 0u64, 0u64);
    let records = event
        .get("Records")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for record in &records {
        let sequence = record
            .pointer("/dynamodb/SequenceNumber")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let mut finding = match inserted_finding(record) {
            Ok(Some(f)) => f,
            Ok(None) => continue,
            Err(e) => {
                // A record that can never be sent is logged and skipped,
                // not retried for ever; the finding stays in the table.
                tracing::error!(sequence = %sequence, error = %e, "stream record not understood");
                continue;
            }
        };
        // The canary's findings prove the path to the table; they reach
        // no one (the canary function checks them, the digest reports it).
        if trailwarden_aws::canary::is_canary(&finding) {
            canary += 1;
            continue;
        }
        let alerts = service.should_alert(finding.level);
        let events = notifier.events();
        let hub = notifier.security_hub().filter(|h| h.takes(finding.level));
        if !alerts && events.is_none() && hub.is_none() {
            continue;
        }
        let delivered = match service.store.delivered_channels(&finding.id).await {
            Ok(d) => d,
            Err(e) => {
                failed += 1;
                tracing::error!(finding = %finding.id, error = %e, "delivery records not read; the record will be retried");
                response.fail(sequence);
                break;
            }
        };
        // Every new finding's event, whatever its level and however many
        // of its kind the deduplication window holds back from people. A
        // failure does not hold back the alerts; the record is retried
        // after them for what is still missing.
        let mut retry = false;
        if let Some(events) = events.filter(|_| !delivered.contains(EVENTBRIDGE)) {
            match events.put(&finding).await {
                Ok(()) => {
                    events_put += 1;
                    tracing::info!(finding = %finding.id, bus = events.bus(), "finding event put");
                    if let Err(e) = service
                        .store
                        .record_delivery(&finding.id, EVENTBRIDGE)
                        .await
                    {
                        unrecorded += 1;
                        tracing::error!(finding = %finding.id, channel = EVENTBRIDGE, error = %e, "event put but its delivery not recorded");
                    }
                }
                Err(e) if e.permanent => {
                    events_refused += 1;
                    tracing::error!(finding = %finding.id, channel = EVENTBRIDGE, error = %e, "event refused for good; skipped, not retried");
                }
                Err(e) => {
                    event_failures += 1;
                    tracing::error!(finding = %finding.id, channel = EVENTBRIDGE, error = %e, "event not put; the record will be retried");
                    retry = true;
                }
            }
        }
        // Security Hub, for findings at or above its level (windows aside:
        // it keeps its own workflow); as for events, a failure is retried
        // after the alerts.
        if let Some(hub) = hub.filter(|_| !delivered.contains(SECURITY_HUB)) {
            match hub
                .import(&finding, service.response_for(&finding.rule_id))
                .await
            {
                Ok(()) => {
                    imported += 1;
                    if let Err(e) = service
                        .store
                        .record_delivery(&finding.id, SECURITY_HUB)
                        .await
                    {
                        unrecorded += 1;
                        tracing::error!(finding = %finding.id, channel = SECURITY_HUB, error = %e, "imported but its delivery not recorded");
                    }
                }
                Err(e) if e.permanent => {
                    import_refused += 1;
                    tracing::error!(finding = %finding.id, channel = SECURITY_HUB, error = %e, "Security Hub refused it for good; skipped, not retried");
                }
                Err(e) => {
                    import_failures += 1;
                    tracing::error!(finding = %finding.id, channel = SECURITY_HUB, error = %e, "not imported; the record will be retried");
                    retry = true;
                }
            }
        }
        if !alerts || delivered.contains(DEDUPLICATED) {
            if retry {
                response.fail(sequence);
                break;
            }
            continue;
        }
        // Alerted before: a retry (the window was claimed then).
        let alerted = delivered
            .iter()
            .any(|c| c != EVENTBRIDGE && c != SECURITY_HUB);
        let window_minutes = service.config.alert_dedup_minutes;
        if window_minutes > 0 && !alerted {
            let now = chrono::Utc::now().timestamp();
            let principal = finding.principal.as_deref().unwrap_or("-");
            match service
                .store
                .claim_alert_window(
                    &finding.rule_id,
                    principal,
                    &finding.id,
                    now,
                    i64::from(window_minutes) * 60,
                )
                .await
            {
                Ok(AlertWindow::Open { suppressed, since }) => {
                    if let (true, Some(since)) = (suppressed > 0, since) {
                        let since = chrono::DateTime::from_timestamp(since, 0)
                            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                            .unwrap_or_default();
                        let summary = format!(
                            "{suppressed} more finding(s) of this rule by this principal were \
                             stored but not alerted in the {window_minutes}-minute window from {since} \
                             (trailwarden findings --rule {})",
                            finding.rule_id
                        );
                        finding.note = Some(match finding.note.take() {
                            Some(note) => format!("{note}; {summary}"),
                            None => summary,
                        });
                    }
                }
                Ok(AlertWindow::Held { until }) => {
                    deduplicated += 1;
                    tracing::info!(finding = %finding.id, rule = %finding.rule_id, until, "another finding of this rule and principal alerted within the window; stored, not alerted");
                    if let Err(e) = service
                        .store
                        .record_delivery(&finding.id, DEDUPLICATED)
                        .await
                    {
                        unrecorded += 1;
                        tracing::error!(finding = %finding.id, error = %e, "deduplication not recorded");
                    }
                    if retry {
                        response.fail(sequence);
                        break;
                    }
                    continue;
                }
                Err(e) => {
                    failed += 1;
                    tracing::error!(finding = %finding.id, error = %e, "alert window not read; the record will be retried");
                    response.fail(sequence);
                    break;
                }
            }
        }
        for channel in notifier.channels() {
            if !service.should_alert_on(channel, finding.level) {
                continue;
            }
            if delivered.contains(channel) {
                tracing::info!(finding = %finding.id, channel, "already delivered; not sent again");
                continue;
            }
            match notifier
                .send_to(
                    channel,
                    &finding,
                    service.response_for(&finding.rule_id),
                    started + WAIT_BUDGET,
                )
                .await
            {
                Ok(()) => {
                    sent += 1;
                    tracing::info!(finding = %finding.id, rule = %finding.rule_id, level = %finding.level, channel, "alert sent");
                    if let Err(e) = service.store.record_delivery(&finding.id, channel).await {
                        // Sent: a retry of this record (another channel
                        // failing) would send it again. Counted and logged.
                        unrecorded += 1;
                        tracing::error!(finding = %finding.id, channel, error = %e, "alert sent but its delivery not recorded");
                    }
                }
                Err(e) if e.permanent => {
                    // Refused for good: retrying would block the shard's
                    // later findings for nothing. The finding stays in the
                    // table; the other channels still get it.
                    refused += 1;
                    tracing::error!(finding = %finding.id, channel, error = %e, "alert refused by the channel for good; skipped, not retried");
                }
                Err(e) => {
                    // The other channels still get it now; the record is
                    // retried for this one.
                    failed += 1;
                    tracing::error!(finding = %finding.id, channel, error = %e, "alert not sent; the record will be retried for the channels not yet delivered");
                    retry = true;
                }
            }
        }
        if retry {
            response.fail(sequence);
            // Later records must wait for this one: stop here.
            break;
        }
    }
    emit_metrics(
        "alert",
        started,
        &[
            ("AlertsSent", sent),
            ("AlertFailures", failed),
            ("AlertsRefused", refused),
            ("AlertDeliveriesUnrecorded", unrecorded),
            ("AlertsDeduplicated", deduplicated),
            ("CanaryFindingsNotAlerted", canary),
            ("SecurityHubImported", imported),
            ("SecurityHubFailures", import_failures),
            ("SecurityHubRefused", import_refused),
            ("FindingEventsPut", events_put),
            ("FindingEventFailures", event_failures),
            ("FindingEventsRefused", events_refused),
        ],
    );
    response
}

pub use trailwarden_aws::notify::notifier;
