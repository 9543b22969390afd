//! The comparison benchmark: bpfkit's interpreter and JIT (the `jit` feature, on by default) against
//! rbpf, solana-sbpf and the same C compiled natively, on the same workloads.
//!
//! ```sh
//! CARGO_TARGET_DIR=target-bench cargo bench -p bpfkit-bench --bench compare
//! CARGO_TARGET_DIR=target-bench cargo test -p bpfkit-bench          # smoke test: every engine agrees
//! ```
//!
//! The crate is a library (workloads, engines, the result table) shared by the benchmark
//! (`benches/compare.rs`) and the smoke test (`tests/smoke.rs`); `README.md` explains the
//! columns of the table and what is not applicable where.
//!
//! - [`workload`]: the workloads: two synthetic programs (`sum_1k`, `alu_loop_100k`) and BPF C
//!   packet programs of `tests/bpf` run over `examples/sample.pcap`.
//! - [`engine`]: one module per engine, each running a workload through a [`engine::Runner`].
//! - [`report`]: the final table (ns per run or per packet, ratios, geometric means) and its
//!   JSON form.
//! - [`switch`]: the switch workloads (a bytecode interpreter in BPF C with 32 and 256 opcodes,
//!   built with jump tables and with compare chains) on bpfkit and natively, and their table.
//!
//! Every engine's results are compared with the bpfkit interpreter's (the reference semantics)
//! before it is timed, so the benchmark cannot measure a broken engine.
#![deny(unsafe_code)]

pub mod engine;
pub mod report;
pub mod switch;
pub mod workload;

pub use engine::{Engine, Results, Runner};
pub use workload::Workload;

/// What can go wrong preparing or running a workload.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The engine cannot run this workload at all (the reason goes into the table).
    #[error("{engine} cannot run {workload}: {reason}")]
    NotApplicable { engine: &'static str, workload: String, reason: String },
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{path}: not a readable pcap capture: {reason}")]
    Pcap { path: String, reason: String },
    #[error("{path}: bad map initialiser: {reason}")]
    MapInit { path: String, reason: String },
    #[error(transparent)]
    Bpfkit(#[from] bpfkit::Error),
    /// An engine failed to load, compile or run a workload.
    #[error("{engine} on {workload}: {reason}")]
    Engine { engine: &'static str, workload: String, reason: String },
    /// An engine's results differ from the bpfkit interpreter's.
    #[error("{engine} on {workload}: results differ from the bpfkit interpreter's: {detail}")]
    Mismatch { engine: &'static str, workload: String, detail: String },
    /// A natively compiled program keeps its maps and global variables in process globals, so
    /// its results are only comparable on its first use in a process.
    #[error("the native build of {program} already ran in this process (its state is global: one use per process)")]
    NativeStateUsed { program: &'static str },
}

/// Compares an engine's results with the reference results, naming the first difference.
pub fn check_results(
    engine: Engine,
    workload: &Workload,
    reference: &Results,
    got: &Results,
) -> Result<(), BenchError> {
    let mismatch = |detail: String| BenchError::Mismatch { engine: engine.label(), workload: workload.name(), detail };
    let (want, have) = (&reference.values, &got.values);
    if want.len() != have.len() {
        return Err(mismatch(format!("{} results, expected {}", have.len(), want.len())));
    }
    if let Some(i) = want.iter().zip(have).position(|(a, b)| a != b) {
        let differing = want.iter().zip(have).filter(|(a, b)| a != b).count();
        let what = if want.len() == 1 { "r0".to_string() } else { format!("packet {i}") };
        return Err(mismatch(format!(
            "{what}: {} instead of {} ({differing} of {} differ)",
            have[i],
            want[i],
            want.len()
        )));
    }
    for (name, entries) in &reference.maps {
        let Some(theirs) = got.maps.get(name) else { return Err(mismatch(format!("map `{name}` missing"))) };
        if theirs.len() != entries.len() {
            return Err(mismatch(format!("map `{name}`: {} entries instead of {}", theirs.len(), entries.len())));
        }
        if let Some(((k, v), (k2, v2))) = entries.iter().zip(theirs).find(|(a, b)| a != b) {
            return Err(mismatch(format!(
                "map `{name}`: entry {}: {} instead of {}: {}",
                hex(k2),
                hex(v2),
                hex(k),
                hex(v)
            )));
        }
    }
    if let Some(extra) = got.maps.keys().find(|k| !reference.maps.contains_key(*k)) {
        return Err(mismatch(format!("unexpected map `{extra}`")));
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
