//! Pre-decoding: a checked program becomes a dense array of [`Op`]s, one per instruction slot,
//! with every operand resolved ahead of time (immediates sign- or zero-extended, jump offsets
//! turned into absolute slot indices, helper ids into indices of the program's helper table),
//! so that the interpreter loop does one `match` per instruction and nothing else.

use crate::helpers::{Helper, Helpers};
use crate::native::NativeCode;
use bpfkit_isa::{
    AluOp, AtomicOp, CallTarget, Cond, DecodeError, Endian, Insn, LdImmSrc, Located, Operand, RawInsn, Size, Width,
    decode_program, decode_program_xlated,
};
use std::collections::HashMap;
use std::sync::OnceLock;

/// Why a program cannot be loaded into the interpreter.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("the program is empty")]
    Empty,
    #[error("insn {pc}: jump out of range to {target} (the program has {len} slots)")]
    JumpOutOfRange { pc: usize, target: i64, len: usize },
    #[error("insn {pc}: jump to {target} lands in the middle of the lddw at {}", target - 1)]
    JumpIntoLddw { pc: usize, target: usize },
    #[error("insn {pc}: unknown helper {id}")]
    UnknownHelper { pc: usize, id: i32 },
    #[error("insn {pc}: kfunc call (btf id {btf_id}) needs the object loader to resolve it")]
    UnresolvedKfunc { pc: usize, btf_id: i32 },
    #[error("insn {pc}: lddw with pseudo source {src} needs the object loader to resolve it")]
    UnresolvedPseudo { pc: usize, src: u8 },
}

/// The pre-decoded operation kinds. One per (operation, width, operand kind), so that the
/// interpreter's dispatch is a single jump table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Kind {
    // 64-bit ALU, immediate (pre-sign-extended in `imm`) and register forms.
    Add64Imm,
    Add64Reg,
    Sub64Imm,
    Sub64Reg,
    Mul64Imm,
    Mul64Reg,
    Div64Imm,
    Div64Reg,
    SDiv64Imm,
    SDiv64Reg,
    Or64Imm,
    Or64Reg,
    And64Imm,
    And64Reg,
    Lsh64Imm,
    Lsh64Reg,
    Rsh64Imm,
    Rsh64Reg,
    Mod64Imm,
    Mod64Reg,
    SMod64Imm,
    SMod64Reg,
    Xor64Imm,
    Xor64Reg,
    Mov64Imm,
    Mov64Reg,
    Arsh64Imm,
    Arsh64Reg,
    Neg64,
    MovSx8To64,
    MovSx16To64,
    MovSx32To64,
    /// `lddw` of a constant: like `Mov64Imm`, then skips its second slot.
    Lddw,
    // 32-bit ALU: results zero-extended.
    Add32Imm,
    Add32Reg,
    Sub32Imm,
    Sub32Reg,
    Mul32Imm,
    Mul32Reg,
    Div32Imm,
    Div32Reg,
    SDiv32Imm,
    SDiv32Reg,
    Or32Imm,
    Or32Reg,
    And32Imm,
    And32Reg,
    Lsh32Imm,
    Lsh32Reg,
    Rsh32Imm,
    Rsh32Reg,
    Mod32Imm,
    Mod32Reg,
    SMod32Imm,
    SMod32Reg,
    Xor32Imm,
    Xor32Reg,
    Mov32Imm,
    Mov32Reg,
    Arsh32Imm,
    Arsh32Reg,
    Neg32,
    MovSx8To32,
    MovSx16To32,
    // Byte order (on a little-endian host `le` only truncates).
    Trunc16,
    Trunc32,
    Swap16,
    Swap32,
    Swap64,
    // Memory.
    Ldx8,
    Ldx16,
    Ldx32,
    Ldx64,
    Ldxs8,
    Ldxs16,
    Ldxs32,
    St8,
    St16,
    St32,
    St64,
    Stx8,
    Stx16,
    Stx32,
    Stx64,
    Atomic,
    LdAbs,
    LdInd,
    // Control flow. `off` holds the absolute target slot.
    Ja,
    Nop,
    /// A static branch: jumps to `off` iff its site's state (`Program::static_jumps[imm]`) says so.
    StaticBranch,
    Jeq64Imm,
    Jeq64Reg,
    Jgt64Imm,
    Jgt64Reg,
    Jge64Imm,
    Jge64Reg,
    Jset64Imm,
    Jset64Reg,
    Jne64Imm,
    Jne64Reg,
    Jsgt64Imm,
    Jsgt64Reg,
    Jsge64Imm,
    Jsge64Reg,
    Jlt64Imm,
    Jlt64Reg,
    Jle64Imm,
    Jle64Reg,
    Jslt64Imm,
    Jslt64Reg,
    Jsle64Imm,
    Jsle64Reg,
    Jeq32Imm,
    Jeq32Reg,
    Jgt32Imm,
    Jgt32Reg,
    Jge32Imm,
    Jge32Reg,
    Jset32Imm,
    Jset32Reg,
    Jne32Imm,
    Jne32Reg,
    Jsgt32Imm,
    Jsgt32Reg,
    Jsge32Imm,
    Jsge32Reg,
    Jlt32Imm,
    Jlt32Reg,
    Jle32Imm,
    Jle32Reg,
    Jslt32Imm,
    Jslt32Reg,
    Jsle32Imm,
    Jsle32Reg,
    CallHelper,
    CallLocal,
    CallX,
    Exit,
    GotoX,
    MayGoto,
    /// The second slot of a `lddw`: never executed (jumps into it are refused at load).
    LddwTail,
    /// One past the last instruction: executing it means the program fell off its end.
    End,
}

