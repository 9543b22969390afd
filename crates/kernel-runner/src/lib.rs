//! Runs clang-built BPF objects in the running Linux kernel, the reference side of bpfkit's
//! differential tests.
//!
//! [`load`] opens an object with libbpf (the system's `libbpf.so` through `libbpf-rs`), applies
//! a map initialisation ([`maps`]), loads every program and map (so the kernel verifier checks
//! every program) and fills program arrays and maps of maps. [`Loaded::run`] runs one program once
//! per input with `BPF_PROG_TEST_RUN`, pinned to one CPU (CPU 0 by default) with
//! `sched_setaffinity`: `BPF_F_TEST_RUN_ON_CPU` is only accepted for raw tracepoints, and the
//! kernel runs an XDP, skb or syscall test on the CPU of the calling thread. [`Loaded::dump_maps`]
//! reads every map back.
//!
//! Inputs and contexts by program type:
//! - XDP: `data_in` is the frame; the context is an `xdp_md` with `data = 0`, `data_end = len`
//!   (so no metadata, `ingress_ifindex` reads the loopback device, 1). `data_out` is what
//!   the kernel returns: the frame from `data_meta` on (metadata included) to `data_end`.
//! - tc (`sched_cls`/`sched_act`) and socket filters (and the other skb types the kernel can test
//!   run): `data_in` is the frame; the context is an all-zero `struct __sk_buff` (so `mark`,
//!   `priority`, `cb` start at 0 and `wire_len` is the frame length). The kernel makes the skb with
//!   `eth_type_trans` on the loopback device: `protocol` is the EtherType (VLAN tags not
//!   stripped), `pkt_type` follows the destination MAC (HOST for 00:00:00:00:00:00, MULTICAST
//!   for multicast and broadcast, OTHERHOST otherwise), `ifindex` is 1. tc programs see the
//!   Ethernet header at `data`; socket filters see the packet from the network header on (`len`
//!   = frame length - 14) and their `data_out` starts with 14 zero bytes in place of the
//!   Ethernet header.
//! - syscall: no data; the context is the input itself (raw bytes), written back after the run.
//!
//! The kernel refuses (`EINVAL`) frames shorter than an Ethernet header (14 bytes) for XDP and
//! skb programs, and for skb programs also IPv4 frames with fewer than 20 bytes after the
//! Ethernet header and IPv6 frames with fewer than 40 (seen on Linux 6.18); such runs are
//! reported as errors, not return values.

#![deny(unsafe_code)]

pub mod maps;
mod sys;
pub mod trace;

use std::collections::BTreeMap;
use std::os::fd::AsFd;
use std::path::Path;
use std::sync::Mutex;

use anyhow::{Context, bail};
use libbpf_rs::{MapCore, MapFlags, MapType, ObjectBuilder, ProgramType};

pub use maps::{Entry, MapDump, Slot};
pub use sys::{errno_name, pin_to_cpu};

/// How the kernel test-runs a program type (see the crate docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunKind {
    Xdp,
    /// An skb program; `l2`: the program sees the Ethernet header (tc), or not (socket filter).
    Skb {
        l2: bool,
    },
    Syscall,
}

impl RunKind {
    fn of(ty: ProgramType) -> Option<RunKind> {
        Some(match ty {
            ProgramType::Xdp => RunKind::Xdp,
            ProgramType::SchedCls | ProgramType::SchedAct => RunKind::Skb { l2: true },
            ProgramType::SocketFilter
            | ProgramType::CgroupSkb
            | ProgramType::LwtIn
            | ProgramType::LwtOut
            | ProgramType::LwtXmit => RunKind::Skb { l2: false },
            ProgramType::Syscall => RunKind::Syscall,
            _ => return None,
        })
    }

    /// Whether a packet with this return value is passed on (for `--out-pcap`): XDP_PASS and
    /// XDP_TX; for tc anything but TC_ACT_SHOT (2), TC_ACT_STOLEN (4), TC_ACT_QUEUED (5) and
    /// TC_ACT_TRAP (8); for socket filters a non-zero length; never for syscall programs.
    pub fn passes(self, retval: u32) -> bool {
        match self {
            RunKind::Xdp => retval == 2 || retval == 3,
            RunKind::Skb { l2: true } => !matches!(retval, 2 | 4 | 5 | 8),
            RunKind::Skb { l2: false } => retval != 0,
            RunKind::Syscall => false,
        }
    }
}

