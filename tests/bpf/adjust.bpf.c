// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * XDP program that changes the frame: bpf_xdp_adjust_head, bpf_xdp_adjust_tail and
 * bpf_xdp_adjust_meta.
 *
 * - A frame with one 802.1Q tag loses it: the MAC addresses move 4 bytes up and
 *   bpf_xdp_adjust_head(+4) drops the tag (double-tagged frames are left alone).
 * - An IPv4 frame longer than its IP total length (Ethernet padding) is trimmed with
 *   bpf_xdp_adjust_tail(negative).
 * - Every other well-formed frame gets 8 bytes of metadata with bpf_xdp_adjust_meta(-8)
 *   ({magic 0xb9f0c0de, EtherType, traffic class, VLAN count}), then read back and checked.
 *
 * Returns XDP_TX for frames whose tag was stripped, XDP_PASS for the rest, XDP_DROP for
 * malformed frames and XDP_ABORTED if a helper fails or the metadata does not read back.
 */
#include "common.h"

struct meta {
	__u32 magic;
	__u16 ethertype;
	__u8 cls;
	__u8 vlans;
};

struct {
	__u64 stripped;
	__u64 strip_failed;
	__u64 trimmed;
	__u64 trimmed_bytes;
	__u64 trim_failed;
	__u64 meta_ok;
	__u64 meta_failed;
	__u64 meta_mismatch;
	__u64 out_bytes;
} adj_stats;

static __always_inline int strip_vlan(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u8 macs[12];

	if (data + 18 > data_end)
		return -1;
	__builtin_memcpy(macs, data, 12);
	if (bpf_xdp_adjust_head(ctx, 4))
		return -1;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if (data + 12 > data_end)
		return -1;
	__builtin_memcpy(data, macs, 12);
	return 0;
}

static __always_inline int trim_padding(struct xdp_md *ctx, const struct parsed *p)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 frame = data_end - data;
	__u32 want = p->l3_off + p->ip_len;
	int excess;

	if (p->ip_ver != 4 || p->ip_len < 20 || want >= frame)
		return 0;
	excess = frame - want;
	if (excess > 256)
		return 0;
	if (bpf_xdp_adjust_tail(ctx, -excess)) {
		adj_stats.trim_failed++;
		return -1;
	}
	adj_stats.trimmed++;
	adj_stats.trimmed_bytes += excess;
	return 0;
}

static __always_inline int add_meta(struct xdp_md *ctx, const struct parsed *p, __u8 cls)
{
	void *data, *meta_ptr;
	struct meta *m;

	if (bpf_xdp_adjust_meta(ctx, -(int)sizeof(struct meta))) {
		adj_stats.meta_failed++;
		return -1;
	}
	data = (void *)(long)ctx->data;
	meta_ptr = (void *)(long)ctx->data_meta;
	m = meta_ptr;
	if ((void *)(m + 1) > data)
		return -1;
	m->magic = 0xb9f0c0de;
	m->ethertype = p->eth_proto;
	m->cls = cls;
	m->vlans = p->vlans;

	/* Read it back through a fresh pointer. */
	meta_ptr = (void *)(long)ctx->data_meta;
	data = (void *)(long)ctx->data;
	m = meta_ptr;
	if ((void *)(m + 1) > data)
		return -1;
	if (m->magic != 0xb9f0c0de || m->cls != cls) {
		adj_stats.meta_mismatch++;
		return -1;
	}
	adj_stats.meta_ok++;
	return 0;
}

SEC("xdp")
int adjust_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct parsed p;
	__u8 cls;
	int ret = XDP_PASS;

	parse_packet(data, data_end, &p);
	cls = classify(&p);
	if (p.malformed)
		return XDP_DROP;

	if (p.vlans == 1) {
		if (strip_vlan(ctx)) {
			adj_stats.strip_failed++;
			return XDP_ABORTED;
		}
		adj_stats.stripped++;
		p.l3_off -= 4;
		ret = XDP_TX;
	}
	if (trim_padding(ctx, &p))
		return XDP_ABORTED;
	if (ret == XDP_PASS && add_meta(ctx, &p, cls))
		return XDP_ABORTED;

	adj_stats.out_bytes += (long)ctx->data_end - (long)ctx->data;
	return ret;
}

TEST_LICENSE;
