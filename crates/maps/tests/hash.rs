//! `hash`, `percpu_hash`, `lru_hash`, `lru_percpu_hash`.

mod common;

use std::collections::HashSet;
use std::sync::atomic::Ordering;

use bpfkit_maps::errno::{E2BIG, EEXIST, EINVAL, ENOENT, ENOSPC, EPERM};
use bpfkit_maps::flags::*;
use bpfkit_maps::{LookupFlags, Map, MapError, MapSpec, MapType, pin};
use common::*;

#[test]
fn update_flags_and_errnos() {
    let m = create(MapType::Hash, 4, 8, 3);
    assert_eq!(errno(m.lookup(&k32(1))), -ENOENT);
    assert_eq!(errno(m.update(&k32(1), &v64(1), BPF_EXIST)), -ENOENT);
    m.update(&k32(1), &v64(1), BPF_NOEXIST).unwrap();
    assert_eq!(errno(m.update(&k32(1), &v64(2), BPF_NOEXIST)), -EEXIST);
    m.update(&k32(1), &v64(3), BPF_EXIST).unwrap();
    m.update(&k32(1), &v64(4), BPF_ANY).unwrap();
    assert_eq!(as_u64(&m.lookup(&k32(1)).unwrap()), 4);
    assert_eq!(errno(m.update(&k32(1), &v64(4), 3)), -EINVAL);
    assert_eq!(errno(m.update(&k32(1), &v64(4), 8)), -EINVAL);
    assert_eq!(errno(m.update(&k32(1), &v64(4), BPF_F_LOCK)), -EINVAL);
    assert_eq!(errno(m.update(&[1, 2], &v64(4), BPF_ANY)), -EINVAL);
    assert_eq!(errno(m.update(&k32(1), &[1, 2], BPF_ANY)), -EINVAL);
    m.update(&k32(2), &v64(2), BPF_ANY).unwrap();
    m.update(&k32(3), &v64(3), BPF_ANY).unwrap();
    // Full: a new key is -E2BIG, replacing an existing one still works.
    assert_eq!(m.update(&k32(4), &v64(4), BPF_ANY), Err(MapError::Full { max_entries: 3 }));
    assert_eq!(errno(m.update(&k32(4), &v64(4), BPF_ANY)), -E2BIG);
    for i in 0..1000 {
        m.update(&k32(2), &v64(i), BPF_ANY).unwrap();
    }
    assert_eq!(as_u64(&m.lookup(&k32(2)).unwrap()), 999);
    assert_eq!(m.element_count(), 3);
    m.delete(&k32(2)).unwrap();
    assert_eq!(errno(m.delete(&k32(2))), -ENOENT);
    m.update(&k32(4), &v64(4), BPF_ANY).unwrap();
    assert_eq!(as_u64(&m.lookup_and_delete(&k32(4)).unwrap()), 4);
    assert_eq!(errno(m.lookup_and_delete(&k32(4))), -ENOENT);
    assert_eq!(m.element_count(), 2);
    let mut e = m.entries().unwrap();
    e.sort();
    assert_eq!(e, vec![(k32(1).to_vec(), v64(4).to_vec()), (k32(3).to_vec(), v64(3).to_vec())]);
}

#[test]
fn get_next_key_iterates_everything_once() {
    let m = create(MapType::Hash, 4, 8, 500);
    assert_eq!(errno(m.get_next_key(None)), -ENOENT);
    for i in 0..300 {
        m.update(&k32(i * 7), &v64(u64::from(i)), BPF_ANY).unwrap();
    }
    let mut seen = Vec::new();
    let mut key: Option<Vec<u8>> = None;
    loop {
        match m.get_next_key(key.as_deref()) {
            Ok(k) => {
                seen.push(u32::from_ne_bytes(k[..].try_into().unwrap()));
                key = Some(k);
            }
            Err(e) => {
                assert_eq!(e.errno(), -ENOENT);
                break;
            }
        }
    }
    assert_eq!(seen.len(), 300);
    let set: HashSet<u32> = seen.iter().copied().collect();
    assert_eq!(set, (0..300).map(|i| i * 7).collect());
    // A key that is not in the map restarts from the first key.
    assert_eq!(m.get_next_key(Some(&k32(1))).unwrap(), m.get_next_key(None).unwrap());
    assert_eq!(errno(m.get_next_key(Some(&[0; 3]))), -EINVAL);
    // entries() follows the same order.
    let order: Vec<u32> =
        m.entries().unwrap().iter().map(|(k, _)| u32::from_ne_bytes(k[..].try_into().unwrap())).collect();
    assert_eq!(order, seen);
}

