//! `array` and `percpu_array`.

mod common;

use bpfkit_maps::errno::{E2BIG, EEXIST, EINVAL, ENOENT, ENOTSUPP, EPERM};
use bpfkit_maps::flags::*;
use bpfkit_maps::{Map, MapError, MapSpec, MapType, pin};
use common::*;

#[test]
fn host_operations_and_errnos() {
    let m = create(MapType::Array, 4, 8, 4);
    assert_eq!(m.lookup(&k32(3)).unwrap(), vec![0; 8]);
    m.update(&k32(1), &v64(11), BPF_ANY).unwrap();
    m.update(&k32(1), &v64(12), BPF_EXIST).unwrap();
    assert_eq!(as_u64(&m.lookup(&k32(1)).unwrap()), 12);
    assert_eq!(errno(m.update(&k32(1), &v64(1), BPF_NOEXIST)), -EEXIST);
    assert_eq!(errno(m.update(&k32(4), &v64(1), BPF_ANY)), -E2BIG);
    assert_eq!(m.update(&k32(9), &v64(1), BPF_ANY), Err(MapError::OutOfRange { index: 9, max_entries: 4 }));
    assert_eq!(errno(m.update(&k32(1), &v64(1), 3)), -EINVAL);
    assert_eq!(errno(m.update(&k32(1), &v64(1), BPF_F_LOCK)), -EINVAL);
    assert_eq!(errno(m.lookup(&k32(4))), -ENOENT);
    assert_eq!(errno(m.delete(&k32(1))), -EINVAL);
    assert_eq!(errno(m.lookup(&[0; 8])), -EINVAL);
    assert_eq!(errno(m.update(&k32(1), &[0; 4], BPF_ANY)), -EINVAL);
    assert_eq!(errno(m.lookup_and_delete(&k32(1))), -ENOTSUPP);
    assert_eq!(m.element_count(), 4);
    let e = m.entries().unwrap();
    assert_eq!(e.len(), 4);
    assert_eq!(e[1], (k32(1).to_vec(), v64(12).to_vec()));
}

#[test]
fn get_next_key_walks_every_index() {
    let m = create(MapType::Array, 4, 8, 5);
    assert_eq!(m.get_next_key(None).unwrap(), k32(0));
    assert_eq!(m.get_next_key(Some(&k32(2))).unwrap(), k32(3));
    assert_eq!(errno(m.get_next_key(Some(&k32(4)))), -ENOENT);
    assert_eq!(m.get_next_key(Some(&k32(100))).unwrap(), k32(0));
    let mut seen = vec![];
    let mut key = None;
    while let Ok(k) = m.get_next_key(key.as_deref()) {
        seen.push(u32::from_ne_bytes(k[..].try_into().unwrap()));
        key = Some(k);
    }
    assert_eq!(seen, vec![0, 1, 2, 3, 4]);
}

