//! The interpreter allocates nothing per run: after the first run of a `Vm`, running again
//! (memory accesses, calls, helpers, may_goto) performs no heap allocation.
//!
//! This file has its own counting global allocator, so it is its own test binary.
#![allow(unsafe_code)]

use bpfkit_interp::{Helpers, Program, Vm};
use bpfkit_isa::assemble;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call unchanged to the system allocator; only counts allocations.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn runs_do_not_allocate() {
    let slots = assemble(
        "r6 = r1
         r0 = 0x0
         r7 = 0x32
         may_goto +0x6
         r1 = *(u8 *)(r6 + 0x0)
         r0 += r1
         call pc+0x5
         r7 += -0x1
         if r7 == 0x0 goto +0x1
         goto -0x7
         r1 = r0
         call 0x5
         exit
         *(u64 *)(r10 - 0x8) = r0
         r0 = *(u64 *)(r10 - 0x8)
         exit",
    )
    .unwrap();
    let mut vm = Vm::new(Arc::new(Program::load(&slots, &Helpers::conformance()).unwrap()));
    let mut mem = [3u8; 8];
    // Warm-up: the region list gets its capacity.
    assert_eq!(vm.run_mem(&mut mem).unwrap(), 150);
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..100 {
        assert_eq!(vm.run_mem(&mut mem).unwrap(), 150);
    }
    assert_eq!(ALLOCATIONS.load(Ordering::Relaxed) - before, 0, "runs allocated");
}
