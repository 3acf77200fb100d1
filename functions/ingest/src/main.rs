//! Lambda entry point: configuration, clients and rules once, then the handler.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use trailwarden_aws::{cold_start, Needs};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let (service, _) = cold_start(Needs::Tables).await?;
    let service = &service;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<aws_lambda_events::sqs::SqsEvent>| async move {
            Ok::<_, Error>(trailwarden_ingest::handle(service, event.payload).await)
        },
    ))
    .await
}
