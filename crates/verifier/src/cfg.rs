//! Subprograms and the control-flow graph: the kernel's first verifier passes, in order.
//!
//! 1. `add_subprog_and_kfunc`: every BPF-to-BPF call (`call` with `src_reg` 1) and every
//!    `lddw` with `src_reg` 4 (`BPF_PSEUDO_FUNC`, a callback's address) starts a subprogram
//!    at `pc + imm + 1`; a subprogram ends where the next one starts.
//! 2. `check_subprogs`: every jump (everything of the JMP/JMP32 classes but `call` and
//!    `exit`, with the offset in `off`, or in `imm` for `gotol`) must land in its own
//!    subprogram, and the last instruction of each subprogram must be `exit` or an
//!    unconditional `goto`/`gotol`, so that no subprogram falls into the next.
//! 3. The field checks of `check_and_resolve_insns` (registers, `lddw` second slots,
//!    opcodes, `check_jmp_fields`), only where bpfkit's strict decoder refuses an encoding:
//!    the error then carries the kernel's message (`BPF_JA|BPF_X uses reserved fields`,
//!    `invalid may_goto imm 1`, ...), otherwise the decoder's.
//! 4. `check_cfg`: a depth-first walk from instruction 0 over fall-through, jump and call
//!    edges, with `gotox` a jump with one edge per entry of its jump tables (kernel-spec
//!    §3.2, `visit_gotox_insn`); then every instruction must have been reached, and no jump
//!    may land on the second slot of a `lddw`. Back edges (loops) are allowed, as the kernel
//!    allows them for privileged programs; bpfkit records them ([`Cfg::back_edges`]).
//!
//! The walk follows the kernel's order (fall-through before branch, callee after the
//! instruction following the call, table entries in ascending order), so when a program has
//! several faults the one reported is the kernel's.
//!
//! Jump tables: for each instruction array bound to the program, the `xlated_off` of its
//! entries. A `gotox` in subprogram `[start, end)` may go to every entry of every table
//! whose smallest entry lies in `[start, end)` (the union, sorted and deduplicated); all of
//! those entries must lie in the subprogram.
//!
//! Where bpfkit decides beyond the kernel ([OURS]): a static branch (`goto_or_nop`,
//! `nop_or_goto`, kernel-spec §1.5, never merged upstream) has both edges, and cannot end a
//! subprogram (`last insn is not an exit or jmp`), since it may fall through; `callx`
//! (the conformance corpus' call through a register) has only its fall-through edge.

use bpfkit_isa::opcode::{
    BPF_CALL, BPF_EXIT, BPF_JA, BPF_JCOND, BPF_JMP, BPF_JMP32, BPF_K, BPF_MAY_GOTO, BPF_PSEUDO_CALL, BPF_PSEUDO_FUNC,
    BPF_PSEUDO_KFUNC_CALL, BPF_X, LDDW, class,
};
use bpfkit_isa::{CallTarget, DecodeError, Insn, LdImmSrc, Located, RawInsn};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// The kernel's `BPF_MAX_SUBPROGS`.
pub const MAX_SUBPROGS: usize = 256;

/// `MAX_BPF_REG`: register numbers from 11 on are invalid.
const MAX_BPF_REG: u8 = 11;

