// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * XDP program over maps of maps with declarative initialisation of the inner maps.
 *
 * by_ipver (ARRAY_OF_MAPS, 4 slots): slot 0 = v4_counts (IPv4), slot 1 = v6_counts (IPv6),
 * slots 2 and 3 empty (tests/bpf/map_in_map.init.json puts other_counts into slot 2). Frames
 * that are neither IPv4 nor IPv6 use slot 2. Each inner array counts packets per traffic class.
 * by_proto (HASH_OF_MAPS): key 6 = tcp_ports, key 17 = udp_ports; each inner hash counts
 * packets per destination port (ports >= 1024 share key 0).
 *
 * Returns XDP_PASS when an inner map was found for the frame, XDP_DROP otherwise.
 */
#include "common.h"

struct class_array {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, CLS_MAX);
	__type(key, __u32);
	__type(value, __u64);
};

struct class_array v4_counts SEC(".maps");
struct class_array v6_counts SEC(".maps");
struct class_array other_counts SEC(".maps");

struct port_hash {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
};

struct port_hash tcp_ports SEC(".maps");
struct port_hash udp_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 4);
	__type(key, __u32);
	__array(values, struct class_array);
} by_ipver SEC(".maps") = {
	.values = {
		[0] = &v4_counts,
		[1] = &v6_counts,
	},
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, 8);
	__type(key, __u32);
	__array(values, struct port_hash);
} by_proto SEC(".maps") = {
	.values = {
		[6] = &tcp_ports,
		[17] = &udp_ports,
	},
};

struct {
	__u64 outer_miss;
	__u64 proto_miss;
	__u64 port_created;
} mim_stats;

SEC("xdp")
int map_in_map_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct parsed p;
	__u32 slot, cls, proto;
	void *inner;
	__u64 *v;
	int ret = XDP_PASS;

	parse_packet(data, data_end, &p);
	cls = classify(&p);
	slot = p.ip_ver == 4 ? 0 : p.ip_ver == 6 ? 1 : 2;

	inner = bpf_map_lookup_elem(&by_ipver, &slot);
	if (!inner) {
		mim_stats.outer_miss++;
		ret = XDP_DROP;
	} else {
		v = bpf_map_lookup_elem(inner, &cls);
		if (v)
			__sync_fetch_and_add(v, 1);
	}

	if (cls != CLS_TCP && cls != CLS_UDP)
		return ret;
	proto = p.l4;
	inner = bpf_map_lookup_elem(&by_proto, &proto);
	if (!inner) {
		mim_stats.proto_miss++;
		return XDP_DROP;
	}
	{
		__u32 port = p.dport < 1024 ? p.dport : 0;
		__u64 one = 1;

		v = bpf_map_lookup_elem(inner, &port);
		if (v) {
			__sync_fetch_and_add(v, 1);
		} else if (bpf_map_update_elem(inner, &port, &one, BPF_NOEXIST) == 0) {
			mim_stats.port_created++;
		}
	}
	return ret;
}

TEST_LICENSE;
