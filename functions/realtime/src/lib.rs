//! The realtime function: CloudTrail events from EventBridge ("AWS API Call
//! via CloudTrail", sign-in events), evaluated with the single-event rules.
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

use serde_json::Value;
use trailwarden_aws::{emit_metrics, Service};

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
}

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

/// Handle one EventBridge event. An error makes EventBridge retry it (and
/// then send it to the target's dead-letter queue); a rejected event is
/// not an error.
pub async fn handle(service: &Service, event: Value) -> Result<(), String> {
    let started = std::time::Instant::now();
    let detail = match cloudtrail_detail(&event) {
        Ok(detail) => detail,
        Err(Rejection::NotCloudTrail) => {
            let detail_type = cut(event["detail-type"].as_str().unwrap_or(""));
            tracing::info!(detail_type, "not a CloudTrail event; ignored");
            return Ok(());
        }
        Err(rejection) => {
            let event_id = cut(event["id"].as_str().unwrap_or(""));
            tracing::warn!(event_id, reason = %rejection, "event rejected: not evaluated");
            emit_metrics("realtime", started, &[("RejectedEvents", 1)]);
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
    fn a_hostile_source_is_cut_in_the_log_line() {
        let long = "x".repeat(5000);
        let rejection = cloudtrail_detail(&event(&long, "1", "1")).unwrap_err();
        assert!(rejection.to_string().len() < 200);
    }
}
