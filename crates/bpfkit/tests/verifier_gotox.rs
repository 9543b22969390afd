//! The kernel's `verifier_gotox` cases (kernel-spec §11.2) from `tests/data/verifier_gotox.cases`:
//! hand-written jump tables loaded with `Runtime::prog_load_asm`, run in the interpreter and the
//! JIT, or refused with the kernel's message.

use bpfkit::{Backend, Runtime, Trust, Worker};
use bpfkit_object::ProgType;

mod common;
use common::Case;

/// Loads the case and runs it in each backend: `retval N`, or `error: ...`.
fn outcome(c: &Case) -> Vec<String> {
    let rt = Runtime::new();
    let mut asm = bpfkit_isa::asm::assemble_with_tables(&c.input).unwrap_or_else(|e| panic!("{}: {e}", c.name));
    for set in c.directives_named("set") {
        let w: Vec<&str> = set.split_whitespace().collect();
        let (slot, field, value): (usize, &str, i64) = (w[0].parse().unwrap(), w[1], w[2].parse().unwrap());
        let s = &mut asm.insns[slot];
        match field {
            "src" => *s = bpfkit_isa::RawInsn::new(s.code, s.dst(), value as u8, s.off, s.imm),
            "off" => s.off = value as i16,
            "imm" => s.imm = value as i32,
            f => panic!("{}: unknown field {f}", c.name),
        }
    }
    // `; set` edits the slots, so the load goes through the command layer with the tables made
    // as `prog_load_asm` makes them (that path is checked by `prog_load_asm_runs_a_table`).
    let mut fds = Vec::new();
    for t in &asm.jump_tables {
        let mut spec = bpfkit_maps::MapSpec::new(bpfkit_maps::MapType::InsnArray, 4, 16, t.entries.len() as u32);
        spec.name = ".jumptables".into();
        let fd = rt.map_create(spec).unwrap();
        for (i, e) in t.entries.iter().enumerate() {
            let mut v = [0u8; 16];
            v[..4].copy_from_slice(&e.to_le_bytes());
            rt.map_update_elem(fd, &(i as u32).to_le_bytes(), &v, 0).unwrap();
        }
        rt.map_freeze(fd).unwrap();
        fds.push(fd);
    }
    let load = bpfkit::ProgLoad { name: c.name.clone(), prog_type: ProgType::Syscall, insns: asm.insns, fd_array: fds };
    let fd = match rt.prog_load(load) {
        Ok(fd) => fd,
        Err(e) => return vec![format!("error: {e}")],
    };
    let prog = rt.prog_by_fd(fd).unwrap();
    let mut backends = vec![Backend::Interp];
    // The JIT runs only programs someone vouches for: not those bpfkit should have refused
    // (a `gotox` through a bad value would jump anywhere in native code).
    if bpfkit_jit::available().is_ok() && c.directive("pending").is_none() {
        prog.jit(Trust::CallerVouches).unwrap();
        backends.push(Backend::Jit);
    }
    backends
        .into_iter()
        .map(|b| {
            let mut w = Worker::new(&rt, 0);
            w.set_backend(b);
            match prog.run_raw(&mut w, &mut [0u8; 8]) {
                Ok(r0) => format!("retval {r0}"),
                Err(e) => format!("error: {e}"),
            }
        })
        .collect()
}

#[test]
fn verifier_gotox_cases() {
    let all = common::read("verifier_gotox.cases");
    assert_eq!(all.len(), 26, "cases read");
    let mut pending = 0;
    for c in &all {
        let got = outcome(c);
        let meets = |g: &String| match c.expect.strip_prefix("error: ") {
            Some(msg) => g.starts_with("error: ") && g.contains(msg),
            None => *g == c.expect,
        };
        match c.directive("pending") {
            None => {
                for g in &got {
                    assert!(meets(g), "{} (line {}): expected `{}`, got `{g}`", c.name, c.line, c.expect);
                }
            }
            Some(reason) => {
                // Not refused at load yet: say so, and fail once it is, so the mark goes.
                assert!(
                    !got.iter().all(meets),
                    "{} (line {}) now meets `{}`: remove its `; pending` line",
                    c.name,
                    c.line,
                    c.expect
                );
                eprintln!("PENDING {}: expects `{}`, bpfkit gives `{}` ({reason})", c.name, c.expect, got.join(" / "));
                pending += 1;
            }
        }
    }
    eprintln!("{} cases, {} pending", all.len(), pending);
}

#[test]
fn prog_load_asm_runs_a_table() {
    let rt = Runtime::new();
    let text = "r1 = *(u64 *)(r1 + 0)\nr0 = 0\nif r1 > 2 goto out\nr1 <<= 3\nr2 = jt ll\nr2 += r1\n\
                r2 = *(u64 *)(r2 + 0)\ngotox r2\na: r0 = 10\nexit\nb: r0 = 20\nexit\nc: r0 = 30\nout: exit\n\
                .jumptable jt c, a, b";
    let (fd, maps) = rt.prog_load_asm("t", ProgType::Syscall, text).unwrap();
    assert_eq!(maps.len(), 1);
    let triples: Vec<u32> = (0..3u32)
        .map(|k| u32::from_le_bytes(rt.map_lookup_elem(maps[0], &k.to_le_bytes()).unwrap()[..4].try_into().unwrap()))
        .collect();
    assert_eq!(triples, [13, 9, 11], "orig_off of c, a, b");
    let prog = rt.prog_by_fd(fd).unwrap();
    let mut w = Worker::new(&rt, 0);
    for (x, want) in [(0u64, 30), (1, 10), (2, 20), (3, 0)] {
        assert_eq!(prog.run_raw(&mut w, &mut x.to_le_bytes()).unwrap(), want);
    }
    let e = rt.prog_load_asm("t", ProgType::Syscall, "r1 = nope ll\nexit").unwrap_err().to_string();
    assert!(e.contains("undefined label `nope (no .jumptable of that name)`"), "{e}");
}
