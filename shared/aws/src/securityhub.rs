//! AWS Security Hub: new findings at or above a level imported as AWS
//! Security Finding Format (ASFF) findings with `BatchImportFindings`
//! (<https://docs.aws.amazon.com/securityhub/1.0/APIReference/API_BatchImportFindings.html>).
//!
//! They are imported through the account's default product
//! (`product/<account>/default`), which imports findings for the calling
//! account only (`AwsAccountId` must be the deployment's account); the
//! account a finding concerns is its `AwsAccount` resource. A Security Hub
//! administrator sees them when the deployment's account is one of its
//! members. Every text is cut to the API's limits (`Title` 256,
//! `Description` 1,024, `Id` and `GeneratorId` 512, a resource id 512, a
//! product field's value 2,048; see
//! <https://docs.aws.amazon.com/securityhub/1.0/APIReference/API_AwsSecurityFinding.html>)
//! and stripped of control characters.

use aws_sdk_securityhub::types::{
    AwsSecurityFinding, Recommendation, Remediation, Resource, Severity, SeverityLabel,
};
use trailwarden_engine::{Finding, Level};

use crate::dynamo::error_chain;
use crate::notify::NotifyError;

/// The delivery channel name recorded on a finding imported.
pub const CHANNEL: &str = "securityhub";

/// The ASFF schema version.
pub const SCHEMA_VERSION: &str = "2018-10-08";

/// The product ARN of `account`'s default product in `region`.
pub fn product_arn(region: &str, account: &str) -> String {
    let partition = if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else if region.starts_with("us-isob-") {
        "aws-iso-b"
    } else if region.starts_with("us-iso-") {
        "aws-iso"
    } else {
        "aws"
    };
    format!("arn:{partition}:securityhub:{region}:{account}:product/{account}/default")
}

/// An RFC 3339 time for `event_time`, or `now` when it is not one.
fn timestamp(event_time: &str, now: &str) -> String {
    trailwarden_cloudtrail::parse_event_time(event_time)
        .and_then(chrono::DateTime::from_timestamp_millis)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| now.to_owned())
}

/// Text for a field of at most `max` characters however they are counted
/// (UTF-16 units, which a character never has fewer of): controls and
/// bidirectional characters removed, whitespace folded, cut with `...`,
/// never empty (`-`).
fn text(value: &str, max: usize) -> String {
    let mut out = String::new();
    let mut units = 0;
    let mut last_space = true;
    for c in value.chars() {
        let c = if c.is_whitespace() { ' ' } else { c };
        if trailwarden_engine::render::is_unsafe(c) || (c == ' ' && last_space) {
            continue;
        }
        last_space = c == ' ';
        if units + c.len_utf16() > max.saturating_sub(3) {
            out.push_str("...");
            break;
        }
        units += c.len_utf16();
        out.push(c);
    }
    let out = out.trim().to_owned();
    if out.is_empty() {
        "-".to_owned()
    } else {
        out
    }
}

