//! Constant blinding preserves what programs compute, and hides their constants.
//!
//! Programs of the valid-program generator (`bpfkit_testing::gen`) are fixed up with nop
//! removal and blinding (`bpfkit_fixup::fixup`); the xlated program must return the same `r0`
//! and leave the same buffer in the interpreter (`Program::load_xlated`) as the orig one,
//! and, where the JIT can run, natively too. No xlated program may contain the constant of an
//! instruction that was blinded.

use arbitrary::Unstructured;
use bpfkit_fixup::{FixupOptions, INSN_DELETED, Xlated, fixup};
use bpfkit_interp::{Backend, Helpers, Program, Vm};
use bpfkit_isa::{AluOp, Insn, LdImmSrc, Operand, RawInsn, Reg, decode_program, decode_program_xlated};
use bpfkit_testing::r#gen::{self as generator, AlignedMem, BRANCH_LIMIT, GenConfig};
use std::collections::BTreeSet;
use std::sync::Arc;

/// Programs per test (a few hundred, a few seconds in a debug build).
const PROGRAMS: u64 = 300;

fn config(i: u64) -> GenConfig {
    // Every other program calls helper 5, so that AX lives across calls into Rust.
    GenConfig { helpers: i % 2 == 1, ..GenConfig::default() }
}

/// Program `i`: its slots and the initial contents of its buffer.
fn program(seed: u64, i: u64) -> (Vec<RawInsn>, Vec<u8>, GenConfig) {
    let cfg = config(i);
    let input = generator::seeded_bytes(seed ^ i.wrapping_mul(0x9e37_79b9), 64 + (i as usize * 53) % 4096);
    let mut u = Unstructured::new(&input);
    let slots = generator::valid_program_with(&mut u, &cfg).expect("the generator accepts any input");
    (slots, u.take_rest().to_vec(), cfg)
}

fn blind(slots: &[RawInsn], seed: u64) -> Xlated {
    let opts = FixupOptions { remove_nops: true, blind: Some(seed), ..FixupOptions::default() };
    fixup(slots, &opts).unwrap_or_else(|e| panic!("fixup fails: {e}\n{}", generator::describe(slots)))
}

/// Runs an xlated program like `gen::run_interp` runs the orig one, on `backend`.
fn run_xlated(prog: &Arc<Program>, mem: &mut [u8], cfg: &GenConfig, backend: Backend) -> Result<u64, String> {
    let mut vm = Vm::new(Arc::clone(prog));
    vm.set_may_goto_budget(cfg.may_goto_budget);
    vm.set_branch_limit(Some(BRANCH_LIMIT));
    vm.set_backend(backend);
    vm.run_mem(mem).map_err(|e| e.to_string())
}

fn listing(x: &Xlated) -> String {
    bpfkit_isa::listing_xlated(&x.insns).unwrap_or_else(|e| format!("(does not decode: {e})"))
}

