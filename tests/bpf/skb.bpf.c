// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * skb programs: a socket filter and a tc classifier, run over the same frames.
 *
 * BPF_PROG_TEST_RUN builds the skb with eth_type_trans() on the loopback device, so
 * `protocol` is the outer EtherType (VLAN tags stay in the data) and `pkt_type` follows the
 * destination MAC. A socket filter sees the frame from the network header on (`len` is the
 * frame length - 14, offset 0 of bpf_skb_load_bytes is the IP header) and may not use direct
 * packet access; a tc program sees the whole frame at data..data_end.
 *
 * sock_filter (SEC "socket"): reads the IPv4/IPv6 header and the L4 ports with
 * bpf_skb_load_bytes, the Ethernet header with bpf_skb_load_bytes_relative(BPF_HDR_START_MAC),
 * uses cb[0] as scratch, counts per pkt_type and per protocol. Returns the number of bytes to
 * keep: the whole packet for TCP and anything that is not IPv4/IPv6, 64 for UDP, 0 (drop) for
 * ICMP/ICMPv6 and for packets whose headers could not be loaded.
 *
 * tc_classify (SEC "tc"): parses with direct packet access, records the context fields it sees
 * (ctx_seen), sets mark = class | VLAN count << 8, priority = DSCP, cb[0..2], tc_index;
 * decrements the TTL of IPv4 packets (20-byte header, TTL > 1) with bpf_skb_store_bytes and
 * bpf_l3_csum_replace and checks the new checksum with bpf_csum_diff. Returns TC_ACT_SHOT for
 * malformed frames and UDP to port 8080, TC_ACT_UNSPEC (-1) for ARP, TC_ACT_PIPE for ICMP and
 * ICMPv6, TC_ACT_OK otherwise.
 */
#include "common.h"
#include <linux/pkt_cls.h>

/* ------------------------------------------------------------------ socket filter */

struct sock_stats {
	__u64 packets;
	__u64 bytes;          /* sum of skb->len */
	__u64 pkt_type[8];
	__u64 ipv4;
	__u64 ipv6;
	__u64 other;
	__u64 load_failed;
	__u64 mac_ok;         /* Ethernet header via load_bytes_relative agrees with protocol */
	__u64 mac_mismatch;
	__u64 cb_ok;
	__u64 kept_bytes;     /* sum of the return values */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sock_stats);
} sock_stats SEC(".maps");

/* Packets per (host-order) skb->protocol. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 32);
	__type(key, __u32);
	__type(value, __u64);
} sock_by_proto SEC(".maps");

SEC("socket")
int sock_filter(struct __sk_buff *skb)
{
	__u32 zero = 0;
	struct sock_stats *st = bpf_map_lookup_elem(&sock_stats, &zero);
	__u32 proto = bpf_ntohs(skb->protocol);
	__u32 len = skb->len;
	__u32 keep = len;
	__u32 l4 = 0, l4_off = 0;
	struct ethhdr eth;
	__u64 *n;
	__u64 one = 1;

	if (!st)
		return 0;
	st->packets++;
	st->bytes += len;
	st->pkt_type[skb->pkt_type & 7]++;

	n = bpf_map_lookup_elem(&sock_by_proto, &proto);
	if (n)
		*n += 1;
	else
		bpf_map_update_elem(&sock_by_proto, &proto, &one, BPF_NOEXIST);

	skb->cb[0] = len ^ 0x5a5a5a5a;

	if (bpf_skb_load_bytes_relative(skb, 0, &eth, sizeof(eth), BPF_HDR_START_MAC) == 0 &&
	    bpf_ntohs(eth.h_proto) == proto)
		st->mac_ok++;
	else
		st->mac_mismatch++;

	if (proto == ETH_P_IP) {
		struct iphdr ip;

		st->ipv4++;
		if (bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip)) || ip.ihl < 5)
			goto fail;
		l4 = ip.protocol;
		l4_off = ip.ihl * 4;
		if (ip.frag_off & bpf_htons(0x1fff))
			l4 = 0;
	} else if (proto == ETH_P_IPV6) {
		struct ipv6hdr ip6;

		st->ipv6++;
		if (bpf_skb_load_bytes(skb, 0, &ip6, sizeof(ip6)))
			goto fail;
		l4 = ip6.nexthdr;
		l4_off = sizeof(ip6);
	} else {
		st->other++;
	}

	if (l4 == IPPROTO_TCP || l4 == IPPROTO_UDP) {
		__be16 ports[2];

		if (bpf_skb_load_bytes(skb, l4_off, ports, sizeof(ports)))
			goto fail;
		keep = l4 == IPPROTO_UDP ? 64 : len;
	} else if (l4 == IPPROTO_ICMP || l4 == IPPROTO_ICMPV6) {
		keep = 0;
	}

	if (skb->cb[0] == (len ^ 0x5a5a5a5a))
		st->cb_ok++;
	st->kept_bytes += keep;
	return keep;
fail:
	st->load_failed++;
	return 0;
}

/* ------------------------------------------------------------------ tc classifier */

