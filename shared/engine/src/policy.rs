//! The organisation policy: facts rules read as Sigma placeholders,
//! suppressions, and per-rule level overrides.
//!
//! ```yaml
//! training_buckets: [acme-ml-training-data, "acme-ml-*"]
//! log_buckets: [acme-org-cloudtrail-logs]
//! ai_accounts: ["111122223333"]
//! approved_principals: ["arn:aws:iam::111122223333:role/ml-training-role"]
//! approved_sagemaker_principals: ["arn:aws:iam::111122223333:role/pipeline-*"]
//! allowed_regions: [us-east-1, us-west-2]
//! approved_models: ["anthropic.claude-3-5-sonnet-*"]
//! trusted_accounts: ["444455556666"]
//! known_networks: ["198.51.100.0/24", "2001:db8::/32"]
//! network_accounts: []                # written out: none
//! suppressions:
//!   - rule: 5f0c…                      # rule id
//!     where: {principal: "arn:aws:sts::111122223333:assumed-role/terraform/*"}
//!     reason: Terraform manages guardrails
//!     expires: 2027-03-31              # optional; compared with the event time
//! levels:
//!   5f0c…: low
//! ```
//!
//! Facts fill `%name%` placeholders in rules (`field|expand: '%training_buckets%'`);
//! values may use Sigma's `*` and `?` wildcards. A rule that uses a fact the
//! policy does not give is not run (see [`crate::rules`]), so a missing fact
//! never turns a rule into match-everything. A fact written as an empty
//! list is given: it says "none" (`trusted_accounts: []` trusts no outside
//! account), and a detection item on it matches nothing.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use thiserror::Error;

use crate::finding::{Finding, Level};

/// The facts rules may refer to, with what each means.
pub const FACTS: [(&str, &str); 11] = [
    (
        "training_buckets",
        "S3 buckets (names or patterns) that hold training data",
    ),
    (
        "log_buckets",
        "S3 buckets (names or patterns) that receive CloudTrail logs",
    ),
    (
        "ai_accounts",
        "account ids where AI workloads are meant to run",
    ),
    (
        "approved_principals",
        "ARNs (or patterns) allowed to use Bedrock and SageMaker",
    ),
    (
        "approved_bedrock_principals",
        "ARNs (or patterns) allowed to use Bedrock only (beside approved_principals)",
    ),
    (
        "approved_sagemaker_principals",
        "ARNs (or patterns) allowed to use SageMaker only (beside approved_principals)",
    ),
    ("allowed_regions", "regions where AI services may be used"),
    (
        "approved_models",
        "model ids (or patterns) that may be invoked",
    ),
    (
        "trusted_accounts",
        "outside account ids that may be granted access",
    ),
    (
        "known_networks",
        "the organisation's public addresses (CIDR blocks: NAT gateways, VPN, offices)",
    ),
    (
        "network_accounts",
        "the organisation's accounts that own shared VPCs or central VPC endpoints ([] for none)",
    ),
];

/// A policy file could not be used.
#[derive(Debug, Error)]
pub enum PolicyError {
    /// The file could not be read.
    #[error("cannot read policy file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The YAML is malformed or has unknown keys.
    #[error("policy file {path}: {reason}")]
    Invalid {
        /// The file (or source name).
        path: String,
        /// What is wrong.
        reason: String,
    },
}

