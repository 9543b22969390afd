//! The comparison benchmark: `cargo bench -p bpfkit-bench --bench compare`.
//!
//! For each workload (see `bpfkit_bench::workload`), each engine that can run it is prepared,
//! its results are checked against the bpfkit interpreter's (and the synthetic ones against
//! values computed in Rust), then it is timed by criterion as the benchmark
//! `compare_<workload>/<engine>`. After the last one, the table is printed and written to
//! `<target dir>/bench-compare.json`.
//!
//! Measuring: criterion does the timing (warm-up, sampling, outlier analysis, its usual
//! reports and comparisons with the previous run); the table is then built from criterion's own
//! output, the median point estimate in `<criterion dir>/<group>/<bench>/new/estimates.json`.
//! The criterion directory is set explicitly (`$CRITERION_HOME`, else `<target dir>/criterion`)
//! so that the benchmark knows where to read, and a file older than this process is ignored, so
//! benchmarks skipped by a filter show as "-" instead of a stale number. Criterion's test mode
//! (`cargo test --benches`, `cargo bench -- --test`) runs every check and each engine once,
//! and writes no table.
//!
//! Then the switch workloads (`bpfkit_bench::switch`): a bytecode interpreter in BPF C with 32
//! and with 256 opcodes, built with jump tables and with `-fno-jump-tables`, on bpfkit's
//! interpreter and JIT and natively (`cc -O2`, `cc -O2 -fno-jump-tables`), each engine checked
//! against the interpreter (and the interpreter against the machine in Rust), timed as
//! `switch_vm_<n>[_repeat]/<engine>`, and printed as a second table (also under `"switch"` in the
//! JSON). Without clang-22 at build time they are skipped, saying so.
//!
//! Options are criterion's (`cargo bench -p bpfkit-bench --bench compare -- --help`); the
//! defaults here are shorter than criterion's (1 s warm-up, 3 s of measurement, 50 samples)
//! to keep the whole run at a few minutes; `--measurement-time` and `--sample-size` override
//! them.

use bpfkit_bench::report::{Measurement, Report, Row, criterion_median};
use bpfkit_bench::switch::{
    Build, Machine, SwitchEngine, SwitchReport, SwitchRow, SwitchWorkload, build_shape, model_results,
};
use bpfkit_bench::{BenchError, Engine, Results, Workload, check_results};
use criterion::{Criterion, Throughput};
use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

/// The target directory: `$CARGO_TARGET_DIR`, else the one this executable was built in
/// (`<target>/<profile>/deps/compare-<hash>`).
fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.ancestors().nth(3).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("target"))
}

fn group_name(w: &Workload) -> String {
    format!("compare_{}", w.name())
}

fn main() {
    let started = SystemTime::now();
    let target = target_dir();
    let criterion_dir =
        std::env::var_os("CRITERION_HOME").map(PathBuf::from).unwrap_or_else(|| target.join("criterion"));
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50)
        .output_directory(&criterion_dir)
        .configure_from_args();

    let workloads = Workload::all().unwrap_or_else(|e| panic!("loading the workloads: {e}"));
    // Engines that cannot run a workload, and why.
    let mut not_applicable: Vec<(String, Engine, String)> = Vec::new();
    for w in &workloads {
        let reference = reference_results(w).unwrap_or_else(|e| panic!("{e}"));
        let mut group = c.benchmark_group(group_name(w));
        group.throughput(Throughput::Elements(w.units_per_iteration()));
        for engine in Engine::ALL {
            let outcome = engine.with_runner(w, |runner| {
                let got = runner.results()?;
                check_results(engine, w, &reference, &got)?;
                group.bench_function(engine.key(), |b| b.iter(|| black_box(runner.iterate())));
                Ok::<(), BenchError>(())
            });
            match outcome.and_then(|r| r) {
                Ok(()) => {}
                Err(BenchError::NotApplicable { reason, .. }) => not_applicable.push((w.name(), engine, reason)),
                Err(e) => panic!("{e}"),
            }
        }
        group.finish();
    }
    let switch_na = run_switch(&mut c);
    c.final_summary();

    let rows = workloads
        .iter()
        .map(|w| {
            let per_iteration = w.units_per_iteration() as f64;
            let cells = Engine::ALL
                .iter()
                .map(|&engine| {
                    if let Some((_, _, reason)) = not_applicable.iter().find(|(n, e, _)| *n == w.name() && *e == engine)
                    {
                        return Measurement::NotApplicable(reason.clone());
                    }
                    match criterion_median(&criterion_dir, &group_name(w), engine.key(), started) {
                        Some(ns) => Measurement::Ns(ns / per_iteration),
                        None => Measurement::NotMeasured,
                    }
                })
                .collect();
            Row { workload: w.name(), unit: w.unit(), cells }
        })
        .collect();
    let mut notes = Vec::new();
    if let Some(Workload::Packet(p)) = workloads.iter().find(|w| matches!(w, Workload::Packet(_))) {
        notes.push(format!(
            "packet workloads: ns per packet over the {} frames of {} an XDP test run accepts ({} refused)",
            p.capture.frames.len(),
            bpfkit_bench::workload::CAPTURE,
            p.capture.refused
        ));
    }
    let report = Report { rows, estimate: "median", notes };
    let switch = switch_report(&criterion_dir, started, &switch_na);
    if !report.any_measured() && !switch.any_measured() {
        println!("bpfkit-bench: every engine agrees with the bpfkit interpreter; nothing was measured, no table");
        return;
    }
    if report.any_measured() {
        println!("\n{}", report.to_text());
    }
    if switch.any_measured() {
        println!("\n{}", switch.to_text());
    }
    if let Some(reason) = bpfkit_bench::switch::skipped() {
        println!("bpfkit-bench: switch workloads skipped: {reason}");
    }
    let json_path = target.join("bench-compare.json");
    let mut json = report.to_json();
    json["switch"] = switch.to_json();
    let text = serde_json::to_string_pretty(&json).expect("JSON values serialise");
    match std::fs::write(&json_path, text + "\n") {
        Ok(()) => println!("written: {}", json_path.display()),
        Err(e) => eprintln!("bpfkit-bench: cannot write {}: {e}", json_path.display()),
    }
}

