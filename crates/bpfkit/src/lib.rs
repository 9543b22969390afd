//! bpfkit: run clang-built BPF programs outside the kernel.
//!
//! [`Runtime`] plays the kernel: it owns maps, helpers (by the kernel's `bpf_func_id`) and
//! kfuncs (by name), the clock and the CPU slots. [`Runtime::open`] plays libbpf: it parses an
//! ELF object, creates its maps (BTF-defined, legacy, global data), binds relocations and
//! prepares each program. A [`Worker`] (one per thread) runs programs: [`Prog::run_xdp`] over an
//! [`XdpPacket`], [`Prog::run_skb`] over a frame, [`Prog::run_raw`] over a `syscall` context.
//!
//! Programs run in the bounds-checked reference interpreter: until the verifier lands, every
//! memory access is checked at run time instead of proven at load time, and context accesses
//! are translated through field tables ([`context`]) rather than rewritten. The JIT
//! ([`Object::jit`], [`Backend::Jit`]) runs only programs someone vouches for ([`Trust`]): it
//! does no bounds checks, so until the verifier lands it is opt-in.
#![deny(unsafe_code)]

pub mod commands;
pub mod context;
pub mod env;
pub mod helpers;
pub mod printf;
mod regions;
pub mod runtime;
pub mod static_keys;
mod verify;

pub use commands::{MapFd, ProgFd, ProgLoad};
pub use env::{Clock, MonotonicClock, SteppedClock};
pub use runtime::{Object, Prog, Runtime, SkbMeta, Worker, XdpOutcome, XdpPacket};
pub use static_keys::StaticKey;

/// What can go wrong loading or running.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error(transparent)]
    Object(#[from] bpfkit_object::ObjectError),
    #[error("map `{map}`: {reason}")]
    Map { map: String, reason: String },
    #[error("program `{program}`: {reason}")]
    Program { program: String, reason: String },
    #[error("extern `{name}`: {reason}")]
    Extern { name: String, reason: String },
    #[error("no {what} named `{name}`")]
    NotFound { what: &'static str, name: String },
    #[error("packet of {len} bytes is larger than the {max} bytes an XDP frame holds")]
    PacketTooBig { len: usize, max: usize },
    /// The kernel's `BPF_PROG_TEST_RUN` refuses this input with `-EINVAL`; so does bpfkit.
    #[error("packet of {len} bytes refused (EINVAL, as the kernel's test run): {reason}")]
    Refused { len: usize, reason: &'static str },
    #[error("map {id}: {reason} (errno {errno})")]
    MapCommand { id: u32, errno: i32, reason: String },
    #[error("no {what} with id {id}")]
    BadFd { what: &'static str, id: u32 },
    #[error("program `{program}`: {source}{line}")]
    Run { program: String, source: bpfkit_interp::RunError, line: String },
    #[error("program `{program}`: JIT: {source}")]
    Jit { program: String, source: bpfkit_jit::CompileError },
    /// The verifier refused the program; `log` is its log (level 1 unless asked for more).
    #[error("program `{program}`: verifier: {error}")]
    Verify { program: String, error: bpfkit_verifier::VerifyError, log: String },
}

/// What loading does with the verifier's verdict.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum VerifyMode {
    /// A program the verifier refuses is not loaded (the kernel's behaviour).
    #[default]
    Enforce,
    /// Every program is verified and loaded; the verdict is in [`Prog::verify_report`], and
    /// only accepted programs may be JIT-compiled without `Trust::CallerVouches`.
    Report,
}

/// Which engine a [`Worker`] runs programs with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Backend {
    /// The bounds-checked reference interpreter: runs any program.
    #[default]
    Interp,
    /// Native code from the x86-64 JIT: runs programs compiled with [`Object::jit`] only.
    Jit,
}

pub use bpfkit_jit::Trust;
