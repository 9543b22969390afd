//! Running native code (the JIT's output) inside a [`Vm`](crate::Vm).
//!
//! The JIT compiles a [`Program`] to machine code and attaches it ([`Program::attach_native`]);
//! a `Vm` whose backend is [`Backend::Native`] then calls that code instead of interpreting.
//! Everything a run needs besides the code stays here, shared with the interpreter: the stack
//! (the same 8 frames of 512 bytes), the regions helpers check their pointers against, the
//! helpers themselves, tail-call resolution and the errors a run can end with.
//!
//! # The ABI between native code and this module
//!
//! Native code is entered through [`NativeEntry`]: `entry(args, state, frame_pointer)`, SysV
//! calling convention, with `args` pointing at `r1`..`r5`. During the run the code keeps a
//! pointer to a [`NativeState`] in a callee-saved register and reaches the host only through
//! the trampolines whose addresses the state holds:
//!
//! * [`NativeState::helper_fn`]: `fn(r1, r2, r3, r4, r5, state) -> r0`, calls the helper the
//!   code stored in [`NativeState::helper`] (a `*const Helper` of the running program);
//! * [`NativeState::callx_fn`]: the same for `callx`, resolving [`NativeState::callx_value`]
//!   against the program in [`NativeState::helper`] (then a `*const Program`);
//! * [`NativeState::tail_call_fn`]: `fn(state, map, index) -> body address or 0`;
//! * [`NativeState::ld_packet_fn`]: `fn(state, offset, size) -> value` for `LD_ABS`/`LD_IND`.
//!
//! After each trampoline the code tests [`NativeState::status`]: non-zero means the run is over
//! (a helper ended it, or failed); the code then unwinds at once by restoring the stack
//! pointer saved at entry ([`NativeState::saved_rsp`]). The code itself sets `status` for the
//! errors it detects (call depth, falling off the end) with the slot index in
//! [`NativeState::pc`].
//!
//! Helpers are Rust closures: a panic inside one aborts the process rather than unwinding
//! through machine code (the trampolines are `extern "sysv64"`, which cannot unwind).
#![allow(unsafe_code)]

use crate::helpers::{Helper, HelperCtx, HelperKind};
use crate::memory::MemMap;
use crate::{Program, RunError, RunErrorKind};
use std::any::Any;
use std::sync::Arc;

/// Which engine a [`Vm`](crate::Vm) runs its program with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Backend {
    /// The bounds-checked interpreter (the default, and the reference).
    #[default]
    Interpreter,
    /// The native code attached to the program ([`Program::attach_native`]); a run fails with
    /// [`RunErrorKind::NoNativeCode`] if there is none.
    Native,
}

/// Signature of native code's entry point: `entry(args, state, frame_pointer) -> r0`.
pub type NativeEntry = unsafe extern "sysv64" fn(*const u64, *mut NativeState, u64) -> u64;

/// `status` values.
pub mod status {
    /// The run goes on.
    pub const RUNNING: u64 = 0;
    /// A helper ended the run with `exit_r0` as its result.
    pub const EXIT: u64 = 1;
    /// A trampoline failed; the error is on the Rust side.
    pub const ERROR: u64 = 2;
    /// A call would exceed the frame limit (code-detected; `pc` is the call).
    pub const CALL_DEPTH: u64 = 3;
    /// Control fell off the end of the program (code-detected).
    pub const FELL_OFF_END: u64 = 4;
}

/// Per-run state shared with native code. Field offsets are part of the ABI
/// ([`NativeState::OFFSETS`] is checked against the layout in a test).
#[repr(C)]
#[derive(Debug)]
pub struct NativeState {
    /// `extern "sysv64" fn(u64, u64, u64, u64, u64, *mut NativeState) -> u64`.
    pub helper_fn: usize,
    /// Same signature as `helper_fn`, for `callx`.
    pub callx_fn: usize,
    /// `extern "sysv64" fn(*mut NativeState, map: u64, index: u64) -> u64`.
    pub tail_call_fn: usize,
    /// `extern "sysv64" fn(*mut NativeState, offset: i64, size: u64) -> u64`.
    pub ld_packet_fn: usize,
    /// The helper being called (`*const Helper`), or for `callx` the program (`*const Program`).
    pub helper: usize,
    /// Low 32 bits: slot index of the current call (for errors). High 32 bits: the helper id.
    pub pc: u64,
    /// One of [`status`].
    pub status: u64,
    /// The result when `status` is [`status::EXIT`].
    pub exit_r0: u64,
    /// The native stack pointer at entry, restored to unwind.
    pub saved_rsp: u64,
    /// The lowest frame pointer a call may set (frame 7 of 8).
    pub stack_limit: u64,
    /// The `may_goto` budget each frame starts with.
    pub may_goto_budget: u64,
    /// `callx`'s register value.
    pub callx_value: u64,
    /// Where code that uses the hidden register AX (kept in a caller-saved machine register)
    /// saves it across a call into Rust.
    pub ax_save: u64,
    /// The Rust side of the run (`*mut NativeRun`).
    run: usize,
}

