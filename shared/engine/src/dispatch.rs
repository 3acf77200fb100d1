//! The dispatch index: which rules can match a record, from its `eventName`
//! and `eventSource` alone.
//!
//! For each compiled rule we derive, from its condition and detections, the
//! set of `eventName` values (and failing that, `eventSource` values) without
//! which it cannot match. The derivation is conservative: anything it cannot
//! prove (negations, substring or regex matchers, keywords) widens the set to
//! "any", so the index never hides a match; it only skips rules that cannot
//! match. Values are compared lower-cased, a superset of Sigma's matching.

use std::collections::{BTreeSet, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

use rsigma_eval::matcher::GroupMode;
use rsigma_eval::{CompiledDetection, CompiledMatcher, CompiledRule};
use rsigma_parser::{ConditionExpr, Quantifier};

/// The values a field must take for a rule to match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Values {
    /// No constraint could be proven.
    Any,
    /// One of these (lower-cased) values; empty means the rule cannot match.
    OneOf(BTreeSet<String>),
}

impl Values {
    fn and(self, other: Values) -> Values {
        match (self, other) {
            (Values::Any, v) | (v, Values::Any) => v,
            (Values::OneOf(a), Values::OneOf(b)) => {
                Values::OneOf(a.intersection(&b).cloned().collect())
            }
        }
    }

    fn or(self, other: Values) -> Values {
        match (self, other) {
            (Values::Any, _) | (_, Values::Any) => Values::Any,
            (Values::OneOf(mut a), Values::OneOf(b)) => {
                a.extend(b);
                Values::OneOf(a)
            }
        }
    }

    fn all(items: impl Iterator<Item = Values>) -> Values {
        items.fold(Values::Any, Values::and)
    }

    fn any(mut items: impl Iterator<Item = Values>) -> Values {
        match items.next() {
            None => Values::Any,
            Some(first) => items.fold(first, Values::or),
        }
    }
}

/// The constraint derived for one field of one rule.
pub fn constraint(rule: &CompiledRule, field: &str) -> Values {
    Values::any(
        rule.conditions
            .iter()
            .map(|c| condition_values(c, rule, field)),
    )
}

fn condition_values(expr: &ConditionExpr, rule: &CompiledRule, field: &str) -> Values {
    match expr {
        ConditionExpr::And(parts) => {
            Values::all(parts.iter().map(|p| condition_values(p, rule, field)))
        }
        ConditionExpr::Or(parts) => {
            Values::any(parts.iter().map(|p| condition_values(p, rule, field)))
        }
        ConditionExpr::Not(_) => Values::Any,
        ConditionExpr::Identifier(name) => rule
            .detections
            .get(name)
            .map_or(Values::Any, |d| detection_values(d, field)),
        ConditionExpr::Selector {
            quantifier,
            pattern,
        } => {
            let mut names: Vec<&String> = rule
                .detections
                .keys()
                // As the evaluator selects them (rsigma's rule).
                .filter(|name| pattern.matches_detection_name(name))
                .collect();
            names.sort();
            let values = names
                .into_iter()
                .map(|n| detection_values(&rule.detections[n], field));
            match quantifier {
                Quantifier::All => Values::all(values),
                Quantifier::Any | Quantifier::Count(_) => Values::any(values),
            }
        }
    }
}

fn detection_values(detection: &CompiledDetection, field: &str) -> Values {
    match detection {
        CompiledDetection::AllOf(items) => Values::all(
            items
                .iter()
                .filter(|item| {
                    item.field
                        .as_deref()
                        .is_some_and(|f| f.eq_ignore_ascii_case(field))
                        && item.exists != Some(false)
                })
                .map(|item| matcher_values(&item.matcher)),
        ),
        CompiledDetection::AnyOf(parts) => {
            Values::any(parts.iter().map(|p| detection_values(p, field)))
        }
        CompiledDetection::And(parts) => {
            Values::all(parts.iter().map(|p| detection_values(p, field)))
        }
        _ => Values::Any,
    }
}

