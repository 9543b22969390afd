//! Native: the same computations compiled by the host C compiler (`cc -O2`, `build.rs`).
//!
//! - Synthetic workloads: their C equivalents in `native/synthetic.c`.
//! - Packet workloads: the BPF C sources themselves (`tests/bpf/*.bpf.c`,
//!   `examples/xdp_count.bpf.c`), each compiled through a wrapper in `native/programs/` with
//!   `native/shim` first on the include path. The shim's `bpf/bpf_helpers.h` and
//!   `bpf/bpf_endian.h` replace libbpf's: `SEC()` vanishes, BTF map definitions stay structs whose
//!   field types carry the definition, and the map helpers become calls into native maps
//!   (`native/maps.c`: arrays indexed inline, an open-addressing hash, a longest-prefix-first
//!   LPM list). The XDP context is the one source-level difference that needs a trick:
//!   `native/shim/bpfkit_native_prelude.h` renames the UAPI `struct xdp_md` while
//!   `<linux/bpf.h>` is parsed and declares it again with 64-bit `data`/`data_end`/`data_meta`,
//!   so `(void *)(long)ctx->data` is a real pointer ([`XdpMd`] is that layout).
//!
//! - The switch VM (`bpf/switch_vm.bpf.c`, [`crate::switch`]): the BPF C through the wrappers
//!   `native/programs/switch_vm_jt.c` (`cc -O2`: a jump table) and `switch_vm_nojt.c`
//!   (`cc -O2 -fno-jump-tables`: compares); no state, so no limit on uses ([`switch_vm`]).
//!
//! A native packet program's maps and global variables are process globals: each program can be
//! prepared once per process ([`BenchError::NativeStateUsed`] otherwise), so that its results are
//! always those of its initial state, like the other engines'.
#![allow(unsafe_code)]

use super::{Engine, MapEntries, Results, Runner};
use crate::BenchError;
use crate::switch::{Build, Machine};
use crate::workload::{ALU_ITERATIONS, PacketWorkload, Synthetic};
use std::ffi::{CString, c_char, c_int, c_long, c_void};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};

/// The native XDP context (`native/shim/bpfkit_native_prelude.h`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct XdpMd {
    pub data: u64,
    pub data_end: u64,
    pub data_meta: u64,
    pub ingress_ifindex: u32,
    pub rx_queue_index: u32,
    pub egress_ifindex: u32,
}

/// `struct vm_ctx` of `bpf/switch_vm.bpf.c`: the switch VM's context.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct VmCtx {
    pub seed: u64,
    pub start: u64,
    pub result: u64,
}

/// One run of the natively compiled switch VM from `seed` at opcode `start`: (`ctx->result`,
/// the return value).
pub fn switch_vm(machine: Machine, build: Build, seed: u64, start: u64) -> (u64, i32) {
    let run: unsafe extern "C" fn(*mut VmCtx) -> c_int = match (machine, build) {
        (Machine::Ops32, Build::JumpTable) => bpfkit_native_switch_vm_32_jt,
        (Machine::Ops256, Build::JumpTable) => bpfkit_native_switch_vm_256_jt,
        (Machine::Ops32, Build::IfElse) => bpfkit_native_switch_vm_32_nojt,
        (Machine::Ops256, Build::IfElse) => bpfkit_native_switch_vm_256_nojt,
    };
    let mut ctx = VmCtx { seed: black_box(seed), start: black_box(start), result: 0 };
    // SAFETY: the function reads `ctx->seed`, `ctx->start` and its own constant bytecode
    // (every index masked to its length), writes `ctx->result`, and touches nothing else;
    // `ctx` outlives the call.
    let ret = unsafe { run(&mut ctx) };
    (ctx.result, ret)
}

type RunFn = unsafe extern "C" fn(*mut XdpMd) -> c_int;
/// The program's map named so (NUL-terminated), created on first use; NULL if it has none.
type MapFn = unsafe extern "C" fn(*const c_char) -> *mut NativeMapState;

/// `struct bpfkit_map` of `native/shim/bpfkit_native_maps.h`, only ever behind a pointer.
#[repr(C)]
struct NativeMapState {
    _opaque: [u8; 0],
}

