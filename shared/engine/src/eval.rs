//! Boolean rule evaluation: does a rule match a record, yes or no.
//!
//! `rsigma_eval::evaluate_rule` answers with an `EvaluationResult`: on a
//! match it runs the condition a second time to collect the matched
//! selections and field values, and clones the rule's header. The engine
//! only needs the yes or no, so each rule is compiled once, at load, into a
//! [`Program`]: the condition tree with detection names resolved to indexes
//! (selectors such as `1 of selection_*` or `all of them` become index
//! lists), and each detection item bound to a field slot.
//!
//! A field slot is one interned field path. The values of a record's slots
//! are looked up on first use and kept for the record ([`Fields`]), so a path
//! several rules read (`userIdentity.accessKeyId`, `userIdentity.type`, …) is
//! walked once per record, not once per rule.
//!
//! The semantics are rsigma 0.23's boolean pass (`evaluate_rule` without a
//! bloom filter), item for item: an `exists` item compares presence (a null
//! value counts as absent), an absent field matches only the `Null` matcher,
//! a field-less item is a keyword item, a condition naming a detection that
//! does not exist is false, and `1 of` / `all of` / `N of` quantify over the
//! detections whose names the selector matches (`them`: names not starting
//! with `_`). Values are matched by rsigma's own `CompiledMatcher::matches`.
//! Rules using detection kinds whose evaluation relies on rsigma-private
//! helpers (array object scope, `ArrayMatch` and `Conditional`) are
//! evaluated by `rsigma_eval::evaluate_rule` itself.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::net::IpAddr;

use memchr::memmem::Finder;

use rsigma_eval::matcher::{ascii_lowercase_cow, GroupMode};
use rsigma_eval::{CompiledDetection, CompiledDetectionItem, CompiledMatcher, CompiledRule};
use rsigma_eval::{Event, EventValue};
use rsigma_parser::{ConditionExpr, Quantifier};
use trailwarden_cloudtrail::Record;

use crate::dispatch::Fnv;
use crate::event::{field_at, field_of, place, Place, RecordEvent};

/// The field paths the loaded rules read, each with a slot number.
#[derive(Debug, Clone, Default)]
pub struct FieldTable {
    paths: Vec<(Box<str>, Place)>,
    index: HashMap<Box<str>, u32, BuildHasherDefault<Fnv>>,
    /// The policy fact `trusted_accounts`, for
    /// [`crate::derived::UNTRUSTED_ACCOUNTS`] (empty when the policy does
    /// not give it: only rules that may run without it read the field).
    pub(crate) trusted_accounts: Option<Vec<String>>,
}

impl FieldTable {
    /// The slot of `path`, given one if it has none yet.
    pub(crate) fn intern(&mut self, path: &str) -> u32 {
        if let Some(&slot) = self.index.get(path) {
            return slot;
        }
        let slot = self.paths.len() as u32;
        self.paths.push((path.into(), place(path)));
        self.index.insert(path.into(), slot);
        slot
    }

    /// How many distinct field paths the rules read.
    pub fn len(&self) -> usize {
        self.paths.len()
    }

    /// Whether no rule reads a field.
    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }
}

/// One record's field values, by slot, each looked up on first use and then
/// kept for the record.
///
/// Slots are numbered by the [`FieldTable`] the programs were compiled
/// against; a value is exactly what the engine's view of the record
/// ([`crate::EngineEvent`]: [`RecordEvent`], and the derived fields that need
/// the policy's facts) returns for the slot's path.
pub struct Fields<'t, 'r, 'a> {
    table: &'t FieldTable,
    event: RecordEvent<'r, 'a>,
    slots: Box<[OnceCell<Slot<'r>>]>,
}

/// A looked-up field value, with its lower-cased text once a
/// case-insensitive matcher has asked for it.
struct Slot<'r> {
    value: Option<EventValue<'r>>,
    /// The value is a string of ASCII characters only.
    ascii: bool,
    /// `None` inside: the text is already lower-case.
    lower: OnceCell<Option<Box<str>>>,
    /// The string value parsed as an IP address, once a `cidr` matcher has
    /// asked (a rule's private-range filter holds a dozen blocks).
    ip: OnceCell<Option<IpAddr>>,
}

