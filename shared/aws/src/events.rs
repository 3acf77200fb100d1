//! An EventBridge event for every new finding, so routing findings to a
//! pager, a ticket queue, a SOAR or a Step Functions workflow is an
//! EventBridge rule, not code.
//!
//! Each event: `source` [`SOURCE`], `detail-type` [`DETAIL_TYPE`], `detail`
//! the finding (as `trailwarden scan --format jsonl` writes it) or, with
//! [`EventFormat::Ocsf`], the finding as an OCSF Detection Finding
//! (`trailwarden_engine::ocsf`). A rule's event pattern can then select by
//! level, rule or account, for example
//! `{"source": ["trailwarden"], "detail": {"level": ["high", "critical"]}}`.
//!
//! Limits (Amazon EventBridge `PutEvents`, API reference): an entry is at
//! most 256 KB; a `source` starting with `aws.` is reserved for AWS. A
//! finding's texts are already cut to the findings table's limits, so a
//! detail that is still too large is replaced by the finding's identifying
//! fields (see [`event_detail`]).

use std::str::FromStr;

use serde_json::Value;
use trailwarden_engine::Finding;

use crate::dynamo::error_chain;
use crate::notify::NotifyError;

/// The events' `source`.
pub const SOURCE: &str = "trailwarden";

/// The events' `detail-type`.
pub const DETAIL_TYPE: &str = "trailwarden Finding";

/// The delivery record of a finding whose event was put (see the alert
/// function's delivery records).
pub const CHANNEL: &str = "eventbridge";

/// Largest `detail` sent whole, in bytes: an entry is at most 256 KB with
/// its `source`, `detail-type` and bus name.
pub const MAX_DETAIL_BYTES: usize = 240 * 1024;

/// What an event's `detail` holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventFormat {
    /// The finding's own JSON.
    Finding,
    /// An OCSF Detection Finding (class 2004).
    Ocsf,
}

impl FromStr for EventFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "finding" => Ok(EventFormat::Finding),
            "ocsf" => Ok(EventFormat::Ocsf),
            _ => Err(format!("unknown event format {s:?}: use finding or ocsf")),
        }
    }
}

/// Whether `bus` names an event bus: a name of letters, digits and
/// `. - _ /` (at most 256), or an event bus ARN
/// (`arn:<partition>:events:<region>:<account>:event-bus/<name>`).
pub fn bus_allowed(bus: &str) -> bool {
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.len() <= 256
            && n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"./-_".contains(&b))
    };
    match bus.strip_prefix("arn:") {
        None => name_ok(bus),
        Some(rest) => {
            let parts: Vec<&str> = rest.splitn(5, ':').collect();
            parts.len() == 5
                && parts[0].starts_with("aws")
                && parts[1] == "events"
                && !parts[2].is_empty()
                && parts[3].len() == 12
                && parts[3].bytes().all(|b| b.is_ascii_digit())
                && parts[4].strip_prefix("event-bus/").is_some_and(name_ok)
        }
    }
}

/// The `detail` of a finding's event, as JSON text: the whole finding (or
/// its OCSF form), or, past [`MAX_DETAIL_BYTES`], the same form of the
/// finding cut down (texts of at most 1 KB, no description, user agent,
/// note or group, one event id) and marked `"truncated": true` (at the top
/// for a finding, under `unmapped.trailwarden` for OCSF): the level, rule,
/// account and principal a routing rule matches on stay. The whole finding
/// stays in the findings table.
pub fn event_detail(finding: &Finding, format: EventFormat) -> String {
    let render = |f: &Finding| -> Value {
        match format {
            EventFormat::Finding => serde_json::to_value(f).unwrap_or_default(),
            EventFormat::Ocsf => trailwarden_engine::ocsf::detection_finding(f),
        }
    };
    let whole = render(finding).to_string();
    if whole.len() <= MAX_DETAIL_BYTES {
        return whole;
    }
    let cut = |s: &str| s.chars().take(1024).collect::<String>();
    let cut_opt = |s: &Option<String>| s.as_deref().map(cut);
    let short = Finding {
        id: cut(&finding.id),
        rule_id: cut(&finding.rule_id),
        rule_title: cut(&finding.rule_title),
        level: finding.level,
        tags: finding.tags.iter().take(20).map(|t| cut(t)).collect(),
        description: String::new(),
        event_time: cut(&finding.event_time),
        last_event_time: cut_opt(&finding.last_event_time),
        account: cut_opt(&finding.account),
        region: cut_opt(&finding.region),
        principal: cut_opt(&finding.principal),
        principal_type: cut_opt(&finding.principal_type),
        access_key_id: cut_opt(&finding.access_key_id),
        source_ip: cut_opt(&finding.source_ip),
        user_agent: None,
        event_source: cut(&finding.event_source),
        event_name: cut(&finding.event_name),
        error_code: cut_opt(&finding.error_code),
        event_ids: finding.event_ids.iter().take(1).map(|e| cut(e)).collect(),
        count: finding.count,
        group: Default::default(),
        note: None,
    };
    let mut value = render(&short);
    match format {
        EventFormat::Finding => value["truncated"] = true.into(),
        EventFormat::Ocsf => value["unmapped"]["trailwarden"]["truncated"] = true.into(),
    }
    value.to_string()
}

