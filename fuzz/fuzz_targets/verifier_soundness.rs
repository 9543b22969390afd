//! Fuzz target `verifier_soundness`: see `bpfkit_testing::soundness::fuzz_target` (a generated
//! program the verifier accepts must run without a memory fault; panics on an escape).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| bpfkit_testing::soundness::fuzz_target(data));