impl Slot<'_> {
    /// The lower-cased form of `text` (this slot's string value), by
    /// rsigma's own lowering (`ascii_lowercase_cow`, equal to
    /// `str::to_lowercase`).
    #[inline]
    fn lower<'s>(&'s self, text: &'s str) -> &'s str {
        let lower = self.lower.get_or_init(|| match ascii_lowercase_cow(text) {
            Cow::Borrowed(_) => None,
            Cow::Owned(lower) => Some(lower.into_boxed_str()),
        });
        lower.as_deref().unwrap_or(text)
    }

    /// `text` (this slot's string value) parsed as rsigma's `cidr` matcher
    /// parses it (`str::parse::<IpAddr>`).
    #[inline]
    fn ip(&self, text: &str) -> Option<IpAddr> {
        *self.ip.get_or_init(|| text.parse().ok())
    }
}

impl<'t, 'r, 'a> Fields<'t, 'r, 'a> {
    /// An empty cache over `record` for the paths of `table`.
    pub fn new(table: &'t FieldTable, record: &'r Record<'a>) -> Self {
        Fields {
            table,
            event: RecordEvent(record),
            slots: (0..table.len()).map(|_| OnceCell::new()).collect(),
        }
    }

    #[inline]
    fn slot(&self, slot: u32) -> &Slot<'r> {
        let record = self.event.0;
        self.slots[slot as usize].get_or_init(|| {
            let (path, place) = &self.table.paths[slot as usize];
            let value = match place {
                Place::Derived(i) => {
                    crate::derived::value(record, *i, self.table.trusted_accounts.as_deref())
                }
                _ => field_at(record, path, *place),
            };
            Slot {
                ascii: matches!(&value, Some(EventValue::Str(s)) if s.is_ascii()),
                value,
                lower: OnceCell::new(),
                ip: OnceCell::new(),
            }
        })
    }

    /// The value of a slot (of the table the cache was made for): what
    /// `get_field` answers for the slot's path, without looking the path up.
    pub(crate) fn value(&self, slot: u32) -> Option<EventValue<'r>> {
        self.slot(slot).value.clone()
    }

    /// The record as rsigma's event (for matchers that read other fields,
    /// keyword matchers and rules evaluated by rsigma itself).
    pub fn event(&self) -> &RecordEvent<'r, 'a> {
        &self.event
    }
}

/// The record as rsigma's event, answered from the cache for the paths of
/// the table (the rules' fields, and the group-by and value fields of
/// correlations and baselines) and like [`crate::EngineEvent`] for any other
/// path: every answer equals the engine's view of the record.
impl Event for Fields<'_, '_, '_> {
    fn get_field(&self, path: &str) -> Option<EventValue<'_>> {
        match self.table.index.get(path) {
            Some(&slot) => self.slot(slot).value.clone(),
            None => match crate::derived::index(path) {
                Some(i) => {
                    crate::derived::value(self.event.0, i, self.table.trusted_accounts.as_deref())
                }
                None => field_of(self.event.0, path),
            },
        }
    }

    fn any_string_value(&self, pred: &dyn Fn(&str) -> bool) -> bool {
        self.event.any_string_value(pred)
    }

    fn all_string_values(&self) -> Vec<Cow<'_, str>> {
        self.event.all_string_values()
    }

    fn to_json(&self) -> serde_json::Value {
        self.event.to_json()
    }
}

/// A rule in the form the engine evaluates.
#[derive(Debug, Clone)]
pub enum Program {
    /// The condition(s) over resolved detections; the rule matches when any
    /// condition holds.
    Native {
        /// One per `condition` of the rule.
        conditions: Vec<Cond>,
        /// The rule's detections, indexed by the conditions.
        detections: Vec<Det>,
    },
    /// Evaluated by `rsigma_eval::evaluate_rule` (the rule uses array
    /// object-scope detections).
    Rsigma,
}

/// A condition with detection names resolved to indexes.
#[derive(Debug, Clone)]
pub enum Cond {
    /// A constant (a name with no detection, `0 of …`).
    Const(bool),
    /// One detection.
    Det(u32),
    /// Every part.
    And(Vec<Cond>),
    /// Any part.
    Or(Vec<Cond>),
    /// The negation.
    Not(Box<Cond>),
    /// At least one of these detections (`1 of …`).
    AnyOf(Vec<u32>),
    /// All of these detections (`all of …`; true when there are none).
    AllOf(Vec<u32>),
    /// At least `n` (≥ 1) of these detections.
    AtLeast(u64, Vec<u32>),
}

