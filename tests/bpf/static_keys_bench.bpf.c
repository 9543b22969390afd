// build-flags: -Iinclude
// SPDX-License-Identifier: MIT OR Apache-2.0
//
// The static-key benchmark (cargo bench -p bpfkit --bench static_keys): the same work loop with
// a debug path compiled out, behind a static key, behind a `volatile const` flag in .rodata,
// and behind a flag in an array map; and a key with 100 sites for the latency of set().
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpfkit/static_keys.h>

DEFINE_STATIC_KEY(debug_key);
DEFINE_STATIC_KEY(hundred);

const volatile int debug_flag = 0;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, 1);
} debug_map SEC(".maps");

__u64 debug_sum;

/* The bytes the work loop hashes (set by the benchmark through the .bss map). */
__u8 input[64];

#define WORK(CHECK)                                                                                        \
	__u64 h = 5381;                                                                                    \
	for (int i = 0; i < 64; i++) {                                                                     \
		h = h * 33 + input[i];                                                                  \
		if (CHECK)                                                                                 \
			debug_sum += h;                                                                    \
	}                                                                                                  \
	return (int)h;

SEC("syscall")
int compiled_out(void *ctx)
{
	WORK(0)
}

SEC("syscall")
int key_off(void *ctx)
{
	WORK(bpf_static_branch_unlikely(&debug_key))
}

SEC("syscall")
int rodata_flag(void *ctx)
{
	WORK(debug_flag)
}

SEC("syscall")
int map_flag(void *ctx)
{
	__u32 zero = 0;
	volatile __u32 *flag = bpf_map_lookup_elem(&debug_map, &zero);

	if (!flag)
		return 0;
	WORK(*flag)
}

#define SITE(n)                                                                                            \
	if (bpf_static_branch_unlikely(&hundred))                                                         \
		r += n;
#define SITE10(n) SITE(n) SITE(n + 1) SITE(n + 2) SITE(n + 3) SITE(n + 4) SITE(n + 5) SITE(n + 6) SITE(n + 7) SITE(n + 8) SITE(n + 9)

/* One key used at 100 sites. */
SEC("syscall")
int hundred_sites(void *ctx)
{
	int r = 0;

	SITE10(0) SITE10(10) SITE10(20) SITE10(30) SITE10(40) SITE10(50) SITE10(60) SITE10(70) SITE10(80) SITE10(90)
	return r;
}

char _license[] SEC("license") = "GPL";
