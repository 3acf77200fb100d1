//! The `trailwarden` command: its subcommands, one module each under
//! `cmd/`, and what they share in `cmd/mod.rs`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use trailwarden::say;

mod cmd;

use cmd::digest::{digest, report, DigestArgs, ReportArgs};
use cmd::findings::{findings, FindingsArgs};
use cmd::replay::{replay, ReplayArgs};
use cmd::rules::{rules_list, rules_test, rules_validate, RulesCommand};
use cmd::scan::{scan, ScanArgs};
use cmd::simulate::{simulate, SimulateArgs};
use cmd::sweep::{sweep, SweepArgs};

/// CloudTrail analyzer for AI governance: Sigma rules over Bedrock, SageMaker,
/// training data, IAM, KMS and CloudTrail activity.
#[derive(Parser)]
#[command(name = "trailwarden", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Scan CloudTrail files (gzip or plain; S3 delivery files, JSON lines,
    /// JSON arrays, EventBridge events) and report findings.
    Scan(ScanArgs),
    /// List, validate and test rules.
    #[command(subcommand)]
    Rules(RulesCommand),
    /// List AI principals idle for N days or more (from the dormant
    /// baselines' state), as findings.
    Sweep(SweepArgs),
    /// Query stored findings; show or acknowledge one.
    Findings(FindingsArgs),
    /// Write a realistic CloudTrail log file (S3 delivery format, gzip) for an
    /// attack scenario woven into benign background activity.
    Simulate(SimulateArgs),
    /// Backfill history: run CloudTrail objects under an S3 prefix through
    /// a deployment's engine and tables (for a new rule or deployment;
    /// needs the `aws` feature).
    Replay(ReplayArgs),
    /// The audit digest of a window: findings by level, rule and account,
    /// the most severe, AI principals and models seen for the first time,
    /// idle AI principals, and the pipeline's health.
    Digest(DigestArgs),
    /// One self-contained HTML page of a window's findings (a timeline by
    /// level, by rule and account, AI activity by principal, correlation
    /// evidence), to open in a browser or send on.
    Report(ReportArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Scan(args) => scan(args),
        Command::Rules(RulesCommand::List(args)) => rules_list(args),
        Command::Rules(RulesCommand::Validate(args)) => rules_validate(args),
        Command::Rules(RulesCommand::Test { paths }) => rules_test(paths),
        Command::Sweep(args) => sweep(args),
        Command::Findings(args) => findings(args),
        Command::Simulate(args) => simulate(args),
        Command::Replay(args) => replay(args),
        Command::Digest(args) => digest(args),
        Command::Report(args) => report(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            say!("trailwarden: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