unsafe extern "C" {
    fn bpfkit_native_sum_words(buf: *const u8, len: u64) -> u64;
    fn bpfkit_native_alu_loop(iterations: u64) -> u64;

    fn bpfkit_native_run_xdp_count(ctx: *mut XdpMd) -> c_int;
    fn bpfkit_native_map_xdp_count(name: *const c_char) -> *mut NativeMapState;
    fn bpfkit_native_run_maps_xdp(ctx: *mut XdpMd) -> c_int;
    fn bpfkit_native_map_maps_xdp(name: *const c_char) -> *mut NativeMapState;
    fn bpfkit_native_run_globals_xdp(ctx: *mut XdpMd) -> c_int;
    fn bpfkit_native_map_globals_xdp(name: *const c_char) -> *mut NativeMapState;
    fn bpfkit_native_run_lpm_xdp(ctx: *mut XdpMd) -> c_int;
    fn bpfkit_native_map_lpm_xdp(name: *const c_char) -> *mut NativeMapState;

    fn bpfkit_native_switch_vm_32_jt(ctx: *mut VmCtx) -> c_int;
    fn bpfkit_native_switch_vm_256_jt(ctx: *mut VmCtx) -> c_int;
    fn bpfkit_native_switch_vm_32_nojt(ctx: *mut VmCtx) -> c_int;
    fn bpfkit_native_switch_vm_256_nojt(ctx: *mut VmCtx) -> c_int;

    fn bpfkit_native_map_update(
        map: *mut NativeMapState,
        key: *const c_void,
        key_len: u64,
        value: *const c_void,
        value_len: u64,
        flags: u64,
    ) -> c_long;
    fn bpfkit_native_map_key_size(map: *const NativeMapState) -> u32;
    fn bpfkit_native_map_value_size(map: *const NativeMapState) -> u32;
    fn bpfkit_native_map_max_entries(map: *const NativeMapState) -> u32;
    fn bpfkit_native_map_element(map: *const NativeMapState, i: u32, key: *mut c_void, value: *mut c_void) -> c_int;
}

/// A natively compiled XDP program (`native/programs/<name>.c`).
struct NativeXdp {
    name: &'static str,
    run: RunFn,
    map: MapFn,
    /// Set once the program has been prepared in this process.
    claimed: AtomicBool,
}

/// The natively compiled programs (the list of `build.rs`).
static NATIVE_XDP: [NativeXdp; 4] = [
    NativeXdp {
        name: "xdp_count",
        run: bpfkit_native_run_xdp_count,
        map: bpfkit_native_map_xdp_count,
        claimed: AtomicBool::new(false),
    },
    NativeXdp {
        name: "maps_xdp",
        run: bpfkit_native_run_maps_xdp,
        map: bpfkit_native_map_maps_xdp,
        claimed: AtomicBool::new(false),
    },
    NativeXdp {
        name: "globals_xdp",
        run: bpfkit_native_run_globals_xdp,
        map: bpfkit_native_map_globals_xdp,
        claimed: AtomicBool::new(false),
    },
    NativeXdp {
        name: "lpm_xdp",
        run: bpfkit_native_run_lpm_xdp,
        map: bpfkit_native_map_lpm_xdp,
        claimed: AtomicBool::new(false),
    },
];

impl NativeXdp {
    /// The program's map `name`. Only called by the runner that claimed the program.
    fn map(&self, name: &str) -> Option<*mut NativeMapState> {
        let c_name = CString::new(name).ok()?;
        // SAFETY: a NUL-terminated string; the function compares it with the program's map
        // names and creates the map's state on first use (the caller owns the program's state).
        let map = unsafe { (self.map)(c_name.as_ptr()) };
        (!map.is_null()).then_some(map)
    }
}

/// The entries of a native map, sorted by key.
fn native_entries(map: *mut NativeMapState) -> MapEntries {
    // SAFETY: `map` is a live map state (maps are never freed); these read its definition.
    let (key_size, value_size, max) = unsafe {
        (bpfkit_native_map_key_size(map), bpfkit_native_map_value_size(map), bpfkit_native_map_max_entries(map))
    };
    let mut out = Vec::new();
    for i in 0..max {
        let mut key = vec![0u8; key_size as usize];
        let mut value = vec![0u8; value_size as usize];
        // SAFETY: `key` and `value` hold the map's key and value sizes, which is what the
        // function copies out.
        if unsafe { bpfkit_native_map_element(map, i, key.as_mut_ptr().cast(), value.as_mut_ptr().cast()) } != 0 {
            out.push((key, value));
        }
    }
    out.sort();
    out
}

/// Whether `program` has a native build.
pub fn has_native_build(program: &str) -> bool {
    NATIVE_XDP.iter().any(|n| n.name == program)
}

struct SyntheticRunner {
    workload: Synthetic,
    input: Vec<u8>,
}

impl SyntheticRunner {
    fn run(&self) -> u64 {
        match self.workload {
            // SAFETY: reads [buf, buf + len) only; `input` is 1024 bytes, a multiple of 8.
            Synthetic::Sum1k => unsafe {
                bpfkit_native_sum_words(black_box(self.input.as_ptr()), black_box(self.input.len() as u64))
            },
            // SAFETY: pure computation on its argument (>= 1).
            Synthetic::AluLoop100k => unsafe { bpfkit_native_alu_loop(black_box(ALU_ITERATIONS)) },
        }
    }
}

