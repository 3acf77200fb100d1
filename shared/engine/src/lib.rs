//! Detection over CloudTrail records with Sigma rules.
//!
//! - [`RuleSetBuilder`] loads Sigma YAML (files, directories, text) and
//!   collects every problem with its source; [`Rule`] is one compiled rule
//!   with the metadata a finding carries.
//! - [`Engine`] holds the rules and a [`Dispatch`] index from `eventName` /
//!   `eventSource` to the rules that can match, and evaluates each candidate
//!   rule as a boolean program ([`eval`]) over rsigma's matchers, reading
//!   fields through rsigma's event interface ([`RecordEvent`]) without
//!   converting records to a JSON tree.
//! - [`Finding`] is what a match produces, with an id derived from the rule
//!   and the event ids, so the same event never makes two findings;
//!   [`ocsf::detection_finding`] gives it as an OCSF Detection Finding.
//!
//! This crate is pure: no AWS SDK, no async runtime, no I/O beyond reading
//! rule files.

pub mod builtin {
    //! The built-in rule pack, embedded at build time from `rules/`.

    include!(concat!(env!("OUT_DIR"), "/builtin_rules.rs"));

    /// The built-in rules as (path under `rules/`, YAML text).
    pub fn builtin_rules() -> impl Iterator<Item = (&'static str, &'static str)> {
        BUILTIN_RULES.iter().copied()
    }
}
pub mod derived;
pub mod digest;
pub mod dispatch;
pub mod eval;
pub mod event;
pub mod finding;
pub mod ocsf;
pub mod policy;
pub mod render;
pub mod rules;
pub mod session;
pub mod state;
pub mod sweep;

pub use dispatch::{Dispatch, Route};
pub use eval::Fields;
pub use event::{EngineEvent, RecordEvent};
pub use finding::{event_id, finding_id, Finding, Level, MAX_EVENT_IDS};
pub use policy::Policy;
pub use rules::{
    Baseline, BaselineKind, Correlation, Rule, RuleNote, RuleProblem, RuleSet, RuleSetBuilder,
};
pub use session::{Session, FOLD_RECORDS, MAX_EARLY_ENTRIES, MAX_FOLDED, MAX_FOLDED_BYTES};
pub use state::{FindingStore, Ledger, MemoryStore, ObjectRef, StateStore, StoreError};

use eval::{FieldTable, Program};
use trailwarden_cloudtrail::Record;

/// The compiled rules, correlations and the dispatch index.
#[derive(Debug, Clone, Default)]
pub struct Engine {
    rules: Vec<Rule>,
    correlations: Vec<Correlation>,
    /// Per rule: the correlations it feeds.
    feeds: Vec<Vec<usize>>,
    /// Per correlation: the correlations over it, each with the position
    /// of the reference (chained correlations).
    chained_into: Vec<Vec<(usize, u16)>>,
    dispatch: Dispatch,
    /// Per rule: the form it is evaluated in.
    programs: Vec<Program>,
    /// The field paths the programs read.
    fields: FieldTable,
    /// The slots of the fields sessions read after a match.
    slots: Slots,
    /// The policy's level for the sweep's findings (`None`: low).
    sweep_level: Option<Level>,
}

/// The field slots (in the engine's [`FieldTable`]) that sessions read
/// after a match, so that a match reads its group-by and value fields
/// from the record's cache without looking their paths up.
#[derive(Debug, Clone, Default)]
pub(crate) struct Slots {
    /// Per rule: a baseline's group-by and value fields.
    pub baselines: Vec<Option<(Vec<u32>, Vec<u32>)>>,
    /// Per correlation: the group-by fields, and per referenced rule the
    /// fields its events are grouped by (aliases resolved).
    pub groups: Vec<(Vec<u32>, Vec<Vec<u32>>)>,
    /// Per correlation: the counted or aggregated field(s).
    pub values: Vec<Vec<u32>>,
}

impl Engine {
    /// An engine over everything a [`RuleSetBuilder`] built: detection
    /// rules, baselines and the correlations over them.
    pub fn from_set(set: RuleSet) -> Self {
        let RuleSet {
            rules,
            correlations,
            trusted_accounts,
            sweep_level,
            ..
        } = set;
        let dispatch = Dispatch::new(rules.iter().map(|r| &r.route));
        let mut fields = FieldTable::default();
        fields.trusted_accounts = trusted_accounts;
        let programs = rules
            .iter()
            .map(|r| Program::compile(&r.compiled, &mut fields))
            .collect();
        // What sessions read after a match: group-by and value fields.
        let stateful = rules
            .iter()
            .filter_map(|r| r.baseline.as_ref())
            .flat_map(|b| b.group_by.iter().chain(&b.fields));
        let correlated = correlations.iter().flat_map(|c| {
            let value = c.condition.field.iter().flatten();
            c.group_by
                .iter()
                .chain(c.group_fields.iter().flatten())
                .chain(value)
        });
        for path in stateful.chain(correlated) {
            fields.intern(path);
        }
        let mut slots =
            |paths: &[String]| -> Vec<u32> { paths.iter().map(|p| fields.intern(p)).collect() };
        let slots = Slots {
            baselines: rules
                .iter()
                .map(|r| {
                    r.baseline
                        .as_ref()
                        .map(|b| (slots(&b.group_by), slots(&b.fields)))
                })
                .collect(),
            groups: correlations
                .iter()
                .map(|c| {
                    (
                        slots(&c.group_by),
                        c.group_fields.iter().map(|g| slots(g)).collect(),
                    )
                })
                .collect(),
            values: correlations
                .iter()
                .map(|c| slots(c.condition.field.as_deref().unwrap_or_default()))
                .collect(),
        };
        let mut feeds = vec![Vec::new(); rules.len()];
        let mut chained_into = vec![Vec::new(); correlations.len()];
        for (c, corr) in correlations.iter().enumerate() {
            for &r in corr.rules.iter().filter(|r| **r != rules::CHAINED) {
                if !feeds[r].contains(&c) {
                    feeds[r].push(c);
                }
            }
            for &(p, inner) in &corr.chained {
                chained_into[inner].push((c, p));
            }
        }
        Engine {
            rules,
            correlations,
            feeds,
            chained_into,
            dispatch,
            programs,
            fields,
            slots,
            sweep_level,
        }
    }

