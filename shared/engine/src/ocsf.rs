//! Findings as OCSF Detection Finding events.
//!
//! [`detection_finding`] maps a [`Finding`] to an event of the Open
//! Cybersecurity Schema Framework's Detection Finding class (`class_uid`
//! 2004, category Findings, `category_uid` 2), schema version
//! [`OCSF_VERSION`], with the `cloud` profile. Sources: the OCSF schema
//! (`events/base_event.json`, `events/findings/finding.json`,
//! `events/findings/detection_finding.json` and the objects they name).
//!
//! What each attribute holds:
//!
//! | OCSF attribute | from the finding |
//! |---|---|
//! | `activity_id` 1 (Create), `type_uid` 200401 | a finding is only ever created |
//! | `severity_id` | the rule's level: informational 1, low 2, medium 3, high 4, critical 5 |
//! | `time`, `finding_info.first_seen_time` | the (first) event's `eventTime`, epoch milliseconds |
//! | `finding_info.last_seen_time` | for a finding that folds repeats, the latest event's `eventTime` |
//! | `message`, `finding_info.title` | the rule's title |
//! | `finding_info.uid` | the finding id (`tw-…`) |
//! | `finding_info.desc` | the rule's description |
//! | `finding_info.analytic` | the rule: `uid` its id, `name` its title, `type_id` 1 (Rule) |
//! | `finding_info.attacks` | the rule's ATT&CK tags (`attack.t1078.004`, `attack.persistence`) |
//! | `api` | `operation` the `eventName`, `service.name` the `eventSource`, `response.error` the `errorCode` |
//! | `cloud` | `provider` `AWS`, `region`, `account.uid` |
//! | `evidences[0].actor.user` | `uid` the principal's ARN, `type` CloudTrail's `userIdentity.type` (`type_id` 2 Admin for `Root`, 1 User for `IAMUser`, else 99 Other), `credential_uid` the access key id, `account` the account |
//! | `evidences[0].src_endpoint.ip` | `sourceIPAddress` when it is an address (not a service name) |
//! | `evidences[0].api` | as `api` |
//! | `count` | how many events made the finding |
//! | `status_id` | 1 (New); for a stored finding, its status ([`set_status`]) |
//! | `unmapped.trailwarden` | the event ids, the correlation group, the engine's note, the user agent |
//!
//! The class has no top-level `actor` or `src_endpoint` in 1.3.0 (they come
//! with profiles this event does not claim), so the caller and address are
//! the evidence's. ATT&CK tactics are named as the rules tag them: the v19
//! tactics `stealth` and `defense-impairment` by name (`Stealth`, `Defense
//! Impairment`), the others by name and ATT&CK id.

use std::net::IpAddr;

use serde_json::{json, Map, Value};

use crate::finding::{Finding, Level};

/// The OCSF schema version the events follow (`metadata.version`).
pub const OCSF_VERSION: &str = "1.3.0";

/// The Detection Finding class (`class_uid`).
pub const DETECTION_FINDING: u32 = 2004;

/// The Findings category (`category_uid`).
pub const FINDINGS_CATEGORY: u32 = 2;

/// `activity_id` Create (the Finding class's enum).
const CREATE: u32 = 1;

/// The OCSF `severity_id` of a level (base event enum: 1 Informational,
/// 2 Low, 3 Medium, 4 High, 5 Critical).
pub fn severity_id(level: Level) -> u32 {
    match level {
        Level::Informational => 1,
        Level::Low => 2,
        Level::Medium => 3,
        Level::High => 4,
        Level::Critical => 5,
    }
}

/// The severity's caption, as the enum names it.
fn severity(level: Level) -> &'static str {
    match level {
        Level::Informational => "Informational",
        Level::Low => "Low",
        Level::Medium => "Medium",
        Level::High => "High",
        Level::Critical => "Critical",
    }
}

