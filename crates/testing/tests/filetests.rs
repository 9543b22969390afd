//! Runs every `.bpft` file under `filetests/`. `BPFKIT_BLESS=1` rewrites the expectations.

use bpfkit_testing::filetest::run_file;
use std::path::Path;

#[test]
fn filetests() {
    let bless = std::env::var_os("BPFKIT_BLESS").is_some_and(|v| v != "0");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("filetests");
    let mut files: Vec<_> = std::fs::read_dir(&root)
        .expect("filetests directory")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "bpft"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .bpft files in {}", root.display());
    let mut failures = Vec::new();
    for f in &files {
        failures.extend(run_file(f, bless).unwrap_or_else(|e| vec![e]));
    }
    assert!(failures.is_empty(), "{} failing case(s):\n\n{}", failures.len(), failures.join("\n\n"));
}
