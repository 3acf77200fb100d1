//! The canary: a small CloudTrail log object of made-up events, with fresh
//! event ids and the current time, written under the `canary/` prefix of a
//! bucket the stack owns (never the organisation's trail). Its S3
//! notification takes the production path — queue, ingest, rules, findings
//! table — and the canary function waits for the findings the same engine
//! expects of those events. The result is a metric (`CanaryMissed`, alarmed
//! on), an item of the state table the digest reports, and a log line.
//!
//! Findings of a canary object carry the tag [`CANARY_TAG`] (the ingest
//! function adds it to whatever it finds in the canary bucket) and are kept
//! out of the alert channels, the finding events and the digest's counts.
//!
//! What a passing canary proves: notifications reach the queue, the ingest
//! function reads and evaluates objects with the deployed rules and policy,
//! and stores findings. What it does not: that the organisation's trail
//! delivers (the digest's silent sources say that), that the alert function
//! sends (its errors and failure queue are alarmed), or that every rule
//! matches what it should (`trailwarden rules test` does).

use std::collections::BTreeSet;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use trailwarden_cloudtrail::Record;
pub use trailwarden_engine::digest::CanaryResult;

use crate::dynamo::error_chain;
use crate::Service;

/// The tag of every finding made from a canary object.
pub const CANARY_TAG: &str = "trailwarden.canary";

/// The key prefix canary objects are written under.
pub const CANARY_PREFIX: &str = "canary/";

/// Whether `f` was made from a canary object.
pub fn is_canary(f: &trailwarden_engine::Finding) -> bool {
    f.tags.iter().any(|t| t == CANARY_TAG)
}

/// A version 4 UUID from a fresh random number (event and request ids).
fn uuid() -> String {
    let a = fastrand::u128(..);
    let hex = format!("{a:032x}");
    format!(
        "{}-{}-4{}-{:x}{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[13..16],
        8 + (a >> 60 & 3) as u8,
        &hex[17..20],
        &hex[20..32]
    )
}

/// The canary's records at `now` for `account` in `region`: an AI
/// governance change (Bedrock model invocation logging deleted) and a
/// trail stopped, by the canary's own role. Event ids are fresh on every
/// call, so each run's findings are new.
pub fn canary_records(account: &str, region: &str, now: DateTime<Utc>) -> Vec<String> {
    let time = now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let identity = serde_json::json!({
        "type": "AssumedRole",
        "principalId": "AROACANARYTRAILWARDEN:canary",
        "arn": format!("arn:aws:sts::{account}:assumed-role/trailwarden-canary/canary"),
        "accountId": account,
        "accessKeyId": "ASIACANARYTRAILWARDEN",
        "sessionContext": {
            "sessionIssuer": {
                "type": "Role",
                "principalId": "AROACANARYTRAILWARDEN",
                "arn": format!("arn:aws:iam::{account}:role/trailwarden-canary"),
                "accountId": account,
                "userName": "trailwarden-canary"
            },
            "attributes": {"creationDate": time, "mfaAuthenticated": "false"}
        }
    });
    let record = |source: &str, name: &str, request: serde_json::Value| {
        serde_json::json!({
            "eventVersion": "1.11",
            "userIdentity": identity,
            "eventTime": time,
            "eventSource": source,
            "eventName": name,
            "awsRegion": region,
            "sourceIPAddress": "192.0.2.10",
            "userAgent": "trailwarden-canary",
            "requestParameters": request,
            "responseElements": null,
            "requestID": uuid(),
            "eventID": uuid(),
            "readOnly": false,
            "eventType": "AwsApiCall",
            "managementEvent": true,
            "recipientAccountId": account,
            "eventCategory": "Management"
        })
        .to_string()
    };
    vec![
        record(
            "bedrock.amazonaws.com",
            "DeleteModelInvocationLoggingConfiguration",
            serde_json::Value::Null,
        ),
        record(
            "cloudtrail.amazonaws.com",
            "StopLogging",
            serde_json::json!({"name": format!("arn:aws:cloudtrail:{region}:{account}:trail/trailwarden-canary")}),
        ),
    ]
}

/// A canary object written and the findings it should make.
#[derive(Debug, Clone)]
pub struct Planted {
    /// Its key in the canary bucket.
    pub key: String,
    /// When it was written.
    pub at: DateTime<Utc>,
    /// The ids of the findings the deployed rules and policy make of it
    /// (single-event rules; correlations and baselines may add others).
    pub expected: BTreeSet<String>,
}

