// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * XDP tail calls through a PROG_ARRAY filled declaratively (libbpf's `.values = { [i] = &prog }`).
 *
 * tail_entry parses the frame and tail-calls slot 0 (TCP), 1 (UDP), 2 (ICMP/ICMPv6) or 3 (slot
 * left empty here; tests/bpf/tailcall.init.json puts tail_other there). A failed tail call
 * falls through. tail_icmp tail-calls slot 4 (tail_last), a second hop in the same chain.
 *
 * Return values: tail_tcp XDP_DROP for destination port 22, else XDP_PASS; tail_udp XDP_TX for
 * DNS (either port 53), else XDP_PASS; tail_last XDP_PASS; tail_other XDP_PASS;
 * tail_entry (no tail call taken) XDP_DROP for malformed frames, else XDP_PASS.
 */
#include "common.h"

enum {
	HIT_ENTRY,
	HIT_TCP,
	HIT_UDP,
	HIT_ICMP,
	HIT_LAST,
	HIT_OTHER,
	HIT_FALLTHROUGH,  /* a tail call to an empty slot returned */
	HIT_ICMP_FALLTHROUGH,
	HIT_MAX,
};

/* Times each program ran. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, HIT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} hits SEC(".maps");

/* The programs the jump table holds, declared for its declarative initialisation. */
int tail_tcp(struct xdp_md *ctx);
int tail_udp(struct xdp_md *ctx);
int tail_icmp(struct xdp_md *ctx);
int tail_last(struct xdp_md *ctx);

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__array(values, int(void *));
} jump_table SEC(".maps") = {
	.values = {
		[0] = (void *)&tail_tcp,
		[1] = (void *)&tail_udp,
		[2] = (void *)&tail_icmp,
		[4] = (void *)&tail_last,
	},
};

static __always_inline void hit(__u32 which)
{
	__u64 *v = bpf_map_lookup_elem(&hits, &which);

	if (v)
		__sync_fetch_and_add(v, 1);
}

static __always_inline void parse_ctx(struct xdp_md *ctx, struct parsed *p)
{
	parse_packet((void *)(long)ctx->data, (void *)(long)ctx->data_end, p);
}

SEC("xdp")
int tail_tcp(struct xdp_md *ctx)
{
	struct parsed p;

	hit(HIT_TCP);
	parse_ctx(ctx, &p);
	return p.dport == 22 ? XDP_DROP : XDP_PASS;
}

SEC("xdp")
int tail_udp(struct xdp_md *ctx)
{
	struct parsed p;

	hit(HIT_UDP);
	parse_ctx(ctx, &p);
	return (p.dport == 53 || p.sport == 53) ? XDP_TX : XDP_PASS;
}

SEC("xdp")
int tail_last(struct xdp_md *ctx)
{
	hit(HIT_LAST);
	return XDP_PASS;
}

SEC("xdp")
int tail_other(struct xdp_md *ctx)
{
	hit(HIT_OTHER);
	return XDP_PASS;
}

SEC("xdp")
int tail_icmp(struct xdp_md *ctx)
{
	hit(HIT_ICMP);
	bpf_tail_call(ctx, &jump_table, 4);
	hit(HIT_ICMP_FALLTHROUGH);
	return XDP_ABORTED;
}

SEC("xdp")
int tail_entry(struct xdp_md *ctx)
{
	struct parsed p;
	__u32 slot;

	hit(HIT_ENTRY);
	parse_ctx(ctx, &p);
	switch (classify(&p)) {
	case CLS_TCP:
		slot = 0;
		break;
	case CLS_UDP:
		slot = 1;
		break;
	case CLS_ICMP:
	case CLS_ICMPV6:
		slot = 2;
		break;
	case CLS_MALFORMED:
		return XDP_DROP;
	default:
		slot = 3;
		break;
	}
	bpf_tail_call(ctx, &jump_table, slot);
	hit(HIT_FALLTHROUGH);
	return XDP_PASS;
}

TEST_LICENSE;