/// The result of one test run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunResult {
    /// The program's return value, or the errno of a run the kernel refused.
    pub retval: Result<u32, i32>,
    /// The packet after the run (XDP and skb programs).
    pub data_out: Option<Vec<u8>>,
    /// The context after the run.
    pub ctx_out: Option<Vec<u8>>,
}

impl RunResult {
    /// The line of a `--retvals` file: the return value in decimal (unsigned 32-bit), or the
    /// errno name of a refused run (`EINVAL`).
    pub fn retval_line(&self) -> String {
        match self.retval {
            Ok(v) => v.to_string(),
            Err(e) => errno_name(e),
        }
    }
}

/// A program of a loaded object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgDesc {
    pub name: String,
    pub section: String,
    pub prog_type: String,
}

/// A map of a loaded object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapDesc {
    pub name: String,
    pub map_type: String,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
}

/// An object loaded into the kernel.
pub struct Loaded {
    obj: libbpf_rs::Object,
}

static LIBBPF_LOG: Mutex<Vec<(libbpf_rs::PrintLevel, String)>> = Mutex::new(Vec::new());

fn libbpf_print(level: libbpf_rs::PrintLevel, msg: String) {
    if let Ok(mut log) = LIBBPF_LOG.lock() {
        log.push((level, msg));
    }
}

/// libbpf's messages since the last call at `Warn` and `Info` level (which include the
/// verifier's log of a program the kernel refused).
fn take_log() -> String {
    let log = LIBBPF_LOG.lock().map(|mut log| std::mem::take(&mut *log)).unwrap_or_default();
    log.into_iter().filter(|(level, _)| *level != libbpf_rs::PrintLevel::Debug).map(|(_, m)| m).collect()
}

/// The name a map is reported under: libbpf's name, except for the internal global-data maps,
/// which are named after their section (".data", not "objname.data").
pub fn display_name(libbpf_name: &str) -> String {
    match libbpf_name.find('.') {
        Some(dot) => libbpf_name[dot..].to_string(),
        None => libbpf_name.to_string(),
    }
}

fn is_internal(display: &str) -> bool {
    display.starts_with('.')
}

fn name_of(n: &std::ffi::OsStr) -> String {
    n.to_string_lossy().into_owned()
}

/// Open and load `object`, then apply `init` (see [`maps`]). Global-data maps (".data", ".bss",
/// ".rodata", ...) are initialised before the load (their one value, key "00000000", replaces
/// the section's contents), every other map after it.
pub fn load(object: &Path, init: Option<&MapDump>) -> anyhow::Result<Loaded> {
    load_with(object, init, 0).map(|(l, _)| l)
}

/// [`load`] with the kernel verifier's `log_level` set on every program (4 = `BPF_LOG_STATS`:
/// processed instructions and verification time); returns libbpf's log with the verifier's.
pub fn load_with(object: &Path, init: Option<&MapDump>, log_level: u32) -> anyhow::Result<(Loaded, String)> {
    libbpf_rs::set_print(Some((libbpf_rs::PrintLevel::Debug, libbpf_print)));
    let _ = take_log();
    let mut builder = ObjectBuilder::default();
    let mut open = builder.open_file(object).with_context(|| format!("opening {}", object.display()))?;
    if log_level != 0 {
        for mut p in open.progs_mut() {
            p.set_log_level(log_level);
        }
    }
    if let Some(init) = init {
        for mut map in open.maps_mut() {
            let display = display_name(&name_of(map.name()));
            let Some(entries) = init.get(&display) else { continue };
            if !is_internal(&display) {
                continue;
            }
            let mut value = map.initial_value().map(<[u8]>::to_vec).unwrap_or_default();
            for e in entries {
                let Slot::Bytes(bytes) = &e.slot else { bail!("map {display:?}: expected a \"value\"") };
                if e.key != [0, 0, 0, 0] {
                    bail!("map {display:?} has the one key \"00000000\"");
                }
                if bytes.len() != value.len() {
                    bail!("map {display:?}: value of {} bytes, the section has {}", bytes.len(), value.len());
                }
                value.clone_from(bytes);
            }
            map.set_initial_value(&value).with_context(|| format!("initialising {display}"))?;
        }
    }
    let obj = open.load().map_err(|e| {
        let log = take_log();
        anyhow::anyhow!("loading {} failed: {e}\n{log}", object.display())
    })?;
    let warnings = if log_level == 0 {
        take_log()
    } else {
        // The verifier's logs of loaded programs come at debug level.
        let log = LIBBPF_LOG.lock().map(|mut log| std::mem::take(&mut *log)).unwrap_or_default();
        log.into_iter().map(|(_, m)| m).collect()
    };
    if !warnings.is_empty() && std::env::var_os("KERNEL_RUN_QUIET").is_none() && log_level == 0 {
        eprint!("{warnings}");
    }
    let loaded = Loaded { obj };
    if let Some(init) = init {
        loaded.apply_init(init)?;
    }
    Ok((loaded, warnings))
}

