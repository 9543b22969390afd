// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * XDP longest-prefix match on IPv4 and IPv6 destination addresses (LPM_TRIE).
 *
 * The routes come from tests/bpf/lpm.init.json (--map-init); the program adds 8.8.8.0/24 (rule 6)
 * itself on the first IPv4 packet with BPF_NOEXIST (later attempts fail with -EEXIST and are
 * counted), and deletes 172.16.0.0/12 when it sees a packet from 1.1.1.1.
 *
 * Returns XDP_DROP when the matched rule is 3 (10.0.0.2/32) or 13 (2001:db8:3::/48), XDP_PASS
 * otherwise.
 */
#include "common.h"

struct key4 {
	__u32 prefixlen;
	__u8 addr[4];
};

struct key6 {
	__u32 prefixlen;
	__u8 addr[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 64);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct key4);
	__type(value, __u32);
} routes4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 64);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct key6);
	__type(value, __u32);
} routes6 SEC(".maps");

/* Packets per matched rule (index 0: no match; rules above 15 are folded into 15). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
} rule_hits SEC(".maps");

struct {
	__u64 added;
	__u64 add_eexist;
	__u64 deleted;
	__u64 delete_enoent;
} lpm_ops;

static __always_inline void count_rule(__u32 rule)
{
	__u32 idx = rule < 16 ? rule : 15;
	__u64 *v = bpf_map_lookup_elem(&rule_hits, &idx);

	if (v)
		*v += 1;
}

SEC("xdp")
int lpm_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct parsed p;
	__u32 *rule;
	__u32 r = 0;

	parse_packet(data, data_end, &p);
	if (p.malformed || p.ip_ver == 0)
		return XDP_PASS;

	if (p.ip_ver == 4) {
		struct key4 k = { .prefixlen = 32 };
		struct key4 google = { .prefixlen = 24, .addr = { 8, 8, 8, 0 } };
		__u32 six = 6;
		long err;

		err = bpf_map_update_elem(&routes4, &google, &six, BPF_NOEXIST);
		if (err == 0)
			lpm_ops.added++;
		else if (err == -17)
			lpm_ops.add_eexist++;

		if (p.saddr4 == bpf_htonl(0x01010101)) {
			struct key4 old = { .prefixlen = 12, .addr = { 172, 16, 0, 0 } };

			err = bpf_map_delete_elem(&routes4, &old);
			if (err == 0)
				lpm_ops.deleted++;
			else if (err == -2)
				lpm_ops.delete_enoent++;
		}

		__builtin_memcpy(k.addr, &p.daddr4, 4);
		rule = bpf_map_lookup_elem(&routes4, &k);
		if (rule)
			r = *rule;
	} else {
		struct key6 k = { .prefixlen = 128 };
		struct ipv6hdr *ip6 = data + p.l3_off;

		barrier_var(ip6);
		if ((void *)(ip6 + 1) > data_end)
			return XDP_PASS;
		__builtin_memcpy(k.addr, &ip6->daddr, 16);
		rule = bpf_map_lookup_elem(&routes6, &k);
		if (rule)
			r = *rule;
	}
	count_rule(r);
	return (r == 3 || r == 13) ? XDP_DROP : XDP_PASS;
}

TEST_LICENSE;
