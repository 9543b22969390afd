//! Lowering BPF to x86-64.
//!
//! # Register and frame conventions
//!
//! BPF registers live in machine registers for the whole run, as in the kernel's JIT:
//! `r0` rax, `r1` rdi, `r2` rsi, `r3` rdx, `r4` rcx, `r5` r8 (the SysV argument registers, so
//! helper calls need no shuffling), `r6`..`r9` rbx, r13, r14, r15 (callee-saved, as BPF's
//! are), `r10` rbp. r12 holds the run's [`NativeState`]; r9, r10 and r11 are scratch.
//!
//! # The hidden register AX
//!
//! Rewritten (xlated) programs may use `BPF_REG_AX` ([`Reg::AX`], constant blinding's
//! scratch register). As in the kernel's x86 JIT it lives in r11, which is then no longer
//! scratch: a program that names AX is compiled in *AX mode*, where
//!
//! * r11 is zeroed at entry (the interpreter starts AX at 0);
//! * no lowering uses r11 as a temporary: the fixed temporaries are r9 and r10, and the two
//!   lowerings that need a third (division/modulo, which also frees rax and rdx, and the
//!   fetching `or`/`and`/`xor` atomics, a cmpxchg loop) borrow a BPF register that is
//!   neither operand (pushed before, popped after, within the instruction);
//! * every call into Rust (helpers, `callx`, tail calls, `LD_ABS`/`LD_IND`), which may
//!   clobber r11 under SysV, saves AX to [`NativeState::ax_save`] before and reloads it
//!   after, so AX survives calls exactly as in the interpreter (BPF-to-BPF calls and
//!   `bpf_loop` callbacks share it, as the interpreter's register file does).
//!
//! Programs that do not name AX compile as before, with r11 as a scratch register. The
//! context analysis (`ctx.rs`) tracks AX like the other registers.
//!
//! The BPF stack is the `Vm`'s own (8 frames of 512 bytes), not the machine stack: `rbp` moves
//! down 512 bytes per BPF-to-BPF call, checked against the frame limit. The machine stack holds
//! only return addresses, the callee-saved registers a function writes, its `may_goto` budget
//! and alignment padding. Each function zeroes the part of its BPF frame it can reach (all 512
//! bytes if `r10` escapes), like the interpreter, so nothing of an earlier run is visible.
//!
//! Tail calls reuse the current frame: the function undoes its prologue and jumps to the
//! target program's main function. Helpers run through the trampolines of
//! [`bpfkit_interp::native`]; after each, a non-zero `status` unwinds the whole run by
//! restoring the stack pointer saved at entry.
//!
//! Jumps are emitted short (rel8) where they reach: a first pass emits every jump long, later
//! passes shorten those whose previous distance fits, until no shortened jump overflows.

use crate::ctx::{self, CtxAccess};
use crate::x86::{Asm, alu, cc, reg::*, shift};
use crate::{CompileError, JitOptions};
use bpfkit_interp::native::NativeState;
use bpfkit_interp::{HelperClass, Program};
use bpfkit_isa::{AluOp, AtomicOp, CallTarget, Cond, Endian, Insn, LdImmSrc, Located, Operand, Reg, Size, Width};
use std::collections::HashMap;

/// BPF register → machine register; index 11 is AX (see the module doc).
const MAP: [u8; Reg::COUNT_XLATED] = [RAX, RDI, RSI, RDX, RCX, R8, RBX, R13, R14, R15, RBP, R11];
const STACK_FRAME: i32 = 512;
const MAX_LOOPS: i32 = 8 * 1024 * 1024;

fn x(r: Reg) -> u8 {
    MAP[r.index() as usize]
}

/// The lowering's output, before it is placed in executable memory.
#[derive(Clone, Debug)]
pub struct Compiled {
    /// The machine code.
    pub code: Vec<u8>,
    /// For each instruction slot (and one past the end), the offset of its first byte.
    pub insn_offsets: Vec<u32>,
    /// Offset of the main function (where tail calls jump).
    pub body_offset: usize,
    /// Static-branch sites: (slot, site offset, offset of the target the site jumps to when on).
    pub sites: Vec<(usize, usize, usize)>,
    pub patch_sites: crate::PatchSites,
    /// Offsets where each function's prologue starts, by entry slot.
    pub functions: Vec<(usize, usize)>,
}

#[derive(Clone, Copy, Debug)]
enum Tgt {
    Pc(usize),
    Func(usize),
    Label(usize),
}

struct Fixup {
    at: usize,
    short: bool,
    tgt: Tgt,
    /// The BPF jump this is, when its size was chosen by the pass.
    jump_pc: Option<usize>,
}

#[derive(Clone, Debug)]
struct Func {
    entry: usize,
    saved: Vec<u8>,
    budget: bool,
    pad: bool,
    depth: i32,
}

impl Func {
    /// Bytes between the saved registers and the stack pointer at an instruction boundary.
    fn extra(&self) -> i32 {
        8 * (i32::from(self.budget) + i32::from(self.pad))
    }
}

struct Pass<'a> {
    a: Asm,
    fix: Vec<Fixup>,
    labels: Vec<usize>,
    offsets: Vec<u32>,
    func_offset: HashMap<usize, usize>,
    short: &'a [bool],
    /// (slot, site offset, target slot, jumps now).
    sites: Vec<(usize, usize, usize, bool)>,
    patch_sites: crate::PatchSites,
    depth_stubs: Vec<(usize, usize)>,
    abort: usize,
    epilogue: usize,
    /// AX mode: the program names AX, which lives in r11 (see the module doc).
    ax: bool,
}

