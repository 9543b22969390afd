//! The verifier's inputs and its report.

use crate::check::Checker;
use bpfkit_isa::{AluOp, CallTarget, Insn, LdImmSrc, RawInsn};
use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

/// The kernel's limit on processed instructions (`BPF_COMPLEXITY_LIMIT_INSNS`).
pub const COMPLEXITY_LIMIT: u64 = 1_000_000;

/// A map the program uses, as the verifier sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapInfo {
    pub name: String,
    /// The map's id (messages).
    pub id: u32,
    /// The kernel's `enum bpf_map_type` number.
    pub map_type: u32,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    /// Programs may not write its values (`BPF_F_RDONLY_PROG`, frozen `.rodata`, insn arrays).
    pub rdonly_prog: bool,
    /// Programs may not read its values (`BPF_F_WRONLY_PROG`).
    pub wronly_prog: bool,
    /// For maps of maps: the index (in [`Input::maps`]) of a map like the inner ones.
    pub inner: Option<usize>,
    /// For instruction arrays: each entry's instruction (`xlated_off`).
    pub entries: Vec<u32>,
}

/// What a `lddw` loads (the meaning of its pseudo source once bound).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LdImm {
    /// The 64-bit constant in the instruction.
    Imm,
    /// A map (index into [`Input::maps`]).
    Map(usize),
    /// An address `off` bytes into a map's value (global data, instruction arrays).
    MapValue { map: usize, off: u32 },
    /// A function (callback) starting at this instruction.
    Func(usize),
}

/// What a context field holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CtxFieldKind {
    Scalar,
    PacketData,
    PacketEnd,
    PacketMeta,
}

/// A field of the program's context.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CtxField {
    pub off: u32,
    pub size: u32,
    pub kind: CtxFieldKind,
    pub writable: bool,
    /// Narrower loads inside the field are allowed.
    pub narrow: bool,
    /// Narrower stores inside the field are allowed (`__sk_buff.cb[]`).
    pub narrow_write: bool,
}

/// The context rules of the program type.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CtxRules {
    pub fields: Vec<CtxField>,
    /// Any aligned access below 64 KiB (syscall programs: the caller's buffer); the report's
    /// `max_ctx_offset` says how big it must be.
    pub any_access: bool,
}

/// Everything the verifier needs about one program.
pub struct Input<'a> {
    /// The instructions as they will run (relocations bound); the meaning of each `lddw` with
    /// a pseudo source is in `ld_imm`.
    pub insns: &'a [RawInsn],
    pub ld_imm: HashMap<usize, LdImm>,
    pub maps: Vec<MapInfo>,
    pub ctx: CtxRules,
    /// Helper ids the program type may call.
    pub helpers: BTreeSet<i32>,
    /// `call` immediates of kfuncs the runtime bound.
    pub kfuncs: BTreeSet<i32>,
    /// `LD_ABS`/`LD_IND` are allowed (socket filters, tc).
    pub ld_abs: bool,
    /// Direct packet writes are allowed (XDP, tc).
    pub packet_writable: bool,
    /// Reads of stack bytes never written are allowed (they read zero: bpfkit zeroes every
    /// frame). The kernel allows them to privileged (`CAP_PERFMON`) loaders, as root is.
    pub allow_uninit_stack: bool,
    /// Pointers may leak into scalars (returned, stored in maps or the context, negated,
    /// subtracted): the kernel allows it to privileged (`CAP_PERFMON`) loaders. It stays safe
    /// here: a pointer turned scalar can never be dereferenced.
    pub allow_ptr_leaks: bool,
    /// 0: no log; 1: errors and statistics; 2: every instruction with the registers.
    pub log_level: u32,
    /// Source lines (from BTF line info), sorted by instruction: `(insn, "text @ file:line")`.
    pub line_info: Vec<(usize, String)>,
}

/// Why a program is refused: the instruction and the kernel's words for it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("insn {pc}: {message}")]
pub struct VerifyError {
    pub pc: usize,
    pub message: String,
}

/// The verdict, with the log and the statistics the kernel prints.
#[derive(Clone, Debug)]
pub struct VerifyReport {
    pub error: Option<VerifyError>,
    /// Instructions processed over all paths.
    pub processed: u64,
    pub total_states: u64,
    pub peak_states: usize,
    /// The deepest stack byte any frame uses.
    pub max_stack: u32,
    /// For context accesses checked against no fixed layout: the context must be at least
    /// this big.
    pub max_ctx_offset: u32,
    pub duration: std::time::Duration,
    /// The log, at the requested level.
    pub log: String,
}

impl VerifyReport {
    pub fn accepted(&self) -> bool {
        self.error.is_none()
    }
}

