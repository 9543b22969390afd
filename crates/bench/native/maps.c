/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * Native maps of the comparison benchmark's natively compiled BPF programs (interface and
 * semantics: shim/bpfkit_native_maps.h).
 *
 * - Arrays: one calloc'd block, values 8-byte aligned (lookups are inline in the header).
 * - Hashes (HASH, PERCPU_HASH, LRU_HASH, LRU_PERCPU_HASH): max_entries preallocated elements
 *   (key then value) that never move, so a value pointer stays valid until its element is
 *   deleted; an open-addressing index (linear probing, power-of-two size >= 2 * max_entries)
 *   maps keys to elements; deletions leave tombstones, and the index is rebuilt when live
 *   entries plus tombstones pass 3/4 of it.
 * - LPM tries: the entries (at most max_entries, a few routes here) kept longest prefix first;
 *   a lookup returns the first entry whose prefix covers the key.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bpfkit_native_maps.h"

#define SLOT_EMPTY 0xffffffffu
#define SLOT_TOMB 0xfffffffeu

struct hash {
	__u32 key_stride;
	__u32 index_mask;
	__u32 live;
	__u32 tombs;
	__u32 *index; /* SLOT_EMPTY, SLOT_TOMB or an element number */
	__u8 *elems;  /* max_entries elements: key (key_stride bytes), then value */
	__u32 *free;  /* free element numbers, a stack */
	__u32 nfree;
	__u8 *used;   /* per element: in the map */
};

struct lpm {
	__u32 key_stride;
	__u32 data_bits; /* (key_size - 4) * 8: the longest prefix */
	__u32 n;
	__u32 *order; /* element numbers in use, longest prefix first */
	__u8 *elems;  /* key ({u32 prefixlen, data}), then value */
	__u32 *free;
	__u32 nfree;
};

static void die(const struct bpfkit_map *map, const char *what)
{
	fprintf(stderr, "bpfkit native maps: map %s: %s\n", map->name, what);
	abort();
}

static void *zalloc(const struct bpfkit_map *map, size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (!p)
		die(map, "out of memory");
	return p;
}

static int is_hash(__u32 type)
{
	return type == BPF_MAP_TYPE_HASH || type == BPF_MAP_TYPE_PERCPU_HASH || type == BPF_MAP_TYPE_LRU_HASH ||
	       type == BPF_MAP_TYPE_LRU_PERCPU_HASH;
}

static int is_array(__u32 type)
{
	return type == BPF_MAP_TYPE_ARRAY || type == BPF_MAP_TYPE_PERCPU_ARRAY;
}

static __u32 round8(__u32 n)
{
	return (n + 7u) & ~7u;
}

struct bpfkit_map *bpfkit_map_new(__u32 type, __u32 key_size, __u32 value_size, __u32 max_entries,
				  const char *name)
{
	struct bpfkit_map *map = calloc(1, sizeof(*map));

	if (!map) {
		fprintf(stderr, "bpfkit native maps: out of memory\n");
		abort();
	}
	map->type = type;
	map->key_size = key_size;
	map->value_size = value_size;
	map->max_entries = max_entries;
	map->value_stride = round8(value_size);
	map->name = name;
	if (is_array(type)) {
		if (key_size != 4)
			die(map, "array keys are 4 bytes");
		map->values = zalloc(map, max_entries, map->value_stride);
	} else if (is_hash(type)) {
		struct hash *h = zalloc(map, 1, sizeof(*h));
		__u32 size = 8;

		while (size < 2 * max_entries)
			size *= 2;
		h->key_stride = round8(key_size);
		h->index_mask = size - 1;
		h->index = zalloc(map, size, sizeof(__u32));
		memset(h->index, 0xff, (size_t)size * sizeof(__u32));
		h->elems = zalloc(map, max_entries, h->key_stride + map->value_stride);
		h->free = zalloc(map, max_entries, sizeof(__u32));
		for (__u32 i = 0; i < max_entries; i++)
			h->free[i] = max_entries - 1 - i;
		h->nfree = max_entries;
		h->used = zalloc(map, max_entries, 1);
		map->impl = h;
	} else if (type == BPF_MAP_TYPE_LPM_TRIE) {
		struct lpm *t = zalloc(map, 1, sizeof(*t));

		if (key_size <= 4)
			die(map, "LPM keys are {u32 prefixlen, data}");
		t->key_stride = round8(key_size);
		t->data_bits = (key_size - 4) * 8;
		t->order = zalloc(map, max_entries, sizeof(__u32));
		t->elems = zalloc(map, max_entries, t->key_stride + map->value_stride);
		t->free = zalloc(map, max_entries, sizeof(__u32));
		for (__u32 i = 0; i < max_entries; i++)
			t->free[i] = max_entries - 1 - i;
		t->nfree = max_entries;
		map->impl = t;
	} else {
		die(map, "map type not supported natively");
	}
	return map;
}

