// Legacy map definitions: libbpf's old `struct bpf_map_def` in a `maps` section, and the
// same section with iproute2's `struct bpf_elf_map` layout (in a second object).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct bpf_map_def {
	unsigned int type;
	unsigned int key_size;
	unsigned int value_size;
	unsigned int max_entries;
	unsigned int map_flags;
};

struct bpf_map_def SEC("maps") legacy_hash = {
	.type = BPF_MAP_TYPE_HASH, .key_size = 4, .value_size = 8, .max_entries = 64,
};
struct bpf_map_def SEC("maps") legacy_array = {
	.type = BPF_MAP_TYPE_ARRAY, .key_size = 4, .value_size = 16, .max_entries = 2, .map_flags = 0,
};

SEC("xdp")
int use_legacy(struct xdp_md *ctx)
{
	__u32 k = 1;
	__u64 *v = bpf_map_lookup_elem(&legacy_hash, &k);
	void *a = bpf_map_lookup_elem(&legacy_array, &k);
	return (v ? 1 : 0) + (a ? 2 : 0);
}

char LICENSE[] SEC("license") = "GPL";
