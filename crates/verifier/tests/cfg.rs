//! Data-driven tests of the control-flow graph: every `tests/cfg/*.txt` holds a program in
//! LLVM syntax (assembled with `bpfkit_isa::asm::assemble_with_tables`) and, after a line
//! `--- expect`, the expected [`Cfg`] listing, or after `--- error`, the expected error
//! message (the kernel's verifier log line).
//!
//! Header comments configure the case:
//! - `# tables: [3,5],[7]`: jump tables given as `xlated_off` lists (after the tables of
//!   `.jumptable` directives, if any);
//! - `# patch PC FIELD=VALUE ...`: after assembling, set fields (`code`, `dst`, `src`, `off`,
//!   `imm`) of slot PC, for encodings the assembler refuses to produce.
//!
//! `BLESS=1 cargo test -p bpfkit-verifier --test cfg` rewrites the expectations.

use bpfkit_isa::RawInsn;
use bpfkit_verifier::cfg;
use std::path::{Path, PathBuf};

struct Case {
    path: PathBuf,
    program: String,
    tables: Vec<Vec<u32>>,
    patches: Vec<(usize, String, i64)>,
    /// `expect` or `error`.
    kind: String,
    expected: String,
}

fn parse_case(path: &Path) -> Case {
    let text = std::fs::read_to_string(path).unwrap();
    let (program, rest) =
        text.split_once("\n--- ").unwrap_or_else(|| panic!("{}: no `--- expect` line", path.display()));
    let (kind, expected) = rest.split_once('\n').unwrap_or((rest, ""));
    let mut tables = Vec::new();
    let mut patches = Vec::new();
    for line in program.lines() {
        let line = line.trim();
        if let Some(t) = line.strip_prefix("# tables:") {
            for table in t.split(']').map(str::trim).filter(|s| !s.is_empty()) {
                let table = table.trim_start_matches(',').trim().trim_start_matches('[');
                tables.push(
                    table.split(',').filter(|s| !s.trim().is_empty()).map(|n| n.trim().parse().unwrap()).collect(),
                );
            }
        } else if let Some(p) = line.strip_prefix("# patch ") {
            let mut words = p.split_whitespace();
            let pc: usize = words.next().unwrap().parse().unwrap();
            for w in words {
                let (field, value) = w.split_once('=').unwrap();
                let value = match value.strip_prefix("0x") {
                    Some(h) => i64::from_str_radix(h, 16).unwrap(),
                    None => value.parse().unwrap(),
                };
                patches.push((pc, field.to_string(), value));
            }
        }
    }
    Case {
        path: path.to_path_buf(),
        program: program.to_string(),
        tables,
        patches,
        kind: kind.trim().to_string(),
        expected: expected.to_string(),
    }
}

fn patch(slot: &mut RawInsn, field: &str, value: i64) {
    match field {
        "code" => slot.code = value as u8,
        "dst" => *slot = RawInsn::new(slot.code, value as u8, slot.src(), slot.off, slot.imm),
        "src" => *slot = RawInsn::new(slot.code, slot.dst(), value as u8, slot.off, slot.imm),
        "off" => slot.off = value as i16,
        "imm" => slot.imm = value as i32,
        other => panic!("unknown field `{other}` in # patch"),
    }
}

/// What the case produces: the listing, or the error message.
fn run(case: &Case) -> (String, String) {
    let asm = bpfkit_isa::asm::assemble_with_tables(&case.program)
        .unwrap_or_else(|e| panic!("{}: does not assemble: {e}", case.path.display()));
    let mut insns = asm.insns;
    for (pc, field, value) in &case.patches {
        patch(&mut insns[*pc], field, *value);
    }
    let mut tables: Vec<Vec<u32>> = asm.jump_tables.into_iter().map(|t| t.entries).collect();
    tables.extend(case.tables.iter().cloned());
    match cfg::build(&insns, &tables) {
        Ok(c) => {
            // Invariants every graph satisfies.
            for b in c.blocks() {
                assert_eq!(c.block_of(b.start).map(|i| &c.blocks()[i]), Some(b));
                for e in &b.succs {
                    assert_eq!(e.back, c.is_back_edge(b.last, c.blocks()[e.to].start), "{}", case.path.display());
                }
            }
            ("expect".into(), c.to_string())
        }
        Err(e) => ("error".into(), format!("{e}\n")),
    }
}

fn normalize(s: &str) -> String {
    s.lines().map(str::trim_end).filter(|l| !l.is_empty()).collect::<Vec<_>>().join("\n")
}

