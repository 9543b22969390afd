//! bpfkit's data-driven test format: the expectation sits under the input, as text.
//!
//! A `.bpft` file holds cases. Each starts with a header `=== <kind>: <title>`, then the input
//! lines, then `--- expect` and the expected output, up to the next header. Lines before the
//! first header, and `#` lines between cases, are comments. Directives are input lines of the
//! form `; key: value` (the assembler reads `;` as a comment):
//!
//! | kind | input | output |
//! | --- | --- | --- |
//! | `asm` | assembly (either dialect) | the llvm-objdump-style listing; also checks that the listing assembles back to the same bytes |
//! | `decode` | hex bytes | the listing, or `error: ...` |
//! | `run` | assembly; `; mem: <hex bytes>` gives the memory (`r1`, `r2` = its length) and `; branch-limit: N` bounds loops | `r0 = 0x...`, or `error: ...` |
//!
//! Host addresses in run errors vary from run to run, so the `error:` lines of `run` cases
//! replace every hex number of 9 or more digits with `<addr>`.
//!
//! `BPFKIT_BLESS=1 cargo test -p bpfkit-testing --test filetests` rewrites every expectation with
//! the actual output; review the diff before committing.

use bpfkit_interp::{Backend, Helpers, Program, RunErrorKind, Vm};
use bpfkit_isa::{RawInsn, assemble, listing, slots_from_bytes};
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

/// One case of a `.bpft` file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileCase {
    pub kind: String,
    pub title: String,
    /// 1-based line of the header.
    pub line: usize,
    pub input: Vec<String>,
    pub expect: Vec<String>,
}

/// A parsed `.bpft` file: the cases, and the comment lines before the first one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileTest {
    pub preamble: Vec<String>,
    pub cases: Vec<FileCase>,
}

/// Parses a `.bpft` file.
pub fn parse(text: &str) -> Result<FileTest, String> {
    let mut ft = FileTest::default();
    let mut in_expect = false;
    for (i, line) in text.lines().enumerate() {
        if let Some(header) = line.strip_prefix("=== ") {
            let (kind, title) = header.split_once(':').ok_or(format!("line {}: header needs `kind: title`", i + 1))?;
            ft.cases.push(FileCase {
                kind: kind.trim().to_string(),
                title: title.trim().to_string(),
                line: i + 1,
                input: Vec::new(),
                expect: Vec::new(),
            });
            in_expect = false;
            continue;
        }
        match ft.cases.last_mut() {
            None => ft.preamble.push(line.to_string()),
            Some(_) if line.trim_end() == "--- expect" => in_expect = true,
            Some(c) if in_expect => c.expect.push(line.to_string()),
            Some(c) => c.input.push(line.to_string()),
        }
    }
    for c in &mut ft.cases {
        while c.expect.last().is_some_and(|l| l.trim().is_empty()) {
            c.expect.pop();
        }
    }
    Ok(ft)
}

/// Prints a file back; `parse(render(f)) == f` up to trailing blank lines of expectations.
pub fn render(ft: &FileTest) -> String {
    let mut out = String::new();
    for l in &ft.preamble {
        writeln!(out, "{l}").expect("String write");
    }
    for (i, c) in ft.cases.iter().enumerate() {
        writeln!(out, "=== {}: {}", c.kind, c.title).expect("String write");
        for l in &c.input {
            writeln!(out, "{l}").expect("String write");
        }
        writeln!(out, "--- expect").expect("String write");
        for l in &c.expect {
            writeln!(out, "{l}").expect("String write");
        }
        if i + 1 < ft.cases.len() {
            writeln!(out).expect("String write");
        }
    }
    out
}

fn directive<'a>(input: &'a [String], key: &str) -> Option<&'a str> {
    input.iter().find_map(|l| l.trim().strip_prefix(';')?.trim().strip_prefix(key)?.strip_prefix(':').map(str::trim))
}

/// Replaces host addresses (hex numbers of 9+ digits) with `<addr>`.
pub fn mask_addresses(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("0x") {
        out.push_str(&rest[..i]);
        let digits = rest[i + 2..].bytes().take_while(u8::is_ascii_hexdigit).count();
        if digits >= 9 {
            out.push_str("<addr>");
        } else {
            out.push_str(&rest[i..i + 2 + digits]);
        }
        rest = &rest[i + 2 + digits..];
    }
    out.push_str(rest);
    out
}

fn listing_or_error(slots: &[RawInsn]) -> String {
    match listing(slots) {
        Ok(text) => text,
        Err(e) => format!("error: {e}\n"),
    }
}

