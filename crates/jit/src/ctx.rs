//! Which memory accesses go to the program context, and where each goes in the context's
//! shadow buffer.
//!
//! The kernel rewrites context accesses after its verifier typed every register
//! (`convert_ctx_accesses`). Until bpfkit's verifier lands, the JIT finds them with a small
//! forward data-flow analysis of its own: each register and each 8-byte stack slot addressed
//! through `r10` is either not the context, the context plus a known constant, or unknown
//! (both on different paths, or context plus a variable). An access through a register that
//! is the context plus a constant is rewritten to the shadow field the interpreter's table
//! names ([`CtxField`]); an access through an unknown one is refused, so that the program
//! runs in the interpreter instead. Spills of the context through pointers other than `r10`
//! are not tracked (the verifier will replace this analysis).

use crate::CompileError;
use bpfkit_interp::{CtxField, HelperClass, Program};
use bpfkit_isa::{AluOp, CallTarget, Insn, LdImmSrc, Located, Operand, Reg, Size, Width};
use std::collections::{BTreeMap, HashMap};

/// The context a program gets in `r1`: the visible struct and its translation table.
#[derive(Clone, Copy, Debug)]
pub struct CtxLayout {
    pub fields: &'static [CtxField],
    pub visible_size: u32,
}

/// A context access rewritten to the shadow buffer: `[base + disp]`, `size` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CtxAccess {
    pub(crate) disp: i32,
    pub(crate) size: u8,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum V {
    /// No value reaches here yet.
    Bot,
    /// Not the context.
    Other,
    /// The context plus a constant.
    Ctx(i64),
    /// Unknown.
    Top,
}

