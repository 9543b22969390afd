//! Fuzz target `assemble`: see `bpfkit_testing::fuzz::assemble`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| bpfkit_testing::fuzz::assemble(data));
