//! The rule packs: every built-in rule passes its own test events, has a
//! positive and a near-miss negative case, and the dispatch index never hides
//! a match. The corpus checks (SigmaHQ rules, real CloudTrail files) read
//! `../shared/corpus` and say so when it is absent.

use std::path::{Path, PathBuf};

use trailwarden::builtin::builtin_rules;
use trailwarden::ruletest::{run_rule_file, test_file_for, TestFile};
use trailwarden_cloudtrail::{read_object, ReaderOptions, Record, RecordReject, RecordSink};
use trailwarden_engine::{rules::rule_files, Engine, Level, Policy, RuleSetBuilder};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn corpus(name: &str) -> Option<PathBuf> {
    let path = root().join("../shared/corpus").join(name);
    if path.is_dir() {
        Some(path)
    } else {
        eprintln!(
            "SKIPPED: {} is absent (the shared corpus is not part of a clone)",
            path.display()
        );
        None
    }
}

/// The built-in pack with the example policy, so that every rule runs.
fn builtin_engine() -> Engine {
    let policy = Policy::from_file(&root().join("policy.example.yaml")).unwrap();
    let mut b = RuleSetBuilder::with_policy(policy);
    for (path, text) in builtin_rules() {
        b.add_yaml(path, text);
    }
    let set = b.build();
    assert!(
        set.problems.is_empty(),
        "built-in rule problems: {:#?}",
        set.problems
    );
    assert!(
        set.notes.is_empty(),
        "built-in rules set aside: {:#?}",
        set.notes
    );
    Engine::from_set(set)
}

