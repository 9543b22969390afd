//! `insn_array` maps: the kernel's contract (kernel-spec §2.2–2.5).

mod common;

use bpfkit_maps::errno::*;
use bpfkit_maps::flags::*;
use bpfkit_maps::{INSN_DELETED, Map, MapSpec, MapType};
use common::{errno, k32};
use std::sync::Arc;

fn value(orig: u32, xlated: u32, jitted: u32) -> [u8; 16] {
    let mut v = [0u8; 16];
    v[..4].copy_from_slice(&orig.to_ne_bytes());
    v[4..8].copy_from_slice(&xlated.to_ne_bytes());
    v[8..12].copy_from_slice(&jitted.to_ne_bytes());
    v
}

fn triple(v: &[u8]) -> [u32; 3] {
    let w = |i: usize| u32::from_ne_bytes(v[4 * i..4 * i + 4].try_into().unwrap());
    assert_eq!(w(3), 0, "the padding word reads 0");
    [w(0), w(1), w(2)]
}

fn insn_array(n: u32) -> Arc<Map> {
    Arc::new(Map::create(MapSpec::new(MapType::InsnArray, 4, 16, n), 1).unwrap())
}

#[test]
fn create_constraints() {
    let bad = |key, value, max, flags| {
        errno(Map::create(MapSpec::new(MapType::InsnArray, key, value, max).with_flags(flags), 1))
    };
    assert_eq!(bad(8, 16, 4, 0), -EINVAL, "key_size must be 4");
    assert_eq!(bad(4, 8, 4, 0), -EINVAL, "value_size must be 16");
    assert_eq!(bad(4, 16, 0, 0), -EINVAL, "max_entries must be > 0");
    assert_eq!(bad(4, 16, 4, BPF_F_RDONLY_PROG), -EINVAL, "map_flags must be 0");
    // No cap on max_entries (v9 removed the 256 limit).
    let m = insn_array(1000);
    assert!(!m.prog_writable(), "programs can never write an insn array (BPF_F_RDONLY_PROG forced)");
    assert_eq!(m.value_regions().len(), 1);
    assert_eq!(m.value_regions()[0].len, 8000, "programs see 8 bytes (a code address) per entry");
}

#[test]
fn syscall_operations() {
    let m = insn_array(4);
    assert_eq!(errno(m.update(&k32(4), &value(1, 0, 0), BPF_ANY)), -E2BIG, "key >= max_entries");
    assert_eq!(errno(m.update(&k32(0), &value(1, 0, 0), BPF_NOEXIST)), -EEXIST);
    assert_eq!(errno(m.update(&k32(0), &value(1, 2, 0), BPF_ANY)), -EINVAL, "xlated_off must be 0");
    assert_eq!(errno(m.update(&k32(0), &value(1, 0, 3), BPF_ANY)), -EINVAL, "jitted_off must be 0");
    m.update(&k32(2), &value(7, 0, 0), BPF_ANY).unwrap();
    assert_eq!(triple(&m.lookup(&k32(2)).unwrap()), [7, 0, 0]);
    assert_eq!(errno(m.delete(&k32(2))), -EINVAL, "delete is always refused");
    assert_eq!(m.get_next_key(None).unwrap(), k32(0));
    assert_eq!(m.get_next_key(Some(&k32(2))).unwrap(), k32(3));
    assert_eq!(errno(m.get_next_key(Some(&k32(3)))), -ENOENT);
    m.freeze().unwrap();
    assert_eq!(errno(m.update(&k32(1), &value(1, 0, 0), BPF_ANY)), -EPERM, "frozen");
}

#[test]
fn binding_to_a_program() {
    let m = insn_array(3);
    for (i, o) in [0u32, 2, 5].into_iter().enumerate() {
        m.update(&k32(i as u32), &value(o, 0, 0), BPF_ANY).unwrap();
    }
    let no_lddw = |_: usize| false;
    assert_eq!(errno(m.bind_insn_array(8, &no_lddw)), -EINVAL, "not frozen (load-unfrozen-map)");
    m.freeze().unwrap();
    assert_eq!(errno(m.bind_insn_array(5, &no_lddw)), -EINVAL, "orig_off 5 outside a 5-slot program");
    assert_eq!(errno(m.bind_insn_array(8, &|i| i == 2)), -EINVAL, "orig_off 2 is a lddw's second slot");
    let owner = m.bind_insn_array(8, &no_lddw).unwrap();
    assert_eq!(errno(m.bind_insn_array(8, &no_lddw)), -EBUSY, "one program per map (no-map-reuse)");
    // Binding resets xlated_off := orig_off.
    assert_eq!(m.insn_array_entries().unwrap(), vec![[0, 0, 0], [2, 2, 0], [5, 5, 0]]);
    // A rewrite expands slot 1 into 3 and deletes slot 2 (offsets after move by +2 -1).
    owner.map_xlated(&|x| match x {
        0 => Some(0),
        2 => None,
        x => Some(x + 1),
    });
    assert_eq!(m.insn_array_entries().unwrap(), vec![[0, 0, 0], [2, INSN_DELETED, 0], [5, 6, 0]]);
    // The code: jitted offsets and the addresses programs read.
    owner.set_code(&|x| Some((x * 10, 0x1000 + u64::from(x)))).unwrap();
    assert_eq!(m.insn_array_entries().unwrap(), vec![[0, 0, 0], [2, INSN_DELETED, 0], [5, 6, 60]]);
    assert_eq!(m.insn_array_ips().unwrap(), [0x1000, 0, 0x1006], "a deleted entry has no address");
    assert!(owner.set_code(&|x| (x != 6).then_some((0, 1))).is_err(), "a live entry without code is -EFAULT");
    // Dropping the owner (program freed or load failed) releases the map.
    drop(owner);
    let again = m.bind_insn_array(8, &no_lddw).unwrap();
    assert_eq!(m.insn_array_entries().unwrap()[1], [2, 2, 0], "a new load starts from clean state");
    drop(again);
}