/// Puts one event per finding on a bus.
#[derive(Debug, Clone)]
pub struct FindingEvents {
    client: aws_sdk_eventbridge::Client,
    bus: String,
    format: EventFormat,
}

impl FindingEvents {
    /// Events on `bus` (a name or an ARN) with `format` details.
    pub fn new(client: aws_sdk_eventbridge::Client, bus: String, format: EventFormat) -> Self {
        FindingEvents {
            client,
            bus,
            format,
        }
    }

    /// The bus.
    pub fn bus(&self) -> &str {
        &self.bus
    }

    /// Put the event of `finding`. A call or an entry EventBridge refuses
    /// (`FailedEntryCount`) is an error with its code; throttling, internal
    /// failures and failures to reach the service are worth retrying, any
    /// other code is not (`permanent`).
    pub async fn put(&self, finding: &Finding) -> Result<(), NotifyError> {
        let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
            .source(SOURCE)
            .detail_type(DETAIL_TYPE)
            .detail(event_detail(finding, self.format))
            .event_bus_name(&self.bus)
            .build();
        let out = self
            .client
            .put_events()
            .entries(entry)
            .send()
            .await
            .map_err(|e| {
                // A bus that does not exist, or a role without
                // `events:PutEvents` on it, is a deployment fault a retry
                // cannot mend: it must not hold the stream's later findings.
                let code = aws_sdk_eventbridge::error::ProvideErrorMetadata::code(&e);
                NotifyError {
                    channel: CHANNEL,
                    reason: format!("PutEvents on bus {}: {}", self.bus, error_chain(&e)),
                    permanent: code.is_some_and(|c| !transient(c)),
                }
            })?;
        if out.failed_entry_count() == 0 {
            return Ok(());
        }
        let failed = out.entries().first();
        let code = failed.and_then(|e| e.error_code()).unwrap_or("unknown");
        let message = failed.and_then(|e| e.error_message()).unwrap_or_default();
        Err(NotifyError {
            channel: CHANNEL,
            reason: format!(
                "EventBridge refused the event on bus {}: {code}: {message}",
                self.bus
            ),
            permanent: !transient(code),
        })
    }
}

/// Whether an EventBridge error code is worth retrying (throttling, an
/// internal failure); anything else (no such bus, access denied, a bad
/// entry) is refused for good.
fn transient(code: &str) -> bool {
    matches!(
        code,
        "ThrottlingException" | "InternalFailure" | "InternalException" | "ServiceUnavailable"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bus_names_and_arns() {
        for ok in [
            "default",
            "security-findings",
            "org/security_bus.1",
            "arn:aws:events:us-east-1:111122223333:event-bus/default",
            "arn:aws-us-gov:events:us-gov-west-1:111122223333:event-bus/sec",
        ] {
            assert!(bus_allowed(ok), "{ok}");
        }
        for bad in [
            "",
            "has space",
            "tab\tbus",
            "arn:aws:sns:us-east-1:111122223333:topic",
            "arn:aws:events:us-east-1:1111:event-bus/x",
            "arn:aws:events:us-east-1:111122223333:rule/x",
            "arn:aws:events:us-east-1:111122223333:event-bus/",
        ] {
            assert!(!bus_allowed(bad), "{bad}");
        }
        assert!(!bus_allowed(&"b".repeat(257)));
    }

    #[test]
    fn a_detail_too_large_is_cut_to_the_identifying_fields() {
        let mut finding: Finding = serde_json::from_value(json!({
            "id": "tw-1", "rule_id": "r", "rule_title": "t", "level": "high", "tags": [],
            "description": "", "event_time": "2026-11-02T08:00:00Z", "account": "111122223333",
            "region": "us-east-1", "principal": "p", "principal_type": null,
            "access_key_id": null, "source_ip": null, "user_agent": null,
            "event_source": "s3.amazonaws.com", "event_name": "GetObject", "error_code": null,
            "event_ids": ["e"], "count": 1
        }))
        .unwrap();
        let whole = event_detail(&finding, EventFormat::Finding);
        assert_eq!(serde_json::from_str::<Finding>(&whole).unwrap(), finding);
        let ocsf: Value = serde_json::from_str(&event_detail(&finding, EventFormat::Ocsf)).unwrap();
        assert_eq!(ocsf["class_uid"], 2004);
        finding.description = "x".repeat(MAX_DETAIL_BYTES);
        let short: Value =
            serde_json::from_str(&event_detail(&finding, EventFormat::Finding)).unwrap();
        assert_eq!(short["truncated"], true);
        assert_eq!(short["id"], "tw-1");
        assert_eq!(short["level"], "high");
        assert!(short.to_string().len() < 8 * 1024);
        let short: Value =
            serde_json::from_str(&event_detail(&finding, EventFormat::Ocsf)).unwrap();
        assert_eq!(short["unmapped"]["trailwarden"]["truncated"], true);
        assert_eq!(short["severity_id"], 4);
        assert_eq!(short["finding_info"]["uid"], "tw-1");
        assert!(short.to_string().len() < 8 * 1024);
    }

    #[test]
    fn formats_parse() {
        assert_eq!("finding".parse(), Ok(EventFormat::Finding));
        assert_eq!(" OCSF ".parse(), Ok(EventFormat::Ocsf));
        assert!("xml".parse::<EventFormat>().is_err());
    }
}
