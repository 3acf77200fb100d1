//! The canary function: on its schedule (`Canary`: daily or weekly), a small
//! simulated log object into the stack's canary bucket, then a wait for the
//! findings the deployed rules expect of it
//! ([`trailwarden_aws::canary`]): a metric, an alarm when they do not come,
//! and the result in the digest.

use trailwarden_aws::canary::{run, CanaryResult};
use trailwarden_aws::Service;

/// How long the function waits for the canary's findings by default
/// (seconds; `TRAILWARDEN_CANARY_WAIT_SECONDS`): the function's timeout is
/// 900 s.
pub const DEFAULT_WAIT_SECONDS: u64 = 600;

/// Run the canary for the scheduled `event` (its `account`, `region` and
/// `time` name where and when), waiting up to `wait` for the findings.
/// An error when the configuration names no canary bucket, the object
/// cannot be written, or the rules expect nothing of it; a result (passed
/// or missed) otherwise.
pub async fn handle(
    service: &Service,
    event: &serde_json::Value,
    wait: std::time::Duration,
) -> Result<CanaryResult, String> {
    let bucket = service
        .config
        .canary_bucket
        .as_deref()
        .ok_or("TRAILWARDEN_CANARY_BUCKET is not set")?;
    let text = |k: &str| event.get(k).and_then(|v| v.as_str()).map(str::to_owned);
    let account = text("account")
        .filter(|a| a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()))
        .ok_or("the scheduled event has no 12-digit account")?;
    let region = text("region")
        .or_else(|| std::env::var("AWS_REGION").ok())
        .ok_or("the scheduled event has no region")?;
    let now = chrono::Utc::now();
    run(service, bucket, &account, &region, now, wait).await
}
