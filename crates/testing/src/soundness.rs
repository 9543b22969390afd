//! The verifier soundness oracle: whatever bpfkit's verifier accepts must run in the
//! bounds-checked interpreter without a memory fault.
//!
//! [`generate`] builds structured, mostly valid programs that probe the verifier's edges; each
//! is a sequence of *snippets*, every one a small idiom with its parameters drawn near the
//! boundary that decides whether it is safe:
//!
//! - stack accesses near `r10 - 512` and `r10`, with constant and bounded variable offsets,
//!   pointer spills and fills (stack, context, map value and packet pointers) with partial
//!   overwrites in between, narrow spills of bounded scalars filled back at other sizes;
//! - map values: `bpf_map_lookup_elem` of an array and a hash with and without NULL checks
//!   (on copies, on spills, 32-bit, against non-zero), direct value addresses (`lddw` of
//!   `BPF_PSEUDO_MAP_IDX_VALUE`), accesses near 0 and the value size with offsets bounded by
//!   unsigned, signed and 32-bit branches, masks, shifts, modulo and sign extensions;
//! - packets (XDP): `if data + N > data_end` in every comparison form (strict and not, either
//!   operand order, 32-bit), accesses just inside and just past, variable offsets, metadata
//!   checked against `data` plus a constant, and accesses after `bpf_xdp_adjust_*` through
//!   pointers checked before the call;
//! - context fields at valid and invalid offsets and sizes (XDP's `xdp_md`, the any-offset
//!   context of syscall programs), modified context pointers;
//! - pointer arithmetic: scalars with known and unknown bounds added and subtracted, 32-bit
//!   ALU on pointers, pointer differences, bitwise operations on pointers;
//! - loops bounded by a counter (the counter indexing the stack or a map value) and by
//!   `may_goto`, `bpf_loop` with a callback that indexes its context, BPF-to-BPF calls passing
//!   pointers to the caller's stack or to a map value (some returning them, some leaking their
//!   own stack pointer through them), atomics (aligned or not), jump tables with `gotox`;
//! - helpers with memory arguments: `bpf_map_update_elem`/`delete_elem` (keys and values on
//!   the stack, in map values, in the packet, in the context), `bpf_csum_diff` (NULL or
//!   memory, constant or bounded sizes), `bpf_strncmp`, `bpf_snprintf`, `bpf_trace_printk`.
//!
//! [`check`] loads a program with [`bpfkit::Runtime::prog_load`] in report mode, with the maps
//! of [`fd_array`](ARR) (an array, a hash, a read-only array, then one instruction array per jump
//! table); when the verifier accepts it, it runs in the interpreter over several inputs (XDP:
//! packets of different lengths; syscall programs: contexts of exactly `max_ctx_offset` bytes),
//! and a run that ends in a memory fault, a helper's refusal of a pointer argument or a control
//! transfer the verifier promised cannot happen is an [`Escape`]. Runs that divide by zero,
//! miss a tail call or get an error code from a helper are fine (BPF defines them).

use arbitrary::{Result as ArbResult, Unstructured};
use bpfkit::{MapFd, ProgLoad, Runtime, VerifyMode, Worker, XdpPacket};
use bpfkit_interp::{HelperError, RunErrorKind};
use bpfkit_isa::{AluOp, AtomicOp, CallTarget, Cond, Endian, Insn, LdImmSrc, Operand, RawInsn, Reg, Size, Width};
use bpfkit_maps::{MapSpec, MapType};
use bpfkit_object::ProgType;
use std::collections::BTreeMap;
use std::fmt;
use std::panic::AssertUnwindSafe;

/// `fd_array` entry 0: an array of one 48-byte value (key 4 bytes). With one element its value
/// is a region of its own in the interpreter, so any access past it faults.
pub const ARR: i32 = 0;
pub const ARR_VALUE: i32 = 48;
/// `fd_array` entry 1: a hash (key 8, value 24 bytes, 4 entries) holding keys 0 and 1.
pub const HASH: i32 = 1;
pub const HASH_VALUE: i32 = 24;
/// `fd_array` entry 2: a read-only (`BPF_F_RDONLY_PROG`, frozen) array of one 16-byte value,
/// [`RO_CONTENT`]: a format string, then bytes without a NUL.
pub const RO: i32 = 2;
pub const RO_VALUE: i32 = 16;
pub const RO_CONTENT: &[u8; 16] = b"v=%d\0\0\0\0ABCDEFGH";
/// `fd_array` entry of the first jump table ([`Case::tables`]); the others follow.
pub const TABLE0: i32 = 3;

/// A program to check, with what the maps and the inputs are filled from.
#[derive(Clone, Debug)]
pub struct Case {
    pub prog_type: ProgType,
    pub insns: Vec<RawInsn>,
    /// Jump tables (instruction indices), made into instruction arrays at `fd_array`
    /// [`TABLE0`], `TABLE0 + 1`, ...
    pub tables: Vec<Vec<u32>>,
    /// Bytes the map values, packets and contexts are made from.
    pub fill: Vec<u8>,
}

impl Case {
    /// A case from assembly text. `.jumptable` directives declare the tables, but the program
    /// must load table `i` with `ld_pseudo rX, 0x6, 3+i, 0` (`rX = NAME ll` would name
    /// `fd_array` entry `i`, which is a map of [`ARR`], [`HASH`] or [`RO`]); maps are
    /// `ld_pseudo rX, 0x5, N` and direct values `ld_pseudo rX, 0x6, N, OFF`.
    pub fn from_asm(prog_type: ProgType, text: &str) -> Result<Case, bpfkit_isa::AsmError> {
        let a = bpfkit_isa::asm::assemble_with_tables(text)?;
        Ok(Case {
            prog_type,
            insns: a.insns,
            tables: a.jump_tables.into_iter().map(|t| t.entries).collect(),
            fill: Vec::new(),
        })
    }

    /// The program as the disassembler prints it (assembles back to the same slots).
    pub fn listing(&self) -> String {
        let mut s = bpfkit_isa::listing(&self.insns).unwrap_or_else(|e| format!("(undecodable: {e})\n"));
        for (i, t) in self.tables.iter().enumerate() {
            s.push_str(&format!("; fd_array[{}]: jump table {t:?}\n", TABLE0 as usize + i));
        }
        s
    }
}

/// What [`check`] found.
#[derive(Debug)]
pub enum Outcome {
    /// The input made no program.
    NoProgram,
    /// The runtime refused the program before or after verification (not the verifier).
    NotLoaded { reason: String },
    /// The verifier refused it (at instruction `pc`).
    Rejected { pc: usize, message: String },
    /// The verifier accepted it and every run ended without an escape (`run_errors` of them
    /// with an error that is not one).
    Accepted { runs: u32, run_errors: u32 },
    /// The verifier accepted it (or panicked on it) and a run did what it should have made
    /// impossible.
    Escape(Box<Escape>),
}

/// A program the verifier accepted that faulted.
#[derive(Clone, Debug)]
pub struct Escape {
    /// The run's error.
    pub error: String,
    /// The input of the run that faulted.
    pub input: String,
    pub case: Case,
    /// The verifier's log at level 2 (its last lines).
    pub log: String,
}

impl Escape {
    /// The error with its numbers replaced by `N` and its pc dropped: escapes with the same key
    /// are most likely the same bug.
    pub fn key(&self) -> String {
        let e = self.error.split_once(": pc ").map_or(self.error.as_str(), |(a, _)| a);
        let rest = self.error.split_once(": pc ").map_or("", |(_, b)| b);
        let rest = rest.split_once(": ").map_or(rest, |(_, b)| b);
        normalize(&format!("{e}: {rest}"))
    }
}

impl fmt::Display for Escape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "verifier escape ({:?} program): {}", self.case.prog_type, self.error)?;
        writeln!(f, "input: {}", self.input)?;
        writeln!(f, "program:\n{}", self.case.listing())?;
        writeln!(f, "fill: {}", crate::fuzz::hex(&self.case.fill))?;
        write!(f, "verifier log (level 2, last lines):\n{}", self.log)
    }
}

/// Counts over many [`Outcome`]s.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub programs: u64,
    pub no_program: u64,
    pub not_loaded: u64,
    pub rejected: u64,
    pub accepted: u64,
    /// Runs of accepted programs.
    pub runs: u64,
    /// Runs that ended with an error that is not an escape.
    pub run_errors: u64,
    pub escapes: u64,
    /// Rejections (and refusals to load) by message (numbers replaced by `N`).
    pub reasons: BTreeMap<String, u64>,
}

impl Stats {
    pub fn add(&mut self, o: &Outcome) {
        self.programs += 1;
        match o {
            Outcome::NoProgram => self.no_program += 1,
            Outcome::NotLoaded { reason } => {
                self.not_loaded += 1;
                *self.reasons.entry(format!("(not loaded) {}", normalize(reason))).or_default() += 1;
            }
            Outcome::Rejected { message, .. } => {
                self.rejected += 1;
                *self.reasons.entry(normalize(message)).or_default() += 1;
            }
            Outcome::Accepted { runs, run_errors } => {
                self.accepted += 1;
                self.runs += u64::from(*runs);
                self.run_errors += u64::from(*run_errors);
            }
            Outcome::Escape(_) => {
                self.accepted += 1;
                self.escapes += 1;
            }
        }
    }

    /// Accepted programs, in percent of the programs generated.
    pub fn accepted_percent(&self) -> f64 {
        if self.programs == 0 { 0.0 } else { self.accepted as f64 * 100.0 / self.programs as f64 }
    }

    /// The `n` most frequent rejection messages.
    pub fn top_reasons(&self, n: usize) -> Vec<(&str, u64)> {
        let mut v: Vec<(&str, u64)> = self.reasons.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        v.truncate(n);
        v
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} programs: {} accepted ({:.1}%), {} rejected, {} not loaded, {} not generated; {} runs ({} ended with a non-escape error); {} escapes",
            self.programs,
            self.accepted,
            self.accepted_percent(),
            self.rejected,
            self.not_loaded,
            self.no_program,
            self.runs,
            self.run_errors,
            self.escapes
        )
    }
}

fn normalize(msg: &str) -> String {
    let mut out = String::new();
    let mut in_num = false;
    for c in msg.chars() {
        if c.is_ascii_hexdigit() && (in_num || c.is_ascii_digit()) || in_num && c == 'x' {
            if !in_num {
                out.push('N');
            }
            in_num = true;
        } else {
            in_num = false;
            out.push(c);
        }
    }
    out
}

/// The oracle: a program from `data` ([`generate`], the last quarter of `data` (at most 256
/// bytes) filling its maps and inputs), checked with [`run_case`].
pub fn check(data: &[u8]) -> Outcome {
    match case_of(data) {
        Some(case) => run_case(&case),
        None => Outcome::NoProgram,
    }
}

/// The case [`check`] makes of `data`.
pub fn case_of(data: &[u8]) -> Option<Case> {
    let fill_len = (data.len() / 4).min(256);
    let (head, fill) = data.split_at(data.len() - fill_len);
    let mut u = Unstructured::new(head);
    let mut case = generate(&mut u).ok()?;
    case.fill = fill.to_vec();
    Some(case)
}