impl Pass<'_> {
    fn label(&mut self) -> usize {
        self.labels.push(usize::MAX);
        self.labels.len() - 1
    }
    fn bind(&mut self, l: usize) {
        self.labels[l] = self.a.len();
    }
    fn jcc_to(&mut self, c: u8, tgt: Tgt, short: bool, jump_pc: Option<usize>) {
        let at = if short { self.a.jcc8(c) } else { self.a.jcc32(c) };
        self.fix.push(Fixup { at, short, tgt, jump_pc });
    }
    fn jmp_to(&mut self, tgt: Tgt, short: bool, jump_pc: Option<usize>) {
        let at = if short { self.a.jmp8() } else { self.a.jmp32() };
        self.fix.push(Fixup { at, short, tgt, jump_pc });
    }
    fn check_status(&mut self) {
        self.a.alu_mi8(alu::CMP, R12, NativeState::OFFSETS.status, 0);
        let abort = self.abort;
        self.jcc_to(cc::NE, Tgt::Label(abort), false, None);
    }
    /// In AX mode, before a call into Rust: AX (r11) to `NativeState::ax_save`.
    fn save_ax(&mut self) {
        if self.ax {
            self.a.store(8, R12, NativeState::OFFSETS.ax_save, R11);
        }
    }
    /// In AX mode, after a call into Rust: AX back from `NativeState::ax_save`.
    fn restore_ax(&mut self) {
        if self.ax {
            self.a.load(8, R11, R12, NativeState::OFFSETS.ax_save);
        }
    }
    /// Stores the callee and the pc (+ helper id) into the state, through r10 (never AX).
    fn set_call_info(&mut self, ptr: u64, pc: usize, id: i32) {
        let o = NativeState::OFFSETS;
        self.a.mov_imm64(R10, ptr);
        self.a.store(8, R12, o.helper, R10);
        self.a.mov_imm64(R10, pc as u64 | (u64::from(id as u32) << 32));
        self.a.store(8, R12, o.pc, R10);
    }
    fn epilogue_no_ret(&mut self, f: &Func) {
        if f.extra() > 0 {
            self.a.alu_ri(true, alu::ADD, RSP, f.extra());
        }
        for &r in f.saved.iter().rev() {
            self.a.pop(r);
        }
    }
    /// `sub rbp, 512; cmp rbp, [r12 + limit]; jb <depth error for pc>`.
    fn enter_frame_check(&mut self, pc: usize) {
        self.a.alu_ri(true, alu::SUB, RBP, STACK_FRAME);
        self.a.cmp_rm(RBP, R12, NativeState::OFFSETS.stack_limit);
        let stub = self.label();
        self.depth_stubs.push((stub, pc));
        self.jcc_to(cc::B, Tgt::Label(stub), false, None);
    }
}

fn jump_target(pc: usize, off: i64, len: usize) -> Result<usize, CompileError> {
    let t = pc as i64 + 1 + off;
    if t < 0 || t as usize >= len {
        return Err(CompileError::Malformed { pc, reason: format!("jump out of range to {t}") });
    }
    Ok(t as usize)
}