#[test]
fn bpf_side_pointers_and_replacement() {
    let m = create(MapType::Hash, 4, 16, 8);
    let g = pin();
    assert!(m.bpf_lookup(&k32(1), 0, &g).is_none());
    m.bpf_update(&k32(1), &[1; 16], BPF_NOEXIST, 0, &g).unwrap();
    assert_eq!(errno(m.bpf_update(&k32(1), &[1; 16], BPF_NOEXIST, 0, &g)), -EEXIST);
    assert_eq!(errno(m.bpf_update(&k32(2), &[1; 16], BPF_EXIST, 0, &g)), -ENOENT);
    let p = m.bpf_lookup(&k32(1), 0, &g).unwrap();
    assert!(in_regions(&m, p, 16));
    word(p).fetch_add(1, Ordering::Relaxed);
    let mut expect = [1u8; 16];
    expect[..8].copy_from_slice(&(u64::from_ne_bytes([1; 8]) + 1).to_ne_bytes());
    assert_eq!(m.lookup(&k32(1)).unwrap(), expect);
    // An update replaces the element: the old pointer still shows the old value while the
    // guard is held; a new lookup sees the new value elsewhere.
    m.update(&k32(1), &[2; 16], BPF_ANY).unwrap();
    assert_eq!(word(p).load(Ordering::Relaxed).to_ne_bytes(), expect[..8]);
    let p2 = m.bpf_lookup(&k32(1), 0, &g).unwrap();
    assert_ne!(p, p2);
    assert_eq!(word(p2).load(Ordering::Relaxed).to_ne_bytes(), [2; 8]);
    m.bpf_delete(&k32(1), &g).unwrap();
    assert_eq!(errno(m.bpf_delete(&k32(1), &g)), -ENOENT);
    assert!(m.bpf_lookup(&k32(1), 0, &g).is_none());
    assert!(m.bpf_lookup(&[0; 3], 0, &g).is_none());
    assert_eq!(errno(m.bpf_update(&k32(1), &[1; 15], BPF_ANY, 0, &g)), -EINVAL);
    drop(g);
    let ro = create_flags(MapType::Hash, 4, 8, 8, BPF_F_RDONLY_PROG);
    let g = pin();
    assert_eq!(errno(ro.bpf_update(&k32(1), &v64(1), BPF_ANY, 0, &g)), -EPERM);
    assert_eq!(errno(ro.bpf_delete(&k32(1), &g)), -EPERM);
}

#[test]
fn percpu_hash_layout_and_in_place_updates() {
    let m = Map::create(MapSpec::new(MapType::PercpuHash, 4, 4, 4), 2).unwrap();
    assert_eq!(m.host_value_size(), 16);
    let g = pin();
    // A program's insert sets its CPU's value and zeroes the others.
    m.bpf_update(&k32(1), &5u32.to_ne_bytes(), BPF_ANY, 1, &g).unwrap();
    let v = m.lookup(&k32(1)).unwrap();
    let mut expect = vec![0u8; 16];
    expect[8..12].copy_from_slice(&5u32.to_ne_bytes());
    assert_eq!(v, expect);
    let p0 = m.bpf_lookup(&k32(1), 0, &g).unwrap();
    let p1 = m.bpf_lookup(&k32(1), 1, &g).unwrap();
    assert_ne!(p0, p1);
    assert!(m.bpf_lookup(&k32(1), 2, &g).is_none());
    // Updating an existing key from CPU 0 keeps CPU 1's value, in place.
    m.bpf_update(&k32(1), &7u32.to_ne_bytes(), BPF_EXIST, 0, &g).unwrap();
    assert_eq!(m.bpf_lookup(&k32(1), 0, &g), Some(p0));
    assert_eq!(word(p0).load(Ordering::Relaxed) as u32, 7);
    assert_eq!(word(p1).load(Ordering::Relaxed) as u32, 5);
    // Host update: every CPU.
    let mut all = vec![0u8; 16];
    all[0..4].copy_from_slice(&1u32.to_ne_bytes());
    all[8..12].copy_from_slice(&2u32.to_ne_bytes());
    m.update(&k32(1), &all, BPF_EXIST).unwrap();
    assert_eq!(m.lookup(&k32(1)).unwrap(), all);
    assert_eq!(errno(m.update(&k32(1), &all, BPF_NOEXIST)), -EEXIST);
    assert_eq!(errno(m.update(&k32(9), &all, BPF_EXIST)), -ENOENT);
    assert_eq!(errno(m.bpf_update(&k32(1), &1u32.to_ne_bytes(), BPF_ANY, 2, &g)), -EINVAL);
    assert_eq!(m.lookup_and_delete(&k32(1)).unwrap(), all);
}

