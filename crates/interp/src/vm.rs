//! The interpreter loop.
//!
//! Semantics are RFC 9669's, exactly: division by zero gives 0, modulo by zero leaves the
//! dividend (zero-extended for 32-bit), `INT_MIN / -1` is `INT_MIN` and `INT_MIN % -1` is 0,
//! shift amounts are masked to the operand width, 32-bit results are zero-extended, 64-bit
//! immediates are sign-extended. Each call frame has its own 512-byte stack and its own
//! `may_goto` budget of 8,388,608; at most 8 frames are live.

use crate::helpers::{HelperCtx, HelperError, HelperKind};
use crate::memory::{AccessError, HotRegions, MemMap, MemoryRegion, Region, RegionKind, zero_stack_frame};
use crate::native::{self, Backend, NativeRun};
use crate::program::{AtomicKind, Kind, Program};
use std::any::Any;
use std::sync::Arc;
use std::sync::atomic::Ordering::SeqCst;

#[cfg(not(target_endian = "little"))]
compile_error!("bpfkit-interp assumes a little-endian host (as BPF's `le` byte swaps are no-ops)");

/// Stack bytes per call frame (`MAX_BPF_STACK`).
pub const STACK_SIZE: usize = 512;
/// Maximum number of live call frames (`MAX_CALL_FRAMES`).
pub const MAX_CALL_FRAMES: usize = 8;
/// `may_goto` budget of one frame (`BPF_MAX_LOOPS`).
pub const MAY_GOTO_BUDGET: u64 = 8 * 1024 * 1024;

/// Why a run ended without a result.
#[derive(Debug, thiserror::Error)]
#[error("pc {pc}: {kind}")]
pub struct RunError {
    /// Slot index of the instruction that failed.
    pub pc: usize,
    pub kind: RunErrorKind,
}

/// What went wrong in a run.
#[derive(Debug, thiserror::Error)]
pub enum RunErrorKind {
    #[error(transparent)]
    Access(#[from] AccessError),
    #[error("call depth exceeds {max} frames")]
    CallDepth { max: usize },
    #[error("helper {name} (#{id}) failed: {source}")]
    Helper { id: i32, name: &'static str, source: HelperError },
    #[error("callx to {value:#x}: no helper has that number")]
    UnknownHelper { value: u64 },
    #[error("gotox to {value:#x}: not the address of an instruction of this program")]
    BadIndirectJump { value: u64 },
    #[error("fell off the end of the program")]
    FellOffEnd,
    #[error("LD_ABS/LD_IND without a packet region")]
    NoPacket,
    #[error("backward-jump limit of {limit} reached")]
    BranchLimit { limit: u64 },
    #[error("bpf_loop callback {value:#x} is not the start of a function of this program")]
    BadCallback { value: u64 },
    #[error("the program has no native code (it was not JIT-compiled)")]
    NoNativeCode,
    #[error("not supported: {what}")]
    Unsupported { what: &'static str },
    #[error("native code stopped with unknown status {status}")]
    NativeAbort { status: u64 },
}

/// A caller's state, saved by a BPF-to-BPF call (or a `bpf_loop` callback).
struct Frame {
    ret_pc: usize,
    saved: [u64; 4],
    budget: u64,
    /// The program to return to, when a tail call in a callee switched programs.
    prog: Option<Arc<Program>>,
    /// Set when this frame is a `bpf_loop` callback.
    looping: Option<LoopState>,
}

#[derive(Clone, Copy)]
struct LoopState {
    callback: usize,
    index: u64,
    count: u64,
    ctx: u64,
}

/// `BPF_MAX_LOOPS`: the largest `nr_loops` of `bpf_loop`, and the tail-call limit.
const MAX_LOOPS: u64 = 8 * 1024 * 1024;
/// `MAX_TAIL_CALL_CNT`.
pub const MAX_TAIL_CALLS: u32 = 33;
const E2BIG: u64 = (-7i64) as u64;
const EINVAL: u64 = (-22i64) as u64;

/// Per-thread execution state for one program: its stack, the regions of the current run,
/// and the call-frame stack. Nothing is allocated per run.
pub struct Vm {
    program: Arc<Program>,
    stack: Box<[u8]>,
    mem: MemMap,
    frames: Vec<Frame>,
    branch_limit: u64,
    may_goto_budget: u64,
    /// Regions that stay valid across runs (map storage), checked after the run's own.
    persistent: Vec<Region>,
    backend: Backend,
    /// Programs a native run entered by tail calls (kept alive until it ends).
    keep: Vec<Arc<Program>>,
    /// Native code's view of a run, reused (boxed: its address is given to the code).
    native_state: Box<native::NativeState>,
}

impl std::fmt::Debug for Vm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vm").field("program", &self.program).finish()
    }
}

// SAFETY: the raw pointers in `mem` are only set for the duration of one `run` (which borrows
// `self` mutably and every region for the call) and are cleared before it returns; at rest what
// remains is the stack region, which points into `self.stack`, a heap allocation owned by and
// moving with the `Vm`, and the persistent regions, whose callers promised (the safety contract
// of `add_persistent_region`) that they stay valid for the `Vm`'s lifetime and may be accessed
// from any thread.
#[allow(unsafe_code)]
unsafe impl Send for Vm {}

impl Vm {
    /// A VM for `program`. Share the program between threads with the `Arc`; give each thread
    /// its own `Vm`.
    pub fn new(program: Arc<Program>) -> Vm {
        Vm {
            program,
            stack: vec![0u8; STACK_SIZE * MAX_CALL_FRAMES].into_boxed_slice(),
            mem: MemMap::new(),
            frames: Vec::with_capacity(MAX_CALL_FRAMES),
            branch_limit: u64::MAX,
            may_goto_budget: MAY_GOTO_BUDGET,
            persistent: Vec::new(),
            backend: Backend::Interpreter,
            keep: Vec::with_capacity(MAX_TAIL_CALLS as usize),
            native_state: Box::new(native::NativeState::new(0)),
        }
    }