/// ATT&CK Enterprise tactics by the name Sigma tags use
/// (`attack.defense-evasion`), with their ATT&CK ids (empty: not given) and
/// names. `defense-evasion` is ATT&CK v18's, split in v19 into `stealth` and
/// `defense-impairment`; rules carry either.
const TACTICS: [(&str, &str, &str); 16] = [
    ("stealth", "", "Stealth"),
    ("defense-impairment", "", "Defense Impairment"),
    ("reconnaissance", "TA0043", "Reconnaissance"),
    ("resource-development", "TA0042", "Resource Development"),
    ("initial-access", "TA0001", "Initial Access"),
    ("execution", "TA0002", "Execution"),
    ("persistence", "TA0003", "Persistence"),
    ("privilege-escalation", "TA0004", "Privilege Escalation"),
    ("defense-evasion", "TA0005", "Defense Evasion"),
    ("credential-access", "TA0006", "Credential Access"),
    ("discovery", "TA0007", "Discovery"),
    ("lateral-movement", "TA0008", "Lateral Movement"),
    ("collection", "TA0009", "Collection"),
    ("command-and-control", "TA0011", "Command and Control"),
    ("exfiltration", "TA0010", "Exfiltration"),
    ("impact", "TA0040", "Impact"),
];

/// The ATT&CK tactic name of a Sigma tactic tag (`attack.defense-evasion`:
/// `Defense Evasion`); `None` for any other tag.
pub fn tactic_name(tag: &str) -> Option<&'static str> {
    let short = tag.strip_prefix("attack.")?;
    TACTICS
        .iter()
        .find(|(t, _, _)| t.eq_ignore_ascii_case(short))
        .map(|(_, _, name)| *name)
}

/// The `attacks` of a rule's tags: one per technique tag (`attack.t1530`,
/// `attack.t1078.004` with its sub-technique), then one per tactic tag
/// (Sigma does not pair techniques with tactics). Other tags are left out.
fn attacks(tags: &[String]) -> Vec<Value> {
    let mut techniques = Vec::new();
    let mut tactics = Vec::new();
    for tag in tags {
        let Some(name) = tag
            .to_ascii_lowercase()
            .strip_prefix("attack.")
            .map(str::to_owned)
        else {
            continue;
        };
        if let Some(id) = technique_id(&name) {
            let mut attack = Map::new();
            match id.split_once('.') {
                Some((technique, _)) => {
                    attack.insert("technique".into(), json!({ "uid": technique }));
                    attack.insert("sub_technique".into(), json!({ "uid": id }));
                }
                None => {
                    attack.insert("technique".into(), json!({ "uid": id }));
                }
            }
            techniques.push(Value::Object(attack));
        } else if let Some((_, uid, caption)) = TACTICS.iter().find(|(n, _, _)| *n == name) {
            let tactic = if uid.is_empty() {
                json!({ "name": caption })
            } else {
                json!({ "uid": uid, "name": caption })
            };
            tactics.push(json!({ "tactic": tactic }));
        }
    }
    techniques.extend(tactics);
    techniques
}

/// `T1078.004` from `t1078.004`: a `t`, four digits, optionally a dot and
/// three digits.
fn technique_id(name: &str) -> Option<String> {
    let digits = name.strip_prefix('t')?;
    let (main, sub) = match digits.split_once('.') {
        Some((main, sub)) => (main, Some(sub)),
        None => (digits, None),
    };
    let all_digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(main, 4) || sub.is_some_and(|s| !all_digits(s, 3)) {
        return None;
    }
    Some(match sub {
        Some(sub) => format!("T{main}.{sub}"),
        None => format!("T{main}"),
    })
}

/// The finding's event time in epoch milliseconds (0 where it cannot be
/// read: `time` is required).
fn millis(event_time: &str) -> i64 {
    trailwarden_cloudtrail::parse_event_time(event_time).unwrap_or(0)
}

/// A text attribute: `None` for no text or an empty one.
fn text(value: &Option<String>) -> Option<Value> {
    value.as_deref().filter(|s| !s.is_empty()).map(Value::from)
}

/// Insert `value` under `key` when there is one.
fn put(map: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    if let Some(value) = value {
        map.insert(key.into(), value);
    }
}

