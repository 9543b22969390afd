/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * Native build of examples/xdp_count.bpf.c for the comparison benchmark (crates/bench): the
 * prelude gives struct xdp_md pointer-sized fields, native/shim/bpf/ the helpers. Exports the
 * program as bpfkit_native_run_xdp_count and its maps by name as bpfkit_native_map_xdp_count.
 */
#include "bpfkit_native_prelude.h"

#include <stddef.h>

/* Every program defines char LICENSE[]; all of them link into one library. */
#define LICENSE bpfkit_native_license_xdp_count
#include "xdp_count.bpf.c"
#undef LICENSE

int bpfkit_native_run_xdp_count(struct xdp_md *ctx)
{
	return xdp_count(ctx);
}

struct bpfkit_map *bpfkit_native_map_xdp_count(const char *name)
{
	BPFKIT_MAP_BY_NAME(stats, name);
	return NULL;
}
