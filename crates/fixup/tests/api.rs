//! The API around the vectors: typed errors, the lookup helpers, helper patches with their own
//! jumps, the blinding PRNG, instructions that already use AX.

use bpfkit_fixup::{FixupError, FixupOptions, INSN_DELETED, fixup};
use bpfkit_isa::{
    AluOp, Cond, Field, Insn, Operand, RawInsn, Reg, Width, assemble, decode_program_xlated, disassemble_xlated,
    encode_program,
};

fn asm(text: &str) -> Vec<RawInsn> {
    assemble(text).unwrap_or_else(|e| panic!("{e}"))
}

fn nops() -> FixupOptions<'static> {
    FixupOptions { remove_nops: true, ..FixupOptions::default() }
}

#[test]
fn map_and_line_info() {
    let x = fixup(&asm("r0 = 1\ngoto +0\nr1 = 2 ll\nexit\n"), &FixupOptions { blind: Some(9), ..nops() }).unwrap();
    // mov → 3, nop deleted, lddw → 4 + 3 (its second slot at the start of the second half).
    assert_eq!(x.orig_to_xlated, vec![0, INSN_DELETED, 3, 7, 10]);
    assert_eq!(x.map(0), Some(0));
    assert_eq!(x.map(1), None);
    assert_eq!(x.map(3), Some(7));
    assert_eq!(x.map(5), None, "out of range");
    let lines = x.remap_line_info(&[(0, "a"), (1, "nop"), (2, "lddw"), (4, "exit"), (9, "beyond")]);
    assert_eq!(lines, vec![(0, "a"), (3, "lddw"), (10, "exit")]);
}

#[test]
fn unblinded_lddw_second_slot() {
    let x = fixup(&asm("goto +0\nr1 = 2 ll\nr0 = 0\nexit\n"), &nops()).unwrap();
    assert_eq!(x.orig_to_xlated, vec![INSN_DELETED, 0, 1, 2, 3]);
    assert_eq!(x.xlated_to_orig, vec![Some(1), Some(2), Some(3), Some(4)]);
}

#[test]
fn bad_programs_are_typed_errors() {
    assert_eq!(fixup(&[], &nops()), Err(FixupError::Empty));
    assert_eq!(fixup(&asm("goto +5\nexit\n"), &nops()), Err(FixupError::JumpOutOfRange { pc: 0, target: 6, len: 2 }));
    assert_eq!(fixup(&asm("goto +1\nr0 = 1 ll\nexit\n"), &nops()), Err(FixupError::JumpIntoLddw { pc: 0, target: 2 }));
    // r12 is not even AX.
    let bad = [RawInsn::new(0xb7, 12, 0, 0, 1), RawInsn::new(0x95, 0, 0, 0, 0)];
    assert!(matches!(fixup(&bad, &nops()), Err(FixupError::Decode { .. })));
}

/// A conditional jump that reaches 32767 slots ahead no longer fits once the instructions it
/// jumps over are blinded into three each.
#[test]
fn offset_overflow() {
    let mut prog = vec![Insn::JmpCond {
        width: Width::W64,
        cond: Cond::Eq,
        dst: Reg::R1,
        src: Operand::Reg(Reg::R2),
        off: i16::MAX,
    }];
    prog.extend(std::iter::repeat_n(
        Insn::Alu { width: Width::W64, op: AluOp::Add, dst: Reg::R0, src: Operand::Imm(1) },
        i16::MAX as usize,
    ));
    prog.push(Insn::Exit);
    let slots = encode_program(&prog);
    let plain = fixup(&slots, &nops()).unwrap();
    assert_eq!(plain.insns, slots);
    match fixup(&slots, &FixupOptions { blind: Some(1), ..nops() }) {
        Err(FixupError::OffsetOverflow { xlated_pc: 0, orig_pc: Some(0), offset, field: Field::Off, bits: 16 }) => {
            assert_eq!(offset, 3 * i64::from(i16::MAX));
        }
        other => panic!("expected an offset overflow, got {other:?}"),
    }
}