enum ctx_field {
	F_PKT_TYPE = 1,
	F_PROTOCOL = 2,
	F_IFINDEX = 3,
	F_INGRESS_IFINDEX = 4,
	F_VLAN_PRESENT = 5,
	F_MARK_IN = 6,
	F_PRIORITY_IN = 7,
	F_QUEUE_MAPPING = 8,
	F_TC_INDEX_IN = 9,
	F_WIRE_LEN_IS_LEN = 10,
	F_CB0_IN = 11,
	F_DATA_META_IS_DATA = 12,
	F_LEN_MINUS_DATA = 13,  /* skb->len - (data_end - data) */
	F_NETNS_COOKIE_SET = 14,
};

struct field_key {
	__u32 field;
	__u32 value;
};

/* How often each (context field, value) pair was seen. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 128);
	__type(key, struct field_key);
	__type(value, __u64);
} ctx_seen SEC(".maps");

/* Packets and bytes per mark the program set. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, struct counter);
} by_mark SEC(".maps");

struct {
	__u64 ttl_rewritten;
	__u64 ttl_csum_ok;
	__u64 ttl_failed;
} tc_stats;

static __always_inline void seen(__u32 field, __u32 value)
{
	struct field_key k = { .field = field, .value = value };
	__u64 *n = bpf_map_lookup_elem(&ctx_seen, &k);
	__u64 one = 1;

	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&ctx_seen, &k, &one, BPF_NOEXIST);
}

static __always_inline void decrement_ttl(struct __sk_buff *skb, __u32 l3_off)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct iphdr *ip = data + l3_off;
	__u16 old_word, new_word;
	__u8 ttl;
	__s64 sum;

	barrier_var(ip);
	if ((void *)(ip + 1) > data_end || ip->ttl <= 1)
		return;
	ttl = ip->ttl - 1;
	old_word = *(__u16 *)((void *)ip + 8);
	new_word = old_word;
	*(__u8 *)&new_word = ttl;

	if (bpf_skb_store_bytes(skb, l3_off + 8, &ttl, 1, 0) ||
	    bpf_l3_csum_replace(skb, l3_off + 10, old_word, new_word, 2)) {
		tc_stats.ttl_failed++;
		return;
	}
	tc_stats.ttl_rewritten++;

	/* Packet pointers are invalid after the helpers: load them again. */
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	ip = data + l3_off;
	barrier_var(ip);
	if ((void *)(ip + 1) > data_end)
		return;
	sum = bpf_csum_diff(NULL, 0, (__be32 *)ip, sizeof(*ip), 0);
	if (sum >= 0) {
		sum = (sum & 0xffff) + (sum >> 16);
		sum = (sum & 0xffff) + (sum >> 16);
		if (sum == 0xffff)
			tc_stats.ttl_csum_ok++;
	}
}

SEC("tc")
int tc_classify(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	__u32 len = skb->len;
	struct parsed p;
	struct counter *c;
	__u32 mark, cls;
	__u8 dscp = 0;

	seen(F_PKT_TYPE, skb->pkt_type);
	seen(F_PROTOCOL, bpf_ntohs(skb->protocol));
	seen(F_IFINDEX, skb->ifindex);
	seen(F_INGRESS_IFINDEX, skb->ingress_ifindex);
	seen(F_VLAN_PRESENT, skb->vlan_present);
	seen(F_MARK_IN, skb->mark);
	seen(F_PRIORITY_IN, skb->priority);
	seen(F_QUEUE_MAPPING, skb->queue_mapping);
	seen(F_TC_INDEX_IN, skb->tc_index);
	seen(F_WIRE_LEN_IS_LEN, skb->wire_len == len);
	seen(F_CB0_IN, skb->cb[0]);
	seen(F_DATA_META_IS_DATA, skb->data_meta == skb->data);
	seen(F_LEN_MINUS_DATA, len - (__u32)(data_end - data));

	parse_packet(data, data_end, &p);
	cls = classify(&p);
	if (p.ip_ver == 4) {
		struct iphdr *ip = data + p.l3_off;

		barrier_var(ip);
		if ((void *)(ip + 1) <= data_end)
			dscp = ip->tos >> 2;
	}

	mark = cls | (__u32)p.vlans << 8;
	skb->mark = mark;
	skb->priority = dscp;
	skb->tc_index = cls;
	skb->cb[0] = len;
	skb->cb[1] = p.dport;
	skb->cb[2] = 0xc0ffee;

	c = bpf_map_lookup_elem(&by_mark, &mark);
	if (c) {
		__sync_fetch_and_add(&c->packets, 1);
		__sync_fetch_and_add(&c->bytes, len);
	} else {
		struct counter init = { .packets = 1, .bytes = len };

		bpf_map_update_elem(&by_mark, &mark, &init, BPF_NOEXIST);
	}

	if (cls == CLS_MALFORMED)
		return TC_ACT_SHOT;
	if (p.ip_ver == 4 && p.ihl == 5 && !p.frag)
		decrement_ttl(skb, p.l3_off);
	if (cls == CLS_UDP && p.dport == 8080)
		return TC_ACT_SHOT;
	if (cls == CLS_ARP)
		return TC_ACT_UNSPEC;
	if (cls == CLS_ICMP || cls == CLS_ICMPV6)
		return TC_ACT_PIPE;
	return TC_ACT_OK;
}

TEST_LICENSE;