/* ---- hash ---- */

static __u64 hash_bytes(const __u8 *p, __u32 n)
{
	__u64 h = 0x9e3779b97f4a7c15ull ^ n;

	while (n >= 8) {
		__u64 w;

		memcpy(&w, p, 8);
		h = (h ^ w) * 0xff51afd7ed558ccdull;
		h ^= h >> 29;
		p += 8;
		n -= 8;
	}
	if (n) {
		__u64 w = 0;

		memcpy(&w, p, n);
		h = (h ^ w) * 0xff51afd7ed558ccdull;
		h ^= h >> 29;
	}
	h *= 0xc4ceb9fe1a85ec53ull;
	return h ^ (h >> 32);
}

static __u8 *hash_elem(const struct bpfkit_map *map, const struct hash *h, __u32 e)
{
	return h->elems + (size_t)e * (h->key_stride + map->value_stride);
}

/* The index slot holding `key`, or -1; *insert_at gets the first reusable slot on its probe
 * sequence (a tombstone or the empty slot that ended the search). */
static long hash_find(const struct bpfkit_map *map, const struct hash *h, const void *key, __u32 *insert_at)
{
	__u32 i = (__u32)hash_bytes(key, map->key_size) & h->index_mask;
	__u32 reuse = SLOT_EMPTY;

	for (;;) {
		__u32 e = h->index[i];

		if (e == SLOT_EMPTY) {
			if (insert_at)
				*insert_at = reuse != SLOT_EMPTY ? reuse : i;
			return -1;
		}
		if (e == SLOT_TOMB) {
			if (reuse == SLOT_EMPTY)
				reuse = i;
		} else if (memcmp(hash_elem(map, h, e), key, map->key_size) == 0) {
			return i;
		}
		i = (i + 1) & h->index_mask;
	}
}

static void hash_rebuild(const struct bpfkit_map *map, struct hash *h)
{
	__u32 size = h->index_mask + 1;
	__u32 *old = h->index;

	h->index = zalloc(map, size, sizeof(__u32));
	memset(h->index, 0xff, (size_t)size * sizeof(__u32));
	for (__u32 i = 0; i < size; i++) {
		__u32 slot;

		if (old[i] >= SLOT_TOMB)
			continue;
		hash_find(map, h, hash_elem(map, h, old[i]), &slot);
		h->index[slot] = old[i];
	}
	h->tombs = 0;
	free(old);
}

static void *hash_lookup(const struct bpfkit_map *map, const void *key)
{
	const struct hash *h = map->impl;
	long i = hash_find(map, h, key, NULL);

	return i < 0 ? NULL : hash_elem(map, h, h->index[i]) + h->key_stride;
}

