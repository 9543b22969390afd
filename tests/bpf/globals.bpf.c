// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * XDP program over global data and BPF-to-BPF calls.
 *
 * Global data: .data (initialised variables), .bss (zero-initialised), .rodata (a
 * `const volatile` knob and a const table) and a custom section .data.counters.
 * Calls: static subprograms (weight_of, score; score calls weight_of), and global functions
 * (len_bucket with a scalar argument, first_byte with the context), which the verifier checks
 * on their own.
 *
 * Returns XDP_DROP for frames of 1024 bytes or more (bucket 4), XDP_PASS otherwise.
 */
#include "common.h"

/* .data */
__u64 data_packets = 1000;
char greeting[16] = "hello, bpfkit";

/* .bss */
__u64 bss_score[CLS_MAX];
__u64 bss_buckets[8];
__s64 bss_first_byte_sum;

/* .rodata */
const volatile __u32 len_divisor = 64;
static const __u8 weights[CLS_MAX] = { 1, 2, 3, 4, 5, 6, 7, 8, 9 };

/* custom data section */
__u64 ctr_packets SEC(".data.counters") = 0;
__u64 ctr_bytes SEC(".data.counters") = 0;
__u32 ctr_magic SEC(".data.counters") = 0xfeedf00d;
__u32 ctr_calls SEC(".data.counters") = 0;

static __noinline __u32 weight_of(__u32 cls)
{
	ctr_calls++;
	return cls < CLS_MAX ? weights[cls] : 0;
}

static __noinline __u64 score(__u32 cls, __u32 len)
{
	return (__u64)weight_of(cls) * (len / len_divisor + 1);
}

__noinline int len_bucket(__u32 len)
{
	if (len < 64)
		return 0;
	if (len < 128)
		return 1;
	if (len < 512)
		return 2;
	if (len < 1024)
		return 3;
	return 4;
}

__noinline int first_byte(struct xdp_md *ctx)
{
	__u8 *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;

	if ((void *)(data + 1) > data_end)
		return -1;
	return data[0];
}

SEC("xdp")
int globals_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 len = data_end - data;
	struct parsed p;
	__u32 cls;
	int bucket;

	parse_packet(data, data_end, &p);
	cls = classify(&p);

	data_packets++;
	greeting[0] = 'H';
	ctr_packets++;
	ctr_bytes += len;

	if (cls < CLS_MAX)
		bss_score[cls] += score(cls, len);
	bucket = len_bucket(len);
	/* The verifier knows nothing of a global function's result (clang does, hence the barrier):
	 * mask the index. */
	barrier_var(bucket);
	bss_buckets[(__u32)bucket & 7]++;
	bss_first_byte_sum += first_byte(ctx);

	return bucket == 4 ? XDP_DROP : XDP_PASS;
}

TEST_LICENSE;
