// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * XDP program over RINGBUF, QUEUE and STACK maps.
 *
 * - events (64 KiB ring buffer): bpf_ringbuf_output of a 16-byte record for every TCP SYN;
 *   for UDP a record is reserved, filled, then submitted (DNS) or discarded (others).
 * - small_rb (4 KiB ring buffer): a 64-byte record per well-formed packet with
 *   BPF_RB_NO_WAKEUP until it is full; failures are counted and change the return value.
 * - bpf_ringbuf_query: BPF_RB_AVAIL_DATA, BPF_RB_RING_SIZE, BPF_RB_CONS_POS and BPF_RB_PROD_POS
 *   of events after the last packet (nothing consumes during the run, so they only depend on
 *   the records: 8-byte header, length rounded up to 8).
 * - recent_len (QUEUE of 16 u32): every frame length pushed with BPF_EXIST (the oldest is
 *   dropped when full); every third packet pops one.
 * - ipv6_stack (STACK of 8 u32): IPv6 payload lengths pushed with flags 0 (fails when full),
 *   peeked every packet, popped for each ICMPv6 packet.
 *
 * Returns XDP_DROP when the small_rb record could not be reserved, XDP_PASS otherwise
 * (XDP_DROP for malformed frames too).
 */
#include "common.h"

struct event {
	__u32 len;
	__u16 sport;
	__u16 dport;
	__u8 proto;
	__u8 flags;
	__u16 vlans;
	__u32 seq;
};

struct big_event {
	__u32 seq;
	__u32 len;
	__u8 head[56];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} small_rb SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_QUEUE);
	__uint(max_entries, 16);
	__type(value, __u32);
} recent_len SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_STACK);
	__uint(max_entries, 8);
	__type(value, __u32);
} ipv6_stack SEC(".maps");

struct {
	__u32 seq;
	__u32 syn_out_ok;
	__u32 syn_out_fail;
	__u32 udp_submitted;
	__u32 udp_discarded;
	__u32 udp_reserve_fail;
	__u32 small_ok;
	__u32 small_fail;
	__u32 queue_push_fail;
	__u32 queue_popped;
	__u32 queue_pop_enoent;
	__u32 queue_pop_sum;
	__u32 stack_push_ok;
	__u32 stack_push_fail;
	__u32 stack_peek_ok;
	__u32 stack_peek_last;
	__u32 stack_popped;
	__u32 stack_pop_enoent;
	__u64 avail_data;
	__u64 ring_size;
	__u64 cons_pos;
	__u64 prod_pos;
} rb_stats;

SEC("xdp")
int ringbuf_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 len = data_end - data;
	__u32 seq = rb_stats.seq++;
	struct parsed p;
	enum cls cls;
	__u32 top;
	int ret = XDP_PASS;

	parse_packet(data, data_end, &p);
	cls = classify(&p);

	/* Queue: every frame length, the oldest overwritten when full. */
	if (bpf_map_push_elem(&recent_len, &len, BPF_EXIST))
		rb_stats.queue_push_fail++;
	if (seq % 3 == 2) {
		__u32 v;

		if (bpf_map_pop_elem(&recent_len, &v) == 0) {
			rb_stats.queue_popped++;
			rb_stats.queue_pop_sum += v;
		} else {
			rb_stats.queue_pop_enoent++;
		}
	}

	if (p.malformed)
		return XDP_DROP;

	/* Stack: IPv6 payload lengths. */
	if (p.ip_ver == 6) {
		__u32 plen = p.ip_len - 40;

		if (bpf_map_push_elem(&ipv6_stack, &plen, 0) == 0)
			rb_stats.stack_push_ok++;
		else
			rb_stats.stack_push_fail++;
	}
	if (bpf_map_peek_elem(&ipv6_stack, &top) == 0) {
		rb_stats.stack_peek_ok++;
		rb_stats.stack_peek_last = top;
	}
	if (cls == CLS_ICMPV6) {
		if (bpf_map_pop_elem(&ipv6_stack, &top) == 0)
			rb_stats.stack_popped++;
		else
			rb_stats.stack_pop_enoent++;
	}

	/* Ring buffer records. */
	if (cls == CLS_TCP && (p.tcp_flags & (TCPF_SYN | TCPF_ACK)) == TCPF_SYN) {
		struct event ev = {
			.len = len,
			.sport = p.sport,
			.dport = p.dport,
			.proto = p.l4,
			.flags = p.tcp_flags,
			.vlans = p.vlans,
			.seq = seq,
		};

		if (bpf_ringbuf_output(&events, &ev, sizeof(ev), 0) == 0)
			rb_stats.syn_out_ok++;
		else
			rb_stats.syn_out_fail++;
	} else if (cls == CLS_UDP) {
		struct event *ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);

		if (!ev) {
			rb_stats.udp_reserve_fail++;
		} else {
			ev->len = len;
			ev->sport = p.sport;
			ev->dport = p.dport;
			ev->proto = p.l4;
			ev->flags = 0;
			ev->vlans = p.vlans;
			ev->seq = seq;
			if (p.dport == 53 || p.sport == 53) {
				bpf_ringbuf_submit(ev, 0);
				rb_stats.udp_submitted++;
			} else {
				bpf_ringbuf_discard(ev, 0);
				rb_stats.udp_discarded++;
			}
		}
	}

	{
		struct big_event *big = bpf_ringbuf_reserve(&small_rb, sizeof(*big), 0);

		if (!big) {
			rb_stats.small_fail++;
			ret = XDP_DROP;
		} else {
			big->seq = seq;
			big->len = len;
			__builtin_memset(big->head, 0, sizeof(big->head));
			if (data + sizeof(big->head) <= data_end)
				__builtin_memcpy(big->head, data, sizeof(big->head));
			bpf_ringbuf_submit(big, BPF_RB_NO_WAKEUP);
			rb_stats.small_ok++;
		}
	}

	rb_stats.avail_data = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
	rb_stats.ring_size = bpf_ringbuf_query(&events, BPF_RB_RING_SIZE);
	rb_stats.cons_pos = bpf_ringbuf_query(&events, BPF_RB_CONS_POS);
	rb_stats.prod_pos = bpf_ringbuf_query(&events, BPF_RB_PROD_POS);
	return ret;
}

TEST_LICENSE;
