/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * Native build of tests/bpf/lpm.bpf.c for the comparison benchmark (crates/bench): the prelude
 * gives struct xdp_md pointer-sized fields, native/shim/bpf/ the helpers. Exports the program as
 * bpfkit_native_run_lpm_xdp and its maps by name as bpfkit_native_map_lpm_xdp.
 */
#include "bpfkit_native_prelude.h"

#include <stddef.h>

/* Every program defines char LICENSE[]; all of them link into one library. */
#define LICENSE bpfkit_native_license_lpm_xdp
#include "lpm.bpf.c"
#undef LICENSE

int bpfkit_native_run_lpm_xdp(struct xdp_md *ctx)
{
	return lpm_xdp(ctx);
}

struct bpfkit_map *bpfkit_native_map_lpm_xdp(const char *name)
{
	BPFKIT_MAP_BY_NAME(routes4, name);
	BPFKIT_MAP_BY_NAME(routes6, name);
	BPFKIT_MAP_BY_NAME(rule_hits, name);
	return NULL;
}