/// Compiles `program` (already checked by [`Program::load`]).
pub fn compile(program: &Program, opts: &JitOptions) -> Result<Compiled, CompileError> {
    let slots = program.slots();
    // Strict, or admitting AX for a program loaded with `Program::load_xlated`.
    let insns = program.decode().map_err(|e| CompileError::Malformed { pc: 0, reason: e.to_string() })?;
    let len = slots.len();
    let ax_at = insns.iter().find(|l| l.insn.names_reg(Reg::AX)).map(|l| l.pc);
    let ctx_map = match &opts.ctx {
        Some(layout) => ctx::analyze(program, &insns, layout)?,
        None => HashMap::new(),
    };
    let ax = ax_at.is_some();
    let funcs = functions(&insns, len)?;
    // Targets of backward jumps start loops: they are aligned to 32 bytes, so that a short
    // loop body does not straddle a fetch block.
    let mut loop_heads = vec![false; len];
    for l in &insns {
        let off = match l.insn {
            Insn::Ja { off, .. } => i64::from(off),
            Insn::JmpCond { off, .. } => i64::from(off),
            Insn::MayGoto { off } => i64::from(off),
            _ => continue,
        };
        if off < 0 {
            let t = jump_target(l.pc, off, len)?;
            loop_heads[t] = true;
        }
    }
    // Inlined array lookups: `lddw r1, token` then `call 1`, the call not a jump target.
    let mut is_target = vec![false; len + 1];
    for l in &insns {
        let off = match l.insn {
            Insn::Ja { off, .. } | Insn::StaticBranch { off, .. } => i64::from(off),
            Insn::JmpCond { off, .. } => i64::from(off),
            Insn::MayGoto { off } => i64::from(off),
            _ => continue,
        };
        is_target[jump_target(l.pc, off, len)?] = true;
    }
    let mut inline = HashMap::new();
    for w in insns.windows(2) {
        if let (Insn::LdImm64 { dst: Reg::R1, src: LdImmSrc::Imm, imm, next_imm }, Insn::Call(CallTarget::Helper(id))) =
            (w[0].insn, w[1].insn)
        {
            let token = (u64::from(next_imm as u32) << 32) | u64::from(imm as u32);
            if id == crate::MAP_LOOKUP_ELEM
                && !is_target[w[1].pc]
                && program.helper(id).map(|h| h.class()) == Some(HelperClass::Func)
                && let Some(a) = opts.inline_arrays.iter().find(|a| a.token == token)
            {
                inline.insert(w[1].pc, *a);
            }
        }
    }
    let mut short = vec![false; len];
    let mut forced_long = vec![false; len];
    for _round in 0..64 {
        let pass = emit(program, &insns, len, &funcs, &ctx_map, &short, &loop_heads, &inline, ax)?;
        // Resolve fixups.
        let mut pass = pass;
        let mut overflow = false;
        let fixes = std::mem::take(&mut pass.fix);
        // Shortening is monotonic (a jump once short stays short unless it overflows, which
        // makes it long for good), so the passes converge.
        let mut next_short = short.clone();
        for f in &fixes {
            let target = match f.tgt {
                Tgt::Pc(pc) => pass.offsets[pc] as usize,
                Tgt::Func(pc) => pass.func_offset[&pc],
                Tgt::Label(l) => pass.labels[l],
            };
            if f.short {
                if !pass.a.patch8(f.at, target) {
                    match f.jump_pc {
                        Some(pc) => {
                            forced_long[pc] = true;
                            overflow = true;
                        }
                        None => {
                            return Err(CompileError::Internal { reason: "an internal short jump overflowed" });
                        }
                    }
                }
            } else {
                pass.a.patch32(f.at, target);
            }
            if let Some(pc) = f.jump_pc {
                // Shortening jumps only brings targets closer, except for patch-site padding
                // (at most 7 bytes each): keep a margin.
                let rel = target as i64 - (f.at as i64 + if f.short { 1 } else { 4 });
                if !forced_long[pc] && (-100..=100).contains(&rel) {
                    next_short[pc] = true;
                }
            }
        }
        // Done when no shortened jump overflowed and no further jump could be shortened.
        for (s, f) in next_short.iter_mut().zip(&forced_long) {
            *s &= !*f;
        }
        if !overflow && next_short == short {
            let mut sites = Vec::new();
            for &(pc, site, t, jumps) in &pass.sites {
                let target_offset = pass.offsets[t] as usize;
                if jumps {
                    let bytes = crate::patch::encode(site, crate::SiteState::Jump { target_offset })?;
                    pass.a.buf[site..site + 5].copy_from_slice(&bytes);
                }
                sites.push((pc, site, target_offset));
            }
            let mut functions: Vec<(usize, usize)> = pass.func_offset.iter().map(|(&pc, &o)| (pc, o)).collect();
            functions.sort_unstable();
            return Ok(Compiled {
                body_offset: pass.func_offset[&0],
                code: pass.a.buf,
                insn_offsets: pass.offsets,
                sites,
                patch_sites: pass.patch_sites,
                functions,
            });
        }
        short = next_short;
        for (s, f) in short.iter_mut().zip(&forced_long) {
            *s &= !*f;
        }
    }
    Err(CompileError::Internal { reason: "jump sizes did not converge" })
}

/// Finds the functions (main, BPF-to-BPF callees, callbacks) and what each needs.
fn functions(insns: &[Located], len: usize) -> Result<Vec<Func>, CompileError> {
    let mut entries = vec![0usize];
    for l in insns {
        match l.insn {
            Insn::Call(CallTarget::Local(rel)) => entries.push(jump_target(l.pc, rel.into(), len)?),
            Insn::LdImm64 { src: LdImmSrc::Func, imm, .. } => entries.push(jump_target(l.pc, imm.into(), len)?),
            _ => {}
        }
    }
    entries.sort_unstable();
    entries.dedup();
    let mut funcs = Vec::new();
    for (fi, &entry) in entries.iter().enumerate() {
        let end = entries.get(fi + 1).copied().unwrap_or(len);
        let body: Vec<&Located> = insns.iter().filter(|l| l.pc >= entry && l.pc < end).collect();
        let Some(last) = body.last() else {
            return Err(CompileError::Malformed { pc: entry, reason: "empty function".into() });
        };
        if !matches!(last.insn, Insn::Exit | Insn::Ja { .. } | Insn::GotoX { .. }) {
            return Err(CompileError::Malformed {
                pc: last.pc,
                reason: "last insn is not an exit or jmp (control would fall into the next function)".into(),
            });
        }
        let mut written = [false; Reg::COUNT_XLATED];
        let mut calls = false;
        let mut budget = false;
        let mut escapes = false;
        let mut depth = 0i32;
        for l in &body {
            // Jumps must stay inside the function.
            let tgt = match l.insn {
                Insn::Ja { off, .. } | Insn::StaticBranch { off, .. } => Some(jump_target(l.pc, off.into(), len)?),
                Insn::JmpCond { off, .. } | Insn::MayGoto { off } => Some(jump_target(l.pc, off.into(), len)?),
                _ => None,
            };
            if let Some(t) = tgt
                && (t < entry || t >= end)
            {
                return Err(CompileError::Malformed {
                    pc: l.pc,
                    reason: format!("jump to {t} leaves the function starting at {entry}"),
                });
            }
            match l.insn {
                Insn::Call(_) | Insn::CallX { .. } | Insn::LdAbs { .. } | Insn::LdInd { .. } => calls = true,
                Insn::MayGoto { .. } => budget = true,
                _ => {}
            }
            for r in writes(&l.insn) {
                written[r.index() as usize] = true;
            }
            // Stack use through r10.
            match l.insn {
                Insn::Load { src: Reg::R10, off, .. } => depth = depth.max(-i32::from(off)),
                Insn::Store { dst: Reg::R10, off, src, .. } => {
                    depth = depth.max(-i32::from(off));
                    if src == Operand::Reg(Reg::R10) {
                        escapes = true;
                    }
                }
                Insn::Atomic { dst: Reg::R10, off, .. } => depth = depth.max(-i32::from(off)),
                Insn::Atomic { src: Reg::R10, op: AtomicOp::LoadAcquire, off, .. } => {
                    depth = depth.max(-i32::from(off))
                }
                _ => {
                    if l.insn.names_reg(Reg::R10) {
                        escapes = true;
                    }
                }
            }
        }
        let depth = if escapes { STACK_FRAME } else { ((depth + 15) & !15).clamp(0, STACK_FRAME) };
        let saved: Vec<u8> = (6..=9).filter(|&r| written[r]).map(|r| MAP[r]).collect();
        let n = saved.len() + usize::from(budget);
        let pad = calls && n.is_multiple_of(2);
        funcs.push(Func { entry, saved, budget, pad, depth });
    }
    Ok(funcs)
}

