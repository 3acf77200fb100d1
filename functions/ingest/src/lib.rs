//! The ingest function: SQS batches of S3 notifications (direct, SNS-wrapped,
//! or EventBridge "Object Created"), each object streamed through the
//! engine. Only the messages whose objects failed are reported, so only they
//! are retried (and reach the DLQ after the queue's retries).

use aws_lambda_events::sqs::SqsEvent;
use trailwarden_aws::{emit_metrics, parse_notice, ObjectOutcome, Service};
pub use trailwarden_aws::{BatchResponse, ItemFailure};

/// Handle one SQS batch.
pub async fn handle(service: &Service, event: SqsEvent) -> BatchResponse {
    let started = std::time::Instant::now();
    let mut response = BatchResponse::default();
    let (mut objects, mut records, mut rejected, mut findings, mut failed) =
        (0u64, 0u64, 0u64, 0u64, 0u64);
    let (mut state_refused, mut findings_refused, mut missing) = (0u64, 0u64, 0u64);
    for message in event.records {
        let id = message.message_id.clone().unwrap_or_default();
        let body = message.body.as_deref().unwrap_or_default();
        let notices = match parse_notice(body) {
            Ok(n) => n,
            Err(e) => {
                tracing::error!(message_id = %id, error = %e, "message not understood; it will go to the dead-letter queue after its retries");
                response.fail(id);
                failed += 1;
                continue;
            }
        };
        if notices.is_empty() {
            tracing::info!(message_id = %id, "test event or no created object: nothing to do");
        }
        let mut message_failed = false;
        for notice in &notices {
            match service.process_object(notice).await {
                Ok(ObjectOutcome::Done(summary, counts)) => {
                    objects += 1;
                    records += counts.records;
                    rejected += counts.rejected;
                    findings += counts.findings_new;
                    state_refused += counts.state_refused;
                    findings_refused += counts.findings_refused;
                    tracing::info!(bucket = %notice.bucket, key = %notice.key, records = summary.records, rejected = summary.rejected, findings_new = counts.findings_new, findings_repeat = counts.findings_repeat, findings_refused = counts.findings_refused, suppressed = counts.suppressed, "object processed");
                }
                Ok(ObjectOutcome::AlreadyDone) => {
                    tracing::info!(bucket = %notice.bucket, key = %notice.key, etag = %notice.version, "already processed (ledger)");
                }
                Ok(ObjectOutcome::Skipped(reason)) => {
                    tracing::info!(bucket = %notice.bucket, key = %notice.key, reason = %reason, "skipped");
                }
                Ok(ObjectOutcome::Missing(reason)) => {
                    missing += 1;
                    tracing::warn!(bucket = %notice.bucket, key = %notice.key, reason = %reason, "object gone before it was read; skipped, not retried (check the trail bucket's lifecycle rules and who deletes log files)");
                }
                Err(e) => {
                    message_failed = true;
                    tracing::error!(message_id = %id, bucket = %notice.bucket, key = %notice.key, error = %e, "object failed; its message will be retried, then sent to the dead-letter queue");
                }
            }
        }
        if message_failed {
            failed += 1;
            response.fail(id);
        }
    }
    emit_metrics(
        "ingest",
        started,
        &[
            ("Objects", objects),
            ("Records", records),
            ("RejectedRecords", rejected),
            ("Findings", findings),
            ("FailedMessages", failed),
            ("StateWritesRefused", state_refused),
            ("FindingsRefused", findings_refused),
            ("MissingObjects", missing),
        ],
    );
    response
}