/// The bpfkit interpreter's results (the reference), checked against the values computed in
/// Rust for the synthetic workloads.
fn reference_results(w: &Workload) -> Result<Results, BenchError> {
    let results = Engine::BpfkitInterp.with_runner(w, |r| r.results())??;
    if let Workload::Synthetic(s) = w
        && results.values != [s.expected()]
    {
        return Err(BenchError::Mismatch {
            engine: Engine::BpfkitInterp.label(),
            workload: w.name(),
            detail: format!("r0 = {:?}, computed in Rust: {}", results.values, s.expected()),
        });
    }
    Ok(results)
}

/// The switch workloads: each engine checked against the bpfkit interpreter on the if-else
/// build (itself checked against the machine in Rust), then timed. Returns the engines that
/// cannot run them, with why.
fn run_switch(c: &mut Criterion) -> Vec<(SwitchWorkload, SwitchEngine, String)> {
    let mut not_applicable = Vec::new();
    if let Some(reason) = bpfkit_bench::switch::skipped() {
        println!("bpfkit-bench: switch workloads skipped on bpfkit (natively only): {reason}");
    }
    for w in SwitchWorkload::ALL {
        let reference = switch_reference(w).unwrap_or_else(|e| panic!("{e}"));
        let mut group = c.benchmark_group(w.name());
        group.throughput(Throughput::Elements(bpfkit_bench::switch::code::VM_STEPS as u64));
        for engine in SwitchEngine::ALL {
            let outcome = engine.with_runner(w, |runner| {
                let got = runner.results()?;
                if got != reference {
                    return Err(BenchError::Mismatch {
                        engine: engine.label(),
                        workload: w.name().into(),
                        detail: format!("{:x?} instead of {:x?}", got.values, reference.values),
                    });
                }
                group.bench_function(engine.key(), |b| b.iter(|| black_box(runner.iterate())));
                Ok(())
            });
            match outcome.and_then(|r| r) {
                Ok(()) => {}
                Err(BenchError::NotApplicable { reason, .. }) => not_applicable.push((w, engine, reason)),
                Err(e) => panic!("{e}"),
            }
        }
        group.finish();
    }
    not_applicable
}

/// The reference results of a switch workload: the bpfkit interpreter on the if-else build
/// when there is one, checked against the machine in Rust; else the Rust machine's.
fn switch_reference(w: SwitchWorkload) -> Result<Results, BenchError> {
    let model = model_results(w.machine);
    let interp = SwitchEngine::Interp(Build::IfElse);
    match interp.with_runner(w, |r| r.results()) {
        Err(BenchError::NotApplicable { .. }) => Ok(model),
        Err(e) => Err(e),
        Ok(results) => {
            let results = results?;
            if results != model {
                return Err(BenchError::Mismatch {
                    engine: interp.label(),
                    workload: w.name().into(),
                    detail: format!("{:x?}, computed in Rust: {:x?}", results.values, model.values),
                });
            }
            Ok(results)
        }
    }
}

fn switch_report(
    criterion_dir: &std::path::Path,
    started: SystemTime,
    not_applicable: &[(SwitchWorkload, SwitchEngine, String)],
) -> SwitchReport {
    let rows = SwitchWorkload::ALL
        .iter()
        .map(|&w| {
            let cells = SwitchEngine::ALL
                .iter()
                .map(|&e| {
                    if let Some((_, _, reason)) = not_applicable.iter().find(|(w2, e2, _)| *w2 == w && *e2 == e) {
                        return Measurement::NotApplicable(reason.clone());
                    }
                    match criterion_median(criterion_dir, w.name(), e.key(), started) {
                        Some(ns) => Measurement::Ns(ns),
                        None => Measurement::NotMeasured,
                    }
                })
                .collect();
            SwitchRow { workload: w, cells }
        })
        .collect();
    let shapes =
        Machine::ALL.iter().flat_map(|&m| Build::ALL.iter().map(move |&b| (m, b, build_shape(m, b).ok()))).collect();
    SwitchReport { rows, shapes }
}
