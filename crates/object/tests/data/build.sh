#!/usr/bin/env bash
# Rebuilds the test objects; the output does not depend on the checkout directory.
set -euo pipefail
cd "$(dirname "$0")"
for c in *.c; do
    clang-22 -O2 -g -target bpf -mcpu=v4 -I/usr/include/x86_64-linux-gnu \
        -fdebug-prefix-map="$PWD"=. -c "$c" -o "${c%.c}.o"
done