/// Input `i` of [`smoke`] from `seed`.
pub fn smoke_input(seed: u64, i: usize) -> Vec<u8> {
    let s = seed.wrapping_add(i as u64);
    let len = 256 + (s.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 54) as usize;
    crate::r#gen::seeded_bytes(s, len)
}

/// Fuzz target `verifier_soundness`: [`check`], panicking on an escape. Prints the counts so
/// far to stderr after 2^k (k >= 12) and then every 100,000 inputs.
pub fn fuzz_target(data: &[u8]) {
    static STATS: std::sync::Mutex<Option<Stats>> = std::sync::Mutex::new(None);
    let o = check(data);
    {
        let mut g = STATS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let st = g.get_or_insert_with(Stats::default);
        st.add(&o);
        let n = st.programs;
        if n >= 4096 && (n.is_power_of_two() || n.is_multiple_of(100_000)) {
            eprintln!("soundness: {st}");
        }
    }
    if let Outcome::Escape(e) = o {
        panic!("{e}");
    }
}

/// Runs [`check`] on `n` pseudo-random inputs made from `seed`.
pub fn smoke(n: usize, seed: u64) -> (Stats, Vec<Escape>) {
    let mut stats = Stats::default();
    let mut escapes = Vec::new();
    for i in 0..n {
        let o = check(&smoke_input(seed, i));
        stats.add(&o);
        if let Outcome::Escape(e) = o {
            escapes.push(*e);
        }
    }
    (stats, escapes)
}

// ---------------------------------------------------------------------------------------------
// Loading and running

/// Deterministic bytes for map values, packets and contexts: `fill` first, then a
/// pseudo-random continuation; each 8-byte word is an "interesting" value (0, small, near a
/// sign boundary, all ones, a power of two) or random.
struct Filler<'a> {
    data: &'a [u8],
    pos: usize,
    rng: u64,
}

impl Filler<'_> {
    fn new(data: &[u8]) -> Filler<'_> {
        Filler { data, pos: 0, rng: 0x2545_f491_4f6c_dd1d ^ data.len() as u64 }
    }

    fn byte(&mut self) -> u8 {
        if let Some(&b) = self.data.get(self.pos) {
            self.pos += 1;
            return b;
        }
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        (self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8
    }

    fn word(&mut self) -> u64 {
        let k = self.byte();
        let small = u64::from(self.byte() & 0x3f);
        match k % 10 {
            0 => 0,
            1 | 2 => small,
            3 => u64::MAX - small,
            4 => 0x8000_0000u64.wrapping_add(small).wrapping_sub(32),
            5 => 0x7fff_ffff_ffff_ffffu64.wrapping_add(small).wrapping_sub(32),
            6 => 0xffff_ffffu64.wrapping_sub(small),
            7 => 1u64 << (small & 63),
            _ => u64::from_le_bytes(std::array::from_fn(|_| self.byte())),
        }
    }

    fn fill(&mut self, out: &mut [u8]) {
        for c in out.chunks_mut(8) {
            let w = self.word().to_le_bytes();
            c.copy_from_slice(&w[..c.len()]);
        }
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = vec![0u8; n];
        self.fill(&mut v);
        v
    }
}

/// Creates the maps of `fd_array` for `case`.
fn make_maps(rt: &Runtime, case: &Case, fill: &mut Filler<'_>) -> Result<Vec<MapFd>, bpfkit::Error> {
    let mut fds = Vec::new();
    let mut spec = MapSpec::new(MapType::Array, 4, ARR_VALUE as u32, 1);
    spec.name = "arr".into();
    let arr = rt.map_create(spec)?;
    rt.map_update_elem(arr, &0u32.to_le_bytes(), &fill.bytes(ARR_VALUE as usize), 0)?;
    fds.push(arr);
    let mut spec = MapSpec::new(MapType::Hash, 8, HASH_VALUE as u32, 4);
    spec.name = "hash".into();
    let hash = rt.map_create(spec)?;
    for k in 0u64..2 {
        rt.map_update_elem(hash, &k.to_le_bytes(), &fill.bytes(HASH_VALUE as usize), 0)?;
    }
    fds.push(hash);
    let mut spec = MapSpec::new(MapType::Array, 4, RO_VALUE as u32, 1);
    spec.name = "ro".into();
    spec.flags = bpfkit_maps::flags::BPF_F_RDONLY_PROG;
    let ro = rt.map_create(spec)?;
    rt.map_update_elem(ro, &0u32.to_le_bytes(), RO_CONTENT, 0)?;
    rt.map_freeze(ro)?;
    fds.push(ro);
    for t in &case.tables {
        let mut spec = MapSpec::new(MapType::InsnArray, 4, 16, t.len().max(1) as u32);
        spec.name = ".jumptables".into();
        let fd = rt.map_create(spec)?;
        for (i, e) in t.iter().enumerate() {
            let mut v = [0u8; 16];
            v[..4].copy_from_slice(&e.to_le_bytes());
            rt.map_update_elem(fd, &(i as u32).to_le_bytes(), &v, 0)?;
        }
        rt.map_freeze(fd)?;
        fds.push(fd);
    }
    Ok(fds)
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "(no message)".into())
}

/// The verifier's level-2 log of `case` (its last 150 lines).
fn verbose_log(case: &Case) -> String {
    let rt = Runtime::with_cpus(1);
    rt.set_verify_mode(VerifyMode::Report);
    rt.set_verify_log_level(2);
    let mut fill = Filler::new(&case.fill);
    let Ok(fds) = make_maps(&rt, case, &mut fill) else { return "(maps not made)".into() };
    let load =
        ProgLoad { name: "soundness".into(), prog_type: case.prog_type, insns: case.insns.clone(), fd_array: fds };
    let log = match std::panic::catch_unwind(AssertUnwindSafe(|| rt.prog_load(load))) {
        Ok(Ok(fd)) => {
            let log = rt.prog_by_fd(fd).map(|p| p.verify_report().log.clone()).unwrap_or_default();
            // The registry and the program hold each other: closing it frees both.
            let _ = rt.prog_close(fd);
            log
        }
        Ok(Err(e)) => format!("(not loaded: {e})"),
        Err(p) => format!("(the verifier panicked: {})", panic_message(&*p)),
    };
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(150)..].join("\n")
}

/// Whether a run error is something the verifier should have made impossible (and which).
pub fn escape_kind(e: &bpfkit::Error) -> Option<&'static str> {
    let bpfkit::Error::Run { source, .. } = e else { return None };
    match &source.kind {
        RunErrorKind::Access(_) => Some("memory fault"),
        RunErrorKind::Helper { source: HelperError::Access(_), .. } => Some("helper memory fault"),
        RunErrorKind::Helper { source: HelperError::Failed { message }, .. }
            if message.contains("is not a map")
                || message.contains("is not a reserved ring buffer record")
                || message.contains("insn_array maps cannot") =>
        {
            Some("helper refused a pointer argument")
        }
        RunErrorKind::BadIndirectJump { .. } => Some("gotox to a bad address"),
        RunErrorKind::FellOffEnd => Some("fell off the end"),
        RunErrorKind::CallDepth { .. } => Some("call depth"),
        RunErrorKind::BadCallback { .. } => Some("bad callback"),
        RunErrorKind::UnknownHelper { .. } => Some("unknown helper"),
        RunErrorKind::NoPacket => Some("LD_ABS without a packet"),
        _ => None,
    }
}

/// The inputs an accepted program runs over.
enum RunInput {
    Packet(Vec<u8>),
    Ctx(Vec<u8>),
}

impl fmt::Display for RunInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunInput::Packet(p) => write!(f, "packet of {} bytes {}", p.len(), crate::fuzz::hex(p)),
            RunInput::Ctx(c) => write!(f, "context of {} bytes {}", c.len(), crate::fuzz::hex(c)),
        }
    }
}

fn inputs(t: ProgType, max_ctx: u32, fill: &mut Filler<'_>) -> Vec<RunInput> {
    if t == ProgType::Xdp {
        let extra = usize::from(fill.byte());
        [14, 15 + extra % 20, 34 + extra % 30, 64, 100 + extra]
            .into_iter()
            .map(|n| RunInput::Packet(fill.bytes(n)))
            .collect()
    } else {
        (0..4).map(|_| RunInput::Ctx(fill.bytes(max_ctx as usize))).collect()
    }
}

/// Loads `case` in report mode; if the verifier accepts it, runs it over several inputs.
pub fn run_case(case: &Case) -> Outcome {
    let rt = Runtime::with_cpus(1);
    rt.set_verify_mode(VerifyMode::Report);
    let mut fill = Filler::new(&case.fill);
    let fds = match make_maps(&rt, case, &mut fill) {
        Ok(f) => f,
        Err(e) => return Outcome::NotLoaded { reason: e.to_string() },
    };
    let load =
        ProgLoad { name: "soundness".into(), prog_type: case.prog_type, insns: case.insns.clone(), fd_array: fds };
    let escape = |error: String, input: String| {
        Outcome::Escape(Box::new(Escape { error, input, case: case.clone(), log: verbose_log(case) }))
    };
    let fd = match std::panic::catch_unwind(AssertUnwindSafe(|| rt.prog_load(load))) {
        Ok(Ok(fd)) => fd,
        Ok(Err(e)) => return Outcome::NotLoaded { reason: e.to_string() },
        Err(p) => return escape(format!("the runtime panicked loading it: {}", panic_message(&*p)), "-".into()),
    };
    let outcome = run_loaded(&rt, fd, case, &mut fill, &escape);
    // The runtime's registry and the program hold each other: closing it frees both.
    let _ = rt.prog_close(fd);
    outcome
}

/// [`run_case`] once the program is loaded.
fn run_loaded(
    rt: &Runtime,
    fd: bpfkit::ProgFd,
    case: &Case,
    fill: &mut Filler<'_>,
    escape: &dyn Fn(String, String) -> Outcome,
) -> Outcome {
    let Ok(prog) = rt.prog_by_fd(fd) else {
        return Outcome::NotLoaded { reason: "the program vanished".into() };
    };
    let report = prog.verify_report();
    if let Some(e) = &report.error {
        return Outcome::Rejected { pc: e.pc, message: e.message.clone() };
    }
    let mut w = Worker::new(rt, 0);
    let (mut runs, mut run_errors) = (0, 0);
    for input in inputs(case.prog_type, report.max_ctx_offset, fill) {
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| match &input {
            RunInput::Packet(p) => {
                let mut pkt = XdpPacket::new(p)?;
                prog.run_xdp(&mut w, &mut pkt).map(|_| ())
            }
            RunInput::Ctx(c) => {
                let mut c = c.clone();
                prog.run_raw(&mut w, &mut c).map(|_| ())
            }
        }));
        runs += 1;
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => match escape_kind(&e) {
                Some(kind) => return escape(format!("{kind}: {e}"), input.to_string()),
                None => run_errors += 1,
            },
            Err(p) => return escape(format!("the run panicked: {}", panic_message(&*p)), input.to_string()),
        }
    }
    Outcome::Accepted { runs, run_errors }
}

// ---------------------------------------------------------------------------------------------
// A small assembler with labels

type Label = u32;