impl Runner for SyntheticRunner {
    fn results(&mut self) -> Result<Results, BenchError> {
        Ok(Results { values: vec![self.run()], ..Results::default() })
    }

    fn iterate(&mut self) -> u64 {
        self.run()
    }
}

pub(super) fn synthetic<R>(s: Synthetic, f: impl FnOnce(&mut dyn Runner) -> R) -> Result<R, BenchError> {
    Ok(f(&mut SyntheticRunner { workload: s, input: s.input() }))
}

/// XDP frame geometry, as bpfkit's and the kernel's test run lay packets out: 256 bytes of
/// headroom in a 4096-byte frame.
const HEADROOM: usize = 256;
const FRAME: usize = 4096;

struct XdpRunner {
    program: &'static NativeXdp,
    /// The maps compared after a pass, with their states.
    maps: Vec<(&'static str, *mut NativeMapState)>,
    /// One frame per packet, the packet at `HEADROOM`.
    frames: Vec<Box<[u8]>>,
    lens: Vec<usize>,
}

impl XdpRunner {
    fn run_one(&mut self, i: usize) -> u64 {
        let frame = self.frames[i].as_mut_ptr();
        let data = frame as u64 + HEADROOM as u64;
        let mut ctx = XdpMd {
            data,
            data_end: data + self.lens[i] as u64,
            data_meta: data,
            ingress_ifindex: 1,
            rx_queue_index: 0,
            egress_ifindex: 0,
        };
        // SAFETY: the program is the C of a BPF program the kernel verifier accepts: it reads
        // the packet only inside [data, data_end) after comparing with data_end (the native build
        // keeps those comparisons), writes only its own maps and globals, and calls only the
        // shim's helpers. The frame outlives the call; `claimed` makes this runner the only user
        // of the program's state in the process, and runners are used from one thread.
        let action = unsafe { (self.program.run)(&mut ctx) };
        u64::from(action as u32)
    }
}

impl Runner for XdpRunner {
    fn results(&mut self) -> Result<Results, BenchError> {
        let values = (0..self.frames.len()).map(|i| self.run_one(i)).collect();
        let maps = self.maps.iter().map(|(name, map)| (name.to_string(), native_entries(*map))).collect();
        Ok(Results { values, maps })
    }

    fn iterate(&mut self) -> u64 {
        (0..self.frames.len()).map(|i| self.run_one(i)).sum()
    }
}

pub(super) fn packets<R>(p: &PacketWorkload, f: impl FnOnce(&mut dyn Runner) -> R) -> Result<R, BenchError> {
    let name = p.program.name;
    let Some(program) = NATIVE_XDP.iter().find(|n| n.name == name) else {
        return Err(BenchError::NotApplicable {
            engine: Engine::Native.label(),
            workload: name.to_string(),
            reason: "no native build of this program".into(),
        });
    };
    if program.claimed.swap(true, Ordering::SeqCst) {
        return Err(BenchError::NativeStateUsed { program: program.name });
    }
    let init_path = p.program.map_init.unwrap_or_default();
    let no_map = |map: &str| BenchError::Engine {
        engine: Engine::Native.label(),
        workload: name.to_string(),
        reason: format!("the native build has no map `{map}`"),
    };
    for e in p.program.map_init_entries()? {
        let map = program.map(&e.map).ok_or_else(|| no_map(&e.map))?;
        // SAFETY: `map` is a live map state; key and value are passed with their lengths, which
        // the function checks against the map's before copying.
        let rc = unsafe {
            bpfkit_native_map_update(
                map,
                e.key.as_ptr().cast(),
                e.key.len() as u64,
                e.value.as_ptr().cast(),
                e.value.len() as u64,
                0,
            )
        };
        if rc != 0 {
            let reason = match rc {
                -22 => format!("native map `{}`: key or value length differs from the map's", e.map),
                rc => format!("native map `{}`: update failed with {rc}", e.map),
            };
            return Err(BenchError::MapInit { path: init_path.to_string(), reason });
        }
    }
    let maps = p
        .program
        .maps
        .iter()
        .map(|m| program.map(m).map(|s| (*m, s)).ok_or_else(|| no_map(m)))
        .collect::<Result<_, _>>()?;
    let mut frames = Vec::with_capacity(p.capture.frames.len());
    let mut lens = Vec::with_capacity(p.capture.frames.len());
    for data in &p.capture.frames {
        let mut frame = vec![0u8; FRAME].into_boxed_slice();
        frame[HEADROOM..HEADROOM + data.len()].copy_from_slice(data);
        frames.push(frame);
        lens.push(data.len());
    }
    Ok(f(&mut XdpRunner { program, maps, frames, lens }))
}
