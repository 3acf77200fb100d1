//! The `trailwarden` command-line tool as a library: the subcommands, the
//! output formats and the synthetic CloudTrail generator used by `simulate`,
//! the benchmarks and the sample data.

pub mod builtin;
#[cfg(feature = "aws")]
pub mod cloud;
pub mod digest;
pub mod lint;
pub mod output;
pub mod report;
pub mod ruletest;
pub mod scan;
pub mod simulate;
pub mod store;
pub mod synth;
pub mod terminal;
