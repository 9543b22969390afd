// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * XDP program over the hash and array map families: ARRAY, PERCPU_ARRAY, HASH, PERCPU_HASH,
 * LRU_HASH and LRU_PERCPU_HASH, with lookup, update (BPF_ANY, BPF_NOEXIST, BPF_EXIST) and delete.
 * The LRU maps are sized so that they never evict (the kernel's eviction order is an
 * implementation detail that no other runtime is expected to reproduce).
 *
 * Returns XDP_DROP for malformed frames, XDP_TX for ARP, XDP_PASS otherwise.
 */
#include "common.h"

/* Packets and bytes per traffic class (enum cls), atomic adds. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, CLS_MAX);
	__type(key, __u32);
	__type(value, struct counter);
} class_stats SEC(".maps");

/* Packets per traffic class, per CPU, plain adds. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CLS_MAX);
	__type(key, __u32);
	__type(value, __u64);
} class_pcpu SEC(".maps");

/* Packets and bytes per EtherType (after VLAN tags); created with BPF_NOEXIST. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u16);
	__type(value, struct counter);
} by_ethertype SEC(".maps");

/* Packets per IP protocol number, per CPU; read-modify-write with BPF_EXIST. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} by_l4_pcpu SEC(".maps");

struct flow4 {
	__u32 saddr;
	__u32 daddr;
	__u16 sport;
	__u16 dport;
};

/* IPv4 TCP flows opened by a SYN (no ACK) and not yet closed by FIN or RST. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct flow4);
	__type(value, __u32);
} open_flows SEC(".maps");

/* Packets per IPv4 source address (never more than a few dozen sources). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} by_saddr_lru SEC(".maps");

/* Bytes per well-known destination port (ports >= 1024 share key 0xffff), per CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u16);
	__type(value, __u64);
} by_dport_lru_pcpu SEC(".maps");

/* Results of the map operations whose outcome is checked (global data, .bss). */
struct op_stats {
	__u64 noexist_created;
	__u64 noexist_eexist;
	__u64 exist_ok;
	__u64 exist_enoent;
	__u64 flow_added;
	__u64 flow_deleted;
	__u64 flow_delete_enoent;
	__u64 lru_created;
} ops;

static __always_inline void count_ethertype(__u16 ethertype, __u64 len)
{
	struct counter *c = bpf_map_lookup_elem(&by_ethertype, &ethertype);
	struct counter init = { .packets = 1, .bytes = len };
	long err;

	if (c) {
		__sync_fetch_and_add(&c->packets, 1);
		__sync_fetch_and_add(&c->bytes, len);
		/* Creating it again must fail. */
		err = bpf_map_update_elem(&by_ethertype, &ethertype, &init, BPF_NOEXIST);
		if (err == -17 /* EEXIST */)
			ops.noexist_eexist++;
		return;
	}
	err = bpf_map_update_elem(&by_ethertype, &ethertype, &init, BPF_NOEXIST);
	if (err == 0)
		ops.noexist_created++;
}

static __always_inline void count_l4(__u32 proto)
{
	__u64 *v = bpf_map_lookup_elem(&by_l4_pcpu, &proto);
	__u64 next = 1;
	long err;

	if (v)
		next = *v + 1;
	err = bpf_map_update_elem(&by_l4_pcpu, &proto, &next, BPF_EXIST);
	if (err == 0) {
		ops.exist_ok++;
	} else if (err == -2 /* ENOENT */) {
		ops.exist_enoent++;
		bpf_map_update_elem(&by_l4_pcpu, &proto, &next, BPF_ANY);
	}
}

static __always_inline void track_flow(const struct parsed *p)
{
	struct flow4 key = {
		.saddr = p->saddr4,
		.daddr = p->daddr4,
		.sport = p->sport,
		.dport = p->dport,
	};
	__u32 one = 1;

	if ((p->tcp_flags & (TCPF_SYN | TCPF_ACK)) == TCPF_SYN) {
		if (bpf_map_update_elem(&open_flows, &key, &one, BPF_ANY) == 0)
			ops.flow_added++;
	} else if (p->tcp_flags & (TCPF_FIN | TCPF_RST)) {
		/* Close both directions. */
		long err = bpf_map_delete_elem(&open_flows, &key);
		struct flow4 rev = {
			.saddr = p->daddr4,
			.daddr = p->saddr4,
			.sport = p->dport,
			.dport = p->sport,
		};

		if (err == 0)
			ops.flow_deleted++;
		else if (err == -2)
			ops.flow_delete_enoent++;
		if (bpf_map_delete_elem(&open_flows, &rev) == 0)
			ops.flow_deleted++;
	}
}

SEC("xdp")
int maps_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u64 len = data_end - data;
	struct parsed p;
	__u32 cls;
	struct counter *c;
	__u64 *pc;

	parse_packet(data, data_end, &p);
	cls = classify(&p);

	c = bpf_map_lookup_elem(&class_stats, &cls);
	if (c) {
		__sync_fetch_and_add(&c->packets, 1);
		__sync_fetch_and_add(&c->bytes, len);
	}
	pc = bpf_map_lookup_elem(&class_pcpu, &cls);
	if (pc)
		*pc += 1;

	if (p.malformed)
		return XDP_DROP;

	count_ethertype(p.eth_proto, len);
	if (p.ip_ver)
		count_l4(p.l4);

	if (p.ip_ver == 4) {
		__u64 *n = bpf_map_lookup_elem(&by_saddr_lru, &p.saddr4);

		if (n) {
			__sync_fetch_and_add(n, 1);
		} else {
			__u64 one = 1;

			if (bpf_map_update_elem(&by_saddr_lru, &p.saddr4, &one, BPF_NOEXIST) == 0)
				ops.lru_created++;
		}
		if (cls == CLS_TCP)
			track_flow(&p);
	}

	if (cls == CLS_TCP || cls == CLS_UDP) {
		__u16 port = p.dport < 1024 ? p.dport : 0xffff;
		__u64 *b = bpf_map_lookup_elem(&by_dport_lru_pcpu, &port);

		if (b) {
			*b += len;
		} else {
			bpf_map_update_elem(&by_dport_lru_pcpu, &port, &len, BPF_ANY);
		}
	}

	return p.eth_proto == ETH_P_ARP ? XDP_TX : XDP_PASS;
}

TEST_LICENSE;