#[derive(Clone, Copy)]
enum Item {
    I(Insn),
    /// A jump or BPF-to-BPF call whose offset is the label's.
    J(Insn, Label),
    /// `lddw dst, <function at label>` (`BPF_PSEUDO_FUNC`).
    Func(Reg, Label),
    L(Label),
}

#[derive(Default)]
struct Asm {
    items: Vec<Item>,
    labels: u32,
    /// Instructions emitted (slots, about).
    slots: usize,
}

impl Asm {
    fn label(&mut self) -> Label {
        self.labels += 1;
        self.labels - 1
    }

    fn bind(&mut self, l: Label) {
        self.items.push(Item::L(l));
    }

    fn i(&mut self, i: Insn) {
        self.slots += i.slots();
        self.items.push(Item::I(i));
    }

    fn j(&mut self, i: Insn, l: Label) {
        self.slots += 1;
        self.items.push(Item::J(i, l));
    }

    fn goto(&mut self, l: Label) {
        self.j(Insn::Ja { long: false, off: 0 }, l);
    }

    fn jc(&mut self, cond: Cond, dst: Reg, src: Operand, l: Label) {
        self.j(Insn::JmpCond { width: Width::W64, cond, dst, src, off: 0 }, l);
    }

    fn jc32(&mut self, cond: Cond, dst: Reg, src: Operand, l: Label) {
        self.j(Insn::JmpCond { width: Width::W32, cond, dst, src, off: 0 }, l);
    }

    fn func(&mut self, dst: Reg, l: Label) {
        self.slots += 2;
        self.items.push(Item::Func(dst, l));
    }

    /// The slots, and the jump tables' entries as instruction indices.
    fn finish(&self, tables: &[Vec<Label>]) -> Option<(Vec<RawInsn>, Vec<Vec<u32>>)> {
        let mut at = vec![usize::MAX; self.labels as usize];
        let mut pc = 0usize;
        for it in &self.items {
            match it {
                Item::L(l) => at[*l as usize] = pc,
                Item::I(i) => pc += i.slots(),
                Item::J(..) => pc += 1,
                Item::Func(..) => pc += 2,
            }
        }
        let mut out = Vec::with_capacity(pc);
        pc = 0;
        for it in &self.items {
            let (insn, n) = match *it {
                Item::L(_) => continue,
                Item::I(i) => (i, i.slots()),
                Item::J(i, l) => {
                    let rel = at[l as usize] as i64 - pc as i64 - 1;
                    let rel16 = i16::try_from(rel).ok()?;
                    let i = match i {
                        Insn::Ja { long, .. } => Insn::Ja { long, off: i32::from(rel16) },
                        Insn::JmpCond { width, cond, dst, src, .. } => {
                            Insn::JmpCond { width, cond, dst, src, off: rel16 }
                        }
                        Insn::MayGoto { .. } => Insn::MayGoto { off: rel16 },
                        Insn::Call(CallTarget::Local(_)) => Insn::Call(CallTarget::Local(i32::from(rel16))),
                        other => other,
                    };
                    (i, 1)
                }
                Item::Func(dst, l) => {
                    let rel = at[l as usize] as i64 - pc as i64 - 1;
                    (Insn::LdImm64 { dst, src: LdImmSrc::Func, imm: rel as i32, next_imm: 0 }, 2)
                }
            };
            out.extend(insn.encode());
            pc += n;
        }
        let tables = tables.iter().map(|t| t.iter().map(|l| at[*l as usize] as u32).collect()).collect();
        Some((out, tables))
    }
}

// Instruction shorthands.
const R0: Reg = Reg::R0;
const R1: Reg = Reg::R1;
const R2: Reg = Reg::R2;
const R3: Reg = Reg::R3;
const R4: Reg = Reg::R4;
const R5: Reg = Reg::R5;
const R6: Reg = Reg::R6;
const R7: Reg = Reg::R7;
const R8: Reg = Reg::R8;
const R9: Reg = Reg::R9;
const R10: Reg = Reg::R10;

fn mov(d: Reg, s: Reg) -> Insn {
    Insn::Alu { width: Width::W64, op: AluOp::Mov, dst: d, src: Operand::Reg(s) }
}
fn mov32(d: Reg, s: Reg) -> Insn {
    Insn::Alu { width: Width::W32, op: AluOp::Mov, dst: d, src: Operand::Reg(s) }
}
fn movi(d: Reg, imm: i64) -> Insn {
    Insn::Alu { width: Width::W64, op: AluOp::Mov, dst: d, src: Operand::Imm(imm as i32) }
}
fn alui(op: AluOp, d: Reg, imm: i64) -> Insn {
    Insn::Alu { width: Width::W64, op, dst: d, src: Operand::Imm(imm as i32) }
}
fn alu32i(op: AluOp, d: Reg, imm: i64) -> Insn {
    Insn::Alu { width: Width::W32, op, dst: d, src: Operand::Imm(imm as i32) }
}
fn alur(op: AluOp, d: Reg, s: Reg) -> Insn {
    Insn::Alu { width: Width::W64, op, dst: d, src: Operand::Reg(s) }
}
fn alu32r(op: AluOp, d: Reg, s: Reg) -> Insn {
    Insn::Alu { width: Width::W32, op, dst: d, src: Operand::Reg(s) }
}
fn ld(size: Size, d: Reg, s: Reg, off: i64) -> Insn {
    Insn::Load { size, signed: false, dst: d, src: s, off: off as i16 }
}
fn ldsx(size: Size, d: Reg, s: Reg, off: i64) -> Insn {
    Insn::Load { size, signed: true, dst: d, src: s, off: off as i16 }
}
fn st(size: Size, d: Reg, off: i64, s: Reg) -> Insn {
    Insn::Store { size, dst: d, off: off as i16, src: Operand::Reg(s) }
}
fn sti(size: Size, d: Reg, off: i64, imm: i64) -> Insn {
    Insn::Store { size, dst: d, off: off as i16, src: Operand::Imm(imm as i32) }
}
fn call(id: i32) -> Insn {
    Insn::Call(CallTarget::Helper(id))
}
fn ld_map(d: Reg, idx: i32) -> Insn {
    Insn::LdImm64 { dst: d, src: LdImmSrc::MapIdx, imm: idx, next_imm: 0 }
}
fn ld_value(d: Reg, idx: i32, off: i64) -> Insn {
    Insn::LdImm64 { dst: d, src: LdImmSrc::MapIdxValue, imm: idx, next_imm: off as i32 }
}
fn imm(r: i64) -> Operand {
    Operand::Imm(r as i32)
}
fn reg(r: Reg) -> Operand {
    Operand::Reg(r)
}
fn size_of(n: i64) -> Size {
    match n {
        1 => Size::B,
        2 => Size::H,
        4 => Size::W,
        _ => Size::DW,
    }
}

mod helper {
    pub const LOOKUP: i32 = 1;
    pub const UPDATE: i32 = 2;
    pub const DELETE: i32 = 3;
    pub const TRACE_PRINTK: i32 = 6;
    pub const PRANDOM: i32 = 7;
    pub const CSUM_DIFF: i32 = 28;
    pub const ADJUST_HEAD: i32 = 44;
    pub const ADJUST_META: i32 = 54;
    pub const ADJUST_TAIL: i32 = 65;
    pub const SNPRINTF: i32 = 165;
    pub const LOOP: i32 = 181;
    pub const STRNCMP: i32 = 182;
}

// ---------------------------------------------------------------------------------------------
// The generator

/// What a subprogram receives and does.
#[derive(Clone, Copy, Debug)]
enum SubKind {
    /// `r1`: `len` bytes of the caller's stack; `r2`: a scalar. Returns `r1` when `ret_ptr`,
    /// else a scalar; with `leak`, writes a pointer to its own stack at `r1 + 0`.
    Stack { len: i64, ret_ptr: bool, leak: bool },
    /// `r1`: an [`ARR`] value; `r2`: a scalar.
    MapValue { ret_ptr: bool },
    /// A `bpf_loop` callback: `r1` the index, `r2` the context (`len` bytes of the caller's
    /// stack, or NULL when `len` is 0); with `leak`, as for `Stack`.
    Callback { len: i64, leak: bool },
}

/// What the function being generated has.
#[derive(Clone, Copy)]
struct Fun {
    /// `r6` holds the context (main).
    ctx: bool,
    /// `r6` holds the pointer argument of a subprogram: its region's size.
    arg: Option<i64>,
    /// Call depth (main: 0).
    depth: u32,
    /// `r9` is a loop counter (may not be written).
    r9_locked: bool,
    /// Nesting of ifs and loops.
    nesting: u32,
}

/// Most subprograms (frames: main + 3 levels + a callback stay below 8).
const MAX_SUBS: usize = 4;
/// About how many slots a program has at most.
const MAX_SLOTS: usize = 400;

struct G<'a, 'b> {
    u: &'a mut Unstructured<'b>,
    a: Asm,
    xdp: bool,
    tables: Vec<Vec<Label>>,
    pending: Vec<(Label, SubKind, u32)>,
    subs: usize,
    /// No deliberate off-by-ones (a third of the programs): keeps the share of accepted
    /// programs up, so that the runs test something.
    careful: bool,
}

/// A program from `u` (with an empty [`Case::fill`]).
pub fn generate(u: &mut Unstructured<'_>) -> ArbResult<Case> {
    let xdp = u.ratio(1, 2)?;
    let careful = u.ratio(1, 3)?;
    let mut g = G { u, a: Asm::default(), xdp, tables: Vec::new(), pending: Vec::new(), subs: 0, careful };
    g.main()?;
    while let Some((l, kind, depth)) = g.pending.pop() {
        g.sub(l, kind, depth)?;
    }
    let (insns, tables) = g.a.finish(&g.tables).ok_or(arbitrary::Error::IncorrectFormat)?;
    let prog_type = if xdp { ProgType::Xdp } else { ProgType::Syscall };
    Ok(Case { prog_type, insns, tables, fill: Vec::new() })
}

impl G<'_, '_> {
    /// A value in `[lo, hi]` (`lo` when the range is empty).
    fn range(&mut self, lo: i64, hi: i64) -> ArbResult<i64> {
        if hi <= lo {
            return Ok(lo);
        }
        self.u.int_in_range(lo..=hi)
    }

    fn pick<T: Copy>(&mut self, xs: &[T]) -> ArbResult<T> {
        self.u.choose(xs).copied()
    }

    fn chance(&mut self, num: u32, den: u32) -> ArbResult<bool> {
        self.u.ratio(num, den)
    }

    /// `v`, or (one time in six, never in careful programs) a value next to it.
    fn near(&mut self, v: i64) -> ArbResult<i64> {
        if self.careful || self.chance(5, 6)? {
            return Ok(v);
        }
        Ok(v + self.pick(&[-1, 1, 1, -2, 2, -4, 4, -8, 8, 3])?)
    }

    fn size(&mut self) -> ArbResult<i64> {
        self.pick(&[1, 2, 4, 8, 8, 4])
    }

    /// A scalar register of the pool (`r7`, `r8`).
    fn pool(&mut self) -> ArbResult<Reg> {
        Ok(if self.chance(1, 2)? { R7 } else { R8 })
    }

