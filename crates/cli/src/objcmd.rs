//! Commands over ELF objects: `prog list`, `prog dump`, `run OBJ --pcap`, `map dump`.

use crate::hexfmt;
use anyhow::{Context, Result, bail};
use bpfkit::{Object, Prog, Runtime, SkbMeta, Worker, XdpPacket};
use bpfkit_maps::Map;
use bpfkit_object::ProgType;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The arguments of `bpfkit run` (an object over a capture or contexts, or `--asm`).
#[derive(clap::Args)]
pub struct RunArgs {
    /// ELF object (clang -target bpf) to run.
    #[arg(conflicts_with = "asm", required_unless_present = "asm")]
    pub(crate) object: Option<PathBuf>,
    /// Program to run (function or section name); optional when the object has one.
    #[arg(long)]
    pub(crate) prog: Option<String>,
    /// Packet capture (pcap) to run the program over.
    #[arg(long, value_name = "FILE")]
    pub(crate) pcap: Option<PathBuf>,
    /// Run over the capture N times (results are those of the first round).
    #[arg(long, default_value_t = 1)]
    pub(crate) repeat: u64,
    /// Write the packets that pass (XDP_PASS/XDP_TX, as the program left them) to a pcap.
    #[arg(long, value_name = "FILE")]
    pub(crate) out_pcap: Option<PathBuf>,
    /// Write one decimal return value per packet, one per line.
    #[arg(long, value_name = "FILE")]
    pub(crate) retvals: Option<PathBuf>,
    /// Write every map's final contents as JSON.
    #[arg(long, value_name = "FILE")]
    pub(crate) dump_maps: Option<PathBuf>,
    /// Load map entries (same JSON; prog/map slots as {"key","prog"} / {"key","map"}) first.
    #[arg(long, value_name = "FILE")]
    pub(crate) map_init: Option<PathBuf>,
    /// Print the summary as JSON.
    #[arg(long)]
    pub(crate) json: bool,
    /// Spread the capture over N worker threads (per-CPU maps get one slot per worker).
    #[arg(long, default_value_t = 1)]
    pub(crate) threads: usize,
    /// Write bpf_trace_printk output here instead of standard error.
    #[arg(long, value_name = "FILE")]
    pub(crate) trace: Option<PathBuf>,
    /// Print this map's contents (JSON) after the run.
    #[arg(long, value_name = "MAP")]
    pub(crate) dump_map: Option<String>,
    /// A syscall program's context, as hex (repeat for several runs).
    #[arg(long, value_name = "HEX")]
    pub(crate) ctx: Vec<String>,
    /// Contexts for a syscall program, one hex line per run.
    #[arg(long, value_name = "FILE")]
    pub(crate) ctx_file: Option<PathBuf>,
    /// Write each syscall run's context after the run, one hex line per run.
    #[arg(long, value_name = "FILE")]
    pub(crate) ctx_out: Option<PathBuf>,
    /// Assembly file to run.
    #[arg(long = "asm", value_name = "FILE")]
    pub(crate) asm: Option<PathBuf>,
    /// Memory contents as hex bytes ("00 01 ff" or "0001ff").
    #[arg(long, conflicts_with = "mem_file", value_name = "HEX")]
    pub(crate) mem: Option<String>,
    /// Memory contents read from a file.
    #[arg(long, value_name = "FILE")]
    pub(crate) mem_file: Option<PathBuf>,
    /// Execution backend.
    #[arg(long, value_enum, default_value_t = crate::Backend::Auto)]
    pub(crate) backend: crate::Backend,
    /// Run programs bpfkit's verifier refuses anyway, in the interpreter or the JIT (you vouch
    /// for them: the JIT does no bounds checks).
    #[arg(long)]
    pub(crate) trust_unverified: bool,
    /// Stop after this many taken backward jumps (unverified programs may loop forever).
    #[arg(long, value_name = "N")]
    pub(crate) branch_limit: Option<u64>,
    /// Set a static key after load, before running (NAME=on or NAME=off; repeatable, applied in
    /// order). `bpfkit key list OBJ` lists the keys.
    #[arg(long, value_name = "NAME=on|off")]
    pub(crate) key: Vec<String>,
}

/// Opens an object in a runtime with one CPU slot per host CPU (per-CPU maps then have as many
/// values as the kernel's would), and at least `workers`. Every program is verified; programs
/// the verifier refuses are loaded too (dumps show them), and [`verified`] tells whether they
/// may run.
pub fn open(path: &Path, workers: u32) -> Result<Object> {
    let host = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
    let rt = Runtime::with_cpus(host.max(workers));
    rt.set_verify_mode(bpfkit::VerifyMode::Report);
    rt.open(path).with_context(|| format!("loading {}", path.display()))
}

/// Whether the verifier accepted every program of `obj`. One it refused stops the command, with
/// the verifier's log as the kernel would give it, unless the user vouches (`trust`).
pub fn verified(obj: &Object, trust: bool) -> Result<bool> {
    for p in obj.programs() {
        if let Some(e) = &p.verify_report().error {
            if trust {
                eprintln!(
                    "warning: program `{}` refused by the verifier ({e}); running it anyway (--trust-unverified)",
                    p.name()
                );
                return Ok(false);
            }
            bail!(
                "program `{}`: the verifier refuses it: {e}\n{}(run it anyway with --trust-unverified)",
                p.name(),
                p.verify_report().log
            );
        }
    }
    Ok(true)
}

/// The backend of `o`, with the object's programs compiled when it is the JIT.
pub fn prepare_backend(obj: &Object, o: &RunArgs) -> Result<bpfkit::Backend> {
    prepare_backend_for(obj, o.backend, o.trust_unverified, o.branch_limit)
}