/// Why a program's control flow is refused. Each variant names the instruction (slot index)
/// it is about; `Display` is the kernel's verifier log line (without the newline) where the
/// kernel has one.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CfgError {
    /// A program without instructions (the kernel refuses it before verifying, with `E2BIG`
    /// and no log).
    #[error("the program has no instructions")]
    EmptyProgram { insn: usize },
    /// A call or a `BPF_PSEUDO_FUNC` `lddw` whose target is outside the program.
    #[error("call to invalid destination")]
    CallToInvalidDestination { insn: usize, target: i64 },
    /// More than [`MAX_SUBPROGS`] subprograms.
    #[error("too many subprograms")]
    TooManySubprogs { insn: usize },
    /// A jump outside its subprogram (or, in the walk, outside the program).
    #[error("jump out of range from insn {insn} to {target}")]
    JumpOutOfRange { insn: usize, target: i64 },
    /// The last instruction of a subprogram may fall through into the next one.
    #[error("last insn is not an exit or jmp")]
    LastInsnNotExitOrJmp { insn: usize },
    /// A register number of 11 or more.
    #[error("R{reg} is invalid")]
    InvalidRegister { insn: usize, reg: u8 },
    /// A `lddw` without a valid second slot.
    #[error("invalid bpf_ld_imm64 insn")]
    InvalidLdImm64 { insn: usize },
    /// A `lddw` with a non-zero `off`.
    #[error("BPF_LD_IMM64 uses reserved fields")]
    LdImm64ReservedFields { insn: usize },
    /// An opcode the kernel does not know.
    #[error("unknown opcode {code:02x}")]
    UnknownOpcode { insn: usize, code: u8 },
    /// `gotox` with a non-zero `src_reg`, `off` or `imm`.
    #[error("BPF_JA|BPF_X uses reserved fields")]
    GotoxReservedFields { insn: usize },
    /// `goto`/`gotol` with a field it does not use set (or `src_reg` not a static branch).
    #[error("BPF_JA uses reserved fields ({field})")]
    JaReservedFields { insn: usize, field: String },
    /// `exit` with a field set.
    #[error("BPF_EXIT uses reserved fields")]
    ExitReservedFields { insn: usize },
    /// `call` with a field it does not use set.
    #[error("BPF_CALL uses reserved fields")]
    CallReservedFields { insn: usize },
    /// `may_goto` (`BPF_JCOND`) with `src_reg`, `dst_reg` or `imm` set.
    #[error("invalid may_goto imm {imm}")]
    InvalidMayGotoImm { insn: usize, imm: i32 },
    /// A conditional jump with a field it does not use set.
    #[error("BPF_JMP/JMP32 uses reserved fields")]
    JmpReservedFields { insn: usize },
    /// An encoding bpfkit's decoder refuses for which the kernel's message is not known here.
    #[error("{source}")]
    Decode { insn: usize, source: DecodeError },
    /// A `gotox` in a subprogram no jump table points into.
    #[error("no jump tables found for subprog starting at {subprog_start}")]
    NoJumpTables { insn: usize, subprog_start: usize },
    /// A jump table of the `gotox`'s subprogram has an entry outside it (`end` exclusive).
    #[error("jump table for insn {insn} points outside of the subprog [{start},{end}]")]
    JumpTableOutsideSubprog { insn: usize, start: usize, end: usize },
    /// A jump-table entry outside the program (the kernel's check; after the subprogram
    /// check above it cannot fire, as in the kernel).
    #[error("indirect jump out of range from insn {insn} to {target}")]
    IndirectJumpOutOfRange { insn: usize, target: i64 },
    /// An instruction the walk from instruction 0 does not reach.
    #[error("unreachable insn {insn}")]
    UnreachableInsn { insn: usize },
    /// A jump lands on the second slot of the `lddw` at `insn`.
    #[error("jump into the middle of ldimm64 insn {insn}")]
    JumpIntoLdimm64 { insn: usize },
}

impl CfgError {
    /// The instruction (slot index) the error is about.
    pub fn insn(&self) -> usize {
        match *self {
            CfgError::EmptyProgram { insn }
            | CfgError::CallToInvalidDestination { insn, .. }
            | CfgError::TooManySubprogs { insn }
            | CfgError::JumpOutOfRange { insn, .. }
            | CfgError::LastInsnNotExitOrJmp { insn }
            | CfgError::InvalidRegister { insn, .. }
            | CfgError::InvalidLdImm64 { insn }
            | CfgError::LdImm64ReservedFields { insn }
            | CfgError::UnknownOpcode { insn, .. }
            | CfgError::GotoxReservedFields { insn }
            | CfgError::JaReservedFields { insn, .. }
            | CfgError::ExitReservedFields { insn }
            | CfgError::CallReservedFields { insn }
            | CfgError::InvalidMayGotoImm { insn, .. }
            | CfgError::JmpReservedFields { insn }
            | CfgError::Decode { insn, .. }
            | CfgError::NoJumpTables { insn, .. }
            | CfgError::JumpTableOutsideSubprog { insn, .. }
            | CfgError::IndirectJumpOutOfRange { insn, .. }
            | CfgError::UnreachableInsn { insn }
            | CfgError::JumpIntoLdimm64 { insn } => insn,
        }
    }
}

