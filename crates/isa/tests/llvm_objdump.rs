//! Differential test against LLVM: `llvm-mc-22` assembles a file covering every instruction
//! form LLVM knows, and
//! 1. `listing()` of its `.text` must equal `llvm-objdump-22 -d` (annotations removed),
//! 2. `assemble()` of the objdump output (with `-d`, `-dr`, `-d -S`, `-dl`) must give back the
//!    `.text` bytes,
//! 3. `assemble()` of the source must give the same bytes as `llvm-mc-22`.
//!
//! Skipped, with a message on stderr, when the LLVM 22 tools are not installed.

use bpfkit_isa::{RawInsn, assemble, listing, slots_from_bytes};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

const MC: &str = "llvm-mc-22";
const OBJDUMP: &str = "llvm-objdump-22";
const OBJCOPY: &str = "llvm-objcopy-22";

fn have_tools() -> bool {
    for tool in [MC, OBJDUMP, OBJCOPY] {
        if !Command::new(tool).arg("--version").output().is_ok_and(|o| o.status.success()) {
            eprintln!("SKIPPED: {tool} not found");
            return false;
        }
    }
    true
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("bpfkit-isa-llvm-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create scratch directory");
        Scratch(dir)
    }

    fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Assembles `source` with llvm-mc (`-g` adds line info for `-S`/`-l`); returns the object
/// path and the `.text` slots.
fn llvm_assemble(dir: &Scratch, source: &str, debug: bool) -> (PathBuf, Vec<RawInsn>) {
    let src = dir.path("prog.s");
    let obj = dir.path("prog.o");
    let bin = dir.path("prog.bin");
    std::fs::write(&src, source).expect("write source");
    let mut mc = Command::new(MC);
    mc.args(["-triple", "bpfel", "-mcpu=v4", "-filetype=obj"]);
    if debug {
        mc.arg("-g");
    }
    run(mc.arg(&src).arg("-o").arg(&obj));
    run(Command::new(OBJCOPY).args(["-O", "binary", "--only-section=.text"]).arg(&obj).arg(&bin));
    let bytes = std::fs::read(&bin).expect("read .text");
    (obj, slots_from_bytes(&bytes).expect("whole slots"))
}

fn objdump(obj: &Path, flags: &[&str]) -> String {
    run(Command::new(OBJDUMP).args(flags).arg(obj))
}

/// Removes objdump's ` <sym+0x8>` annotation from the end of a line.
fn strip_annotation(line: &str) -> &str {
    match line.rfind(" <") {
        Some(i) if line.ends_with('>') => &line[..i],
        _ => line,
    }
}

