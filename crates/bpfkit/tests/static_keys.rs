//! Static keys (bpfkit-decisions D1-D5) from BPF C with bpfkit's header
//! (tests/bpf/static_keys.bpf.c): the RFC selftest vectors (kernel-spec §11.4 check_syscall),
//! a key in a subprogram shared by two programs, a key flipped from BPF code, in the interpreter
//! and the JIT; and a stress test flipping a key while threads run it.

use bpfkit::{Backend, Object, Runtime, Trust, Worker};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

fn load() -> Object {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let obj = Runtime::new().open(root.join("tests/bpf/static_keys.bpf.o")).expect("static_keys.bpf.o loads");
    if bpfkit_jit::available().is_ok() {
        obj.jit(Trust::Verified).unwrap();
    }
    obj
}

fn backends() -> Vec<Backend> {
    if bpfkit_jit::available().is_ok() {
        vec![Backend::Interp, Backend::Jit]
    } else {
        eprintln!("SKIPPED: no JIT on this machine; interpreter only");
        vec![Backend::Interp]
    }
}

fn run(obj: &Object, prog: &str, b: Backend) -> i32 {
    let mut w = Worker::new(obj.runtime(), 0);
    w.set_backend(b);
    obj.program(prog).unwrap().run_raw(&mut w, &mut [0u8; 8]).unwrap() as i32
}

#[test]
fn rfc_check_syscall_vectors() {
    let obj = load();
    // (program, keys, expected with every key off then on)
    let single = [
        ("likely_key", "key_likely", 3, 7),
        ("unlikely_key", "key_unlikely", 3, 7),
        ("thrice", "key_thrice", 9, 21),
        ("long_jump", "key_long", 1000, 2000),
    ];
    for b in backends() {
        for (prog, key, off, on) in single {
            let k = obj.static_key(key).unwrap();
            assert!(!k.get(), "{key} starts off");
            assert_eq!(run(&obj, prog, b), off, "{prog} off in {b:?}");
            k.set(true).unwrap();
            assert_eq!(run(&obj, prog, b), on, "{prog} on in {b:?}");
            k.set(false).unwrap();
            assert_eq!(run(&obj, prog, b), off, "{prog} off again in {b:?}");
        }
        let (k1, k2) = (obj.static_key("key1").unwrap(), obj.static_key("key2").unwrap());
        for ((a, c), two, bpf2bpf) in
            [((false, false), 0, 0), ((true, false), 3, 303), ((false, true), 30, 3030), ((true, true), 33, 3333)]
        {
            k1.set(a).unwrap();
            k2.set(c).unwrap();
            assert_eq!(run(&obj, "two_keys", b), two, "two_keys {a}/{c} in {b:?}");
            assert_eq!(run(&obj, "two_keys_bpf2bpf", b), bpf2bpf, "bpf2bpf {a}/{c} in {b:?}");
        }
        k1.set(false).unwrap();
        k2.set(false).unwrap();
    }
    // Each use is a site; a key used by two programs (two_keys and the bpf2bpf one, whose
    // subprogram has two more) has one key map per program.
    assert_eq!(obj.static_key("key_thrice").unwrap().sites(), 3);
    assert_eq!(obj.static_key("key1").unwrap().maps().len(), 2);
    assert_eq!(obj.static_key("key1").unwrap().sites(), 3);
}

#[test]
fn a_key_in_a_shared_subprogram_flips_in_both_programs() {
    let obj = load();
    let k = obj.static_key("key_shared").unwrap();
    assert_eq!(k.maps().len(), 2, "one key map per program");
    for m in k.maps() {
        // Readable after load like any instruction array: orig -> xlated -> jitted.
        let e = m.insn_array_entries().unwrap();
        assert_eq!(e.len(), 1);
        assert!(m.is_frozen());
    }
    for b in backends() {
        assert_eq!((run(&obj, "shared_a", b), run(&obj, "shared_b", b)), (10, 20));
        k.set(true).unwrap();
        assert_eq!((run(&obj, "shared_a", b), run(&obj, "shared_b", b)), (11, 21), "{b:?}");
        k.set(false).unwrap();
    }
}