/// [`prepare_backend`] from the options themselves.
pub fn prepare_backend_for(
    obj: &Object,
    backend: crate::Backend,
    trust: bool,
    branch_limit: Option<u64>,
) -> Result<bpfkit::Backend> {
    if branch_limit.is_some() && backend == crate::Backend::Jit {
        bail!("--branch-limit needs the interpreter: native code does not count jumps");
    }
    let verified = verified(obj, trust)?;
    let backend = if branch_limit.is_some() { crate::Backend::Interp } else { backend };
    let b = crate::resolve_backend(backend, trust, verified)?;
    if b == bpfkit::Backend::Jit {
        obj.jit(if verified { bpfkit::Trust::Verified } else { bpfkit::Trust::CallerVouches })?;
    }
    Ok(b)
}

/// The program to run: the named one, or the only runnable one.
pub fn pick<'o>(obj: &'o Object, name: Option<&str>) -> Result<&'o Prog> {
    match name {
        Some(n) => Ok(obj.program(n)?),
        None => match obj.programs() {
            [p] => Ok(p),
            [] => bail!("the object has no programs"),
            many => bail!(
                "the object has {} programs ({}); choose one with --prog",
                many.len(),
                many.iter().map(|p| p.name()).collect::<Vec<_>>().join(", ")
            ),
        },
    }
}

/// `bpfkit prog list OBJ`.
pub fn prog_list(path: &Path) -> Result<()> {
    let data = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let file = bpfkit_object::ObjectFile::parse(&data)?;
    println!("license: {}", if file.license.is_empty() { "(none)" } else { &file.license });
    println!("\nPROGRAM              SECTION              TYPE             INSNS  SUBPROGS  RUNS IN BPFKIT");
    for p in &file.programs {
        let ty = p.prog_type.map_or("unknown".to_string(), |t| t.to_string());
        let runs = match p.prog_type {
            Some(t) if t.is_supported() => "yes".to_string(),
            Some(t) => format!("no: program type {t} is not supported yet"),
            None => "no: unknown section".to_string(),
        };
        println!(
            "{:<20} {:<20} {:<16} {:>5}  {:>8}  {runs}",
            p.name,
            p.section,
            ty,
            p.insns.len(),
            p.subprogs.len() - 1
        );
    }
    println!("\nMAP                  TYPE                 KEY  VALUE  MAX_ENTRIES  FLAGS");
    for m in &file.maps {
        let ty =
            bpfkit_maps::MapType::from_u32(m.map_type).map_or(format!("#{}", m.map_type), |t| t.name().to_string());
        println!(
            "{:<20} {:<20} {:>3}  {:>5}  {:>11}  {:#x}",
            m.name, ty, m.key_size, m.value_size, m.max_entries, m.flags
        );
    }
    Ok(())
}

/// Every map's contents as JSON: `{"map": [{"key": "hex", "value": "hex" | ["hex", ...]}]}`.
pub fn dump_maps_json(obj: &Object, only: Option<&str>) -> Result<Value> {
    let mut out = serde_json::Map::new();
    for (name, m) in obj.maps() {
        if only.is_some_and(|o| o != name) {
            continue;
        }
        out.insert(name.to_string(), Value::Array(dump_map(obj, m)?));
    }
    if let Some(o) = only
        && out.is_empty()
    {
        bail!("no map named `{o}`");
    }
    Ok(Value::Object(out))
}

/// One map's entries. Prog arrays and maps of maps name what their slots hold; queues and
/// stacks are listed in pop order and ring buffers record by record (key ""), both drained,
/// as the kernel runner does.
fn dump_map(obj: &Object, m: &Arc<Map>) -> Result<Vec<Value>> {
    use bpfkit_maps::MapType;
    let spec = m.spec();
    let per_cpu = spec.map_type.is_percpu();
    let mut entries = Vec::new();
    match spec.map_type {
        MapType::Queue | MapType::Stack => {
            while let Some(v) = m.pop() {
                entries.push(json!({"key": "", "value": hexfmt::format(&v)}));
            }
            return Ok(entries);
        }
        MapType::Ringbuf => {
            let rb = m.ringbuf().context("ring buffer")?;
            for r in rb.drain() {
                entries.push(json!({"key": "", "value": hexfmt::format(&r)}));
            }
            return Ok(entries);
        }
        MapType::ProgArray | MapType::ArrayOfMaps | MapType::HashOfMaps => {
            let mut key: Option<Vec<u8>> = None;
            while let Ok(k) = m.get_next_key(key.as_deref()) {
                if spec.map_type == MapType::ProgArray {
                    if let Ok(e) = m.lookup_prog(&k) {
                        let name = obj.program_name_of(&e).map_or_else(|| format!("#{}", e.id), str::to_string);
                        entries.push(json!({"key": hexfmt::format(&k), "prog": name}));
                    }
                } else if let Ok(inner) = m.lookup_inner_map(&k) {
                    let name = obj.map_name_of(&inner).unwrap_or_else(|| format!("#{}", inner.id()));
                    entries.push(json!({"key": hexfmt::format(&k), "map": name}));
                }
                key = Some(k);
            }
            entries.sort_by(|a, b| a["key"].as_str().cmp(&b["key"].as_str()));
            return Ok(entries);
        }
        _ => {}
    }
    for (k, v) in m.entries().map_err(|e| anyhow::anyhow!("{e}"))? {
        let value = if per_cpu {
            let stride = (spec.value_size as usize).div_ceil(8) * 8;
            Value::Array(
                v.chunks(stride).map(|c| Value::String(hexfmt::format(&c[..spec.value_size as usize]))).collect(),
            )
        } else {
            Value::String(hexfmt::format(&v))
        };
        entries.push(json!({"key": hexfmt::format(&k), "value": value}));
    }
    entries.sort_by(|a, b| a["key"].as_str().cmp(&b["key"].as_str()));
    Ok(entries)
}