/// Write a canary object for `account` and `region` into `bucket` at
/// `now`, with the findings the service's rules and policy expect of it.
/// An error when the object cannot be written, or when the rules expect
/// nothing of it (a policy that suppresses or levels away both rules):
/// then the canary could not tell a working pipeline from a broken one.
pub async fn plant(
    service: &Service,
    bucket: &str,
    account: &str,
    region: &str,
    now: DateTime<Utc>,
) -> Result<Planted, String> {
    let records = canary_records(account, region, now);
    let mut expected = BTreeSet::new();
    for text in &records {
        let record = Record::parse(text).map_err(|e| format!("canary record: {e}"))?;
        for f in service.engine.findings(&record) {
            let t = trailwarden_cloudtrail::parse_event_time(&f.event_time);
            if service.policy.suppressed(&f, t).is_none() {
                expected.insert(f.id);
            }
        }
    }
    if expected.is_empty() {
        return Err("the deployed rules and policy make no finding of the canary's events (a CloudTrail StopLogging and a Bedrock DeleteModelInvocationLoggingConfiguration by role trailwarden-canary): the canary cannot prove anything; check the policy's suppressions".into());
    }
    let key = format!(
        "{CANARY_PREFIX}AWSLogs/{account}/CloudTrail/{region}/{}/{account}_CloudTrail_{region}_{}_{}.json.gz",
        now.format("%Y/%m/%d"),
        now.format("%Y%m%dT%H%MZ"),
        &uuid()[..8]
    );
    let body = format!("{{\"Records\":[{}]}}", records.join(","));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, body.as_bytes()).map_err(|e| e.to_string())?;
    let bytes = gz.finish().map_err(|e| e.to_string())?;
    service
        .s3
        .put_object()
        .bucket(bucket)
        .key(&key)
        .body(bytes.into())
        .content_type("application/json")
        .content_encoding("gzip")
        .send()
        .await
        .map_err(|e| format!("PutObject s3://{bucket}/{key}: {}", error_chain(&e)))?;
    Ok(Planted {
        key,
        at: now,
        expected,
    })
}

/// Wait up to `wait` (polling every `every`) for the planted object's
/// expected findings to be in the findings table.
pub async fn check(
    service: &Service,
    planted: &Planted,
    wait: std::time::Duration,
    every: std::time::Duration,
) -> Result<CanaryResult, String> {
    let started = std::time::Instant::now();
    let mut missing = planted.expected.clone();
    loop {
        let mut found_now = Vec::new();
        for id in &missing {
            if service
                .store
                .has_finding(id)
                .await
                .map_err(|e| e.to_string())?
            {
                found_now.push(id.clone());
            }
        }
        for id in found_now {
            missing.remove(&id);
        }
        if missing.is_empty() || started.elapsed() >= wait {
            break;
        }
        tokio::time::sleep(every).await;
    }
    let expected = planted.expected.len() as u64;
    Ok(CanaryResult {
        at: planted
            .at
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        key: planted.key.clone(),
        passed: missing.is_empty(),
        expected,
        found: expected - missing.len() as u64,
        seconds: started.elapsed().as_secs(),
    })
}

/// The state table's item of the last canary result.
const RESULT_PK: &str = "canary#last";

/// Keep `result` as the last canary result (for the digest).
pub async fn record_result(service: &Service, result: &CanaryResult) -> Result<(), String> {
    let table = service.config.state_table.as_str();
    service
        .store
        .client()
        .put_item()
        .table_name(table)
        .item("pk", AttributeValue::S(RESULT_PK.into()))
        .item("sk", AttributeValue::S("result".into()))
        .item(
            "body",
            AttributeValue::S(serde_json::to_string(result).expect("a result serialises")),
        )
        .send()
        .await
        .map_err(|e| format!("DynamoDB PutItem on table {table}: {}", error_chain(&e)))?;
    Ok(())
}

/// The last canary result, if a canary ran.
pub async fn last_result(store: &crate::DynamoStore) -> Result<Option<CanaryResult>, String> {
    let table = store.state_table();
    let out = store
        .client()
        .get_item()
        .table_name(table)
        .key("pk", AttributeValue::S(RESULT_PK.into()))
        .key("sk", AttributeValue::S("result".into()))
        .send()
        .await
        .map_err(|e| format!("DynamoDB GetItem on table {table}: {}", error_chain(&e)))?;
    let Some(body) = out
        .item
        .as_ref()
        .and_then(|i| i.get("body"))
        .and_then(|b| b.as_s().ok())
    else {
        return Ok(None);
    };
    serde_json::from_str(body)
        .map(Some)
        .map_err(|e| format!("canary result: {e}"))
}

/// One canary run: plant an object at `now`, wait up to `wait` for its
/// findings, keep the result and publish the metrics `CanaryMissed` (1 when
/// a finding did not arrive in time, or the canary could not run) and
/// `CanarySeconds`.
pub async fn run(
    service: &Service,
    bucket: &str,
    account: &str,
    region: &str,
    now: DateTime<Utc>,
    wait: std::time::Duration,
) -> Result<CanaryResult, String> {
    let started = std::time::Instant::now();
    let outcome = async {
        let planted = plant(service, bucket, account, region, now).await?;
        check(service, &planted, wait, std::time::Duration::from_secs(2)).await
    }
    .await;
    let missed = !matches!(&outcome, Ok(r) if r.passed);
    crate::emit_metrics(
        "canary",
        started,
        &[
            ("CanaryMissed", u64::from(missed)),
            (
                "CanarySeconds",
                outcome.as_ref().map(|r| r.seconds).unwrap_or(0),
            ),
        ],
    );
    let result = outcome?;
    if result.passed {
        tracing::info!(key = %result.key, expected = result.expected, seconds = result.seconds, "canary passed");
    } else {
        tracing::error!(key = %result.key, expected = result.expected, found = result.found, seconds = result.seconds, "canary missed: findings of the canary object did not arrive; check the ingest queue, its dead-letter queue and the ingest function's log");
    }
    record_result(service, &result).await?;
    Ok(result)
}
