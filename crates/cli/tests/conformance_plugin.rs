//! Drives `bpfkit conformance-plugin` the way the bpf_conformance runner does: the memory as
//! one argument of hex bytes, plugin options as a second (here empty) argument, the program as
//! hex bytes on standard input, r0 in hex on standard output.

use bpfkit_isa::slots_to_bytes;
use bpfkit_testing::conformance::{compare, corpus_dir, load_corpus, program_of};
use std::io::Write;
use std::process::{Command, Stdio};

/// The runner's encoding: two hex digits per byte, each followed by two spaces.
fn runner_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}  ")).collect()
}

fn plugin(memory: &str, program: &str) -> (bool, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_bpfkit"))
        .args(["conformance-plugin", memory, ""])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bpfkit starts");
    child.stdin.take().expect("stdin").write_all(format!("{program}\n").as_bytes()).expect("write program");
    let out = child.wait_with_output().expect("bpfkit finishes");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[test]
fn conformance_corpus_through_the_plugin_protocol() {
    let cases = load_corpus(&corpus_dir()).expect("corpus parses");
    assert_eq!(cases.len(), 313);
    let mut failures = Vec::new();
    for case in &cases {
        let program = program_of(case).expect("corpus program assembles");
        let (ok, stdout) = plugin(&runner_hex(&case.mem), &runner_hex(&slots_to_bytes(&program)));
        let outcome = if ok {
            u64::from_str_radix(stdout.trim_start_matches("0x"), 16).map_err(|_| format!("bad output `{stdout}`"))
        } else {
            Err(stdout)
        };
        if let Err(e) = compare(case, outcome) {
            failures.push(format!("{}: {e}", case.name));
        }
    }
    eprintln!("conformance (plugin, interpreter): {}/{} passed", cases.len() - failures.len(), cases.len());
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn plugin_reports_errors_on_stdout_with_a_failing_status() {
    // An out-of-bounds read: r1 points at 4 bytes of memory, the program reads 8.
    let (ok, stdout) = plugin("00 01 02 03", "79 10 00 00 00 00 00 00 95 00 00 00 00 00 00 00");
    assert!(!ok);
    assert!(stdout.starts_with("pc 0: invalid read of size 8 at 0x"), "{stdout}");
    // An invalid encoding names the instruction and the field.
    let (ok, stdout) = plugin("", "95 00 01 00 00 00 00 00");
    assert!(!ok);
    assert_eq!(stdout, "insn 0: reserved field off must be 0, found 0x1 (opcode 0x95)");
    // Garbage on stdin.
    let (ok, stdout) = plugin("", "zz");
    assert!(!ok);
    assert!(stdout.contains("not a hex byte"), "{stdout}");
}
