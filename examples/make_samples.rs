//! Regenerates the sample CloudTrail log files under `events/`.
//!
//! Removes the sample files a previous run wrote (CloudTrail-named
//! `*_CloudTrail_*.json.gz`), then writes new ones with
//! `trailwarden::synth::write_samples`. Run from the repository root:
//!
//! ```text
//! cargo run --example make_samples
//! ```

use std::path::Path;

fn main() -> std::io::Result<()> {
    let dir = Path::new("events");
    if dir.is_dir() {
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            if name.contains("_CloudTrail_") && name.ends_with(".json.gz") {
                std::fs::remove_file(&path)?;
            }
        }
    }
    for path in trailwarden::synth::write_samples(dir)? {
        let size = std::fs::metadata(&path)?.len();
        println!("{} ({size} bytes)", path.display());
    }
    Ok(())
}