    /// The program this VM runs.
    pub fn program(&self) -> &Arc<Program> {
        &self.program
    }

    /// Chooses the engine: the interpreter (default) or the native code attached to the
    /// program. Native runs do not count backward jumps ([`Vm::set_branch_limit`]).
    pub fn set_backend(&mut self, backend: Backend) {
        self.backend = backend;
    }

    /// The engine runs use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Ends a run with an error after `limit` taken backward jumps (default: no limit). A
    /// verified program terminates on its own; this bounds unverified ones (fuzzing, `run`).
    pub fn set_branch_limit(&mut self, limit: Option<u64>) {
        self.branch_limit = limit.unwrap_or(u64::MAX);
    }

    /// Adds a region that every run of this VM may access, e.g. a map's value storage.
    ///
    /// # Safety
    ///
    /// `[ptr, ptr + len)` must stay allocated, and valid for reads (and for writes when
    /// `writable`), for as long as this `Vm` exists; other threads may access it concurrently
    /// only through atomics or in ways the embedder accepts as racy map semantics (the
    /// interpreter's plain loads and stores are not atomic, as BPF's are not).
    #[allow(unsafe_code)]
    pub unsafe fn add_persistent_region(&mut self, kind: RegionKind, ptr: *mut u8, len: usize, writable: bool) {
        self.persistent.push(Region {
            start: ptr as u64,
            len: len as u64,
            base: ptr,
            writable,
            kind,
            alloc_start: ptr as u64,
            alloc_len: len as u64,
            alloc_base: ptr,
        });
    }

    /// Sets the `may_goto` budget each frame starts with (default [`MAY_GOTO_BUDGET`], the
    /// kernel's). Lower values let tests and fuzzers reach the budget-exhausted path quickly.
    pub fn set_may_goto_budget(&mut self, budget: u64) {
        self.may_goto_budget = budget;
    }

    /// Runs with `mem` as the only region, `r1` = its address and `r2` = its length (the
    /// bpf_conformance convention).
    pub fn run_mem(&mut self, mem: &mut [u8]) -> Result<u64, RunError> {
        let len = mem.len() as u64;
        let region = MemoryRegion::writable(RegionKind::Memory, mem);
        let addr = region.addr();
        self.run(&[region], [addr, len, 0, 0, 0])
    }

