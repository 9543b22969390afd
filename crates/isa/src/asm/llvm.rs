//! LLVM's BPF assembly syntax, as `llvm-objdump -d` prints it and `llvm-mc` reads it.

use super::cursor::{Cursor, Dialect, RegTok, is_reg_like};
use super::lexer::Kind;
use super::{AsmError, AsmErrorKind, Stmt, invalid};
use crate::insn::{AluOp, AtomicOp, Cond, Endian, Insn, LdImmSrc, Operand, Reg, Size, Width};

/// The operators of `dst op src` ALU instructions.
pub(super) fn is_assign_op(p: &str) -> bool {
    p == "=" || alu_op(p).is_some()
}

fn alu_op(p: &str) -> Option<AluOp> {
    Some(match p {
        "+=" => AluOp::Add,
        "-=" => AluOp::Sub,
        "*=" => AluOp::Mul,
        "/=" => AluOp::Div,
        "s/=" => AluOp::SDiv,
        "|=" => AluOp::Or,
        "&=" => AluOp::And,
        "<<=" => AluOp::Lsh,
        ">>=" => AluOp::Rsh,
        "%=" => AluOp::Mod,
        "s%=" => AluOp::SMod,
        "^=" => AluOp::Xor,
        "s>>=" => AluOp::Arsh,
        _ => return None,
    })
}

/// Words that start an LLVM-syntax instruction (besides `exit`, `call` and `lock`).
pub(super) fn is_keyword(w: &str) -> bool {
    matches!(
        w,
        "if" | "goto"
            | "gotol"
            | "goto_or_nop"
            | "gotol_or_nop"
            | "nop_or_goto"
            | "nop_or_gotol"
            | "may_goto"
            | "gotox"
            | "callx"
            | "ld_pseudo"
            | "store_release"
    )
}

fn width(wide: bool) -> Width {
    if wide { Width::W64 } else { Width::W32 }
}

/// `reg` or immediate, a register having the letter `wide` asks for.
fn operand(c: &mut Cursor<'_>, wide: bool) -> Result<Operand, AsmError> {
    match c.peek() {
        Some(t) if is_reg_like(&t) => Ok(Operand::Reg(c.reg_of_width(wide)?.reg)),
        Some(t) if t.kind == Kind::Num || t.is_punct("-") || t.is_punct("+") => Ok(Operand::Imm(c.imm32()?)),
        _ => Err(c.unexpected("register or immediate")),
    }
}

/// `(u32 *)`: the size and signedness of a memory access, and the position of the type.
fn mem_type(c: &mut Cursor<'_>) -> Result<(Size, bool, usize), AsmError> {
    c.expect_punct("(")?;
    let t = c.ident("`u8`, `u16`, `u32`, `u64`, `s8`, `s16` or `s32`")?;
    let (size, signed) = match t.text {
        "u8" => (Size::B, false),
        "u16" => (Size::H, false),
        "u32" => (Size::W, false),
        "u64" => (Size::DW, false),
        "s8" => (Size::B, true),
        "s16" => (Size::H, true),
        "s32" => (Size::W, true),
        _ => {
            return Err(c.err(
                t.pos,
                AsmErrorKind::ExpectedToken {
                    expected: "`u8`, `u16`, `u32`, `u64`, `s8`, `s16` or `s32`".into(),
                    found: format!("`{}`", t.text),
                },
            ));
        }
    };
    c.expect_punct("*")?;
    c.expect_punct(")")?;
    Ok((size, signed, t.pos))
}

/// A type that is not a sign-extending one, and its position.
fn unsigned_type(c: &mut Cursor<'_>) -> Result<(Size, usize), AsmError> {
    let (size, signed, pos) = mem_type(c)?;
    if signed {
        return Err(invalid(c, pos, "only loads can sign-extend: use an unsigned type"));
    }
    Ok((size, pos))
}

/// `r1 + 0x8`, `r1 - 8`, `r1`.
fn base_off(c: &mut Cursor<'_>) -> Result<(Reg, i16), AsmError> {
    let base = c.reg_of_width(true)?;
    Ok((base.reg, c.mem_off()?))
}

