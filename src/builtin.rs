//! The built-in rule pack (embedded in the engine crate from `rules/`).

pub use trailwarden_engine::builtin::builtin_rules;
