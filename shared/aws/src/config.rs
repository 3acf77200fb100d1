//! Configuration from the environment, read once at cold start into a typed
//! struct. Every bad or missing variable is named in the error.

use std::collections::HashMap;

use thiserror::Error;
use trailwarden_engine::Level;

/// A configuration problem: which variable, and what is wrong.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("configuration: {variable}: {reason}")]
pub struct ConfigError {
    /// The environment variable.
    pub variable: String,
    /// What is wrong and what to set.
    pub reason: String,
}

/// Where an optional document comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// `s3://bucket/key` (or a prefix, for rules).
    S3 {
        /// Bucket.
        bucket: String,
        /// Key or prefix.
        key: String,
    },
    /// `ssm:/parameter/name`.
    Ssm(String),
}

impl Location {
    /// Parse `s3://bucket/key` or `ssm:/name`.
    pub fn parse(text: &str) -> Option<Location> {
        if let Some(rest) = text.strip_prefix("s3://") {
            let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
            (!bucket.is_empty()).then(|| Location::S3 {
                bucket: bucket.to_owned(),
                key: key.to_owned(),
            })
        } else {
            text.strip_prefix("ssm:")
                .filter(|n| !n.is_empty())
                .map(|n| Location::Ssm(n.to_owned()))
        }
    }
}

/// Everything a function needs, from its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `TRAILWARDEN_FINDINGS_TABLE`.
    pub findings_table: String,
    /// `TRAILWARDEN_STATE_TABLE` (state and ledger).
    pub state_table: String,
    /// `TRAILWARDEN_ALERT_TOPIC_ARN` (alert function).
    pub alert_topic_arn: Option<String>,
    /// `TRAILWARDEN_CHATBOT_TOPIC_ARN`.
    pub chatbot_topic_arn: Option<String>,
    /// `TRAILWARDEN_SLACK_SECRET_ARN`: a secret whose string is the webhook URL.
    pub slack_secret_arn: Option<String>,
    /// `TRAILWARDEN_MIN_ALERT_LEVEL` (default medium).
    pub min_alert_level: Level,
    /// Per channel (`sns`, `chatbot`, `slack`), a minimum of its own:
    /// `TRAILWARDEN_MIN_EMAIL_LEVEL`, `TRAILWARDEN_MIN_CHATBOT_LEVEL`,
    /// `TRAILWARDEN_MIN_SLACK_LEVEL` (unset or empty: `min_alert_level`).
    pub channel_min_levels: Vec<(&'static str, Level)>,
    /// `TRAILWARDEN_POLICY`: the policy file.
    pub policy: Option<Location>,
    /// `TRAILWARDEN_EXTRA_RULES`: extra Sigma rules: every `.yml`/`.yaml`
    /// under `s3://bucket/prefix/`, one parameter `ssm:/name`, or every
    /// parameter under a path `ssm:/path/*`.
    pub extra_rules: Option<Location>,
    /// Facts from `TRAILWARDEN_<FACT>` (comma-separated), over the policy's.
    pub facts: Vec<(String, Vec<String>)>,
    /// `TRAILWARDEN_EXPECTED_BUCKET_OWNER`.
    pub expected_bucket_owner: Option<String>,
    /// `TRAILWARDEN_MAX_OBJECT_BYTES` (default 2 GiB).
    pub max_object_bytes: u64,
    /// `TRAILWARDEN_IDLE_DAYS` (sweeper; default 90).
    pub idle_days: u32,
    /// `TRAILWARDEN_ALERT_DEDUP_MINUTES`: after a finding of a rule and
    /// principal alerts, others of the same pair within this many minutes
    /// are stored but not alerted, and counted for the next alert of the
    /// pair (default 0: every finding alerts).
    pub alert_dedup_minutes: u32,
    /// `TRAILWARDEN_EVENT_BUS`: the EventBridge bus (name or ARN) that gets
    /// an event for every new finding (unset or empty: none).
    pub event_bus: Option<String>,
    /// `TRAILWARDEN_EVENT_FORMAT`: the events' detail, `finding` (the
    /// finding as `trailwarden scan --format jsonl` writes it, the default)
    /// or `ocsf` (an OCSF Detection Finding).
    pub event_format: crate::events::EventFormat,
    /// `TRAILWARDEN_DIGEST_HOURS`: the sweeper then sends the digest of
    /// the findings of this many hours before it runs (0 or unset: no
    /// digest; at most 840, the 35 days the sources' hourly counters are
    /// kept).
    pub digest_hours: u32,
    /// `TRAILWARDEN_DEAD_LETTER_QUEUES`: comma-separated URLs of the
    /// dead-letter queues whose depth the digest reports.
    pub dead_letter_queues: Vec<String>,
    /// `TRAILWARDEN_CANARY_BUCKET`: the stack's canary bucket. The ingest
    /// function tags the findings of its objects as the canary's
    /// ([`crate::canary::CANARY_TAG`]); the canary function writes there.
    pub canary_bucket: Option<String>,
    /// `TRAILWARDEN_SECURITY_HUB_MIN_LEVEL`: new findings at or above this
    /// level are imported into Security Hub by the alert function (unset,
    /// empty or `off`: none).
    pub security_hub_min_level: Option<Level>,
    /// `TRAILWARDEN_ACCOUNT_ID`: the deployment's account (12 digits),
    /// required with `TRAILWARDEN_SECURITY_HUB_MIN_LEVEL`.
    pub account_id: Option<String>,
}