#[test]
fn blinded_programs_compute_the_same() {
    let jit = bpfkit_testing::jit_available();
    let mut natively = 0;
    let mut with_ax = 0;
    for i in 0..PROGRAMS {
        let (slots, init, cfg) = program(0xb11d, i);
        let mut mem = AlignedMem::new(&init, cfg.mem_size);
        let expected = generator::run_interp(&slots, mem.bytes_mut(), cfg.may_goto_budget)
            .unwrap_or_else(|e| panic!("program {i}: the orig program fails: {e}\n{}", generator::describe(&slots)));

        let x = blind(&slots, i);
        let fail = |what: String| -> ! {
            panic!("program {i}: {what}\norig:\n{}\nxlated:\n{}", generator::describe(&slots), listing(&x))
        };
        let prog = match Program::load_xlated(&x.insns, &Helpers::conformance()) {
            Ok(p) => Arc::new(p),
            Err(e) => fail(format!("the xlated program does not load: {e}")),
        };
        with_ax += usize::from(x.insns.iter().any(|s| s.dst() == Reg::AX.index() || s.src() == Reg::AX.index()));
        let mut xmem = AlignedMem::new(&init, cfg.mem_size);
        match run_xlated(&prog, xmem.bytes_mut(), &cfg, Backend::Interpreter) {
            Ok(v) if v == expected && xmem.bytes() == mem.bytes() => {}
            Ok(v) => fail(format!("interpreter: {v:#x} instead of {expected:#x}, or another buffer")),
            Err(e) => fail(format!("interpreter: {e}")),
        }
        if jit {
            if let Err(e) = bpfkit_jit::jit(&prog, &bpfkit_jit::JitOptions::default(), bpfkit_jit::Trust::CallerVouches)
            {
                fail(format!("the JIT refuses the xlated program: {e}"));
            }
            let mut nmem = AlignedMem::new(&init, cfg.mem_size);
            match run_xlated(&prog, nmem.bytes_mut(), &cfg, Backend::Native) {
                Ok(v) if v == expected && nmem.bytes() == mem.bytes() => natively += 1,
                Ok(v) => fail(format!("JIT: {v:#x} instead of {expected:#x}, or another buffer")),
                Err(e) => fail(format!("JIT: {e}")),
            }
        }
    }
    assert!(with_ax as u64 > PROGRAMS * 9 / 10, "only {with_ax} of {PROGRAMS} programs use AX");
    if jit {
        assert_eq!(natively, PROGRAMS);
    }
}

/// The immediates of an instruction the kernel blinds (see the crate doc of bpfkit-fixup):
/// its `imm`, or both halves of a `lddw` of a constant.
fn blinded_constants(insn: &Insn) -> Vec<i32> {
    match *insn {
        Insn::Alu { op: AluOp::Lsh | AluOp::Rsh | AluOp::Arsh, .. } => vec![],
        Insn::Alu { src: Operand::Imm(i), .. }
        | Insn::JmpCond { src: Operand::Imm(i), .. }
        | Insn::Store { src: Operand::Imm(i), .. } => vec![i],
        Insn::LdImm64 { src: LdImmSrc::Imm, imm, next_imm, .. } => vec![imm, next_imm],
        _ => vec![],
    }
}

/// Whether an xlated instruction carries an immediate of a blindable kind that is not part
/// of a blinding sequence (those all write AX).
fn unblinded_constant(insn: &Insn) -> bool {
    !blinded_constants(insn).is_empty()
        && !matches!(*insn, Insn::Alu { dst, .. } | Insn::LdImm64 { dst, .. } if dst == Reg::AX)
}

#[test]
fn blinded_programs_hide_their_constants() {
    let mut checked = 0usize;
    for i in 0..PROGRAMS {
        let (slots, _, _) = program(0xc0de, i);
        let x = blind(&slots, 0x5eed ^ i);
        let fail = |what: String| -> ! {
            panic!("program {i}: {what}\norig:\n{}\nxlated:\n{}", generator::describe(&slots), listing(&x))
        };
        let orig = decode_program(&slots).expect("generated programs decode");
        let xlated = decode_program_xlated(&x.insns).expect("xlated programs decode");
        // The constants that had to disappear: those of blinded instructions, minus values that
        // instructions the kernel does not blind legitimately carry (shift amounts, byte-swap
        // widths, atomic operations, helper numbers, the `<<= 32` of a blinded lddw).
        let mut hidden: BTreeSet<i32> = BTreeSet::new();
        let mut kept: BTreeSet<i32> = BTreeSet::from([0, 32]);
        for l in &orig {
            let c = blinded_constants(&l.insn);
            hidden.extend(c.iter().copied());
            if c.is_empty() {
                let raw = slots[l.pc];
                kept.insert(raw.imm);
                kept.insert(i32::from(raw.off));
            }
        }
        for l in &xlated {
            if unblinded_constant(&l.insn) {
                fail(format!("xlated insn {} still has a constant: {}", l.pc, l.insn));
            }
        }
        // Every immediate field but those holding a (recomputed) jump or call offset.
        for l in xlated.iter().filter(|l| l.insn.branch_offset().is_none()) {
            for k in l.pc..l.pc + l.insn.slots() {
                let imm = x.insns[k].imm;
                if hidden.contains(&imm) && !kept.contains(&imm) {
                    fail(format!("xlated slot {k} holds the blinded constant {imm:#x}"));
                }
            }
        }
        // Each blinded orig instruction starts its patch with `ax = rnd ^ imm`, never `imm`.
        for l in &orig {
            let c = blinded_constants(&l.insn);
            let at = x.orig_to_xlated[l.pc];
            if c.is_empty()
                || at == INSN_DELETED
                || matches!(l.insn, Insn::Alu { op: AluOp::Mov, src: Operand::Imm(0), .. })
            {
                continue;
            }
            let first = x.insns[at as usize];
            if first.dst() != Reg::AX.index() || c.contains(&first.imm) {
                fail(format!("orig insn {} ({}) is not blinded at xlated {at}", l.pc, l.insn));
            }
            checked += 1;
        }
    }
    assert!(checked as u64 > PROGRAMS * 10, "only {checked} blinded instructions checked");
}

