//! decode → Display → assemble → encode is the identity, for every encoding the decoder
//! accepts, in both the plain (`disassemble`) and the llvm-objdump (`listing`) layouts.

use bpfkit_isa::asm::parse;
use bpfkit_isa::{
    AluOp, AtomicOp, CallTarget, Cond, Endian, Insn, LdImmSrc, Operand, RawInsn, Reg, Size, Width, assemble,
    decode_program, disassemble, encode_program, listing,
};
use proptest::prelude::*;

fn reg() -> impl Strategy<Value = Reg> {
    (0u8..=10).prop_map(|n| Reg::new(n).expect("0..=10"))
}

fn imm() -> impl Strategy<Value = i32> {
    prop_oneof![
        any::<i32>(),
        Just(i32::MIN),
        Just(i32::MAX),
        Just(0),
        Just(-1),
        -40i32..40,
        (0u32..=32).prop_map(|s| (1u64 << s) as u32 as i32),
    ]
}

fn off() -> impl Strategy<Value = i16> {
    prop_oneof![any::<i16>(), Just(i16::MIN), Just(i16::MAX), Just(0), Just(-1), -40i16..40]
}

fn width() -> impl Strategy<Value = Width> {
    prop_oneof![Just(Width::W32), Just(Width::W64)]
}

fn size() -> impl Strategy<Value = Size> {
    prop_oneof![Just(Size::B), Just(Size::H), Just(Size::W), Just(Size::DW)]
}

fn operand() -> impl Strategy<Value = Operand> {
    prop_oneof![reg().prop_map(Operand::Reg), imm().prop_map(Operand::Imm)]
}

fn alu_op() -> impl Strategy<Value = AluOp> {
    use AluOp::*;
    proptest::sample::select(vec![
        Add, Sub, Mul, Div, SDiv, Or, And, Lsh, Rsh, Mod, SMod, Xor, Mov, MovSx8, MovSx16, MovSx32, Arsh,
    ])
}

fn cond() -> impl Strategy<Value = Cond> {
    use Cond::*;
    proptest::sample::select(vec![Eq, Gt, Ge, Set, Ne, Sgt, Sge, Lt, Le, Slt, Sle])
}

fn atomic_op() -> impl Strategy<Value = AtomicOp> {
    use AtomicOp::*;
    any::<bool>().prop_flat_map(|fetch| {
        proptest::sample::select(vec![
            Add { fetch },
            Or { fetch },
            And { fetch },
            Xor { fetch },
            Xchg,
            Cmpxchg,
            LoadAcquire,
            StoreRelease,
        ])
    })
}

fn ld_imm_src() -> impl Strategy<Value = LdImmSrc> {
    use LdImmSrc::*;
    proptest::sample::select(vec![Imm, MapFd, MapValue, BtfId, Func, MapIdx, MapIdxValue])
}

