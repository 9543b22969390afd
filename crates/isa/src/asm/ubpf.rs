//! The uBPF dialect of the bpf_conformance corpus: `mnemonic op, op, ...`.

use super::cursor::{Cursor, Dialect, is_reg_like};
use super::lexer::Kind;
use super::{AsmError, AsmErrorKind, Stmt, invalid};
use crate::insn::{AluOp, AtomicOp, Cond, Endian, Insn, LdImmSrc, Operand, Reg, Size, Width};

/// Splits a `32` or `64` width suffix off a mnemonic.
fn split_width(m: &str) -> (&str, Option<Width>) {
    if let Some(b) = m.strip_suffix("32") {
        (b, Some(Width::W32))
    } else if let Some(b) = m.strip_suffix("64") {
        (b, Some(Width::W64))
    } else {
        (m, None)
    }
}

fn alu_op(base: &str) -> Option<AluOp> {
    Some(match base {
        "add" => AluOp::Add,
        "sub" => AluOp::Sub,
        "mul" => AluOp::Mul,
        "div" => AluOp::Div,
        "sdiv" => AluOp::SDiv,
        "mod" => AluOp::Mod,
        "smod" => AluOp::SMod,
        "or" => AluOp::Or,
        "and" => AluOp::And,
        "lsh" => AluOp::Lsh,
        "rsh" => AluOp::Rsh,
        "arsh" => AluOp::Arsh,
        "xor" => AluOp::Xor,
        "mov" => AluOp::Mov,
        _ => return None,
    })
}

fn jmp_cond(base: &str) -> Option<Cond> {
    Some(match base {
        "jeq" => Cond::Eq,
        "jgt" => Cond::Gt,
        "jge" => Cond::Ge,
        "jset" => Cond::Set,
        "jne" => Cond::Ne,
        "jsgt" => Cond::Sgt,
        "jsge" => Cond::Sge,
        "jlt" => Cond::Lt,
        "jle" => Cond::Le,
        "jslt" => Cond::Slt,
        "jsle" => Cond::Sle,
        _ => return None,
    })
}

/// The size letter of `ldx*`, `st*`, `stx*`, `ldabs*` and `ldind*`.
fn size(suffix: &str) -> Option<Size> {
    Some(match suffix {
        "b" => Size::B,
        "h" => Size::H,
        "w" => Size::W,
        "dw" => Size::DW,
        _ => return None,
    })
}

fn reg(c: &mut Cursor<'_>) -> Result<Reg, AsmError> {
    Ok(c.reg(Dialect::Ubpf)?.reg)
}

fn comma(c: &mut Cursor<'_>) -> Result<(), AsmError> {
    c.expect_punct(",").map(drop)
}

/// `%r1` or an immediate.
fn operand(c: &mut Cursor<'_>) -> Result<Operand, AsmError> {
    match c.peek() {
        Some(t) if t.is_punct("%") || is_reg_like(&t) => Ok(Operand::Reg(reg(c)?)),
        Some(t) if t.kind == Kind::Num || t.is_punct("-") || t.is_punct("+") => Ok(Operand::Imm(c.imm32()?)),
        _ => Err(c.unexpected("register or immediate")),
    }
}

/// `[%r1+8]`, `[%r1-0x8]`, `[%r1]`.
fn mem(c: &mut Cursor<'_>) -> Result<(Reg, i16), AsmError> {
    c.expect_punct("[")?;
    let base = reg(c)?;
    let off = c.mem_off()?;
    c.expect_punct("]")?;
    Ok((base, off))
}

