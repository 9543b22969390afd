/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * Native stand-in for libbpf's <bpf/bpf_endian.h> on a little-endian host (x86-64): network
 * order is a byte swap. The builtins fold constants, so bpf_htons(0x1fff) stays a constant.
 */
#ifndef BPFKIT_NATIVE_BPF_ENDIAN_H
#define BPFKIT_NATIVE_BPF_ENDIAN_H

#include <linux/types.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the native shim assumes a little-endian host"
#endif

#define bpf_htons(x) ((__be16)__builtin_bswap16((__u16)(x)))
#define bpf_ntohs(x) ((__u16)__builtin_bswap16((__u16)(x)))
#define bpf_htonl(x) ((__be32)__builtin_bswap32((__u32)(x)))
#define bpf_ntohl(x) ((__u32)__builtin_bswap32((__u32)(x)))
#define bpf_cpu_to_be64(x) ((__be64)__builtin_bswap64((__u64)(x)))
#define bpf_be64_to_cpu(x) ((__u64)__builtin_bswap64((__u64)(x)))

#endif
