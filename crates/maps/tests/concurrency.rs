//! Programs on several threads and the host at the same time (decision D7). Guards here are
//! short, like program invocations; the long-held guard test is `pinned_reader.rs`.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;

use bpfkit_maps::flags::*;
use bpfkit_maps::{Map, MapError, MapSpec, MapType, pin};
use common::*;

const THREADS: u32 = 3;

/// The stress tests run one at a time: each brings its own threads, and together they would
/// mostly measure an oversubscribed scheduler.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A tiny deterministic generator for the workers.
fn next_rand(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn increments_through_pointers_are_never_lost_while_the_host_churns() {
    let _serial = serial();
    const HOT: u32 = 8;
    const ITER: u32 = 24_000;
    let m = Arc::new(create(MapType::Hash, 4, 8, 1024));
    for k in 0..HOT {
        m.update(&k32(k), &v64(0), BPF_NOEXIST).unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let host = {
        let (m, stop) = (Arc::clone(&m), Arc::clone(&stop));
        thread::spawn(move || {
            let mut rounds = 0u64;
            while !stop.load(Ordering::Relaxed) || rounds < 3 {
                for k in 100..300 {
                    m.update(&k32(k), &v64(u64::from(k)), BPF_ANY).unwrap();
                }
                for k in (100..300).step_by(2) {
                    m.delete(&k32(k)).unwrap();
                }
                for k in (100..300).step_by(2) {
                    m.update(&k32(k), &v64(u64::from(k) + rounds), BPF_NOEXIST).unwrap();
                }
                for k in (101..300).step_by(2) {
                    assert_eq!(as_u64(&m.lookup(&k32(k)).unwrap()), u64::from(k));
                }
                // Iterate every way while everything changes.
                let mut key = None;
                let mut n = 0;
                while let Ok(k) = m.get_next_key(key.as_deref()) {
                    key = Some(k);
                    n += 1;
                    assert!(n < 10_000, "get_next_key does not terminate");
                }
                let entries = m.entries().unwrap();
                assert!(entries.len() >= HOT as usize);
                let mut cursor = None;
                loop {
                    let b = m.lookup_batch(cursor.as_ref(), 64).unwrap();
                    match b.next {
                        Some(c) => cursor = Some(c),
                        None => break,
                    }
                }
                for k in (100..300).step_by(4) {
                    m.lookup_and_delete(&k32(k)).unwrap();
                }
                rounds += 1;
            }
            rounds
        })
    };
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let m = Arc::clone(&m);
            thread::spawn(move || {
                let mut seed = 0x9e37_79b9_u64 + u64::from(t);
                let own = 1000 + t * 100;
                let (mut ok_updates, mut failed_updates) = (0u32, 0u32);
                let mut i = 0;
                while i < ITER {
                    // One "invocation": a guard around a few helper calls.
                    let g = pin();
                    for _ in 0..16 {
                        let p = m.bpf_lookup(&k32(i % HOT), 0, &g).expect("hot keys are never deleted");
                        word(p).fetch_add(1, Ordering::Relaxed);
                        let k = own + (next_rand(&mut seed) % 50) as u32;
                        match next_rand(&mut seed) % 3 {
                            0 => match m.bpf_update(&k32(k), &v64(u64::from(k)), BPF_ANY, 0, &g) {
                                Ok(()) => ok_updates += 1,
                                Err(MapError::NoMemory { .. }) => failed_updates += 1,
                                Err(e) => panic!("{e}"),
                            },
                            1 => {
                                let _ = m.bpf_delete(&k32(k), &g);
                            }
                            _ => {
                                if let Some(p) = m.bpf_lookup(&k32(k), 0, &g) {
                                    assert_eq!(word(p).load(Ordering::Relaxed), u64::from(k));
                                }
                            }
                        }
                        i += 1;
                    }
                }
                (ok_updates, failed_updates)
            })
        })
        .collect();
    let results: Vec<(u32, u32)> = workers.into_iter().map(|w| w.join().unwrap()).collect();
    stop.store(true, Ordering::Relaxed);
    let rounds = host.join().unwrap();
    assert!(rounds >= 3);
    for k in 0..HOT {
        assert_eq!(as_u64(&m.lookup(&k32(k)).unwrap()), u64::from(THREADS * ITER / HOT), "key {k}");
    }
    // Programs may get ENOMEM while every spare element waits for a preempted reader (see
    // `bpfkit_maps::epoch`); they still make progress...
    let succeeded: u32 = results.iter().map(|r| r.0).sum();
    let failed: u32 = results.iter().map(|r| r.1).sum();
    assert!(succeeded > 0, "no BPF-side update succeeded ({failed} failed)");
    // ...and once no reader is left from the storm, every update finds an element again.
    for invocation in 0..20u32 {
        let g = pin();
        for i in 0..100u32 {
            let k = k32(5000 + (invocation * 100 + i) % 150);
            m.bpf_update(&k, &v64(1), BPF_ANY, 0, &g).unwrap();
            m.bpf_delete(&k, &g).unwrap();
        }
    }
}

