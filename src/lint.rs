//! `rules validate` as a linter: besides the load problems the engine
//! reports, the issues the Sigma tooling reports.
//!
//! - the errors and warnings of rsigma's linter (the Sigma specification's
//!   constraints: enumerations, dates, identifiers, tag patterns, modifiers,
//!   correlation and filter shapes), per document;
//! - metadata a rule must carry: `id`, `title`, `level`, `status`,
//!   `description` (filters: `id`, `title`, `description`);
//! - ids and titles used twice across the files linted together;
//! - `attack.` tags that are neither a technique (`attack.t1234`,
//!   `attack.t1234.001`), a group or software id (`attack.g1234`,
//!   `attack.s1234`) nor an ATT&CK v19 tactic ([`ATTACK_TACTICS`]).
//!
//! Tags in the built-in pack's own namespace (`ai.`) are not reported as an
//! unknown namespace.

use std::collections::HashMap;

use rsigma_parser::lint::{lint_yaml_value, LintRule, Severity};
use serde::{Deserialize, Serialize};
use yaml_serde::{Mapping, Value};

/// The ATT&CK v19 tactics, as tag names (the version SigmaHQ's rules use:
/// `defense-impairment` and `stealth` where v18 said `defense-evasion`).
pub const ATTACK_TACTICS: &[&str] = &[
    "reconnaissance",
    "resource-development",
    "initial-access",
    "execution",
    "persistence",
    "privilege-escalation",
    "stealth",
    "defense-impairment",
    "credential-access",
    "discovery",
    "lateral-movement",
    "collection",
    "command-and-control",
    "exfiltration",
    "impact",
];

/// Tag namespaces of the built-in pack besides the Sigma specification's.
pub const PACK_TAG_NAMESPACES: &[&str] = &["ai"];

/// One lint issue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Issue {
    /// The rule file (`builtin:` and its path for the built-in pack).
    pub file: String,
    /// The rule's id, else its title, when it has either.
    pub rule: Option<String>,
    /// `error` (the specification is broken) or `warning`.
    pub severity: String,
    /// Which check: rsigma's lint rule name, or `missing_id`,
    /// `missing_status`, `duplicate_id`, `duplicate_title`,
    /// `unknown_attack_tag`.
    pub check: String,
    /// What is wrong.
    pub message: String,
}

/// Whether `tag` (after `attack.`) is a technique, sub-technique, group or
/// software id, or a v19 tactic.
pub fn is_known_attack_tag(tag: &str) -> bool {
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    if let Some(n) = tag.strip_prefix('t') {
        let (main, sub) = n.split_once('.').unwrap_or((n, "001"));
        return digits(main, 4) && digits(sub, 3);
    }
    if let Some(n) = tag.strip_prefix('g').or_else(|| tag.strip_prefix('s')) {
        if digits(n, 4) {
            return true;
        }
    }
    ATTACK_TACTICS.contains(&tag)
}

/// One document of a rule file, with what the cross-file checks need.
struct Doc {
    file: String,
    id: Option<String>,
    title: Option<String>,
}

