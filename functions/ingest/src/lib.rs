//! The ingest function: SQS batches of S3 notifications (direct, SNS-wrapped,
//! or EventBridge "Object Created"), each object streamed through the
//! engine. Only the messages whose objects failed are reported, so only they
//! are retried (and reach the DLQ after the queue's retries).

use aws_lambda_events::sqs::SqsEvent;
use serde::Serialize;
use trailwarden_aws::{emf_line, parse_notice, ObjectOutcome, Service};

/// The partial batch response (`ReportBatchItemFailures`).
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct BatchResponse {
    /// The messages to retry.
    pub batch_item_failures: Vec<ItemFailure>,
}

/// One message to retry.
#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ItemFailure {
    /// The SQS message id.
    pub item_identifier: String,
}

/// Handle one SQS batch.
pub async fn handle(service: &Service, event: SqsEvent) -> BatchResponse {
    let started = std::time::Instant::now();
    let mut response = BatchResponse::default();
    let (mut objects, mut records, mut rejected, mut findings, mut failed) =
        (0u64, 0u64, 0u64, 0u64, 0u64);
    for message in event.records {
        let id = message.message_id.clone().unwrap_or_default();
        let body = message.body.as_deref().unwrap_or_default();
        let notices = match parse_notice(body) {
            Ok(n) => n,
            Err(e) => {
                tracing::error!(message_id = %id, error = %e, "message not understood; it will go to the dead-letter queue after its retries");
                response.batch_item_failures.push(ItemFailure {
                    item_identifier: id,
                });
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
                    tracing::info!(bucket = %notice.bucket, key = %notice.key, records = summary.records, rejected = summary.rejected, findings_new = counts.findings_new, findings_repeat = counts.findings_repeat, suppressed = counts.suppressed, "object processed");
                }
                Ok(ObjectOutcome::AlreadyDone) => {
                    tracing::info!(bucket = %notice.bucket, key = %notice.key, etag = %notice.version, "already processed (ledger)");
                }
                Ok(ObjectOutcome::Skipped(reason)) => {
                    tracing::info!(bucket = %notice.bucket, key = %notice.key, reason = %reason, "skipped");
                }
                Err(e) => {
                    message_failed = true;
                    tracing::error!(message_id = %id, bucket = %notice.bucket, key = %notice.key, error = %e, "object failed; its message will be retried, then sent to the dead-letter queue");
                }
            }
        }
        if message_failed {
            failed += 1;
            response.batch_item_failures.push(ItemFailure {
                item_identifier: id,
            });
        }
    }
    println!(
        "{}",
        emf_line(
            "ingest",
            &[
                ("Objects", objects as f64, "Count"),
                ("Records", records as f64, "Count"),
                ("RejectedRecords", rejected as f64, "Count"),
                ("Findings", findings as f64, "Count"),
                ("FailedMessages", failed as f64, "Count"),
                (
                    "Duration",
                    started.elapsed().as_secs_f64() * 1000.0,
                    "Milliseconds"
                ),
            ]
        )
    );
    response
}