/// A subprogram: instructions `start..end` (slot indices, `end` exclusive). Subprogram 0 is
/// the program's entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Subprog {
    pub start: usize,
    pub end: usize,
}

/// How control reaches a successor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EdgeKind {
    /// The next instruction: a non-jump, a call returning, or a conditional jump, `may_goto`
    /// or static branch not taken.
    FallThrough,
    /// The target of a `goto`/`gotol`, or of a conditional jump, `may_goto` or static branch
    /// taken.
    Jump,
    /// An entry of the jump tables of a `gotox`.
    Indirect,
}

impl EdgeKind {
    /// `fall-through`, `jump` or `indirect`.
    pub fn name(self) -> &'static str {
        match self {
            EdgeKind::FallThrough => "fall-through",
            EdgeKind::Jump => "jump",
            EdgeKind::Indirect => "indirect",
        }
    }
}

/// An edge between instructions (slot indices).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Edge {
    pub to: usize,
    pub kind: EdgeKind,
}

/// What kind of reference a [`Call`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CallKind {
    /// `call` with `src_reg` 1 (`BPF_PSEUDO_CALL`).
    Call,
    /// `lddw` with `src_reg` 4 (`BPF_PSEUDO_FUNC`): the address of a callback.
    FuncRef,
}

/// A BPF-to-BPF call or callback reference: instruction `insn` names the subprogram
/// starting at `target`. Calls are not successors (control comes back to the next
/// instruction), but the kernel's walk follows them, so an uncalled subprogram is
/// unreachable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Call {
    pub insn: usize,
    pub target: usize,
    pub kind: CallKind,
}

/// An edge between basic blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BlockEdge {
    /// Index of the successor block in [`Cfg::blocks`].
    pub to: usize,
    pub kind: EdgeKind,
    /// Whether the edge closes a loop (see [`Cfg::back_edges`]).
    pub back: bool,
}

/// A basic block: instructions `start..end` (slot indices, `end` exclusive), entered only at
/// `start`, left only after `last`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    pub start: usize,
    pub end: usize,
    /// Slot index of the last instruction (`end - 2` when it is a `lddw`).
    pub last: usize,
    /// Index of the subprogram in [`Cfg::subprogs`].
    pub subprog: usize,
    /// The successors of the last instruction, in the kernel's order (fall-through first,
    /// jump tables ascending); empty after `exit`.
    pub succs: Vec<BlockEdge>,
    /// The calls made by the block's instructions.
    pub calls: Vec<Call>,
}

/// The control-flow graph of a program.
#[derive(Clone, Debug)]
pub struct Cfg {
    len: usize,
    insns: Vec<Located>,
    /// Index in `insns` of the instruction starting at each slot (`usize::MAX` for `lddw` tails).
    index: Vec<usize>,
    subprogs: Vec<Subprog>,
    succs: Vec<Vec<Edge>>,
    calls: Vec<Call>,
    blocks: Vec<Block>,
    block_of: Vec<usize>,
    back_edges: Vec<(usize, usize)>,
    jump_tables: BTreeMap<usize, Vec<usize>>,
}

impl Cfg {
    /// Number of slots of the program.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the program is empty (never, for a program [`build`] accepts).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The decoded instructions, in order.
    pub fn insns(&self) -> &[Located] {
        &self.insns
    }

    /// The instruction starting at slot `pc` (`None` for the second slot of a `lddw`).
    pub fn insn(&self, pc: usize) -> Option<&Insn> {
        self.insns.get(*self.index.get(pc)?).map(|l| &l.insn)
    }

    /// The subprograms, by start.
    pub fn subprogs(&self) -> &[Subprog] {
        &self.subprogs
    }

    /// Index of the subprogram holding slot `pc`.
    pub fn subprog_of(&self, pc: usize) -> Option<usize> {
        if pc >= self.len {
            return None;
        }
        Some(self.subprogs.partition_point(|s| s.start <= pc) - 1)
    }

    /// Successors of the instruction at slot `pc` (empty for `exit` and `lddw` tails).
    pub fn successors(&self, pc: usize) -> &[Edge] {
        self.succs.get(pc).map_or(&[], Vec::as_slice)
    }

    /// Every call and callback reference, by instruction.
    pub fn calls(&self) -> &[Call] {
        &self.calls
    }

    /// The basic blocks, by start.
    pub fn blocks(&self) -> &[Block] {
        &self.blocks
    }

