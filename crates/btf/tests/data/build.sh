#!/bin/sh
# Rebuilds the checked-in test objects. Run from this directory.
# The objects are checked in so that `cargo test` needs no clang.
set -eu
cd "$(dirname "$0")"
for f in kinds maps core; do
	clang-22 -O2 -g -target bpf -mcpu=v4 -I/usr/include/x86_64-linux-gnu \
		-fdebug-prefix-map="$(pwd)"=. -c "$f.c" -o "$f.o"
done