#[test]
fn every_builtin_rule_passes_its_test_events() {
    let files = rule_files(&root().join("rules")).unwrap();
    assert!(files.len() >= 20, "the pack has {} rules", files.len());
    let mut failures = Vec::new();
    for file in &files {
        let report = run_rule_file(file);
        if !report.passed() {
            failures.push(format!("{report:#?}"));
        }
        let tests: TestFile =
            serde_json::from_str(&std::fs::read_to_string(test_file_for(file)).unwrap()).unwrap();
        assert!(
            tests.cases.iter().any(|c| c.expect > 0),
            "{}: no positive case",
            file.display()
        );
        assert!(
            tests.cases.iter().any(|c| c.expect == 0),
            "{}: no near-miss negative case",
            file.display()
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn builtin_rules_are_complete_and_unique() {
    let engine = builtin_engine();
    let mut ids = std::collections::HashSet::new();
    for rule in engine.rules() {
        assert!(ids.insert(&rule.meta.id), "duplicate id {}", rule.meta.id);
    }
    for c in engine.correlations() {
        assert!(ids.insert(&c.meta.id), "duplicate id {}", c.meta.id);
    }
    // What makes findings (single-event rules, baselines, correlations)
    // explains itself and says what to do.
    let finding_makers = engine
        .rules()
        .iter()
        .filter(|r| r.generate || r.baseline.is_some())
        .map(|r| &r.meta)
        .chain(engine.correlations().iter().map(|c| &c.meta));
    for meta in finding_makers {
        assert!(
            !meta.description.is_empty(),
            "{}: no description",
            meta.source
        );
        assert!(
            meta.response.is_some(),
            "{}: no response guide",
            meta.source
        );
        assert!(!meta.tags.is_empty(), "{}: no tags", meta.source);
    }
    // Nearly every rule is routed by the dispatch index; the few that look
    // at every record (an access key's every call, a Bedrock API key user's
    // calls outside Bedrock, attack tools' user agents, instance
    // credentials' every call) are known and few, and each fails on its
    // first, cached field for most records.
    let unrouted: Vec<&str> = engine
        .rules()
        .iter()
        .filter(|r| matches!(r.route, trailwarden_engine::Route::Always))
        .map(|r| r.meta.title.as_str())
        .collect();
    assert!(
        unrouted.len() <= 6,
        "rules tried on every record: {unrouted:#?}"
    );
}

/// Every record of the input, collected as text (for comparing engines).
struct Texts(Vec<String>);

impl RecordSink for Texts {
    fn record(&mut self, _: u64, record: &Record<'_>) {
        self.0.push(record.raw().to_owned());
    }
    fn reject(&mut self, reject: RecordReject) {
        panic!("unexpected reject {reject:?}");
    }
}

fn records_in(dir: &Path) -> Vec<String> {
    let mut texts = Texts(Vec::new());
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy();
        if name.ends_with(".json") || name.ends_with(".json.gz") {
            let file = std::fs::File::open(&path).unwrap();
            read_object(file, &ReaderOptions::default(), &mut texts).unwrap();
        }
    }
    texts.0
}

/// Matches (rule id, event index) with and without the index must be equal.
fn assert_dispatch_hides_nothing(engine: &Engine, records: &[String]) -> usize {
    let (mut with, mut without) = (Vec::new(), Vec::new());
    for (i, text) in records.iter().enumerate() {
        let record = Record::parse(text).unwrap();
        engine.evaluate(&record, |r| with.push((r.meta.id.clone(), i)));
        engine.evaluate_all(&record, |r| without.push((r.meta.id.clone(), i)));
    }
    with.sort();
    without.sort();
    assert_eq!(with, without);
    with.len()
}

#[test]
fn dispatch_index_hides_no_match_on_the_samples() {
    let records = records_in(&root().join("events"));
    assert!(!records.is_empty(), "events/ has sample files");
    let matches = assert_dispatch_hides_nothing(&builtin_engine(), &records);
    assert!(matches > 0, "the samples show findings");
}

#[test]
fn sigmahq_rules_load_and_find_the_corpus_trail_tampering() {
    let (Some(rules), Some(data)) = (
        corpus("sigmahq-cloudtrail-rules"),
        corpus("invictus-aws-dataset"),
    ) else {
        return;
    };
    let mut b = RuleSetBuilder::new();
    b.add_path(&rules);
    let set = b.build();
    assert!(set.problems.is_empty(), "{:#?}", set.problems);
    assert!(set.notes.is_empty(), "{:#?}", set.notes);
    assert_eq!(set.rules.len(), 57);
    let engine = Engine::from_set(set);
    let records = records_in(&data);
    assert_eq!(records.len(), 2900);
    assert_dispatch_hides_nothing(&engine, &records);

    let mut important = Vec::new();
    for text in &records {
        let record = Record::parse(text).unwrap();
        for f in engine.findings(&record) {
            if f.rule_title == "AWS CloudTrail Important Change" {
                important.push(f.event_name);
            }
        }
    }
    important.sort();
    assert_eq!(
        important,
        [
            "DeleteTrail",
            "DeleteTrail",
            "DeleteTrail",
            "StopLogging",
            "StopLogging",
            "StopLogging"
        ]
    );
}

#[test]
fn builtin_pack_finds_the_corpus_trail_tampering() {
    let Some(data) = corpus("invictus-aws-dataset") else {
        return;
    };
    let engine = builtin_engine();
    let records = records_in(&data);
    assert_dispatch_hides_nothing(&engine, &records);
    let mut names = Vec::new();
    for text in &records {
        let record = Record::parse(text).unwrap();
        // The trail rule's findings (the corpus's attack tool is found
        // by its user agent too).
        for f in engine.findings(&record) {
            if f.rule_title == "CloudTrail Logging Stopped or Trail Deleted" {
                names.push(f.event_name);
            }
        }
    }
    for name in ["StopLogging", "DeleteTrail"] {
        assert_eq!(
            names.iter().filter(|n| *n == name).count(),
            3,
            "{name} in {names:?}"
        );
    }
}

/// Published Stratus Red Team detonation logs the pack finds at medium or
/// higher, each by the rule named (the console sign-in is an IAM user's, so
/// no root rule fires on it).
#[test]
fn builtin_pack_finds_published_detonations() {
    let Some(dir) = corpus("stratus-detonation-logs") else {
        return;
    };
    let engine = builtin_engine();
    for (file, title) in [
        (
            "aws.initial-access.console-login-without-mfa.json",
            "Console Sign-In Without MFA by an IAM User or the Root User",
        ),
        (
            "aws.defense-evasion.organizations-leave.json",
            "Account Left or Removed from the AWS Organization",
        ),
        // The trust policy names an outside account (read from the
        // policy document: derived.policy.untrustedAccounts).
        (
            "aws.persistence.iam-backdoor-role.json",
            "IAM Role Trust Policy Grants an Untrusted Account",
        ),
        (
            "aws.persistence.iam-create-backdoor-role.json",
            "IAM Role Trust Policy Grants an Untrusted Account",
        ),
        (
            "aws.persistence.iam-create-user-login-profile.json",
            "Console Password Set for Another IAM User",
        ),
        (
            "aws.privilege-escalation.iam-update-user-login-profile.json",
            "Console Password Set for Another IAM User",
        ),
    ] {
        let mut texts = Texts(Vec::new());
        read_object(
            std::fs::File::open(dir.join(file)).unwrap(),
            &ReaderOptions::default(),
            &mut texts,
        )
        .unwrap();
        let found: Vec<(String, Level)> = texts
            .0
            .iter()
            .flat_map(|text| engine.findings(&Record::parse(text).unwrap()))
            .map(|f| (f.rule_title, f.level))
            .collect();
        assert!(
            found
                .iter()
                .any(|(t, level)| t == title && *level >= Level::Medium),
            "{file}: {found:?}"
        );
        assert!(
            !found
                .iter()
                .any(|(t, _)| t.contains("Root") && !t.contains("or the Root User")),
            "{file}: {found:?}"
        );
    }
}

/// The pack's ATT&CK tags are in the version SigmaHQ uses (v19): tactics
/// from its list, no v18 `defense-evasion`, no T1562 (now T1685); and where
/// the shared corpus is present, every tactic the pack uses appears in
/// SigmaHQ's CloudTrail rules or in the v19 list below.
#[test]
fn builtin_attack_tags_follow_attack_v19() {
    let engine = builtin_engine();
    let metas = engine
        .rules()
        .iter()
        .map(|r| &r.meta)
        .chain(engine.correlations().iter().map(|c| &c.meta));
    for meta in metas {
        for tag in meta.tags.iter().filter_map(|t| t.strip_prefix("attack.")) {
            let technique = tag.strip_prefix('t').is_some_and(|n| {
                let (main, sub) = n.split_once('.').unwrap_or((n, "001"));
                main.len() == 4
                    && sub.len() == 3
                    && main.bytes().chain(sub.bytes()).all(|b| b.is_ascii_digit())
            });
            assert!(
                technique || trailwarden::lint::ATTACK_TACTICS.contains(&tag),
                "{}: attack.{tag} is not an ATT&CK v19 tactic or technique",
                meta.title
            );
            assert!(
                !tag.starts_with("t1562"),
                "{}: attack.{tag} is T1685 in v19",
                meta.title
            );
        }
    }
}

/// Replication out of the organisation is covered whatever facts the
/// policy gives: with none, the any-bucket rule reports every bucket at
/// medium; with `training_buckets` alone (no `trusted_accounts`), a
/// training bucket is reported at high by the training rule, and the
/// any-bucket rule leaves it out; with both, a trusted destination is not
/// reported.
#[test]
fn replication_out_of_the_organisation_is_seen_with_any_facts() {
    let cases: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            root()
                .join("rules/training-data/training_bucket_replication_to_other_account.test.json"),
        )
        .unwrap(),
    )
    .unwrap();
    // Training data replicated to 777788889999, with an ownership override.
    let event = cases["cases"][0]["events"][0].to_string();
    let record = Record::parse(&event).unwrap();
    let found = |policy: &str| -> Vec<(Level, String)> {
        let mut b = RuleSetBuilder::with_policy(Policy::from_yaml("test", policy).unwrap());
        for (path, text) in builtin_rules() {
            b.add_yaml(path, text);
        }
        let engine = Engine::from_set(b.build());
        let mut out: Vec<(Level, String)> = engine
            .findings(&record)
            .into_iter()
            .map(|f| (f.level, f.rule_title))
            .collect();
        out.sort();
        out
    };
    assert_eq!(
        found("{}"),
        [(
            Level::Medium,
            "S3 Bucket Replicated to Another Account".to_owned()
        )]
    );
    let training = "training_buckets: [acme-ml-training-data]";
    assert_eq!(
        found(training),
        [(
            Level::High,
            "Training Data Bucket Replicated to Another Account".to_owned()
        )]
    );
    assert!(found(&format!("{training}\ntrusted_accounts: ['777788889999']")).is_empty());
}