#[test]
fn bpf_pointers_are_in_place_and_in_regions() {
    let m = create(MapType::Array, 4, 12, 3);
    let g = pin();
    let p1 = m.bpf_lookup(&k32(1), 0, &g).unwrap();
    let p2 = m.bpf_lookup(&k32(2), 0, &g).unwrap();
    assert_eq!(p2 as usize - p1 as usize, 16, "12-byte values are rounded up to 16");
    assert!(in_regions(&m, p1, 12) && in_regions(&m, p2, 12));
    assert!(m.bpf_lookup(&k32(3), 0, &g).is_none());
    assert!(m.bpf_lookup(&[1, 0], 0, &g).is_none());
    word(p1).store(0x1122_3344_5566_7788, std::sync::atomic::Ordering::Relaxed);
    assert_eq!(as_u64(&m.lookup(&k32(1)).unwrap()), 0x1122_3344_5566_7788);
    // A 12-byte host update does not clobber the neighbour.
    m.update(&k32(2), &[9; 12], BPF_ANY).unwrap();
    m.update(&k32(1), &[7; 12], BPF_ANY).unwrap();
    assert_eq!(m.lookup(&k32(2)).unwrap(), vec![9; 12]);
    assert_eq!(m.lookup(&k32(1)).unwrap(), vec![7; 12]);
    // The same pointer sees the host's update (in place).
    assert_eq!(m.bpf_lookup(&k32(1), 0, &g), Some(p1));
    assert_eq!(word(p1).load(std::sync::atomic::Ordering::Relaxed).to_ne_bytes(), [7; 8]);
    // BPF-side update, same flag rules.
    m.bpf_update(&k32(0), &[1; 12], BPF_ANY, 0, &g).unwrap();
    assert_eq!(errno(m.bpf_update(&k32(0), &[1; 12], BPF_NOEXIST, 0, &g)), -EEXIST);
    assert_eq!(errno(m.bpf_update(&k32(5), &[1; 12], BPF_ANY, 0, &g)), -E2BIG);
    assert_eq!(errno(m.bpf_delete(&k32(0), &g)), -EINVAL);
    assert_eq!(m.lookup(&k32(0)).unwrap(), vec![1; 12]);
    assert!(m.prog_writable());
    assert!(m.value_regions().iter().all(|r| r.writable));
}

#[test]
fn percpu_layout() {
    let m = Map::create(MapSpec::new(MapType::PercpuArray, 4, 4, 2), 3).unwrap();
    assert_eq!(m.host_value_size(), 24);
    let mut v = vec![0u8; 24];
    for cpu in 0..3 {
        v[cpu * 8..cpu * 8 + 4].copy_from_slice(&(100 + cpu as u32).to_ne_bytes());
        v[cpu * 8 + 4..cpu * 8 + 8].fill(0xee); // padding, ignored
    }
    m.update(&k32(1), &v, BPF_ANY).unwrap();
    let got = m.lookup(&k32(1)).unwrap();
    for cpu in 0..3 {
        assert_eq!(&got[cpu * 8..cpu * 8 + 4], &(100 + cpu as u32).to_ne_bytes());
        assert_eq!(&got[cpu * 8 + 4..cpu * 8 + 8], &[0; 4], "padding reads as zero");
    }
    let g = pin();
    let p = m.bpf_lookup(&k32(1), 2, &g).unwrap();
    assert_eq!(word(p).load(std::sync::atomic::Ordering::Relaxed) as u32, 102);
    assert_ne!(m.bpf_lookup(&k32(1), 0, &g), m.bpf_lookup(&k32(1), 1, &g));
    assert!(m.bpf_lookup(&k32(1), 3, &g).is_none());
    m.bpf_update(&k32(1), &7u32.to_ne_bytes(), BPF_ANY, 1, &g).unwrap();
    let got = m.lookup(&k32(1)).unwrap();
    assert_eq!(&got[0..4], &100u32.to_ne_bytes());
    assert_eq!(&got[8..12], &7u32.to_ne_bytes());
    assert_eq!(&got[16..20], &102u32.to_ne_bytes());
    assert_eq!(errno(m.bpf_update(&k32(1), &7u32.to_ne_bytes(), BPF_ANY, 3, &g)), -EINVAL);
    assert_eq!(errno(m.update(&k32(1), &[0; 4], BPF_ANY)), -EINVAL);
}