// ---------------------------------------------------------------------------------------------
// AX in the JIT beyond what blinding needs.
//
// Blinding only ever reads AX right after writing it, so the differential test above would
// not notice a JIT that clobbers AX in the middle of another instruction. These programs keep
// AX live across every lowering that needs temporaries (division, shifts through cl, fetching
// atomics, calls into Rust, BPF-to-BPF calls) and use it as each operand of them, then fold AX
// and the results into r0; the interpreter and the JIT must agree.

mod ax_programs {
    use bpfkit_isa::{AluOp, AtomicOp, CallTarget, Cond, Endian, Insn, LdImmSrc, Operand, Reg, Size, Width};

    pub const AX: Reg = Reg::AX;
    const W64: Width = Width::W64;
    const W32: Width = Width::W32;

    pub fn alu(width: Width, op: AluOp, dst: Reg, src: Operand) -> Insn {
        Insn::Alu { width, op, dst, src }
    }
    fn mov(dst: Reg, src: Reg) -> Insn {
        alu(W64, AluOp::Mov, dst, Operand::Reg(src))
    }
    fn imm64(dst: Reg, v: u64) -> Insn {
        Insn::LdImm64 { dst, src: LdImmSrc::Imm, imm: v as u32 as i32, next_imm: (v >> 32) as u32 as i32 }
    }
    /// `r1 = r1 * 31 ^ r` for each register (r1 is not one of them), then `r0 = r1; exit`.
    fn fold(regs: &[Reg]) -> Vec<Insn> {
        let mut v = vec![alu(W64, AluOp::Mov, Reg::R1, Operand::Imm(0))];
        for &r in regs {
            v.push(alu(W64, AluOp::Mul, Reg::R1, Operand::Imm(31)));
            v.push(alu(W64, AluOp::Xor, Reg::R1, Operand::Reg(r)));
        }
        v.push(mov(Reg::R0, Reg::R1));
        v.push(Insn::Exit);
        v
    }
    /// Registers set to distinct values (r1 keeps the buffer; r6 a copy of it).
    fn setup() -> Vec<Insn> {
        let mut v = vec![mov(Reg::R6, Reg::R1)];
        for (r, k) in [(Reg::R0, 3u64), (Reg::R2, 7), (Reg::R3, 0x8000_0000_0000_0011), (Reg::R4, 9)] {
            v.push(imm64(r, k.wrapping_mul(0x0101_0101_0101)));
        }
        for (r, k) in [(Reg::R5, 0x55u64), (Reg::R7, 0x77), (Reg::R8, 0x88), (Reg::R9, 0x99)] {
            v.push(imm64(r, k << 40 | k));
        }
        v.push(imm64(AX, 0x1234_5678_9abc_def1));
        v
    }
    const ALL: [Reg; 10] = [Reg::R2, Reg::R3, Reg::R4, Reg::R5, Reg::R6, Reg::R7, Reg::R8, Reg::R9, Reg::R0, Reg::AX];

