//! Lambda entry point: configuration, clients, rules and the notifier once,
//! then the handler.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use trailwarden_aws::{sdk_config, Config, Needs, Service};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::from_default_env()
                .add_directive(tracing::Level::INFO.into()),
        )
        .with_current_span(false)
        .without_time()
        .init();
    let config = Config::from_env(Needs::Alerts).map_err(|errors| {
        errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    })?;
    let sdk = sdk_config().await;
    let service = Service::start(config, &sdk).await?;
    let notifier = trailwarden_alert::notifier(&service, &sdk).await?;
    let (service, notifier) = (&service, &notifier);
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            Ok::<_, Error>(trailwarden_alert::handle(service, notifier, event.payload).await)
        },
    ))
    .await
}
