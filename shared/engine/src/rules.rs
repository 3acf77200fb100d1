//! Loading Sigma rules: from YAML text, files and directories.
//!
//! Every problem is collected with the file it came from and the reason; one
//! bad file never stops the others. Only rules for CloudTrail
//! (`logsource: {product: aws, service: cloudtrail}`) are kept; rules for
//! other log sources are set aside with a note, so a mixed rule folder can be
//! pointed at as it is.

use std::fmt;
use std::path::{Path, PathBuf};

use rsigma_eval::CompiledRule;
use rsigma_parser::SigmaRule;

use crate::dispatch::{route, Route};
use crate::finding::Level;

/// One compiled detection rule with the metadata findings carry.
#[derive(Debug, Clone)]
pub struct Rule {
    /// The rule's `id` (or, when it has none, one derived from its title).
    pub id: String,
    /// `title`.
    pub title: String,
    /// `level` (medium when the rule gives none).
    pub level: Level,
    /// `tags`.
    pub tags: Vec<String>,
    /// `description`.
    pub description: String,
    /// The `response` guide (a trailwarden custom attribute), if any.
    pub response: Option<String>,
    /// `falsepositives`.
    pub falsepositives: Vec<String>,
    /// Where the rule came from (a path, or `builtin:` and a path).
    pub source: String,
    /// How the dispatch index routes it.
    pub route: Route,
    /// The compiled form rsigma evaluates.
    pub compiled: CompiledRule,
}

/// Something wrong with a rule source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleProblem {
    /// The file (or source name) at fault.
    pub source: String,
    /// The rule's title, when the problem is with one rule of the file.
    pub rule: Option<String>,
    /// What is wrong and, where useful, what to do.
    pub reason: String,
}

impl fmt::Display for RuleProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.rule {
            Some(rule) => write!(f, "{}: rule {rule:?}: {}", self.source, self.reason),
            None => write!(f, "{}: {}", self.source, self.reason),
        }
    }
}

/// A rule that loaded but was set aside (another log source, or a kind of
/// rule this engine does not run).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleNote {
    /// The file.
    pub source: String,
    /// The rule's title.
    pub rule: String,
    /// Why it was set aside.
    pub reason: String,
}

/// Collects rules from many sources.
#[derive(Debug, Default)]
pub struct RuleSetBuilder {
    rules: Vec<Rule>,
    problems: Vec<RuleProblem>,
    notes: Vec<RuleNote>,
}

/// Whether a path names a rule file (`.yml`/`.yaml`, not a test file).
pub fn is_rule_file(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    (name.ends_with(".yml") || name.ends_with(".yaml")) && !name.starts_with('.')
}

/// Rule files under `path` (itself if a file), sorted, recursively.
pub fn rule_files(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    if path.is_dir() {
        let mut stack = vec![path.to_path_buf()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir)? {
                let p = entry?.path();
                if p.is_dir() {
                    stack.push(p);
                } else if is_rule_file(&p) {
                    out.push(p);
                }
            }
        }
        out.sort();
    } else {
        std::fs::metadata(path)?;
        out.push(path.to_path_buf());
    }
    Ok(out)
}

