//! Lambda entry point: configuration, clients, rules and the notifier once,
//! then the handler.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use trailwarden_aws::{cold_start, Needs};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let (service, sdk) = cold_start(Needs::Alerts).await?;
    let notifier = trailwarden_alert::notifier(&service, &sdk).await?;
    let (service, notifier) = (&service, &notifier);
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            Ok::<_, Error>(trailwarden_alert::handle(service, notifier, event.payload).await)
        },
    ))
    .await
}