static long hash_update(const struct bpfkit_map *map, const void *key, const void *value, __u64 flags)
{
	struct hash *h = map->impl;
	__u32 slot;
	long i = hash_find(map, h, key, &slot);
	__u8 *elem;
	__u32 e;

	if (i >= 0) {
		if (flags == BPF_NOEXIST)
			return -EEXIST;
		memcpy(hash_elem(map, h, h->index[i]) + h->key_stride, value, map->value_size);
		return 0;
	}
	if (flags == BPF_EXIST)
		return -ENOENT;
	if (h->nfree == 0)
		return -E2BIG;
	e = h->free[--h->nfree];
	elem = hash_elem(map, h, e);
	memcpy(elem, key, map->key_size);
	memcpy(elem + h->key_stride, value, map->value_size);
	h->used[e] = 1;
	if (h->index[slot] == SLOT_TOMB)
		h->tombs--;
	h->index[slot] = e;
	h->live++;
	if ((__u64)(h->live + h->tombs) * 4 > (__u64)(h->index_mask + 1) * 3)
		hash_rebuild(map, h);
	return 0;
}

static long hash_delete(const struct bpfkit_map *map, const void *key)
{
	struct hash *h = map->impl;
	long i = hash_find(map, h, key, NULL);

	if (i < 0)
		return -ENOENT;
	h->free[h->nfree++] = h->index[i];
	h->used[h->index[i]] = 0;
	h->index[i] = SLOT_TOMB;
	h->tombs++;
	h->live--;
	return 0;
}

/* ---- LPM ---- */

static __u8 *lpm_elem(const struct bpfkit_map *map, const struct lpm *t, __u32 e)
{
	return t->elems + (size_t)e * (t->key_stride + map->value_stride);
}

static __u32 prefixlen_of(const void *key)
{
	__u32 n;

	memcpy(&n, key, 4);
	return n;
}

/* Do the first `bits` bits of the data of keys a and b agree? */
static int prefix_equal(const __u8 *a, const __u8 *b, __u32 bits)
{
	__u32 bytes = bits / 8, rest = bits % 8;

	if (memcmp(a + 4, b + 4, bytes) != 0)
		return 0;
	if (rest) {
		__u8 mask = (__u8)(0xff00u >> rest);

		return ((a[4 + bytes] ^ b[4 + bytes]) & mask) == 0;
	}
	return 1;
}

/* The position in `order` of the entry with exactly key's prefix, or -1. */
static long lpm_find_exact(const struct bpfkit_map *map, const struct lpm *t, const void *key)
{
	__u32 plen = prefixlen_of(key);

	for (__u32 i = 0; i < t->n; i++) {
		const __u8 *e = lpm_elem(map, t, t->order[i]);

		if (prefixlen_of(e) == plen && prefix_equal(e, key, plen))
			return i;
	}
	return -1;
}

static void *lpm_lookup(const struct bpfkit_map *map, const void *key)
{
	const struct lpm *t = map->impl;
	__u32 plen = prefixlen_of(key);

	if (plen > t->data_bits)
		return NULL;
	for (__u32 i = 0; i < t->n; i++) {
		__u8 *e = lpm_elem(map, t, t->order[i]);
		__u32 elen = prefixlen_of(e);

		if (elen <= plen && prefix_equal(e, key, elen))
			return e + t->key_stride;
	}
	return NULL;
}

static long lpm_update(const struct bpfkit_map *map, const void *key, const void *value, __u64 flags)
{
	struct lpm *t = map->impl;
	__u32 plen = prefixlen_of(key);
	long i;
	__u32 e, at;
	__u8 *elem;

	if (plen > t->data_bits)
		return -EINVAL;
	i = lpm_find_exact(map, t, key);
	if (i >= 0) {
		if (flags == BPF_NOEXIST)
			return -EEXIST;
		memcpy(lpm_elem(map, t, t->order[i]) + t->key_stride, value, map->value_size);
		return 0;
	}
	if (flags == BPF_EXIST)
		return -ENOENT;
	if (t->nfree == 0)
		return -ENOSPC;
	e = t->free[--t->nfree];
	elem = lpm_elem(map, t, e);
	memcpy(elem, key, map->key_size);
	memcpy(elem + t->key_stride, value, map->value_size);
	/* After every entry with a prefix at least as long. */
	for (at = 0; at < t->n && prefixlen_of(lpm_elem(map, t, t->order[at])) >= plen; at++)
		;
	memmove(&t->order[at + 1], &t->order[at], (size_t)(t->n - at) * sizeof(__u32));
	t->order[at] = e;
	t->n++;
	return 0;
}