/// One pre-decoded instruction (16 bytes).
#[derive(Clone, Copy, Debug)]
#[repr(C)]
pub(crate) struct Op {
    pub(crate) kind: Kind,
    pub(crate) dst: u8,
    pub(crate) src: u8,
    /// For `Atomic`: the operation; for memory ops: unused.
    pub(crate) aux: u8,
    /// Memory offset, or absolute target slot of a jump/call, or size for LdAbs/LdInd/Atomic.
    pub(crate) off: i32,
    /// Immediate, already extended; helper-table index for `CallHelper`.
    pub(crate) imm: i64,
}

/// Sub-operations of [`Kind::Atomic`], in `Op::aux`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum AtomicKind {
    Add,
    Or,
    And,
    Xor,
    FetchAdd,
    FetchOr,
    FetchAnd,
    FetchXor,
    Xchg,
    Cmpxchg,
    LoadAcquire,
    StoreRelease,
}

impl AtomicKind {
    pub(crate) const ALL: [AtomicKind; 12] = [
        AtomicKind::Add,
        AtomicKind::Or,
        AtomicKind::And,
        AtomicKind::Xor,
        AtomicKind::FetchAdd,
        AtomicKind::FetchOr,
        AtomicKind::FetchAnd,
        AtomicKind::FetchXor,
        AtomicKind::Xchg,
        AtomicKind::Cmpxchg,
        AtomicKind::LoadAcquire,
        AtomicKind::StoreRelease,
    ];
}

/// A program ready to run: immutable, shareable between threads and VMs.
pub struct Program {
    pub(crate) ops: Vec<Op>,
    /// Each static branch: its slot and whether it jumps now (flipped while programs run).
    pub(crate) static_sites: Box<[(usize, std::sync::atomic::AtomicBool)]>,
    pub(crate) helpers: Vec<Helper>,
    /// The id of each entry of `helpers`.
    pub(crate) table_ids: Vec<i32>,
    /// Helper id → index in `helpers`, for `callx`.
    pub(crate) helper_ids: HashMap<i32, usize>,
    /// Slot indices where an instruction starts (false for lddw tails).
    pub(crate) insn_start: Vec<bool>,
    slots: Vec<RawInsn>,
    /// Loaded with [`Program::load_xlated`]: the slots may use the hidden register AX.
    xlated: bool,
    native: OnceLock<NativeCode>,
}

