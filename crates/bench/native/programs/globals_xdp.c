/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * Native build of tests/bpf/globals.bpf.c for the comparison benchmark (crates/bench): the
 * prelude gives struct xdp_md pointer-sized fields, native/shim/bpf/ the helpers. Exports the
 * program as bpfkit_native_run_globals_xdp and its maps by name as
 * bpfkit_native_map_globals_xdp.
 */
#include "bpfkit_native_prelude.h"

#include <stddef.h>

/* Every program defines char LICENSE[]; all of them link into one library. */
#define LICENSE bpfkit_native_license_globals_xdp
#include "globals.bpf.c"
#undef LICENSE

int bpfkit_native_run_globals_xdp(struct xdp_md *ctx)
{
	return globals_xdp(ctx);
}

struct bpfkit_map *bpfkit_native_map_globals_xdp(const char *name)
{
	(void)name; /* no maps besides global data */
	return NULL;
}
