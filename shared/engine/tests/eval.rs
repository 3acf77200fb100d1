//! The engine's own evaluation gives exactly rsigma's verdicts: for every
//! (rule, record), a match through `Engine::evaluate_all` and
//! `Engine::evaluate` if and only if `rsigma_eval::evaluate_rule` matches.
//! The per-record field cache answers every path as the record does.
//!
//! Rules: the built-in pack (with the example policy, so every rule runs)
//! and, where `../shared/corpus` is present, the SigmaHQ CloudTrail rules
//! with it. Records: the samples under `events/` and, where present, the
//! corpus logs (Invictus dataset, Stratus Red Team detonations).

use std::path::{Path, PathBuf};

use rsigma_eval::{CompiledDetection, Event};
use trailwarden_cloudtrail::{read_object, ReaderOptions, Record, RecordReject, RecordSink};
use trailwarden_engine::builtin::builtin_rules;
use trailwarden_engine::{Engine, Policy, RuleSetBuilder};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
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

/// Every record's text, and how many values the reader rejected.
#[derive(Default)]
struct Texts {
    records: Vec<String>,
    rejects: usize,
}

impl RecordSink for Texts {
    fn record(&mut self, _: u64, record: &Record<'_>) {
        self.records.push(record.raw().to_owned());
    }
    fn reject(&mut self, _: RecordReject) {
        self.rejects += 1;
    }
}

fn read_dir(dir: &Path, texts: &mut Texts) {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.ends_with(".json") || name.ends_with(".json.gz")
        })
        .collect();
    paths.sort();
    for path in paths {
        let file = std::fs::File::open(&path).unwrap();
        read_object(file, &ReaderOptions::default(), texts).unwrap();
    }
}

fn builder_with_pack() -> RuleSetBuilder {
    let policy = Policy::from_file(&root().join("policy.example.yaml")).unwrap();
    let mut b = RuleSetBuilder::with_policy(policy);
    for (path, text) in builtin_rules() {
        b.add_yaml(path, text);
    }
    b
}

fn build(b: RuleSetBuilder) -> Engine {
    let set = b.build();
    assert!(set.problems.is_empty(), "{:#?}", set.problems);
    Engine::from_set(set)
}

fn item_fields(detection: &CompiledDetection, out: &mut Vec<String>) {
    match detection {
        CompiledDetection::AllOf(items) => out.extend(items.iter().filter_map(|i| i.field.clone())),
        CompiledDetection::AnyOf(parts) | CompiledDetection::And(parts) => {
            parts.iter().for_each(|p| item_fields(p, out))
        }
        _ => {}
    }
}

/// The paths the engine reads (rule fields, group-by and value fields) and
/// a few it does not.
fn paths_of(engine: &Engine) -> Vec<String> {
    let mut paths: Vec<String> = ["userIdentity", "resources.ARN", "custom.x", "tlsDetails"]
        .map(String::from)
        .to_vec();
    for rule in engine.rules() {
        rule.compiled
            .detections
            .values()
            .for_each(|d| item_fields(d, &mut paths));
        if let Some(b) = &rule.baseline {
            paths.extend(b.group_by.iter().chain(&b.fields).cloned());
        }
    }
    for c in engine.correlations() {
        paths.extend(c.group_by.iter().cloned());
        paths.extend(c.condition.field.iter().flatten().cloned());
    }
    paths.sort();
    paths.dedup();
    paths
}