impl Loaded {
    /// Programs of the object (name, section, type).
    pub fn programs(&self) -> Vec<ProgDesc> {
        self.obj
            .progs()
            .map(|p| ProgDesc {
                name: name_of(p.name()),
                section: name_of(p.section()),
                prog_type: format!("{:?}", p.prog_type()),
            })
            .collect()
    }

    /// Maps of the object.
    pub fn maps(&self) -> Vec<MapDesc> {
        self.obj
            .maps()
            .map(|m| MapDesc {
                name: display_name(&name_of(m.name())),
                map_type: format!("{:?}", m.map_type()),
                key_size: m.key_size(),
                value_size: m.value_size(),
                max_entries: m.max_entries(),
            })
            .collect()
    }

    fn find_map(&self, display: &str) -> Option<libbpf_rs::Map<'_>> {
        self.obj.maps().find(|m| display_name(&name_of(m.name())) == display)
    }

    fn find_prog(&self, name: &str) -> Option<libbpf_rs::Program<'_>> {
        self.obj.progs().find(|p| p.name() == name)
    }

    fn apply_init(&self, init: &MapDump) -> anyhow::Result<()> {
        let ncpus = libbpf_rs::num_possible_cpus()?;
        for (display, entries) in init {
            let map = self.find_map(display).with_context(|| format!("map-init: no map named {display:?}"))?;
            if is_internal(display) {
                continue; // done before the load
            }
            let ty = map.map_type();
            for e in entries {
                let res = match &e.slot {
                    Slot::Bytes(v) if matches!(ty, MapType::Queue | MapType::Stack) => {
                        map.update(&[], v, MapFlags::ANY)
                    }
                    Slot::Bytes(v) if ty.is_percpu() => {
                        map.update_percpu(&e.key, &vec![v.clone(); ncpus], MapFlags::ANY)
                    }
                    Slot::Bytes(v) => map.update(&e.key, v, MapFlags::ANY),
                    Slot::PerCpu(vs) => {
                        let mut vs = vs.clone();
                        vs.resize(ncpus, vec![0; map.value_size() as usize]);
                        map.update_percpu(&e.key, &vs, MapFlags::ANY)
                    }
                    Slot::Prog(name) => {
                        let prog = self.find_prog(name).with_context(|| format!("map-init: no program {name:?}"))?;
                        let fd = std::os::fd::AsRawFd::as_raw_fd(&prog.as_fd());
                        map.update(&e.key, &fd.to_ne_bytes(), MapFlags::ANY)
                    }
                    Slot::Map(name) => {
                        let inner = self.find_map(name).with_context(|| format!("map-init: no map {name:?}"))?;
                        let fd = std::os::fd::AsRawFd::as_raw_fd(&inner.as_fd());
                        map.update(&e.key, &fd.to_ne_bytes(), MapFlags::ANY)
                    }
                };
                res.with_context(|| format!("map-init: {display}[{}]", maps::hex(&e.key)))?;
            }
        }
        Ok(())
    }

    /// How `prog` would be test-run.
    pub fn run_kind(&self, prog: &str) -> anyhow::Result<RunKind> {
        let p = self.find_prog(prog).with_context(|| format!("no program named {prog:?}"))?;
        RunKind::of(p.prog_type())
            .with_context(|| format!("program {prog:?}: the kernel cannot test-run {:?} programs", p.prog_type()))
    }

    /// Run `prog` once per input on the calling thread (pin it first, see [`pin_to_cpu`]).
    /// Inputs are frames (XDP, skb programs) or contexts (syscall programs).
    pub fn run(&self, prog: &str, inputs: &[Vec<u8>]) -> anyhow::Result<Vec<RunResult>> {
        let kind = self.run_kind(prog)?;
        let p = self.find_prog(prog).with_context(|| format!("no program named {prog:?}"))?;
        let fd = p.as_fd();
        let mut data_out = vec![0u8; 1 << 16];
        let mut results = Vec::with_capacity(inputs.len());
        for input in inputs {
            let res = match kind {
                RunKind::Xdp => {
                    let md = libbpf_sys::xdp_md {
                        data: 0,
                        data_end: input.len() as u32,
                        data_meta: 0,
                        ingress_ifindex: 0,
                        rx_queue_index: 0,
                        egress_ifindex: 0,
                    };
                    let ctx_in = xdp_md_bytes(&md);
                    let mut ctx_out = vec![0u8; ctx_in.len()];
                    sys::test_run(fd, Some(input), Some(&mut data_out), Some(&ctx_in), Some(&mut ctx_out))
                        .map(|r| (r, ctx_out))
                }
                RunKind::Skb { .. } => {
                    let ctx_in = vec![0u8; SK_BUFF_SIZE];
                    let mut ctx_out = vec![0u8; ctx_in.len()];
                    sys::test_run(fd, Some(input), Some(&mut data_out), Some(&ctx_in), Some(&mut ctx_out))
                        .map(|r| (r, ctx_out))
                }
                RunKind::Syscall => {
                    let ctx = input.clone();
                    let ctx_in = if ctx.is_empty() { None } else { Some(ctx.as_slice()) };
                    // The kernel writes a syscall program's context back to ctx_in.
                    sys::test_run(fd, None, None, ctx_in, None).map(|mut r| {
                        r.ctx_len = ctx.len();
                        (r, ctx)
                    })
                }
            };
            results.push(match res {
                Ok((r, mut ctx_out)) => {
                    ctx_out.truncate(r.ctx_len);
                    let data = (kind != RunKind::Syscall).then(|| data_out[..r.data_len.min(data_out.len())].to_vec());
                    RunResult { retval: Ok(r.retval), data_out: data, ctx_out: Some(ctx_out) }
                }
                Err(errno) => RunResult { retval: Err(errno), data_out: None, ctx_out: None },
            });
        }
        Ok(results)
    }

    /// Read every map back (see [`maps`]). Destructive for queues, stacks and ring buffers.
    pub fn dump_maps(&self) -> anyhow::Result<MapDump> {
        let mut prog_names = BTreeMap::new();
        for p in self.obj.progs() {
            if let Ok(id) = libbpf_rs::Program::id_from_fd(p.as_fd()) {
                prog_names.insert(id, name_of(p.name()));
            }
        }
        let mut map_names = BTreeMap::new();
        for m in self.obj.maps() {
            if let Ok(info) = m.info() {
                map_names.insert(info.info.id, display_name(&name_of(m.name())));
            }
        }
        let mut dump = MapDump::new();
        for map in self.obj.maps() {
            let display = display_name(&name_of(map.name()));
            let entries = dump_map(&map, &prog_names, &map_names).with_context(|| format!("dumping map {display}"))?;
            dump.insert(display, entries);
        }
        Ok(dump)
    }
}

