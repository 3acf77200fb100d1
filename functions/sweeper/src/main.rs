//! Lambda entry point: configuration, clients and rules once, then the handler.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use trailwarden_aws::{cold_start, Needs};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let (service, _) = cold_start(Needs::Tables).await?;
    let service = &service;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            // The scheduled event's time is the sweep's "as of".
            let as_of = event
                .payload
                .get("time")
                .and_then(|t| t.as_str())
                .and_then(trailwarden_cloudtrail::parse_event_time)
                .unwrap_or_else(|| chrono::Utc::now().timestamp_millis());
            trailwarden_sweeper::handle(service, as_of)
                .await
                .map_err(Error::from)
        },
    ))
    .await
}
