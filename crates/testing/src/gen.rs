//! Random *valid* BPF programs, for differential testing of the interpreter against the JIT.
//!
//! The JIT checks nothing at run time, so it may only be given programs that a verifier would
//! accept: memory-safe, reading only initialised registers and stack, terminating. The
//! generator ([`valid_program`]) builds such programs by construction. Along every path it knows
//! the state of each register: undefined, a scalar, or a pointer at a known constant offset into
//! a known region.
//!
//! - *Regions*: the caller's buffer (`r1` at entry, [`GenConfig::mem_size`] bytes; `r2` holds
//!   its length), the function's own stack frame (the bytes below `r10` the function uses, all
//!   written by its prologue before anything reads them), and windows of a caller's stack that
//!   a subprogram receives as arguments.
//! - *Pointers* are only copied, moved by constants within their region, used as the base of
//!   loads, stores and atomics in bounds (aligned, except a few plain accesses to the buffer),
//!   and passed to subprograms. They are never stored, compared or computed with, so no address
//!   reaches a result: `r0` and the buffer come out the same wherever the memory and the stack
//!   are.
//! - *Definedness*: only defined registers are read. Where paths join, a register keeps its
//!   state only if it is the same on every incoming path. At the back edge of a loop every
//!   register is at least as defined as at the loop head: pointers in `r6`..`r9` are locked for
//!   the body, pointers in `r0`..`r5` are either forgotten before the loop or locked with calls
//!   banned from the body, and scalars that the body left undefined are rewritten. After a call
//!   `r1`..`r5` are undefined and `r0` is a scalar; callees see only their arguments and `r10`.
//! - *Termination*: forward jumps only, except the back edges of counted loops (a locked
//!   counter in `r6`..`r9`, 1 to 4 iterations) and of `may_goto` loops (bounded by the budget
//!   the program runs with, [`GenConfig::may_goto_budget`]). Calls go only to later subprograms
//!   (no recursion). An estimate of the executed instructions, loops multiplied out and callees
//!   included, is kept under [`GenConfig::max_executed`].
//! - Every function ends with `exit` and a scalar `r0`; main first folds every scalar register
//!   into `r0`, so that what the program computed is observed.
//!
//! [`interp_vs_jit`] runs a generated program in the interpreter and natively and compares `r0`
//! and the final buffer; [`smoke`] does that for pseudo-random inputs.

use crate::fuzz::{ALU_OPS, ATOMIC_OPS, CONDS, HELPER_ID, SIZES, atomic_size, endian_insn, hex, interesting_imm};
use arbitrary::{Result as ArbResult, Unstructured};
use bpfkit_interp::{Helpers, LoadError, Program, RunError, Vm};
use bpfkit_isa::{AluOp, AtomicOp, CallTarget, Cond, Insn, LdImmSrc, Operand, RawInsn, Reg, Size, Width};
use std::sync::Arc;

/// Bytes of the buffer generated programs get by default.
pub const MEM_SIZE: usize = 256;
/// The `may_goto` budget per frame generated programs run with by default.
pub const MAY_GOTO_BUDGET: u64 = 8;
/// Backward-jump limit of [`run_interp`]: a generated program never gets near it, reaching it
/// means the generator made a loop that does not end.
pub const BRANCH_LIMIT: u64 = 1 << 20;
/// Most subprograms: with main, at most 7 frames are live (the interpreter allows 8).
pub const MAX_SUBPROGS: usize = 6;

/// Executed instructions reserved for the end of each loop iteration (scalars rewritten, the
/// step, the back edge).
const LOOP_TAIL: u64 = 16;
/// Nesting depth of ifs and loops.
const MAX_DEPTH: u32 = 3;
/// The combined stack of a call chain (the kernel's `MAX_BPF_STACK`).
const STACK_LIMIT: i32 = 512;
/// Region numbers: the buffer and the function's own frame; windows of a caller's stack follow.
const MEM: u8 = 0;
const STACK: u8 = 1;

/// What [`valid_program_with`] generates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenConfig {
    /// Bytes of the buffer `r1` points to at entry (`r2` holds the same number). A multiple of
    /// 8, at most 16384. The buffer must be 8-byte aligned ([`AlignedMem`]).
    pub mem_size: usize,
    /// The `may_goto` budget of each frame the program will run with.
    pub may_goto_budget: u64,
    /// About how many instruction slots a program has at most.
    pub max_slots: usize,
    /// Most subprograms (capped at [`MAX_SUBPROGS`]).
    pub max_subprogs: usize,
    /// About how many instructions a run executes at most.
    pub max_executed: u64,
    /// Whether to call helper 5 of [`Helpers::conformance`] (it returns `r1`, and ends the
    /// program with `r0 = 0` when `r1` is 0).
    pub helpers: bool,
    /// Whether to use static branches (`goto_or_nop`, `nop_or_goto`).
    pub static_branches: bool,
    /// Bytes of the input the generator leaves unread (about), for the caller.
    pub reserve_input: usize,
}