/// A detection with its fields bound to slots.
#[derive(Debug, Clone)]
pub enum Det {
    /// Every item (a YAML mapping).
    AllOf(Vec<Item>),
    /// Any sub-detection (a YAML list of mappings).
    AnyOf(Vec<Det>),
    /// Every sub-detection.
    And(Vec<Det>),
    /// A keyword matcher over every string value of the record.
    Keywords(CompiledMatcher),
}

/// One detection item.
#[derive(Debug, Clone)]
pub enum Item {
    /// `field|exists: expect`: a non-null value is present (or not).
    Exists {
        /// The field's slot; `None` for a field-less item (true when
        /// `expect` is false).
        slot: Option<u32>,
        /// Whether the field must be present.
        expect: bool,
    },
    /// A field value matcher; an absent field matches only `Null`.
    Field {
        /// The field's slot.
        slot: u32,
        /// rsigma's matcher.
        matcher: CompiledMatcher,
    },
    /// A field-less item: a keyword matcher over every string value.
    Keyword(CompiledMatcher),
    /// A field matcher that is a case-insensitive `contains` of one pattern
    /// or any of several (rsigma's `Contains`, or its `CaseInsensitiveGroup`
    /// of `Contains` in `Any` mode): the same verdict as `matcher`, from
    /// substring finders built once, over the lower-cased text (short ASCII
    /// text lowered on the stack, not allocated).
    ContainsAny {
        /// The field's slot.
        slot: u32,
        /// One finder per pattern (lower-case, as rsigma keeps them).
        finders: Vec<Finder<'static>>,
        /// rsigma's matcher, for values that are not strings.
        matcher: CompiledMatcher,
    },
}

impl Program {
    /// Compile `rule`, interning the fields it reads into `fields`.
    pub fn compile(rule: &CompiledRule, fields: &mut FieldTable) -> Program {
        if rule.detections.values().any(uses_array_scope) {
            return Program::Rsigma;
        }
        let mut names: Vec<&String> = rule.detections.keys().collect();
        names.sort();
        let position: HashMap<&str, u32> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), i as u32))
            .collect();
        let detections = names
            .iter()
            .map(|n| compile_detection(&rule.detections[*n], fields))
            .collect();
        let conditions = rule
            .conditions
            .iter()
            .map(|c| compile_condition(c, &names, &position))
            .collect();
        Program::Native {
            conditions,
            detections,
        }
    }

    /// Whether the rule matches the record whose fields `fields` holds.
    /// `rule` is the compiled rule this program was made from.
    #[inline]
    pub fn matches(&self, rule: &CompiledRule, fields: &Fields<'_, '_, '_>) -> bool {
        match self {
            Program::Native {
                conditions,
                detections,
            } => conditions.iter().any(|c| eval_cond(c, detections, fields)),
            Program::Rsigma => rsigma_eval::evaluate_rule(rule, fields).is_some(),
        }
    }
}

fn uses_array_scope(detection: &CompiledDetection) -> bool {
    match detection {
        CompiledDetection::AllOf(_) | CompiledDetection::Keywords(_) => false,
        CompiledDetection::AnyOf(parts) | CompiledDetection::And(parts) => {
            parts.iter().any(uses_array_scope)
        }
        CompiledDetection::ArrayMatch { .. } | CompiledDetection::Conditional { .. } => true,
    }
}

fn compile_condition(
    expr: &ConditionExpr,
    names: &[&String],
    position: &HashMap<&str, u32>,
) -> Cond {
    match expr {
        ConditionExpr::Identifier(name) => match position.get(name.as_str()) {
            Some(&i) => Cond::Det(i),
            None => Cond::Const(false),
        },
        ConditionExpr::And(parts) => Cond::And(
            parts
                .iter()
                .map(|p| compile_condition(p, names, position))
                .collect(),
        ),
        ConditionExpr::Or(parts) => Cond::Or(
            parts
                .iter()
                .map(|p| compile_condition(p, names, position))
                .collect(),
        ),
        ConditionExpr::Not(inner) => Cond::Not(Box::new(compile_condition(inner, names, position))),
        ConditionExpr::Selector {
            quantifier,
            pattern,
        } => {
            let of: Vec<u32> = names
                .iter()
                .enumerate()
                .filter(|(_, n)| pattern.matches_detection_name(n))
                .map(|(i, _)| i as u32)
                .collect();
            match quantifier {
                Quantifier::Any => Cond::AnyOf(of),
                Quantifier::All => Cond::AllOf(of),
                Quantifier::Count(0) => Cond::Const(true),
                Quantifier::Count(n) => Cond::AtLeast(*n, of),
            }
        }
    }
}