fn matcher_values(matcher: &CompiledMatcher) -> Values {
    match matcher {
        CompiledMatcher::Exact { value, .. } => {
            Values::OneOf(BTreeSet::from([value.to_ascii_lowercase()]))
        }
        CompiledMatcher::AnyOf(children) => Values::any(children.iter().map(matcher_values)),
        CompiledMatcher::AllOf(children) => Values::all(children.iter().map(matcher_values)),
        CompiledMatcher::CaseInsensitiveGroup { children, mode } => match mode {
            GroupMode::Any => Values::any(children.iter().map(matcher_values)),
            GroupMode::All => Values::all(children.iter().map(matcher_values)),
        },
        _ => Values::Any,
    }
}

/// Whether no record can ever match `rule`: each of its conditions needs a
/// detection item whose matcher has no value at all (a `|expand` item whose
/// policy fact is an empty list, or an empty list in the rule). Proven
/// conservatively, like the index: a negation, a quantifier over no
/// detection, or anything else not understood counts as "may match".
pub fn never_matches(rule: &CompiledRule) -> bool {
    !rule.conditions.is_empty() && rule.conditions.iter().all(|c| condition_never(c, rule))
}

fn condition_never(expr: &ConditionExpr, rule: &CompiledRule) -> bool {
    match expr {
        ConditionExpr::And(parts) => parts.iter().any(|p| condition_never(p, rule)),
        ConditionExpr::Or(parts) => {
            !parts.is_empty() && parts.iter().all(|p| condition_never(p, rule))
        }
        ConditionExpr::Not(_) => false,
        ConditionExpr::Identifier(name) => rule.detections.get(name).is_some_and(detection_never),
        ConditionExpr::Selector {
            quantifier,
            pattern,
        } => {
            let named: Vec<&CompiledDetection> = rule
                .detections
                .iter()
                .filter(|(name, _)| pattern.matches_detection_name(name))
                .map(|(_, d)| d)
                .collect();
            match quantifier {
                Quantifier::All => named.iter().any(|d| detection_never(d)),
                Quantifier::Any => !named.is_empty() && named.iter().all(|d| detection_never(d)),
                Quantifier::Count(_) => false,
            }
        }
    }
}

fn detection_never(detection: &CompiledDetection) -> bool {
    match detection {
        CompiledDetection::AllOf(items) => items
            .iter()
            .any(|item| item.exists.is_none() && matcher_never(&item.matcher)),
        CompiledDetection::AnyOf(parts) => !parts.is_empty() && parts.iter().all(detection_never),
        CompiledDetection::And(parts) => parts.iter().any(detection_never),
        _ => false,
    }
}

fn matcher_never(matcher: &CompiledMatcher) -> bool {
    match matcher {
        CompiledMatcher::AnyOf(children) => children.iter().all(matcher_never),
        CompiledMatcher::AllOf(children) => children.iter().any(matcher_never),
        CompiledMatcher::CaseInsensitiveGroup { children, mode } => match mode {
            GroupMode::Any => children.iter().all(matcher_never),
            GroupMode::All => children.iter().any(matcher_never),
        },
        _ => false,
    }
}

/// Which bucket of the index a rule went into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Tried only for these event names.
    EventName(BTreeSet<String>),
    /// Tried only for these event sources.
    EventSource(BTreeSet<String>),
    /// Tried for every record.
    Always,
}

/// Route a rule: by event name when that is constrained, else by source.
pub fn route(rule: &CompiledRule) -> Route {
    match constraint(rule, "eventName") {
        Values::OneOf(names) => Route::EventName(names),
        Values::Any => match constraint(rule, "eventSource") {
            Values::OneOf(sources) => Route::EventSource(sources),
            Values::Any => Route::Always,
        },
    }
}

/// FNV-1a: the index is hashed once per record with a short key, where
/// SipHash's setup dominates. The keys are fixed when the index is built
/// (record values are only looked up), so collisions cannot be grown.
pub(crate) struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut h = self.0;
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

type Index = HashMap<Box<str>, Vec<u32>, BuildHasherDefault<Fnv>>;

/// The index from event name and source to rule positions.
#[derive(Debug, Default, Clone)]
pub struct Dispatch {
    by_name: Index,
    by_source: Index,
    always: Vec<u32>,
}