/// Every instruction form LLVM 22 knows, in its syntax, with decimal and hex numbers.
fn all_forms() -> String {
    let mut s = String::from("prog:\n");
    let mut add = |line: String| {
        s.push('\t');
        s.push_str(&line);
        s.push('\n');
    };
    let alu_ops = ["+=", "-=", "*=", "/=", "s/=", "|=", "&=", "<<=", ">>=", "%=", "s%=", "^=", "s>>=", "="];
    for l in ['r', 'w'] {
        for op in alu_ops {
            add(format!("{l}1 {op} {l}2"));
            add(format!("{l}3 {op} 7"));
            add(format!("{l}4 {op} -5"));
            add(format!("{l}10 {op} 0x7fffffff"));
            add(format!("{l}0 {op} -2147483648"));
        }
        add(format!("{l}5 = -{l}5"));
        add(format!("{l}6 = (s8){l}7"));
        add(format!("{l}6 = (s16){l}7"));
    }
    add("r8 = (s32)r9".into());
    for kind in ["le", "be", "bswap"] {
        for bits in [16, 32, 64] {
            add(format!("r{} = {kind}{bits} r{}", bits / 16, bits / 16));
        }
    }
    for v in ["0x1122334455667788", "-1", "0", "18446744073709551615", "-9223372036854775808", "4294967296"] {
        add(format!("r1 = {v} ll"));
    }
    for src in 1..=6 {
        add(format!("ld_pseudo r{src}, {src}, {}", src * 7));
    }
    for (ty, l) in [("u8", 'w'), ("u16", 'w'), ("u32", 'w'), ("u64", 'r'), ("s8", 'r'), ("s16", 'r'), ("s32", 'r')] {
        add(format!("{l}1 = *({ty} *)(r2 + 8)"));
        add(format!("{l}3 = *({ty} *)(r10 - 0x10)"));
        add(format!("{l}4 = *({ty} *)(r5 + 32767)"));
        add(format!("{l}6 = *({ty} *)(r7 - 32768)"));
    }
    add("r0 = *(u8 *)(r1 + 0)".into());
    for (ty, l) in [("u8", 'w'), ("u16", 'w'), ("u32", 'w'), ("u64", 'r')] {
        add(format!("*({ty} *)(r10 - 8) = {l}1"));
        add(format!("*({ty} *)(r1 + 0x7fff) = 5"));
        add(format!("*({ty} *)(r2 - 4) = -1"));
        add(format!("*({ty} *)(r3 + 0) = 2147483647"));
        add(format!("{l}0 = load_acquire(({ty} *)(r1 + 16))"));
        add(format!("store_release(({ty} *)(r1 - 16), {l}2)"));
    }
    add("*(u32 *)(r1 + 0) = r2".into());
    for (ty, l) in [("u32", 'w'), ("u64", 'r')] {
        for (op, name) in [("+=", "add"), ("|=", "or"), ("&=", "and"), ("^=", "xor")] {
            add(format!("lock *({ty} *)(r1 + 8) {op} {l}2"));
            add(format!("{l}3 = atomic_fetch_{name}(({ty} *)(r4 - 8), {l}3)"));
        }
    }
    add("w2 = xchg32_32(r1 + 4, w2)".into());
    add("r2 = xchg_64(r1 - 4, r2)".into());
    add("w0 = cmpxchg32_32(r1 + 0, w0, w2)".into());
    add("r0 = cmpxchg_64(r3 + 8, r0, r4)".into());
    add("goto +1".into());
    add("goto -2".into());
    add("goto +0x7fff".into());
    add("goto -32768".into());
    add("goto L1".into());
    add("gotol +2".into());
    add("gotol -0x3".into());
    add("gotol L1".into());
    let conds = ["==", "!=", ">", ">=", "<", "<=", "&", "s>", "s>=", "s<", "s<="];
    for l in ['r', 'w'] {
        for c in conds {
            add(format!("if {l}1 {c} {l}2 goto +1"));
            add(format!("if {l}3 {c} 5 goto -2"));
            add(format!("if {l}4 {c} -7 goto L1"));
            add(format!("if {l}5 {c} 0xffffffff goto +0"));
        }
    }
    s.push_str("L1:\n");
    let mut add = |line: &str| {
        s.push('\t');
        s.push_str(line);
        s.push('\n');
    };
    add("call 1");
    add("call 0x7fffffff");
    add("call -1");
    add("callx r3");
    add("may_goto +2");
    add("may_goto L1");
    add("gotox r4");
    add("r0 = *(u8 *)skb[4]");
    add("r0 = *(u16 *)skb[0x100]");
    add("r0 = *(u32 *)skb[-4]");
    add("r0 = *(u8 *)skb[r1]");
    add("r0 = *(u16 *)skb[r2]");
    add("r0 = *(u32 *)skb[r3]");
    add("exit");
    s
}

/// BPF-to-BPF calls, whose objdump text (`call -0x1`) only the bytes disambiguate.
const CALLS: &str = "\
prog:
\tr1 = 1
\tcall sub
\tif r0 == 0 goto out
\tcall 0x1
\tcall sub2
out:
\texit
sub:
\tr0 = 2
\tcall sub2
\texit
sub2:
\tcall sub
\tr0 = 3
\texit
";

