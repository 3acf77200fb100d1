//! Loading Sigma rules: from YAML text, files and directories.
//!
//! Every problem is collected with the file it came from and the reason; one
//! bad file never stops the others. Only rules for CloudTrail
//! (`logsource: {product: aws, service: cloudtrail}`) are kept; rules for
//! other log sources are set aside with a note, so a mixed rule folder can be
//! pointed at as it is.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use rsigma_eval::{CompiledCondition, CompiledDetection, CompiledRule};
use rsigma_parser::{
    ConditionExpr, CorrelationRule, CorrelationType, Detection, FilterRule, FilterRuleTarget,
    Modifier, Quantifier, SigmaRule, SigmaString, SigmaValue,
};

use crate::dispatch::{route, Route};
use crate::finding::{finding_id, Finding, Level, RuleHeader};
use crate::policy::Policy;
use crate::state::Snapshot;
use trailwarden_cloudtrail::Record;

mod build;

/// What a detection rule and a correlation both carry, and findings take.
#[derive(Debug, Clone)]
pub struct RuleMeta {
    /// The rule's `id` (or, when it has none, one derived from its title).
    pub id: String,
    /// `title`.
    pub title: String,
    /// `level` (medium when the rule gives none; the policy may override it).
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
}

/// The Sigma attributes [`RuleMeta`] is made of, as the parser gives them.
struct SigmaMeta<'a> {
    id: String,
    title: &'a str,
    level: Option<rsigma_parser::Level>,
    tags: &'a [String],
    description: Option<&'a str>,
    response: Option<&'a str>,
    falsepositives: &'a [String],
}

impl RuleMeta {
    fn new(m: SigmaMeta<'_>, policy: &Policy, source: &str) -> RuleMeta {
        RuleMeta {
            level: policy
                .level_for(&m.id)
                .unwrap_or(m.level.map_or(Level::Medium, Level::from)),
            id: m.id,
            title: m.title.to_owned(),
            tags: m.tags.to_vec(),
            description: m.description.unwrap_or_default().trim().to_owned(),
            response: m.response.map(|s| s.trim().to_owned()),
            falsepositives: m.falsepositives.to_vec(),
            source: source.to_owned(),
        }
    }
}

/// One compiled detection rule with the metadata findings carry.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Id, title, level and the rest findings carry.
    pub meta: RuleMeta,
    /// How the dispatch index routes it.
    pub route: Route,
    /// The compiled form rsigma evaluates.
    pub compiled: CompiledRule,
    /// The rule's `name`, by which correlations may refer to it.
    pub name: Option<String>,
    /// Whether a match makes a finding of its own. False for rules that only
    /// feed correlations (Sigma's `generate: false`) and for baselines (their
    /// findings come from the baseline).
    pub generate: bool,
    /// The baseline extension, if the rule carries one.
    pub baseline: Option<Baseline>,
}

/// Which baseline a rule keeps (a trailwarden extension to Sigma).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BaselineKind {
    /// A value tuple never seen for its group within the history window.
    FirstSeen,
    /// A group active again after being idle at least the idle time.
    Dormant,
}

/// The `baseline:` block of a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Baseline {
    /// First seen or dormant.
    pub kind: BaselineKind,
    /// Fields whose values make the group key.
    pub group_by: Vec<String>,
    /// Fields whose values make the tuple (first seen; may be empty).
    pub fields: Vec<String>,
    /// How long a tuple stays known (first seen), or how long a group's last
    /// activity is kept (dormant), in ms.
    pub history_ms: i64,
    /// Idle time that makes a group dormant, in ms.
    pub idle_ms: i64,
    /// No first-seen findings until the rule has seen this much event time, in ms.
    pub learning_ms: i64,
}

impl Baseline {
    /// The longest gap (ms) between two sightings of a tuple after which
    /// the later one can never be reported: a first-seen rule reports a
    /// tuple unseen for more than `history_ms`, a dormant rule a group idle
    /// for at least `idle_ms`.
    pub fn quiet_gap_ms(&self) -> i64 {
        match self.kind {
            BaselineKind::FirstSeen => self.history_ms,
            BaselineKind::Dormant => self.idle_ms - 1,
        }
    }
}

