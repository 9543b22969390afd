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
    // (`.kconfig` offsets are now laid out by the loader, so this input fails earlier; what
    // matters is that it fails without allocating.)
    let data = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/fuzz-kconfig-4gib.o")).unwrap();
    assert!(ObjectFile::parse(&data).is_err());

    // A `.bss` that claims almost 4 GiB (sh_size patched in the section header).
    let mut data = fixture();
    let u16_at = |d: &[u8], o: usize| u16::from_le_bytes([d[o], d[o + 1]]) as usize;
    let u32_at = |d: &[u8], o: usize| u32::from_le_bytes(d[o..o + 4].try_into().unwrap()) as usize;
    let u64_at = |d: &[u8], o: usize| u64::from_le_bytes(d[o..o + 8].try_into().unwrap()) as usize;
    let (shoff, shentsize, shnum, shstrndx) =
        (u64_at(&data, 0x28), u16_at(&data, 0x3a), u16_at(&data, 0x3c), u16_at(&data, 0x3e));
    let strtab = u64_at(&data, shoff + shstrndx * shentsize + 0x18);
    let bss = (0..shnum)
        .map(|i| shoff + i * shentsize)
        .find(|&h| data[strtab + u32_at(&data, h)..].starts_with(b".bss\0"))
        .expect(".bss section header");
    data[bss + 0x20..bss + 0x28].copy_from_slice(&0xffff_ff00u64.to_le_bytes());
    let e = ObjectFile::parse(&data).unwrap_err();
    assert_eq!(
        e.to_string(),
        "section .bss: 4294967040 bytes is more than the kernel's 4194304-byte limit for a map value"
    );
}
