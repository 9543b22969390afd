//! Map types and create-time validation.

mod common;

use bpfkit_maps::errno::{E2BIG, EINVAL, ENOTSUPP};
use bpfkit_maps::flags::*;
use bpfkit_maps::{Map, MapError, MapSpec, MapType};

fn create_err(spec: MapSpec) -> i32 {
    Map::create(spec, 4).expect_err("expected an error").errno()
}

#[test]
fn map_types_cover_the_kernel_list() {
    for n in 0..=34 {
        let t = MapType::from_u32(n).unwrap();
        assert_eq!(t.number(), n);
        assert_eq!(MapType::from_name(t.name()), Some(t));
    }
    assert_eq!(MapType::from_u32(35), None);
    assert_eq!(MapType::ALL.len(), 35);
    let names = [
        (1, "hash"),
        (2, "array"),
        (3, "prog_array"),
        (5, "percpu_hash"),
        (6, "percpu_array"),
        (9, "lru_hash"),
        (10, "lru_percpu_hash"),
        (11, "lpm_trie"),
        (12, "array_of_maps"),
        (13, "hash_of_maps"),
        (19, "cgroup_storage"),
        (22, "queue"),
        (23, "stack"),
        (25, "devmap_hash"),
        (27, "ringbuf"),
        (31, "user_ringbuf"),
        (33, "arena"),
        (34, "insn_array"),
    ];
    for (n, name) in names {
        assert_eq!(MapType::from_u32(n).unwrap().name(), name);
    }
    assert_eq!(MapType::InsnArray.to_string(), "insn_array");
}

#[test]
fn unsupported_types_are_named() {
    for &t in MapType::ALL {
        if t.is_supported() || t == MapType::Unspec {
            continue;
        }
        let e = Map::create(MapSpec::new(t, 4, 4, 1), 1).unwrap_err();
        assert_eq!(e, MapError::Unsupported { map_type: t });
        assert_eq!(e.errno(), -EINVAL);
        assert_eq!(e.to_string(), format!("map type {} is not supported yet", t.name()));
    }
    assert_eq!(create_err(MapSpec::new(MapType::Unspec, 4, 4, 1)), -EINVAL);
}

#[test]
fn array_validation() {
    let ok = |s: MapSpec| Map::create(s, 4).unwrap();
    ok(MapSpec::new(MapType::Array, 4, 1, 1));
    ok(MapSpec::new(MapType::Array, 4, 8, 1).with_flags(BPF_F_MMAPABLE | BPF_F_RDONLY_PROG));
    ok(MapSpec::new(MapType::Array, 4, 8, 1).with_flags(BPF_F_INNER_MAP | BPF_F_NUMA_NODE));
    assert_eq!(create_err(MapSpec::new(MapType::Array, 8, 8, 1)), -EINVAL);
    assert_eq!(create_err(MapSpec::new(MapType::Array, 4, 0, 1)), -EINVAL);
    assert_eq!(create_err(MapSpec::new(MapType::Array, 4, 8, 0)), -EINVAL);
    assert_eq!(create_err(MapSpec::new(MapType::Array, 4, 8, 1).with_flags(BPF_F_NO_PREALLOC)), -EINVAL);
    assert_eq!(create_err(MapSpec::new(MapType::Array, 4, 8, 1).with_flags(BPF_F_PRESERVE_ELEMS)), -EINVAL);
    assert_eq!(create_err(MapSpec::new(MapType::Array, 4, 8, 1).with_flags(BPF_F_ZERO_SEED)), -EINVAL);
    assert_eq!(
        create_err(MapSpec::new(MapType::Array, 4, 8, 1).with_flags(BPF_F_RDONLY_PROG | BPF_F_WRONLY_PROG)),
        -EINVAL
    );
    assert_eq!(create_err(MapSpec::new(MapType::Array, 4, 8, 1).with_flags(BPF_F_RDONLY | BPF_F_WRONLY)), -EINVAL);
    assert_eq!(create_err(MapSpec::new(MapType::PercpuArray, 4, 8, 1).with_flags(BPF_F_MMAPABLE)), -EINVAL);
    assert_eq!(create_err(MapSpec::new(MapType::PercpuArray, 4, 8, 1).with_flags(BPF_F_NUMA_NODE)), -EINVAL);
    assert_eq!(create_err(MapSpec::new(MapType::PercpuArray, 4, 32 * 1024 + 1, 1)), -E2BIG);
    ok(MapSpec::new(MapType::PercpuArray, 4, 32 * 1024, 1));
    assert_eq!(create_err(MapSpec::new(MapType::ProgArray, 4, 8, 1)), -EINVAL);
    assert_eq!(create_err(MapSpec::new(MapType::ProgArray, 4, 4, 1).with_flags(BPF_F_MMAPABLE)), -EINVAL);
    ok(MapSpec::new(MapType::ProgArray, 4, 4, 1));
}