/// Registers an instruction writes (for the callee-saved set).
fn writes(i: &Insn) -> Vec<Reg> {
    match *i {
        Insn::Alu { dst, .. } | Insn::Neg { dst, .. } | Insn::Endian { dst, .. } | Insn::LdImm64 { dst, .. } => {
            vec![dst]
        }
        Insn::Load { dst, .. } => vec![dst],
        Insn::Atomic { op, dst, src, .. } => match op {
            AtomicOp::LoadAcquire => vec![dst],
            AtomicOp::StoreRelease => vec![],
            AtomicOp::Cmpxchg => vec![Reg::R0],
            AtomicOp::Add { fetch } | AtomicOp::Or { fetch } | AtomicOp::And { fetch } | AtomicOp::Xor { fetch } => {
                if fetch {
                    vec![src]
                } else {
                    vec![]
                }
            }
            AtomicOp::Xchg => vec![src],
        },
        _ => vec![],
    }
}

fn cond_cc(c: Cond) -> u8 {
    match c {
        Cond::Eq => cc::E,
        Cond::Ne | Cond::Set => cc::NE,
        Cond::Gt => cc::A,
        Cond::Ge => cc::AE,
        Cond::Lt => cc::B,
        Cond::Le => cc::BE,
        Cond::Sgt => cc::G,
        Cond::Sge => cc::GE,
        Cond::Slt => cc::L,
        Cond::Sle => cc::LE,
    }
}

#[allow(clippy::too_many_arguments)]
fn emit<'a>(
    program: &Program,
    insns: &[Located],
    len: usize,
    funcs: &[Func],
    ctx_map: &HashMap<usize, CtxAccess>,
    short: &'a [bool],
    loop_heads: &[bool],
    inline: &HashMap<usize, crate::InlineArray>,
    ax: bool,
) -> Result<Pass<'a>, CompileError> {
    let o = NativeState::OFFSETS;
    let mut p = Pass {
        a: Asm::default(),
        fix: Vec::new(),
        labels: Vec::new(),
        offsets: vec![0; len + 1],
        func_offset: HashMap::new(),
        short,
        sites: Vec::new(),
        patch_sites: crate::PatchSites::new(),
        depth_stubs: Vec::new(),
        abort: 0,
        epilogue: 0,
        ax,
    };
    p.abort = p.label();
    p.epilogue = p.label();

    // Entry: save the SysV callee-saved registers, set up r12/rbp, load r1..r5, call main.
    for r in [RBP, RBX, R12, R13, R14, R15] {
        p.a.push(r);
    }
    p.a.alu_ri(true, alu::SUB, RSP, 8);
    p.a.mov_rr(true, R12, RSI);
    p.a.mov_rr(true, RBP, RDX);
    p.a.store(8, R12, o.saved_rsp, RSP);
    p.a.mov_rr(true, RAX, RDI);
    for (i, r) in [RDI, RSI, RDX, RCX, R8].into_iter().enumerate() {
        p.a.load(8, r, RAX, 8 * i as i32);
    }
    for r in [RAX, RBX, R13, R14, R15] {
        p.a.alu_rr(false, 0x31, r, r);
    }
    if ax {
        p.a.alu_rr(false, 0x31, R11, R11);
    }
    let at = p.a.call32();
    p.fix.push(Fixup { at, short: false, tgt: Tgt::Func(0), jump_pc: None });
    let epi = p.epilogue;
    p.bind(epi);
    p.a.alu_ri(true, alu::ADD, RSP, 8);
    for r in [R15, R14, R13, R12, RBX, RBP] {
        p.a.pop(r);
    }
    p.a.ret();
    let abort = p.abort;
    p.bind(abort);
    p.a.load(8, RSP, R12, o.saved_rsp);
    p.jmp_to(Tgt::Label(epi), false, None);

    let mut fi = 0;
    for l in insns {
        let pc = l.pc;
        while fi + 1 < funcs.len() && funcs[fi + 1].entry <= pc {
            fi += 1;
        }
        let f = &funcs[fi];
        if f.entry == pc {
            // Prologue.
            p.func_offset.insert(pc, p.a.len());
            for &r in &f.saved {
                p.a.push(r);
            }
            if f.budget {
                p.a.push_m(R12, o.may_goto_budget);
            }
            if f.pad {
                p.a.alu_ri(true, alu::SUB, RSP, 8);
            }
            if f.depth > 0 {
                p.a.zero_xmm0();
                let mut k = 16;
                while k <= f.depth {
                    p.a.store_xmm0(RBP, -k);
                    k += 16;
                }
            }
        }
        if loop_heads[pc] {
            p.a.align(32);
        }
        p.offsets[pc] = p.a.len() as u32;
        if l.insn.slots() == 2 {
            p.offsets[pc + 1] = p.a.len() as u32;
        }
        match inline.get(&pc) {
            Some(a) => lower_array_lookup(&mut p.a, a),
            None => lower_one(program, &mut p, l, f, ctx_map, len)?,
        }
    }
    p.offsets[len] = p.a.len() as u32;
    // Call-depth error stubs.
    for (stub, pc) in std::mem::take(&mut p.depth_stubs) {
        p.bind(stub);
        p.a.mov_imm64(R11, pc as u64);
        p.a.store(8, R12, o.pc, R11);
        p.a.store_imm(8, R12, o.status, bpfkit_interp::native::status::CALL_DEPTH as i32);
        p.jmp_to(Tgt::Label(abort), false, None);
    }
    Ok(p)
}

