//! Test support shared by bpfkit's tests, fuzz targets and benches: the data-driven filetest
//! format ([`filetest`]), the bpf_conformance corpus runner ([`conformance`]), and generators.
#![forbid(unsafe_code)]

pub mod conformance;
pub mod filetest;
pub mod fuzz;
pub mod r#gen;
pub mod soundness;
pub mod workloads;

/// Whether the JIT can run here; prints a visible SKIPPED line when it cannot (tests then skip
/// their JIT half).
pub fn jit_available() -> bool {
    match bpfkit_jit::available() {
        Ok(()) => true,
        Err(e) => {
            eprintln!("SKIPPED: JIT code memory is not available here: {e}");
            false
        }
    }
}