    /// One program per situation: setup, the instructions, the fold of every register.
    pub fn programs() -> Vec<(String, Vec<Insn>)> {
        let mut out: Vec<(String, Vec<Insn>)> = Vec::new();
        let mut add = |name: String, body: Vec<Insn>| {
            let mut p = setup();
            p.extend(body);
            // r6 is the buffer pointer: fold its contents instead of its address.
            p.push(Insn::Load { size: Size::DW, signed: false, dst: Reg::R6, src: Reg::R6, off: 0 });
            p.extend(fold(&ALL));
            out.push((name, p));
        };
        let regs = [Reg::R0, Reg::R2, Reg::R3, Reg::R4, Reg::R7, AX];
        // Division and modulo: every (dst, src) pair among rax, rdx, rcx, a callee-saved
        // register and AX, both widths, signed and not.
        for op in [AluOp::Div, AluOp::Mod, AluOp::SDiv, AluOp::SMod] {
            for width in [W64, W32] {
                for &d in &regs {
                    for &s in &regs {
                        add(format!("{op:?} {width:?} {d} {s}"), vec![alu(width, op, d, Operand::Reg(s))]);
                    }
                    add(format!("{op:?} {width:?} {d} imm"), vec![alu(width, op, d, Operand::Imm(-7))]);
                }
            }
        }
        // Shifts by a register (through cl).
        for op in [AluOp::Lsh, AluOp::Rsh, AluOp::Arsh] {
            for width in [W64, W32] {
                for &d in &regs {
                    for &s in &regs {
                        add(format!("{op:?} {width:?} {d} {s}"), vec![alu(width, op, d, Operand::Reg(s))]);
                    }
                }
            }
        }
        // Other ALU forms on AX.
        for op in [AluOp::Add, AluOp::Sub, AluOp::Mul, AluOp::Or, AluOp::And, AluOp::Xor, AluOp::Mov, AluOp::MovSx8] {
            for width in [W64, W32] {
                add(format!("{op:?} {width:?} ax r3"), vec![alu(width, op, AX, Operand::Reg(Reg::R3))]);
                add(format!("{op:?} {width:?} r3 ax"), vec![alu(width, op, Reg::R3, Operand::Reg(AX))]);
            }
        }
        add(
            "neg/endian ax".into(),
            vec![Insn::Neg { width: W64, dst: AX }, Insn::Endian { kind: Endian::ToBe, bits: 16, dst: AX }],
        );
        add("bswap ax".into(), vec![Insn::Endian { kind: Endian::Swap, bits: 64, dst: AX }]);
        // Atomics: AX as the value, as the address, and next to them.
        for size in [Size::W, Size::DW] {
            for op in [
                AtomicOp::Add { fetch: true },
                AtomicOp::Or { fetch: true },
                AtomicOp::And { fetch: true },
                AtomicOp::Xor { fetch: true },
                AtomicOp::Or { fetch: false },
                AtomicOp::Xchg,
                AtomicOp::Cmpxchg,
            ] {
                let at = |dst: Reg, src: Reg| Insn::Atomic { size, op, dst, src, off: 8 };
                add(format!("{op:?} {size:?} value ax"), vec![at(Reg::R6, AX)]);
                add(format!("{op:?} {size:?} value r0, ax live"), vec![at(Reg::R6, Reg::R0)]);
                add(format!("{op:?} {size:?} value r2, ax live"), vec![at(Reg::R6, Reg::R2)]);
                // AX holds the address: fold its distance to the buffer (0 if it survived).
                let back = alu(W64, AluOp::Sub, AX, Operand::Reg(Reg::R6));
                add(format!("{op:?} {size:?} address ax"), vec![mov(AX, Reg::R6), at(AX, Reg::R2), back]);
            }
        }
        // Loads, stores and jumps with AX.
        add(
            "memory".into(),
            vec![
                Insn::Store { size: Size::DW, dst: Reg::R10, off: -8, src: Operand::Reg(AX) },
                Insn::Store { size: Size::B, dst: Reg::R6, off: 3, src: Operand::Reg(AX) },
                Insn::Load { size: Size::W, signed: true, dst: Reg::R2, src: Reg::R10, off: -8 },
                mov(AX, Reg::R10),
                Insn::Load { size: Size::DW, signed: false, dst: AX, src: AX, off: -8 },
                Insn::Store { size: Size::H, dst: Reg::R6, off: 16, src: Operand::Imm(0x1234) },
            ],
        );
        add(
            "jumps".into(),
            vec![
                Insn::JmpCond { width: W64, cond: Cond::Gt, dst: AX, src: Operand::Reg(Reg::R2), off: 1 },
                alu(W64, AluOp::Add, Reg::R2, Operand::Imm(1)),
                Insn::JmpCond { width: W32, cond: Cond::Set, dst: Reg::R3, src: Operand::Reg(AX), off: 1 },
                alu(W64, AluOp::Add, Reg::R2, Operand::Imm(2)),
                Insn::JmpCond { width: W64, cond: Cond::Ne, dst: AX, src: Operand::Imm(5), off: 1 },
                alu(W64, AluOp::Add, Reg::R2, Operand::Imm(4)),
            ],
        );
        // Calls into Rust (helper 5 returns r1, which is the buffer address: nonzero).
        // After a call r1..r5 are undefined (the JIT's trampoline clobbers them): reset them.
        let after_call = || {
            vec![
                mov(Reg::R2, Reg::R0),
                alu(W64, AluOp::Sub, Reg::R2, Operand::Reg(Reg::R6)),
                alu(W64, AluOp::Mov, Reg::R3, Operand::Imm(3)),
                alu(W64, AluOp::Mov, Reg::R4, Operand::Imm(4)),
                alu(W64, AluOp::Mov, Reg::R5, Operand::Imm(5)),
                imm64(Reg::R0, 1),
            ]
        };
        let mut body = vec![Insn::Call(CallTarget::Helper(5))];
        body.extend(after_call());
        add("helper call".into(), body);
        let mut body = vec![mov(Reg::R7, AX), alu(W64, AluOp::Mov, AX, Operand::Imm(5)), Insn::CallX { reg: AX }];
        body.extend(after_call());
        body.push(alu(W64, AluOp::Add, AX, Operand::Reg(Reg::R7)));
        add("callx ax".into(), body);
        out
    }

