//! The realtime function: CloudTrail events from EventBridge ("AWS API Call
//! via CloudTrail", sign-in events), in one of two ways the stack chooses
//! (template parameter `RealtimeCorrelations`):
//!
//! - invoked by the EventBridge rule with one event ([`handle`]): the
//!   single-event rules, nothing stateful;
//! - fed by an SQS queue the rule sends to, in batches gathered over a
//!   short window ([`handle_queue`]): every rule, correlations and
//!   baselines included, with one state flush per batch, so LLMjacking,
//!   key sharing, bursts and dormant wake-ups are found minutes before the
//!   log file comes. Each event counts once in every correlation when its
//!   log file delivers it again (`Session::set_early`).
//!
//! Finding ids are the same as on the S3 path, so an event seen both ways
//! makes one finding.
//!
//! Only events AWS itself put on a bus are evaluated. Any principal allowed
//! to call `events:PutEvents` on the central bus can send a custom event
//! shaped like a CloudTrail one, but EventBridge refuses custom events whose
//! `source` begins with `aws.` (only AWS services emit those), and a
//! CloudTrail event is delivered in the account that recorded it, so its
//! envelope's `account` equals the record's `recipientAccountId`. Events
//! that fail either check are rejected: logged, counted in the
//! `RejectedEvents` metric, and not retried.

use aws_lambda_events::sqs::SqsEvent;
use serde_json::Value;
use trailwarden_aws::{emit_metrics, BatchResponse, Service};

/// Why an event from EventBridge is not evaluated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// Not a CloudTrail event (another `detail-type`): nothing to do.
    NotCloudTrail,
    /// `source` does not begin with `aws.`: a custom event (`PutEvents`),
    /// which anyone with access to the bus can forge.
    CustomSource(String),
    /// The envelope's `account` is not the record's `recipientAccountId`
    /// (or one of them is missing): the event does not come from the
    /// account the record names.
    AccountMismatch {
        /// The envelope's `account`.
        envelope: String,
        /// The record's `recipientAccountId`.
        record: String,
    },
    /// The record's `eventTime` is more than [`MAX_AHEAD_MS`] ahead of the
    /// function's clock (or is not a time): AWS records events as they
    /// happen, and an event dated ahead would move correlation windows
    /// past the real events.
    Ahead(String),
}

/// How far ahead of the function's clock an event time may be (clocks
/// differ by seconds; 15 minutes is far beyond that), in ms.
pub const MAX_AHEAD_MS: i64 = 15 * 60_000;

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rejection::NotCloudTrail => f.write_str("not a CloudTrail event"),
            Rejection::CustomSource(source) => write!(
                f,
                "source {:?} does not begin with \"aws.\": a custom event, not one AWS emitted",
                cut(source)
            ),
            Rejection::AccountMismatch { envelope, record } => write!(
                f,
                "the event's account {:?} is not the record's recipientAccountId {:?}",
                cut(envelope),
                cut(record)
            ),
            Rejection::Ahead(time) => write!(
                f,
                "eventTime {:?} is not a time at or before the function's clock (15 minutes allowed)",
                cut(time)
            ),
        }
    }
}

/// At most 64 characters of an attacker-chosen value, for a log line.
fn cut(value: &str) -> String {
    value.chars().take(64).collect()
}

/// The CloudTrail record (`detail`) of an EventBridge event, if AWS emitted
/// the event for the account the record names.
///
/// Checks, in order: `detail-type` names a CloudTrail event ("... via
/// CloudTrail"), `source` begins with `aws.` (EventBridge refuses custom
/// events with such a source: see "Amazon EventBridge events" in the
/// EventBridge user guide), and the envelope's `account` equals the
/// record's `recipientAccountId`.
pub fn cloudtrail_detail(event: &Value) -> Result<&Value, Rejection> {
    let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("").to_owned();
    let detail_type = text(event.get("detail-type"));
    if !detail_type.ends_with("via CloudTrail") {
        return Err(Rejection::NotCloudTrail);
    }
    let source = text(event.get("source"));
    if !source.starts_with("aws.") {
        return Err(Rejection::CustomSource(source));
    }
    let detail = event.get("detail").ok_or(Rejection::NotCloudTrail)?;
    let envelope = text(event.get("account"));
    let record = text(detail.get("recipientAccountId"));
    if envelope.is_empty() || envelope != record {
        return Err(Rejection::AccountMismatch { envelope, record });
    }
    Ok(detail)
}

/// `detail` (a CloudTrail record) if its `eventTime` is a time no more
/// than [`MAX_AHEAD_MS`] after `now_ms` (epoch ms).
pub fn not_ahead(detail: &Value, now_ms: i64) -> Result<&Value, Rejection> {
    let time = detail["eventTime"].as_str().unwrap_or("");
    match trailwarden_cloudtrail::parse_event_time(time) {
        Some(t) if t <= now_ms + MAX_AHEAD_MS => Ok(detail),
        _ => Err(Rejection::Ahead(time.to_owned())),
    }
}

