//! The data-driven vectors of `tests/data/*.fixup` (the format is described at the top of
//! `vectors.fixup`): each case's program is assembled, fixed up with its options, and its
//! `orig_to_xlated` (and, when given, `xlated_to_orig` and the xlated disassembly) compared
//! with the expectations written next to it. Every xlated program must also decode as an
//! xlated program and end where the orig one does.

use bpfkit_fixup::{BPF_FUNC_JIFFIES64, FixupOptions, INSN_DELETED, Xlated, fixup, jiffies64_patch};
use bpfkit_isa::{RawInsn, assemble, disassemble_xlated};
use std::path::Path;

/// The address the `jiffies` option inlines (an arbitrary constant, easy to spot).
const JIFFIES_ADDR: u64 = 0x1122_3344_5566_7788;

#[derive(Default, Debug)]
struct Case {
    name: String,
    line: usize,
    options: Vec<String>,
    program: String,
    map: Option<Vec<i64>>,
    origin: Option<Vec<Option<u32>>>,
    xlated: Option<Vec<String>>,
}

fn parse(text: &str) -> Vec<Case> {
    let mut cases: Vec<Case> = Vec::new();
    // The block (`program` or `xlated`) indented lines currently go to.
    let mut block: Option<&'static str> = None;
    for (i, raw) in text.lines().enumerate() {
        let lineno = i + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || (trimmed.starts_with('#') && !raw.starts_with(' ')) {
            continue;
        }
        if let Some(name) = trimmed.strip_prefix("=== ") {
            cases.push(Case { name: name.trim().to_string(), line: lineno, ..Case::default() });
            block = None;
            continue;
        }
        let case = cases.last_mut().unwrap_or_else(|| panic!("line {lineno}: text before the first `=== name`"));
        if raw.starts_with(' ') || raw.starts_with('\t') {
            match block {
                Some("program") => {
                    case.program.push_str(trimmed);
                    case.program.push('\n');
                }
                Some("xlated") => case.xlated.get_or_insert_with(Vec::new).push(trimmed.to_string()),
                _ => panic!("line {lineno}: indented line outside a program: or xlated: block"),
            }
            continue;
        }
        let (key, value) = trimmed.split_once(':').unwrap_or_else(|| panic!("line {lineno}: expected `key: value`"));
        let words = value.split_whitespace();
        block = None;
        match key {
            "options" => case.options = words.map(str::to_string).collect(),
            "program" => block = Some("program"),
            "xlated" => {
                block = Some("xlated");
                case.xlated = Some(Vec::new());
            }
            "map" => {
                case.map =
                    Some(words.map(|w| w.parse().unwrap_or_else(|e| panic!("line {lineno}: `{w}`: {e}"))).collect())
            }
            "origin" => {
                case.origin = Some(
                    words
                        .map(|w| {
                            if w == "-" {
                                None
                            } else {
                                Some(w.parse().unwrap_or_else(|e| panic!("line {lineno}: `{w}`: {e}")))
                            }
                        })
                        .collect(),
                )
            }
            _ => panic!("line {lineno}: unknown key `{key}`"),
        }
    }
    cases
}

fn jiffies(id: i32) -> Option<Vec<RawInsn>> {
    (id == BPF_FUNC_JIFFIES64).then(|| jiffies64_patch(JIFFIES_ADDR))
}

