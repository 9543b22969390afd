//! Runs every (object, program, input) of tests/bpf/programs.txt in the running kernel through
//! the `kernel-run` binary and checks that the outputs are there and make sense: one return value
//! per input, JSON that parses, per-CPU values only on CPU 0, and counters each program is known
//! to produce. Where bpf() is not usable (not root, a seccomp filter, an old kernel) every test
//! prints `SKIPPED: bpf() not available: <reason>` and passes.
//!
//! The results are also compared with tests/expected/ (written by tests/bpf/gen-expected.sh on
//! Linux 6.18); differences are printed, not failures, since another kernel may legitimately
//! differ (set BPFKIT_EXPECT_EXACT=1 to make them failures).

#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use bpfkit_kernel_runner::maps::{self, MapDump, Slot};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repository root")
}

fn out_dir(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("kernel-run").join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("creating the output directory");
    dir
}

/// None when bpf() works, else why not (printed as SKIPPED). The objects use `-mcpu=v4`
/// instructions, which the verifier accepts since Linux 6.6.
fn skip_reason() -> Option<String> {
    if let Ok(release) = std::fs::read_to_string("/proc/sys/kernel/osrelease") {
        let mut nums = release.trim().split(['.', '-']).map(|n| n.parse::<u32>().unwrap_or(0));
        let (major, minor) = (nums.next().unwrap_or(0), nums.next().unwrap_or(0));
        if (major, minor) < (6, 6) {
            return Some(format!("Linux {} is older than 6.6 (cpu v4 instructions)", release.trim()));
        }
    }
    bpfkit_kernel_runner::bpf_available().err()
}

macro_rules! skip_without_bpf {
    () => {
        if let Some(reason) = skip_reason() {
            eprintln!("SKIPPED: bpf() not available: {reason}");
            return;
        }
    };
}

#[derive(Debug, Clone)]
struct Case {
    object: String,
    prog: String,
    input: String,
    init: Option<String>,
    extra: Vec<String>,
}

impl Case {
    fn stem(&self) -> String {
        let file = Path::new(&self.object).file_name().unwrap().to_string_lossy().into_owned();
        format!("{}-{}", file.trim_end_matches(".bpf.o"), self.prog)
    }
}

fn cases() -> Vec<Case> {
    let text = std::fs::read_to_string(root().join("tests/bpf/programs.txt")).expect("tests/bpf/programs.txt");
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(cols.len(), 5, "programs.txt line {l:?}");
            Case {
                object: cols[0].into(),
                prog: cols[1].into(),
                input: cols[2].into(),
                init: (cols[3] != "-").then(|| cols[3].into()),
                extra: if cols[4] == "-" { vec![] } else { cols[4].split(',').map(String::from).collect() },
            }
        })
        .collect()
}

fn possible_cpus() -> usize {
    let text = std::fs::read_to_string("/sys/devices/system/cpu/possible").expect("possible CPUs");
    text.trim()
        .split(',')
        .map(|part| match part.split_once('-') {
            Some((a, b)) => b.parse::<usize>().unwrap() - a.parse::<usize>().unwrap() + 1,
            None => 1,
        })
        .sum()
}

/// What one run of kernel-run produced.
struct Outputs {
    retvals: Vec<String>,
    maps: MapDump,
    out_pcap: Option<Vec<Vec<u8>>>,
    ctx_out: Option<Vec<String>>,
    trace: Option<Vec<String>>,
    inputs: usize,
    dir: PathBuf,
}

impl Outputs {
    fn ok_runs(&self) -> u64 {
        self.retvals.iter().filter(|r| r.parse::<u32>().is_ok()).count() as u64
    }

    fn count(&self, retval: u32) -> u64 {
        self.retvals.iter().filter(|r| r.parse::<u32>() == Ok(retval)).count() as u64
    }

    fn entries(&self, map: &str) -> &[maps::Entry] {
        self.maps.get(map).unwrap_or_else(|| panic!("no map {map:?} in the dump"))
    }

    /// The value bytes at `key` (u32 little-endian) of an ordinary map, or of CPU 0.
    fn value(&self, map: &str, key: u32) -> Vec<u8> {
        self.value_at(map, &key.to_le_bytes())
    }