    /// AX across a BPF-to-BPF call whose callee reads and writes it.
    pub fn local_call() -> Vec<Insn> {
        let mut p = setup();
        p.push(Insn::Call(CallTarget::Local(fold(&ALL).len() as i32 + 1)));
        p.push(Insn::Load { size: Size::DW, signed: false, dst: Reg::R6, src: Reg::R6, off: 0 });
        p.extend(fold(&ALL));
        p.push(alu(W64, AluOp::Mul, AX, Operand::Imm(3)));
        p.push(alu(W64, AluOp::Div, AX, Operand::Imm(7)));
        p.push(alu(W64, AluOp::Mov, Reg::R0, Operand::Reg(AX)));
        p.push(Insn::Exit);
        p
    }
}

#[test]
fn ax_survives_every_lowering() {
    let mut programs = ax_programs::programs();
    programs.push(("local call".into(), ax_programs::local_call()));
    assert!(programs.len() > 300);
    let jit = bpfkit_testing::jit_available();
    let cfg = GenConfig::default();
    let init: Vec<u8> = (0..64u8).map(|b| b.wrapping_mul(37) ^ 0xa5).collect();
    for (name, insns) in &programs {
        let slots = bpfkit_isa::encode_program(insns);
        let dump = || bpfkit_isa::listing_xlated(&slots).expect("decodes");
        assert!(Program::load(&slots, &Helpers::conformance()).is_err(), "{name}: AX is refused by load");
        let prog = Arc::new(
            Program::load_xlated(&slots, &Helpers::conformance()).unwrap_or_else(|e| panic!("{name}: {e}\n{}", dump())),
        );
        let mut mem = AlignedMem::new(&init, cfg.mem_size);
        let expected = run_xlated(&prog, mem.bytes_mut(), &cfg, Backend::Interpreter)
            .unwrap_or_else(|e| panic!("{name}: interpreter: {e}\n{}", dump()));
        if !jit {
            continue;
        }
        bpfkit_jit::jit(&prog, &bpfkit_jit::JitOptions::default(), bpfkit_jit::Trust::CallerVouches)
            .unwrap_or_else(|e| panic!("{name}: the JIT refuses it: {e}\n{}", dump()));
        let mut nmem = AlignedMem::new(&init, cfg.mem_size);
        let native = run_xlated(&prog, nmem.bytes_mut(), &cfg, Backend::Native);
        assert!(
            native == Ok(expected) && nmem.bytes() == mem.bytes(),
            "{name}: interpreter {expected:#x}, JIT {native:?}\n{}",
            dump()
        );
    }
}

