//! Every simulated attack is found by the built-in pack at medium or higher;
//! benign activity, even a lot of it, makes no finding at medium or higher.

use trailwarden::builtin::builtin_rules;
use trailwarden::simulate::{example_policy_yaml, records, SimOptions, SCENARIOS};
use trailwarden::synth::record_to_string;
use trailwarden_cloudtrail::Record;
use trailwarden_engine::{Engine, Finding, Level, MemoryStore, Policy, RuleSetBuilder, Session};

fn engine() -> Engine {
    let policy = Policy::from_yaml("policy.example.yaml", example_policy_yaml()).unwrap();
    let mut b = RuleSetBuilder::with_policy(policy);
    for (path, text) in builtin_rules() {
        b.add_yaml(path, text);
    }
    let set = b.build();
    assert!(set.problems.is_empty(), "{:#?}", set.problems);
    assert!(
        set.notes.is_empty(),
        "every rule runs with the example policy: {:#?}",
        set.notes
    );
    Engine::from_set(set)
}

/// The findings of one scenario, processed as one log object.
fn findings(engine: &Engine, scenario: &str, background: usize) -> Vec<Finding> {
    let options = SimOptions {
        background,
        ..SimOptions::default()
    };
    let mut out = Vec::new();
    let mut session = Session::new(engine);
    for value in records(scenario, &options).unwrap() {
        let text = record_to_string(&value);
        let record = Record::parse(&text).unwrap();
        session.record(&record, &mut |f| out.push(f));
    }
    out.extend(session.flush(&mut MemoryStore::new()).unwrap());
    out
}

#[test]
fn every_attack_scenario_is_detected_at_medium_or_higher() {
    let engine = engine();
    let mut missed = Vec::new();
    for (name, _) in SCENARIOS.iter().filter(|(n, _)| *n != "benign") {
        let found = findings(&engine, name, 500);
        let serious: Vec<String> = found
            .iter()
            .filter(|f| f.level >= Level::Medium)
            .map(|f| format!("{} ({})", f.rule_title, f.level))
            .collect();
        eprintln!("{name}: {serious:?}");
        if serious.is_empty() {
            missed.push(*name);
        }
    }
    assert!(
        missed.is_empty(),
        "not detected at medium or higher: {missed:?}"
    );
}

#[test]
fn benign_background_makes_no_finding_at_medium_or_higher() {
    let engine = engine();
    let found = findings(&engine, "benign", 30_000);
    let serious: Vec<String> = found
        .iter()
        .filter(|f| f.level >= Level::Medium)
        .map(|f| format!("{}: {} {:?}", f.rule_title, f.event_name, f.principal))
        .collect();
    assert!(serious.is_empty(), "{serious:#?}");
}

/// The lifecycle-configuration backdoor is a notebook takeover: the
/// notebook stopped, given the script, started and opened. The sequence is
/// found once, at high, beside the script's own rule.
#[test]
fn the_notebook_backdoor_is_found_as_a_takeover_sequence() {
    let engine = engine();
    let found = findings(&engine, "sagemaker-lifecycle-backdoor", 500);
    let takeover: Vec<&Finding> = found
        .iter()
        .filter(|f| f.rule_title.starts_with("SageMaker Notebook Takeover"))
        .collect();
    assert_eq!(
        takeover.len(),
        1,
        "{:?}",
        found.iter().map(|f| &f.rule_title).collect::<Vec<_>>()
    );
    assert_eq!(takeover[0].level, Level::High);
}

/// The scenarios of stolen instance credentials, an outside-account
/// backdoor and a root sign-in without MFA are each found by the rules
/// written for them, at high (medium for the missing MFA), and the stolen
/// credentials make one finding for their hour, not one per call.
#[test]
fn each_scenario_is_found_by_the_rules_written_for_it() {
    let engine = engine();
    for (scenario, expected) in [
        (
            "instance-credential-theft",
            &[(
                "EC2 Instance Credentials Used From Outside the Organisation's Networks",
                Level::High,
            )][..],
        ),
        (
            "outside-account-backdoor",
            &[
                ("KMS Grant Created for an Untrusted Account", Level::High),
                ("KMS Key Policy Grants an Untrusted Account", Level::High),
                (
                    "IAM Role Trust Policy Grants an Untrusted Account",
                    Level::High,
                ),
            ],
        ),
        (
            "root-console-no-mfa",
            &[
                ("Root User Signed In to the Console", Level::High),
                (
                    "Console Sign-In Without MFA by an IAM User or the Root User",
                    Level::Medium,
                ),
                ("Access Key Created for the Root User", Level::High),
            ],
        ),
    ] {
        let found = findings(&engine, scenario, 500);
        for (title, level) in expected {
            let of_rule: Vec<&Finding> = found.iter().filter(|f| f.rule_title == *title).collect();
            assert_eq!(
                of_rule.len(),
                1,
                "{scenario}: {title}: {:?}",
                found.iter().map(|f| &f.rule_title).collect::<Vec<_>>()
            );
            assert_eq!(of_rule[0].level, *level, "{scenario}: {title}");
        }
    }
}
