//! Map hot paths (what helpers call): `cargo bench -p bpfkit-maps --bench maps`.
//!
//! - `pin`: taking and dropping a guard (once per program invocation).
//! - `array_lookup`, `percpu_array_lookup`, `hash_lookup` (1024 keys), `lpm_lookup` (IPv4,
//!   three prefix lengths present): BPF-side lookups under a held guard.
//! - `hash_update_existing`: BPF-side replace of an existing key (allocation from the slab,
//!   retire of the old element).
//! - `ringbuf_output_consume`: a 64-byte record through the ring buffer.

use bpfkit_maps::flags::{BPF_ANY, BPF_F_NO_PREALLOC};
use bpfkit_maps::{Map, MapSpec, MapType, pin};
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;

fn lookups(c: &mut Criterion) {
    c.bench_function("pin", |b| b.iter(|| drop(black_box(pin()))));

    let array = Map::create(MapSpec::new(MapType::Array, 4, 8, 1024), 1).unwrap();
    let percpu = Map::create(MapSpec::new(MapType::PercpuArray, 4, 8, 1024), 8).unwrap();
    let hash = Map::create(MapSpec::new(MapType::Hash, 4, 8, 1024), 1).unwrap();
    for i in 0u32..1024 {
        hash.update(&i.to_ne_bytes(), &u64::from(i).to_ne_bytes(), BPF_ANY).unwrap();
    }
    let lpm = Map::create(MapSpec::new(MapType::LpmTrie, 8, 8, 1024).with_flags(BPF_F_NO_PREALLOC), 1).unwrap();
    let key = |plen: u32, ip: [u8; 4]| {
        let mut k = plen.to_ne_bytes().to_vec();
        k.extend_from_slice(&ip);
        k
    };
    for i in 0..=255u8 {
        lpm.update(&key(24, [10, 1, i, 0]), &[1; 8], BPF_ANY).unwrap();
        lpm.update(&key(16, [10, i, 0, 0]), &[2; 8], BPF_ANY).unwrap();
    }
    lpm.update(&key(8, [10, 0, 0, 0]), &[3; 8], BPF_ANY).unwrap();

    let guard = pin();
    let mut i = 0u32;
    c.bench_function("array_lookup", |b| {
        b.iter(|| {
            i = (i + 1) & 1023;
            black_box(array.bpf_lookup(&i.to_ne_bytes(), 0, &guard))
        })
    });
    c.bench_function("percpu_array_lookup", |b| {
        b.iter(|| {
            i = (i + 1) & 1023;
            black_box(percpu.bpf_lookup(&i.to_ne_bytes(), 3, &guard))
        })
    });
    c.bench_function("hash_lookup", |b| {
        b.iter(|| {
            i = (i + 1) & 1023;
            black_box(hash.bpf_lookup(&i.to_ne_bytes(), 0, &guard))
        })
    });
    let probes: Vec<Vec<u8>> = (0..=255u8).map(|i| key(32, [10, i, i, 7])).collect();
    c.bench_function("lpm_lookup", |b| {
        b.iter(|| {
            i = (i + 1) & 255;
            black_box(lpm.bpf_lookup(&probes[i as usize], 0, &guard))
        })
    });
    drop(guard);

    c.bench_function("hash_update_existing", |b| {
        b.iter(|| {
            // One invocation per update, so that retired elements become reusable.
            let g = pin();
            i = (i + 1) & 1023;
            hash.bpf_update(&i.to_ne_bytes(), &[7; 8], BPF_ANY, 0, &g).unwrap();
        })
    });

    let ring = Map::create(MapSpec::new(MapType::Ringbuf, 0, 0, 1 << 16), 1).unwrap();
    let rb = ring.ringbuf().unwrap();
    c.bench_function("ringbuf_output_consume", |b| {
        b.iter(|| {
            rb.output(&[5; 64], 0).unwrap();
            rb.consume(|r| {
                black_box(r);
            })
        })
    });
}

criterion_group!(benches, lookups);
criterion_main!(benches);
