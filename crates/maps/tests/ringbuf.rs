//! `ringbuf`.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bpfkit_maps::errno::{EAGAIN, EINVAL, ENOTSUPP};
use bpfkit_maps::flags::*;
use bpfkit_maps::{Map, MapSpec, MapType};
use common::*;

fn ring(size: u32) -> Map {
    Map::create(MapSpec::new(MapType::Ringbuf, 0, 0, size), 1).unwrap()
}

fn fill(p: *mut u8, len: usize, byte: u8) {
    // SAFETY: `p` is a reserved record of at least `len` bytes inside the ring's storage,
    // which nothing else writes until the record is submitted.
    unsafe { std::ptr::write_bytes(p, byte, len) };
}

#[test]
fn reserve_submit_discard_in_order() {
    let m = ring(4096);
    let rb = m.ringbuf().unwrap();
    assert_eq!(rb.query(BPF_RB_RING_SIZE), 4096);
    let a = rb.reserve(10, 0).unwrap();
    let b = rb.reserve(3, 0).unwrap();
    let c = rb.reserve(8, 0).unwrap();
    assert!(in_regions(&m, a, 10) && in_regions(&m, c, 8));
    assert_eq!(a as usize % 8, 0);
    assert_eq!(b as usize - a as usize, 8 + 16, "10 bytes + header, rounded to 8");
    assert_eq!(rb.query(BPF_RB_AVAIL_DATA), 24 + 16 + 16);
    assert_eq!(rb.query(BPF_RB_PROD_POS), 56);
    assert_eq!(rb.query(BPF_RB_CONS_POS), 0);
    assert_eq!(rb.query(99), 0);
    fill(a, 10, 0xaa);
    fill(b, 3, 0xbb);
    fill(c, 8, 0xcc);
    // Committed out of order: the consumer waits for the first busy record.
    rb.submit(c, 0).unwrap();
    rb.discard(b, 0).unwrap();
    assert!(rb.drain().is_empty());
    rb.submit(a, 0).unwrap();
    assert_eq!(rb.drain(), vec![vec![0xaa; 10], vec![0xcc; 8]]);
    assert_eq!(rb.query(BPF_RB_AVAIL_DATA), 0);
    assert_eq!(rb.query(BPF_RB_CONS_POS), 56);
    // Bad pointers and double commits are refused.
    assert_eq!(errno(rb.submit(a, 0)), -EINVAL);
    assert_eq!(errno(rb.submit(std::ptr::null_mut(), 0)), -EINVAL);
    assert_eq!(errno(rb.discard(a.wrapping_add(1), 0)), -EINVAL);
    // Reserve rules.
    assert!(rb.reserve(8, 1).is_none());
    assert!(rb.reserve(4096, 0).is_none());
    // Host commands are not supported.
    assert_eq!(errno(m.lookup(&[])), -ENOTSUPP);
    assert_eq!(errno(m.update(&[], &[], 0)), -ENOTSUPP);
    assert_eq!(errno(m.delete(&[])), -ENOTSUPP);
    assert_eq!(errno(m.get_next_key(None)), -ENOTSUPP);
    assert!(create(MapType::Array, 4, 4, 1).ringbuf().is_none());
}

#[test]
fn output_full_and_wakeups() {
    let m = ring(4096);
    let rb = m.ringbuf().unwrap();
    let woken = Arc::new(AtomicUsize::new(0));
    let w = Arc::clone(&woken);
    rb.set_notify(Some(Arc::new(move || {
        w.fetch_add(1, Ordering::Relaxed);
    })));
    rb.output(&[1, 2, 3], 0).unwrap();
    assert_eq!(rb.wakeups(), 1, "consumer had caught up: wake");
    rb.output(&[4], 0).unwrap();
    assert_eq!(rb.wakeups(), 1, "consumer behind: no wakeup");
    rb.output(&[5], BPF_RB_FORCE_WAKEUP).unwrap();
    assert_eq!(rb.wakeups(), 2);
    assert_eq!(rb.drain(), vec![vec![1, 2, 3], vec![4], vec![5]]);
    rb.output(&[6], BPF_RB_NO_WAKEUP).unwrap();
    assert_eq!(rb.wakeups(), 2);
    assert_eq!(woken.load(Ordering::Relaxed), 2);
    assert_eq!(errno(rb.output(&[6], 4)), -EINVAL);

    // Fill a fresh ring: it holds at most size - 8 bytes.
    let m = ring(4096);
    let rb = m.ringbuf().unwrap();
    let mut n = 0;
    while rb.output(&[0; 504], 0).is_ok() {
        n += 1;
    }
    assert_eq!(n, 7, "7 records of 512 bytes; an 8th would fill the ring completely");
    assert_eq!(errno(rb.output(&[0; 504], 0)), -EAGAIN);
    assert!(rb.reserve(497, 0).is_none(), "512 bytes with the header: too many");
    let last = rb.reserve(496, 0).unwrap();
    assert!(rb.reserve(0, 0).is_none());
    rb.discard(last, BPF_RB_NO_WAKEUP).unwrap();
    assert_eq!(rb.query(BPF_RB_AVAIL_DATA), 4088);
    assert_eq!(rb.drain().len(), 7);
    assert_eq!(rb.query(BPF_RB_AVAIL_DATA), 0);
}