impl Dispatch {
    /// Build the index over rules in order (positions are indexes into `routes`).
    pub fn new<'a>(routes: impl IntoIterator<Item = &'a Route>) -> Self {
        let mut d = Dispatch::default();
        for (i, route) in routes.into_iter().enumerate() {
            let i = i as u32;
            match route {
                Route::EventName(names) => {
                    for n in names {
                        d.by_name.entry(n.as_str().into()).or_default().push(i);
                    }
                }
                Route::EventSource(sources) => {
                    for s in sources {
                        d.by_source.entry(s.as_str().into()).or_default().push(i);
                    }
                }
                Route::Always => d.always.push(i),
            }
        }
        d
    }

    /// Call `f` with the position of every rule that may match a record with
    /// this event name and source.
    #[inline]
    pub fn candidates(&self, event_name: &str, event_source: &str, mut f: impl FnMut(u32)) {
        let mut buf = [0u8; 128];
        if !self.by_name.is_empty() {
            if let Some(rules) = lookup(&self.by_name, event_name, &mut buf) {
                rules.iter().copied().for_each(&mut f);
            }
        }
        if !self.by_source.is_empty() {
            if let Some(rules) = lookup(&self.by_source, event_source, &mut buf) {
                rules.iter().copied().for_each(&mut f);
            }
        }
        self.always.iter().copied().for_each(f);
    }

    /// Rules tried for every record.
    pub fn always_count(&self) -> usize {
        self.always.len()
    }
}

fn lookup<'m>(map: &'m Index, key: &str, buf: &mut [u8; 128]) -> Option<&'m Vec<u32>> {
    if key.len() > buf.len() {
        return map.get(key.to_ascii_lowercase().as_str());
    }
    let lower = &mut buf[..key.len()];
    lower.copy_from_slice(key.as_bytes());
    lower.make_ascii_lowercase();
    // Lower-casing ASCII bytes keeps UTF-8 valid.
    let lower = std::str::from_utf8(lower).ok()?;
    map.get(lower)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compile(yaml: &str) -> CompiledRule {
        let collection = rsigma_parser::parse_sigma_yaml(yaml).unwrap();
        rsigma_eval::compile_rule(&collection.rules[0]).unwrap()
    }

    fn names(v: &[&str]) -> BTreeSet<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    const HEAD: &str = "title: t\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n";

    #[test]
    fn routes_by_event_name_through_conditions() {
        let r = compile(&format!("{HEAD}  selection:\n    eventSource: cloudtrail.amazonaws.com\n    eventName: [StopLogging, DeleteTrail]\n  filter:\n    errorCode|exists: true\n  condition: selection and not filter\n"));
        assert_eq!(
            route(&r),
            Route::EventName(names(&["deletetrail", "stoplogging"]))
        );

        let r = compile(&format!("{HEAD}  sel_a:\n    eventName: A\n  sel_b:\n    eventName: B\n  condition: 1 of sel_*\n"));
        assert_eq!(route(&r), Route::EventName(names(&["a", "b"])));

        let r = compile(&format!("{HEAD}  sel_a:\n    eventName: A\n  other:\n    userAgent|contains: x\n  condition: sel_a or other\n"));
        assert_eq!(route(&r), Route::Always);

        let r = compile(&format!("{HEAD}  s:\n    eventSource: iam.amazonaws.com\n    eventName|startswith: Put\n  condition: s\n"));
        assert_eq!(route(&r), Route::EventSource(names(&["iam.amazonaws.com"])));

        let r = compile(&format!(
            "{HEAD}  s:\n    - eventName: A\n    - eventName: B\n      x: 1\n  condition: s\n"
        ));
        assert_eq!(route(&r), Route::EventName(names(&["a", "b"])));

        let r = compile(&format!(
            "{HEAD}  s:\n    eventName: A\n  condition: not s\n"
        ));
        assert_eq!(route(&r), Route::Always);
    }

    #[test]
    fn candidates_are_case_insensitive() {
        let routes = [
            Route::EventName(names(&["stoplogging"])),
            Route::EventSource(names(&["bedrock.amazonaws.com"])),
            Route::Always,
        ];
        let d = Dispatch::new(&routes);
        let mut seen = Vec::new();
        d.candidates("StopLogging", "cloudtrail.amazonaws.com", |i| seen.push(i));
        assert_eq!(seen, vec![0, 2]);
        seen.clear();
        d.candidates("InvokeModel", "bedrock.amazonaws.com", |i| seen.push(i));
        assert_eq!(seen, vec![1, 2]);
    }
}
