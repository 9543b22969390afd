/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * Native build of tests/bpf/maps.bpf.c for the comparison benchmark (crates/bench): the prelude
 * gives struct xdp_md pointer-sized fields, native/shim/bpf/ the helpers. Exports the program as
 * bpfkit_native_run_maps_xdp and its maps by name as bpfkit_native_map_maps_xdp.
 */
#include "bpfkit_native_prelude.h"

#include <stddef.h>

/* Every program defines char LICENSE[]; all of them link into one library. */
#define LICENSE bpfkit_native_license_maps_xdp
#include "maps.bpf.c"
#undef LICENSE

int bpfkit_native_run_maps_xdp(struct xdp_md *ctx)
{
	return maps_xdp(ctx);
}

struct bpfkit_map *bpfkit_native_map_maps_xdp(const char *name)
{
	BPFKIT_MAP_BY_NAME(class_stats, name);
	BPFKIT_MAP_BY_NAME(class_pcpu, name);
	BPFKIT_MAP_BY_NAME(by_ethertype, name);
	BPFKIT_MAP_BY_NAME(by_l4_pcpu, name);
	BPFKIT_MAP_BY_NAME(open_flows, name);
	BPFKIT_MAP_BY_NAME(by_saddr_lru, name);
	BPFKIT_MAP_BY_NAME(by_dport_lru_pcpu, name);
	return NULL;
}
