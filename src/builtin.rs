//! The built-in rule pack, embedded at build time from `rules/`.

include!(concat!(env!("OUT_DIR"), "/builtin_rules.rs"));

/// The built-in rules as (path under `rules/`, YAML text).
pub fn builtin_rules() -> impl Iterator<Item = (&'static str, &'static str)> {
    BUILTIN_RULES.iter().copied()
}
