//! Static keys on the command line: `run --key`, `key list`, the static-branch notes of
//! `prog dump`, and live control: `serve` (a data path running a program over a capture, with a
//! control socket) and its clients (`key set|list --control`, `stats --control`, `control`).
//!
//! # The control protocol
//!
//! A Unix-domain stream socket. The client writes one request per line (UTF-8, at most 4096
//! bytes); the server answers each with exactly one line, in order, and keeps the connection
//! until the client closes it:
//!
//! | request | answer |
//! | --- | --- |
//! | `key set NAME on\|off` | `ok` once every site is in the new state, or `error: MESSAGE` |
//! | `key get NAME` | `on` or `off` |
//! | `key list` | a JSON array, one object per key: `name`, `state` (`"on"`/`"off"`), `sites`, `programs` (the number of key maps), `program_names` |
//! | `stats` | a JSON object (see [`Serve::stats`]) |
//! | `stop` | `ok`, then the server stops its workers, removes the socket and exits |
//!
//! Anything else is answered `error: ...`.
//!
//! # Stopping on SIGINT without signal handlers
//!
//! The standard library cannot catch signals and this crate has no `unsafe`, so `serve` runs the
//! server in a child process of its own (same arguments) in a new process group, with a pipe as
//! its standard input. Ctrl-C reaches the foreground process group only, so it ends the parent;
//! any end of the parent (SIGINT, SIGTERM, SIGKILL) closes the pipe, and the server then stops
//! as on `stop`. The parent otherwise waits for the server and exits with its status.

use crate::objcmd::{self, open};
use anyhow::{Context, Result, bail};
use bpfkit::{Object, Prog, SkbMeta, StaticKey, Worker, XdpPacket};
use bpfkit_object::ProgType;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// `on`/`off` (also `1`/`0`, `true`/`false`).
pub fn parse_state(s: &str) -> Result<bool> {
    match s.to_ascii_lowercase().as_str() {
        "on" | "1" | "true" => Ok(true),
        "off" | "0" | "false" => Ok(false),
        _ => bail!("`{s}` is not a key state: `on` or `off`"),
    }
}

fn state_name(on: bool) -> &'static str {
    if on { "on" } else { "off" }
}

/// The static key `name` of `obj`; the error lists the object's keys.
pub fn find_key<'o>(obj: &'o Object, name: &str) -> Result<&'o Arc<StaticKey>> {
    obj.static_key(name).map_err(|_| {
        let keys: Vec<&str> = obj.static_keys().iter().map(|k| k.name()).collect();
        if keys.is_empty() {
            anyhow::anyhow!("no static key `{name}`: the object has no static keys")
        } else {
            anyhow::anyhow!("no static key `{name}` (the object's keys: {})", keys.join(", "))
        }
    })
}

/// Sets the keys of `--key NAME=on|off` arguments, in order.
pub fn apply(obj: &Object, args: &[String]) -> Result<()> {
    for a in args {
        let (name, state) = a.split_once('=').with_context(|| format!("--key `{a}`: expected NAME=on or NAME=off"))?;
        let on = parse_state(state).with_context(|| format!("--key `{a}`"))?;
        find_key(obj, name)?.set(on).with_context(|| format!("setting static key `{name}`"))?;
    }
    Ok(())
}

/// The programs (names) whose key maps are `key`'s, in the object's order.
fn key_programs(obj: &Object, key: &StaticKey) -> Vec<String> {
    let maps = key.maps();
    obj.programs()
        .iter()
        .filter(|p| p.insn_arrays().iter().any(|a| maps.iter().any(|m| Arc::ptr_eq(a, m))))
        .map(|p| p.name().to_string())
        .collect()
}

/// Every key of `obj` as the JSON of `key list`.
fn key_list_json(obj: &Object) -> Value {
    Value::Array(
        obj.static_keys()
            .iter()
            .map(|k| {
                json!({
                    "name": k.name(),
                    "state": state_name(k.get()),
                    "sites": k.sites(),
                    "programs": k.maps().len(),
                    "program_names": key_programs(obj, k),
                })
            })
            .collect(),
    )
}