/// One uBPF instruction (`exit` and `call` are shared with LLVM syntax and read elsewhere).
pub(super) fn parse(c: &mut Cursor<'_>) -> Result<Stmt, AsmError> {
    let m = c.ident("instruction")?;
    let unknown = |c: &Cursor<'_>| c.err(m.pos, AsmErrorKind::UnknownMnemonic { mnemonic: m.text.to_string() });
    let name = m.text;
    let insn = match name {
        "lddw" => {
            let dst = reg(c)?;
            comma(c)?;
            let n = c.number("immediate")?;
            let v = c.imm64_of(&n)?;
            Insn::LdImm64 { dst, src: LdImmSrc::Imm, imm: v as i32, next_imm: (v >> 32) as i32 }
        }
        "ja" => {
            return Ok(Stmt::jump(c.target(16)?, |off| Insn::Ja { long: false, off }));
        }
        "ja32" => {
            return Ok(Stmt::jump(c.target(32)?, |off| Insn::Ja { long: true, off }));
        }
        "lock" => return lock(c),
        "neg" | "neg64" | "neg32" => {
            Insn::Neg { width: if name == "neg32" { Width::W32 } else { Width::W64 }, dst: reg(c)? }
        }
        "le16" | "le32" | "le64" | "be16" | "be32" | "be64" | "swap16" | "swap32" | "swap64" | "bswap16"
        | "bswap32" | "bswap64" => {
            let (kind, bits) = name.split_at(name.len() - 2);
            let kind = match kind {
                "le" => Endian::ToLe,
                "be" => Endian::ToBe,
                _ => Endian::Swap,
            };
            let bits = match bits {
                "16" => 16,
                "32" => 32,
                _ => 64,
            };
            Insn::Endian { kind, bits, dst: reg(c)? }
        }
        "movsx864" | "movsx1664" | "movsx3264" | "movsx832" | "movsx1632" => {
            let (op, width) = match name {
                "movsx864" => (AluOp::MovSx8, Width::W64),
                "movsx1664" => (AluOp::MovSx16, Width::W64),
                "movsx3264" => (AluOp::MovSx32, Width::W64),
                "movsx832" => (AluOp::MovSx8, Width::W32),
                _ => (AluOp::MovSx16, Width::W32),
            };
            let dst = reg(c)?;
            comma(c)?;
            Insn::Alu { width, op, dst, src: Operand::Reg(reg(c)?) }
        }
        _ => {
            if let Some(sz) = name.strip_prefix("ldabs").and_then(size).filter(|s| *s != Size::DW) {
                Insn::LdAbs { size: sz, imm: c.imm32()? }
            } else if let Some(sz) = name.strip_prefix("ldind").and_then(size).filter(|s| *s != Size::DW) {
                let src = reg(c)?;
                comma(c)?;
                Insn::LdInd { size: sz, src, imm: c.imm32()? }
            } else if let Some(sz) = name.strip_prefix("ldxs").and_then(size).filter(|s| *s != Size::DW) {
                let dst = reg(c)?;
                comma(c)?;
                let (src, off) = mem(c)?;
                Insn::Load { size: sz, signed: true, dst, src, off }
            } else if let Some(sz) = name.strip_prefix("ldx").and_then(size) {
                let dst = reg(c)?;
                comma(c)?;
                let (src, off) = mem(c)?;
                Insn::Load { size: sz, signed: false, dst, src, off }
            } else if let Some(sz) = name.strip_prefix("stx").and_then(size) {
                let (dst, off) = mem(c)?;
                comma(c)?;
                Insn::Store { size: sz, dst, off, src: Operand::Reg(reg(c)?) }
            } else if let Some(sz) = name.strip_prefix("st").and_then(size) {
                let (dst, off) = mem(c)?;
                comma(c)?;
                Insn::Store { size: sz, dst, off, src: Operand::Imm(c.imm32()?) }
            } else {
                let (base, w) = split_width(name);
                let width = w.unwrap_or(Width::W64);
                if let Some(op) = alu_op(base) {
                    let dst = reg(c)?;
                    comma(c)?;
                    Insn::Alu { width, op, dst, src: operand(c)? }
                } else if let Some(cond) = jmp_cond(base) {
                    let dst = reg(c)?;
                    comma(c)?;
                    let src = operand(c)?;
                    comma(c)?;
                    return Ok(Stmt::jump(c.target(16)?, |off| Insn::JmpCond {
                        width,
                        cond,
                        dst,
                        src,
                        off: off as i16,
                    }));
                } else {
                    return Err(unknown(c));
                }
            }
        }
    };
    Ok(Stmt::new(insn))
}

/// `lock [fetch] add|or|and|xor|xchg|cmpxchg[32|64] [%r1+off], %r2`.
fn lock(c: &mut Cursor<'_>) -> Result<Stmt, AsmError> {
    let fetch = c.peek().is_some_and(|t| t.is_ident("fetch"));
    if fetch {
        c.bump();
    }
    const EXPECTED: &str = "`add`, `or`, `and`, `xor`, `xchg` or `cmpxchg`";
    let t = c.ident(EXPECTED)?;
    let (base, w) = split_width(t.text);
    let size = if w == Some(Width::W32) { Size::W } else { Size::DW };
    let op = match base {
        "add" => AtomicOp::Add { fetch },
        "or" => AtomicOp::Or { fetch },
        "and" => AtomicOp::And { fetch },
        "xor" => AtomicOp::Xor { fetch },
        "xchg" | "cmpxchg" if fetch => {
            return Err(invalid(c, t.pos, "xchg and cmpxchg always fetch: write `lock xchg` or `lock cmpxchg`"));
        }
        "xchg" => AtomicOp::Xchg,
        "cmpxchg" => AtomicOp::Cmpxchg,
        _ => {
            return Err(c.err(
                t.pos,
                AsmErrorKind::ExpectedToken { expected: EXPECTED.into(), found: format!("`{}`", t.text) },
            ));
        }
    };
    let (dst, off) = mem(c)?;
    comma(c)?;
    let src = reg(c)?;
    Ok(Stmt::new(Insn::Atomic { size, op, dst, src, off }))
}
