//! Any bytes as an ELF object: parsing must return a value or an error, never panic.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = bpfkit_object::ObjectFile::parse(data);
});
