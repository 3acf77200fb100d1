//! The engine's modules depend on each other in one direction: each may
//! use only the modules before it in [`ORDER`] (and the crate root's
//! `Engine`, which is built from all of them). A `use crate::x` that points
//! the other way (a cycle in the making) fails here, naming the line.

use std::path::Path;

/// The modules, each depending only on modules before it: findings are the
/// base; state and policy build on them; evaluation on the record view;
/// rules on policy and state; the session on everything.
const ORDER: &[&str] = &[
    "derived", "dispatch", "finding", "state", "policy", "render", "ocsf", "event", "eval",
    "rules", "session", "sweep",
];

#[test]
fn modules_use_only_modules_below_them() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files: Vec<String> = std::fs::read_dir(&src)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".rs") && n != "lib.rs")
        .collect();
    files.sort();
    let mut problems = Vec::new();
    for file in &files {
        let module = file.trim_end_matches(".rs");
        let Some(rank) = ORDER.iter().position(|m| *m == module) else {
            problems.push(format!("src/{file}: a module not in ORDER: place it there"));
            continue;
        };
        let text = std::fs::read_to_string(src.join(file)).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            for (at, _) in code.match_indices("crate::") {
                let used: String = code[at + 7..]
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                    .collect();
                let Some(used_rank) = ORDER.iter().position(|m| *m == used) else {
                    continue;
                };
                if used_rank >= rank && used != module {
                    problems.push(format!(
                        "src/{file}:{}: `{module}` uses `{used}`, which comes after it: {line}",
                        n + 1
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