    fn value_at(&self, map: &str, key: &[u8]) -> Vec<u8> {
        let e = self.entries(map).iter().find(|e| e.key == key);
        match e.map(|e| &e.slot) {
            Some(Slot::Bytes(v)) => v.clone(),
            Some(Slot::PerCpu(vs)) => vs[0].clone(),
            other => panic!("{map}[{}]: {other:?}", maps::hex(key)),
        }
    }

    fn u64_at(&self, map: &str, key: u32, offset: usize) -> u64 {
        let v = self.value(map, key);
        u64::from_le_bytes(v[offset..offset + 8].try_into().unwrap())
    }

    fn u32_at(&self, map: &str, key: u32, offset: usize) -> u32 {
        let v = self.value(map, key);
        u32::from_le_bytes(v[offset..offset + 4].try_into().unwrap())
    }

    /// Sum of the first u64 of every value of an ordinary (or per-CPU, CPU 0) map.
    fn sum_first_u64(&self, map: &str) -> u64 {
        self.entries(map)
            .iter()
            .map(|e| match &e.slot {
                Slot::Bytes(v) => u64::from_le_bytes(v[..8].try_into().unwrap()),
                Slot::PerCpu(vs) => u64::from_le_bytes(vs[0][..8].try_into().unwrap()),
                _ => 0,
            })
            .sum()
    }
}

