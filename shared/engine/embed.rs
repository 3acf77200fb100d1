// Shared by the build scripts of the engine crate (the rule pack) and of
// the command (the pack's test events), with `include!`: the files under a
// directory whose name passes a test, embedded as a static table of
// (path under the directory, text).

/// Every file under `dir` (recursively) whose file name passes `wanted`.
fn collect(
    dir: &std::path::Path,
    wanted: &dyn Fn(&str) -> bool,
    out: &mut Vec<std::path::PathBuf>,
) {
    let entries = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {} to embed it: {e}", dir.display()));
    for entry in entries.flatten() {
        let path = entry.path();
        // Hidden files (editor locks, `.x.yml`) are not part of the pack.
        if path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        {
            continue;
        }
        if path.is_dir() {
            collect(&path, wanted, out);
        } else if path
            .file_name()
            .is_some_and(|n| wanted(&n.to_string_lossy()))
        {
            out.push(path);
        }
    }
}

/// Write `$OUT_DIR/<out_file>`: `pub static <name>: &[(&str, &str)]`, the
/// files under `dir` whose name passes `wanted`, sorted, each as (path
/// under `dir` with `/` separators, `include_str!` of it), documented by
/// `doc`. Rebuilds when `dir` changes.
fn embed(
    dir: &std::path::Path,
    wanted: &dyn Fn(&str) -> bool,
    name: &str,
    doc: &str,
    out_file: &str,
) {
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files = Vec::new();
    collect(dir, wanted, &mut files);
    assert!(
        !files.is_empty(),
        "nothing to embed under {}: a source tree without it cannot build {name}",
        dir.display()
    );
    files.sort();
    let mut code = format!("/// {doc}\npub static {name}: &[(&str, &str)] = &[\n");
    for file in files {
        let rel = file
            .strip_prefix(dir)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        code.push_str(&format!(
            "    ({rel:?}, include_str!({:?})),\n",
            file.display().to_string()
        ));
    }
    code.push_str("];\n");
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap()).join(out_file);
    std::fs::write(out, code).unwrap();
}
