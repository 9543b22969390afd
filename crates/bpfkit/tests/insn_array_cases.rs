//! The kernel's `bpf_insn_array` selftests (kernel-spec §11.1) from `tests/data/insn_array.cases`:
//! instruction offsets carried from the loaded program through bpfkit's fixups (nop removal,
//! helper inlining, constant blinding) to the xlated program and the machine code.

use bpfkit::{Backend, ProgLoad, Runtime, Trust, Worker};
use bpfkit_maps::{MapSpec, MapType};
use bpfkit_object::ProgType;

struct Case {
    name: String,
    asm: String,
    entries: Option<Vec<u32>>,
    unfrozen: bool,
    harden: bool,
    array: bool,
    expect: String,
}

fn cases() -> Vec<Case> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/insn_array.cases")).unwrap();
    let mut out: Vec<Case> = Vec::new();
    let mut in_expect = false;
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("=== ") {
            out.push(Case {
                name: name.into(),
                asm: String::new(),
                entries: None,
                unfrozen: false,
                harden: false,
                array: false,
                expect: String::new(),
            });
            in_expect = false;
            continue;
        }
        let Some(c) = out.last_mut() else { continue };
        if line == "--- expect" {
            in_expect = true;
        } else if in_expect {
            if !line.trim().is_empty() {
                c.expect = line.trim().into();
            }
        } else if let Some(e) = line.strip_prefix("; entries: ") {
            c.entries = Some(e.split(',').map(|v| v.trim().parse().unwrap()).collect());
        } else if line == "; unfrozen" {
            c.unfrozen = true;
        } else if line == "; harden" {
            c.harden = true;
        } else if line == "; map: array" {
            c.array = true;
        } else {
            c.asm.push_str(line);
            c.asm.push('\n');
        }
    }
    out
}

#[test]
fn insn_array_cases() {
    let all = cases();
    assert_eq!(all.len(), 10, "cases read");
    for c in &all {
        let rt = Runtime::new();
        rt.set_harden(c.harden);
        let insns = bpfkit_isa::assemble(&c.asm).unwrap_or_else(|e| panic!("{}: {e}", c.name));
        let lddw_tails: Vec<u32> = (1..insns.len()).filter(|&i| insns[i - 1].code == 0x18).map(|i| i as u32).collect();
        let entries: Vec<u32> =
            c.entries.clone().unwrap_or_else(|| (0..insns.len() as u32).filter(|i| !lddw_tails.contains(i)).collect());
        let map = if c.array {
            rt.map_create(MapSpec::new(MapType::Array, 4, 8, 1)).unwrap()
        } else {
            let m = rt.map_create(MapSpec::new(MapType::InsnArray, 4, 16, entries.len() as u32)).unwrap();
            for (i, o) in entries.iter().enumerate() {
                let mut v = [0u8; 16];
                v[..4].copy_from_slice(&o.to_le_bytes());
                rt.map_update_elem(m, &(i as u32).to_le_bytes(), &v, 0).unwrap();
            }
            if !c.unfrozen {
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
        if !c.array {
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
                if !c.array {
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
