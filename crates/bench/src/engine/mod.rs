//! The engines, one module each, all behind [`Engine::with_runner`].
//!
//! An engine prepares a workload (loads, verifies, compiles it, sets up memory and maps) and
//! lends a [`Runner`] to a closure: runners borrow what the engine set up on its stack (rbpf's
//! and solana-sbpf's VMs borrow their program, memory and context), so they do not outlive it.
//!
//! | engine | synthetic programs | packet programs |
//! | --- | --- | --- |
//! | bpfkit interp | `bpfkit_interp::Vm::run_mem` | `bpfkit::Runtime`, `Prog::run_xdp` |
//! | bpfkit JIT (`jit` feature) | the same `Vm`, native backend | the same, `Backend::Jit` |
//! | rbpf interp / JIT | `EbpfVmRaw` | n/a: no maps, no ELF relocations |
//! | solana-sbpf interp / JIT | `EbpfVm`, SBPF v0 | n/a: no maps, no BPF helpers |
//! | native | C, `cc -O2` | the program's C, `cc -O2`, native maps |

mod bpfkit_interp;
#[cfg(feature = "jit")]
mod bpfkit_jit;
pub mod native;
mod rbpf;
mod sbpf;

use crate::BenchError;
use crate::workload::Workload;
use std::collections::BTreeMap;

/// A map's entries: (key, value) pairs.
pub type MapEntries = Vec<(Vec<u8>, Vec<u8>)>;

/// What is compared across engines.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Results {
    /// `[r0]` for a synthetic program, one XDP action per packet for a packet program.
    pub values: Vec<u64>,
    /// Packet programs: after the pass, the entries of the maps
    /// [`crate::workload::PacketProgram::maps`] names, sorted by key (per-CPU maps: the value of
    /// CPU 0, the only one the benchmark uses).
    pub maps: BTreeMap<String, MapEntries>,
}

/// A prepared workload on one engine.
pub trait Runner {
    /// The results compared across engines. Call it first: packet programs are compared from
    /// their initial map state.
    fn results(&mut self) -> Result<Results, BenchError>;

    /// One timed iteration: one run, or one pass over the capture. Returns `r0`, or the sum of
    /// the actions (for `black_box`). Panics if the engine fails: [`Runner::results`] has
    /// already run the same thing successfully.
    fn iterate(&mut self) -> u64;
}

/// The engines, in table order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Engine {
    BpfkitInterp,
    BpfkitJit,
    RbpfInterp,
    RbpfJit,
    SbpfInterp,
    SbpfJit,
    Native,
}

impl Engine {
    pub const ALL: [Engine; 7] = [
        Engine::BpfkitInterp,
        Engine::BpfkitJit,
        Engine::RbpfInterp,
        Engine::RbpfJit,
        Engine::SbpfInterp,
        Engine::SbpfJit,
        Engine::Native,
    ];

    /// The peers bpfkit is compared with.
    pub const PEERS: [Engine; 4] = [Engine::RbpfInterp, Engine::RbpfJit, Engine::SbpfInterp, Engine::SbpfJit];

    /// Identifier (criterion benchmark names, JSON keys).
    pub fn key(self) -> &'static str {
        match self {
            Engine::BpfkitInterp => "bpfkit_interp",
            Engine::BpfkitJit => "bpfkit_jit",
            Engine::RbpfInterp => "rbpf_interp",
            Engine::RbpfJit => "rbpf_jit",
            Engine::SbpfInterp => "sbpf_interp",
            Engine::SbpfJit => "sbpf_jit",
            Engine::Native => "native",
        }
    }

    /// Column title.
    pub fn label(self) -> &'static str {
        match self {
            Engine::BpfkitInterp => "bpfkit interp",
            Engine::BpfkitJit => "bpfkit JIT",
            Engine::RbpfInterp => "rbpf interp",
            Engine::RbpfJit => "rbpf JIT",
            Engine::SbpfInterp => "sbpf interp",
            Engine::SbpfJit => "sbpf JIT",
            Engine::Native => "native",
        }
    }

    /// Why this engine cannot run `w` at all, if it cannot.
    pub fn not_applicable(self, w: &Workload) -> Option<String> {
        match (self, w) {
            (Engine::BpfkitJit, _) if !cfg!(feature = "jit") => Some("built without the `jit` feature".into()),
            (Engine::RbpfInterp | Engine::RbpfJit, Workload::Packet(_)) => {
                Some("no maps (and no ELF loader with map relocations)".into())
            }
            (Engine::SbpfInterp | Engine::SbpfJit, Workload::Packet(_)) => {
                Some("no maps, no BPF helpers (Solana syscalls instead)".into())
            }
            _ => None,
        }
    }

    /// Prepares `w` on this engine and lends `f` a runner for it.
    pub fn with_runner<R>(self, w: &Workload, f: impl FnOnce(&mut dyn Runner) -> R) -> Result<R, BenchError> {
        if let Some(reason) = self.not_applicable(w) {
            return Err(BenchError::NotApplicable { engine: self.label(), workload: w.name(), reason });
        }
        match (self, w) {
            (Engine::BpfkitInterp, Workload::Synthetic(s)) => bpfkit_interp::synthetic(*s, f),
            (Engine::BpfkitInterp, Workload::Packet(p)) => bpfkit_interp::packets(p, f),
            #[cfg(feature = "jit")]
            (Engine::BpfkitJit, Workload::Synthetic(s)) => bpfkit_jit::synthetic(*s, f),
            #[cfg(feature = "jit")]
            (Engine::BpfkitJit, Workload::Packet(p)) => bpfkit_jit::packets(p, f),
            (Engine::RbpfInterp, Workload::Synthetic(s)) => rbpf::synthetic(*s, false, f),
            (Engine::RbpfJit, Workload::Synthetic(s)) => rbpf::synthetic(*s, true, f),
            (Engine::SbpfInterp, Workload::Synthetic(s)) => sbpf::synthetic(*s, false, f),
            (Engine::SbpfJit, Workload::Synthetic(s)) => sbpf::synthetic(*s, true, f),
            (Engine::Native, Workload::Synthetic(s)) => native::synthetic(*s, f),
            (Engine::Native, Workload::Packet(p)) => native::packets(p, f),
            _ => unreachable!("not_applicable covers the other pairs"),
        }
    }
}

/// `BenchError::Engine` for an engine failure.
pub(crate) fn failed(engine: Engine, workload: &str, reason: impl std::fmt::Display) -> BenchError {
    BenchError::Engine { engine: engine.label(), workload: workload.to_string(), reason: reason.to_string() }
}