/// Every variant of `Insn` with arbitrary fields, kept only when the decoder accepts its encoding.
fn insn() -> impl Strategy<Value = Insn> {
    let any_insn =
        prop_oneof![
            (width(), alu_op(), reg(), operand()).prop_map(|(width, op, dst, src)| Insn::Alu { width, op, dst, src }),
            (width(), alu_op(), reg(), reg()).prop_map(|(width, op, dst, s)| Insn::Alu {
                width,
                op,
                dst,
                src: Operand::Reg(s)
            }),
            (width(), reg()).prop_map(|(width, dst)| Insn::Neg { width, dst }),
            (
                prop_oneof![Just(Endian::ToLe), Just(Endian::ToBe), Just(Endian::Swap)],
                prop_oneof![Just(16u8), Just(32), Just(64)],
                reg()
            )
                .prop_map(|(kind, bits, dst)| Insn::Endian { kind, bits, dst }),
            (reg(), ld_imm_src(), imm(), prop_oneof![Just(0), imm()])
                .prop_map(|(dst, src, imm, next_imm)| Insn::LdImm64 { dst, src, imm, next_imm }),
            (size(), imm()).prop_map(|(size, imm)| Insn::LdAbs { size, imm }),
            (size(), reg(), imm()).prop_map(|(size, src, imm)| Insn::LdInd { size, src, imm }),
            (size(), any::<bool>(), reg(), reg(), off())
                .prop_map(|(size, signed, dst, src, off)| { Insn::Load { size, signed, dst, src, off } }),
            (size(), reg(), off(), operand()).prop_map(|(size, dst, off, src)| Insn::Store { size, dst, off, src }),
            (size(), atomic_op(), reg(), reg(), off())
                .prop_map(|(size, op, dst, src, off)| { Insn::Atomic { size, op, dst, src, off } }),
            (any::<bool>(), imm(), off())
                .prop_map(|(long, i, o)| Insn::Ja { long, off: if long { i } else { o.into() } }),
            (any::<bool>(), any::<bool>(), imm(), off()).prop_map(|(long, inverse, i, o)| {
                Insn::StaticBranch { long, inverse, off: if long { i } else { o.into() } }
            }),
            (width(), cond(), reg(), operand(), off())
                .prop_map(|(width, cond, dst, src, off)| { Insn::JmpCond { width, cond, dst, src, off } }),
            prop_oneof![
                imm().prop_map(CallTarget::Helper),
                imm().prop_map(CallTarget::Local),
                (imm(), prop_oneof![Just(0), off()]).prop_map(|(btf_id, module)| CallTarget::Kfunc { btf_id, module }),
            ]
            .prop_map(Insn::Call),
            reg().prop_map(|reg| Insn::CallX { reg }),
            Just(Insn::Exit),
            reg().prop_map(|reg| Insn::GotoX { reg }),
            off().prop_map(|off| Insn::MayGoto { off }),
        ];
    any_insn.prop_filter("the decoder must accept the encoding", |i| Insn::decode(&i.encode(), 0) == Ok(*i))
}

/// Opcodes for which some slot decodes, found by trying the usual field values.
fn valid_opcodes() -> Vec<u8> {
    (0..=255u8)
        .filter(|&code| {
            [0, 1, 16, 0x100, 0x110, 0xe1, 0xf1].iter().any(|&imm| {
                (0..2).any(|src| {
                    Insn::decode(&[RawInsn::new(code, 0, src, 1, imm), RawInsn::default()], 0).is_ok()
                        || Insn::decode(&[RawInsn::new(code, 0, src, 0, imm), RawInsn::default()], 0).is_ok()
                })
            })
        })
        .collect()
}

/// A slot whose fields are zero half of the time and whose opcode is mostly a known one, so
/// that the decoder accepts a good share.
fn slot() -> impl Strategy<Value = RawInsn> {
    let nibble = prop_oneof![Just(0u8), 0u8..=10, 0u8..16];
    (
        prop_oneof![1 => any::<u8>(), 3 => proptest::sample::select(valid_opcodes())],
        nibble.clone(),
        nibble,
        prop_oneof![Just(0i16), any::<i16>()],
        prop_oneof![Just(0i32), any::<i32>()],
    )
        .prop_map(|(code, dst, src, off, imm)| RawInsn::new(code, dst, src, off, imm))
}

/// Random slots, cut at the first one the decoder rejects; at least one instruction.
fn random_program() -> impl Strategy<Value = Vec<RawInsn>> {
    proptest::collection::vec(slot(), 1..12).prop_filter_map("no valid first instruction", |mut slots| {
        let mut pc = 0;
        while let Ok(i) = Insn::decode(&slots, pc) {
            pc += i.slots();
        }
        slots.truncate(pc);
        (!slots.is_empty()).then_some(slots)
    })
}

