//! Shared by the JIT's test binaries.

/// Code memory needs `memfd_create`, two shared mappings and `membarrier`; where the sandbox
/// refuses them, the JIT (correctly) refuses to run, and these tests say so and skip.
pub fn jit_available() -> bool {
    match bpfkit_jit::barrier_mode().and_then(|_| bpfkit_jit::CodeMemory::new(&[0xc3]).map(drop)) {
        Ok(()) => true,
        Err(e) => {
            eprintln!("SKIPPED: JIT code memory is not available here: {e}");
            false
        }
    }
}
