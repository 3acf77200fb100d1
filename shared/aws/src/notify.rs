//! Alert delivery: SNS (email), an optional AWS Chatbot topic, and an
//! optional Slack incoming webhook. The texts come from
//! `trailwarden_engine::render`, which escapes attacker-controlled text.

use aws_sdk_sns::operation::publish::PublishError;
use aws_sdk_sns::types::MessageAttributeValue;
use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::rt::TokioExecutor;
use trailwarden_engine::render;
use trailwarden_engine::Finding;

use crate::dynamo::error_chain;

/// A delivery failed.
#[derive(Debug, thiserror::Error)]
#[error("{channel}: {reason}")]
pub struct NotifyError {
    /// sns, chatbot, slack or eventbridge.
    pub channel: &'static str,
    /// Why.
    pub reason: String,
    /// The channel refused this message for good (SNS `InvalidParameter`):
    /// sending it again cannot succeed.
    pub permanent: bool,
}

type Https = hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>;

/// Whether SNS refused a `Publish` for good: its parameters (subject,
/// attributes, message) are invalid, so the same message is refused again.
/// Throttling, authorisation and server errors are not.
pub fn refused_for_good(e: &PublishError) -> bool {
    e.is_invalid_parameter_exception()
        || e.is_invalid_parameter_value_exception()
        || e.is_validation_exception()
}

/// Sends alerts. Built once at cold start.
#[derive(Clone)]
pub struct Notifier {
    sns: aws_sdk_sns::Client,
    topic_arn: String,
    chatbot_topic_arn: Option<String>,
    slack: Option<(String, HttpClient<Https, Full<Bytes>>)>,
    events: Option<crate::events::FindingEvents>,
    security_hub: Option<crate::securityhub::SecurityHub>,
}

/// Whether a webhook URL may be used: https, or plain http to loopback only
/// (for tests).
pub fn webhook_allowed(url: &str) -> bool {
    url.starts_with("https://")
        || url.starts_with("http://127.0.0.1:")
        || url.starts_with("http://[::1]:")
}

impl Notifier {
    /// A notifier; `slack_url` is the webhook read from Secrets Manager.
    pub fn new(
        sns: aws_sdk_sns::Client,
        topic_arn: String,
        chatbot_topic_arn: Option<String>,
        slack_url: Option<String>,
    ) -> Result<Self, NotifyError> {
        let slack = match slack_url {
            None => None,
            Some(url) if !webhook_allowed(&url) => {
                return Err(NotifyError {
                    channel: "slack",
                    reason: "the webhook URL in the secret must start with https://".into(),
                    permanent: false,
                })
            }
            Some(url) => {
                let connector = hyper_rustls::HttpsConnectorBuilder::new()
                    .with_provider_and_native_roots(rustls::crypto::aws_lc_rs::default_provider())
                    .map_err(|e| NotifyError {
                        channel: "slack",
                        reason: format!("no TLS root certificates: {e}"),
                        permanent: false,
                    })?
                    .https_or_http()
                    .enable_http1()
                    .build();
                let client = HttpClient::builder(TokioExecutor::new()).build(connector);
                Some((url, client))
            }
        };
        Ok(Notifier {
            sns,
            topic_arn,
            chatbot_topic_arn,
            slack,
            events: None,
            security_hub: None,
        })
    }

    /// The same notifier, also putting an EventBridge event for every new
    /// finding (whatever its level).
    pub fn with_events(mut self, events: crate::events::FindingEvents) -> Self {
        self.events = Some(events);
        self
    }

    /// The same notifier, also importing new findings into Security Hub.
    pub fn with_security_hub(mut self, hub: crate::securityhub::SecurityHub) -> Self {
        self.security_hub = Some(hub);
        self
    }

    /// The Security Hub importer, when configured.
    pub fn security_hub(&self) -> Option<&crate::securityhub::SecurityHub> {
        self.security_hub.as_ref()
    }

    /// Where every new finding's event goes, when configured.
    pub fn events(&self) -> Option<&crate::events::FindingEvents> {
        self.events.as_ref()
    }

