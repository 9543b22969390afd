//! Static keys: what a debug path behind an OFF key costs, against the same program with the
//! debug path compiled out and against the usual alternatives (a `volatile const` flag in
//! `.rodata`, a flag read from an array map), in the JIT; and the latency of `set()` for a key
//! with 1 and with 100 sites. Programs: tests/bpf/static_keys_bench.bpf.c.
//!
//! `cargo bench -p bpfkit --bench static_keys`

use bpfkit::{Backend, Object, Runtime, Trust, Worker};
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;

fn load() -> Object {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let obj = Runtime::with_cpus(1).open(root.join("tests/bpf/static_keys_bench.bpf.o")).expect("loads");
    let bytes: Vec<u8> = (0..64u8).map(|i| i.wrapping_mul(37)).collect();
    obj.map(".bss").unwrap().update(&0u32.to_le_bytes(), &[vec![0u8; 8], bytes].concat(), 0).unwrap();
    obj.jit(Trust::Verified).expect("the JIT compiles it");
    obj
}

fn debug_paths(c: &mut Criterion) {
    if bpfkit_jit::available().is_err() {
        eprintln!("SKIPPED: no JIT on this machine");
        return;
    }
    let obj = load();
    let mut g = c.benchmark_group("static_keys/debug_off");
    for prog in ["compiled_out", "key_off", "rodata_flag", "map_flag"] {
        let p = obj.program(prog).unwrap();
        let mut w = Worker::new(obj.runtime(), 0);
        w.set_backend(Backend::Jit);
        let mut ctx = [0u8; 8];
        let want = p.run_raw(&mut w, &mut ctx).unwrap();
        g.bench_function(prog, |b| {
            b.iter(|| {
                let r = p.run_raw(&mut w, black_box(&mut ctx)).unwrap();
                debug_assert_eq!(r, want);
                r
            })
        });
    }
    g.finish();
}

fn set_latency(c: &mut Criterion) {
    let obj = load();
    let mut g = c.benchmark_group("static_keys/set");
    for (key, label) in [("debug_key", "1_site"), ("hundred", "100_sites")] {
        let k = obj.static_key(key).unwrap();
        let mut on = false;
        g.bench_function(label, |b| {
            b.iter(|| {
                on = !on;
                k.set(on).unwrap();
            })
        });
        k.set(false).unwrap();
    }
    g.finish();
}

/// The cost of each variant relative to `compiled_out`, measured in alternation so that the
/// machine's drift cancels: rounds of `BATCH` runs of every program in turn, and the median over
/// the rounds of each program's time divided by `compiled_out`'s in the same round.
fn paired_ratios(_c: &mut Criterion) {
    if bpfkit_jit::available().is_err() {
        return;
    }
    const ROUNDS: usize = 400;
    const BATCH: usize = 2000;
    let obj = load();
    let names = ["compiled_out", "key_off", "rodata_flag", "map_flag"];
    let progs: Vec<_> = names.iter().map(|n| obj.program(n).unwrap()).collect();
    let mut w = Worker::new(obj.runtime(), 0);
    w.set_backend(Backend::Jit);
    let mut ctx = [0u8; 8];
    let mut ratios = vec![Vec::with_capacity(ROUNDS); names.len()];
    let mut best = vec![f64::MAX; names.len()];
    for round in 0..ROUNDS {
        let mut t = [0f64; 4];
        // Rotate the order every round so no program always runs first.
        for k in 0..names.len() {
            let i = (k + round) % names.len();
            let start = std::time::Instant::now();
            for _ in 0..BATCH {
                black_box(progs[i].run_raw(&mut w, black_box(&mut ctx)).unwrap());
            }
            t[i] = start.elapsed().as_secs_f64() * 1e9 / BATCH as f64;
        }
        for i in 0..names.len() {
            ratios[i].push(t[i] / t[0]);
            best[i] = best[i].min(t[i]);
        }
    }
    println!(
        "static_keys/paired: median of {ROUNDS} rounds of {BATCH} runs each, time / compiled_out's in the same round"
    );
    for (i, name) in names.iter().enumerate() {
        let r = &mut ratios[i];
        r.sort_by(f64::total_cmp);
        println!(
            "  {name:<14} {:+6.2}% (quartiles {:+.2}% .. {:+.2}%), best round {:.1} ns/run",
            (r[ROUNDS / 2] - 1.0) * 100.0,
            (r[ROUNDS / 4] - 1.0) * 100.0,
            (r[3 * ROUNDS / 4] - 1.0) * 100.0,
            best[i]
        );
    }
}

criterion_group!(benches, paired_ratios, debug_paths, set_latency);
criterion_main!(benches);
