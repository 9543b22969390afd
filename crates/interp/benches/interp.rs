//! Interpreter benchmarks: `cargo bench -p bpfkit-interp --bench interp`.
//!
//! - `sum_1k`: sum of a 1 KiB buffer as 128 u64 loads (517 instructions executed), the
//!   workload the issue compares against solana-sbpf, rbpf and uBPF.
//! - `alu_loop_100k`: 100,000 iterations of a 5-instruction ALU loop (500,003 instructions).

use bpfkit_interp::{Helpers, Program, Vm};
use bpfkit_isa::{AluOp, Cond, Insn, Operand, Reg, Size, Width, encode_program};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::sync::Arc;

fn alu(op: AluOp, dst: Reg, src: Operand) -> Insn {
    Insn::Alu { width: Width::W64, op, dst, src }
}

/// r0 = sum of the u64 words of [r1, r1 + r2).
fn sum_program() -> Vec<Insn> {
    vec![
        alu(AluOp::Mov, Reg::R0, Operand::Imm(0)),
        alu(AluOp::Mov, Reg::R3, Operand::Reg(Reg::R1)),
        alu(AluOp::Mov, Reg::R4, Operand::Reg(Reg::R1)),
        alu(AluOp::Add, Reg::R4, Operand::Reg(Reg::R2)),
        // loop:
        Insn::Load { size: Size::DW, signed: false, dst: Reg::R5, src: Reg::R3, off: 0 },
        alu(AluOp::Add, Reg::R0, Operand::Reg(Reg::R5)),
        alu(AluOp::Add, Reg::R3, Operand::Imm(8)),
        Insn::JmpCond { width: Width::W64, cond: Cond::Lt, dst: Reg::R3, src: Operand::Reg(Reg::R4), off: -4 },
        Insn::Exit,
    ]
}

/// 100,000 iterations of add/xor/mul/sub and a conditional back edge.
fn alu_loop_program() -> Vec<Insn> {
    vec![
        alu(AluOp::Mov, Reg::R0, Operand::Imm(1)),
        alu(AluOp::Mov, Reg::R1, Operand::Imm(100_000)),
        // loop:
        alu(AluOp::Add, Reg::R0, Operand::Reg(Reg::R1)),
        alu(AluOp::Xor, Reg::R0, Operand::Imm(0x5a)),
        alu(AluOp::Mul, Reg::R0, Operand::Imm(3)),
        alu(AluOp::Sub, Reg::R1, Operand::Imm(1)),
        Insn::JmpCond { width: Width::W64, cond: Cond::Ne, dst: Reg::R1, src: Operand::Imm(0), off: -5 },
        Insn::Exit,
    ]
}

fn vm_for(insns: &[Insn]) -> Vm {
    let program = Program::load(&encode_program(insns), &Helpers::new()).expect("benchmark program loads");
    Vm::new(Arc::new(program))
}

fn bench(c: &mut Criterion) {
    let mut vm = vm_for(&sum_program());
    let mut mem: Vec<u8> = (0..1024u32).map(|i| i as u8).collect();
    let expected: u64 =
        mem.chunks_exact(8).map(|w| u64::from_le_bytes(w.try_into().unwrap())).fold(0, u64::wrapping_add);
    assert_eq!(vm.run_mem(&mut mem).unwrap(), expected);
    let mut g = c.benchmark_group("interp");
    g.throughput(Throughput::Elements(517));
    g.bench_function("sum_1k", |b| b.iter(|| vm.run_mem(black_box(&mut mem)).unwrap()));

    let mut vm = vm_for(&alu_loop_program());
    g.throughput(Throughput::Elements(500_003));
    g.bench_function("alu_loop_100k", |b| b.iter(|| vm.run_mem(black_box(&mut [])).unwrap()));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