impl NativeState {
    /// Byte offsets of the fields native code uses, by name (the JIT's view of the layout).
    pub const OFFSETS: NativeOffsets = NativeOffsets {
        helper_fn: 0,
        callx_fn: 8,
        tail_call_fn: 16,
        ld_packet_fn: 24,
        helper: 32,
        pc: 40,
        status: 48,
        exit_r0: 56,
        saved_rsp: 64,
        stack_limit: 72,
        may_goto_budget: 80,
        callx_value: 88,
        ax_save: 96,
    };
}

/// See [`NativeState::OFFSETS`].
#[derive(Clone, Copy, Debug)]
pub struct NativeOffsets {
    pub helper_fn: i32,
    pub callx_fn: i32,
    pub tail_call_fn: i32,
    pub ld_packet_fn: i32,
    pub helper: i32,
    pub pc: i32,
    pub status: i32,
    pub exit_r0: i32,
    pub saved_rsp: i32,
    pub stack_limit: i32,
    pub may_goto_budget: i32,
    pub callx_value: i32,
    pub ax_save: i32,
}

/// Machine code for a program, with its entry points; owns (keeps alive) the memory it is in.
pub struct NativeCode {
    entry: NativeEntry,
    body: u64,
    /// The native address of each instruction start, ascending, with its slot: the code
    /// addresses instruction arrays hold once the program is compiled (`gotox` targets).
    addresses: Vec<(u64, u32)>,
    _owner: Box<dyn Any + Send + Sync>,
}

impl std::fmt::Debug for NativeCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NativeCode")
            .field("entry", &(self.entry as *const () as usize))
            .field("body", &self.body)
            .finish()
    }
}

impl NativeCode {
    /// Native code whose entry point is `entry` and whose main function starts at `body`
    /// (where tail calls into the program jump), kept alive by `owner`.
    ///
    /// # Safety
    ///
    /// The code must implement the ABI of this module exactly, must compute what the program
    /// it is attached to computes, and may only touch memory the program is allowed to touch
    /// (the program must have been verified, or its author vouches for it). `owner` must keep
    /// the code mapped and executable, unchanged except through atomic patch sites.
    pub unsafe fn new(entry: NativeEntry, body: u64, owner: Box<dyn Any + Send + Sync>) -> NativeCode {
        NativeCode { entry, body, addresses: Vec::new(), _owner: owner }
    }

    /// Records the native address of each instruction start (`(address, slot)`), so that the
    /// interpreter can follow a `gotox` to a native code address of the same program.
    pub fn with_addresses(mut self, mut addresses: Vec<(u64, u32)>) -> NativeCode {
        addresses.sort_unstable();
        self.addresses = addresses;
        self
    }

    /// The slot whose native code starts at `addr`.
    pub fn pc_of_address(&self, addr: u64) -> Option<usize> {
        let i = self.addresses.binary_search_by_key(&addr, |&(a, _)| a).ok()?;
        Some(self.addresses[i].1 as usize)
    }

    /// The address tail calls into this program jump to.
    pub fn body(&self) -> u64 {
        self.body
    }

    /// The entry point's address.
    pub fn entry_address(&self) -> u64 {
        self.entry as *const () as usize as u64
    }

    /// The owner given to [`NativeCode::new`] (e.g. the JIT's code object, for dumps).
    pub fn owner(&self) -> &(dyn Any + Send + Sync) {
        &*self._owner
    }
}

/// The Rust side of one native run, reached from the trampolines.
pub(crate) struct NativeRun<'a> {
    pub(crate) mem: &'a mut MemMap,
    pub(crate) env: &'a mut dyn Any,
    pub(crate) error: Option<RunError>,
    pub(crate) tail_calls: u32,
    /// Programs entered by tail calls, alive until the run ends.
    pub(crate) keep: &'a mut Vec<Arc<Program>>,
}

