/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * First include of every natively compiled BPF program (crates/bench/native/programs/).
 *
 * The one thing the BPF sources cannot keep natively is the XDP context: `struct xdp_md` has
 * 32-bit `data`/`data_end`/`data_meta` fields that the kernel (and bpfkit) rewrite into pointer
 * loads, while a native program needs real 64-bit pointers there. So the UAPI struct is renamed
 * while <linux/bpf.h> is parsed (its include guard then makes the program's own
 * `#include <linux/bpf.h>` a no-op) and `struct xdp_md` is declared again with pointer-sized
 * fields. The program's `(void *)(long)ctx->data` then yields the packet pointer unchanged.
 */
#ifndef BPFKIT_NATIVE_PRELUDE_H
#define BPFKIT_NATIVE_PRELUDE_H

#ifdef _UAPI__LINUX_BPF_H__
#error "bpfkit_native_prelude.h must be included before <linux/bpf.h>"
#endif

#define xdp_md bpfkit_uapi_xdp_md
#include <linux/bpf.h>
#undef xdp_md

/* The native XDP context; crates/bench/src/engine/native.rs declares the same layout. */
struct xdp_md {
	__u64 data;
	__u64 data_end;
	__u64 data_meta;
	__u32 ingress_ifindex;
	__u32 rx_queue_index;
	__u32 egress_ifindex;
};

#endif
