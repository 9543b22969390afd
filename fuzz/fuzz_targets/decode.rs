//! Fuzz target `decode`: see `bpfkit_testing::fuzz::decode`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| bpfkit_testing::fuzz::decode(data));