    /// Index of the block holding slot `pc`.
    pub fn block_of(&self, pc: usize) -> Option<usize> {
        self.block_of.get(pc).copied()
    }

    /// The edges `(from, to)` (slot indices) that close a loop: in a depth-first walk of
    /// each subprogram from its start (successors in order), the edges to an instruction on
    /// the walk's current path. Sorted.
    pub fn back_edges(&self) -> &[(usize, usize)] {
        &self.back_edges
    }

    /// Whether `from → to` is a back edge.
    pub fn is_back_edge(&self, from: usize, to: usize) -> bool {
        self.back_edges.binary_search(&(from, to)).is_ok()
    }

    /// The targets of the `gotox` at slot `pc` (sorted, deduplicated).
    pub fn jump_table(&self, pc: usize) -> Option<&[usize]> {
        self.jump_tables.get(&pc).map(Vec::as_slice)
    }
}

/// A compact listing: per subprogram, its blocks with their successors and calls.
///
/// ```text
/// subprog 0 [0,7)
///   block 0 [0..1] -> block 1 fall-through, block 3 jump
///   block 1 [2..2] -> block 2 fall-through
///   block 2 [3..4] -> block 0 jump back
///   block 3 [5..6] -> exit
///   call at 6 -> 7
/// ```
///
/// Blocks are `[first..last]` instruction (slot) indices; subprograms `[start,end)`.
impl fmt::Display for Cfg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (si, s) in self.subprogs.iter().enumerate() {
            writeln!(f, "subprog {si} [{},{})", s.start, s.end)?;
            for (bi, b) in self.blocks.iter().enumerate().filter(|(_, b)| b.subprog == si) {
                write!(f, "  block {bi} [{}..{}] ->", b.start, b.last)?;
                if b.succs.is_empty() {
                    write!(f, " exit")?;
                }
                for (i, e) in b.succs.iter().enumerate() {
                    let sep = if i == 0 { "" } else { "," };
                    write!(f, "{sep} block {} {}{}", e.to, e.kind.name(), if e.back { " back" } else { "" })?;
                }
                writeln!(f)?;
                for c in &b.calls {
                    let what = match c.kind {
                        CallKind::Call => "call",
                        CallKind::FuncRef => "func ref",
                    };
                    writeln!(f, "  {what} at {} -> {}", c.insn, c.target)?;
                }
            }
        }
        Ok(())
    }
}

fn is_pseudo_call(r: &RawInsn) -> bool {
    r.code == BPF_JMP | BPF_CALL && r.src() == BPF_PSEUDO_CALL
}

fn is_pseudo_func(r: &RawInsn) -> bool {
    r.code == LDDW && r.src() == BPF_PSEUDO_FUNC
}

