//! bpfkit against the Linux kernel: every (object, program, input) of `tests/bpf/programs.txt`
//! runs through `bpfkit run`, and its return values, final map contents, output packets and
//! contexts must equal what the kernel produced for the same object and capture
//! (`tests/expected/`, written by `tests/bpf/gen-expected.sh` with the kernel runner, whose own
//! tests compare the live kernel with those files where `bpf()` is available).

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// Entries in a comparable form: sorted by key, except queues/stacks/ring buffers (key "")
/// whose order is the order of the records.
fn normalize(v: &Value) -> Vec<(String, Vec<String>)> {
    let mut maps: Vec<(String, Vec<String>)> = v
        .as_object()
        .expect("maps JSON is an object")
        .iter()
        .map(|(name, entries)| {
            let mut e: Vec<String> = entries.as_array().unwrap().iter().map(|x| x.to_string()).collect();
            if !e.iter().any(|x| x.contains("\"key\":\"\"")) {
                e.sort();
            }
            (name.clone(), e)
        })
        .collect();
    maps.sort();
    maps
}

fn read_pcap_packets(path: &Path) -> Vec<Vec<u8>> {
    let f = std::fs::File::open(path).unwrap();
    let mut r = pcap_file::pcap::PcapReader::new(f).unwrap();
    let mut out = Vec::new();
    while let Some(p) = r.next_packet() {
        out.push(p.unwrap().data.into_owned());
    }
    out
}

#[test]
fn bpfkit_matches_the_kernel_on_every_test_program() {
    let root = root();
    let list = std::fs::read_to_string(root.join("tests/bpf/programs.txt")).unwrap();
    let tmp = std::env::temp_dir().join(format!("bpfkit-parity-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let mut failures = Vec::new();
    let mut checked = 0;
    // Every program in the interpreter, and in the JIT (vouched for: these are our programs).
    let jit = bpfkit_testing::jit_available();
    let backends: &[&[&str]] = if jit { &[&[], &["--backend", "jit", "--trust-unverified"]] } else { &[&[]] };
    for (backend, line) in backends
        .iter()
        .flat_map(|b| list.lines().filter(|l| !l.trim().is_empty() && !l.starts_with('#')).map(move |l| (*b, l)))
    {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (obj, prog, input, init, extra) = (f[0], f[1], f[2], f[3], f[4]);
        let base =
            format!("{}-{prog}", Path::new(obj).file_name().unwrap().to_str().unwrap().trim_end_matches(".bpf.o"));
        let expected = root.join("tests/expected").join(&base);
        let stem = if backend.is_empty() { base.clone() } else { format!("{base} (jit)") };
        let (retvals, maps, out_pcap, ctx_out) = (
            tmp.join(format!("{stem}.retvals")),
            tmp.join(format!("{stem}.maps.json")),
            tmp.join(format!("{stem}.out.pcap")),
            tmp.join(format!("{stem}.ctx-out")),
        );
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_bpfkit"));
        cmd.current_dir(&root)
            .args(["run", obj, "--prog", prog, "--dump-maps"])
            .arg(&maps)
            .arg("--trace")
            .arg(tmp.join("trace"))
            .args(backend);
        if input.ends_with(".pcap") {
            cmd.args(["--pcap", input, "--retvals"]).arg(&retvals);
            if extra.contains("out-pcap") {
                cmd.arg("--out-pcap").arg(&out_pcap);
            }
        } else {
            cmd.args(["--ctx-file", input, "--ctx-out"]).arg(&ctx_out);
        }
        if init != "-" {
            cmd.args(["--map-init", init]);
        }
        let out = cmd.output().unwrap();
        if !out.status.success() {
            failures.push(format!("{stem}: bpfkit failed: {}", String::from_utf8_lossy(&out.stderr)));
            continue;
        }
        let got_retvals = if input.ends_with(".pcap") {
            std::fs::read_to_string(&retvals).unwrap()
        } else {
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        let want_retvals = std::fs::read_to_string(expected.with_extension("retvals")).unwrap();
        let (g, w): (Vec<&str>, Vec<&str>) =
            (got_retvals.split_whitespace().collect(), want_retvals.split_whitespace().collect());
        if g != w {
            let first = g.iter().zip(&w).position(|(a, b)| a != b);
            failures.push(format!(
                "{stem}: return values differ ({} vs {} values, first difference at input {first:?})",
                g.len(),
                w.len()
            ));
        }
        let got: Value = serde_json::from_str(&std::fs::read_to_string(&maps).unwrap()).unwrap();
        let want: Value =
            serde_json::from_str(&std::fs::read_to_string(expected.with_extension("maps.json")).unwrap()).unwrap();
        let (gn, wn) = (normalize(&got), normalize(&want));
        for (name, we) in &wn {
            match gn.iter().find(|(n, _)| n == name) {
                Some((_, ge)) if ge == we => {}
                Some(_) => failures.push(format!("{stem}: map `{name}` differs")),
                None => failures.push(format!("{stem}: map `{name}` missing")),
            }
        }
        if extra.contains("ctx-out") && !input.ends_with(".pcap") {
            let (g, w) = (
                std::fs::read_to_string(&ctx_out).unwrap(),
                std::fs::read_to_string(expected.with_extension("ctx-out")).unwrap(),
            );
            if g.split_whitespace().collect::<Vec<_>>() != w.split_whitespace().collect::<Vec<_>>() {
                failures.push(format!("{stem}: contexts after the runs differ"));
            }
        }
        if extra.contains("out-pcap") && expected.with_extension("out.pcap").exists() {
            let (g, w) = (read_pcap_packets(&out_pcap), read_pcap_packets(&expected.with_extension("out.pcap")));
            if g != w {
                let first = g.iter().zip(&w).position(|(a, b)| a != b);
                failures.push(format!(
                    "{stem}: output packets differ ({} vs {} packets, first difference at {first:?})",
                    g.len(),
                    w.len()
                ));
            }
        }
        checked += 1;
    }
    eprintln!("bpfkit vs kernel: {checked} programs compared, {} differences", failures.len());
    assert!(checked >= 12 * backends.len(), "programs.txt lists {checked} programs");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