/// `(r1 + 0x8)`.
fn addr(c: &mut Cursor<'_>) -> Result<(Reg, i16), AsmError> {
    c.expect_punct("(")?;
    let a = base_off(c)?;
    c.expect_punct(")")?;
    Ok(a)
}

/// A register holding a value of `size`: `wN` or `rN`, but only `rN` for 64 bits.
fn value_reg(c: &mut Cursor<'_>, size: Size) -> Result<RegTok, AsmError> {
    let r = c.reg(Dialect::Llvm)?;
    check_value_reg(c, &r, size)?;
    Ok(r)
}

fn check_value_reg(c: &Cursor<'_>, r: &RegTok, size: Size) -> Result<(), AsmError> {
    if size == Size::DW { c.check_width(r, true) } else { Ok(()) }
}

fn rmw_size(c: &Cursor<'_>, size: Size, pos: usize) -> Result<(), AsmError> {
    if matches!(size, Size::W | Size::DW) {
        Ok(())
    } else {
        Err(invalid(c, pos, "8- and 16-bit atomics only load-acquire or store-release"))
    }
}

/// `dst op src`: everything that starts with a register and an assignment operator.
pub(super) fn assign(c: &mut Cursor<'_>) -> Result<Stmt, AsmError> {
    let dst = c.reg(Dialect::Llvm)?;
    let op = c.bump().ok_or_else(|| c.unexpected("assignment operator"))?;
    if op.text == "=" {
        return eq(c, dst);
    }
    let Some(alu) = alu_op(op.text) else {
        return Err(c.err(
            op.pos,
            AsmErrorKind::ExpectedToken { expected: "assignment operator".into(), found: format!("`{}`", op.text) },
        ));
    };
    let src = operand(c, dst.wide)?;
    Ok(Stmt::new(Insn::Alu { width: width(dst.wide), op: alu, dst: dst.reg, src }))
}