/// Runs one case and returns its actual output lines.
pub fn run_case(case: &FileCase) -> Result<Vec<String>, String> {
    let input = case.input.join("\n");
    let out = match case.kind.as_str() {
        "asm" => match assemble(&input) {
            Err(e) => format!("error: {e}\n"),
            Ok(slots) => {
                let text = listing_or_error(&slots);
                match assemble(&text) {
                    Ok(again) if again == slots => text,
                    Ok(again) => return Err(format!("the listing assembles to {again:x?}, not {slots:x?}:\n{text}")),
                    Err(e) => return Err(format!("the listing does not assemble back ({e}):\n{text}")),
                }
            }
        },
        "decode" => {
            let hex =
                case.input.iter().filter(|l| !l.trim_start().starts_with(';')).cloned().collect::<Vec<_>>().join(" ");
            let bytes = crate::conformance::parse_hex_bytes(&hex)?;
            match slots_from_bytes(&bytes) {
                Ok(slots) => listing_or_error(&slots),
                Err(e) => format!("error: {e}\n"),
            }
        }
        "run" => {
            let mut mem = match directive(&case.input, "mem") {
                Some(h) => crate::conformance::parse_hex_bytes(h)?,
                None => Vec::new(),
            };
            let limit = match directive(&case.input, "branch-limit") {
                Some(n) => Some(n.parse::<u64>().map_err(|_| format!("bad branch-limit `{n}`"))?),
                None => None,
            };
            let program = assemble(&input)
                .map_err(|e| e.to_string())
                .and_then(|slots| Program::load(&slots, &Helpers::conformance()).map_err(|e| e.to_string()))
                .map(Arc::new);
            let show = |r: Result<u64, String>| match r {
                Ok(r0) => format!("r0 = {r0:#x}\n"),
                Err(e) => format!("error: {e}\n"),
            };
            match program {
                Err(e) => format!("error: {e}\n"),
                Ok(p) => {
                    let original = mem.clone();
                    let mut vm = Vm::new(Arc::clone(&p));
                    vm.set_branch_limit(limit);
                    let interp = vm.run_mem(&mut mem);
                    // The interpreter is the oracle for the JIT. The JIT runs only trusted
                    // programs (it does no bounds checks), so it runs the cases the interpreter
                    // ran without a memory fault or a loop cut short: the same input takes the
                    // same path, so those accesses are all in bounds.
                    let jit_safe = match &interp {
                        Ok(_) => true,
                        Err(e) => matches!(
                            e.kind,
                            RunErrorKind::CallDepth { .. }
                                | RunErrorKind::Helper { .. }
                                | RunErrorKind::UnknownHelper { .. }
                        ),
                    };
                    let interp_out = show(interp.map_err(|e| e.to_string()));
                    if jit_safe && crate::jit_available() {
                        let mut jmem = original;
                        let native =
                            bpfkit_jit::jit(&p, &bpfkit_jit::JitOptions::default(), bpfkit_jit::Trust::CallerVouches)
                                .map_err(|e| e.to_string())
                                .and_then(|_| {
                                    let mut vm = Vm::new(Arc::clone(&p));
                                    vm.set_backend(Backend::Native);
                                    vm.run_mem(&mut jmem).map_err(|e| e.to_string())
                                });
                        let jit_out = show(native);
                        if jit_out != interp_out || jmem != mem {
                            return Err(format!(
                                "the JIT disagrees with the interpreter:\n  interp: {}  memory {:02x?}\n  jit:    {}  memory {:02x?}",
                                interp_out, mem, jit_out, jmem
                            ));
                        }
                    }
                    interp_out
                }
            }
        }
        other => return Err(format!("unknown case kind `{other}`")),
    };
    let masked =
        |l: &str| if case.kind == "run" && l.starts_with("error:") { mask_addresses(l) } else { l.to_string() };
    Ok(out.lines().map(masked).collect())
}

/// Runs every case of one file. With `bless`, rewrites the file with the actual outputs.
/// Returns one message per failing case.
pub fn run_file(path: &Path, bless: bool) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut ft = parse(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut failures = Vec::new();
    for case in &mut ft.cases {
        match run_case(case) {
            Err(e) => failures.push(format!("{}:{}: {}: {e}", path.display(), case.line, case.title)),
            Ok(actual) if actual == case.expect => {}
            Ok(actual) if bless => case.expect = actual,
            Ok(actual) => failures.push(format!(
                "{}:{}: {}\n--- expected\n{}\n--- actual\n{}",
                path.display(),
                case.line,
                case.title,
                case.expect.join("\n"),
                actual.join("\n")
            )),
        }
    }
    if bless {
        std::fs::write(path, render(&ft)).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(failures)
}
