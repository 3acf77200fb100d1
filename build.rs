//! Embeds the built-in pack's test events (`rules/**/*.test.json`) into
//! the command, so that `trailwarden rules test` with no path tests the
//! built-in pack wherever the binary runs. (The rules themselves are
//! embedded by the engine crate.)

use std::path::{Path, PathBuf};

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, out);
        } else if path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().ends_with(".test.json"))
        {
            out.push(path);
        }
    }
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let rules = manifest.join("rules");
    println!("cargo:rerun-if-changed=rules");
    let mut files = Vec::new();
    collect(&rules, &mut files);
    files.sort();
    let mut code = String::from(
        "/// The built-in pack's test files: (path under `rules/`, JSON text).\npub static BUILTIN_RULE_TESTS: &[(&str, &str)] = &[\n",
    );
    for file in files {
        let rel = file
            .strip_prefix(&rules)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        code.push_str(&format!(
            "    ({rel:?}, include_str!({:?})),\n",
            file.display().to_string()
        ));
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("builtin_rule_tests.rs");
    std::fs::write(out, code).unwrap();
}
