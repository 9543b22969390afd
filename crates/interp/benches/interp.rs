//! Interpreter benchmarks: `cargo bench -p bpfkit-interp --bench interp`.
//!
//! - `sum_1k`: sum of a 1 KiB buffer as 128 u64 loads (517 instructions executed), the
//!   workload the issue compares against solana-sbpf, rbpf and uBPF.
//! - `alu_loop_100k`: 100,000 iterations of a 5-instruction ALU loop (500,003 instructions).

use bpfkit_interp::{Helpers, Program, Vm};
use bpfkit_isa::{Insn, encode_program};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::sync::Arc;

fn vm_for(insns: &[Insn]) -> Vm {
    let program = Program::load(&encode_program(insns), &Helpers::new()).expect("benchmark program loads");
    Vm::new(Arc::new(program))
}

fn bench(c: &mut Criterion) {
    let mut vm = vm_for(&bpfkit_testing::workloads::sum_1k());
    let mut mem: Vec<u8> = (0..1024u32).map(|i| i as u8).collect();
    let expected: u64 =
        mem.chunks_exact(8).map(|w| u64::from_le_bytes(w.try_into().unwrap())).fold(0, u64::wrapping_add);
    assert_eq!(vm.run_mem(&mut mem).unwrap(), expected);
    let mut g = c.benchmark_group("interp");
    g.throughput(Throughput::Elements(517));
    g.bench_function("sum_1k", |b| b.iter(|| vm.run_mem(black_box(&mut mem)).unwrap()));

    let mut vm = vm_for(&bpfkit_testing::workloads::alu_loop_100k());
    g.throughput(Throughput::Elements(500_003));
    g.bench_function("alu_loop_100k", |b| b.iter(|| vm.run_mem(black_box(&mut [])).unwrap()));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
