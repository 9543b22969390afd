// Test input for bpfkit-btf: exercises every BTF kind clang emits for -target bpf.
// Build: see build.sh in this directory.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define __tag(x) __attribute__((btf_decl_tag(x)))
#define __user __attribute__((btf_type_tag("user")))

struct opaque; /* FWD */
union opaque_u; /* FWD (union) */

enum color { RED, GREEN = 5, BLUE = -3 };
enum big_flags { SMALL = 1, HUGE = 0x123456789aULL };
enum neg64 { NEG = -0x100000000LL, POS = 7 };

struct bits {
	unsigned int a : 3;
	unsigned int b : 5;
	int c : 12;
	unsigned long long d : 40;
	char e;
} __tag("bits_struct");

union num {
	int i;
	float f;
	double d;
	unsigned char bytes[8];
};

typedef unsigned long long u64_t;
typedef int (*callback_t)(void *ctx, u64_t arg);

struct everything {
	_Bool flag;
	char ch;
	signed char sch;
	unsigned char uch;
	short s;
	unsigned short us;
	long l;
	unsigned long ul;
	long long ll;
	__int128 wide;
	unsigned __int128 uwide;
	float f;
	double d;
	long double ld;
	u64_t typed;
	const int cint;
	volatile int vint;
	int *restrict rptr;
	const volatile char *cvp;
	int matrix[3][4];
	struct bits bf;
	union num n;
	enum color col;
	enum big_flags bigf;
	enum neg64 n64;
	struct opaque *op;
	union opaque_u *opu;
	callback_t cb;
	void (*vfn)(int, ...);
	int __user *uptr;
	int tagged __tag("member_tag");
	struct {
		int inner_x;
		union {
			int inner_y;
			unsigned int inner_z;
		};
	};
	char tail[];
};

struct everything everything_global; /* .bss */
int counter = 42; /* .data */
const volatile int config_value = 7; /* .rodata */
static int static_counter SEC(".data.custom") = 3;
int tagged_var __tag("var_tag") = 1;

extern int LINUX_KERNEL_VERSION __kconfig;
extern _Bool CONFIG_BPF_SYSCALL __kconfig __weak;
extern const void bpf_prog_active __ksym;
extern int bpf_fake_kfunc(int x) __ksym;

static __attribute__((noinline)) int helper_static(int x)
{
	return x * 2 + static_counter;
}

__attribute__((noinline)) int helper_global(struct bits *b __tag("param_tag"), int __user *p) __tag("func_tag")
{
	return b->a + b->c + (p != 0);
}

SEC("xdp")
int prog_xdp(struct xdp_md *ctx)
{
	struct bits b = { .a = 1, .c = -2 };
	int r = helper_static(ctx->ingress_ifindex);
	r += helper_global(&b, 0);
	r += counter + config_value + LINUX_KERNEL_VERSION + CONFIG_BPF_SYSCALL;
	r += tagged_var + everything_global.col;
	if (r == 12345)
		r += bpf_fake_kfunc(r) + (long)&bpf_prog_active;
	return r & 1 ? XDP_PASS : XDP_DROP;
}

SEC("tc")
int prog_tc(struct __sk_buff *skb)
{
	callback_t cb = everything_global.cb;
	if (cb)
		return cb(skb, 3);
	return helper_static(skb->len);
}

char LICENSE[] SEC("license") = "GPL";