/// The identity on one program, through both text layouts.
fn roundtrip(slots: &[RawInsn]) -> Result<(), TestCaseError> {
    let text = disassemble(slots).expect("decodable");
    prop_assert_eq!(
        assemble(&text).map_err(|e| TestCaseError::fail(format!("{e} in\n{text}")))?,
        slots,
        "text:\n{}",
        text
    );
    let lst = listing(slots).expect("decodable");
    prop_assert_eq!(
        assemble(&lst).map_err(|e| TestCaseError::fail(format!("{e} in\n{lst}")))?,
        slots,
        "listing:\n{}",
        lst
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn structured_insn_roundtrips(insn in insn()) {
        let text = insn.to_string();
        let parsed = parse(&text).map_err(|e| TestCaseError::fail(format!("{e}: {text}")))?;
        prop_assert_eq!(parsed, vec![insn], "text: {}", text);
        roundtrip(&insn.encode())?;
    }

    #[test]
    fn structured_program_roundtrips(insns in proptest::collection::vec(insn(), 1..10)) {
        let slots = encode_program(&insns);
        let located = decode_program(&slots).expect("each instruction decodes");
        prop_assert_eq!(located.iter().map(|l| l.insn).collect::<Vec<_>>(), insns);
        roundtrip(&slots)?;
    }

    #[test]
    fn random_slots_roundtrip(slots in random_program()) {
        roundtrip(&slots)?;
    }
}

/// Fixed instructions at the edges of every field, so that they are always covered.
#[test]
fn edge_cases_roundtrip() {
    let r = |n| Reg::new(n).unwrap();
    let mut insns = vec![
        Insn::Alu { width: Width::W32, op: AluOp::Mov, dst: r(0), src: Operand::Imm(i32::MIN) },
        Insn::Alu { width: Width::W64, op: AluOp::Add, dst: r(10), src: Operand::Imm(-1) },
        Insn::Alu { width: Width::W32, op: AluOp::MovSx16, dst: r(1), src: Operand::Reg(r(2)) },
        Insn::Load { size: Size::DW, signed: false, dst: r(1), src: r(10), off: i16::MIN },
        Insn::Load { size: Size::W, signed: true, dst: r(1), src: r(10), off: i16::MAX },
        Insn::Store { size: Size::B, dst: r(10), off: -1, src: Operand::Imm(i32::MIN) },
        Insn::LdAbs { size: Size::H, imm: i32::MIN },
        Insn::LdInd { size: Size::W, src: r(3), imm: i32::MIN },
        Insn::LdInd { size: Size::B, src: r(3), imm: i32::MAX },
        Insn::Atomic { size: Size::B, op: AtomicOp::LoadAcquire, dst: r(0), src: r(1), off: i16::MIN },
        Insn::Atomic { size: Size::H, op: AtomicOp::StoreRelease, dst: r(1), src: r(2), off: -2 },
        Insn::Atomic { size: Size::W, op: AtomicOp::Cmpxchg, dst: r(1), src: r(2), off: 0 },
        Insn::Ja { long: false, off: i16::MIN.into() },
        Insn::Ja { long: true, off: i32::MIN },
        Insn::StaticBranch { long: true, inverse: true, off: i32::MAX },
        Insn::StaticBranch { long: false, inverse: false, off: -1 },
        Insn::JmpCond { width: Width::W32, cond: Cond::Sle, dst: r(1), src: Operand::Imm(i32::MIN), off: i16::MIN },
        Insn::Call(CallTarget::Helper(i32::MIN)),
        Insn::Call(CallTarget::Local(-1)),
        Insn::Call(CallTarget::Kfunc { btf_id: 7, module: i16::MIN }),
        Insn::MayGoto { off: i16::MIN },
    ];
    for src in [
        LdImmSrc::Imm,
        LdImmSrc::MapFd,
        LdImmSrc::MapValue,
        LdImmSrc::BtfId,
        LdImmSrc::Func,
        LdImmSrc::MapIdx,
        LdImmSrc::MapIdxValue,
    ] {
        for (imm, next_imm) in [(0, 0), (i32::MIN, 0), (-1, -1), (5, i32::MIN)] {
            let i = Insn::LdImm64 { dst: r(9), src, imm, next_imm };
            if Insn::decode(&i.encode(), 0) == Ok(i) {
                insns.push(i);
            }
        }
    }
    for insn in &insns {
        assert_eq!(Insn::decode(&insn.encode(), 0), Ok(*insn), "edge case must be valid: {insn:?}");
        assert_eq!(parse(&insn.to_string()), Ok(vec![*insn]), "{insn}");
    }
    let slots = encode_program(&insns);
    roundtrip(&slots).unwrap();
}