fn lower_one(
    program: &Program,
    p: &mut Pass<'_>,
    l: &Located,
    f: &Func,
    ctx_map: &HashMap<usize, CtxAccess>,
    len: usize,
) -> Result<(), CompileError> {
    let o = NativeState::OFFSETS;
    let pc = l.pc;
    let short = p.short[pc];
    match l.insn {
        Insn::Alu { width, op, dst, src } => lower_alu(&mut p.a, width == Width::W64, op, x(dst), src, p.ax),
        Insn::Neg { width, dst } => p.a.unary(width == Width::W64, 3, x(dst)),
        Insn::Endian { kind, bits, dst } => {
            let d = x(dst);
            match (kind, bits) {
                (Endian::ToLe, 16) => p.a.movzx_rr(d, d, 16),
                (Endian::ToLe, 32) => p.a.mov_rr(false, d, d),
                (Endian::ToLe, _) => {}
                (_, 16) => {
                    p.a.ror16_8(d);
                    p.a.movzx_rr(d, d, 16);
                }
                (_, 32) => p.a.bswap(false, d),
                _ => p.a.bswap(true, d),
            }
        }
        Insn::LdImm64 { dst, src: LdImmSrc::Imm, imm, next_imm } => {
            p.a.mov_imm64(x(dst), (u64::from(next_imm as u32) << 32) | u64::from(imm as u32));
        }
        Insn::LdImm64 { dst, src: LdImmSrc::Func, imm, .. } => {
            let t = jump_target(pc, imm.into(), len)?;
            let at = p.a.lea_rip(x(dst));
            p.fix.push(Fixup { at, short: false, tgt: Tgt::Func(t), jump_pc: None });
        }
        Insn::LdImm64 { src, .. } => {
            return Err(CompileError::Malformed {
                pc,
                reason: format!("unresolved lddw pseudo source {}", src.code()),
            });
        }
        Insn::LdAbs { size, imm } | Insn::LdInd { size, imm, .. } => {
            p.save_ax();
            p.a.mov_imm64(R10, pc as u64);
            p.a.store(8, R12, o.pc, R10);
            if let Insn::LdInd { src, .. } = l.insn {
                p.a.movsx_rr(true, RSI, x(src), 32);
                p.a.alu_ri(true, alu::ADD, RSI, imm);
            } else {
                p.a.mov_imm64(RSI, i64::from(imm) as u64);
            }
            p.a.mov_imm32(RDX, size.bytes() as u32);
            p.a.mov_rr(true, RDI, R12);
            p.a.call_m(R12, o.ld_packet_fn);
            p.restore_ax();
            p.check_status();
        }
        Insn::Load { size, signed, dst, src, off } => {
            let n = size.bytes() as u8;
            let (disp, n_load) = match ctx_map.get(&pc) {
                Some(a) if signed => (a.disp, n),
                Some(a) => (a.disp, a.size),
                None => (i32::from(off), n),
            };
            if signed && n < 8 {
                p.a.load_sx(n, x(dst), x(src), disp);
            } else {
                p.a.load(n_load, x(dst), x(src), disp);
            }
        }
        Insn::Store { size, dst, off, src } => {
            let (disp, n) = match ctx_map.get(&pc) {
                Some(a) => (a.disp, a.size),
                None => (i32::from(off), size.bytes() as u8),
            };
            match src {
                Operand::Reg(s) => p.a.store(n, x(dst), disp, x(s)),
                Operand::Imm(i) => p.a.store_imm(n, x(dst), disp, i),
            }
        }
        Insn::Atomic { size, op, dst, src, off } => lower_atomic(&mut p.a, size, op, x(dst), x(src), off.into(), p.ax),
        Insn::Ja { off, .. } => {
            let t = jump_target(pc, off.into(), len)?;
            if t != pc + 1 {
                p.jmp_to(Tgt::Pc(t), short, Some(pc));
            }
        }
        Insn::StaticBranch { inverse, off, .. } => {
            // Emitted in its key's current state (the interpreter's copy of it); the runtime
            // serialises flips with compilation, so the state cannot change meanwhile.
            let t = jump_target(pc, off.into(), len)?;
            let jumps = program.static_branch_jumps(pc).unwrap_or(inverse);
            let site = p.patch_sites.emit_site(&mut p.a.buf, crate::SiteState::Nop)?;
            p.sites.push((pc, site.offset(), t, jumps));
        }
        Insn::JmpCond { width, cond, dst, src, off } => {
            let t = jump_target(pc, off.into(), len)?;
            let w = width == Width::W64;
            let d = x(dst);
            match (cond, src) {
                (Cond::Set, Operand::Imm(i)) => p.a.test_ri(w, d, i),
                (Cond::Set, Operand::Reg(s)) => p.a.alu_rr(w, 0x85, d, x(s)),
                (Cond::Eq | Cond::Ne, Operand::Imm(0)) => p.a.alu_rr(w, 0x85, d, d),
                (_, Operand::Imm(i)) => p.a.alu_ri(w, alu::CMP, d, i),
                (_, Operand::Reg(s)) => p.a.alu_rr(w, 0x39, d, x(s)),
            }
            p.jcc_to(cond_cc(cond), Tgt::Pc(t), short, Some(pc));
        }
        Insn::Call(CallTarget::Local(rel)) => {
            let t = jump_target(pc, rel.into(), len)?;
            p.enter_frame_check(pc);
            let at = p.a.call32();
            p.fix.push(Fixup { at, short: false, tgt: Tgt::Func(t), jump_pc: None });
            p.a.alu_ri(true, alu::ADD, RBP, STACK_FRAME);
        }
        Insn::Call(CallTarget::Helper(id)) => {
            let helper =
                program.helper(id).ok_or(CompileError::Malformed { pc, reason: format!("unknown helper {id}") })?;
            let ptr = helper as *const _ as u64;
            match helper.class() {
                HelperClass::Func => {
                    p.save_ax();
                    p.set_call_info(ptr, pc, id);
                    p.a.mov_rr(true, R9, R12);
                    p.a.call_m(R12, o.helper_fn);
                    p.restore_ax();
                    p.check_status();
                }
                HelperClass::TailCall => {
                    p.save_ax();
                    p.set_call_info(ptr, pc, id);
                    p.a.push(RAX);
                    p.a.push(RDI);
                    p.a.mov_rr(true, RDI, R12);
                    p.a.call_m(R12, o.tail_call_fn);
                    p.a.mov_rr(true, R10, RAX);
                    p.a.pop(RDI);
                    p.a.pop(RAX);
                    p.restore_ax();
                    p.check_status();
                    p.a.alu_rr(true, 0x85, R10, R10);
                    let fall = p.label();
                    p.jcc_to(cc::E, Tgt::Label(fall), true, None);
                    p.epilogue_no_ret(f);
                    p.a.jmp_r(R10);
                    p.bind(fall);
                }
                HelperClass::Loop => lower_loop(p, pc),
            }
        }
        Insn::Call(CallTarget::Kfunc { btf_id, .. }) => {
            return Err(CompileError::Malformed { pc, reason: format!("unresolved kfunc call (btf id {btf_id})") });
        }
        Insn::CallX { reg } => {
            p.a.store(8, R12, o.callx_value, x(reg));
            p.save_ax();
            p.set_call_info(program as *const Program as u64, pc, 0);
            p.a.mov_rr(true, R9, R12);
            p.a.call_m(R12, o.callx_fn);
            p.restore_ax();
            p.check_status();
        }
        Insn::Exit => {
            p.epilogue_no_ret(f);
            p.a.ret();
        }
        // The register holds a native code address read from an instruction array of this
        // program (whose entries the runtime sets to this code's addresses); the verifier
        // proves it designates an instruction of the same function.
        Insn::GotoX { reg } => p.a.jmp_r(x(reg)),
        Insn::MayGoto { off } => {
            let t = jump_target(pc, off.into(), len)?;
            let slot = 8 * i32::from(f.pad);
            p.a.alu_mi8(alu::CMP, RSP, slot, 0);
            p.jcc_to(cc::E, Tgt::Pc(t), short, Some(pc));
            p.a.dec_m(RSP, slot);
        }
    }
    Ok(())
}

