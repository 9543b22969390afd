// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * xdp_count: count packets and bytes per protocol, drop one destination port.
 *
 * Parses Ethernet, up to two VLAN tags (802.1Q / 802.1ad), IPv4 (any header length) or IPv6,
 * then TCP or UDP, checking every access against the end of the frame. Counters live in the
 * `stats` array (index = enum counter below; value = packets, bytes), updated with atomic adds.
 * TCP and UDP packets to `drop_port` (a .rodata knob, 8080 unless the loader changes it) get
 * XDP_DROP; everything else, malformed frames included, gets XDP_PASS. Never XDP_ABORTED.
 *
 * Build: tests/bpf/build.sh (clang-22 -O2 -g -target bpf -mcpu=v4). Run over the sample capture:
 *   bpfkit run examples/xdp_count.bpf.o --prog xdp_count --pcap examples/sample.pcap ...
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

enum counter {
	CNT_ALL = 0,
	CNT_IPV4 = 1,
	CNT_IPV6 = 2,
	CNT_TCP = 3,
	CNT_UDP = 4,
	CNT_ICMP = 5,      /* ICMP and ICMPv6 */
	CNT_ARP = 6,
	CNT_VLAN = 7,      /* frames with at least one VLAN tag */
	CNT_OTHER = 8,     /* neither IPv4, IPv6 nor ARP */
	CNT_MALFORMED = 9, /* a header ran past the end of the frame, or IPv4 IHL < 5 */
	CNT_DROPPED = 10,  /* destination port == drop_port */
	CNT_MAX = 11,
};

struct stat {
	__u64 packets;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, CNT_MAX);
	__type(key, __u32);
	__type(value, struct stat);
} stats SEC(".maps");

const volatile __u16 drop_port = 8080;

struct vlan_tag {
	__be16 tci;
	__be16 proto;
};

static __always_inline void count(__u32 which, __u64 bytes)
{
	struct stat *s = bpf_map_lookup_elem(&stats, &which);

	if (s) {
		__sync_fetch_and_add(&s->packets, 1);
		__sync_fetch_and_add(&s->bytes, bytes);
	}
}

SEC("xdp")
int xdp_count(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u64 len = data_end - data;
	struct ethhdr *eth = data;
	void *pos;
	__u16 proto;
	__u8 l4;
	__u16 dport;

	count(CNT_ALL, len);
	if ((void *)(eth + 1) > data_end)
		goto malformed;
	proto = bpf_ntohs(eth->h_proto);
	pos = eth + 1;

#pragma unroll
	for (int i = 0; i < 2; i++) {
		struct vlan_tag *tag = pos;

		if (proto != ETH_P_8021Q && proto != 0x88A8)
			break;
		barrier_var(tag);
		if ((void *)(tag + 1) > data_end)
			goto malformed;
		if (i == 0)
			count(CNT_VLAN, len);
		proto = bpf_ntohs(tag->proto);
		pos = tag + 1;
	}

	if (proto == ETH_P_IP) {
		struct iphdr *ip = pos;
		__u32 hl;

		barrier_var(ip);
		if ((void *)(ip + 1) > data_end || ip->ihl < 5)
			goto malformed;
		hl = ip->ihl * 4;
		if (pos + hl > data_end)
			goto malformed;
		count(CNT_IPV4, len);
		if (ip->frag_off & bpf_htons(0x1fff))
			return XDP_PASS; /* a later fragment: no L4 header */
		l4 = ip->protocol;
		pos += hl;
	} else if (proto == ETH_P_IPV6) {
		struct ipv6hdr *ip6 = pos;

		barrier_var(ip6);
		if ((void *)(ip6 + 1) > data_end)
			goto malformed;
		count(CNT_IPV6, len);
		l4 = ip6->nexthdr;
		pos = ip6 + 1;
	} else if (proto == ETH_P_ARP) {
		count(CNT_ARP, len);
		return XDP_PASS;
	} else {
		count(CNT_OTHER, len);
		return XDP_PASS;
	}

	if (l4 == IPPROTO_TCP) {
		struct tcphdr *th = pos;

		barrier_var(th);
		if ((void *)(th + 1) > data_end)
			goto malformed;
		count(CNT_TCP, len);
		dport = bpf_ntohs(th->dest);
	} else if (l4 == IPPROTO_UDP) {
		struct udphdr *uh = pos;

		barrier_var(uh);
		if ((void *)(uh + 1) > data_end)
			goto malformed;
		count(CNT_UDP, len);
		dport = bpf_ntohs(uh->dest);
	} else {
		if (l4 == IPPROTO_ICMP || l4 == IPPROTO_ICMPV6)
			count(CNT_ICMP, len);
		return XDP_PASS;
	}

	if (dport == drop_port) {
		count(CNT_DROPPED, len);
		return XDP_DROP;
	}
	return XDP_PASS;

malformed:
	count(CNT_MALFORMED, len);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