    fn main(&mut self) -> ArbResult<()> {
        let mut f = Fun { ctx: true, arg: None, depth: 0, r9_locked: false, nesting: 0 };
        self.a.i(mov(R6, R1));
        self.source(&f, R7, false)?;
        self.source(&f, R8, false)?;
        let n = self.pick(&[1, 2, 2, 3, 3, 4, 5, 6])?;
        for _ in 0..n {
            self.snippet(&mut f)?;
        }
        if self.chance(1, 2)? {
            self.a.i(movi(R0, 2));
        } else {
            self.a.i(mov(R0, R7));
        }
        self.a.i(Insn::Exit);
        Ok(())
    }

    fn sub(&mut self, l: Label, kind: SubKind, depth: u32) -> ArbResult<()> {
        self.a.bind(l);
        let (arg, ret_ptr, leak, callback) = match kind {
            SubKind::Stack { len, ret_ptr, leak } => (Some(len), ret_ptr, leak, false),
            SubKind::MapValue { ret_ptr } => (Some(i64::from(ARR_VALUE)), ret_ptr, false, false),
            SubKind::Callback { len, leak } => (Some(len), false, leak, true),
        };
        let mut f = Fun { ctx: false, arg, depth, r9_locked: false, nesting: 0 };
        if callback {
            self.a.i(mov(R6, R2));
            self.a.i(mov(R7, R1));
            if self.chance(1, 8)? {
                // No context after all: NULL (len 0 is NULL already).
                f.arg = None;
            }
        } else {
            self.a.i(mov(R6, R1));
            self.a.i(mov(R7, R2));
        }
        if f.arg == Some(0) {
            f.arg = None;
        }
        self.source(&f, R8, false)?;
        let n = self.range(1, 3)?;
        for _ in 0..n {
            if f.arg.is_some() && self.chance(1, 2)? {
                self.s_arg(&f)?;
            } else {
                self.snippet(&mut f)?;
            }
        }
        if leak {
            self.a.i(mov(R1, R10));
            self.a.i(alui(AluOp::Add, R1, -8));
            self.a.i(st(Size::DW, R6, 0, R1));
        }
        if callback {
            let r = self.pick(&[0, 0, 1, 2])?;
            if r == 2 && self.chance(1, 2)? {
                self.a.i(mov(R0, R7));
                self.a.i(alui(AluOp::And, R0, 1));
            } else {
                self.a.i(movi(R0, r));
            }
        } else if ret_ptr {
            self.a.i(mov(R0, R6));
        } else {
            self.a.i(mov(R0, R7));
        }
        self.a.i(Insn::Exit);
        Ok(())
    }

    /// One snippet, chosen by weight among those that fit `f`.
    fn snippet(&mut self, f: &mut Fun) -> ArbResult<()> {
        if self.a.slots > MAX_SLOTS {
            return Ok(());
        }
        #[derive(Clone, Copy)]
        enum S {
            Alu,
            Stack,
            Map,
            Direct,
            Packet,
            Meta,
            Ctx,
            SpillPtr,
            SpillScalar,
            PtrArith,
            If,
            Loop,
            MayGoto,
            BpfLoop,
            Call,
            Helper,
            Gotox,
            Atomic,
            Link,
        }
        let mut menu: Vec<(S, u32)> = vec![
            (S::Alu, 3),
            (S::Stack, 6),
            (S::Map, 7),
            (S::Direct, 4),
            (S::SpillPtr, 4),
            (S::SpillScalar, 3),
            (S::PtrArith, 2),
            (S::Helper, 5),
            (S::Atomic, 3),
            (S::Gotox, 3),
            (S::Link, 3),
        ];
        if f.ctx {
            menu.push((S::Ctx, 3));
            if self.xdp {
                menu.push((S::Packet, 9));
                menu.push((S::Meta, 3));
            }
        }
        if f.nesting < 2 {
            menu.push((S::If, 3));
            if !f.r9_locked {
                menu.push((S::Loop, 3));
                menu.push((S::MayGoto, 2));
            }
        }
        if self.subs < MAX_SUBS && f.depth < 3 {
            menu.push((S::Call, 3));
            menu.push((S::BpfLoop, 2));
        }
        let total: u32 = menu.iter().map(|m| m.1).sum();
        let mut k = self.u.int_in_range(0..=total - 1)?;
        let mut which = menu[0].0;
        for (s, w) in &menu {
            if k < *w {
                which = *s;
                break;
            }
            k -= w;
        }
        match which {
            S::Alu => self.s_alu(f),
            S::Stack => self.s_stack(f),
            S::Map => self.s_map(f),
            S::Direct => self.s_direct(f),
            S::Packet => self.s_packet(f),
            S::Meta => self.s_meta(f),
            S::Ctx => self.s_ctx(f),
            S::SpillPtr => self.s_spill_ptr(f),
            S::SpillScalar => self.s_spill_scalar(f),
            S::PtrArith => self.s_ptr_arith(f),
            S::If => self.s_if(f),
            S::Loop => self.s_loop(f),
            S::MayGoto => self.s_may_goto(f),
            S::BpfLoop => self.s_bpf_loop(f),
            S::Call => self.s_call(f),
            S::Helper => self.s_helper(f),
            S::Gotox => self.s_gotox(f),
            S::Atomic => self.s_atomic(f),
            S::Link => self.s_link(f),
        }
    }

    // -----------------------------------------------------------------------------------------
    // Scalars

    /// A fresh scalar into `dst` (`r7` or `r8`; the other one is read only when `both`);
    /// may clobber `r0`-`r5`.
    fn source(&mut self, f: &Fun, dst: Reg, both: bool) -> ArbResult<()> {
        match self.range(0, if both { 7 } else { 6 })? {
            0 => {
                let v = self.pick(&[0, 1, -1, 7, 8, 47, 48, 63, 64, 255, 511, 512, 0x7fff_ffff, -0x8000_0000])?;
                self.a.i(movi(dst, v));
            }
            1 => {
                let v: u64 = self.u.arbitrary()?;
                let v = self.pick(&[v, 1 << 32, (1 << 32) + 8, u64::MAX - 7, 0x8000_0000_0000_0000])?;
                self.a.i(Insn::LdImm64 { dst, src: LdImmSrc::Imm, imm: v as u32 as i32, next_imm: (v >> 32) as i32 });
            }
            2 | 3 if f.ctx && !self.xdp => {
                let s = self.size()?;
                let off = self.range(0, 7)? * 8;
                if self.chance(1, 4)? && s < 8 {
                    self.a.i(ldsx(size_of(s), dst, R6, off));
                } else {
                    self.a.i(ld(size_of(s), dst, R6, off));
                }
            }
            2 | 3 if f.ctx => {
                // A packet word, if the packet is long enough.
                let s = self.size()?;
                let l = self.a.label();
                self.a.i(ld(Size::W, R1, R6, 0));
                self.a.i(ld(Size::W, R2, R6, 4));
                self.a.i(mov(R3, R1));
                self.a.i(alui(AluOp::Add, R3, 16));
                self.a.i(movi(dst, 0));
                self.a.jc(Cond::Gt, R3, reg(R2), l);
                let off = self.range(0, 16 - s)?;
                self.a.i(ld(size_of(s), dst, R1, off));
                self.a.bind(l);
            }
            4 => {
                self.a.i(call(helper::PRANDOM));
                self.a.i(mov(dst, R0));
                if self.chance(1, 3)? {
                    self.a.i(alui(AluOp::Lsh, dst, 32));
                    self.a.i(call(helper::PRANDOM));
                    self.a.i(alur(AluOp::Or, dst, R0));
                }
            }
            5 => {
                let s = self.size()?;
                let off = self.range(0, (i64::from(ARR_VALUE) - s) / s)? * s;
                self.a.i(ld_value(R1, ARR, 0));
                if self.chance(1, 4)? && s < 8 {
                    self.a.i(ldsx(size_of(s), dst, R1, off));
                } else {
                    self.a.i(ld(size_of(s), dst, R1, off));
                }
            }
            6 => {
                let off = -8 * self.range(1, 64)?;
                let s = self.size()?;
                self.a.i(ld(size_of(s), dst, R10, off));
            }
            7 => {
                let other = if dst == R7 { R8 } else { R7 };
                let op = self.pick(&[
                    AluOp::Add,
                    AluOp::Sub,
                    AluOp::Mul,
                    AluOp::Div,
                    AluOp::Mod,
                    AluOp::Or,
                    AluOp::And,
                    AluOp::Xor,
                    AluOp::Lsh,
                    AluOp::Rsh,
                    AluOp::Arsh,
                    AluOp::SDiv,
                    AluOp::SMod,
                ])?;
                if self.chance(1, 3)? {
                    self.a.i(alu32r(op, dst, other));
                } else {
                    self.a.i(alur(op, dst, other));
                }
            }
            _ => {
                let v = self.pick(&[0, 8, 16, 40])?;
                self.a.i(movi(dst, v));
            }
        }
        // Unary shaping.
        for _ in 0..self.range(0, 2)? {
            let i = match self.range(0, 11)? {
                0 => Insn::Neg { width: Width::W64, dst },
                1 => alui(AluOp::Arsh, dst, self.range(1, 63)?),
                2 => alui(AluOp::Lsh, dst, self.range(1, 63)?),
                3 => alui(AluOp::Rsh, dst, self.range(1, 63)?),
                4 => Insn::Endian { kind: Endian::Swap, bits: self.pick(&[16, 32, 64])?, dst },
                5 => Insn::Alu {
                    width: Width::W64,
                    op: self.pick(&[AluOp::MovSx8, AluOp::MovSx16, AluOp::MovSx32])?,
                    dst,
                    src: reg(dst),
                },
                6 => mov32(dst, dst),
                7 => alui(AluOp::Add, dst, self.pick(&[1, -1, 8, -8, 48, -48, 0x7fff_ffff])?),
                8 => alui(AluOp::Mul, dst, self.pick(&[2, 3, 8, -1, 0x10001])?),
                9 => alu32i(AluOp::Sub, dst, self.pick(&[1, 8, 100])?),
                10 => alui(AluOp::And, dst, self.pick(&[0xff, 0xfff, 0x7fff_ffff, -8, -0x100])?),
                _ => alu32i(AluOp::Mod, dst, self.pick(&[3, 48, 100])?),
            };
            self.a.i(i);
        }
        Ok(())
    }