/// AX across `LD_ABS`/`LD_IND` (calls into Rust) and as the index register of `LD_IND`.
#[test]
fn ax_survives_packet_loads() {
    use bpfkit_interp::{MemoryRegion, RegionKind};
    use bpfkit_isa::Size;
    let ax = Reg::AX;
    let mov = |dst: Reg, v: i32| Insn::Alu { width: bpfkit_isa::Width::W64, op: AluOp::Mov, dst, src: Operand::Imm(v) };
    let add =
        |dst: Reg, src: Reg| Insn::Alu { width: bpfkit_isa::Width::W64, op: AluOp::Add, dst, src: Operand::Reg(src) };
    let slots = bpfkit_isa::encode_program(&[
        mov(ax, 3),
        mov(Reg::R6, 0),
        Insn::LdAbs { size: Size::H, imm: 2 },
        add(Reg::R6, Reg::R0),
        Insn::LdInd { size: Size::W, src: ax, imm: 1 },
        add(Reg::R6, Reg::R0),
        add(ax, Reg::R6),
        mov(Reg::R0, 0),
        add(Reg::R0, ax),
        Insn::Exit,
    ]);
    let prog = Arc::new(Program::load_xlated(&slots, &Helpers::conformance()).expect("loads"));
    let run = |backend: Backend| {
        let mut pkt: Vec<u8> = (0..32u8).map(|b| b.wrapping_mul(29)).collect();
        let mut vm = Vm::new(Arc::clone(&prog));
        vm.set_backend(backend);
        let region = MemoryRegion::writable(RegionKind::Packet, &mut pkt);
        vm.run(&[region], [0; 5]).map_err(|e| e.to_string())
    };
    let expected = run(Backend::Interpreter).expect("interpreter");
    // 3 + be16(pkt[2..4]) + be32(pkt[4..8]).
    let pkt: Vec<u64> = (0..32u64).map(|b| (b * 29) & 0xff).collect();
    let be = |r: std::ops::Range<usize>| pkt[r].iter().fold(0u64, |a, &b| a << 8 | b);
    assert_eq!(expected, 3 + be(2..4) + be(4..8));
    if bpfkit_testing::jit_available() {
        bpfkit_jit::jit(&prog, &bpfkit_jit::JitOptions::default(), bpfkit_jit::Trust::CallerVouches).expect("compiles");
        assert_eq!(run(Backend::Native), Ok(expected));
    }
}
