//! The disassembler: `Display` for [`Insn`] prints exactly what `llvm-objdump-22 -d` prints for
//! every instruction LLVM knows (checked by a differential test when llvm-objdump-22 is
//! installed). Where LLVM prints one text for several encodings, bpfkit extends the syntax so
//! that printing is lossless:
//!
//! | encoding | llvm-objdump-22 | bpfkit |
//! | --- | --- | --- |
//! | `call` src=1 (BPF-to-BPF) | `call 0x3` (same as helper 3) | `call pc+0x3` |
//! | `call` src=2 (kfunc) | `call 0x7` | `call kfunc 0x7` / `call kfunc 0x7, 0x1` (module) |
//! | `lddw` src≠0 with `insn[1].imm ≠ 0` | `ld_pseudo r1, 0x2, 0x5` (drops it) | `ld_pseudo r1, 0x2, 0x5, 0x10` |
//! | `ld_ind` with `imm ≠ 0` | `skb[r1]` (drops it) | `skb[r1 + 0x4]` |
//! | static branches (D1) | `goto +0x1` | `goto_or_nop +0x1`, `nop_or_gotol +0x1`, ... |
//!
//! Jump offsets are printed as LLVM does (`+0x1`), without its `<section+addr>` annotation.
//!
//! The hidden register AX of rewritten (xlated) programs ([`Reg::AX`], number 11), which
//! llvm-objdump has no name for, is printed `r11` (`w11` in 32-bit context), as bpftool
//! prints the kernel's xlated dumps; [`disassemble_xlated`] and [`listing_xlated`] accept it.
//! The assembler does not read it back (user programs cannot name it).

use crate::insn::*;
use crate::raw::RawInsn;
use crate::{DecodeError, Located, decode_program, decode_program_xlated};
use std::fmt::{self, Write as _};

/// A signed immediate in LLVM's style: `0x5`, `-0x5`.
pub(crate) struct Hex(pub i64);

impl fmt::Display for Hex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 < 0 { write!(f, "-{:#x}", self.0.unsigned_abs()) } else { write!(f, "{:#x}", self.0) }
    }
}

/// A jump offset: `+0x1`, `-0x3`.
struct Rel(i64);

impl fmt::Display for Rel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 < 0 { write!(f, "-{:#x}", self.0.unsigned_abs()) } else { write!(f, "+{:#x}", self.0) }
    }
}

/// `(r1 + 0x8)` / `(r10 - 0x8)` without the parentheses.
struct Addr(Reg, i16);

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let off = i64::from(self.1);
        if off < 0 { write!(f, "{} - {:#x}", self.0, off.unsigned_abs()) } else { write!(f, "{} + {:#x}", self.0, off) }
    }
}

/// A register written as `rN` or, in 32-bit context, `wN`.
struct R(Reg, bool);

impl fmt::Display for R {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", if self.1 { 'w' } else { 'r' }, self.0.index())
    }
}

fn size_name(size: Size) -> &'static str {
    match size {
        Size::B => "u8",
        Size::H => "u16",
        Size::W => "u32",
        Size::DW => "u64",
    }
}

pub(crate) fn alu_op_text(op: AluOp) -> &'static str {
    match op {
        AluOp::Add => "+=",
        AluOp::Sub => "-=",
        AluOp::Mul => "*=",
        AluOp::Div => "/=",
        AluOp::SDiv => "s/=",
        AluOp::Or => "|=",
        AluOp::And => "&=",
        AluOp::Lsh => "<<=",
        AluOp::Rsh => ">>=",
        AluOp::Mod => "%=",
        AluOp::SMod => "s%=",
        AluOp::Xor => "^=",
        AluOp::Mov => "=",
        AluOp::MovSx8 => "= (s8)",
        AluOp::MovSx16 => "= (s16)",
        AluOp::MovSx32 => "= (s32)",
        AluOp::Arsh => "s>>=",
    }
}

pub(crate) fn cond_text(cond: Cond) -> &'static str {
    match cond {
        Cond::Eq => "==",
        Cond::Gt => ">",
        Cond::Ge => ">=",
        Cond::Set => "&",
        Cond::Ne => "!=",
        Cond::Sgt => "s>",
        Cond::Sge => "s>=",
        Cond::Lt => "<",
        Cond::Le => "<=",
        Cond::Slt => "s<",
        Cond::Sle => "s<=",
    }
}

