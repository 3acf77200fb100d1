//! Lambda entry point: configuration, clients and rules once, then the handler.

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
    let config = Config::from_env(Needs::Tables).map_err(|errors| {
        errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    })?;
    let service = Service::start(config, &sdk_config().await).await?;
    let service = &service;
    lambda_runtime::run(service_fn(
        move |_event: LambdaEvent<serde_json::Value>| async move {
            let now = chrono::Utc::now().timestamp_millis();
            trailwarden_sweeper::handle(service, now)
                .await
                .map_err(Error::from)
        },
    ))
    .await
}