fn compile_detection(detection: &CompiledDetection, fields: &mut FieldTable) -> Det {
    match detection {
        CompiledDetection::AllOf(items) => {
            Det::AllOf(items.iter().map(|i| compile_item(i, fields)).collect())
        }
        CompiledDetection::AnyOf(parts) => {
            Det::AnyOf(parts.iter().map(|p| compile_detection(p, fields)).collect())
        }
        CompiledDetection::And(parts) => {
            Det::And(parts.iter().map(|p| compile_detection(p, fields)).collect())
        }
        CompiledDetection::Keywords(matcher) => Det::Keywords(matcher.clone()),
        CompiledDetection::ArrayMatch { .. } | CompiledDetection::Conditional { .. } => {
            unreachable!("rules with array object scope are evaluated by rsigma")
        }
    }
}

fn compile_item(item: &CompiledDetectionItem, fields: &mut FieldTable) -> Item {
    match (item.exists, item.field.as_deref()) {
        (Some(expect), field) => Item::Exists {
            slot: field.map(|f| fields.intern(f)),
            expect,
        },
        (None, Some(field)) => {
            let slot = fields.intern(field);
            let matcher = item.matcher.clone();
            match contains_patterns(&item.matcher) {
                Some(patterns) => Item::ContainsAny {
                    slot,
                    finders: patterns
                        .iter()
                        .map(|p| Finder::new(p.as_bytes()).into_owned())
                        .collect(),
                    matcher,
                },
                None => Item::Field { slot, matcher },
            }
        }
        (None, None) => Item::Keyword(item.matcher.clone()),
    }
}

/// Longest ASCII text [`Item::ContainsAny`] lowers on the stack.
const SHORT_TEXT: usize = 512;

/// The patterns of a matcher that is a case-insensitive `contains` of one
/// pattern or of any of several; `None` for any other matcher.
fn contains_patterns(matcher: &CompiledMatcher) -> Option<Vec<&str>> {
    fn one(m: &CompiledMatcher) -> Option<&str> {
        match m {
            CompiledMatcher::Contains {
                value,
                case_insensitive: true,
            } => Some(value.as_str()),
            _ => None,
        }
    }
    match matcher {
        CompiledMatcher::CaseInsensitiveGroup {
            children,
            mode: GroupMode::Any,
        } if !children.is_empty() => children.iter().map(one).collect(),
        other => one(other).map(|p| vec![p]),
    }
}

fn eval_cond(cond: &Cond, detections: &[Det], fields: &Fields<'_, '_, '_>) -> bool {
    let det = |i: &u32| eval_det(&detections[*i as usize], fields);
    match cond {
        Cond::Const(b) => *b,
        Cond::Det(i) => det(i),
        Cond::And(parts) => parts.iter().all(|p| eval_cond(p, detections, fields)),
        Cond::Or(parts) => parts.iter().any(|p| eval_cond(p, detections, fields)),
        Cond::Not(inner) => !eval_cond(inner, detections, fields),
        Cond::AnyOf(of) => of.iter().any(det),
        Cond::AllOf(of) => of.iter().all(det),
        Cond::AtLeast(n, of) => {
            let mut matched = 0u64;
            of.iter().any(|i| {
                if det(i) {
                    matched += 1;
                }
                matched >= *n
            })
        }
    }
}

fn eval_det(det: &Det, fields: &Fields<'_, '_, '_>) -> bool {
    match det {
        Det::AllOf(items) => items.iter().all(|i| eval_item(i, fields)),
        Det::AnyOf(parts) => parts.iter().any(|p| eval_det(p, fields)),
        Det::And(parts) => parts.iter().all(|p| eval_det(p, fields)),
        Det::Keywords(matcher) => matcher.matches_keyword(fields.event()),
    }
}

