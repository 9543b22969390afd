// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * A `syscall` program (BPF_PROG_TYPE_SYSCALL, sleepable): the context is a raw struct the
 * caller passes (struct args, 32 bytes), written back after the run.
 *
 * args->op selects an operation on a and b; the result goes to args->result and is the return
 * value (as a u32: -2 is 4294967294):
 *   0 a + b            1 gcd(a, b) with bpf_loop     2 sign of bpf_strncmp(name, "bpfkit")
 *   3 bpf_snprintf("op=%u a=%u b=%u name=%s") into a global buffer, returns its result
 *   4 kv[a] = b (HASH, BPF_ANY), returns the helper's result
 *   5 kv[a], or -2 (ENOENT)     6 delete kv[a], returns the helper's result
 *   7 push a onto fifo (QUEUE)  8 pop from fifo, returns the value or the error
 *   anything else: -22
 * The inputs are in tests/bpf/syscall.ctx (one hex context per line).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct args {
	__u32 op;
	__u32 a;
	__u32 b;
	__s32 result;
	char name[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u32);
} kv SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_QUEUE);
	__uint(max_entries, 4);
	__type(value, __u32);
} fifo SEC(".maps");

char out[64];
__u32 calls;

struct gcd_state {
	__u32 a;
	__u32 b;
};

static long gcd_step(__u32 index, void *ctx)
{
	struct gcd_state *s = ctx;
	__u32 t;

	if (s->b == 0)
		return 1;
	t = s->a % s->b;
	s->a = s->b;
	s->b = t;
	return 0;
}

SEC("syscall")
int syscall_prog(struct args *args)
{
	__u32 op = args->op, a = args->a, b = args->b;
	char name[16];
	__s32 r;

	calls++;
	__builtin_memcpy(name, args->name, sizeof(name));
	name[15] = 0;

	switch (op) {
	case 0:
		r = a + b;
		break;
	case 1: {
		struct gcd_state s = { .a = a, .b = b };

		r = bpf_loop(64, gcd_step, &s, 0) < 0 ? -1 : s.a;
		break;
	}
	case 2: {
		long c = bpf_strncmp(name, sizeof(name), "bpfkit");

		r = c < 0 ? -1 : c > 0 ? 1 : 0;
		break;
	}
	case 3: {
		__u64 fmt_args[4] = { op, a, b, (__u64)(long)name };

		r = bpf_snprintf(out, sizeof(out), "op=%u a=%u b=%u name=%s", fmt_args, sizeof(fmt_args));
		break;
	}
	case 4:
		r = bpf_map_update_elem(&kv, &a, &b, BPF_ANY);
		break;
	case 5: {
		__u32 *v = bpf_map_lookup_elem(&kv, &a);

		r = v ? (__s32)*v : -2;
		break;
	}
	case 6:
		r = bpf_map_delete_elem(&kv, &a);
		break;
	case 7:
		r = bpf_map_push_elem(&fifo, &a, 0);
		break;
	case 8: {
		__u32 v;

		r = bpf_map_pop_elem(&fifo, &v);
		if (r == 0)
			r = v;
		break;
	}
	default:
		r = -22;
	}
	args->result = r;
	return r;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