/// `sizeof(struct __sk_buff)` in the UAPI headers since Linux 5.16 (the last field is `hwtstamp`).
const SK_BUFF_SIZE: usize = 192;

fn xdp_md_bytes(md: &libbpf_sys::xdp_md) -> Vec<u8> {
    [md.data, md.data_end, md.data_meta, md.ingress_ifindex, md.rx_queue_index, md.egress_ifindex]
        .iter()
        .flat_map(|v| v.to_ne_bytes())
        .collect()
}

fn id_of(bytes: &[u8]) -> Option<u32> {
    Some(u32::from_ne_bytes(bytes.get(..4)?.try_into().ok()?))
}

fn dump_map(
    map: &libbpf_rs::Map<'_>,
    prog_names: &BTreeMap<u32, String>,
    map_names: &BTreeMap<u32, String>,
) -> anyhow::Result<Vec<Entry>> {
    let ty = map.map_type();
    let mut entries = Vec::new();
    match ty {
        MapType::Queue | MapType::Stack => {
            while let Some(v) = map.lookup_and_delete(&[])? {
                entries.push(Entry { key: Vec::new(), slot: Slot::Bytes(v) });
            }
            return Ok(entries);
        }
        MapType::RingBuf => {
            let records = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
            let sink = records.clone();
            let mut builder = libbpf_rs::RingBufferBuilder::new();
            builder.add(map, move |data: &[u8]| {
                sink.borrow_mut().push(data.to_vec());
                0
            })?;
            let rb = builder.build()?;
            rb.consume()?;
            drop(rb);
            let records = records.take();
            return Ok(records.into_iter().map(|r| Entry { key: Vec::new(), slot: Slot::Bytes(r) }).collect());
        }
        _ => {}
    }
    let keys: Vec<Vec<u8>> = map.keys().collect();
    for key in keys {
        let slot = match ty {
            _ if ty.is_percpu() => match map.lookup_percpu(&key, MapFlags::ANY)? {
                Some(vs) => Slot::PerCpu(vs),
                None => continue,
            },
            MapType::ProgArray => match map.lookup(&key, MapFlags::ANY) {
                Ok(Some(v)) => {
                    let id = id_of(&v).context("short program id")?;
                    Slot::Prog(prog_names.get(&id).cloned().unwrap_or_else(|| format!("#prog-id-{id}")))
                }
                _ => continue,
            },
            MapType::ArrayOfMaps | MapType::HashOfMaps => match map.lookup(&key, MapFlags::ANY) {
                Ok(Some(v)) => {
                    let id = id_of(&v).context("short map id")?;
                    Slot::Map(map_names.get(&id).cloned().unwrap_or_else(|| format!("#map-id-{id}")))
                }
                _ => continue,
            },
            _ => match map.lookup(&key, MapFlags::ANY) {
                Ok(Some(v)) => Slot::Bytes(v),
                Ok(None) => continue,
                Err(e) => return Err(e.into()),
            },
        };
        entries.push(Entry { key, slot });
    }
    entries.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(entries)
}