#[test]
fn hash_validation() {
    let ok = |s: MapSpec| Map::create(s, 4).unwrap();
    for t in [MapType::Hash, MapType::PercpuHash, MapType::LruHash, MapType::LruPercpuHash] {
        ok(MapSpec::new(t, 1, 1, 1));
        assert_eq!(create_err(MapSpec::new(t, 0, 8, 1)), -EINVAL, "{t}");
        assert_eq!(create_err(MapSpec::new(t, 4, 0, 1)), -EINVAL, "{t}");
        assert_eq!(create_err(MapSpec::new(t, 4, 8, 0)), -EINVAL, "{t}");
        assert_eq!(create_err(MapSpec::new(t, 4, 8, 1).with_flags(BPF_F_MMAPABLE)), -EINVAL, "{t}");
        assert_eq!(create_err(MapSpec::new(t, 4, 8, 1).with_flags(BPF_F_INNER_MAP)), -EINVAL, "{t}");
        assert_eq!(create_err(MapSpec::new(t, 2 << 20, 2 << 20, 1)), -E2BIG, "{t}");
    }
    ok(MapSpec::new(MapType::Hash, 4, 8, 1).with_flags(BPF_F_NO_PREALLOC | BPF_F_ZERO_SEED | BPF_F_NUMA_NODE));
    assert_eq!(create_err(MapSpec::new(MapType::Hash, 4, 8, 1).with_flags(BPF_F_NO_COMMON_LRU)), -EINVAL);
    ok(MapSpec::new(MapType::LruHash, 4, 8, 1).with_flags(BPF_F_NO_COMMON_LRU));
    let e = Map::create(MapSpec::new(MapType::LruHash, 4, 8, 1).with_flags(BPF_F_NO_PREALLOC), 1).unwrap_err();
    assert_eq!(e.errno(), -ENOTSUPP);
    assert_eq!(create_err(MapSpec::new(MapType::PercpuHash, 4, 8, 1).with_flags(BPF_F_NUMA_NODE)), -EINVAL);
    assert_eq!(
        create_err(MapSpec::new(MapType::LruHash, 4, 8, 1).with_flags(BPF_F_NO_COMMON_LRU | BPF_F_NUMA_NODE)),
        -EINVAL
    );
    assert_eq!(create_err(MapSpec::new(MapType::PercpuHash, 4, 32 * 1024 + 1, 1)), -E2BIG);
    assert_eq!(create_err(MapSpec::new(MapType::Hash, 4, 8, (1 << 31) + 1)), -E2BIG);
    // LRU with per-CPU lists: max_entries rounded up to a multiple of the CPU count.
    let m = Map::create(MapSpec::new(MapType::LruHash, 4, 8, 10).with_flags(BPF_F_NO_COMMON_LRU), 4).unwrap();
    assert_eq!(m.spec().max_entries, 12);
}

