//! Lambda entry point: configuration, clients and rules once, then the
//! handler of the payload's kind (one EventBridge event, or a batch of the
//! real-time queue).

use lambda_runtime::{service_fn, Error, LambdaEvent};
use trailwarden_aws::{cold_start, Needs};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let (service, _) = cold_start(Needs::Tables).await?;
    let service = &service;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            let payload = event.payload;
            if trailwarden_realtime::is_sqs_batch(&payload) {
                // From the real-time queue: every rule, a partial batch
                // response.
                let batch = serde_json::from_value(payload)?;
                let response = trailwarden_realtime::handle_queue(service, batch).await;
                Ok::<_, Error>(serde_json::to_value(response)?)
            } else {
                trailwarden_realtime::handle(service, payload).await?;
                Ok(serde_json::Value::Null)
            }
        },
    ))
    .await
}
