//! Embeds the built-in rule pack (`rules/**/*.yml` at the workspace root)
//! into the crate, so the command and the Lambda functions need no files
//! beside them.

include!("embed.rs");

fn main() {
    let manifest = std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    embed(
        &manifest.join("../../rules"),
        &|name| name.ends_with(".yml") || name.ends_with(".yaml"),
        "BUILTIN_RULES",
        "The built-in rule pack: (path under `rules/`, YAML text).",
        "builtin_rules.rs",
    );
}
