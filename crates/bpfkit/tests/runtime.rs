//! The runtime's API: kfuncs by name, host helpers by number, `.kconfig`, and the errors a user
//! sees for what bpfkit cannot run.

use bpfkit::{Error, Runtime, Worker};

const OBJ: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/kfuncs.o");

fn args(x: i32) -> Vec<u8> {
    let mut a = vec![0u8; 12];
    a[0..4].copy_from_slice(&x.to_le_bytes());
    a
}

fn word(a: &[u8], i: usize) -> i32 {
    i32::from_le_bytes(a[i * 4..i * 4 + 4].try_into().unwrap())
}

fn runtime() -> Runtime {
    let rt = Runtime::with_cpus(2);
    rt.register_kfunc("bpfkit_test_add", |_, [a, b, ..]| Ok((a as i32 + b as i32) as u64));
    rt.register_helper(1000, "host_double", |_, [v, ..]| Ok(v.wrapping_mul(2)));
    rt
}

#[test]
fn kfuncs_resolve_by_name_and_kconfig_has_documented_values() {
    let obj = runtime().open(OBJ).unwrap();
    let prog = obj.program("call_kfunc").unwrap();
    let mut w = Worker::new(obj.runtime(), 0);
    let mut a = args(40);
    assert_eq!(prog.run_raw(&mut w, &mut a).unwrap(), 0);
    assert_eq!(word(&a, 1), 42);
    assert_eq!(word(&a, 2) as u64, bpfkit::env::HZ);
}

#[test]
fn host_helpers_are_called_by_number() {
    let obj = runtime().open(OBJ).unwrap();
    let mut w = Worker::new(obj.runtime(), 1);
    let mut a = args(21);
    assert_eq!(obj.program("call_host_helper").unwrap().run_raw(&mut w, &mut a).unwrap(), 7);
    assert_eq!(word(&a, 1), 42);
}

#[test]
fn an_unknown_kfunc_fails_the_load_naming_it_and_the_instruction() {
    let rt = Runtime::with_cpus(1);
    rt.register_helper(1000, "host_double", |_, [v, ..]| Ok(v));
    match rt.open(OBJ) {
        Err(Error::Program { program, reason }) => {
            assert_eq!(program, "call_kfunc");
            assert_eq!(reason, "insn 3: unknown kfunc `bpfkit_test_add`");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_unknown_helper_fails_the_load_naming_it_and_the_instruction() {
    let rt = Runtime::with_cpus(1);
    rt.register_kfunc("bpfkit_test_add", |_, _| Ok(0));
    match rt.open(OBJ) {
        // The verifier refuses it first, in the kernel's words.
        Err(Error::Verify { program, error, .. }) => {
            assert_eq!(program, "call_host_helper");
            assert_eq!(error.to_string(), "insn 2: invalid func unknown#1000");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn unsupported_program_types_say_so() {
    let obj = runtime().open(OBJ).unwrap();
    let probe = obj.program("probe").unwrap();
    let mut w = Worker::new(obj.runtime(), 0);
    let e = probe.run_raw(&mut w, &mut [0u8; 8]).unwrap_err();
    assert_eq!(e.to_string(), "program `probe`: program type kprobe is not supported yet");
}

#[test]
fn a_stepped_clock_makes_time_reproducible() {
    use std::sync::Arc;
    let rt = Runtime::with_cpus(1);
    rt.set_clock(Arc::new(bpfkit::SteppedClock::new(5_000_000_000, 1_000)));
    rt.register_kfunc("bpfkit_test_add", |_, _| Ok(0));
    rt.register_helper(1000, "host_double", |_, [v, ..]| Ok(v));
    let insns = bpfkit_isa::assemble("call 0x5\nr6 = r0\ncall 0x5\nr0 -= r6\nexit").unwrap();
    let fd = rt
        .prog_load(bpfkit::ProgLoad {
            name: "t".into(),
            prog_type: bpfkit_object::ProgType::Syscall,
            insns,
            fd_array: vec![],
        })
        .unwrap();
    let mut w = Worker::new(&rt, 0);
    assert_eq!(rt.prog_by_fd(fd).unwrap().run_raw(&mut w, &mut [0u8; 4]).unwrap(), 1_000);
}
