// build-flags: -Iinclude
// SPDX-License-Identifier: MIT OR Apache-2.0
//
// An XDP program with static keys, for `bpfkit serve` and `bpfkit key`
// (crates/cli/tests/keys.rs): passes every packet while `drop_all` is off and drops every
// packet while it is on; while `count_packets` is on (it starts on) it counts the packets it
// sees in `counts[0]` and those it drops in `counts[1]`.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpfkit/static_keys.h>

DEFINE_STATIC_KEY(drop_all);
DEFINE_STATIC_KEY_TRUE(count_packets);

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

static __always_inline void count(__u32 which)
{
	__u64 *c = bpf_map_lookup_elem(&counts, &which);

	if (c)
		__sync_fetch_and_add(c, 1);
}

SEC("xdp")
int keyed_xdp(struct xdp_md *ctx)
{
	if (bpf_static_branch_likely(&count_packets))
		count(0);
	if (bpf_static_branch_unlikely(&drop_all)) {
		if (bpf_static_branch_likely(&count_packets))
			count(1);
		return XDP_DROP;
	}
	return XDP_PASS;
}

char _license[] SEC("license") = "Dual MIT/GPL";