#[test]
fn lru_evicts_instead_of_failing() {
    let m = create(MapType::LruHash, 4, 8, 4);
    for i in 0..4 {
        m.update(&k32(i), &v64(u64::from(i)), BPF_ANY).unwrap();
    }
    let g = pin();
    // Programs use keys 0 and 1.
    assert!(m.bpf_lookup(&k32(0), 0, &g).is_some());
    assert!(m.bpf_lookup(&k32(1), 0, &g).is_some());
    drop(g);
    m.update(&k32(4), &v64(4), BPF_ANY).unwrap();
    assert_eq!(m.element_count(), 4);
    assert_eq!(errno(m.lookup(&k32(2))), -ENOENT, "the least recently used key goes first");
    m.update(&k32(5), &v64(5), BPF_ANY).unwrap();
    assert_eq!(errno(m.lookup(&k32(3))), -ENOENT);
    for k in [0, 1, 4, 5] {
        assert_eq!(as_u64(&m.lookup(&k32(k)).unwrap()), u64::from(k));
    }
    // Never -E2BIG.
    for i in 10..1000 {
        m.update(&k32(i), &v64(u64::from(i)), BPF_ANY).unwrap();
        assert!(m.element_count() <= 4);
    }
    assert!(m.lookup(&k32(999)).is_ok());
}

#[test]
fn lru_host_lookup_marks_only_when_asked() {
    // Host lookups default to NO_LRU_UPDATE (the kernel's syscall behaviour).
    let m = create(MapType::LruHash, 4, 8, 2);
    m.update(&k32(1), &v64(1), BPF_ANY).unwrap();
    m.update(&k32(2), &v64(2), BPF_ANY).unwrap();
    m.lookup(&k32(1)).unwrap();
    m.lookup_with(&k32(1), LookupFlags::NO_LRU_UPDATE).unwrap();
    m.update(&k32(3), &v64(3), BPF_ANY).unwrap();
    assert_eq!(errno(m.lookup(&k32(1))), -ENOENT);
    assert!(m.lookup(&k32(2)).is_ok());

    let m = create(MapType::LruHash, 4, 8, 2);
    m.update(&k32(1), &v64(1), BPF_ANY).unwrap();
    m.update(&k32(2), &v64(2), BPF_ANY).unwrap();
    m.lookup_with(&k32(1), LookupFlags::NONE).unwrap();
    m.update(&k32(3), &v64(3), BPF_ANY).unwrap();
    assert!(m.lookup(&k32(1)).is_ok());
    assert_eq!(errno(m.lookup(&k32(2))), -ENOENT);
}

#[test]
fn lru_percpu() {
    let m = Map::create(MapSpec::new(MapType::LruPercpuHash, 4, 8, 2).with_flags(BPF_F_NO_COMMON_LRU), 2).unwrap();
    assert_eq!(m.spec().max_entries, 2);
    let g = pin();
    for i in 0..10 {
        m.bpf_update(&k32(i), &v64(u64::from(i)), BPF_ANY, (i % 2) as usize, &g).unwrap();
    }
    assert_eq!(m.element_count(), 2);
    let v = m.lookup(&k32(9)).unwrap();
    assert_eq!(v.len(), 16);
    assert_eq!(as_u64(&v[8..]), 9);
    assert_eq!(as_u64(&v[..8]), 0);
}