    /// Runs the program with `regions` accessible and `args` in `r1`..`r5`; returns `r0`.
    pub fn run(&mut self, regions: &[MemoryRegion<'_>], args: [u64; 5]) -> Result<u64, RunError> {
        self.run_with_env(regions, args, &mut ())
    }

    /// Like [`Vm::run`], with `env` reachable by helpers ([`HelperCtx::env`]): the embedder's
    /// per-run state (maps, trace output, the packet's metadata...).
    ///
    /// At most one region may be a context ([`MemoryRegion::context`]).
    pub fn run_with_env(
        &mut self,
        regions: &[MemoryRegion<'_>],
        args: [u64; 5],
        env: &mut dyn Any,
    ) -> Result<u64, RunError> {
        self.mem.regions.clear();
        self.mem.ctx = None;
        for r in regions {
            match r.ctx() {
                Some(c) => self.mem.ctx = Some(c),
                None => self.mem.regions.push(r.to_region()),
            }
        }
        self.mem.regions.extend_from_slice(&self.persistent);
        self.frames.clear();
        let result = match self.backend {
            Backend::Interpreter => self.exec(args, env),
            Backend::Native => self.exec_native(args, env),
        };
        self.mem.regions.clear();
        self.mem.ctx = None;
        result
    }

    fn exec_native(&mut self, args: [u64; 5], env: &mut dyn Any) -> Result<u64, RunError> {
        let Vm { program, stack, mem, may_goto_budget, keep, native_state, .. } = self;
        let Some(code) = program.native() else {
            return Err(RunError { pc: 0, kind: RunErrorKind::NoNativeCode });
        };
        // Native code manages its frames itself: helpers may reach all of them.
        let base = stack.as_mut_ptr();
        let len = stack.len();
        mem.stack = Region {
            start: base as u64,
            len: len as u64,
            base,
            writable: true,
            kind: RegionKind::Stack,
            alloc_start: base as u64,
            alloc_len: len as u64,
            alloc_base: base,
        };
        let top = base as u64 + len as u64;
        native_state.stack_limit = top - ((MAX_CALL_FRAMES - 1) * STACK_SIZE) as u64;
        let budget = *may_goto_budget;
        let mut run = NativeRun { mem, env, error: None, tail_calls: 0, keep };
        let result = native::run(code, native_state, &mut run, args, top, budget);
        run.keep.clear();
        result
    }

    fn exec(&mut self, args: [u64; 5], env: &mut dyn Any) -> Result<u64, RunError> {
        let Vm { program, stack, mem, frames, branch_limit, may_goto_budget, .. } = self;
        let frame_budget = *may_goto_budget;
        let stack_base = stack.as_mut_ptr();
        let stack_len = stack.len();
        let stack_top = stack_base as u64 + stack_len as u64;
        // Entering frame `depth`: its 512 bytes are zeroed, so that nothing of an earlier run or
        // an earlier call is visible (the interpreter runs unverified programs too, which may
        // read the stack before writing it).
        let enter_frame = |depth: usize| {
            let lo = stack_len - (depth + 1) * STACK_SIZE;
            zero_stack_frame(stack_base, stack_len, lo, STACK_SIZE);
        };
        // The accessible stack is every live frame: [fp(depth) - 512, top).
        let set_stack = |mem: &mut MemMap, hot: &mut HotRegions, depth: usize| {
            let lo = stack_len - (depth + 1) * STACK_SIZE;
            mem.stack = Region {
                start: stack_base as u64 + lo as u64,
                len: ((depth + 1) * STACK_SIZE) as u64,
                base: stack_base.wrapping_add(lo),
                writable: true,
                kind: RegionKind::Stack,
                alloc_start: stack_base as u64,
                alloc_len: stack_len as u64,
                alloc_base: stack_base,
            };
            hot.stack = mem.stack;
        };
        let fp = |depth: usize| stack_top - (depth * STACK_SIZE) as u64;
        let mut hot = HotRegions { stack: Region::EMPTY, first: mem.regions.first().copied().unwrap_or(Region::EMPTY) };
        enter_frame(0);
        set_stack(mem, &mut hot, 0);

        // 256 entries so that a `u8` register index needs no bounds check. Index 11 is the
        // hidden register AX of xlated programs (`Program::load_xlated`): 0 at the start of a
        // run, never saved or cleared by calls, tail calls or callbacks.
        let mut reg = [0u64; 256];
        reg[1..6].copy_from_slice(&args);
        reg[10] = stack_top;
        let mut budget = frame_budget;
        let mut back_edges_left = *branch_limit;
        let mut tail_calls = 0u32;
        let mut pc: usize = 0;
        let mut cur: Arc<Program> = Arc::clone(program);

        loop {
            // Runs `cur` until it exits (return) or control moves to another program (break).
            let next: Arc<Program> = 'run: {
                let prog: &Program = &cur;
                let ops = &prog.ops[..];

                macro_rules! fail {
                    ($kind:expr) => {
                        return Err(RunError { pc: pc - 1, kind: $kind.into() })
                    };
                }
                macro_rules! mem {
                    ($e:expr) => {
                        match $e {
                            Ok(v) => v,
                            Err(e) => fail!(e),
                        }
                    };
                }
                macro_rules! jump {
                    ($target:expr) => {{
                        let t = $target as usize;
                        if t < pc {
                            back_edges_left -= 1;
                            if back_edges_left == 0 {
                                fail!(RunErrorKind::BranchLimit { limit: *branch_limit });
                            }
                        }
                        pc = t;
                    }};
                }
                macro_rules! cond {
                    ($c:expr, $op:expr) => {
                        if $c {
                            jump!($op.off)
                        }
                    };
                }

                loop {
                    let op = &ops[pc];
                    pc += 1;
                    let d = op.dst as usize;
                    let s = op.src as usize;
                    let imm = op.imm as u64;
                    let addr_s = || reg[s].wrapping_add(op.off as i64 as u64);
                    let addr_d = || reg[d].wrapping_add(op.off as i64 as u64);
                    match op.kind {
                        Kind::Add64Imm => reg[d] = reg[d].wrapping_add(imm),
                        Kind::Add64Reg => reg[d] = reg[d].wrapping_add(reg[s]),
                        Kind::Sub64Imm => reg[d] = reg[d].wrapping_sub(imm),
                        Kind::Sub64Reg => reg[d] = reg[d].wrapping_sub(reg[s]),
                        Kind::Mul64Imm => reg[d] = reg[d].wrapping_mul(imm),
                        Kind::Mul64Reg => reg[d] = reg[d].wrapping_mul(reg[s]),
                        Kind::Div64Imm => reg[d] = div64(reg[d], imm),
                        Kind::Div64Reg => reg[d] = div64(reg[d], reg[s]),
                        Kind::SDiv64Imm => reg[d] = sdiv64(reg[d], imm),
                        Kind::SDiv64Reg => reg[d] = sdiv64(reg[d], reg[s]),
                        Kind::Mod64Imm => reg[d] = mod64(reg[d], imm),
                        Kind::Mod64Reg => reg[d] = mod64(reg[d], reg[s]),
                        Kind::SMod64Imm => reg[d] = smod64(reg[d], imm),
                        Kind::SMod64Reg => reg[d] = smod64(reg[d], reg[s]),
                        Kind::Or64Imm => reg[d] |= imm,
                        Kind::Or64Reg => reg[d] |= reg[s],
                        Kind::And64Imm => reg[d] &= imm,
                        Kind::And64Reg => reg[d] &= reg[s],
                        Kind::Xor64Imm => reg[d] ^= imm,
                        Kind::Xor64Reg => reg[d] ^= reg[s],
                        Kind::Lsh64Imm => reg[d] <<= imm & 63,
                        Kind::Lsh64Reg => reg[d] <<= reg[s] & 63,
                        Kind::Rsh64Imm => reg[d] >>= imm & 63,
                        Kind::Rsh64Reg => reg[d] >>= reg[s] & 63,
                        Kind::Arsh64Imm => reg[d] = ((reg[d] as i64) >> (imm & 63)) as u64,
                        Kind::Arsh64Reg => reg[d] = ((reg[d] as i64) >> (reg[s] & 63)) as u64,
                        Kind::Mov64Imm => reg[d] = imm,
                        Kind::Mov64Reg => reg[d] = reg[s],
                        Kind::Neg64 => reg[d] = reg[d].wrapping_neg(),
                        Kind::MovSx8To64 => reg[d] = reg[s] as i8 as i64 as u64,
                        Kind::MovSx16To64 => reg[d] = reg[s] as i16 as i64 as u64,
                        Kind::MovSx32To64 => reg[d] = reg[s] as i32 as i64 as u64,
                        Kind::Lddw => {
                            reg[d] = imm;
                            pc += 1;
                        }

                        Kind::Add32Imm => reg[d] = u64::from((reg[d] as u32).wrapping_add(imm as u32)),
                        Kind::Add32Reg => reg[d] = u64::from((reg[d] as u32).wrapping_add(reg[s] as u32)),
                        Kind::Sub32Imm => reg[d] = u64::from((reg[d] as u32).wrapping_sub(imm as u32)),
                        Kind::Sub32Reg => reg[d] = u64::from((reg[d] as u32).wrapping_sub(reg[s] as u32)),
                        Kind::Mul32Imm => reg[d] = u64::from((reg[d] as u32).wrapping_mul(imm as u32)),
                        Kind::Mul32Reg => reg[d] = u64::from((reg[d] as u32).wrapping_mul(reg[s] as u32)),
                        Kind::Div32Imm => reg[d] = u64::from(div32(reg[d] as u32, imm as u32)),
                        Kind::Div32Reg => reg[d] = u64::from(div32(reg[d] as u32, reg[s] as u32)),
                        Kind::SDiv32Imm => reg[d] = u64::from(sdiv32(reg[d] as u32, imm as u32)),
                        Kind::SDiv32Reg => reg[d] = u64::from(sdiv32(reg[d] as u32, reg[s] as u32)),
                        Kind::Mod32Imm => reg[d] = u64::from(mod32(reg[d] as u32, imm as u32)),
                        Kind::Mod32Reg => reg[d] = u64::from(mod32(reg[d] as u32, reg[s] as u32)),
                        Kind::SMod32Imm => reg[d] = u64::from(smod32(reg[d] as u32, imm as u32)),
                        Kind::SMod32Reg => reg[d] = u64::from(smod32(reg[d] as u32, reg[s] as u32)),
                        Kind::Or32Imm => reg[d] = u64::from(reg[d] as u32 | imm as u32),
                        Kind::Or32Reg => reg[d] = u64::from(reg[d] as u32 | reg[s] as u32),
                        Kind::And32Imm => reg[d] = u64::from(reg[d] as u32 & imm as u32),
                        Kind::And32Reg => reg[d] = u64::from(reg[d] as u32 & reg[s] as u32),
                        Kind::Xor32Imm => reg[d] = u64::from(reg[d] as u32 ^ imm as u32),
                        Kind::Xor32Reg => reg[d] = u64::from(reg[d] as u32 ^ reg[s] as u32),
                        Kind::Lsh32Imm => reg[d] = u64::from((reg[d] as u32) << (imm & 31)),
                        Kind::Lsh32Reg => reg[d] = u64::from((reg[d] as u32) << (reg[s] & 31)),
                        Kind::Rsh32Imm => reg[d] = u64::from((reg[d] as u32) >> (imm & 31)),
                        Kind::Rsh32Reg => reg[d] = u64::from((reg[d] as u32) >> (reg[s] & 31)),
                        Kind::Arsh32Imm => reg[d] = u64::from(((reg[d] as i32) >> (imm & 31)) as u32),
                        Kind::Arsh32Reg => reg[d] = u64::from(((reg[d] as i32) >> (reg[s] & 31)) as u32),
                        Kind::Mov32Imm => reg[d] = u64::from(imm as u32),
                        Kind::Mov32Reg => reg[d] = u64::from(reg[s] as u32),
                        Kind::Neg32 => reg[d] = u64::from((reg[d] as u32).wrapping_neg()),
                        Kind::MovSx8To32 => reg[d] = u64::from(reg[s] as i8 as i32 as u32),
                        Kind::MovSx16To32 => reg[d] = u64::from(reg[s] as i16 as i32 as u32),

                        Kind::Trunc16 => reg[d] &= 0xffff,
                        Kind::Trunc32 => reg[d] &= 0xffff_ffff,
                        Kind::Swap16 => reg[d] = u64::from((reg[d] as u16).swap_bytes()),
                        Kind::Swap32 => reg[d] = u64::from((reg[d] as u32).swap_bytes()),
                        Kind::Swap64 => reg[d] = reg[d].swap_bytes(),

                        Kind::Ldx8 => reg[d] = mem!(hot.load::<1>(mem, addr_s())),
                        Kind::Ldx16 => reg[d] = mem!(hot.load::<2>(mem, addr_s())),
                        Kind::Ldx32 => reg[d] = mem!(hot.load::<4>(mem, addr_s())),
                        Kind::Ldx64 => reg[d] = mem!(hot.load::<8>(mem, addr_s())),
                        Kind::Ldxs8 => reg[d] = mem!(hot.load::<1>(mem, addr_s())) as i8 as i64 as u64,
                        Kind::Ldxs16 => reg[d] = mem!(hot.load::<2>(mem, addr_s())) as i16 as i64 as u64,
                        Kind::Ldxs32 => reg[d] = mem!(hot.load::<4>(mem, addr_s())) as i32 as i64 as u64,
                        Kind::St8 => mem!(hot.store::<1>(mem, addr_d(), imm)),
                        Kind::St16 => mem!(hot.store::<2>(mem, addr_d(), imm)),
                        Kind::St32 => mem!(hot.store::<4>(mem, addr_d(), imm)),
                        Kind::St64 => mem!(hot.store::<8>(mem, addr_d(), imm)),
                        Kind::Stx8 => mem!(hot.store::<1>(mem, addr_d(), reg[s])),
                        Kind::Stx16 => mem!(hot.store::<2>(mem, addr_d(), reg[s])),
                        Kind::Stx32 => mem!(hot.store::<4>(mem, addr_d(), reg[s])),
                        Kind::Stx64 => mem!(hot.store::<8>(mem, addr_d(), reg[s])),
                        Kind::Atomic => mem!(atomic(mem, &mut reg, d, s, op.off, op.imm as u64, op.aux)),
                        Kind::LdAbs | Kind::LdInd => {
                            let base = if op.kind == Kind::LdInd { reg[s] as u32 as i32 as i64 } else { 0 };
                            match ld_packet(mem, base + op.imm, op.off as u64) {
                                Ok(Some(v)) => reg[0] = v,
                                // Like the kernel, an out-of-range offset ends the program with r0 = 0.
                                Ok(None) => return Ok(0),
                                Err(kind) => fail!(kind),
                            }
                        }

                        Kind::Ja => jump!(op.off),
                        Kind::StaticBranch => {
                            if prog.static_sites[op.imm as usize].1.load(std::sync::atomic::Ordering::Relaxed) {
                                jump!(op.off)
                            }
                        }
                        Kind::Nop | Kind::LddwTail => {}
                        Kind::Jeq64Imm => cond!(reg[d] == imm, op),
                        Kind::Jeq64Reg => cond!(reg[d] == reg[s], op),
                        Kind::Jne64Imm => cond!(reg[d] != imm, op),
                        Kind::Jne64Reg => cond!(reg[d] != reg[s], op),
                        Kind::Jgt64Imm => cond!(reg[d] > imm, op),
                        Kind::Jgt64Reg => cond!(reg[d] > reg[s], op),
                        Kind::Jge64Imm => cond!(reg[d] >= imm, op),
                        Kind::Jge64Reg => cond!(reg[d] >= reg[s], op),
                        Kind::Jlt64Imm => cond!(reg[d] < imm, op),
                        Kind::Jlt64Reg => cond!(reg[d] < reg[s], op),
                        Kind::Jle64Imm => cond!(reg[d] <= imm, op),
                        Kind::Jle64Reg => cond!(reg[d] <= reg[s], op),
                        Kind::Jset64Imm => cond!(reg[d] & imm != 0, op),
                        Kind::Jset64Reg => cond!(reg[d] & reg[s] != 0, op),
                        Kind::Jsgt64Imm => cond!((reg[d] as i64) > op.imm, op),
                        Kind::Jsgt64Reg => cond!((reg[d] as i64) > (reg[s] as i64), op),
                        Kind::Jsge64Imm => cond!((reg[d] as i64) >= op.imm, op),
                        Kind::Jsge64Reg => cond!((reg[d] as i64) >= (reg[s] as i64), op),
                        Kind::Jslt64Imm => cond!((reg[d] as i64) < op.imm, op),
                        Kind::Jslt64Reg => cond!((reg[d] as i64) < (reg[s] as i64), op),
                        Kind::Jsle64Imm => cond!((reg[d] as i64) <= op.imm, op),
                        Kind::Jsle64Reg => cond!((reg[d] as i64) <= (reg[s] as i64), op),
                        Kind::Jeq32Imm => cond!(reg[d] as u32 == imm as u32, op),
                        Kind::Jeq32Reg => cond!(reg[d] as u32 == reg[s] as u32, op),
                        Kind::Jne32Imm => cond!(reg[d] as u32 != imm as u32, op),
                        Kind::Jne32Reg => cond!(reg[d] as u32 != reg[s] as u32, op),
                        Kind::Jgt32Imm => cond!(reg[d] as u32 > imm as u32, op),
                        Kind::Jgt32Reg => cond!(reg[d] as u32 > reg[s] as u32, op),
                        Kind::Jge32Imm => cond!(reg[d] as u32 >= imm as u32, op),
                        Kind::Jge32Reg => cond!(reg[d] as u32 >= reg[s] as u32, op),
                        Kind::Jlt32Imm => cond!((reg[d] as u32) < imm as u32, op),
                        Kind::Jlt32Reg => cond!((reg[d] as u32) < reg[s] as u32, op),
                        Kind::Jle32Imm => cond!(reg[d] as u32 <= imm as u32, op),
                        Kind::Jle32Reg => cond!(reg[d] as u32 <= reg[s] as u32, op),
                        Kind::Jset32Imm => cond!(reg[d] as u32 & imm as u32 != 0, op),
                        Kind::Jset32Reg => cond!(reg[d] as u32 & reg[s] as u32 != 0, op),
                        Kind::Jsgt32Imm => cond!(reg[d] as i32 > imm as i32, op),
                        Kind::Jsgt32Reg => cond!(reg[d] as i32 > reg[s] as i32, op),
                        Kind::Jsge32Imm => cond!(reg[d] as i32 >= imm as i32, op),
                        Kind::Jsge32Reg => cond!(reg[d] as i32 >= reg[s] as i32, op),
                        Kind::Jslt32Imm => cond!((reg[d] as i32) < imm as i32, op),
                        Kind::Jslt32Reg => cond!((reg[d] as i32) < reg[s] as i32, op),
                        Kind::Jsle32Imm => cond!(reg[d] as i32 <= imm as i32, op),
                        Kind::Jsle32Reg => cond!(reg[d] as i32 <= reg[s] as i32, op),

                        Kind::CallHelper | Kind::CallX => {
                            let idx = if op.kind == Kind::CallHelper {
                                op.imm as usize
                            } else {
                                let value = reg[d];
                                match i32::try_from(value).ok().and_then(|id| prog.helper_ids.get(&id)) {
                                    Some(&i) => i,
                                    None => fail!(RunErrorKind::UnknownHelper { value }),
                                }
                            };
                            let helper = &prog.helpers[idx];
                            match &helper.kind {
                                HelperKind::Func(func) => {
                                    let mut ctx = HelperCtx {
                                        mem: &mut *mem,
                                        exit: None,
                                        env: &mut *env,
                                        regions_changed: false,
                                    };
                                    let args = [reg[1], reg[2], reg[3], reg[4], reg[5]];
                                    let result = func(&mut ctx, args);
                                    let (exit, changed) = (ctx.exit, ctx.regions_changed);
                                    if changed {
                                        hot.first = mem.regions.first().copied().unwrap_or(Region::EMPTY);
                                    }
                                    match result {
                                        Ok(v) => reg[0] = v,
                                        Err(source) => {
                                            fail!(RunErrorKind::Helper {
                                                id: prog.table_ids[idx],
                                                name: helper.name,
                                                source
                                            })
                                        }
                                    }
                                    if let Some(r0) = exit {
                                        return Ok(r0);
                                    }
                                }
                                HelperKind::TailCall(resolve) => {
                                    let mut ctx = HelperCtx {
                                        mem: &mut *mem,
                                        exit: None,
                                        env: &mut *env,
                                        regions_changed: false,
                                    };
                                    let target = resolve(&mut ctx, reg[2], reg[3]);
                                    if ctx.regions_changed {
                                        hot.first = mem.regions.first().copied().unwrap_or(Region::EMPTY);
                                    }
                                    if let Some(target) = target
                                        && tail_calls < MAX_TAIL_CALLS
                                    {
                                        // The current frame continues in `target` from its start, with
                                        // a fresh stack frame and budget; callers keep their programs.
                                        tail_calls += 1;
                                        for f in frames.iter_mut().filter(|f| f.prog.is_none()) {
                                            f.prog = Some(Arc::clone(&cur));
                                        }
                                        enter_frame(frames.len());
                                        budget = frame_budget;
                                        pc = 0;
                                        break 'run target;
                                    }
                                    // A failed tail call falls through, r0 unchanged.
                                }
                                HelperKind::Loop => {
                                    let (count, callback, loop_ctx, flags) = (reg[1], reg[2], reg[3], reg[4]);
                                    if flags != 0 {
                                        reg[0] = EINVAL;
                                    } else if count > MAX_LOOPS {
                                        reg[0] = E2BIG;
                                    } else if count == 0 {
                                        reg[0] = 0;
                                    } else {
                                        let Some(cb) = prog.pc_of_code_address(callback) else {
                                            fail!(RunErrorKind::BadCallback { value: callback });
                                        };
                                        if frames.len() + 1 >= MAX_CALL_FRAMES {
                                            fail!(RunErrorKind::CallDepth { max: MAX_CALL_FRAMES });
                                        }
                                        let state = LoopState { callback: cb, index: 0, count, ctx: loop_ctx };
                                        frames.push(Frame {
                                            ret_pc: pc,
                                            saved: [reg[6], reg[7], reg[8], reg[9]],
                                            budget,
                                            prog: None,
                                            looping: Some(state),
                                        });
                                        let depth = frames.len();
                                        enter_frame(depth);
                                        set_stack(mem, &mut hot, depth);
                                        reg[10] = fp(depth);
                                        reg[1] = 0;
                                        reg[2] = loop_ctx;
                                        budget = frame_budget;
                                        pc = cb;
                                    }
                                }
                            }
                        }
                        Kind::CallLocal => {
                            if frames.len() + 1 >= MAX_CALL_FRAMES {
                                fail!(RunErrorKind::CallDepth { max: MAX_CALL_FRAMES });
                            }
                            frames.push(Frame {
                                ret_pc: pc,
                                saved: [reg[6], reg[7], reg[8], reg[9]],
                                budget,
                                prog: None,
                                looping: None,
                            });
                            budget = frame_budget;
                            let depth = frames.len();
                            enter_frame(depth);
                            set_stack(mem, &mut hot, depth);
                            reg[10] = fp(depth);
                            jump!(op.off);
                        }
                        Kind::Exit => match frames.pop() {
                            None => return Ok(reg[0]),
                            Some(mut f) => {
                                if let Some(mut l) = f.looping {
                                    // A bpf_loop callback returned: 1 stops the loop, 0 goes on.
                                    l.index += 1;
                                    if reg[0] != 1 && l.index < l.count {
                                        back_edges_left -= 1;
                                        if back_edges_left == 0 {
                                            fail!(RunErrorKind::BranchLimit { limit: *branch_limit });
                                        }
                                        f.looping = Some(l);
                                        reg[6..10].copy_from_slice(&f.saved);
                                        frames.push(f);
                                        enter_frame(frames.len());
                                        reg[10] = fp(frames.len());
                                        reg[1] = l.index;
                                        reg[2] = l.ctx;
                                        budget = frame_budget;
                                        pc = l.callback;
                                        continue;
                                    }
                                    reg[0] = l.index;
                                }
                                reg[6..10].copy_from_slice(&f.saved);
                                budget = f.budget;
                                pc = f.ret_pc;
                                let depth = frames.len();
                                set_stack(mem, &mut hot, depth);
                                reg[10] = fp(depth);
                                if let Some(p) = f.prog
                                    && !Arc::ptr_eq(&p, &cur)
                                {
                                    break 'run p;
                                }
                            }
                        },
                        Kind::GotoX => {
                            let value = reg[d];
                            match prog.pc_of_code_address(value) {
                                Some(idx) => jump!(idx),
                                None => fail!(RunErrorKind::BadIndirectJump { value }),
                            }
                        }
                        Kind::MayGoto => {
                            if budget == 0 {
                                jump!(op.off);
                            } else {
                                budget -= 1;
                            }
                        }
                        Kind::End => fail!(RunErrorKind::FellOffEnd),
                    }
                }
            };
            cur = next;
        }
    }
}

/// `LD_ABS`/`LD_IND`: the big-endian `size`-byte value at `off` in the packet; `None` when the
/// offset is outside it (the program then ends with `r0 = 0`).
pub(crate) fn ld_packet(mem: &MemMap, off: i64, size: u64) -> Result<Option<u64>, RunErrorKind> {
    let Some(pkt) = mem.regions.iter().find(|r| r.kind == RegionKind::Packet).copied() else {
        return Err(RunErrorKind::NoPacket);
    };
    // `SKF_LL_OFF + k`: byte k from the link-layer (MAC) header, where the packet region starts.
    const SKF_LL_OFF: i64 = -0x20_0000;
    const SKF_NET_OFF: i64 = -0x10_0000;
    let off = if (SKF_LL_OFF..SKF_NET_OFF).contains(&off) { off - SKF_LL_OFF } else { off };
    if off < 0 || (off as u64).saturating_add(size) > pkt.len {
        return Ok(None);
    }
    let a = pkt.start + off as u64;
    let v = mem.load_plain(a, size)?;
    Ok(Some(match size {
        1 => v,
        2 => u64::from((v as u16).swap_bytes()),
        _ => u64::from((v as u32).swap_bytes()),
    }))
}

#[inline(always)]
fn div64(a: u64, b: u64) -> u64 {
    a.checked_div(b).unwrap_or(0)
}
#[inline(always)]
fn sdiv64(a: u64, b: u64) -> u64 {
    if b == 0 { 0 } else { (a as i64).wrapping_div(b as i64) as u64 }
}
#[inline(always)]
fn mod64(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { a % b }
}
#[inline(always)]
fn smod64(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { (a as i64).wrapping_rem(b as i64) as u64 }
}
#[inline(always)]
fn div32(a: u32, b: u32) -> u32 {
    a.checked_div(b).unwrap_or(0)
}
#[inline(always)]
fn sdiv32(a: u32, b: u32) -> u32 {
    if b == 0 { 0 } else { (a as i32).wrapping_div(b as i32) as u32 }
}
#[inline(always)]
fn mod32(a: u32, b: u32) -> u32 {
    if b == 0 { a } else { a % b }
}
#[inline(always)]
fn smod32(a: u32, b: u32) -> u32 {
    if b == 0 { a } else { (a as i32).wrapping_rem(b as i32) as u32 }
}

/// Executes one `BPF_ATOMIC` instruction. `dst`/`src` are register numbers as encoded;
/// `size` is 1, 2, 4 or 8 bytes.
#[inline(never)]
fn atomic(
    mem: &MemMap,
    reg: &mut [u64; 256],
    dst: usize,
    src: usize,
    off: i32,
    size: u64,
    aux: u8,
) -> Result<(), AccessError> {
    let kind = AtomicKind::ALL[aux as usize];
    match kind {
        AtomicKind::LoadAcquire => {
            let addr = reg[src].wrapping_add(off as i64 as u64);
            reg[dst] = mem.load_acquire(addr, size)?;
            return Ok(());
        }
        AtomicKind::StoreRelease => {
            let addr = reg[dst].wrapping_add(off as i64 as u64);
            return mem.store_release(addr, size, reg[src]);
        }
        _ => {}
    }
    let addr = reg[dst].wrapping_add(off as i64 as u64);
    let v = reg[src];
    if size == 8 {
        let old = mem.atomic64(addr, true, |a| match kind {
            AtomicKind::Add | AtomicKind::FetchAdd => a.fetch_add(v, SeqCst),
            AtomicKind::Or | AtomicKind::FetchOr => a.fetch_or(v, SeqCst),
            AtomicKind::And | AtomicKind::FetchAnd => a.fetch_and(v, SeqCst),
            AtomicKind::Xor | AtomicKind::FetchXor => a.fetch_xor(v, SeqCst),
            AtomicKind::Xchg => a.swap(v, SeqCst),
            _ => a.compare_exchange(reg[0], v, SeqCst, SeqCst).unwrap_or_else(|x| x),
        })?;
        store_result(reg, kind, src, old);
    } else {
        let v = v as u32;
        let expected = reg[0] as u32;
        let old = mem.atomic32(addr, true, |a| match kind {
            AtomicKind::Add | AtomicKind::FetchAdd => a.fetch_add(v, SeqCst),
            AtomicKind::Or | AtomicKind::FetchOr => a.fetch_or(v, SeqCst),
            AtomicKind::And | AtomicKind::FetchAnd => a.fetch_and(v, SeqCst),
            AtomicKind::Xor | AtomicKind::FetchXor => a.fetch_xor(v, SeqCst),
            AtomicKind::Xchg => a.swap(v, SeqCst),
            _ => a.compare_exchange(expected, v, SeqCst, SeqCst).unwrap_or_else(|x| x),
        })?;
        store_result(reg, kind, src, u64::from(old));
    }
    Ok(())
}

fn store_result(reg: &mut [u64; 256], kind: AtomicKind, src: usize, old: u64) {
    match kind {
        AtomicKind::FetchAdd | AtomicKind::FetchOr | AtomicKind::FetchAnd | AtomicKind::FetchXor | AtomicKind::Xchg => {
            reg[src] = old
        }
        AtomicKind::Cmpxchg => reg[0] = old,
        _ => {}
    }
}
