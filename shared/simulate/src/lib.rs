//! Simulated CloudTrail logs: [`synth`] generates realistic benign records
//! (services, principals, user agents, sessions over a day's rhythm), and
//! [`simulate`] weaves attack scenarios into that background and writes
//! them as CloudTrail log files. `trailwarden simulate` writes them; the
//! benchmarks and the scenario tests read them.

pub mod simulate;
pub mod synth;
