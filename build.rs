//! Embeds the built-in pack's test events (`rules/**/*.test.json`) into
//! the command, so that `trailwarden rules test` with no path tests the
//! built-in pack wherever the binary runs. (The rules themselves are
//! embedded by the engine crate, with the same code.)

include!("shared/engine/embed.rs");

fn main() {
    let manifest = std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    embed(
        &manifest.join("rules"),
        &|name| name.ends_with(".test.json"),
        "BUILTIN_RULE_TESTS",
        "The built-in pack's test files: (path under `rules/`, JSON text).",
        "builtin_rule_tests.rs",
    );
}