#[test]
fn bpf_code_flips_a_key_and_true_keys_start_on() {
    let obj = load();
    for b in backends() {
        assert_eq!(run(&obj, "true_key", b), 1, "DEFINE_STATIC_KEY_TRUE starts on");
        let mut w = Worker::new(obj.runtime(), 0);
        w.set_backend(b);
        let flipper = obj.program("flipper").unwrap();
        assert_eq!(run(&obj, "flipped", b), 0);
        assert_eq!(flipper.run_raw(&mut w, &mut 1u32.to_le_bytes()).unwrap(), 0, "kfunc returns 0");
        assert!(obj.static_key("key_flipped").unwrap().get());
        assert_eq!(run(&obj, "flipped", b), 1, "flipped on from BPF in {b:?}");
        assert_eq!(flipper.run_raw(&mut w, &mut 0u32.to_le_bytes()).unwrap(), 0);
        assert_eq!(run(&obj, "flipped", b), 0);
        // `on` must be 0 or 1.
        assert_eq!(flipper.run_raw(&mut w, &mut 2u32.to_le_bytes()).unwrap() as i64 as i32, -22);
    }
}

/// Threads run a keyed program in a loop while another flips the key thousands of times: no
/// crash, every result is legal; with consistent flips, no run mixes states (the program reads
/// the key three times, so a run that sees a flip half done returns something else than 9 or 21).
#[test]
fn stress_flips_while_running() {
    for consistent in [false, true] {
        let obj = Arc::new(load());
        let prog = obj.program("thrice").unwrap();
        prog.set_consistent_flips(consistent);
        let stop = Arc::new(AtomicBool::new(false));
        let runs = Arc::new(AtomicU64::new(0));
        let mixed = Arc::new(AtomicU64::new(0));
        let mut threads = Vec::new();
        for (t, b) in backends().into_iter().cycle().take(2).enumerate() {
            let (obj, stop, runs, mixed) = (Arc::clone(&obj), Arc::clone(&stop), Arc::clone(&runs), Arc::clone(&mixed));
            threads.push(std::thread::spawn(move || {
                let mut w = Worker::new(obj.runtime(), t as u32 % obj.runtime().ncpus());
                w.set_backend(b);
                let p = obj.program("thrice").unwrap();
                while !stop.load(Ordering::Relaxed) {
                    let r = p.run_raw(&mut w, &mut [0u8; 8]).unwrap();
                    // 3 + 3 + 3 .. 7 + 7 + 7: each site sees either state.
                    assert!([9, 13, 17, 21].contains(&r), "illegal result {r}");
                    if r != 9 && r != 21 {
                        mixed.fetch_add(1, Ordering::Relaxed);
                    }
                    runs.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
        let key = obj.static_key("key_thrice").unwrap();
        let flips = 4000;
        for i in 0..flips {
            key.set(i % 2 == 0).unwrap();
        }
        stop.store(true, Ordering::Relaxed);
        for t in threads {
            t.join().unwrap();
        }
        let (runs, mixed) = (runs.load(Ordering::Relaxed), mixed.load(Ordering::Relaxed));
        eprintln!("consistent={consistent}: {runs} runs, {flips} flips, {mixed} runs saw a flip half done");
        assert!(runs > 0);
        if consistent {
            assert_eq!(mixed, 0, "consistent flips: no run sees a flip half done");
        }
    }
}

/// kernel-spec §11.4 `check_insn`: the four static-branch forms load (each site in a key map
/// bound with `fd_array`), every malformed one is refused naming the instruction and the field;
/// `static_key_update` flips a loaded key and refuses what the RFC refuses.
#[test]
fn rfc_check_insn_and_static_key_update() {
    use bpfkit::{MapFd, ProgLoad};
    use bpfkit_isa::RawInsn;
    use bpfkit_maps::{MapSpec, MapType, flags};
    let rt = Runtime::new();
    let key = |on_flag: u64| -> MapFd {
        let mut spec = MapSpec::new(MapType::InsnArray, 4, 16, 1);
        spec.map_extra = flags::BPF_F_STATIC_KEY | on_flag;
        let fd = rt.map_create(spec).unwrap();
        rt.map_update_elem(fd, &0u32.to_le_bytes(), &[0u8; 16], 0).unwrap();
        rt.map_freeze(fd).unwrap();
        fd
    };
    // site; ja +1; ja -2; r0 = 0; exit  (the site jumps to the `ja -2`, which skips to r0 = 0)
    let prog = |site: RawInsn| {
        vec![
            site,
            RawInsn::new(0x05, 0, 0, 1, 0),
            RawInsn::new(0x05, 0, 0, -2, 0),
            RawInsn::new(0xb7, 0, 0, 0, 0),
            RawInsn::new(0x95, 0, 0, 0, 0),
        ]
    };
    let load = |site: RawInsn, fd: MapFd| {
        rt.prog_load(ProgLoad {
            name: "check_insn".into(),
            prog_type: bpfkit_object::ProgType::Syscall,
            insns: prog(site),
            fd_array: vec![fd],
        })
    };
    for (what, site) in [
        ("JMP goto_or_nop", RawInsn::new(0x05, 0, 1, 1, 0)),
        ("JMP nop_or_goto", RawInsn::new(0x05, 0, 3, 1, 0)),
        ("JMP32 gotol_or_nop", RawInsn::new(0x06, 0, 1, 0, 1)),
        ("JMP32 nop_or_gotol", RawInsn::new(0x06, 0, 3, 0, 1)),
    ] {
        let k = key(0);
        let fd = load(site, k).unwrap_or_else(|e| panic!("{what}: {e}"));
        let p = rt.prog_by_fd(fd).unwrap();
        let mut w = Worker::new(&rt, 0);
        assert_eq!(p.run_raw(&mut w, &mut [0u8; 8]).unwrap(), 0, "{what}");
        rt.static_key_update(k, 1).unwrap();
        rt.static_key_update(k, 0).unwrap();
        assert!(matches!(rt.static_key_update(k, 2), Err(bpfkit::Error::MapCommand { errno: -22, .. })), "on = 2");
    }
    for (what, site, want) in [
        ("src bit 2", RawInsn::new(0x05, 0, 5, 1, 0), "src_reg"),
        ("src 2", RawInsn::new(0x05, 0, 2, 1, 0), "src_reg"),
        ("dst != 0", RawInsn::new(0x05, 1, 1, 1, 0), "reserved"),
        ("off and imm", RawInsn::new(0x06, 0, 1, 1, 1), "reserved"),
        ("offset -2", RawInsn::new(0x05, 0, 1, -2, 0), "out of range"),
        ("offset 42", RawInsn::new(0x05, 0, 1, 42, 0), "out of range"),
        ("offset 0", RawInsn::new(0x05, 0, 1, 0, 0), "non-zero offset"),
        ("imm for JMP", RawInsn::new(0x05, 0, 1, 0, 1), "reserved"),
        ("off for JMP32", RawInsn::new(0x06, 0, 1, 1, 0), "reserved"),
    ] {
        let e = load(site, key(0)).map(|_| ()).unwrap_err().to_string();
        assert!(e.contains("insn 0") && e.to_lowercase().contains(want), "{what}: {e}");
    }
    // A static branch in no key map, and a key map entry that is not a static branch.
    let plain = rt.map_create(MapSpec::new(MapType::Array, 4, 8, 1)).unwrap();
    let e = load(RawInsn::new(0x05, 0, 1, 1, 0), plain).map(|_| ()).unwrap_err().to_string();
    assert!(e.contains("belongs to no static key"), "{e}");
    let k = key(0);
    let e = rt
        .prog_load(ProgLoad {
            name: "not_a_site".into(),
            prog_type: bpfkit_object::ProgType::Syscall,
            insns: vec![RawInsn::new(0xb7, 0, 0, 0, 0), RawInsn::new(0x95, 0, 0, 0, 0)],
            fd_array: vec![k],
        })
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(e.contains("is not a static branch"), "{e}");
    // Not a key map.
    assert!(matches!(rt.static_key_update(plain, 1), Err(bpfkit::Error::MapCommand { errno: -22, .. })));
}
