//! The assembler against the bpf_conformance corpus, plus its error reporting.

use bpfkit_isa::asm::parse;
use bpfkit_isa::{AsmError, AsmErrorKind, Insn, RawInsn, assemble, decode_program};
use std::path::{Path, PathBuf};

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../third_party/bpf_conformance/tests")
}

/// The lines of section `-- name` of a conformance file.
fn section<'a>(text: &'a str, name: &str) -> Option<Vec<&'a str>> {
    let header = format!("-- {name}");
    let mut lines = text.lines().skip_while(|l| l.trim_end() != header);
    lines.next()?;
    Some(lines.take_while(|l| !l.starts_with("-- ")).collect())
}

#[test]
fn conformance_corpus_assembles() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .expect("the conformance corpus is checked out under third_party/")
        .map(|e| e.expect("readable directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "data"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 313, "expected the 313 files of the corpus");
    let mut with_raw = 0;
    for path in &files {
        let text = std::fs::read_to_string(path).expect("readable corpus file");
        let asm = section(&text, "asm").unwrap_or_else(|| panic!("{}: no `-- asm` section", path.display()));
        let slots = assemble(&asm.join("\n")).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(!slots.is_empty(), "{}: empty program", path.display());
        decode_program(&slots).unwrap_or_else(|e| panic!("{}: output does not decode: {e}", path.display()));
        if let Some(raw) = section(&text, "raw") {
            let want: Vec<RawInsn> = raw
                .iter()
                .map(|l| l.trim())
                .filter(|l| !l.is_empty())
                .map(|l| {
                    let hex = l.strip_prefix("0x").unwrap_or(l);
                    RawInsn::from_u64(u64::from_str_radix(hex, 16).expect("hex slot"))
                })
                .collect();
            assert_eq!(slots, want, "{}: bytes differ from the `-- raw` section", path.display());
            with_raw += 1;
        }
    }
    assert!(with_raw >= 1);
}

fn err(text: &str) -> AsmError {
    match assemble(text) {
        Ok(slots) => panic!("{text:?} assembled to {slots:?}"),
        Err(e) => e,
    }
}

fn check(text: &str, line: usize, col: usize, kind: AsmErrorKind) {
    assert_eq!(err(text), AsmError { line, col, kind }, "for {text:?}");
}

fn s(x: &str) -> String {
    x.to_string()
}

#[test]
fn unknown_mnemonic() {
    check("mov %r0, 1\n  foo %r1, 2\nexit", 2, 3, AsmErrorKind::UnknownMnemonic { mnemonic: s("foo") });
    check("addd32 %r1, 2", 1, 1, AsmErrorKind::UnknownMnemonic { mnemonic: s("addd32") });
}

#[test]
fn bad_register() {
    check("mov %r11, 1", 1, 5, AsmErrorKind::BadRegister { text: s("%r11") });
    check("mov %r0, %r15", 1, 10, AsmErrorKind::BadRegister { text: s("%r15") });
    check("ldxw %r0, [%w1+4]", 1, 12, AsmErrorKind::BadRegister { text: s("%w1") });
    check("r11 = 1", 1, 1, AsmErrorKind::BadRegister { text: s("r11") });
    check("w1 += r2", 1, 7, AsmErrorKind::RegisterWidth { text: s("r2"), expected: "a 32-bit wN register" });
    check("r1 = be16 r2", 1, 11, AsmErrorKind::RegisterMismatch { expected: s("r1"), found: s("r2") });
}

#[test]
fn immediate_out_of_range() {
    check("mov %r0, 0x100000000", 1, 10, AsmErrorKind::ImmediateOutOfRange { text: s("0x100000000"), bits: 32 });
    check("mov32 %r0, -2147483649", 1, 12, AsmErrorKind::ImmediateOutOfRange { text: s("-2147483649"), bits: 32 });
    check("ldxw %r0, [%r1+0x10000]", 1, 15, AsmErrorKind::ImmediateOutOfRange { text: s("+0x10000"), bits: 16 });
    check(
        "lddw %r0, 0x10000000000000000",
        1,
        11,
        AsmErrorKind::ImmediateOutOfRange { text: s("0x10000000000000000"), bits: 64 },
    );
    check("ja +32768", 1, 4, AsmErrorKind::ImmediateOutOfRange { text: s("+32768"), bits: 16 });
    check(
        "r1 = 99999999999999999999999999999999999999999 ll",
        1,
        6,
        AsmErrorKind::ImmediateOutOfRange { text: s("99999999999999999999999999999999999999999"), bits: 64 },
    );
    // Wrapping of unsigned spellings is allowed.
    assert_eq!(assemble("mov %r0, 0xffffffff").unwrap()[0].imm, -1);
    assert_eq!(assemble("stb [%r1+0xffff], 1").unwrap()[0].off, -1);
}

#[test]
fn undefined_label() {
    check("mov %r0, 0\njne %r0, 1, nowhere\nexit", 2, 13, AsmErrorKind::UndefinedLabel { label: s("nowhere") });
    check("call local f\nexit", 1, 12, AsmErrorKind::UndefinedLabel { label: s("f") });
}

#[test]
fn duplicate_label() {
    check("a:\nexit\n  a:\nexit", 3, 3, AsmErrorKind::DuplicateLabel { label: s("a"), first_line: 1 });
}

#[test]
fn missing_operand() {
    check("add %r1,", 1, 9, AsmErrorKind::MissingOperand { expected: s("register or immediate") });
    check("ldxw %r0", 1, 9, AsmErrorKind::MissingOperand { expected: s("`,`") });
    check("if r1 > 2 goto", 1, 15, AsmErrorKind::MissingOperand { expected: s("jump target") });
    check("add %r1 # comment", 1, 8, AsmErrorKind::MissingOperand { expected: s("`,`") });
    check("jeq %r1, 2 3", 1, 12, AsmErrorKind::ExpectedToken { expected: s("`,`"), found: s("`3`") });
}

#[test]
fn trailing_garbage() {
    check("exit 5", 1, 6, AsmErrorKind::TrailingInput { text: s("5") });
    check("mov %r0, 1 2 3 ; c", 1, 12, AsmErrorKind::TrailingInput { text: s("2 3") });
    check("r0 = 1 ll ll", 1, 11, AsmErrorKind::TrailingInput { text: s("ll") });
}

#[test]
fn jump_out_of_range() {
    let mut text = String::from("ja far\n");
    text.push_str(&"mov %r0, 0\n".repeat(40000));
    text.push_str("far:\nexit\n");
    check(&text, 1, 4, AsmErrorKind::JumpOutOfRange { label: s("far"), distance: 40000, bits: 16 });
    // The same distance is fine for 32-bit offsets.
    let long = text.replacen("ja far", "ja32 far", 1);
    assert_eq!(assemble(&long).unwrap()[0].imm, 40000);
    let back = text.replacen("ja far", "back: exit", 1).replace("far:\nexit\n", "jeq %r0, 0, back\n");
    check(&back, 40002, 13, AsmErrorKind::JumpOutOfRange { label: s("back"), distance: -40002, bits: 16 });
}

#[test]
fn misc_errors() {
    check("mov %r0, 12ab", 1, 10, AsmErrorKind::BadNumber { text: s("12ab"), reason: "invalid digit" });
    check(
        "r0 = 010",
        1,
        6,
        AsmErrorKind::BadNumber {
            text: s("010"),
            reason: "a decimal number cannot start with 0 (LLVM would read it as octal)",
        },
    );
    check("mov %r0, é", 1, 10, AsmErrorKind::UnexpectedChar { ch: 'é' });
    check(".section foo", 1, 1, AsmErrorKind::UnknownDirective { directive: s(".section") });
    check(
        "goto_or_nop +0",
        1,
        13,
        AsmErrorKind::InvalidInstruction { reason: s("a static branch needs a non-zero offset") },
    );
    check(
        "lock *(u8 *)(r1 + 0) += w2",
        1,
        8,
        AsmErrorKind::InvalidInstruction { reason: s("8- and 16-bit atomics only load-acquire or store-release") },
    );
    assert_eq!(err("x\n\n  é").to_string(), "1:1: unknown instruction `x`");
    assert_eq!(err("\n\n  %").to_string(), "3:3: expected instruction, found `%`");
}

#[test]
fn implicit_exit_label() {
    let prog = parse("jne %r0, %r1, exit\nmov %r0, 1\nexit\nmov %r0, 2\nexit").unwrap();
    assert!(matches!(prog[0], Insn::JmpCond { off: 1, .. }));
    // An explicit `exit` label wins.
    let prog = parse("ja exit\nexit\nexit:\nexit").unwrap();
    assert_eq!(prog[0], Insn::Ja { long: false, off: 1 });
}

mod no_panic {
    use super::*;
    use proptest::prelude::*;

    /// Fragments of both syntaxes and of objdump output, to reach deep into the parsers.
    const PIECES: &[&str] = &[
        "r1",
        "w2",
        "%r3",
        "%r11",
        "r10",
        "%",
        "=",
        "+=",
        "s>>=",
        "s<",
        "-",
        "+",
        "*",
        "(",
        ")",
        "[",
        "]",
        ",",
        ":",
        "u8",
        "u64",
        "s32",
        "skb",
        "ll",
        "0",
        "8",
        "-1",
        "0x",
        "0xffffffff",
        "99999999999999999999999",
        "010",
        "lock",
        "fetch",
        "add32",
        "xchg",
        "cmpxchg_64",
        "atomic_fetch_or",
        "load_acquire",
        "store_release",
        "goto",
        "gotol",
        "goto_or_nop",
        "if",
        "call",
        "local",
        "pc",
        "kfunc",
        "callx",
        "gotox",
        "may_goto",
        "exit",
        "lddw",
        "ldxw",
        "stxdw",
        "stb",
        "ldabsh",
        "ldindw",
        "ja",
        "ja32",
        "jeq32",
        "movsx864",
        "be16",
        "bswap64",
        "ld_pseudo",
        "label",
        "label:",
        ".text",
        ".globl",
        "é",
        "\u{0}",
        "#",
        ";",
        "//",
        "<",
        ">",
        " <x+0x8>",
        " ",
        "\t",
        "\n",
        "\r\n",
        "   5:\t",
        "b7 00 00 00 00 00 00 00\t",
        "85 10 00 00 ff ff ff ff\t",
        "0000000000000000 <x>:",
        "\t\t0000000000000010:  R_BPF_64_64\tg",
        "x.o:\tfile format elf64-bpf",
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn assemble_never_panics_on_pieces(
            pieces in proptest::collection::vec(proptest::sample::select(PIECES), 0..24),
            glue in proptest::collection::vec(prop_oneof![Just(""), Just(" ")], 24),
        ) {
            let mut text = String::new();
            for (p, g) in pieces.iter().zip(&glue) {
                text.push_str(p);
                text.push_str(g);
            }
            let _ = assemble(&text);
        }

        #[test]
        fn assemble_never_panics_on_strings(text in any::<String>()) {
            let _ = assemble(&text);
        }
    }
}

/// `llvm-objdump-22 -dr -S` output of a clang-compiled object, as text (the differential test
/// in `llvm_objdump.rs` needs LLVM; this one does not).
const OBJDUMP: &str = "
c.o:\tfile format elf64-bpf

Disassembly of section .text:

0000000000000000 <sub>:
; static __attribute__((noinline)) int sub(int a) { return a * 3 + 1; }
       0:\tbc 10 00 00 00 00 00 00\tw0 = w1
       1:\t24 00 00 00 03 00 00 00\tw0 *= 0x3
       2:\t95 00 00 00 00 00 00 00\texit

Disassembly of section xdp:

0000000000000000 <prog>:
;   for (int i = 0; i < *p; i++) s += sub(i);
       0:\tc6 07 02 00 01 00 00 00\tif w7 s< 0x1 goto +0x2 <prog+0x18>
       1:\t85 10 00 00 ff ff ff ff\tcall -0x1
\t\t0000000000000008:  R_BPF_64_32\t.text
       2:\t18 01 00 00 00 00 00 00 00 00 00 00 00 00 00 00\tr1 = 0x0 ll
\t\t0000000000000010:  R_BPF_64_64\tg
       4:\t85 00 00 00 05 00 00 00\tcall 0x5
       5:\t18 21 00 00 07 00 00 00 00 00 00 00 10 00 00 00\tld_pseudo\tr1, 0x2, 0x7
       7:\t05 10 01 00 00 00 00 00\tgoto +0x1 <prog+0x48>
       8:\t95 00 00 00 00 00 00 00\texit
";

#[test]
fn objdump_output_assembles() {
    let slots = assemble(OBJDUMP).unwrap();
    let want: Vec<u64> = vec![
        0x10bc,
        0x0000_0003_0000_0024,
        0x95,
        0x0000_0001_0002_07c6,
        0xffff_ffff_0000_1085, // the bytes say BPF-to-BPF call, the text only `call -0x1`
        0x0118,
        0,
        0x0000_0005_0000_0085,
        0x0000_0007_0000_2118, // the second immediate only the bytes show
        0x0000_0010_0000_0000,
        0x0001_1005, // a static branch, printed by LLVM as `goto`
        0x95,
    ];
    assert_eq!(slots.iter().map(|s| s.to_u64()).collect::<Vec<_>>(), want);
    // Symbol headers are labels.
    let with_label = format!("{OBJDUMP}\tcall prog\n\tgoto sub\n");
    let prog = parse(&with_label).unwrap();
    assert_eq!(prog[prog.len() - 2], Insn::Call(bpfkit_isa::CallTarget::Local(-10)));
    assert_eq!(prog[prog.len() - 1], Insn::Ja { long: false, off: -14 });
    // The text wins over bytes that disagree with it in a way LLVM's printing cannot explain.
    let edited = "   0:\tb7 00 00 00 01 00 00 00\tr0 = 0x2";
    assert_eq!(assemble(edited).unwrap()[0].imm, 2);
}

#[test]
fn objdump_without_addresses() {
    let text = "<prog>:\n\tb7 00 00 00 01 00 00 00\tr0 = 0x1\n\t85 10 00 00 ff ff ff ff\tcall -0x1\n<f>:\n\tr0 = 0x2\n";
    let slots = assemble(text).unwrap();
    assert_eq!(
        slots.iter().map(|s| s.to_u64()).collect::<Vec<_>>(),
        vec![0x1_0000_00b7, 0xffff_ffff_0000_1085, 0x2_0000_00b7]
    );
}

#[test]
fn syntaxes_mix() {
    let text = "\
        start: mov %r0, 1   # uBPF
        r1 = 0x1122334455667788 ll ; LLVM
        if r0 == r1 goto out
        lddw %r2, -1
        jne %r0, 0, out // comment
        w0 = *(u8 *)(r1 + 0)
        ldxb %r0, [%r1]
        call local out
        out:
        exit
    ";
    let prog = parse(text).unwrap();
    assert_eq!(prog.len(), 9);
    assert!(matches!(prog[2], Insn::JmpCond { off: 6, .. }));
    assert!(matches!(prog[4], Insn::JmpCond { off: 3, .. }));
    assert_eq!(prog[5], prog[6]);
    assert_eq!(prog[7], Insn::Call(bpfkit_isa::CallTarget::Local(0)));
}

#[test]
fn ambiguous_symbol_header() {
    let text = "0000000000000000 <f>:\n   0:\t95 00 00 00 00 00 00 00\texit\n\
                0000000000000008 <f>:\n   1:\t95 00 00 00 00 00 00 00\texit\n\tgoto f\n";
    check(text, 5, 7, AsmErrorKind::AmbiguousLabel { label: s("f") });
}
