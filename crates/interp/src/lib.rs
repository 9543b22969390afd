//! bpfkit's reference interpreter.
//!
//! The interpreter is the reference semantics of bpfkit: exact RFC 9669 behaviour, with every
//! memory access bounds-checked against the regions of the current run (see [`memory`]), so
//! that even an unverified program cannot touch memory it was not given: it ends with a
//! [`RunError`] naming the pc and the address instead. The JIT is checked against it.
//!
//! Flow: [`Program::load`] decodes, checks and pre-decodes the instructions once; a [`Vm`]
//! (one per thread) runs a shared `Arc<Program>` as often as needed without allocating.
//! [`Program::load_xlated`] loads a rewritten (xlated) program, which may use the hidden
//! register AX (r11) that user programs cannot name.
#![deny(unsafe_code)]

mod helpers;
pub mod memory;
pub mod native;
mod program;
mod vm;

pub use helpers::{Helper, HelperClass, HelperCtx, HelperError, HelperFn, Helpers, TailCallFn};
pub use memory::{AccessError, CtxField, MemoryRegion, RegionKind};
pub use native::{Backend, NativeCode};
pub use program::{LoadError, Program};
pub use vm::{MAX_CALL_FRAMES, MAX_TAIL_CALLS, MAY_GOTO_BUDGET, RunError, RunErrorKind, STACK_SIZE, Vm};