/// A fact written as an empty list runs the rules that use it only to leave
/// things out (`trusted_accounts: []` trusts no outside account), and a
/// rule that needs one of its values to match is set aside with a note
/// saying so, never run silently matching nothing.
#[test]
fn a_rule_an_empty_fact_leaves_nothing_to_match_is_set_aside_with_a_note() {
    let policy = Policy::from_yaml(
        "policy.yaml",
        "training_buckets: []\ntrusted_accounts: []\nknown_networks: []\n",
    )
    .unwrap();
    let mut b = RuleSetBuilder::with_policy(policy);
    for (path, text) in builtin_rules() {
        b.add_yaml(path, text);
    }
    b.add_yaml(
        "literal.yml",
        "title: Nothing Listed\nid: 6f0e7a52-3c1d-4b8e-9a2f-0d4c6b8e1a3f\nlogsource: {product: aws, service: cloudtrail}\n\
         detection:\n  selection:\n    eventName: []\n  condition: selection\nlevel: low\n",
    );
    let set = b.build();
    assert!(set.problems.is_empty(), "{:#?}", set.problems);
    let note = |title: &str| {
        set.notes
            .iter()
            .find(|n| n.rule == title)
            .map(|n| n.reason.clone())
    };
    let made_public = note("Training Data Bucket Made Public").expect("set aside");
    assert!(
        made_public.contains("nothing to match") && made_public.contains("%training_buckets%"),
        "{made_public}"
    );
    // A correlation over a building block that cannot match is not run either.
    let bulk = note("Bulk Read of Training Data from One Address").expect("set aside");
    assert!(bulk.contains("not run"), "{bulk}");
    assert!(note("Nothing Listed")
        .expect("set aside")
        .contains("can never be true"));
    // Rules that use the empty facts only to leave things out still run.
    let runs = |title: &str| {
        set.rules.iter().any(|r| r.meta.title == title)
            || set.correlations.iter().any(|c| c.meta.title == title)
    };
    for title in [
        "KMS Key Policy Grants an Untrusted Account",
        "S3 Bucket Made Public",
        "Access Key Used from Several Source IP Addresses Within an Hour",
        "Bulk Read of an S3 Bucket from Outside the Organisation's Networks",
    ] {
        assert!(runs(title), "{title} should run: {:?}", note(title));
    }
}
