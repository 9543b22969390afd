//! `prog_array`, `array_of_maps`, `hash_of_maps`.

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use bpfkit_maps::errno::{E2BIG, EEXIST, EINVAL, ENOENT};
use bpfkit_maps::flags::*;
use bpfkit_maps::{Map, MapSpec, MapType, ProgEntry, pin};
use common::*;

/// A stand-in for the runtime's program object.
struct Prog {
    name: &'static str,
}

fn prog(id: u32, name: &'static str) -> ProgEntry {
    ProgEntry::new(id, Arc::new(Prog { name }))
}

/// Waits until `weak` is dead, nudging reclamation with `nudge`.
fn wait_dropped<T: ?Sized>(weak: &Weak<T>, mut nudge: impl FnMut()) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while weak.strong_count() > 0 {
        assert!(Instant::now() < deadline, "replaced handle never dropped");
        nudge();
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn prog_array() {
    let m = create(MapType::ProgArray, 4, 4, 4);
    let changes = Arc::new(Mutex::new(Vec::new()));
    let c = Arc::clone(&changes);
    m.set_prog_array_hook(Some(Arc::new(move |i| c.lock().unwrap().push(i)))).unwrap();
    let v0 = m.prog_array_version().unwrap();

    m.update_prog(&k32(1), prog(77, "tail"), BPF_ANY).unwrap();
    assert_eq!(errno(m.update_prog(&k32(1), prog(1, "x"), BPF_NOEXIST)), -EINVAL);
    assert_eq!(errno(m.update_prog(&k32(4), prog(1, "x"), BPF_ANY)), -E2BIG);
    assert_eq!(errno(m.update(&k32(1), &[0; 4], BPF_ANY)), -EINVAL);
    assert_eq!(m.lookup(&k32(1)).unwrap(), 77u32.to_ne_bytes());
    assert_eq!(errno(m.lookup(&k32(0))), -ENOENT);
    assert_eq!(m.lookup_prog(&k32(1)).unwrap().id, 77);

    let g = pin();
    let target = m.bpf_tail_call_target(1, &g).unwrap();
    assert_eq!(target.handle.downcast_ref::<Prog>().unwrap().name, "tail");
    assert!(m.bpf_tail_call_target(0, &g).is_none());
    assert!(m.bpf_tail_call_target(4, &g).is_none());
    assert!(m.bpf_lookup(&k32(1), 0, &g).is_none(), "programs cannot look up prog arrays");

    // Replacing the slot while a program holds the old target keeps it alive.
    let weak = Arc::downgrade(&target.handle);
    m.update_prog(&k32(1), prog(78, "new"), BPF_ANY).unwrap();
    assert_eq!(target.handle.downcast_ref::<Prog>().unwrap().name, "tail");
    assert_eq!(target.id, 77);
    assert_eq!(m.bpf_tail_call_target(1, &g).unwrap().id, 78);
    drop(g);
    wait_dropped(&weak, || m.update_prog(&k32(3), prog(5, "nudge"), BPF_ANY).unwrap());

    assert_eq!(m.get_next_key(None).unwrap(), k32(0));
    assert_eq!(m.get_next_key(Some(&k32(2))).unwrap(), k32(3));
    m.delete(&k32(1)).unwrap();
    assert_eq!(errno(m.delete(&k32(1))), -ENOENT);
    assert_eq!(errno(m.delete(&k32(9))), -E2BIG);
    let entries = m.entries().unwrap();
    assert_eq!(entries, vec![(k32(3).to_vec(), 5u32.to_ne_bytes().to_vec())]);
    assert_eq!(m.element_count(), 1);
    assert!(m.prog_array_version().unwrap() > v0);
    assert_eq!(changes.lock().unwrap().first(), Some(&1));
    assert!(changes.lock().unwrap().contains(&3));
    assert!(m.value_regions().is_empty());
    assert!(create(MapType::Array, 4, 4, 1).prog_array_version().is_none());
}

#[test]
fn prog_array_version_counts_changes() {
    let m = create(MapType::ProgArray, 4, 4, 2);
    let count = Arc::new(AtomicU32::new(0));
    let c = Arc::clone(&count);
    m.set_prog_array_hook(Some(Arc::new(move |_| {
        c.fetch_add(1, Ordering::Relaxed);
    })))
    .unwrap();
    let v = m.prog_array_version().unwrap();
    m.update_prog(&k32(0), prog(1, "a"), BPF_ANY).unwrap();
    m.update_prog(&k32(0), prog(2, "b"), BPF_ANY).unwrap();
    m.delete(&k32(0)).unwrap();
    assert_eq!(m.prog_array_version().unwrap(), v + 3);
    assert_eq!(count.load(Ordering::Relaxed), 3);
}

#[test]
fn array_of_maps() {
    let template = MapSpec::new(MapType::Array, 4, 8, 4);
    let outer = Map::create(MapSpec::new(MapType::ArrayOfMaps, 4, 4, 2).with_inner(template.clone()), 1).unwrap();
    let inner = Arc::new(Map::create(template.clone(), 1).unwrap());
    outer.update_inner_map(&k32(0), Arc::clone(&inner), BPF_ANY).unwrap();
    assert_eq!(outer.lookup(&k32(0)).unwrap(), inner.id().to_ne_bytes());
    assert_eq!(errno(outer.lookup(&k32(1))), -ENOENT);
    assert!(Arc::ptr_eq(&outer.lookup_inner_map(&k32(0)).unwrap(), &inner));

    // Spec mismatches are -EINVAL.
    let wrong_value = Arc::new(Map::create(MapSpec::new(MapType::Array, 4, 16, 4), 1).unwrap());
    let wrong_size = Arc::new(Map::create(MapSpec::new(MapType::Array, 4, 8, 5), 1).unwrap());
    let wrong_type = Arc::new(Map::create(MapSpec::new(MapType::Hash, 4, 8, 4), 1).unwrap());
    let wrong_flags = Arc::new(Map::create(template.clone().with_flags(BPF_F_RDONLY_PROG), 1).unwrap());
    for bad in [&wrong_value, &wrong_size, &wrong_type, &wrong_flags] {
        assert_eq!(errno(outer.update_inner_map(&k32(1), Arc::clone(bad), BPF_ANY)), -EINVAL);
    }
    assert_eq!(errno(outer.update_inner_map(&k32(1), Arc::clone(&inner), BPF_NOEXIST)), -EINVAL);
    assert_eq!(errno(outer.update_inner_map(&k32(2), Arc::clone(&inner), BPF_ANY)), -E2BIG);
    assert_eq!(errno(outer.update(&k32(1), &[0; 4], BPF_ANY)), -EINVAL);

    // Programs get the inner map and use it.
    let g = pin();
    let m = outer.bpf_lookup_inner(&k32(0), &g).unwrap();
    assert_eq!(m.id(), inner.id());
    assert_eq!(outer.bpf_lookup(&k32(0), 0, &g), Some((m as *const Map).cast::<u8>().cast_mut()));
    let p = m.bpf_lookup(&k32(2), 0, &g).unwrap();
    word(p).store(42, Ordering::Relaxed);
    assert_eq!(as_u64(&inner.lookup(&k32(2)).unwrap()), 42);
    assert!(outer.bpf_lookup_inner(&k32(1), &g).is_none());
    assert!(outer.bpf_lookup_inner(&k32(7), &g).is_none());

    // Replacing or deleting the slot keeps the borrowed inner map alive until the guard goes.
    let replaced = Arc::new(Map::create(template.clone(), 1).unwrap());
    let weak = Arc::downgrade(&replaced);
    outer.update_inner_map(&k32(1), replaced, BPF_ANY).unwrap();
    let held = outer.bpf_lookup_inner(&k32(1), &g).unwrap();
    outer.delete(&k32(1)).unwrap();
    assert_eq!(held.spec().value_size, 8);
    held.bpf_update(&k32(0), &v64(1), BPF_ANY, 0, &g).unwrap();
    drop(g);
    wait_dropped(&weak, || outer.update_inner_map(&k32(0), Arc::clone(&inner), BPF_ANY).unwrap());
    assert_eq!(errno(outer.delete(&k32(1))), -ENOENT);

    // BPF_F_INNER_MAP lets array inner maps differ in size (flags must still match).
    let flexible = MapSpec::new(MapType::Array, 4, 8, 4).with_flags(BPF_F_INNER_MAP);
    let outer = Map::create(MapSpec::new(MapType::ArrayOfMaps, 4, 4, 2).with_inner(flexible.clone()), 1).unwrap();
    let bigger = Arc::new(Map::create(MapSpec::new(MapType::Array, 4, 8, 100).with_flags(BPF_F_INNER_MAP), 1).unwrap());
    outer.update_inner_map(&k32(0), bigger, BPF_ANY).unwrap();
    assert_eq!(errno(outer.update_inner_map(&k32(1), Arc::clone(&inner), BPF_ANY)), -EINVAL);
    assert_eq!(outer.entries().unwrap().len(), 1);
}

#[test]
fn hash_of_maps() {
    let template = MapSpec::new(MapType::Hash, 4, 8, 16);
    let outer = Map::create(MapSpec::new(MapType::HashOfMaps, 8, 4, 4).with_inner(template.clone()), 1).unwrap();
    let key = 0x1234_5678_u64.to_ne_bytes();
    // Non-array inner maps may differ in max_entries.
    let inner = Arc::new(Map::create(MapSpec::new(MapType::Hash, 4, 8, 64), 1).unwrap());
    outer.update_inner_map(&key, Arc::clone(&inner), BPF_NOEXIST).unwrap();
    assert_eq!(errno(outer.update_inner_map(&key, Arc::clone(&inner), BPF_NOEXIST)), -EEXIST);
    assert_eq!(errno(outer.update_inner_map(&[0; 8], Arc::clone(&inner), BPF_EXIST)), -ENOENT);
    let bad = Arc::new(Map::create(MapSpec::new(MapType::LruHash, 4, 8, 16), 1).unwrap());
    assert_eq!(errno(outer.update_inner_map(&[0; 8], bad, BPF_ANY)), -EINVAL);
    assert_eq!(errno(outer.update(&key, &[0; 4], BPF_ANY)), -EINVAL);
    assert_eq!(outer.lookup(&key).unwrap(), inner.id().to_ne_bytes());
    assert!(Arc::ptr_eq(&outer.lookup_inner_map(&key).unwrap(), &inner));
    assert_eq!(outer.get_next_key(None).unwrap(), key);

    let g = pin();
    let m = outer.bpf_lookup_inner(&key, &g).unwrap();
    m.bpf_update(&k32(5), &v64(55), BPF_ANY, 0, &g).unwrap();
    assert_eq!(as_u64(&inner.lookup(&k32(5)).unwrap()), 55);
    assert!(outer.bpf_lookup(&key, 0, &g).is_some());
    assert!(outer.value_regions().is_empty());

    // Replace with another map while the old one is borrowed.
    let other = Arc::new(Map::create(template.clone(), 1).unwrap());
    let weak_inner = Arc::downgrade(&inner);
    drop(inner);
    outer.update_inner_map(&key, Arc::clone(&other), BPF_EXIST).unwrap();
    assert_eq!(m.lookup(&k32(5)).map(|v| as_u64(&v)), Ok(55));
    assert_eq!(outer.bpf_lookup_inner(&key, &g).unwrap().id(), other.id());
    drop(g);
    wait_dropped(&weak_inner, || {
        outer.update_inner_map(&[1; 8], Arc::clone(&other), BPF_ANY).unwrap();
        outer.delete(&[1; 8]).unwrap();
    });
    outer.delete(&key).unwrap();
    assert_eq!(errno(outer.lookup(&key)), -ENOENT);
    assert_eq!(outer.element_count(), 0);
}