/// The function's clock, epoch ms.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Handle one EventBridge event. An error makes EventBridge retry it (and
/// then send it to the target's dead-letter queue); a rejected event is
/// not an error.
pub async fn handle(service: &Service, event: Value) -> Result<(), String> {
    let started = std::time::Instant::now();
    let detail = match cloudtrail_detail(&event).and_then(|d| not_ahead(d, now_ms())) {
        Ok(detail) => detail,
        Err(rejection) => {
            if log_rejection(&event, &rejection) {
                emit_metrics("realtime", started, &[("RejectedEvents", 1)]);
            }
            return Ok(());
        }
    };
    let text = detail.to_string();
    let result = service.process_event(&text).await;
    let (findings, refused, failed) = match &result {
        Ok(c) => (c.findings_new, c.findings_refused, 0),
        Err(e) => {
            tracing::error!(event_id = ?detail.get("eventID"), error = %e, "event failed");
            (0, 0, 1)
        }
    };
    emit_metrics(
        "realtime",
        started,
        &[
            ("Records", 1),
            ("Findings", findings),
            ("FindingsRefused", refused),
            ("FailedEvents", failed),
        ],
    );
    result.map(|_| ())
}

/// Whether a function payload is an SQS batch (the real-time queue's)
/// rather than one EventBridge event: its `Records` come from `aws:sqs`.
pub fn is_sqs_batch(payload: &Value) -> bool {
    payload["Records"][0]["eventSource"] == "aws:sqs"
}

/// Handle one batch of the real-time queue: each message's body is an
/// EventBridge event as the rule's SQS target delivers it (the whole
/// event). Events AWS emitted are evaluated together with every rule
/// ([`Service::process_events`]); rejected ones are logged and counted,
/// not retried. Reported as failed, so SQS delivers them again and then
/// moves them to the dead-letter queue: a message that is not JSON or
/// whose record is not a CloudTrail record, and every evaluated message
/// when the stores failed.
pub async fn handle_queue(service: &Service, batch: SqsEvent) -> BatchResponse {
    let started = std::time::Instant::now();
    let mut response = BatchResponse::default();
    let (mut rejected, mut failed) = (0u64, 0u64);
    // (message id, the record's text)
    let mut accepted: Vec<(String, String)> = Vec::new();
    let now = now_ms();
    for message in batch.records {
        let id = message.message_id.unwrap_or_default();
        let body = message.body.as_deref().unwrap_or_default();
        let event: Value = match serde_json::from_str(body) {
            Ok(event) => event,
            Err(e) => {
                tracing::error!(message_id = %cut(&id), error = %e, "message is not an EventBridge event (JSON); it will go to the dead-letter queue after its retries");
                response.fail(id);
                failed += 1;
                continue;
            }
        };
        match cloudtrail_detail(&event).and_then(|d| not_ahead(d, now)) {
            Ok(detail) => accepted.push((id, detail.to_string())),
            Err(rejection) => rejected += u64::from(log_rejection(&event, &rejection)),
        }
    }
    let texts: Vec<&str> = accepted.iter().map(|(_, text)| text.as_str()).collect();
    let mut counts = trailwarden_aws::Counts::default();
    match service.process_events(&texts).await {
        Ok(outcome) => {
            for (i, reason) in &outcome.unreadable {
                let id = &accepted[*i].0;
                tracing::error!(message_id = %cut(id), reason = %reason, "event not evaluated; it will go to the dead-letter queue after its retries");
                response.fail(id.clone());
                failed += 1;
            }
            counts = outcome.counts;
            tracing::info!(
                events = texts.len(),
                findings_new = counts.findings_new,
                findings_repeat = counts.findings_repeat,
                state_refused = counts.state_refused,
                "batch evaluated"
            );
        }
        Err(e) => {
            tracing::error!(events = texts.len(), error = %e, "batch failed; its events will be retried, then sent to the dead-letter queue");
            for (id, _) in accepted {
                response.fail(id);
                failed += 1;
            }
        }
    }
    emit_metrics(
        "realtime",
        started,
        &[
            ("Records", counts.records),
            ("Findings", counts.findings_new),
            ("FindingsRefused", counts.findings_refused),
            ("StateWritesRefused", counts.state_refused),
            ("RejectedEvents", rejected),
            ("FailedEvents", failed),
        ],
    );
    response
}

