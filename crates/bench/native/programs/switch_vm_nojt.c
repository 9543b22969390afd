/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * Native build of bpf/switch_vm.bpf.c for the switch benchmark (crates/bench), compiled with
 * `cc -O2 -fno-jump-tables` (build.rs). Exports the two machines as
 * bpfkit_native_switch_vm_32_nojt and bpfkit_native_switch_vm_256_nojt, taking a struct vm_ctx *.
 */
#include "bpfkit_native_prelude.h"

#define LICENSE bpfkit_native_license_switch_vm_nojt
#define switch_vm_32 bpfkit_native_switch_vm_32_nojt
#define switch_vm_256 bpfkit_native_switch_vm_256_nojt
#define vm_zero bpfkit_native_vm_zero_nojt
#include "switch_vm.bpf.c"