fn print_key_list(list: &Value, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(list)?);
        return Ok(());
    }
    let keys = list.as_array().context("the key list is not a JSON array")?;
    if keys.is_empty() {
        println!("no static keys");
        return Ok(());
    }
    println!("{:<24} {:<5} {:>5} {:>8}  PROGRAM NAMES", "KEY", "STATE", "SITES", "PROGRAMS");
    for k in keys {
        let names: Vec<&str> =
            k["program_names"].as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
        println!(
            "{:<24} {:<5} {:>5} {:>8}  {}",
            k["name"].as_str().unwrap_or("?"),
            k["state"].as_str().unwrap_or("?"),
            k["sites"].as_u64().unwrap_or(0),
            k["programs"].as_u64().unwrap_or(0),
            names.join(", ")
        );
    }
    Ok(())
}

/// `bpfkit key list OBJ`: the keys as loaded (their initial states).
pub fn key_list(object: &Path, json: bool) -> Result<()> {
    let obj = open(object, 1)?;
    print_key_list(&key_list_json(&obj), json)
}

/// The key of each static branch of `prog` (xlated slot → key name), from the key maps the
/// program owns (`[orig, xlated, jitted]` entries).
pub fn site_keys(obj: &Object, prog: &Prog) -> BTreeMap<usize, String> {
    let owned = prog.insn_arrays();
    let mut out = BTreeMap::new();
    for k in obj.static_keys() {
        for m in k.maps().iter().filter(|m| owned.iter().any(|o| Arc::ptr_eq(o, m))) {
            for [_, xlated, _] in m.insn_array_entries().unwrap_or_default() {
                if xlated != bpfkit_maps::INSN_DELETED {
                    out.insert(xlated as usize, k.name().to_string());
                }
            }
        }
    }
    out
}

/// The note `prog dump` puts after a static branch: its key, the key's state and what the site
/// does now (`None`: `pc` is not a static branch).
pub fn site_note(obj: &Object, prog: &Prog, keys: &BTreeMap<usize, String>, pc: usize) -> Option<String> {
    let jumps = prog.interp_program().static_branch_jumps(pc)?;
    let does = if jumps { "jumps" } else { "falls through" };
    Some(match keys.get(&pc).and_then(|name| obj.static_key(name).ok()) {
        Some(k) => format!("; static key {}: {}, {does}", k.name(), state_name(k.get())),
        None => format!("; static branch of no known key: {does}"),
    })
}

/// The arguments of `bpfkit serve`.
#[derive(clap::Args)]
pub struct ServeArgs {
    /// ELF object.
    pub(crate) object: PathBuf,
    /// Program (function or section name); optional when the object has one. A packet program
    /// (XDP, socket filter, tc).
    #[arg(long)]
    pub(crate) prog: Option<String>,
    /// Packet capture whose packets the program runs over.
    #[arg(long, value_name = "FILE")]
    pub(crate) pcap: PathBuf,
    /// Run over the capture again and again until stopped (else once; the server then keeps
    /// answering until stopped).
    #[arg(long = "loop")]
    pub(crate) looping: bool,
    /// Execution backend.
    #[arg(long, value_enum, default_value_t = crate::Backend::Auto)]
    pub(crate) backend: crate::Backend,
    /// Run programs bpfkit's verifier refuses anyway (see `bpfkit run --help`).
    #[arg(long)]
    pub(crate) trust_unverified: bool,
    /// Worker threads (each takes every Nth packet; per-CPU maps get one slot per worker).
    #[arg(long, default_value_t = 1)]
    pub(crate) threads: usize,
    /// Control socket to create (a Unix-domain socket; a stale one is replaced).
    #[arg(long, value_name = "SOCKET")]
    pub(crate) control: PathBuf,
    /// Set a static key before the workers start (NAME=on or NAME=off; repeatable).
    #[arg(long, value_name = "NAME=on|off")]
    pub(crate) key: Vec<String>,
    /// Consistent flips: no run sees a flip half done (each run takes a shared lock; a flip
    /// waits for the runs in progress).
    #[arg(long)]
    pub(crate) consistent: bool,
    /// Load map entries first (JSON, as `run --map-init`).
    #[arg(long, value_name = "FILE")]
    pub(crate) map_init: Option<PathBuf>,
}

