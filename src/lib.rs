//! The `trailwarden` command-line tool as a library: the subcommands and
//! the output formats; the synthetic CloudTrail generator used by
//! `simulate`, the benchmarks and the sample data is the
//! `trailwarden-simulate` crate, re-exported here.

pub mod builtin;
#[cfg(feature = "aws")]
pub mod cloud;
pub mod digest;
pub mod lint;
pub mod output;
pub mod report;
pub mod ruletest;
pub mod scan;
pub mod store;
pub mod terminal;

pub use trailwarden_simulate::{simulate, synth};