/// Compare every (rule, record); the number of matches.
fn assert_same_verdicts(engine: &Engine, records: &[String]) -> usize {
    let rules = engine.rules();
    let paths = paths_of(engine);
    let mut matches = 0;
    for text in records {
        let record = Record::parse(text).unwrap();
        let event = engine.event(&record);
        let expected: Vec<bool> = rules
            .iter()
            .map(|r| rsigma_eval::evaluate_rule(&r.compiled, &event).is_some())
            .collect();
        let mut all = vec![false; rules.len()];
        engine.evaluate_all(&record, |r| {
            let i = rules.iter().position(|x| std::ptr::eq(x, r)).unwrap();
            all[i] = true;
        });
        let mut indexed = vec![false; rules.len()];
        engine.evaluate_indexed(&record, |i, _| indexed[i] = true);
        // The cache answers every path as the record does, before and after
        // the rules have read it.
        let fields = engine.fields(&record);
        for path in paths.iter().step_by(2) {
            assert_eq!(fields.get_field(path), event.get_field(path), "{path}");
        }
        let mut cached = vec![false; rules.len()];
        engine.evaluate_fields(&fields, |i, _| cached[i] = true);
        assert_eq!(cached, indexed);
        for path in &paths {
            assert_eq!(fields.get_field(path), event.get_field(path), "{path}");
        }
        for (i, rule) in rules.iter().enumerate() {
            assert_eq!(
                all[i], expected[i],
                "evaluate_all: rule {} ({}) on {text}",
                rule.meta.title, rule.meta.source
            );
            assert_eq!(
                indexed[i], expected[i],
                "evaluate: rule {} ({}) on {text}",
                rule.meta.title, rule.meta.source
            );
        }
        matches += expected.iter().filter(|m| **m).count();
    }
    matches
}

#[test]
fn engine_verdicts_equal_rsigma_on_samples_and_corpus() {
    let mut texts = Texts::default();
    read_dir(&root().join("events"), &mut texts);
    assert!(!texts.records.is_empty(), "events/ has sample files");
    for name in ["invictus-aws-dataset", "stratus-detonation-logs"] {
        if let Some(dir) = corpus(name) {
            read_dir(&dir, &mut texts);
        }
    }
    eprintln!(
        "{} records ({} rejected by the reader)",
        texts.records.len(),
        texts.rejects
    );

    let pack = build(builder_with_pack());
    let matches = assert_same_verdicts(&pack, &texts.records);
    assert!(matches > 0, "the pack matches something");
    eprintln!("pack: {} rules, {matches} matches", pack.rules().len());

    if let Some(dir) = corpus("sigmahq-cloudtrail-rules") {
        let mut b = builder_with_pack();
        b.add_path(&dir);
        let both = build(b);
        let matches = assert_same_verdicts(&both, &texts.records);
        eprintln!(
            "pack + SigmaHQ: {} rules, {matches} matches",
            both.rules().len()
        );
    }
}

/// A list of case-insensitive `contains` patterns (searched with finders
/// over the lowered text) gives rsigma's verdicts on user agents of every
/// case, with non-ASCII text, empty, and longer than the text lowered on
/// the stack.
#[test]
fn contains_lists_give_rsigmas_verdicts_whatever_the_case() {
    let mut b = RuleSetBuilder::new();
    b.add_yaml(
        "contains.yml",
        r#"
title: Attack tools
id: 6a1c2e4f-0000-4000-8000-00000000c001
logsource: {product: aws, service: cloudtrail}
detection:
  tool:
    userAgent|contains:
      - kali
      - Stratus-Red-Team
      - TRUFFLEHOG
      - é-x
      - "\u212Aelvin"
  one:
    userAgent|contains: Parrot
  condition: tool or one
level: low
"#,
    );
    let engine = build(b);
    let long = "x".repeat(600);
    let agents = [
        "Boto3/1.34 kali-linux".to_owned(),
        "BOTO3 KALI".to_owned(),
        "aws-cli/2 Stratus-Red-Team/2".to_owned(),
        "aws-cli/2 STRATUS-RED-TEAM".to_owned(),
        "TruffleHog/3".to_owned(),
        "x é-x".to_owned(),
        "x É-X".to_owned(),
        "x E-X".to_owned(),
        "kelvin".to_owned(),
        "\u{212A}ELVIN".to_owned(),
        "ParrotOS".to_owned(),
        "plain".to_owned(),
        String::new(),
        format!("{long}KaLi"),
        format!("{long}k ali"),
    ];
    let records: Vec<String> = agents
        .iter()
        .enumerate()
        .map(|(i, ua)| {
            format!(
                r#"{{"eventVersion":"1.09","eventTime":"2026-11-02T08:00:00Z","eventSource":"sts.amazonaws.com","eventName":"GetCallerIdentity","eventID":"e{i}","userAgent":{}}}"#,
                serde_json::to_string(ua).unwrap()
            )
        })
        .collect();
    let matched = assert_same_verdicts(&engine, &records);
    assert!(matched >= 8, "{matched}");
}