/// The finding as an ASFF finding of `account` (the deployment's) in
/// `region`, at `now` (RFC 3339), with its rule's response guide as the
/// recommendation.
pub fn asff(
    f: &Finding,
    account: &str,
    region: &str,
    now: &str,
    response: Option<&str>,
) -> AwsSecurityFinding {
    let severity = match f.level {
        Level::Informational => SeverityLabel::Informational,
        Level::Low => SeverityLabel::Low,
        Level::Medium => SeverityLabel::Medium,
        Level::High => SeverityLabel::High,
        Level::Critical => SeverityLabel::Critical,
    };
    // ASFF's own type for exfiltration is an effect; other tactics are TTPs.
    let mut types: Vec<String> = f
        .tags
        .iter()
        .filter_map(|t| trailwarden_engine::ocsf::tactic_name(t))
        .map(|name| match name {
            "Exfiltration" => "Effects/Data Exfiltration".to_owned(),
            name => format!("TTPs/{name}"),
        })
        .collect();
    types.sort();
    types.dedup();
    types.truncate(50);
    if types.is_empty() {
        types.push("Unusual Behaviors/User".to_owned());
    }
    let observed = timestamp(&f.event_time, now);
    // A finding that folds repeats was last observed at its latest event.
    let last_observed = timestamp(f.latest_event_time(), now);
    let mut resources = Vec::new();
    if let Some(acct) = f
        .account
        .as_deref()
        .filter(|a| a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()))
    {
        resources.push(
            Resource::builder()
                .r#type("AwsAccount")
                .id(format!("AWS::::Account:{acct}"))
                .build(),
        );
    }
    if let Some(principal) = f.principal.as_deref().filter(|p| !p.trim().is_empty()) {
        let kind = match f.principal_type.as_deref() {
            Some("IAMUser") => "AwsIamUser",
            Some("AssumedRole") | Some("Role") => "AwsIamRole",
            _ => "Other",
        };
        resources.push(
            Resource::builder()
                .r#type(kind)
                .id(text(principal, 512))
                .build(),
        );
    }
    if resources.is_empty() {
        resources.push(
            Resource::builder()
                .r#type("AwsAccount")
                .id(format!("AWS::::Account:{account}"))
                .build(),
        );
    }
    let description = match &f.note {
        Some(note) => format!("{note}. {}", f.description),
        None => f.description.clone(),
    };
    let mut b = AwsSecurityFinding::builder()
        .schema_version(SCHEMA_VERSION)
        .id(text(&f.id, 512))
        .product_arn(product_arn(region, account))
        .generator_id(text(&format!("trailwarden/{}", f.rule_id), 512))
        .aws_account_id(account)
        .set_types(Some(types))
        .first_observed_at(&observed)
        .last_observed_at(&last_observed)
        .created_at(&observed)
        .updated_at(now)
        .severity(Severity::builder().label(severity).build())
        .title(text(&f.rule_title, 256))
        .description(text(&description, 1024))
        .set_resources(Some(resources))
        .product_fields("trailwarden/finding_id", text(&f.id, 2048))
        .product_fields("trailwarden/rule_id", text(&f.rule_id, 2048))
        .product_fields(
            "trailwarden/event",
            text(&format!("{}:{}", f.event_source, f.event_name), 2048),
        )
        .product_fields(
            "trailwarden/show",
            "trailwarden findings --table <findings table> show <finding_id>",
        );
    for (key, value) in [
        ("trailwarden/principal", &f.principal),
        ("trailwarden/source_ip", &f.source_ip),
        ("trailwarden/user_agent", &f.user_agent),
        ("trailwarden/access_key_id", &f.access_key_id),
        ("trailwarden/region", &f.region),
    ] {
        if let Some(v) = value.as_deref().filter(|v| !v.trim().is_empty()) {
            b = b.product_fields(key, text(v, 2048));
        }
    }
    if let Some(r) = response {
        b = b.remediation(
            Remediation::builder()
                .recommendation(Recommendation::builder().text(text(r, 512)).build())
                .build(),
        );
    }
    b.build()
}

/// Whether an error code says a retry may succeed.
fn transient(code: &str) -> bool {
    matches!(
        code,
        "ThrottlingException"
            | "TooManyRequestsException"
            | "LimitExceededException"
            | "InternalException"
            | "InternalFailure"
            | "ServiceUnavailable"
    )
}

/// Imports findings into Security Hub. Built once at cold start.
#[derive(Clone)]
pub struct SecurityHub {
    client: aws_sdk_securityhub::Client,
    account: String,
    region: String,
    min_level: Level,
}

impl SecurityHub {
    /// An importer for the deployment's `account` and `region`, of findings
    /// at or above `min_level`.
    pub fn new(
        client: aws_sdk_securityhub::Client,
        account: String,
        region: String,
        min_level: Level,
    ) -> Self {
        SecurityHub {
            client,
            account,
            region,
            min_level,
        }
    }

    /// Whether a finding at `level` is imported.
    pub fn takes(&self, level: Level) -> bool {
        level >= self.min_level
    }

