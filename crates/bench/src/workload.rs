//! The workloads: two synthetic programs and BPF C packet programs over a capture.
//!
//! The synthetic programs are those of `crates/interp/benches/interp.rs` (keep them in sync):
//! - `sum_1k`: `r0` = the sum of the 128 u64 words of a 1 KiB buffer (`r1` = buffer, `r2` =
//!   length; 517 instructions executed);
//! - `alu_loop_100k`: 100,000 iterations of add/xor/mul/sub and a back edge (500,003
//!   instructions).
//!
//! The packet programs are the XDP programs of `tests/bpf` (and `examples/xdp_count`) whose C
//! the native engine can compile ([`PACKET_PROGRAMS`]), each run over every frame of
//! `examples/sample.pcap` that an XDP test run accepts (the 7 frames shorter than an Ethernet
//! header are refused by the kernel and by bpfkit, so by every engine here).

use crate::BenchError;
use bpfkit_isa::{AluOp, Insn, Operand, Reg, Width};
use std::path::PathBuf;
use std::sync::Arc;

/// The repository root (this crate is `crates/bench`).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The capture the packet workloads run over.
pub const CAPTURE: &str = "examples/sample.pcap";

/// A synthetic workload: one run of a small program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Synthetic {
    Sum1k,
    AluLoop100k,
}

/// Iterations of `alu_loop_100k`.
pub use bpfkit_testing::workloads::ALU_ITERATIONS;

fn alu(op: AluOp, dst: Reg, src: Operand) -> Insn {
    Insn::Alu { width: Width::W64, op, dst, src }
}

impl Synthetic {
    pub fn name(self) -> &'static str {
        match self {
            Synthetic::Sum1k => "sum_1k",
            Synthetic::AluLoop100k => "alu_loop_100k",
        }
    }

    /// The program, taking `r1` = the input's address and `r2` = its length.
    pub fn program(self) -> Vec<Insn> {
        match self {
            Synthetic::Sum1k => bpfkit_testing::workloads::sum_1k(),
            Synthetic::AluLoop100k => bpfkit_testing::workloads::alu_loop_100k(),
        }
    }

    /// The program for an engine whose entry sets only `r1` (rbpf): [`Synthetic::program`]
    /// preceded by `mov r2, <input length>` when the program reads `r2` (one more instruction
    /// executed; the jumps are relative, so nothing else changes).
    pub fn program_r1_only(self) -> Vec<Insn> {
        let mut p = self.program();
        if self == Synthetic::Sum1k {
            p.insert(0, alu(AluOp::Mov, Reg::R2, Operand::Imm(self.input().len() as i32)));
        }
        p
    }

    /// The input memory (`r1`, `r2`).
    pub fn input(self) -> Vec<u8> {
        match self {
            Synthetic::Sum1k => (0..1024u32).map(|i| i as u8).collect(),
            Synthetic::AluLoop100k => Vec::new(),
        }
    }

    /// `r0`, computed in Rust (the engines are also checked against this).
    pub fn expected(self) -> u64 {
        match self {
            Synthetic::Sum1k => self
                .input()
                .chunks_exact(8)
                .map(|w| u64::from_le_bytes(w.try_into().expect("8 bytes")))
                .fold(0, u64::wrapping_add),
            Synthetic::AluLoop100k => {
                let (mut r0, mut r1) = (1u64, ALU_ITERATIONS);
                while r1 != 0 {
                    r0 = (r0.wrapping_add(r1) ^ 0x5a).wrapping_mul(3);
                    r1 -= 1;
                }
                r0
            }
        }
    }
}

/// An XDP program of the repository and how to load it.
#[derive(Debug)]
pub struct PacketProgram {
    /// The program's name in its object (and the workload's name).
    pub name: &'static str,
    /// The object, relative to the repository root.
    pub object: &'static str,
    /// Its C source, relative to the repository root.
    pub source: &'static str,
    /// A map initialiser (the `--map-init` format of `bpfkit run`, values as one hex string),
    /// relative to the repository root.
    pub map_init: Option<&'static str>,
    /// The maps whose contents after a pass are compared across engines (global data is not:
    /// the native build keeps it in C globals).
    pub maps: &'static [&'static str],
}

/// One entry of a map initialiser: map name, key bytes, value bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapInitEntry {
    pub map: String,
    pub key: Vec<u8>,
    pub value: Vec<u8>,
}

impl PacketProgram {
    /// The entries of [`PacketProgram::map_init`] (none without one): `{"map": [{"key": "<hex>",
    /// "value": "<hex>"}, ...], ...}`, applied in file order with `BPF_ANY`.
    pub fn map_init_entries(&self) -> Result<Vec<MapInitEntry>, BenchError> {
        let Some(rel) = self.map_init else { return Ok(Vec::new()) };
        let path = repo_root().join(rel);
        let bad = |reason: String| BenchError::MapInit { path: rel.to_string(), reason };
        let text = std::fs::read_to_string(&path).map_err(|source| BenchError::Io { path: rel.to_string(), source })?;
        let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        let maps = json.as_object().ok_or_else(|| bad("expected an object of maps".into()))?;
        let mut out = Vec::new();
        for (map, entries) in maps {
            let entries = entries.as_array().ok_or_else(|| bad(format!("map `{map}`: expected a list")))?;
            for e in entries {
                let field = |name: &str| {
                    let text = e[name].as_str().ok_or_else(|| bad(format!("map `{map}`: entry without \"{name}\"")))?;
                    parse_hex(text).ok_or_else(|| bad(format!("map `{map}`: `{text}` is not hex bytes")))
                };
                out.push(MapInitEntry { map: map.clone(), key: field("key")?, value: field("value")? });
            }
        }
        Ok(out)
    }
}

