// Test input for bpfkit-btf: CO-RE relocations (.BTF.ext core_relo records).
// Build: see build.sh in this directory.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

struct task {
	int pid;
	struct {
		unsigned int flags;
		char comm[16];
	} info;
	unsigned int state : 4;
} __attribute__((preserve_access_index));

enum task_state { TASK_RUNNING = 0, TASK_DEAD = 64 };

typedef struct task task_t;

SEC("kprobe/do_exit")
int probe(struct task *t)
{
	int r = BPF_CORE_READ(t, pid);
	r += BPF_CORE_READ(t, info.comm[1]);
	r += BPF_CORE_READ_BITFIELD_PROBED(t, state);
	if (bpf_core_field_exists(t->info.flags))
		r += bpf_core_field_size(t->info.flags);
	r += bpf_core_field_offset(t->info.comm);
	if (bpf_core_type_exists(task_t))
		r += bpf_core_type_size(struct task);
	if (bpf_core_enum_value_exists(enum task_state, TASK_DEAD))
		r += bpf_core_enum_value(enum task_state, TASK_DEAD);
	r += bpf_core_type_id_kernel(struct task);
	r += bpf_core_type_matches(struct task);
	return r;
}

char LICENSE[] SEC("license") = "GPL";