/// A finding the organisation has decided not to be told about.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Suppression {
    /// The rule id it applies to (`*` for every rule).
    pub rule: String,
    /// Finding fields and the values (exact, or with `*` wildcards) they must
    /// all have. Keys: principal, account, region, source_ip, user_agent,
    /// access_key_id, event_name, event_source, or their CloudTrail names
    /// (userIdentity.arn, recipientAccountId, awsRegion, sourceIPAddress,
    /// userAgent, userIdentity.accessKeyId, eventName, eventSource).
    #[serde(default, rename = "where")]
    pub conditions: BTreeMap<String, String>,
    /// Why (required: a suppression without a reason is not reviewable).
    pub reason: String,
    /// Last day (UTC, inclusive) the suppression applies, by event time.
    #[serde(default)]
    pub expires: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default)]
    training_buckets: Option<Vec<String>>,
    #[serde(default)]
    log_buckets: Option<Vec<String>>,
    #[serde(default)]
    ai_accounts: Option<Vec<String>>,
    #[serde(default)]
    approved_principals: Option<Vec<String>>,
    #[serde(default)]
    approved_bedrock_principals: Option<Vec<String>>,
    #[serde(default)]
    approved_sagemaker_principals: Option<Vec<String>>,
    #[serde(default)]
    allowed_regions: Option<Vec<String>>,
    #[serde(default)]
    approved_models: Option<Vec<String>>,
    #[serde(default)]
    trusted_accounts: Option<Vec<String>>,
    #[serde(default)]
    known_networks: Option<Vec<String>>,
    #[serde(default)]
    network_accounts: Option<Vec<String>>,
    #[serde(default)]
    suppressions: Vec<Suppression>,
    #[serde(default)]
    levels: BTreeMap<String, String>,
}

/// The organisation policy, validated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    facts: BTreeMap<String, Vec<String>>,
    suppressions: Vec<(Suppression, Option<i64>)>,
    levels: BTreeMap<String, Level>,
    /// Where the policy came from (a file name), for messages.
    source: String,
    /// Per section (`levels`, `suppressions`) and rule id named there, the
    /// first line (1-based) of that section that names it.
    lines: BTreeMap<(&'static str, String), usize>,
}

/// A rule id the policy names under `levels:` or `suppressions:`, with where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleReference<'p> {
    /// The rule id (or name) as written.
    pub rule: &'p str,
    /// `levels` or `suppressions`.
    pub section: &'static str,
    /// `file:line` of the policy (or the file name alone when the line is
    /// not known).
    pub place: String,
}

const SUPPRESSION_KEYS: [(&str, &str); 16] = [
    ("principal", "principal"),
    ("userIdentity.arn", "principal"),
    ("account", "account"),
    ("recipientAccountId", "account"),
    ("region", "region"),
    ("awsRegion", "region"),
    ("source_ip", "source_ip"),
    ("sourceIPAddress", "source_ip"),
    ("user_agent", "user_agent"),
    ("userAgent", "user_agent"),
    ("access_key_id", "access_key_id"),
    ("userIdentity.accessKeyId", "access_key_id"),
    ("event_name", "event_name"),
    ("eventName", "event_name"),
    ("event_source", "event_source"),
    ("eventSource", "event_source"),
];

impl Policy {
    /// An empty policy: no facts, no suppressions, no overrides.
    pub fn empty() -> Self {
        Policy::default()
    }

