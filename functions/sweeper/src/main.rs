//! Lambda entry point: configuration, clients and rules once, then on each
//! scheduled event the sweep and, when configured, the daily digest.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use trailwarden_aws::audit::DigestSender;
use trailwarden_aws::{cold_start, Needs};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let (service, sdk) = cold_start(Needs::Tables).await?;
    // A digest that cannot be set up (an unreadable Slack secret) fails
    // each invocation after its sweep, not the sweep itself.
    let sender = DigestSender::new(&service, &sdk).await;
    if let Err(e) = &sender {
        tracing::error!(error = %e, "the digest cannot be sent");
    }
    let service = &service;
    let sender = &sender;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            // The scheduled event's time is the sweep's "as of".
            let as_of = event
                .payload
                .get("time")
                .and_then(|t| t.as_str())
                .and_then(trailwarden_cloudtrail::parse_event_time)
                .unwrap_or_else(|| chrono::Utc::now().timestamp_millis());
            let stale = trailwarden_sweeper::handle(service, as_of)
                .await
                .map_err(Error::from)?;
            // The digest after the sweep, so it lists today's idle principals.
            match sender {
                Ok(Some(sender)) => {
                    let as_of = chrono::DateTime::from_timestamp_millis(as_of)
                        .unwrap_or_else(chrono::Utc::now);
                    sender.send(service, as_of).await.map_err(Error::from)?;
                }
                Ok(None) => {}
                Err(e) => return Err(Error::from(e.clone())),
            }
            Ok::<usize, Error>(stale)
        },
    ))
    .await
}
