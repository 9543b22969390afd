//! Smoke test of the comparison benchmark: on every workload, every engine of the harness that
//! can run it computes the bpfkit interpreter's results (and the synthetic workloads the value
//! computed in Rust), and one timed iteration agrees with them. So the benchmark cannot
//! silently measure a broken engine.
//!
//! One test per workload; each workload uses its own native program, whose state is global to
//! the process, so the tests may run in parallel.

use bpfkit_bench::workload::{Workload, repo_root};
use bpfkit_bench::{BenchError, Engine, check_results};

fn workload(name: &str) -> Workload {
    Workload::all().expect("workloads load").into_iter().find(|w| w.name() == name).expect("workload exists")
}

/// Checks every engine on `name`; returns the engines that ran it.
fn check(name: &str) -> Vec<Engine> {
    let w = workload(name);
    let reference =
        Engine::BpfkitInterp.with_runner(&w, |r| r.results()).expect("bpfkit interp prepares").expect("runs");
    match &w {
        Workload::Synthetic(s) => assert_eq!(reference.values, [s.expected()], "bpfkit interp on {name}"),
        Workload::Packet(p) => {
            // The benchmark's setup of the program (map initialiser included) gives the kernel's
            // results (tests/expected, without the frames the kernel refuses).
            let stem = p.program.object.rsplit('/').next().unwrap().trim_end_matches(".bpf.o");
            let path = repo_root().join(format!("tests/expected/{stem}-{name}.retvals"));
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let kernel: Vec<u64> =
                text.lines().filter(|l| *l != "EINVAL").map(|l| l.parse().expect("a return value")).collect();
            assert_eq!(reference.values, kernel, "bpfkit interp on {name} vs the kernel");
            assert_eq!(reference.maps.len(), p.program.maps.len());
        }
    }
    let digest = match &w {
        Workload::Synthetic(_) => reference.values[0],
        Workload::Packet(_) => reference.values.iter().sum(),
    };

    let mut ran = Vec::new();
    for engine in Engine::ALL {
        let outcome = engine.with_runner(&w, |r| {
            let got = r.results()?;
            check_results(engine, &w, &reference, &got)?;
            Ok::<u64, BenchError>(r.iterate())
        });
        match outcome {
            Err(BenchError::NotApplicable { reason, .. }) => {
                assert!(!reason.is_empty());
                assert_ne!(engine, Engine::BpfkitInterp);
            }
            Err(e) => panic!("{e}"),
            Ok(Err(e)) => panic!("{e}"),
            Ok(Ok(iteration)) => {
                // Synthetic: r0 again. Packets: the sum of the actions of a second pass, which
                // for these programs does not depend on the map state the first pass left.
                assert_eq!(iteration, digest, "{} on {name}: timed iteration", engine.label());
                ran.push(engine);
            }
        }
    }
    ran
}

/// Every engine runs the synthetic workloads (the bpfkit JIT with the `jit` feature).
fn check_synthetic(name: &str) {
    let ran = check(name);
    for e in Engine::ALL {
        let expected = e != Engine::BpfkitJit || cfg!(feature = "jit");
        assert_eq!(ran.contains(&e), expected, "{} on {name}", e.label());
    }
}

#[test]
fn sum_1k() {
    check_synthetic("sum_1k");
}

#[test]
fn alu_loop_100k() {
    check_synthetic("alu_loop_100k");
}

/// The packet workloads run on bpfkit (interpreter, and JIT with the `jit` feature) and natively;
/// rbpf and solana-sbpf have no maps.
fn check_packets(name: &str) {
    let ran = check(name);
    assert!(ran.contains(&Engine::BpfkitInterp) && ran.contains(&Engine::Native), "{name}: ran {ran:?}");
    assert_eq!(ran.contains(&Engine::BpfkitJit), cfg!(feature = "jit"));
}

#[test]
fn xdp_count() {
    check_packets("xdp_count");
}

#[test]
fn maps_xdp() {
    check_packets("maps_xdp");
}

#[test]
fn globals_xdp() {
    check_packets("globals_xdp");
    // A native program's state is global to the process: a second use is refused.
    let again = Engine::Native.with_runner(&workload("globals_xdp"), |_| ());
    assert!(matches!(again, Err(BenchError::NativeStateUsed { .. })), "{again:?}");
}

#[test]
fn lpm_xdp() {
    check_packets("lpm_xdp");
}

/// Every packet workload has a native build (the workload list and build.rs agree).
#[test]
fn packet_workloads_have_native_builds() {
    for p in bpfkit_bench::workload::PACKET_PROGRAMS {
        assert!(bpfkit_bench::engine::native::has_native_build(p.name), "{}", p.name);
    }
}