    /// Import one finding. Security Hub refusing it (`FailedCount`, an
    /// invalid request) is permanent: the same finding cannot succeed.
    pub async fn import(&self, f: &Finding, response: Option<&str>) -> Result<(), NotifyError> {
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let finding = asff(f, &self.account, &self.region, &now, response);
        let out = self
            .client
            .batch_import_findings()
            .findings(finding)
            .send()
            .await
            .map_err(|e| {
                // Security Hub not enabled, a role or SCP that denies the
                // call, an invalid finding: deployment faults or refusals a
                // retry cannot mend, which must not hold the stream's later
                // findings. Throttling and server errors are retried.
                let code = aws_sdk_securityhub::error::ProvideErrorMetadata::code(&e);
                NotifyError {
                    channel: CHANNEL,
                    permanent: code.is_some_and(|c| !transient(c)),
                    reason: format!("BatchImportFindings: {}", error_chain(&e)),
                }
            })?;
        if out.failed_count.unwrap_or(0) > 0 {
            let reasons: Vec<String> = out
                .failed_findings()
                .iter()
                .map(|f| {
                    format!(
                        "{}: {}",
                        f.error_code().unwrap_or("?"),
                        f.error_message().unwrap_or("?")
                    )
                })
                .collect();
            return Err(NotifyError {
                channel: CHANNEL,
                permanent: true,
                reason: format!("BatchImportFindings refused it: {}", reasons.join("; ")),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hostile_finding_fits_every_limit() {
        let huge = "x\u{1b}[31m\n".repeat(20_000);
        let f: Finding = serde_json::from_value(serde_json::json!({
            "id": "tw-0123456789abcdef0123456789abcdef", "rule_id": huge, "rule_title": huge,
            "level": "critical", "tags": ["attack.defense-evasion", "attack.t1562.008", "attack.persistence"],
            "description": huge, "event_time": "not a time", "account": "111122223333",
            "region": "us-east-1", "principal": huge, "principal_type": "AssumedRole",
            "access_key_id": null, "source_ip": "", "user_agent": huge,
            "event_source": "cloudtrail.amazonaws.com", "event_name": "StopLogging",
            "error_code": null, "event_ids": ["e"], "count": 1, "note": huge
        }))
        .unwrap();
        let a = asff(
            &f,
            "999988887777",
            "us-gov-west-1",
            "2026-12-01T00:00:00Z",
            Some(&huge),
        );
        assert_eq!(a.schema_version(), Some(SCHEMA_VERSION));
        assert_eq!(
            a.product_arn(),
            Some("arn:aws-us-gov:securityhub:us-gov-west-1:999988887777:product/999988887777/default")
        );
        assert_eq!(a.aws_account_id(), Some("999988887777"));
        assert!(a.title().unwrap().chars().count() <= 256);
        assert!(a.description().unwrap().chars().count() <= 1024);
        assert!(a.generator_id().unwrap().chars().count() <= 512);
        assert!(a.id().unwrap().chars().count() <= 512);
        assert_eq!(
            a.created_at(),
            Some("2026-12-01T00:00:00Z"),
            "not a time: now"
        );
        assert_eq!(
            a.severity().unwrap().label(),
            Some(&SeverityLabel::Critical)
        );
        assert_eq!(a.types(), ["TTPs/Defense Evasion", "TTPs/Persistence"]);
        let resources = a.resources();
        assert_eq!(resources[0].id(), Some("AWS::::Account:111122223333"));
        assert_eq!(resources[1].r#type(), Some("AwsIamRole"));
        assert!(resources
            .iter()
            .all(|r| r.id().unwrap().chars().count() <= 512));
        for (k, v) in a.product_fields().unwrap() {
            assert!(k.len() <= 128 && v.chars().count() <= 2048, "{k}");
            assert!(!v.chars().any(char::is_control), "{k}");
        }
        assert!(
            !a.product_fields()
                .unwrap()
                .contains_key("trailwarden/source_ip"),
            "empty: left out"
        );
        let rec = a
            .remediation()
            .unwrap()
            .recommendation()
            .unwrap()
            .text()
            .unwrap();
        assert!(rec.chars().count() <= 512);
        assert!(!a.title().unwrap().chars().any(char::is_control));
    }
}