impl RuleSetBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add every rule in a file, or in every rule file under a directory.
    pub fn add_path(&mut self, path: &Path) -> &mut Self {
        let files = match rule_files(path) {
            Ok(files) => files,
            Err(e) => {
                self.problems.push(RuleProblem {
                    source: path.display().to_string(),
                    rule: None,
                    reason: format!("cannot read: {e}"),
                });
                return self;
            }
        };
        if files.is_empty() {
            self.problems.push(RuleProblem {
                source: path.display().to_string(),
                rule: None,
                reason: "no .yml or .yaml rule files here".into(),
            });
        }
        for file in files {
            match std::fs::read_to_string(&file) {
                Ok(text) => {
                    self.add_yaml(&file.display().to_string(), &text);
                }
                Err(e) => self.problems.push(RuleProblem {
                    source: file.display().to_string(),
                    rule: None,
                    reason: format!("cannot read: {e}"),
                }),
            }
        }
        self
    }

    /// Add the rules in one YAML text (one or more documents).
    pub fn add_yaml(&mut self, source: &str, text: &str) -> &mut Self {
        let problem = |reason: String, rule: Option<&str>| RuleProblem {
            source: source.to_owned(),
            rule: rule.map(str::to_owned),
            reason,
        };
        let collection = match rsigma_parser::parse_sigma_yaml(text) {
            Ok(c) => c,
            Err(e) => {
                self.problems
                    .push(problem(format!("not valid Sigma: {e}"), None));
                return self;
            }
        };
        for e in &collection.errors {
            self.problems.push(problem(e.clone(), None));
        }
        for c in &collection.correlations {
            self.notes.push(RuleNote {
                source: source.to_owned(),
                rule: c.title.clone(),
                reason: "correlation rules are not evaluated by this version".into(),
            });
        }
        for f in &collection.filters {
            self.notes.push(RuleNote {
                source: source.to_owned(),
                rule: f.title.clone(),
                reason: "Sigma filter documents are not applied by this version".into(),
            });
        }
        if collection.rules.is_empty() && collection.errors.is_empty() {
            if collection.correlations.is_empty() && collection.filters.is_empty() {
                self.problems
                    .push(problem("the file holds no Sigma rule".into(), None));
            }
            return self;
        }
        for rule in &collection.rules {
            if let Some(reason) = not_cloudtrail(rule) {
                self.notes.push(RuleNote {
                    source: source.to_owned(),
                    rule: rule.title.clone(),
                    reason,
                });
                continue;
            }
            match rsigma_eval::compile_rule(rule) {
                Ok(compiled) => self.push(source, rule, compiled),
                Err(e) => self
                    .problems
                    .push(problem(format!("does not compile: {e}"), Some(&rule.title))),
            }
        }
        self
    }

    fn push(&mut self, source: &str, rule: &SigmaRule, compiled: CompiledRule) {
        let id = rule
            .id
            .clone()
            .unwrap_or_else(|| format!("title:{}", slug(&rule.title)));
        if let Some(other) = self.rules.iter().find(|r| r.id == id) {
            self.problems.push(RuleProblem {
                source: source.to_owned(),
                rule: Some(rule.title.clone()),
                reason: format!(
                    "duplicate rule id {id} (already loaded from {}); the first one is kept",
                    other.source
                ),
            });
            return;
        }
        let response = compiled
            .custom_attributes
            .get("response")
            .and_then(|v| v.as_str())
            .map(|s| s.trim().to_owned());
        self.rules.push(Rule {
            id,
            title: rule.title.clone(),
            level: rule.level.map_or(Level::Medium, Level::from),
            tags: rule.tags.clone(),
            description: rule
                .description
                .as_deref()
                .unwrap_or_default()
                .trim()
                .to_owned(),
            response,
            falsepositives: rule.falsepositives.clone(),
            source: source.to_owned(),
            route: route(&compiled),
            compiled,
        });
    }

    /// The rules loaded so far.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Problems found so far.
    pub fn problems(&self) -> &[RuleProblem] {
        &self.problems
    }

    /// Rules set aside so far.
    pub fn notes(&self) -> &[RuleNote] {
        &self.notes
    }

    /// Finish: the rules, the problems and the notes.
    pub fn finish(self) -> (Vec<Rule>, Vec<RuleProblem>, Vec<RuleNote>) {
        (self.rules, self.problems, self.notes)
    }
}

/// Why a rule is not for CloudTrail, if it is not.
fn not_cloudtrail(rule: &SigmaRule) -> Option<String> {
    let ls = &rule.logsource;
    let product = ls.product.as_deref().unwrap_or("");
    let service = ls.service.as_deref().unwrap_or("");
    if product.eq_ignore_ascii_case("aws") && service.eq_ignore_ascii_case("cloudtrail") {
        None
    } else {
        Some(format!(
            "logsource is product: {}, service: {}; only product: aws, service: cloudtrail rules run on CloudTrail",
            if product.is_empty() { "(none)" } else { product },
            if service.is_empty() { "(none)" } else { service },
        ))
    }
}

fn slug(title: &str) -> String {
    let mut out = String::new();
    for c in title.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "title: Trail stopped\nid: 11111111-1111-4111-8111-111111111111\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n  selection:\n    eventName: StopLogging\n  condition: selection\nlevel: high\nresponse: |\n  Restart logging.\n";

    #[test]
    fn loads_and_reports_problems_per_source() {
        let mut b = RuleSetBuilder::new();
        b.add_yaml("good.yml", GOOD);
        b.add_yaml("broken.yml", "title: [unclosed\n");
        b.add_yaml("nocondition.yml", "title: x\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n  selection:\n    eventName: A\n");
        b.add_yaml("windows.yml", "title: w\nlogsource: {product: windows, category: process_creation}\ndetection:\n  s:\n    Image: x\n  condition: s\n");
        b.add_yaml("dup.yml", GOOD);
        let (rules, problems, notes) = b.finish();
        assert_eq!(rules.len(), 1);
        assert_eq!(rules[0].level, Level::High);
        assert_eq!(rules[0].response.as_deref(), Some("Restart logging."));
        let sources: Vec<&str> = problems.iter().map(|p| p.source.as_str()).collect();
        assert_eq!(sources, vec!["broken.yml", "nocondition.yml", "dup.yml"]);
        assert!(problems[2].reason.contains("duplicate rule id"));
        assert_eq!(notes.len(), 1);
        assert!(notes[0].reason.contains("product: windows"));
    }
}