impl std::fmt::Debug for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Program").field("slots", &self.slots.len()).field("helpers", &self.helpers.len()).finish()
    }
}

impl Program {
    /// Decodes, checks and pre-decodes `slots`, resolving helper calls against `helpers`.
    ///
    /// Checked here: every encoding is valid, every jump and local call lands on the start of
    /// an instruction inside the program, every helper called by number is registered. Not
    /// checked (that is the verifier's job): memory safety, which the interpreter enforces at
    /// run time instead, and termination.
    pub fn load(slots: &[RawInsn], helpers: &Helpers) -> Result<Program, LoadError> {
        if slots.is_empty() {
            return Err(LoadError::Empty);
        }
        Self::load_decoded(slots, decode_program(slots)?, helpers, false)
    }

    /// Like [`Program::load`], for a rewritten (xlated) program, e.g. the output of
    /// `bpfkit_fixup::fixup`: the hidden register AX (`Reg::AX`, r11) may appear wherever a
    /// register may. It is an ordinary register of the run (64 bits, 0 at the start of a
    /// run, shared by all frames like the kernel's, not saved by calls); everything else is
    /// checked as by [`Program::load`]. User-supplied programs go through [`Program::load`],
    /// which refuses r11.
    pub fn load_xlated(slots: &[RawInsn], helpers: &Helpers) -> Result<Program, LoadError> {
        if slots.is_empty() {
            return Err(LoadError::Empty);
        }
        Self::load_decoded(slots, decode_program_xlated(slots)?, helpers, true)
    }

