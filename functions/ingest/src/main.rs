//! Lambda entry point: configuration, clients and rules once, then the
//! handler for what invoked it: the ingest queue's SQS batches, or the
//! backfill state machine's batches of keys (`Items`).

use lambda_runtime::{service_fn, Error, LambdaEvent};
use trailwarden_aws::{cold_start, Needs};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let (service, _) = cold_start(Needs::Tables).await?;
    let service = &service;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            if event.payload.get("Items").is_some() {
                return trailwarden_ingest::handle_batch(service, &event.payload)
                    .await
                    .map_err(Error::from);
            }
            let sqs: aws_lambda_events::sqs::SqsEvent = serde_json::from_value(event.payload)?;
            let response = trailwarden_ingest::handle(service, sqs).await;
            Ok(serde_json::to_value(response)?)
        },
    ))
    .await
}