/// Builds the control-flow graph of `insns` (the program as loaded, relocations bound) with
/// its jump tables (`jump_tables[i]`: the `xlated_off` of every entry of the `i`-th
/// instruction array bound to the program), checking it as the kernel does (see the module
/// documentation).
pub fn build(insns: &[RawInsn], jump_tables: &[Vec<u32>]) -> Result<Cfg, CfgError> {
    let len = insns.len();
    if len == 0 {
        return Err(CfgError::EmptyProgram { insn: 0 });
    }
    let subprogs = find_subprogs(insns)?;
    check_subprogs(insns, &subprogs)?;
    let (decoded, index) = decode(insns)?;
    let mut walk =
        Walk { insns: &decoded, index: &index, subprogs: &subprogs, tables: jump_tables, jt: BTreeMap::new() };
    walk.run(len)?;
    let jump_tables = walk.jt;

    // Successors and calls.
    let mut succs = vec![Vec::new(); len];
    let mut calls = Vec::new();
    for l in &decoded {
        let pc = l.pc;
        let next = pc + l.insn.slots();
        let target = |off: i64| (pc as i64 + off + 1) as usize;
        let fall = Edge { to: next, kind: EdgeKind::FallThrough };
        succs[pc] = match l.insn {
            Insn::Exit => Vec::new(),
            Insn::Ja { off, .. } => vec![Edge { to: target(off.into()), kind: EdgeKind::Jump }],
            Insn::JmpCond { off, .. } | Insn::MayGoto { off } => {
                vec![fall, Edge { to: target(off.into()), kind: EdgeKind::Jump }]
            }
            Insn::StaticBranch { off, .. } => vec![fall, Edge { to: target(off.into()), kind: EdgeKind::Jump }],
            Insn::GotoX { .. } => jump_tables[&pc].iter().map(|&to| Edge { to, kind: EdgeKind::Indirect }).collect(),
            _ => vec![fall],
        };
        match l.insn {
            Insn::Call(CallTarget::Local(rel)) => {
                calls.push(Call { insn: pc, target: target(rel.into()), kind: CallKind::Call });
            }
            Insn::LdImm64 { src: LdImmSrc::Func, imm, .. } => {
                calls.push(Call { insn: pc, target: target(imm.into()), kind: CallKind::FuncRef });
            }
            _ => {}
        }
    }

    let back_edges = find_back_edges(len, &subprogs, &succs);

    // Basic blocks: leaders are subprogram starts, jump targets and whatever follows an
    // instruction that does not just fall through.
    let mut leader = vec![false; len];
    for s in &subprogs {
        leader[s.start] = true;
    }
    for l in &decoded {
        let s = &succs[l.pc];
        let plain = matches!(s.as_slice(), [Edge { kind: EdgeKind::FallThrough, .. }]);
        for e in s {
            if e.kind != EdgeKind::FallThrough {
                leader[e.to] = true;
            }
        }
        let next = l.pc + l.insn.slots();
        if !plain && next < len {
            leader[next] = true;
        }
    }
    let mut blocks: Vec<Block> = Vec::new();
    let mut block_of = vec![0; len];
    for l in &decoded {
        if leader[l.pc] || blocks.is_empty() {
            let subprog = subprogs.partition_point(|s| s.start <= l.pc) - 1;
            blocks.push(Block { start: l.pc, end: l.pc, last: l.pc, subprog, succs: Vec::new(), calls: Vec::new() });
        }
        let b = blocks.last_mut().expect("a block");
        b.last = l.pc;
        b.end = l.pc + l.insn.slots();
        let bi = blocks.len() - 1;
        block_of[l.pc] = bi;
        if l.insn.slots() == 2 {
            block_of[l.pc + 1] = bi;
        }
    }
    let call_at: BTreeMap<usize, Call> = calls.iter().map(|c| (c.insn, *c)).collect();
    for b in &mut blocks {
        b.succs = succs[b.last]
            .iter()
            .map(|e| BlockEdge {
                to: block_of[e.to],
                kind: e.kind,
                back: back_edges.binary_search(&(b.last, e.to)).is_ok(),
            })
            .collect();
        b.calls = call_at.range(b.start..b.end).map(|(_, c)| *c).collect();
    }

    Ok(Cfg { len, insns: decoded, index, subprogs, succs, calls, blocks, block_of, back_edges, jump_tables })
}

/// `add_subprog_and_kfunc`: subprogram starts from calls and callback references.
fn find_subprogs(insns: &[RawInsn]) -> Result<Vec<Subprog>, CfgError> {
    let len = insns.len();
    let mut starts = BTreeSet::from([0usize]);
    for (i, r) in insns.iter().enumerate() {
        if !is_pseudo_call(r) && !is_pseudo_func(r) {
            continue;
        }
        let target = i as i64 + i64::from(r.imm) + 1;
        if target < 0 || target >= len as i64 {
            return Err(CfgError::CallToInvalidDestination { insn: i, target });
        }
        if starts.insert(target as usize) && starts.len() > MAX_SUBPROGS {
            return Err(CfgError::TooManySubprogs { insn: i });
        }
    }
    let starts: Vec<usize> = starts.into_iter().collect();
    let ends = starts.iter().skip(1).copied().chain([len]);
    Ok(starts.iter().zip(ends).map(|(&start, end)| Subprog { start, end }).collect())
}