/// Set in the server process that `serve` starts (see the module doc).
const SERVER_ENV: &str = "BPFKIT_SERVE_CHILD";

/// `bpfkit serve`: runs the server in a child process and waits for it (the module doc says
/// why), or is that child.
pub fn serve_main(a: &ServeArgs) -> ExitCode {
    let child = std::env::var_os(SERVER_ENV).is_some();
    if !child {
        use std::os::unix::process::CommandExt;
        let spawned = std::env::current_exe().and_then(|exe| {
            std::process::Command::new(exe)
                .args(std::env::args_os().skip(1))
                .env(SERVER_ENV, "1")
                .stdin(std::process::Stdio::piped())
                .process_group(0)
                .spawn()
        });
        match spawned {
            Ok(mut server) => {
                // Our end of the pipe stays open until we end.
                let _pipe = server.stdin.take();
                return match server.wait() {
                    Ok(s) if s.success() => ExitCode::SUCCESS,
                    Ok(s) => ExitCode::from(s.code().map_or(1, |c| c.clamp(1, 255) as u8)),
                    Err(e) => {
                        eprintln!("error: waiting for the server process: {e}");
                        ExitCode::FAILURE
                    }
                };
            }
            Err(e) => eprintln!(
                "warning: cannot start the server process ({e}); serving in this one (SIGINT will not remove the socket)"
            ),
        }
    }
    match serve(a, child) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// One worker's counters. Each is written by its worker only (a load and a store, no locked
/// instruction) and read by the control thread.
#[repr(align(128))]
#[derive(Default)]
struct Counters {
    runs: AtomicU64,
    refused: AtomicU64,
    errors: AtomicU64,
    /// Return values 0..SMALL.
    small: [AtomicU64; SMALL],
    /// Other return values (rare).
    other: Mutex<BTreeMap<u64, u64>>,
}

const SMALL: usize = 8;

fn bump(c: &AtomicU64) {
    c.store(c.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
}

/// The state a server shares between its workers and its control connections.
struct Serve {
    obj: Object,
    prog: String,
    prog_type: ProgType,
    backend: bpfkit::Backend,
    looping: bool,
    consistent: bool,
    packets: Vec<Vec<u8>>,
    counters: Vec<Counters>,
    stop: AtomicBool,
    stop_reason: Mutex<Option<String>>,
    /// Workers still running.
    running: AtomicUsize,
    started: Instant,
    /// When the last worker ended (without --loop).
    finished: Mutex<Option<Instant>>,
    /// The previous `stats` request: when, and the runs then.
    last_stats: Mutex<(Instant, u64)>,
    first_error: Mutex<Option<String>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Serve {
    fn request_stop(&self, reason: &str) {
        lock(&self.stop_reason).get_or_insert_with(|| reason.to_string());
        self.stop.store(true, Ordering::Release);
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    fn prog(&self) -> &Prog {
        self.obj.program(&self.prog).expect("the served program exists")
    }

    /// Runs packets `t`, `t + threads`, ... until stopped (once without --loop).
    fn work(&self, t: usize) {
        let threads = self.counters.len();
        let c = &self.counters[t];
        let prog = self.prog();
        let mut w = Worker::new(self.obj.runtime(), t as u32);
        w.set_backend(self.backend);
        let mut xdp: Option<XdpPacket> = None;
        let mut frame = Vec::new();
        let mine = self.packets.iter().skip(t).step_by(threads);
        if mine.len() > 0 {
            'passes: loop {
                for data in mine.clone() {
                    if self.stopping() {
                        break 'passes;
                    }
                    match run_packet(prog, &mut w, &mut xdp, &mut frame, data) {
                        Ok(Some(v)) if v < SMALL as u64 => bump(&c.small[v as usize]),
                        Ok(Some(v)) => *lock(&c.other).entry(v).or_default() += 1,
                        Ok(None) => bump(&c.refused),
                        Err(e) => {
                            bump(&c.errors);
                            let mut first = lock(&self.first_error);
                            if first.is_none() {
                                eprintln!(
                                    "error: worker {t}: {e:#} (counted in \"errors\"; further errors are not printed)"
                                );
                                *first = Some(format!("{e:#}"));
                            }
                        }
                    }
                    bump(&c.runs);
                    if c.runs.load(Ordering::Relaxed).is_multiple_of(4096) {
                        emit_trace(&mut w);
                    }
                }
                emit_trace(&mut w);
                if !self.looping {
                    break;
                }
            }
        }
        emit_trace(&mut w);
        if self.running.fetch_sub(1, Ordering::AcqRel) == 1 {
            *lock(&self.finished) = Some(Instant::now());
        }
    }

    fn runs(&self) -> u64 {
        self.counters.iter().map(|c| c.runs.load(Ordering::Relaxed)).sum()
    }

    /// The `stats` answer: `program`, `type`, `backend`, `threads`, `loop`, `consistent`,
    /// `running` (workers still running), `uptime_s`, `runs`, `retvals` (count per return value,
    /// by name where it has one; `EINVAL`: packets refused as the kernel's test run refuses them),
    /// `errors` (runs that failed; `first_error`), `runs_per_second` (since the start, until the
    /// workers ended), `interval_s` and `interval_runs_per_second` (since the previous `stats`),
    /// `keys` (each key's state, `"on"`/`"off"`).
    fn stats(&self) -> Value {
        let now = Instant::now();
        let runs = self.runs();
        let mut counts: BTreeMap<u64, u64> = BTreeMap::new();
        let (mut refused, mut errors) = (0, 0);
        for c in &self.counters {
            for (v, n) in c.small.iter().enumerate() {
                let n = n.load(Ordering::Relaxed);
                if n > 0 {
                    *counts.entry(v as u64).or_default() += n;
                }
            }
            for (v, n) in lock(&c.other).iter() {
                *counts.entry(*v).or_default() += n;
            }
            refused += c.refused.load(Ordering::Relaxed);
            errors += c.errors.load(Ordering::Relaxed);
        }
        let names = objcmd::retval_names(self.prog_type);
        let mut retvals: serde_json::Map<String, Value> =
            counts.iter().map(|(k, v)| (names(*k).unwrap_or_else(|| k.to_string()), json!(v))).collect();
        if refused > 0 {
            retvals.insert("EINVAL".into(), json!(refused));
        }
        let end = lock(&self.finished).unwrap_or(now);
        let secs = end.duration_since(self.started).as_secs_f64();
        let (interval, interval_runs) = {
            let mut last = lock(&self.last_stats);
            let r = (now.duration_since(last.0).as_secs_f64(), runs - last.1.min(runs));
            *last = (now, runs);
            r
        };
        let rate = |n: u64, s: f64| if s > 0.0 { n as f64 / s } else { 0.0 };
        let keys: serde_json::Map<String, Value> =
            self.obj.static_keys().iter().map(|k| (k.name().to_string(), json!(state_name(k.get())))).collect();
        json!({
            "program": self.prog,
            "type": self.prog_type.name(),
            "backend": backend_name(self.backend),
            "threads": self.counters.len(),
            "loop": self.looping,
            "consistent": self.consistent,
            "running": self.running.load(Ordering::Acquire),
            "uptime_s": now.duration_since(self.started).as_secs_f64(),
            "runs": runs,
            "retvals": retvals,
            "errors": errors,
            "first_error": *lock(&self.first_error),
            "runs_per_second": rate(runs, secs),
            "interval_s": interval,
            "interval_runs_per_second": rate(interval_runs, interval),
            "keys": keys,
        })
    }

    /// The answer to one request line, and whether it asks the server to stop.
    fn answer(&self, line: &str) -> (String, bool) {
        let words: Vec<&str> = line.split_whitespace().collect();
        let r: Result<String> = match words.as_slice() {
            ["key", "set", name, state] => parse_state(state).and_then(|on| {
                find_key(&self.obj, name)?.set(on).with_context(|| format!("setting static key `{name}`"))?;
                Ok("ok".to_string())
            }),
            ["key", "get", name] => find_key(&self.obj, name).map(|k| state_name(k.get()).to_string()),
            ["key", "list"] => Ok(key_list_json(&self.obj).to_string()),
            ["stats"] => Ok(self.stats().to_string()),
            ["stop"] => return ("ok".into(), true),
            _ => Err(anyhow::anyhow!(
                "unknown request `{line}` (requests: key set NAME on|off, key get NAME, key list, stats, stop)"
            )),
        };
        match r {
            Ok(a) => (a, false),
            Err(e) => (format!("error: {e:#}").replace('\n', " "), false),
        }
    }

    /// Answers the requests of one connection until the client closes it.
    fn connection(&self, stream: UnixStream) -> std::io::Result<()> {
        const MAX: u64 = 4096;
        let mut reader = BufReader::new(stream.try_clone()?);
        let mut out = stream;
        loop {
            let mut line = Vec::new();
            let n = reader.by_ref().take(MAX).read_until(b'\n', &mut line)?;
            if n == 0 {
                return Ok(());
            }
            if line.last() != Some(&b'\n') && n as u64 == MAX {
                writeln!(out, "error: request longer than {MAX} bytes")?;
                return Ok(());
            }
            let text = String::from_utf8_lossy(&line);
            let text = text.trim();
            if text.is_empty() {
                continue;
            }
            let (answer, stop) = self.answer(text);
            writeln!(out, "{answer}")?;
            out.flush()?;
            if stop {
                self.request_stop("stop request");
                return Ok(());
            }
        }
    }
}

fn backend_name(b: bpfkit::Backend) -> &'static str {
    match b {
        bpfkit::Backend::Interp => "interp",
        bpfkit::Backend::Jit => "jit",
    }
}

fn emit_trace(w: &mut Worker) {
    for l in w.take_trace() {
        eprintln!("bpf_trace_printk: {l}");
    }
}

/// One run over `data` (no copy of the packet kept); `None`: refused as the kernel's test run
/// refuses it.
fn run_packet(
    prog: &Prog,
    w: &mut Worker,
    xdp: &mut Option<XdpPacket>,
    frame: &mut Vec<u8>,
    data: &[u8],
) -> Result<Option<u64>> {
    let r = match prog.prog_type() {
        ProgType::Xdp => {
            let pkt = match xdp {
                Some(p) => p.reset(data).map(|()| p),
                None => XdpPacket::new(data).map(|p| xdp.insert(p)),
            };
            pkt.and_then(|p| prog.run_xdp(w, p)).map(|o| u64::from(o.action))
        }
        _ => {
            frame.clear();
            frame.extend_from_slice(data);
            prog.run_skb(w, frame, &mut SkbMeta { ifindex: 1, ..SkbMeta::default() })
        }
    };
    match r {
        Ok(v) => Ok(Some(v)),
        Err(bpfkit::Error::Refused { .. } | bpfkit::Error::PacketTooBig { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Binds the control socket, replacing a stale one (a socket nobody listens at); refuses to
/// replace a live server's socket or a file that is not a socket.
fn bind(path: &Path) -> Result<UnixListener> {
    if let Ok(m) = std::fs::symlink_metadata(path) {
        if !m.file_type().is_socket() {
            bail!("{} exists and is not a socket; not replacing it", path.display());
        }
        if UnixStream::connect(path).is_ok() {
            bail!(
                "a server already listens at {} (stop it first: bpfkit control {} stop)",
                path.display(),
                path.display()
            );
        }
        std::fs::remove_file(path).with_context(|| format!("removing the stale socket {}", path.display()))?;
    }
    UnixListener::bind(path).with_context(|| format!("binding the control socket {}", path.display()))
}

fn serve(a: &ServeArgs, child: bool) -> Result<()> {
    let threads = a.threads.max(1);
    let stop_early = Arc::new(AtomicBool::new(false));
    if child {
        // The supervising parent ended (SIGINT, SIGTERM...): its end of our stdin closed.
        let flag = Arc::clone(&stop_early);
        std::thread::spawn(move || {
            let mut buf = [0u8; 64];
            let mut stdin = std::io::stdin();
            while matches!(stdin.read(&mut buf), Ok(n) if n > 0) {}
            flag.store(true, Ordering::Release);
        });
    }
    let obj = open(&a.object, threads as u32)?;
    if let Some(init) = &a.map_init {
        objcmd::map_init(&obj, init)?;
    }
    let prog = objcmd::pick(&obj, a.prog.as_deref())?;
    let prog_type = prog.prog_type();
    if !matches!(prog_type, ProgType::Xdp | ProgType::SocketFilter | ProgType::SchedCls | ProgType::SchedAct) {
        bail!(
            "program `{}` is a {prog_type} program: serve runs packet programs (xdp, socket filter, tc)",
            prog.name()
        );
    }
    let backend = objcmd::prepare_backend_for(&obj, a.backend, a.trust_unverified, None)?;
    apply(&obj, &a.key)?;
    if a.consistent {
        for p in obj.programs() {
            p.set_consistent_flips(true);
        }
    }
    let packets: Vec<Vec<u8>> = objcmd::read_pcap(&a.pcap)?.into_iter().map(|(_, d)| d).collect();
    if packets.is_empty() {
        bail!("{} holds no packets", a.pcap.display());
    }
    let prog_name = prog.name().to_string();
    let listener = bind(&a.control)?;
    let ours = std::fs::metadata(&a.control).map(|m| (m.dev(), m.ino())).ok();
    listener.set_nonblocking(true).context("control socket")?;
    let now = Instant::now();
    let s = Arc::new(Serve {
        obj,
        prog: prog_name,
        prog_type,
        backend,
        looping: a.looping,
        consistent: a.consistent,
        counters: (0..threads).map(|_| Counters::default()).collect(),
        packets,
        stop: AtomicBool::new(false),
        stop_reason: Mutex::default(),
        running: AtomicUsize::new(threads),
        started: now,
        finished: Mutex::default(),
        last_stats: Mutex::new((now, 0)),
        first_error: Mutex::default(),
    });
    println!(
        "serving {} ({}) over {} packets{} on {threads} thread(s) in the {}; control socket {}",
        s.prog,
        s.prog_type,
        s.packets.len(),
        if s.looping { " in a loop" } else { " once" },
        backend_name(backend),
        a.control.display()
    );
    let _ = std::io::stdout().flush();
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let s = Arc::clone(&s);
            std::thread::spawn(move || s.work(t))
        })
        .collect();
    while !s.stopping() {
        if stop_early.load(Ordering::Acquire) {
            s.request_stop("the serve process ended (SIGINT or SIGTERM)");
            break;
        }
        match listener.accept() {
            Ok((stream, _)) => {
                let s = Arc::clone(&s);
                // Connections are detached: an idle client does not keep the server up.
                std::thread::spawn(move || {
                    if stream.set_nonblocking(false).is_ok() {
                        let _ = s.connection(stream);
                    }
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => {
                eprintln!("warning: control socket: {e}");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
    drop(listener);
    // Remove the socket if it is still the one we made.
    if std::fs::metadata(&a.control).ok().map(|m| (m.dev(), m.ino())) == ours {
        let _ = std::fs::remove_file(&a.control);
    }
    for w in workers {
        let _ = w.join();
    }
    let stats = s.stats();
    let reason = lock(&s.stop_reason).clone().unwrap_or_default();
    println!("stopped ({reason}):");
    print_stats(&stats);
    Ok(())
}

fn print_stats(v: &Value) {
    let f = |k: &str| v[k].as_f64().unwrap_or(0.0);
    println!(
        "{} ({}) in the {} on {} thread(s){}, up {:.1} s: {} runs, {:.0} runs/s ({:.0} since the previous stats)",
        v["program"].as_str().unwrap_or("?"),
        v["type"].as_str().unwrap_or("?"),
        v["backend"].as_str().unwrap_or("?"),
        v["threads"],
        if v["running"].as_u64() == Some(0) { ", finished" } else { ", running" },
        f("uptime_s"),
        v["runs"],
        f("runs_per_second"),
        f("interval_runs_per_second"),
    );
    if let Some(r) = v["retvals"].as_object() {
        for (k, n) in r {
            println!("  {k:<16} {n}");
        }
    }
    if v["errors"].as_u64().unwrap_or(0) > 0 {
        println!("  {:<16} {} (first: {})", "errors", v["errors"], v["first_error"].as_str().unwrap_or("?"));
    }
    if let Some(keys) = v["keys"].as_object().filter(|k| !k.is_empty()) {
        let k: Vec<String> = keys.iter().map(|(n, s)| format!("{n} {}", s.as_str().unwrap_or("?"))).collect();
        println!("keys: {}", k.join(", "));
    }
}

/// Sends one request to the server at `socket` and returns its answer; an `error:` answer is
/// an error.
pub fn request(socket: &Path, line: &str) -> Result<String> {
    let mut stream = match UnixStream::connect(socket) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "no control socket at {}: is `bpfkit serve ... --control {}` running?",
            socket.display(),
            socket.display()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            bail!("nothing listens at {} (a stale socket: its server has ended)", socket.display())
        }
        Err(e) => return Err(e).with_context(|| format!("connecting to {}", socket.display())),
    };
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    writeln!(stream, "{}", line.trim())?;
    let mut answer = String::new();
    BufReader::new(&stream)
        .read_line(&mut answer)
        .with_context(|| format!("reading the answer from {}", socket.display()))?;
    let answer = answer.trim_end().to_string();
    if answer.is_empty() {
        bail!("the server at {} closed the connection without answering", socket.display());
    }
    if let Some(e) = answer.strip_prefix("error:") {
        bail!("{}", e.trim());
    }
    Ok(answer)
}

/// `bpfkit key set NAME on|off --control SOCKET`.
pub fn key_set(socket: &Path, name: &str, state: &str) -> Result<()> {
    let on = parse_state(state)?;
    let a = request(socket, &format!("key set {name} {}", state_name(on)))?;
    println!("{a}");
    Ok(())
}

/// `bpfkit key list --control SOCKET`.
pub fn key_list_control(socket: &Path, json: bool) -> Result<()> {
    let a = request(socket, "key list")?;
    let v: Value = serde_json::from_str(&a).with_context(|| format!("the server answered `{a}`"))?;
    print_key_list(&v, json)
}

/// `bpfkit stats --control SOCKET`.
pub fn stats(socket: &Path, json: bool) -> Result<()> {
    let a = request(socket, "stats")?;
    let v: Value = serde_json::from_str(&a).with_context(|| format!("the server answered `{a}`"))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print_stats(&v);
    }
    Ok(())
}

/// `bpfkit control SOCKET REQUEST...`: one raw request.
pub fn control(socket: &Path, words: &[String]) -> Result<()> {
    println!("{}", request(socket, &words.join(" "))?);
    Ok(())
}