/// `dst = ...`: moves, loads, negation, byte swaps, 64-bit immediates and fetching atomics.
fn eq(c: &mut Cursor<'_>, dst: RegTok) -> Result<Stmt, AsmError> {
    let dst_text = c.text(dst.pos, dst.end);
    let Some(t) = c.peek() else {
        return Err(c.unexpected("register, immediate or expression"));
    };
    if t.is_punct("*") {
        return load(c, dst);
    }
    if t.is_punct("(") {
        // `r1 = (s8)r2`
        c.bump();
        let ty = c.ident("`s8`, `s16` or `s32`")?;
        let op = match ty.text {
            "s8" => AluOp::MovSx8,
            "s16" => AluOp::MovSx16,
            "s32" if dst.wide => AluOp::MovSx32,
            "s32" => {
                return Err(invalid(c, ty.pos, "32-bit movsx only extends from 8 or 16 bits"));
            }
            _ => {
                return Err(c.err(
                    ty.pos,
                    AsmErrorKind::ExpectedToken {
                        expected: "`s8`, `s16` or `s32`".into(),
                        found: format!("`{}`", ty.text),
                    },
                ));
            }
        };
        c.expect_punct(")")?;
        let src = c.reg_of_width(dst.wide)?;
        return Ok(Stmt::new(Insn::Alu { width: width(dst.wide), op, dst: dst.reg, src: Operand::Reg(src.reg) }));
    }
    if t.is_punct("-") && c.peek_at(1).is_some_and(|n| n.kind == Kind::Ident) {
        // `r1 = -r1`
        c.bump();
        let src = c.reg(Dialect::Llvm)?;
        c.check_same(&src, dst_text)?;
        return Ok(Stmt::new(Insn::Neg { width: width(dst.wide), dst: dst.reg }));
    }
    if is_reg_like(&t) {
        let src = c.reg_of_width(dst.wide)?;
        return Ok(Stmt::new(Insn::Alu {
            width: width(dst.wide),
            op: AluOp::Mov,
            dst: dst.reg,
            src: Operand::Reg(src.reg),
        }));
    }
    if t.kind == Kind::Ident && c.peek_at(1).is_some_and(|n| n.is_ident("ll")) {
        // `r1 = table ll`: the code-address array of a jump table (`.jumptable`).
        c.bump();
        c.bump();
        c.check_width(&dst, true)?;
        let insn = Insn::LdImm64 { dst: dst.reg, src: LdImmSrc::MapIdxValue, imm: 0, next_imm: 0 };
        return Ok(Stmt {
            insn,
            target: None,
            table: Some(super::cursor::LabelRef { name: t.text.to_string(), col: c.col(t.pos) }),
        });
    }
    if t.kind == Kind::Ident {
        c.bump();
        return match t.text {
            "le16" | "le32" | "le64" | "be16" | "be32" | "be64" | "bswap16" | "bswap32" | "bswap64" => {
                c.check_width(&dst, true)?;
                let (kind, bits) = match t.text.split_at(t.text.len() - 2) {
                    ("le", b) => (Endian::ToLe, b),
                    ("be", b) => (Endian::ToBe, b),
                    (_, b) => (Endian::Swap, b),
                };
                let bits = match bits {
                    "16" => 16,
                    "32" => 32,
                    _ => 64,
                };
                let src = c.reg(Dialect::Llvm)?;
                c.check_same(&src, dst_text)?;
                Ok(Stmt::new(Insn::Endian { kind, bits, dst: dst.reg }))
            }
            "atomic_fetch_add" | "atomic_fetch_or" | "atomic_fetch_and" | "atomic_fetch_xor" => {
                let op = match t.text {
                    "atomic_fetch_add" => AtomicOp::Add { fetch: true },
                    "atomic_fetch_or" => AtomicOp::Or { fetch: true },
                    "atomic_fetch_and" => AtomicOp::And { fetch: true },
                    _ => AtomicOp::Xor { fetch: true },
                };
                c.expect_punct("(")?;
                let (size, pos) = unsigned_type(c)?;
                rmw_size(c, size, pos)?;
                let (base, off) = addr(c)?;
                c.expect_punct(",")?;
                let src = c.reg(Dialect::Llvm)?;
                c.expect_punct(")")?;
                check_value_reg(c, &dst, size)?;
                c.check_same(&src, dst_text)?;
                Ok(Stmt::new(Insn::Atomic { size, op, dst: base, src: dst.reg, off }))
            }
            "xchg_64" | "xchg32_32" | "cmpxchg_64" | "cmpxchg32_32" => {
                let size = if t.text.ends_with("_64") { Size::DW } else { Size::W };
                check_value_reg(c, &dst, size)?;
                c.expect_punct("(")?;
                let (base, off) = base_off(c)?;
                c.expect_punct(",")?;
                let (op, src) = if t.text.starts_with("cmpxchg") {
                    c.check_same(&dst, if dst.wide { "r0" } else { "w0" })?;
                    let old = c.reg(Dialect::Llvm)?;
                    c.check_same(&old, dst_text)?;
                    c.expect_punct(",")?;
                    let src = value_reg(c, size)?;
                    (AtomicOp::Cmpxchg, src)
                } else {
                    let src = c.reg(Dialect::Llvm)?;
                    c.check_same(&src, dst_text)?;
                    (AtomicOp::Xchg, src)
                };
                c.expect_punct(")")?;
                Ok(Stmt::new(Insn::Atomic { size, op, dst: base, src: src.reg, off }))
            }
            "load_acquire" => {
                c.expect_punct("(")?;
                let (size, _) = unsigned_type(c)?;
                let (base, off) = addr(c)?;
                c.expect_punct(")")?;
                check_value_reg(c, &dst, size)?;
                Ok(Stmt::new(Insn::Atomic { size, op: AtomicOp::LoadAcquire, dst: dst.reg, src: base, off }))
            }
            _ => Err(c.err(
                t.pos,
                AsmErrorKind::ExpectedToken {
                    expected: "register, immediate or expression".into(),
                    found: format!("`{}`", t.text),
                },
            )),
        };
    }
    // An immediate: `r1 = 5` or `r1 = 0x1122334455667788 ll`.
    let n = c.number("register, immediate or expression")?;
    if c.peek().is_some_and(|t| t.is_ident("ll")) {
        c.bump();
        c.check_width(&dst, true)?;
        let v = c.imm64_of(&n)?;
        return Ok(Stmt::new(Insn::LdImm64 {
            dst: dst.reg,
            src: LdImmSrc::Imm,
            imm: v as i32,
            next_imm: (v >> 32) as i32,
        }));
    }
    let imm = c.imm32_of(&n)?;
    Ok(Stmt::new(Insn::Alu { width: width(dst.wide), op: AluOp::Mov, dst: dst.reg, src: Operand::Imm(imm) }))
}

