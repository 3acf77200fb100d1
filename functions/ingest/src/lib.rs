//! The ingest function: SQS batches of S3 notifications (direct, SNS-wrapped,
//! or EventBridge "Object Created"), each object streamed through the
//! engine. Only the messages whose objects failed are reported, so only they
//! are retried (and reach the DLQ after the queue's retries).
//! It also reads the backfill state machine's batches of keys
//! ([`handle_batch`]).

use aws_lambda_events::sqs::SqsEvent;
use trailwarden_aws::{emit_metrics, parse_notice, ObjectOutcome, Service, Tally};
pub use trailwarden_aws::{BatchResponse, ItemFailure};

/// Handle one SQS batch.
pub async fn handle(service: &Service, event: SqsEvent) -> BatchResponse {
    let started = std::time::Instant::now();
    let mut response = BatchResponse::default();
    let mut tally = Tally::default();
    let mut failed = 0u64;
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
            let outcome = service.process_object(notice).await;
            tally.add(&outcome);
            match outcome {
                Ok(ObjectOutcome::Done(summary, counts)) => {
                    tracing::info!(bucket = %notice.bucket, key = %notice.key, records = summary.records, rejected = summary.rejected, findings_new = counts.findings_new, findings_repeat = counts.findings_repeat, findings_refused = counts.findings_refused, suppressed = counts.suppressed, "object processed");
                }
                Ok(ObjectOutcome::AlreadyDone) => {
                    tracing::info!(bucket = %notice.bucket, key = %notice.key, etag = %notice.version, "already processed (ledger)");
                }
                Ok(ObjectOutcome::Skipped(reason)) => {
                    tracing::info!(bucket = %notice.bucket, key = %notice.key, reason = %reason, "skipped");
                }
                Ok(ObjectOutcome::Missing(reason)) => {
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
            ("Objects", tally.objects),
            ("Records", tally.counts.records),
            ("RejectedRecords", tally.counts.rejected),
            ("Findings", tally.counts.findings_new),
            ("FailedMessages", failed),
            ("StateWritesRefused", tally.counts.state_refused),
            ("FindingsRefused", tally.counts.findings_refused),
            ("MissingObjects", tally.missing),
        ],
    );
    response
}

/// Log objects per batch the backfill state machine hands over (its
/// `ItemBatcher`); a batch of more is refused.
pub const MAX_BATCH_ITEMS: usize = 1000;

/// Handle one batch of the backfill state machine's Distributed Map
/// (`statemachine/backfill.asl.json`): `{"Items": [{"Key": …, "ETag": …},
/// …], "BatchInput": {"bucket": …, "rescan": bool}}`, the manifest's keys
/// (`trailwarden replay --distributed` writes it). Each object is read as a
/// notification of it would be, except that history is not counted in its
/// source's delivery health, and with `rescan` objects the ledger says were
/// read are read again. Returns the batch's counts; an error (which Step
/// Functions retries, then counts against the map's tolerated failures)
/// names every object that failed, after the others were read.
pub async fn handle_batch(
    service: &Service,
    payload: &serde_json::Value,
) -> Result<serde_json::Value, String> {
    let started = std::time::Instant::now();
    let input = payload.get("BatchInput");
    let bucket = input
        .and_then(|i| i.get("bucket"))
        .and_then(|b| b.as_str())
        .filter(|b| !b.is_empty())
        .ok_or("the batch has no BatchInput.bucket")?;
    let rescan = input
        .and_then(|i| i.get("rescan"))
        .and_then(|r| r.as_bool())
        .unwrap_or(false);
    let items = payload
        .get("Items")
        .and_then(|i| i.as_array())
        .ok_or("the batch has no Items array")?;
    if items.len() > MAX_BATCH_ITEMS {
        return Err(format!(
            "a batch of {} objects: at most {MAX_BATCH_ITEMS} (the state machine's MaxItemsPerBatch)",
            items.len()
        ));
    }
    let mut tally = Tally::default();
    let mut failures = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let Some(key) = item.get("Key").and_then(|k| k.as_str()) else {
            failures.push(format!("item {i}: no Key"));
            continue;
        };
        let etag = item.get("ETag").and_then(|e| e.as_str()).unwrap_or("");
        let notice = trailwarden_aws::ObjectNotice {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            version: trailwarden_aws::s3::normalize_etag(etag).to_owned(),
        };
        let outcome = service.process_object_as(&notice, rescan, false).await;
        tally.add(&outcome);
        match outcome {
            Ok(
                ObjectOutcome::Done(..) | ObjectOutcome::AlreadyDone | ObjectOutcome::Skipped(_),
            ) => {}
            Ok(ObjectOutcome::Missing(reason)) => {
                tracing::warn!(bucket, key, reason = %reason, "object gone before it was read; skipped");
            }
            Err(e) => {
                tracing::error!(bucket, key, error = %e, "object failed");
                failures.push(format!("s3://{bucket}/{key}: {e}"));
            }
        }
    }
    emit_metrics(
        "backfill",
        started,
        &[
            ("Objects", tally.objects),
            ("Records", tally.counts.records),
            ("Findings", tally.counts.findings_new),
            ("RejectedRecords", tally.counts.rejected),
            // As ingest names them: `RefusedWritesAlarm` watches both.
            ("FindingsRefused", tally.counts.findings_refused),
            ("StateWritesRefused", tally.counts.state_refused),
            ("FailedObjects", failures.len() as u64),
        ],
    );
    if !failures.is_empty() {
        return Err(format!(
            "{} of {} object(s) failed: {}",
            failures.len(),
            items.len(),
            failures.join("; ")
        ));
    }
    Ok(serde_json::json!({
        "objects": tally.objects,
        "skipped": tally.skipped + tally.missing,
        "records": tally.counts.records,
        "findings": tally.counts.findings_new,
        "rejected_records": tally.counts.rejected,
        "writes_refused": tally.refused(),
    }))
}