    fn load_decoded(
        slots: &[RawInsn],
        decoded: Vec<Located>,
        helpers: &Helpers,
        xlated: bool,
    ) -> Result<Program, LoadError> {
        let len = slots.len();
        let mut insn_start = vec![false; len];
        for l in &decoded {
            insn_start[l.pc] = true;
        }
        let target_of = |pc: usize, rel: i64| -> Result<i32, LoadError> {
            let t = pc as i64 + 1 + rel;
            if t < 0 || t >= len as i64 {
                return Err(LoadError::JumpOutOfRange { pc, target: t, len });
            }
            if !insn_start[t as usize] {
                return Err(LoadError::JumpIntoLddw { pc, target: t as usize });
            }
            Ok(t as i32)
        };

        let mut table: Vec<Helper> = Vec::new();
        let mut table_ids: Vec<i32> = Vec::new();
        let mut helper_ids: HashMap<i32, usize> = HashMap::new();
        for (id, h) in helpers.iter() {
            helper_ids.insert(id, table.len());
            table.push(h.clone());
            table_ids.push(id);
        }

        let filler = Op { kind: Kind::LddwTail, dst: 0, src: 0, aux: 0, off: 0, imm: 0 };
        let mut ops = vec![filler; len + 1];
        let mut static_sites: Vec<(usize, std::sync::atomic::AtomicBool)> = Vec::new();
        ops[len] = Op { kind: Kind::End, ..filler };
        // `ops` is never reallocated, so its address is the program's code base.
        let code_base = ops.as_ptr() as u64;
        for l in &decoded {
            let pc = l.pc;
            let mut op = Op { kind: Kind::Nop, ..filler };
            match l.insn {
                Insn::Alu { width, op: alu, dst, src } => {
                    op.dst = dst.index();
                    let (kind, src_reg, imm) = alu_kind(width, alu, src);
                    op.kind = kind;
                    op.src = src_reg;
                    op.imm = imm;
                }
                Insn::Neg { width, dst } => {
                    op.kind = if width == Width::W64 { Kind::Neg64 } else { Kind::Neg32 };
                    op.dst = dst.index();
                }
                Insn::Endian { kind, bits, dst } => {
                    op.dst = dst.index();
                    op.kind = match (kind, bits) {
                        (Endian::ToLe, 16) => Kind::Trunc16,
                        (Endian::ToLe, 32) => Kind::Trunc32,
                        (Endian::ToLe, _) => Kind::Nop,
                        (_, 16) => Kind::Swap16,
                        (_, 32) => Kind::Swap32,
                        _ => Kind::Swap64,
                    };
                }
                Insn::LdImm64 { dst, src: LdImmSrc::Imm, imm, next_imm } => {
                    op.kind = Kind::Lddw;
                    op.dst = dst.index();
                    op.imm = ((u64::from(next_imm as u32) << 32) | u64::from(imm as u32)) as i64;
                }
                Insn::LdImm64 { dst, src: LdImmSrc::Func, imm, .. } => {
                    // A callback's address (`bpf_loop`): the code address of a subprogram.
                    let target = target_of(pc, imm.into())?;
                    op.kind = Kind::Lddw;
                    op.dst = dst.index();
                    op.imm = (code_base + target as u64 * 8) as i64;
                }
                Insn::LdImm64 { src, .. } => return Err(LoadError::UnresolvedPseudo { pc, src: src.code() }),
                Insn::LdAbs { size, imm } => {
                    op.kind = Kind::LdAbs;
                    op.off = size.bytes() as i32;
                    op.imm = imm.into();
                }
                Insn::LdInd { size, src, imm } => {
                    op.kind = Kind::LdInd;
                    op.src = src.index();
                    op.off = size.bytes() as i32;
                    op.imm = imm.into();
                }
                Insn::Load { size, signed, dst, src, off } => {
                    op.kind = match (size, signed) {
                        (Size::B, false) => Kind::Ldx8,
                        (Size::H, false) => Kind::Ldx16,
                        (Size::W, false) => Kind::Ldx32,
                        (Size::DW, _) => Kind::Ldx64,
                        (Size::B, true) => Kind::Ldxs8,
                        (Size::H, true) => Kind::Ldxs16,
                        (Size::W, true) => Kind::Ldxs32,
                    };
                    op.dst = dst.index();
                    op.src = src.index();
                    op.off = off.into();
                }
                Insn::Store { size, dst, off, src } => {
                    op.dst = dst.index();
                    op.off = off.into();
                    op.kind = match (size, src) {
                        (Size::B, Operand::Imm(_)) => Kind::St8,
                        (Size::H, Operand::Imm(_)) => Kind::St16,
                        (Size::W, Operand::Imm(_)) => Kind::St32,
                        (Size::DW, Operand::Imm(_)) => Kind::St64,
                        (Size::B, Operand::Reg(_)) => Kind::Stx8,
                        (Size::H, Operand::Reg(_)) => Kind::Stx16,
                        (Size::W, Operand::Reg(_)) => Kind::Stx32,
                        (Size::DW, Operand::Reg(_)) => Kind::Stx64,
                    };
                    match src {
                        Operand::Imm(i) => op.imm = i.into(),
                        Operand::Reg(r) => op.src = r.index(),
                    }
                }
                Insn::Atomic { size, op: aop, dst, src, off } => {
                    op.kind = Kind::Atomic;
                    op.dst = dst.index();
                    op.src = src.index();
                    op.off = off.into();
                    op.imm = size.bytes() as i64;
                    op.aux = match aop {
                        AtomicOp::Add { fetch: false } => AtomicKind::Add,
                        AtomicOp::Or { fetch: false } => AtomicKind::Or,
                        AtomicOp::And { fetch: false } => AtomicKind::And,
                        AtomicOp::Xor { fetch: false } => AtomicKind::Xor,
                        AtomicOp::Add { fetch: true } => AtomicKind::FetchAdd,
                        AtomicOp::Or { fetch: true } => AtomicKind::FetchOr,
                        AtomicOp::And { fetch: true } => AtomicKind::FetchAnd,
                        AtomicOp::Xor { fetch: true } => AtomicKind::FetchXor,
                        AtomicOp::Xchg => AtomicKind::Xchg,
                        AtomicOp::Cmpxchg => AtomicKind::Cmpxchg,
                        AtomicOp::LoadAcquire => AtomicKind::LoadAcquire,
                        AtomicOp::StoreRelease => AtomicKind::StoreRelease,
                    } as u8;
                }
                Insn::Ja { off, .. } => {
                    op.kind = Kind::Ja;
                    op.off = target_of(pc, off.into())?;
                }
                Insn::StaticBranch { inverse, off, .. } => {
                    // A site jumps iff `key_on XOR inverse` (bpfkit-decisions D1); every key starts
                    // off until the runtime sets it (`Program::set_static_branch`).
                    op.off = target_of(pc, off.into())?;
                    op.kind = Kind::StaticBranch;
                    op.imm = static_sites.len() as i64;
                    static_sites.push((pc, std::sync::atomic::AtomicBool::new(inverse)));
                }
                Insn::JmpCond { width, cond, dst, src, off } => {
                    op.dst = dst.index();
                    op.off = target_of(pc, off.into())?;
                    let (kind, src_reg, imm) = jmp_kind(width, cond, src);
                    op.kind = kind;
                    op.src = src_reg;
                    op.imm = imm;
                }
                Insn::Call(CallTarget::Helper(id)) => {
                    let idx = *helper_ids.get(&id).ok_or(LoadError::UnknownHelper { pc, id })?;
                    op.kind = Kind::CallHelper;
                    op.imm = idx as i64;
                    op.off = id;
                }
                Insn::Call(CallTarget::Local(rel)) => {
                    op.kind = Kind::CallLocal;
                    op.off = target_of(pc, rel.into())?;
                }
                Insn::Call(CallTarget::Kfunc { btf_id, .. }) => return Err(LoadError::UnresolvedKfunc { pc, btf_id }),
                Insn::CallX { reg } => {
                    op.kind = Kind::CallX;
                    op.dst = reg.index();
                }
                Insn::Exit => op.kind = Kind::Exit,
                Insn::GotoX { reg } => {
                    op.kind = Kind::GotoX;
                    op.dst = reg.index();
                }
                Insn::MayGoto { off } => {
                    op.kind = Kind::MayGoto;
                    op.off = target_of(pc, off.into())?;
                }
            }
            ops[pc] = op;
        }
        Ok(Program {
            ops,
            static_sites: static_sites.into_boxed_slice(),
            helpers: table,
            table_ids,
            helper_ids,
            insn_start,
            slots: slots.to_vec(),
            xlated,
            native: OnceLock::new(),
        })
    }

