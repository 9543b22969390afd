//! Shared by the JIT's test binaries.

/// Where the sandbox refuses what code memory needs, the JIT (correctly) refuses to run, and
/// these tests say so and skip.
pub fn jit_available() -> bool {
    match bpfkit_jit::available() {
        Ok(()) => true,
        Err(e) => {
            eprintln!("SKIPPED: JIT code memory is not available here: {e}");
            false
        }
    }
}
