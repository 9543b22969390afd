/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * Native build of bpf/switch_vm.bpf.c for the switch benchmark (crates/bench), compiled with
 * `cc -O2` (build.rs). Exports the two machines as
 * bpfkit_native_switch_vm_32_jt and bpfkit_native_switch_vm_256_jt, taking a struct vm_ctx *.
 */
#include "bpfkit_native_prelude.h"

#define LICENSE bpfkit_native_license_switch_vm_jt
#define switch_vm_32 bpfkit_native_switch_vm_32_jt
#define switch_vm_256 bpfkit_native_switch_vm_256_jt
#define vm_zero bpfkit_native_vm_zero_jt
#include "switch_vm.bpf.c"