impl NativeState {
    /// A state with the trampolines set, for a `Vm` to reuse across runs.
    pub(crate) fn new(stack_limit: u64) -> NativeState {
        NativeState {
            helper_fn: helper_trampoline as *const () as usize,
            callx_fn: callx_trampoline as *const () as usize,
            tail_call_fn: tail_call_trampoline as *const () as usize,
            ld_packet_fn: ld_packet_trampoline as *const () as usize,
            helper: 0,
            pc: 0,
            status: status::RUNNING,
            exit_r0: 0,
            saved_rsp: 0,
            stack_limit,
            may_goto_budget: crate::vm::MAY_GOTO_BUDGET,
            callx_value: 0,
            ax_save: 0,
            run: 0,
        }
    }
}

/// Runs `code` with `args`; `stack_top` is the frame pointer of frame 0 (the state holds the
/// lowest one a call may reach).
pub(crate) fn run(
    code: &NativeCode,
    state: &mut NativeState,
    run: &mut NativeRun<'_>,
    args: [u64; 5],
    stack_top: u64,
    may_goto_budget: u64,
) -> Result<u64, RunError> {
    state.status = status::RUNNING;
    state.may_goto_budget = may_goto_budget;
    state.run = run as *mut NativeRun<'_> as usize;
    // SAFETY: `NativeCode::new`'s contract: the code implements this module's ABI for the
    // program and touches only memory the program may touch; `state` and `run` outlive the
    // call, `args` points at 5 words, and the stack `[stack_limit - 512, stack_top)` belongs
    // to the calling `Vm`, which is borrowed for the whole run.
    let r0 = unsafe { (code.entry)(args.as_ptr(), state, stack_top) };
    let pc = (state.pc & 0xffff_ffff) as usize;
    match state.status {
        status::RUNNING => Ok(r0),
        status::EXIT => Ok(state.exit_r0),
        status::CALL_DEPTH => Err(RunError { pc, kind: RunErrorKind::CallDepth { max: crate::vm::MAX_CALL_FRAMES } }),
        status::FELL_OFF_END => Err(RunError { pc, kind: RunErrorKind::FellOffEnd }),
        _ => Err(run.error.take().unwrap_or(RunError { pc, kind: RunErrorKind::NativeAbort { status: state.status } })),
    }
}