    /// The slots of the static branches, in program order.
    pub fn static_branches(&self) -> impl Iterator<Item = usize> + '_ {
        self.static_sites.iter().map(|(pc, _)| *pc)
    }

    /// Whether the static branch at slot `pc` jumps now (`None`: not a static branch).
    pub fn static_branch_jumps(&self, pc: usize) -> Option<bool> {
        let i = self.static_sites.binary_search_by_key(&pc, |(p, _)| *p).ok()?;
        Some(self.static_sites[i].1.load(std::sync::atomic::Ordering::Acquire))
    }

    /// Sets whether the static branch at slot `pc` jumps, for the interpreter (runs in progress
    /// see the new state from their next pass over the site). Returns false if `pc` is not a
    /// static branch. Native code has sites of its own (the JIT's `JitCode::set_static_branch`).
    pub fn set_static_branch(&self, pc: usize, jumps: bool) -> bool {
        match self.static_sites.binary_search_by_key(&pc, |(p, _)| *p) {
            Ok(i) => {
                self.static_sites[i].1.store(jumps, std::sync::atomic::Ordering::Release);
                true
            }
            Err(_) => false,
        }
    }

    /// The instruction slots the program was loaded from.
    pub fn slots(&self) -> &[RawInsn] {
        &self.slots
    }

    /// Whether the program was loaded with [`Program::load_xlated`] (its slots may use AX).
    pub fn is_xlated(&self) -> bool {
        self.xlated
    }

    /// The program's instructions, decoded as it was loaded (strictly, or as an xlated
    /// program that may use AX).
    pub fn decode(&self) -> Result<Vec<Located>, DecodeError> {
        if self.xlated { decode_program_xlated(&self.slots) } else { decode_program(&self.slots) }
    }

    /// Number of instruction slots.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether the program is empty (never true for a loaded program).
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The code address `gotox`, callbacks and instruction arrays use for slot `pc` in this
    /// interpreter: the program's base address plus `pc * 8` (bpfkit-decisions D6).
    pub fn code_address(&self, pc: usize) -> u64 {
        self.code_base() + (pc as u64) * 8
    }

    /// The slot a code address of this program designates, if it is the start of an instruction.
    /// Once the program is JIT-compiled, the native address of an instruction designates it
    /// too (instruction arrays then hold native addresses, which both engines follow).
    pub fn pc_of_code_address(&self, addr: u64) -> Option<usize> {
        let rel = addr.wrapping_sub(self.code_base());
        let idx = usize::try_from(rel / 8).ok()?;
        if rel.is_multiple_of(8) && idx < self.insn_start.len() && self.insn_start[idx] {
            return Some(idx);
        }
        self.native().and_then(|n| n.pc_of_address(addr))
    }

    /// The helper a `call id` of this program calls: a reference into the program's own table,
    /// whose address stays valid as long as the program (native code embeds it).
    pub fn helper(&self, id: i32) -> Option<&Helper> {
        self.helper_ids.get(&id).map(|&i| &self.helpers[i])
    }

    /// Attaches native code (the JIT's output) that [`Backend::Native`](crate::Backend) runs.
    /// A program has at most one: a second attach returns the code back.
    pub fn attach_native(&self, code: NativeCode) -> Result<(), NativeCode> {
        self.native.set(code)
    }

    /// The attached native code, if any.
    pub fn native(&self) -> Option<&NativeCode> {
        self.native.get()
    }

    pub(crate) fn code_base(&self) -> u64 {
        self.ops.as_ptr() as u64
    }
}

