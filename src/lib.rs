//! The `trailwarden` command-line tool as a library: the subcommands, the
//! output formats and the synthetic CloudTrail generator used by `simulate`,
//! the benchmarks and the sample data.

pub mod synth;
