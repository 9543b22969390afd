//! Any bytes as `.BTF` and as `.BTF.ext`, with the queries the loader uses.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| bpfkit_btf::fuzz_parse(data));
