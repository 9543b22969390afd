/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * Shared packet parser of bpfkit's BPF test programs (direct packet access: XDP and tc).
 *
 * parse_packet() walks Ethernet, up to two 802.1Q/802.1ad tags, IPv4 (any IHL) or IPv6 (fixed
 * header only, no extension headers), then TCP, UDP, ICMP or ICMPv6, checking every access
 * against data_end. It never fails the program: what it could not parse is flagged in
 * `struct parsed` (malformed, frag). Each header pointer goes through barrier_var() before its
 * bounds check, so that clang cannot recompute it after the check as a fresh `data + off` the
 * verifier knows nothing about.
 */
#ifndef BPFKIT_TEST_COMMON_H
#define BPFKIT_TEST_COMMON_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#ifndef ETH_P_8021AD
#define ETH_P_8021AD 0x88A8
#endif

/* Traffic classes, used as array indices by several programs. */
enum cls {
	CLS_OTHER = 0,  /* unknown EtherType (LLDP, ...) */
	CLS_ARP = 1,
	CLS_IPV4 = 2,   /* IPv4 that is none of the below (fragments, other protocols) */
	CLS_IPV6 = 3,   /* IPv6 that is none of the below */
	CLS_TCP = 4,
	CLS_UDP = 5,
	CLS_ICMP = 6,
	CLS_ICMPV6 = 7,
	CLS_MALFORMED = 8,
	CLS_MAX = 9,
};

struct vlan_tag {
	__be16 tci;
	__be16 proto;
};

struct parsed {
	__u32 saddr4;    /* network order, IPv4 only */
	__u32 daddr4;    /* network order, IPv4 only */
	__u16 eth_proto; /* host order, after the VLAN tags */
	__u16 l3_off;    /* offset of the IP header */
	__u16 l4_off;    /* offset of the L4 header (0: none) */
	__u16 sport;     /* host order, TCP/UDP only */
	__u16 dport;     /* host order, TCP/UDP only */
	__u16 ip_len;    /* IPv4 total length / IPv6 payload length + 40, host order */
	__u8 vlans;
	__u8 ip_ver;     /* 4, 6 or 0 */
	__u8 l4;         /* IPPROTO_* from the IP header, 0 without IP */
	__u8 tcp_flags;  /* byte 13 of the TCP header */
	__u8 malformed;
	__u8 frag;       /* IPv4 fragment with a non-zero offset: no L4 header */
	__u8 ttl;        /* IPv4 TTL / IPv6 hop limit */
	__u8 ihl;        /* IPv4 header length in 32-bit words */
};

#define TCPF_FIN 0x01
#define TCPF_SYN 0x02
#define TCPF_RST 0x04
#define TCPF_PSH 0x08
#define TCPF_ACK 0x10

static __always_inline int parse_packet(void *data, void *data_end, struct parsed *p)
{
	struct ethhdr *eth = data;
	__u32 off = sizeof(struct ethhdr);
	__u16 proto;

	__builtin_memset(p, 0, sizeof(*p));
	if ((void *)(eth + 1) > data_end)
		goto bad;
	proto = bpf_ntohs(eth->h_proto);
#pragma unroll
	for (int i = 0; i < 2; i++) {
		struct vlan_tag *tag;

		if (proto != ETH_P_8021Q && proto != ETH_P_8021AD)
			break;
		tag = data + off;
		barrier_var(tag);
		if ((void *)(tag + 1) > data_end)
			goto bad;
		proto = bpf_ntohs(tag->proto);
		off += sizeof(struct vlan_tag);
		p->vlans++;
	}
	p->eth_proto = proto;
	p->l3_off = off;

	if (proto == ETH_P_IP) {
		struct iphdr *ip = data + off;
		__u32 hl;

		barrier_var(ip);
		if ((void *)(ip + 1) > data_end)
			goto bad;
		p->ip_ver = 4;
		p->ihl = ip->ihl;
		if (ip->ihl < 5)
			goto bad;
		hl = ip->ihl * 4;
		if (data + off + hl > data_end)
			goto bad;
		p->l4 = ip->protocol;
		p->ttl = ip->ttl;
		p->saddr4 = ip->saddr;
		p->daddr4 = ip->daddr;
		p->ip_len = bpf_ntohs(ip->tot_len);
		if (ip->frag_off & bpf_htons(0x1fff)) {
			p->frag = 1;
			return 0;
		}
		off += hl;
	} else if (proto == ETH_P_IPV6) {
		struct ipv6hdr *ip6 = data + off;

		barrier_var(ip6);
		if ((void *)(ip6 + 1) > data_end)
			goto bad;
		p->ip_ver = 6;
		p->l4 = ip6->nexthdr;
		p->ttl = ip6->hop_limit;
		p->ip_len = bpf_ntohs(ip6->payload_len) + 40;
		off += sizeof(struct ipv6hdr);
	} else {
		return 0;
	}

	if (p->l4 == IPPROTO_TCP) {
		struct tcphdr *th = data + off;

		barrier_var(th);
		if ((void *)(th + 1) > data_end)
			goto bad;
		p->l4_off = off;
		p->sport = bpf_ntohs(th->source);
		p->dport = bpf_ntohs(th->dest);
		p->tcp_flags = ((__u8 *)th)[13];
	} else if (p->l4 == IPPROTO_UDP) {
		struct udphdr *uh = data + off;

		barrier_var(uh);
		if ((void *)(uh + 1) > data_end)
			goto bad;
		p->l4_off = off;
		p->sport = bpf_ntohs(uh->source);
		p->dport = bpf_ntohs(uh->dest);
	} else if (p->l4 == IPPROTO_ICMP || p->l4 == IPPROTO_ICMPV6) {
		if (data + off + 4 > data_end)
			goto bad;
		p->l4_off = off;
	}
	return 0;
bad:
	p->malformed = 1;
	return -1;
}

/* Traffic class of a parsed packet. */
static __always_inline enum cls classify(const struct parsed *p)
{
	if (p->malformed)
		return CLS_MALFORMED;
	if (p->eth_proto == ETH_P_ARP)
		return CLS_ARP;
	if (p->ip_ver == 0)
		return CLS_OTHER;
	if (p->l4_off) {
		if (p->l4 == IPPROTO_TCP)
			return CLS_TCP;
		if (p->l4 == IPPROTO_UDP)
			return CLS_UDP;
		if (p->l4 == IPPROTO_ICMP)
			return CLS_ICMP;
		if (p->l4 == IPPROTO_ICMPV6)
			return CLS_ICMPV6;
	}
	return p->ip_ver == 4 ? CLS_IPV4 : CLS_IPV6;
}

struct counter {
	__u64 packets;
	__u64 bytes;
};

/* Every test program declares a GPL-compatible licence: the kernel allows bpf_trace_printk and
 * bpf_snprintf only to such programs. */
#define TEST_LICENSE char LICENSE[] SEC("license") = "Dual MIT/GPL"

#endif
