/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * Native stand-in for libbpf's <bpf/bpf_helpers.h>, found before the system one because
 * crates/bench/build.rs puts native/shim first on the include path.
 *
 * It gives the libbpf conventions the benchmarked programs use a native meaning:
 * - SEC(): nothing (sections only matter to a BPF loader);
 * - __uint/__type/__array: the same pointer-field encoding of a BTF map definition, read back
 *   with sizeof by the helper macros (bpfkit_native_maps.h);
 * - barrier_var(): an empty asm that makes the compiler forget what it knows of a variable;
 * - the helpers: macros over native maps (array lookups inline, hash and LPM in native/maps.c).
 * Only the helpers below exist: a program calling another one does not compile natively.
 */
#ifndef BPFKIT_NATIVE_BPF_HELPERS_H
#define BPFKIT_NATIVE_BPF_HELPERS_H

#include "bpfkit_native_maps.h"

#define SEC(name)

#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif
#ifndef __noinline
#define __noinline __attribute__((noinline))
#endif

#define __uint(name, val) int(*name)[val]
#define __type(name, val) __typeof__(val) *name
#define __array(name, val) __typeof__(val) *name[]

#define barrier() __asm__ __volatile__("" ::: "memory")
#define barrier_var(var) __asm__ __volatile__("" : "+r"(var))

#ifndef likely
#define likely(x) __builtin_expect(!!(x), 1)
#endif
#ifndef unlikely
#define unlikely(x) __builtin_expect(!!(x), 0)
#endif

/* void *bpf_map_lookup_elem(map, key): array maps are indexed inline (as the kernel's JIT
 * inlines array lookups), the others go through native/maps.c. */
#define bpf_map_lookup_elem(map, key)                                                              \
	(BPFKIT_MAP_IS_ARRAY(map) ? bpfkit_array_elem(BPFKIT_MAP_STATE(map), bpfkit_u32_at(key),         \
						      BPFKIT_MAP_MAX_ENTRIES(map),                 \
						      BPFKIT_MAP_VALUE_STRIDE(map))                \
				  : bpfkit_map_lookup(BPFKIT_MAP_STATE(map), (key)))

/* long bpf_map_update_elem(map, key, value, flags) */
#define bpf_map_update_elem(map, key, value, flags)                                                \
	bpfkit_map_update(BPFKIT_MAP_STATE(map), (key), (value), (flags))

/* long bpf_map_delete_elem(map, key) */
#define bpf_map_delete_elem(map, key) bpfkit_map_delete(BPFKIT_MAP_STATE(map), (key))

#endif