fn parse_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

/// The packet programs benchmarked: those whose C the native engine compiles (the native shim
/// has array, hash and LPM maps and the lookup/update/delete helpers). Left out: `tail_entry`
/// (tail calls), `ringbuf_xdp` (ring buffers, queue, stack), `helpers_xdp` (clocks, printk,
/// snprintf, csum_diff, bpf_loop...), `adjust_xdp` (head/tail/meta adjustments),
/// `map_in_map_xdp` (maps of maps), and the skb and syscall programs (not XDP).
pub const PACKET_PROGRAMS: &[PacketProgram] = &[
    PacketProgram {
        name: "xdp_count",
        object: "examples/xdp_count.bpf.o",
        source: "examples/xdp_count.bpf.c",
        map_init: None,
        maps: &["stats"],
    },
    PacketProgram {
        name: "maps_xdp",
        object: "tests/bpf/maps.bpf.o",
        source: "tests/bpf/maps.bpf.c",
        map_init: None,
        maps: &[
            "class_stats",
            "class_pcpu",
            "by_ethertype",
            "by_l4_pcpu",
            "open_flows",
            "by_saddr_lru",
            "by_dport_lru_pcpu",
        ],
    },
    PacketProgram {
        name: "globals_xdp",
        object: "tests/bpf/globals.bpf.o",
        source: "tests/bpf/globals.bpf.c",
        map_init: None,
        maps: &[],
    },
    PacketProgram {
        name: "lpm_xdp",
        object: "tests/bpf/lpm.bpf.o",
        source: "tests/bpf/lpm.bpf.c",
        map_init: Some("tests/bpf/lpm.init.json"),
        maps: &["routes4", "routes6", "rule_hits"],
    },
];

/// The frames of a capture that an XDP test run accepts.
#[derive(Debug)]
pub struct Capture {
    pub frames: Vec<Vec<u8>>,
    /// Frames of the file left out (refused by the kernel's and bpfkit's XDP test run).
    pub refused: usize,
}

impl Capture {
    /// Reads `path` (pcap), keeping the frames `bpfkit::XdpPacket` accepts.
    pub fn load(path: &std::path::Path) -> Result<Capture, BenchError> {
        let shown = path.display().to_string();
        let f = std::fs::File::open(path).map_err(|source| BenchError::Io { path: shown.clone(), source })?;
        let mut reader = pcap_file::pcap::PcapReader::new(f)
            .map_err(|e| BenchError::Pcap { path: shown.clone(), reason: e.to_string() })?;
        let (mut frames, mut refused) = (Vec::new(), 0);
        while let Some(p) = reader.next_packet() {
            let p = p.map_err(|e| BenchError::Pcap { path: shown.clone(), reason: e.to_string() })?;
            if bpfkit::XdpPacket::new(&p.data).is_ok() {
                frames.push(p.data.into_owned());
            } else {
                refused += 1;
            }
        }
        Ok(Capture { frames, refused })
    }
}

/// A packet workload: a program over the capture.
#[derive(Clone, Debug)]
pub struct PacketWorkload {
    pub program: &'static PacketProgram,
    pub capture: Arc<Capture>,
}

/// One workload of the benchmark.
#[derive(Clone, Debug)]
pub enum Workload {
    Synthetic(Synthetic),
    Packet(PacketWorkload),
}

impl Workload {
    /// Every workload, synthetic ones first, the capture read once.
    pub fn all() -> Result<Vec<Workload>, BenchError> {
        let capture = Arc::new(Capture::load(&repo_root().join(CAPTURE))?);
        let mut all = vec![Workload::Synthetic(Synthetic::Sum1k), Workload::Synthetic(Synthetic::AluLoop100k)];
        all.extend(
            PACKET_PROGRAMS
                .iter()
                .map(|program| Workload::Packet(PacketWorkload { program, capture: Arc::clone(&capture) })),
        );
        Ok(all)
    }

    pub fn name(&self) -> String {
        match self {
            Workload::Synthetic(s) => s.name().to_string(),
            Workload::Packet(p) => p.program.name.to_string(),
        }
    }

    /// What one unit of the table is: a run, or a packet.
    pub fn unit(&self) -> &'static str {
        match self {
            Workload::Synthetic(_) => "run",
            Workload::Packet(_) => "packet",
        }
    }

    /// Units per timed iteration ([`crate::Runner::iterate`]): 1, or the packets of the capture.
    pub fn units_per_iteration(&self) -> u64 {
        match self {
            Workload::Synthetic(_) => 1,
            Workload::Packet(p) => p.capture.frames.len() as u64,
        }
    }
}
