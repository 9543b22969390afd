//! The abstract interpreter (the kernel's `do_check`): explores every path of the program
//! from its first instruction with the types and bounds of [`crate::state`], checks each
//! instruction on each path, and prunes a path when it reaches an instruction in a state that
//! an already fully explored state covers.
//!
//! Exploration is depth first over a work list. States are remembered at prune points (jump
//! targets and `may_goto`); a remembered state may prune only once every path that continues
//! from it has been explored (its `branches` count is zero), as in the kernel, except at
//! `may_goto` where the runtime budget bounds the loop. A path that comes back to a state still
//! being explored, unchanged, is an infinite loop. The walk stops after
//! [`crate::COMPLEXITY_LIMIT`] processed instructions.

use crate::protos::{self, Arg, Proto, Ret};
use crate::scalar::{Cmp, Op, Scalar};
use crate::state::{Byte, Frame, Ptr, PtrKind, Reg, SLOTS, STACK_SIZE, Slot, State, describe};
use crate::{CtxFieldKind, Input, LdImm, MapInfo, VerifyError};
use bpfkit_isa::{AluOp, AtomicOp, CallTarget, Cond, Endian, Insn, LdImmSrc, Operand, Reg as R, Size, Width};
use std::collections::HashMap;
use std::fmt::Write as _;

/// Map types the checks need to tell apart (the kernel's `enum bpf_map_type`).
pub mod map_type {
    pub const HASH: u32 = 1;
    pub const ARRAY: u32 = 2;
    pub const PROG_ARRAY: u32 = 3;
    pub const PERCPU_ARRAY: u32 = 6;
    pub const ARRAY_OF_MAPS: u32 = 12;
    pub const HASH_OF_MAPS: u32 = 13;
    pub const QUEUE: u32 = 22;
    pub const STACK: u32 = 23;
    pub const RINGBUF: u32 = 27;
    pub const INSN_ARRAY: u32 = 34;
}

/// Largest variable offset a pointer may carry (`BPF_MAX_VAR_OFF`).
const MAX_VAR_OFF: u64 = 1 << 29;
/// Largest offset into a packet (`MAX_PACKET_OFF`).
const MAX_PACKET_OFF: u64 = 0xffff;
/// Call frames (`MAX_CALL_FRAMES`).
const MAX_CALL_FRAMES: usize = 8;

struct Visited {
    state: State,
    /// `state.shared_ids()`, computed once.
    shared: Vec<u32>,
    /// Paths still being explored from this state.
    branches: u32,
    parent: Option<usize>,
}

struct Work {
    pc: usize,
    state: State,
    parent: Option<usize>,
}

pub(crate) struct Checker<'a> {
    input: &'a Input<'a>,
    insns: Vec<Option<Insn>>,
    prune_points: Vec<bool>,
    /// Registers read later in their function, and whose values matter, per instruction.
    live: Vec<crate::state::RegMask>,
    subprogs: Vec<usize>,
    visited: Vec<Visited>,
    visited_at: HashMap<usize, Vec<usize>>,
    work: Vec<Work>,
    pub processed: u64,
    pub total_states: u64,
    pub peak_states: usize,
    /// States remembered now (for `peak_states`).
    live_states: usize,
    pub log: String,
    next_id: u32,
    pub max_ctx_offset: u32,
    pub max_stack: u32,
    pc_now: usize,
    last_line: Option<usize>,
}

type Res<T> = Result<T, VerifyError>;

fn err(pc: usize, msg: impl Into<String>) -> VerifyError {
    VerifyError { pc, message: msg.into() }
}

fn size_bytes(s: Size) -> u32 {
    s.bytes() as u32
}

fn cmp_of(c: Cond) -> Cmp {
    match c {
        Cond::Eq => Cmp::Eq,
        Cond::Ne => Cmp::Ne,
        Cond::Gt => Cmp::Gt,
        Cond::Ge => Cmp::Ge,
        Cond::Lt => Cmp::Lt,
        Cond::Le => Cmp::Le,
        Cond::Sgt => Cmp::Sgt,
        Cond::Sge => Cmp::Sge,
        Cond::Slt => Cmp::Slt,
        Cond::Sle => Cmp::Sle,
        Cond::Set => Cmp::Set,
    }
}

fn op_of(op: AluOp) -> Option<Op> {
    Some(match op {
        AluOp::Add => Op::Add,
        AluOp::Sub => Op::Sub,
        AluOp::Mul => Op::Mul,
        AluOp::Div => Op::Div,
        AluOp::SDiv => Op::SDiv,
        AluOp::Mod => Op::Mod,
        AluOp::SMod => Op::SMod,
        AluOp::Or => Op::Or,
        AluOp::And => Op::And,
        AluOp::Xor => Op::Xor,
        AluOp::Lsh => Op::Lsh,
        AluOp::Rsh => Op::Rsh,
        AluOp::Arsh => Op::Arsh,
        _ => return None,
    })
}

/// The kernel's text for a tnum in alignment messages: the value when known.
fn tnum_str(s: &Scalar) -> String {
    match s.value() {
        Some(v) => format!("{}", v as i64),
        None => format!("{}", s.var_off),
    }
}