/// `dst = *(type *)(src + off)` or the packet loads `r0 = *(type *)skb[...]`.
fn load(c: &mut Cursor<'_>, dst: RegTok) -> Result<Stmt, AsmError> {
    c.expect_punct("*")?;
    let (size, signed, ty_pos) = mem_type(c)?;
    if c.peek().is_some_and(|t| t.is_ident("skb")) {
        c.bump();
        if signed || size == Size::DW {
            return Err(invalid(c, ty_pos, "packet loads are u8, u16 or u32"));
        }
        c.check_same(&dst, "r0")?;
        c.expect_punct("[")?;
        let insn = if c.peek().is_some_and(|t| t.kind == Kind::Ident) {
            let src = c.reg_of_width(true)?;
            let imm = if c.is_punct("+") || c.is_punct("-") { c.imm32()? } else { 0 };
            Insn::LdInd { size, src: src.reg, imm }
        } else {
            Insn::LdAbs { size, imm: c.imm32()? }
        };
        c.expect_punct("]")?;
        return Ok(Stmt::new(insn));
    }
    let (src, off) = addr(c)?;
    if signed {
        c.check_width(&dst, true)?;
    } else {
        check_value_reg(c, &dst, size)?;
    }
    Ok(Stmt::new(Insn::Load { size, signed, dst: dst.reg, src, off }))
}

/// `*(type *)(dst + off) = src|imm`.
pub(super) fn store(c: &mut Cursor<'_>) -> Result<Stmt, AsmError> {
    c.expect_punct("*")?;
    let (size, _) = unsigned_type(c)?;
    let (dst, off) = addr(c)?;
    c.expect_punct("=")?;
    let src = match c.peek() {
        Some(t) if is_reg_like(&t) => Operand::Reg(value_reg(c, size)?.reg),
        Some(t) if t.kind == Kind::Num || t.is_punct("-") || t.is_punct("+") => Operand::Imm(c.imm32()?),
        _ => return Err(c.unexpected("register or immediate")),
    };
    Ok(Stmt::new(Insn::Store { size, dst, off, src }))
}

