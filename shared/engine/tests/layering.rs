//! The engine's modules depend on each other in one direction: each may
//! use only the modules before it in [`ORDER`] (and the crate root's
//! `Engine`, which is built from all of them). A `use crate::x` that points
//! the other way (a cycle in the making) fails here, naming the line. Read:
//! `crate::x::…`, every `x::` of a `crate::{…}` group, `super::x::…`; not
//! followed: the root's re-exports (`crate::Session`), so modules name the
//! module an item lives in.

use std::path::Path;

/// The modules, each depending only on modules before it: findings are the
/// base; state and policy build on them; evaluation on the record view;
/// rules on policy and state; the session on everything.
const ORDER: &[&str] = &[
    "derived", "dispatch", "finding", "state", "policy", "render", "ocsf", "event", "eval",
    "rules", "session", "sweep", "digest",
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
        // Code only (comment lines out), `super::` read as `crate::` (the
        // modules are the root's children).
        let code: Vec<String> = text
            .lines()
            .map(|l| {
                if l.trim_start().starts_with("//") {
                    String::new()
                } else {
                    l.replace("super::", "crate::")
                }
            })
            .collect();
        let joined = code.join("\n");
        for (at, _) in joined.match_indices("crate::") {
            let n = joined[..at].matches('\n').count();
            let rest = &joined[at + 7..];
            // `crate::x::…`, or every `x::` of a `crate::{…}` group.
            let used: Vec<String> = match rest.strip_prefix('{') {
                Some(group) => {
                    let group = &group[..group.find('}').unwrap_or(group.len())];
                    group
                        .split(|c: char| c == ',' || c == '{' || c.is_whitespace())
                        .filter_map(|item| item.split_once("::").map(|(m, _)| m.to_owned()))
                        .collect()
                }
                None => vec![rest
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                    .collect()],
            };
            for used in used {
                let Some(used_rank) = ORDER.iter().position(|m| *m == used) else {
                    continue;
                };
                if used_rank >= rank && used != module {
                    problems.push(format!(
                        "src/{file}:{}: `{module}` uses `{used}`, which comes after it: {}",
                        n + 1,
                        text.lines().nth(n).unwrap_or("").trim()
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
