//! The decoded instruction: one enum variant per kind of instruction of RFC 9669 (v1–v4) plus
//! the newer control flow (`gotox`, `may_goto`, static branches).
//!
//! Decoding is strict: every field the encoding does not use must be zero, so that a decoded
//! instruction encodes back to exactly the bytes it came from. Whatever the decoder accepts,
//! the disassembler can print and the assembler can read back.

use crate::opcode::*;
use crate::raw::RawInsn;
use crate::{DecodeError, Field};
use std::fmt;

/// A register number, `r0`..`r10`, or the hidden register [`Reg::AX`] (11) of rewritten
/// programs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reg(u8);

impl Reg {
    /// Return value and helper result.
    pub const R0: Reg = Reg(0);
    pub const R1: Reg = Reg(1);
    pub const R2: Reg = Reg(2);
    pub const R3: Reg = Reg(3);
    pub const R4: Reg = Reg(4);
    pub const R5: Reg = Reg(5);
    pub const R6: Reg = Reg(6);
    pub const R7: Reg = Reg(7);
    pub const R8: Reg = Reg(8);
    pub const R9: Reg = Reg(9);
    /// Read-only frame pointer.
    pub const R10: Reg = Reg(10);
    /// The hidden auxiliary register `BPF_REG_AX` (number 11). User programs cannot name it
    /// (the strict decoder and [`Reg::new`] refuse 11); rewrites such as constant blinding
    /// use it as a scratch register in the xlated program, which
    /// [`decode_program_xlated`] reads. Printed `r11` (`w11` in 32-bit context), as bpftool
    /// prints the kernel's xlated dumps. It is not preserved by the rewrites across calls
    /// (none keeps a value in it across one), and starts a run as 0.
    pub const AX: Reg = Reg(11);
    /// Number of registers a user program may name (`r0`..`r10`).
    pub const COUNT: usize = 11;
    /// Number of registers of a rewritten program, [`Reg::AX`] included.
    pub const COUNT_XLATED: usize = 12;

    /// `Some` for 0..=10 (never [`Reg::AX`]: use the constant).
    pub const fn new(n: u8) -> Option<Reg> {
        if n <= 10 { Some(Reg(n)) } else { None }
    }

    /// The register number.
    pub const fn index(self) -> u8 {
        self.0
    }
}

impl fmt::Display for Reg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "r{}", self.0)
    }
}

/// Operation width of ALU and conditional-jump instructions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Width {
    /// `BPF_ALU` / `BPF_JMP32`: the low 32 bits; ALU results are zero-extended.
    W32,
    /// `BPF_ALU64` / `BPF_JMP`.
    W64,
}

/// Memory access size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Size {
    B,
    H,
    W,
    DW,
}

impl Size {
    /// Size in bytes.
    pub const fn bytes(self) -> usize {
        match self {
            Size::B => 1,
            Size::H => 2,
            Size::W => 4,
            Size::DW => 8,
        }
    }

    const fn from_code(code: u8) -> Size {
        match code & 0x18 {
            BPF_W => Size::W,
            BPF_H => Size::H,
            BPF_B => Size::B,
            _ => Size::DW,
        }
    }

    const fn code(self) -> u8 {
        match self {
            Size::W => BPF_W,
            Size::H => BPF_H,
            Size::B => BPF_B,
            Size::DW => BPF_DW,
        }
    }
}

/// Second operand of ALU, jump and store instructions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operand {
    Reg(Reg),
    Imm(i32),
}

/// Binary ALU operations (everything but `neg` and the byte swaps).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AluOp {
    Add,
    Sub,
    Mul,
    Div,
    /// Signed division (`off = 1`).
    SDiv,
    Or,
    And,
    Lsh,
    Rsh,
    Mod,
    /// Signed modulo (`off = 1`).
    SMod,
    Xor,
    Mov,
    /// `movsx` from 8, 16 or 32 bits (`off` = 8/16/32, register source only).
    MovSx8,
    MovSx16,
    MovSx32,
    Arsh,
}

/// Byte-swap flavours of `BPF_END`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Endian {
    /// `BPF_ALU | BPF_END | BPF_TO_LE`: `le16/32/64`.
    ToLe,
    /// `BPF_ALU | BPF_END | BPF_TO_BE`: `be16/32/64`.
    ToBe,
    /// `BPF_ALU64 | BPF_END | BPF_TO_LE`: unconditional `bswap16/32/64`.
    Swap,
}

/// Conditions of conditional jumps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cond {
    Eq,
    Gt,
    Ge,
    Set,
    Ne,
    Sgt,
    Sge,
    Lt,
    Le,
    Slt,
    Sle,
}

/// Atomic operations of `BPF_STX | BPF_ATOMIC`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AtomicOp {
    Add { fetch: bool },
    Or { fetch: bool },
    And { fetch: bool },
    Xor { fetch: bool },
    Xchg,
    Cmpxchg,
    LoadAcquire,
    StoreRelease,
}

