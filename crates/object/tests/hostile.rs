//! Corrupt, truncated and mutated objects give errors, never panics.

use bpfkit_object::{ObjectError, ObjectFile};

fn fixture() -> Vec<u8> {
    std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/linking.o")).unwrap()
}

#[test]
fn every_truncation_is_an_error() {
    let data = fixture();
    for len in (0..data.len()).step_by(3) {
        assert!(ObjectFile::parse(&data[..len]).is_err(), "prefix of {len} bytes parsed");
    }
}

#[test]
fn mutations_never_panic() {
    let data = fixture();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut parsed = 0;
    for _ in 0..3000 {
        let mut m = data.clone();
        for _ in 0..1 + next() % 4 {
            let i = (next() % m.len() as u64) as usize;
            m[i] = match next() % 4 {
                0 => 0,
                1 => 0xff,
                2 => m[i].wrapping_add(1),
                _ => next() as u8,
            };
        }
        if ObjectFile::parse(&m).is_ok() {
            parsed += 1;
        }
    }
    // Most single-byte changes hit debug sections and still parse; the point is no panic.
    assert!(parsed > 0);
}

#[test]
fn errors_name_what_is_wrong() {
    assert!(matches!(ObjectFile::parse(b"not an elf"), Err(ObjectError::Elf { .. })));
    let mut data = fixture();
    // e_machine = x86-64.
    data[18] = 62;
    data[19] = 0;
    let e = ObjectFile::parse(&data).unwrap_err();
    assert_eq!(e.to_string(), "not a BPF object (ELF machine 62)");
}

#[test]
fn huge_global_data_is_refused_before_allocating() {
    // Found by the `object` fuzz target: BTF placing a `.kconfig` variable near 4 GiB made the
    // loader allocate the whole value.
    let data = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/fuzz-kconfig-4gib.o")).unwrap();
    let e = ObjectFile::parse(&data).unwrap_err();
    assert!(e.to_string().contains("limit for a map value"), "{e}");
}
