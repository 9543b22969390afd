//! `bpfkit prog dump cfg` (text and `--dot`) and `bpfkit map dump` of jump tables, on the
//! checked-in objects.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bpfkit(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bpfkit")).args(args).output().expect("bpfkit starts")
}

fn object(name: &str) -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/bpf")).join(name)
}

fn ok(args: &[&str]) -> String {
    let o = bpfkit(args);
    assert!(o.status.success(), "bpfkit {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

/// The blocks of a text dump: (number, first, last) and the successor line of each.
fn blocks(text: &str) -> Vec<((usize, usize, usize), String)> {
    let mut out = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(l) = lines.next() {
        let Some(rest) = l.strip_prefix("block ") else { continue };
        let (n, range) = rest.split_once(' ').unwrap();
        let (a, b) = range.trim_matches(['[', ']']).split_once("..").unwrap();
        let succ = lines.by_ref().find(|l| l.starts_with("  -> ")).unwrap().to_string();
        out.push(((n.parse().unwrap(), a.parse().unwrap(), b.parse().unwrap()), succ));
    }
    out
}

#[test]
fn text_dump_of_a_switch() {
    let gotox = object("gotox.bpf.o");
    let text = ok(&["prog", "dump", "cfg", gotox.to_str().unwrap(), "--prog", "one_switch"]);
    assert!(text.starts_with("; one_switch (syscall): 52 slots, 1 subprograms, "), "{text}");
    assert!(text.contains("\nsubprog 0 one_switch [0..51]\n"), "{text}");
    let blocks = blocks(&text);
    // Blocks tile the program, in order, numbered from 0.
    assert_eq!(blocks.first().map(|b| b.0.1), Some(0));
    for (i, w) in blocks.windows(2).enumerate() {
        assert_eq!(w[0].0.0, i);
        assert!(w[0].0.2 < w[1].0.1, "{text}");
    }
    // The switch: a bounds check (fall-through and jump), a gotox with one indirect edge per
    // case (cases 0 to 5, from the jump table), and cases that end in exit or jump to the join.
    let gotox_block = blocks.iter().find(|b| b.1.contains("(indirect)")).expect("a gotox block");
    assert_eq!(gotox_block.1.matches("(indirect)").count(), 6, "{}", gotox_block.1);
    assert!(text.contains("gotox r"), "{text}");
    assert!(blocks.iter().any(|b| b.1.contains("(fall-through)") && b.1.contains("(jump)")), "{text}");
    assert!(blocks.iter().any(|b| b.1 == "  -> exit"), "{text}");
    assert!(!text.contains(", back edge)"), "a switch has no loop:\n{text}");
    // The indirect edges go to the blocks starting at the jump table's entries.
    let tables = ok(&["map", "dump", gotox.to_str().unwrap(), ".jumptables", "--prog", "one_switch"]);
    let v: serde_json::Value = serde_json::from_str(&tables).unwrap();
    let entries: BTreeSet<u64> =
        v[".jumptables"][0]["entries"].as_array().unwrap().iter().map(|e| e["xlated_off"].as_u64().unwrap()).collect();
    let targets: BTreeSet<u64> = gotox_block
        .1
        .trim_start_matches("  -> ")
        .split(", ")
        .map(|s| {
            let n: usize = s.trim_start_matches("block ").split(' ').next().unwrap().parse().unwrap();
            blocks[n].0.1 as u64
        })
        .collect();
    assert_eq!(targets, entries);
}

#[test]
fn back_edges_and_calls() {
    // Both switches of `two_switches` are in one subprogram, so (as in the kernel) each
    // gotox may go to every case of both: the graph has cycles, shown as back edges.
    let gotox = object("gotox.bpf.o");
    let text = ok(&["prog", "dump", "cfg", gotox.to_str().unwrap(), "--prog", "two_switches"]);
    assert!(text.contains(", back edge)"), "{text}");
    assert!(text.lines().next().unwrap().ends_with("2 jump tables, 5 back edges"), "{text}");
    // A subprogram called from the program.
    let text = ok(&["prog", "dump", "cfg", gotox.to_str().unwrap(), "--prog", "static_global_1"]);
    assert!(text.contains("1 jump tables"), "{text}");
    let sub = text.lines().find(|l| l.starts_with("subprog 1 ")).expect("a second subprogram");
    assert!(text.contains("  call at insn ") && text.contains(&format!("-> {sub}")), "{text}");
    // A callback reference (bpf_loop's callback, an lddw of BPF_PSEUDO_FUNC).
    let text = ok(&["prog", "dump", "cfg", object("syscall.bpf.o").to_str().unwrap()]);
    assert!(text.contains("  callback reference at insn "), "{text}");
}

#[test]
fn dot_output() {
    let gotox = object("gotox.bpf.o");
    let dot = ok(&["prog", "dump", "cfg", gotox.to_str().unwrap(), "--prog", "two_switches", "--dot"]);
    assert!(dot.starts_with("digraph \"two_switches\" {\n"), "{dot}");
    assert!(dot.trim_end().ends_with('}'), "{dot}");
    assert_eq!(dot.matches("subgraph cluster_").count(), 1, "{dot}");
    assert!(dot.contains("label=\"subprog 0 two_switches [0..76]\";"), "{dot}");
    assert!(dot.contains("[style=dashed]"), "indirect edges are dashed:\n{dot}");
    assert!(dot.contains("color=red, penwidth=2, label=\"back\""), "back edges are red:\n{dot}");
    assert!(dot.contains("gotox r"), "{dot}");
    // Every node and edge line is well formed: braces balance, quotes pair up.
    assert_eq!(dot.matches('{').count(), dot.matches('}').count(), "{dot}");
    for l in dot.lines() {
        assert_eq!(l.replace("\\\"", "").matches('"').count() % 2, 0, "{l}");
    }
    // Two subprograms make two clusters, and the call is an edge.
    let dot = ok(&["prog", "dump", "cfg", gotox.to_str().unwrap(), "--prog", "static_global_1", "--dot"]);
    assert_eq!(dot.matches("subgraph cluster_").count(), 2, "{dot}");
    assert!(dot.contains("[style=dotted, color=blue, label=\"call at "), "{dot}");
    // --dot belongs to cfg.
    let o = bpfkit(&["prog", "dump", "xlated", gotox.to_str().unwrap(), "--prog", "one_switch", "--dot"]);
    assert!(!o.status.success());
}

#[test]
fn straight_branches_without_tables() {
    // An XDP program with branches only: every block but the exits has successors, no
    // indirect edge, nothing in the jump-table count.
    let text = ok(&["prog", "dump", "cfg", object("lpm.bpf.o").to_str().unwrap()]);
    assert!(text.lines().next().unwrap().contains("0 jump tables, 0 back edges"), "{text}");
    assert!(!text.contains("(indirect)"), "{text}");
    let blocks = blocks(&text);
    assert!(blocks.len() > 10, "{text}");
    assert!(blocks.iter().filter(|b| b.1.contains("(jump)")).count() > 5, "{text}");
}

#[test]
fn map_dump_of_jump_tables() {
    let gotox = object("gotox.bpf.o");
    let out = ok(&["map", "dump", gotox.to_str().unwrap(), ".jumptables", "--prog", "one_map_two_jumps"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let tables = v[".jumptables"].as_array().unwrap();
    // kernel-spec §11.3: the program has exactly one instruction array.
    assert_eq!(tables.len(), 1, "{out}");
    let entries = tables[0]["entries"].as_array().unwrap();
    assert_eq!(tables[0]["max_entries"].as_u64(), Some(entries.len() as u64));
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(e["index"].as_u64(), Some(i as u64));
        // No rewrite moves instructions yet; the interpreter's code is 8 bytes per instruction.
        assert_eq!(e["xlated_off"], e["orig_off"], "{out}");
        assert_eq!(e["jitted_off"].as_u64(), e["xlated_off"].as_u64().map(|x| x * 8), "{out}");
    }
    // The entries are listed orig, xlated, jitted.
    let line = out.lines().find(|l| l.contains("\"orig_off\"")).unwrap();
    let pos = |k: &str| line.find(k).unwrap();
    assert!(pos("orig_off") < pos("xlated_off") && pos("xlated_off") < pos("jitted_off"), "{line}");
    // Two tables, in the order they were bound.
    let out = ok(&["map", "dump", gotox.to_str().unwrap(), ".jumptables", "--prog", "one_jump_two_maps"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let idx: Vec<u64> = v[".jumptables"].as_array().unwrap().iter().map(|t| t["index"].as_u64().unwrap()).collect();
    assert_eq!(idx, [0, 1]);
    // Jump tables are per program.
    let o = bpfkit(&["map", "dump", gotox.to_str().unwrap(), ".jumptables"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--prog"));
    let o = bpfkit(&["map", "dump", gotox.to_str().unwrap(), "nope", "--prog", "one_switch"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("owns no instruction array named `nope`"));
}