#[inline]
fn eval_item(item: &Item, fields: &Fields<'_, '_, '_>) -> bool {
    match item {
        Item::Exists { slot, expect } => match slot {
            Some(slot) => {
                fields
                    .slot(*slot)
                    .value
                    .as_ref()
                    .is_some_and(|v| !v.is_null())
                    == *expect
            }
            None => !*expect,
        },
        Item::Field { slot, matcher } => {
            let slot = fields.slot(*slot);
            match &slot.value {
                Some(value @ EventValue::Str(text)) => {
                    str_matches(matcher, value, text, slot, fields)
                }
                Some(value) => matcher.matches(value, fields),
                None => matches!(matcher, CompiledMatcher::Null),
            }
        }
        Item::Keyword(matcher) => matcher.matches_keyword(fields.event()),
        Item::ContainsAny {
            slot,
            finders,
            matcher,
        } => {
            let slot = fields.slot(*slot);
            let any = |lower: &[u8]| finders.iter().any(|f| f.find(lower).is_some());
            match &slot.value {
                Some(EventValue::Str(text)) if slot.ascii && text.len() <= SHORT_TEXT => {
                    // ASCII lowers byte for byte, as rsigma lowers it.
                    let mut buf = [0u8; SHORT_TEXT];
                    let lower = &mut buf[..text.len()];
                    lower.copy_from_slice(text.as_bytes());
                    lower.make_ascii_lowercase();
                    any(lower)
                }
                Some(EventValue::Str(text)) => any(slot.lower(text).as_bytes()),
                Some(value) => matcher.matches(value, fields),
                None => false,
            }
        }
    }
}

/// `matcher.matches(value, event)` for a string `value` (its text: `text`),
/// with case-insensitive string matchers comparing the slot's lower-cased
/// text (lowered once per record) instead of lowering `text` again for every
/// comparison. Every other matcher is rsigma's own.
fn str_matches(
    matcher: &CompiledMatcher,
    value: &EventValue<'_>,
    text: &str,
    slot: &Slot<'_>,
    fields: &Fields<'_, '_, '_>,
) -> bool {
    match matcher {
        CompiledMatcher::Exact {
            value: pattern,
            case_insensitive: true,
        } => {
            if slot.ascii {
                lowered_eq(text.as_bytes(), pattern.as_bytes())
            } else {
                slot.lower(text) == pattern
            }
        }
        CompiledMatcher::Contains {
            value: pattern,
            case_insensitive: true,
        } => slot.lower(text).contains(pattern.as_str()),
        CompiledMatcher::StartsWith {
            value: pattern,
            case_insensitive: true,
        } => {
            if slot.ascii {
                let head = text.as_bytes().get(..pattern.len());
                head.is_some_and(|head| lowered_eq(head, pattern.as_bytes()))
            } else {
                slot.lower(text).starts_with(pattern.as_str())
            }
        }
        CompiledMatcher::EndsWith {
            value: pattern,
            case_insensitive: true,
        } => {
            if slot.ascii {
                let tail = text.len().checked_sub(pattern.len());
                tail.is_some_and(|at| lowered_eq(&text.as_bytes()[at..], pattern.as_bytes()))
            } else {
                slot.lower(text).ends_with(pattern.as_str())
            }
        }
        CompiledMatcher::AhoCorasickSet {
            automaton,
            case_insensitive: true,
            ..
        } => automaton.is_match(slot.lower(text)),
        CompiledMatcher::CaseInsensitiveGroup { children, mode } => {
            let lower = slot.lower(text);
            match mode {
                GroupMode::Any => children.iter().any(|c| pre_lowered(c, lower)),
                GroupMode::All => children.iter().all(|c| pre_lowered(c, lower)),
            }
        }
        CompiledMatcher::Cidr(net) => slot.ip(text).is_some_and(|ip| net.contains(&ip)),
        CompiledMatcher::Not(inner) => !str_matches(inner, value, text, slot, fields),
        CompiledMatcher::AnyOf(children) => children
            .iter()
            .any(|c| str_matches(c, value, text, slot, fields)),
        CompiledMatcher::AllOf(children) => children
            .iter()
            .all(|c| str_matches(c, value, text, slot, fields)),
        other => other.matches(value, fields),
    }
}