/// Which tables and topics a function needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// Tables only (ingest, realtime, sweeper).
    Tables,
    /// Tables and the alert topic (alert).
    Alerts,
}

impl Config {
    /// Read the process environment.
    pub fn from_env(needs: Needs) -> Result<Config, Vec<ConfigError>> {
        Self::from_map(&std::env::vars().collect(), needs)
    }

    /// Read from a map (for tests); all problems at once.
    pub fn from_map(
        env: &HashMap<String, String>,
        needs: Needs,
    ) -> Result<Config, Vec<ConfigError>> {
        let mut errors = Vec::new();
        let get = |name: &str| {
            env.get(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let mut required = |name: &str, what: &str| {
            get(name).unwrap_or_else(|| {
                errors.push(ConfigError {
                    variable: name.into(),
                    reason: format!("missing: set it to {what}"),
                });
                String::new()
            })
        };
        let findings_table = required("TRAILWARDEN_FINDINGS_TABLE", "the findings table's name");
        let state_table = required("TRAILWARDEN_STATE_TABLE", "the state table's name");
        let alert_topic_arn = match needs {
            Needs::Alerts => Some(required(
                "TRAILWARDEN_ALERT_TOPIC_ARN",
                "the ARN of the SNS topic for email alerts",
            )),
            Needs::Tables => get("TRAILWARDEN_ALERT_TOPIC_ARN"),
        };
        let mut arn = |name: &str, prefix: &str| {
            let v = get(name)?;
            if v.starts_with(prefix) {
                Some(v)
            } else {
                errors.push(ConfigError {
                    variable: name.into(),
                    reason: format!("{v:?} is not an ARN starting with {prefix}"),
                });
                None
            }
        };
        let chatbot_topic_arn = arn("TRAILWARDEN_CHATBOT_TOPIC_ARN", "arn:aws:sns:");
        let slack_secret_arn = arn("TRAILWARDEN_SLACK_SECRET_ARN", "arn:aws:secretsmanager:");
        if let Some(a) = &alert_topic_arn {
            if !a.is_empty() && !a.starts_with("arn:aws") {
                errors.push(ConfigError {
                    variable: "TRAILWARDEN_ALERT_TOPIC_ARN".into(),
                    reason: format!("{a:?} is not an SNS topic ARN"),
                });
            }
        }
        let min_alert_level = match get("TRAILWARDEN_MIN_ALERT_LEVEL") {
            None => Level::Medium,
            Some(v) => v.parse().unwrap_or_else(|e: String| {
                errors.push(ConfigError {
                    variable: "TRAILWARDEN_MIN_ALERT_LEVEL".into(),
                    reason: e,
                });
                Level::Medium
            }),
        };
        let mut channel_min_levels = Vec::new();
        for (channel, variable) in [
            ("sns", "TRAILWARDEN_MIN_EMAIL_LEVEL"),
            ("chatbot", "TRAILWARDEN_MIN_CHATBOT_LEVEL"),
            ("slack", "TRAILWARDEN_MIN_SLACK_LEVEL"),
        ] {
            if let Some(v) = get(variable).filter(|v| !v.trim().is_empty()) {
                match v.parse::<Level>() {
                    Ok(level) => channel_min_levels.push((channel, level)),
                    Err(e) => errors.push(ConfigError {
                        variable: variable.into(),
                        reason: e,
                    }),
                }
            }
        }
        let mut location = |name: &str| {
            let v = get(name)?;
            let parsed = Location::parse(&v);
            if parsed.is_none() {
                errors.push(ConfigError {
                    variable: name.into(),
                    reason: format!(
                        "{v:?} is neither s3://bucket/key nor ssm:/parameter-name (ssm:/path/* for every parameter under a path)"
                    ),
                });
            }
            parsed
        };
        let policy = location("TRAILWARDEN_POLICY");

        let extra_rules = location("TRAILWARDEN_EXTRA_RULES");
        if let Some(Location::Ssm(name)) = &policy {
            if name.ends_with("/*") {
                errors.push(ConfigError {
                    variable: "TRAILWARDEN_POLICY".into(),
                    reason: format!(
                        "{name:?} is a path; name the one parameter that holds the policy"
                    ),
                });
            }
        }
        let facts = trailwarden_engine::policy::FACTS
            .iter()
            .filter_map(|(fact, _)| {
                let name = format!("TRAILWARDEN_{}", fact.to_uppercase());
                let raw = get(&name)?;
                // `none` gives the fact as an empty list ("none"); an empty
                // variable leaves the fact to the policy file.
                if raw.trim().eq_ignore_ascii_case("none") {
                    return Some((fact.to_string(), Vec::new()));
                }
                let values: Vec<String> = raw
                    .split(',')
                    .map(|v| v.trim().to_owned())
                    .filter(|v| !v.is_empty())
                    .collect();
                match trailwarden_engine::policy::normalize_fact(fact, values) {
                    Ok(values) => (!values.is_empty()).then(|| (fact.to_string(), values)),
                    Err(reason) => {
                        errors.push(ConfigError {
                            variable: name,
                            reason,
                        });
                        None
                    }
                }
            })
            .collect();
        let mut number = |name: &str, default: u64| match get(name) {
            None => default,
            Some(v) => v.parse().unwrap_or_else(|_| {
                errors.push(ConfigError {
                    variable: name.into(),
                    reason: format!("{v:?} is not a whole number"),
                });
                default
            }),
        };
        let max_object_bytes = number("TRAILWARDEN_MAX_OBJECT_BYTES", 2 << 30);
        let idle_days = number("TRAILWARDEN_IDLE_DAYS", 90) as u32;
        let alert_dedup_minutes =
            number("TRAILWARDEN_ALERT_DEDUP_MINUTES", 0).min(7 * 24 * 60) as u32;
        let digest_hours = number("TRAILWARDEN_DIGEST_HOURS", 0);
        let event_bus = get("TRAILWARDEN_EVENT_BUS");
        if let Some(bus) = &event_bus {
            if !crate::events::bus_allowed(bus) {
                errors.push(ConfigError {
                    variable: "TRAILWARDEN_EVENT_BUS".into(),
                    reason: format!(
                        "{bus:?} is neither an event bus name (letters, digits, . - _ /, at most 256) nor an event bus ARN"
                    ),
                });
            }
        }
        let event_format = match get("TRAILWARDEN_EVENT_FORMAT") {
            None => crate::events::EventFormat::Finding,
            Some(v) => v.parse().unwrap_or_else(|e: String| {
                errors.push(ConfigError {
                    variable: "TRAILWARDEN_EVENT_FORMAT".into(),
                    reason: e,
                });
                crate::events::EventFormat::Finding
            }),
        };
        if digest_hours > 840 {
            errors.push(ConfigError {
                variable: "TRAILWARDEN_DIGEST_HOURS".into(),
                reason: format!(
                    "{digest_hours} hours is more than the 35 days (840) the sources' counters are kept"
                ),
            });
        }
        let digest_hours = digest_hours.min(840) as u32;
        let dead_letter_queues: Vec<String> = get("TRAILWARDEN_DEAD_LETTER_QUEUES")
            .map(|v| {
                v.split(',')
                    .map(|u| u.trim().to_owned())
                    .filter(|u| !u.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        for url in &dead_letter_queues {
            if !url.starts_with("https://") && !url.starts_with("http://127.0.0.1:") {
                errors.push(ConfigError {
                    variable: "TRAILWARDEN_DEAD_LETTER_QUEUES".into(),
                    reason: format!("{url:?} is not an SQS queue URL (https://sqs.…)"),
                });
            }
        }
        let canary_bucket = get("TRAILWARDEN_CANARY_BUCKET");
        let security_hub_min_level = match get("TRAILWARDEN_SECURITY_HUB_MIN_LEVEL") {
            None => None,
            Some(v) if v.eq_ignore_ascii_case("off") => None,
            Some(v) => match v.parse::<Level>() {
                Ok(level) => Some(level),
                Err(e) => {
                    errors.push(ConfigError {
                        variable: "TRAILWARDEN_SECURITY_HUB_MIN_LEVEL".into(),
                        reason: e,
                    });
                    None
                }
            },
        };
        let account_id = get("TRAILWARDEN_ACCOUNT_ID");
        match &account_id {
            Some(a) if a.len() != 12 || !a.bytes().all(|b| b.is_ascii_digit()) => {
                errors.push(ConfigError {
                    variable: "TRAILWARDEN_ACCOUNT_ID".into(),
                    reason: format!("{a:?} is not a 12-digit account id"),
                });
            }
            None if security_hub_min_level.is_some() => errors.push(ConfigError {
                variable: "TRAILWARDEN_ACCOUNT_ID".into(),
                reason: "missing: set it to the deployment's account id (Security Hub imports findings for the calling account)".into(),
            }),
            _ => {}
        }
        let expected_bucket_owner = get("TRAILWARDEN_EXPECTED_BUCKET_OWNER");
        if let Some(owner) = &expected_bucket_owner {
            if owner.len() != 12 || !owner.bytes().all(|c| c.is_ascii_digit()) {
                errors.push(ConfigError {
                    variable: "TRAILWARDEN_EXPECTED_BUCKET_OWNER".into(),
                    reason: format!("{owner:?} is not a 12-digit account id"),
                });
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Config {
            findings_table,
            state_table,
            alert_topic_arn,
            chatbot_topic_arn,
            slack_secret_arn,
            min_alert_level,
            channel_min_levels,
            policy,
            extra_rules,
            facts,
            expected_bucket_owner,
            max_object_bytes,
            idle_days,
            alert_dedup_minutes,
            event_bus,
            event_format,
            digest_hours,
            dead_letter_queues,
            canary_bucket,
            security_hub_min_level,
            account_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// The finding events' bus and format; bad values name the variable.
    #[test]
    fn event_bus_and_format() {
        let base = [
            ("TRAILWARDEN_FINDINGS_TABLE", "f"),
            ("TRAILWARDEN_STATE_TABLE", "s"),
        ];
        let with = |extra: &[(&str, &str)]| {
            let mut pairs = base.to_vec();
            pairs.extend_from_slice(extra);
            Config::from_map(&env(&pairs), Needs::Tables)
        };
        let c = with(&[]).unwrap();
        assert_eq!(c.event_bus, None);
        assert_eq!(c.event_format, crate::events::EventFormat::Finding);
        let c = with(&[
            ("TRAILWARDEN_EVENT_BUS", "default"),
            ("TRAILWARDEN_EVENT_FORMAT", "OCSF"),
        ])
        .unwrap();
        assert_eq!(c.event_bus.as_deref(), Some("default"));
        assert_eq!(c.event_format, crate::events::EventFormat::Ocsf);
        let arn = "arn:aws:events:us-east-1:111122223333:event-bus/security";
        assert_eq!(
            with(&[("TRAILWARDEN_EVENT_BUS", arn)])
                .unwrap()
                .event_bus
                .as_deref(),
            Some(arn)
        );
        for (var, value) in [
            ("TRAILWARDEN_EVENT_BUS", "bus name with spaces"),
            (
                "TRAILWARDEN_EVENT_BUS",
                "arn:aws:sns:us-east-1:111122223333:topic",
            ),
            ("TRAILWARDEN_EVENT_FORMAT", "xml"),
        ] {
            let errors = with(&[(var, value)]).unwrap_err();
            assert_eq!(errors.len(), 1, "{errors:?}");
            assert_eq!(errors[0].variable, var);
        }
    }

    /// Each channel may have a minimum of its own; unset or empty means
    /// the general one; a bad value is an error naming the variable.
    #[test]
    fn channel_minimum_levels() {
        let base = [
            ("TRAILWARDEN_FINDINGS_TABLE", "f"),
            ("TRAILWARDEN_STATE_TABLE", "s"),
            ("TRAILWARDEN_ALERT_TOPIC_ARN", "arn:aws:sns:us-east-1:1:t"),
        ];
        let with = |extra: &[(&str, &str)]| {
            let mut pairs = base.to_vec();
            pairs.extend_from_slice(extra);
            Config::from_map(&env(&pairs), Needs::Alerts)
        };
        let c = with(&[
            ("TRAILWARDEN_MIN_SLACK_LEVEL", "critical"),
            ("TRAILWARDEN_MIN_EMAIL_LEVEL", "low"),
            ("TRAILWARDEN_MIN_CHATBOT_LEVEL", ""),
        ])
        .unwrap();
        assert_eq!(c.min_alert_level, Level::Medium);
        assert_eq!(
            c.channel_min_levels,
            [("sns", Level::Low), ("slack", Level::Critical)]
        );
        let errors = with(&[("TRAILWARDEN_MIN_SLACK_LEVEL", "loud")]).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].variable, "TRAILWARDEN_MIN_SLACK_LEVEL");
    }

    #[test]
    fn reads_a_full_configuration() {
        let c = Config::from_map(
            &env(&[
                ("TRAILWARDEN_FINDINGS_TABLE", "f"),
                ("TRAILWARDEN_STATE_TABLE", "s"),
                ("TRAILWARDEN_ALERT_TOPIC_ARN", "arn:aws:sns:us-east-1:1:t"),
                ("TRAILWARDEN_MIN_ALERT_LEVEL", "high"),
                ("TRAILWARDEN_POLICY", "s3://cfg/policy.yaml"),
                ("TRAILWARDEN_TRAINING_BUCKETS", "a, b,,"),
                ("TRAILWARDEN_NETWORK_ACCOUNTS", "None"),
            ]),
            Needs::Alerts,
        )
        .unwrap();
        assert_eq!(c.min_alert_level, Level::High);
        assert_eq!(
            c.policy,
            Some(Location::S3 {
                bucket: "cfg".into(),
                key: "policy.yaml".into()
            })
        );
        assert_eq!(
            c.facts,
            vec![
                (
                    "training_buckets".to_string(),
                    vec!["a".to_string(), "b".to_string()]
                ),
                ("network_accounts".to_string(), vec![]),
            ]
        );
    }

    #[test]
    fn extra_rules_come_from_s3_or_ssm_and_the_policy_from_one_place() {
        let tables = [
            ("TRAILWARDEN_FINDINGS_TABLE", "f"),
            ("TRAILWARDEN_STATE_TABLE", "s"),
        ];
        for (value, expected) in [
            (
                "s3://rules-bucket/sigma/",
                Location::S3 {
                    bucket: "rules-bucket".into(),
                    key: "sigma/".into(),
                },
            ),
            (
                "ssm:/trailwarden/rule",
                Location::Ssm("/trailwarden/rule".into()),
            ),
            (
                "ssm:/trailwarden/rules/*",
                Location::Ssm("/trailwarden/rules/*".into()),
            ),
        ] {
            let mut pairs = tables.to_vec();
            pairs.push(("TRAILWARDEN_EXTRA_RULES", value));
            let c = Config::from_map(&env(&pairs), Needs::Tables).unwrap();
            assert_eq!(c.extra_rules, Some(expected));
        }
        let mut pairs = tables.to_vec();
        pairs.push(("TRAILWARDEN_POLICY", "ssm:/trailwarden/*"));
        let errors = Config::from_map(&env(&pairs), Needs::Tables).unwrap_err();
        assert_eq!(errors[0].variable, "TRAILWARDEN_POLICY");
        assert!(errors[0].reason.contains("is a path"), "{}", errors[0]);
    }

    #[test]
    fn names_every_bad_or_missing_variable() {
        let errors = Config::from_map(
            &env(&[
                ("TRAILWARDEN_MIN_ALERT_LEVEL", "urgent"),
                ("TRAILWARDEN_POLICY", "http://x"),
                ("TRAILWARDEN_SLACK_SECRET_ARN", "hooks.slack.com"),
                ("TRAILWARDEN_IDLE_DAYS", "ninety"),
                ("TRAILWARDEN_KNOWN_NETWORKS", "198.51.100.0/24, 203.0.113.*"),
            ]),
            Needs::Alerts,
        )
        .unwrap_err();
        let names: Vec<&str> = errors.iter().map(|e| e.variable.as_str()).collect();
        for n in [
            "TRAILWARDEN_FINDINGS_TABLE",
            "TRAILWARDEN_STATE_TABLE",
            "TRAILWARDEN_ALERT_TOPIC_ARN",
            "TRAILWARDEN_MIN_ALERT_LEVEL",
            "TRAILWARDEN_POLICY",
            "TRAILWARDEN_SLACK_SECRET_ARN",
            "TRAILWARDEN_IDLE_DAYS",
            "TRAILWARDEN_KNOWN_NETWORKS",
        ] {
            assert!(names.contains(&n), "{n} not in {names:?}");
        }
        let networks = errors
            .iter()
            .find(|e| e.variable == "TRAILWARDEN_KNOWN_NETWORKS")
            .unwrap();
        assert!(
            networks
                .reason
                .contains("known_networks[1] \"203.0.113.*\""),
            "{}",
            networks.reason
        );
    }
}