fn atomic_rmw_name(op: AtomicOp) -> (&'static str, &'static str) {
    match op {
        AtomicOp::Add { .. } => ("+=", "add"),
        AtomicOp::Or { .. } => ("|=", "or"),
        AtomicOp::And { .. } => ("&=", "and"),
        AtomicOp::Xor { .. } => ("^=", "xor"),
        _ => ("", ""),
    }
}

impl fmt::Display for Insn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Insn::Alu { width, op, dst, src } => {
                let w = width == Width::W32;
                let sep = if matches!(op, AluOp::MovSx8 | AluOp::MovSx16 | AluOp::MovSx32) { "" } else { " " };
                match src {
                    Operand::Reg(s) => write!(f, "{} {}{sep}{}", R(dst, w), alu_op_text(op), R(s, w)),
                    Operand::Imm(i) => write!(f, "{} {} {}", R(dst, w), alu_op_text(op), Hex(i.into())),
                }
            }
            Insn::Neg { width, dst } => {
                let w = width == Width::W32;
                write!(f, "{} = -{}", R(dst, w), R(dst, w))
            }
            Insn::Endian { kind, bits, dst } => {
                let name = match kind {
                    Endian::ToLe => "le",
                    Endian::ToBe => "be",
                    Endian::Swap => "bswap",
                };
                write!(f, "{dst} = {name}{bits} {dst}")
            }
            Insn::LdImm64 { dst, src: LdImmSrc::Imm, imm, next_imm } => {
                let v = (u64::from(next_imm as u32) << 32) | u64::from(imm as u32);
                write!(f, "{dst} = {} ll", Hex(v as i64))
            }
            Insn::LdImm64 { dst, src, imm, next_imm } => {
                write!(f, "ld_pseudo\t{dst}, {}, {}", Hex(src.code().into()), Hex(imm.into()))?;
                if next_imm != 0 {
                    write!(f, ", {}", Hex(next_imm.into()))?;
                }
                Ok(())
            }
            Insn::LdAbs { size, imm } => write!(f, "r0 = *({} *)skb[{}]", size_name(size), Hex(imm.into())),
            Insn::LdInd { size, src, imm } => {
                write!(f, "r0 = *({} *)skb[{src}", size_name(size))?;
                match imm {
                    0 => f.write_str("]"),
                    i if i < 0 => write!(f, " - {:#x}]", i64::from(i).unsigned_abs()),
                    i => write!(f, " + {i:#x}]"),
                }
            }
            Insn::Load { size, signed, dst, src, off } => {
                let ty = if signed {
                    match size {
                        Size::B => "s8",
                        Size::H => "s16",
                        _ => "s32",
                    }
                } else {
                    size_name(size)
                };
                let w = !signed && size != Size::DW;
                write!(f, "{} = *({ty} *)({})", R(dst, w), Addr(src, off))
            }
            Insn::Store { size, dst, off, src } => {
                write!(f, "*({} *)({}) = ", size_name(size), Addr(dst, off))?;
                match src {
                    Operand::Reg(s) => write!(f, "{}", R(s, size != Size::DW)),
                    Operand::Imm(i) => write!(f, "{}", Hex(i.into())),
                }
            }
            Insn::Atomic { size, op, dst, src, off } => {
                let w = size != Size::DW;
                let ty = size_name(size);
                let addr = Addr(dst, off);
                match op {
                    AtomicOp::Add { fetch: false }
                    | AtomicOp::Or { fetch: false }
                    | AtomicOp::And { fetch: false }
                    | AtomicOp::Xor { fetch: false } => {
                        write!(f, "lock *({ty} *)({addr}) {} {}", atomic_rmw_name(op).0, R(src, w))
                    }
                    AtomicOp::Add { fetch: true }
                    | AtomicOp::Or { fetch: true }
                    | AtomicOp::And { fetch: true }
                    | AtomicOp::Xor { fetch: true } => {
                        let s = R(src, w);
                        write!(f, "{s} = atomic_fetch_{}(({ty} *)({addr}), {s})", atomic_rmw_name(op).1)
                    }
                    AtomicOp::Xchg => {
                        let s = R(src, w);
                        if w {
                            write!(f, "{s} = xchg32_32({addr}, {s})")
                        } else {
                            write!(f, "{s} = xchg_64({addr}, {s})")
                        }
                    }
                    AtomicOp::Cmpxchg => {
                        let (r0, s) = (R(Reg::R0, w), R(src, w));
                        if w {
                            write!(f, "{r0} = cmpxchg32_32({addr}, {r0}, {s})")
                        } else {
                            write!(f, "{r0} = cmpxchg_64({addr}, {r0}, {s})")
                        }
                    }
                    // Load-acquire reads *(src + off) into dst.
                    AtomicOp::LoadAcquire => write!(f, "{} = load_acquire(({ty} *)({}))", R(dst, w), Addr(src, off)),
                    AtomicOp::StoreRelease => write!(f, "store_release(({ty} *)({addr}), {})", R(src, w)),
                }
            }
            Insn::Ja { long, off } => write!(f, "{} {}", if long { "gotol" } else { "goto" }, Rel(off.into())),
            Insn::StaticBranch { long, inverse, off } => {
                let name = match (inverse, long) {
                    (false, false) => "goto_or_nop",
                    (false, true) => "gotol_or_nop",
                    (true, false) => "nop_or_goto",
                    (true, true) => "nop_or_gotol",
                };
                write!(f, "{name} {}", Rel(off.into()))
            }
            Insn::JmpCond { width, cond, dst, src, off } => {
                let w = width == Width::W32;
                write!(f, "if {} {} ", R(dst, w), cond_text(cond))?;
                match src {
                    Operand::Reg(s) => write!(f, "{}", R(s, w))?,
                    Operand::Imm(i) => write!(f, "{}", Hex(i.into()))?,
                }
                write!(f, " goto {}", Rel(off.into()))
            }
            Insn::Call(CallTarget::Helper(id)) => write!(f, "call {}", Hex(id.into())),
            Insn::Call(CallTarget::Local(rel)) => write!(f, "call pc{}", Rel(rel.into())),
            Insn::Call(CallTarget::Kfunc { btf_id, module: 0 }) => write!(f, "call kfunc {}", Hex(btf_id.into())),
            Insn::Call(CallTarget::Kfunc { btf_id, module }) => {
                write!(f, "call kfunc {}, {}", Hex(btf_id.into()), Hex(module.into()))
            }
            Insn::CallX { reg } => write!(f, "callx {reg}"),
            Insn::Exit => f.write_str("exit"),
            Insn::GotoX { reg } => write!(f, "gotox {reg}"),
            Insn::MayGoto { off } => write!(f, "may_goto {}", Rel(off.into())),
        }
    }
}

