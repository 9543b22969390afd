// build-flags: -Iinclude
// SPDX-License-Identifier: MIT OR Apache-2.0
//
// Static keys with bpfkit's header (include/bpfkit/static_keys.h): the RFC selftest vectors
// (kernel-spec §11.4 check_syscall), a key in a subprogram shared by two programs, and a key
// flipped from BPF code. Every program is a syscall program; expectations are in
// crates/bpfkit/tests/static_keys.rs.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpfkit/static_keys.h>

DEFINE_STATIC_KEY(key_likely);
DEFINE_STATIC_KEY(key_unlikely);
DEFINE_STATIC_KEY(key_thrice);
DEFINE_STATIC_KEY(key_long);
DEFINE_STATIC_KEY(key1);
DEFINE_STATIC_KEY(key2);
DEFINE_STATIC_KEY(key_shared);
DEFINE_STATIC_KEY(key_flipped);
DEFINE_STATIC_KEY_TRUE(key_true);

/* ON -> 7, OFF -> 3 */
SEC("syscall")
int likely_key(void *ctx)
{
	if (bpf_static_branch_likely(&key_likely))
		return 7;
	return 3;
}

/* ON -> 7, OFF -> 3 */
SEC("syscall")
int unlikely_key(void *ctx)
{
	if (bpf_static_branch_unlikely(&key_unlikely))
		return 7;
	return 3;
}

/* One key used three times: ON -> 21, OFF -> 9. */
SEC("syscall")
int thrice(void *ctx)
{
	int r = 0;

	r += bpf_static_branch_unlikely(&key_thrice) ? 7 : 3;
	r += bpf_static_branch_likely(&key_thrice) ? 7 : 3;
	r += bpf_static_branch_unlikely(&key_thrice) ? 7 : 3;
	return r;
}

/* A long jump over 256 unrolled increments: ON -> 2000, OFF -> 1000. */
SEC("syscall")
int long_jump(void *ctx)
{
	volatile int v = 0;

	if (bpf_static_branch_unlikely(&key_long))
		return 2000;
#pragma clang loop unroll(full)
	for (int i = 0; i < 256; i++)
		v += 1;
	return v == 256 ? 1000 : -1;
}

/* Two keys: (key1, key2) off/off, on/off, off/on, on/on -> 0, 3, 30, 33. */
SEC("syscall")
int two_keys(void *ctx)
{
	int r = 0;

	if (bpf_static_branch_unlikely(&key1))
		r += 3;
	if (bpf_static_branch_likely(&key2))
		r += 30;
	return r;
}

static __attribute__((noinline)) int two_keys_sub(int x)
{
	int r = x;

	if (bpf_static_branch_unlikely(&key1))
		r += 300;
	if (bpf_static_branch_likely(&key2))
		r += 3000;
	return r;
}

/* The bpf-to-bpf variant: 0, 303, 3030, 3333. */
SEC("syscall")
int two_keys_bpf2bpf(void *ctx)
{
	int r = two_keys_sub(0);

	if (bpf_static_branch_unlikely(&key1))
		r += 3;
	if (bpf_static_branch_likely(&key2))
		r += 30;
	return r;
}

/* A key used by a subprogram linked into two programs: one key map per program. */
static __attribute__((noinline)) int shared_sub(int base)
{
	if (bpf_static_branch_unlikely(&key_shared))
		return base + 1;
	return base;
}

SEC("syscall")
int shared_a(void *ctx)
{
	return shared_sub(10);
}

SEC("syscall")
int shared_b(void *ctx)
{
	return shared_sub(20);
}

/* Flips key_flipped from BPF code: the context holds the new state. */
struct flip_args {
	__u32 on;
};

SEC("syscall")
int flipper(struct flip_args *a)
{
	return bpf_static_key_update(&key_flipped, a->on);
}

SEC("syscall")
int flipped(void *ctx)
{
	return bpf_static_branch_unlikely(&key_flipped) ? 1 : 0;
}

/* DEFINE_STATIC_KEY_TRUE: on until turned off. */
SEC("syscall")
int true_key(void *ctx)
{
	return bpf_static_branch_likely(&key_true) ? 1 : 0;
}

char _license[] SEC("license") = "GPL";
