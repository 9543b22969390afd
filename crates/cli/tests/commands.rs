//! End-to-end checks of the `bpfkit` commands.

use std::path::Path;
use std::process::{Command, Output};

fn bpfkit(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bpfkit")).args(args).output().expect("bpfkit starts")
}

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn readme_example_drops_the_dns_query() {
    let prog = root().join("examples/drop-dns.s");
    let pkt = root().join("examples/dns-query.bin");
    let o = bpfkit(&["run", "--asm", prog.to_str().unwrap(), "--mem-file", pkt.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "0x1\n");
    // The same program passes a packet that is not UDP/53 (change the port to 54).
    let mut other = std::fs::read(&pkt).unwrap();
    other[37] = 54;
    let hex: String = other.iter().map(|b| format!("{b:02x}")).collect();
    let o = bpfkit(&["run", "--asm", prog.to_str().unwrap(), "--mem", &hex]);
    assert_eq!(stdout(&o), "0x2\n", "{}", stderr(&o));
}

#[test]
fn asm_errors_name_file_line_and_column() {
    let dir = std::env::temp_dir().join(format!("bpfkit-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("bad.s");
    std::fs::write(&f, "r0 = 0x1\n  frob r1\nexit\n").unwrap();
    let o = bpfkit(&["asm", f.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains(&format!("{}:2:3:", f.display())), "{}", stderr(&o));
}

#[test]
fn asm_then_disasm_round_trips() {
    let dir = std::env::temp_dir().join(format!("bpfkit-cli-rt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bin = dir.join("drop-dns.bin");
    let src = root().join("examples/drop-dns.s");
    let o = bpfkit(&["asm", src.to_str().unwrap(), "-o", bin.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::metadata(&bin).unwrap().len(), 25 * 8);
    let listing = bpfkit(&["disasm", bin.to_str().unwrap()]);
    assert!(listing.status.success());
    let relisted = dir.join("relisted.s");
    std::fs::write(&relisted, listing.stdout).unwrap();
    let bin2 = dir.join("again.bin");
    let o = bpfkit(&["asm", relisted.to_str().unwrap(), "-o", bin2.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read(&bin).unwrap(), std::fs::read(&bin2).unwrap());
}

#[test]
fn disasm_reads_a_clang_built_object() {
    let Ok(status) = Command::new("clang-22").arg("--version").output() else {
        eprintln!("SKIPPED: clang-22 not found; install clang-22 to run this test");
        return;
    };
    assert!(status.status.success());
    let dir = std::env::temp_dir().join(format!("bpfkit-cli-elf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let c = dir.join("prog.c");
    std::fs::write(
        &c,
        "static __attribute__((noinline)) int triple(int x) { return x * 3; }\n\
         __attribute__((section(\"xdp\"))) int prog(int *p) { return triple(*p) + 1; }\n",
    )
    .unwrap();
    let obj = dir.join("prog.o");
    let cc = Command::new("clang-22")
        .args(["-O2", "-g", "-target", "bpf", "-mcpu=v4", "-c"])
        .arg(&c)
        .arg("-o")
        .arg(&obj)
        .output()
        .unwrap();
    assert!(cc.status.success(), "{}", String::from_utf8_lossy(&cc.stderr));
    let o = bpfkit(&["disasm", obj.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("Disassembly of section xdp:"), "{text}");
    assert!(text.contains("<prog>:"), "{text}");
    assert!(text.contains("<triple>:"), "{text}");
    assert!(text.contains("85 10 00 00 ff ff ff ff\tcall pc-0x1"), "the BPF-to-BPF call is shown as such:\n{text}");
}

#[test]
fn readme_main_command_runs_the_bundled_example() {
    // The README's first command: the bundled XDP object over the bundled capture.
    let o = bpfkit(&[
        "run",
        root().join("examples/xdp_count.bpf.o").to_str().unwrap(),
        "--pcap",
        root().join("examples/sample.pcap").to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["packets"], 1000);
    assert_eq!(v["retvals"]["XDP_DROP"], 80);
    assert_eq!(v["retvals"]["XDP_PASS"], 913);
    assert_eq!(v["retvals"]["EINVAL"], 7);
}

#[test]
fn prog_list_names_types_and_what_is_unsupported() {
    let o = bpfkit(&["prog", "list", root().join("tests/bpf/skb.bpf.o").to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("sock_filter") && text.contains("socket_filter"), "{text}");
    assert!(text.contains("tc_classify") && text.contains("sched_cls"), "{text}");
}

#[test]
fn asm_with_a_jump_table_runs_verified_in_both_backends() {
    let prog = root().join("examples/jump-table.s");
    for (sel, want) in [("00", "0x1e\n"), ("01", "0xa\n"), ("02", "0x14\n"), ("07", "0x0\n")] {
        let mem = format!("{sel} 00 00 00 00 00 00 00");
        for backend in ["interp", "jit"] {
            let o = bpfkit(&["run", "--asm", prog.to_str().unwrap(), "--mem", &mem, "--backend", backend]);
            assert!(o.status.success(), "{backend}: {}", stderr(&o));
            assert_eq!(stdout(&o), want, "selector {sel} in {backend}");
        }
    }
    // Without the bounds check the verifier refuses it, in the kernel's words.
    let text = std::fs::read_to_string(&prog).unwrap().replace("if r1 > 2 goto out\n", "");
    let bad = std::env::temp_dir().join(format!("bpfkit-jt-{}.s", std::process::id()));
    std::fs::write(&bad, text).unwrap();
    let o = bpfkit(&["run", "--asm", bad.to_str().unwrap(), "--mem", "00 00 00 00 00 00 00 00"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("unbounded memory access"), "{}", stderr(&o));
    let _ = std::fs::remove_file(bad);
}