/// # Safety
/// `state` is the live state of a run started by [`run`].
unsafe fn parts<'s, 'r>(state: *mut NativeState) -> (&'s mut NativeState, &'r mut NativeRun<'r>) {
    // SAFETY: native code passes back the pointer `run` gave it; both objects live on `run`'s
    // stack frame for the whole call, and nothing else accesses them while a trampoline runs.
    unsafe {
        let s = &mut *state;
        let r = &mut *(s.run as *mut NativeRun<'r>);
        (s, r)
    }
}

fn call_helper(state: &mut NativeState, run: &mut NativeRun<'_>, helper: &Helper, args: [u64; 5]) -> u64 {
    let pc = (state.pc & 0xffff_ffff) as usize;
    let id = (state.pc >> 32) as i32;
    match &helper.kind {
        HelperKind::Func(func) => {
            let mut ctx = HelperCtx { mem: &mut *run.mem, exit: None, env: &mut *run.env, regions_changed: false };
            let result = func(&mut ctx, args);
            let exit = ctx.exit;
            match result {
                Ok(v) => {
                    if let Some(r0) = exit {
                        state.exit_r0 = r0;
                        state.status = status::EXIT;
                    }
                    v
                }
                Err(source) => {
                    run.error = Some(RunError { pc, kind: RunErrorKind::Helper { id, name: helper.name, source } });
                    state.status = status::ERROR;
                    0
                }
            }
        }
        HelperKind::TailCall(_) | HelperKind::Loop => {
            run.error = Some(RunError {
                pc,
                kind: RunErrorKind::Unsupported { what: "callx to bpf_tail_call or bpf_loop in native code" },
            });
            state.status = status::ERROR;
            0
        }
    }
}

extern "sysv64" fn helper_trampoline(a1: u64, a2: u64, a3: u64, a4: u64, a5: u64, state: *mut NativeState) -> u64 {
    // SAFETY: called by native code with the state of the current run.
    let (state, run) = unsafe { parts(state) };
    // SAFETY: the code stored a pointer to a `Helper` of the running program, which the run
    // keeps alive (the program owns its helper table and its code).
    let helper = unsafe { &*(state.helper as *const Helper) };
    call_helper(state, run, helper, [a1, a2, a3, a4, a5])
}

extern "sysv64" fn callx_trampoline(a1: u64, a2: u64, a3: u64, a4: u64, a5: u64, state: *mut NativeState) -> u64 {
    // SAFETY: called by native code with the state of the current run.
    let (state, run) = unsafe { parts(state) };
    // SAFETY: for `callx` the code stores a pointer to its own `Program`, alive for the run.
    let program = unsafe { &*(state.helper as *const Program) };
    let value = state.callx_value;
    let found = i32::try_from(value).ok().and_then(|id| Some((id, program.helper_ids.get(&id)?)));
    match found {
        Some((id, &idx)) => {
            state.pc = (state.pc & 0xffff_ffff) | (u64::from(id as u32) << 32);
            call_helper(state, run, &program.helpers[idx], [a1, a2, a3, a4, a5])
        }
        None => {
            let pc = (state.pc & 0xffff_ffff) as usize;
            run.error = Some(RunError { pc, kind: RunErrorKind::UnknownHelper { value } });
            state.status = status::ERROR;
            0
        }
    }
}

extern "sysv64" fn tail_call_trampoline(state: *mut NativeState, map: u64, index: u64) -> u64 {
    // SAFETY: called by native code with the state of the current run.
    let (state, run) = unsafe { parts(state) };
    // SAFETY: the code stored a pointer to the program's `bpf_tail_call` helper.
    let helper = unsafe { &*(state.helper as *const Helper) };
    let HelperKind::TailCall(resolve) = &helper.kind else { return 0 };
    let mut ctx = HelperCtx { mem: &mut *run.mem, exit: None, env: &mut *run.env, regions_changed: false };
    let Some(target) = resolve(&mut ctx, map, index) else { return 0 };
    if run.tail_calls >= crate::vm::MAX_TAIL_CALLS {
        return 0;
    }
    let Some(native) = target.native() else {
        let pc = (state.pc & 0xffff_ffff) as usize;
        run.error = Some(RunError {
            pc,
            kind: RunErrorKind::Unsupported {
                what: "a tail call from native code to a program that is not JIT-compiled",
            },
        });
        state.status = status::ERROR;
        return 0;
    };
    let body = native.body();
    run.tail_calls += 1;
    run.keep.push(target);
    body
}

extern "sysv64" fn ld_packet_trampoline(state: *mut NativeState, offset: i64, size: u64) -> u64 {
    // SAFETY: called by native code with the state of the current run.
    let (state, run) = unsafe { parts(state) };
    let pc = (state.pc & 0xffff_ffff) as usize;
    match crate::vm::ld_packet(run.mem, offset, size) {
        Ok(Some(v)) => v,
        // Like the kernel, an out-of-range offset ends the program with r0 = 0.
        Ok(None) => {
            state.exit_r0 = 0;
            state.status = status::EXIT;
            0
        }
        Err(kind) => {
            run.error = Some(RunError { pc, kind });
            state.status = status::ERROR;
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::offset_of;

    #[test]
    fn offsets_match_the_layout() {
        let o = NativeState::OFFSETS;
        assert_eq!(o.helper_fn as usize, offset_of!(NativeState, helper_fn));
        assert_eq!(o.callx_fn as usize, offset_of!(NativeState, callx_fn));
        assert_eq!(o.tail_call_fn as usize, offset_of!(NativeState, tail_call_fn));
        assert_eq!(o.ld_packet_fn as usize, offset_of!(NativeState, ld_packet_fn));
        assert_eq!(o.helper as usize, offset_of!(NativeState, helper));
        assert_eq!(o.pc as usize, offset_of!(NativeState, pc));
        assert_eq!(o.status as usize, offset_of!(NativeState, status));
        assert_eq!(o.exit_r0 as usize, offset_of!(NativeState, exit_r0));
        assert_eq!(o.saved_rsp as usize, offset_of!(NativeState, saved_rsp));
        assert_eq!(o.stack_limit as usize, offset_of!(NativeState, stack_limit));
        assert_eq!(o.may_goto_budget as usize, offset_of!(NativeState, may_goto_budget));
        assert_eq!(o.callx_value as usize, offset_of!(NativeState, callx_value));
        assert_eq!(o.ax_save as usize, offset_of!(NativeState, ax_save));
    }
}