/// A built correlation's references to others, before resolution: its
/// index, source, name, `generate`, and (position, reference) pairs.
type Chain = (usize, String, Option<String>, bool, Vec<(u16, String)>);

/// Most correlations in one chain (a correlation over a correlation over
/// …): each level costs a flush one more round of state reads and writes.
pub const MAX_CHAIN_DEPTH: usize = 8;

/// In [`Correlation::rules`], a reference to another correlation.
pub const CHAINED: usize = usize::MAX;

/// A compiled Sigma correlation rule.
#[derive(Debug, Clone)]
pub struct Correlation {
    /// Id, title, level and the rest findings carry.
    pub meta: RuleMeta,
    /// `event_count`, `value_count`, `temporal` or `temporal_ordered`.
    pub kind: CorrelationType,
    /// Positions (in the engine's rule list) of the referenced detection
    /// rules, in the order the correlation lists them; [`CHAINED`] where the
    /// reference is another correlation (see `chained`).
    pub rules: Vec<usize>,
    /// The referenced correlations (Sigma correlation specification,
    /// "Related rules": a correlation may refer to correlations, chaining
    /// them): (position in the references, index in the rule set's
    /// correlations). Each time a referenced correlation fires, its finding
    /// is an event of this one, at the finding's last event time, carrying
    /// the referenced correlation's group-by values as its fields.
    pub chained: Vec<(u16, usize)>,
    /// Whether its findings are reported: false when another correlation
    /// refers to it without `generate: true` (Sigma `generate`).
    pub generate: bool,
    /// The references as written.
    pub rule_refs: Vec<String>,
    /// `group-by` fields (an alias's name where the correlation defines
    /// `aliases`): the names findings show.
    pub group_by: Vec<String>,
    /// Per referenced rule (same order as `rules`), the field each group-by
    /// entry reads in that rule's events: the group-by field itself, or the
    /// field an alias maps that rule to (Sigma correlation `aliases`).
    pub group_fields: Vec<Vec<String>>,
    /// `timespan` in ms.
    pub timespan_ms: i64,
    /// The threshold (and, for `value_count`, the field).
    pub condition: CompiledCondition,
    /// A boolean condition over the referenced rules (temporal kinds).
    pub extended: Option<ConditionExpr>,
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
    correlations: Vec<(String, CorrelationRule)>,
    problems: Vec<RuleProblem>,
    notes: Vec<RuleNote>,
    policy: Policy,
    /// Ids and names of rules not run for want of a policy fact.
    not_run: Vec<String>,
    /// Sigma filters, applied to the rules they name at `build`.
    filters: Vec<(String, FilterRule)>,
}

/// The id of the stale AI principal sweep's findings
/// ([`crate::sweep`]): a rule the policy may name under `levels:` to set
/// their level (low without).
pub const SWEEP_RULE_ID: &str = "3f1b6c2e-9a4d-4e8b-b7a1-5c2d8e9f0a13";

