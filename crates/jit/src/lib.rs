//! Executable-code foundation of the bpfkit x86-64 JIT (bpfkit-decisions D5).
//!
//! * [`CodeMemory`] holds machine code under a strict W^X discipline: the code is reachable through two
//!   mappings of one anonymous shared memory object, an executable view that is never writable and a writable
//!   view that is never executable. See the [`code_memory`] module for the publish/free protocol.
//! * [`PatchSites`] / [`SiteState`] and [`CodeMemory::patch`] let emitted code contain 5-byte sites that are
//!   switched between a jump and a no-op (or between two jump targets) atomically with respect to threads that
//!   are running the code. See the [`patch`] module for the cross-modification protocol.
//!
//! * [`jit`] compiles a loaded [`Program`] to x86-64 ([`lower`] documents the conventions) and
//!   attaches the code, which a `Vm` with [`Backend::Native`](bpfkit_interp::Backend) then runs.
//!   The JIT does no bounds checks: it compiles only programs that are trusted ([`Trust`]).
//!
//! Only Linux on x86-64 is supported; on other targets the crate only exports [`JitError`].
#![deny(unsafe_code)]

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
#[allow(unsafe_code)]
mod attach;
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod ctx;
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
pub mod lower;
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod x86;

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
pub use attach::{JitCode, jit};
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
pub use ctx::CtxLayout;
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
pub use lower::{Compiled, compile};

/// Whether this process can hold JIT code: code memory needs `memfd_create`, two shared
/// mappings and `membarrier`. Where a sandbox refuses them the JIT refuses to run.
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
pub fn available() -> Result<(), JitError> {
    barrier_mode()?;
    CodeMemory::new(&[0xc3]).map(drop)
}

/// Why a program trusts to run without bounds checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trust {
    /// The caller vouches that the program is safe (tests, benchmarks, and users who say so
    /// explicitly).
    CallerVouches,
    /// bpfkit's verifier accepted the program (the runtime checks its report before it asks
    /// for this).
    Verified,
}

/// How to compile.
#[derive(Clone, Debug, Default)]
pub struct JitOptions {
    /// The program's context, when `r1` is a translated context (XDP, skb); `None` when it is
    /// plain memory (raw buffers, `syscall` programs).
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    pub ctx: Option<CtxLayout>,
    /// Array maps whose `bpf_map_lookup_elem` (helper 1) is inlined where the map is a
    /// constant loaded into `r1` right before the call, as the kernel's JIT does: a bounds
    /// check and an address computation instead of a call.
    pub inline_arrays: Vec<InlineArray>,
}

/// An array map the JIT may inline lookups of ([`JitOptions::inline_arrays`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InlineArray {
    /// The value programs load into `r1` for this map (`lddw r1, token`).
    pub token: u64,
    /// Address of index 0's value; index `i`'s is at `base + i * stride`. Must stay valid as
    /// long as the code.
    pub base: u64,
    pub stride: u32,
    pub max_entries: u32,
}

/// `BPF_FUNC_map_lookup_elem`.
pub const MAP_LOOKUP_ELEM: i32 = 1;

/// Why a program cannot be compiled.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CompileError {
    #[error("insn {pc}: {reason}")]
    Malformed { pc: usize, reason: String },
    #[error("insn {pc}: {reason}")]
    Context { pc: usize, reason: String },
    #[error("insn {pc}: {what} is not supported by the JIT yet")]
    Unsupported { pc: usize, what: &'static str },
    #[error("the program already has native code attached")]
    AlreadyCompiled,
    #[error("JIT internal error: {reason}")]
    Internal { reason: &'static str },
    #[error(transparent)]
    Memory(#[from] JitError),
}

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
#[allow(unsafe_code)]
pub mod code_memory;
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
#[allow(unsafe_code)]
pub mod patch;

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
pub use code_memory::CodeMemory;
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
pub use patch::{BarrierMode, PatchSites, SiteId, SiteState, barrier_mode};

/// Errors of the JIT's code memory and patching layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JitError {
    /// A system call failed; `errno` is the raw OS error number it reported.
    #[error("{syscall} failed: {}", std::io::Error::from_raw_os_error(*errno))]
    Syscall {
        /// Name of the failing system call.
        syscall: &'static str,
        /// The errno it reported.
        errno: i32,
    },
    /// The code is too large for every offset to be reachable with a rel32 displacement.
    #[error("code of {len} bytes is too large (rel32 jumps must reach every offset)")]
    CodeTooLarge {
        /// Length of the rejected code in bytes.
        len: usize,
    },
    /// `patch` was asked to modify an offset that is not a recorded patch site.
    #[error("offset {offset} is not a recorded patch site")]
    NotASite {
        /// The offending offset.
        offset: usize,
    },
    /// A recorded patch site does not satisfy the site invariants (alignment, bounds, encoding).
    #[error("invalid patch site at offset {offset}: {reason}")]
    InvalidSite {
        /// Offset of the site.
        offset: usize,
        /// Which invariant is violated.
        reason: &'static str,
    },
    /// A jump target is outside the code or lands inside a patch site.
    #[error("invalid jump target {target_offset} for the site at {site_offset}: {reason}")]
    InvalidTarget {
        /// Offset of the site.
        site_offset: usize,
        /// The rejected target offset.
        target_offset: usize,
        /// Why it was rejected.
        reason: &'static str,
    },
}