/// Disassembles a program to one instruction per line, with no addresses.
pub fn disassemble(slots: &[RawInsn]) -> Result<String, DecodeError> {
    Ok(text(&decode_program(slots)?))
}

/// [`disassemble`] for a rewritten (xlated) program, which may use AX (`r11`).
pub fn disassemble_xlated(slots: &[RawInsn]) -> Result<String, DecodeError> {
    Ok(text(&decode_program_xlated(slots)?))
}

fn text(insns: &[Located]) -> String {
    let mut out = String::new();
    for l in insns {
        writeln!(out, "{}", l.insn).expect("writing to a String");
    }
    out
}

/// Disassembles a program in llvm-objdump's layout: `pc:`, the bytes of the instruction, then
/// its text, one line per instruction. The assembler reads this layout back.
pub fn listing(slots: &[RawInsn]) -> Result<String, DecodeError> {
    Ok(layout(slots, &decode_program(slots)?))
}

/// [`listing`] for a rewritten (xlated) program, which may use AX (`r11`); the assembler
/// does not read AX back.
pub fn listing_xlated(slots: &[RawInsn]) -> Result<String, DecodeError> {
    Ok(layout(slots, &decode_program_xlated(slots)?))
}

fn layout(slots: &[RawInsn], insns: &[Located]) -> String {
    let mut out = String::new();
    for l in insns {
        write!(out, "{:>8}:\t", l.pc).expect("writing to a String");
        for (i, s) in slots[l.pc..l.pc + l.insn.slots()].iter().enumerate() {
            for (j, b) in s.to_bytes().iter().enumerate() {
                let sep = if i == 0 && j == 0 { "" } else { " " };
                write!(out, "{sep}{b:02x}").expect("writing to a String");
            }
        }
        writeln!(out, "\t{}", l.insn).expect("writing to a String");
    }
    out
}
