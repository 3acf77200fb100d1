//! The realtime function: CloudTrail events from EventBridge ("AWS API Call
//! via CloudTrail", sign-in events), evaluated with the single-event rules.
//! Finding ids are the same as on the S3 path, so an event seen both ways
//! makes one finding.

use serde_json::Value;
use trailwarden_aws::{emit_metrics, Service};

/// Handle one EventBridge event. An error makes EventBridge retry it (and
/// then send it to the target's dead-letter queue).
pub async fn handle(service: &Service, event: Value) -> Result<(), String> {
    let started = std::time::Instant::now();
    let detail_type = event
        .get("detail-type")
        .and_then(Value::as_str)
        .unwrap_or("");
    if !detail_type.contains("via CloudTrail") {
        tracing::info!(detail_type, "not a CloudTrail event; ignored");
        return Ok(());
    }
    let Some(detail) = event.get("detail") else {
        return Err(format!("a {detail_type:?} event without a detail"));
    };
    let text = detail.to_string();
    let result = service.process_event(&text).await;
    let (findings, failed) = match &result {
        Ok(c) => (c.findings_new, 0),
        Err(e) => {
            tracing::error!(event_id = ?detail.get("eventID"), error = %e, "event failed");
            (0, 1)
        }
    };
    emit_metrics(
        "realtime",
        started,
        &[
            ("Records", 1),
            ("Findings", findings),
            ("FailedEvents", failed),
        ],
    );
    result.map(|_| ())
}
