//! The verifier soundness oracle (`bpfkit_testing::soundness`): generated programs the verifier
//! accepts must run without a memory fault; and the escapes it found, as regression cases.

use bpfkit_testing::soundness::{self, Outcome};

#[test]
fn generated_programs_do_not_escape() {
    let n: usize = std::env::var("SOUNDNESS_N").ok().and_then(|s| s.parse().ok()).unwrap_or(6000);
    let seed: u64 = std::env::var("SOUNDNESS_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(1);
    let start = std::time::Instant::now();
    let (stats, escapes) = soundness::smoke(n, seed);
    eprintln!("{stats} in {:.1?}", start.elapsed());
    for (reason, count) in stats.top_reasons(25) {
        eprintln!("  {count:5}  {reason}");
    }
    let mut kinds = std::collections::BTreeMap::new();
    for e in &escapes {
        kinds.entry(e.key()).or_insert_with(Vec::new).push(e);
    }
    for (k, es) in &kinds {
        eprintln!("ESCAPE x{}: {k}", es.len());
    }
    if std::env::var("SOUNDNESS_VERBOSE").is_ok() {
        for es in kinds.values() {
            let smallest = es.iter().min_by_key(|e| e.case.insns.len()).expect("one");
            eprintln!("{smallest}\n");
        }
    }
    assert!(escapes.is_empty(), "{} escapes (the first ones above)", escapes.len());
    assert!(stats.accepted_percent() >= 30.0, "too few programs accepted: {stats}");
}

// ---------------------------------------------------------------------------------------------
// Escapes the oracle found, minimised: each must now be refused with the kernel's message (or,
// for the valid twin, accepted and run without a fault).

use bpfkit_object::ProgType::{Syscall, Xdp};

/// Loads `asm` with the oracle's maps; `expect` is `"accepted"` or a part of the verifier's
/// message. An escape always fails.
fn case(name: &str, t: bpfkit_object::ProgType, asm: &str, expect: &str) {
    let c = soundness::Case::from_asm(t, asm).unwrap_or_else(|e| panic!("{name}: {e}"));
    match soundness::run_case(&c) {
        Outcome::Escape(e) => panic!("{name}: escape\n{e}"),
        Outcome::Accepted { .. } => assert_eq!(expect, "accepted", "{name}: accepted"),
        Outcome::Rejected { message, .. } => {
            assert!(
                expect != "accepted" && message.contains(expect),
                "{name}: refused with `{message}`, expected `{expect}`"
            )
        }
        o => panic!("{name}: {o:?}"),
    }
}

/// `bpf_csum_diff(NULL, 4, ...)`: a NULL `ARG_PTR_TO_MEM_OR_NULL` needs a size of 0.
#[test]
fn null_mem_arg_with_a_size() {
    let asm = |size: u32| format!("r1 = 0\nr2 = {size}\nr3 = 0\nr4 = 0\nr5 = 0\ncall 28\nr0 = 0\nexit\n");
    case("csum_diff NULL size 4", Syscall, &asm(4), "R1 type=scalar expected=fp");
    case("csum_diff NULL size 0", Syscall, &asm(0), "accepted");
    // bpf_snprintf's data: NULL with data_len 8.
    let snprintf = "*(u64 *)(r10 - 8) = 0\nr1 = r10\nr1 += -8\nr2 = 8\nld_pseudo r3, 0x6, 2, 0\nr4 = 0\nr5 = 8\n\
                    call 165\nr0 = 0\nexit\n";
    case("snprintf NULL data", Xdp, snprintf, "R4 type=scalar expected=fp");
}

/// The context as helper memory: refused where it has a layout (XDP), checked against (and
/// counted in) `max_ctx_offset` where it has none (syscall).
#[test]
fn ctx_as_helper_memory() {
    let update = "r6 = r1\n*(u32 *)(r10 - 4) = 0\nr2 = r10\nr2 += -4\nr3 = r6\nld_pseudo r1, 0x5, 0\nr4 = 0\n\
                  call 2\nr0 = 0\nexit\n";
    case("map_update value = xdp ctx", Xdp, update, "R3 type=ctx expected=fp");
    case("map_update value = syscall ctx", Syscall, update, "accepted");
    let strncmp = "r2 = 4\nld_pseudo r3, 0x6, 2, 0\ncall 182\nr0 = 0\nexit\n";
    case("strncmp s1 = xdp ctx", Xdp, strncmp, "R1 type=ctx expected=fp");
    case("strncmp s1 = syscall ctx", Syscall, strncmp, "accepted");
    let modified = "r1 += 8\nr2 = 4\nld_pseudo r3, 0x6, 2, 0\ncall 182\nr0 = 0\nexit\n";
    case("strncmp s1 = modified ctx", Syscall, modified, "dereference of modified ctx ptr");
}

/// `data_meta + N <= data + K`: only a comparison with `data` itself bounds the metadata.
#[test]
fn meta_checked_against_data_plus_constant() {
    let asm = |k: u32| {
        format!(
            "r6 = r1\nr1 = r6\nr2 = -8\ncall 54\nw2 = *(u32 *)(r6 + 8)\nw3 = *(u32 *)(r6 + 0)\nr3 += {k}\n\
             r1 = r2\nr1 += 64\nif r1 > r3 goto out\nr0 = *(u64 *)(r2 + 56)\nout:\nr0 = 2\nexit\n"
        )
    };
    case("meta + 64 <= data", Xdp, &asm(0), "accepted");
    case("meta + 64 <= data + 1000", Xdp, &asm(1000), "invalid access to packet");
}

/// `load_acquire`/`store_release` need natural alignment like every atomic.
#[test]
fn misaligned_acquire_release() {
    case(
        "store_release misaligned",
        Syscall,
        "ld_pseudo r1, 0x6, 0, 0\nr2 = 0\nstore_release((u32 *)(r1 + 0x1), w2)\nr0 = 0\nexit\n",
        "misaligned value access",
    );
    case(
        "load_acquire misaligned",
        Syscall,
        "r0 = 0\n*(u64 *)(r10 - 16) = r0\nr1 = r10\nr0 = load_acquire((u64 *)(r1 - 0xc))\nr0 = 0\nexit\n",
        "misaligned stack access",
    );
    case(
        "store_release aligned",
        Syscall,
        "ld_pseudo r1, 0x6, 0, 0\nr2 = 0\nstore_release((u32 *)(r1 + 0x4), w2)\nr0 = 0\nexit\n",
        "accepted",
    );
}

/// A callee (or a `bpf_loop` callback) writing a pointer to its own stack into its caller's:
/// the caller would use it after the frame is gone (the verifier indexed a frame that no longer
/// exists and panicked).
#[test]
fn callee_stack_pointer_spilled_into_the_caller() {
    let call = "r1 = r10\nr1 += -16\ncall sub\nr1 = *(u64 *)(r10 - 16)\n*(u64 *)(r1 + 0) = 0\nr0 = 0\nexit\n\
                sub:\nr2 = r10\nr2 += -8\n*(u64 *)(r1 + 0) = r2\nr0 = 0\nexit\n";
    case("callee", Syscall, call, "cannot spill pointers to stack into stack frame of the caller");
    let cb = "r1 = r10\nr1 += -32\n*(u64 *)(r10 - 16) = r1\nr1 = 1\nld_pseudo r2, 0x4, 9\nr3 = r10\nr3 += -16\nr4 = 0\ncall 181\n\
              r1 = *(u64 *)(r10 - 16)\n*(u64 *)(r1 + 0) = 0\nr0 = 0\nexit\n\
              r3 = r10\nr3 += -8\n*(u64 *)(r2 + 0) = r3\nr0 = 0\nexit\n";
    case("bpf_loop callback", Syscall, cb, "cannot spill pointers to stack into stack frame of the caller");
    let own = "r1 = r10\nr1 += -16\ncall sub\nr0 = 0\nexit\n\
               sub:\nr2 = r1\n*(u64 *)(r1 + 0) = r2\nr0 = 0\nexit\n";
    case(
        "caller's own stack pointer into the caller",
        Syscall,
        own,
        "cannot spill pointers to stack into stack frame of the caller",
    );
}

/// Packet pointers checked before `bpf_xdp_adjust_head`/`_tail`/`_meta` are stale after it.
#[test]
fn packet_pointers_after_adjust() {
    // The head moves past what `r9` points to; the tail before what `r9 + 63` does (the
    // 64-byte run); moving the metadata changes nothing bpfkit checks, but the kernel forgets
    // every packet pointer after any of them.
    for (h, d, off) in [(44, 4, 0), (65, -4, 63), (54, -8, 0)] {
        let stale = format!(
            "r6 = r1\nw2 = *(u32 *)(r6 + 0)\nw3 = *(u32 *)(r6 + 4)\nr1 = r2\nr1 += 64\nif r1 > r3 goto out\n\
             r9 = r2\n*(u64 *)(r10 - 8) = r2\nr1 = r6\nr2 = {d}\ncall {h}\nr0 = *(u8 *)(r9 + {off})\nout:\nr0 = 2\nexit\n"
        );
        case(&format!("helper {h}: stale register"), Xdp, &stale, "R9 invalid mem access 'scalar'");
        let spilled = stale.replace("r0 = *(u8", "r9 = *(u64 *)(r10 - 8)\nr0 = *(u8");
        case(&format!("helper {h}: stale spill"), Xdp, &spilled, "R9 invalid mem access 'scalar'");
        let reloaded = format!(
            "r6 = r1\nr1 = r6\nr2 = {d}\ncall {h}\nw2 = *(u32 *)(r6 + 0)\nw3 = *(u32 *)(r6 + 4)\nr1 = r2\n\
             r1 += 60\nif r1 > r3 goto out\nr0 = *(u8 *)(r2 + 59)\nout:\nr0 = 2\nexit\n"
        );
        case(&format!("helper {h}: checked again"), Xdp, &reloaded, "accepted");
    }
}

/// A constant of i64::MIN subtracted from a pointer: the offset arithmetic overflowed (a
/// verifier panic in debug builds).
#[test]
fn pointer_minus_i64_min() {
    case(
        "r1 -= i64::MIN",
        Syscall,
        "r4 = -0x8000000000000000 ll\nr1 = r10\nr1 += -0x150\nr1 -= r4\n*(u64 *)(r1 + 0) = 0\nr0 = 0\nexit\n",
        "pointer be out of bounds",
    );
}

/// `SOUNDNESS_DUMP=text cargo test ... dump -- --ignored --nocapture`: the first programs
/// rejected with a message containing `text`.
#[test]
#[ignore = "a debugging aid, not a check: prints rejected programs (SOUNDNESS_DUMP=text ... -- --ignored --nocapture)"]
fn dump() {
    let want = std::env::var("SOUNDNESS_DUMP").unwrap_or_default();
    let mut shown = 0;
    for i in 0..3000 {
        let Some(case) = soundness::case_of(&soundness::smoke_input(1, i)) else { continue };
        if let Outcome::Rejected { pc, message } = soundness::run_case(&case)
            && message.contains(&want)
        {
            let listing = case.listing();
            let lines: Vec<&str> = listing.lines().collect();
            let at = lines.iter().position(|l| l.trim_start().starts_with(&format!("{pc}:"))).unwrap_or(0);
            eprintln!(
                "#{i}: {pc}: {message}\n{}",
                lines[at
                    .saturating_sub(std::env::var("SOUNDNESS_DUMP_CTX").ok().and_then(|s| s.parse().ok()).unwrap_or(12))
                    ..(at + 2).min(lines.len())]
                    .join("\n")
            );
            shown += 1;
            if shown == std::env::var("SOUNDNESS_DUMP_N").ok().and_then(|s| s.parse().ok()).unwrap_or(3) {
                break;
            }
        }
    }
}

/// `PROBE=file.s|fuzz-input cargo test ... probe -- --ignored --nocapture`: one case through the
/// oracle, with its verdict and log (for minimising fuzz findings).
#[test]
#[ignore = "a debugging aid, not a check: runs the case named by PROBE (PROBE=file ... -- --ignored)"]
fn probe() {
    let path = std::env::var("PROBE").expect("set PROBE to an assembly file (.s) or a fuzz input");
    let case = if path.ends_with(".s") {
        let text = std::fs::read_to_string(&path).unwrap();
        let t = if text.contains("; syscall") { Syscall } else { Xdp };
        soundness::Case::from_asm(t, &text).unwrap()
    } else {
        // A fuzzer input.
        let c = soundness::case_of(&std::fs::read(&path).unwrap()).expect("a program");
        eprintln!("{:?} program, fill {}:\n{}", c.prog_type, c.fill.len(), c.listing());
        c
    };
    let start = std::time::Instant::now();
    match soundness::run_case(&case) {
        Outcome::Escape(e) => eprintln!("{e}"),
        o => eprintln!("{o:?}"),
    }
    eprintln!("in {:.1?}", start.elapsed());
}
