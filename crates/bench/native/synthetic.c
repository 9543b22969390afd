/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * The two synthetic workloads of the comparison benchmark written in C, compiled with -O2: what
 * the host compiler makes of the same computation as crates/bench/src/workload.rs's BPF
 * programs (sum_1k and alu_loop_100k).
 */
#include <stdint.h>
#include <string.h>

/* Sum of the u64 words of [buf, buf + len), len a multiple of 8 (at least one word is read,
 * like the BPF loop, which tests at its bottom). */
uint64_t bpfkit_native_sum_words(const uint8_t *buf, uint64_t len)
{
	uint64_t sum = 0;
	uint64_t off = 0;

	do {
		uint64_t w;

		memcpy(&w, buf + off, 8);
		sum += w;
		off += 8;
	} while (off < len);
	return sum;
}

/* `iterations` rounds of add/xor/mul/sub (iterations >= 1). */
uint64_t bpfkit_native_alu_loop(uint64_t iterations)
{
	uint64_t r0 = 1;
	uint64_t r1 = iterations;

	do {
		r0 += r1;
		r0 ^= 0x5a;
		r0 *= 3;
		r1 -= 1;
	} while (r1 != 0);
	return r0;
}