/// `check_subprogs`: jumps stay in their subprogram, no subprogram falls through.
fn check_subprogs(insns: &[RawInsn], subprogs: &[Subprog]) -> Result<(), CfgError> {
    for s in subprogs {
        for (i, r) in insns.iter().enumerate().take(s.end).skip(s.start) {
            let code = r.code;
            let cls = class(code);
            let op = code & 0xf0;
            if (cls == BPF_JMP || cls == BPF_JMP32) && op != BPF_EXIT && op != BPF_CALL {
                let off = if code == BPF_JMP32 | BPF_JA { i64::from(r.imm) } else { i64::from(r.off) };
                let target = i as i64 + off + 1;
                if target < s.start as i64 || target >= s.end as i64 {
                    return Err(CfgError::JumpOutOfRange { insn: i, target });
                }
            }
        }
        let last = s.end - 1;
        let code = insns[last].code;
        // [OURS] a static branch (`JA` with `src_reg` 1 or 3) may fall through.
        let static_branch =
            (code == BPF_JMP | BPF_JA || code == BPF_JMP32 | BPF_JA) && matches!(insns[last].src(), 1 | 3);
        if !matches!(code, c if c == BPF_JMP | BPF_EXIT || c == BPF_JMP | BPF_JA || c == BPF_JMP32 | BPF_JA)
            || static_branch
        {
            return Err(CfgError::LastInsnNotExitOrJmp { insn: last });
        }
    }
    Ok(())
}

/// Decodes every instruction; a refused encoding gets the kernel's message where known.
fn decode(insns: &[RawInsn]) -> Result<(Vec<Located>, Vec<usize>), CfgError> {
    let mut out = Vec::with_capacity(insns.len());
    let mut index = vec![usize::MAX; insns.len()];
    let mut pc = 0;
    while pc < insns.len() {
        let insn = Insn::decode(insns, pc).map_err(|e| kernel_error(insns, pc, e))?;
        index[pc] = out.len();
        out.push(Located { pc, insn });
        pc += insn.slots();
    }
    Ok((out, index))
}

/// The message `check_and_resolve_insns` logs for the instruction at `pc`, which bpfkit's
/// decoder refuses with `err`; the decoder's error where the kernel's is not known.
fn kernel_error(insns: &[RawInsn], pc: usize, err: DecodeError) -> CfgError {
    let r = insns[pc];
    let (code, dst, src, off, imm) = (r.code, r.dst(), r.src(), r.off, r.imm);
    if dst >= MAX_BPF_REG {
        return CfgError::InvalidRegister { insn: pc, reg: dst };
    }
    if src >= MAX_BPF_REG {
        return CfgError::InvalidRegister { insn: pc, reg: src };
    }
    if code == LDDW {
        return match insns.get(pc + 1) {
            Some(n) if n.code == 0 && n.regs == 0 && n.off == 0 => {
                if off != 0 {
                    CfgError::LdImm64ReservedFields { insn: pc }
                } else {
                    CfgError::Decode { insn: pc, source: err }
                }
            }
            _ => CfgError::InvalidLdImm64 { insn: pc },
        };
    }
    if let DecodeError::UnknownOpcode { code, .. } = err {
        return CfgError::UnknownOpcode { insn: pc, code };
    }
    let cls = class(code);
    if cls != BPF_JMP && cls != BPF_JMP32 {
        return CfgError::Decode { insn: pc, source: err };
    }
    let is_x = code & BPF_X != 0;
    let insn = pc;
    match code & 0xf0 {
        BPF_CALL => {
            if code & 0x08 != BPF_K
                || (src != BPF_PSEUDO_KFUNC_CALL && off != 0)
                || !matches!(src, 0 | BPF_PSEUDO_CALL | BPF_PSEUDO_KFUNC_CALL)
                || dst != 0
                || cls == BPF_JMP32
            {
                return CfgError::CallReservedFields { insn };
            }
        }
        BPF_JA => {
            if is_x {
                if src != 0 || imm != 0 || off != 0 {
                    return CfgError::GotoxReservedFields { insn };
                }
            } else if !matches!(src, 0 | 1 | 3)
                || dst != 0
                || (cls == BPF_JMP && imm != 0)
                || (cls == BPF_JMP32 && off != 0)
            {
                // Name the field (the static-branch forms of bpfkit-decisions D1 use src_reg 1/3).
                let field = if dst != 0 {
                    format!("dst_reg {dst} must be 0")
                } else if src != 0 && src != 1 && src != 3 {
                    format!("src_reg {src}: 0, 1 (goto_or_nop) or 3 (nop_or_goto)")
                } else if cls == BPF_JMP {
                    format!("imm {imm} must be 0: the JMP form's offset is in off")
                } else {
                    format!("off {off} must be 0: the JMP32 form's offset is in imm")
                };
                return CfgError::JaReservedFields { insn, field };
            }
        }
        BPF_EXIT => {
            if is_x || imm != 0 || src != 0 || dst != 0 || cls == BPF_JMP32 {
                return CfgError::ExitReservedFields { insn };
            }
        }
        BPF_JCOND => {
            if code != BPF_JMP | BPF_JCOND || src != BPF_MAY_GOTO || dst != 0 || imm != 0 {
                return CfgError::InvalidMayGotoImm { insn, imm };
            }
        }
        _ => {
            if (is_x && imm != 0) || (!is_x && src != 0) {
                return CfgError::JmpReservedFields { insn };
            }
        }
    }
    CfgError::Decode { insn: pc, source: err }
}

