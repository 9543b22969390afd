//! Instruction arrays through the command layer: binding at `prog_load` (kernel-spec §2.4),
//! the offsets read back, and a `gotox` through a table (§3.8 `check-ldimm64-off-gotox`) in
//! the interpreter.

use bpfkit::{ProgLoad, Runtime};
use bpfkit_isa::{AluOp, Insn, LdImmSrc, Operand, Reg, Size, Width, encode_program};
use bpfkit_maps::{MapSpec, MapType};
use bpfkit_object::ProgType;

fn entry(orig: u32) -> [u8; 16] {
    let mut v = [0u8; 16];
    v[..4].copy_from_slice(&orig.to_ne_bytes());
    v
}

/// `r1 = jt + off1; r1 += off2; r1 = *(u64 *)(r1 + 0); gotox r1`, then six `r0 = k; exit`
/// cases at slots 5, 7, ..., 15.
fn gotox_program(off1: i32, off2: i32) -> Vec<bpfkit_isa::RawInsn> {
    let mut p = vec![
        Insn::LdImm64 { dst: Reg::R1, src: LdImmSrc::MapIdxValue, imm: 0, next_imm: off1 },
        Insn::Alu { width: Width::W64, op: AluOp::Add, dst: Reg::R1, src: Operand::Imm(off2) },
        Insn::Load { size: Size::DW, signed: false, dst: Reg::R1, src: Reg::R1, off: 0 },
        Insn::GotoX { reg: Reg::R1 },
    ];
    for k in 0..6 {
        p.push(Insn::Alu { width: Width::W64, op: AluOp::Mov, dst: Reg::R0, src: Operand::Imm(k) });
        p.push(Insn::Exit);
    }
    encode_program(&p)
}

fn triples(rt: &Runtime, fd: bpfkit::MapFd, n: u32) -> Vec<[u32; 3]> {
    (0..n)
        .map(|i| {
            let v = rt.map_lookup_elem(fd, &i.to_ne_bytes()).unwrap();
            let w = |j: usize| u32::from_ne_bytes(v[4 * j..4 * j + 4].try_into().unwrap());
            [w(0), w(1), w(2)]
        })
        .collect()
}

#[test]
fn a_program_takes_its_insn_array_and_jumps_through_it() {
    let rt = Runtime::new();
    let jt = rt.map_create(MapSpec::new(MapType::InsnArray, 4, 16, 6)).unwrap();
    for (i, orig) in [5u32, 7, 9, 11, 13, 15].into_iter().enumerate() {
        rt.map_update_elem(jt, &(i as u32).to_ne_bytes(), &entry(orig), 0).unwrap();
    }
    let load = |name: &str, off1, off2| {
        rt.prog_load(ProgLoad {
            name: name.into(),
            prog_type: ProgType::Syscall,
            insns: gotox_program(off1, off2),
            fd_array: vec![jt],
        })
    };
    // Not frozen: refused (load-unfrozen-map).
    let e = load("unfrozen", 0, 0).unwrap_err().to_string();
    assert!(e.contains("frozen"), "{e}");
    rt.map_freeze(jt).unwrap();

    let prog = load("jumps", 16, 8).unwrap();
    // orig -> xlated (no rewrite moves instructions yet) -> jitted (interpreter: xlated * 8).
    assert_eq!(triples(&rt, jt, 6), [5u32, 7, 9, 11, 13, 15].map(|o| [o, o, o * 8]).to_vec(), "offsets after load");
    // One program per map (no-map-reuse).
    let e = load("second", 0, 0).unwrap_err().to_string();
    assert!(e.contains("busy"), "{e}");

    let p = rt.prog_by_fd(prog).unwrap();
    let mut w = bpfkit::Worker::new(&rt, 0);
    assert_eq!(p.run_raw(&mut w, &mut [0u8; 8]).unwrap(), 3, "(16 + 8) / 8");

    // The JIT: entries now hold native addresses; jitted_off is the offset in the image.
    if bpfkit_jit::available().is_err() {
        eprintln!("SKIPPED: the JIT half (no JIT code memory here)");
        return;
    }
    p.jit(bpfkit::Trust::CallerVouches).unwrap();
    let code = p.jit_code().unwrap();
    let after = triples(&rt, jt, 6);
    for (t, orig) in after.iter().zip([5u32, 7, 9, 11, 13, 15]) {
        assert_eq!(t[..2], [orig, orig]);
        assert_eq!(t[2], code.compiled().insn_offsets[orig as usize] - code.compiled().body_offset as u32);
    }
    w.set_backend(bpfkit::Backend::Jit);
    assert_eq!(p.run_raw(&mut w, &mut [0u8; 8]).unwrap(), 3, "the JIT jumps through the native table");
    // The interpreter follows the native addresses as well.
    w.set_backend(bpfkit::Backend::Interp);
    assert_eq!(p.run_raw(&mut w, &mut [0u8; 8]).unwrap(), 3, "the interpreter too");
}