/// Subprogram starts: instruction 0 and every target of a BPF-to-BPF call or a function
/// reference (`lddw` of a function).
fn subprogs(insns: &[Option<Insn>], ld_imm: &HashMap<usize, LdImm>) -> Vec<usize> {
    let mut s = BTreeSet::from([0usize]);
    for (pc, i) in insns.iter().enumerate() {
        match i {
            Some(Insn::Call(CallTarget::Local(rel))) => {
                s.insert((pc as i64 + 1 + i64::from(*rel)) as usize);
            }
            Some(Insn::LdImm64 { src: LdImmSrc::Func, imm, .. }) if !ld_imm.contains_key(&pc) => {
                s.insert((pc as i64 + 1 + i64::from(*imm)) as usize);
            }
            _ => {}
        }
        if let Some(LdImm::Func(t)) = ld_imm.get(&pc) {
            s.insert(*t);
        }
    }
    s.into_iter().filter(|&p| p < insns.len()).collect()
}

/// Verifies a program.
pub fn verify(input: &Input<'_>) -> VerifyReport {
    let start = Instant::now();
    let mut log = String::new();
    let result = (|| {
        let cfg_input: Vec<Vec<u32>> = input
            .maps
            .iter()
            .filter(|m| m.map_type == crate::check::map_type::INSN_ARRAY)
            .map(|m| m.entries.clone())
            .collect();
        let cfg = crate::cfg::build(input.insns, &cfg_input)
            .map_err(|e| VerifyError { pc: e.insn(), message: e.to_string() })?;
        let decoded: Vec<Option<Insn>> = {
            let mut v = vec![None; input.insns.len()];
            let mut pc = 0;
            while pc < input.insns.len() {
                let i = Insn::decode(input.insns, pc).map_err(|e| VerifyError { pc, message: e.to_string() })?;
                v[pc] = Some(i);
                pc += i.slots();
            }
            v
        };
        let mut subs = subprogs(&decoded, &input.ld_imm);
        subs.extend(cfg.subprogs().iter().map(|s| s.start));
        subs.sort_unstable();
        subs.dedup();
        let mut prune = vec![false; input.insns.len()];
        for (pc, i) in decoded.iter().enumerate() {
            let Some(i) = i else { continue };
            if let Some(off) = i.branch_offset()
                && !matches!(i, Insn::Call(_) | Insn::LdImm64 { .. })
            {
                let t = pc as i64 + 1 + off;
                if t >= 0 && (t as usize) < prune.len() {
                    prune[t as usize] = true;
                }
            }
            if matches!(i, Insn::MayGoto { .. } | Insn::GotoX { .. } | Insn::Call(CallTarget::Helper(181))) {
                prune[pc] = true;
            }
        }
        for (pc, i) in decoded.iter().enumerate() {
            if matches!(i, Some(Insn::GotoX { .. })) {
                for &t in cfg.jump_table(pc).unwrap_or(&[]) {
                    if t < prune.len() {
                        prune[t] = true;
                    }
                }
            }
        }
        let live = liveness(&decoded, &cfg);
        let mut c = Checker::new(input, subs, prune, live)?;
        let r = c.run();
        Ok::<_, VerifyError>((c, r))
    })();
    let (error, processed, total_states, peak_states, max_stack, max_ctx_offset) = match result {
        Ok((c, r)) => {
            log.push_str(&c.log);
            (r.err(), c.processed, c.total_states, c.peak_states, c.max_stack, c.max_ctx_offset)
        }
        Err(e) => (Some(e), 0, 0, 0, 0, 0),
    };
    let duration = start.elapsed();
    if input.log_level >= 1 {
        if let Some(e) = &error {
            // The source line of the refused instruction, as the kernel's log shows it.
            let i = input.line_info.partition_point(|(p, _)| *p <= e.pc);
            if let Some((_, text)) = i.checked_sub(1).map(|i| &input.line_info[i]) {
                log.push_str(&format!("; {text}\n"));
            }
            log.push_str(&format!("{}: {}\n", e.pc, e.message));
        }
        log.push_str(&format!(
            "processed {processed} insns (limit {COMPLEXITY_LIMIT}) max_states_per_insn 0 total_states {total_states} peak_states {peak_states} mark_read 0\n"
        ));
        log.push_str(&format!("verification time {} usec\n", duration.as_micros()));
        log.push_str(&format!("stack depth {max_stack}\n"));
    }
    VerifyReport { error, processed, total_states, peak_states, max_stack, max_ctx_offset, duration, log }
}