/// The finding as an OCSF Detection Finding event (see the module's table).
/// Every text is the finding's own (already cut to the findings table's
/// limits); serialising the value escapes it as JSON.
pub fn detection_finding(finding: &Finding) -> Value {
    let time = millis(&finding.event_time);
    let account = text(&finding.account)
        .map(|uid| json!({ "uid": uid, "type_id": 10, "type": "AWS Account" }));

    let mut user = Map::new();
    put(&mut user, "uid", text(&finding.principal));
    if let Some(kind) = text(&finding.principal_type) {
        let type_id = match kind.as_str() {
            Some("Root") => 2,
            Some("IAMUser") => 1,
            _ => 99,
        };
        user.insert("type_id".into(), type_id.into());
        user.insert("type".into(), kind);
    }
    put(&mut user, "credential_uid", text(&finding.access_key_id));
    put(&mut user, "account", account.clone());
    let actor = (!user.is_empty()).then(|| json!({ "user": user }));

    let src_endpoint = finding
        .source_ip
        .as_deref()
        .filter(|ip| ip.parse::<IpAddr>().is_ok())
        .map(|ip| json!({ "ip": ip }));
    let mut api = json!({
        "operation": finding.event_name,
        "service": { "name": finding.event_source },
    });
    if let Some(error) = text(&finding.error_code) {
        api["response"] = json!({ "error": error });
    }

    let mut evidence = Map::new();
    put(&mut evidence, "actor", actor);
    evidence.insert("api".into(), api.clone());
    put(&mut evidence, "src_endpoint", src_endpoint);

    let mut cloud = Map::new();
    cloud.insert("provider".into(), "AWS".into());
    put(&mut cloud, "region", text(&finding.region));
    put(&mut cloud, "account", account);

    let mut info = Map::new();
    info.insert("uid".into(), finding.id.clone().into());
    info.insert("title".into(), finding.rule_title.clone().into());
    if !finding.description.is_empty() {
        info.insert("desc".into(), finding.description.clone().into());
    }
    info.insert(
        "analytic".into(),
        json!({
            "uid": finding.rule_id,
            "name": finding.rule_title,
            "type_id": 1,
            "type": "Rule",
        }),
    );
    let attacks = attacks(&finding.tags);
    if !attacks.is_empty() {
        info.insert("attacks".into(), attacks.into());
    }
    info.insert("first_seen_time".into(), time.into());
    if let Some(last) = &finding.last_event_time {
        info.insert("last_seen_time".into(), millis(last).into());
    }

    let mut extra = Map::new();
    extra.insert("event_ids".into(), json!(finding.event_ids));
    if !finding.group.is_empty() {
        extra.insert("group".into(), json!(finding.group));
    }
    put(&mut extra, "note", text(&finding.note));
    put(&mut extra, "user_agent", text(&finding.user_agent));

    let mut event = Map::new();
    event.insert("class_uid".into(), DETECTION_FINDING.into());
    event.insert("class_name".into(), "Detection Finding".into());
    event.insert("category_uid".into(), FINDINGS_CATEGORY.into());
    event.insert("category_name".into(), "Findings".into());
    event.insert("activity_id".into(), CREATE.into());
    event.insert("activity_name".into(), "Create".into());
    event.insert("type_uid".into(), (DETECTION_FINDING * 100 + CREATE).into());
    event.insert("type_name".into(), "Detection Finding: Create".into());
    event.insert("severity_id".into(), severity_id(finding.level).into());
    event.insert("severity".into(), severity(finding.level).into());
    event.insert("time".into(), time.into());
    event.insert("message".into(), finding.rule_title.clone().into());
    event.insert("status_id".into(), 1.into());
    event.insert("status".into(), "New".into());
    event.insert("count".into(), finding.count.into());
    event.insert(
        "metadata".into(),
        json!({
            "version": OCSF_VERSION,
            "product": {
                "name": "trailwarden",
                "vendor_name": "trailwarden",
                "version": env!("CARGO_PKG_VERSION"),
            },
            "profiles": ["cloud"],
            "log_name": "CloudTrail",
            "log_provider": "AWS CloudTrail",
        }),
    );
    event.insert("finding_info".into(), Value::Object(info));
    event.insert("api".into(), api);
    event.insert("cloud".into(), Value::Object(cloud));
    event.insert("evidences".into(), json!([evidence]));
    event.insert("unmapped".into(), json!({ "trailwarden": extra }));
    Value::Object(event)
}