/// Checks 1–3 on one source. `lossless_text`: the source has no BPF-to-BPF calls, so
/// objdump's text says everything and must equal `listing()`.
fn differential(name: &str, source: &str, lossless_text: bool) {
    let dir = Scratch::new(name);
    let (obj, slots) = llvm_assemble(&dir, source, true);
    assert!(!slots.is_empty());

    // 3. Our assembler on the source.
    let ours = assemble(source).unwrap_or_else(|e| panic!("{name}: assembling the source: {e}"));
    for (pc, (a, b)) in ours.iter().zip(&slots).enumerate() {
        assert_eq!(a, b, "{name}: slot {pc} differs from llvm-mc");
    }
    assert_eq!(ours.len(), slots.len(), "{name}: slot count differs from llvm-mc");

    // 1. listing() against objdump, line by line.
    let dump = objdump(&obj, &["-d"]);
    if lossless_text {
        let theirs: Vec<&str> = dump
            .lines()
            .filter(|l| l.trim_start().starts_with(|c: char| c.is_ascii_digit()) && l.contains(":\t"))
            .map(strip_annotation)
            .collect();
        let mine = listing(&slots).expect("llvm-mc output decodes");
        let mine: Vec<&str> = mine.lines().collect();
        for (a, b) in mine.iter().zip(&theirs) {
            assert_eq!(a, b, "{name}: listing differs from llvm-objdump");
        }
        assert_eq!(mine.len(), theirs.len(), "{name}: line count differs from llvm-objdump");
    }

    // 2. Assembling objdump's output gives back the bytes, whatever the flags.
    let mut variants: Vec<&[&str]> =
        vec![&["-d"], &["-dr"], &["-d", "-S"], &["-dl"], &["-d", "-r", "-S", "-l"], &["-d", "--no-leading-addr"]];
    if lossless_text {
        // Without the bytes only the text is left, which is enough when LLVM's text is lossless.
        variants.push(&["-d", "--no-show-raw-insn"]);
        variants.push(&["-d", "--no-show-raw-insn", "--no-leading-addr"]);
    }
    for flags in variants {
        let dump = objdump(&obj, flags);
        let back = assemble(&dump)
            .unwrap_or_else(|e| panic!("{name}: assembling `llvm-objdump {flags:?}` output: {e}\n{dump}"));
        for (pc, (a, b)) in back.iter().zip(&slots).enumerate() {
            assert_eq!(a, b, "{name}: slot {pc} of `llvm-objdump {flags:?}` output differs");
        }
        assert_eq!(back.len(), slots.len(), "{name}: slot count of `llvm-objdump {flags:?}` output");
    }
}

#[test]
fn every_llvm_form() {
    if !have_tools() {
        return;
    }
    differential("forms", &all_forms(), true);
}

#[test]
fn bpf_to_bpf_calls() {
    if !have_tools() {
        return;
    }
    differential("calls", CALLS, false);
}

/// Several sections, as clang emits one per program: objdump's output still assembles to
/// the concatenation of the sections.
#[test]
fn several_sections() {
    if !have_tools() {
        return;
    }
    let dir = Scratch::new("sections");
    let mut source = String::new();
    let mut want = Vec::new();
    for (i, sec) in [".text", "xdp", "tc"].iter().enumerate() {
        let body = format!("\tr0 = {i}\n\tcall f{i}\n\texit\nf{i}:\n\tr0 += 1\n\texit\n");
        let (_, slots) = llvm_assemble(&dir, &format!("f{i}_entry:\n{body}"), false);
        want.extend(slots);
        writeln!(source, "\t.section {sec},\"ax\",@progbits\nprog{i}:\n{body}").unwrap();
    }
    let src = dir.path("multi.s");
    let obj = dir.path("multi.o");
    std::fs::write(&src, &source).unwrap();
    run(Command::new(MC).args(["-triple", "bpfel", "-mcpu=v4", "-filetype=obj"]).arg(&src).arg("-o").arg(&obj));
    let dump = objdump(&obj, &["-dr"]);
    assert_eq!(assemble(&dump).unwrap_or_else(|e| panic!("{e}\n{dump}")), want);
}

/// A clang-compiled object, with BPF-to-BPF calls, calls to an external function and
/// relocated 64-bit loads, read back from `llvm-objdump -dr -S` (skipped without clang-22).
#[test]
fn clang_object() {
    if !have_tools() {
        return;
    }
    if !Command::new("clang-22").arg("--version").output().is_ok_and(|o| o.status.success()) {
        eprintln!("SKIPPED: clang-22 not found");
        return;
    }
    let dir = Scratch::new("clang");
    let c = dir.path("prog.c");
    let obj = dir.path("prog.o");
    let bin = dir.path("prog.bin");
    std::fs::write(
        &c,
        "static __attribute__((noinline)) int sub(int a) { return a * 3 + 1; }\n\
         extern int ext(int);\n\
         int g;\n\
         int prog(int *p) {\n\
         \x20 int s = 0;\n\
         \x20 for (int i = 0; i < *p; i++) s += sub(i);\n\
         \x20 g = s;\n\
         \x20 return s + ext(s);\n\
         }\n",
    )
    .unwrap();
    run(Command::new("clang-22").args(["-target", "bpf", "-mcpu=v4", "-O2", "-g", "-c"]).arg(&c).arg("-o").arg(&obj));
    run(Command::new(OBJCOPY).args(["-O", "binary", "--only-section=.text"]).arg(&obj).arg(&bin));
    let want = slots_from_bytes(&std::fs::read(&bin).unwrap()).unwrap();
    for flags in [&["-dr", "-S"][..], &["-d", "-l"]] {
        let dump = objdump(&obj, flags);
        assert_eq!(assemble(&dump).unwrap_or_else(|e| panic!("{e}\n{dump}")), want, "{flags:?}:\n{dump}");
    }
}