    /// `dst` (`r4` or `r5`) made a scalar in `[0, max]` (mostly: the bound is sometimes a
    /// little off, or missing), from a pool register; paths where it is not go to `skip`. May
    /// use `r3`.
    fn index(&mut self, dst: Reg, max: i64, skip: Label) -> ArbResult<()> {
        let max = max.max(0);
        let src = self.pool()?;
        let m = if !self.careful && self.chance(1, 6)? { (max + self.pick(&[-1, 1, 1])?).max(0) } else { max };
        match self.range(0, 15)? {
            0 | 1 => {
                self.a.i(mov(dst, src));
                self.a.jc(Cond::Gt, dst, imm(m), skip);
            }
            2 => {
                self.a.i(mov(dst, src));
                self.a.jc(Cond::Ge, dst, imm(m + 1), skip);
            }
            3 => {
                // 32-bit: with a 64-bit copy the upper half stays unknown.
                if self.chance(3, 4)? {
                    self.a.i(mov32(dst, src));
                } else {
                    self.a.i(mov(dst, src));
                }
                self.a.jc32(Cond::Gt, dst, imm(m), skip);
            }
            4 => {
                self.a.i(mov(dst, src));
                self.a.jc(Cond::Sgt, dst, imm(m), skip);
                if self.chance(7, 8)? {
                    let lo = self.pick(&[0, 0, 0, -1])?;
                    self.a.jc(Cond::Slt, dst, imm(lo), skip);
                }
            }
            5 => {
                // A mask: the largest all-ones value not above `m`.
                let bits = 64 - (m as u64 + 1).leading_zeros() - 1;
                let mask = if self.chance(3, 4)? { (1i64 << bits) - 1 } else { m };
                self.a.i(mov(dst, src));
                self.a.i(alui(AluOp::And, dst, mask));
            }
            6 => {
                let bits = 64 - (m as u64 + 1).leading_zeros() - 1;
                let bits = self.near(i64::from(bits))?.clamp(0, 63);
                self.a.i(mov(dst, src));
                self.a.i(alui(AluOp::Rsh, dst, 64 - bits));
            }
            7 => {
                self.a.i(mov(dst, src));
                self.a.i(alui(AluOp::Mod, dst, m + 1));
            }
            8 => {
                self.a.i(movi(R3, m));
                self.a.i(mov(dst, src));
                if self.chance(1, 2)? {
                    self.a.jc(Cond::Gt, dst, reg(R3), skip);
                } else {
                    self.a.jc(Cond::Lt, R3, reg(dst), skip);
                }
            }
            9 => {
                let ok = self.a.label();
                self.a.i(mov(dst, src));
                self.a.jc(Cond::Le, dst, imm(m), ok);
                self.a.goto(skip);
                self.a.bind(ok);
            }
            10 => {
                self.a.i(mov32(dst, src));
                self.a.jc32(Cond::Sgt, dst, imm(m), skip);
                if self.chance(7, 8)? {
                    self.a.jc32(Cond::Slt, dst, imm(0), skip);
                }
            }
            11 => {
                // jset: no bit above the mask.
                let bits = 64 - (m as u64 + 1).leading_zeros() - 1;
                let mask = (1i64 << bits) - 1;
                self.a.i(mov(dst, src));
                self.a.jc(Cond::Set, dst, imm(!mask), skip);
            }
            12 => {
                let w = self.pick(&[AluOp::MovSx8, AluOp::MovSx16, AluOp::MovSx32])?;
                self.a.i(Insn::Alu { width: Width::W64, op: w, dst, src: reg(src) });
                if self.chance(7, 8)? {
                    self.a.jc(Cond::Slt, dst, imm(0), skip);
                }
                self.a.jc(Cond::Gt, dst, imm(m), skip);
            }
            13 => {
                // Two-sided signed range, shifted to start at 0.
                let lo = self.pick(&[-16, -8, -1, -100])?;
                self.a.i(mov(dst, src));
                self.a.jc(Cond::Slt, dst, imm(lo), skip);
                self.a.jc(Cond::Sgt, dst, imm(lo + m), skip);
                self.a.i(alui(AluOp::Sub, dst, lo));
            }
            14 => {
                // Scaled: an element index times the element size.
                let elem = self.pick(&[2, 4, 8])?;
                self.a.i(mov(dst, src));
                self.a.jc(Cond::Gt, dst, imm(m / elem), skip);
                if self.chance(1, 2)? {
                    self.a.i(alui(AluOp::Mul, dst, elem));
                } else {
                    self.a.i(alui(AluOp::Lsh, dst, elem.trailing_zeros().into()));
                }
            }
            15 if self.chance(1, 2)? => {
                // No bound at all.
                self.a.i(mov(dst, src));
            }
            _ => {
                self.a.i(mov(dst, src));
                self.a.i(alui(AluOp::And, dst, m));
                self.a.jc(Cond::Gt, dst, imm(m), skip);
            }
        }
        Ok(())
    }

    fn s_alu(&mut self, f: &mut Fun) -> ArbResult<()> {
        let dst = self.pool()?;
        self.source(f, dst, true)
    }

    /// An access of `size` bytes at `base + off` (load, store of an immediate or a register,
    /// or both).
    fn access(&mut self, base: Reg, off: i64, size: i64, writable: bool) -> ArbResult<()> {
        let sz = size_of(size);
        let k = if writable { self.range(0, 4)? } else { 0 };
        match k {
            0 => {
                if self.chance(1, 5)? && size < 8 {
                    self.a.i(ldsx(sz, R0, base, off));
                } else {
                    self.a.i(ld(sz, R0, base, off));
                }
            }
            1 => {
                let v = self.pick(&[0, 1, -1, 0x55])?;
                self.a.i(sti(sz, base, off, v));
            }
            2 => {
                let p = self.pool()?;
                self.a.i(st(sz, base, off, p));
            }
            _ => {
                let p = self.pool()?;
                self.a.i(st(sz, base, off, p));
                self.a.i(ld(sz, R0, base, off));
            }
        }
        Ok(())
    }

    /// Accesses through `p` (`r0`, `r1` or `r2`) to a region of `region` bytes it points to
    /// the start of: constant offsets near both ends, or a bounded variable offset.
    fn region_access(&mut self, p: Reg, region: i64, writable: bool, skip: Label) -> ArbResult<()> {
        let s = self.size()?;
        if self.chance(1, 2)? {
            let m = self.pick(&[1, 3, 7, 8, 15, 16, 23, 31, 40, region - s, region - s, region - 1])?.max(0);
            let m = if self.chance(7, 8)? { m.min(region - s) } else { m };
            // Mostly an element index scaled by the access size (aligned accesses).
            let scaled = s > 1 && self.chance(7, 8)?;
            let m = if scaled { m / s * s } else { m };
            let off = match self.range(0, 2)? {
                0 => self.near(region - s - m)?,
                1 => self.near(0)?,
                _ => self.range(0, (region - s - m).max(0))? & !(s - 1),
            };
            let idx = if self.chance(1, 2)? { R4 } else { R5 };
            if scaled {
                self.index(idx, m / s, skip)?;
                self.a.i(alui(AluOp::Lsh, idx, s.trailing_zeros().into()));
            } else {
                self.index(idx, m, skip)?;
            }
            if self.chance(1, 4)? {
                self.a.i(alur(AluOp::Add, idx, p));
                self.access(idx, off, s, writable)
            } else {
                self.a.i(alur(AluOp::Add, p, idx));
                self.access(p, off, s, writable)
            }
        } else {
            let off = match self.range(0, 3)? {
                0 => self.near(region - s)?,
                1 => self.near(0)?,
                2 => self.range(0, region - s)? & !(s - 1),
                _ => self.range(-2, region + 2)?,
            };
            if writable && self.chance(1, 6)? { self.atomic(p, off) } else { self.access(p, off, s, writable) }
        }
    }

    /// An atomic operation at `base + off` (`base` not `r0` for `cmpxchg`).
    fn atomic(&mut self, base: Reg, off: i64) -> ArbResult<()> {
        let size = self.pick(&[Size::W, Size::DW])?;
        let off = if self.chance(7, 8)? { off & !(size.bytes() as i64 - 1) } else { off };
        let src = self.pool()?;
        let op = self.pick(&[
            AtomicOp::Add { fetch: false },
            AtomicOp::Add { fetch: true },
            AtomicOp::Or { fetch: false },
            AtomicOp::And { fetch: true },
            AtomicOp::Xor { fetch: false },
            AtomicOp::Xchg,
            AtomicOp::Cmpxchg,
            AtomicOp::LoadAcquire,
            AtomicOp::StoreRelease,
        ])?;
        match op {
            AtomicOp::Cmpxchg if base != R0 => self.a.i(movi(R0, 0)),
            AtomicOp::Cmpxchg => return self.access(base, off, size.bytes() as i64, true),
            _ => {}
        }
        let (dst, src) = match op {
            AtomicOp::LoadAcquire => (R0, base),
            _ => (base, src),
        };
        self.a.i(Insn::Atomic { size, op, dst, src, off: off as i16 });
        Ok(())
    }

    fn s_stack(&mut self, _f: &mut Fun) -> ArbResult<()> {
        let skip = self.a.label();
        let s = self.size()?;
        let var = self.chance(2, 5)?;
        let m = if var { self.pick(&[1, 3, 7, 8, 15, 16, 31, 63, 64, 100, 255, 504])? } else { 0 };
        let off = self.pick(&[0, 0, 0, -8, 8, -4, 16])?;
        // The access covers [b + off, b + off + m + s): inside [-512, 0) when valid.
        let b = match self.range(0, 3)? {
            0 => self.near(-512 - off)?,
            1 => self.near(-(m + s) - off)?,
            2 => self.range(-512, -(m + s))? / s * s - off,
            _ => self.pick(&[-8, -16, -64, -256, -504, -511, -512, -513, -1, 0])?,
        };
        let idx = R4;
        if var {
            self.index(idx, m, skip)?;
        }
        self.a.i(mov(R1, R10));
        self.a.i(alui(AluOp::Add, R1, b));
        if var {
            if self.chance(1, 5)? {
                self.a.i(alui(AluOp::Add, R1, m));
                self.a.i(alur(AluOp::Sub, R1, idx));
            } else {
                self.a.i(alur(AluOp::Add, R1, idx));
            }
        }
        if self.chance(1, 8)? {
            self.atomic(R1, off)?;
        } else {
            self.access(R1, off, s, true)?;
        }
        self.a.bind(skip);
        Ok(())
    }

    /// `bpf_map_lookup_elem` of [`ARR`] or [`HASH`] into `r0`, NULL-checked in one of several
    /// ways (or not); returns the value size.
    fn lookup(&mut self, skip: Label) -> ArbResult<i64> {
        let hash = self.chance(1, 3)?;
        let (map, ks, vs) = if hash { (HASH, Size::DW, HASH_VALUE) } else { (ARR, Size::W, ARR_VALUE) };
        let key_off = if hash { -8 * self.range(1, 4)? } else { -4 * self.range(1, 8)? };
        match self.range(0, 7)? {
            0 => {
                let p = self.pool()?;
                self.a.i(mov(R1, p));
                self.a.i(alui(AluOp::And, R1, 1));
                self.a.i(st(ks, R10, key_off, R1));
            }
            1 => self.a.i(sti(ks, R10, key_off, 1)),
            _ => self.a.i(sti(ks, R10, key_off, 0)),
        }
        self.a.i(ld_map(R1, map));
        self.a.i(mov(R2, R10));
        self.a.i(alui(AluOp::Add, R2, key_off));
        self.a.i(call(helper::LOOKUP));
        match self.range(0, 15)? {
            0 => {
                let ok = self.a.label();
                self.a.jc(Cond::Ne, R0, imm(0), ok);
                self.a.goto(skip);
                self.a.bind(ok);
            }
            1 => {
                self.a.i(mov(R1, R0));
                self.a.jc(Cond::Eq, R1, imm(0), skip);
            }
            2 => {
                let slot = -8 * self.range(1, 8)?;
                self.a.i(st(Size::DW, R10, slot, R0));
                self.a.jc(Cond::Eq, R0, imm(0), skip);
                self.a.i(ld(Size::DW, R0, R10, slot));
            }
            3 => {
                let slot = -8 * self.range(1, 8)?;
                self.a.i(st(Size::DW, R10, slot, R0));
                self.a.i(ld(Size::DW, R1, R10, slot));
                self.a.jc(Cond::Eq, R1, imm(0), skip);
            }
            4 if self.chance(1, 2)? => self.a.jc32(Cond::Eq, R0, imm(0), skip),
            5 if self.chance(1, 2)? => self.a.jc(Cond::Eq, R0, imm(1), skip),
            6 if self.chance(1, 2)? => {}
            7 => {
                self.a.i(movi(R1, 0));
                self.a.jc(Cond::Eq, R0, reg(R1), skip);
            }
            _ => self.a.jc(Cond::Eq, R0, imm(0), skip),
        }
        Ok(i64::from(vs))
    }