/// `r0 = bpf_map_lookup_elem(array, r2)` inline: `r0 = index < max ? base + index * stride : 0`
/// with the u32 index at `r2` (r1..r5 are dead after a call).
fn lower_array_lookup(a: &mut Asm, m: &crate::InlineArray) {
    a.load(4, RAX, RSI, 0);
    a.alu_ri(false, alu::CMP, RAX, m.max_entries as i32);
    let null = a.jcc8(cc::AE);
    if m.stride.is_power_of_two() {
        let n = m.stride.trailing_zeros() as u8;
        if n > 0 {
            a.shift_ri(true, shift::SHL, RAX, n);
        }
    } else {
        a.imul_rri(true, RAX, RAX, m.stride as i32);
    }
    a.mov_imm64(R10, m.base);
    a.alu_rr(true, 0x01, RAX, R10);
    let done = a.jmp8();
    let at = a.len();
    assert!(a.patch8(null, at), "short inline lookup");
    a.alu_rr(false, 0x31, RAX, RAX);
    let end = a.len();
    assert!(a.patch8(done, end), "short inline lookup");
}

/// `bpf_loop(nr, callback, ctx, flags)` inline: the callback is called natively, each time in
/// a new BPF frame, as the interpreter does.
fn lower_loop(p: &mut Pass<'_>, pc: usize) {
    let einval = p.label();
    let e2big = p.label();
    let zero = p.label();
    let end = p.label();
    let top = p.label();
    let done = p.label();
    p.a.alu_rr(true, 0x85, RCX, RCX);
    p.jcc_to(cc::NE, Tgt::Label(einval), false, None);
    p.a.alu_ri(true, alu::CMP, RDI, MAX_LOOPS);
    p.jcc_to(cc::A, Tgt::Label(e2big), false, None);
    p.a.alu_rr(true, 0x85, RDI, RDI);
    p.jcc_to(cc::E, Tgt::Label(zero), false, None);
    // [rsp] index, [rsp+8] ctx, [rsp+16] callback, [rsp+24] count: 4 words keep alignment.
    p.a.push(RDI);
    p.a.push(RSI);
    p.a.push(RDX);
    p.a.alu_rr(false, 0x31, R10, R10);
    p.a.push(R10);
    p.bind(top);
    p.a.load(8, RDI, RSP, 0);
    p.a.load(8, RSI, RSP, 8);
    p.enter_frame_check(pc);
    p.a.call_m(RSP, 16);
    p.a.alu_ri(true, alu::ADD, RBP, STACK_FRAME);
    p.a.inc_m(RSP, 0);
    p.a.alu_ri(true, alu::CMP, RAX, 1);
    p.jcc_to(cc::E, Tgt::Label(done), true, None);
    p.a.load(8, R10, RSP, 0);
    p.a.cmp_rm(R10, RSP, 24);
    p.jcc_to(cc::B, Tgt::Label(top), false, None);
    p.bind(done);
    p.a.load(8, RAX, RSP, 0);
    p.a.alu_ri(true, alu::ADD, RSP, 32);
    p.jmp_to(Tgt::Label(end), false, None);
    p.bind(einval);
    p.a.mov_imm64(RAX, (-22i64) as u64);
    p.jmp_to(Tgt::Label(end), false, None);
    p.bind(e2big);
    p.a.mov_imm64(RAX, (-7i64) as u64);
    p.jmp_to(Tgt::Label(end), false, None);
    p.bind(zero);
    p.a.alu_rr(false, 0x31, RAX, RAX);
    p.bind(end);
}

