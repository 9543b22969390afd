//! Differential check against `bpftool btf dump file x.o`, when bpftool is installed (skipped with
//! a message otherwise).
//!
//! Lines are compared one by one: the `[id] KIND 'name'` prefix of type lines must match exactly,
//! and every `key=value` token both sides print must agree, so that small formatting differences
//! between bpftool versions do not matter but every decoded number does.

mod common;

use bpfkit_btf::Btf;
use std::io::Write;
use std::process::Command;

fn tokens(line: &str) -> Vec<(String, String)> {
    line.split_whitespace()
        .filter_map(|t| t.trim_end_matches(',').split_once('='))
        // Newer bpftool versions print ENUM64 values with a C suffix (`val=-1LL`, `val=7ULL`).
        .map(|(k, v)| (k.to_owned(), v.trim_end_matches("ULL").trim_end_matches("LL").to_owned()))
        .collect()
}

#[test]
fn matches_bpftool() {
    if Command::new("bpftool").arg("version").output().is_err() {
        // Written to the real stderr, past the test harness's capture, so that the skip is visible.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: bpftool not found in PATH; the differential check against `bpftool btf dump file` did not run"
        );
        return;
    }
    for o in ["kinds.o", "maps.o", "core.o"] {
        let path = common::data_dir().join(o);
        let out = Command::new("bpftool").args(["btf", "dump", "file"]).arg(&path).output().unwrap();
        assert!(out.status.success(), "bpftool failed on {o}: {}", String::from_utf8_lossy(&out.stderr));
        let theirs = String::from_utf8(out.stdout).unwrap();
        let (btf, _) = common::sections(o);
        let ours = common::bpftool_dump(&Btf::parse(&btf).unwrap());
        let (theirs, ours): (Vec<&str>, Vec<&str>) = (theirs.lines().collect(), ours.lines().collect());
        assert_eq!(
            theirs.len(),
            ours.len(),
            "{o}: line count differs\nbpftool:\n{}\nours:\n{}",
            theirs.join("\n"),
            ours.join("\n")
        );
        for (t, u) in theirs.iter().zip(&ours) {
            if t.starts_with('[') {
                let head = |l: &str| l.split_whitespace().take(3).collect::<Vec<_>>().join(" ");
                assert_eq!(head(t), head(u), "{o}");
            } else {
                assert_eq!(t.split_whitespace().next(), u.split_whitespace().next(), "{o}: {t} / {u}");
            }
            let mine = tokens(u);
            for (k, v) in tokens(t) {
                if let Some((_, mv)) = mine.iter().find(|(mk, _)| *mk == k) {
                    assert_eq!(&v, mv, "{o}: {k} in\n  bpftool: {t}\n  ours:    {u}");
                }
            }
        }
        let _ = writeln!(std::io::stderr(), "{o}: {} lines agree with bpftool", ours.len());
    }
}