    fn s_map(&mut self, _f: &mut Fun) -> ArbResult<()> {
        let skip = self.a.label();
        let vs = self.lookup(skip)?;
        self.region_access(R0, vs, true, skip)?;
        self.a.bind(skip);
        Ok(())
    }

    fn s_direct(&mut self, _f: &mut Fun) -> ArbResult<()> {
        let skip = self.a.label();
        let (map, region, writable) = if self.chance(3, 4)? {
            (ARR, i64::from(ARR_VALUE), true)
        } else {
            (RO, i64::from(RO_VALUE), self.chance(1, 4)?)
        };
        let base = if self.chance(3, 4)? { 0 } else { self.range(0, region - 1)? };
        self.a.i(ld_value(R1, map, base));
        self.region_access(R1, region - base, writable, skip)?;
        self.a.bind(skip);
        Ok(())
    }

    /// `r2` = `data` (plus a bounded variable offset), `r3` = `data_end`, and a check that
    /// `n` bytes from `r2` are in the packet (in one of several forms, sometimes wrong);
    /// returns `n`. Uses `r1`, `r4`.
    fn packet_check(&mut self, skip: Label) -> ArbResult<i64> {
        let var = self.chance(1, 4)?;
        if var {
            let m = self.pick(&[1, 7, 15, 63, 255])?;
            self.index(R4, m, skip)?;
        }
        self.a.i(ld(Size::W, R2, R6, 0));
        self.a.i(ld(Size::W, R3, R6, 4));
        if var {
            self.a.i(alur(AluOp::Add, R2, R4));
        }
        let n = self.pick(&[1, 2, 4, 8, 8, 14, 14, 20, 34, 34, 60, 64, 100, 128])?;
        self.a.i(mov(R1, R2));
        self.a.i(alui(AluOp::Add, R1, n));
        match self.range(0, 11)? {
            0..=2 => self.a.jc(Cond::Gt, R1, reg(R3), skip),
            3 => self.a.jc(Cond::Lt, R3, reg(R1), skip),
            4 => {
                let ok = self.a.label();
                self.a.jc(Cond::Le, R1, reg(R3), ok);
                self.a.goto(skip);
                self.a.bind(ok);
            }
            5 => {
                let ok = self.a.label();
                self.a.jc(Cond::Ge, R3, reg(R1), ok);
                self.a.goto(skip);
                self.a.bind(ok);
            }
            6 => self.a.jc(Cond::Ge, R1, reg(R3), skip),
            7 => self.a.jc(Cond::Le, R3, reg(R1), skip),
            8 => {
                let ok = self.a.label();
                self.a.jc(Cond::Lt, R1, reg(R3), ok);
                self.a.goto(skip);
                self.a.bind(ok);
            }
            9 if self.chance(1, 2)? => self.a.jc32(Cond::Gt, R1, reg(R3), skip),
            10 if self.chance(1, 2)? => self.a.jc(Cond::Sgt, R1, reg(R3), skip),
            11 if self.chance(1, 2)? => {}
            _ => self.a.jc(Cond::Gt, R1, reg(R3), skip),
        }
        Ok(n)
    }

    fn s_packet(&mut self, f: &mut Fun) -> ArbResult<()> {
        let skip = self.a.label();
        let n = self.packet_check(skip)?;
        let s = self.size()?;
        let off = match self.range(0, 2)? {
            0 => self.near(n - s)?,
            1 => self.range(0, (n - s).max(0))?,
            _ => self.near(0)?,
        };
        match self.range(0, 5)? {
            0 => {
                // Through a pointer checked before a helper that moves the packet.
                let (h, delta) = match self.range(0, 2)? {
                    0 => (helper::ADJUST_TAIL, -self.pick(&[1, 4, 14, 40])?),
                    1 => (helper::ADJUST_HEAD, self.pick(&[1, 4, 14])?),
                    _ => (helper::ADJUST_META, -self.pick(&[4, 8, 32])?),
                };
                let spill = f.r9_locked || self.chance(1, 2)?;
                if spill {
                    self.a.i(st(Size::DW, R10, -8, R2));
                } else {
                    self.a.i(mov(R9, R2));
                }
                self.a.i(mov(R1, R6));
                self.a.i(movi(R2, delta));
                self.a.i(call(h));
                if spill {
                    self.a.i(ld(Size::DW, R2, R10, -8));
                } else {
                    self.a.i(mov(R2, R9));
                }
                if self.chance(1, 2)? {
                    // The same as the valid way: check again.
                    self.packet_check(skip)?;
                }
                self.access(R2, off, s, true)?;
            }
            1 => {
                self.a.i(mov(R5, R2));
                let d = self.pick(&[1, 4, -1])?;
                self.a.i(alui(AluOp::Add, R5, d));
                self.access(R5, off, s, true)?;
            }
            _ => self.access(R2, off, s, true)?,
        }
        self.a.bind(skip);
        Ok(())
    }

    /// Packet metadata: `bpf_xdp_adjust_meta` (or not), then `meta + n` checked against
    /// `data` (plus a constant, sometimes), then an access from `meta`.
    fn s_meta(&mut self, _f: &mut Fun) -> ArbResult<()> {
        let skip = self.a.label();
        if self.chance(2, 3)? {
            let d = self.pick(&[4, 8, 8, 16, 32])?;
            self.a.i(mov(R1, R6));
            self.a.i(movi(R2, -d));
            self.a.i(call(helper::ADJUST_META));
        }
        self.a.i(ld(Size::W, R2, R6, 8));
        self.a.i(ld(Size::W, R3, R6, 0));
        if self.chance(1, 3)? {
            let k = self.pick(&[1, 8, 64, 1000])?;
            self.a.i(alui(AluOp::Add, R3, k));
        }
        let n = self.pick(&[1, 4, 8, 16, 32, 64])?;
        self.a.i(mov(R1, R2));
        self.a.i(alui(AluOp::Add, R1, n));
        if self.chance(1, 2)? {
            self.a.jc(Cond::Gt, R1, reg(R3), skip);
        } else {
            self.a.jc(Cond::Lt, R3, reg(R1), skip);
        }
        let s = self.size()?;
        let off = if self.chance(1, 2)? { self.near(n - s)? } else { self.range(0, (n - s).max(0))? };
        self.access(R2, off, s, true)?;
        self.a.bind(skip);
        Ok(())
    }

    fn s_ctx(&mut self, _f: &mut Fun) -> ArbResult<()> {
        let s = self.size()?;
        if self.xdp {
            let off = self.pick(&[0, 4, 8, 12, 16, 20, 24])?;
            let off = self.near(off)?;
            let s = if self.chance(3, 4)? { 4 } else { s };
            match self.range(0, 5)? {
                0 => self.a.i(sti(size_of(s), R6, off, 1)),
                1 => {
                    self.a.i(mov(R1, R6));
                    self.a.i(alui(AluOp::Add, R1, 4));
                    self.a.i(ld(size_of(s), R0, R1, off - 4));
                }
                _ => self.a.i(ld(size_of(s), R0, R6, off)),
            }
        } else {
            let off = match self.range(0, 2)? {
                0 => self.range(0, 16)? * s,
                1 => {
                    let o = self.pick(&[0, 8, 64, 128, 256])?;
                    self.near(o)?
                }
                _ => self.range(0, 300)?,
            };
            match self.range(0, 5)? {
                0 => {
                    let p = self.pool()?;
                    self.a.i(st(size_of(s), R6, off, p));
                }
                1 => {
                    self.a.i(mov(R1, R6));
                    self.a.i(alui(AluOp::Add, R1, 8));
                    self.a.i(ld(size_of(s), R0, R1, off));
                }
                2 => {
                    let skip = self.a.label();
                    self.index(R4, 8, skip)?;
                    self.a.i(mov(R1, R6));
                    self.a.i(alur(AluOp::Add, R1, R4));
                    self.a.i(ld(size_of(s), R0, R1, off));
                    self.a.bind(skip);
                }
                _ => self.a.i(ld(size_of(s), R0, R6, off)),
            }
        }
        Ok(())
    }

    /// A pointer into `r1`; returns what it may access: (bytes from it, writable). Lookups and
    /// packet checks jump to `skip` on failure.
    fn pointer(&mut self, f: &Fun, skip: Label) -> ArbResult<(i64, bool)> {
        let mut k = self.range(0, 4)?;
        if k == 1 && !f.ctx {
            k = 0;
        }
        if k == 3 && !(f.ctx && self.xdp) {
            k = 2;
        }
        Ok(match k {
            0 => {
                let b = self.pick(&[8, 16, 24, 48, 64, 512])?;
                self.a.i(mov(R1, R10));
                self.a.i(alui(AluOp::Add, R1, -b));
                (b, true)
            }
            1 => {
                self.a.i(mov(R1, R6));
                (0, false)
            }
            2 => {
                let vs = self.lookup(skip)?;
                self.a.i(mov(R1, R0));
                (vs, true)
            }
            3 => {
                let n = self.packet_check(skip)?;
                self.a.i(mov(R1, R2));
                (n, true)
            }
            _ => {
                self.a.i(ld_value(R1, ARR, 0));
                (i64::from(ARR_VALUE), true)
            }
        })
    }

    fn s_spill_ptr(&mut self, f: &mut Fun) -> ArbResult<()> {
        let skip = self.a.label();
        let (region, writable) = self.pointer(f, skip)?;
        let is_ctx = region == 0 && !writable;
        let slot = -8 * self.range(1, 8)?;
        let slot = if self.chance(1, 10)? { self.near(slot)? } else { slot };
        self.a.i(st(Size::DW, R10, slot, R1));
        match self.range(0, 23)? {
            0 => self.a.i(call(helper::PRANDOM)),
            1 => {
                let o = self.range(0, 7)?;
                self.a.i(sti(Size::B, R10, slot + o, 0));
            }
            2 => {
                let p = self.pool()?;
                let o = self.pick(&[0, 4])?;
                self.a.i(st(Size::W, R10, slot + o, p));
            }
            3 => {
                let p = self.pool()?;
                self.a.i(Insn::Atomic {
                    size: Size::DW,
                    op: AtomicOp::Add { fetch: false },
                    dst: R10,
                    src: p,
                    off: slot as i16,
                });
            }
            4 => self.a.i(sti(Size::DW, R10, slot - 8, 0)),
            5 => {
                // A variable-offset write that may cover the slot.
                self.index(R4, 8, skip)?;
                self.a.i(mov(R3, R10));
                self.a.i(alur(AluOp::Add, R3, R4));
                self.a.i(sti(Size::B, R3, slot, 0));
            }
            _ => {}
        }
        let fill = if self.chance(1, 16)? { self.pick(&[Size::W, Size::B])? } else { Size::DW };
        self.a.i(ld(fill, R2, R10, slot));
        if is_ctx {
            if self.xdp {
                let o = self.pick(&[12, 16, 0, 2])?;
                self.a.i(ld(Size::W, R0, R2, o));
            } else {
                let o = self.pick(&[0, 8, 4])?;
                self.a.i(ld(Size::W, R0, R2, o));
            }
        } else {
            self.region_access(R2, region, writable, skip)?;
        }
        self.a.bind(skip);
        Ok(())
    }