/// The registers each instruction's continuation (in its function) may read before writing
/// them: a backward data-flow over the CFG. Pruning ignores the others, as the kernel's
/// liveness marks do.
fn liveness(insns: &[Option<Insn>], cfg: &crate::cfg::Cfg) -> Vec<crate::state::RegMask> {
    use bpfkit_isa::{AtomicOp, Operand};
    let n = insns.len();
    let bit = |r: bpfkit_isa::Reg| 1u16 << r.index();
    let args: u16 = 0b11_1110; // r1-r5
    let scratch: u16 = 0b11_1111; // r0-r5
    // (uses, defs) of each instruction.
    let ud: Vec<(u16, u16)> = insns
        .iter()
        .map(|i| {
            let Some(i) = i else { return (0, 0) };
            let op = |o: &Operand| if let Operand::Reg(r) = o { bit(*r) } else { 0 };
            match *i {
                Insn::Alu { op: AluOp::Mov | AluOp::MovSx8 | AluOp::MovSx16 | AluOp::MovSx32, dst, src, .. } => {
                    (op(&src), bit(dst))
                }
                Insn::Alu { dst, src, .. } => (bit(dst) | op(&src), bit(dst)),
                Insn::Neg { dst, .. } | Insn::Endian { dst, .. } => (bit(dst), bit(dst)),
                Insn::LdImm64 { dst, .. } => (0, bit(dst)),
                Insn::LdAbs { .. } => (1 << 6, scratch),
                Insn::LdInd { src, .. } => ((1 << 6) | bit(src), scratch),
                Insn::Load { dst, src, .. } => (bit(src), bit(dst)),
                Insn::Store { dst, src, .. } => (bit(dst) | op(&src), 0),
                Insn::Atomic { op: AtomicOp::LoadAcquire, dst, src, .. } => (bit(src), bit(dst)),
                Insn::Atomic { op: AtomicOp::StoreRelease, dst, src, .. } => (bit(dst) | bit(src), 0),
                Insn::Atomic { op: AtomicOp::Cmpxchg, dst, src, .. } => (bit(dst) | bit(src) | 1, 1),
                Insn::Atomic { dst, src, .. } => (bit(dst) | bit(src), bit(src)),
                Insn::JmpCond { dst, src, .. } => (bit(dst) | op(&src), 0),
                Insn::GotoX { reg } | Insn::CallX { reg } => {
                    (bit(reg) | args, if matches!(i, Insn::CallX { .. }) { scratch } else { 0 })
                }
                Insn::Call(_) => (args, scratch),
                Insn::Exit => (1, 0),
                Insn::Ja { .. } | Insn::StaticBranch { .. } | Insn::MayGoto { .. } => (0, 0),
            }
        })
        .collect();
    let mut live = vec![0u16; n];
    let mut changed = true;
    while changed {
        changed = false;
        for pc in (0..n).rev() {
            if insns[pc].is_none() {
                continue;
            }
            let out = cfg.successors(pc).iter().fold(0u16, |acc, e| acc | live.get(e.to).copied().unwrap_or(0));
            let (uses, defs) = ud[pc];
            let inn = uses | (out & !defs);
            if inn != live[pc] {
                live[pc] = inn;
                changed = true;
            }
        }
    }
    // Which registers' values matter: used where a value is checked or decides a branch, or
    // flowing into such a use (backwards through ALU operations and moves). Values stored to
    // memory, passed to calls or returned from a subprogram or callback count as used (the
    // analysis does not follow them further).
    let sensitive: Vec<u16> = insns
        .iter()
        .map(|i| {
            let Some(i) = i else { return 0 };
            let op = |o: &Operand| if let Operand::Reg(r) = o { bit(*r) } else { 0 };
            match *i {
                Insn::Load { src, .. } => bit(src),
                Insn::Store { dst, src, .. } => bit(dst) | op(&src),
                Insn::Atomic { dst, src, .. } => bit(dst) | bit(src) | 1,
                Insn::JmpCond { dst, src, .. } => bit(dst) | op(&src),
                Insn::GotoX { reg } | Insn::CallX { reg } => bit(reg) | args,
                Insn::LdInd { src, .. } => bit(src) | (1 << 6),
                Insn::LdAbs { .. } => 1 << 6,
                Insn::Call(_) => args,
                _ => 0,
            }
        })
        .collect();
    let exit_sensitive: u16 = 1; // r0 at exit: a subprogram's or callback's result (conservative)
    let mut precise = vec![0u16; n];
    changed = true;
    while changed {
        changed = false;
        for pc in (0..n).rev() {
            let Some(i) = insns[pc] else { continue };
            let out = cfg.successors(pc).iter().fold(0u16, |acc, e| acc | precise.get(e.to).copied().unwrap_or(0));
            let (uses, defs) = ud[pc];
            let mut inn = sensitive[pc] | (out & !defs);
            // The main program's result is only checked to be a scalar; a subprogram's or a
            // callback's flows on.
            if matches!(i, Insn::Exit) && cfg.subprog_of(pc).is_some_and(|sp| sp != 0) {
                inn |= exit_sensitive;
            }
            // A relevant result makes the operands it is computed from relevant.
            if out & defs != 0 {
                inn |= uses;
            }
            if inn != precise[pc] {
                precise[pc] = inn;
                changed = true;
            }
        }
    }
    live.into_iter()
        .zip(precise)
        .map(|(m, p)| crate::state::RegMask {
            live: std::array::from_fn(|r| r == 10 || m & (1 << r) != 0),
            precise: std::array::from_fn(|r| r == 10 || p & (1 << r) != 0),
        })
        .collect()
}
