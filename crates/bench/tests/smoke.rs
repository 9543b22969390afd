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

/// The switch workloads: both BPF builds load, pass bpfkit's verifier and have the intended
/// dispatch (the jump-table build's programs hold `gotox` and own a jump table, the if-else
/// build's neither), and on
/// every engine every switch workload computes the Rust model's results, which are also the
/// native builds'. Without clang-22 at build time there are no BPF objects: the native builds
/// are still checked, and the rest is skipped with a message.
mod switch {
    use bpfkit_bench::switch::{
        Build, CHECK_RUNS, Machine, SwitchEngine, SwitchWorkload, TIMED_SEED, build_shape, model, model_results,
        skipped,
    };
    use bpfkit_bench::{BenchError, engine::native};

    #[test]
    fn native_builds_match_the_model() {
        for m in Machine::ALL {
            for b in Build::ALL {
                for (seed, start) in CHECK_RUNS {
                    let got = native::switch_vm(m, b, seed, start);
                    assert_eq!(got, model(m, seed, start), "native {b:?} {}({seed:#x}, {start})", m.name());
                }
            }
        }
    }

    #[test]
    fn bpf_builds_have_their_dispatch() {
        if let Some(reason) = skipped() {
            eprintln!("SKIPPED: switch workloads: {reason}");
            return;
        }
        for m in Machine::ALL {
            let jt = build_shape(m, Build::JumpTable).expect("the jump-table build loads");
            assert!(jt.gotox >= 1 && jt.jump_tables >= 1, "{}: jump-table build: {jt:?}", m.name());
            let ifelse = build_shape(m, Build::IfElse).expect("the if-else build loads");
            assert_eq!((ifelse.gotox, ifelse.jump_tables), (0, 0), "{}: if-else build: {ifelse:?}", m.name());
            // bpfkit's verifier accepts both (the loop converges: it is not unrolled).
            for (b, s) in [("jump-table", &jt), ("if-else", &ifelse)] {
                assert_eq!(s.verifier.error, None, "{}: {b} build refused", m.name());
                assert!(s.verifier.processed > 0 && s.verifier.processed < 100_000, "{}: {b}: {s:?}", m.name());
            }
        }
    }

    fn check_engines(w: SwitchWorkload) {
        let want = model_results(w.machine);
        let mut ran = Vec::new();
        for e in SwitchEngine::ALL {
            let outcome = e.with_runner(w, |r| Ok::<_, BenchError>((r.results()?, r.iterate(), r.iterate())));
            match outcome {
                Err(BenchError::NotApplicable { reason, .. }) => {
                    eprintln!("SKIPPED: {} on {}: {reason}", e.label(), w.name());
                    assert!(matches!(e, SwitchEngine::Interp(_) | SwitchEngine::Jit(_)));
                }
                Err(err) | Ok(Err(err)) => panic!("{err}"),
                Ok(Ok((got, first, second))) => {
                    assert_eq!(got, want, "{} on {}", e.label(), w.name());
                    // The first two timed runs: the first and second windows of opcodes.
                    let timed =
                        [model(w.machine, TIMED_SEED, w.start(0)).0, model(w.machine, TIMED_SEED, w.start(1)).0];
                    assert_eq!([first, second], timed, "{} on {}: timed runs", e.label(), w.name());
                    ran.push(e);
                }
            }
        }
        let all_bpf = skipped().is_none();
        assert_eq!(
            ran.len(),
            if !all_bpf {
                2
            } else if cfg!(feature = "jit") {
                6
            } else {
                4
            },
            "{ran:?}"
        );
    }

    #[test]
    fn switch_workloads() {
        for w in SwitchWorkload::ALL {
            check_engines(w);
        }
    }
}
