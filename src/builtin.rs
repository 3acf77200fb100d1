//! The built-in rule pack (embedded in the engine crate from `rules/`) and
//! its test events (embedded here, for `rules test`).

pub use trailwarden_engine::builtin::builtin_rules;

include!(concat!(env!("OUT_DIR"), "/builtin_rule_tests.rs"));

/// The built-in pack's test files as (path under `rules/`, JSON text):
/// `x.test.json` beside each `x.yml` (see [`crate::ruletest`]).
pub fn builtin_rule_tests() -> impl Iterator<Item = (&'static str, &'static str)> {
    BUILTIN_RULE_TESTS.iter().copied()
}