/// Source kinds of the two-slot `lddw` (`insn[0].src_reg`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LdImmSrc {
    /// 0: plain 64-bit constant.
    Imm,
    /// 1 `BPF_PSEUDO_MAP_FD`.
    MapFd,
    /// 2 `BPF_PSEUDO_MAP_VALUE`.
    MapValue,
    /// 3 `BPF_PSEUDO_BTF_ID`.
    BtfId,
    /// 4 `BPF_PSEUDO_FUNC`.
    Func,
    /// 5 `BPF_PSEUDO_MAP_IDX`.
    MapIdx,
    /// 6 `BPF_PSEUDO_MAP_IDX_VALUE`.
    MapIdxValue,
}

impl LdImmSrc {
    /// The `src_reg` value.
    pub const fn code(self) -> u8 {
        match self {
            LdImmSrc::Imm => 0,
            LdImmSrc::MapFd => BPF_PSEUDO_MAP_FD,
            LdImmSrc::MapValue => BPF_PSEUDO_MAP_VALUE,
            LdImmSrc::BtfId => BPF_PSEUDO_BTF_ID,
            LdImmSrc::Func => BPF_PSEUDO_FUNC,
            LdImmSrc::MapIdx => BPF_PSEUDO_MAP_IDX,
            LdImmSrc::MapIdxValue => BPF_PSEUDO_MAP_IDX_VALUE,
        }
    }

    /// Inverse of [`LdImmSrc::code`].
    pub const fn from_code(src: u8) -> Option<LdImmSrc> {
        Some(match src {
            0 => LdImmSrc::Imm,
            BPF_PSEUDO_MAP_FD => LdImmSrc::MapFd,
            BPF_PSEUDO_MAP_VALUE => LdImmSrc::MapValue,
            BPF_PSEUDO_BTF_ID => LdImmSrc::BtfId,
            BPF_PSEUDO_FUNC => LdImmSrc::Func,
            BPF_PSEUDO_MAP_IDX => LdImmSrc::MapIdx,
            BPF_PSEUDO_MAP_IDX_VALUE => LdImmSrc::MapIdxValue,
            _ => return None,
        })
    }

    /// Whether `insn[1].imm` carries information (a value offset, or a module BTF fd).
    pub const fn uses_second_imm(self) -> bool {
        matches!(self, LdImmSrc::Imm | LdImmSrc::MapValue | LdImmSrc::MapIdxValue | LdImmSrc::BtfId)
    }
}

/// What a `call` calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CallTarget {
    /// `src = 0`: helper by `bpf_func_id`.
    Helper(i32),
    /// `src = 1` (`BPF_PSEUDO_CALL`): subprogram at `pc + rel + 1`.
    Local(i32),
    /// `src = 2` (`BPF_PSEUDO_KFUNC_CALL`): kfunc by BTF id; `module` indexes `fd_array` (0 = vmlinux).
    Kfunc { btf_id: i32, module: i16 },
}

/// A decoded instruction. Jump offsets are relative to the next instruction, as on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Insn {
    /// `dst op= src` on 32 or 64 bits.
    Alu { width: Width, op: AluOp, dst: Reg, src: Operand },
    /// `dst = -dst`.
    Neg { width: Width, dst: Reg },
    /// Byte swap of the low `bits` (16, 32 or 64).
    Endian { kind: Endian, bits: u8, dst: Reg },
    /// Two-slot 64-bit immediate load; `imm` is `insn[0].imm`, `next_imm` is `insn[1].imm`.
    LdImm64 { dst: Reg, src: LdImmSrc, imm: i32, next_imm: i32 },
    /// Legacy packet load `r0 = *(size *)skb[imm]`.
    LdAbs { size: Size, imm: i32 },
    /// Legacy packet load `r0 = *(size *)skb[src + imm]`.
    LdInd { size: Size, src: Reg, imm: i32 },
    /// `dst = *(size *)(src + off)`, sign-extending when `signed` (`BPF_MEMSX`).
    Load { size: Size, signed: bool, dst: Reg, src: Reg, off: i16 },
    /// `*(size *)(dst + off) = src`.
    Store { size: Size, dst: Reg, off: i16, src: Operand },
    /// Atomic read-modify-write, load-acquire or store-release on `*(size *)(dst + off)`.
    Atomic { size: Size, op: AtomicOp, dst: Reg, src: Reg, off: i16 },
    /// Unconditional jump: `goto` (`long = false`, offset in the 16-bit `off` field, so `off`
    /// must fit an `i16`) or `gotol` (JMP32, offset in `imm`).
    Ja { long: bool, off: i32 },
    /// Static branch of bpfkit-decisions D1: `goto_or_nop` (`inverse = false`) or `nop_or_goto`;
    /// as for `Ja`, a short (`long = false`) one needs an offset that fits an `i16`.
    StaticBranch { long: bool, inverse: bool, off: i32 },
    /// Conditional jump.
    JmpCond { width: Width, cond: Cond, dst: Reg, src: Operand, off: i16 },
    /// `call` of a helper, subprogram or kfunc.
    Call(CallTarget),
    /// `callx reg`: the conformance corpus' call through a register (`dst_reg`).
    CallX { reg: Reg },
    /// `exit`.
    Exit,
    /// `gotox reg`: indirect jump to the instruction whose address `reg` holds.
    GotoX { reg: Reg },
    /// `may_goto +off`: jump when the frame's loop budget is spent.
    MayGoto { off: i16 },
}