#[test]
fn percpu_counters_add_up() {
    let _serial = serial();
    const ITER: u64 = 20_000;
    let m = Arc::new(Map::create(MapSpec::new(MapType::PercpuArray, 4, 8, 4), THREADS as usize).unwrap());
    let workers: Vec<_> = (0..THREADS as usize)
        .map(|cpu| {
            let m = Arc::clone(&m);
            thread::spawn(move || {
                for i in 0..ITER {
                    let g = pin();
                    let p = m.bpf_lookup(&k32((i % 4) as u32), cpu, &g).unwrap();
                    // Per-CPU: no atomics needed by the program, but the host reads concurrently.
                    word(p).fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    while !workers.iter().all(|w| w.is_finished()) {
        let _ = m.entries().unwrap();
    }
    for w in workers {
        w.join().unwrap();
    }
    for k in 0..4 {
        let v = m.lookup(&k32(k)).unwrap();
        for cpu in 0..THREADS as usize {
            assert_eq!(as_u64(&v[cpu * 8..]), ITER / 4);
        }
    }
}

#[test]
fn lru_under_concurrent_updates() {
    let _serial = serial();
    let m = Arc::new(create(MapType::LruHash, 4, 8, 64));
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let m = Arc::clone(&m);
            thread::spawn(move || {
                let mut seed = 77 + u64::from(t);
                for _ in 0..20_000 {
                    let g = pin();
                    let k = (next_rand(&mut seed) % 500) as u32;
                    match m.bpf_update(&k32(k), &v64(u64::from(k)), BPF_ANY, 0, &g) {
                        Ok(()) | Err(MapError::NoMemory { .. }) => {}
                        Err(e) => panic!("{e}"),
                    }
                    if let Some(p) = m.bpf_lookup(&k32((next_rand(&mut seed) % 500) as u32), 0, &g) {
                        let v = word(p).load(Ordering::Relaxed);
                        assert!(v < 500);
                    }
                }
            })
        })
        .collect();
    while !workers.iter().all(|w| w.is_finished()) {
        for (k, v) in m.entries().unwrap() {
            assert_eq!(u64::from(u32::from_ne_bytes(k[..].try_into().unwrap())), as_u64(&v));
        }
        assert!(m.element_count() <= 64);
    }
    for w in workers {
        w.join().unwrap();
    }
    assert!(m.element_count() <= 64);
    assert!(m.element_count() > 32);
}

#[test]
fn inner_maps_replaced_while_programs_use_them() {
    let _serial = serial();
    let template = MapSpec::new(MapType::Array, 4, 8, 1);
    let outer =
        Arc::new(Map::create(MapSpec::new(MapType::ArrayOfMaps, 4, 4, 1).with_inner(template.clone()), 1).unwrap());
    let all = Arc::new(std::sync::Mutex::new(Vec::new()));
    let first = Arc::new(Map::create(template.clone(), 1).unwrap());
    all.lock().unwrap().push(Arc::clone(&first));
    outer.update_inner_map(&k32(0), first, BPF_ANY).unwrap();
    let done = Arc::new(AtomicU64::new(0));
    let readers: Vec<_> = (0..THREADS)
        .map(|_| {
            let (outer, done) = (Arc::clone(&outer), Arc::clone(&done));
            thread::spawn(move || {
                for _ in 0..20_000 {
                    let g = pin();
                    let inner = outer.bpf_lookup_inner(&k32(0), &g).expect("slot 0 is always set");
                    let p = inner.bpf_lookup(&k32(0), 0, &g).unwrap();
                    word(p).fetch_add(1, Ordering::Relaxed);
                    assert_eq!(inner.spec().value_size, 8);
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    while !readers.iter().all(|r| r.is_finished()) {
        let m = Arc::new(Map::create(template.clone(), 1).unwrap());
        all.lock().unwrap().push(Arc::clone(&m));
        outer.update_inner_map(&k32(0), m, BPF_ANY).unwrap();
    }
    for r in readers {
        r.join().unwrap();
    }
    let total: u64 = all.lock().unwrap().iter().map(|m| as_u64(&m.lookup(&k32(0)).unwrap())).sum();
    assert_eq!(total, done.load(Ordering::Relaxed));
    assert!(all.lock().unwrap().len() > 1);
}

#[test]
fn lpm_lookups_while_prefixes_change() {
    let _serial = serial();
    let m = Arc::new(Map::create(MapSpec::new(MapType::LpmTrie, 8, 8, 512).with_flags(BPF_F_NO_PREALLOC), 1).unwrap());
    let key = |plen: u32, ip: [u8; 4]| {
        let mut k = plen.to_ne_bytes().to_vec();
        k.extend_from_slice(&ip);
        k
    };
    m.update(&key(8, [10, 0, 0, 0]), &v64(8), BPF_ANY).unwrap();
    m.update(&key(16, [10, 1, 0, 0]), &v64(16), BPF_ANY).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..THREADS)
        .map(|t| {
            let (m, stop) = (Arc::clone(&m), Arc::clone(&stop));
            thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) || n < 1000 {
                    let g = pin();
                    let b = (n % 200) as u8;
                    // 10.1.x.y always matches the stable /16; 10.2.x.y the /8 or a churning /24.
                    let p = m.bpf_lookup(&key(32, [10, 1, b, t as u8]), 0, &g).unwrap();
                    assert_eq!(word(p).load(Ordering::Relaxed), 16);
                    let p = m.bpf_lookup(&key(32, [10, 2, b, 1]), 0, &g).unwrap();
                    let v = word(p).load(Ordering::Relaxed);
                    assert!(v == 8 || v == 1000 + u64::from(b), "{v}");
                    n += 1;
                }
            })
        })
        .collect();
    for round in 0..20u64 {
        for b in 0..200u8 {
            m.update(&key(24, [10, 2, b, 0]), &v64(1000 + u64::from(b)), BPF_ANY).unwrap();
        }
        for b in 0..200u8 {
            if (u64::from(b) + round) % 2 == 0 {
                m.delete(&key(24, [10, 2, b, 0])).unwrap();
            }
        }
        let _ = m.get_next_key(None);
        for b in 0..200u8 {
            let _ = m.delete(&key(24, [10, 2, b, 0]));
        }
    }
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        r.join().unwrap();
    }
    assert_eq!(m.element_count(), 2);
}