#[test]
fn lpm_queue_ringbuf_validation() {
    let ok = |s: MapSpec| Map::create(s, 4).unwrap();
    ok(MapSpec::new(MapType::LpmTrie, 8, 8, 1).with_flags(BPF_F_NO_PREALLOC));
    ok(MapSpec::new(MapType::LpmTrie, 260, 1, 1).with_flags(BPF_F_NO_PREALLOC));
    assert_eq!(create_err(MapSpec::new(MapType::LpmTrie, 8, 8, 1)), -EINVAL);
    assert_eq!(create_err(MapSpec::new(MapType::LpmTrie, 4, 8, 1).with_flags(BPF_F_NO_PREALLOC)), -EINVAL);
    assert_eq!(create_err(MapSpec::new(MapType::LpmTrie, 261, 8, 1).with_flags(BPF_F_NO_PREALLOC)), -EINVAL);
    assert_eq!(create_err(MapSpec::new(MapType::LpmTrie, 8, 0, 1).with_flags(BPF_F_NO_PREALLOC)), -EINVAL);
    assert_eq!(create_err(MapSpec::new(MapType::LpmTrie, 8, 8, 0).with_flags(BPF_F_NO_PREALLOC)), -EINVAL);
    assert_eq!(
        create_err(MapSpec::new(MapType::LpmTrie, 8, 8, 1).with_flags(BPF_F_NO_PREALLOC | BPF_F_ZERO_SEED)),
        -EINVAL
    );

    for t in [MapType::Queue, MapType::Stack] {
        ok(MapSpec::new(t, 0, 8, 1).with_flags(BPF_F_RDONLY_PROG));
        assert_eq!(create_err(MapSpec::new(t, 4, 8, 1)), -EINVAL);
        assert_eq!(create_err(MapSpec::new(t, 0, 0, 1)), -EINVAL);
        assert_eq!(create_err(MapSpec::new(t, 0, 8, 0)), -EINVAL);
        assert_eq!(create_err(MapSpec::new(t, 0, 8, 1).with_flags(BPF_F_NO_PREALLOC)), -EINVAL);
        assert_eq!(create_err(MapSpec::new(t, 0, (4 << 20) + 1, 1)), -E2BIG);
    }

    ok(MapSpec::new(MapType::Ringbuf, 0, 0, 4096));
    ok(MapSpec::new(MapType::Ringbuf, 0, 0, 1 << 20).with_flags(BPF_F_NUMA_NODE));
    assert_eq!(create_err(MapSpec::new(MapType::Ringbuf, 4, 0, 4096)), -EINVAL);
    assert_eq!(create_err(MapSpec::new(MapType::Ringbuf, 0, 4, 4096)), -EINVAL);
    assert_eq!(create_err(MapSpec::new(MapType::Ringbuf, 0, 0, 3 * 4096)), -EINVAL);
    assert_eq!(create_err(MapSpec::new(MapType::Ringbuf, 0, 0, 2048)), -EINVAL);
    assert_eq!(create_err(MapSpec::new(MapType::Ringbuf, 0, 0, 0)), -EINVAL);
    assert_eq!(create_err(MapSpec::new(MapType::Ringbuf, 0, 0, 4096).with_flags(BPF_F_RDONLY)), -EINVAL);
}

#[test]
fn map_in_map_and_generic_validation() {
    let inner = MapSpec::new(MapType::Array, 4, 8, 4);
    Map::create(MapSpec::new(MapType::ArrayOfMaps, 4, 4, 2).with_inner(inner.clone()), 1).unwrap();
    Map::create(MapSpec::new(MapType::HashOfMaps, 8, 4, 2).with_inner(inner.clone()), 1).unwrap();
    assert_eq!(create_err(MapSpec::new(MapType::ArrayOfMaps, 4, 4, 2)), -EINVAL);
    assert_eq!(create_err(MapSpec::new(MapType::ArrayOfMaps, 4, 8, 2).with_inner(inner.clone())), -EINVAL);
    assert_eq!(create_err(MapSpec::new(MapType::HashOfMaps, 4, 8, 2).with_inner(inner.clone())), -EINVAL);
    assert_eq!(create_err(MapSpec::new(MapType::Array, 4, 8, 2).with_inner(inner.clone())), -EINVAL);
    let nested = MapSpec::new(MapType::ArrayOfMaps, 4, 4, 2).with_inner(inner.clone());
    assert_eq!(create_err(MapSpec::new(MapType::ArrayOfMaps, 4, 4, 2).with_inner(nested)), -EINVAL);
    // An invalid template is an invalid map-in-map.
    assert_eq!(
        create_err(MapSpec::new(MapType::ArrayOfMaps, 4, 4, 2).with_inner(MapSpec::new(MapType::Array, 4, 0, 4))),
        -EINVAL
    );

    let mut s = MapSpec::new(MapType::Hash, 4, 8, 1);
    s.map_extra = 1;
    assert_eq!(create_err(s), -EINVAL);
    Map::create(MapSpec::new(MapType::Hash, 4, 8, 1).with_name("fifteen_chars.x"), 1).unwrap();
    assert_eq!(create_err(MapSpec::new(MapType::Hash, 4, 8, 1).with_name("sixteen_chars.xy")), -EINVAL);
    assert_eq!(create_err(MapSpec::new(MapType::Hash, 4, 8, 1).with_name("bad-name")), -EINVAL);
    assert_eq!(Map::create(MapSpec::new(MapType::Hash, 4, 8, 1), 0).unwrap_err().errno(), -EINVAL);
}

#[test]
fn maps_are_send_and_sync_with_unique_ids() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Map>();
    assert_send_sync::<bpfkit_maps::RingBuf>();
    let a = common::create(MapType::Array, 4, 8, 1);
    let b = common::create(MapType::Array, 4, 8, 1);
    assert_ne!(a.id(), b.id());
    assert!(a.id() > 0);
}
