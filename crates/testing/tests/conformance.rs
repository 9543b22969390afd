//! Runs every case of the vendored bpf_conformance corpus in the interpreter.

use bpfkit_testing::conformance::{check_interp, check_jit, corpus_dir, load_corpus};

#[test]
fn conformance_corpus_interp() {
    let cases = load_corpus(&corpus_dir()).expect("corpus parses");
    assert_eq!(cases.len(), 313, "the vendored corpus has 313 files");
    let failures: Vec<String> =
        cases.iter().filter_map(|c| check_interp(c).err().map(|e| format!("{}: {e}", c.name))).collect();
    eprintln!("conformance (interpreter): {}/{} passed", cases.len() - failures.len(), cases.len());
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn conformance_corpus_jit() {
    if !bpfkit_testing::jit_available() {
        return;
    }
    let cases = load_corpus(&corpus_dir()).expect("corpus parses");
    let failures: Vec<String> =
        cases.iter().filter_map(|c| check_jit(c).err().map(|e| format!("{}: {e}", c.name))).collect();
    eprintln!("conformance (JIT): {}/{} passed", cases.len() - failures.len(), cases.len());
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}
