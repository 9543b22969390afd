//! Contexts translated through field tables, packet windows moved by helpers, tail calls and
//! bpf_loop callbacks.

use bpfkit_interp::{AccessError, CtxField, Helpers, MemoryRegion, Program, RegionKind, RunErrorKind, Vm};
use bpfkit_isa::assemble;
use std::sync::{Arc, Mutex};

fn load(asm: &str, helpers: &Helpers) -> Arc<Program> {
    Arc::new(Program::load(&assemble(asm).expect("assembles"), helpers).expect("loads"))
}

/// `struct { __u32 data; __u32 data_end; __u32 mark; }` over a shadow of two pointers and a u32.
static FIELDS: [CtxField; 3] = [
    CtxField { off: 0, size: 4, shadow_off: 0, shadow_size: 8, writable: false, narrow: false },
    CtxField { off: 4, size: 4, shadow_off: 8, shadow_size: 8, writable: false, narrow: false },
    CtxField { off: 8, size: 4, shadow_off: 16, shadow_size: 4, writable: true, narrow: true },
];

fn shadow(data: u64, end: u64, mark: u32) -> [u8; 20] {
    let mut s = [0u8; 20];
    s[0..8].copy_from_slice(&data.to_le_bytes());
    s[8..16].copy_from_slice(&end.to_le_bytes());
    s[16..20].copy_from_slice(&mark.to_le_bytes());
    s
}

#[test]
fn context_loads_give_full_pointers_and_writes_reach_the_shadow() {
    let mut pkt = [0x11u8, 0x22, 0x33, 0x44];
    let packet = MemoryRegion::writable(RegionKind::Packet, &mut pkt);
    let (data, end) = (packet.addr(), packet.addr() + 4);
    let mut sh = shadow(data, end, 7);
    // r0 = pkt[1] + mark; mark = 9
    let prog = load(
        "w2 = *(u32 *)(r1 + 0x0)
         w3 = *(u32 *)(r1 + 0x4)
         r4 = r2
         r4 += 0x2
         r0 = 0x0
         if r4 > r3 goto +0x5
         r0 = *(u8 *)(r2 + 0x1)
         w5 = *(u32 *)(r1 + 0x8)
         r0 += r5
         w5 = 0x9
         *(u32 *)(r1 + 0x8) = w5
         exit",
        &Helpers::new(),
    );
    let ctx = MemoryRegion::context(&mut sh, &FIELDS, 12);
    let ctx_addr = ctx.addr();
    let r = Vm::new(prog).run(&[ctx, packet], [ctx_addr, 0, 0, 0, 0]).unwrap();
    assert_eq!(r, 0x22 + 7);
    assert_eq!(u32::from_le_bytes(sh[16..20].try_into().unwrap()), 9);
}

#[test]
fn context_refuses_unknown_offsets_writes_to_read_only_fields_and_partial_pointer_loads() {
    for (asm, off, size, write) in [
        ("r0 = *(u32 *)(r1 + 0xc)\nexit", 12, 4, false),
        ("r0 = *(u8 *)(r1 + 0xf)\nexit", 15, 1, false),
        ("r0 = *(u16 *)(r1 + 0x0)\nexit", 0, 2, false),
        ("r2 = 0x1\n*(u32 *)(r1 + 0x0) = w2\nr0 = 0x0\nexit", 0, 4, true),
        ("r0 = *(u64 *)(r1 + 0x0)\nexit", 0, 8, false),
    ] {
        let mut sh = shadow(0, 0, 0);
        // The struct the program sees has 4 more bytes than the fields cover.
        let ctx = MemoryRegion::context(&mut sh, &FIELDS, 16);
        let a = ctx.addr();
        let err = Vm::new(load(asm, &Helpers::new())).run(&[ctx], [a, 0, 0, 0, 0]).unwrap_err();
        match err.kind {
            RunErrorKind::Access(AccessError::Context { off: o, size: s, write: w }) => {
                assert_eq!((o, s, w), (off, size, write), "{asm}")
            }
            other => panic!("{asm}: {other:?}"),
        }
    }
    // A narrow load of a scalar field is fine.
    let mut sh = shadow(0, 0, 0x0504_0302);
    let ctx = MemoryRegion::context(&mut sh, &FIELDS, 12);
    let a = ctx.addr();
    let r = Vm::new(load("r0 = *(u8 *)(r1 + 0x9)\nexit", &Helpers::new())).run(&[ctx], [a, 0, 0, 0, 0]);
    assert_eq!(r.unwrap(), 0x03);
}