#[test]
fn cfg_cases() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cfg");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    paths.sort();
    assert!(paths.len() >= 15, "expected the case files in {}", dir.display());
    let bless = std::env::var_os("BLESS").is_some();
    let mut failures = Vec::new();
    for path in &paths {
        let case = parse_case(path);
        let (kind, got) = run(&case);
        if bless {
            std::fs::write(path, format!("{}\n--- {kind}\n{got}", case.program)).unwrap();
            continue;
        }
        if kind != case.kind || normalize(&got) != normalize(&case.expected) {
            failures.push(format!(
                "{}:\n  expected --- {}\n{}\n  got --- {kind}\n{}",
                path.display(),
                case.kind,
                case.expected,
                got
            ));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases differ:\n{}", failures.len(), paths.len(), failures.join("\n"));
}

/// Errors carry the instruction they are about.
#[test]
fn error_names_the_instruction() {
    let insns = bpfkit_isa::assemble("r0 = 0\nexit\n").unwrap();
    let e = cfg::build(&insns[..1], &[]).unwrap_err();
    assert_eq!(e, cfg::CfgError::LastInsnNotExitOrJmp { insn: 0 });
    assert_eq!(e.insn(), 0);
    assert_eq!(cfg::build(&[], &[]).unwrap_err(), cfg::CfgError::EmptyProgram { insn: 0 });
}

/// Random programs made of control-flow instructions with random fields and random jump
/// tables: `build` never panics, and every graph it returns is consistent.
#[test]
fn random_programs_never_panic() {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut rnd = move |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    };
    let mut accepted = 0;
    for _ in 0..100_000 {
        let len = 1 + rnd(14) as usize;
        let mut insns: Vec<RawInsn> = Vec::with_capacity(len + 1);
        while insns.len() < len {
            let off = rnd(13) as i16 - 6;
            let imm = rnd(13) as i32 - 6;
            let slot = match rnd(11) {
                0 => RawInsn::new(0x05, 0, [0, 0, 0, 1, 3][rnd(5) as usize], off, 0),
                1 => RawInsn::new(0x06, 0, 0, 0, imm),
                2 => RawInsn::new(0x0d, rnd(4) as u8, 0, 0, 0),
                3 => RawInsn::new(0x15, rnd(4) as u8, 0, off, imm),
                4 => RawInsn::new(0x85, 0, 1, 0, imm),
                5 => RawInsn::new(0x85, 0, 0, 0, 1),
                6 | 7 => RawInsn::new(0x95, 0, 0, 0, 0),
                8 => RawInsn::new(0xe5, 0, 0, off, 0),
                9 => {
                    let src = if rnd(2) == 0 { 0 } else { 4 };
                    insns.push(RawInsn::new(0x18, 1, src, 0, imm));
                    RawInsn::new(0, 0, 0, 0, 0)
                }
                _ => RawInsn::new(0xb7, rnd(4) as u8, 0, 0, imm),
            };
            insns.push(slot);
        }
        // Now and then, a field set at random.
        if rnd(8) == 0 {
            let i = rnd(insns.len() as u64) as usize;
            let s = &mut insns[i];
            match rnd(4) {
                0 => *s = RawInsn::new(s.code, s.dst(), rnd(16) as u8, s.off, s.imm),
                1 => *s = RawInsn::new(s.code, rnd(16) as u8, s.src(), s.off, s.imm),
                2 => s.off = rnd(5) as i16 - 2,
                _ => s.imm = rnd(5) as i32 - 2,
            }
        }
        let len = insns.len();
        let tables: Vec<Vec<u32>> =
            (0..rnd(3)).map(|_| (0..1 + rnd(3)).map(|_| rnd(len as u64 + 2) as u32).collect()).collect();
        let Ok(c) = cfg::build(&insns, &tables) else { continue };
        accepted += 1;
        let mut covered = 0;
        for (i, b) in c.blocks().iter().enumerate() {
            assert_eq!(c.block_of(b.start), Some(i));
            covered += b.end - b.start;
            for e in &b.succs {
                let to = &c.blocks()[e.to];
                assert_eq!(to.subprog, b.subprog, "{insns:?}");
                assert_eq!(e.back, c.is_back_edge(b.last, to.start));
            }
        }
        assert_eq!(covered, c.len(), "{insns:?}");
    }
    assert!(accepted > 1000, "only {accepted} random programs were accepted");
}