static long lpm_delete(const struct bpfkit_map *map, const void *key)
{
	struct lpm *t = map->impl;
	long i;

	if (prefixlen_of(key) > t->data_bits)
		return -EINVAL;
	i = lpm_find_exact(map, t, key);
	if (i < 0)
		return -ENOENT;
	t->free[t->nfree++] = t->order[i];
	memmove(&t->order[i], &t->order[i + 1], (size_t)(t->n - (__u32)i - 1) * sizeof(__u32));
	t->n--;
	return 0;
}

/* ---- dispatch ---- */

void *bpfkit_map_lookup(struct bpfkit_map *map, const void *key)
{
	if (is_array(map->type)) {
		__u32 index;

		memcpy(&index, key, 4);
		return bpfkit_array_elem(map, index, map->max_entries, map->value_stride);
	}
	if (is_hash(map->type))
		return hash_lookup(map, key);
	return lpm_lookup(map, key);
}

long bpfkit_map_update(struct bpfkit_map *map, const void *key, const void *value, __u64 flags)
{
	if (flags > BPF_EXIST)
		return -EINVAL;
	if (is_array(map->type)) {
		__u32 index;

		memcpy(&index, key, 4);
		if (index >= map->max_entries)
			return -E2BIG;
		if (flags == BPF_NOEXIST)
			return -EEXIST;
		memcpy(map->values + (size_t)index * map->value_stride, value, map->value_size);
		return 0;
	}
	if (is_hash(map->type))
		return hash_update(map, key, value, flags);
	return lpm_update(map, key, value, flags);
}

long bpfkit_map_delete(struct bpfkit_map *map, const void *key)
{
	if (is_array(map->type))
		return -EINVAL;
	if (is_hash(map->type))
		return hash_delete(map, key);
	return lpm_delete(map, key);
}

/* ---- host side ---- */

long bpfkit_native_map_update(struct bpfkit_map *map, const void *key, __u64 key_len, const void *value,
			      __u64 value_len, __u64 flags)
{
	if (key_len != map->key_size || value_len != map->value_size)
		return -EINVAL;
	return bpfkit_map_update(map, key, value, flags);
}

__u32 bpfkit_native_map_key_size(const struct bpfkit_map *map)
{
	return map->key_size;
}

__u32 bpfkit_native_map_value_size(const struct bpfkit_map *map)
{
	return map->value_size;
}

__u32 bpfkit_native_map_max_entries(const struct bpfkit_map *map)
{
	return map->max_entries;
}

int bpfkit_native_map_element(const struct bpfkit_map *map, __u32 i, void *key, void *value)
{
	const __u8 *elem;
	__u32 key_stride;

	if (i >= map->max_entries)
		return 0;
	if (is_array(map->type)) {
		memcpy(key, &i, 4);
		memcpy(value, map->values + (size_t)i * map->value_stride, map->value_size);
		return 1;
	}
	if (is_hash(map->type)) {
		const struct hash *h = map->impl;

		if (!h->used[i])
			return 0;
		elem = hash_elem(map, h, i);
		key_stride = h->key_stride;
	} else {
		const struct lpm *t = map->impl;

		if (i >= t->n)
			return 0;
		elem = lpm_elem(map, t, t->order[i]);
		key_stride = t->key_stride;
	}
	memcpy(key, elem, map->key_size);
	memcpy(value, elem + key_stride, map->value_size);
	return 1;
}
