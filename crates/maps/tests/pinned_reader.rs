//! A value pointer held under a guard is never reused, whatever the host does, and reuse
//! resumes once the guard is gone. This is the only test in its binary because a long-held
//! guard stalls element reuse for every map in the process (by design).

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;

use bpfkit_maps::flags::*;
use bpfkit_maps::{MapError, MapType, pin};
use common::*;

const MARK: u64 = 0xa5a5_5a5a_0000_0000;

fn value(generation: u64) -> [u8; 16] {
    let mut v = [0u8; 16];
    v[..8].copy_from_slice(&(MARK | generation).to_ne_bytes());
    v[8..].copy_from_slice(&(!generation).to_ne_bytes());
    v
}

#[test]
fn held_pointer_survives_a_delete_and_reinsert_storm() {
    let m = Arc::new(create(MapType::Hash, 4, 16, 32));
    let x = k32(7);
    m.update(&x, &value(0), BPF_NOEXIST).unwrap();
    for k in 100..120 {
        m.update(&k32(k), &value(u64::from(k)), BPF_ANY).unwrap();
    }

    let guard = pin();
    let p = m.bpf_lookup(&x, 0, &guard).unwrap();
    let held = p as usize;
    let check_old = || {
        assert_eq!(word(p).load(Ordering::Relaxed), MARK);
        assert_eq!(word(p.wrapping_add(8)).load(Ordering::Relaxed), !0);
    };
    check_old();

    let phase1_done = Arc::new(AtomicBool::new(false));
    let released = Arc::new(Barrier::new(2));
    let reused_after = Arc::new(AtomicUsize::new(0));
    let storm = {
        let (m, phase1_done, released, reused_after) =
            (Arc::clone(&m), Arc::clone(&phase1_done), Arc::clone(&released), Arc::clone(&reused_after));
        thread::spawn(move || {
            // Phase 1: the main thread holds the pointer. Delete and re-insert the same key
            // (and churn others) until the spare elements run out.
            let mut generation = 0;
            let mut stalled = false;
            for _ in 0..10_000 {
                generation += 1;
                let _ = m.delete(&x);
                match m.update(&x, &value(generation), BPF_ANY) {
                    Ok(()) => {}
                    Err(MapError::NoMemory { .. }) => {
                        stalled = true;
                        break;
                    }
                    Err(e) => panic!("{e}"),
                }
                let _ = m.update(&k32(100 + (generation % 20) as u32), &value(generation), BPF_ANY);
                let g = pin();
                let q = m.bpf_lookup(&x, 0, &g).unwrap();
                assert_ne!(q as usize, held, "storage reused while a guard that saw it is pinned");
                assert_eq!(word(q).load(Ordering::Relaxed), MARK | generation);
            }
            assert!(stalled, "reuse must wait for the pinned reader");
            // About two elements per round (x and a neighbour): the spares last ~40 rounds.
            assert!(generation > 20, "the spare elements were used first ({generation})");
            phase1_done.store(true, Ordering::Release);
            // Phase 2: the guard is gone; the same storm runs without stalling and
            // eventually reuses the old storage.
            released.wait();
            for _ in 0..5_000 {
                generation += 1;
                let _ = m.delete(&x);
                m.update(&x, &value(generation), BPF_ANY).unwrap();
                let g = pin();
                if m.bpf_lookup(&x, 0, &g).unwrap() as usize == held {
                    reused_after.fetch_add(1, Ordering::Relaxed);
                }
            }
            generation
        })
    };

    while !phase1_done.load(Ordering::Acquire) {
        // If the storm thread failed, report its panic instead of waiting for it forever.
        if storm.is_finished() {
            storm.join().expect("storm thread");
            panic!("the storm thread ended before phase 1 was done");
        }
        check_old();
        thread::yield_now();
    }
    check_old();
    drop(guard);
    released.wait();
    let last = storm.join().unwrap();
    assert_eq!(m.lookup(&x).unwrap(), value(last));
    assert!(reused_after.load(Ordering::Relaxed) > 0, "storage is reused once no guard holds it");
    assert_eq!(m.element_count(), 21);
}