impl Default for GenConfig {
    fn default() -> Self {
        GenConfig {
            mem_size: MEM_SIZE,
            may_goto_budget: MAY_GOTO_BUDGET,
            max_slots: 256,
            max_subprogs: 3,
            max_executed: 10_000,
            helpers: false,
            static_branches: true,
            reserve_input: 0,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Harness

/// Why [`run_interp`] has no result.
#[derive(Debug, thiserror::Error)]
pub enum InterpError {
    #[error("the interpreter refuses the program: {0}")]
    Load(#[from] LoadError),
    #[error("the run failed: {0}")]
    Run(#[from] RunError),
}

/// A buffer of `len` bytes at an 8-byte aligned address: the generator aligns accesses
/// relative to the start of the buffer, and atomics need aligned addresses.
#[derive(Clone, Debug)]
pub struct AlignedMem {
    buf: Vec<u8>,
    start: usize,
    len: usize,
}

impl AlignedMem {
    /// `len` bytes starting with `init` (cut to `len`), the rest a fixed pattern.
    pub fn new(init: &[u8], len: usize) -> AlignedMem {
        let mut buf = vec![0u8; len + 7];
        let start = buf.as_ptr().align_offset(8);
        assert!(start < 8, "align_offset of a heap pointer");
        let bytes = &mut buf[start..start + len];
        let n = init.len().min(len);
        bytes[..n].copy_from_slice(&init[..n]);
        for (i, b) in bytes.iter_mut().enumerate().skip(n) {
            *b = (i as u8).wrapping_mul(0x9d) ^ 0x5a;
        }
        AlignedMem { buf, start, len }
    }

    pub fn bytes(&self) -> &[u8] {
        &self.buf[self.start..self.start + self.len]
    }

    pub fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.start..self.start + self.len]
    }
}

/// Loads `slots` with [`Helpers::conformance`] and runs them on `mem` (`r1` = its address,
/// `r2` = its length) with a `may_goto` budget of `may_goto_budget` per frame and a
/// backward-jump limit of [`BRANCH_LIMIT`].
pub fn run_interp(slots: &[RawInsn], mem: &mut [u8], may_goto_budget: u64) -> Result<u64, InterpError> {
    let program = Arc::new(Program::load(slots, &Helpers::conformance())?);
    let mut vm = Vm::new(program);
    vm.set_may_goto_budget(may_goto_budget);
    vm.set_branch_limit(Some(BRANCH_LIMIT));
    Ok(vm.run_mem(mem)?)
}

/// Runs `slots` natively on `mem` (`r1` = its address, `r2` = its length) with a `may_goto`
/// budget of `budget` per frame; `None` where the JIT cannot run (the sandbox refuses code
/// memory). A program the JIT refuses to compile is a failure: every generated program is valid.
fn run_native(slots: &[RawInsn], mem: &mut [u8], budget: u64) -> Option<Result<u64, RunError>> {
    static AVAILABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if !*AVAILABLE.get_or_init(crate::jit_available) {
        return None;
    }
    let helpers = bpfkit_interp::Helpers::conformance();
    let program = std::sync::Arc::new(bpfkit_interp::Program::load(slots, &helpers).expect("generated programs load"));
    if let Err(e) = bpfkit_jit::jit(&program, &bpfkit_jit::JitOptions::default(), bpfkit_jit::Trust::CallerVouches) {
        panic!("the JIT refuses a generated program: {e}\n{}", describe(slots));
    }
    let mut vm = Vm::new(program);
    vm.set_may_goto_budget(budget);
    vm.set_backend(bpfkit_interp::Backend::Native);
    Some(vm.run_mem(mem))
}

/// Fuzz target `jit_diff`: a program from [`valid_program_with`] (leaving up to 64 bytes of
/// `data` for the buffer's contents), run in the interpreter, which must succeed, and natively;
/// `r0` and the final buffer must be the same.
pub fn interp_vs_jit(data: &[u8]) {
    let _ = compare(data, &GenConfig::default());
}

/// The body of [`interp_vs_jit`]; false when no program could be generated.
fn compare(data: &[u8], cfg: &GenConfig) -> bool {
    let cfg = GenConfig { reserve_input: (data.len() / 2).min(64), ..cfg.clone() };
    let mut u = Unstructured::new(data);
    let Ok(slots) = valid_program_with(&mut u, &cfg) else {
        return false;
    };
    let init = u.take_rest();
    let mut interp_mem = AlignedMem::new(init, cfg.mem_size);
    let expected = match run_interp(&slots, interp_mem.bytes_mut(), cfg.may_goto_budget) {
        Ok(v) => v,
        Err(e) => panic!(
            "a generated program fails in the interpreter: {e}\nmemory: {}\n{}",
            hex(AlignedMem::new(init, cfg.mem_size).bytes()),
            describe(&slots)
        ),
    };
    let mut native_mem = AlignedMem::new(init, cfg.mem_size);
    if let Some(native) = run_native(&slots, native_mem.bytes_mut(), cfg.may_goto_budget) {
        let same = matches!(native, Ok(v) if v == expected) && native_mem.bytes() == interp_mem.bytes();
        if !same {
            panic!(
                "the interpreter and the JIT disagree: interpreter Ok({expected:#x}), JIT {native:?}\n\
                 memory before:     {}\nafter interpreter: {}\nafter JIT:         {}\n{}",
                hex(AlignedMem::new(init, cfg.mem_size).bytes()),
                hex(interp_mem.bytes()),
                hex(native_mem.bytes()),
                describe(&slots)
            );
        }
    }
    true
}

/// Runs [`interp_vs_jit`] on `n` pseudo-random inputs made from `seed`; returns how many
/// produced a program (all of them, normally). Panics like [`interp_vs_jit`].
pub fn smoke(n: usize, seed: u64) -> usize {
    let cfg = GenConfig::default();
    let mut rng = XorShift::new(seed);
    (0..n)
        .filter(|_| {
            let len = 64 + (rng.next() % 4096) as usize;
            let data: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            compare(&data, &cfg)
        })
        .count()
}

/// `len` pseudo-random bytes made from `seed`: inputs for tests of generated programs.
pub fn seeded_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut rng = XorShift::new(seed);
    (0..len).map(|_| rng.next() as u8).collect()
}

/// The program as hex and as a listing, for failure messages.
pub fn describe(slots: &[RawInsn]) -> String {
    crate::fuzz::describe(slots)
}

/// xorshift64*.
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> XorShift {
        XorShift(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

// ---------------------------------------------------------------------------------------------
// The generator

/// A valid program generated with [`GenConfig::default`]; see the module documentation.
pub fn valid_program(u: &mut Unstructured<'_>) -> ArbResult<Vec<RawInsn>> {
    valid_program_with(u, &GenConfig::default())
}

/// A valid program: main, then the subprograms it calls (directly or not). Run it on an 8-byte
/// aligned buffer of [`GenConfig::mem_size`] bytes with a `may_goto` budget of
/// [`GenConfig::may_goto_budget`] ([`run_interp`] does).
///
/// # Panics
///
/// If `cfg.mem_size` is not a multiple of 8 or exceeds 16384.
pub fn valid_program_with(u: &mut Unstructured<'_>, cfg: &GenConfig) -> ArbResult<Vec<RawInsn>> {
    assert!(cfg.mem_size.is_multiple_of(8) && cfg.mem_size <= 1 << 14, "mem_size {}", cfg.mem_size);
    let subprogs = u.int_in_range(0..=cfg.max_subprogs.min(MAX_SUBPROGS))?;
    // Stack sizes: every frame of a chain together within the kernel's limit, counting each as
    // the kernel does (at least 1 byte, rounded up to 32).
    let charge = |size: i32| size.max(1).unsigned_abs().next_multiple_of(32) as i32;
    let mut stacks = vec![0i32; subprogs + 1];
    for s in &mut stacks[1..] {
        *s = *u.choose(&[0, 8, 16, 32, 64])?;
    }
    let room = STACK_LIMIT - stacks[1..].iter().map(|&s| charge(s)).sum::<i32>();
    let main_sizes: Vec<i32> = [0, 8, 16, 32, 64, 128, 256, 512].into_iter().filter(|&s| charge(s) <= room).collect();
    stacks[0] = *u.choose(&main_sizes)?;

    // Signatures and budgets first, so that main, generated first (it gets most of the input),
    // can call any subprogram, and subprogram i any later one. Each subprogram gets a quarter
    // of the previous one's budget.
    let mut sigs = vec![None];
    for (i, &stack) in stacks.iter().enumerate().skip(1) {
        let budget = (cfg.max_executed >> (2 * i)).max(16);
        // The prologue, the epilogue and the last item may go a little over the budget.
        let cost = budget + stack.unsigned_abs() as u64 / 8 + 32;
        sigs.push(Some(Sig { args: signature(u, cfg.mem_size)?, budget, cost }));
    }
    let mut g = Gen { u, cfg, sigs, labels: subprogs + 1, slots_left: 0 };
    let sub_slots = cfg.max_slots / 8;
    let mut funcs: Vec<Func> = Vec::with_capacity(subprogs + 1);
    for (i, &stack) in stacks.iter().enumerate() {
        let (args, budget) = match &g.sigs[i] {
            None => (vec![Arg::Mem { off: 0 }, Arg::Scalar], cfg.max_executed),
            Some(sig) => (sig.args.clone(), sig.budget),
        };
        g.slots_left = if i == 0 { cfg.max_slots.saturating_sub(sub_slots * subprogs) } else { sub_slots };
        funcs.push(g.function(i, &args, stack, budget)?);
    }

    // Only the subprograms that main reaches: the kernel refuses unreachable code.
    let mut reachable = vec![false; funcs.len()];
    let mut todo = vec![0];
    while let Some(i) = todo.pop() {
        if !std::mem::replace(&mut reachable[i], true) {
            todo.extend(&funcs[i].callees);
        }
    }
    let kept: Vec<&Func> = funcs.iter().filter(|f| reachable[f.index]).collect();
    Ok(assemble(&kept, g.labels))
}

/// The abstract value of a register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Val {
    Undef,
    Scalar,
    /// `off` bytes from the start of region `region` (within `0..=len`).
    Ptr {
        region: u8,
        off: i32,
    },
}

type Regs = [Val; Reg::COUNT];

/// The state where two paths join.
fn join(a: &Regs, b: &Regs) -> Regs {
    std::array::from_fn(|i| if a[i] == b[i] { a[i] } else { Val::Undef })
}

/// A subprogram argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Arg {
    Scalar,
    /// A pointer `off` bytes into the buffer.
    Mem {
        off: i32,
    },
    /// A pointer to `len` bytes of the caller's stack.
    Stack {
        len: i32,
    },
}

#[derive(Clone, Debug)]
struct Sig {
    args: Vec<Arg>,
    /// The budget of its body.
    budget: u64,
    /// Executed instructions, about, at most, for the caller's estimate.
    cost: u64,
}

/// Up to 5 arguments: scalars, pointers into the buffer, pointers to the caller's stack.
fn signature(u: &mut Unstructured<'_>, mem_size: usize) -> ArbResult<Vec<Arg>> {
    let n = u.int_in_range(0..=5)?;
    let mut args = Vec::with_capacity(n);
    for _ in 0..n {
        args.push(match u.int_in_range(0..=9)? {
            0..=5 => Arg::Scalar,
            6..=8 => Arg::Mem { off: 8 * u.int_in_range(0..=mem_size as i32 / 8)? },
            _ => Arg::Stack { len: *u.choose(&[8, 16, 32])? },
        });
    }
    Ok(args)
}

/// A control transfer whose target is a label.
#[derive(Clone, Copy, Debug)]
enum Jump {
    Ja {
        long: bool,
    },
    Cond {
        width: Width,
        cond: Cond,
        dst: Reg,
        src: Operand,
    },
    MayGoto,
    Static {
        long: bool,
        inverse: bool,
    },
    /// A BPF-to-BPF call; function `i` starts at label `i`.
    Call,
}

#[derive(Clone, Copy, Debug)]
enum Asm {
    Insn(Insn),
    Jump(Jump, usize),
    Label(usize),
}

/// One function being generated.
struct Func {
    index: usize,
    regs: Regs,
    /// Registers that must not be written (bit n for rn): `r10`, loop counters, pointers kept
    /// through a loop.
    locked: u16,
    /// Calls are not allowed while positive (inside loops that locked a pointer in `r0`..`r5`).
    no_calls: u32,
    /// Length of each region.
    regions: Vec<i32>,
    code: Vec<Asm>,
    callees: Vec<usize>,
    /// Instructions executed so far (an upper bound), loops multiplied out.
    spent: u64,
    budget: u64,
    /// Product of the iteration bounds of the enclosing loops.
    mult: u64,
    depth: u32,
}

impl Func {
    fn is_locked(&self, r: usize) -> bool {
        self.locked & (1 << r) != 0
    }

    fn is_ptr(&self, r: usize) -> bool {
        matches!(self.regs[r], Val::Ptr { .. })
    }

    /// Whether `r` holds the only pointer into the buffer (overwriting it would cut the
    /// function off from the buffer).
    fn sole_mem_ptr(&self, r: usize) -> bool {
        let mem = |v: &Val| matches!(v, Val::Ptr { region: MEM, .. });
        mem(&self.regs[r]) && self.regs[..10].iter().filter(|v| mem(v)).count() == 1
    }

    fn can_afford(&self, cost: u64) -> bool {
        self.spent.saturating_add(self.mult.saturating_mul(cost)) <= self.budget
    }

    /// Whether code has been added since `mark` (labels aside).
    fn emitted_since(&self, mark: usize) -> bool {
        self.code[mark..].iter().any(|a| !matches!(a, Asm::Label(_)))
    }
}

/// The effect of `insn` on the register states.
fn apply(regs: &mut Regs, locked: u16, insn: &Insn) {
    let written: (usize, Val) = match *insn {
        Insn::Alu { width: Width::W64, op: AluOp::Mov, dst, src: Operand::Reg(s) } => {
            (dst.index().into(), regs[usize::from(s.index())])
        }
        Insn::Alu { width: Width::W64, op: op @ (AluOp::Add | AluOp::Sub), dst, src: Operand::Imm(imm) }
            if matches!(regs[usize::from(dst.index())], Val::Ptr { .. }) =>
        {
            let Val::Ptr { region, off } = regs[usize::from(dst.index())] else { unreachable!() };
            let off = if op == AluOp::Add { off + imm } else { off - imm };
            (dst.index().into(), Val::Ptr { region, off })
        }
        Insn::Alu { dst, .. }
        | Insn::Neg { dst, .. }
        | Insn::Endian { dst, .. }
        | Insn::LdImm64 { dst, .. }
        | Insn::Load { dst, .. }
        | Insn::Atomic { op: AtomicOp::LoadAcquire, dst, .. } => (dst.index().into(), Val::Scalar),
        Insn::Atomic { op: AtomicOp::Cmpxchg, .. } => (0, Val::Scalar),
        Insn::Atomic {
            op:
                AtomicOp::Add { fetch: true }
                | AtomicOp::Or { fetch: true }
                | AtomicOp::And { fetch: true }
                | AtomicOp::Xor { fetch: true }
                | AtomicOp::Xchg,
            src,
            ..
        } => (src.index().into(), Val::Scalar),
        Insn::Call(_) => {
            regs[1..6].fill(Val::Undef);
            (0, Val::Scalar)
        }
        _ => return,
    };
    let (r, v) = written;
    assert!(locked & (1 << r) == 0, "generator bug: {insn} writes locked r{r}");
    regs[r] = v;
}

fn reg(n: usize) -> Reg {
    Reg::new(n as u8).expect("register number")
}

struct Gen<'a, 'b> {
    u: &'a mut Unstructured<'b>,
    cfg: &'a GenConfig,
    /// Signatures of the subprograms (main is 0 and never called).
    sigs: Vec<Option<Sig>>,
    /// Labels handed out; `0..=subprograms` are the functions' starts.
    labels: usize,
    slots_left: usize,
}

/// What to restore when generating a call's argument setup fails.
struct Checkpoint {
    code: usize,
    regs: Regs,
    spent: u64,
    slots_left: usize,
}

impl Gen<'_, '_> {
    fn label(&mut self) -> usize {
        self.labels += 1;
        self.labels - 1
    }

    fn emit(&mut self, f: &mut Func, insn: Insn) {
        self.slots_left = self.slots_left.saturating_sub(insn.slots());
        f.spent = f.spent.saturating_add(f.mult);
        apply(&mut f.regs, f.locked, &insn);
        f.code.push(Asm::Insn(insn));
    }

    fn emit_jump(&mut self, f: &mut Func, jump: Jump, label: usize) {
        self.slots_left = self.slots_left.saturating_sub(1);
        f.spent = f.spent.saturating_add(f.mult);
        if let Jump::Call = jump {
            apply(&mut f.regs, f.locked, &Insn::Call(CallTarget::Local(0)));
        }
        f.code.push(Asm::Jump(jump, label));
    }

    fn checkpoint(&self, f: &Func) -> Checkpoint {
        Checkpoint { code: f.code.len(), regs: f.regs, spent: f.spent, slots_left: self.slots_left }
    }

    fn rollback(&mut self, f: &mut Func, c: &Checkpoint) {
        f.code.truncate(c.code);
        f.regs = c.regs;
        f.spent = c.spent;
        self.slots_left = c.slots_left;
    }

    /// Function `index` (0: main), taking `args` in `r1`.., using `stack` bytes of stack.
    fn function(&mut self, index: usize, args: &[Arg], stack: i32, budget: u64) -> ArbResult<Func> {
        let mut regs = [Val::Undef; Reg::COUNT];
        regs[10] = Val::Ptr { region: STACK, off: stack };
        let mut regions = vec![self.cfg.mem_size as i32, stack];
        for (i, arg) in args.iter().enumerate() {
            regs[i + 1] = match *arg {
                Arg::Scalar => Val::Scalar,
                Arg::Mem { off } => Val::Ptr { region: MEM, off },
                Arg::Stack { len } => {
                    regions.push(len);
                    Val::Ptr { region: (regions.len() - 1) as u8, off: 0 }
                }
            };
        }
        let mut f = Func {
            index,
            regs,
            locked: 1 << 10,
            no_calls: 0,
            regions,
            code: vec![Asm::Label(index)],
            callees: Vec::new(),
            spent: 0,
            budget,
            mult: 1,
            depth: 0,
        };
        // Prologue: write every stack byte the function uses before anything can read it.
        for k in (8..=stack).step_by(8) {
            let v = if self.u.ratio(3, 4)? { 0 } else { interesting_imm(self.u)? };
            let off = i16::try_from(-k).expect("stack offset");
            self.emit(&mut f, Insn::Store { size: Size::DW, dst: Reg::R10, off, src: Operand::Imm(v) });
        }
        // Copies of pointer arguments in r6..r9, which calls preserve.
        for r in 1..=5 {
            if f.is_ptr(r)
                && !self.u.ratio(1, 8)?
                && let Some(d) = (6..=9).find(|&d| f.regs[d] == Val::Undef)
            {
                let copy = Insn::Alu { width: Width::W64, op: AluOp::Mov, dst: reg(d), src: Operand::Reg(reg(r)) };
                self.emit(&mut f, copy);
            }
        }
        self.block(&mut f, usize::MAX)?;
        self.epilogue(&mut f)?;
        Ok(f)
    }

    /// Sets `r0` if it is not a scalar (main: folds every scalar into it), then `exit`.
    fn epilogue(&mut self, f: &mut Func) -> ArbResult<()> {
        if f.regs[0] != Val::Scalar {
            let src = match self.scalar_src(f)? {
                Some(s) if self.u.arbitrary()? => Operand::Reg(s),
                _ => Operand::Imm(interesting_imm(self.u)?),
            };
            self.emit(f, Insn::Alu { width: Width::W64, op: AluOp::Mov, dst: Reg::R0, src });
        }
        for r in 1..=9 {
            if f.regs[r] == Val::Scalar && (f.index == 0 || self.u.arbitrary()?) {
                let op = if self.u.arbitrary()? { AluOp::Xor } else { AluOp::Add };
                self.emit(f, Insn::Alu { width: Width::W64, op, dst: Reg::R0, src: Operand::Reg(reg(r)) });
            }
        }
        self.emit(f, Insn::Exit);
        Ok(())
    }

    /// Up to `max_items` items, fewer when the input, the slots or the budget run out.
    fn block(&mut self, f: &mut Func, max_items: usize) -> ArbResult<()> {
        let n = self.u.int_in_range(1..=max_items.max(1))?;
        for _ in 0..n {
            if self.u.len() <= self.cfg.reserve_input || self.slots_left == 0 || !f.can_afford(16) {
                break;
            }
            self.item(f)?;
        }
        Ok(())
    }

    fn item(&mut self, f: &mut Func) -> ArbResult<()> {
        let nest = f.depth < MAX_DEPTH;
        match self.u.int_in_range(0..=99)? {
            0..=19 => self.alu(f, Width::W64),
            20..=30 => self.alu(f, Width::W32),
            31..=32 => self.neg(f),
            33..=35 => self.endian(f),
            36..=38 => self.lddw(f),
            39..=48 => self.load(f),
            49..=57 => self.store(f),
            58..=64 => self.atomic(f),
            65..=68 => self.pointer(f),
            69..=76 if nest => self.if_block(f),
            77..=79 if nest => self.if_else(f),
            80..=81 => self.cond_exit(f),
            82..=84 if nest => self.skip_block(f),
            85..=88 if nest => self.counted_loop(f),
            89..=91 if nest => self.may_goto_loop(f),
            92..=97 => self.call(f),
            98..=99 if self.cfg.helpers => self.helper_call(f),
            _ => self.alu(f, Width::W64),
        }
    }

    // -----------------------------------------------------------------------------------------
    // Registers

    /// A register that may be overwritten: not locked, not the only pointer into the buffer,
    /// mostly not a pointer at all.
    fn writable(&mut self, f: &Func) -> ArbResult<Option<Reg>> {
        let all: Vec<usize> = (0..10).filter(|&r| !f.is_locked(r) && !f.sole_mem_ptr(r)).collect();
        let plain: Vec<usize> = all.iter().copied().filter(|&r| !f.is_ptr(r)).collect();
        let pool = if !plain.is_empty() && (plain.len() == all.len() || !self.u.ratio(1, 8)?) { plain } else { all };
        Ok(if pool.is_empty() { None } else { Some(reg(*self.u.choose(&pool)?)) })
    }

    /// A scalar to read.
    fn scalar_src(&mut self, f: &Func) -> ArbResult<Option<Reg>> {
        let pool: Vec<usize> = (0..10).filter(|&r| f.regs[r] == Val::Scalar).collect();
        Ok(if pool.is_empty() { None } else { Some(reg(*self.u.choose(&pool)?)) })
    }

    /// A scalar to read and overwrite.
    fn scalar_dst(&mut self, f: &Func) -> ArbResult<Option<Reg>> {
        let pool: Vec<usize> = (0..10).filter(|&r| f.regs[r] == Val::Scalar && !f.is_locked(r)).collect();
        Ok(if pool.is_empty() { None } else { Some(reg(*self.u.choose(&pool)?)) })
    }

    /// A scalar to read, set to a constant first if there is none.
    fn ensure_scalar(&mut self, f: &mut Func) -> ArbResult<Option<Reg>> {
        if let Some(r) = self.scalar_src(f)? {
            return Ok(Some(r));
        }
        let Some(r) = self.writable(f)? else { return Ok(None) };
        let imm = interesting_imm(self.u)?;
        self.emit(f, Insn::Alu { width: Width::W64, op: AluOp::Mov, dst: r, src: Operand::Imm(imm) });
        Ok(Some(r))
    }

    fn width(&mut self) -> ArbResult<Width> {
        Ok(if self.u.arbitrary()? { Width::W64 } else { Width::W32 })
    }

    // -----------------------------------------------------------------------------------------
    // Straight-line items

    /// Any ALU operation; on a register that is not a scalar, a `mov` to it.
    fn alu(&mut self, f: &mut Func, width: Width) -> ArbResult<()> {
        let mut op = *self.u.choose(&ALU_OPS)?;
        if width == Width::W32 && op == AluOp::MovSx32 {
            op = AluOp::MovSx16;
        }
        let Some(dst) = self.writable(f)? else { return Ok(()) };
        let writes_only = matches!(op, AluOp::Mov | AluOp::MovSx8 | AluOp::MovSx16 | AluOp::MovSx32);
        if !writes_only && f.regs[usize::from(dst.index())] != Val::Scalar {
            op = AluOp::Mov;
        }
        let movsx = matches!(op, AluOp::MovSx8 | AluOp::MovSx16 | AluOp::MovSx32);
        let use_reg = movsx || self.u.arbitrary()?;
        let src = match self.scalar_src(f)? {
            Some(s) if use_reg => Operand::Reg(s),
            _ => {
                if movsx {
                    op = AluOp::Mov;
                }
                Operand::Imm(self.alu_imm(op, width)?)
            }
        };
        self.emit(f, Insn::Alu { width, op, dst, src });
        Ok(())
    }

    /// An immediate for `op`: shift amounts below the width, no zero divisor (the kernel
    /// refuses both), otherwise biased towards edge values.
    fn alu_imm(&mut self, op: AluOp, width: Width) -> ArbResult<i32> {
        let bits = if width == Width::W64 { 64 } else { 32 };
        Ok(match op {
            AluOp::Lsh | AluOp::Rsh | AluOp::Arsh => {
                if self.u.arbitrary()? {
                    *self.u.choose(&[0, 1, bits / 2 - 1, bits / 2, bits - 1])?
                } else {
                    self.u.int_in_range(0..=bits - 1)?
                }
            }
            AluOp::Div | AluOp::Mod | AluOp::SDiv | AluOp::SMod => match interesting_imm(self.u)? {
                0 => *self.u.choose(&[1, -1, i32::MIN, i32::MAX])?,
                v => v,
            },
            _ => interesting_imm(self.u)?,
        })
    }

    fn neg(&mut self, f: &mut Func) -> ArbResult<()> {
        let width = self.width()?;
        match self.scalar_dst(f)? {
            Some(dst) => self.emit(f, Insn::Neg { width, dst }),
            None => return self.alu(f, width),
        }
        Ok(())
    }

    fn endian(&mut self, f: &mut Func) -> ArbResult<()> {
        match self.scalar_dst(f)? {
            Some(dst) => {
                let insn = endian_insn(self.u, dst)?;
                self.emit(f, insn);
            }
            None => return self.alu(f, Width::W64),
        }
        Ok(())
    }

    fn lddw(&mut self, f: &mut Func) -> ArbResult<()> {
        let Some(dst) = self.writable(f)? else { return Ok(()) };
        let (imm, next_imm) = match self.u.int_in_range(0..=3)? {
            // 0, -1, i64::MIN, i64::MAX, u32::MAX, 1 << 32, 1 << 31, 1 << 63 | 1
            0 => *self.u.choose(&[
                (0, 0),
                (-1, -1),
                (0, i32::MIN),
                (-1, i32::MAX),
                (-1, 0),
                (0, 1),
                (i32::MIN, 0),
                (1, i32::MIN),
            ])?,
            1 => (interesting_imm(self.u)?, interesting_imm(self.u)?),
            _ => (self.u.arbitrary()?, self.u.arbitrary()?),
        };
        self.emit(f, Insn::LdImm64 { dst, src: LdImmSrc::Imm, imm, next_imm });
        Ok(())
    }

    /// A base register for an access of `size` bytes and the offset to use: in bounds of the
    /// base's region, aligned to `size` relative to the region's start unless `aligned` is
    /// false and the region is the buffer (then 1 in 8 is anywhere).
    fn access(&mut self, f: &Func, size: Size, aligned: bool) -> ArbResult<Option<(Reg, i16)>> {
        let sz = size.bytes() as i32;
        let bases: Vec<usize> = (0..=10)
            .filter(|&r| matches!(f.regs[r], Val::Ptr { region, .. } if f.regions[usize::from(region)] >= sz))
            .collect();
        if bases.is_empty() {
            return Ok(None);
        }
        let base = *self.u.choose(&bases)?;
        let Val::Ptr { region, off } = f.regs[base] else { unreachable!() };
        let len = f.regions[usize::from(region)];
        let at = if !aligned && region == MEM && self.u.ratio(1, 8)? {
            self.u.int_in_range(0..=len - sz)?
        } else {
            sz * self.u.int_in_range(0..=(len - sz) / sz)?
        };
        Ok(Some((reg(base), i16::try_from(at - off).expect("regions are small"))))
    }

    fn load(&mut self, f: &mut Func) -> ArbResult<()> {
        let size = *self.u.choose(&SIZES)?;
        let Some((src, off)) = self.access(f, size, false)? else { return self.alu(f, Width::W64) };
        let Some(dst) = self.writable(f)? else { return Ok(()) };
        let signed = size != Size::DW && self.u.ratio(1, 3)?;
        self.emit(f, Insn::Load { size, signed, dst, src, off });
        Ok(())
    }

    fn store(&mut self, f: &mut Func) -> ArbResult<()> {
        let size = *self.u.choose(&SIZES)?;
        let Some((dst, off)) = self.access(f, size, false)? else { return self.alu(f, Width::W64) };
        let src = match self.scalar_src(f)? {
            Some(s) if self.u.arbitrary()? => Operand::Reg(s),
            _ => Operand::Imm(interesting_imm(self.u)?),
        };
        self.emit(f, Insn::Store { size, dst, off, src });
        Ok(())
    }

    fn atomic(&mut self, f: &mut Func) -> ArbResult<()> {
        let op = *self.u.choose(&ATOMIC_OPS)?;
        let size = atomic_size(self.u, op)?;
        let Some((base, off)) = self.access(f, size, true)? else { return self.alu(f, Width::W64) };
        if op == AtomicOp::LoadAcquire {
            let Some(dst) = self.writable(f)? else { return Ok(()) };
            self.emit(f, Insn::Atomic { size, op, dst, src: base, off });
            return Ok(());
        }
        if op == AtomicOp::Cmpxchg && f.regs[0] != Val::Scalar {
            // r0 is the value compared with: make it a scalar.
            if base == Reg::R0 || f.is_locked(0) || f.sole_mem_ptr(0) {
                return Ok(());
            }
            let imm = interesting_imm(self.u)?;
            self.emit(f, Insn::Alu { width: Width::W64, op: AluOp::Mov, dst: Reg::R0, src: Operand::Imm(imm) });
        }
        let fetches = matches!(
            op,
            AtomicOp::Add { fetch: true }
                | AtomicOp::Or { fetch: true }
                | AtomicOp::And { fetch: true }
                | AtomicOp::Xor { fetch: true }
                | AtomicOp::Xchg
        );
        let src = if fetches { self.scalar_dst(f)? } else { self.scalar_src(f)? };
        let Some(src) = src else { return Ok(()) };
        self.emit(f, Insn::Atomic { size, op, dst: base, src, off });
        Ok(())
    }

    /// A pointer copied and moved within its region, or moved in place.
    fn pointer(&mut self, f: &mut Func) -> ArbResult<()> {
        let ptrs: Vec<usize> = (0..=10).filter(|&r| f.is_ptr(r)).collect();
        if ptrs.is_empty() {
            return self.alu(f, Width::W64);
        }
        let p = *self.u.choose(&ptrs)?;
        let Val::Ptr { region, off } = f.regs[p] else { unreachable!() };
        let len = f.regions[usize::from(region)];
        let dst = if !f.is_locked(p) && self.u.ratio(1, 3)? {
            reg(p)
        } else {
            match self.writable(f)? {
                Some(d) => d,
                None => return Ok(()),
            }
        };
        let target =
            if self.u.ratio(3, 4)? { 8 * self.u.int_in_range(0..=len / 8)? } else { self.u.int_in_range(0..=len)? };
        if usize::from(dst.index()) != p {
            self.emit(f, Insn::Alu { width: Width::W64, op: AluOp::Mov, dst, src: Operand::Reg(reg(p)) });
        }
        let delta = target - off;
        if delta != 0 || self.u.ratio(1, 8)? {
            let (op, imm) = if self.u.arbitrary()? { (AluOp::Add, delta) } else { (AluOp::Sub, -delta) };
            self.emit(f, Insn::Alu { width: Width::W64, op, dst, src: Operand::Imm(imm) });
        }
        Ok(())
    }

    // -----------------------------------------------------------------------------------------
    // Control flow

    /// A forward conditional jump on a scalar (setting one first if there is none).
    fn condition(&mut self, f: &mut Func) -> ArbResult<Option<Jump>> {
        let Some(dst) = self.ensure_scalar(f)? else { return Ok(None) };
        let width = self.width()?;
        let cond = *self.u.choose(&CONDS)?;
        let src = match self.scalar_src(f)? {
            Some(s) if self.u.arbitrary()? => Operand::Reg(s),
            _ => Operand::Imm(interesting_imm(self.u)?),
        };
        Ok(Some(Jump::Cond { width, cond, dst, src }))
    }

    /// A nested block, one level deeper.
    fn nested(&mut self, f: &mut Func, max_items: usize) -> ArbResult<()> {
        f.depth += 1;
        let r = self.block(f, max_items);
        f.depth -= 1;
        r
    }

    /// `if cond goto end; body; end:`
    fn if_block(&mut self, f: &mut Func) -> ArbResult<()> {
        let Some(jump) = self.condition(f)? else { return Ok(()) };
        let end = self.label();
        self.emit_jump(f, jump, end);
        let before = f.regs;
        self.nested(f, 6)?;
        f.regs = join(&before, &f.regs);
        f.code.push(Asm::Label(end));
        Ok(())
    }

    /// `if cond goto else; a; goto end; else: b; end:`
    fn if_else(&mut self, f: &mut Func) -> ArbResult<()> {
        let Some(jump) = self.condition(f)? else { return Ok(()) };
        let (other, end) = (self.label(), self.label());
        self.emit_jump(f, jump, other);
        let before = f.regs;
        self.nested(f, 5)?;
        let after_then = f.regs;
        let long = self.u.ratio(1, 4)?;
        self.emit_jump(f, Jump::Ja { long }, end);
        f.code.push(Asm::Label(other));
        f.regs = before;
        self.nested(f, 5)?;
        f.regs = join(&after_then, &f.regs);
        f.code.push(Asm::Label(end));
        Ok(())
    }

    /// `if cond goto skip; [r0 = ...]; exit; skip:`
    fn cond_exit(&mut self, f: &mut Func) -> ArbResult<()> {
        let Some(jump) = self.condition(f)? else { return Ok(()) };
        let skip = self.label();
        self.emit_jump(f, jump, skip);
        let before = f.regs;
        if f.regs[0] != Val::Scalar || self.u.arbitrary()? {
            let src = match self.scalar_src(f)? {
                Some(s) if self.u.arbitrary()? => Operand::Reg(s),
                _ => Operand::Imm(interesting_imm(self.u)?),
            };
            if f.is_locked(0) {
                f.regs = before;
                self.emit(f, Insn::Ja { long: false, off: 0 });
                f.code.push(Asm::Label(skip));
                return Ok(());
            }
            self.emit(f, Insn::Alu { width: Width::W64, op: AluOp::Mov, dst: Reg::R0, src });
        }
        self.emit(f, Insn::Exit);
        f.regs = before;
        f.code.push(Asm::Label(skip));
        Ok(())
    }

    /// `may_goto end` or a static branch over a block.
    fn skip_block(&mut self, f: &mut Func) -> ArbResult<()> {
        let jump = if self.cfg.static_branches && self.u.arbitrary()? {
            Jump::Static { long: self.u.arbitrary()?, inverse: self.u.arbitrary()? }
        } else {
            Jump::MayGoto
        };
        let end = self.label();
        self.emit_jump(f, jump, end);
        let before = f.regs;
        let mark = f.code.len();
        self.nested(f, 5)?;
        if !f.emitted_since(mark) {
            // A static branch needs a non-zero offset.
            self.emit(f, Insn::Ja { long: false, off: 0 });
        }
        f.regs = join(&before, &f.regs);
        f.code.push(Asm::Label(end));
        Ok(())
    }

    /// Prepares the registers for a loop body: pointers in r6..r9 are locked; those in r0..r5
    /// are either forgotten or locked with calls banned from the body. Returns what to restore
    /// after the loop (locks, call ban).
    fn enter_loop(&mut self, f: &mut Func) -> ArbResult<(u16, u32)> {
        let saved = (f.locked, f.no_calls);
        let keep_low = self.u.arbitrary()?;
        let mut banned = false;
        for r in 0..10 {
            if f.is_ptr(r) {
                if r >= 6 || keep_low {
                    f.locked |= 1 << r;
                    banned |= r < 6;
                } else {
                    f.regs[r] = Val::Undef;
                }
            }
        }
        if banned {
            f.no_calls += 1;
        }
        Ok(saved)
    }

    /// At the end of a loop body: every register that was a scalar at the head is one again.
    fn restore_scalars(&mut self, f: &mut Func, head: &Regs) -> ArbResult<()> {
        for (r, &was) in head.iter().enumerate().take(10) {
            if was == Val::Scalar && f.regs[r] != Val::Scalar {
                let imm = interesting_imm(self.u)?;
                self.emit(f, Insn::Alu { width: Width::W64, op: AluOp::Mov, dst: reg(r), src: Operand::Imm(imm) });
            }
        }
        Ok(())
    }

    /// A counted loop: `c = n; top: body; c -= 1; if c > 0 goto top` or counting up to `n`,
    /// with the counter (and a limit register, sometimes) in r6..r9, locked in the body.
    fn counted_loop(&mut self, f: &mut Func) -> ArbResult<()> {
        let n: i32 = self.u.int_in_range(1..=4)?;
        let free: Vec<usize> = (6..=9).filter(|&r| !f.is_locked(r) && !f.is_ptr(r)).collect();
        if free.is_empty() || !f.can_afford(n as u64 * (LOOP_TAIL + 8)) {
            return self.alu(f, Width::W64);
        }
        let c = *self.u.choose(&free)?;
        let up = self.u.arbitrary()?;
        let init_width = self.width()?;
        let init =
            Insn::Alu { width: init_width, op: AluOp::Mov, dst: reg(c), src: Operand::Imm(if up { 0 } else { n }) };
        self.emit(f, init);
        let limit = match free.iter().copied().find(|&r| r != c) {
            Some(l) if up && self.u.arbitrary()? => {
                self.emit(f, Insn::Alu { width: Width::W64, op: AluOp::Mov, dst: reg(l), src: Operand::Imm(n) });
                Some(l)
            }
            _ => None,
        };
        let saved = self.enter_loop(f)?;
        f.locked |= 1 << c;
        if let Some(l) = limit {
            f.locked |= 1 << l;
        }
        let top = self.label();
        f.code.push(Asm::Label(top));
        let head = f.regs;
        let (mult, budget) = (f.mult, f.budget);
        f.mult = f.mult.saturating_mul(n as u64);
        f.budget = f.budget.saturating_sub(f.mult.saturating_mul(LOOP_TAIL));
        self.nested(f, 8)?;
        f.budget = budget;
        self.restore_scalars(f, &head)?;

        // The step, then the back edge.
        let (step_width, dst) = (self.width()?, reg(c));
        let (op, imm) = match (up, self.u.arbitrary()?) {
            (true, true) | (false, false) => (if up { AluOp::Add } else { AluOp::Sub }, 1),
            _ => (if up { AluOp::Sub } else { AluOp::Add }, -1),
        };
        f.locked &= !(1 << c);
        self.emit(f, Insn::Alu { width: step_width, op, dst, src: Operand::Imm(imm) });
        f.locked |= 1 << c;
        let width = self.width()?;
        let (cond, src) = if up {
            match limit {
                Some(l) => (*self.u.choose(&[Cond::Lt, Cond::Ne, Cond::Slt])?, Operand::Reg(reg(l))),
                None => *self.u.choose(&[
                    (Cond::Lt, Operand::Imm(n)),
                    (Cond::Ne, Operand::Imm(n)),
                    (Cond::Slt, Operand::Imm(n)),
                    (Cond::Le, Operand::Imm(n - 1)),
                    (Cond::Sle, Operand::Imm(n - 1)),
                ])?,
            }
        } else {
            *self.u.choose(&[
                (Cond::Ne, Operand::Imm(0)),
                (Cond::Gt, Operand::Imm(0)),
                (Cond::Sgt, Operand::Imm(0)),
                (Cond::Ge, Operand::Imm(1)),
                (Cond::Sge, Operand::Imm(1)),
                (Cond::Set, Operand::Imm(7)),
            ])?
        };
        self.emit_jump(f, Jump::Cond { width, cond, dst, src }, top);
        f.mult = mult;
        (f.locked, f.no_calls) = saved;
        Ok(())
    }

    /// `top: may_goto end; body; goto top (or if cond goto top); end:`
    fn may_goto_loop(&mut self, f: &mut Func) -> ArbResult<()> {
        let iterations = self.cfg.may_goto_budget.saturating_add(1);
        if !f.can_afford(iterations.saturating_mul(LOOP_TAIL + 8)) {
            return self.alu(f, Width::W64);
        }
        let saved = self.enter_loop(f)?;
        let (top, end) = (self.label(), self.label());
        f.code.push(Asm::Label(top));
        let head = f.regs;
        let (mult, budget) = (f.mult, f.budget);
        f.mult = f.mult.saturating_mul(iterations);
        f.budget = f.budget.saturating_sub(f.mult.saturating_mul(LOOP_TAIL));
        self.emit_jump(f, Jump::MayGoto, end);
        self.nested(f, 8)?;
        f.budget = budget;
        self.restore_scalars(f, &head)?;
        let back = match self.u.int_in_range(0..=2)? {
            0 => None,
            _ => self.condition(f)?,
        };
        match back {
            Some(jump) => self.emit_jump(f, jump, top),
            None => {
                let long = self.u.ratio(1, 4)?;
                self.emit_jump(f, Jump::Ja { long }, top);
            }
        }
        f.mult = mult;
        f.code.push(Asm::Label(end));
        f.regs = join(&head, &f.regs);
        (f.locked, f.no_calls) = saved;
        Ok(())
    }

    /// A call of a later subprogram, its arguments set up first.
    fn call(&mut self, f: &mut Func) -> ArbResult<()> {
        let last = self.sigs.len() - 1;
        if f.no_calls > 0 || f.index >= last {
            return self.alu(f, Width::W64);
        }
        let callee = self.u.int_in_range(f.index + 1..=last)?;
        let sig = self.sigs[callee].clone().expect("subprograms have signatures");
        if !f.can_afford(sig.cost + 16) {
            return self.alu(f, Width::W64);
        }
        // Setting one argument may overwrite the source of another: try both orders.
        let start = self.checkpoint(f);
        let forward: Vec<usize> = (0..sig.args.len()).collect();
        let backward: Vec<usize> = forward.iter().rev().copied().collect();
        if !self.set_args(f, &sig.args, &forward)? {
            self.rollback(f, &start);
            if !self.set_args(f, &sig.args, &backward)? {
                self.rollback(f, &start);
                return Ok(());
            }
        }
        self.emit_jump(f, Jump::Call, callee);
        f.spent = f.spent.saturating_add(f.mult.saturating_mul(sig.cost));
        f.callees.push(callee);
        Ok(())
    }

    /// Sets `r1`.. to `args`, in `order`; false if that is not possible.
    fn set_args(&mut self, f: &mut Func, args: &[Arg], order: &[usize]) -> ArbResult<bool> {
        for &i in order {
            let r = i + 1;
            let dst = reg(r);
            assert!(!f.is_locked(r), "generator bug: argument register r{r} locked");
            match args[i] {
                Arg::Scalar => {
                    if f.regs[r] == Val::Scalar && self.u.ratio(3, 4)? {
                        continue;
                    }
                    let src = match self.scalar_src(f)? {
                        Some(s) if s != dst && self.u.arbitrary()? => Operand::Reg(s),
                        _ => Operand::Imm(interesting_imm(self.u)?),
                    };
                    self.emit(f, Insn::Alu { width: Width::W64, op: AluOp::Mov, dst, src });
                }
                Arg::Mem { off } => {
                    let mem: Vec<usize> =
                        (0..10).filter(|&p| matches!(f.regs[p], Val::Ptr { region: MEM, .. })).collect();
                    let p = if mem.contains(&r) {
                        r
                    } else if mem.is_empty() {
                        return Ok(false);
                    } else {
                        *self.u.choose(&mem)?
                    };
                    let Val::Ptr { off: at, .. } = f.regs[p] else { unreachable!() };
                    if p != r {
                        self.emit(f, Insn::Alu { width: Width::W64, op: AluOp::Mov, dst, src: Operand::Reg(reg(p)) });
                    }
                    if at != off {
                        self.emit(f, Insn::Alu { width: Width::W64, op: AluOp::Add, dst, src: Operand::Imm(off - at) });
                    }
                }
                Arg::Stack { len } => {
                    let size = f.regions[usize::from(STACK)];
                    if size < len {
                        return Ok(false);
                    }
                    let below = 8 * self.u.int_in_range(len / 8..=size / 8)?;
                    self.emit(f, Insn::Alu { width: Width::W64, op: AluOp::Mov, dst, src: Operand::Reg(Reg::R10) });
                    self.emit(f, Insn::Alu { width: Width::W64, op: AluOp::Add, dst, src: Operand::Imm(-below) });
                }
            }
        }
        Ok(true)
    }

    /// `call 5` of [`Helpers::conformance`] with a scalar `r1`.
    fn helper_call(&mut self, f: &mut Func) -> ArbResult<()> {
        if f.no_calls > 0 {
            return self.alu(f, Width::W64);
        }
        if f.regs[1] != Val::Scalar || self.u.arbitrary()? {
            let src = match self.scalar_src(f)? {
                Some(s) if s != Reg::R1 && self.u.arbitrary()? => Operand::Reg(s),
                _ => Operand::Imm(interesting_imm(self.u)?),
            };
            self.emit(f, Insn::Alu { width: Width::W64, op: AluOp::Mov, dst: Reg::R1, src });
        }
        self.emit(f, Insn::Call(CallTarget::Helper(HELPER_ID)));
        Ok(())
    }
}

/// Resolves the labels of `funcs` (laid out in that order) and encodes them.
fn assemble(funcs: &[&Func], labels: usize) -> Vec<RawInsn> {
    let mut at = vec![usize::MAX; labels];
    let mut pc = 0;
    for a in funcs.iter().flat_map(|f| &f.code) {
        match a {
            Asm::Insn(insn) => pc += insn.slots(),
            Asm::Jump(..) => pc += 1,
            Asm::Label(l) => at[*l] = pc,
        }
    }
    let mut out = Vec::with_capacity(pc);
    for a in funcs.iter().flat_map(|f| &f.code) {
        let insn = match *a {
            Asm::Insn(insn) => insn,
            Asm::Jump(jump, label) => {
                assert!(at[label] != usize::MAX, "generator bug: jump to a dropped function");
                let off = at[label] as i64 - out.len() as i64 - 1;
                let short = i16::try_from(off).expect("generated programs are short");
                match jump {
                    Jump::Ja { long } => Insn::Ja { long, off: short.into() },
                    Jump::Cond { width, cond, dst, src } => Insn::JmpCond { width, cond, dst, src, off: short },
                    Jump::MayGoto => Insn::MayGoto { off: short },
                    Jump::Static { long, .. } if off == 0 => Insn::Ja { long, off: 0 },
                    Jump::Static { long, inverse } => Insn::StaticBranch { long, inverse, off: short.into() },
                    Jump::Call => Insn::Call(CallTarget::Local(short.into())),
                }
            }
            Asm::Label(_) => continue,
        };
        insn.encode_into(&mut out);
    }
    out
}