    /// Read and validate a policy file.
    pub fn from_file(path: &Path) -> Result<Self, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_yaml(&path.display().to_string(), &text)
    }

    /// Parse and validate policy YAML (JSON is YAML too).
    pub fn from_yaml(source: &str, text: &str) -> Result<Self, PolicyError> {
        let invalid = |reason: String| PolicyError::Invalid {
            path: source.to_owned(),
            reason,
        };
        let file: PolicyFile = if text.trim().is_empty() {
            PolicyFile::default()
        } else {
            yaml_serde::from_str(text).map_err(|e| invalid(e.to_string()))?
        };
        let empty = facts_without_value(text);
        if !empty.is_empty() {
            let named: Vec<String> = empty
                .iter()
                .map(|name| match top_level_line(text, name) {
                    Some(l) => format!("`{name}` (line {l})"),
                    None => format!("`{name}`"),
                })
                .collect();
            return Err(invalid(format!(
                "{} written with no value: write `{}: []` to say \"none\" (its rules run), \
                 list its values, or remove the key (its rules are then not run)",
                named.join(", "),
                empty[0]
            )));
        }
        let mut facts = BTreeMap::new();
        for (name, values) in [
            ("training_buckets", file.training_buckets),
            ("log_buckets", file.log_buckets),
            ("ai_accounts", file.ai_accounts),
            ("approved_principals", file.approved_principals),
            (
                "approved_bedrock_principals",
                file.approved_bedrock_principals,
            ),
            (
                "approved_sagemaker_principals",
                file.approved_sagemaker_principals,
            ),
            ("allowed_regions", file.allowed_regions),
            ("approved_models", file.approved_models),
            ("trusted_accounts", file.trusted_accounts),
            ("known_networks", file.known_networks),
            ("network_accounts", file.network_accounts),
        ] {
            // An absent fact is not given (its rules are not run); an
            // empty list is given: "none" (its rules run, and a filter on it
            // excludes nothing).
            let Some(values) = values else { continue };
            let values = normalize_fact(name, values).map_err(invalid)?;
            facts.insert(name.to_owned(), values);
        }
        let mut suppressions = Vec::new();
        for (i, s) in file.suppressions.into_iter().enumerate() {
            if s.reason.trim().is_empty() {
                return Err(invalid(format!("suppressions[{i}] needs a reason")));
            }
            if let Some(key) = s
                .conditions
                .keys()
                .find(|k| !SUPPRESSION_KEYS.iter().any(|(name, _)| name == k))
            {
                let known: Vec<&str> = SUPPRESSION_KEYS.iter().map(|(n, _)| *n).collect();
                return Err(invalid(format!(
                    "suppressions[{i}] uses unknown field {key:?}; use one of {}",
                    known.join(", ")
                )));
            }
            let expires = match &s.expires {
                None => None,
                Some(date) => Some(end_of_day_millis(date).ok_or_else(|| {
                    invalid(format!(
                        "suppressions[{i}].expires {date:?} is not a date (YYYY-MM-DD)"
                    ))
                })?),
            };
            suppressions.push((s, expires));
        }
        let mut levels = BTreeMap::new();
        for (rule, level) in file.levels {
            let level: Level = level
                .parse()
                .map_err(|e| invalid(format!("levels.{rule}: {e}")))?;
            levels.insert(rule, level);
        }
        let mut lines = BTreeMap::new();
        for (section, rules) in [
            ("levels", levels.keys().collect::<Vec<_>>()),
            (
                "suppressions",
                suppressions.iter().map(|(s, _)| &s.rule).collect(),
            ),
        ] {
            for rule in rules {
                if let Some(line) = entry_line(text, section, rule) {
                    lines.entry((section, rule.clone())).or_insert(line);
                }
            }
        }
        Ok(Policy {
            facts,
            suppressions,
            levels,
            source: source.to_owned(),
            lines,
        })
    }

    /// Every rule the policy names under `levels:` or `suppressions:`
    /// (suppressions for every rule, `*`, excepted), so the rule set can
    /// refuse the ones that are not loaded.
    pub fn rule_references(&self) -> Vec<RuleReference<'_>> {
        let place =
            |section: &'static str, rule: &str| match self.lines.get(&(section, rule.to_owned())) {
                Some(line) => format!("{}:{line}", self.source),
                None => self.source.clone(),
            };
        let levels = self.levels.keys().map(|r| (r.as_str(), "levels"));
        let suppressions = self
            .suppressions
            .iter()
            .map(|(s, _)| (s.rule.as_str(), "suppressions"))
            .filter(|(r, _)| *r != "*");
        levels
            .chain(suppressions)
            .map(|(rule, section)| RuleReference {
                rule,
                section,
                place: place(section, rule),
            })
            .collect()
    }

    /// Set one fact (used by tests and by configuration from the environment).
    pub fn set_fact(&mut self, name: &str, values: Vec<String>) {
        self.facts.insert(name.to_owned(), values);
    }

    /// Whether the policy gives the fact, even as an empty list (which
    /// says "none": `trusted_accounts: []` trusts no outside account). A
    /// rule that needs a fact the policy does not give is not run.
    pub fn fact_given(&self, name: &str) -> bool {
        self.facts.contains_key(name)
    }

    /// The values of a fact; empty when unset.
    pub fn fact(&self, name: &str) -> &[String] {
        self.facts.get(name).map_or(&[], Vec::as_slice)
    }

    /// The level override for a rule, if any.
    pub fn level_for(&self, rule_id: &str) -> Option<Level> {
        self.levels.get(rule_id).copied()
    }

    /// The reason a finding is suppressed, if a suppression applies.
    pub fn suppressed(&self, finding: &Finding, event_millis: Option<i64>) -> Option<&str> {
        self.suppressions
            .iter()
            .find(|(s, expires)| {
                (s.rule == "*" || s.rule == finding.rule_id)
                    && match (expires, event_millis) {
                        (Some(until), Some(t)) => t <= *until,
                        _ => true,
                    }
                    && s.conditions.iter().all(|(key, pattern)| {
                        let field = SUPPRESSION_KEYS
                            .iter()
                            .find(|(name, _)| name == key)
                            .map_or("", |(_, f)| *f);
                        finding_field(finding, field)
                            .is_some_and(|value| wildcard_match(pattern, value))
                    })
            })
            .map(|(s, _)| s.reason.as_str())
    }
}

