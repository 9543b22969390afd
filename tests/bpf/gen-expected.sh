#!/usr/bin/env bash
# Runs every (object, program, input) of tests/bpf/programs.txt in the running kernel with
# kernel-run and writes the results to tests/expected/<object>-<program>.<ext>:
#   .retvals     one return value per run (decimal u32, or the errno name of a refused run)
#   .maps.json   every map's final contents (format: crates/kernel-runner/src/maps.rs)
#   .out.pcap    frames passed on, as modified (when listed in programs.txt)
#   .ctx-out     the context after each run, hex (when listed)
#   .trace       bpf_trace_printk lines (when listed and tracefs is mounted)
# where <object> is the object's file name without .bpf.o.
#
# Needs root (or CAP_BPF + CAP_PERFMON + CAP_NET_ADMIN) and a kernel that allows bpf().
# Runs are pinned to CPU 0, so per-CPU maps only have data in their first value.
#
# Usage: tests/bpf/gen-expected.sh [OUT_DIR]      (default tests/expected)
#        KERNEL_RUN=path/to/kernel-run to use that binary instead of building it
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
out="${1:-tests/expected}"
mkdir -p "$out"

if [ -n "${KERNEL_RUN:-}" ]; then
    runner="$KERNEL_RUN"
else
    cargo build -q -p bpfkit-kernel-runner --bin kernel-run
    runner="${CARGO_TARGET_DIR:-$root/target}/debug/kernel-run"
fi

tracing=1
if [ ! -e /sys/kernel/tracing/trace ] && [ ! -e /sys/kernel/debug/tracing/trace ]; then
    echo "gen-expected.sh: tracefs is not mounted, no .trace files (mount -t tracefs nodev /sys/kernel/tracing)" >&2
    tracing=0
fi

grep -v '^\s*#' tests/bpf/programs.txt | while read -r obj prog input init extra; do
    [ -n "${obj:-}" ] || continue
    base="$out/$(basename "$obj" .bpf.o)-$prog"
    args=("$obj" --prog "$prog" --retvals "$base.retvals" --dump-maps "$base.maps.json")
    case "$input" in
        *.pcap) args+=(--pcap "$input") ;;
        *) args+=(--ctx-file "$input") ;;
    esac
    [ "$init" = "-" ] || args+=(--map-init "$init")
    IFS=',' read -ra outputs <<< "$extra"
    for o in "${outputs[@]}"; do
        case "$o" in
            out-pcap) args+=(--out-pcap "$base.out.pcap") ;;
            ctx-out) args+=(--ctx-out "$base.ctx-out") ;;
            trace) [ "$tracing" = 0 ] || args+=(--trace "$base.trace") ;;
            -) ;;
            *) echo "gen-expected.sh: unknown output $o" >&2; exit 1 ;;
        esac
    done
    KERNEL_RUN_QUIET=1 "$runner" "${args[@]}"
done