/// Loads `--map-init` entries.
pub fn map_init(obj: &Object, path: &Path) -> Result<()> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let v: Value = serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    let maps = v.as_object().context("--map-init: expected an object of maps")?;
    for (name, entries) in maps {
        let m = obj.map(name)?;
        for e in entries.as_array().with_context(|| format!("map `{name}`: expected a list of entries"))? {
            let key =
                hexfmt::parse(e["key"].as_str().with_context(|| format!("map `{name}`: entry without \"key\""))?)?;
            if let Some(prog) = e["prog"].as_str() {
                let index = u32::from_le_bytes(
                    key.as_slice().try_into().with_context(|| format!("map `{name}`: a prog array key is 4 bytes"))?,
                );
                obj.set_prog_slot(name, index, prog)?;
            } else if let Some(inner) = e["map"].as_str() {
                obj.set_map_slot(name, &key, inner)?;
            } else {
                let value = match &e["value"] {
                    Value::String(s) => hexfmt::parse(s)?,
                    Value::Array(per_cpu) => {
                        let stride = (m.spec().value_size as usize).div_ceil(8) * 8;
                        let mut all = Vec::new();
                        for v in per_cpu {
                            let mut b = hexfmt::parse(v.as_str().context("per-CPU values are hex strings")?)?;
                            b.resize(stride, 0);
                            all.extend(b);
                        }
                        all
                    }
                    _ => bail!("map `{name}`: entry needs \"value\", \"prog\" or \"map\""),
                };
                m.update(&key, &value, 0).map_err(|e| anyhow::anyhow!("map `{name}`: {e}"))?;
            }
        }
    }
    Ok(())
}

/// What a worker thread returns: its packets' outcomes (by capture index) and its trace lines.
type WorkerResult = Result<(Vec<(usize, Outcome)>, Vec<String>)>;

/// Per-packet outcome of a run; `retval` is `None` when the input was refused with EINVAL
/// (as the kernel's test run refuses it).
struct Outcome {
    retval: Option<u64>,
    out: Option<Vec<u8>>,
}

fn run_one(prog: &Prog, w: &mut Worker, xdp: &mut Option<XdpPacket>, data: &[u8]) -> Result<Outcome> {
    match run_packet(prog, w, xdp, data) {
        Err(e) if matches!(e.downcast_ref::<bpfkit::Error>(), Some(bpfkit::Error::Refused { .. })) => {
            Ok(Outcome { retval: None, out: None })
        }
        r => r,
    }
}

fn run_packet(prog: &Prog, w: &mut Worker, xdp: &mut Option<XdpPacket>, data: &[u8]) -> Result<Outcome> {
    match prog.prog_type() {
        ProgType::Xdp => {
            let pkt = match xdp {
                Some(p) => {
                    p.reset(data)?;
                    p
                }
                None => xdp.insert(XdpPacket::new(data)?),
            };
            let r = prog.run_xdp(w, pkt)?;
            // XDP_PASS and XDP_TX keep the packet (with the program's changes), from its
            // metadata on, as the kernel's test run returns it.
            let out = matches!(r.action, 2 | 3).then(|| pkt.data_with_meta().to_vec());
            Ok(Outcome { retval: Some(u64::from(r.action)), out })
        }
        ProgType::SocketFilter | ProgType::SchedCls | ProgType::SchedAct => {
            let mut frame = data.to_vec();
            let mut meta = SkbMeta { ifindex: 1, ..SkbMeta::default() };
            let r = prog.run_skb(w, &mut frame, &mut meta)?;
            // As the kernel's test run: tc keeps the packet unless the verdict is TC_ACT_SHOT,
            // _STOLEN, _QUEUED or _TRAP; a socket filter keeps it when it returns non-zero, and
            // its output starts with a zeroed link-layer header.
            let keep = match prog.prog_type() {
                ProgType::SocketFilter => r as u32 != 0,
                _ => !matches!(r as u32, 2 | 4 | 5 | 8),
            };
            if prog.prog_type() == ProgType::SocketFilter {
                frame[..14.min(data.len())].fill(0);
            }
            Ok(Outcome { retval: Some(r), out: keep.then_some(frame) })
        }
        other => {
            bail!("program type {other} does not run over packets (syscall programs take a context, not a capture)")
        }
    }
}

pub(crate) fn read_pcap(path: &Path) -> Result<Vec<(Duration, Vec<u8>)>> {
    let f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut reader =
        pcap_file::pcap::PcapReader::new(f).with_context(|| format!("{} is not a pcap file", path.display()))?;
    let mut packets = Vec::new();
    while let Some(p) = reader.next_packet() {
        let p = p.with_context(|| format!("reading {}", path.display()))?;
        packets.push((p.timestamp, p.data.into_owned()));
    }
    Ok(packets)
}

