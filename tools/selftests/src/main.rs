//! `bpfkit-selftests`: the kernel's verifier selftests (`tools/testing/selftests/bpf/progs/
//! verifier_*.c`, built by `tools/selftests/run.sh`) against bpfkit.
//!
//! Each program's expectations come from its BTF decl tags (`bpf_misc.h`: `__success`,
//! `__failure`, `__msg`, `__retval`, `__log_level`, ...). Each test is loaded as the kernel's
//! `test_loader.c` loads it: on its own (with the object's `__auxiliary` programs), privileged,
//! in a fresh runtime that refuses what the verifier refuses; `__msg` patterns are searched in
//! the log in order; an accepted program with `__retval` runs once over 64 zero bytes (no
//! context for `syscall` programs) in the interpreter. Every object runs in a worker process
//! (this binary with `--worker`), so a crash in bpfkit costs one object, not the report.
#![forbid(unsafe_code)]

mod record;
mod report;
mod run;
mod spec;

use anyhow::{Context, Result, bail};
use clap::Parser;
use record::{Cause, Record};
use report::{CompileError, Report, Skipped};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(about = "Runs the kernel's verifier selftests (built by tools/selftests/run.sh) against bpfkit")]
struct Args {
    /// Directory with the compiled objects (`verifier_*.bpf.o`).
    #[arg(long)]
    objs: Option<PathBuf>,
    /// Objects clang could not build: lines `object<TAB>programs<TAB>first error`.
    #[arg(long)]
    compile_errors: Option<PathBuf>,
    /// Also write the report as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Worker processes at once (default: one per core).
    #[arg(long)]
    jobs: Option<usize>,
    /// Seconds one object may take before its worker is killed (its tests count as crashes).
    #[arg(long, default_value_t = 300)]
    timeout: u64,
    /// Only objects whose name contains this.
    #[arg(long)]
    filter: Option<String>,
    /// List every message difference, not only their groups.
    #[arg(long, short)]
    verbose: bool,
    /// Internal: run the tests of one object and print their results as JSON.
    #[arg(long, hide = true)]
    worker: Option<PathBuf>,
    /// Internal, with --worker: only this program.
    #[arg(long, hide = true)]
    program: Option<String>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    if let Some(obj) = &args.worker {
        let records = run::run_object(obj, args.program.as_deref())?;
        let v: Vec<_> = records.iter().map(Record::to_json).collect();
        println!("{}", serde_json::to_string(&v)?);
        return Ok(());
    }
    let Some(dir) = &args.objs else { bail!("--objs DIR is required") };
    let start = Instant::now();
    let mut objs: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".bpf.o"))
        .filter(|p| args.filter.as_deref().is_none_or(|f| run::object_name(p).contains(f)))
        .collect();
    objs.sort();
    let compile_errors = match &args.compile_errors {
        Some(p) => read_compile_errors(p)?,
        None => Vec::new(),
    };

    let mut skipped = Skipped::default();
    let mut xlated_unchecked = 0;
    let mut unreadable = Vec::new();
    let mut readable = Vec::new();
    for p in &objs {
        match read_specs(p) {
            Ok(specs) => {
                for s in &specs {
                    if s.auxiliary {
                        skipped.auxiliary += 1;
                    } else if !s.privileged {
                        skipped.unpriv_only += 1;
                    } else if !s.runs_on_x86_64() {
                        skipped.other_arch += 1;
                    } else if s.xlated > 0 {
                        xlated_unchecked += 1;
                    }
                }
                readable.push((p.clone(), specs));
            }
            Err(e) => unreadable.push((run::object_name(p), format!("{e:#}"))),
        }
    }

    let jobs = args.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())).max(1);
    let timeout = Duration::from_secs(args.timeout);
    let queue = Mutex::new(readable.iter().collect::<Vec<_>>());
    let results: Mutex<Vec<Record>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                loop {
                    let Some((path, specs)) = queue.lock().expect("queue").pop() else { break };
                    let recs = run_isolated(path, specs, timeout);
                    results.lock().expect("results").extend(recs);
                }
            });
        }
    });
    let mut records = results.into_inner().expect("results");
    records.sort_by(|a, b| (&a.object, &a.program).cmp(&(&b.object, &b.program)));
    let report = Report {
        objects: objs.len(),
        records,
        compile_errors,
        unreadable,
        skipped,
        xlated_unchecked,
        seconds: start.elapsed().as_secs_f64(),
        verbose: args.verbose,
    };
    print!("{}", report.text());
    if let Some(p) = &args.json {
        std::fs::write(p, serde_json::to_string_pretty(&report.json())?)
            .with_context(|| format!("writing {}", p.display()))?;
        println!("\nJSON report: {}", p.display());
    }
    Ok(())
}

fn read_specs(path: &Path) -> Result<Vec<spec::Spec>> {
    let data = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    spec::specs(&spec::Elf::parse(&data)?)
}

fn read_compile_errors(path: &Path) -> Result<Vec<CompileError>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let mut f = l.splitn(3, '\t');
            CompileError {
                object: f.next().unwrap_or_default().to_string(),
                programs: f.next().and_then(|n| n.trim().parse().ok()).unwrap_or(0),
                error: f.next().unwrap_or_default().to_string(),
            }
        })
        .collect())
}

/// One worker process over `path` (only `program`, if given): its records, or why it died.
fn worker(path: &Path, program: Option<&str>, timeout: Duration) -> Result<Vec<Record>, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut cmd = Command::new(exe);
    cmd.arg("--worker").arg(path).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    if let Some(p) = program {
        cmd.arg("--program").arg(p);
    }
    let mut child = cmd.spawn().map_err(|e| format!("spawning the worker: {e}"))?;
    let mut out = child.stdout.take().expect("piped stdout");
    let mut err = child.stderr.take().expect("piped stderr");
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if start.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("waiting for the worker: {e}")),
        }
    };
    let stdout = out_reader.join().unwrap_or_default();
    let stderr = err_reader.join().unwrap_or_default();
    let tail = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").to_string();
    match status {
        None => Err(format!("timed out after {} s", timeout.as_secs())),
        Some(s) if !s.success() => Err(format!("worker {s}: {tail}")),
        Some(_) => {
            let v: serde_json::Value =
                serde_json::from_str(&stdout).map_err(|e| format!("worker output: {e}: {tail}"))?;
            Ok(v.as_array().map(|a| a.iter().map(Record::from_json).collect()).unwrap_or_default())
        }
    }
}

/// The records of one object; when its worker dies, each test again in a worker of its own,
/// so that only the tests that crash bpfkit count as crashes.
fn run_isolated(path: &Path, specs: &[spec::Spec], timeout: Duration) -> Vec<Record> {
    match worker(path, None, timeout) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{}: worker failed ({e}); running its tests one by one", path.display());
            let object = run::object_name(path);
            let each = timeout.min(Duration::from_secs(60));
            specs
                .iter()
                .filter(|s| s.is_test())
                .flat_map(|s| {
                    worker(path, Some(&s.program), each).unwrap_or_else(|e| {
                        let mut r = Record::new(&object, s);
                        r.cause = Cause::Crash;
                        r.detail = e;
                        vec![r]
                    })
                })
                .collect()
        }
    }
}