    /// A bounded scalar spilled narrow, filled back (at the same size or not), used as an
    /// offset into a map value.
    fn s_spill_scalar(&mut self, _f: &mut Fun) -> ArbResult<()> {
        let skip = self.a.label();
        let s = self.pick(&[1, 2, 4, 8])?;
        let slot = -8 * self.range(1, 8)? + self.range(0, 8 / s - 1)? * s;
        let m = self.pick(&[7, 15, 40, 47, 48])?;
        self.index(R4, m, skip)?;
        self.a.i(st(size_of(s), R10, slot, R4));
        match self.range(0, 5)? {
            0 => {
                let o = self.pick(&[-1, s, 1])?;
                self.a.i(sti(Size::B, R10, slot + o, 0x7f));
            }
            1 => self.a.i(call(helper::PRANDOM)),
            _ => {}
        }
        let fs = if self.chance(3, 4)? { s } else { self.pick(&[1, 2, 4, 8])? };
        let fslot = if self.chance(7, 8)? { slot } else { slot + self.pick(&[-1, 1, 4])? };
        if self.chance(1, 6)? && fs < 8 {
            self.a.i(ldsx(size_of(fs), R5, R10, fslot));
        } else {
            self.a.i(ld(size_of(fs), R5, R10, fslot));
        }
        self.a.i(ld_value(R1, ARR, 0));
        self.a.i(alur(AluOp::Add, R1, R5));
        self.access(R1, 0, 1, true)?;
        self.a.bind(skip);
        Ok(())
    }

    fn s_ptr_arith(&mut self, f: &mut Fun) -> ArbResult<()> {
        let skip = self.a.label();
        match self.range(0, 8)? {
            0 => {
                self.a.i(mov(R1, R10));
                self.a.i(alu32i(AluOp::Add, R1, -8));
                self.a.i(sti(Size::B, R1, 0, 0));
            }
            1 => {
                // pointer - pointer, then used as an offset.
                let d = self.pick(&[8, 16, 512, 513])?;
                self.a.i(mov(R1, R10));
                self.a.i(alui(AluOp::Add, R1, -d));
                self.a.i(mov(R2, R10));
                self.a.i(alur(AluOp::Sub, R1, R2));
                self.a.i(mov(R3, R10));
                self.a.i(alur(AluOp::Add, R3, R1));
                self.a.i(sti(Size::B, R3, 0, 0));
            }
            2 => {
                let (region, writable) = self.pointer(f, skip)?;
                let back = self.pick(&[8, 16, 1])?;
                self.a.i(alui(AluOp::Sub, R1, back));
                let off = self.near(back)?;
                if region > 0 {
                    self.access(R1, off, 1, writable)?;
                }
            }
            3 => {
                self.a.i(ld_value(R1, ARR, 0));
                let p = self.pool()?;
                self.a.i(alur(AluOp::Add, R1, p));
                self.access(R1, 0, 1, true)?;
            }
            4 => {
                // A signed range added to a map value pointer.
                self.a.i(mov(R4, R7));
                self.a.jc(Cond::Sgt, R4, imm(8), skip);
                let lo = self.pick(&[-8, 0])?;
                self.a.jc(Cond::Slt, R4, imm(lo), skip);
                self.a.i(ld_value(R1, ARR, 8));
                self.a.i(alur(AluOp::Add, R1, R4));
                self.access(R1, 0, 1, true)?;
            }
            5 => {
                self.a.i(mov(R1, R10));
                self.a.i(alui(AluOp::And, R1, -8));
                self.a.i(sti(Size::B, R1, -8, 0));
            }
            6 => {
                self.index(R4, 8, skip)?;
                self.a.i(mov(R1, R10));
                self.a.i(alui(AluOp::Add, R1, -16));
                self.a.i(alur(AluOp::Add, R1, R4));
                self.a.i(alur(AluOp::Sub, R1, R4));
                let o = self.pick(&[0, 8, 9])?;
                self.access(R1, o, 8, true)?;
            }
            7 => {
                // 32-bit moves and subtraction of pointers give scalars.
                self.a.i(mov32(R1, R10));
                self.a.i(mov(R2, R10));
                self.a.i(alu32r(AluOp::Sub, R2, R1));
                self.a.i(ld_value(R3, ARR, 0));
                self.a.i(alur(AluOp::Add, R3, R2));
                self.access(R3, 0, 1, true)?;
            }
            _ => {
                self.a.i(ld_value(R1, ARR, 0));
                self.a.i(mov(R2, R1));
                let d = self.pick(&[8, 47, 48])?;
                self.a.i(alui(AluOp::Add, R2, d));
                self.a.i(alur(AluOp::Sub, R2, R1));
                self.a.i(alur(AluOp::Add, R1, R2));
                self.access(R1, 0, 1, true)?;
            }
        }
        self.a.bind(skip);
        Ok(())
    }

    fn s_if(&mut self, f: &mut Fun) -> ArbResult<()> {
        let els = self.a.label();
        let end = self.a.label();
        let p = self.pool()?;
        let cond = self.pick(&[Cond::Eq, Cond::Ne, Cond::Gt, Cond::Sgt, Cond::Set, Cond::Le, Cond::Slt])?;
        let v = self.pick(&[0, 1, 8, 48, -1])?;
        if self.chance(1, 3)? {
            self.a.jc32(cond, p, imm(v), els);
        } else {
            self.a.jc(cond, p, imm(v), els);
        }
        let mut inner = Fun { nesting: f.nesting + 1, ..*f };
        for _ in 0..self.range(1, 2)? {
            self.snippet(&mut inner)?;
        }
        self.a.goto(end);
        self.a.bind(els);
        for _ in 0..self.range(0, 2)? {
            self.snippet(&mut inner)?;
        }
        self.a.bind(end);
        Ok(())
    }

    /// A counted loop in `r9` whose counter indexes the stack or a map value.
    fn s_loop(&mut self, f: &mut Fun) -> ArbResult<()> {
        let head = self.a.label();
        let elem = self.pick(&[1, 4, 8])?;
        let stack = self.chance(1, 2)?;
        let n = self.range(1, 8)?;
        let n = if stack || n * elem <= i64::from(ARR_VALUE) || self.chance(1, 8)? {
            n
        } else {
            i64::from(ARR_VALUE) / elem
        };
        let region = if stack { self.near(n * elem)? } else { i64::from(ARR_VALUE) };
        let start = if self.chance(7, 8)? { 0 } else { -1 };
        self.a.i(movi(R9, start));
        self.a.bind(head);
        self.a.i(mov(R1, R9));
        self.a.i(alui(AluOp::Mul, R1, elem));
        if stack {
            self.a.i(mov(R2, R10));
            self.a.i(alui(AluOp::Add, R2, -region));
        } else {
            let base = self.near(i64::from(ARR_VALUE) - n * elem)?.max(0);
            self.a.i(ld_value(R2, ARR, base));
        }
        self.a.i(alur(AluOp::Add, R2, R1));
        self.a.i(st(size_of(elem), R2, 0, R9));
        if self.chance(1, 3)? {
            let mut inner = Fun { nesting: f.nesting + 1, r9_locked: true, ..*f };
            self.snippet(&mut inner)?;
        }
        self.a.i(alui(AluOp::Add, R9, 1));
        match self.range(0, 4)? {
            0 => self.a.jc(Cond::Ne, R9, imm(n), head),
            1 => self.a.jc(Cond::Slt, R9, imm(n), head),
            2 => self.a.jc32(Cond::Lt, R9, imm(n), head),
            3 => self.a.jc(Cond::Le, R9, imm(n - 1), head),
            _ => self.a.jc(Cond::Lt, R9, imm(n), head),
        }
        Ok(())
    }

    /// A loop bounded by `may_goto` (and ended at random at run time).
    fn s_may_goto(&mut self, _f: &mut Fun) -> ArbResult<()> {
        let head = self.a.label();
        let done = self.a.label();
        let stack = self.chance(1, 2)?;
        let mask = if stack { self.pick(&[7, 15, 31, 63])? } else { self.pick(&[7, 15, 31, 31, 63])? };
        let region = if stack { self.near(mask + 1)? } else { i64::from(ARR_VALUE) };
        self.a.bind(head);
        self.a.j(Insn::MayGoto { off: 0 }, done);
        self.a.i(call(helper::PRANDOM));
        self.a.i(mov(R1, R0));
        self.a.i(alui(AluOp::And, R1, mask));
        if stack {
            self.a.i(mov(R2, R10));
            self.a.i(alui(AluOp::Add, R2, -region));
        } else {
            let base = self.near(i64::from(ARR_VALUE) - mask - 1)?.max(0);
            self.a.i(ld_value(R2, ARR, base));
        }
        self.a.i(alur(AluOp::Add, R2, R1));
        self.a.i(sti(Size::B, R2, 0, 1));
        self.a.jc(Cond::Set, R0, imm(0x30), head);
        self.a.bind(done);
        Ok(())
    }

    fn s_bpf_loop(&mut self, f: &mut Fun) -> ArbResult<()> {
        let cb = self.a.label();
        let len = self.pick(&[0, 8, 16, 32, 64])?;
        let c = if len == 0 { 0 } else { self.near(len)?.max(1) };
        let leak = len >= 8 && self.chance(1, 8)?;
        self.subs += 1;
        self.pending.push((cb, SubKind::Callback { len, leak }, f.depth + 1));
        if self.chance(1, 2)? {
            let n = self.range(0, 8)?;
            self.a.i(movi(R1, n));
        } else {
            let p = self.pool()?;
            self.a.i(mov(R1, p));
            self.a.i(alui(AluOp::And, R1, 7));
        }
        self.a.func(R2, cb);
        if len == 0 {
            self.a.i(movi(R3, 0));
        } else {
            self.a.i(mov(R3, R10));
            self.a.i(alui(AluOp::Add, R3, -c));
        }
        self.a.i(movi(R4, 0));
        self.a.i(call(helper::LOOP));
        if leak {
            self.a.i(ld(Size::DW, R1, R10, -c));
            self.a.i(sti(Size::DW, R1, 0, 0));
        }
        Ok(())
    }