fn join(a: V, b: V) -> V {
    match (a, b) {
        (V::Bot, x) | (x, V::Bot) => x,
        (x, y) if x == y => x,
        _ => V::Top,
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct State {
    regs: [V; 12],
    /// Stack slots (r10 offset) holding a context value.
    slots: BTreeMap<i16, V>,
}

impl State {
    fn join_from(&mut self, o: &State) -> bool {
        let before = self.clone();
        for i in 0..12 {
            self.regs[i] = join(self.regs[i], o.regs[i]);
        }
        let keys: Vec<i16> = self.slots.keys().chain(o.slots.keys()).copied().collect();
        for k in keys {
            let a = self.slots.get(&k).copied().unwrap_or(V::Other);
            let b = o.slots.get(&k).copied().unwrap_or(V::Other);
            self.slots.insert(k, join(a, b));
        }
        *self != before
    }
}

fn field_access(layout: &CtxLayout, off: i64, size: u64, write: bool) -> Option<(u32, u8)> {
    if off < 0 || off as u64 >= u64::from(layout.visible_size) || u64::from(layout.visible_size) - (off as u64) < size {
        return None;
    }
    let off = off as u64;
    layout.fields.iter().find_map(|f| {
        let start = u64::from(f.off);
        let fsize = u64::from(f.size);
        if off < start || off + size > start + fsize {
            return None;
        }
        let inner = off - start;
        let exact = inner == 0 && size == fsize;
        if write && exact {
            f.writable.then_some((f.shadow_off, f.shadow_size))
        } else if write {
            // Narrow writes inside a writable field stored as is (`cb[]`), aligned to their size.
            (f.writable && f.narrow && f.shadow_size == f.size && inner.is_multiple_of(size))
                .then_some((f.shadow_off + inner as u32, size as u8))
        } else if exact {
            Some((f.shadow_off, f.shadow_size))
        } else if f.narrow && f.shadow_size == f.size {
            Some((f.shadow_off + inner as u32, size as u8))
        } else {
            None
        }
    })
}

/// Finds every context access of `insns` and where it goes. Errors name the instruction.
pub(crate) fn analyze(
    program: &Program,
    insns: &[Located],
    layout: &CtxLayout,
) -> Result<HashMap<usize, CtxAccess>, CompileError> {
    let index: HashMap<usize, usize> = insns.iter().enumerate().map(|(i, l)| (l.pc, i)).collect();
    let mut states: Vec<Option<State>> = vec![None; insns.len()];
    let mut work: Vec<usize> = Vec::new();
    let entry = State {
        regs: {
            let mut r = [V::Bot; 12];
            r[1] = V::Ctx(0);
            r
        },
        slots: BTreeMap::new(),
    };
    let push = |states: &mut Vec<Option<State>>, work: &mut Vec<usize>, i: usize, s: &State| {
        let changed = match &mut states[i] {
            Some(old) => old.join_from(s),
            slot @ None => {
                *slot = Some(s.clone());
                true
            }
        };
        if changed {
            work.push(i);
        }
    };
    push(&mut states, &mut work, 0, &entry);
    let mut out = HashMap::new();
    // The ctx argument each bpf_loop passes to its callbacks (joined over all loops).
    let mut loop_ctx = V::Bot;
    let callbacks: Vec<usize> = insns
        .iter()
        .filter_map(|l| match l.insn {
            Insn::LdImm64 { src: LdImmSrc::Func, imm, .. } => {
                index.get(&((l.pc as i64 + 1 + i64::from(imm)) as usize)).copied()
            }
            _ => None,
        })
        .collect();

    while let Some(i) = work.pop() {
        let l = insns[i];
        let mut s = states[i].clone().expect("queued states exist");
        let pc = l.pc;
        let next = i + 1;
        let target = |off: i64| index.get(&((pc as i64 + 1 + off) as usize)).copied();
        let base_access =
            |s: &State, base: Reg, off: i16, size: Size, write: bool| -> Result<Option<CtxAccess>, CompileError> {
                match s.regs[base.index() as usize] {
                    V::Ctx(k) => {
                        let voff = k + i64::from(off);
                        let bytes = size.bytes() as u64;
                        let (shadow, n) = field_access(layout, voff, bytes, write).ok_or(CompileError::Context {
                            pc,
                            reason: format!("invalid bpf_context access off={voff} size={bytes}"),
                        })?;
                        Ok(Some(CtxAccess { disp: (i64::from(shadow) - k) as i32, size: n }))
                    }
                    V::Top => Err(CompileError::Context {
                        pc,
                        reason: format!("r{} may or may not point into the context here", base.index()),
                    }),
                    _ => Ok(None),
                }
            };
        let mut succ: Vec<usize> = Vec::new();
        let mut falls = true;
        match l.insn {
            Insn::Alu { width, op, dst, src } => {
                let d = dst.index() as usize;
                let sv = match src {
                    Operand::Reg(r) => s.regs[r.index() as usize],
                    Operand::Imm(_) => V::Other,
                };
                s.regs[d] = match (width, op, s.regs[d], src) {
                    (Width::W64, AluOp::Mov, _, _) => sv,
                    (Width::W64, AluOp::Add, V::Ctx(k), Operand::Imm(i)) => V::Ctx(k + i64::from(i)),
                    (Width::W64, AluOp::Sub, V::Ctx(k), Operand::Imm(i)) => V::Ctx(k - i64::from(i)),
                    (_, _, V::Ctx(_) | V::Top, _) => V::Top,
                    (Width::W64, AluOp::Add | AluOp::Sub, _, _) if matches!(sv, V::Ctx(_) | V::Top) => V::Top,
                    _ => V::Other,
                };
            }
            Insn::Neg { dst, .. } | Insn::Endian { dst, .. } => s.regs[dst.index() as usize] = V::Other,
            Insn::LdImm64 { dst, .. } => s.regs[dst.index() as usize] = V::Other,
            Insn::LdAbs { .. } | Insn::LdInd { .. } => {
                s.regs[0] = V::Other;
                for r in 1..=5 {
                    s.regs[r] = V::Bot;
                }
            }
            Insn::Load { size, dst, src, off, .. } => {
                if let Some(a) = base_access(&s, src, off, size, false)? {
                    out.insert(pc, a);
                }
                let filled = if src == Reg::R10 && size == Size::DW { s.slots.get(&off).copied() } else { None };
                s.regs[dst.index() as usize] = filled.unwrap_or(V::Other);
            }
            Insn::Store { size, dst, off, src } => {
                if let Some(a) = base_access(&s, dst, off, size, true)? {
                    out.insert(pc, a);
                }
                if dst == Reg::R10 {
                    let lo = i32::from(off);
                    let hi = lo + size.bytes() as i32;
                    s.slots.retain(|&k, _| i32::from(k) + 8 <= lo || i32::from(k) >= hi);
                    if let (Size::DW, Operand::Reg(r)) = (size, src) {
                        let v = s.regs[r.index() as usize];
                        if matches!(v, V::Ctx(_) | V::Top) {
                            s.slots.insert(off, v);
                        }
                    }
                }
            }
            Insn::Atomic { size, dst, src, off, op } => {
                let (base, off) = match op {
                    bpfkit_isa::AtomicOp::LoadAcquire => (src, off),
                    _ => (dst, off),
                };
                if base_access(&s, base, off, size, true)?.is_some()
                    || matches!(s.regs[base.index() as usize], V::Ctx(_))
                {
                    return Err(CompileError::Context { pc, reason: "atomic access to the context".into() });
                }
                match op {
                    bpfkit_isa::AtomicOp::LoadAcquire => s.regs[dst.index() as usize] = V::Other,
                    bpfkit_isa::AtomicOp::Cmpxchg => s.regs[0] = V::Other,
                    bpfkit_isa::AtomicOp::StoreRelease
                    | bpfkit_isa::AtomicOp::Add { fetch: false }
                    | bpfkit_isa::AtomicOp::Or { fetch: false }
                    | bpfkit_isa::AtomicOp::And { fetch: false }
                    | bpfkit_isa::AtomicOp::Xor { fetch: false } => {}
                    _ => s.regs[src.index() as usize] = V::Other,
                }
            }
            Insn::Ja { off, .. } => {
                falls = false;
                succ.extend(target(i64::from(off)));
            }
            Insn::StaticBranch { off, .. } => succ.extend(target(i64::from(off))),
            Insn::JmpCond { off, .. } => succ.extend(target(i64::from(off))),
            Insn::MayGoto { off } => succ.extend(target(i64::from(off))),
            Insn::Call(CallTarget::Local(rel)) => {
                if let Some(t) = target(i64::from(rel)) {
                    let mut callee = State { regs: [V::Bot; 12], slots: BTreeMap::new() };
                    callee.regs[1..6].copy_from_slice(&s.regs[1..6]);
                    callee.regs[10] = V::Other;
                    push(&mut states, &mut work, t, &callee);
                }
                s.regs[0] = V::Other;
                for r in 1..=5 {
                    s.regs[r] = V::Bot;
                }
            }
            Insn::Call(CallTarget::Helper(id)) => {
                if program.helper(id).map(|h| h.class()) == Some(HelperClass::Loop) {
                    let before = loop_ctx;
                    loop_ctx = join(loop_ctx, s.regs[3]);
                    if before != loop_ctx || before == V::Bot {
                        for &cb in &callbacks {
                            let mut callee = State { regs: [V::Bot; 12], slots: BTreeMap::new() };
                            callee.regs[1] = V::Other;
                            callee.regs[2] = loop_ctx;
                            callee.regs[10] = V::Other;
                            push(&mut states, &mut work, cb, &callee);
                        }
                    }
                }
                s.regs[0] = V::Other;
                for r in 1..=5 {
                    s.regs[r] = V::Bot;
                }
            }
            Insn::Call(CallTarget::Kfunc { .. }) | Insn::CallX { .. } => {
                s.regs[0] = V::Other;
                for r in 1..=5 {
                    s.regs[r] = V::Bot;
                }
            }
            Insn::Exit | Insn::GotoX { .. } => falls = false,
        }
        if falls && next < insns.len() {
            succ.push(next);
        }
        for t in succ {
            push(&mut states, &mut work, t, &s);
        }
    }
    Ok(out)
}
