//! Memory-region behaviour that needs the Rust API: exact fault addresses, read-only regions,
//! several regions in one run, legacy packet loads, helpers reading guest memory.

use bpfkit_interp::{AccessError, Helpers, MemoryRegion, Program, RegionKind, RunErrorKind, Vm};
use bpfkit_isa::assemble;
use std::sync::Arc;

fn vm(asm: &str, helpers: &Helpers) -> Vm {
    let slots = assemble(asm).expect("test program assembles");
    Vm::new(Arc::new(Program::load(&slots, helpers).expect("test program loads")))
}

#[test]
fn out_of_bounds_error_names_pc_and_exact_address() {
    let mut mem = [0u8; 16];
    let base = mem.as_ptr() as u64;
    let err = vm("r0 = 0x0\nr0 = *(u64 *)(r1 + 0xc)\nexit", &Helpers::new()).run_mem(&mut mem).unwrap_err();
    assert_eq!(err.pc, 1);
    match err.kind {
        RunErrorKind::Access(AccessError::OutOfBounds { addr, size: 8, write: false }) => assert_eq!(addr, base + 12),
        other => panic!("unexpected error {other:?}"),
    }
    assert!(err.to_string().starts_with(&format!("pc 1: invalid read of size 8 at {:#x}", base + 12)), "{err}");
}

#[test]
fn read_only_region_refuses_writes_but_allows_reads() {
    let ro = [7u8; 8];
    let region = MemoryRegion::read_only(RegionKind::ReadOnly, &ro);
    let addr = region.addr();
    let mut v = vm("r0 = *(u8 *)(r1 + 0x3)\nexit", &Helpers::new());
    assert_eq!(v.run(&[MemoryRegion::read_only(RegionKind::ReadOnly, &ro)], [addr, 0, 0, 0, 0]).unwrap(), 7);
    let mut w = vm("r2 = 0x1\n*(u8 *)(r1 + 0x3) = w2\nr0 = 0x0\nexit", &Helpers::new());
    let err = w.run(&[region], [addr, 0, 0, 0, 0]).unwrap_err();
    assert!(
        matches!(err.kind, RunErrorKind::Access(AccessError::ReadOnly { kind: RegionKind::ReadOnly, size: 1, .. })),
        "{err:?}"
    );
    assert_eq!(ro, [7u8; 8], "a refused write changes nothing");
}

#[test]
fn several_regions_in_one_run() {
    let mut a = [1u8; 8];
    let mut b = [2u8; 8];
    let ra = MemoryRegion::writable(RegionKind::Context, &mut a);
    let rb = MemoryRegion::writable(RegionKind::MapValue, &mut b);
    let (pa, pb) = (ra.addr(), rb.addr());
    let mut v =
        vm("r0 = *(u8 *)(r1 + 0x0)\nr3 = *(u8 *)(r2 + 0x7)\nr0 += r3\n*(u8 *)(r2 + 0x0) = w0\nexit", &Helpers::new());
    assert_eq!(v.run(&[ra, rb], [pa, pb, 0, 0, 0]).unwrap(), 3);
    assert_eq!(b[0], 3);
}

#[test]
fn ld_abs_and_ld_ind_read_the_packet_in_network_order() {
    let pkt = [0x12u8, 0x34, 0x56, 0x78, 0x9a];
    let mut v =
        vm("r6 = r1\nr0 = *(u16 *)skb[0x1]\nr7 = r0\nr2 = 0x1\nr0 = *(u32 *)skb[r2]\nr0 += r7\nexit", &Helpers::new());
    let region = || MemoryRegion::read_only(RegionKind::Packet, &pkt);
    let r = v.run(&[region()], [region().addr(), 0, 0, 0, 0]).unwrap();
    assert_eq!(r, 0x3456 + 0x3456789a);
    // Out of the packet: the program ends with r0 = 0, as in the kernel.
    let mut oob = vm("r0 = 0x7\nr0 = *(u32 *)skb[0x3]\nr0 = 0x9\nexit", &Helpers::new());
    assert_eq!(oob.run(&[region()], [0; 5]).unwrap(), 0);
}

#[test]
fn helpers_read_guest_memory_through_checked_slices() {
    let mut helpers = Helpers::new();
    helpers.register(100, "sum_bytes", |ctx, [ptr, len, ..]| {
        Ok(ctx.slice(ptr, len as usize)?.iter().map(|&b| u64::from(b)).sum())
    });
    let mut mem = [1u8, 2, 3, 4];
    let mut v = vm("call 0x64\nexit", &helpers);
    assert_eq!(v.run_mem(&mut mem).unwrap(), 10);
    // A length past the region is refused, and the error names the helper.
    let mut bad = vm("r2 = 0x5\ncall 0x64\nexit", &helpers);
    let err = bad.run_mem(&mut mem).unwrap_err();
    assert_eq!(err.pc, 1);
    assert!(err.to_string().contains("helper sum_bytes (#100) failed: invalid read of size 5"), "{err}");
}

#[test]
fn a_vm_is_reusable_and_programs_are_shared_between_threads() {
    let slots = assemble("r0 = *(u64 *)(r1 + 0x0)\nr0 += 0x1\n*(u64 *)(r1 + 0x0) = r0\nexit").unwrap();
    let program = Arc::new(Program::load(&slots, &Helpers::new()).unwrap());
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let program = Arc::clone(&program);
            std::thread::spawn(move || {
                let mut vm = Vm::new(program);
                let mut mem = [0u8; 8];
                for _ in 0..1000 {
                    vm.run_mem(&mut mem).unwrap();
                }
                u64::from_le_bytes(mem)
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), 1000);
    }
}

#[test]
fn a_reused_vm_does_not_leak_stack_contents_between_runs() {
    // Reads its stack slot before writing it: every run must see zero, whatever the last run left.
    let mut v = vm("r0 = *(u64 *)(r10 - 0x8)\nr1 = r0\nr1 += 0x1\n*(u64 *)(r10 - 0x8) = r1\nexit", &Helpers::new());
    for _ in 0..3 {
        assert_eq!(v.run_mem(&mut [0u8; 8]).unwrap(), 0);
    }
    // Likewise for a callee's frame between two calls of the same run.
    let mut c = vm(
        "call pc+0x3\nr6 = r0\ncall pc+0x1\nexit\nr0 = *(u64 *)(r10 - 0x8)\nr1 = 0x7\n*(u64 *)(r10 - 0x8) = r1\nexit",
        &Helpers::new(),
    );
    assert_eq!(c.run_mem(&mut []).unwrap(), 0);
}

#[test]
fn may_goto_budget_can_be_lowered() {
    let mut v = vm("r0 = 0x0\nmay_goto +0x2\nr0 += 0x1\ngoto -0x3\nexit", &Helpers::new());
    v.set_may_goto_budget(5);
    assert_eq!(v.run_mem(&mut []).unwrap(), 5);
}
