#!/usr/bin/env python3
"""Verification of every test object by bpfkit and by the running kernel, side by side:
processed instructions and verification time per program. Needs release builds of the CLI and
kernel-run (cargo build --release -p bpfkit-cli -p bpfkit-kernel-runner) and root for bpf().

Usage: tools/verifier-vs-kernel.py [OBJ ...]   (default: tests/bpf/*.bpf.o examples/*.bpf.o,
gotox and static-key objects excepted: this kernel has neither)"""
import glob, re, subprocess, sys

objs = sys.argv[1:] or [o for o in sorted(glob.glob("tests/bpf/*.bpf.o")) + glob.glob("examples/*.bpf.o") if "gotox" not in o and "static_keys" not in o and "keyed" not in o]
print(f"{'object':<28} {'program':<18} {'bpfkit insns':>12} {'bpfkit us':>10} {'kernel insns':>12} {'kernel us':>10}")
for obj in objs:
    mine, theirs = {}, {}
    out = subprocess.run(["target/release/bpfkit", "verify", obj], capture_output=True, text=True).stdout
    prog = None
    for line in out.splitlines():
        if m := re.match(r"== (\S+) ", line):
            prog = m.group(1)
        elif m := re.match(r"processed (\d+) insns", line):
            mine.setdefault(prog, {})["insns"] = int(m.group(1))
        elif m := re.match(r"verification time (\d+) usec", line):
            mine.setdefault(prog, {})["us"] = int(m.group(1))
    k = subprocess.run(["target/release/kernel-run", obj, "--verifier-stats"], capture_output=True, text=True)
    for line in k.stdout.splitlines():
        if m := re.match(r"prog '(\S+)': -- BEGIN", line):
            prog = m.group(1)
        elif m := re.match(r"processed (\d+) insns", line):
            theirs.setdefault(prog, {})["insns"] = int(m.group(1))
        elif m := re.match(r"verification time (\d+) usec", line):
            theirs.setdefault(prog, {})["us"] = int(m.group(1))
    for p in mine:
        a, b = mine[p], theirs.get(p, {})
        print(f"{obj:<28} {p:<18} {a.get('insns', '-'):>12} {a.get('us', '-'):>10} {b.get('insns', 'n/a'):>12} {b.get('us', 'n/a'):>10}")