/// Log why an event is not evaluated; true when it counts as rejected (a
/// forged or foreign event, not merely another kind of event).
fn log_rejection(event: &Value, rejection: &Rejection) -> bool {
    if *rejection == Rejection::NotCloudTrail {
        let detail_type = cut(event["detail-type"].as_str().unwrap_or(""));
        tracing::info!(detail_type, "not a CloudTrail event; ignored");
        return false;
    }
    let event_id = cut(event["id"].as_str().unwrap_or(""));
    tracing::warn!(event_id, reason = %rejection, "event rejected: not evaluated");
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// An event as EventBridge delivers a CloudTrail management event (the
    /// envelope of "AWS API Call via CloudTrail" events in the EventBridge
    /// user guide), for account 111122223333.
    fn event(source: &str, account: &str, recipient: &str) -> Value {
        json!({
            "version": "0",
            "id": "6f3b9a2e-1c4d-4e5f-8a7b-9c0d1e2f3a4b",
            "detail-type": "AWS API Call via CloudTrail",
            "source": source,
            "account": account,
            "time": "2026-11-30T08:02:13Z",
            "region": "us-east-1",
            "resources": [],
            "detail": {
                "eventVersion": "1.09",
                "eventSource": "cloudtrail.amazonaws.com",
                "eventName": "StopLogging",
                "recipientAccountId": recipient,
            }
        })
    }

    #[test]
    fn an_event_aws_emitted_for_the_recorded_account_is_evaluated() {
        let e = event("aws.cloudtrail", "111122223333", "111122223333");
        assert_eq!(
            cloudtrail_detail(&e).unwrap()["eventName"],
            json!("StopLogging")
        );
        let mut sign_in = event("aws.signin", "111122223333", "111122223333");
        sign_in["detail-type"] = json!("AWS Console Sign In via CloudTrail");
        assert!(cloudtrail_detail(&sign_in).is_ok());
    }

    #[test]
    fn forged_and_foreign_events_are_rejected() {
        for (e, expected) in [
            (
                event("acme.cloudtrail", "111122223333", "111122223333"),
                "does not begin with \"aws.\"",
            ),
            (
                event("", "111122223333", "111122223333"),
                "does not begin with \"aws.\"",
            ),
            (
                event("aws.cloudtrail", "444455556666", "111122223333"),
                "is not the record's recipientAccountId",
            ),
            (
                event("aws.cloudtrail", "", ""),
                "is not the record's recipientAccountId",
            ),
        ] {
            let rejection = cloudtrail_detail(&e).unwrap_err();
            assert!(rejection.to_string().contains(expected), "{rejection}");
        }
        let mut missing = event("aws.cloudtrail", "111122223333", "111122223333");
        missing["detail"]
            .as_object_mut()
            .unwrap()
            .remove("recipientAccountId");
        assert!(matches!(
            cloudtrail_detail(&missing),
            Err(Rejection::AccountMismatch { .. })
        ));
        let mut other = event("aws.ec2", "111122223333", "111122223333");
        other["detail-type"] = json!("EC2 Instance State-change Notification");
        assert_eq!(cloudtrail_detail(&other), Err(Rejection::NotCloudTrail));
    }

    #[test]
    fn an_sqs_batch_is_told_from_one_eventbridge_event() {
        let one = event("aws.cloudtrail", "111122223333", "111122223333");
        assert!(!is_sqs_batch(&one));
        let batch = json!({"Records": [{"messageId": "m1", "body": one.to_string(), "eventSource": "aws:sqs"}]});
        assert!(is_sqs_batch(&batch));
        // An S3 notification's records are not a queue batch.
        assert!(!is_sqs_batch(
            &json!({"Records": [{"eventSource": "aws:s3"}]})
        ));
        assert!(!is_sqs_batch(&json!({"Records": []})));
    }

    #[test]
    fn an_event_dated_ahead_of_the_clock_is_rejected() {
        let now = trailwarden_cloudtrail::parse_event_time("2026-11-30T08:00:00Z").unwrap();
        let at = |time: &str| json!({"eventName": "StopLogging", "eventTime": time});
        assert!(not_ahead(&at("2026-11-30T08:00:00Z"), now).is_ok());
        assert!(not_ahead(&at("2026-11-30T08:14:59Z"), now).is_ok());
        assert!(not_ahead(&at("2020-01-01T00:00:00Z"), now).is_ok());
        for bad in [
            "2026-11-30T08:15:01Z",
            "2099-01-01T00:00:00Z",
            "yesterday",
            "",
        ] {
            let rejection = not_ahead(&at(bad), now).unwrap_err();
            assert!(
                rejection.to_string().contains("not a time at or before"),
                "{rejection}"
            );
        }
    }

    #[test]
    fn a_hostile_source_is_cut_in_the_log_line() {
        let long = "x".repeat(5000);
        let rejection = cloudtrail_detail(&event(&long, "1", "1")).unwrap_err();
        assert!(rejection.to_string().len() < 200);
    }
}
