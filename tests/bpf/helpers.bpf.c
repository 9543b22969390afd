// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * XDP program over the helpers whose results a userspace runtime must reproduce, used only in
 * ways that keep the results independent of the clock and of randomness:
 *
 * - bpf_ktime_get_ns, bpf_ktime_get_boot_ns, bpf_ktime_get_coarse_ns, bpf_jiffies64: called
 *   twice per packet; the program counts the pairs that did not go backwards (all of them).
 * - bpf_get_prandom_u32: called and counted, the value is not used.
 * - bpf_get_smp_processor_id: per-CPU histogram (everything on CPU 0 when pinned there).
 * - bpf_trace_printk (bpf_printk): one line per packet, "helpers: seq=%u len=%u cls=%u"; the
 *   sum of its return values (the formatted length) is kept.
 * - bpf_snprintf: "<len>:<class name>:<dport>" into a global buffer (.bss, the last packet's
 *   text stays); the sum of its return values (length including the NUL) is kept.
 * - bpf_strncmp: that buffer against "60:tcp:" (only the sign of the result is kept).
 * - bpf_csum_diff: IPv4 header checksums (20-byte headers) checked straight from the packet,
 *   recomputed after a TTL decrement in a stack copy, and checked incrementally with a
 *   from/to diff; only folded 16-bit results are compared.
 * - bpf_loop: Collatz steps of the frame length (at most 300 iterations, the callback stops
 *   the loop at 1); the sums of iterations and of steps are kept.
 *
 * Returns XDP_DROP for malformed frames and IPv4 headers with a bad checksum, XDP_TX when the
 * snprintf text starts with "60:tcp:", XDP_PASS otherwise.
 */
#include "common.h"

struct {
	__u64 packets;
	__u64 ktime_mono;
	__u64 boot_mono;
	__u64 coarse_mono;
	__u64 jiffies_mono;
	__u64 prandom_calls;
	__u64 cpu_hits[4];
	__u64 cpu_other;
	__u64 printk_bytes;
	__u64 printk_errors;
	__u64 snprintf_bytes;
	__u64 snprintf_errors;
	__u64 strncmp_lt;
	__u64 strncmp_eq;
	__u64 strncmp_gt;
	__u64 csum_ok;
	__u64 csum_bad;
	__u64 csum_recomputed_ok;
	__u64 csum_incremental_ok;
	__u64 loop_iterations;
	__u64 loop_steps;
	__u64 loop_errors;
} hstats;

char text[32];

static const char cls_names[CLS_MAX][12] = {
	"other", "arp", "ipv4", "ipv6", "tcp", "udp", "icmp", "icmpv6", "malformed",
};

struct collatz {
	__u64 n;
	__u64 steps;
};

static long collatz_step(__u32 index, void *ctx)
{
	struct collatz *c = ctx;

	if (c->n <= 1)
		return 1;
	c->n = (c->n & 1) ? 3 * c->n + 1 : c->n / 2;
	c->steps++;
	return 0;
}

static __always_inline __u32 fold(__u64 csum)
{
	csum = (csum & 0xffff) + (csum >> 16);
	csum = (csum & 0xffff) + (csum >> 16);
	csum = (csum & 0xffff) + (csum >> 16);
	return csum;
}

/* 0: not a 20-byte IPv4 header, 1: checksum good, -1: bad. */
static __always_inline int check_ipv4(void *data, void *data_end, const struct parsed *p)
{
	struct iphdr *ip = data + p->l3_off;
	__u32 hdr[5], orig[5];
	__s64 sum;

	if (p->ip_ver != 4 || p->ihl != 5)
		return 0;
	barrier_var(ip);
	if ((void *)(ip + 1) > data_end)
		return 0;

	sum = bpf_csum_diff(NULL, 0, (__be32 *)ip, sizeof(*ip), 0);
	if (sum < 0 || fold(sum) != 0xffff) {
		hstats.csum_bad++;
		return -1;
	}
	hstats.csum_ok++;

	/* TTL - 1 in a copy, checksum recomputed from scratch. */
	__builtin_memcpy(hdr, ip, sizeof(hdr));
	__builtin_memcpy(orig, hdr, sizeof(hdr));
	((struct iphdr *)hdr)->ttl -= 1;
	((struct iphdr *)hdr)->check = 0;
	sum = bpf_csum_diff(NULL, 0, hdr, sizeof(hdr), 0);
	if (sum < 0)
		return 1;
	((struct iphdr *)hdr)->check = ~fold(sum) & 0xffff;
	sum = bpf_csum_diff(NULL, 0, hdr, sizeof(hdr), 0);
	if (sum >= 0 && fold(sum) == 0xffff)
		hstats.csum_recomputed_ok++;

	/* The same result incrementally: old header sum plus the diff from old to new. */
	sum = bpf_csum_diff(orig, sizeof(orig), hdr, sizeof(hdr), 0xffff);
	if (sum >= 0 && fold(sum) == 0xffff)
		hstats.csum_incremental_ok++;
	return 1;
}

SEC("xdp")
int helpers_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 len = data_end - data;
	__u32 seq = hstats.packets++;
	struct collatz c = { .n = len, .steps = 0 };
	struct parsed p;
	__u64 t1, t2;
	__u32 cpu, r, cls;
	long n;
	int csum, cmp;

	t1 = bpf_ktime_get_ns();
	t2 = bpf_ktime_get_ns();
	hstats.ktime_mono += t2 >= t1;
	t1 = bpf_ktime_get_boot_ns();
	t2 = bpf_ktime_get_boot_ns();
	hstats.boot_mono += t2 >= t1;
	t1 = bpf_ktime_get_coarse_ns();
	t2 = bpf_ktime_get_coarse_ns();
	hstats.coarse_mono += t2 >= t1;
	t1 = bpf_jiffies64();
	t2 = bpf_jiffies64();
	hstats.jiffies_mono += t2 >= t1;

	r = bpf_get_prandom_u32();
	barrier_var(r);
	hstats.prandom_calls++;

	cpu = bpf_get_smp_processor_id();
	if (cpu < 4)
		hstats.cpu_hits[cpu]++;
	else
		hstats.cpu_other++;

	parse_packet(data, data_end, &p);
	cls = classify(&p);

	n = bpf_printk("helpers: seq=%u len=%u cls=%u", seq, len, cls);
	if (n >= 0)
		hstats.printk_bytes += n;
	else
		hstats.printk_errors++;

	n = BPF_SNPRINTF(text, sizeof(text), "%u:%s:%u", len, cls_names[cls < CLS_MAX ? cls : 0], p.dport);
	if (n >= 0)
		hstats.snprintf_bytes += n;
	else
		hstats.snprintf_errors++;

	cmp = bpf_strncmp(text, 7, "60:tcp:");
	if (cmp < 0)
		hstats.strncmp_lt++;
	else if (cmp == 0)
		hstats.strncmp_eq++;
	else
		hstats.strncmp_gt++;

	n = bpf_loop(300, collatz_step, &c, 0);
	if (n >= 0) {
		hstats.loop_iterations += n;
		hstats.loop_steps += c.steps;
	} else {
		hstats.loop_errors++;
	}

	csum = check_ipv4(data, data_end, &p);
	if (p.malformed || csum < 0)
		return XDP_DROP;
	return cmp == 0 ? XDP_TX : XDP_PASS;
}

TEST_LICENSE;