    fn s_call(&mut self, f: &mut Fun) -> ArbResult<()> {
        let l = self.a.label();
        let skip = self.a.label();
        let ret_ptr = self.chance(1, 4)?;
        let kind = if self.chance(2, 3)? {
            let len = self.pick(&[8, 16, 32, 64])?;
            let c = self.near(len)?.max(1);
            let leak = self.chance(1, 8)?;
            self.a.i(mov(R1, R10));
            self.a.i(alui(AluOp::Add, R1, -c));
            let p = self.pool()?;
            self.a.i(mov(R2, p));
            self.a.j(Insn::Call(CallTarget::Local(0)), l);
            if leak {
                self.a.i(ld(Size::DW, R1, R10, -c));
                self.a.i(sti(Size::DW, R1, 0, 0));
            }
            SubKind::Stack { len, ret_ptr, leak }
        } else {
            self.lookup(skip)?;
            self.a.i(mov(R1, R0));
            let p = self.pool()?;
            self.a.i(mov(R2, p));
            self.a.j(Insn::Call(CallTarget::Local(0)), l);
            SubKind::MapValue { ret_ptr }
        };
        if ret_ptr {
            let len = match kind {
                SubKind::Stack { len, .. } => len,
                _ => i64::from(ARR_VALUE),
            };
            let off = self.near(len - 8)?;
            self.a.i(sti(Size::DW, R0, off, 1));
        } else if self.chance(1, 2)? {
            self.a.i(mov(R8, R0));
        }
        self.subs += 1;
        self.pending.push((l, kind, f.depth + 1));
        self.a.bind(skip);
        Ok(())
    }

    /// In a subprogram: an access through the pointer argument in `r6`.
    fn s_arg(&mut self, f: &Fun) -> ArbResult<()> {
        let Some(len) = f.arg else { return Ok(()) };
        let skip = self.a.label();
        self.a.i(mov(R1, R6));
        self.region_access(R1, len, true, skip)?;
        self.a.bind(skip);
        Ok(())
    }

    /// A pointer in `to` to `need` bytes (or to a region near that size): the context, the
    /// packet, a map value, the stack, the pointer argument. May clobber `r1`-`r4`.
    fn mem_arg(&mut self, f: &Fun, need: i64, skip: Label, to: Reg) -> ArbResult<()> {
        match self.range(0, 9)? {
            0 if f.ctx => self.a.i(mov(to, R6)),
            1 if f.ctx && self.xdp => {
                let n = self.packet_check(skip)?;
                let off = self.near((n - need).max(0))?;
                self.a.i(mov(to, R2));
                self.a.i(alui(AluOp::Add, to, off.max(0)));
            }
            2 | 3 => {
                let region = i64::from(ARR_VALUE);
                let off = self.near(region - need)?.clamp(0, region - 1);
                self.a.i(ld_value(to, ARR, off));
            }
            4 => {
                let off = self.near(i64::from(RO_VALUE) - need)?.clamp(0, i64::from(RO_VALUE) - 1);
                self.a.i(ld_value(to, RO, off));
            }
            5 if f.arg.is_some() => self.a.i(mov(to, R6)),
            _ => {
                let c = self.near(need.max(1))?;
                let c = if self.chance(1, 8)? { self.pick(&[512, 513, 1])? } else { c };
                self.a.i(mov(to, R10));
                self.a.i(alui(AluOp::Add, to, -c));
            }
        }
        Ok(())
    }

    fn s_helper(&mut self, f: &mut Fun) -> ArbResult<()> {
        let skip = self.a.label();
        match self.range(0, 6)? {
            0 | 1 => {
                // bpf_map_update_elem: key on the stack (or elsewhere), value from anywhere.
                let hash = self.chance(1, 2)?;
                let (map, ks, vs) = if hash { (HASH, 8, HASH_VALUE) } else { (ARR, 4, ARR_VALUE) };
                let vs = i64::from(vs);
                self.mem_arg(f, vs, skip, R3)?;
                self.a.i(st(Size::DW, R10, -32, R3));
                if self.chance(5, 6)? {
                    self.a.i(sti(size_of(ks), R10, -8, 0));
                    self.a.i(mov(R2, R10));
                    self.a.i(alui(AluOp::Add, R2, -8));
                } else {
                    self.mem_arg(f, ks, skip, R2)?;
                }
                self.a.i(ld(Size::DW, R3, R10, -32));
                self.a.i(ld_map(R1, map));
                self.a.i(movi(R4, 0));
                self.a.i(call(helper::UPDATE));
            }
            2 => {
                // bpf_csum_diff(from, from_size, to, to_size, seed).
                let n = self.pick(&[4, 8, 16, 20, 48])?;
                if self.chance(1, 5)? {
                    self.a.i(movi(R1, 0));
                } else {
                    self.mem_arg(f, n, skip, R1)?;
                }
                if self.chance(1, 3)? {
                    self.index(R2, n, skip)?;
                    self.a.i(alui(AluOp::And, R2, -4));
                } else {
                    let k = self.near(n)?;
                    self.a.i(movi(R2, k));
                }
                self.a.i(movi(R3, 0));
                self.a.i(movi(R4, 0));
                self.a.i(mov(R5, R7));
                self.a.i(call(helper::CSUM_DIFF));
            }
            3 => {
                // bpf_strncmp(s1, s1_size, s2 = a read-only string).
                let n = self.pick(&[1, 4, 8, 16])?;
                self.mem_arg(f, n, skip, R1)?;
                let k = self.near(n)?;
                self.a.i(movi(R2, k));
                let off = self.pick(&[0, 0, 4, 8, 15, 16])?;
                self.a.i(ld_value(R3, RO, off));
                self.a.i(call(helper::STRNCMP));
            }
            4 => {
                // bpf_snprintf(out, size, fmt, data, data_len).
                let n = self.pick(&[8, 16, 32])?;
                let c = self.near(n)?;
                self.a.i(sti(Size::DW, R10, -8, 7));
                self.a.i(mov(R1, R10));
                self.a.i(alui(AluOp::Add, R1, -8 - c));
                self.a.i(movi(R2, n));
                self.a.i(ld_value(R3, RO, 0));
                if self.chance(1, 4)? {
                    self.a.i(movi(R4, 0));
                } else {
                    self.a.i(mov(R4, R10));
                    self.a.i(alui(AluOp::Add, R4, -8));
                }
                let l = self.pick(&[8, 8, 16, 0])?;
                self.a.i(movi(R5, l));
                self.a.i(call(helper::SNPRINTF));
            }
            5 => {
                // bpf_trace_printk(fmt on the stack, size, arg).
                let n = self.pick(&[8, 16])?;
                self.a.i(Insn::LdImm64 { dst: R1, src: LdImmSrc::Imm, imm: 0x0a64_2520, next_imm: 0 });
                self.a.i(st(Size::DW, R10, -16, R1));
                self.a.i(sti(Size::DW, R10, -8, 0));
                self.a.i(mov(R1, R10));
                self.a.i(alui(AluOp::Add, R1, -16));
                let k = self.near(n)?;
                self.a.i(movi(R2, k));
                self.a.i(mov(R3, R7));
                self.a.i(movi(R4, 0));
                self.a.i(movi(R5, 0));
                self.a.i(call(helper::TRACE_PRINTK));
            }
            _ => {
                // bpf_map_delete_elem(hash, key).
                self.mem_arg(f, 8, skip, R2)?;
                self.a.i(ld_map(R1, HASH));
                self.a.i(call(helper::DELETE));
            }
        }
        self.a.bind(skip);
        Ok(())
    }

    /// A jump table: an index bounded near its length, `gotox` through the entry.
    fn s_gotox(&mut self, f: &mut Fun) -> ArbResult<()> {
        let skip = self.a.label();
        let n = self.range(1, 5)?;
        let labels: Vec<Label> = (0..n).map(|_| self.a.label()).collect();
        let t = self.tables.len() as i32;
        self.tables.push(labels.clone());
        self.index(R4, n - 1, skip)?;
        self.a.i(alui(AluOp::Lsh, R4, 3));
        let base = if self.chance(7, 8)? { 0 } else { 8 };
        self.a.i(ld_value(R2, TABLE0 + t, base));
        self.a.i(alur(AluOp::Add, R2, R4));
        let off = if self.chance(7, 8)? { 0 } else { self.pick(&[8, -8, 4])? };
        self.a.i(ld(Size::DW, R2, R2, off));
        self.a.i(Insn::GotoX { reg: R2 });
        for (i, l) in labels.iter().enumerate() {
            self.a.bind(*l);
            self.a.i(alui(AluOp::Add, R7, i as i64));
            if i == 0 && f.nesting < 2 && self.chance(1, 3)? {
                let mut inner = Fun { nesting: f.nesting + 1, ..*f };
                self.snippet(&mut inner)?;
            }
            if i + 1 < labels.len() {
                self.a.goto(skip);
            }
        }
        self.a.bind(skip);
        Ok(())
    }

    /// Copies of a scalar (moves, spills) bounded through one copy and used through another,
    /// sometimes with one of them changed in between (then the bound does not carry over).
    fn s_link(&mut self, _f: &mut Fun) -> ArbResult<()> {
        let skip = self.a.label();
        let src = self.pool()?;
        let m = self.pick(&[1, 7, 15, 40, 47])?;
        let slot = -8 * self.range(1, 8)?;
        let spill = self.chance(1, 3)?;
        if spill {
            self.a.i(st(Size::DW, R10, slot, src));
        } else if self.chance(1, 6)? {
            self.a.i(mov32(R4, src));
        } else {
            self.a.i(mov(R4, src));
        }
        // Sometimes change one copy.
        let changed = if self.chance(1, 2)? { R4 } else { src };
        match self.range(0, 7)? {
            0 => {
                let d = self.pick(&[1, 8, -1])?;
                self.a.i(alui(AluOp::Add, changed, d));
            }
            1 => self.a.i(mov32(changed, changed)),
            2 => self.a.i(alui(AluOp::And, changed, 0xff)),
            3 => self.a.i(Insn::Neg { width: Width::W64, dst: changed }),
            4 if changed == src => self.a.i(call(helper::PRANDOM)),
            _ => {}
        }
        if spill {
            self.a.i(ld(Size::DW, R4, R10, slot));
        }
        let (bounded, used) = if self.chance(1, 2)? { (R4, src) } else { (src, R4) };
        match self.range(0, 3)? {
            0 => self.a.jc(Cond::Gt, bounded, imm(m), skip),
            1 => {
                self.a.jc(Cond::Sgt, bounded, imm(m), skip);
                self.a.jc(Cond::Slt, bounded, imm(0), skip);
            }
            2 => self.a.jc32(Cond::Gt, bounded, imm(m), skip),
            _ => {
                self.a.i(movi(R3, m));
                self.a.jc(Cond::Lt, R3, reg(bounded), skip);
            }
        }
        self.a.i(ld_value(R1, ARR, 0));
        self.a.i(alur(AluOp::Add, R1, used));
        self.access(R1, 0, 1, true)?;
        self.a.bind(skip);
        Ok(())
    }

    fn s_atomic(&mut self, _f: &mut Fun) -> ArbResult<()> {
        let skip = self.a.label();
        let off = self.pick(&[0, 8, 4, 2, 1, 44, 40, 41])?;
        if self.chance(1, 2)? {
            self.a.i(ld_value(R1, ARR, 0));
            self.atomic(R1, off)?;
        } else {
            self.a.i(mov(R1, R10));
            self.a.i(alui(AluOp::Add, R1, -48));
            self.atomic(R1, off)?;
        }
        self.a.bind(skip);
        Ok(())
    }
}