#[test]
fn a_helper_moves_the_packet_window_within_its_allocation() {
    let mut helpers = Helpers::new();
    // "adjust_head(delta)": moves the window start by r1 (signed), keeps its end.
    helpers.register(44, "adjust_head", |ctx, [delta, ..]| {
        let (_, off, len) = ctx.window(RegionKind::Packet).unwrap();
        let new_off = off as i64 + delta as i64;
        let end = off + len;
        if new_off < 0 || new_off as u64 > end {
            return Ok(u64::MAX);
        }
        Ok(if ctx.set_window(RegionKind::Packet, new_off as u64, end - new_off as u64) { 0 } else { u64::MAX })
    });
    let mut buf = [0u8; 16];
    buf[4] = 0xaa;
    buf[8] = 0xbb;
    let region = MemoryRegion::writable(RegionKind::Packet, &mut buf).with_window(8, 8).unwrap();
    let start = region.addr();
    // Grow the head by 4 bytes, then read the new first byte at start - 4.
    let prog = load("r6 = r1\nr1 = -0x4\ncall 0x2c\nr0 = *(u8 *)(r6 - 0x4)\nexit", &helpers);
    assert_eq!(Vm::new(Arc::clone(&prog)).run(&[region], [start, 0, 0, 0, 0]).unwrap(), 0xaa);
    // Without the helper call the headroom is out of reach.
    let mut buf = [0u8; 16];
    let region = MemoryRegion::writable(RegionKind::Packet, &mut buf).with_window(8, 8).unwrap();
    let start = region.addr();
    let err = Vm::new(load("r0 = *(u8 *)(r1 - 0x4)\nexit", &helpers)).run(&[region], [start, 0, 0, 0, 0]).unwrap_err();
    assert!(matches!(err.kind, RunErrorKind::Access(AccessError::OutOfBounds { .. })), "{err}");
}

/// A registry whose tail call resolves index `i` to `targets[i]`.
fn tail_call_helpers(targets: Arc<Mutex<Vec<Arc<Program>>>>) -> Helpers {
    let mut h = Helpers::conformance();
    h.register_tail_call(12, move |_, _map, index| targets.lock().unwrap().get(index as usize).cloned());
    h
}

#[test]
fn tail_calls_are_limited_to_33_per_run() {
    let targets = Arc::new(Mutex::new(Vec::new()));
    let helpers = tail_call_helpers(Arc::clone(&targets));
    // Counts its runs in *(u64 *)(ctx) and tail-calls itself; falls through when refused.
    let prog = load(
        "r6 = r1
         r0 = *(u64 *)(r6 + 0x0)
         r0 += 0x1
         *(u64 *)(r6 + 0x0) = r0
         r1 = r6
         r2 = 0x0
         r3 = 0x0
         call 0xc
         r0 = 0x2a
         exit",
        &helpers,
    );
    targets.lock().unwrap().push(Arc::clone(&prog));
    let mut mem = [0u8; 8];
    assert_eq!(Vm::new(prog).run_mem(&mut mem).unwrap(), 0x2a);
    assert_eq!(u64::from_le_bytes(mem), 34, "the first run plus 33 tail calls");
}

#[test]
fn a_tail_call_from_a_subprogram_returns_to_the_caller() {
    let targets = Arc::new(Mutex::new(Vec::new()));
    let helpers = tail_call_helpers(Arc::clone(&targets));
    let target = load("r0 = 0x64\nexit", &helpers);
    targets.lock().unwrap().push(target);
    // main: r6 = 5; r0 = sub(); return r0 + r6   sub: tail call 0 (never returns here)
    let main = load(
        "r6 = 0x5
         call pc+0x2
         r0 += r6
         exit
         r2 = 0x0
         r3 = 0x0
         call 0xc
         r0 = 0x1
         exit",
        &helpers,
    );
    assert_eq!(Vm::new(main).run_mem(&mut []).unwrap(), 0x64 + 5);
}

#[test]
fn bpf_loop_calls_back_until_done_or_stopped() {
    let mut helpers = Helpers::new();
    helpers.register_loop(181);
    // sum of indexes 0..10 into *(u64 *)(r10 - 8) via the callback; return iterations + sum.
    let prog = load(
        "r6 = 0x0
         *(u64 *)(r10 - 0x8) = r6
         r1 = 0xa
         ld_pseudo r2, 0x4, 0x8
         r3 = r10
         r3 += -0x8
         r4 = 0x0
         call 0xb5
         r6 = *(u64 *)(r10 - 0x8)
         r0 += r6
         exit
         r3 = *(u64 *)(r2 + 0x0)
         r3 += r1
         *(u64 *)(r2 + 0x0) = r3
         r0 = 0x0
         exit",
        &helpers,
    );
    assert_eq!(Vm::new(Arc::clone(&prog)).run_mem(&mut []).unwrap(), 10 + 45);
    // A callback returning 1 stops after the first iteration.
    let stop = load(
        "r1 = 0xa
         ld_pseudo r2, 0x4, 0x5
         r3 = 0x0
         r4 = 0x0
         call 0xb5
         exit
         r0 = 0x1
         exit",
        &helpers,
    );
    assert_eq!(Vm::new(stop).run_mem(&mut []).unwrap(), 1);
}