const DISCOVERED: u8 = 0x10;
const EXPLORED: u8 = 0x20;
const FALLTHROUGH: u8 = 1;
const BRANCH: u8 = 2;

/// Whether an instruction is done with (`Done`) or pushed a successor to explore first.
#[derive(PartialEq, Eq)]
enum Flow {
    Done,
    Keep,
}

/// The kernel's `check_cfg` walk: an explicit stack, each instruction visited again after
/// each successor it pushed is explored.
struct Walk<'a> {
    insns: &'a [Located],
    index: &'a [usize],
    subprogs: &'a [Subprog],
    tables: &'a [Vec<u32>],
    /// The jump table of each `gotox` visited.
    jt: BTreeMap<usize, Vec<usize>>,
}

struct State {
    state: Vec<u8>,
    stack: Vec<usize>,
}

impl State {
    /// `push_insn`: the edge `t → w` of kind `e`.
    fn push(&mut self, t: usize, w: i64, e: u8) -> Result<Flow, CfgError> {
        if self.state[t] >= DISCOVERED | e {
            return Ok(Flow::Done);
        }
        if w < 0 || w >= self.state.len() as i64 {
            return Err(CfgError::JumpOutOfRange { insn: t, target: w });
        }
        let w = w as usize;
        if self.state[w] == 0 {
            self.state[t] = DISCOVERED | e;
            self.state[w] = DISCOVERED;
            self.stack.push(w);
            Ok(Flow::Keep)
        } else if self.state[w] & 0xf0 == DISCOVERED {
            // A back edge: allowed (the kernel refuses it only without privileges).
            Ok(Flow::Done)
        } else {
            // Forward or cross edge.
            self.state[t] = DISCOVERED | e;
            Ok(Flow::Done)
        }
    }
}

