//! Fuzz target `interp`: see `bpfkit_testing::fuzz::interp`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| bpfkit_testing::fuzz::interp(data));