impl<'a> Checker<'a> {
    pub(crate) fn new(
        input: &'a Input<'a>,
        subprogs: Vec<usize>,
        prune_points: Vec<bool>,
        live: Vec<crate::state::RegMask>,
    ) -> Res<Checker<'a>> {
        let n = input.insns.len();
        let mut insns = vec![None; n];
        let mut pc = 0;
        while pc < n {
            let insn = bpfkit_isa::Insn::decode(input.insns, pc).map_err(|e| err(pc, e.to_string()))?;
            insns[pc] = Some(insn);
            pc += insn.slots();
        }
        Ok(Checker {
            input,
            insns,
            prune_points,
            live,
            subprogs,
            visited: Vec::new(),
            visited_at: HashMap::new(),
            work: Vec::new(),
            processed: 0,
            total_states: 0,
            peak_states: 0,
            live_states: 0,
            log: String::new(),
            next_id: 1,
            max_ctx_offset: 0,
            max_stack: 0,
            pc_now: 0,
            last_line: None,
        })
    }

    fn fresh_id(&mut self) -> u32 {
        self.next_id += 1;
        self.next_id
    }

    fn map(&self, m: u32) -> &MapInfo {
        &self.input.maps[m as usize]
    }

    fn subprog_of(&self, pc: usize) -> usize {
        let i = self.subprogs.partition_point(|&s| s <= pc);
        self.subprogs[i.saturating_sub(1)]
    }

    fn subprog_end(&self, start: usize) -> usize {
        self.subprogs.iter().copied().find(|&s| s > start).unwrap_or(self.insns.len())
    }

    /// Runs the exploration.
    pub(crate) fn run(&mut self) -> Res<()> {
        let mut state = State { frames: vec![Frame::new(0, None, 0)], refs: Vec::new(), may_goto_depth: 0 };
        state.frames[0].regs[1] = Reg::Ptr(Ptr::new(PtrKind::Ctx));
        self.work.push(Work { pc: 0, state, parent: None });
        while let Some(mut w) = self.work.pop() {
            loop {
                match self.step(&mut w)? {
                    Flow::Continue => {}
                    Flow::End => {
                        self.finish_path(w.parent);
                        break;
                    }
                }
            }
        }
        Ok(())
    }

    /// A path ended: its checkpoints have one branch less to wait for.
    fn finish_path(&mut self, mut parent: Option<usize>) {
        while let Some(p) = parent {
            let v = &mut self.visited[p];
            v.branches -= 1;
            if v.branches > 0 {
                break;
            }
            parent = v.parent;
        }
    }

    /// Adds `n` branches to the checkpoint a split path hangs from.
    fn add_branches(&mut self, parent: Option<usize>, n: u32) {
        if let Some(p) = parent {
            self.visited[p].branches += n;
        }
    }

    fn push(&mut self, pc: usize, state: State, parent: Option<usize>) {
        self.add_branches(parent, 1);
        self.work.push(Work { pc, state, parent });
    }

    /// At a prune point: `true` when a remembered state covers the current one.
    fn is_visited(&mut self, w: &mut Work) -> Res<bool> {
        let pc = w.pc;
        let is_may_goto = matches!(self.insns[pc], Some(Insn::MayGoto { .. }));
        let is_loop_call = matches!(self.insns[pc], Some(Insn::Call(CallTarget::Helper(181))));
        // Callback bodies loop through their `bpf_loop` call, whose count bounds them.
        let in_callback = w.state.frames.iter().any(|f| f.callback);
        let in_progress = self
            .visited_at
            .get(&pc)
            .and_then(|l| {
                l.iter().rev().find(|&&i| {
                    self.visited[i].branches > 0 && self.visited[i].state.frames.len() == w.state.frames.len()
                })
            })
            .copied();
        if is_loop_call && let Some(last) = in_progress {
            // Callback iterations come back here: scalars that changed since the last visit are
            // widened to unknown so that the iterations converge (the kernel widens imprecise
            // scalars the same way).
            let old = self.visited[last].state.clone();
            widen(&old, &mut w.state);
        }
        if let Some(list) = self.visited_at.get(&pc) {
            for &i in list {
                let v = &self.visited[i];
                if v.branches == 0 {
                    if v.state.contains(&w.state, Some(&self.live[pc]), &v.shared) {
                        return Ok(true);
                    }
                } else if is_loop_call || in_callback || is_may_goto && v.state.may_goto_depth != w.state.may_goto_depth
                {
                    // The runtime budget ends this loop: a covered state need not go round again.
                    if v.state.contains(&w.state, None, &v.shared) {
                        return Ok(true);
                    }
                } else if v.state == w.state {
                    return Err(err(pc, format!("infinite loop detected at insn {pc}")));
                }
            }
        }
        let list = self.visited_at.entry(pc).or_default();
        if list.len() >= 64 {
            // Bound the memory: forget the oldest complete state.
            if let Some(pos) = list.iter().position(|&i| self.visited[i].branches == 0) {
                list.remove(pos);
                self.live_states -= 1;
            }
        }
        self.visited.push(Visited {
            shared: w.state.shared_ids(),
            state: w.state.clone(),
            branches: 1,
            parent: w.parent,
        });
        let id = self.visited.len() - 1;
        self.visited_at.entry(pc).or_default().push(id);
        w.parent = Some(id);
        self.total_states += 1;
        self.live_states += 1;
        self.peak_states = self.peak_states.max(self.live_states);
        Ok(false)
    }

    fn step(&mut self, w: &mut Work) -> Res<Flow> {
        let pc = w.pc;
        if pc >= self.insns.len() {
            return Err(err(pc, format!("invalid insn idx {pc} insn_cnt {}", self.insns.len())));
        }
        if self.prune_points[pc] && self.is_visited(w)? {
            if self.input.log_level >= 2 {
                let _ = writeln!(self.log, "{pc}: safe");
            }
            return Ok(Flow::End);
        }
        self.processed += 1;
        self.pc_now = pc;
        if self.processed > crate::COMPLEXITY_LIMIT {
            return Err(err(pc, format!("BPF program is too large. Processed {} insn", self.processed)));
        }
        let Some(insn) = self.insns[pc] else {
            return Err(err(pc, format!("jump into the middle of ldimm64 insn {pc}")));
        };
        if self.input.log_level >= 2 {
            // The source line, when this instruction starts one (as the kernel prints `; text @ file:line`).
            if let Ok(i) = self.input.line_info.binary_search_by_key(&pc, |(p, _)| *p)
                && self.last_line.is_none_or(|l| self.input.line_info[l].1 != self.input.line_info[i].1)
            {
                let _ = writeln!(self.log, "; {}", self.input.line_info[i].1);
                self.last_line = Some(i);
            }
            let _ = writeln!(self.log, "{pc}: ({:02x}) {insn}", self.input.insns[pc].code);
        }
        let flow = self.exec(w, insn)?;
        if self.input.log_level >= 2 && matches!(flow, Flow::Continue) {
            let regs: Vec<String> = w
                .state
                .cur()
                .regs
                .iter()
                .enumerate()
                .filter(|(_, r)| **r != Reg::NotInit)
                .map(|(i, r)| format!("R{i}={}", describe(r)))
                .collect();
            let _ = writeln!(self.log, "  ; {}", regs.join(" "));
        }
        Ok(flow)
    }

    fn reg(&self, st: &State, pc: usize, r: R) -> Res<Reg> {
        let v = st.cur().regs[r.index() as usize];
        if v == Reg::NotInit {
            return Err(err(pc, format!("R{} !read_ok", r.index())));
        }
        Ok(v)
    }

    fn set(st: &mut State, r: R, v: Reg) {
        st.cur_mut().regs[r.index() as usize] = v;
    }

    fn check_dst_writable(pc: usize, r: R) -> Res<()> {
        if r.index() == 10 {
            return Err(err(pc, "frame pointer is read only"));
        }
        Ok(())
    }

    fn exec(&mut self, w: &mut Work, insn: Insn) -> Res<Flow> {
        let pc = w.pc;
        match insn {
            Insn::Alu { width, op, dst, src } => {
                Self::check_dst_writable(pc, dst)?;
                self.alu(&mut w.state, pc, width, op, dst, src)?;
            }
            Insn::Neg { width, dst } => {
                Self::check_dst_writable(pc, dst)?;
                match self.reg(&w.state, pc, dst)? {
                    Reg::Scalar(s) => {
                        let r = Scalar::konst(0).alu(Op::Sub, &s, width == Width::W32);
                        Self::set(&mut w.state, dst, Reg::Scalar(r));
                    }
                    // Privileged: a negated (or byte-swapped) pointer is a scalar nothing is known of.
                    Reg::Ptr(_) if self.input.allow_ptr_leaks => {
                        Self::set(&mut w.state, dst, Reg::Scalar(Scalar::UNKNOWN));
                    }
                    other => {
                        return Err(err(
                            pc,
                            format!("R{} pointer arithmetic on {} prohibited", dst.index(), other.name()),
                        ));
                    }
                }
            }
            Insn::Endian { kind, bits, dst } => {
                Self::check_dst_writable(pc, dst)?;
                match self.reg(&w.state, pc, dst)? {
                    Reg::Scalar(s) => {
                        let r = match (s.value(), kind) {
                            (Some(v), Endian::ToLe) => Scalar::konst(v).truncate(u32::from(bits) / 8),
                            (Some(v), _) => {
                                let b = u32::from(bits);
                                Scalar::konst(v.swap_bytes() >> (64 - b))
                            }
                            (None, Endian::ToLe) => s.truncate(u32::from(bits) / 8),
                            (None, _) => Scalar::of_size(u32::from(bits) / 8),
                        };
                        Self::set(&mut w.state, dst, Reg::Scalar(r));
                    }
                    other => {
                        return Err(err(
                            pc,
                            format!("R{} pointer arithmetic on {} prohibited", dst.index(), other.name()),
                        ));
                    }
                }
            }
            Insn::LdImm64 { dst, src, imm, next_imm } => {
                Self::check_dst_writable(pc, dst)?;
                let v = match (self.input.ld_imm.get(&pc), src) {
                    (Some(LdImm::Map(m)), _) => Reg::Ptr(Ptr::new(PtrKind::Map { map: *m as u32 })),
                    (Some(LdImm::MapValue { map, off }), _) => {
                        let m = self.map(*map as u32);
                        let limit = self.value_region(m);
                        if m.map_type == map_type::INSN_ARRAY && (*off % 8 != 0 || *off >= limit) {
                            return Err(err(
                                pc,
                                format!("invalid offset {off} into insn_array of {} entries", m.max_entries),
                            ));
                        }
                        let mut p = Ptr::new(PtrKind::MapValue { map: *map as u32 });
                        p.off = *off as i32;
                        Reg::Ptr(p)
                    }
                    (Some(LdImm::Func(t)), _) => Reg::Ptr(Ptr::new(PtrKind::Func { pc: *t as u32 })),
                    (Some(LdImm::Imm), _) | (None, LdImmSrc::Imm) => {
                        Reg::Scalar(Scalar::konst((imm as u32 as u64) | ((next_imm as u32 as u64) << 32)))
                    }
                    (None, LdImmSrc::Func) => {
                        let t = pc as i64 + 1 + i64::from(imm);
                        Reg::Ptr(Ptr::new(PtrKind::Func { pc: t as u32 }))
                    }
                    (None, other) => {
                        return Err(err(pc, format!("ld_imm64 with pseudo source {other:?} that nothing bound")));
                    }
                };
                Self::set(&mut w.state, dst, v);
                w.pc = pc + 2;
                return Ok(Flow::Continue);
            }
            Insn::LdAbs { .. } | Insn::LdInd { .. } => {
                if !self.input.ld_abs {
                    return Err(err(pc, "BPF_LD_[ABS|IND] instructions not allowed for this program type"));
                }
                match self.reg(&w.state, pc, R::R6)? {
                    Reg::Ptr(p) if p.kind == PtrKind::Ctx => {}
                    _ => return Err(err(pc, "at the time of BPF_LD_ABS|IND R6 != pointer to skb")),
                }
                if let Insn::LdInd { src, .. } = insn
                    && !matches!(self.reg(&w.state, pc, src)?, Reg::Scalar(_))
                {
                    return Err(err(pc, format!("R{} type=pointer expected=scalar", src.index())));
                }
                let size = match insn {
                    Insn::LdAbs { size, .. } | Insn::LdInd { size, .. } => size_bytes(size),
                    _ => 4,
                };
                for r in 1..=5 {
                    w.state.cur_mut().regs[r] = Reg::NotInit;
                }
                w.state.cur_mut().regs[0] = Reg::Scalar(Scalar::of_size(size));
            }
            Insn::Load { size, signed, dst, src, off } => {
                Self::check_dst_writable(pc, dst)?;
                let base = self.reg(&w.state, pc, src)?;
                let v = self.load(&mut w.state, pc, src.index(), &base, off, size_bytes(size), signed)?;
                Self::set(&mut w.state, dst, v);
            }
            Insn::Store { size, dst, off, src } => {
                let base = self.reg(&w.state, pc, dst)?;
                let value = match src {
                    Operand::Reg(r) => match self.reg(&w.state, pc, r)? {
                        // A spill to the stack links the slot with the register.
                        Reg::Scalar(x) if matches!(base, Reg::Ptr(Ptr { kind: PtrKind::Stack { .. }, .. })) => {
                            Reg::Scalar(self.link(&mut w.state, r, x))
                        }
                        v => v,
                    },
                    Operand::Imm(i) => Reg::Scalar(Scalar::konst(i as i64 as u64)),
                };
                self.store(
                    &mut w.state,
                    pc,
                    dst.index(),
                    &base,
                    off,
                    size_bytes(size),
                    value,
                    matches!(src, Operand::Reg(_)),
                )?;
            }
            Insn::Atomic { size, op, dst, src, off } => self.atomic(&mut w.state, pc, size, op, dst, src, off)?,
            Insn::Ja { off, .. } => {
                w.pc = (pc as i64 + 1 + i64::from(off)) as usize;
                return Ok(Flow::Continue);
            }
            Insn::StaticBranch { off, .. } => {
                // Both edges: the key may be flipped at any time.
                let target = (pc as i64 + 1 + i64::from(off)) as usize;
                self.push(target, w.state.clone(), w.parent);
            }
            Insn::MayGoto { off } => {
                let target = (pc as i64 + 1 + i64::from(off)) as usize;
                if off != 0 {
                    self.push(target, w.state.clone(), w.parent);
                }
                w.state.may_goto_depth += 1;
            }
            Insn::JmpCond { width, cond, dst, src, off } => {
                let target = (pc as i64 + 1 + i64::from(off)) as usize;
                return self.cond_jump(w, width, cond, dst, src, target);
            }
            Insn::Call(CallTarget::Helper(id)) => return self.call_helper(w, id),
            Insn::Call(CallTarget::Kfunc { btf_id, .. }) => {
                if !self.input.kfuncs.contains(&btf_id) {
                    return Err(err(pc, format!("kernel function {btf_id} is not bound")));
                }
                // Host kfuncs take any initialised values and return a scalar.
                for r in 1..=5 {
                    w.state.cur_mut().regs[r] = Reg::NotInit;
                }
                w.state.cur_mut().regs[0] = Reg::Scalar(Scalar::UNKNOWN);
            }
            Insn::Call(CallTarget::Local(rel)) => {
                let target = (pc as i64 + 1 + i64::from(rel)) as usize;
                return self.call_local(w, target);
            }
            Insn::CallX { .. } => return Err(err(pc, "callx is not supported by the verifier")),
            Insn::Exit => return self.exit(w),
            Insn::GotoX { reg } => return self.gotox(w, reg),
        }
        w.pc = pc + 1;
        Ok(Flow::Continue)
    }

    /// The bytes a map value pointer may reach: the value, or for an instruction array its
    /// table of code addresses (`max_entries * 8`).
    fn value_region(&self, m: &MapInfo) -> u32 {
        if m.map_type == map_type::INSN_ARRAY { m.max_entries.saturating_mul(8) } else { m.value_size }
    }

    fn alu(&mut self, st: &mut State, pc: usize, width: Width, op: AluOp, dst: R, src: Operand) -> Res<()> {
        let bits32 = width == Width::W32;
        let s = match src {
            Operand::Reg(r) => self.reg(st, pc, r)?,
            Operand::Imm(i) => Reg::Scalar(Scalar::konst(i as i64 as u64)),
        };
        let d = st.cur().regs[dst.index() as usize];
        match op {
            AluOp::Mov => {
                let v = match s {
                    Reg::Scalar(x) if bits32 => Reg::Scalar(x.truncate(4)),
                    // A copy of a scalar is linked to it (both narrow together on branches).
                    Reg::Scalar(x) => {
                        let x = match src {
                            Operand::Reg(r) => self.link(st, r, x),
                            Operand::Imm(_) => x,
                        };
                        Reg::Scalar(x)
                    }
                    Reg::Ptr(_) if bits32 => Reg::Scalar(Scalar::of_size(4)),
                    p => p,
                };
                Self::set(st, dst, v);
                return Ok(());
            }
            AluOp::MovSx8 | AluOp::MovSx16 | AluOp::MovSx32 => {
                let Reg::Scalar(x) = s else {
                    return Err(err(pc, format!("R{} sign-extension mov of a pointer", dst.index())));
                };
                let n = match op {
                    AluOp::MovSx8 => 1,
                    AluOp::MovSx16 => 2,
                    _ => 4,
                };
                let r = x.sign_extend(n);
                Self::set(st, dst, Reg::Scalar(if bits32 { r.truncate(4) } else { r }));
                return Ok(());
            }
            _ => {}
        }
        if d == Reg::NotInit {
            return Err(err(pc, format!("R{} !read_ok", dst.index())));
        }
        let op2 = op_of(op).expect("ALU op");
        let dn = dst.index();
        match (d, s) {
            (Reg::Scalar(a), Reg::Scalar(b)) => {
                Self::set(st, dst, Reg::Scalar(a.alu(op2, &b, bits32)));
            }
            // Privileged programs may subtract pointers (32-bit ALU on pointers too): the result
            // is a scalar nothing is known of (the kernel's allow_ptr_leaks rules).
            (Reg::Ptr(_), _) | (_, Reg::Ptr(_)) if bits32 => {
                if op2 != Op::Sub {
                    return Err(err(pc, format!("R{dn} 32-bit pointer arithmetic prohibited")));
                }
                Self::set(st, dst, Reg::Scalar(Scalar::of_size(4)));
            }
            (Reg::Ptr(p), Reg::Scalar(b)) => {
                let r = self.ptr_arith(pc, dn, p, op2, b, bits32)?;
                Self::set(st, dst, Reg::Ptr(r));
            }
            (Reg::Scalar(a), Reg::Ptr(p)) if op2 == Op::Add => {
                let r = self.ptr_arith(pc, dn, p, op2, a, bits32)?;
                Self::set(st, dst, Reg::Ptr(r));
            }
            (Reg::Scalar(_), Reg::Ptr(_)) if op2 == Op::Sub => {
                return Err(err(pc, format!("R{dn} tried to subtract pointer from scalar")));
            }
            (Reg::Ptr(a), Reg::Ptr(b)) if op2 == Op::Sub => {
                let v = if a.kind == b.kind && a.id == b.id && a.var.is_const() && b.var.is_const() {
                    let d = (i64::from(a.off) + a.var.var_off.value as i64)
                        - (i64::from(b.off) + b.var.var_off.value as i64);
                    Scalar::konst(d as u64)
                } else {
                    Scalar::UNKNOWN
                };
                Self::set(st, dst, Reg::Scalar(v));
            }
            (Reg::Ptr(_), Reg::Ptr(_)) => {
                return Err(err(pc, format!("R{dn} pointer {op:?} pointer prohibited")));
            }
            (Reg::Ptr(p), _) | (_, Reg::Ptr(p)) => {
                let what = match op2 {
                    Op::And | Op::Or | Op::Xor => "bitwise operator",
                    _ => "pointer arithmetic with operator",
                };
                return Err(err(pc, format!("R{dn} {what} {op:?} on pointer {} prohibited", p.kind.name())));
            }
            (Reg::NotInit, _) | (_, Reg::NotInit) => unreachable!("checked above"),
        }
        Ok(())
    }

    /// Gives the scalar in register `r` an identity (if it has none and is not a constant) so
    /// that its copies are linked; returns the scalar as copied.
    fn link(&mut self, st: &mut State, r: R, x: Scalar) -> Scalar {
        if x.id != 0 || x.is_const() {
            return x;
        }
        let mut x = x;
        x.id = self.fresh_id();
        Self::set(st, r, Reg::Scalar(x));
        x
    }

    fn ptr_arith(&mut self, pc: usize, dn: u8, p: Ptr, op: Op, s: Scalar, bits32: bool) -> Res<Ptr> {
        if bits32 {
            return Err(err(pc, format!("R{dn} 32-bit pointer arithmetic prohibited")));
        }
        if p.null_id != 0 {
            return Err(err(
                pc,
                format!("R{dn} pointer arithmetic on {} prohibited, null-check it first", Reg::Ptr(p).name()),
            ));
        }
        match p.kind {
            PtrKind::Map { .. } | PtrKind::PacketEnd | PtrKind::Insn { .. } | PtrKind::Func { .. } => {
                return Err(err(pc, format!("R{dn} pointer arithmetic on {} prohibited", p.kind.name())));
            }
            _ => {}
        }
        if !matches!(op, Op::Add | Op::Sub) {
            return Err(err(pc, format!("R{dn} pointer arithmetic with {op:?} operator prohibited")));
        }
        let mut r = p;
        if let Some(v) = s.value() {
            let delta = if op == Op::Add { v as i64 } else { (v as i64).wrapping_neg() };
            // Saturating: `delta` may be i64::MIN (out of bounds either way).
            let off = i64::from(p.off).saturating_add(delta);
            if off.unsigned_abs() >= MAX_VAR_OFF {
                return Err(err(pc, format!("value {delta} makes {} pointer be out of bounds", p.kind.name())));
            }
            r.off = off as i32;
            return Ok(r);
        }
        if p.kind == PtrKind::Ctx {
            return Err(err(pc, format!("R{dn} variable ctx access var_off={} disallowed", s.var_off)));
        }
        if s.smin < -(MAX_VAR_OFF as i64) || s.smax > MAX_VAR_OFF as i64 || s.umax > MAX_VAR_OFF && s.smin >= 0 {
            return Err(err(pc, format!("R{dn} unbounded memory access, make sure to bounds check any such access")));
        }
        r.var = p.var.alu(op, &s, false);
        if p.is_packet() {
            // A new variable offset: a new identity for range tracking, and no range yet.
            r.id = self.fresh_id();
            r.range = 0;
        }
        Ok(r)
    }

    #[allow(clippy::too_many_arguments)]
    fn load(&mut self, st: &mut State, pc: usize, rn: u8, base: &Reg, off: i16, size: u32, signed: bool) -> Res<Reg> {
        let Reg::Ptr(p) = base else {
            return Err(err(pc, format!("R{rn} invalid mem access '{}'", base.name())));
        };
        if p.null_id != 0 {
            return Err(err(pc, format!("R{rn} invalid mem access '{}'", base.name())));
        }
        let ext = |s: Scalar| if signed { s.sign_extend(size) } else { s };
        match p.kind {
            PtrKind::Stack { frame } => {
                let (lo, hi) = self.stack_range(pc, rn, p, off, size)?;
                let fr = &mut st.frames[frame as usize];
                let v = read_stack(fr, pc, lo, hi, size, self.input.allow_uninit_stack)?;
                self.note_depth(st, frame, lo)?;
                Ok(match v {
                    Reg::Scalar(s) => Reg::Scalar(ext(s)),
                    other => other,
                })
            }
            PtrKind::MapValue { map } => {
                let m = self.map(map).clone();
                if m.map_type == map_type::INSN_ARRAY {
                    return self.load_insn_ptr(pc, rn, p, off, size, &m, map);
                }
                if m.wronly_prog {
                    let fixed = i64::from(p.off) + i64::from(off);
                    return Err(err(
                        pc,
                        format!("read from map forbidden, value_size={} off={fixed} size={size}", m.value_size),
                    ));
                }
                self.check_map_access(pc, rn, p, off, size, &m)?;
                Ok(Reg::Scalar(ext(Scalar::of_size(size))))
            }
            // Sign-extending loads from a typed context are refused, as the kernel's context checks
            // do (a syscall program's context is plain memory).
            PtrKind::Ctx if signed && !self.input.ctx.any_access => Err(err(
                pc,
                format!("invalid bpf_context access off={} size={size}", i64::from(p.off) + i64::from(off)),
            )),
            PtrKind::Ctx => self.ctx_access(pc, rn, p, off, size, false).map(|r| match r {
                Reg::Scalar(s) => Reg::Scalar(ext(s)),
                other => other,
            }),
            PtrKind::Packet | PtrKind::PacketMeta => {
                self.check_packet_access(pc, rn, p, off, size)?;
                Ok(Reg::Scalar(ext(Scalar::of_size(size))))
            }
            PtrKind::Mem { size: msize, .. } => {
                self.check_mem_region(pc, rn, p, off, size, msize, "mem")?;
                Ok(Reg::Scalar(ext(Scalar::of_size(size))))
            }
            _ => Err(err(pc, format!("R{rn} invalid mem access '{}'", p.kind.name()))),
        }
    }

    /// An 8-byte read from an instruction array's code addresses: a `PTR_TO_INSN` whose
    /// range is the byte offset into the table (kernel-spec §3.3).
    #[allow(clippy::too_many_arguments)]
    fn load_insn_ptr(&mut self, pc: usize, rn: u8, p: &Ptr, off: i16, size: u32, m: &MapInfo, map: u32) -> Res<Reg> {
        self.check_alignment(pc, p, off, size, "value ", true)?;
        self.check_map_access(pc, rn, p, off, size, m)?;
        if size != 8 {
            return Err(err(pc, format!("Invalid read of {size} bytes from insn_array")));
        }
        let fixed = i64::from(p.off) + i64::from(off);
        let var = p.var.alu(Op::Add, &Scalar::konst(fixed as u64), false);
        let mut r = Ptr::new(PtrKind::Insn { map });
        r.var = var;
        Ok(Reg::Ptr(r))
    }

    fn check_alignment(&self, pc: usize, p: &Ptr, off: i16, size: u32, desc: &str, strict: bool) -> Res<()> {
        if !strict || size == 1 {
            return Ok(());
        }
        let fixed = i64::from(p.off) + i64::from(off);
        let t = p.var.var_off.add(crate::tnum::Tnum::konst(fixed as u64));
        if !t.is_aligned(u64::from(size)) {
            return Err(err(
                pc,
                format!("misaligned {desc}access off {}+{}+{} size {size}", tnum_str(&p.var), p.off, off),
            ));
        }
        Ok(())
    }

    /// The fixed byte range `[lo, hi)` below the frame pointer a stack access covers (negative
    /// offsets from `r10`), refusing what leaves the frame.
    fn stack_range(&self, pc: usize, rn: u8, p: &Ptr, off: i16, size: u32) -> Res<(i64, i64)> {
        let fixed = i64::from(p.off) + i64::from(off);
        let (lo, hi) = if p.var.is_const() {
            let o = fixed + p.var.var_off.value as i64;
            (o, o + i64::from(size))
        } else {
            (fixed + p.var.smin, fixed + p.var.smax + i64::from(size))
        };
        if lo < -(STACK_SIZE as i64) || hi > 0 || p.var.smin < -(STACK_SIZE as i64) || p.var.smax > STACK_SIZE as i64 {
            if p.var.is_const() {
                return Err(err(pc, format!("invalid stack off={lo} size={size}")));
            }
            return Err(err(
                pc,
                format!("R{rn} variable stack access out of bounds var_off={} off={fixed} size={size}", p.var.var_off),
            ));
        }
        Ok((lo, hi))
    }

    fn note_depth(&mut self, st: &mut State, frame: u8, lo: i64) -> Res<()> {
        let fr = &mut st.frames[frame as usize];
        fr.depth = fr.depth.max((-lo) as u32);
        self.max_stack = self.max_stack.max(fr.depth);
        // The frames of one call chain share the 512-byte stack (each rounded up to 32).
        let total: u32 = st.frames.iter().map(|f| f.depth.div_ceil(32) * 32).sum();
        if total > STACK_SIZE as u32 {
            return Err(err(
                self.pc_now,
                format!("combined stack size of {} calls is {total}. Too large", st.frames.len()),
            ));
        }
        Ok(())
    }

    fn check_map_access(&self, pc: usize, rn: u8, p: &Ptr, off: i16, size: u32, m: &MapInfo) -> Res<()> {
        let region = i64::from(self.value_region(m));
        let fixed = i64::from(p.off) + i64::from(off);
        if p.var.smin < 0 && !p.var.is_const() {
            return Err(err(
                pc,
                format!("R{rn} min value is negative, either use unsigned index or do a if (index >=0) check."),
            ));
        }
        if p.var.umax >= MAX_VAR_OFF && !p.var.is_const() {
            return Err(err(pc, format!("R{rn} unbounded memory access, make sure to bounds check any such access")));
        }
        let lo = fixed + p.var.smin.max(0);
        let hi = fixed + p.var.umax.min(MAX_VAR_OFF) as i64 + i64::from(size);
        let lo = if p.var.is_const() { fixed + p.var.var_off.value as i64 } else { lo };
        if lo < 0 || hi > region || (p.var.is_const() && lo + i64::from(size) > region) {
            let shown = if p.var.is_const() { lo } else { fixed + p.var.umax as i64 };
            return Err(err(
                pc,
                format!("invalid access to map value, value_size={} off={shown} size={size}", m.value_size),
            ));
        }
        Ok(())
    }

    fn check_packet_access(&self, pc: usize, rn: u8, p: &Ptr, off: i16, size: u32) -> Res<()> {
        let fixed = i64::from(p.off) + i64::from(off);
        if p.var.smin < 0 || fixed < 0 {
            return Err(err(pc, format!("R{rn} offset is outside of the packet")));
        }
        if p.var.umax > MAX_PACKET_OFF {
            return Err(err(pc, format!("R{rn} unbounded memory access, make sure to bounds check any such access")));
        }
        if fixed + i64::from(size) > i64::from(p.range) {
            return Err(err(
                pc,
                format!(
                    "invalid access to packet, off={fixed} size={size}, R{rn}(id={},off={},r={})",
                    p.id, p.off, p.range
                ),
            ));
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn check_mem_region(&self, pc: usize, rn: u8, p: &Ptr, off: i16, size: u32, region: u32, what: &str) -> Res<()> {
        let fixed = i64::from(p.off) + i64::from(off);
        if p.var.smin < 0 && !p.var.is_const() {
            return Err(err(
                pc,
                format!("R{rn} min value is negative, either use unsigned index or do a if (index >=0) check."),
            ));
        }
        let lo = fixed + if p.var.is_const() { p.var.var_off.value as i64 } else { 0 };
        let hi = fixed
            + if p.var.is_const() { p.var.var_off.value as i64 } else { p.var.umax.min(MAX_VAR_OFF) as i64 }
            + i64::from(size);
        if lo < 0 || hi > i64::from(region) {
            return Err(
                err(pc, format!("invalid access to memory, mem_size={region} off={lo} size={size}")).with_what(what)
            );
        }
        Ok(())
    }

    /// A context access: the field rules of the program type; loads of `data`, `data_end` and
    /// `data_meta` give packet pointers.
    fn ctx_access(&mut self, pc: usize, rn: u8, p: &Ptr, off: i16, size: u32, write: bool) -> Res<Reg> {
        if !p.var.is_const() || p.var.var_off.value != 0 || p.off != 0 {
            if p.var.is_const() {
                return Err(err(pc, format!("dereference of modified ctx ptr R{rn} off={} disallowed", p.off)));
            }
            return Err(err(pc, format!("variable ctx access var_off={} disallowed", p.var.var_off)));
        }
        let o = i64::from(off);
        let ctx = &self.input.ctx;
        if ctx.any_access {
            // Syscall programs: any aligned access inside what the caller passes; the largest
            // offset reached is reported so that runs check the context is that big.
            if o < 0 || o + i64::from(size) > 0xffff || o % i64::from(size) != 0 {
                return Err(err(pc, format!("invalid bpf_context access off={o} size={size}")));
            }
            self.max_ctx_offset = self.max_ctx_offset.max((o + i64::from(size)) as u32);
            return Ok(Reg::Scalar(Scalar::of_size(size)));
        }
        let bad = || err(pc, format!("invalid bpf_context access off={o} size={size}"));
        if o < 0 {
            return Err(bad());
        }
        let o = o as u32;
        let f = ctx.fields.iter().find(|f| o >= f.off && o < f.off + f.size).ok_or_else(bad)?;
        let exact = o == f.off && size == f.size;
        let narrow = f.narrow && o + size <= f.off + f.size && o.is_multiple_of(size);
        if !(exact || narrow && f.kind == CtxFieldKind::Scalar)
            || write && !f.writable
            || write && !exact && !f.narrow_write
        {
            return Err(bad());
        }
        Ok(match f.kind {
            CtxFieldKind::Scalar => Reg::Scalar(Scalar::of_size(size)),
            CtxFieldKind::PacketData => Reg::Ptr(Ptr::new(PtrKind::Packet)),
            CtxFieldKind::PacketEnd => Reg::Ptr(Ptr::new(PtrKind::PacketEnd)),
            CtxFieldKind::PacketMeta => Reg::Ptr(Ptr::new(PtrKind::PacketMeta)),
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn store(
        &mut self,
        st: &mut State,
        pc: usize,
        rn: u8,
        base: &Reg,
        off: i16,
        size: u32,
        value: Reg,
        from_reg: bool,
    ) -> Res<()> {
        let Reg::Ptr(p) = base else {
            return Err(err(pc, format!("R{rn} invalid mem access '{}'", base.name())));
        };
        if p.null_id != 0 {
            return Err(err(pc, format!("R{rn} invalid mem access '{}'", base.name())));
        }
        match p.kind {
            PtrKind::Stack { frame } => {
                let (lo, hi) = self.stack_range(pc, rn, p, off, size)?;
                // A caller's frame outlives this one: a stack pointer stored there could be used
                // after the frame it points to is gone.
                if usize::from(frame) + 1 != st.frames.len()
                    && matches!(value, Reg::Ptr(Ptr { kind: PtrKind::Stack { .. }, .. }))
                {
                    return Err(err(pc, "cannot spill pointers to stack into stack frame of the caller"));
                }
                self.note_depth(st, frame, lo)?;
                let fr = &mut st.frames[frame as usize];
                write_stack(fr, lo, hi, size, p.var.is_const(), value, from_reg);
            }
            PtrKind::MapValue { map } => {
                let m = self.map(map).clone();
                if m.rdonly_prog {
                    let fixed = i64::from(p.off) + i64::from(off);
                    return Err(err(
                        pc,
                        format!("write into map forbidden, value_size={} off={fixed} size={size}", m.value_size),
                    ));
                }
                self.check_map_access(pc, rn, p, off, size, &m)?;
            }
            PtrKind::Ctx => {
                if matches!(value, Reg::Ptr(_)) && !self.input.allow_ptr_leaks {
                    return Err(err(pc, format!("R{rn} leaks addr into ctx")));
                }
                self.ctx_access(pc, rn, p, off, size, true)?;
            }
            PtrKind::Packet | PtrKind::PacketMeta => {
                if !self.input.packet_writable {
                    return Err(err(pc, "cannot write into packet"));
                }
                self.check_packet_access(pc, rn, p, off, size)?;
            }
            PtrKind::Mem { size: msize, rdonly } => {
                if rdonly {
                    return Err(err(pc, format!("R{rn} cannot write into rdonly mem")));
                }
                self.check_mem_region(pc, rn, p, off, size, msize, "mem")?;
            }
            _ => return Err(err(pc, format!("R{rn} invalid mem access '{}'", p.kind.name()))),
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn atomic(&mut self, st: &mut State, pc: usize, size: Size, op: AtomicOp, dst: R, src: R, off: i16) -> Res<()> {
        let n = size_bytes(size);
        // For load-acquire `dst` is the destination (not read); otherwise the base.
        let base = if op == AtomicOp::LoadAcquire { Reg::NotInit } else { self.reg(st, pc, dst)? };
        // Load-acquire and store-release need natural alignment too (strict_alignment_once).
        let aligned = |c: &Self, r: &Reg| match r {
            Reg::Ptr(p) => {
                let desc = match p.kind {
                    PtrKind::Stack { .. } => "stack ",
                    PtrKind::MapValue { .. } => "value ",
                    PtrKind::Packet | PtrKind::PacketMeta => "packet ",
                    PtrKind::Ctx => "context ",
                    _ => "",
                };
                c.check_alignment(pc, p, off, n, desc, true)
            }
            _ => Ok(()),
        };
        match op {
            AtomicOp::LoadAcquire => {
                aligned(self, &self.reg(st, pc, src)?)?;
                let v = self.load(st, pc, src.index(), &self.reg(st, pc, src)?, off, n, false)?;
                Self::check_dst_writable(pc, dst)?;
                Self::set(st, dst, v);
                return Ok(());
            }
            AtomicOp::StoreRelease => {
                aligned(self, &base)?;
                let v = self.reg(st, pc, src)?;
                return self.store(st, pc, dst.index(), &base, off, n, v, true);
            }
            _ => {}
        }
        let v = self.reg(st, pc, src)?;
        if !matches!(v, Reg::Scalar(_)) && !self.input.allow_ptr_leaks {
            return Err(err(pc, format!("R{} leaks addr into mem", src.index())));
        }
        if op == AtomicOp::Cmpxchg && !matches!(self.reg(st, pc, R::R0)?, Reg::Scalar(_)) && !self.input.allow_ptr_leaks
        {
            return Err(err(pc, "R0 leaks addr into mem"));
        }
        if let Reg::Ptr(p) = &base
            && !matches!(p.kind, PtrKind::Stack { .. } | PtrKind::MapValue { .. } | PtrKind::Mem { .. })
        {
            return Err(err(pc, format!("BPF_ATOMIC stores into R{} {} is not allowed", dst.index(), p.kind.name())));
        }
        // Atomic operations need natural alignment, always.
        if let Reg::Ptr(p) = &base {
            let desc = match p.kind {
                PtrKind::Stack { .. } => "stack ",
                PtrKind::MapValue { .. } => "value ",
                _ => "",
            };
            self.check_alignment(pc, p, off, n, desc, true)?;
        }
        self.load(st, pc, dst.index(), &base, off, n, false)?;
        self.store(st, pc, dst.index(), &base, off, n, Reg::Scalar(Scalar::UNKNOWN), false)?;
        let fetch = match op {
            AtomicOp::Add { fetch } | AtomicOp::Or { fetch } | AtomicOp::And { fetch } | AtomicOp::Xor { fetch } => {
                fetch
            }
            _ => true,
        };
        if fetch {
            let out = if op == AtomicOp::Cmpxchg { R::R0 } else { src };
            Self::set(st, out, Reg::Scalar(Scalar::of_size(n)));
        }
        Ok(())
    }

    fn cond_jump(&mut self, w: &mut Work, width: Width, cond: Cond, dst: R, src: Operand, target: usize) -> Res<Flow> {
        let pc = w.pc;
        let bits32 = width == Width::W32;
        let a = self.reg(&w.state, pc, dst)?;
        let b = match src {
            Operand::Reg(r) => self.reg(&w.state, pc, r)?,
            Operand::Imm(i) => Reg::Scalar(Scalar::konst(if bits32 { i as u32 as u64 } else { i as i64 as u64 })),
        };
        let cmp = cmp_of(cond);
        let src_reg = match src {
            Operand::Reg(r) => Some(r),
            Operand::Imm(_) => None,
        };
        // The two successor states, or None for an impossible edge.
        let mut taken = Some(w.state.clone());
        let mut fall = Some(w.state.clone());
        match (a, b) {
            (Reg::Scalar(x), Reg::Scalar(y)) => {
                for (slot, t) in [(&mut taken, true), (&mut fall, false)] {
                    match x.refine(cmp, &y, bits32, t) {
                        Some((rx, ry)) => {
                            let s = slot.as_mut().expect("state");
                            let nx = merge32(&x, rx, bits32);
                            Self::set(s, dst, Reg::Scalar(nx));
                            sync_linked(s, &nx);
                            if let Some(r) = src_reg {
                                let ny = merge32(&y, ry, bits32);
                                Self::set(s, r, Reg::Scalar(ny));
                                sync_linked(s, &ny);
                            }
                        }
                        None => *slot = None,
                    }
                }
            }
            (Reg::Ptr(p), Reg::Scalar(z)) | (Reg::Scalar(z), Reg::Ptr(p)) if z.value() == Some(0) && !bits32 => {
                // A NULL check.
                let is_eq = match cmp {
                    Cmp::Eq => Some(true),
                    Cmp::Ne => Some(false),
                    _ => None,
                };
                if let Some(eq) = is_eq {
                    if p.null_id != 0 {
                        let id = p.null_id;
                        let (null_side, nonnull_side) =
                            if eq { (&mut taken, &mut fall) } else { (&mut fall, &mut taken) };
                        if let Some(s) = null_side.as_mut() {
                            s.update_null_id(id, |_| Reg::Scalar(Scalar::konst(0)));
                            s.refs.retain(|(r, _)| *r != p.ref_id || p.ref_id == 0);
                        }
                        if let Some(s) = nonnull_side.as_mut() {
                            s.update_null_id(id, |q| {
                                let mut q = *q;
                                q.null_id = 0;
                                Reg::Ptr(q)
                            });
                        }
                    } else if !matches!(p.kind, PtrKind::Func { .. }) {
                        // A pointer that cannot be NULL: the NULL edge is dead.
                        if eq {
                            taken = None;
                        } else {
                            fall = None;
                        }
                    }
                }
            }
            (Reg::Ptr(x), Reg::Ptr(y)) if !bits32 => self.packet_compare(&mut taken, &mut fall, x, y, cmp),
            _ => {}
        }
        match (taken, fall) {
            (Some(t), Some(f)) => {
                self.push(target, t, w.parent);
                w.state = f;
                w.pc = pc + 1;
            }
            (Some(t), None) => {
                w.state = t;
                w.pc = target;
            }
            (None, Some(f)) => {
                w.state = f;
                w.pc = pc + 1;
            }
            (None, None) => return Ok(Flow::End),
        }
        Ok(Flow::Continue)
    }

    /// `if pkt + N > pkt_end` and its variants: on the side where the comparison proves it,
    /// every packet pointer of the same identity may access `N` bytes (the kernel's
    /// `find_good_pkt_pointers`).
    fn packet_compare(&mut self, taken: &mut Option<State>, fall: &mut Option<State>, x: Ptr, y: Ptr, cmp: Cmp) {
        // Normalise to `pkt CMP end`.
        let (pkt, end_kind, cmp) = match (x.kind, y.kind) {
            (PtrKind::Packet, PtrKind::PacketEnd) => (x, PtrKind::PacketEnd, cmp),
            (PtrKind::PacketEnd, PtrKind::Packet) => (y, PtrKind::PacketEnd, cmp.swap()),
            // `data_meta` is bounded only by `data` itself, not by `data` plus an offset (the
            // kernel's reg_is_init_pkt_pointer).
            (PtrKind::PacketMeta, PtrKind::Packet) if y.off == 0 && y.var == Scalar::konst(0) => {
                (x, PtrKind::Packet, cmp)
            }
            (PtrKind::Packet, PtrKind::PacketMeta) if x.off == 0 && x.var == Scalar::konst(0) => {
                (y, PtrKind::Packet, cmp.swap())
            }
            _ => return,
        };
        // On the side where `pkt + off <= end` holds, `off` bytes from the packet pointer's base are
        // in the packet; where `pkt + off < end` holds, `off + 1`.
        let (side_ok, range) = match cmp {
            Cmp::Gt => (false, pkt.off),
            Cmp::Le => (true, pkt.off),
            // `pkt + N < end` proves N + 1 bytes (the kernel's right-open range).
            Cmp::Ge => (false, pkt.off + 1),
            Cmp::Lt => (true, pkt.off + 1),
            _ => return,
        };
        if range <= 0 || pkt.off < 0 {
            return;
        }
        let target_kind = if end_kind == PtrKind::PacketEnd { pkt.kind } else { PtrKind::PacketMeta };
        let side = if side_ok { taken } else { fall };
        if let Some(s) = side.as_mut() {
            let id = pkt.id;
            s.for_each_ptr(|q| {
                if q.kind == target_kind && q.id == id {
                    q.range = q.range.max(range as u32);
                }
            });
        }
    }

    fn call_local(&mut self, w: &mut Work, target: usize) -> Res<Flow> {
        let pc = w.pc;
        if w.state.frames.len() >= MAX_CALL_FRAMES {
            return Err(err(pc, format!("the call stack of {} frames is too deep !", w.state.frames.len() + 1)));
        }
        let frameno = w.state.frames.len() as u8;
        let mut f = Frame::new(target as u32, Some(pc as u32), frameno);
        for r in 1..=5 {
            f.regs[r] = w.state.cur().regs[r];
        }
        w.state.frames.push(f);
        w.pc = target;
        Ok(Flow::Continue)
    }

    fn exit(&mut self, w: &mut Work) -> Res<Flow> {
        let pc = w.pc;
        let r0 = w.state.cur().regs[0];
        if r0 == Reg::NotInit {
            return Err(err(pc, "R0 !read_ok"));
        }
        let depth = w.state.frames.len();
        if w.state.cur().callback {
            // The end of one callback iteration: its result must be 0 or 1 (`bpf_loop`).
            match r0 {
                Reg::Scalar(s) if s.umax <= 1 => {
                    // Back to the `bpf_loop` call: another iteration may follow, or the loop ends.
                    let callee = w.state.frames.pop().expect("callback frame");
                    w.pc = callee.callsite.expect("a callback has a call site") as usize;
                    return Ok(Flow::Continue);
                }
                _ => {
                    return Err(err(
                        pc,
                        format!("At callback return the register R0 has {} should have been in [0, 1]", describe(&r0)),
                    ));
                }
            }
        }
        if depth == 1 {
            if let Some((id, at)) = w.state.refs.first() {
                return Err(err(pc, format!("Unreleased reference id={id} alloc_insn={at}")));
            }
            if !matches!(r0, Reg::Scalar(_)) && !self.input.allow_ptr_leaks {
                return Err(err(pc, "R0 leaks addr as return value"));
            }
            return Ok(Flow::End);
        }
        if let Reg::Ptr(p) = r0
            && p.kind == (PtrKind::Stack { frame: (depth - 1) as u8 })
        {
            return Err(err(pc, "cannot return stack pointer to the caller"));
        }
        let callee = w.state.frames.pop().expect("callee frame");
        let callsite = callee.callsite.expect("a called frame") as usize;
        let caller = w.state.cur_mut();
        caller.regs[0] = r0;
        for r in 1..=5 {
            caller.regs[r] = Reg::NotInit;
        }
        w.pc = callsite + 1;
        Ok(Flow::Continue)
    }

    fn gotox(&mut self, w: &mut Work, reg: R) -> Res<Flow> {
        let pc = w.pc;
        let v = self.reg(&w.state, pc, reg)?;
        let rn = reg.index();
        let Reg::Ptr(Ptr { kind: PtrKind::Insn { map }, var, .. }) = v else {
            return Err(err(pc, format!("R{rn} has type {}, expected PTR_TO_INSN", v.name())));
        };
        let limit = u64::from(u32::MAX) * 8;
        if var.umin > limit {
            return Err(err(pc, format!("the sum of R{rn} umin_value {} is too big", var.umin)));
        }
        if var.umax > limit {
            return Err(err(pc, format!("the sum of R{rn} umax_value {} is too big", var.umax)));
        }
        let (lo, hi) = (var.umin / 8, var.umax / 8);
        let m = self.map(map).clone();
        if hi >= u64::from(m.max_entries) {
            return Err(err(
                pc,
                format!("R{rn} points to outside of jump table: [{lo},{hi}] max_entries {}", m.max_entries),
            ));
        }
        let mut targets: Vec<usize> =
            (lo..=hi).filter_map(|i| m.entries.get(i as usize).map(|&t| t as usize)).collect();
        targets.sort_unstable();
        targets.dedup();
        let Some((&last, rest)) = targets.split_last() else {
            return Err(err(pc, format!("register R{rn} doesn't point to any offset in map id={}", m.id)));
        };
        let start = self.subprog_of(pc);
        let end = self.subprog_end(start);
        for &t in &targets {
            if t < start || t >= end {
                return Err(err(pc, format!("jump table for insn {pc} points outside of the subprog [{start},{end}]")));
            }
        }
        for &t in rest {
            self.push(t, w.state.clone(), w.parent);
        }
        w.pc = last;
        Ok(Flow::Continue)
    }

    fn call_helper(&mut self, w: &mut Work, id: i32) -> Res<Flow> {
        let pc = w.pc;
        let kfunc = self.input.kfuncs.contains(&id);
        if !self.input.helpers.contains(&id) && !kfunc {
            return Err(err(pc, format!("invalid func unknown#{id}")));
        }
        let proto = match protos::helper(id) {
            Some(p) if !kfunc => p,
            // A kfunc, or a helper the host registered without a prototype: it takes any values
            // (pointers are checked against the run's memory when it uses them) and returns a
            // scalar.
            _ => {
                for r in 1..=5 {
                    w.state.cur_mut().regs[r] = Reg::NotInit;
                }
                w.state.cur_mut().regs[0] = Reg::Scalar(Scalar::UNKNOWN);
                w.pc = pc + 1;
                return Ok(Flow::Continue);
            }
        };
        let mut map: Option<u32> = None;
        let mut mem_size_arg: Option<(usize, Ptr, bool)> = None;
        // A NULL `ARG_PTR_TO_MEM_OR_NULL`: its size must be 0 (its register).
        let mut null_mem: Option<u8> = None;
        let mut released: Option<u32> = None;
        let mut callback: Option<usize> = None;
        for (i, arg) in proto.args.iter().enumerate() {
            let rn = (i + 1) as u8;
            if *arg == Arg::None {
                continue;
            }
            let v = w.state.cur().regs[i + 1];
            if v == Reg::NotInit {
                return Err(err(pc, format!("R{rn} !read_ok")));
            }
            let expected = |what: &str| err(pc, format!("R{rn} type={} expected={what}", v.name()));
            match arg {
                Arg::None | Arg::Anything => {}
                Arg::MapPtr => match v {
                    Reg::Ptr(Ptr { kind: PtrKind::Map { map: m }, .. }) => {
                        self.check_map_compat(pc, id, &proto, m)?;
                        map = Some(m);
                    }
                    _ => return Err(expected("map_ptr")),
                },
                Arg::MapKey | Arg::MapValue | Arg::UninitMapValue => {
                    let m = map.ok_or_else(|| err(pc, "invalid map_ptr to access map->key"))?;
                    let info = self.map(m);
                    let size = if *arg == Arg::MapKey { info.key_size } else { info.value_size };
                    let Reg::Ptr(p) = v else { return Err(expected("fp")) };
                    self.check_helper_mem(&mut w.state, pc, rn, &p, size, *arg != Arg::UninitMapValue)?;
                }
                Arg::Mem | Arg::MemOrNull | Arg::UninitMem => {
                    if *arg == Arg::MemOrNull && v.scalar().is_some_and(|s| s.value() == Some(0)) {
                        null_mem = Some(rn);
                        continue;
                    }
                    let Reg::Ptr(p) = v else { return Err(expected("fp")) };
                    mem_size_arg = Some((i + 1, p, *arg != Arg::UninitMem));
                }
                Arg::Size | Arg::SizeOrZero => {
                    let Reg::Scalar(s) = v else { return Err(expected("scalar")) };
                    if s.smin < 0 {
                        return Err(err(
                            pc,
                            format!("R{rn} min value is negative, either use unsigned or 'var &= const'"),
                        ));
                    }
                    if s.umin == 0 && *arg == Arg::Size {
                        return Err(err(pc, "invalid zero-sized read".to_string()));
                    }
                    if s.umax >= MAX_VAR_OFF {
                        return Err(err(
                            pc,
                            format!("R{rn} unbounded memory access, use 'var &= const' or 'if (var < const)'"),
                        ));
                    }
                    if let Some(r) = null_mem.take()
                        && s.umax > 0
                    {
                        // The kernel allows NULL only with a zero size (check_helper_mem_access).
                        return Err(err(pc, format!("R{r} type=scalar expected=fp")));
                    }
                    if let Some((_, p, read)) = mem_size_arg.take()
                        && s.umax > 0
                    {
                        self.check_helper_mem(&mut w.state, pc, rn - 1, &p, s.umax as u32, read)?;
                    }
                }
                Arg::Ctx => match v {
                    Reg::Ptr(Ptr { kind: PtrKind::Ctx, off: 0, .. }) => {}
                    _ => return Err(expected("ctx")),
                },
                Arg::Func => match v {
                    Reg::Ptr(Ptr { kind: PtrKind::Func { pc: t }, .. }) => callback = Some(t as usize),
                    _ => return Err(expected("func")),
                },
                Arg::StackOrNull => match v {
                    Reg::Scalar(s) if s.value() == Some(0) => {}
                    Reg::Ptr(Ptr { kind: PtrKind::Stack { .. }, null_id: 0, .. }) => {}
                    _ => return Err(expected("fp")),
                },
                Arg::ConstStr => match v {
                    Reg::Ptr(p @ Ptr { kind: PtrKind::MapValue { map: m }, .. })
                        if self.map(m).rdonly_prog && p.var.is_const() =>
                    {
                        let info = self.map(m);
                        let off = i64::from(p.off) + p.var.var_off.value as i64;
                        if off < 0 || off >= i64::from(info.value_size) {
                            return Err(err(pc, format!("R{rn} invalid access to map value")));
                        }
                    }
                    _ => return Err(err(pc, format!("R{rn} does not point to a readonly map'"))),
                },
                Arg::ReleaseRingbufMem => match v {
                    Reg::Ptr(p)
                        if matches!(p.kind, PtrKind::Mem { .. }) && p.ref_id != 0 && p.null_id == 0 && p.off == 0 =>
                    {
                        released = Some(p.ref_id);
                    }
                    _ => return Err(err(pc, format!("R{rn} type={} expected=ringbuf_mem", v.name()))),
                },
                Arg::AllocSize => match v {
                    Reg::Scalar(s) if s.is_const() => {}
                    _ => return Err(err(pc, format!("R{rn} is not a known constant'"))),
                },
            }
        }
        let args = w.state.cur().regs;
        if let Some(id) = released {
            let before = w.state.refs.len();
            w.state.refs.retain(|(r, _)| *r != id);
            if w.state.refs.len() == before {
                return Err(err(pc, "R1 must be referenced when passed to release function".to_string()));
            }
            // Every copy of the record is gone.
            w.state.for_each_ptr(|q| {
                if q.ref_id == id {
                    *q = Ptr::new(PtrKind::Mem { size: 0, rdonly: true });
                }
            });
            for fr in &mut w.state.frames {
                for r in fr.regs.iter_mut() {
                    if matches!(r, Reg::Ptr(Ptr { kind: PtrKind::Mem { size: 0, rdonly: true }, .. })) {
                        *r = Reg::NotInit;
                    }
                }
            }
        }
        if id == 12 {
            self.check_tail_call_stack(&w.state, pc)?;
        }
        if let Some(t) = callback {
            // Explore the callback as a path of its own (one iteration from this state); the
            // caller then continues with what the callback may have written forgotten.
            self.verify_callback(w, t, args[3])?;
        }
        // The call clobbers r1-r5; r0 is the result.
        for r in 1..=5 {
            w.state.cur_mut().regs[r] = Reg::NotInit;
        }
        // Helpers that may move or resize the packet make every packet pointer stale (the
        // kernel's bpf_helper_changes_pkt_data and clear_all_pkt_pointers).
        if matches!(id, 9 | 10 | 44 | 54 | 65) {
            let gone = if self.input.allow_ptr_leaks { Reg::Scalar(Scalar::UNKNOWN) } else { Reg::NotInit };
            let is_pkt = |r: &Reg| matches!(r, Reg::Ptr(p) if matches!(p.kind, PtrKind::Packet | PtrKind::PacketMeta | PtrKind::PacketEnd));
            for fr in &mut w.state.frames {
                for r in fr.regs.iter_mut().filter(|r| is_pkt(r)) {
                    *r = gone;
                }
                for sl in fr.stack.iter_mut().filter(|sl| sl.spilled.as_ref().is_some_and(is_pkt)) {
                    sl.spilled = Some(Reg::Scalar(Scalar::UNKNOWN));
                }
            }
        }
        let r0 = match proto.ret {
            Ret::Integer => Reg::Scalar(Scalar::UNKNOWN),
            Ret::Void => Reg::NotInit,
            Ret::MapValueOrNull => {
                let m = map.expect("a map argument");
                let info = self.map(m).clone();
                let nid = self.fresh_id();
                let kind = match info.map_type {
                    map_type::ARRAY_OF_MAPS | map_type::HASH_OF_MAPS => match info.inner {
                        Some(inner) => PtrKind::Map { map: inner as u32 },
                        None => return Err(err(pc, format!("map '{}' has no inner map template", info.name))),
                    },
                    _ => PtrKind::MapValue { map: m },
                };
                let mut p = Ptr::new(kind);
                // A lookup in an array with a known index inside it cannot fail (the kernel
                // knows this too for constant keys); keep the NULL check required anyway.
                p.null_id = nid;
                Reg::Ptr(p)
            }
            Ret::RingbufMemOrNull => {
                let size = args[2].scalar().and_then(Scalar::value).unwrap_or(0) as u32;
                let rid = self.fresh_id();
                let mut p = Ptr::new(PtrKind::Mem { size, rdonly: false });
                p.null_id = rid;
                p.ref_id = rid;
                w.state.refs.push((rid, pc as u32));
                Reg::Ptr(p)
            }
        };
        w.state.cur_mut().regs[0] = r0;
        w.pc = pc + 1;
        Ok(Flow::Continue)
    }

    fn verify_callback(&mut self, w: &mut Work, target: usize, ctx: Reg) -> Res<()> {
        let pc = w.pc;
        if w.state.frames.len() >= MAX_CALL_FRAMES {
            return Err(err(pc, format!("the call stack of {} frames is too deep !", w.state.frames.len() + 1)));
        }
        let mut st = w.state.clone();
        let frameno = st.frames.len() as u8;
        let mut f = Frame::new(target as u32, Some(pc as u32), frameno);
        f.callback = true;
        f.regs[1] = Reg::Scalar(Scalar::of_size(4));
        f.regs[2] = ctx;
        st.frames.push(f);
        self.push(target, st, w.parent);
        // The callback's exit comes back to this call with the state after one more iteration
        // (see `exit`); this path is the loop having ended after the iterations so far.
        Ok(())
    }

    fn check_map_compat(&self, pc: usize, id: i32, proto: &Proto, m: u32) -> Res<()> {
        let info = self.map(m);
        let t = info.map_type;
        let ok = match t {
            map_type::INSN_ARRAY => false,
            map_type::PROG_ARRAY => id == 12,
            map_type::RINGBUF => matches!(id, 130..=134),
            map_type::QUEUE | map_type::STACK => matches!(id, 87..=89),
            _ => !matches!(id, 12 | 130..=134 | 87..=89),
        };
        if !ok {
            return Err(err(pc, format!("cannot pass map_type {t} into func {}#{id}", proto.name)));
        }
        Ok(())
    }

    /// Memory a helper reads (`read`) or writes through a pointer argument.
    fn check_helper_mem(&mut self, st: &mut State, pc: usize, rn: u8, p: &Ptr, size: u32, read: bool) -> Res<()> {
        if p.null_id != 0 {
            return Err(err(pc, format!("R{rn} type={} expected=fp", Reg::Ptr(*p).name())));
        }
        match p.kind {
            PtrKind::Stack { frame } => {
                let (lo, hi) = self.stack_range(pc, rn, p, 0, size)?;
                self.note_depth(st, frame, lo)?;
                let fr = &mut st.frames[frame as usize];
                if read {
                    for b in lo..hi {
                        let (slot, byte) = slot_of(b);
                        if fr.stack[slot].bytes[byte] == Byte::Invalid && !self.input.allow_uninit_stack {
                            return Err(err(
                                pc,
                                format!("invalid indirect read from stack R{rn} off {}+{} size {size}", p.off, b - lo),
                            ));
                        }
                    }
                } else {
                    write_stack(fr, lo, hi, size, false, Reg::Scalar(Scalar::UNKNOWN), false);
                }
                Ok(())
            }
            PtrKind::MapValue { map } => {
                let m = self.map(map).clone();
                if !read && m.rdonly_prog {
                    return Err(err(
                        pc,
                        format!("write into map forbidden, value_size={} off={} size={size}", m.value_size, p.off),
                    ));
                }
                if size == 0 {
                    return Ok(());
                }
                // A helper access is one access of `size` bytes.
                self.check_map_access(pc, rn, p, 0, size, &m)
            }
            PtrKind::Packet | PtrKind::PacketMeta => self.check_packet_access(pc, rn, p, 0, size),
            PtrKind::Mem { size: msize, rdonly } => {
                if !read && rdonly {
                    return Err(err(pc, format!("R{rn} cannot write into rdonly mem")));
                }
                self.check_mem_region(pc, rn, p, 0, size, msize, "mem")
            }
            // A context without a fixed layout (syscall programs): as the kernel, one byte access
            // at the last offset, which counts in `max_ctx_offset` (other contexts are refused).
            PtrKind::Ctx if self.input.ctx.any_access => {
                if size == 0 {
                    return Ok(());
                }
                let last = i16::try_from(size - 1)
                    .map_err(|_| err(pc, format!("invalid bpf_context access off={} size=1", size - 1)))?;
                self.ctx_access(pc, rn, p, last, 1, !read).map(|_| ())
            }
            _ => Err(err(pc, format!("R{rn} type={} expected=fp, pkt, pkt_meta, map_value, mem", p.kind.name()))),
        }
    }

    /// Tail calls from subprograms: the stack of every frame on the chain must fit 256 bytes
    /// together (kernel-spec §7).
    fn check_tail_call_stack(&self, st: &State, pc: usize) -> Res<()> {
        if st.frames.len() <= 1 {
            return Ok(());
        }
        let total: u32 = st.frames[..st.frames.len() - 1].iter().map(|f| f.depth.div_ceil(32) * 32).sum();
        if total > 256 {
            return Err(err(
                pc,
                format!("tail_calls are not allowed when call stack of previous frames is {total} bytes. Too large"),
            ));
        }
        Ok(())
    }
}

/// Widens every scalar (register or spilled) of `new` that differs from the same one in `old`
/// to unknown.
fn widen(old: &State, new: &mut State) {
    if old.frames.len() != new.frames.len() {
        return;
    }
    for (o, n) in old.frames.iter().zip(new.frames.iter_mut()) {
        for (ro, rn) in o.regs.iter().zip(n.regs.iter_mut()) {
            if let (Reg::Scalar(a), Reg::Scalar(b)) = (ro, &rn)
                && a != b
            {
                *rn = Reg::Scalar(Scalar::UNKNOWN);
            }
        }
        for (so, sn) in o.stack.iter().zip(n.stack.iter_mut()) {
            if let (Some(Reg::Scalar(a)), Some(Reg::Scalar(b))) = (so.spilled, sn.spilled)
                && a != b
            {
                sn.spilled = Some(Reg::Scalar(Scalar::UNKNOWN.truncate(u32::from(sn.spill_len))));
            }
        }
    }
}

/// Every register and spilled slot linked to `s` (same id) learns what a branch taught about it.
fn sync_linked(st: &mut State, s: &Scalar) {
    if s.id == 0 {
        return;
    }
    for fr in &mut st.frames {
        for r in fr.regs.iter_mut() {
            if matches!(r, Reg::Scalar(x) if x.id == s.id) {
                *r = Reg::Scalar(*s);
            }
        }
        for slot in fr.stack.iter_mut() {
            if let Some(Reg::Scalar(x)) = &mut slot.spilled
                && x.id == s.id
            {
                // A narrow spill holds the value only if it fits; it does (it was linked).
                *x = *s;
            }
        }
    }
}

/// Keeps the 64-bit knowledge of `orig` when a 32-bit comparison refined only the low half.
fn merge32(orig: &Scalar, refined: Scalar, bits32: bool) -> Scalar {
    if !bits32 {
        return Scalar { id: orig.id, ..refined };
    }
    let mut s = *orig;
    s.u32_min = refined.u32_min;
    s.u32_max = refined.u32_max;
    s.s32_min = refined.s32_min;
    s.s32_max = refined.s32_max;
    s.var_off = s.var_off.with_subreg(refined.var_off.subreg());
    s.synced()
}

/// Slot index and byte index of the stack byte at `off` (negative) from the frame pointer.
fn slot_of(off: i64) -> (usize, usize) {
    let pos = (STACK_SIZE as i64 + off) as usize; // 0 = r10 - 512
    let slot = SLOTS - 1 - pos / 8;
    (slot, pos % 8)
}

fn read_stack(fr: &mut Frame, pc: usize, lo: i64, hi: i64, size: u32, allow_uninit: bool) -> Res<Reg> {
    let (slot, byte) = slot_of(lo);
    let s = fr.stack[slot];
    // A fill of exactly what was spilled gives the register back; so does a narrower fill of
    // its low bytes when the value fits them.
    if let Some(r) = s.spilled
        && byte == usize::from(s.spill_at)
        && hi - lo == i64::from(size)
        && (size == u32::from(s.spill_len)
            || size < u32::from(s.spill_len) && matches!(r, Reg::Scalar(x) if x.umax < 1u64 << (size * 8)))
    {
        return Ok(r);
    }
    let mut all_zero = true;
    for b in lo..hi {
        let (sl, by) = slot_of(b);
        match fr.stack[sl].bytes[by] {
            Byte::Invalid if !allow_uninit => {
                return Err(err(pc, format!("invalid read from stack off {}+{} size {size}", lo, b - lo)));
            }
            Byte::Invalid => all_zero = false,
            Byte::Zero => {}
            Byte::Spill => {
                // Part of a spilled scalar that is a known zero reads as zero bytes.
                all_zero &= matches!(fr.stack[sl].spilled, Some(Reg::Scalar(x)) if x.value() == Some(0));
            }
            Byte::Misc => all_zero = false,
        }
    }
    if all_zero && hi - lo == i64::from(size) {
        return Ok(Reg::Scalar(Scalar::konst(0)));
    }
    // A narrower read inside a spilled known scalar.
    if let Some(Reg::Scalar(x)) = s.spilled
        && let Some(v) = x.value()
        && hi - lo == i64::from(size)
        && byte >= usize::from(s.spill_at)
        && byte as u32 + size <= u32::from(s.spill_at) + u32::from(s.spill_len)
    {
        let shift = (byte - usize::from(s.spill_at)) * 8;
        return Ok(Reg::Scalar(Scalar::konst(v >> shift).truncate(size)));
    }
    Ok(Reg::Scalar(Scalar::of_size(size)))
}

/// Forgets the register spilled in `s`: its bytes become plain data (zero for a known zero).
fn unspill(s: &mut Slot) {
    if let Some(r) = s.spilled.take() {
        let zero = matches!(r, Reg::Scalar(x) if x.value() == Some(0));
        for b in s.bytes.iter_mut() {
            if *b == Byte::Spill {
                *b = if zero { Byte::Zero } else { Byte::Misc };
            }
        }
        s.spill_at = 0;
        s.spill_len = 0;
    }
}

fn write_stack(fr: &mut Frame, lo: i64, hi: i64, size: u32, exact: bool, value: Reg, from_reg: bool) {
    let (slot, byte) = slot_of(lo);
    if exact && size == 8 && byte == 0 && hi - lo == 8 && (from_reg || matches!(value, Reg::Scalar(_))) {
        fr.stack[slot] = Slot { bytes: [Byte::Spill; 8], spilled: Some(value), spill_at: 0, spill_len: 8 };
        return;
    }
    // A narrower aligned store of a scalar register is tracked too (the kernel keeps the
    // register state of such spills).
    if exact
        && from_reg
        && size < 8
        && hi - lo == i64::from(size)
        && byte % size as usize == 0
        && let Reg::Scalar(x) = value
    {
        let s = &mut fr.stack[slot];
        unspill(s);
        for b in &mut s.bytes[byte..byte + size as usize] {
            *b = Byte::Spill;
        }
        // The value stays linked when it fits the slot bytes; otherwise only its low bytes are kept.
        let fits = x.umax < 1u64 << (size * 8);
        s.spilled = Some(Reg::Scalar(if fits { x } else { x.truncate(size) }));
        s.spill_at = byte as u8;
        s.spill_len = size as u8;
        return;
    }
    let zero = exact && matches!(value, Reg::Scalar(s) if s.value() == Some(0));
    for b in lo..hi {
        let (sl, by) = slot_of(b);
        let s = &mut fr.stack[sl];
        // A partial overwrite destroys the spilled register: the rest is plain data.
        unspill(s);
        s.bytes[by] = if !exact {
            // A variable-offset write: the byte may or may not have been written.
            if s.bytes[by] == Byte::Invalid { Byte::Invalid } else { Byte::Misc }
        } else if zero {
            Byte::Zero
        } else {
            Byte::Misc
        };
    }
}

pub(crate) enum Flow {
    Continue,
    End,
}

trait WithWhat {
    fn with_what(self, what: &str) -> Self;
}

impl WithWhat for VerifyError {
    fn with_what(self, _what: &str) -> Self {
        self
    }
}