/// A decoded instruction with the slot index it starts at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Located {
    /// Slot index of the instruction (a `lddw` takes two).
    pub pc: usize,
    pub insn: Insn,
}

/// `ax`: whether the hidden register AX (11) is allowed (xlated programs only).
fn reg(pc: usize, field: Field, n: u8, ax: bool) -> Result<Reg, DecodeError> {
    match Reg::new(n) {
        Some(r) => Ok(r),
        None if ax && n == Reg::AX.0 => Ok(Reg::AX),
        None => Err(DecodeError::BadRegister { pc, field, reg: n }),
    }
}

fn zero(pc: usize, code: u8, field: Field, value: i64) -> Result<(), DecodeError> {
    if value == 0 { Ok(()) } else { Err(DecodeError::ReservedField { pc, code, field, value }) }
}

fn invalid(pc: usize, code: u8, field: Field, value: i64, reason: &'static str) -> DecodeError {
    DecodeError::InvalidField { pc, code, field, value, reason }
}

impl Insn {
    /// Number of 8-byte slots this instruction occupies.
    pub const fn slots(&self) -> usize {
        match self {
            Insn::LdImm64 { .. } => 2,
            _ => 1,
        }
    }

    /// Decodes the instruction starting at `slots[pc]`. Strict: the hidden register AX (r11)
    /// is refused like any other invalid register number ([`DecodeError::BadRegister`]).
    pub fn decode(slots: &[RawInsn], pc: usize) -> Result<Insn, DecodeError> {
        Self::decode_with(slots, pc, false)
    }

    /// Like [`Insn::decode`], for a rewritten (xlated) program: the hidden register
    /// [`Reg::AX`] (r11) is accepted wherever a register is. Nothing else is relaxed.
    pub fn decode_xlated(slots: &[RawInsn], pc: usize) -> Result<Insn, DecodeError> {
        Self::decode_with(slots, pc, true)
    }

