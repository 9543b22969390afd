//! The kernel's `bpf_insn_array` selftests (kernel-spec §11.1) from `tests/data/insn_array.cases`:
//! instruction offsets carried from the loaded program through bpfkit's fixups (nop removal,
//! helper inlining, constant blinding) to the xlated program and the machine code.

use bpfkit::{Backend, ProgLoad, Runtime, Trust, Worker};
use bpfkit_maps::{MapSpec, MapType};
use bpfkit_object::ProgType;

mod common;

#[test]
fn insn_array_cases() {
    let all = common::read("insn_array.cases");
    assert_eq!(all.len(), 10, "cases read");
    for c in &all {
        let array = c.directive("map").is_some_and(|m| m == "array");
        let rt = Runtime::new();
        rt.set_harden(c.directive("harden").is_some());
        let insns = bpfkit_isa::assemble(&c.input).unwrap_or_else(|e| panic!("{}: {e}", c.name));
        let lddw_tails: Vec<u32> = (1..insns.len()).filter(|&i| insns[i - 1].code == 0x18).map(|i| i as u32).collect();
        let entries: Vec<u32> = match c.directive("entries") {
            Some(e) => e.split(',').map(|v| v.trim().parse().unwrap()).collect(),
            None => (0..insns.len() as u32).filter(|i| !lddw_tails.contains(i)).collect(),
        };
        let map = if array {
            rt.map_create(MapSpec::new(MapType::Array, 4, 8, 1)).unwrap()
        } else {
            let m = rt.map_create(MapSpec::new(MapType::InsnArray, 4, 16, entries.len() as u32)).unwrap();
            for (i, o) in entries.iter().enumerate() {
                let mut v = [0u8; 16];
                v[..4].copy_from_slice(&o.to_le_bytes());
                rt.map_update_elem(m, &(i as u32).to_le_bytes(), &v, 0).unwrap();
            }
            if c.directive("unfrozen").is_none() {
                rt.map_freeze(m).unwrap();
            }
            m
        };
        let load = ProgLoad { name: "t".into(), prog_type: ProgType::Xdp, insns, fd_array: vec![map] };
        let fd = match rt.prog_load(load) {
            Ok(fd) => fd,
            Err(e) => {
                let want = c.expect.strip_prefix("error: ").unwrap_or_else(|| panic!("{}: refused: {e}", c.name));
                assert!(e.to_string().contains(want), "{}: `{e}` lacks `{want}`", c.name);
                continue;
            }
        };
        let want =
            c.expect.strip_prefix("xlated").unwrap_or_else(|| panic!("{}: loaded, expected {}", c.name, c.expect));
        let prog = rt.prog_by_fd(fd).unwrap();
        if !array {
            let got: Vec<String> = prog.insn_arrays()[0]
                .insn_array_entries()
                .unwrap()
                .iter()
                .map(|[_, x, _]| if *x == u32::MAX { "-1".to_string() } else { x.to_string() })
                .collect();
            assert_eq!(got.join(","), want.trim(), "{}: xlated offsets", c.name);
        }
        // Both engines run it, and agree.
        let mut results = Vec::new();
        for b in [Backend::Interp, Backend::Jit] {
            if b == Backend::Jit {
                if bpfkit_jit::available().is_err() {
                    continue;
                }
                prog.jit(Trust::Verified).unwrap();
                if !array {
                    // jitted_off: the offset of the instruction in its own function's code.
                    let code = prog.jit_code().unwrap().compiled();
                    for [_, x, j] in prog.insn_arrays()[0].insn_array_entries().unwrap() {
                        if x != u32::MAX {
                            let func = code.functions.iter().rev().find(|(pc, _)| *pc <= x as usize).unwrap().1 as u32;
                            assert_eq!(j, code.insn_offsets[x as usize] - func, "{}: jitted_off of {x}", c.name);
                        }
                    }
                }
            }
            let mut w = Worker::new(&rt, 0);
            w.set_backend(b);
            let mut pkt = bpfkit::XdpPacket::new(&[0u8; 64]).unwrap();
            results.push(prog.run_xdp(&mut w, &mut pkt).map(|o| o.action).map_err(|e| e.to_string()));
        }
        assert!(results.windows(2).all(|w| w[0] == w[1]), "{}: engines disagree {results:?}", c.name);
    }
}