fn run(case: &Case, dir: &Path) -> Result<Outputs, String> {
    let root = root();
    let base = dir.join(case.stem());
    let path = |ext: &str| PathBuf::from(format!("{}.{ext}", base.display()));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kernel-run"));
    cmd.current_dir(&root)
        .env("KERNEL_RUN_QUIET", "1")
        .arg(&case.object)
        .args(["--prog", &case.prog])
        .arg("--retvals")
        .arg(path("retvals"))
        .arg("--dump-maps")
        .arg(path("maps.json"));
    let inputs = if case.input.ends_with(".pcap") {
        cmd.args(["--pcap", &case.input]);
        bpfkit_kernel_runner::read_pcap(&root.join(&case.input)).map_err(|e| e.to_string())?.len()
    } else {
        cmd.args(["--ctx-file", &case.input]);
        let text = std::fs::read_to_string(root.join(&case.input)).map_err(|e| e.to_string())?;
        text.lines().filter(|l| !l.split('#').next().unwrap_or("").trim().is_empty()).count()
    };
    if let Some(init) = &case.init {
        cmd.args(["--map-init", init]);
    }
    let tracing = Path::new("/sys/kernel/tracing/trace").exists();
    for extra in &case.extra {
        match extra.as_str() {
            "out-pcap" => cmd.arg("--out-pcap").arg(path("out.pcap")),
            "ctx-out" => cmd.arg("--ctx-out").arg(path("ctx-out")),
            "trace" if tracing => cmd.arg("--trace").arg(path("trace")),
            "trace" => {
                eprintln!("note: {}: tracefs is not mounted, bpf_trace_printk output not checked", case.stem());
                &mut cmd
            }
            other => return Err(format!("unknown extra output {other}")),
        };
    }
    let out = cmd.output().map_err(|e| format!("running kernel-run: {e}"))?;
    if !out.status.success() {
        return Err(format!("kernel-run failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let read = |p: PathBuf| std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()));
    let lines = |t: String| t.lines().map(String::from).collect::<Vec<_>>();
    let retvals = lines(read(path("retvals"))?);
    let maps = maps::from_json(&read(path("maps.json"))?).map_err(|e| format!("maps JSON: {e:#}"))?;
    let out_pcap = match path("out.pcap").exists() {
        true => Some(
            bpfkit_kernel_runner::read_pcap(&path("out.pcap"))
                .map_err(|e| e.to_string())?
                .into_iter()
                .map(|(_, d)| d)
                .collect(),
        ),
        false => None,
    };
    let ctx_out = if path("ctx-out").exists() { Some(lines(read(path("ctx-out"))?)) } else { None };
    let trace = if path("trace").exists() { Some(lines(read(path("trace"))?)) } else { None };
    Ok(Outputs { retvals, maps, out_pcap, ctx_out, trace, inputs, dir: dir.to_path_buf() })
}

/// Checks every program's outputs must pass.
fn generic_checks(case: &Case, o: &Outputs) -> Vec<String> {
    let mut problems = Vec::new();
    if o.retvals.len() != o.inputs {
        problems.push(format!("{} return values for {} inputs", o.retvals.len(), o.inputs));
    }
    for r in &o.retvals {
        if r.parse::<u32>().is_err() && !(r.starts_with('E') && r.chars().all(|c| c.is_ascii_alphanumeric())) {
            problems.push(format!("bad retvals line {r:?}"));
            break;
        }
    }
    if o.ok_runs() == 0 {
        problems.push("the kernel refused every run".into());
    }
    let ncpus = possible_cpus();
    for (name, entries) in &o.maps {
        for e in entries {
            if let Slot::PerCpu(vs) = &e.slot {
                if vs.len() != ncpus {
                    problems.push(format!("{name}: {} per-CPU values, {ncpus} possible CPUs", vs.len()));
                }
                if vs.iter().skip(1).any(|v| v.iter().any(|b| *b != 0)) {
                    problems.push(format!("{name}[{}]: data on a CPU other than 0", maps::hex(&e.key)));
                }
            }
        }
    }
    if let Some(ctx) = &o.ctx_out
        && ctx.len() != o.inputs
    {
        problems.push(format!("{} ctx-out lines for {} inputs", ctx.len(), o.inputs));
    }
    if case.extra.iter().any(|e| e == "out-pcap") && o.out_pcap.is_none() {
        problems.push("no out.pcap".into());
    }
    problems
}

fn expect(problems: &mut Vec<String>, what: &str, ok: bool) {
    if !ok {
        problems.push(format!("expected {what}"));
    }
}

/// What each program is known to produce.
fn specific_checks(case: &Case, o: &Outputs) -> Vec<String> {
    let mut p = Vec::new();
    let ok = o.ok_runs();
    match case.prog.as_str() {
        "xdp_count" => {
            expect(&mut p, "stats[ALL].packets == successful runs", o.u64_at("stats", 0, 0) == ok);
            for (idx, what) in [(1, "IPv4"), (2, "IPv6"), (3, "TCP"), (4, "UDP"), (5, "ICMP"), (6, "ARP")] {
                expect(&mut p, &format!("{what} packets counted"), o.u64_at("stats", idx, 0) > 0);
            }
            expect(&mut p, "VLAN frames counted", o.u64_at("stats", 7, 0) > 0);
            expect(&mut p, "malformed frames counted", o.u64_at("stats", 9, 0) > 0);
            expect(&mut p, "stats[DROPPED] == XDP_DROP count", o.u64_at("stats", 10, 0) == o.count(1));
            expect(&mut p, "some drops", o.count(1) > 0);
            expect(&mut p, "drop_port 8080 in .rodata", o.value(".rodata", 0) == 8080u16.to_le_bytes());
        }
        "maps_xdp" => {
            expect(&mut p, "class_stats packets sum == runs", o.sum_first_u64("class_stats") == ok);
            expect(&mut p, "class_pcpu packets sum == runs", o.sum_first_u64("class_pcpu") == ok);
            expect(&mut p, "XDP_TX count == ARP packets", o.count(3) == o.u64_at("class_stats", 1, 0));
            expect(&mut p, "by_ethertype has IPv4", o.entries("by_ethertype").iter().any(|e| e.key == [0x00, 0x08]));
            expect(&mut p, "by_ethertype has IPv6", o.entries("by_ethertype").iter().any(|e| e.key == [0xdd, 0x86]));
            expect(&mut p, "open flows", !o.entries("open_flows").is_empty());
            expect(&mut p, "LRU entries", !o.entries("by_saddr_lru").is_empty());
            expect(&mut p, "per-CPU LRU entries", !o.entries("by_dport_lru_pcpu").is_empty());
            expect(&mut p, "per-CPU hash entries", !o.entries("by_l4_pcpu").is_empty());
        }
        "tail_entry" => {
            expect(&mut p, "hits[ENTRY] == runs", o.u64_at("hits", 0, 0) == ok);
            for (idx, what) in [(1, "TCP"), (2, "UDP"), (3, "ICMP"), (4, "LAST"), (5, "OTHER (map-init slot)")] {
                expect(&mut p, &format!("{what} tail calls"), o.u64_at("hits", idx, 0) > 0);
            }
            expect(&mut p, "no fallthrough with slot 3 filled", o.u64_at("hits", 6, 0) == 0);
            expect(&mut p, "ICMP chain reaches tail_last", o.u64_at("hits", 3, 0) == o.u64_at("hits", 4, 0));
            let slots: Vec<_> = o.entries("jump_table").iter().map(|e| (e.key.clone(), e.slot.clone())).collect();
            expect(
                &mut p,
                "jump_table slot 3 = tail_other",
                slots.contains(&(vec![3, 0, 0, 0], Slot::Prog("tail_other".into()))),
            );
            expect(&mut p, "jump_table has 5 programs", slots.len() == 5);
        }
        "lpm_xdp" => {
            let hits: u64 = (0..16).map(|i| o.u64_at("rule_hits", i, 0)).sum();
            expect(&mut p, "rule hits", hits > 0);
            expect(
                &mut p,
                "XDP_DROP == hits of rules 3 and 13",
                o.count(1) == o.u64_at("rule_hits", 3, 0) + o.u64_at("rule_hits", 13, 0),
            );
            expect(
                &mut p,
                "8.8.8.0/24 added by the program",
                o.entries("routes4").iter().any(|e| e.key == [24, 0, 0, 0, 8, 8, 8, 0]),
            );
            expect(&mut p, "the default route from map-init", o.u64_at("rule_hits", 7, 0) > 0);
        }
        "ringbuf_xdp" => {
            expect(&mut p, "events records", !o.entries("events").is_empty());
            expect(
                &mut p,
                "small_rb records == small_ok",
                o.entries("small_rb").len() as u32 == o.u32_at(".bss", 0, 24),
            );
            expect(&mut p, "small_rb filled up", o.u32_at(".bss", 0, 28) > 0);
            expect(&mut p, "queue holds at most 16", o.entries("recent_len").len() <= 16);
            expect(&mut p, "stack holds at most 8", o.entries("ipv6_stack").len() <= 8);
            let records = o.entries("events").len() as u32;
            let syn_ok = o.u32_at(".bss", 0, 4);
            let udp_submitted = o.u32_at(".bss", 0, 12);
            expect(&mut p, "events records == SYN outputs + DNS submits", records == syn_ok + udp_submitted);
        }
        "helpers_xdp" => {
            expect(&mut p, "packets == runs", o.u64_at(".bss", 0, 0) == ok);
            for (i, what) in ["ktime", "boot", "coarse", "jiffies", "prandom"].iter().enumerate() {
                expect(&mut p, &format!("{what} checks == runs"), o.u64_at(".bss", 0, 8 + 8 * i) == ok);
            }
            expect(&mut p, "every run on CPU 0", o.u64_at(".bss", 0, 48) == ok);
            expect(&mut p, "no printk errors", o.u64_at(".bss", 0, 96) == 0);
            expect(&mut p, "no snprintf errors", o.u64_at(".bss", 0, 112) == 0);
            expect(&mut p, "some valid IPv4 checksums", o.u64_at(".bss", 0, 144) > 0);
            expect(
                &mut p,
                "recomputed checksums all valid",
                o.u64_at(".bss", 0, 144) == o.u64_at(".bss", 0, 160)
                    && o.u64_at(".bss", 0, 160) == o.u64_at(".bss", 0, 168),
            );
            expect(&mut p, "no bpf_loop errors", o.u64_at(".bss", 0, 192) == 0);
            if let Some(trace) = &o.trace {
                expect(&mut p, "one trace line per run", trace.len() as u64 == ok);
                expect(&mut p, "trace format", trace.first().is_some_and(|l| l.starts_with("helpers: seq=0 len=")));
            }
        }
        "adjust_xdp" => {
            let passed = o.count(2) + o.count(3);
            expect(
                &mut p,
                "an output frame per XDP_PASS/XDP_TX",
                o.out_pcap.as_ref().map(Vec::len) == Some(passed as usize),
            );
            expect(&mut p, "stripped == XDP_TX count", o.u64_at(".bss", 0, 0) == o.count(3));
            expect(&mut p, "some trimmed", o.u64_at(".bss", 0, 16) > 0);
            expect(&mut p, "metadata == XDP_PASS count", o.u64_at(".bss", 0, 40) == o.count(2));
            expect(&mut p, "no XDP_ABORTED", o.count(0) == 0);
        }
        "sock_filter" => {
            expect(&mut p, "packets == runs", o.u64_at("sock_stats", 0, 0) == ok);
            let kept = o.retvals.iter().filter(|r| r.parse::<u32>().is_ok_and(|v| v != 0)).count();
            let frames = o.out_pcap.clone().unwrap_or_default();
            expect(&mut p, "an output frame per kept packet", frames.len() == kept);
            expect(&mut p, "output frames start with 14 zero bytes", frames.iter().all(|f| f[..14] == [0; 14]));
            expect(
                &mut p,
                "cb scratch works (every run that loaded its headers)",
                o.u64_at("sock_stats", 0, 128) + o.u64_at("sock_stats", 0, 104) == ok,
            );
        }
        "tc_classify" => {
            expect(&mut p, "by_mark packets sum == runs", o.sum_first_u64("by_mark") == ok);
            expect(&mut p, "context fields recorded", !o.entries("ctx_seen").is_empty());
            expect(
                &mut p,
                "TTLs rewritten with valid checksums",
                o.u64_at(".bss", 0, 0) > 0 && o.u64_at(".bss", 0, 0) == o.u64_at(".bss", 0, 8),
            );
            let passed =
                o.retvals.iter().filter(|r| r.parse::<u32>().is_ok_and(|v| !matches!(v, 2 | 4 | 5 | 8))).count();
            expect(&mut p, "an output frame per passed packet", o.out_pcap.as_ref().map(Vec::len) == Some(passed));
            expect(&mut p, "TC_ACT_UNSPEC for ARP", o.count(u32::MAX) > 0);
        }
        "globals_xdp" => {
            expect(&mut p, ".data.counters packets == runs", o.u64_at(".data.counters", 0, 0) == ok);
            expect(&mut p, ".data counter starts at 1000", o.u64_at(".data", 0, 0) == 1000 + ok);
            expect(&mut p, "ctr_magic kept", o.u32_at(".data.counters", 0, 16) == 0xfeed_f00d);
            expect(&mut p, ".rodata divisor", o.u32_at(".rodata", 0, 0) == 64);
            expect(&mut p, "XDP_DROP == frames of 1024 bytes or more", o.count(1) == o.u64_at(".bss", 0, 72 + 32));
        }
        "map_in_map_xdp" => {
            let total: u64 = ["v4_counts", "v6_counts", "other_counts"].iter().map(|m| o.sum_first_u64(m)).sum();
            expect(&mut p, "inner counts == runs", total == ok);
            let slots: Vec<_> = o.entries("by_ipver").iter().map(|e| e.slot.clone()).collect();
            expect(
                &mut p,
                "by_ipver = v4_counts, v6_counts, other_counts",
                slots
                    == [Slot::Map("v4_counts".into()), Slot::Map("v6_counts".into()), Slot::Map("other_counts".into())],
            );
            expect(&mut p, "no outer misses with slot 2 filled", o.u64_at(".bss", 0, 0) == 0);
            expect(&mut p, "port counts", !o.entries("tcp_ports").is_empty() && !o.entries("udp_ports").is_empty());
        }
        "syscall_prog" => {
            let want = [
                5u32,
                0,
                6,
                1,
                9,
                0,
                u32::MAX,
                1,
                u32::MAX,
                24,
                0,
                0,
                0,
                101,
                (-2i32) as u32,
                0,
                (-2i32) as u32,
                (-2i32) as u32,
                0,
                0,
                0,
                0,
                (-7i32) as u32,
                10,
                0,
                20,
                (-22i32) as u32,
            ];
            let got: Vec<String> = want.iter().map(u32::to_string).collect();
            expect(&mut p, &format!("return values {got:?}"), o.retvals == got);
            expect(&mut p, "kv = {1: 101}", o.entries("kv").len() == 1 && o.value("kv", 1) == 101u32.to_le_bytes());
            expect(&mut p, "fifo = 30, 40, 60", o.entries("fifo").len() == 3);
            let ctx = o.ctx_out.clone().unwrap_or_default();
            expect(&mut p, "result written back to the context", ctx.first().is_some_and(|c| &c[24..32] == "05000000"));
        }
        other => p.push(format!("no checks for program {other}: add them to tests/kernel.rs")),
    }
    p
}

/// Differences from tests/expected/ (kernel-version dependent, so only reported by default).
fn compare_expected(case: &Case, o: &Outputs) -> Vec<String> {
    let expected = root().join("tests/expected");
    let mut diffs = Vec::new();
    for ext in ["retvals", "maps.json", "out.pcap", "ctx-out", "trace"] {
        let want = expected.join(format!("{}.{ext}", case.stem()));
        let got = o.dir.join(format!("{}.{ext}", case.stem()));
        match (std::fs::read(&want), std::fs::read(&got)) {
            (Ok(a), Ok(b)) if a != b => diffs.push(format!("{} differs from {}", got.display(), want.display())),
            (Ok(_), Err(_)) if ext != "trace" => diffs.push(format!("{} missing", got.display())),
            (Err(_), Ok(_)) if ext != "trace" => diffs.push(format!("{} has no expected file", got.display())),
            _ => {}
        }
    }
    diffs
}

#[test]
fn every_program_runs_in_the_kernel() {
    skip_without_bpf!();
    let dir = out_dir("all");
    let exact = std::env::var_os("BPFKIT_EXPECT_EXACT").is_some();
    let mut failures = BTreeMap::new();
    for case in cases() {
        let mut problems = match run(&case, &dir) {
            Ok(o) => {
                let mut p = generic_checks(&case, &o);
                p.extend(specific_checks(&case, &o));
                let diffs = compare_expected(&case, &o);
                if exact {
                    p.extend(diffs);
                } else {
                    for d in diffs {
                        eprintln!("note: {d}");
                    }
                }
                p
            }
            Err(e) => vec![e],
        };
        if !problems.is_empty() {
            failures.insert(case.stem(), std::mem::take(&mut problems));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn rodata_can_be_set_before_load() {
    skip_without_bpf!();
    let dir = out_dir("rodata");
    let init = dir.join("init.json");
    // drop_port = 53 instead of 8080.
    std::fs::write(&init, r#"{".rodata": [{"key": "00000000", "value": "3500"}]}"#).unwrap();
    let case = Case {
        object: "examples/xdp_count.bpf.o".into(),
        prog: "xdp_count".into(),
        input: "examples/sample.pcap".into(),
        init: Some(init.display().to_string()),
        extra: vec![],
    };
    let o = run(&case, &dir).unwrap();
    assert_eq!(o.value(".rodata", 0), 53u16.to_le_bytes());
    assert!(o.count(1) > 0, "nothing dropped with drop_port 53");
    assert_eq!(o.u64_at("stats", 10, 0), o.count(1));
}

#[test]
fn describe_lists_programs_and_maps() {
    skip_without_bpf!();
    let out = Command::new(env!("CARGO_BIN_EXE_kernel-run"))
        .current_dir(root())
        .env("KERNEL_RUN_QUIET", "1")
        .args(["tests/bpf/skb.bpf.o", "--describe"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("prog sock_filter section socket type SocketFilter"), "{text}");
    assert!(text.contains("prog tc_classify section tc type SchedCls"), "{text}");
    assert!(text.contains("map ctx_seen type Hash key 8 value 8 max_entries 128"), "{text}");
}

#[test]
fn short_frames_are_refused_by_the_kernel() {
    skip_without_bpf!();
    let dir = out_dir("short");
    let pcap = dir.join("short.pcap");
    let frame = |n: usize| (std::time::Duration::from_secs(1), (0..n as u8).collect::<Vec<u8>>());
    bpfkit_kernel_runner::write_pcap(&pcap, &[frame(13), frame(14), frame(60)]).unwrap();
    let case = Case {
        object: "examples/xdp_count.bpf.o".into(),
        prog: "xdp_count".into(),
        input: pcap.display().to_string(),
        init: None,
        extra: vec![],
    };
    let o = run(&case, &dir).unwrap();
    assert_eq!(o.retvals, ["EINVAL", "2", "2"]);
}