#[test]
fn freeze_and_access_flags() {
    let m = create(MapType::Array, 4, 8, 2);
    m.freeze().unwrap();
    assert!(m.is_frozen());
    assert_eq!(m.update(&k32(0), &v64(1), BPF_ANY), Err(MapError::Frozen));
    assert_eq!(errno(m.update(&k32(0), &v64(1), BPF_ANY)), -EPERM);
    assert_eq!(errno(m.update_batch(&[(&k32(0), &v64(1))], BPF_ANY)), -EPERM);
    assert_eq!(errno(m.freeze()), -EPERM, "freezing twice is -EPERM, like the kernel");
    m.lookup(&k32(0)).unwrap();
    // Programs may still write a frozen map.
    let g = pin();
    m.bpf_update(&k32(0), &v64(5), BPF_ANY, 0, &g).unwrap();
    assert_eq!(as_u64(&m.lookup(&k32(0)).unwrap()), 5);

    let ro = create_flags(MapType::Array, 4, 8, 2, BPF_F_RDONLY);
    assert_eq!(errno(ro.update(&k32(0), &v64(1), BPF_ANY)), -EPERM);
    assert_eq!(errno(ro.freeze()), -EPERM);
    ro.lookup(&k32(0)).unwrap();

    let wo = create_flags(MapType::Array, 4, 8, 2, BPF_F_WRONLY);
    wo.update(&k32(0), &v64(1), BPF_ANY).unwrap();
    assert_eq!(errno(wo.lookup(&k32(0))), -EPERM);
    assert_eq!(errno(wo.get_next_key(None)), -EPERM);
    assert_eq!(errno(wo.lookup_batch(None, 4)), -EPERM);
    assert_eq!(errno(wo.entries()), -EPERM);

    let rdonly_prog = create_flags(MapType::Array, 4, 8, 2, BPF_F_RDONLY_PROG);
    assert!(!rdonly_prog.prog_writable());
    assert!(rdonly_prog.value_regions().iter().all(|r| !r.writable));
    assert_eq!(errno(rdonly_prog.bpf_update(&k32(0), &v64(1), BPF_ANY, 0, &g)), -EPERM);
    rdonly_prog.update(&k32(0), &v64(1), BPF_ANY).unwrap();
    assert!(rdonly_prog.bpf_lookup(&k32(0), 0, &g).is_some());
    let wronly_prog = create_flags(MapType::Array, 4, 8, 2, BPF_F_WRONLY_PROG);
    assert!(!wronly_prog.prog_readable() && wronly_prog.prog_writable());
}

#[test]
fn batches() {
    let m = create(MapType::Array, 4, 8, 8);
    let keys: Vec<[u8; 4]> = (0..8).map(k32).collect();
    let vals: Vec<[u8; 8]> = (0..8).map(|i| v64(i * 10)).collect();
    let pairs: Vec<(&[u8], &[u8])> = keys.iter().zip(&vals).map(|(k, v)| (&k[..], &v[..])).collect();
    assert_eq!(m.update_batch(&pairs, BPF_ANY).unwrap(), 8);
    let mut all = vec![];
    let mut cursor = None;
    let mut sizes = vec![];
    loop {
        let b = m.lookup_batch(cursor.as_ref(), 3).unwrap();
        sizes.push(b.entries.len());
        all.extend(b.entries);
        match b.next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(sizes, vec![3, 3, 2]);
    assert_eq!(all.len(), 8);
    for (i, (k, v)) in all.iter().enumerate() {
        assert_eq!(k[..], k32(i as u32));
        assert_eq!(as_u64(v), i as u64 * 10);
    }
    let empty = m.lookup_batch(None, 0).unwrap();
    assert!(empty.entries.is_empty() && empty.next.is_none());
    // A batch stops at the first error and says how far it got.
    let bad = [(&k32(0)[..], &v64(1)[..]), (&k32(1)[..], &v64(1)[..]), (&k32(99)[..], &v64(1)[..])];
    let e = m.update_batch(&bad, BPF_ANY).unwrap_err();
    assert!(matches!(e, MapError::Batch { done: 2, .. }), "{e}");
    assert_eq!(e.errno(), -E2BIG);
    assert_eq!(errno(m.delete_batch(&[&k32(0)])), -ENOTSUPP);
    assert_eq!(errno(m.lookup_and_delete_batch(None, 4)), -ENOTSUPP);
    // Cursors belong to their map.
    let other = create(MapType::Array, 4, 8, 8);
    let c = m.lookup_batch(None, 1).unwrap().next.unwrap();
    assert_eq!(errno(other.lookup_batch(Some(&c), 1)), -EINVAL);
}
