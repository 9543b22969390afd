//! `queue` and `stack`.

mod common;

use bpfkit_maps::errno::{E2BIG, EINVAL, ENOENT, ENOTSUPP, EPERM};
use bpfkit_maps::flags::*;
use bpfkit_maps::{MapType, pin};
use common::*;

#[test]
fn queue_is_fifo_and_overwrites_the_oldest() {
    let q = create(MapType::Queue, 0, 8, 3);
    assert_eq!(q.pop(), None);
    assert_eq!(errno(q.pop_into(&mut [0; 8])), -ENOENT);
    for i in 1..=3 {
        q.push(&v64(i), 0).unwrap();
    }
    assert_eq!(errno(q.push(&v64(4), 0)), -E2BIG);
    assert_eq!(errno(q.push(&v64(4), BPF_NOEXIST)), -EINVAL);
    assert_eq!(errno(q.push(&v64(4), BPF_EXIST | 4)), -EINVAL);
    q.push(&v64(4), BPF_EXIST).unwrap();
    assert_eq!(q.peek(), Some(v64(2).to_vec()));
    assert_eq!(q.element_count(), 3);
    assert_eq!(q.entries().unwrap().into_iter().map(|(_, v)| as_u64(&v)).collect::<Vec<_>>(), vec![2, 3, 4]);
    assert_eq!(q.pop(), Some(v64(2).to_vec()));
    assert_eq!(q.pop(), Some(v64(3).to_vec()));
    q.push(&v64(5), 0).unwrap();
    assert_eq!(q.pop(), Some(v64(4).to_vec()));
    assert_eq!(q.pop(), Some(v64(5).to_vec()));
    assert_eq!(q.pop(), None);
    assert_eq!(errno(q.push(&[1; 4], 0)), -EINVAL);
}

#[test]
fn stack_is_lifo_and_overwrites_the_bottom() {
    let s = create(MapType::Stack, 0, 8, 3);
    for i in 1..=3 {
        s.push(&v64(i), 0).unwrap();
    }
    assert_eq!(errno(s.push(&v64(4), 0)), -E2BIG);
    s.push(&v64(4), BPF_EXIST).unwrap();
    assert_eq!(s.peek(), Some(v64(4).to_vec()));
    assert_eq!(s.entries().unwrap().into_iter().map(|(_, v)| as_u64(&v)).collect::<Vec<_>>(), vec![4, 3, 2]);
    let mut out = [0u8; 8];
    s.pop_into(&mut out).unwrap();
    assert_eq!(as_u64(&out), 4);
    assert_eq!(s.pop(), Some(v64(3).to_vec()));
    assert_eq!(s.pop(), Some(v64(2).to_vec()));
    assert_eq!(s.pop(), None);
}

#[test]
fn host_commands() {
    let q = create(MapType::Queue, 0, 4, 2);
    q.update(&[], &7u32.to_ne_bytes(), BPF_ANY).unwrap();
    q.update(&[], &8u32.to_ne_bytes(), BPF_ANY).unwrap();
    assert_eq!(errno(q.update(&[], &9u32.to_ne_bytes(), BPF_ANY)), -E2BIG);
    assert_eq!(q.lookup(&[]).unwrap(), 7u32.to_ne_bytes());
    assert_eq!(q.lookup_and_delete(&[]).unwrap(), 7u32.to_ne_bytes());
    assert_eq!(errno(q.lookup(&[1])), -EINVAL);
    assert_eq!(errno(q.delete(&[])), -EINVAL);
    assert_eq!(errno(q.get_next_key(None)), -EINVAL);
    assert_eq!(errno(q.lookup_batch(None, 1)), -ENOTSUPP);
    assert_eq!(errno(q.update_batch(&[], 0)), -ENOTSUPP);
    assert!(q.value_regions().is_empty());
    let g = pin();
    assert!(q.bpf_lookup(&[], 0, &g).is_none());
    assert_eq!(errno(q.bpf_update(&[], &[0; 4], 0, 0, &g)), -ENOTSUPP);
    drop(g);
    q.freeze().unwrap();
    assert_eq!(errno(q.update(&[], &9u32.to_ne_bytes(), BPF_ANY)), -EPERM);
    assert_eq!(errno(q.lookup_and_delete(&[])), -EPERM);
    assert_eq!(q.lookup(&[]).unwrap(), 8u32.to_ne_bytes());
    // Programs may still push and pop.
    q.push(&[1; 4], 0).unwrap();
    assert_eq!(q.pop(), Some(8u32.to_ne_bytes().to_vec()));

    let ro = create_flags(MapType::Stack, 0, 4, 2, BPF_F_RDONLY_PROG);
    assert_eq!(errno(ro.push(&[1; 4], 0)), -EPERM);
    ro.update(&[], &[1; 4], 0).unwrap();
    assert_eq!(errno(ro.pop_into(&mut [0; 4])), -EPERM);
    assert_eq!(ro.peek(), Some(vec![1; 4]));

    let not_a_queue = create(MapType::Array, 4, 4, 1);
    assert_eq!(errno(not_a_queue.push(&[0; 4], 0)), -ENOTSUPP);
}
