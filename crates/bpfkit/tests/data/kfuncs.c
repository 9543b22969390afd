// Programs for the runtime's API tests: a kfunc resolved by name, a host helper, a .kconfig
// extern, and a program type bpfkit does not run.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

extern int bpfkit_test_add(int a, int b) __ksym;
extern unsigned int CONFIG_HZ __kconfig;

struct args {
	int x;
	int result;
	unsigned int hz;
};

static long (*host_double)(long v) = (void *)1000;

SEC("syscall")
int call_kfunc(struct args *a)
{
	a->result = bpfkit_test_add(a->x, 2);
	a->hz = CONFIG_HZ;
	return 0;
}

SEC("syscall")
int call_host_helper(struct args *a)
{
	a->result = host_double(a->x);
	return 7;
}

SEC("kprobe/do_nanosleep")
int probe(void *ctx)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
