// build-flags: -mllvm -bpf-min-jump-table-entries=4
// SPDX-License-Identifier: MIT OR Apache-2.0
//
// Indirect jumps (gotox) and the jump tables LLVM emits for `switch` (.jumptables): bpfkit's
// counterparts of the kernel's bpf_gotox selftests (kernel-spec §11.3, same vectors), plus
// switches of 4 to 256 cases. Every program is a syscall program over a context holding its
// input; the result is in `ret_user` (and r0 for the sized switches). Expected results are
// in crates/bpfkit/tests/data/gotox.cases.
//
// The cases have side effects on `some_var` so that clang cannot turn a switch into a lookup
// table of constants; hand-written tables (inline asm) cover the shapes clang does not emit
// from C: one gotox fed by two tables, one table read by two gotox, a non-zero load offset.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct args {
	__u64 x;
};

struct args2 {
	__u64 sel;
	__u64 v;
};

__u64 ret_user;
__u64 some_var;

/* One of four operations on v, chosen by k (used to give cases code of their own). */
#define OP(k, v)                                                                                                       \
	((k) % 4 == 0   ? (v) * ((k) + 3)                                                                              \
	 : (k) % 4 == 1 ? (v) ^ ((__u64)(k) * 0x1234567)                                                               \
	 : (k) % 4 == 2 ? ((v) << ((k) % 13)) + (k)                                                                    \
			: ((v) >> ((k) % 7)) - (k) * 3)

/* 0..5 -> 2, 3, 4, 5, 7, 19; anything else -> 19. */
#define ONE_SWITCH(x, out)                                                                                             \
	switch (x) {                                                                                                   \
	case 0: some_var += 1; out = 2; break;                                                                         \
	case 1: some_var ^= 3; out = 3; break;                                                                         \
	case 2: some_var *= 5; out = 4; break;                                                                         \
	case 3: some_var -= 7; out = 5; break;                                                                         \
	case 4: some_var |= 9; out = 7; break;                                                                         \
	case 5: some_var <<= 1; out = 19; break;                                                                       \
	default: some_var = 0; out = 19; break;                                                                        \
	}

SEC("syscall")
int one_switch(struct args *a)
{
	__u64 r;

	ONE_SWITCH(a->x, r);
	ret_user = r;
	return 0;
}

/* Not the first program of its section: table entries are section-relative. */
SEC("syscall")
int one_switch_non_zero_sec_offset(struct args *a)
{
	__u64 r;

	ONE_SWITCH(a->x, r);
	ret_user = r;
	return 0;
}

/* 0..5, 77 -> 103, 104, 107, 205, 115, 1019, 1019. */
SEC("syscall")
int two_switches(struct args *a)
{
	__u64 x = a->x, hi, lo;

	switch (x) {
	case 0: some_var += 2; hi = 100; break;
	case 1: some_var ^= 4; hi = 100; break;
	case 2: some_var *= 6; hi = 100; break;
	case 3: some_var -= 8; hi = 200; break;
	case 4: some_var |= 10; hi = 100; break;
	default: some_var = 1; hi = 1000; break;
	}
	/* Hide that this is the same value, or clang folds both switches into one table. */
	asm volatile("" : "+r"(x));
	switch (x) {
	case 0: some_var += 1; lo = 3; break;
	case 1: some_var ^= 3; lo = 4; break;
	case 2: some_var *= 5; lo = 7; break;
	case 3: some_var -= 7; lo = 5; break;
	case 4: some_var |= 9; lo = 15; break;
	default: some_var <<= 2; lo = 19; break;
	}
	ret_user = hi + lo;
	return 0;
}

/* A 256-entry table over x & 0xff: 0, 11, 27, 31 -> 2, 3, 4, 5; anything else -> 19. The
 * other multiples of 8 are cases of their own (with other side effects), so that the table
 * spans the whole byte. */
#define E(k) case (k): some_var = OP((k) / 8, some_var); r = 19; break;
#define E4(b) E((b)) E((b) + 8) E((b) + 16) E((b) + 24)

SEC("syscall")
int big_jump_table(struct args *a)
{
	__u64 r;

	switch (a->x & 0xff) {
	case 0: some_var += 1; r = 2; break;
	case 11: some_var ^= 3; r = 3; break;
	case 27: some_var *= 5; r = 4; break;
	case 31: some_var -= 7; r = 5; break;
	E(8) E(16) E(24) E4(32) E4(64) E4(96) E4(128) E4(160) E4(192) E4(224)
	case 255: some_var |= 0x80; r = 19; break;
	default: some_var = 0; r = 19; break;
	}
	ret_user = r;
	return 0;
}

/* A switch in a subprogram linked into two programs: each gets its own table. */
static __attribute__((noinline)) __u64 switch_static(__u64 x)
{
	__u64 r;

	ONE_SWITCH(x, r);
	return r;
}

__attribute__((noinline)) __u64 switch_global(__u64 x)
{
	__u64 r;

	ONE_SWITCH(x, r);
	return r;
}

SEC("syscall")
int static_global_1(struct args *a)
{
	ret_user = switch_static(a->x);
	return 0;
}

SEC("syscall")
int static_global_2(struct args *a)
{
	ret_user = switch_static(a->x);
	return 0;
}

SEC("syscall")
int nonstatic_global_1(struct args *a)
{
	ret_user = switch_global(a->x);
	return 0;
}

SEC("syscall")
int nonstatic_global_2(struct args *a)
{
	ret_user = switch_global(a->x);
	return 0;
}

