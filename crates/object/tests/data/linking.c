#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 4); __type(key, __u32); __type(value, __u64); } counts SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 16); __type(key, __u32); __type(value, __u64); } h SEC(".maps");
volatile const __u32 drop_port = 53;
__u64 total = 0;
__u64 zeroed;
char msg[] = "hello";
static __attribute__((noinline)) int bump(__u32 k) { __u64 *v = bpf_map_lookup_elem(&counts, &k); if (v) __sync_fetch_and_add(v, 1); return 0; }
__attribute__((noinline)) int gfun(int x) { return x + drop_port; }
SEC("xdp") int prog(struct xdp_md *ctx) {
  void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
  if (data + 14 > end) return XDP_ABORTED;
  bump(1); total++; zeroed += 2;
  bpf_printk("x %d", gfun(3));
  return ctx->ingress_ifindex == drop_port ? XDP_DROP : XDP_PASS;
}
SEC("socket") int sock(struct __sk_buff *skb) { bump(2); return skb->len; }
char LICENSE[] SEC("license") = "GPL";