/// The facts written with no value (`trusted_accounts:` and nothing after
/// it, `~`, `null`: YAML null), which are neither "none" (`[]`) nor
/// absent; the reader must say which was meant.
fn facts_without_value(text: &str) -> Vec<String> {
    let Ok(value) = yaml_serde::from_str::<yaml_serde::Value>(text) else {
        return Vec::new();
    };
    let Some(map) = value.as_mapping() else {
        return Vec::new();
    };
    map.iter()
        .filter_map(|(k, v)| {
            let k = k.as_str()?;
            (v.is_null() && FACTS.iter().any(|(name, _)| *name == k)).then(|| k.to_owned())
        })
        .collect()
}

/// The 1-based line where the key `key` is written (`key:`, `"key":`,
/// `'key':`, spaces before the colon allowed; a leading BOM, and JSON's
/// `{`, `,` and indentation ignored), first found.
fn top_level_line(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|l| {
            // JSON writes the key after `{`, `,` or spaces.
            let l = l.trim_start_matches(|c: char| {
                c == '\u{feff}' || c == '{' || c == ',' || c.is_whitespace()
            });
            [key.to_owned(), format!("\"{key}\""), format!("'{key}'")]
                .iter()
                .any(|k| {
                    l.strip_prefix(k.as_str())
                        .is_some_and(|rest| rest.trim_start().starts_with(':'))
                })
        })
        .map(|i| i + 1)
}

/// The line (1-based) of the top-level `section:` of a policy's YAML text
/// whose content (comments aside) names `rule`.
fn entry_line(text: &str, section: &str, rule: &str) -> Option<usize> {
    let header = format!("{section}:");
    let mut inside = false;
    for (i, line) in text.lines().enumerate() {
        let content = line.split(" #").next().unwrap_or("");
        let content = if content.trim_start().starts_with('#') {
            ""
        } else {
            content
        };
        let top_level = !line.starts_with([' ', '\t', '-', '#']) && !line.trim().is_empty();
        if top_level {
            inside = content.starts_with(&header);
        }
        if inside && content.contains(rule) {
            return Some(i + 1);
        }
    }
    None
}

/// Check and normalise the values of the fact `name` (from a policy file
/// or the deployment's environment): none may be empty, and
/// `known_networks` takes IPv4 and IPv6 CIDR blocks and addresses, an
/// address becoming the block of that one address (`/32`, `/128`), since
/// Sigma's `cidr` modifier (rsigma parses it with the `ipnet` crate) takes
/// blocks only. IPv4-mapped IPv6 values (`::ffff:…`) are refused:
/// CloudTrail writes IPv4 callers in IPv4 form, so they would never match.
/// The error names the first bad value by its index.
pub fn normalize_fact(name: &str, values: Vec<String>) -> Result<Vec<String>, String> {
    if values.iter().any(|v| v.trim().is_empty()) {
        return Err(format!("{name} has an empty value"));
    }
    if name == "network_accounts" {
        if let Some((i, bad)) = values
            .iter()
            .enumerate()
            .find(|(_, v)| v.len() != 12 || !v.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(format!(
                "network_accounts[{i}] {bad:?} is not a 12-digit account id"
            ));
        }
    }
    if name != "known_networks" {
        return Ok(values);
    }
    values
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            network(&v).ok_or_else(|| {
                format!(
                    "known_networks[{i}] {v:?} is not an IPv4 or IPv6 address or CIDR block \
                     (such as 198.51.100.0/24, 203.0.113.7 or 2001:db8::/32; no wildcards, \
                     no IPv4-mapped IPv6)"
                )
            })
        })
        .collect()
}

