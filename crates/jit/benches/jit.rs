//! JIT benchmarks: `cargo bench -p bpfkit-jit --bench jit`.
//!
//! - `sum_1k`, `alu_loop_100k`: the interpreter benchmark's programs (crates/interp/benches),
//!   run natively.
//! - `compile_*`: compiling a program (lowering, code memory, attaching), to report the cost
//!   per instruction.

use bpfkit_interp::{Backend, Helpers, Program, Vm};
use bpfkit_isa::{AluOp, Cond, Insn, Operand, Reg, Width, encode_program};
use bpfkit_jit::{JitOptions, Trust};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::sync::Arc;

fn alu(op: AluOp, dst: Reg, src: Operand) -> Insn {
    Insn::Alu { width: Width::W64, op, dst, src }
}

/// A long straight-line program (for compile time per instruction).
fn long_program(n: usize) -> Vec<Insn> {
    let mut v = Vec::with_capacity(n + 2);
    v.push(alu(AluOp::Mov, Reg::R0, Operand::Imm(0)));
    for i in 0..n {
        v.push(match i % 4 {
            0 => alu(AluOp::Add, Reg::R0, Operand::Imm(i as i32)),
            1 => alu(AluOp::Xor, Reg::R0, Operand::Reg(Reg::R1)),
            2 => Insn::JmpCond { width: Width::W64, cond: Cond::Gt, dst: Reg::R0, src: Operand::Imm(7), off: 1 },
            _ => alu(AluOp::Mul, Reg::R0, Operand::Imm(3)),
        });
    }
    v.push(Insn::Exit);
    v
}

fn native_vm(insns: &[Insn]) -> Vm {
    let program = Arc::new(Program::load(&encode_program(insns), &Helpers::new()).expect("program loads"));
    bpfkit_jit::jit(&program, &JitOptions::default(), Trust::CallerVouches).expect("program compiles");
    let mut vm = Vm::new(program);
    vm.set_backend(Backend::Native);
    vm
}

fn bench(c: &mut Criterion) {
    if let Err(e) = bpfkit_jit::available() {
        eprintln!("SKIPPED: the JIT cannot run here: {e}");
        return;
    }
    let mut g = c.benchmark_group("jit");
    let mut vm = native_vm(&bpfkit_testing::workloads::sum_1k());
    let mut mem: Vec<u8> = (0..1024u32).map(|i| i as u8).collect();
    let expected: u64 =
        mem.chunks_exact(8).map(|w| u64::from_le_bytes(w.try_into().unwrap())).fold(0, u64::wrapping_add);
    assert_eq!(vm.run_mem(&mut mem).unwrap(), expected);
    g.throughput(Throughput::Elements(517));
    g.bench_function("sum_1k", |b| b.iter(|| vm.run_mem(black_box(&mut mem)).unwrap()));
    let mut vm = native_vm(&bpfkit_testing::workloads::alu_loop_100k());
    g.throughput(Throughput::Elements(500_003));
    g.bench_function("alu_loop_100k", |b| b.iter(|| vm.run_mem(black_box(&mut [])).unwrap()));

    let mut vm = native_vm(&[alu(AluOp::Mov, Reg::R0, Operand::Imm(7)), Insn::Exit]);
    g.throughput(Throughput::Elements(2));
    g.bench_function("empty", |b| b.iter(|| vm.run_mem(black_box(&mut [])).unwrap()));
    // The same empty run in the interpreter: what both engines pay per run outside the code.
    let prog = [alu(AluOp::Mov, Reg::R0, Operand::Imm(7)), Insn::Exit];
    let mut ivm = Vm::new(Arc::new(Program::load(&encode_program(&prog), &Helpers::new()).unwrap()));
    g.bench_function("empty_interp", |b| b.iter(|| ivm.run_mem(black_box(&mut [])).unwrap()));

    for n in [100usize, 10_000] {
        let slots = encode_program(&long_program(n));
        g.throughput(Throughput::Elements(slots.len() as u64));
        g.bench_function(format!("compile_{n}"), |b| {
            b.iter(|| {
                let program = Arc::new(Program::load(&slots, &Helpers::new()).unwrap());
                bpfkit_jit::jit(&program, &JitOptions::default(), Trust::CallerVouches).unwrap();
                program
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