/// Instructions that start with a keyword: jumps, `lock`, `ld_pseudo`, `store_release`, ...
pub(super) fn keyword(c: &mut Cursor<'_>) -> Result<Stmt, AsmError> {
    let Some(kw) = c.bump() else {
        return Err(c.unexpected("instruction"));
    };
    let stmt = match kw.text {
        "if" => {
            let dst = c.reg(Dialect::Llvm)?;
            let op = c.bump().ok_or_else(|| c.unexpected("comparison operator"))?;
            let cond = match op.text {
                "==" => Cond::Eq,
                "!=" => Cond::Ne,
                ">" => Cond::Gt,
                ">=" => Cond::Ge,
                "<" => Cond::Lt,
                "<=" => Cond::Le,
                "&" => Cond::Set,
                "s>" => Cond::Sgt,
                "s>=" => Cond::Sge,
                "s<" => Cond::Slt,
                "s<=" => Cond::Sle,
                _ => {
                    return Err(c.err(
                        op.pos,
                        AsmErrorKind::ExpectedToken {
                            expected: "comparison operator".into(),
                            found: format!("`{}`", op.text),
                        },
                    ));
                }
            };
            let src = operand(c, dst.wide)?;
            c.expect_word("goto")?;
            let w = width(dst.wide);
            Stmt::jump(c.target(16)?, |off| Insn::JmpCond { width: w, cond, dst: dst.reg, src, off: off as i16 })
        }
        "goto" => Stmt::jump(c.target(16)?, |off| Insn::Ja { long: false, off }),
        "gotol" => Stmt::jump(c.target(32)?, |off| Insn::Ja { long: true, off }),
        "goto_or_nop" | "gotol_or_nop" | "nop_or_goto" | "nop_or_gotol" => {
            let long = kw.text.contains("gotol");
            let inverse = kw.text.starts_with("nop");
            let pos = c.pos();
            let stmt =
                Stmt::jump(c.target(if long { 32 } else { 16 })?, |off| Insn::StaticBranch { long, inverse, off });
            if stmt.target.is_none() && matches!(stmt.insn, Insn::StaticBranch { off: 0, .. }) {
                return Err(invalid(c, pos, "a static branch needs a non-zero offset"));
            }
            stmt
        }
        "may_goto" => Stmt::jump(c.target(16)?, |off| Insn::MayGoto { off: off as i16 }),
        "gotox" => Stmt::new(Insn::GotoX { reg: c.reg_of_width(true)?.reg }),
        "callx" => Stmt::new(Insn::CallX { reg: c.reg_of_width(true)?.reg }),
        "ld_pseudo" => {
            let dst = c.reg_of_width(true)?;
            c.expect_punct(",")?;
            let n = c.number("pseudo source")?;
            let src = u8::try_from(n.value).ok().and_then(LdImmSrc::from_code);
            let Some(src) = src else {
                return Err(invalid(c, n.pos, "the lddw pseudo source must be 0 to 6"));
            };
            c.expect_punct(",")?;
            let imm = c.imm32()?;
            let next_pos = c.pos();
            let next_imm = if c.eat_punct(",") { c.imm32()? } else { 0 };
            if next_imm != 0 && !src.uses_second_imm() {
                return Err(invalid(c, next_pos, "this pseudo source takes no second immediate"));
            }
            Stmt::new(Insn::LdImm64 { dst: dst.reg, src, imm, next_imm })
        }
        "store_release" => {
            c.expect_punct("(")?;
            let (size, _) = unsigned_type(c)?;
            let (dst, off) = addr(c)?;
            c.expect_punct(",")?;
            let src = value_reg(c, size)?;
            c.expect_punct(")")?;
            Stmt::new(Insn::Atomic { size, op: AtomicOp::StoreRelease, dst, src: src.reg, off })
        }
        "lock" => {
            c.expect_punct("*")?;
            let (size, pos) = unsigned_type(c)?;
            rmw_size(c, size, pos)?;
            let (dst, off) = addr(c)?;
            let op = c.bump().ok_or_else(|| c.unexpected("`+=`, `|=`, `&=` or `^=`"))?;
            let op = match op.text {
                "+=" => AtomicOp::Add { fetch: false },
                "|=" => AtomicOp::Or { fetch: false },
                "&=" => AtomicOp::And { fetch: false },
                "^=" => AtomicOp::Xor { fetch: false },
                _ => {
                    return Err(c.err(
                        op.pos,
                        AsmErrorKind::ExpectedToken {
                            expected: "`+=`, `|=`, `&=` or `^=`".into(),
                            found: format!("`{}`", op.text),
                        },
                    ));
                }
            };
            let src = value_reg(c, size)?;
            Stmt::new(Insn::Atomic { size, op, dst, src: src.reg, off })
        }
        _ => {
            return Err(c.err(kw.pos, AsmErrorKind::UnknownMnemonic { mnemonic: kw.text.to_string() }));
        }
    };
    Ok(stmt)
}