/// `value` as a CIDR block rsigma's `cidr` modifier accepts, if it is one
/// or an address.
fn network(value: &str) -> Option<String> {
    let block = match value.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(a)) => format!("{a}/32"),
        Ok(std::net::IpAddr::V6(a)) => format!("{a}/128"),
        Err(_) => value.to_owned(),
    };
    match block.parse::<ipnet::IpNet>().ok()? {
        ipnet::IpNet::V6(net) if net.addr().to_ipv4_mapped().is_some() => None,
        _ => Some(block),
    }
}

fn finding_field<'f>(f: &'f Finding, field: &str) -> Option<&'f str> {
    match field {
        "principal" => f.principal.as_deref(),
        "account" => f.account.as_deref(),
        "region" => f.region.as_deref(),
        "source_ip" => f.source_ip.as_deref(),
        "user_agent" => f.user_agent.as_deref(),
        "access_key_id" => f.access_key_id.as_deref(),
        "event_name" => Some(&f.event_name),
        "event_source" => Some(&f.event_source),
        _ => None,
    }
}

fn end_of_day_millis(date: &str) -> Option<i64> {
    let start = trailwarden_cloudtrail::parse_event_time(&format!("{}T00:00:00Z", date.trim()))?;
    Some(start + 86_400_000 - 1)
}

