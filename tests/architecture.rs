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

/// Every `` `name.rs` `` or `` `dir/name.rs` `` in `text`.
fn named_files(text: &str) -> Vec<&str> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter(|s| s.ends_with(".rs") && !s.contains(' '))
        .collect()
}

/// The `.rs` files directly in `dir` (a crate's modules).
fn modules(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".rs"))
        .collect()
}

#[test]
fn the_code_map_names_every_module_and_only_modules_that_exist() {
    let text = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    let mut problems = Vec::new();
    // (heading, its directories, the files named under it)
    let mut sections: Vec<(String, Option<Vec<PathBuf>>, BTreeSet<String>)> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if let Some(heading) = line.strip_prefix("### ") {
            sections.push((heading.to_owned(), section_dirs(heading), BTreeSet::new()));
            continue;
        }
        for name in named_files(line) {
            if name.contains('/') {
                // A path from the repository's root.
                if !root().join(name).is_file() {
                    problems.push(format!(
                        "ARCHITECTURE.md:{}: `{name}` does not exist",
                        n + 1
                    ));
                }
                continue;
            }
            let Some((heading, Some(dirs), named)) = sections.last_mut() else {
                continue;
            };
            named.insert(name.to_owned());
            // A module, or the crate's build script.
            let exists = |d: &PathBuf| {
                d.join(name).is_file() || (name == "build.rs" && d.with_file_name(name).is_file())
            };
            if !dirs.iter().any(exists) {
                problems.push(format!(
                    "ARCHITECTURE.md:{}: `{name}` is not a module of {heading}",
                    n + 1
                ));
            }
        }
    }
    let crates: Vec<_> = sections
        .iter()
        .filter_map(|(h, dirs, named)| dirs.as_ref().map(|d| (h, d, named)))
        .collect();
    assert_eq!(crates.len(), 5, "the code map's crate sections moved");
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