/// `bpfkit run OBJ --pcap FILE ...`.
pub fn run(o: &RunArgs) -> Result<()> {
    let object = o.object.as_deref().context("no object to run")?;
    let pcap = o.pcap.as_deref().context("running an object needs --pcap FILE (or --ctx HEX for a syscall program)")?;
    let threads = o.threads.max(1);
    let obj = open(object, threads as u32)?;
    if let Some(init) = &o.map_init {
        map_init(&obj, init)?;
    }
    crate::keys::apply(&obj, &o.key)?;
    let prog = pick(&obj, o.prog.as_deref())?;
    let backend = prepare_backend(&obj, o)?;
    let packets = read_pcap(pcap)?;
    let repeat = o.repeat.max(1);
    let progress = (o.repeat > 1 || packets.len() > 100_000) && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let bar = progress.then(|| {
        let b = indicatif::ProgressBar::new(packets.len() as u64 * repeat);
        b.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        b
    });

    let runtime = obj.runtime();
    let start = Instant::now();
    // Each worker takes packets i, i + threads, ...; results are merged in capture order.
    let chunks: Vec<Vec<(usize, Outcome)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (prog, packets, bar) = (prog, &packets, bar.as_ref());
                s.spawn(move || -> WorkerResult {
                    let mut w = Worker::new(runtime, t as u32);
                    w.set_backend(backend);
                    let mut xdp = None;
                    let mut out = Vec::new();
                    for round in 0..repeat {
                        for (i, (_, data)) in packets.iter().enumerate().skip(t).step_by(threads) {
                            let r =
                                run_one(prog, &mut w, &mut xdp, data).with_context(|| format!("packet {}", i + 1))?;
                            if round == 0 {
                                out.push((i, r));
                            }
                            if let Some(b) = bar {
                                b.inc(1);
                            }
                        }
                    }
                    Ok((out, w.take_trace()))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("worker thread")).collect::<Result<Vec<_>>>()
    })
    .map(|v| {
        let mut traces = Vec::new();
        let outs: Vec<_> = v
            .into_iter()
            .map(|(o, t)| {
                traces.extend(t);
                o
            })
            .collect();
        (outs, traces)
    })
    .map(|(outs, traces)| {
        emit_trace(o.trace.as_deref(), &traces);
        outs
    })?;
    let elapsed = start.elapsed();
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let mut results: Vec<(usize, Outcome)> = chunks.into_iter().flatten().collect();
    results.sort_by_key(|(i, _)| *i);

    let mut counts: BTreeMap<u64, u64> = BTreeMap::new();
    let mut refused = 0u64;
    for (_, r) in &results {
        match r.retval {
            Some(v) => *counts.entry(v).or_default() += 1,
            None => refused += 1,
        }
    }
    if let Some(path) = &o.retvals {
        let mut f = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
        for (_, r) in &results {
            match r.retval {
                // The kernel's return value is an unsigned 32-bit number.
                Some(v) => writeln!(f, "{}", v as u32)?,
                None => writeln!(f, "EINVAL")?,
            }
        }
    }
    if let Some(path) = &o.out_pcap {
        let f = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
        let mut wr = pcap_file::pcap::PcapWriter::new(f)?;
        for (i, r) in &results {
            if let Some(data) = &r.out {
                wr.write_packet(&pcap_file::pcap::PcapPacket::new(packets[*i].0, data.len() as u32, data))?;
            }
        }
    }
    if let Some(path) = &o.dump_maps {
        let v = dump_maps_json(&obj, None)?;
        std::fs::write(path, serde_json::to_string_pretty(&v)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let runs = packets.len() as u64 * repeat;
    let ns_per_run = if runs > 0 { elapsed.as_nanos() as f64 / runs as f64 } else { 0.0 };
    let pps = if elapsed.as_secs_f64() > 0.0 { runs as f64 / elapsed.as_secs_f64() } else { 0.0 };
    // With several workers, how throughput scales: the same runs on one worker, in a separate
    // copy of the object (so the maps reported above are those of the N-worker run).
    let single_pps = if threads > 1 { Some(single_worker_pps(o, &packets, repeat)?) } else { None };
    let names = retval_names(prog.prog_type());
    if o.json {
        let mut counts: serde_json::Map<String, Value> =
            counts.iter().map(|(k, v)| (names(*k).unwrap_or_else(|| k.to_string()), json!(v))).collect();
        if refused > 0 {
            counts.insert("EINVAL".into(), json!(refused));
        }
        let summary = json!({
            "program": prog.name(), "type": prog.prog_type().name(), "packets": packets.len(),
            "repeat": repeat, "threads": threads, "retvals": counts,
            "ns_per_run": ns_per_run, "packets_per_second": pps,
            "single_worker_packets_per_second": single_pps,
        });
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        println!(
            "{} ({}) over {} packets{}:",
            prog.name(),
            prog.prog_type(),
            packets.len(),
            if repeat > 1 { format!(" x {repeat}") } else { String::new() }
        );
        for (k, v) in &counts {
            let label = names(*k).map(|n| format!("{k} ({n})")).unwrap_or_else(|| k.to_string());
            println!("  {label:<16} {v}");
        }
        if refused > 0 {
            println!("  {:<16} {refused} (refused as the kernel's test run refuses them)", "EINVAL");
        }
        println!(
            "{runs} runs in {:.3} s on {threads} thread(s): {ns_per_run:.0} ns/run, {:.2} Mpps",
            elapsed.as_secs_f64(),
            pps / 1e6
        );
        if let Some(one) = single_pps {
            println!("scaling: {:.2} Mpps on 1 thread, {:.2}x with {threads}", one / 1e6, pps / one.max(1.0));
        }
    }
    if let Some(m) = &o.dump_map {
        let v = dump_maps_json(&obj, Some(m))?;
        println!("{}", serde_json::to_string_pretty(&v)?);
    }
    Ok(())
}

/// Packets per second of the same capture on a single worker, in a fresh copy of the object.
fn single_worker_pps(o: &RunArgs, packets: &[(Duration, Vec<u8>)], repeat: u64) -> Result<f64> {
    let obj = open(o.object.as_deref().context("no object to run")?, 1)?;
    if let Some(init) = &o.map_init {
        map_init(&obj, init)?;
    }
    crate::keys::apply(&obj, &o.key)?;
    let prog = pick(&obj, o.prog.as_deref())?;
    let mut w = Worker::new(obj.runtime(), 0);
    w.set_backend(prepare_backend(&obj, o)?);
    let mut xdp = None;
    let start = Instant::now();
    for _ in 0..repeat {
        for (_, data) in packets {
            run_one(prog, &mut w, &mut xdp, data)?;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    Ok(if secs > 0.0 { (packets.len() as u64 * repeat) as f64 / secs } else { 0.0 })
}

fn emit_trace(path: Option<&Path>, lines: &[String]) {
    match path {
        Some(p) => {
            let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
            if let Err(e) = std::fs::write(p, text) {
                eprintln!("error: writing {}: {e}", p.display());
            }
        }
        None => {
            for l in lines {
                eprintln!("bpf_trace_printk: {l}");
            }
        }
    }
}

pub(crate) fn retval_names(t: ProgType) -> impl Fn(u64) -> Option<String> {
    move |v| match (t, v) {
        (ProgType::Xdp, 0) => Some("XDP_ABORTED".into()),
        (ProgType::Xdp, 1) => Some("XDP_DROP".into()),
        (ProgType::Xdp, 2) => Some("XDP_PASS".into()),
        (ProgType::Xdp, 3) => Some("XDP_TX".into()),
        (ProgType::Xdp, 4) => Some("XDP_REDIRECT".into()),
        (ProgType::SchedCls | ProgType::SchedAct, 0) => Some("TC_ACT_OK".into()),
        (ProgType::SchedCls | ProgType::SchedAct, 2) => Some("TC_ACT_SHOT".into()),
        _ => None,
    }
}

/// `bpfkit map dump OBJ MAP [--prog NAME]`: the map after load (and `--map-init`), as JSON;
/// an instruction array as its entries' offsets ([`insn_array_json`]); with `--prog`, the
/// instruction arrays of that name the program owns.
pub fn map_dump(object: &Path, map: &str, init: Option<&Path>, prog: Option<&str>) -> Result<()> {
    let obj = open(object, 1)?;
    if let Some(i) = init {
        map_init(&obj, i)?;
    }
    let key = serde_json::to_string(map)?;
    if let Some(p) = prog {
        let p = obj.program(p)?;
        let arrays = p.insn_arrays();
        let owned: Vec<String> = arrays
            .iter()
            .enumerate()
            .filter(|(_, m)| m.spec().name == map)
            .map(|(i, m)| {
                format!(
                    "    {{\"index\": {i}, \"id\": {}, \"max_entries\": {}, \"entries\": [\n{}\n    ]}}",
                    m.id(),
                    m.spec().max_entries,
                    insn_array_json(m, "      ")
                )
            })
            .collect();
        if owned.is_empty() {
            let names: BTreeSet<&str> = arrays.iter().map(|m| m.spec().name.as_str()).collect();
            bail!(
                "program `{}` owns no instruction array named `{map}` (it owns {})",
                p.name(),
                if names.is_empty() { "none".to_string() } else { names.into_iter().collect::<Vec<_>>().join(", ") }
            );
        }
        println!("{{\n  {key}: [\n{}\n  ]\n}}", owned.join(",\n"));
        return Ok(());
    }
    match obj.map(map) {
        Ok(m) if m.map_type() == bpfkit_maps::MapType::InsnArray => {
            println!("{{\n  {key}: [\n{}\n  ]\n}}", insn_array_json(m, "    "));
        }
        Ok(_) => println!("{}", serde_json::to_string_pretty(&dump_maps_json(&obj, Some(map))?)?),
        Err(e) if map == ".jumptables" => bail!("{e}: jump tables belong to a program, add --prog NAME"),
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

/// The entries of an instruction array as JSON lines (indented by `indent`, without the
/// enclosing brackets): `{"index", "orig_off", "xlated_off", "jitted_off"}` each, in that
/// order, -1 standing for `INSN_DELETED`.
fn insn_array_json(m: &Map, indent: &str) -> String {
    let off = |v: u32| if v == bpfkit_maps::INSN_DELETED { "-1".to_string() } else { v.to_string() };
    m.insn_array_entries()
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(i, [o, x, j])| {
            format!(
                "{indent}{{\"index\": {i}, \"orig_off\": {}, \"xlated_off\": {}, \"jitted_off\": {}}}",
                off(*o),
                off(*x),
                off(*j)
            )
        })
        .collect::<Vec<_>>()
        .join(",\n")
}

/// Runs a `syscall` program once per context; prints each return value.
pub fn run_syscall(o: &RunArgs) -> Result<()> {
    let obj = open(o.object.as_deref().context("no object to run")?, 1)?;
    if let Some(init) = &o.map_init {
        map_init(&obj, init)?;
    }
    crate::keys::apply(&obj, &o.key)?;
    let prog = pick(&obj, o.prog.as_deref())?;
    let mut contexts: Vec<Vec<u8>> = o.ctx.iter().map(|h| hexfmt::parse(h)).collect::<Result<_>>()?;
    if let Some(f) = &o.ctx_file {
        let text = std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
        for line in text.lines().filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#')) {
            contexts.push(hexfmt::parse(line)?);
        }
    }
    let mut w = Worker::new(obj.runtime(), 0);
    w.set_backend(prepare_backend(&obj, o)?);
    let mut after = Vec::new();
    for (i, c) in contexts.iter_mut().enumerate() {
        let r = prog.run_raw(&mut w, c).with_context(|| format!("context {}", i + 1))?;
        // The kernel's test run reports a 32-bit return value.
        println!("{}", r as u32);
        after.push(hexfmt::format(c));
    }
    emit_trace(o.trace.as_deref(), &w.take_trace());
    if let Some(path) = &o.ctx_out {
        std::fs::write(path, after.join("\n") + "\n").with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &o.dump_maps {
        let v = dump_maps_json(&obj, None)?;
        std::fs::write(path, serde_json::to_string_pretty(&v)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(m) = &o.dump_map {
        println!("{}", serde_json::to_string_pretty(&dump_maps_json(&obj, Some(m))?)?);
    }
    Ok(())
}

/// Source line annotations of `prog`: slot → "file:line: text".
fn source_lines(prog: &Prog) -> BTreeMap<usize, String> {
    prog.line_info().iter().map(|l| (l.insn, format!("{}:{}: {}", l.file, l.line, l.text.trim()))).collect()
}

/// `bpfkit prog dump xlated OBJ`: the program as bpfkit runs it (relocations bound: map
/// references are addresses and tokens), with source lines; each static branch with its key's
/// state and what the site does (after `--key` settings).
pub fn dump_xlated(object: &Path, name: Option<&str>, keys: &[String]) -> Result<()> {
    let obj = open(object, 1)?;
    crate::keys::apply(&obj, keys)?;
    let prog = pick(&obj, name)?;
    let lines = source_lines(prog);
    let sites = crate::keys::site_keys(&obj, prog);
    let mut out = std::io::stdout().lock();
    writeln!(out, "; {} ({}), {} slots", prog.name(), prog.prog_type(), prog.insns().len())?;
    for l in bpfkit_isa::decode_program(prog.insns())? {
        if let Some(src) = lines.get(&l.pc) {
            writeln!(out, "; {src}")?;
        }
        match crate::keys::site_note(&obj, prog, &sites, l.pc) {
            Some(note) => writeln!(out, "{:>5}: {:<32} {note}", l.pc, l.insn.to_string())?,
            None => writeln!(out, "{:>5}: {}", l.pc, l.insn)?,
        }
    }
    Ok(())
}

/// `bpfkit prog dump jited OBJ`: the JIT's machine code, disassembled, under the BPF
/// instruction each range comes from (and its source line).
pub fn dump_jited(object: &Path, name: Option<&str>, keys: &[String]) -> Result<()> {
    use iced_x86::{Decoder, DecoderOptions, Formatter, IntelFormatter};
    let obj = open(object, 1)?;
    crate::keys::apply(&obj, keys)?;
    let prog = pick(&obj, name)?;
    let sites = crate::keys::site_keys(&obj, prog);
    let c = prog.compile_native()?;
    let mut out = std::io::stdout().lock();
    let lines = source_lines(prog);
    let insns = bpfkit_isa::decode_program(prog.insns())?;
    // Ranges: the entry stub, then each instruction's bytes up to the next one's (function
    // prologues belong to the first instruction of their function).
    let mut starts: Vec<(usize, Option<usize>)> = vec![(0, None)];
    for (pc, off) in &c.functions {
        starts.push((*off, Some(*pc)));
    }
    for l in &insns {
        starts.push((c.insn_offsets[l.pc] as usize, Some(l.pc)));
    }
    starts.sort_by_key(|&(o, pc)| (o, pc.is_some()));
    let end = c.code.len();
    let mut fmt = IntelFormatter::new();
    fmt.options_mut().set_first_operand_char_index(8);
    writeln!(
        out,
        "; {} ({}): {} BPF slots, {} bytes of x86-64 (main function at +{:#x}), {} patch sites",
        prog.name(),
        prog.prog_type(),
        prog.insns().len(),
        end,
        c.body_offset,
        c.sites.len()
    )?;
    let mut printed_pc = usize::MAX;
    let mut offset = 0usize;
    let mut idx = 0;
    let by_pc: BTreeMap<usize, String> = insns
        .iter()
        .map(|l| {
            let text = match crate::keys::site_note(&obj, prog, &sites, l.pc) {
                Some(note) => format!("{:<32} {note}", l.insn.to_string()),
                None => l.insn.to_string(),
            };
            (l.pc, text)
        })
        .collect();
    let mut decoder = Decoder::with_ip(64, &c.code, 0, DecoderOptions::NONE);
    let mut text = String::new();
    while decoder.can_decode() {
        let ins = decoder.decode();
        let at = ins.ip() as usize;
        // The label of the range this instruction starts or continues.
        while idx < starts.len() && starts[idx].0 <= at {
            let (o, pc) = starts[idx];
            if o >= offset {
                match pc {
                    None => writeln!(out, "; entry: save registers, load r1-r5, call the main function")?,
                    Some(pc) if pc != printed_pc => {
                        if c.functions.iter().any(|(f, fo)| *f == pc && *fo == o) {
                            writeln!(out, "; function at insn {pc}: prologue")?;
                        } else {
                            if let Some(src) = lines.get(&pc) {
                                writeln!(out, "; {src}")?;
                            }
                            writeln!(out, "{:>5}: {}", pc, by_pc.get(&pc).map_or("", String::as_str))?;
                            printed_pc = pc;
                        }
                    }
                    Some(_) => {}
                }
            }
            idx += 1;
        }
        if at >= c.insn_offsets[prog.insns().len()] as usize && offset < c.insn_offsets[prog.insns().len()] as usize {
            writeln!(out, "; out-of-line stubs (call-depth errors)")?;
        }
        offset = at + ins.len();
        text.clear();
        fmt.format(&ins, &mut text);
        let bytes: String = c.code[at..at + ins.len()].iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ");
        let site = if c.sites.iter().any(|&(_, s, _)| s == at) { "   ; patch site (static branch)" } else { "" };
        writeln!(out, "       {at:5x}  {text:<40} {bytes}{site}")?;
    }
    Ok(())
}

/// The control-flow graph of `prog` as the verifier builds it, with the program's jump tables
/// (the `xlated_off` of each entry of each instruction array it owns).
fn program_cfg(prog: &Prog) -> Result<bpfkit_verifier::Cfg> {
    let tables: Vec<Vec<u32>> = prog
        .insn_arrays()
        .iter()
        .map(|m| m.insn_array_entries().unwrap_or_default().iter().map(|e| e[1]).collect())
        .collect();
    bpfkit_verifier::cfg::build(prog.insns(), &tables).map_err(|e| {
        anyhow::anyhow!("program `{}`: the verifier refuses its control flow at insn {}: {e}", prog.name(), e.insn())
    })
}

/// Names of the functions of `prog` by first instruction, from the object file (best effort:
/// none when it cannot be read again).
fn function_names(object: &Path, prog: &Prog) -> BTreeMap<usize, String> {
    let Ok(data) = std::fs::read(object) else { return BTreeMap::new() };
    let Ok(file) = bpfkit_object::ObjectFile::parse(&data) else { return BTreeMap::new() };
    file.programs
        .iter()
        .find(|p| p.name == prog.name() && p.insns.len() == prog.insns().len())
        .map(|p| p.subprogs.iter().map(|s| (s.start, s.name.clone())).collect())
        .unwrap_or_default()
}

/// `bpfkit prog dump cfg OBJ [--dot]`: basic blocks, successors, back edges and calls.
pub fn dump_cfg(object: &Path, name: Option<&str>, dot: bool) -> Result<()> {
    let obj = open(object, 1)?;
    let prog = pick(&obj, name)?;
    let cfg = program_cfg(prog)?;
    let names = function_names(object, prog);
    let lines = source_lines(prog);
    let mut out = std::io::stdout().lock();
    if dot {
        write_cfg_dot(&mut out, prog, &cfg, &names)?;
    } else {
        write_cfg_text(&mut out, prog, &cfg, &names, &lines)?;
    }
    Ok(())
}

fn subprog_label(cfg: &bpfkit_verifier::Cfg, names: &BTreeMap<usize, String>, i: usize) -> String {
    let s = cfg.subprogs()[i];
    let name = names.get(&s.start).map_or(String::new(), |n| format!(" {n}"));
    format!("subprog {i}{name} [{}..{}]", s.start, s.end - 1)
}

fn call_text(cfg: &bpfkit_verifier::Cfg, names: &BTreeMap<usize, String>, c: &bpfkit_verifier::Call) -> String {
    let what = match c.kind {
        bpfkit_verifier::CallKind::Call => "call",
        bpfkit_verifier::CallKind::FuncRef => "callback reference",
    };
    let callee =
        cfg.subprog_of(c.target).map_or_else(|| format!("insn {}", c.target), |i| subprog_label(cfg, names, i));
    format!("{what} at insn {} -> {callee}", c.insn)
}

fn write_cfg_text(
    out: &mut impl Write,
    prog: &Prog,
    cfg: &bpfkit_verifier::Cfg,
    names: &BTreeMap<usize, String>,
    lines: &BTreeMap<usize, String>,
) -> Result<()> {
    writeln!(
        out,
        "; {} ({}): {} slots, {} subprograms, {} blocks, {} jump tables, {} back edges",
        prog.name(),
        prog.prog_type(),
        cfg.len(),
        cfg.subprogs().len(),
        cfg.blocks().len(),
        prog.insn_arrays().len(),
        cfg.back_edges().len()
    )?;
    let mut subprog = usize::MAX;
    for (bi, b) in cfg.blocks().iter().enumerate() {
        if b.subprog != subprog {
            subprog = b.subprog;
            writeln!(out, "\n{}", subprog_label(cfg, names, subprog))?;
        }
        writeln!(out, "\nblock {bi} [{}..{}]", b.start, b.last)?;
        for l in cfg.insns().iter().filter(|l| (b.start..b.end).contains(&l.pc)) {
            if let Some(src) = lines.get(&l.pc) {
                writeln!(out, "; {src}")?;
            }
            writeln!(out, "{:>5}: {}", l.pc, l.insn)?;
        }
        let succs: Vec<String> = b
            .succs
            .iter()
            .map(|e| {
                let back = if e.back { ", back edge" } else { "" };
                format!("block {} ({}{back})", e.to, e.kind.name())
            })
            .collect();
        if succs.is_empty() {
            writeln!(out, "  -> exit")?;
        } else {
            writeln!(out, "  -> {}", succs.join(", "))?;
        }
        for c in &b.calls {
            writeln!(out, "  {}", call_text(cfg, names, c))?;
        }
    }
    Ok(())
}

/// A Graphviz double-quoted string's contents.
fn dot_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

fn write_cfg_dot(
    out: &mut impl Write,
    prog: &Prog,
    cfg: &bpfkit_verifier::Cfg,
    names: &BTreeMap<usize, String>,
) -> Result<()> {
    use bpfkit_verifier::EdgeKind;
    writeln!(out, "digraph \"{}\" {{", dot_escape(prog.name()))?;
    writeln!(
        out,
        "  graph [fontname=\"monospace\", label=\"{} ({})\", labelloc=t];",
        dot_escape(prog.name()),
        prog.prog_type()
    )?;
    writeln!(out, "  node [shape=box, fontname=\"monospace\", fontsize=10];")?;
    writeln!(out, "  edge [fontname=\"monospace\", fontsize=9];")?;
    for (si, _) in cfg.subprogs().iter().enumerate() {
        writeln!(out, "  subgraph cluster_{si} {{")?;
        writeln!(out, "    label=\"{}\";", dot_escape(&subprog_label(cfg, names, si)))?;
        for (bi, b) in cfg.blocks().iter().enumerate().filter(|(_, b)| b.subprog == si) {
            let mut label = format!("block {bi} [{}..{}]\\l", b.start, b.last);
            for l in cfg.insns().iter().filter(|l| (b.start..b.end).contains(&l.pc)) {
                label.push_str(&dot_escape(&format!("{:>5}: {}", l.pc, l.insn)).replace('\t', " "));
                label.push_str("\\l");
            }
            writeln!(out, "    b{bi} [label=\"{label}\"];")?;
        }
        writeln!(out, "  }}")?;
    }
    for (bi, b) in cfg.blocks().iter().enumerate() {
        for e in &b.succs {
            let mut attrs = match e.kind {
                EdgeKind::FallThrough => vec!["color=gray50".to_string()],
                EdgeKind::Jump => vec!["color=black".to_string()],
                EdgeKind::Indirect => vec!["style=dashed".to_string()],
            };
            if e.back {
                attrs = vec!["color=red".into(), "penwidth=2".into(), "label=\"back\"".into()];
                if e.kind == EdgeKind::Indirect {
                    attrs.push("style=dashed".into());
                }
            }
            writeln!(out, "  b{bi} -> b{} [{}];", e.to, attrs.join(", "))?;
        }
        for c in &b.calls {
            let Some(callee) = cfg.block_of(c.target) else { continue };
            let label = match c.kind {
                bpfkit_verifier::CallKind::Call => "call",
                bpfkit_verifier::CallKind::FuncRef => "callback",
            };
            writeln!(
                out,
                "  b{bi} -> b{callee} [style=dotted, color=blue, label=\"{label} at {}\", constraint=false];",
                c.insn
            )?;
        }
    }
    writeln!(out, "}}")?;
    Ok(())
}

/// The arguments of `bpfkit bench`.
#[derive(clap::Args)]
pub struct BenchArgs {
    /// ELF object.
    pub(crate) object: PathBuf,
    /// Program (function or section name); optional when the object has one.
    #[arg(long)]
    pub(crate) prog: Option<String>,
    /// Packet capture whose packets the program runs over.
    #[arg(long, value_name = "FILE")]
    pub(crate) pcap: PathBuf,
    /// Execution backend.
    #[arg(long, value_enum, default_value_t = crate::Backend::Auto)]
    pub(crate) backend: crate::Backend,
    /// Run unverified programs in the JIT anyway (see `bpfkit run --help`).
    #[arg(long)]
    pub(crate) trust_unverified: bool,
    /// Load map entries first (JSON, as `run --map-init`).
    #[arg(long, value_name = "FILE")]
    pub(crate) map_init: Option<PathBuf>,
    /// Runs of each packet per round (its context is set up once, as the kernel's test-run
    /// `repeat` does).
    #[arg(long, default_value_t = 200)]
    pub(crate) repeat: u64,
    /// Timed rounds; the result is their median.
    #[arg(long, default_value_t = 11)]
    pub(crate) rounds: usize,
    /// Print the result as JSON.
    #[arg(long)]
    pub(crate) json: bool,
    /// Set a static key first (NAME=on or NAME=off; repeatable).
    #[arg(long, value_name = "NAME=on|off")]
    pub(crate) key: Vec<String>,
}

/// `bpfkit bench`: nanoseconds per run of a program over a capture, the median of several
/// rounds after a warm-up round.
pub fn bench(a: &BenchArgs) -> Result<()> {
    let obj = open(&a.object, 1)?;
    if let Some(init) = &a.map_init {
        map_init(&obj, init)?;
    }
    crate::keys::apply(&obj, &a.key)?;
    let prog = pick(&obj, a.prog.as_deref())?;
    let verified = verified(&obj, a.trust_unverified)?;
    let backend = crate::resolve_backend(a.backend, a.trust_unverified, verified)?;
    if backend == bpfkit::Backend::Jit {
        obj.jit(if verified { bpfkit::Trust::Verified } else { bpfkit::Trust::CallerVouches })?;
    }
    let mut w = Worker::new(obj.runtime(), 0);
    w.set_backend(backend);
    // Contexts, set up once per packet; packets the kernel's test run refuses are skipped.
    enum Input {
        Xdp(XdpPacket),
        Skb(Vec<u8>, SkbMeta),
    }
    let mut inputs = Vec::new();
    let mut refused = 0usize;
    for (_, data) in read_pcap(&a.pcap)? {
        let input = match prog.prog_type() {
            ProgType::Xdp => XdpPacket::new(&data).map(Input::Xdp),
            ProgType::SocketFilter | ProgType::SchedCls | ProgType::SchedAct => {
                Ok(Input::Skb(data.clone(), SkbMeta { ifindex: 1, ..SkbMeta::default() }))
            }
            other => bail!("program type {other} does not run over packets"),
        };
        match input {
            Ok(i) => inputs.push(i),
            Err(bpfkit::Error::Refused { .. } | bpfkit::Error::PacketTooBig { .. }) => refused += 1,
            Err(e) => return Err(e.into()),
        }
    }
    if inputs.is_empty() {
        bail!("no packet of the capture can run");
    }
    let round = |w: &mut Worker, inputs: &mut [Input]| -> Result<Duration> {
        let start = Instant::now();
        for (i, input) in inputs.iter_mut().enumerate() {
            for _ in 0..a.repeat {
                let r = match input {
                    Input::Xdp(p) => prog.run_xdp(w, p).map(|_| ()),
                    Input::Skb(frame, meta) => match prog.run_skb(w, frame, meta) {
                        Err(bpfkit::Error::Refused { .. }) => Ok(()),
                        r => r.map(|_| ()),
                    },
                };
                r.with_context(|| format!("packet {}", i + 1))?;
            }
        }
        Ok(start.elapsed())
    };
    round(&mut w, &mut inputs)?;
    let runs = inputs.len() as u64 * a.repeat.max(1);
    let mut ns: Vec<f64> = Vec::with_capacity(a.rounds.max(1));
    for _ in 0..a.rounds.max(1) {
        let t = round(&mut w, &mut inputs)?;
        ns.push(t.as_nanos() as f64 / runs as f64);
    }
    let mut sorted = ns.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    let name = match backend {
        bpfkit::Backend::Interp => "interp",
        bpfkit::Backend::Jit => "jit",
    };
    if a.json {
        let v = json!({
            "program": prog.name(),
            "backend": name,
            "packets": inputs.len(),
            "refused": refused,
            "runs_per_packet": a.repeat,
            "rounds": ns,
            "ns_per_run": median,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!(
            "{} ({}) in the {name}: {median:.1} ns/run (median of {} rounds of {} packets x {} runs; {refused} refused)",
            prog.name(),
            prog.prog_type(),
            ns.len(),
            inputs.len(),
            a.repeat
        );
    }
    Ok(())
}

/// `bpfkit verify`: every program (or one) through the verifier, its log printed.
pub fn verify(path: &Path, prog: Option<&str>, log_level: u32) -> Result<()> {
    let rt = Runtime::new();
    rt.set_verify_mode(bpfkit::VerifyMode::Report);
    rt.set_verify_log_level(log_level);
    let obj = rt.open(path).with_context(|| format!("loading {}", path.display()))?;
    let mut refused = 0;
    let progs: Vec<&bpfkit::Prog> = match prog {
        Some(name) => vec![obj.program(name)?],
        None => obj.programs().iter().collect(),
    };
    for p in progs {
        let r = p.verify_report();
        let verdict = match &r.error {
            None => "accepted".to_string(),
            Some(e) => {
                refused += 1;
                format!("REFUSED at insn {}: {}", e.pc, e.message)
            }
        };
        println!("== {} ({}): {verdict}", p.name(), p.section());
        print!("{}", r.log);
    }
    if refused > 0 {
        anyhow::bail!("{refused} program(s) refused by the verifier");
    }
    Ok(())
}