/// `ax`: AX mode (r11 holds AX and must survive; see the module doc).
fn lower_alu(a: &mut Asm, w: bool, op: AluOp, d: u8, src: Operand, ax: bool) {
    let two = |a: &mut Asm, opc: u8, ext: u8| match src {
        Operand::Reg(s) => a.alu_rr(w, opc, d, x(s)),
        Operand::Imm(i) => a.alu_ri(w, ext, d, i),
    };
    match op {
        AluOp::Add => two(a, 0x01, alu::ADD),
        AluOp::Sub => two(a, 0x29, alu::SUB),
        AluOp::Or => two(a, 0x09, alu::OR),
        AluOp::And => two(a, 0x21, alu::AND),
        AluOp::Xor => two(a, 0x31, alu::XOR),
        AluOp::Mov => match src {
            Operand::Reg(s) => {
                if x(s) != d || !w {
                    a.mov_rr(w, d, x(s));
                }
            }
            Operand::Imm(i) => {
                if w {
                    a.mov_imm64(d, i64::from(i) as u64);
                } else if i == 0 {
                    a.alu_rr(false, 0x31, d, d);
                } else {
                    a.mov_imm32(d, i as u32);
                }
            }
        },
        AluOp::Mul => match src {
            Operand::Reg(s) => a.imul_rr(w, d, x(s)),
            // Strength reduction: x*3, x*5, x*9 are one lea; powers of two a shift.
            Operand::Imm(m @ (3 | 5 | 9)) => a.lea_sib(w, d, d, d, (m - 1) as u8),
            Operand::Imm(m) if m > 0 && (m as u32).is_power_of_two() => {
                let n = m.trailing_zeros() as u8;
                if n > 0 {
                    a.shift_ri(w, shift::SHL, d, n);
                } else if !w {
                    a.mov_rr(false, d, d);
                }
            }
            Operand::Imm(i) => a.imul_rri(w, d, d, i),
        },
        AluOp::Lsh | AluOp::Rsh | AluOp::Arsh => {
            let ext = match op {
                AluOp::Lsh => shift::SHL,
                AluOp::Rsh => shift::SHR,
                _ => shift::SAR,
            };
            match src {
                Operand::Imm(i) => {
                    let n = (i as u32 & if w { 63 } else { 31 }) as u8;
                    if n != 0 {
                        a.shift_ri(w, ext, d, n);
                    } else if !w {
                        a.mov_rr(false, d, d);
                    }
                }
                Operand::Reg(s) => {
                    let s = x(s);
                    if s == RCX {
                        a.shift_rcl(w, ext, d);
                    } else if d == RCX {
                        a.mov_rr(true, R10, RCX);
                        a.mov_rr(true, RCX, s);
                        a.shift_rcl(w, ext, R10);
                        a.mov_rr(true, RCX, R10);
                    } else {
                        a.mov_rr(true, R10, RCX);
                        a.mov_rr(true, RCX, s);
                        a.shift_rcl(w, ext, d);
                        a.mov_rr(true, RCX, R10);
                    }
                    if !w {
                        a.mov_rr(false, d, d);
                    }
                }
            }
        }
        AluOp::MovSx8 | AluOp::MovSx16 | AluOp::MovSx32 => {
            let bits = match (w, op) {
                (_, AluOp::MovSx8) => 8,
                (true, AluOp::MovSx16) | (false, _) => 16,
                _ => 32,
            };
            match src {
                Operand::Reg(s) => a.movsx_rr(w, d, x(s), bits),
                Operand::Imm(i) => {
                    let v = match bits {
                        8 => i as i8 as i64,
                        16 => i as i16 as i64,
                        _ => i64::from(i),
                    };
                    if w { a.mov_imm64(d, v as u64) } else { a.mov_imm32(d, v as u32) }
                }
            }
        }
        AluOp::Div | AluOp::Mod | AluOp::SDiv | AluOp::SMod => lower_divmod(a, w, op, d, src, ax),
    }
}

/// Division and modulo with BPF's rules: x / 0 = 0, x % 0 = x, INT_MIN / -1 = INT_MIN,
/// INT_MIN % -1 = 0 (x86 would fault on the last two and on zero).
/// In AX mode, a third temporary (r11 holds AX): the first of these BPF registers that is not
/// in `avoid`, saved by a push and restored by a pop around the instruction.
fn borrow(avoid: &[u8]) -> u8 {
    [RBX, R13, R14, R15, RSI, RDI, R8, RCX]
        .into_iter()
        .find(|r| !avoid.contains(r))
        .expect("at most two registers are avoided")
}