impl Walk<'_> {
    fn run(&mut self, len: usize) -> Result<(), CfgError> {
        let mut s = State { state: vec![0; len], stack: vec![0] };
        s.state[0] = DISCOVERED;
        while let Some(&t) = s.stack.last() {
            if self.visit(&mut s, t)? == Flow::Done {
                s.state[t] = EXPLORED;
                s.stack.pop();
            }
        }
        let mut i = 0;
        while i < len {
            if s.state[i] != EXPLORED {
                return Err(CfgError::UnreachableInsn { insn: i });
            }
            if self.insn_at(i).is_some_and(|l| l.insn.slots() == 2) {
                if s.state[i + 1] != 0 {
                    return Err(CfgError::JumpIntoLdimm64 { insn: i });
                }
                i += 1;
            }
            i += 1;
        }
        Ok(())
    }

    fn insn_at(&self, pc: usize) -> Option<&Located> {
        self.insns.get(*self.index.get(pc)?)
    }

    /// `visit_insn`.
    fn visit(&mut self, s: &mut State, t: usize) -> Result<Flow, CfgError> {
        // The second slot of a `lddw`, reached by a jump: the kernel sees an instruction of
        // the LD class that falls through (and reports the jump once the walk is over).
        let Some(l) = self.insn_at(t) else {
            return s.push(t, t as i64 + 1, FALLTHROUGH);
        };
        let insn = l.insn;
        let ti = t as i64;
        let next = ti + insn.slots() as i64;
        match insn {
            Insn::LdImm64 { src: LdImmSrc::Func, imm, .. } => call(s, t, next, Some(ti + i64::from(imm) + 1)),
            Insn::Exit => Ok(Flow::Done),
            Insn::Call(CallTarget::Local(rel)) => call(s, t, next, Some(ti + i64::from(rel) + 1)),
            Insn::Call(_) | Insn::CallX { .. } => call(s, t, next, None),
            Insn::GotoX { .. } => self.visit_gotox(s, t),
            Insn::Ja { off, .. } => s.push(t, ti + i64::from(off) + 1, FALLTHROUGH),
            Insn::JmpCond { off, .. } | Insn::MayGoto { off } => branch(s, t, ti + i64::from(off) + 1),
            Insn::StaticBranch { off, .. } => branch(s, t, ti + i64::from(off) + 1),
            _ => s.push(t, next, FALLTHROUGH),
        }
    }

    /// `visit_gotox_insn`: a jump with an edge per jump-table entry.
    fn visit_gotox(&mut self, s: &mut State, t: usize) -> Result<Flow, CfgError> {
        if !self.jt.contains_key(&t) {
            let jt = self.create_jt(t)?;
            self.jt.insert(t, jt);
        }
        let mut keep = false;
        for &w in &self.jt[&t] {
            if w >= s.state.len() {
                return Err(CfgError::IndirectJumpOutOfRange { insn: t, target: i64::from(w as u32 as i32) });
            }
            if s.state[w] != 0 {
                continue;
            }
            s.stack.push(w);
            s.state[w] |= DISCOVERED;
            keep = true;
        }
        Ok(if keep { Flow::Keep } else { Flow::Done })
    }

    /// `create_jt`: the union of the tables whose smallest entry is in `t`'s subprogram.
    fn create_jt(&self, t: usize) -> Result<Vec<usize>, CfgError> {
        let sp = self.subprogs[self.subprogs.partition_point(|s| s.start <= t) - 1];
        let mut jt: Option<Vec<u32>> = None;
        for table in self.tables {
            let Some(&min) = table.iter().min() else { continue };
            if (min as usize) >= sp.start && (min as usize) < sp.end {
                jt.get_or_insert_with(Vec::new).extend_from_slice(table);
            }
        }
        let mut jt = jt.ok_or(CfgError::NoJumpTables { insn: t, subprog_start: sp.start })?;
        jt.sort_unstable();
        jt.dedup();
        if jt.iter().any(|&w| (w as usize) < sp.start || (w as usize) >= sp.end) {
            return Err(CfgError::JumpTableOutsideSubprog { insn: t, start: sp.start, end: sp.end });
        }
        Ok(jt.into_iter().map(|w| w as usize).collect())
    }
}

/// `visit_func_call_insn`: the instruction after the call, then the callee.
fn call(s: &mut State, t: usize, next: i64, callee: Option<i64>) -> Result<Flow, CfgError> {
    if s.push(t, next, FALLTHROUGH)? == Flow::Keep {
        return Ok(Flow::Keep);
    }
    match callee {
        Some(w) => s.push(t, w, BRANCH),
        None => Ok(Flow::Done),
    }
}

/// A conditional jump: fall-through, then the target.
fn branch(s: &mut State, t: usize, target: i64) -> Result<Flow, CfgError> {
    if s.push(t, t as i64 + 1, FALLTHROUGH)? == Flow::Keep {
        return Ok(Flow::Keep);
    }
    s.push(t, target, BRANCH)
}

/// Back edges of a depth-first walk of each subprogram from its start.
fn find_back_edges(len: usize, subprogs: &[Subprog], succs: &[Vec<Edge>]) -> Vec<(usize, usize)> {
    const WHITE: u8 = 0;
    const GREY: u8 = 1;
    const BLACK: u8 = 2;
    let mut color = vec![WHITE; len];
    let mut back = Vec::new();
    for s in subprogs {
        if color[s.start] != WHITE {
            continue;
        }
        let mut stack: Vec<(usize, usize)> = vec![(s.start, 0)];
        color[s.start] = GREY;
        while let Some(top) = stack.last_mut() {
            let (u, i) = *top;
            if let Some(e) = succs[u].get(i) {
                top.1 += 1;
                match color[e.to] {
                    WHITE => {
                        color[e.to] = GREY;
                        stack.push((e.to, 0));
                    }
                    GREY => back.push((u, e.to)),
                    _ => {}
                }
            } else {
                color[u] = BLACK;
                stack.pop();
            }
        }
    }
    back.sort_unstable();
    back.dedup();
    back
}