/// A patch with its own jumps: one inside it, one to the instruction after the call; jumps
/// to the call land on the first instruction of the patch.
#[test]
fn helper_patch_with_jumps() {
    let patch = asm("r0 = 0\nif r1 == 0 goto +2\nr0 = 7\ngoto +1\nr0 = 9\n");
    let inline = move |id: i32| (id == 42).then(|| patch.clone());
    let opts = FixupOptions { inline_helper: Some(&inline), ..FixupOptions::default() };
    let x = fixup(&asm("if r2 == 0 goto +1\nr1 = 1\ncall 42\ncall 5\nexit\n"), &opts).unwrap();
    assert_eq!(x.orig_to_xlated, vec![0, 1, 2, 7, 8]);
    assert_eq!(x.xlated_to_orig, vec![Some(0), Some(1), Some(2), Some(2), Some(2), Some(2), Some(2), Some(3), Some(4)]);
    assert_eq!(
        disassemble_xlated(&x.insns).unwrap(),
        "if r2 == 0x0 goto +0x1\nr1 = 0x1\nr0 = 0x0\nif r1 == 0x0 goto +0x2\nr0 = 0x7\ngoto +0x1\nr0 = 0x9\ncall 0x5\nexit\n"
    );
    // A patch that jumps out of itself, or past the end of the program, is refused.
    let out = |_: i32| Some(asm("goto +3\n"));
    let opts = FixupOptions { inline_helper: Some(&out), ..FixupOptions::default() };
    assert!(matches!(fixup(&asm("call 1\nexit\n"), &opts), Err(FixupError::BadPatch { pc: 0, helper: 1, .. })));
    let past = |_: i32| Some(asm("goto +0\n"));
    let opts = FixupOptions { inline_helper: Some(&past), ..FixupOptions::default() };
    assert!(matches!(fixup(&asm("r0 = 0\ncall 1\n"), &opts), Err(FixupError::BadPatch { pc: 1, helper: 1, .. })));
    let empty = |_: i32| Some(Vec::new());
    let opts = FixupOptions { inline_helper: Some(&empty), ..FixupOptions::default() };
    assert!(matches!(fixup(&asm("call 1\nexit\n"), &opts), Err(FixupError::BadPatch { .. })));
}

/// The blinding values are a function of the seed: the same seed gives the same program,
/// another seed other immediates; the constant itself is never in the code.
#[test]
fn blinding_is_seeded() {
    let prog = asm("r0 = 0x12345678\nr0 += 0x12345678\nexit\n");
    let a = fixup(&prog, &FixupOptions { blind: Some(1), ..FixupOptions::default() }).unwrap();
    let b = fixup(&prog, &FixupOptions { blind: Some(1), ..FixupOptions::default() }).unwrap();
    let c = fixup(&prog, &FixupOptions { blind: Some(2), ..FixupOptions::default() }).unwrap();
    assert_eq!(a, b);
    assert_ne!(a.insns, c.insns);
    assert_eq!(a.orig_to_xlated, c.orig_to_xlated);
    for x in [&a, &c] {
        assert!(x.insns.iter().all(|s| s.imm != 0x1234_5678), "{:?}", x.insns);
        // The two random values of each pair differ between instructions.
        assert_ne!(x.insns[1].imm, x.insns[4].imm);
    }
}

/// Instructions that already name AX are left alone, as in the kernel; the others around
/// them are blinded.
#[test]
fn instructions_using_ax_are_not_blinded() {
    let ax = Reg::AX;
    let prog = encode_program(&[
        Insn::Alu { width: Width::W64, op: AluOp::Mov, dst: ax, src: Operand::Imm(5) },
        Insn::Alu { width: Width::W64, op: AluOp::Add, dst: Reg::R0, src: Operand::Reg(ax) },
        Insn::JmpCond { width: Width::W64, cond: Cond::Gt, dst: ax, src: Operand::Imm(3), off: 0 },
        Insn::Alu { width: Width::W64, op: AluOp::Add, dst: Reg::R0, src: Operand::Imm(5) },
        Insn::Exit,
    ]);
    let x = fixup(&prog, &FixupOptions { blind: Some(3), ..FixupOptions::default() }).unwrap();
    assert_eq!(x.orig_to_xlated, vec![0, 1, 2, 3, 6]);
    assert_eq!(x.insns[..3], prog[..3]);
    let d = decode_program_xlated(&x.insns).unwrap();
    assert_eq!(d.len(), 7);
}