    /// The level of the stale AI principal sweep's findings: low, unless
    /// the policy names [`rules::SWEEP_RULE_ID`] under `levels:` (so that
    /// they reach an alert channel whose minimum level is higher).
    pub fn sweep_level(&self) -> Level {
        self.sweep_level.unwrap_or(Level::Low)
    }

    /// The same rules with a dispatch index that routes nothing: every rule
    /// is tried on every record. For measuring the index.
    pub fn without_index(&self) -> Engine {
        let mut e = self.clone();
        let always: Vec<Route> = vec![Route::Always; e.rules.len()];
        e.dispatch = Dispatch::new(&always);
        e
    }

    /// The same rules, each evaluated by `rsigma_eval::evaluate_rule` (which
    /// also collects match details) instead of the engine's own boolean
    /// evaluation. Same matches; for measuring the difference and for
    /// checking the engine's evaluation against rsigma's.
    pub fn evaluated_by_rsigma(&self) -> Engine {
        let mut e = self.clone();
        e.programs = vec![Program::Rsigma; e.rules.len()];
        e
    }

    /// The detection rules (baselines included), in load order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The correlation rules.
    pub fn correlations(&self) -> &[Correlation] {
        &self.correlations
    }

    /// The correlations rule `i` feeds.
    pub fn feeds(&self, i: usize) -> &[usize] {
        &self.feeds[i]
    }

    pub(crate) fn slots(&self) -> &Slots {
        &self.slots
    }

    /// The correlations over correlation `c` (chained correlations), each
    /// with the position of its reference to `c`.
    pub fn chained_into(&self, c: usize) -> &[(usize, u16)] {
        &self.chained_into[c]
    }

    /// Whether any rule keeps state (correlations or baselines).
    pub fn is_stateful(&self) -> bool {
        !self.correlations.is_empty() || self.rules.iter().any(|r| r.baseline.is_some())
    }

    /// Call `on_match` with each rule that matches `record`.
    pub fn evaluate<'e>(&'e self, record: &Record<'_>, mut on_match: impl FnMut(&'e Rule)) {
        self.evaluate_indexed(record, |_, rule| on_match(rule));
    }

    /// Call `on_match` with the position and rule of each match.
    pub fn evaluate_indexed<'e>(
        &'e self,
        record: &Record<'_>,
        on_match: impl FnMut(usize, &'e Rule),
    ) {
        self.evaluate_fields(&self.fields(record), on_match);
    }

    /// `record` as this engine's rules see it, without a cache: the
    /// reference [`Engine::evaluate_fields`] answers as (derived fields that
    /// need the policy's facts included).
    pub fn event<'e, 'r, 'a>(&'e self, record: &'r Record<'a>) -> EngineEvent<'e, 'r, 'a> {
        EngineEvent {
            record: RecordEvent(record),
            trusted_accounts: self.fields.trusted_accounts.as_deref(),
        }
    }

    /// An empty per-record field cache over `record`: hand it to
    /// [`Engine::evaluate_fields`], then read the fields a match needs
    /// (group-by and value fields) through its `rsigma_eval::Event`
    /// implementation, so a path the rules already read is not looked up
    /// again. The answers are [`RecordEvent`]'s.
    pub fn fields<'e, 'r, 'a>(&'e self, record: &'r Record<'a>) -> Fields<'e, 'r, 'a> {
        Fields::new(&self.fields, record)
    }

    /// [`Engine::evaluate_indexed`] over a cache from [`Engine::fields`]
    /// (of this engine: a cache from another engine's table answers the
    /// wrong paths).
    pub fn evaluate_fields<'e>(
        &'e self,
        fields: &Fields<'_, '_, '_>,
        mut on_match: impl FnMut(usize, &'e Rule),
    ) {
        let record = fields.event().0;
        let name = record.event_name().unwrap_or("");
        let source = record.event_source().unwrap_or("");
        self.dispatch.candidates(name, source, |i| {
            let i = i as usize;
            let rule = &self.rules[i];
            if self.programs[i].matches(&rule.compiled, fields) {
                on_match(i, rule);
            }
        });
    }

    /// Like [`Engine::evaluate`] but trying every rule, ignoring the index.
    /// For measuring the index and checking that it hides nothing.
    pub fn evaluate_all<'e>(&'e self, record: &Record<'_>, mut on_match: impl FnMut(&'e Rule)) {
        let fields = self.fields(record);
        for (rule, program) in self.rules.iter().zip(&self.programs) {
            if program.matches(&rule.compiled, &fields) {
                on_match(rule);
            }
        }
    }

    /// The single-event findings `record` produces (rules that generate
    /// findings of their own; correlations and baselines need a [`Session`]).
    pub fn findings(&self, record: &Record<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        self.evaluate(record, |rule| {
            if rule.generate {
                out.push(Finding::from_record(rule, record))
            }
        });
        out
    }

    /// How many rules are tried on every record (those the index cannot route).
    pub fn unrouted_rules(&self) -> usize {
        self.dispatch.always_count()
    }
}