/// Set a stored finding's status on its event: `open` is 1 (New),
/// `acknowledged` 2 (In Progress), `resolved` 4 (Resolved), anything else
/// 99 (Other) with the status as its caption (the Finding class's
/// `status_id` enum).
pub fn set_status(event: &mut Value, status: &str) {
    let (id, caption) = match status {
        "open" => (1, "New"),
        "acknowledged" => (2, "In Progress"),
        "resolved" => (4, "Resolved"),
        other => (99, other),
    };
    event["status_id"] = id.into();
    event["status"] = caption.into();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The OCSF 1.3.0 schema's required attributes of a Detection Finding
    /// (class 2004: its own and the base event's), of the objects it
    /// requires (`metadata`: `product`, `version`; `finding_info`: `uid`,
    /// `title`; `product`: `vendor_name`), and of the `cloud` profile it
    /// declares (`cloud.provider`), present with the schema's types, for
    /// every level and for a finding with nothing but its required parts.
    #[test]
    fn every_required_attribute_of_a_detection_finding_is_present() {
        for level in Level::ALL {
            let finding: Finding = serde_json::from_value(json!({
                "id": "tw-0", "rule_id": "r", "rule_title": "t", "level": level.as_str(),
                "tags": [], "description": "", "event_time": "not a time", "account": null,
                "region": null, "principal": null, "principal_type": null,
                "access_key_id": null, "source_ip": null, "user_agent": null,
                "event_source": "", "event_name": "", "error_code": null,
                "event_ids": [], "count": 1
            }))
            .unwrap();
            let event = detection_finding(&finding);
            for (path, kind) in [
                ("/activity_id", "integer"),
                ("/category_uid", "integer"),
                ("/class_uid", "integer"),
                ("/severity_id", "integer"),
                ("/time", "integer"),
                ("/type_uid", "integer"),
                ("/metadata/version", "string"),
                ("/metadata/product/vendor_name", "string"),
                ("/finding_info/uid", "string"),
                ("/finding_info/title", "string"),
                ("/cloud/provider", "string"),
            ] {
                let value = event
                    .pointer(path)
                    .unwrap_or_else(|| panic!("{level}: {path} missing: {event}"));
                let ok = match kind {
                    "integer" => value.is_i64() || value.is_u64(),
                    _ => value.as_str().is_some_and(|s| !s.is_empty()),
                };
                assert!(ok, "{level}: {path} is not a {kind}: {value}");
            }
            assert_eq!(event["class_uid"], 2004);
            assert_eq!(event["category_uid"], 2);
            assert_eq!(
                event["type_uid"].as_u64().unwrap(),
                2004 * 100 + event["activity_id"].as_u64().unwrap()
            );
            assert!((1..=6).contains(&event["severity_id"].as_u64().unwrap()));
            assert!(event["metadata"]["profiles"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p == "cloud"));
        }
    }

    #[test]
    fn technique_and_tactic_tags() {
        let tags: Vec<String> = [
            "attack.t1078.004",
            "attack.T1530",
            "attack.persistence",
            "attack.t15",
            "attack.g0016",
            "cve.2024.1",
            "attack.defense-evasion",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            attacks(&tags),
            vec![
                json!({"technique": {"uid": "T1078"}, "sub_technique": {"uid": "T1078.004"}}),
                json!({"technique": {"uid": "T1530"}}),
                json!({"tactic": {"uid": "TA0003", "name": "Persistence"}}),
                json!({"tactic": {"uid": "TA0005", "name": "Defense Evasion"}}),
            ]
        );
    }
}
