//! `lpm_trie`.

mod common;

use bpfkit_maps::errno::{EEXIST, EINVAL, ENOENT, ENOSPC};
use bpfkit_maps::flags::*;
use bpfkit_maps::{Map, MapSpec, MapType, pin};
use common::*;

fn key(plen: u32, ip: [u8; 4]) -> Vec<u8> {
    let mut k = plen.to_ne_bytes().to_vec();
    k.extend_from_slice(&ip);
    k
}

fn lpm(max: u32) -> Map {
    Map::create(MapSpec::new(MapType::LpmTrie, 8, 8, max).with_flags(BPF_F_NO_PREALLOC), 1).unwrap()
}

fn matched(m: &Map, ip: [u8; 4]) -> Option<u64> {
    m.lookup(&key(32, ip)).ok().map(|v| as_u64(&v))
}

#[test]
fn ipv4_longest_match() {
    let m = lpm(16);
    m.update(&key(8, [10, 0, 0, 0]), &v64(8), BPF_ANY).unwrap();
    m.update(&key(16, [10, 1, 0, 0]), &v64(16), BPF_ANY).unwrap();
    m.update(&key(24, [10, 1, 1, 0]), &v64(24), BPF_ANY).unwrap();
    m.update(&key(32, [10, 1, 1, 1]), &v64(32), BPF_ANY).unwrap();
    assert_eq!(matched(&m, [10, 1, 1, 1]), Some(32));
    assert_eq!(matched(&m, [10, 1, 1, 2]), Some(24));
    assert_eq!(matched(&m, [10, 1, 2, 3]), Some(16));
    assert_eq!(matched(&m, [10, 2, 3, 4]), Some(8));
    assert_eq!(matched(&m, [11, 0, 0, 1]), None);
    assert_eq!(errno(m.lookup(&key(32, [11, 0, 0, 1]))), -ENOENT);
    // The key's own prefix length bounds the match, like the kernel.
    assert_eq!(as_u64(&m.lookup(&key(16, [10, 1, 1, 1])).unwrap()), 16);
    assert_eq!(as_u64(&m.lookup(&key(23, [10, 1, 1, 1])).unwrap()), 16);
    assert_eq!(as_u64(&m.lookup(&key(200, [10, 1, 1, 1])).unwrap()), 32);
    // BPF side returns a pointer to the matched value.
    let g = pin();
    let p = m.bpf_lookup(&key(32, [10, 1, 1, 9]), 0, &g).unwrap();
    assert!(in_regions(&m, p, 8));
    assert_eq!(word(p).load(std::sync::atomic::Ordering::Relaxed), 24);
    assert!(m.bpf_lookup(&key(32, [12, 0, 0, 0]), 0, &g).is_none());
    drop(g);
    // Deletes are exact.
    assert_eq!(errno(m.delete(&key(23, [10, 1, 1, 0]))), -ENOENT);
    m.delete(&key(24, [10, 1, 1, 0])).unwrap();
    assert_eq!(matched(&m, [10, 1, 1, 2]), Some(16));
    assert_eq!(matched(&m, [10, 1, 1, 1]), Some(32));
    m.delete(&key(32, [10, 1, 1, 1])).unwrap();
    assert_eq!(matched(&m, [10, 1, 1, 1]), Some(16));
    // A default route.
    m.update(&key(0, [0, 0, 0, 0]), &v64(0), BPF_ANY).unwrap();
    assert_eq!(matched(&m, [192, 168, 0, 1]), Some(0));
}

#[test]
fn update_rules() {
    let m = lpm(2);
    assert_eq!(errno(m.update(&key(33, [1, 2, 3, 4]), &v64(1), BPF_ANY)), -EINVAL);
    assert_eq!(errno(m.delete(&key(33, [1, 2, 3, 4]))), -EINVAL);
    assert_eq!(errno(m.update(&key(8, [1, 2, 3, 4]), &v64(1), 3)), -EINVAL);
    assert_eq!(errno(m.update(&key(8, [1, 0, 0, 0]), &v64(1), BPF_EXIST)), -ENOENT);
    m.update(&key(8, [1, 0, 0, 0]), &v64(1), BPF_NOEXIST).unwrap();
    // Bits past the prefix do not matter: same entry.
    assert_eq!(errno(m.update(&key(8, [1, 9, 9, 9]), &v64(2), BPF_NOEXIST)), -EEXIST);
    m.update(&key(8, [1, 9, 9, 9]), &v64(2), BPF_EXIST).unwrap();
    assert_eq!(matched(&m, [1, 2, 3, 4]), Some(2));
    m.update(&key(16, [1, 1, 0, 0]), &v64(3), BPF_ANY).unwrap();
    // Full: -ENOSPC (not -E2BIG) for a new prefix; replacing still works.
    assert_eq!(errno(m.update(&key(24, [1, 1, 1, 0]), &v64(4), BPF_ANY)), -ENOSPC);
    m.update(&key(16, [1, 1, 0, 0]), &v64(5), BPF_ANY).unwrap();
    assert_eq!(errno(m.update(&[0; 4], &v64(1), BPF_ANY)), -EINVAL);
    assert_eq!(m.element_count(), 2);
    // Keys come back canonical (bits past the prefix cleared).
    assert_eq!(m.get_next_key(None).unwrap(), key(16, [1, 1, 0, 0]));
}

