//! `ARCHITECTURE.md` stays true of the code: every source file it names
//! exists where its section says (a path from the repository's root, or a
//! bare name among the modules of its section's crate), and every module of
//! a crate but its root (`lib.rs`) is named in that crate's section. A module added, renamed or removed without the
//! map following fails here, with the line to change.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The crate sections of the code map: heading text → the `src/`
/// directories their modules live in.
fn section_dirs(heading: &str) -> Option<Vec<PathBuf>> {
    let root = root();
    let dirs = if heading.starts_with("`shared/cloudtrail`") {
        vec![root.join("shared/cloudtrail/src")]
    } else if heading.starts_with("`shared/engine`") {
        vec![root.join("shared/engine/src")]
    } else if heading.starts_with("`shared/aws`") {
        vec![root.join("shared/aws/src")]
    } else if heading.starts_with("`shared/simulate`") {
        vec![root.join("shared/simulate/src")]
    } else if heading.starts_with("`functions/*`") {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(root.join("functions"))
            .unwrap()
            .map(|e| e.unwrap().path().join("src"))
            .filter(|p| p.is_dir())
            .collect();
        dirs.sort();
        dirs
    } else if heading.starts_with("`trailwarden`") {
        vec![root.join("src")]
    } else {
        return None;
    };
    Some(dirs)
}

/// A crate's modules: the `.rs` files directly in `dir`, and each
/// directory module as its `NAME/mod.rs` or `NAME.rs` (which the map must
/// name).
fn modules(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            if e.path().is_dir() {
                // `src/x/` with `src/x.rs` beside it is named as `x.rs`.
                (!dir.join(format!("{name}.rs")).is_file()).then(|| format!("{name}/mod.rs"))
            } else {
                name.ends_with(".rs").then_some(name)
            }
        })
        .collect()
}

