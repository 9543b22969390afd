#!/usr/bin/env bash
# Compiles every BPF C program of the repository: tests/bpf/*.bpf.c and examples/*.bpf.c, each
# into the .bpf.o next to it (or, with an argument, into the same relative path under that
# directory; check-objects.sh uses this).
#
# The output is byte-for-byte reproducible whatever the checkout directory: clang runs from the
# repository root on relative paths, and the build directory recorded in the debug info is ".".
# It does depend on the exact clang build (its version string is in .comment and DW_AT_producer).
#
# A source whose first line is `// build-flags: FLAGS` is compiled with those flags too.
#
# Usage: tests/bpf/build.sh [OUT_DIR]     (CLANG=clang-22 by default)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
out="${1:-$root}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
clang="${CLANG:-clang-22}"
cd "$root"
export LC_ALL=C

CFLAGS=(
    -O2 -g -target bpf -mcpu=v4
    -I/usr/include/x86_64-linux-gnu
    -Wall -Wno-unused-function
    -fdebug-compilation-dir=.
    -ffile-prefix-map="$root"=.
    -fno-color-diagnostics
)

status=0
for src in tests/bpf/*.bpf.c examples/*.bpf.c; do
    [ -e "$src" ] || continue
    obj="$out/${src%.c}.o"
    mkdir -p "$(dirname "$obj")"
    # A first line `// build-flags: ...` adds flags for that file (e.g. forcing jump tables).
    extra=()
    first="$(head -1 "$src")"
    if [[ "$first" == "// build-flags: "* ]]; then
        read -r -a extra <<<"${first#// build-flags: }"
    fi
    if ! "$clang" "${CFLAGS[@]}" "${extra[@]}" -c "$src" -o "$obj"; then
        echo "build.sh: failed to compile $src" >&2
        status=1
    fi
done
exit $status