    fn decode_with(slots: &[RawInsn], pc: usize, ax: bool) -> Result<Insn, DecodeError> {
        let raw = *slots.get(pc).ok_or(DecodeError::OutOfRange { pc, len: slots.len() })?;
        let code = raw.code;
        let (dst, src, off, imm) = (raw.dst(), raw.src(), raw.off, raw.imm);
        match class(code) {
            BPF_ALU | BPF_ALU64 => decode_alu(pc, raw, ax),
            BPF_JMP | BPF_JMP32 => decode_jmp(pc, raw, ax),
            BPF_LD => {
                if code == LDDW {
                    let next = *slots.get(pc + 1).ok_or(DecodeError::TruncatedLddw { pc })?;
                    let kind = LdImmSrc::from_code(src)
                        .ok_or_else(|| invalid(pc, code, Field::Src, src.into(), "unknown lddw pseudo source"))?;
                    zero(pc, code, Field::Off, off.into())?;
                    if next.code != 0 {
                        return Err(DecodeError::BadLddwSecondSlot { pc, field: Field::Code, value: next.code.into() });
                    }
                    if next.regs != 0 {
                        return Err(DecodeError::BadLddwSecondSlot { pc, field: Field::Regs, value: next.regs.into() });
                    }
                    if next.off != 0 {
                        return Err(DecodeError::BadLddwSecondSlot { pc, field: Field::Off, value: next.off.into() });
                    }
                    if !kind.uses_second_imm() && next.imm != 0 {
                        return Err(DecodeError::BadLddwSecondSlot {
                            pc,
                            field: Field::NextImm,
                            value: next.imm.into(),
                        });
                    }
                    return Ok(Insn::LdImm64 {
                        dst: reg(pc, Field::Dst, dst, ax)?,
                        src: kind,
                        imm,
                        next_imm: next.imm,
                    });
                }
                let size = Size::from_code(code);
                let mode = code & 0xe0;
                if size == Size::DW || (mode != BPF_ABS && mode != BPF_IND) {
                    return Err(DecodeError::UnknownOpcode { pc, code });
                }
                zero(pc, code, Field::Dst, dst.into())?;
                zero(pc, code, Field::Off, off.into())?;
                if mode == BPF_ABS {
                    zero(pc, code, Field::Src, src.into())?;
                    Ok(Insn::LdAbs { size, imm })
                } else {
                    Ok(Insn::LdInd { size, src: reg(pc, Field::Src, src, ax)?, imm })
                }
            }
            BPF_LDX => {
                let mode = code & 0xe0;
                let size = Size::from_code(code);
                let signed = match mode {
                    BPF_MEM => false,
                    BPF_MEMSX if size != Size::DW => true,
                    _ => return Err(DecodeError::UnknownOpcode { pc, code }),
                };
                zero(pc, code, Field::Imm, imm.into())?;
                Ok(Insn::Load {
                    size,
                    signed,
                    dst: reg(pc, Field::Dst, dst, ax)?,
                    src: reg(pc, Field::Src, src, ax)?,
                    off,
                })
            }
            BPF_ST => {
                if code & 0xe0 != BPF_MEM {
                    return Err(DecodeError::UnknownOpcode { pc, code });
                }
                zero(pc, code, Field::Src, src.into())?;
                Ok(Insn::Store {
                    size: Size::from_code(code),
                    dst: reg(pc, Field::Dst, dst, ax)?,
                    off,
                    src: Operand::Imm(imm),
                })
            }
            _ => {
                // BPF_STX
                let size = Size::from_code(code);
                let dst = reg(pc, Field::Dst, dst, ax)?;
                let src = reg(pc, Field::Src, src, ax)?;
                match code & 0xe0 {
                    BPF_MEM => {
                        zero(pc, code, Field::Imm, imm.into())?;
                        Ok(Insn::Store { size, dst, off, src: Operand::Reg(src) })
                    }
                    BPF_ATOMIC => {
                        let op = match imm {
                            BPF_LOAD_ACQ => AtomicOp::LoadAcquire,
                            BPF_STORE_REL => AtomicOp::StoreRelease,
                            _ if !matches!(size, Size::W | Size::DW) => {
                                return Err(invalid(
                                    pc,
                                    code,
                                    Field::Imm,
                                    imm.into(),
                                    "8- and 16-bit atomics only load-acquire or store-release",
                                ));
                            }
                            BPF_XCHG => AtomicOp::Xchg,
                            BPF_CMPXCHG => AtomicOp::Cmpxchg,
                            _ => {
                                let fetch = imm & BPF_FETCH != 0;
                                match imm & !BPF_FETCH {
                                    0x00 => AtomicOp::Add { fetch },
                                    0x40 => AtomicOp::Or { fetch },
                                    0x50 => AtomicOp::And { fetch },
                                    0xa0 => AtomicOp::Xor { fetch },
                                    _ => {
                                        return Err(invalid(
                                            pc,
                                            code,
                                            Field::Imm,
                                            imm.into(),
                                            "unknown atomic operation",
                                        ));
                                    }
                                }
                            }
                        };
                        Ok(Insn::Atomic { size, op, dst, src, off })
                    }
                    _ => Err(DecodeError::UnknownOpcode { pc, code }),
                }
            }
        }
    }