fn text(m: &Mapping, key: &str) -> Option<String> {
    m.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// Lint rule files given as (file name, YAML text), together: duplicates
/// are looked for across all of them. Files that are not YAML are left to
/// the load problems.
pub fn lint(files: &[(String, String)]) -> Vec<Issue> {
    let mut issues = Vec::new();
    let mut docs = Vec::new();
    for (file, text) in files {
        for doc in yaml_serde::Deserializer::from_str(text) {
            let Ok(value) = Value::deserialize(doc) else {
                break;
            };
            if let Some(d) = lint_document(file, &value, &mut issues) {
                docs.push(d);
            }
        }
    }
    duplicates(&docs, |d| d.id.as_deref(), "id", "error", &mut issues);
    duplicates(
        &docs,
        |d| d.title.as_deref(),
        "title",
        "warning",
        &mut issues,
    );
    issues
}

/// The issues of one document; its id and title for the cross-file checks.
fn lint_document(file: &str, value: &Value, issues: &mut Vec<Issue>) -> Option<Doc> {
    let m = value.as_mapping()?;
    // Sigma 1 `action: global|reset|repeat` fragments are not rules.
    if m.get("action").is_some() {
        return None;
    }
    let id = text(m, "id");
    let title = text(m, "title");
    let name = id.clone().or_else(|| title.clone());
    let mut issue = |severity: &str, check: &str, message: String| {
        issues.push(Issue {
            file: file.to_owned(),
            rule: name.clone(),
            severity: severity.to_owned(),
            check: check.to_owned(),
            message,
        })
    };
    let tags: Vec<&str> = m
        .get("tags")
        .and_then(Value::as_sequence)
        .map(|s| s.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for w in lint_yaml_value(value) {
        let severity = match w.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info | Severity::Hint => continue,
        };
        match w.rule {
            // Checked below, for every kind of document.
            LintRule::MissingTitle | LintRule::MissingDescription | LintRule::MissingLevel => {
                continue
            }
            LintRule::UnknownTagNamespace => {
                let tag = w
                    .path
                    .strip_prefix("/tags/")
                    .and_then(|i| i.parse::<usize>().ok())
                    .and_then(|i| tags.get(i));
                let ns = tag.and_then(|t| t.split('.').next());
                if ns.is_some_and(|ns| PACK_TAG_NAMESPACES.contains(&ns)) {
                    continue;
                }
            }
            _ => {}
        }
        let at = if w.path.is_empty() || w.path == "/" {
            String::new()
        } else {
            format!(" (at {})", w.path)
        };
        issue(severity, &w.rule.to_string(), format!("{}{at}", w.message));
    }
    let filter = m.get("filter").is_some();
    let required: &[(&str, &str)] = if filter {
        &[
            ("id", "warning"),
            ("title", "error"),
            ("description", "warning"),
        ]
    } else {
        &[
            ("id", "warning"),
            ("title", "error"),
            ("level", "warning"),
            ("status", "warning"),
            ("description", "warning"),
        ]
    };
    for (key, severity) in required {
        if text(m, key).is_none() {
            issue(severity, &format!("missing_{key}"), format!("no {key}"));
        }
    }
    for tag in &tags {
        if let Some(t) = tag.strip_prefix("attack.") {
            if !is_known_attack_tag(t) {
                issue(
                    "warning",
                    "unknown_attack_tag",
                    format!(
                        "tag {tag:?} is neither an ATT&CK technique (attack.tNNNN, attack.tNNNN.NNN), group (attack.gNNNN), software (attack.sNNNN) nor v19 tactic"
                    ),
                );
            }
        }
    }
    Some(Doc {
        file: file.to_owned(),
        id,
        title,
    })
}

/// An issue on every document whose `key` an earlier document has already.
fn duplicates(
    docs: &[Doc],
    key: impl Fn(&Doc) -> Option<&str>,
    what: &str,
    severity: &str,
    issues: &mut Vec<Issue>,
) {
    let mut first: HashMap<&str, &Doc> = HashMap::new();
    for d in docs {
        let Some(k) = key(d) else { continue };
        match first.get(k) {
            None => {
                first.insert(k, d);
            }
            Some(earlier) => issues.push(Issue {
                file: d.file.clone(),
                rule: d.id.clone().or_else(|| d.title.clone()),
                severity: severity.to_owned(),
                check: format!("duplicate_{what}"),
                message: format!("{what} {k:?} is also used in {}", earlier.file),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attack_tags() {
        for (tag, known) in [
            ("t1685", true),
            ("t1685.002", true),
            ("g0016", true),
            ("s0002", true),
            ("defense-impairment", true),
            ("stealth", true),
            ("defense-evasion", false),
            ("t168", false),
            ("t1685.2", false),
            ("g12345", false),
            ("credential_access", false),
        ] {
            assert_eq!(is_known_attack_tag(tag), known, "{tag}");
        }
    }

    fn checks(files: &[(&str, &str)]) -> Vec<(String, Option<String>, String)> {
        let files: Vec<(String, String)> = files
            .iter()
            .map(|(f, t)| (f.to_string(), t.to_string()))
            .collect();
        lint(&files)
            .into_iter()
            .map(|i| (i.file, i.rule, i.check))
            .collect()
    }

    const GOOD: &str = "title: Good\nid: 5f1c2c4e-0000-4000-8000-000000000001\nstatus: test\ndescription: d\nauthor: a\ndate: 2026-11-02\ntags: [attack.t1685.002, attack.defense-impairment, ai.governance]\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n  sel:\n    eventName: StopLogging\n  condition: sel\nlevel: high\n";

    #[test]
    fn a_complete_rule_has_no_issue() {
        assert_eq!(checks(&[("good.yml", GOOD)]), []);
    }

    #[test]
    fn missing_metadata_duplicates_and_unknown_tags_are_issues() {
        let bare = "logsource: {product: aws, service: cloudtrail}\ndetection:\n  sel:\n    eventName: X\n  condition: sel\n";
        let found = checks(&[("bare.yml", bare)]);
        for key in ["id", "title", "level", "status", "description"] {
            assert!(
                found.iter().any(|(_, _, c)| c == &format!("missing_{key}")),
                "{key}: {found:?}"
            );
        }
        let twin = GOOD.replace("tags: [", "tags: [attack.defense-evasion, attack.t99, ");
        let found = checks(&[("good.yml", GOOD), ("twin.yml", &twin)]);
        let id = Some("5f1c2c4e-0000-4000-8000-000000000001".to_owned());
        for check in ["duplicate_id", "duplicate_title"] {
            assert!(
                found.contains(&("twin.yml".into(), id.clone(), check.into())),
                "{check}: {found:?}"
            );
        }
        assert_eq!(
            found
                .iter()
                .filter(|(_, _, c)| c == "unknown_attack_tag")
                .count(),
            2,
            "{found:?}"
        );
        assert!(found.iter().all(|(f, _, _)| f == "twin.yml"), "{found:?}");
    }
}