    /// The configured channels, in the order they are sent: `sns` (email)
    /// always, then `chatbot` and `slack` when configured.
    pub fn channels(&self) -> Vec<&'static str> {
        let mut out = vec!["sns"];
        if self.chatbot_topic_arn.is_some() {
            out.push("chatbot");
        }
        if self.slack.is_some() {
            out.push("slack");
        }
        out
    }

    /// Send one finding to every configured channel, stopping at the first
    /// failure.
    pub async fn send(&self, f: &Finding, response: Option<&str>) -> Result<(), NotifyError> {
        let wait_until = std::time::Instant::now() + std::time::Duration::from_secs(30);
        for channel in self.channels() {
            self.send_to(channel, f, response, wait_until).await?;
        }
        Ok(())
    }

    /// Send one finding to one channel (a name [`Notifier::channels`]
    /// gives; another name, or one not configured, is an error). Slack's
    /// `429 Too Many Requests` is waited out when its `Retry-After` is at
    /// most [`SLACK_MAX_WAIT_SECS`] seconds and the wait ends before
    /// `wait_until` (the caller's budget within its invocation), then sent
    /// again, up to [`SLACK_ATTEMPTS`] times in all; otherwise the send
    /// fails, to be retried with the stream record. Slack's answers that
    /// cannot change by retrying (400 `invalid_payload`, 403
    /// `action_prohibited`, 404 `channel_not_found` or `no_service`, 410
    /// `channel_is_archived`: see Slack's incoming webhook errors) are
    /// permanent refusals.
    pub async fn send_to(
        &self,
        channel: &str,
        f: &Finding,
        response: Option<&str>,
        wait_until: std::time::Instant,
    ) -> Result<(), NotifyError> {
        let attr = |v: &str| {
            MessageAttributeValue::builder()
                .data_type("String")
                .string_value(v)
                .build()
                .expect("data type and value are set")
        };
        // SNS refuses a message with bad parameters for good: no retry.
        let published = |channel: &'static str, topic: &str| {
            let topic = topic.to_owned();
            move |e: aws_sdk_sns::error::SdkError<PublishError, _>| NotifyError {
                channel,
                permanent: e.as_service_error().is_some_and(refused_for_good),
                reason: format!("Publish to {topic}: {}", error_chain(&e)),
            }
        };
        match (channel, &self.chatbot_topic_arn, &self.slack) {
            ("sns", _, _) => {
                self.sns
                    .publish()
                    .topic_arn(&self.topic_arn)
                    .subject(render::subject(f))
                    .message(render::email_body(f, response))
                    .message_attributes("level", attr(f.level.as_str()))
                    .message_attributes("rule_id", attr(&render::attribute(Some(&f.rule_id))))
                    .message_attributes("account", attr(&render::attribute(f.account.as_deref())))
                    .send()
                    .await
                    .map_err(published("sns", &self.topic_arn))?;
                Ok(())
            }
            ("chatbot", Some(topic), _) => {
                self.sns
                    .publish()
                    .topic_arn(topic)
                    .message(render::chatbot_message(f).to_string())
                    .send()
                    .await
                    .map_err(published("chatbot", topic))?;
                Ok(())
            }
            ("slack", _, Some(_)) => {
                self.post_slack(&render::slack_message(f, response), wait_until)
                    .await
            }
            (other, _, _) => Err(NotifyError {
                channel: "config",
                reason: format!("channel {other:?} is not configured"),
                permanent: true,
            }),
        }
    }

    /// Post `message` (a Slack Block Kit message) to the Slack webhook,
    /// waiting out a short `429` as [`Notifier::send_to`] says; an error
    /// when Slack is not configured.
    async fn post_slack(
        &self,
        message: &serde_json::Value,
        wait_until: std::time::Instant,
    ) -> Result<(), NotifyError> {
        let Some((url, client)) = &self.slack else {
            return Err(NotifyError {
                channel: "config",
                reason: "channel \"slack\" is not configured".into(),
                permanent: true,
            });
        };
        let body = Bytes::from(message.to_string());
        let mut attempt = 1;
        loop {
            let request = hyper::Request::post(url.as_str())
                .header("content-type", "application/json")
                .body(Full::new(body.clone()))
                .map_err(|e| NotifyError {
                    channel: "slack",
                    reason: e.to_string(),
                    permanent: false,
                })?;
            let answer = client.request(request).await.map_err(|e| NotifyError {
                channel: "slack",
                reason: format!("POST to the webhook: {}", error_chain(&e)),
                permanent: false,
            })?;
            let status = answer.status();
            if status.is_success() {
                return Ok(());
            }
            let wait = (status == hyper::StatusCode::TOO_MANY_REQUESTS)
                .then(|| retry_after_secs(answer.headers()))
                .flatten();
            let in_budget = |secs: u64| {
                std::time::Instant::now() + std::time::Duration::from_secs(secs) <= wait_until
            };
            match wait {
                Some(secs)
                    if secs <= SLACK_MAX_WAIT_SECS
                        && attempt < SLACK_ATTEMPTS
                        && in_budget(secs) =>
                {
                    tokio::time::sleep(std::time::Duration::from_secs(secs)).await;
                    attempt += 1;
                }
                _ => {
                    return Err(NotifyError {
                        channel: "slack",
                        reason: match wait {
                            Some(secs) => format!(
                                "the webhook answered {status} with Retry-After {secs} s \
                                 (attempt {attempt})"
                            ),
                            None => format!("the webhook answered {status}"),
                        },
                        permanent: matches!(status.as_u16(), 400 | 403 | 404 | 410),
                    })
                }
            }
        }
    }

    /// Send the daily digest: to the email topic (`subject`, `body`, with
    /// the message attribute `kind` = `digest`, so a subscription's filter
    /// policy can take or leave it) and to Slack when configured. AWS
    /// Chatbot gets findings only. Both are tried; the first failure is
    /// returned.
    pub async fn send_digest(
        &self,
        subject: &str,
        body: &str,
        slack: &serde_json::Value,
    ) -> Result<(), NotifyError> {
        let wait_until = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let kind = MessageAttributeValue::builder()
            .data_type("String")
            .string_value("digest")
            .build()
            .expect("data type and value are set");
        let email = self
            .sns
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(subject)
            .message(body)
            .message_attributes("kind", kind)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| NotifyError {
                channel: "sns",
                permanent: e.as_service_error().is_some_and(refused_for_good),
                reason: format!("Publish to {}: {}", self.topic_arn, error_chain(&e)),
            });
        let slack = match &self.slack {
            Some(_) => self.post_slack(slack, wait_until).await,
            None => Ok(()),
        };
        email.and(slack)
    }
}