    /// Appends the slots of this instruction to `out`.
    ///
    /// Every `Insn` the decoder or the assembler produces encodes exactly. One built by hand
    /// must respect the field widths: a short `Ja`/`StaticBranch` offset must fit 16 bits
    /// (checked in debug builds).
    pub fn encode_into(&self, out: &mut Vec<RawInsn>) {
        debug_assert!(
            !matches!(*self, Insn::Ja { long: false, off } | Insn::StaticBranch { long: false, off, .. } if i16::try_from(off).is_err()),
            "short jump offset does not fit 16 bits: {self:?}"
        );
        let r = |reg: Reg| reg.index();
        let raw = match *self {
            Insn::Alu { width, op, dst, src } => {
                let class = alu_class(width);
                let (opc, off) = match op {
                    AluOp::Add => (BPF_ADD, 0),
                    AluOp::Sub => (BPF_SUB, 0),
                    AluOp::Mul => (BPF_MUL, 0),
                    AluOp::Div => (BPF_DIV, 0),
                    AluOp::SDiv => (BPF_DIV, 1),
                    AluOp::Or => (BPF_OR, 0),
                    AluOp::And => (BPF_AND, 0),
                    AluOp::Lsh => (BPF_LSH, 0),
                    AluOp::Rsh => (BPF_RSH, 0),
                    AluOp::Mod => (BPF_MOD, 0),
                    AluOp::SMod => (BPF_MOD, 1),
                    AluOp::Xor => (BPF_XOR, 0),
                    AluOp::Mov => (BPF_MOV, 0),
                    AluOp::MovSx8 => (BPF_MOV, 8),
                    AluOp::MovSx16 => (BPF_MOV, 16),
                    AluOp::MovSx32 => (BPF_MOV, 32),
                    AluOp::Arsh => (BPF_ARSH, 0),
                };
                match src {
                    Operand::Reg(s) => RawInsn::new(class | opc | BPF_X, r(dst), r(s), off, 0),
                    Operand::Imm(i) => RawInsn::new(class | opc | BPF_K, r(dst), 0, off, i),
                }
            }
            Insn::Neg { width, dst } => RawInsn::new(alu_class(width) | BPF_NEG, r(dst), 0, 0, 0),
            Insn::Endian { kind, bits, dst } => {
                let code = match kind {
                    Endian::ToLe => BPF_ALU | BPF_END | BPF_TO_LE,
                    Endian::ToBe => BPF_ALU | BPF_END | BPF_TO_BE,
                    Endian::Swap => BPF_ALU64 | BPF_END | BPF_TO_LE,
                };
                RawInsn::new(code, r(dst), 0, 0, bits.into())
            }
            Insn::LdImm64 { dst, src, imm, next_imm } => {
                out.push(RawInsn::new(LDDW, r(dst), src.code(), 0, imm));
                RawInsn::new(0, 0, 0, 0, next_imm)
            }
            Insn::LdAbs { size, imm } => RawInsn::new(BPF_LD | BPF_ABS | size.code(), 0, 0, 0, imm),
            Insn::LdInd { size, src, imm } => RawInsn::new(BPF_LD | BPF_IND | size.code(), 0, r(src), 0, imm),
            Insn::Load { size, signed, dst, src, off } => {
                let mode = if signed { BPF_MEMSX } else { BPF_MEM };
                RawInsn::new(BPF_LDX | mode | size.code(), r(dst), r(src), off, 0)
            }
            Insn::Store { size, dst, off, src: Operand::Imm(i) } => {
                RawInsn::new(BPF_ST | BPF_MEM | size.code(), r(dst), 0, off, i)
            }
            Insn::Store { size, dst, off, src: Operand::Reg(s) } => {
                RawInsn::new(BPF_STX | BPF_MEM | size.code(), r(dst), r(s), off, 0)
            }
            Insn::Atomic { size, op, dst, src, off } => {
                let imm = match op {
                    AtomicOp::Add { fetch } => fetch as i32,
                    AtomicOp::Or { fetch } => 0x40 | fetch as i32,
                    AtomicOp::And { fetch } => 0x50 | fetch as i32,
                    AtomicOp::Xor { fetch } => 0xa0 | fetch as i32,
                    AtomicOp::Xchg => BPF_XCHG,
                    AtomicOp::Cmpxchg => BPF_CMPXCHG,
                    AtomicOp::LoadAcquire => BPF_LOAD_ACQ,
                    AtomicOp::StoreRelease => BPF_STORE_REL,
                };
                RawInsn::new(BPF_STX | BPF_ATOMIC | size.code(), r(dst), r(src), off, imm)
            }
            Insn::Ja { long: false, off } => RawInsn::new(BPF_JMP | BPF_JA, 0, 0, off as i16, 0),
            Insn::Ja { long: true, off } => RawInsn::new(BPF_JMP32 | BPF_JA, 0, 0, 0, off),
            Insn::StaticBranch { long, inverse, off } => {
                let flags = BPF_STATIC_BRANCH_JA | if inverse { BPF_STATIC_BRANCH_NOP } else { 0 };
                if long {
                    RawInsn::new(BPF_JMP32 | BPF_JA, 0, flags, 0, off)
                } else {
                    RawInsn::new(BPF_JMP | BPF_JA, 0, flags, off as i16, 0)
                }
            }
            Insn::JmpCond { width, cond, dst, src, off } => {
                let class = if width == Width::W64 { BPF_JMP } else { BPF_JMP32 };
                let op = cond_code(cond);
                match src {
                    Operand::Reg(s) => RawInsn::new(class | op | BPF_X, r(dst), r(s), off, 0),
                    Operand::Imm(i) => RawInsn::new(class | op | BPF_K, r(dst), 0, off, i),
                }
            }
            Insn::Call(CallTarget::Helper(id)) => RawInsn::new(BPF_JMP | BPF_CALL, 0, 0, 0, id),
            Insn::Call(CallTarget::Local(rel)) => RawInsn::new(BPF_JMP | BPF_CALL, 0, BPF_PSEUDO_CALL, 0, rel),
            Insn::Call(CallTarget::Kfunc { btf_id, module }) => {
                RawInsn::new(BPF_JMP | BPF_CALL, 0, BPF_PSEUDO_KFUNC_CALL, module, btf_id)
            }
            Insn::CallX { reg } => RawInsn::new(BPF_JMP | BPF_CALL | BPF_X, r(reg), 0, 0, 0),
            Insn::Exit => RawInsn::new(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
            Insn::GotoX { reg } => RawInsn::new(BPF_JMP | BPF_JA | BPF_X, r(reg), 0, 0, 0),
            Insn::MayGoto { off } => RawInsn::new(BPF_JMP | BPF_JCOND, 0, BPF_MAY_GOTO, off, 0),
        };
        out.push(raw);
    }

    /// The slots of this instruction.
    pub fn encode(&self) -> Vec<RawInsn> {
        let mut v = Vec::with_capacity(2);
        self.encode_into(&mut v);
        v
    }

    /// Whether a register field of the instruction names `r` (read or written).
    pub fn names_reg(&self, r: Reg) -> bool {
        let op = |o: Operand| o == Operand::Reg(r);
        match *self {
            Insn::Alu { dst, src, .. } | Insn::JmpCond { dst, src, .. } | Insn::Store { dst, src, .. } => {
                dst == r || op(src)
            }
            Insn::Neg { dst, .. } | Insn::Endian { dst, .. } | Insn::LdImm64 { dst, .. } => dst == r,
            Insn::LdInd { src, .. } => src == r,
            Insn::Load { dst, src, .. } | Insn::Atomic { dst, src, .. } => dst == r || src == r,
            Insn::CallX { reg } | Insn::GotoX { reg } => reg == r,
            _ => false,
        }
    }

    /// For instructions that may transfer control within the program, the relative offset of
    /// the target (`pc + off + 1`): jumps, static branches, `may_goto` and local calls.
    pub fn branch_offset(&self) -> Option<i64> {
        match *self {
            Insn::Ja { off, .. } | Insn::StaticBranch { off, .. } => Some(off.into()),
            Insn::JmpCond { off, .. } | Insn::MayGoto { off } => Some(off.into()),
            Insn::Call(CallTarget::Local(rel)) => Some(rel.into()),
            Insn::LdImm64 { src: LdImmSrc::Func, imm, .. } => Some(imm.into()),
            _ => None,
        }
    }
}

const fn alu_class(width: Width) -> u8 {
    match width {
        Width::W32 => BPF_ALU,
        Width::W64 => BPF_ALU64,
    }
}

const fn cond_code(cond: Cond) -> u8 {
    match cond {
        Cond::Eq => BPF_JEQ,
        Cond::Gt => BPF_JGT,
        Cond::Ge => BPF_JGE,
        Cond::Set => BPF_JSET,
        Cond::Ne => BPF_JNE,
        Cond::Sgt => BPF_JSGT,
        Cond::Sge => BPF_JSGE,
        Cond::Lt => BPF_JLT,
        Cond::Le => BPF_JLE,
        Cond::Slt => BPF_JSLT,
        Cond::Sle => BPF_JSLE,
    }
}

fn decode_alu(pc: usize, raw: RawInsn, ax: bool) -> Result<Insn, DecodeError> {
    let code = raw.code;
    let width = if class(code) == BPF_ALU64 { Width::W64 } else { Width::W32 };
    let is_x = code & BPF_X != 0;
    let (dst_n, src_n, off, imm) = (raw.dst(), raw.src(), raw.off, raw.imm);
    let dst = reg(pc, Field::Dst, dst_n, ax)?;
    let op = code & 0xf0;
    match op {
        BPF_NEG => {
            if is_x {
                return Err(DecodeError::UnknownOpcode { pc, code });
            }
            zero(pc, code, Field::Src, src_n.into())?;
            zero(pc, code, Field::Off, off.into())?;
            zero(pc, code, Field::Imm, imm.into())?;
            return Ok(Insn::Neg { width, dst });
        }
        BPF_END => {
            zero(pc, code, Field::Src, src_n.into())?;
            zero(pc, code, Field::Off, off.into())?;
            let kind = match (width, is_x) {
                (Width::W32, false) => Endian::ToLe,
                (Width::W32, true) => Endian::ToBe,
                (Width::W64, false) => Endian::Swap,
                (Width::W64, true) => return Err(DecodeError::UnknownOpcode { pc, code }),
            };
            if !matches!(imm, 16 | 32 | 64) {
                return Err(invalid(pc, code, Field::Imm, imm.into(), "byte swap width must be 16, 32 or 64"));
            }
            return Ok(Insn::Endian { kind, bits: imm as u8, dst });
        }
        0xe0 | 0xf0 => return Err(DecodeError::UnknownOpcode { pc, code }),
        _ => {}
    }
    let alu_op = match (op, off) {
        (BPF_ADD, 0) => AluOp::Add,
        (BPF_SUB, 0) => AluOp::Sub,
        (BPF_MUL, 0) => AluOp::Mul,
        (BPF_DIV, 0) => AluOp::Div,
        (BPF_DIV, 1) => AluOp::SDiv,
        (BPF_OR, 0) => AluOp::Or,
        (BPF_AND, 0) => AluOp::And,
        (BPF_LSH, 0) => AluOp::Lsh,
        (BPF_RSH, 0) => AluOp::Rsh,
        (BPF_MOD, 0) => AluOp::Mod,
        (BPF_MOD, 1) => AluOp::SMod,
        (BPF_XOR, 0) => AluOp::Xor,
        (BPF_MOV, 0) => AluOp::Mov,
        (BPF_MOV, 8) if is_x => AluOp::MovSx8,
        (BPF_MOV, 16) if is_x => AluOp::MovSx16,
        (BPF_MOV, 32) if is_x && width == Width::W64 => AluOp::MovSx32,
        (BPF_ARSH, 0) => AluOp::Arsh,
        (BPF_DIV | BPF_MOD, _) => {
            return Err(invalid(pc, code, Field::Off, off.into(), "div/mod take off 0 (unsigned) or 1 (signed)"));
        }
        (BPF_MOV, _) => {
            return Err(invalid(
                pc,
                code,
                Field::Off,
                off.into(),
                "mov takes off 0, or 8/16 (and 32 for 64-bit) with a register source for movsx",
            ));
        }
        _ => return Err(DecodeError::ReservedField { pc, code, field: Field::Off, value: off.into() }),
    };
    let src = if is_x {
        zero(pc, code, Field::Imm, imm.into())?;
        Operand::Reg(reg(pc, Field::Src, src_n, ax)?)
    } else {
        zero(pc, code, Field::Src, src_n.into())?;
        Operand::Imm(imm)
    };
    Ok(Insn::Alu { width, op: alu_op, dst, src })
}

fn decode_jmp(pc: usize, raw: RawInsn, ax: bool) -> Result<Insn, DecodeError> {
    let code = raw.code;
    let jmp32 = class(code) == BPF_JMP32;
    let is_x = code & BPF_X != 0;
    let (dst_n, src_n, off, imm) = (raw.dst(), raw.src(), raw.off, raw.imm);
    let op = code & 0xf0;
    let cond = match op {
        BPF_JA => {
            if is_x {
                // gotox: BPF_JMP only; target register in dst_reg.
                if jmp32 {
                    return Err(DecodeError::UnknownOpcode { pc, code });
                }
                zero(pc, code, Field::Src, src_n.into())?;
                zero(pc, code, Field::Off, off.into())?;
                zero(pc, code, Field::Imm, imm.into())?;
                return Ok(Insn::GotoX { reg: reg(pc, Field::Dst, dst_n, ax)? });
            }
            zero(pc, code, Field::Dst, dst_n.into())?;
            let (used, unused, unused_field) =
                if jmp32 { (imm, i32::from(off), Field::Off) } else { (i32::from(off), imm, Field::Imm) };
            zero(pc, code, unused_field, unused.into())?;
            return match src_n {
                0 => Ok(Insn::Ja { long: jmp32, off: used }),
                1 | 3 => {
                    if used == 0 {
                        return Err(invalid(pc, code, Field::Off, 0, "a static branch needs a non-zero offset"));
                    }
                    Ok(Insn::StaticBranch { long: jmp32, inverse: src_n == 3, off: used })
                }
                _ => Err(invalid(
                    pc,
                    code,
                    Field::Src,
                    src_n.into(),
                    "JA src_reg must be 0, 1 (goto_or_nop) or 3 (nop_or_goto)",
                )),
            };
        }
        BPF_CALL => {
            if jmp32 {
                return Err(DecodeError::UnknownOpcode { pc, code });
            }
            if is_x {
                zero(pc, code, Field::Src, src_n.into())?;
                zero(pc, code, Field::Off, off.into())?;
                zero(pc, code, Field::Imm, imm.into())?;
                return Ok(Insn::CallX { reg: reg(pc, Field::Dst, dst_n, ax)? });
            }
            zero(pc, code, Field::Dst, dst_n.into())?;
            let target = match src_n {
                0 => CallTarget::Helper(imm),
                BPF_PSEUDO_CALL => CallTarget::Local(imm),
                BPF_PSEUDO_KFUNC_CALL => CallTarget::Kfunc { btf_id: imm, module: off },
                _ => return Err(invalid(pc, code, Field::Src, src_n.into(), "call src_reg must be 0, 1 or 2")),
            };
            if src_n != BPF_PSEUDO_KFUNC_CALL {
                zero(pc, code, Field::Off, off.into())?;
            }
            return Ok(Insn::Call(target));
        }
        BPF_EXIT => {
            if jmp32 || is_x {
                return Err(DecodeError::UnknownOpcode { pc, code });
            }
            zero(pc, code, Field::Dst, dst_n.into())?;
            zero(pc, code, Field::Src, src_n.into())?;
            zero(pc, code, Field::Off, off.into())?;
            zero(pc, code, Field::Imm, imm.into())?;
            return Ok(Insn::Exit);
        }
        BPF_JCOND => {
            if jmp32 || is_x {
                return Err(DecodeError::UnknownOpcode { pc, code });
            }
            if src_n != BPF_MAY_GOTO {
                return Err(invalid(pc, code, Field::Src, src_n.into(), "the only BPF_JCOND is may_goto (src_reg 0)"));
            }
            zero(pc, code, Field::Dst, dst_n.into())?;
            if imm != 0 {
                return Err(invalid(pc, code, Field::Imm, imm.into(), "invalid may_goto imm"));
            }
            return Ok(Insn::MayGoto { off });
        }
        BPF_JEQ => Cond::Eq,
        BPF_JGT => Cond::Gt,
        BPF_JGE => Cond::Ge,
        BPF_JSET => Cond::Set,
        BPF_JNE => Cond::Ne,
        BPF_JSGT => Cond::Sgt,
        BPF_JSGE => Cond::Sge,
        BPF_JLT => Cond::Lt,
        BPF_JLE => Cond::Le,
        BPF_JSLT => Cond::Slt,
        BPF_JSLE => Cond::Sle,
        _ => return Err(DecodeError::UnknownOpcode { pc, code }),
    };
    let dst = reg(pc, Field::Dst, dst_n, ax)?;
    let src = if is_x {
        zero(pc, code, Field::Imm, imm.into())?;
        Operand::Reg(reg(pc, Field::Src, src_n, ax)?)
    } else {
        zero(pc, code, Field::Src, src_n.into())?;
        Operand::Imm(imm)
    };
    Ok(Insn::JmpCond { width: if jmp32 { Width::W32 } else { Width::W64 }, cond, dst, src, off })
}

/// Decodes a whole program; the second slot of every `lddw` is skipped. Strict: a program
/// that names r11 (the hidden register AX) is refused ([`DecodeError::BadRegister`]).
pub fn decode_program(slots: &[RawInsn]) -> Result<Vec<Located>, DecodeError> {
    decode_program_with(slots, false)
}

/// Decodes a rewritten (xlated) program, in which the hidden register [`Reg::AX`] may
/// appear (constant blinding and other rewrites use it); otherwise as strict as
/// [`decode_program`]. Programs from users go through [`decode_program`].
pub fn decode_program_xlated(slots: &[RawInsn]) -> Result<Vec<Located>, DecodeError> {
    decode_program_with(slots, true)
}

fn decode_program_with(slots: &[RawInsn], ax: bool) -> Result<Vec<Located>, DecodeError> {
    let mut out = Vec::with_capacity(slots.len());
    let mut pc = 0;
    while pc < slots.len() {
        let insn = Insn::decode_with(slots, pc, ax)?;
        out.push(Located { pc, insn });
        pc += insn.slots();
    }
    Ok(out)
}

/// Encodes a sequence of instructions into slots.
pub fn encode_program<'a>(insns: impl IntoIterator<Item = &'a Insn>) -> Vec<RawInsn> {
    let mut out = Vec::new();
    for insn in insns {
        insn.encode_into(&mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AX (r11) is refused by the strict decoder with the same error as before, accepted by the
    /// xlated one in every register field, and encodes back to the same bytes; r12..r15 stay
    /// invalid everywhere.
    #[test]
    fn ax_only_in_xlated_programs() {
        let cases = [
            (RawInsn::new(BPF_ALU64 | BPF_MOV | BPF_K, 11, 0, 0, 7), Field::Dst),
            (RawInsn::new(BPF_ALU | BPF_ADD | BPF_X, 1, 11, 0, 0), Field::Src),
            (RawInsn::new(BPF_JMP | BPF_JGT | BPF_X, 2, 11, 3, 0), Field::Src),
            (RawInsn::new(BPF_STX | BPF_MEM | BPF_DW, 10, 11, -8, 0), Field::Src),
            (RawInsn::new(BPF_LDX | BPF_MEM | BPF_W, 11, 11, 4, 0), Field::Dst),
        ];
        for (raw, field) in cases {
            assert_eq!(Insn::decode(&[raw], 0), Err(DecodeError::BadRegister { pc: 0, field, reg: 11 }), "{raw:?}");
            assert_eq!(decode_program(&[raw]), Err(DecodeError::BadRegister { pc: 0, field, reg: 11 }));
            let insn = Insn::decode_xlated(&[raw], 0).unwrap_or_else(|e| panic!("{raw:?}: {e}"));
            assert_eq!(insn.encode(), vec![raw]);
            assert_eq!(decode_program_xlated(&[raw]).map(|v| v[0].insn), Ok(insn));
        }
        assert_eq!(
            Insn::decode_xlated(&[RawInsn::new(BPF_ALU64 | BPF_MOV | BPF_K, 12, 0, 0, 7)], 0),
            Err(DecodeError::BadRegister { pc: 0, field: Field::Dst, reg: 12 })
        );
        assert_eq!(Reg::new(11), None);
        assert_eq!(Reg::AX.index(), 11);
    }

    #[test]
    fn ax_is_printed_r11() {
        let slots = encode_program(&[
            Insn::Alu { width: Width::W64, op: AluOp::Mov, dst: Reg::AX, src: Operand::Imm(5) },
            Insn::Alu { width: Width::W32, op: AluOp::Xor, dst: Reg::AX, src: Operand::Imm(3) },
            Insn::Store { size: Size::W, dst: Reg::R10, off: -8, src: Operand::Reg(Reg::AX) },
            Insn::Exit,
        ]);
        assert!(crate::disassemble(&slots).is_err());
        assert_eq!(
            crate::disassemble_xlated(&slots).unwrap(),
            "r11 = 0x5\nw11 ^= 0x3\n*(u32 *)(r10 - 0x8) = w11\nexit\n"
        );
        assert!(crate::listing_xlated(&slots).unwrap().contains("\tr11 = 0x5\n"));
    }
}