#[test]
fn batches() {
    let m = create(MapType::Hash, 4, 8, 64);
    let keys: Vec<[u8; 4]> = (0..50).map(k32).collect();
    let vals: Vec<[u8; 8]> = (0..50).map(|i| v64(i + 100)).collect();
    let pairs: Vec<(&[u8], &[u8])> = keys.iter().zip(&vals).map(|(k, v)| (&k[..], &v[..])).collect();
    assert_eq!(m.update_batch(&pairs, BPF_NOEXIST).unwrap(), 50);
    let e = m.update_batch(&pairs[..3], BPF_NOEXIST).unwrap_err();
    assert_eq!(e, MapError::Batch { done: 0, source: Box::new(MapError::Exists) });
    assert_eq!(e.errno(), -EEXIST);

    let mut got = Vec::new();
    let mut cursor = None;
    loop {
        let b = m.lookup_batch(cursor.as_ref(), 10).unwrap();
        assert!(b.entries.len() <= 10);
        got.extend(b.entries);
        match b.next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    got.sort();
    let mut expect: Vec<_> = keys.iter().zip(&vals).map(|(k, v)| (k.to_vec(), v.to_vec())).collect();
    expect.sort();
    assert_eq!(got, expect);

    // Delete batch stops at the first missing key.
    let e = m.delete_batch(&[&k32(0), &k32(1000), &k32(1)]).unwrap_err();
    assert!(matches!(e, MapError::Batch { done: 1, .. }));
    assert_eq!(e.errno(), -ENOENT);
    assert_eq!(errno(m.lookup(&k32(0))), -ENOENT);
    assert!(m.lookup(&k32(1)).is_ok());
    assert_eq!(m.delete_batch(&[&k32(1), &k32(2)]).unwrap(), 2);

    // Lookup-and-delete batch drains the map.
    let mut drained = 0;
    let mut cursor = None;
    loop {
        let b = m.lookup_and_delete_batch(cursor.as_ref(), 7).unwrap();
        drained += b.entries.len();
        match b.next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(drained, 47);
    assert_eq!(m.element_count(), 0);
    assert_eq!(errno(m.get_next_key(None)), -ENOENT);
}

#[test]
fn batch_bucket_larger_than_count_is_enospc() {
    // Two keys in a 2-bucket table share a bucket half of the time; the seed is fixed.
    for t in 0..100u32 {
        let m = create_flags(MapType::Hash, 4, 8, 2, BPF_F_ZERO_SEED);
        m.update(&k32(2 * t), &v64(1), BPF_ANY).unwrap();
        m.update(&k32(2 * t + 1), &v64(2), BPF_ANY).unwrap();
        match m.lookup_batch(None, 1) {
            Ok(b) => assert_eq!(b.entries.len(), 1),
            Err(e) => {
                assert_eq!(e.errno(), -ENOSPC);
                assert_eq!(m.lookup_batch(None, 2).unwrap().entries.len(), 2);
                return;
            }
        }
    }
    panic!("no two keys shared a bucket");
}

#[test]
fn freeze_and_permissions() {
    let m = create(MapType::Hash, 4, 8, 4);
    m.update(&k32(1), &v64(1), BPF_ANY).unwrap();
    m.freeze().unwrap();
    assert_eq!(errno(m.update(&k32(2), &v64(1), BPF_ANY)), -EPERM);
    assert_eq!(errno(m.delete(&k32(1))), -EPERM);
    assert_eq!(errno(m.lookup_and_delete(&k32(1))), -EPERM);
    assert_eq!(errno(m.delete_batch(&[&k32(1)])), -EPERM);
    assert_eq!(errno(m.lookup_and_delete_batch(None, 4)), -EPERM);
    assert!(m.lookup(&k32(1)).is_ok());
    assert!(m.lookup_batch(None, 4).is_ok());
    let g = pin();
    m.bpf_update(&k32(2), &v64(2), BPF_ANY, 0, &g).unwrap();
    m.bpf_delete(&k32(2), &g).unwrap();

    let wo = create_flags(MapType::Hash, 4, 8, 4, BPF_F_WRONLY);
    wo.update(&k32(1), &v64(1), BPF_ANY).unwrap();
    assert_eq!(errno(wo.lookup(&k32(1))), -EPERM);
    assert_eq!(errno(wo.lookup_and_delete(&k32(1))), -EPERM);
    wo.delete(&k32(1)).unwrap();
}

#[test]
fn zero_seed_is_deterministic() {
    let order = || {
        let m = create_flags(MapType::Hash, 4, 8, 64, BPF_F_ZERO_SEED);
        for i in 0..40 {
            m.update(&k32(i), &v64(0), BPF_ANY).unwrap();
        }
        m.entries().unwrap().into_iter().map(|(k, _)| k).collect::<Vec<_>>()
    };
    assert_eq!(order(), order());
}
