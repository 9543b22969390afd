//! The synthetic benchmark programs, in one place for every benchmark that runs them
//! (`crates/interp/benches`, `crates/jit/benches`, `crates/bench`).

use bpfkit_isa::{AluOp, Cond, Insn, Operand, Reg, Size, Width};

/// Iterations of [`alu_loop_100k`].
pub const ALU_ITERATIONS: u64 = 100_000;

fn alu(op: AluOp, dst: Reg, src: Operand) -> Insn {
    Insn::Alu { width: Width::W64, op, dst, src }
}

/// `r0` = sum of the u64 words of `[r1, r1 + r2)`: over 1 KiB, 517 instructions executed.
pub fn sum_1k() -> Vec<Insn> {
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

/// [`ALU_ITERATIONS`] iterations of add/xor/mul/sub and a conditional back edge (500,003
/// instructions executed).
pub fn alu_loop_100k() -> Vec<Insn> {
    vec![
        alu(AluOp::Mov, Reg::R0, Operand::Imm(1)),
        alu(AluOp::Mov, Reg::R1, Operand::Imm(ALU_ITERATIONS as i32)),
        // loop:
        alu(AluOp::Add, Reg::R0, Operand::Reg(Reg::R1)),
        alu(AluOp::Xor, Reg::R0, Operand::Imm(0x5a)),
        alu(AluOp::Mul, Reg::R0, Operand::Imm(3)),
        alu(AluOp::Sub, Reg::R1, Operand::Imm(1)),
        Insn::JmpCond { width: Width::W64, cond: Cond::Ne, dst: Reg::R1, src: Operand::Imm(0), off: -5 },
        Insn::Exit,
    ]
}