/// `ax`: AX mode (rdx is then saved in a borrowed register instead of r11).
fn lower_divmod(a: &mut Asm, w: bool, op: AluOp, d: u8, src: Operand, ax: bool) {
    let signed = matches!(op, AluOp::SDiv | AluOp::SMod);
    let is_mod = matches!(op, AluOp::Mod | AluOp::SMod);
    let zero_case = |a: &mut Asm| {
        if is_mod {
            if !w {
                a.mov_rr(false, d, d);
            }
        } else {
            a.alu_rr(false, 0x31, d, d);
        }
    };
    let minus_one_case = |a: &mut Asm| {
        if is_mod {
            a.alu_rr(false, 0x31, d, d);
        } else {
            a.unary(w, 3, d);
        }
    };
    match src {
        Operand::Imm(0) => return zero_case(a),
        Operand::Imm(-1) if signed => return minus_one_case(a),
        _ => {}
    }
    // Where rdx is kept while the division uses it.
    let save_rdx = if ax {
        let avoid = match src {
            Operand::Reg(s) => [d, x(s)],
            Operand::Imm(_) => [d, d],
        };
        let b = borrow(&avoid);
        a.push(b);
        Some(b)
    } else {
        None
    };
    let rdx_tmp = save_rdx.unwrap_or(R11);
    match src {
        Operand::Imm(0) => unreachable!("handled above"),
        Operand::Imm(i) => {
            if w {
                a.mov_imm64(R9, i64::from(i) as u64);
            } else {
                a.mov_imm32(R9, i as u32);
            }
        }
        Operand::Reg(s) => a.mov_rr(w, R9, x(s)),
    }
    let mut to_zero = None;
    let mut to_m1 = None;
    if let Operand::Reg(_) = src {
        a.alu_rr(w, 0x85, R9, R9);
        to_zero = Some(a.jcc8(cc::E));
        if signed {
            a.alu_ri(w, alu::CMP, R9, -1);
            to_m1 = Some(a.jcc8(cc::E));
        }
    }
    if d != RAX {
        a.mov_rr(true, R10, RAX);
    }
    if d != RDX {
        a.mov_rr(true, rdx_tmp, RDX);
    }
    if d != RAX {
        a.mov_rr(w, RAX, d);
    }
    if signed {
        a.sign_extend_rax(w);
        a.unary(w, 7, R9);
    } else {
        a.alu_rr(false, 0x31, RDX, RDX);
        a.unary(w, 6, R9);
    }
    let result = if is_mod { RDX } else { RAX };
    if d != result {
        a.mov_rr(true, d, result);
    }
    if d != RAX {
        a.mov_rr(true, RAX, R10);
    }
    if d != RDX {
        a.mov_rr(true, RDX, rdx_tmp);
    }
    if let Some(z) = to_zero {
        let done = a.jmp8();
        let zero_at = a.len();
        assert!(a.patch8(z, zero_at), "short division stub");
        zero_case(a);
        let mut done2 = None;
        if let Some(m) = to_m1 {
            done2 = Some(a.jmp8());
            let m_at = a.len();
            assert!(a.patch8(m, m_at), "short division stub");
            minus_one_case(a);
        }
        let end = a.len();
        assert!(a.patch8(done, end), "short division stub");
        if let Some(d2) = done2 {
            assert!(a.patch8(d2, end), "short division stub");
        }
    }
    if let Some(b) = save_rdx {
        a.pop(b);
    }
}

/// `ax`: AX mode (the cmpxchg loop's address then goes in a borrowed register, not r11).
fn lower_atomic(a: &mut Asm, size: Size, op: AtomicOp, d: u8, s: u8, off: i32, ax: bool) {
    let w = size == Size::DW;
    match op {
        AtomicOp::LoadAcquire => a.load(size.bytes() as u8, d, s, off),
        AtomicOp::StoreRelease => a.store(size.bytes() as u8, d, off, s),
        AtomicOp::Add { fetch: false } => a.locked(w, &[0x01], d, off, s),
        AtomicOp::Or { fetch: false } => a.locked(w, &[0x09], d, off, s),
        AtomicOp::And { fetch: false } => a.locked(w, &[0x21], d, off, s),
        AtomicOp::Xor { fetch: false } => a.locked(w, &[0x31], d, off, s),
        AtomicOp::Add { fetch: true } => a.locked(w, &[0x0F, 0xC1], d, off, s),
        AtomicOp::Xchg => a.locked(w, &[0x87], d, off, s),
        AtomicOp::Cmpxchg => {
            a.locked(w, &[0x0F, 0xB1], d, off, s);
            if !w {
                a.mov_rr(false, RAX, RAX);
            }
        }
        AtomicOp::Or { fetch: true } | AtomicOp::And { fetch: true } | AtomicOp::Xor { fetch: true } => {
            let opc = match op {
                AtomicOp::Or { .. } => 0x09,
                AtomicOp::And { .. } => 0x21,
                _ => 0x31,
            };
            let borrowed = ax.then(|| borrow(&[d, s]));
            let addr = borrowed.unwrap_or(R11);
            if let Some(b) = borrowed {
                a.push(b);
            }
            a.mov_rr(true, R10, RAX);
            a.lea(addr, d, off);
            let sv = if s == RAX { R10 } else { s };
            a.load(size.bytes() as u8, RAX, addr, 0);
            let top = a.len();
            a.mov_rr(true, R9, RAX);
            a.alu_rr(w, opc, R9, sv);
            a.locked(w, &[0x0F, 0xB1], addr, 0, R9);
            let back = a.jcc8(cc::NE);
            assert!(a.patch8(back, top), "short cmpxchg loop");
            if s != RAX {
                a.mov_rr(true, s, RAX);
                a.mov_rr(true, RAX, R10);
            }
            if let Some(b) = borrowed {
                a.pop(b);
            }
        }
    }
}
