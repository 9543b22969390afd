//! bpfkit's instruction set: the 8-byte [`RawInsn`], the decoded [`Insn`], a strict decoder and
//! encoder, a disassembler that prints what `llvm-objdump-22 -d` prints, and an assembler that
//! reads that syntax back as well as the uBPF dialect of the bpf_conformance corpus.
//!
//! Invariant: for every slot sequence the decoder accepts, `encode(decode(x)) == x`, and
//! `assemble(disassemble(x)) == x` (see the property tests in `tests/roundtrip.rs`).
#![forbid(unsafe_code)]

pub mod asm;
pub mod disasm;
mod insn;
pub mod opcode;
mod raw;

pub use asm::{AsmError, AsmErrorKind, assemble, parse};
pub use disasm::{disassemble, disassemble_xlated, listing, listing_xlated};
pub use insn::{
    AluOp, AtomicOp, CallTarget, Cond, Endian, Insn, LdImmSrc, Located, Operand, Reg, Size, Width, decode_program,
    decode_program_xlated, encode_program,
};
pub use raw::{RawInsn, slots_from_bytes, slots_to_bytes};

/// A field of an instruction slot, named as in `struct bpf_insn`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    Code,
    Regs,
    Dst,
    Src,
    Off,
    Imm,
    /// `imm` of the second slot of a `lddw`.
    NextImm,
}

impl std::fmt::Display for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Field::Code => "code",
            Field::Regs => "regs",
            Field::Dst => "dst_reg",
            Field::Src => "src_reg",
            Field::Off => "off",
            Field::Imm => "imm",
            Field::NextImm => "imm (second slot)",
        })
    }
}

/// Why a slot sequence is not a valid program. `pc` is the slot index.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("insn {pc}: unknown opcode {code:#04x}")]
    UnknownOpcode { pc: usize, code: u8 },
    #[error("insn {pc}: reserved field {field} must be 0, found {value:#x} (opcode {code:#04x})")]
    ReservedField { pc: usize, code: u8, field: Field, value: i64 },
    #[error("insn {pc}: invalid {field} {value:#x} for opcode {code:#04x}: {reason}")]
    InvalidField { pc: usize, code: u8, field: Field, value: i64, reason: &'static str },
    #[error("insn {pc}: invalid register r{reg} in {field}")]
    BadRegister { pc: usize, field: Field, reg: u8 },
    #[error("insn {pc}: lddw is truncated: the program ends before its second slot")]
    TruncatedLddw { pc: usize },
    #[error("insn {pc}: second slot of lddw must have only imm set, found {field} = {value:#x}")]
    BadLddwSecondSlot { pc: usize, field: Field, value: i64 },
    #[error("insn {pc}: out of range, the program has {len} slots")]
    OutOfRange { pc: usize, len: usize },
    #[error("program of {len} bytes is not a whole number of 8-byte instructions")]
    PartialSlot { len: usize },
}

impl DecodeError {
    /// The slot index the error is about, if any.
    pub fn pc(&self) -> Option<usize> {
        match *self {
            DecodeError::UnknownOpcode { pc, .. }
            | DecodeError::ReservedField { pc, .. }
            | DecodeError::InvalidField { pc, .. }
            | DecodeError::BadRegister { pc, .. }
            | DecodeError::TruncatedLddw { pc }
            | DecodeError::BadLddwSecondSlot { pc, .. }
            | DecodeError::OutOfRange { pc, .. } => Some(pc),
            DecodeError::PartialSlot { .. } => None,
        }
    }
}