#[test]
fn wrap_around_pads_the_end() {
    let m = ring(4096);
    let rb = m.ringbuf().unwrap();
    for i in 0..4u8 {
        rb.output(&[i; 1000], 0).unwrap();
    }
    assert_eq!(rb.query(BPF_RB_PROD_POS), 4 * 1008);
    assert_eq!(rb.drain().len(), 4);
    // 64 bytes are left before the end: the next record starts at offset 0 after padding.
    let p = rb.reserve(1000, 0).unwrap();
    let base = m.value_regions()[0].ptr as usize;
    assert_eq!(p as usize - base, 8);
    assert_eq!(rb.query(BPF_RB_PROD_POS), 4096 + 1008);
    assert_eq!(rb.query(BPF_RB_AVAIL_DATA), 64 + 1008);
    fill(p, 1000, 9);
    rb.submit(p, 0).unwrap();
    assert_eq!(rb.drain(), vec![vec![9; 1000]]);
    // Many laps with varied sizes keep order and contents.
    let mut next = 0u32;
    let mut expect = 0u32;
    for round in 0..2000u32 {
        let len = 1 + (round * 37 % 600) as usize;
        let mut rec = vec![0u8; len];
        rec[..4.min(len)].copy_from_slice(&next.to_ne_bytes()[..4.min(len)]);
        if rb.output(&rec, 0).is_ok() {
            next += 1;
        }
        if round % 3 == 0 {
            rb.consume(|r| {
                if r.len() >= 4 {
                    assert_eq!(u32::from_ne_bytes(r[..4].try_into().unwrap()), expect);
                }
                expect += 1;
            });
        }
    }
    rb.consume(|_| expect += 1);
    assert_eq!(expect, next);
}

#[test]
fn concurrent_producers_lose_nothing() {
    let m = Arc::new(ring(1 << 14));
    const PER: u32 = 5000;
    let producers: Vec<_> = (0..3u32)
        .map(|t| {
            let m = Arc::clone(&m);
            std::thread::spawn(move || {
                let rb = m.ringbuf().unwrap();
                for i in 0..PER {
                    let mut rec = [0u8; 12];
                    rec[..4].copy_from_slice(&t.to_ne_bytes());
                    rec[4..8].copy_from_slice(&i.to_ne_bytes());
                    if i % 2 == 0 {
                        while rb.output(&rec, 0).is_err() {
                            std::thread::yield_now();
                        }
                    } else {
                        let p = loop {
                            if let Some(p) = rb.reserve(12, 0) {
                                break p;
                            }
                            std::thread::yield_now();
                        };
                        // SAFETY: `p` is a fresh 12-byte reserved record.
                        unsafe { std::ptr::copy_nonoverlapping(rec.as_ptr(), p, 12) };
                        if i % 7 == 0 {
                            rb.discard(p, 0).unwrap();
                        } else {
                            rb.submit(p, 0).unwrap();
                        }
                    }
                }
            })
        })
        .collect();
    let rb = m.ringbuf().unwrap();
    let mut next = [0u32; 3];
    let mut done = false;
    while !done {
        done = producers.iter().all(|p| p.is_finished());
        rb.consume(|r| {
            let t = u32::from_ne_bytes(r[..4].try_into().unwrap()) as usize;
            let i = u32::from_ne_bytes(r[4..8].try_into().unwrap());
            // Skip the discarded sequence numbers.
            while next[t] % 2 == 1 && next[t] % 7 == 0 {
                next[t] += 1;
            }
            assert_eq!(i, next[t], "producer {t}");
            next[t] += 1;
        });
    }
    for p in producers {
        p.join().unwrap();
    }
    rb.consume(|_| panic!("everything was consumed"));
    for n in next {
        assert_eq!(n, PER);
    }
}
