/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * Native maps for the natively compiled BPF programs (implementation: native/maps.c).
 *
 * A BTF-defined map (`struct { __uint(type, ...); __type(key, ...); ... } name SEC(".maps");`)
 * stays, natively, a zero-initialised global struct of pointer fields whose *types* carry the
 * definition (see bpf/bpf_helpers.h). The helper macros read type, key and value sizes and
 * max_entries back with sizeof at compile time, and keep the map's run-time state behind the
 * struct's `type` field, which nothing else reads natively: NULL until the first helper call on
 * the map creates the state.
 *
 * Semantics follow the kernel's for what the benchmarked programs do (BPF_ANY / BPF_NOEXIST /
 * BPF_EXIST, -EEXIST / -ENOENT / -E2BIG / -EINVAL / -ENOSPC); per-CPU maps have one CPU (the
 * benchmark runs everything on CPU slot 0); LRU hashes never evict (the test programs size them
 * so that the kernel never evicts either). Not thread-safe: one thread per program.
 */
#ifndef BPFKIT_NATIVE_MAPS_H
#define BPFKIT_NATIVE_MAPS_H

#include <linux/bpf.h>
#include <stddef.h>

struct bpfkit_map {
	/* Array maps: max_entries values of value_stride bytes each. */
	__u8 *values;
	__u32 type;
	__u32 key_size;
	__u32 value_size;
	__u32 max_entries;
	__u32 value_stride; /* value_size rounded up to 8, as the kernel lays out array values */
	/* Hash and LPM state (native/maps.c). */
	void *impl;
	/* The map expression as written at the first helper call ("&stats"), for messages. */
	const char *name;
};

struct bpfkit_map *bpfkit_map_new(__u32 type, __u32 key_size, __u32 value_size, __u32 max_entries,
				  const char *name);
void *bpfkit_map_lookup(struct bpfkit_map *map, const void *key);
long bpfkit_map_update(struct bpfkit_map *map, const void *key, const void *value, __u64 flags);
long bpfkit_map_delete(struct bpfkit_map *map, const void *key);

static inline __attribute__((always_inline)) void *bpfkit_array_elem(struct bpfkit_map *map, __u32 index,
									 __u32 max_entries, __u32 stride)
{
	return index < max_entries ? map->values + (size_t)index * stride : NULL;
}

/* An array map's key (read with memcpy: keys have whatever type the program gives them). */
static inline __attribute__((always_inline)) __u32 bpfkit_u32_at(const void *p)
{
	__u32 v;

	__builtin_memcpy(&v, p, sizeof(v));
	return v;
}

/* The definition, read back from the field types. */
#define BPFKIT_MAP_TYPE(m) ((__u32)(sizeof(*(m)->type) / sizeof(int)))
#define BPFKIT_MAP_MAX_ENTRIES(m) ((__u32)(sizeof(*(m)->max_entries) / sizeof(int)))
#define BPFKIT_MAP_KEY_SIZE(m) ((__u32)sizeof(*(m)->key))
#define BPFKIT_MAP_VALUE_SIZE(m) ((__u32)sizeof(*(m)->value))
#define BPFKIT_MAP_VALUE_STRIDE(m) ((BPFKIT_MAP_VALUE_SIZE(m) + 7u) & ~7u)
#define BPFKIT_MAP_IS_ARRAY(m) \
	(BPFKIT_MAP_TYPE(m) == BPF_MAP_TYPE_ARRAY || BPFKIT_MAP_TYPE(m) == BPF_MAP_TYPE_PERCPU_ARRAY)

/* The map's state, created on first use and kept in its `type` field (a pointer converted to
 * the field's pointer type and back, which C allows for suitably aligned objects). */
#define BPFKIT_MAP_STATE(m)                                                                        \
	(__builtin_expect((m)->type != 0, 1)                                                       \
		 ? (struct bpfkit_map *)(void *)(m)->type                                          \
		 : (struct bpfkit_map *)(void *)((m)->type = (void *)bpfkit_map_new(               \
			   BPFKIT_MAP_TYPE(m), BPFKIT_MAP_KEY_SIZE(m), BPFKIT_MAP_VALUE_SIZE(m), \
			   BPFKIT_MAP_MAX_ENTRIES(m), #m)))

/* For a program's wrapper (native/programs/): returns map m's state when `name` is its name. */
#define BPFKIT_MAP_BY_NAME(m, name)                                                                \
	do {                                                                                       \
		if (__builtin_strcmp((name), #m) == 0)                                             \
			return BPFKIT_MAP_STATE(&(m));                                             \
	} while (0)

/* The host side (the benchmark, through FFI): map initialisers and reading maps back. */

/* bpf_map_update_elem with explicit lengths: -EINVAL when a length is not the map's. */
long bpfkit_native_map_update(struct bpfkit_map *map, const void *key, __u64 key_len, const void *value,
			      __u64 value_len, __u64 flags);
__u32 bpfkit_native_map_key_size(const struct bpfkit_map *map);
__u32 bpfkit_native_map_value_size(const struct bpfkit_map *map);
__u32 bpfkit_native_map_max_entries(const struct bpfkit_map *map);
/* Element slot i (< max_entries) in storage order: 1 with its key and value copied out (an array
 * element's key is its index), 0 for a free slot. */
int bpfkit_native_map_element(const struct bpfkit_map *map, __u32 i, void *key, void *value);

#endif