/// Case-insensitive match with `*` (any run) and `?` (one character).
pub fn wildcard_match(pattern: &str, value: &str) -> bool {
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    let v: Vec<char> = value.to_lowercase().chars().collect();
    let (mut pi, mut vi) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while vi < v.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == v[vi]) {
            pi += 1;
            vi += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = vi;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            vi = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = r#"
training_buckets: [acme-ml-training-data, "acme-ml-*"]
allowed_regions: [us-east-1]
suppressions:
  - rule: r1
    where: {userIdentity.arn: "arn:aws:sts::1:assumed-role/terraform/*", region: us-east-1}
    reason: Terraform manages this
    expires: 2026-12-31
levels:
  r2: low
"#;

    fn finding(rule: &str, principal: &str) -> Finding {
        Finding {
            id: "x".into(),
            rule_id: rule.into(),
            rule_title: "t".into(),
            level: Level::High,
            tags: vec![],
            description: String::new(),
            event_time: String::new(),
            last_event_time: None,
            account: None,
            region: Some("us-east-1".into()),
            principal: Some(principal.into()),
            principal_type: None,
            access_key_id: None,
            source_ip: None,
            user_agent: None,
            event_source: "s".into(),
            event_name: "n".into(),
            error_code: None,
            event_ids: vec![],
            count: 1,
            group: Default::default(),
            note: None,
        }
    }

    #[test]
    fn a_fact_written_with_no_value_is_an_error_naming_its_line() {
        let e = Policy::from_yaml(
            "p.yaml",
            "ai_accounts: [\"1\"]\ntrusted_accounts:\n# none yet\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("p.yaml"), "{e}");
        assert!(
            e.contains("`trusted_accounts` (line 2) written with no value"),
            "{e}"
        );
        let e = Policy::from_yaml(
            "p.json",
            "{\"ai_accounts\": null,\n \"trusted_accounts\" : ~}",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("`ai_accounts` (line 1), `trusted_accounts` (line 2) written with no value"),
            "{e}"
        );
        assert!(e.contains("write `ai_accounts: []`"), "{e}");
        let none = Policy::from_yaml("p.yaml", "trusted_accounts: []\n").unwrap();
        assert!(none.fact_given("trusted_accounts"));
        assert!(none.fact("trusted_accounts").is_empty());
        let absent = Policy::from_yaml("p.yaml", "ai_accounts: [\"1\"]\n").unwrap();
        assert!(!absent.fact_given("trusted_accounts"));
    }

    #[test]
    fn parses_facts_suppressions_and_levels() {
        let p = Policy::from_yaml("p.yaml", YAML).unwrap();
        assert_eq!(p.fact("training_buckets").len(), 2);
        assert!(p.fact("ai_accounts").is_empty());
        assert_eq!(p.level_for("r2"), Some(Level::Low));
        let tf = finding("r1", "arn:aws:sts::1:assumed-role/terraform/run-1");
        let dec = parse_ms("2026-12-31T23:00:00Z");
        assert_eq!(p.suppressed(&tf, dec), Some("Terraform manages this"));
        assert_eq!(p.suppressed(&tf, parse_ms("2027-01-01T00:00:00Z")), None);
        assert_eq!(
            p.suppressed(
                &finding("r2", "arn:aws:sts::1:assumed-role/terraform/x"),
                dec
            ),
            None
        );
        assert_eq!(
            p.suppressed(&finding("r1", "arn:aws:iam::1:user/alice"), dec),
            None
        );
    }

    fn parse_ms(s: &str) -> Option<i64> {
        trailwarden_cloudtrail::parse_event_time(s)
    }

    #[test]
    fn rejects_what_it_cannot_use() {
        for (yaml, needle) in [
            ("training_bucket: [x]", "unknown field"),
            ("levels: {r: urgent}", "unknown level"),
            ("suppressions: [{rule: r, reason: ''}]", "needs a reason"),
            (
                "suppressions: [{rule: r, reason: x, where: {color: red}}]",
                "unknown field \"color\"",
            ),
            (
                "suppressions: [{rule: r, reason: x, expires: soon}]",
                "not a date",
            ),
            (
                "known_networks: ['10.0.0.0/8', '198.51.100.*']",
                "known_networks[1]",
            ),
            ("known_networks: ['198.51.100.0/33']", "not an IPv4 or IPv6"),
            ("known_networks: ['2001:db8::/129']", "not an IPv4 or IPv6"),
            ("known_networks: ['10.0.0.0/+8']", "not an IPv4 or IPv6"),
            ("known_networks: ['1.2.3.0/024']", "not an IPv4 or IPv6"),
            (
                "known_networks: ['::ffff:198.51.100.7']",
                "not an IPv4 or IPv6",
            ),
            (
                "known_networks: ['::ffff:198.51.100.0/120']",
                "not an IPv4 or IPv6",
            ),
            ("known_networks: [' 198.51.100.7']", "not an IPv4 or IPv6"),
            (
                "network_accounts: ['12345']",
                "network_accounts[0] \"12345\" is not a 12-digit",
            ),
            ("known_networks: ['acme.example']", "not an IPv4 or IPv6"),
        ] {
            let err = Policy::from_yaml("p.yaml", yaml).unwrap_err().to_string();
            assert!(err.contains(needle), "{yaml}: {err}");
            assert!(err.starts_with("policy file p.yaml"), "{err}");
        }
    }

    #[test]
    fn known_networks_take_addresses_and_blocks_of_both_families() {
        let p = Policy::from_yaml(
            "p.yaml",
            "known_networks: ['198.51.100.0/24', '203.0.113.7', '2001:db8::/32', '::1']",
        )
        .unwrap();
        assert_eq!(
            p.fact("known_networks"),
            [
                "198.51.100.0/24",
                "203.0.113.7/32",
                "2001:db8::/32",
                "::1/128"
            ]
        );
    }

    #[test]
    fn wildcards() {
        assert!(wildcard_match("acme-ml-*", "ACME-ML-data"));
        assert!(wildcard_match("a?c", "abc"));
        assert!(!wildcard_match("acme-ml-*", "acme-web"));
        assert!(wildcard_match("*", ""));
    }
}
