//! Fuzz target `jit_diff`: see `bpfkit_testing::gen::interp_vs_jit`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| bpfkit_testing::r#gen::interp_vs_jit(data));
