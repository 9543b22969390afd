#!/usr/bin/env bash
# Rebuilds every BPF object (tests/bpf/build.sh) into a temporary directory and fails if any
# differs from the checked-in one, or if a .bpf.c has no checked-in object. Needs the same
# clang build as the one that made the objects (see tests/bpf/README.md).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
clang="${CLANG:-clang-22}"
if ! command -v "$clang" >/dev/null 2>&1; then
    echo "check-objects.sh: $clang not found (apt-get install clang-22)" >&2
    exit 1
fi
# Objects embed the compiler's version string: only the clang build that made them (recorded in
# tests/bpf/clang-version.txt) can reproduce them byte for byte.
want="$(cat "$root/tests/bpf/clang-version.txt")"
have="$("$clang" --version | head -1)"
if [ "$want" != "$have" ]; then
    echo "SKIPPED: check-objects.sh needs '$want' to rebuild identical objects; found '$have'" >&2
    exit 0
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$root/tests/bpf/build.sh" "$tmp"

cd "$root"
status=0
for src in tests/bpf/*.bpf.c examples/*.bpf.c; do
    [ -e "$src" ] || continue
    obj="${src%.c}.o"
    if [ ! -e "$obj" ]; then
        echo "MISSING $obj (run tests/bpf/build.sh and commit it)"
        status=1
    elif ! cmp -s "$obj" "$tmp/$obj"; then
        echo "DIFFERS $obj (rebuilt with $("$clang" --version | head -1))"
        status=1
    fi
done
if [ $status -eq 0 ]; then
    echo "check-objects.sh: every object matches its source"
fi
exit $status