/// Whether this process may use bpf() the way the runner does (create a map, load an XDP
/// program, test-run it): Ok, or the reason it may not.
pub fn bpf_available() -> Result<(), String> {
    let opts = libbpf_sys::bpf_map_create_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_map_create_opts>() as _,
        ..Default::default()
    };
    if let Err(e) = libbpf_rs::MapHandle::create(MapType::Array, Some("probe"), 4, 4, 1, &opts) {
        return Err(format!("creating an array map: {e}"));
    }
    sys::probe_xdp_test_run()
}

/// Read the frames of a pcap file (any link type; the frames are used as they are).
pub fn read_pcap(path: &Path) -> anyhow::Result<Vec<(std::time::Duration, Vec<u8>)>> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut reader = pcap_file::pcap::PcapReader::new(std::io::BufReader::new(file))
        .with_context(|| format!("{} is not a pcap file", path.display()))?;
    let mut frames = Vec::new();
    while let Some(pkt) = reader.next_packet() {
        let pkt = pkt.with_context(|| format!("reading {}", path.display()))?;
        frames.push((pkt.timestamp, pkt.data.into_owned()));
    }
    Ok(frames)
}

/// Write frames as a little-endian microsecond Ethernet pcap.
pub fn write_pcap(path: &Path, frames: &[(std::time::Duration, Vec<u8>)]) -> anyhow::Result<()> {
    use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
    let file = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let header = PcapHeader {
        version_major: 2,
        version_minor: 4,
        ts_correction: 0,
        ts_accuracy: 0,
        snaplen: 65535,
        datalink: pcap_file::DataLink::ETHERNET,
        ts_resolution: pcap_file::TsResolution::MicroSecond,
        endianness: pcap_file::Endianness::Little,
    };
    let mut writer = PcapWriter::with_header(std::io::BufWriter::new(file), header)?;
    for (ts, data) in frames {
        writer.write_packet(&PcapPacket::new(*ts, data.len() as u32, data))?;
    }
    std::io::Write::flush(&mut writer.into_writer())?;
    Ok(())
}

/// The thread id of the caller (for [`trace::TraceCursor`]).
pub fn current_tid() -> u32 {
    sys::gettid()
}

/// The CPU the caller runs on now.
pub fn current_cpu() -> Option<usize> {
    sys::current_cpu()
}
