// Test input for bpfkit-btf: BTF-defined maps of several kinds.
// Build: see build.sh in this directory.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct key {
	__u32 a;
	__u16 b;
};

struct value {
	__u64 packets;
	__u64 bytes;
	char name[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, struct value);
} array_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct key);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} hash_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} ringbuf SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, 64);
	__uint(max_entries, 1);
} sized_map SEC(".maps");

/* The value is an array: `__type(value, int[4])` is a pointer to an array, like `__uint`. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, int[4]);
} array_value_map SEC(".maps");

struct inner_map {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, int);
	__type(value, int);
} inner0 SEC(".maps"), inner1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, int);
	__array(values, struct inner_map);
} outer_map SEC(".maps") = {
	.values = { &inner0, &inner1 },
};

int tail_target(struct __sk_buff *skb);

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__array(values, int(struct __sk_buff *));
} jump_table SEC(".maps") = {
	.values = { [1] = (void *)&tail_target },
};

SEC("socket")
int tail_target(struct __sk_buff *skb)
{
	return 1;
}

SEC("socket")
int entry(struct __sk_buff *skb)
{
	__u32 k = 0;
	struct value *v = bpf_map_lookup_elem(&array_map, &k);
	if (v) {
		v->packets++;
		v->bytes += skb->len;
	}
	struct key hk = { .a = skb->len, .b = 1 };
	__u64 *c = bpf_map_lookup_elem(&hash_map, &hk);
	if (c)
		(*c)++;
	void *inner = bpf_map_lookup_elem(&outer_map, &k);
	if (inner)
		bpf_map_lookup_elem(inner, &k);
	bpf_tail_call(skb, &jump_table, 1);
	bpf_ringbuf_output(&ringbuf, &k, sizeof(k), 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