#[test]
fn the_code_map_names_every_module_and_only_modules_that_exist() {
    let text = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    let mut problems = Vec::new();
    // The section each line is in: a `### ` heading starts one, a `## `
    // heading ends it.
    let mut section_of_line: Vec<Option<usize>> = Vec::new();
    // (heading, its directories, the files named under it)
    let mut sections: Vec<(String, Option<Vec<PathBuf>>, BTreeSet<String>)> = Vec::new();
    let mut current = None;
    for line in text.lines() {
        if let Some(heading) = line.strip_prefix("### ") {
            sections.push((heading.to_owned(), section_dirs(heading), BTreeSet::new()));
            current = Some(sections.len() - 1);
        } else if line.starts_with("## ") || line.starts_with("# ") {
            current = None;
        }
        section_of_line.push(current);
    }
    // Code spans over the whole text (a span may run across a line end).
    let mut offset = 0;
    for (i, piece) in text.split('`').enumerate() {
        let line = text[..offset].matches('\n').count();
        offset += piece.len() + 1;
        if i % 2 == 0 {
            continue;
        }
        let name = piece.trim();
        if !name.ends_with(".rs") || name.contains(char::is_whitespace) {
            continue;
        }
        if name.contains('/') {
            // A directory module of the section's crate (`x/mod.rs`), or a
            // path from the repository's root.
            if let Some(Some(at)) = section_of_line.get(line) {
                let (_, dirs, named) = &mut sections[*at];
                if dirs.iter().flatten().any(|d| d.join(name).is_file()) {
                    named.insert(name.to_owned());
                    continue;
                }
                // A path from the root into the crate's own `src/` names
                // that module too (`src/cmd/mod.rs` names `cmd/mod.rs`).
                let path = root().join(name);
                if let Some(module) = dirs
                    .iter()
                    .flatten()
                    .find_map(|d| path.strip_prefix(d).ok())
                    .filter(|_| path.is_file())
                {
                    named.insert(module.to_string_lossy().into_owned());
                    continue;
                }
            }
            if !root().join(name).is_file() {
                problems.push(format!(
                    "ARCHITECTURE.md:{}: `{name}` does not exist",
                    line + 1
                ));
            }
            continue;
        }
        let Some(Some(at)) = section_of_line.get(line) else {
            continue;
        };
        let (heading, dirs, named) = &mut sections[*at];
        let Some(dirs) = dirs else { continue };
        named.insert(name.to_owned());
        // A module, or the crate's build script.
        let exists = |d: &PathBuf| {
            d.join(name).is_file() || (name == "build.rs" && d.with_file_name(name).is_file())
        };
        if !dirs.iter().any(exists) {
            problems.push(format!(
                "ARCHITECTURE.md:{}: `{name}` is not a module of {heading}",
                line + 1
            ));
        }
    }
    let crates: Vec<_> = sections
        .iter()
        .filter_map(|(h, dirs, named)| dirs.as_ref().map(|d| (h, d, named)))
        .collect();
    assert_eq!(crates.len(), 6, "the code map's crate sections moved");
    // Every shared crate has its section.
    for entry in std::fs::read_dir(root().join("shared")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if root()
            .join("shared")
            .join(&name)
            .join("Cargo.toml")
            .is_file()
            && !sections
                .iter()
                .any(|(h, _, _)| h.starts_with(&format!("`shared/{name}`")))
        {
            problems.push(format!(
                "shared/{name} has no section in ARCHITECTURE.md's code map"
            ));
        }
    }
    for (heading, dirs, named) in crates {
        for dir in dirs {
            for module in modules(dir) {
                // A crate's root is its section's subject.
                if module != "lib.rs" && !named.contains(&module) {
                    problems.push(format!(
                        "{}/{module} is not in ARCHITECTURE.md's section {heading}: say what it holds",
                        dir.strip_prefix(root()).unwrap().display()
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The backfill state machine (`statemachine/backfill.asl.json`) is a
/// Distributed Map over a JSON manifest in S3, in batches the ingest
/// function reads, its concurrency and tolerance from the execution's
/// input, its results written to S3; every `${…}` in it is one of the
/// template's `DefinitionSubstitutions`, and the input fields it reads are
/// the ones `replay --distributed` writes.
#[test]
fn the_backfill_state_machine_is_a_distributed_map_over_a_manifest() {
    let text = std::fs::read_to_string(root().join("statemachine/backfill.asl.json")).unwrap();
    let asl: serde_json::Value = serde_json::from_str(&text).unwrap();
    let start = asl["StartAt"].as_str().unwrap();
    let map = &asl["States"][start];
    assert_eq!(map["Type"], "Map");
    assert_eq!(map["End"], true);
    assert_eq!(
        map["ItemProcessor"]["ProcessorConfig"]["Mode"],
        "DISTRIBUTED"
    );
    assert_eq!(
        map["ItemReader"]["Resource"],
        "arn:aws:states:::s3:getObject"
    );
    assert_eq!(map["ItemReader"]["ReaderConfig"]["InputType"], "JSON");
    assert_eq!(
        map["ItemReader"]["Parameters"]["Bucket.$"],
        "$.manifest_bucket"
    );
    assert_eq!(map["ItemReader"]["Parameters"]["Key.$"], "$.manifest_key");
    let batch = &map["ItemBatcher"];
    let per_batch = batch["MaxItemsPerBatch"].as_u64().unwrap();
    assert!(
        (1..=1000).contains(&per_batch),
        "the ingest function takes at most 1,000"
    );
    assert_eq!(batch["BatchInput"]["bucket.$"], "$.bucket");
    assert_eq!(batch["BatchInput"]["rescan.$"], "$.rescan");
    assert_eq!(map["MaxConcurrencyPath"], "$.max_concurrency");
    assert_eq!(
        map["ToleratedFailurePercentagePath"],
        "$.tolerated_failure_percentage"
    );
    assert_eq!(
        map["ResultWriter"]["Resource"],
        "arn:aws:states:::s3:putObject"
    );
    let processor = &map["ItemProcessor"];
    let task = &processor["States"][processor["StartAt"].as_str().unwrap()];
    assert_eq!(task["Type"], "Task");
    assert_eq!(task["Resource"], "arn:aws:states:::lambda:invoke");
    assert_eq!(task["Parameters"]["FunctionName"], "${IngestFunctionArn}");
    assert_eq!(task["Parameters"]["Payload.$"], "$");
    assert_eq!(task["End"], true);
    assert!(task["Retry"].as_array().is_some_and(|r| !r.is_empty()));
    // Every substitution the definition uses is given by the template.
    let template = std::fs::read_to_string(root().join("template.yaml")).unwrap();
    let at = template
        .find("DefinitionUri: statemachine/backfill.asl.json")
        .unwrap();
    let substitutions = &template[at..template[at..]
        .find("Role:")
        .map_or(template.len(), |r| at + r)];
    let mut rest = text.as_str();
    let mut used = BTreeSet::new();
    while let Some(i) = rest.find("${") {
        let end = rest[i..].find('}').unwrap();
        used.insert(rest[i + 2..i + end].to_owned());
        rest = &rest[i + end..];
    }
    assert!(!used.is_empty());
    for name in used {
        assert!(
            substitutions.contains(&format!("{name}:")),
            "{name} is not in the template's DefinitionSubstitutions"
        );
    }
    // The input replay --distributed gives the execution.
    let replay = std::fs::read_to_string(root().join("src/cmd/replay.rs")).unwrap();
    for field in [
        "bucket",
        "manifest_bucket",
        "manifest_key",
        "rescan",
        "max_concurrency",
        "tolerated_failure_percentage",
    ] {
        assert!(
            replay.contains(&format!("\"{field}\":")),
            "replay does not give {field}"
        );
    }
}

/// Every alarm on one of trailwarden's own metrics (namespace
/// `trailwarden`, dimension `Function`) watches a metric some function
/// emits under that function's name (`emit_metrics("<function>", …,
/// &[("<metric>", …)])`): an alarm on a metric nobody writes never fires.
#[test]
fn every_alarm_on_our_metrics_watches_a_metric_a_function_emits() {
    let template = std::fs::read_to_string(root().join("template.yaml")).unwrap();
    let mut sources = String::new();
    for dir in ["shared/aws/src", "functions"] {
        let mut stack = vec![root().join(dir)];
        while let Some(path) = stack.pop() {
            if path.is_dir() {
                stack.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            } else if path.extension().is_some_and(|e| e == "rs") {
                sources.push_str(&std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    // The template's resources: a block per line indented by exactly two.
    let mut blocks: Vec<String> = Vec::new();
    for line in template.lines() {
        let top = line.starts_with("  ") && !line.starts_with("   ");
        match blocks.last_mut() {
            Some(block) if !top => {
                block.push_str(line);
                block.push('\n');
            }
            _ => blocks.push(format!("{line}\n")),
        }
    }
    let mut checked = 0;
    for block in blocks
        .iter()
        .filter(|b| b.contains("Namespace: trailwarden"))
    {
        // Each metric of the alarm, with the function its dimension names.
        let mut metric = None;
        for line in block.lines().map(str::trim) {
            if let Some(m) = line.strip_prefix("MetricName: ") {
                metric = Some(m.trim().to_owned());
            }
            let Some(function) = line.strip_prefix("- {Name: Function, Value: ") else {
                continue;
            };
            let function = function.trim_end_matches('}').trim();
            let metric = metric.take().expect("a metric before its dimension");
            assert!(
                sources.contains(&format!("\"{function}\",")),
                "no function emits metrics as {function:?}"
            );
            assert!(
                sources.contains(&format!("(\"{metric}\"")),
                "no function emits the metric {metric:?} the template alarms on"
            );
            checked += 1;
        }
    }
    assert!(checked >= 5, "{checked} alarm metrics found");
}
