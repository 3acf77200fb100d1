//! Lambda entry point: configuration, clients and rules once, then a canary
//! run on each scheduled event.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use trailwarden_aws::{cold_start, Needs};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let (service, _) = cold_start(Needs::Tables).await?;
    let wait = std::env::var("TRAILWARDEN_CANARY_WAIT_SECONDS")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(trailwarden_canary::DEFAULT_WAIT_SECONDS);
    let wait = std::time::Duration::from_secs(wait);
    let service = &service;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            // A missed canary is a result (metric, alarm), not an error:
            // retrying would only write another object.
            trailwarden_canary::handle(service, &event.payload, wait)
                .await
                .map(|r| serde_json::json!(r))
                .map_err(Error::from)
        },
    ))
    .await
}