/// Longest `Retry-After` (seconds) a Slack send waits out within one
/// invocation (the alert function's timeout is 60 s).
pub const SLACK_MAX_WAIT_SECS: u64 = 10;

/// Slack sends per finding per invocation, the first included.
pub const SLACK_ATTEMPTS: u32 = 3;

/// A `Retry-After` header in seconds (Slack sends seconds; an HTTP date is
/// not read, and the send fails to be retried later).
fn retry_after_secs(headers: &hyper::HeaderMap) -> Option<u64> {
    headers
        .get(hyper::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Build the notifier from the configuration (reads the Slack secret once).
pub async fn notifier(
    service: &crate::Service,
    sdk: &aws_config::SdkConfig,
) -> Result<Notifier, String> {
    let topic = service
        .config
        .alert_topic_arn
        .clone()
        .ok_or("TRAILWARDEN_ALERT_TOPIC_ARN is not set")?;
    let slack = match &service.config.slack_secret_arn {
        None => None,
        Some(arn) => {
            let sm = aws_sdk_secretsmanager::Client::new(sdk);
            let out = sm
                .get_secret_value()
                .secret_id(arn)
                .send()
                .await
                .map_err(|e| format!("Slack webhook secret {arn}: {}", error_chain(&e)))?;
            Some(
                out.secret_string
                    .ok_or(format!("Slack webhook secret {arn} has no string value"))?
                    .trim()
                    .to_owned(),
            )
        }
    };
    let notifier = Notifier::new(
        aws_sdk_sns::Client::new(sdk),
        topic,
        service.config.chatbot_topic_arn.clone(),
        slack,
    )
    .map_err(|e| e.to_string())?;
    let notifier = match &service.config.event_bus {
        Some(bus) => notifier.with_events(crate::events::FindingEvents::new(
            aws_sdk_eventbridge::Client::new(sdk),
            bus.clone(),
            service.config.event_format,
        )),
        None => notifier,
    };
    Ok(
        match (
            &service.config.security_hub_min_level,
            &service.config.account_id,
        ) {
            (Some(level), Some(account)) => {
                let region = sdk
                    .region()
                    .map(|r| r.as_ref().to_owned())
                    .ok_or("no AWS region for Security Hub")?;
                notifier.with_security_hub(crate::securityhub::SecurityHub::new(
                    aws_sdk_securityhub::Client::new(sdk),
                    account.clone(),
                    region,
                    *level,
                ))
            }
            _ => notifier,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sns::types::error::{
        InternalErrorException, InvalidParameterException, InvalidParameterValueException,
    };

    #[test]
    fn only_invalid_parameters_are_refused_for_good() {
        let invalid = PublishError::InvalidParameterException(
            InvalidParameterException::builder()
                .message("Subject must be less than 100 characters")
                .build(),
        );
        let value = PublishError::InvalidParameterValueException(
            InvalidParameterValueException::builder()
                .message("empty message attribute value")
                .build(),
        );
        let internal = PublishError::InternalErrorException(
            InternalErrorException::builder()
                .message("Internal error")
                .build(),
        );
        assert!(refused_for_good(&invalid));
        assert!(refused_for_good(&value));
        assert!(!refused_for_good(&internal));
    }
}