/// Whether ASCII `text`, lower-cased, equals `pattern` (byte for byte): for
/// ASCII text, lowering is per byte, so an exact, prefix or suffix
/// comparison needs only the bytes it compares lowered.
#[inline]
fn lowered_eq(text: &[u8], pattern: &[u8]) -> bool {
    text.len() == pattern.len()
        && text
            .iter()
            .zip(pattern)
            .all(|(t, p)| t.to_ascii_lowercase() == *p)
}

/// rsigma's `matches_pre_lowered` (crate-private there): a child of a
/// `CaseInsensitiveGroup` against the lower-cased text. rsigma's optimizer
/// only puts pre-lowerable matchers in such a group; anything else is
/// `false`, as in rsigma's release builds.
fn pre_lowered(matcher: &CompiledMatcher, lower: &str) -> bool {
    match matcher {
        CompiledMatcher::Contains {
            value,
            case_insensitive: true,
        } => lower.contains(value.as_str()),
        CompiledMatcher::StartsWith {
            value,
            case_insensitive: true,
        } => lower.starts_with(value.as_str()),
        CompiledMatcher::EndsWith {
            value,
            case_insensitive: true,
        } => lower.ends_with(value.as_str()),
        CompiledMatcher::Exact {
            value,
            case_insensitive: true,
        } => lower == value,
        CompiledMatcher::Regex(re) => re.is_match(lower),
        CompiledMatcher::AhoCorasickSet {
            automaton,
            case_insensitive: true,
            ..
        } => automaton.is_match(lower),
        CompiledMatcher::RegexSetMatch { set, mode } => match mode {
            GroupMode::Any => set.is_match(lower),
            GroupMode::All => set.matches(lower).iter().count() == set.len(),
        },
        CompiledMatcher::Not(inner) => !pre_lowered(inner, lower),
        CompiledMatcher::AnyOf(children) => children.iter().any(|c| pre_lowered(c, lower)),
        CompiledMatcher::AllOf(children) => children.iter().all(|c| pre_lowered(c, lower)),
        CompiledMatcher::CaseInsensitiveGroup { children, mode } => match mode {
            GroupMode::Any => children.iter().any(|c| pre_lowered(c, lower)),
            GroupMode::All => children.iter().all(|c| pre_lowered(c, lower)),
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "title: t\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n";

    const RECORDS: &[&str] = &[
        r#"{"eventName":"A","eventSource":"s.amazonaws.com","sourceIPAddress":"1.2.3.4","readOnly":true,
            "userIdentity":{"type":"IAMUser","accessKeyId":"AKIA1","userName":"BedrockAPIKey-x"},
            "requestParameters":{"n":3,"f":1.5,"nul":null,"list":[{"k":"v1"},{"k":"V2"}],"flag":true},
            "custom":{"x":"Yes"}}"#,
        r#"{"eventName":"B","eventSource":"s.amazonaws.com","sourceIPAddress":"AWS Internal",
            "userIdentity":{"type":"AssumedRole","accessKeyId":""},"errorCode":"AccessDenied"}"#,
        r#"{"eventName":"a","userIdentity":null,"requestParameters":{"n":"3","list":[]}}"#,
        r#"{"eventName":"ÄRZTE-Σ","userAgent":"Boto3/1.0 Ünïcode ΣΑΣ","errorCode":"İX",
            "userIdentity":{"type":"IAM\u0055ser","userName":"B\u00c4R"}}"#,
        r#"{"eventName":"\u212a","eventSource":"K","sourceIPAddress":"X.AMAZONAWS.COM"}"#,
    ];

    /// The program's verdict and rsigma's, on every test record.
    fn check(detection: &str) -> Vec<bool> {
        let yaml = format!("{HEAD}{detection}");
        let collection = rsigma_parser::parse_sigma_yaml(&yaml).unwrap();
        let rule = rsigma_eval::compile_rule(&collection.rules[0]).unwrap();
        let mut table = FieldTable::default();
        let program = Program::compile(&rule, &mut table);
        assert!(matches!(program, Program::Native { .. }), "{detection}");
        RECORDS
            .iter()
            .map(|raw| {
                let record = Record::parse(raw).unwrap();
                let fields = Fields::new(&table, &record);
                let ours = program.matches(&rule, &fields);
                let theirs = rsigma_eval::evaluate_rule(&rule, &RecordEvent(&record)).is_some();
                assert_eq!(ours, theirs, "{detection} on {raw}");
                ours
            })
            .collect()
    }

    #[test]
    fn same_verdicts_as_rsigma() {
        let cases = [
            "  s:\n    eventName: A\n  condition: s\n",
            "  s:\n    eventName|cased: A\n  condition: s\n",
            "  s:\n    userIdentity.accessKeyId|exists: true\n  f:\n    userIdentity.accessKeyId: ''\n  condition: s and not f\n",
            "  s:\n    userIdentity.accessKeyId|exists: false\n  condition: s\n",
            "  s:\n    requestParameters.nul|exists: true\n  condition: s\n",
            "  s:\n    requestParameters.nul: null\n  condition: s\n",
            "  s:\n    errorCode: null\n  condition: s\n",
            "  s:\n    requestParameters.n: 3\n  condition: s\n",
            "  s:\n    requestParameters.n|gte: 3\n  condition: s\n",
            "  s:\n    requestParameters.f|lt: 2\n  condition: s\n",
            "  s:\n    requestParameters.flag: true\n  condition: s\n",
            "  s:\n    readOnly: true\n  condition: s\n",
            "  s:\n    requestParameters.list.k: v2\n  condition: s\n",
            "  s:\n    requestParameters.list.k|startswith: v\n  condition: s\n",
            "  s:\n    custom.x: yes\n  condition: s\n",
            "  s:\n    sourceIPAddress|cidr: 1.2.0.0/16\n  condition: s\n",
            "  s:\n    sourceIPAddress|re: '^AWS'\n  condition: s\n",
            "  s:\n    userIdentity.userName|startswith: BedrockAPIKey-\n  condition: s\n",
            "  s:\n    - eventName: A\n    - errorCode|contains: denied\n  condition: s\n",
            "  keywords:\n    - AccessDenied\n  condition: keywords\n",
            "  keywords:\n    - '*internal*'\n  condition: keywords\n",
            "  selection_a:\n    eventName: A\n  selection_b:\n    errorCode|exists: true\n  condition: 1 of selection_*\n",
            "  selection_a:\n    eventName: A\n  selection_b:\n    eventSource: s.amazonaws.com\n  condition: all of selection_*\n",
            "  selection_a:\n    eventName: A\n  selection_b:\n    eventSource: s.amazonaws.com\n  _c:\n    errorCode: x\n  condition: all of them\n",
            "  selection_a:\n    eventName: A\n  selection_b:\n    eventSource: s.amazonaws.com\n  _c:\n    errorCode: x\n  condition: 1 of them\n",
            "  sel_a:\n    eventName: A\n  sel_b:\n    eventSource: s.amazonaws.com\n  sel_c:\n    readOnly: true\n  condition: 2 of sel_*\n",
            "  sel_a:\n    eventName: A\n  condition: all of nothing_*\n",
            "  sel_a:\n    eventName: A\n  condition: 1 of nothing_*\n",
            "  a:\n    eventName: A\n  b:\n    eventName: B\n  condition: (a or b) and not a\n",
            "  s:\n    eventName: ärzte-σ\n  condition: s\n",
            "  s:\n    eventName: ÄRZTE-Σ\n  condition: s\n",
            "  s:\n    eventName|contains: 'zte-σ'\n  condition: s\n",
            "  s:\n    eventName|startswith: 'ÄR'\n  condition: s\n",
            "  s:\n    errorCode|startswith: 'i̇'\n  condition: s\n",
            "  s:\n    userAgent|contains|all:\n      - boto3\n      - σας\n  condition: s\n",
            "  s:\n    userAgent|contains:\n      - boto3\n      - x\n  condition: s\n",
            "  s:\n    userAgent|contains:\n      - a1\n      - a2\n      - a3\n      - a4\n      - a5\n      - a6\n      - a7\n      - ünï\n  condition: s\n",
            "  s:\n    userAgent|contains|cased:\n      - a1\n      - a2\n      - a3\n      - a4\n      - a5\n      - a6\n      - a7\n      - Boto3\n  condition: s\n",
            "  s:\n    userAgent|re:\n      - '^x'\n      - '(?i)^boto'\n      - 'y$'\n  condition: s\n",
            "  s:\n    userAgent|re|i:\n      - '^x'\n      - '^BOTO'\n      - 'y$'\n  condition: s\n",
            "  s:\n    eventName:\n      - a\n      - b\n  condition: s\n",
            "  s:\n    eventName:\n      - a\n      - B*\n  condition: s\n",
            "  s:\n    eventName|endswith:\n      - -σ\n      - x\n  condition: s\n",
            "  s:\n    eventName|neq: a\n  condition: s\n",
            "  s:\n    userIdentity.type: iamuser\n  condition: s\n",
            "  s:\n    userIdentity.userName|cased: BÄR\n  condition: s\n",
            "  s:\n    userIdentity.userName: bär\n    userIdentity.type|startswith: IAM\n  condition: s\n",
            "  s:\n    requestParameters.n: '3'\n  condition: s\n",
            "  s:\n    requestParameters.list.k: V*\n  condition: s\n",
            "  s:\n    readOnly: 'TRUE'\n  condition: s\n",
            "  s:\n    eventName: k\n  condition: s\n",
            "  s:\n    eventName|startswith: k\n  condition: s\n",
            "  s:\n    eventSource: \u{212a}\n  condition: s\n",
            "  s:\n    eventSource|endswith: \u{212a}\n  condition: s\n",
            "  s:\n    sourceIPAddress|endswith: .amazonaws.com\n  condition: s\n",
            "  s:\n    sourceIPAddress|startswith: 'aws internal and more'\n  condition: s\n",
            "  s:\n    sourceIPAddress|endswith: ' INTERNAL'\n  condition: s\n",
            "  s:\n    sourceIPAddress: aws internal\n  condition: s\n",
            "  s:\n    userIdentity.type|startswith: iam\n  condition: s\n",
            // Case-insensitive `contains` (one automaton, ASCII text not
            // lowered): mixed case, non-ASCII text, the Kelvin sign that
            // lowers to ASCII `k`, numbers, booleans, absent fields, an
            // empty pattern.
            "  s:\n    userAgent|contains:\n      - BOTO\n      - zzz\n  condition: s\n",
            "  s:\n    userAgent|contains: 'ünïCODE'\n  condition: s\n",
            "  s:\n    eventName|contains: k\n  condition: s\n",
            "  s:\n    eventSource|contains:\n      - K\n      - q\n  condition: s\n",
            "  s:\n    sourceIPAddress|contains:\n      - amazonaws.COM\n      - '1.2'\n  condition: s\n",
            "  s:\n    requestParameters.n|contains: '3'\n  condition: s\n",
            "  s:\n    requestParameters.flag|contains: tru\n  condition: s\n",
            "  s:\n    readOnly|contains:\n      - TRU\n      - x\n  condition: s\n",
            "  s:\n    custom.missing|contains: x\n  condition: s\n",
            "  s:\n    userAgent|contains: ''\n  condition: s\n",
            "  s:\n    requestParameters.list.k|contains:\n      - V2\n      - zz\n  condition: s\n",
        ];
        for case in cases {
            check(case);
        }
        assert_eq!(check(cases[0]), [true, false, true, false, false]);
        assert_eq!(check(cases[1]), [true, false, false, false, false]);
        assert_eq!(check(cases[2]), [true, false, false, false, false]);
        // The cases above reach the new item, and some match.
        let yaml = format!(
            "{HEAD}  s:\n    userAgent|contains:\n      - BOTO\n      - zzz\n  condition: s\n"
        );
        let rule =
            rsigma_eval::compile_rule(&rsigma_parser::parse_sigma_yaml(&yaml).unwrap().rules[0])
                .unwrap();
        let program = Program::compile(&rule, &mut FieldTable::default());
        assert!(
            matches!(&program, Program::Native { detections, .. }
                if matches!(&detections[0], Det::AllOf(items) if matches!(items[0], Item::ContainsAny { .. }))),
            "{program:?}"
        );
        assert_eq!(
            check("  s:\n    userAgent|contains:\n      - BOTO\n      - zzz\n  condition: s\n"),
            [false, false, false, true, false]
        );
        assert_eq!(
            check("  s:\n    eventName|contains: k\n  condition: s\n"),
            [false, false, false, false, true]
        );
    }
}