/// Everything loaded: detection rules, correlations, and what went wrong.
#[derive(Debug, Default)]
pub struct RuleSet {
    /// Detection rules (baselines included), in load order.
    pub rules: Vec<Rule>,
    /// Correlation rules, referring to `rules` by position.
    pub correlations: Vec<Correlation>,
    /// Problems, each with its source.
    pub problems: Vec<RuleProblem>,
    /// Rules set aside, with the reason.
    pub notes: Vec<RuleNote>,
    /// The policy fact `trusted_accounts`, which
    /// [`crate::derived::UNTRUSTED_ACCOUNTS`] is computed against (empty
    /// when not given: only rules that name it in `optional-facts:` read
    /// the field then; the others are not run without it).
    pub trusted_accounts: Option<Vec<String>>,
    /// The policy's level for the sweep's findings ([`SWEEP_RULE_ID`]
    /// under `levels:`; `None`: low).
    pub sweep_level: Option<Level>,
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
    /// An empty builder with an empty policy.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty builder whose rules read their facts, suppressions aside,
    /// from `policy`.
    pub fn with_policy(policy: Policy) -> Self {
        RuleSetBuilder {
            policy,
            ..Self::default()
        }
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
            self.problems.push(problem(explain_parse_error(e), None));
        }
        for c in &collection.correlations {
            self.correlations.push((source.to_owned(), c.clone()));
        }
        for f in &collection.filters {
            self.filters.push((source.to_owned(), f.clone()));
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
            let mut rule = rule.clone();
            for detection in rule.detection.named.values_mut() {
                fix_base64offset(detection);
            }
            if let Some(field) = unknown_derived_field(&rule) {
                self.problems.push(problem(
                    format!(
                        "{field} is not a derived field (the derived fields: {})",
                        crate::derived::FIELDS.join(", ")
                    ),
                    Some(&rule.title),
                ));
                continue;
            }
            let optional = match optional_facts(&rule) {
                Ok(names) => names,
                Err(reason) => {
                    self.problems.push(problem(reason, Some(&rule.title)));
                    continue;
                }
            };
            let unfilled = rule.clone();
            let (missing, empty) = fill_placeholders(&mut rule, &self.policy, &optional);
            if !missing.is_empty() {
                self.set_aside(
                    source,
                    &rule,
                    format!(
                        "not run: the policy gives no value for {}",
                        placeholders(&missing)
                    ),
                );
                continue;
            }
            let baseline = match parse_baseline(&rule) {
                Ok(b) => b,
                Err(reason) => {
                    self.problems.push(problem(reason, Some(&rule.title)));
                    continue;
                }
            };
            match rsigma_eval::compile_rule(&rule) {
                Ok(compiled) if crate::dispatch::never_matches(&compiled) => {
                    // Runs, but matches nothing: said, not run.
                    let causes = empty_facts_to_blame(&unfilled, &self.policy, &optional, &empty);
                    let reason = if causes.is_empty() {
                        "not run: its condition can never be true (a selection with an empty list of values)".to_owned()
                    } else {
                        format!(
                            "not run: the policy gives no value for {} (absent or an empty list, which leaves the rule nothing to match)",
                            placeholders(&causes)
                        )
                    };
                    self.set_aside(source, &rule, reason);
                }
                Ok(compiled) => self.push(source, &rule, compiled, baseline),
                Err(e) => self
                    .problems
                    .push(problem(format!("does not compile: {e}"), Some(&rule.title))),
            }
        }
        self
    }

    /// Note that `rule` is not run, and why; correlations over it are not
    /// run either.
    fn set_aside(&mut self, source: &str, rule: &SigmaRule, reason: String) {
        self.not_run
            .extend(rule.id.iter().chain(rule.name.iter()).cloned());
        self.notes.push(RuleNote {
            source: source.to_owned(),
            rule: rule.title.clone(),
            reason,
        });
    }

    fn push(
        &mut self,
        source: &str,
        rule: &SigmaRule,
        compiled: CompiledRule,
        baseline: Option<Baseline>,
    ) {
        let id = rule
            .id
            .clone()
            .unwrap_or_else(|| format!("title:{}", slug(&rule.title)));
        if let Some(other) = self.rules.iter().find(|r| r.meta.id == id) {
            self.problems.push(RuleProblem {
                source: source.to_owned(),
                rule: Some(rule.title.clone()),
                reason: format!(
                    "duplicate rule id {id} (already loaded from {}); the first one is kept",
                    other.meta.source
                ),
            });
            return;
        }
        let meta = RuleMeta::new(
            SigmaMeta {
                id,
                title: &rule.title,
                level: rule.level,
                tags: &rule.tags,
                description: rule.description.as_deref(),
                response: compiled
                    .custom_attributes
                    .get("response")
                    .and_then(|v| v.as_str()),
                falsepositives: &rule.falsepositives,
            },
            &self.policy,
            source,
        );
        self.rules.push(Rule {
            name: rule.name.clone(),
            generate: baseline.is_none(),
            baseline,
            meta,
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

    /// Apply a Sigma filter (`filter:` document, Sigma filters
    /// specification) to the rules it names (by id, name or title; all rules
    /// when it names none): each becomes `its condition and the filter's
    /// condition`. The filter's detections keep their own names (a nested
    /// condition), so they never mix with the rule's; a rule selector the
    /// injected detection would join (`1 of *`) is spelled out over the
    /// rule's own detections first.
    fn apply_filter(&mut self, source: &str, filter: &FilterRule) {
        let problem = |reason: String| RuleProblem {
            source: source.to_owned(),
            rule: Some(filter.title.clone()),
            reason,
        };
        if let Some(ls) = &filter.logsource {
            let is = |v: &Option<String>, want: &str| {
                v.as_deref().is_none_or(|v| v.eq_ignore_ascii_case(want))
            };
            if !is(&ls.product, "aws") || !is(&ls.service, "cloudtrail") {
                self.notes.push(RuleNote {
                    source: source.to_owned(),
                    rule: filter.title.clone(),
                    reason: "filter for another log source; not applied".into(),
                });
                return;
            }
        }
        let mut named = HashMap::new();
        for (name, detection) in &filter.detection.named {
            match rsigma_eval::compiler::compile_detection(detection) {
                Ok(d) => {
                    named.insert(name.clone(), d);
                }
                Err(e) => {
                    self.problems.push(problem(format!(
                        "filter detection {name:?} does not compile: {e}"
                    )));
                    return;
                }
            }
        }
        let condition = match filter.detection.conditions.as_slice() {
            [c] => c.clone(),
            [] if !named.is_empty() => {
                let mut names: Vec<&String> = named.keys().collect();
                names.sort();
                ConditionExpr::And(
                    names
                        .into_iter()
                        .map(|n| ConditionExpr::Identifier(n.clone()))
                        .collect(),
                )
            }
            [] => {
                self.problems
                    .push(problem("the filter has no detection".into()));
                return;
            }
            _ => {
                self.problems.push(problem(
                    "a filter with several conditions is not supported: join them with `or`".into(),
                ));
                return;
            }
        };
        let targets: Vec<usize> = match &filter.rules {
            FilterRuleTarget::Any => (0..self.rules.len()).collect(),
            FilterRuleTarget::Specific(refs) => {
                let mut targets = Vec::new();
                for r in refs {
                    let found: Vec<usize> = self
                        .rules
                        .iter()
                        .enumerate()
                        .filter(|(_, rule)| {
                            rule.meta.id == *r
                                || rule.name.as_deref() == Some(r.as_str())
                                || rule.meta.title == *r
                        })
                        .map(|(i, _)| i)
                        .collect();
                    if found.is_empty() && !self.not_run.iter().any(|n| n == r) {
                        self.problems.push(problem(format!(
                            "the filter names rule {r:?}, which is not loaded: give the id, name or title of a loaded rule"
                        )));
                    }
                    targets.extend(found);
                }
                targets
            }
        };
        let injected = CompiledDetection::Conditional { named, condition };
        for i in targets {
            let rule = &mut self.rules[i];
            let name = format!("__filter_{}", rule.compiled.detections.len());
            match inject_filter(&mut rule.compiled, &name, injected.clone()) {
                Ok(()) => rule.route = route(&rule.compiled),
                Err(reason) => {
                    let title = rule.meta.title.clone();
                    self.problems.push(problem(format!(
                        "cannot be applied to rule {title:?}: {reason}"
                    )))
                }
            }
        }
    }
}

/// A field under [`crate::derived::PREFIX`] (or `derived.`) that is not a
/// derived field: a rule reading it would never match, so it is refused.
fn unknown_derived_field(rule: &SigmaRule) -> Option<String> {
    fn walk(detection: &Detection) -> Option<String> {
        match detection {
            Detection::AllOf(items) => items.iter().find_map(|item| {
                let name = item.field.name.as_deref()?;
                (name.starts_with("derived.") && crate::derived::index(name).is_none())
                    .then(|| name.to_owned())
            }),
            Detection::AnyOf(parts) | Detection::And(parts) => parts.iter().find_map(walk),
            Detection::ArrayMatch { body, .. } => walk(body),
            Detection::Conditional { named, .. } => named.values().find_map(walk),
            _ => None,
        }
    }
    rule.detection.named.values().find_map(walk)
}

/// The facts a rule's `optional-facts:` list names (a trailwarden
/// extension): placeholders of these facts stand for an empty list when the
/// policy gives no value, so the rule runs without them (meant for facts a
/// rule uses only to leave things out, such as the training buckets a
/// rule for every bucket defers to their own rules).
///
/// # Errors
/// The block is not a list of fact names.
fn optional_facts(rule: &SigmaRule) -> Result<Vec<String>, String> {
    let Some(block) = rule.custom_attributes.get("optional-facts") else {
        return Ok(Vec::new());
    };
    let error = || {
        "optional-facts must be a list of fact names (optional-facts: [training_buckets])"
            .to_owned()
    };
    block
        .as_sequence()
        .ok_or_else(error)?
        .iter()
        .map(|v| {
            v.as_str()
                .filter(|n| !n.is_empty() && !n.contains('%'))
                .map(str::to_owned)
                .ok_or_else(error)
        })
        .collect()
}

/// `%a%, %b%`: facts as a rule names them.
fn placeholders(facts: &[String]) -> String {
    facts
        .iter()
        .map(|f| format!("%{f}%"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Of the facts without a value (`empty`), those that leave `rule` (as
/// written, placeholders unfilled) nothing to match: each one that, given a
/// value, would let it match; else all of them, if given values together
/// they would; else none (the rule cannot match for another reason, such as
/// an empty list written in it).
fn empty_facts_to_blame(
    rule: &SigmaRule,
    policy: &Policy,
    optional: &[String],
    empty: &[String],
) -> Vec<String> {
    let can_match_with = |facts: &[String]| {
        let mut policy = policy.clone();
        for fact in facts {
            // A value no record holds: only whether it can match matters.
            policy.set_fact(fact, vec!["\u{1}".to_owned()]);
        }
        let mut rule = rule.clone();
        let _ = fill_placeholders(&mut rule, &policy, optional);
        rsigma_eval::compile_rule(&rule).is_ok_and(|c| !crate::dispatch::never_matches(&c))
    };
    let each: Vec<String> = empty
        .iter()
        .filter(|fact| can_match_with(std::slice::from_ref(fact)))
        .cloned()
        .collect();
    if !each.is_empty() {
        each
    } else if !empty.is_empty() && can_match_with(empty) {
        empty.to_vec()
    } else {
        Vec::new()
    }
}

/// Replace `%fact%` placeholders of `|expand` items with the policy's
/// values. Returns the facts that were needed but empty or undefined (a
/// fact in `optional` is never needed: without a value it is an empty
/// list), and the facts that stand for no value at all (given as an empty
/// list, or optional and absent), which may leave a selection nothing to
/// match.
fn fill_placeholders(
    rule: &mut SigmaRule,
    policy: &Policy,
    optional: &[String],
) -> (Vec<String>, Vec<String>) {
    let mut missing = Vec::new();
    let mut empty = Vec::new();
    for detection in rule.detection.named.values_mut() {
        fill_detection(detection, policy, optional, &mut missing, &mut empty);
    }
    for list in [&mut missing, &mut empty] {
        list.sort();
        list.dedup();
    }
    (missing, empty)
}

fn fill_detection(
    detection: &mut Detection,
    policy: &Policy,
    optional: &[String],
    missing: &mut Vec<String>,
    empty: &mut Vec<String>,
) {
    match detection {
        Detection::AllOf(items) => {
            for item in items {
                // Computed against a fact: the rule needs it as if it named it.
                if item.field.name.as_deref() == Some(crate::derived::UNTRUSTED_ACCOUNTS)
                    && !policy.fact_given("trusted_accounts")
                    && !optional.iter().any(|o| o == "trusted_accounts")
                {
                    missing.push("trusted_accounts".to_owned());
                }
                if !item.field.modifiers.contains(&Modifier::Expand) {
                    continue;
                }
                let mut values = Vec::new();
                let mut all_filled = true;
                // An item listing several facts (`['%approved_principals%',
                // '%approved_bedrock_principals%']`) matches any of their
                // values and needs at least one of them given.
                let (mut given, mut absent) = (false, Vec::new());
                for value in &item.values {
                    let name = match value {
                        SigmaValue::String(s) => placeholder_name(&s.original),
                        _ => None,
                    };
                    match name {
                        Some(name) => {
                            if policy.fact_given(name) || optional.iter().any(|o| o == name) {
                                given = true;
                            } else {
                                absent.push(name.to_owned());
                            }
                            if policy.fact(name).is_empty() {
                                empty.push(name.to_owned());
                            }
                            values.extend(
                                policy
                                    .fact(name)
                                    .iter()
                                    .map(|v| SigmaValue::String(SigmaString::new(v))),
                            );
                        }
                        None => {
                            all_filled = false;
                            values.push(value.clone());
                        }
                    }
                }
                if !given {
                    missing.extend(absent);
                }
                item.values = values;
                if all_filled {
                    item.field.modifiers.retain(|m| *m != Modifier::Expand);
                }
            }
        }
        Detection::AnyOf(parts) | Detection::And(parts) => {
            for part in parts {
                fill_detection(part, policy, optional, missing, empty);
            }
        }
        Detection::ArrayMatch { body, .. } => {
            fill_detection(body, policy, optional, missing, empty)
        }
        Detection::Conditional { named, .. } => {
            for part in named.values_mut() {
                fill_detection(part, policy, optional, missing, empty);
            }
        }
        Detection::Keywords(_) => {}
    }
}

/// Expand `|base64offset` values ourselves, the way pySigma does: for each
/// of the three alignments, the base64 of the value with the characters
/// that depend on the unknown neighbouring bytes trimmed off. (rsigma 0.23
/// keeps a partly-determined last character, so a needle only matches when
/// the byte after it happens to fit.)
fn fix_base64offset(detection: &mut Detection) {
    match detection {
        Detection::AllOf(items) => {
            for item in items {
                if !item.field.modifiers.contains(&Modifier::Base64Offset) {
                    continue;
                }
                let plain: Option<Vec<String>> = item
                    .values
                    .iter()
                    .map(|v| match v {
                        SigmaValue::String(s) => s.as_plain(),
                        _ => None,
                    })
                    .collect();
                let Some(plain) = plain else {
                    continue;
                };
                item.values = plain
                    .iter()
                    .flat_map(|v| base64_offsets(v.as_bytes()))
                    .map(|enc| SigmaValue::String(SigmaString::from_raw(&enc)))
                    .collect();
                item.field
                    .modifiers
                    .retain(|m| *m != Modifier::Base64Offset);
                if !item.field.modifiers.iter().any(|m| {
                    matches!(
                        m,
                        Modifier::Contains | Modifier::StartsWith | Modifier::EndsWith
                    )
                }) {
                    item.field.modifiers.push(Modifier::Contains);
                }
            }
        }
        Detection::AnyOf(parts) | Detection::And(parts) => {
            parts.iter_mut().for_each(fix_base64offset)
        }
        Detection::ArrayMatch { body, .. } => fix_base64offset(body),
        Detection::Conditional { named, .. } => named.values_mut().for_each(fix_base64offset),
        Detection::Keywords(_) => {}
    }
}

/// The three base64 forms of `value` at byte offsets 0, 1 and 2.
fn base64_offsets(value: &[u8]) -> Vec<String> {
    const START: [usize; 3] = [0, 2, 3];
    const END_TRIM: [usize; 3] = [0, 3, 2];
    (0..3)
        .map(|i| {
            let mut shifted = vec![b' '; i];
            shifted.extend_from_slice(value);
            let encoded = BASE64.encode(&shifted);
            let end = encoded.len() - END_TRIM[(value.len() + i) % 3];
            encoded[START[i].min(end)..end].to_owned()
        })
        .collect()
}

fn placeholder_name(s: &str) -> Option<&str> {
    let inner = s.strip_prefix('%')?.strip_suffix('%')?;
    (!inner.is_empty() && !inner.contains('%')).then_some(inner)
}

/// Parse a duration such as `90d`, `15m`, `1h`, `30s` into ms.
pub fn parse_duration_ms(s: &str) -> Option<i64> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit())?);
    let n: i64 = num.parse().ok()?;
    let unit_ms = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 7 * 86_400_000,
        _ => return None,
    };
    n.checked_mul(unit_ms)
}

/// The `baseline:` block (a trailwarden extension), if the rule has one.
fn parse_baseline(rule: &SigmaRule) -> Result<Option<Baseline>, String> {
    let Some(block) = rule.custom_attributes.get("baseline") else {
        return Ok(None);
    };
    let map = block
        .as_mapping()
        .ok_or("baseline must be a mapping (type, group-by, fields, history, idle, learning)")?;
    let get = |key: &str| map.get(yaml_serde::Value::String(key.to_owned()));
    let text = |key: &str| get(key).and_then(|v| v.as_str()).map(str::to_owned);
    let list = |key: &str| -> Result<Vec<String>, String> {
        match get(key) {
            None => Ok(Vec::new()),
            Some(v) => match v.as_sequence() {
                Some(items) => items
                    .iter()
                    .map(|i| {
                        i.as_str()
                            .map(str::to_owned)
                            .ok_or_else(|| format!("baseline {key} must be a list of field names"))
                    })
                    .collect(),
                None => v
                    .as_str()
                    .map(|s| vec![s.to_owned()])
                    .ok_or_else(|| format!("baseline {key} must be a list of field names")),
            },
        }
    };
    let duration = |key: &str, default: &str| -> Result<i64, String> {
        let value = text(key).unwrap_or_else(|| default.to_owned());
        parse_duration_ms(&value)
            .ok_or_else(|| format!("baseline {key} {value:?} is not a duration like 30d, 12h, 15m"))
    };
    for key in map.keys() {
        let key = key.as_str().unwrap_or("");
        if !["type", "group-by", "fields", "history", "idle", "learning"].contains(&key) {
            return Err(format!(
                "baseline has an unknown key {key:?} (known: type, group-by, fields, history, idle, learning)"
            ));
        }
    }
    let kind = match text("type").as_deref() {
        Some("first_seen") => BaselineKind::FirstSeen,
        Some("dormant") => BaselineKind::Dormant,
        other => {
            return Err(format!(
                "baseline type {other:?} is not supported: use first_seen or dormant"
            ))
        }
    };
    let group_by = list("group-by")?;
    if group_by.is_empty() {
        return Err(
            "baseline needs group-by: the fields that identify who or what is tracked".into(),
        );
    }
    let fields = list("fields")?;
    if kind == BaselineKind::Dormant && !fields.is_empty() {
        return Err("a dormant baseline tracks groups only; remove fields".into());
    }
    Ok(Some(Baseline {
        kind,
        group_by,
        fields,
        history_ms: duration(
            "history",
            if kind == BaselineKind::Dormant {
                "400d"
            } else {
                "90d"
            },
        )?,
        idle_ms: duration("idle", "30d")?,
        learning_ms: duration("learning", "0d")?,
    }))
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

/// The Sigma name of a correlation type (`value_sum`, not `ValueSum`).
fn correlation_type_name(t: CorrelationType) -> String {
    let debug = format!("{t:?}");
    let mut out = String::new();
    for (i, c) in debug.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// A parser error as one line, and a Sigma 1 aggregation (`condition:
/// selection | count() by x > 5`, removed in Sigma 2) named as such.
fn explain_parse_error(e: &str) -> String {
    if e.starts_with("Condition parse error") {
        let condition = e
            .lines()
            .find_map(|l| l.trim_start().strip_prefix("1 | "))
            .map(str::trim);
        if let Some(c) = condition.filter(|c| c.contains('|')) {
            return format!(
                "the condition `{c}` is a Sigma 1 aggregation (`| count() by …`), which Sigma 2 replaced with correlation rules: write an event_count or value_count correlation (group-by, timespan, condition) over this rule instead"
            );
        }
    }
    e.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Make `compiled` match only where `filter` (a nested condition, added as
/// the detection `name`) also holds.
fn inject_filter(
    compiled: &mut CompiledRule,
    name: &str,
    filter: CompiledDetection,
) -> Result<(), String> {
    let mut own: Vec<String> = compiled.detections.keys().cloned().collect();
    own.sort();
    let conditions = compiled
        .conditions
        .iter()
        .map(|c| spell_out_selectors(c, &own, name))
        .collect::<Result<Vec<_>, String>>()?;
    compiled.detections.insert(name.to_owned(), filter);
    compiled.conditions = conditions
        .into_iter()
        .map(|c| ConditionExpr::And(vec![c, ConditionExpr::Identifier(name.to_owned())]))
        .collect();
    Ok(())
}

/// `expr` with every selector that would also match the detection `new`
/// replaced by the explicit `or` / `and` of the detections it means now.
fn spell_out_selectors(
    expr: &ConditionExpr,
    own: &[String],
    new: &str,
) -> Result<ConditionExpr, String> {
    let all = |parts: &[ConditionExpr]| {
        parts
            .iter()
            .map(|p| spell_out_selectors(p, own, new))
            .collect::<Result<Vec<_>, String>>()
    };
    Ok(match expr {
        ConditionExpr::And(parts) => ConditionExpr::And(all(parts)?),
        ConditionExpr::Or(parts) => ConditionExpr::Or(all(parts)?),
        ConditionExpr::Not(inner) => {
            ConditionExpr::Not(Box::new(spell_out_selectors(inner, own, new)?))
        }
        ConditionExpr::Selector {
            quantifier,
            pattern,
        } if pattern.matches_detection_name(new) => {
            let ids: Vec<ConditionExpr> = own
                .iter()
                .filter(|n| pattern.matches_detection_name(n))
                .map(|n| ConditionExpr::Identifier(n.clone()))
                .collect();
            match quantifier {
                Quantifier::Any => ConditionExpr::Or(ids),
                Quantifier::All => ConditionExpr::And(ids),
                Quantifier::Count(_) => {
                    return Err("its condition counts detections (`N of …`) over a pattern the filter would join; name the detections instead".into())
                }
            }
        }
        other => other.clone(),
    })
}

/// Whether a correlation aggregates a numeric field (`value_sum`,
/// `value_avg`, `value_percentile`, `value_median`).
pub fn is_numeric(kind: CorrelationType) -> bool {
    matches!(
        kind,
        CorrelationType::ValueSum
            | CorrelationType::ValueAvg
            | CorrelationType::ValuePercentile
            | CorrelationType::ValueMedian
    )
}

impl RuleMeta {
    /// What this rule's (or correlation's) findings carry.
    pub fn header(&self) -> RuleHeader<'_> {
        RuleHeader {
            id: &self.id,
            title: &self.title,
            level: self.level,
            tags: &self.tags,
            description: &self.description,
        }
    }
}

impl Finding {
    /// The finding `rule` makes of one `record`: who and where from the
    /// record ([`Snapshot::of_record`]), the rest from the rule; the id
    /// from the rule id and the record's event id ([`finding_id`]).
    pub fn from_record(rule: &Rule, record: &Record<'_>) -> Finding {
        let mut finding = Snapshot::of_record(record).into_finding(rule.meta.header());
        finding.id = finding_id(&rule.meta.id, &finding.event_ids);
        finding
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "title: Trail stopped\nid: 11111111-1111-4111-8111-111111111111\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n  selection:\n    eventName: StopLogging\n  condition: selection\nlevel: high\nresponse: |\n  Restart logging.\n";

    #[test]
    fn base64offset_matches_pysigma() {
        assert_eq!(base64_offsets(b"curl "), ["Y3VybC", "N1cmwg", "jdXJsI"]);
        // http:// as in Sigma's own documentation.
        assert_eq!(
            base64_offsets(b"http://"),
            ["aHR0cDovL", "h0dHA6Ly", "odHRwOi8v"]
        );
    }

    #[test]
    fn loads_and_reports_problems_per_source() {
        let mut b = RuleSetBuilder::new();
        b.add_yaml("good.yml", GOOD);
        b.add_yaml("broken.yml", "title: [unclosed\n");
        b.add_yaml("nocondition.yml", "title: x\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n  selection:\n    eventName: A\n");
        b.add_yaml("windows.yml", "title: w\nlogsource: {product: windows, category: process_creation}\ndetection:\n  s:\n    Image: x\n  condition: s\n");
        b.add_yaml("dup.yml", GOOD);
        let RuleSet {
            rules,
            problems,
            notes,
            ..
        } = b.build();
        assert_eq!(rules.len(), 1);
        assert_eq!(rules[0].meta.level, Level::High);
        assert_eq!(rules[0].meta.response.as_deref(), Some("Restart logging."));
        let sources: Vec<&str> = problems.iter().map(|p| p.source.as_str()).collect();
        assert_eq!(sources, vec!["broken.yml", "nocondition.yml", "dup.yml"]);
        assert!(problems[2].reason.contains("duplicate rule id"));
        assert_eq!(notes.len(), 1);
        assert!(notes[0].reason.contains("product: windows"));
    }
}