#[test]
fn get_next_key_is_postorder() {
    let m = lpm(16);
    let keys = [
        key(16, [192, 168, 0, 0]),
        key(24, [192, 168, 128, 0]),
        key(24, [192, 168, 1, 0]),
        key(24, [192, 168, 0, 0]),
        key(8, [10, 0, 0, 0]),
        key(32, [10, 0, 0, 1]),
    ];
    for (i, k) in keys.iter().enumerate() {
        m.update(k, &v64(i as u64), BPF_ANY).unwrap();
    }
    let mut order = Vec::new();
    let mut cur: Option<Vec<u8>> = None;
    while let Ok(k) = m.get_next_key(cur.as_deref()) {
        order.push(k.clone());
        cur = Some(k);
    }
    assert_eq!(
        order,
        vec![
            key(32, [10, 0, 0, 1]),
            key(8, [10, 0, 0, 0]),
            key(24, [192, 168, 0, 0]),
            key(24, [192, 168, 1, 0]),
            key(24, [192, 168, 128, 0]),
            key(16, [192, 168, 0, 0]),
        ]
    );
    assert_eq!(errno(m.get_next_key(Some(&key(16, [192, 168, 0, 0])))), -ENOENT);
    // A key that is not in the trie (or invalid) gives the first key.
    assert_eq!(m.get_next_key(Some(&key(24, [1, 2, 3, 0]))).unwrap(), order[0]);
    assert_eq!(m.get_next_key(Some(&key(40, [1, 2, 3, 0]))).unwrap(), order[0]);
    let dumped: Vec<Vec<u8>> = m.entries().unwrap().into_iter().map(|(k, _)| k).collect();
    assert_eq!(dumped, order);

    // Batches follow the same order.
    let mut batched = Vec::new();
    let mut cursor = None;
    loop {
        let b = m.lookup_batch(cursor.as_ref(), 4).unwrap();
        batched.extend(b.entries.into_iter().map(|(k, _)| k));
        match b.next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(batched, order);
    assert_eq!(m.delete_batch(&[&order[0], &order[1]]).unwrap(), 2);
    assert_eq!(m.element_count(), 4);
}

#[test]
fn ipv6_sized_keys() {
    let m = Map::create(MapSpec::new(MapType::LpmTrie, 20, 4, 8).with_flags(BPF_F_NO_PREALLOC), 1).unwrap();
    let k6 = |plen: u32, b: [u8; 16]| {
        let mut k = plen.to_ne_bytes().to_vec();
        k.extend_from_slice(&b);
        k
    };
    let mut net = [0u8; 16];
    net[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
    m.update(&k6(32, net), &1u32.to_ne_bytes(), BPF_ANY).unwrap();
    let mut host = net;
    host[15] = 1;
    m.update(&k6(128, host), &2u32.to_ne_bytes(), BPF_ANY).unwrap();
    assert_eq!(m.lookup(&k6(128, host)).unwrap(), 2u32.to_ne_bytes());
    host[15] = 2;
    assert_eq!(m.lookup(&k6(128, host)).unwrap(), 1u32.to_ne_bytes());
    host[3] = 0xb9;
    assert_eq!(errno(m.lookup(&k6(128, host))), -ENOENT);
    // Prefix lengths that are not byte multiples.
    m.update(&k6(65, [0xff; 16]), &3u32.to_ne_bytes(), BPF_ANY).unwrap();
    let mut probe = [0xff; 16];
    probe[8] = 0x80;
    assert_eq!(m.lookup(&k6(128, probe)).unwrap(), 3u32.to_ne_bytes());
    probe[8] = 0x7f;
    assert_eq!(errno(m.lookup(&k6(128, probe))), -ENOENT);
}