fn alu_kind(width: Width, op: AluOp, src: Operand) -> (Kind, u8, i64) {
    use Kind::*;
    let (reg, imm) = match src {
        Operand::Reg(r) => (Some(r.index()), 0),
        Operand::Imm(i) => (None, i64::from(i)),
    };
    let pick = |imm_k: Kind, reg_k: Kind| match reg {
        Some(r) => (reg_k, r, 0),
        None => (imm_k, 0, imm),
    };
    match (width, op) {
        (Width::W64, AluOp::Add) => pick(Add64Imm, Add64Reg),
        (Width::W64, AluOp::Sub) => pick(Sub64Imm, Sub64Reg),
        (Width::W64, AluOp::Mul) => pick(Mul64Imm, Mul64Reg),
        (Width::W64, AluOp::Div) => pick(Div64Imm, Div64Reg),
        (Width::W64, AluOp::SDiv) => pick(SDiv64Imm, SDiv64Reg),
        (Width::W64, AluOp::Or) => pick(Or64Imm, Or64Reg),
        (Width::W64, AluOp::And) => pick(And64Imm, And64Reg),
        (Width::W64, AluOp::Lsh) => pick(Lsh64Imm, Lsh64Reg),
        (Width::W64, AluOp::Rsh) => pick(Rsh64Imm, Rsh64Reg),
        (Width::W64, AluOp::Mod) => pick(Mod64Imm, Mod64Reg),
        (Width::W64, AluOp::SMod) => pick(SMod64Imm, SMod64Reg),
        (Width::W64, AluOp::Xor) => pick(Xor64Imm, Xor64Reg),
        (Width::W64, AluOp::Mov) => pick(Mov64Imm, Mov64Reg),
        (Width::W64, AluOp::Arsh) => pick(Arsh64Imm, Arsh64Reg),
        (Width::W64, AluOp::MovSx8) => pick(MovSx8To64, MovSx8To64),
        (Width::W64, AluOp::MovSx16) => pick(MovSx16To64, MovSx16To64),
        (Width::W64, AluOp::MovSx32) => pick(MovSx32To64, MovSx32To64),
        (Width::W32, AluOp::Add) => pick(Add32Imm, Add32Reg),
        (Width::W32, AluOp::Sub) => pick(Sub32Imm, Sub32Reg),
        (Width::W32, AluOp::Mul) => pick(Mul32Imm, Mul32Reg),
        (Width::W32, AluOp::Div) => pick(Div32Imm, Div32Reg),
        (Width::W32, AluOp::SDiv) => pick(SDiv32Imm, SDiv32Reg),
        (Width::W32, AluOp::Or) => pick(Or32Imm, Or32Reg),
        (Width::W32, AluOp::And) => pick(And32Imm, And32Reg),
        (Width::W32, AluOp::Lsh) => pick(Lsh32Imm, Lsh32Reg),
        (Width::W32, AluOp::Rsh) => pick(Rsh32Imm, Rsh32Reg),
        (Width::W32, AluOp::Mod) => pick(Mod32Imm, Mod32Reg),
        (Width::W32, AluOp::SMod) => pick(SMod32Imm, SMod32Reg),
        (Width::W32, AluOp::Xor) => pick(Xor32Imm, Xor32Reg),
        (Width::W32, AluOp::Mov) => pick(Mov32Imm, Mov32Reg),
        (Width::W32, AluOp::Arsh) => pick(Arsh32Imm, Arsh32Reg),
        (Width::W32, AluOp::MovSx8) => pick(MovSx8To32, MovSx8To32),
        // The decoder refuses a 32-bit movsx from 32 bits; 16 is the only other case.
        (Width::W32, AluOp::MovSx16 | AluOp::MovSx32) => pick(MovSx16To32, MovSx16To32),
    }
}