#[test]
fn table_offsets_are_checked_at_load() {
    let rt = Runtime::new();
    let jt = rt.map_create(MapSpec::new(MapType::InsnArray, 4, 16, 6)).unwrap();
    for (i, orig) in [5u32, 7, 9, 11, 13, 15].into_iter().enumerate() {
        rt.map_update_elem(jt, &(i as u32).to_ne_bytes(), &entry(orig), 0).unwrap();
    }
    rt.map_freeze(jt).unwrap();
    for off1 in [7, 48, -8] {
        let r = rt.prog_load(ProgLoad {
            name: "bad".into(),
            prog_type: ProgType::Syscall,
            insns: gotox_program(off1, 0),
            fd_array: vec![jt],
        });
        let e = r.unwrap_err().to_string();
        assert!(e.contains("insn 0") && e.contains("multiple of 8"), "offset {off1}: {e}");
    }
}

/// kernel-spec §3.8 `check-ldimm64-off-gotox`: `r1 = jt + off1; r1 += off2; r1 = *r1; gotox r1`
/// over a 6-entry table. Every `off1 + off2` that is a multiple of 8 below 48 loads and returns
/// `(off1 + off2) / 8` in both backends; the kernel's refused pairs are refused.
#[test]
fn ldimm64_offsets_and_gotox_sweep() {
    let rt = Runtime::new();
    let jt = rt.map_create(MapSpec::new(MapType::InsnArray, 4, 16, 6)).unwrap();
    for (i, orig) in [5u32, 7, 9, 11, 13, 15].into_iter().enumerate() {
        rt.map_update_elem(jt, &(i as u32).to_ne_bytes(), &entry(orig), 0).unwrap();
    }
    rt.map_freeze(jt).unwrap();
    let load = |off1, off2| {
        rt.prog_load(ProgLoad {
            name: "sweep".into(),
            prog_type: ProgType::Syscall,
            insns: gotox_program(off1, off2),
            fd_array: vec![jt],
        })
    };
    let jit = bpfkit_jit::available().is_ok();
    let mut accepted = 0;
    for off1 in (0..48).step_by(8) {
        for off2 in (0..48 - off1).step_by(8) {
            let fd = load(off1, off2).unwrap_or_else(|e| panic!("({off1}, {off2}): {e}"));
            let p = rt.prog_by_fd(fd).unwrap();
            let mut w = bpfkit::Worker::new(&rt, 0);
            assert_eq!(p.run_raw(&mut w, &mut [0u8; 8]).unwrap(), ((off1 + off2) / 8) as u64, "({off1}, {off2})");
            if jit {
                p.jit(bpfkit::Trust::Verified).unwrap();
                w.set_backend(bpfkit::Backend::Jit);
                assert_eq!(
                    p.run_raw(&mut w, &mut [0u8; 8]).unwrap(),
                    ((off1 + off2) / 8) as u64,
                    "JIT ({off1}, {off2})"
                );
            }
            accepted += 1;
            drop(p);
            // The map has one owner at a time: release it for the next load.
            rt.prog_close(fd).unwrap();
        }
    }
    assert_eq!(accepted, 21);
    for (off1, off2) in [(24, 24), (56, 0), (0, 56), (3, 3), (7, 0), (0, 7)] {
        let e = load(off1, off2).map(|_| ()).unwrap_err().to_string();
        assert!(
            e.contains("outside of jump table")
                || e.contains("invalid access to map value")
                || e.contains("multiple of 8")
                || e.contains("misaligned"),
            "({off1}, {off2}): {e}"
        );
    }
}