fn run(case: &Case) -> Xlated {
    let ctx = format!("case `{}` (line {})", case.name, case.line);
    let slots = assemble(&case.program).unwrap_or_else(|e| panic!("{ctx}: the program does not assemble: {e}"));
    let mut opts = FixupOptions::default();
    for o in &case.options {
        match o.as_str() {
            "nops" => opts.remove_nops = true,
            "jiffies" => opts.inline_helper = Some(&jiffies),
            _ => match o.strip_prefix("blind=") {
                Some(seed) => opts.blind = Some(seed.parse().unwrap_or_else(|e| panic!("{ctx}: seed: {e}"))),
                None => panic!("{ctx}: unknown option `{o}`"),
            },
        }
    }
    let x = fixup(&slots, &opts).unwrap_or_else(|e| panic!("{ctx}: fixup failed: {e}"));
    let listing =
        disassemble_xlated(&x.insns).unwrap_or_else(|e| panic!("{ctx}: the xlated program does not decode: {e}"));
    let shown =
        || format!("{ctx}\nxlated:\n{listing}map: {:?}\norigin: {:?}", signed(&x.orig_to_xlated), x.xlated_to_orig);

    assert_eq!(x.orig_to_xlated.len(), slots.len(), "{}", shown());
    assert_eq!(x.xlated_to_orig.len(), x.insns.len(), "{}", shown());
    if let Some(map) = &case.map {
        assert_eq!(&signed(&x.orig_to_xlated), map, "orig_to_xlated of {}", shown());
    }
    if let Some(origin) = &case.origin {
        assert_eq!(&x.xlated_to_orig, origin, "xlated_to_orig of {}", shown());
    }
    if let Some(expected) = &case.xlated {
        let actual: Vec<&str> = listing.lines().collect();
        assert_eq!(actual.len(), expected.len(), "number of xlated instructions of {}", shown());
        for (k, (a, e)) in actual.iter().zip(expected).enumerate() {
            assert!(matches(a, e), "xlated insn {k}: `{a}` does not match `{e}` in {}", shown());
        }
    }
    // Every surviving orig slot maps to a slot whose origin is that orig slot.
    for (o, &xl) in x.orig_to_xlated.iter().enumerate() {
        if xl != INSN_DELETED {
            assert_eq!(x.xlated_to_orig[xl as usize], Some(o as u32), "origin of orig {o} in {}", shown());
        }
    }
    x
}

/// `orig_to_xlated` with `INSN_DELETED` as -1.
fn signed(map: &[u32]) -> Vec<i64> {
    map.iter().map(|&v| if v == INSN_DELETED { -1 } else { i64::from(v) }).collect()
}

/// Token-wise comparison, `?` matching any token.
fn matches(actual: &str, expected: &str) -> bool {
    let a: Vec<&str> = actual.split_whitespace().collect();
    let e: Vec<&str> = expected.split_whitespace().collect();
    a.len() == e.len() && a.iter().zip(&e).all(|(a, e)| *e == "?" || a == e)
}

fn files() -> Vec<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let mut v: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/data")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "fixup"))
        .collect();
    v.sort();
    v
}

#[test]
fn vectors() {
    let mut n = 0;
    for f in files() {
        let text = std::fs::read_to_string(&f).expect("read vectors");
        for case in parse(&text) {
            run(&case);
            n += 1;
        }
    }
    assert!(n >= 14, "only {n} vectors found");
}

/// The kernel's five selftest vectors are present with their expected offsets (so that
/// editing the data file cannot silently drop them).
#[test]
fn kernel_selftest_vectors_are_there() {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/vectors.fixup"))
        .expect("vectors.fixup");
    let cases = parse(&text);
    let want: [(&str, &[i64]); 5] = [
        ("one2one", &[0, 1, 2, 3, 4, 5]),
        ("simple", &[0, 1, 4, 5, 8, 9]),
        ("deletions", &[0, -1, 1, -1, 2, 3]),
        ("deletions-with-functions", &[-1, 0, -1, 3, 4, 5, -1, 6, -1, 9, 10]),
        ("blindness", &[0, 3, 6, 9, 12]),
    ];
    for (name, map) in want {
        let case = cases.iter().find(|c| c.name == name).unwrap_or_else(|| panic!("vector {name} missing"));
        assert_eq!(case.map.as_deref(), Some(map), "vector {name}");
        assert_eq!(signed(&run(case).orig_to_xlated), map, "vector {name}");
    }
}

/// The wildcard really constrains: a wrong expectation is caught.
#[test]
fn a_wrong_expectation_fails() {
    let case = Case {
        name: "wrong".into(),
        program: "r0 = 1\nexit\n".into(),
        options: vec!["blind=1".into()],
        map: Some(vec![0, 1]),
        ..Case::default()
    };
    assert!(std::panic::catch_unwind(|| run(&case)).is_err());
    assert!(!matches("r11 = 0x5", "r0 = ?"));
    assert!(matches("r11 = 0x5", "r11 = ?"));
}