/* One gotox fed by two tables: 0..5, 77 -> 12, 15, 7, 15, 12, 15, 15. */
SEC("syscall")
__attribute__((naked)) int one_jump_two_maps(void *ctx)
{
	asm volatile(
	"r1 = *(u64 *)(r1 + 0);"
	"if r1 > 5 goto l_b%=;"
	"if r1 > 2 goto second%=;"
	"r1 <<= 3;"
	"r2 = jt_a%= ll;"
	"goto join%=;"
"second%=:"
	"r1 += -3;"
	"r1 <<= 3;"
	"r2 = jt_b%= ll;"
"join%=:"
	"r2 += r1;"
	"r2 = *(u64 *)(r2 + 0);"
	"gotox r2;"
"l_a%=:	r0 = 12; goto out%=;"
"l_b%=:	r0 = 15; goto out%=;"
"l_c%=:	r0 = 7;"
"out%=:"
	"r1 = ret_user ll;"
	"*(u64 *)(r1 + 0) = r0;"
	"r0 = 0;"
	"exit;"
	".pushsection .jumptables,\"\",@progbits;"
"jt_a%=: .quad l_a%= - syscall; .quad l_b%= - syscall; .quad l_c%= - syscall;"
	".size jt_a%=, 24; .global jt_a%=;"
"jt_b%=: .quad l_b%= - syscall; .quad l_a%= - syscall; .quad l_b%= - syscall;"
	".size jt_b%=, 24; .global jt_b%=;"
	".popsection;"
	::: "memory");
}

/* One table read by two gotox: the program owns exactly one instruction array.
 * 0..2 -> 10, 20, 30 through the first jump, x - 3 for 3..5 through the second; else 99. */
SEC("syscall")
__attribute__((naked)) int one_map_two_jumps(void *ctx)
{
	asm volatile(
	"r1 = *(u64 *)(r1 + 0);"
	"if r1 > 5 goto other%=;"
	"if r1 > 2 goto second%=;"
	"r1 <<= 3;"
	"r2 = jt%= ll;"
	"r2 += r1;"
	"r2 = *(u64 *)(r2 + 0);"
	"gotox r2;"
"second%=:"
	"r1 += -3;"
	"r1 <<= 3;"
	"r2 = jt%= ll;"
	"r2 += r1;"
	"r2 = *(u64 *)(r2 + 0);"
	"gotox r2;"
"l0%=:	r0 = 10; goto out%=;"
"l1%=:	r0 = 20; goto out%=;"
"l2%=:	r0 = 30; goto out%=;"
"other%=: r0 = 99;"
"out%=:"
	"r1 = ret_user ll;"
	"*(u64 *)(r1 + 0) = r0;"
	"r0 = 0;"
	"exit;"
	".pushsection .jumptables,\"\",@progbits;"
"jt%=: .quad l0%= - syscall; .quad l1%= - syscall; .quad l2%= - syscall;"
	".size jt%=, 24; .global jt%=;"
	".popsection;"
	::: "memory");
}

/* The entry is read at a non-zero offset from the scaled index (newer LLVM emits
 * `r1 = *(u64 *)(r1 + 0x10)`): x == 2 -> 5, else 1. */
SEC("syscall")
__attribute__((naked)) int load_with_nonzero_offset(void *ctx)
{
	asm volatile(
	"r1 = *(u64 *)(r1 + 0);"
	"r0 = 1;"
	"if r1 != 2 goto out%=;"
	"r1 += -2;"
	"r1 <<= 3;"
	"r2 = jt%= ll;"
	"r2 += r1;"
	"r2 = *(u64 *)(r2 + 0x10);"
	"gotox r2;"
"one%=:	r0 = 1; goto out%=;"
"five%=: r0 = 5;"
"out%=:"
	"r1 = ret_user ll;"
	"*(u64 *)(r1 + 0) = r0;"
	"r0 = 0;"
	"exit;"
	".pushsection .jumptables,\"\",@progbits;"
"jt%=: .quad one%= - syscall; .quad one%= - syscall; .quad five%= - syscall; .quad one%= - syscall;"
	".size jt%=, 32; .global jt%=;"
	".popsection;"
	::: "memory");
}

/* Sized switches: case k computes one of four operations on v (so no lookup table). */
#define C(k) case (k): r = OP(k, v); break;
#define C4(b) C((b)) C((b) + 1) C((b) + 2) C((b) + 3)
#define C16(b) C4(b) C4((b) + 4) C4((b) + 8) C4((b) + 12)
#define C64(b) C16(b) C16((b) + 16) C16((b) + 32) C16((b) + 48)

#define SIZED(name, CASES)                                                                                             \
	SEC("syscall")                                                                                                 \
	int name(struct args2 *a)                                                                                      \
	{                                                                                                              \
		__u64 v = a->v, r;                                                                                     \
		switch (a->sel) {                                                                                      \
			CASES                                                                                          \
		default:                                                                                               \
			r = 0xdead;                                                                                    \
		}                                                                                                      \
		ret_user = r;                                                                                          \
		return (int)r;                                                                                         \
	}

SIZED(switch_4, C4(0))
SIZED(switch_8, C4(0) C4(4))
SIZED(switch_16, C16(0))
SIZED(switch_32, C16(0) C16(16))
SIZED(switch_64, C64(0))
SIZED(switch_128, C64(0) C64(64))
SIZED(switch_256, C64(0) C64(64) C64(128) C64(192))

char _license[] SEC("license") = "GPL";
