/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * Static keys for BPF programs run by bpfkit: branches that cost nothing while their key is
 * off, flipped at run time by patching the code (bpfkit-decisions D1-D5).
 *
 *   DEFINE_STATIC_KEY(debug);          // off until turned on
 *   DEFINE_STATIC_KEY_TRUE(fast_path); // on until turned off
 *
 *   if (bpf_static_branch_unlikely(&debug))   // the "on" path is out of line
 *           bpf_printk("...");
 *   if (bpf_static_branch_likely(&fast_path)) // the "on" path is the fall-through
 *           ...
 *
 *   // from BPF code too:
 *   bpf_static_key_update(&debug, 1);
 *
 * Both macros return the key's state (true when on); they only choose which path is laid out
 * as the fall-through. Each use emits one static-branch instruction (BPF_JMP32|BPF_JA with
 * src_reg 1, "gotol_or_nop", for unlikely; src_reg 3, "nop_or_gotol", for likely), then a
 * `goto +0` so that the site never targets the next instruction (an offset of 0 is refused;
 * bpfkit's fixups remove the `goto +0` when they can), and a
 * 16-byte record in the `.static_keys` section: the site and its target (each relocated
 * against its code section) and the key (relocated against the key's map symbol, +1 for a
 * nop_or_goto site). bpfkit's loader makes one key map per (key, program) from these records
 * and flips every instance with Object::static_key(name).set(on). Stock clang-22 compiles
 * this (the instruction is written with .byte/.short/.long inside `asm goto`).
 */
#ifndef __BPFKIT_STATIC_KEYS_H
#define __BPFKIT_STATIC_KEYS_H

#ifndef BPF_MAP_TYPE_INSN_ARRAY
#define BPF_MAP_TYPE_INSN_ARRAY 34
#endif
#define BPF_F_STATIC_KEY (1ULL << 0)
#define BPF_F_STATIC_KEY_ON (1ULL << 1)

#define __BPFKIT_STATIC_KEY(name, extra)                                                                   \
	struct {                                                                                           \
		__uint(type, BPF_MAP_TYPE_INSN_ARRAY);                                                     \
		__uint(key_size, 4);                                                                       \
		__uint(value_size, 16);                                                                    \
		__uint(map_extra, extra);                                                                  \
	} name SEC(".maps")

/* A key that is off until set. */
#define DEFINE_STATIC_KEY(name) __BPFKIT_STATIC_KEY(name, BPF_F_STATIC_KEY)
/* A key that is on until cleared. */
#define DEFINE_STATIC_KEY_TRUE(name) __BPFKIT_STATIC_KEY(name, BPF_F_STATIC_KEY | BPF_F_STATIC_KEY_ON)

/* One site: the instruction (JMP32|JA, src_reg `src`, 32-bit offset to `l_yes`) and its record. */
#define __BPFKIT_STATIC_SITE(src, inverse)                                                                 \
	"1: .byte 0x06, " #src "\n"                                                                        \
	" .short 0\n"                                                                                      \
	" .long (%l[l_yes] - 1b - 8) / 8\n"                                                                \
	" .byte 0x05, 0, 0, 0, 0, 0, 0, 0\n" /* goto +0: the target is never the next insn */              \
	" .pushsection .static_keys, \"aw\"\n"                                                             \
	" .balign 8\n"                                                                                     \
	" .long 1b\n"                                                                                      \
	" .long %l[l_yes]\n"                                                                               \
	" .quad %c0 + " #inverse "\n"                                                                      \
	" .popsection\n"

/* goto_or_nop: jumps to l_yes while the key is on. */
static __always_inline __attribute__((unused)) int __bpfkit_static_branch_jump(void *key)
{
	asm goto(__BPFKIT_STATIC_SITE(0x10, 0) : : "i"(key) : : l_yes);
	return 0;
l_yes:
	return 1;
}

/* nop_or_goto: jumps to l_yes while the key is off. */
static __always_inline __attribute__((unused)) int __bpfkit_static_branch_nop(void *key)
{
	asm goto(__BPFKIT_STATIC_SITE(0x30, 1) : : "i"(key) : : l_yes);
	return 1;
l_yes:
	return 0;
}

/* True while the key is on; the "on" path is out of line (a jump while on, a nop while off). */
#define bpf_static_branch_unlikely(key) __builtin_expect(__bpfkit_static_branch_jump(key), 0)
/* True while the key is on; the "on" path is the fall-through (a nop while on). */
#define bpf_static_branch_likely(key) __builtin_expect(__bpfkit_static_branch_nop(key), 1)

/* Flips every site of `key` in the programs of this object, from BPF code. */
extern int bpf_static_key_update(void *key, unsigned int on) __ksym;

#endif /* __BPFKIT_STATIC_KEYS_H */