fn jmp_kind(width: Width, cond: Cond, src: Operand) -> (Kind, u8, i64) {
    use Kind::*;
    let (reg, imm) = match src {
        Operand::Reg(r) => (Some(r.index()), 0),
        Operand::Imm(i) => (None, i64::from(i)),
    };
    let pick = |imm_k: Kind, reg_k: Kind| match reg {
        Some(r) => (reg_k, r, 0),
        None => (imm_k, 0, imm),
    };
    match (width, cond) {
        (Width::W64, Cond::Eq) => pick(Jeq64Imm, Jeq64Reg),
        (Width::W64, Cond::Gt) => pick(Jgt64Imm, Jgt64Reg),
        (Width::W64, Cond::Ge) => pick(Jge64Imm, Jge64Reg),
        (Width::W64, Cond::Set) => pick(Jset64Imm, Jset64Reg),
        (Width::W64, Cond::Ne) => pick(Jne64Imm, Jne64Reg),
        (Width::W64, Cond::Sgt) => pick(Jsgt64Imm, Jsgt64Reg),
        (Width::W64, Cond::Sge) => pick(Jsge64Imm, Jsge64Reg),
        (Width::W64, Cond::Lt) => pick(Jlt64Imm, Jlt64Reg),
        (Width::W64, Cond::Le) => pick(Jle64Imm, Jle64Reg),
        (Width::W64, Cond::Slt) => pick(Jslt64Imm, Jslt64Reg),
        (Width::W64, Cond::Sle) => pick(Jsle64Imm, Jsle64Reg),
        (Width::W32, Cond::Eq) => pick(Jeq32Imm, Jeq32Reg),
        (Width::W32, Cond::Gt) => pick(Jgt32Imm, Jgt32Reg),
        (Width::W32, Cond::Ge) => pick(Jge32Imm, Jge32Reg),
        (Width::W32, Cond::Set) => pick(Jset32Imm, Jset32Reg),
        (Width::W32, Cond::Ne) => pick(Jne32Imm, Jne32Reg),
        (Width::W32, Cond::Sgt) => pick(Jsgt32Imm, Jsgt32Reg),
        (Width::W32, Cond::Sge) => pick(Jsge32Imm, Jsge32Reg),
        (Width::W32, Cond::Lt) => pick(Jlt32Imm, Jlt32Reg),
        (Width::W32, Cond::Le) => pick(Jle32Imm, Jle32Reg),
        (Width::W32, Cond::Slt) => pick(Jslt32Imm, Jslt32Reg),
        (Width::W32, Cond::Sle) => pick(Jsle32Imm, Jsle32Reg),
    }
}
