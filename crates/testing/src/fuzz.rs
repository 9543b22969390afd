//! Fuzz target bodies and the generators they use, as plain library functions so that the
//! cargo-fuzz project in `fuzz/` and the smoke test (`tests/fuzz_smoke.rs`) share them.
//!
//! Every target takes arbitrary bytes and must not panic, except to report a broken invariant;
//! the panic message then says which invariant and shows the program.
//!
//! - [`decode`]: bytes → slots → decoded program; checks `encode(decode(x)) == x` and that
//!   the assembler reads back what the disassembler prints.
//! - [`assemble`]: bytes → text → assembler; whatever it accepts must survive
//!   `assemble(listing(x)) == x`.
//! - [`interp`]: bytes → a mostly valid program ([`arbitrary_program`]) and a memory buffer;
//!   loads and runs it under a branch limit and checks that the interpreter is deterministic.

use arbitrary::{Result as ArbResult, Unstructured};
use bpfkit_interp::{AccessError, HelperError, Helpers, Program, RunError, RunErrorKind, Vm};
use bpfkit_isa::{
    AluOp, AtomicOp, CallTarget, Cond, DecodeError, Endian, Insn, LdImmSrc, Located, Operand, RawInsn, Reg, Size,
    Width, decode_program, disassemble, listing, slots_from_bytes, slots_to_bytes,
};
use std::fmt::Write as _;
use std::sync::Arc;

/// Largest memory buffer [`interp`] gives a program (`r1`/`r2`).
pub const MAX_MEM: usize = 256;
/// Backward-jump limit of every run of [`interp`]: the interpreter does not check termination.
pub const BRANCH_LIMIT: u64 = 10_000;

/// The `may_goto` budget fuzzed programs run with (the kernel's 8,388,608 would never run out
/// under the branch limit).
pub const MAY_GOTO_BUDGET: u64 = 64;
/// Most instructions [`arbitrary_program`] generates before its final `exit`.
pub const MAX_PROGRAM_INSNS: usize = 64;
/// Most instructions [`arbitrary_decodable`] generates.
pub const MAX_DECODABLE_INSNS: usize = 32;
/// Most local calls in one [`arbitrary_program`]: bounds the size of the call tree, which the
/// branch limit does not (returning from a call is not a backward jump).
const MAX_LOCAL_CALLS: usize = 4;
/// Bytes of its input [`arbitrary_program`] leaves, about, for the memory buffer.
pub const RESERVED_INPUT: usize = 64;
/// The helper [`Helpers::conformance`] registers.
pub(crate) const HELPER_ID: i32 = 5;

// ---------------------------------------------------------------------------------------------
// Targets

/// Fuzz target `decode`: splits `data` into slots (a trailing partial slot is dropped after
/// checking that `slots_from_bytes` refuses it), checks [`check_slots`], and loads the program
/// (which may fail, but not panic).
pub fn decode(data: &[u8]) {
    let whole = data.len() - data.len() % RawInsn::SIZE;
    let slots = match slots_from_bytes(data) {
        Ok(slots) => {
            assert_eq!(whole, data.len(), "slots_from_bytes accepted {} bytes", data.len());
            slots
        }
        Err(e) => {
            assert_eq!(e, DecodeError::PartialSlot { len: data.len() }, "slots_from_bytes of {} bytes", data.len());
            slots_from_bytes(&data[..whole]).expect("a whole number of slots")
        }
    };
    assert_eq!(slots.len(), whole / RawInsn::SIZE);
    assert_eq!(slots_to_bytes(&slots), data[..whole], "slots_to_bytes(slots_from_bytes(x)) != x");
    check_slots(&slots);
    // The loader's checks (targets, helpers, pseudo sources) must not panic either.
    let _ = Program::load(&slots, &Helpers::conformance());
}

/// Fuzz target `assemble`: `data` as (lossy) UTF-8 text through the assembler. Whatever it
/// accepts must be a valid program that survives `assemble(listing(x)) == x`.
pub fn assemble(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match bpfkit_isa::assemble(&text) {
        Ok(slots) => {
            if let Err(e) = decode_program(&slots) {
                panic!(
                    "the assembler produced slots the decoder rejects ({e})\nsource:\n{text}\nslots: {}",
                    hex_slots(&slots)
                );
            }
            check_slots(&slots);
        }
        Err(e) => {
            // The error must format without panicking.
            let _ = e.to_string();
        }
    }
}

/// Fuzz target `interp`: builds a program with [`arbitrary_program`] from the front of
/// `data` and a memory buffer from the rest (at most [`MAX_MEM`] bytes), then
/// [`run_checked`].
pub fn interp(data: &[u8]) {
    let _ = interp_outcome(data);
}

/// The body of [`interp`], returning what [`run_checked`] returns (`None` also when no
/// program could be generated), for tests that look at how generated programs fare.
pub fn interp_outcome(data: &[u8]) -> Option<Result<u64, RunError>> {
    let mut u = Unstructured::new(data);
    let slots = arbitrary_program(&mut u).ok()?;
    let rest = u.take_rest();
    let mem = &rest[..rest.len().min(MAX_MEM)];
    run_checked(&slots, mem)
}

// ---------------------------------------------------------------------------------------------
// Invariants

/// Checks what must hold for any slot sequence: if the decoder refuses it, the error names a
/// slot of the program and the disassembler refuses it the same way; if it accepts it,
/// `encode(decode(x)) == x`, `assemble(listing(x)) == x` and `assemble(disassemble(x)) == x`.
pub fn check_slots(slots: &[RawInsn]) {
    let insns = match decode_program(slots) {
        Ok(insns) => insns,
        Err(e) => {
            match e.pc() {
                Some(pc) => assert!(pc < slots.len(), "decode error {e} names a slot outside {}", hex_slots(slots)),
                None => panic!("decode error without a pc ({e}) for whole slots {}", hex_slots(slots)),
            }
            let _ = e.to_string();
            assert_eq!(listing(slots), Err(e.clone()), "listing and decode_program disagree on {}", hex_slots(slots));
            return;
        }
    };
    check_encode(slots, &insns);
    let text = listing(slots).unwrap_or_else(|e| panic!("listing fails ({e}) on decodable {}", hex_slots(slots)));
    check_reassembles(slots, &text, "listing");
    let text =
        disassemble(slots).unwrap_or_else(|e| panic!("disassemble fails ({e}) on decodable {}", hex_slots(slots)));
    check_reassembles(slots, &text, "disassemble");
}

/// `encode(decode(x)) == x`, instruction by instruction.
fn check_encode(slots: &[RawInsn], insns: &[Located]) {
    let mut out = Vec::with_capacity(slots.len());
    for l in insns {
        assert_eq!(l.pc, out.len(), "decode_program: wrong pc for {:?} in {}", l.insn, hex_slots(slots));
        l.insn.encode_into(&mut out);
        assert_eq!(out.len(), l.pc + l.insn.slots(), "encode_into of {:?} pushed a wrong number of slots", l.insn);
        let back = &out[l.pc..];
        let orig = &slots[l.pc..l.pc + l.insn.slots()];
        assert_eq!(
            back,
            orig,
            "encode(decode(x)) != x for insn {} at pc {}: decoded {:?}, re-encoded {}",
            hex_slots(orig),
            l.pc,
            l.insn,
            hex_slots(back)
        );
    }
    assert_eq!(out, slots, "encode(decode(x)) != x");
}

fn check_reassembles(slots: &[RawInsn], text: &str, printer: &str) {
    match bpfkit_isa::assemble(text) {
        Ok(back) => {
            if back != slots {
                panic!(
                    "assemble({printer}(x)) != x\nx:    {}\nback: {}\n{printer}:\n{text}",
                    hex_slots(slots),
                    hex_slots(&back)
                );
            }
        }
        Err(e) => panic!("assemble({printer}(x)) fails: {e}\nx: {}\n{printer}:\n{text}", hex_slots(slots)),
    }
}

/// Loads `slots` with the conformance helpers and, if that works, runs the program on a copy
/// of `mem` with a branch limit of [`BRANCH_LIMIT`], checking determinism:
///
/// - two fresh VMs, the memory at the same address with the same contents each time, give the
///   same result (error addresses aside) and leave the same memory, unless the program uses
///   the frame pointer `r10` as a value (the two VMs' stacks are at different addresses);
/// - a second run on the same VM gives exactly the same result and memory (each run starts
///   with zeroed stack frames).
///
/// Both VMs use a small `may_goto` budget ([`MAY_GOTO_BUDGET`]) so that the budget-exhausted
/// path is reached.
///
/// Returns `None` if the program does not load, else the result of the first run.
pub fn run_checked(slots: &[RawInsn], mem: &[u8]) -> Option<Result<u64, RunError>> {
    let program = Program::load(slots, &Helpers::conformance()).ok()?;
    assert_eq!(program.slots(), slots, "Program::slots");
    let insns = decode_program(slots).expect("a loaded program decodes");
    let program = Arc::new(program);

    let mut buf = mem.to_vec();
    let mut vm = Vm::new(Arc::clone(&program));
    vm.set_branch_limit(Some(BRANCH_LIMIT));
    vm.set_may_goto_budget(MAY_GOTO_BUDGET);
    let first = vm.run_mem(&mut buf);
    let first_mem = buf.clone();

    let observes_fp = insns.iter().any(|l| reads_fp_as_value(&l.insn));
    buf.copy_from_slice(mem);
    let mut other = Vm::new(Arc::clone(&program));
    other.set_branch_limit(Some(BRANCH_LIMIT));
    other.set_may_goto_budget(MAY_GOTO_BUDGET);
    let second = other.run_mem(&mut buf);
    // An address computed from the buffer may happen to fall inside one VM's own stack (the
    // two stacks are separate heap allocations): then one run reads it and the other faults.
    // Both are safe; only a difference without an out-of-bounds fault is a bug.
    let out_of_bounds = |r: &Result<u64, RunError>| matches!(r, Err(e) if matches!(e.kind, RunErrorKind::Access(AccessError::OutOfBounds { .. })));
    if !observes_fp && !out_of_bounds(&first) && !out_of_bounds(&second) {
        let (a, b) = (shape(&first), shape(&second));
        if a != b || first_mem != buf {
            panic!(
                "two VMs disagree: {a} / {b}\nmemory before: {}\nafter first:   {}\nafter second:  {}\n{}",
                hex(mem),
                hex(&first_mem),
                hex(&buf),
                describe(slots)
            );
        }
    }

    {
        buf.copy_from_slice(mem);
        let again = vm.run_mem(&mut buf);
        let (a, b) = (format!("{first:?}"), format!("{again:?}"));
        if a != b || first_mem != buf {
            panic!(
                "a second run on the same VM differs: {a} / {b}\nmemory before: {}\nafter first:   {}\nafter second:  {}\n{}",
                hex(mem),
                hex(&first_mem),
                hex(&buf),
                describe(slots)
            );
        }
    }
    Some(first)
}

/// The result of a run with the addresses left out of errors (they differ between VMs whose
/// stacks are at different addresses).
fn shape(r: &Result<u64, RunError>) -> String {
    fn access(a: &AccessError) -> String {
        match *a {
            AccessError::OutOfBounds { size, write, .. } => {
                format!("out of bounds, size {size}, write {write}")
            }
            AccessError::ReadOnly { size, kind, .. } => format!("read-only {kind}, size {size}"),
            AccessError::Misaligned { size, .. } => format!("misaligned, size {size}"),
            AccessError::Context { .. } => a.to_string(),
        }
    }
    match r {
        Ok(v) => format!("Ok({v:#x})"),
        Err(e) => {
            let kind = match &e.kind {
                RunErrorKind::Access(a) => access(a),
                RunErrorKind::Helper { id, name, source } => {
                    let source = match source {
                        HelperError::Access(a) => access(a),
                        other => other.to_string(),
                    };
                    format!("helper {name} (#{id}): {source}")
                }
                other => format!("{other:?}"),
            };
            format!("Err(pc {}: {kind})", e.pc)
        }
    }
}

fn is_fp(r: Reg) -> bool {
    r == Reg::R10
}

fn operand_is_fp(o: Operand) -> bool {
    matches!(o, Operand::Reg(r) if is_fp(r))
}

/// Whether `insn` may read `r10` other than as the base address of a memory access, or writes
/// it (conservatively: after that, `r10` holds anything).
fn reads_fp_as_value(insn: &Insn) -> bool {
    match *insn {
        Insn::Alu { dst, src, .. } => is_fp(dst) || operand_is_fp(src),
        Insn::Neg { dst, .. } | Insn::Endian { dst, .. } | Insn::LdImm64 { dst, .. } => is_fp(dst),
        Insn::LdInd { src, .. } => is_fp(src),
        Insn::Load { dst, .. } => is_fp(dst),
        Insn::Store { src, .. } => operand_is_fp(src),
        Insn::Atomic { op: AtomicOp::LoadAcquire, dst, .. } => is_fp(dst),
        Insn::Atomic { src, .. } => is_fp(src),
        Insn::JmpCond { dst, src, .. } => is_fp(dst) || operand_is_fp(src),
        Insn::CallX { reg } | Insn::GotoX { reg } => is_fp(reg),
        Insn::LdAbs { .. }
        | Insn::Ja { .. }
        | Insn::StaticBranch { .. }
        | Insn::Call(_)
        | Insn::Exit
        | Insn::MayGoto { .. } => false,
    }
}

// ---------------------------------------------------------------------------------------------
// Formatting for panic messages

pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        write!(s, "{b:02x}").expect("writing to a String");
    }
    s
}

/// Slots as one hex string (the bytes of the program).
pub fn hex_slots(slots: &[RawInsn]) -> String {
    hex(&slots_to_bytes(slots))
}

pub(crate) fn describe(slots: &[RawInsn]) -> String {
    let text = listing(slots).unwrap_or_else(|e| format!("(undecodable: {e})\n"));
    format!("program {}:\n{text}", hex_slots(slots))
}

// ---------------------------------------------------------------------------------------------
// Generators

pub(crate) const ALU_OPS: [AluOp; 17] = [
    AluOp::Add,
    AluOp::Sub,
    AluOp::Mul,
    AluOp::Div,
    AluOp::SDiv,
    AluOp::Or,
    AluOp::And,
    AluOp::Lsh,
    AluOp::Rsh,
    AluOp::Mod,
    AluOp::SMod,
    AluOp::Xor,
    AluOp::Mov,
    AluOp::MovSx8,
    AluOp::MovSx16,
    AluOp::MovSx32,
    AluOp::Arsh,
];

pub(crate) const CONDS: [Cond; 11] =
    [Cond::Eq, Cond::Gt, Cond::Ge, Cond::Set, Cond::Ne, Cond::Sgt, Cond::Sge, Cond::Lt, Cond::Le, Cond::Slt, Cond::Sle];

pub(crate) const SIZES: [Size; 4] = [Size::B, Size::H, Size::W, Size::DW];

pub(crate) const ATOMIC_OPS: [AtomicOp; 14] = [
    AtomicOp::Add { fetch: false },
    AtomicOp::Or { fetch: false },
    AtomicOp::And { fetch: false },
    AtomicOp::Xor { fetch: false },
    AtomicOp::Add { fetch: true },
    AtomicOp::Or { fetch: true },
    AtomicOp::And { fetch: true },
    AtomicOp::Xor { fetch: true },
    AtomicOp::Xchg,
    AtomicOp::Cmpxchg,
    AtomicOp::LoadAcquire,
    AtomicOp::StoreRelease,
    // Listed twice so that the read-modify-write kinds and the rest are about as likely.
    AtomicOp::Xchg,
    AtomicOp::Cmpxchg,
];

const LD_IMM_SRCS: [LdImmSrc; 7] = [
    LdImmSrc::Imm,
    LdImmSrc::MapFd,
    LdImmSrc::MapValue,
    LdImmSrc::BtfId,
    LdImmSrc::Func,
    LdImmSrc::MapIdx,
    LdImmSrc::MapIdxValue,
];

/// Immediates that tend to find edge cases.
const SPECIAL_IMMS: [i32; 16] = [0, 1, -1, 2, 7, 8, 16, 31, 32, 63, 64, 0xff, 0xffff, i32::MAX, i32::MIN, -0x8000];

fn any_reg(u: &mut Unstructured<'_>) -> ArbResult<Reg> {
    Ok(Reg::new(u.int_in_range(0..=10)?).expect("0..=10"))
}

fn width(u: &mut Unstructured<'_>) -> ArbResult<Width> {
    Ok(if u.arbitrary()? { Width::W64 } else { Width::W32 })
}

pub(crate) fn interesting_imm(u: &mut Unstructured<'_>) -> ArbResult<i32> {
    Ok(match u.int_in_range(0..=3)? {
        0 => *u.choose(&SPECIAL_IMMS)?,
        1 => u.int_in_range(-16..=16)?,
        2 => u.int_in_range(-0x1000..=0x1000)?,
        _ => u.arbitrary()?,
    })
}

/// An ALU instruction whose operands satisfy the decoder (movsx only from a register, no
/// 32-bit movsx from 32 bits).
fn alu_insn(u: &mut Unstructured<'_>, width: Width, dst: Reg, src_reg: Reg, use_reg: bool) -> ArbResult<Insn> {
    let mut op = *u.choose(&ALU_OPS)?;
    if width == Width::W32 && op == AluOp::MovSx32 {
        op = AluOp::MovSx16;
    }
    let movsx = matches!(op, AluOp::MovSx8 | AluOp::MovSx16 | AluOp::MovSx32);
    let src = if use_reg || movsx { Operand::Reg(src_reg) } else { Operand::Imm(interesting_imm(u)?) };
    Ok(Insn::Alu { width, op, dst, src })
}

pub(crate) fn endian_insn(u: &mut Unstructured<'_>, dst: Reg) -> ArbResult<Insn> {
    let kind = *u.choose(&[Endian::ToLe, Endian::ToBe, Endian::Swap])?;
    let bits = *u.choose(&[16u8, 32, 64])?;
    Ok(Insn::Endian { kind, bits, dst })
}

/// One instruction of any kind the decoder accepts, with every field arbitrary within what the
/// encoding allows (jump targets are not checked: this is for the decoder, not the loader).
pub fn arbitrary_insn(u: &mut Unstructured<'_>) -> ArbResult<Insn> {
    Ok(match u.int_in_range(0..=17)? {
        0 => {
            let (w, dst, src, use_reg) = (width(u)?, any_reg(u)?, any_reg(u)?, u.arbitrary()?);
            alu_insn(u, w, dst, src, use_reg)?
        }
        1 => Insn::Neg { width: width(u)?, dst: any_reg(u)? },
        2 => {
            let dst = any_reg(u)?;
            endian_insn(u, dst)?
        }
        3 => {
            let src = *u.choose(&LD_IMM_SRCS)?;
            let (dst, imm) = (any_reg(u)?, u.arbitrary()?);
            let next_imm = if src.uses_second_imm() { u.arbitrary()? } else { 0 };
            Insn::LdImm64 { dst, src, imm, next_imm }
        }
        4 => Insn::LdAbs { size: *u.choose(&SIZES[..3])?, imm: interesting_imm(u)? },
        5 => Insn::LdInd { size: *u.choose(&SIZES[..3])?, src: any_reg(u)?, imm: interesting_imm(u)? },
        6 => {
            let size = *u.choose(&SIZES)?;
            let signed = size != Size::DW && u.arbitrary()?;
            Insn::Load { size, signed, dst: any_reg(u)?, src: any_reg(u)?, off: u.arbitrary()? }
        }
        7 => {
            let size = *u.choose(&SIZES)?;
            let src = if u.arbitrary()? { Operand::Reg(any_reg(u)?) } else { Operand::Imm(interesting_imm(u)?) };
            Insn::Store { size, dst: any_reg(u)?, off: u.arbitrary()?, src }
        }
        8 => {
            let op = *u.choose(&ATOMIC_OPS)?;
            let size = atomic_size(u, op)?;
            Insn::Atomic { size, op, dst: any_reg(u)?, src: any_reg(u)?, off: u.arbitrary()? }
        }
        9 => {
            let long: bool = u.arbitrary()?;
            let off = if long { u.arbitrary()? } else { i32::from(u.arbitrary::<i16>()?) };
            Insn::Ja { long, off }
        }
        10 => {
            let long: bool = u.arbitrary()?;
            let off = if long { u.arbitrary()? } else { i32::from(u.arbitrary::<i16>()?) };
            Insn::StaticBranch { long, inverse: u.arbitrary()?, off: if off == 0 { 1 } else { off } }
        }
        11 => {
            let src = if u.arbitrary()? { Operand::Reg(any_reg(u)?) } else { Operand::Imm(interesting_imm(u)?) };
            Insn::JmpCond { width: width(u)?, cond: *u.choose(&CONDS)?, dst: any_reg(u)?, src, off: u.arbitrary()? }
        }
        12 => Insn::Call(match u.int_in_range(0..=2)? {
            0 => CallTarget::Helper(u.arbitrary()?),
            1 => CallTarget::Local(u.arbitrary()?),
            _ => CallTarget::Kfunc { btf_id: u.arbitrary()?, module: u.arbitrary()? },
        }),
        13 => Insn::CallX { reg: any_reg(u)? },
        14 => Insn::GotoX { reg: any_reg(u)? },
        15 => Insn::MayGoto { off: u.arbitrary()? },
        _ => Insn::Exit,
    })
}

/// Up to [`MAX_DECODABLE_INSNS`] instructions from [`arbitrary_insn`], encoded: a slot sequence
/// the decoder accepts (but the loader may not).
pub fn arbitrary_decodable(u: &mut Unstructured<'_>) -> ArbResult<Vec<RawInsn>> {
    let n = u.int_in_range(0..=MAX_DECODABLE_INSNS)?;
    let mut out = Vec::with_capacity(n * 2);
    for _ in 0..n {
        if u.is_empty() {
            break;
        }
        arbitrary_insn(u)?.encode_into(&mut out);
    }
    Ok(out)
}

pub(crate) fn atomic_size(u: &mut Unstructured<'_>, op: AtomicOp) -> ArbResult<Size> {
    Ok(match op {
        AtomicOp::LoadAcquire | AtomicOp::StoreRelease => *u.choose(&SIZES)?,
        _ => *u.choose(&[Size::W, Size::DW])?,
    })
}

/// A control transfer whose target is resolved once the program's layout is known.
#[derive(Clone, Copy, Debug)]
enum Branch {
    Ja { long: bool },
    Static { long: bool, inverse: bool },
    Cond { width: Width, cond: Cond, dst: Reg, src: Operand },
    MayGoto,
    Local,
}

#[derive(Clone, Copy, Debug)]
enum Item {
    Plain(Insn),
    /// Branch to the instruction `rel` items after the next one (wrapping around the program).
    Branch(Branch, i64),
}

impl Item {
    fn slots(&self) -> usize {
        match self {
            Item::Plain(insn) => insn.slots(),
            Item::Branch(..) => 1,
        }
    }
}

/// State of [`arbitrary_program`].
struct ProgramGen<'a, 'b> {
    u: &'a mut Unstructured<'b>,
    /// Whether `r10` may be used as a value (copied, compared, stored...), not only as a base.
    wild: bool,
    /// Whether loads may read the stack (programs that do not are checked for determinism on
    /// the same VM too).
    stack_reads: bool,
    local_calls: usize,
    /// Registers `r0`..`r9` (bit n for rn) that hold a pointer into the memory buffer.
    pointers: u16,
}

impl ProgramGen<'_, '_> {
    /// A register to compute with: rarely `r1` (the memory pointer) or `r10`, and rarely one
    /// that holds a pointer.
    fn dst_reg(&mut self) -> ArbResult<Reg> {
        let n = match self.u.int_in_range(0..=63)? {
            0 => 1,
            1 if self.wild => 10,
            n => [0, 2, 3, 4, 5, 6, 7, 8, 9][n as usize % 9],
        };
        if self.pointers & (1 << n) != 0 && self.u.ratio(3, 4)? {
            return Ok(Reg::R0);
        }
        Ok(Reg::new(n).expect("register"))
    }

    /// A register to read a value from: any but `r10`, which only wild programs read.
    fn value_reg(&mut self) -> ArbResult<Reg> {
        let max: u8 = if self.wild { 10 } else { 9 };
        Ok(Reg::new(self.u.int_in_range(0..=max)?).expect("register"))
    }

    /// A base register for a memory access: mostly `r10` (the stack) or `r1` (the memory).
    fn base_reg(&mut self, read: bool) -> ArbResult<Reg> {
        let n = match self.u.int_in_range(0..=39)? {
            0..=18 if self.stack_reads || !read => 10,
            0..=18 => 1,
            19..=38 => {
                // A register that holds a pointer into the memory, as far as straight-line
                // code goes (jumps and calls may make it wrong, which is fine).
                let pointers: Vec<u8> = (0..10).filter(|r| self.pointers & (1 << r) != 0).collect();
                if pointers.is_empty() { 1 } else { *self.u.choose(&pointers)? }
            }
            _ => self.u.int_in_range(0..=9)?,
        };
        Ok(Reg::new(n).expect("register"))
    }

    /// An offset from `base` for an access of `size` bytes: mostly inside the region `base`
    /// usually points to and aligned, sometimes just outside, sometimes anything.
    fn mem_off(&mut self, base: Reg, size: Size) -> ArbResult<i16> {
        let sz = size.bytes() as i16;
        let u = &mut *self.u;
        Ok(match (base.index(), u.int_in_range(0..=63)?) {
            (_, 63) => u.arbitrary()?,
            // The stack: [r10 - 512, r10).
            (10, 0..=47) => -sz * u.int_in_range(1..=64 / sz)?,
            (10, 48..=59) => -sz * u.int_in_range(1..=512 / sz)?,
            (10, 60..=61) => u.int_in_range(-512..=-1)?,
            (10, _) => *u.choose(&[-513, -512 - sz, 0, 8, 1 - sz])?,
            // The memory buffer, of 0 to MAX_MEM bytes.
            (_, 0..=47) => sz * u.int_in_range(0..=32 / sz)?,
            (_, 48..=55) => sz * u.int_in_range(0..=(MAX_MEM as i16) / sz)?,
            (_, 56..=59) => u.int_in_range(0..=64)?,
            _ => u.int_in_range(-16..=(MAX_MEM as i16) + 8)?,
        })
    }

    fn operand(&mut self) -> ArbResult<Operand> {
        Ok(if self.u.arbitrary()? { Operand::Reg(self.value_reg()?) } else { Operand::Imm(interesting_imm(self.u)?) })
    }

    /// A relative target, in items: mostly a short forward jump, sometimes backward or anywhere.
    fn rel(&mut self) -> ArbResult<i64> {
        Ok(match self.u.int_in_range(0..=19)? {
            0..=11 => self.u.int_in_range(0..=8)?,
            12..=16 => self.u.int_in_range(-10..=-1)?,
            _ => self.u.int_in_range(-(MAX_PROGRAM_INSNS as i64)..=MAX_PROGRAM_INSNS as i64)?,
        })
    }

    /// Appends one or two items, and keeps track of the registers that hold pointers.
    fn item(&mut self, items: &mut Vec<Item>) -> ArbResult<()> {
        let start = items.len();
        let copied = self.item_inner(items)?;
        let writes = items[start..].iter().filter_map(|item| match item {
            Item::Plain(insn) => written(insn),
            Item::Branch(..) => None,
        });
        for r in writes {
            self.pointers &= !(1 << r.index());
        }
        if let Some(r) = copied {
            self.pointers |= 1 << r.index();
        }
        Ok(())
    }

    /// Appends one or two items; returns the register that now holds a copy of the memory
    /// pointer, if any.
    fn item_inner(&mut self, items: &mut Vec<Item>) -> ArbResult<Option<Reg>> {
        let item = match self.u.int_in_range(0..=99)? {
            0..=19 => {
                let (dst, src, use_reg) = (self.dst_reg()?, self.value_reg()?, self.u.arbitrary()?);
                Item::Plain(alu_insn(self.u, Width::W64, dst, src, use_reg)?)
            }
            20..=29 => {
                let (dst, src, use_reg) = (self.dst_reg()?, self.value_reg()?, self.u.arbitrary()?);
                Item::Plain(alu_insn(self.u, Width::W32, dst, src, use_reg)?)
            }
            30..=32 => Item::Plain(Insn::Neg { width: width(self.u)?, dst: self.dst_reg()? }),
            33..=35 => {
                let dst = self.dst_reg()?;
                Item::Plain(endian_insn(self.u, dst)?)
            }
            36..=39 => Item::Plain(Insn::LdImm64 {
                dst: self.dst_reg()?,
                src: LdImmSrc::Imm,
                imm: self.u.arbitrary()?,
                next_imm: interesting_imm(self.u)?,
            }),
            40..=51 => {
                let size = *self.u.choose(&SIZES)?;
                let signed = size != Size::DW && self.u.ratio(1, 3)?;
                let dst = self.dst_reg()?;
                let src = self.base_reg(true)?;
                let off = self.mem_off(src, size)?;
                Item::Plain(Insn::Load { size, signed, dst, src, off })
            }
            52..=63 => {
                let size = *self.u.choose(&SIZES)?;
                let dst = self.base_reg(false)?;
                let off = self.mem_off(dst, size)?;
                let src = self.operand()?;
                Item::Plain(Insn::Store { size, dst, off, src })
            }
            64..=69 => {
                let op = *self.u.choose(&ATOMIC_OPS)?;
                let size = atomic_size(self.u, op)?;
                let base = self.base_reg(op != AtomicOp::StoreRelease)?;
                let off = self.mem_off(base, size)?;
                let other = if op == AtomicOp::LoadAcquire { self.dst_reg()? } else { self.value_reg()? };
                let (dst, src) = if op == AtomicOp::LoadAcquire { (other, base) } else { (base, other) };
                Item::Plain(Insn::Atomic { size, op, dst, src, off })
            }
            70..=83 => {
                let (width, cond, dst, src) =
                    (width(self.u)?, *self.u.choose(&CONDS)?, self.value_reg()?, self.operand()?);
                Item::Branch(Branch::Cond { width, cond, dst, src }, self.rel()?)
            }
            84..=86 => Item::Branch(Branch::Ja { long: self.u.ratio(1, 4)? }, self.rel()?),
            87..=88 => {
                let (long, inverse) = (self.u.arbitrary()?, self.u.arbitrary()?);
                Item::Branch(Branch::Static { long, inverse }, self.rel()?)
            }
            89..=90 => Item::Branch(Branch::MayGoto, self.rel()?),
            91..=93 if self.local_calls < MAX_LOCAL_CALLS => {
                self.local_calls += 1;
                Item::Branch(Branch::Local, self.rel()?)
            }
            91..=93 => Item::Plain(Insn::Call(CallTarget::Helper(HELPER_ID))),
            94..=95 => Item::Plain(Insn::Call(CallTarget::Helper(HELPER_ID))),
            96 => {
                // `callx` mostly through a register just set to the helper's number.
                let reg = self.dst_reg()?;
                if self.u.ratio(3, 4)? {
                    let set = Insn::Alu { width: Width::W64, op: AluOp::Mov, dst: reg, src: Operand::Imm(HELPER_ID) };
                    items.push(Item::Plain(set));
                }
                Item::Plain(Insn::CallX { reg })
            }
            97 => match self.u.int_in_range(0..=3)? {
                0 => Item::Plain(Insn::GotoX { reg: self.value_reg()? }),
                1 => {
                    Item::Plain(Insn::LdAbs { size: *self.u.choose(&SIZES[..3])?, imm: self.u.int_in_range(-4..=64)? })
                }
                2 => Item::Plain(Insn::LdInd {
                    size: *self.u.choose(&SIZES[..3])?,
                    src: self.value_reg()?,
                    imm: self.u.int_in_range(-4..=64)?,
                }),
                _ => Item::Plain(Insn::Exit),
            },
            _ => {
                // A copy of a pointer, maybe moved a little: more registers that point to memory.
                let dst = Reg::new(self.u.int_in_range(2..=9)?).expect("register");
                let src = if self.wild && self.u.arbitrary()? { Reg::R10 } else { Reg::R1 };
                items.push(Item::Plain(Insn::Alu { width: Width::W64, op: AluOp::Mov, dst, src: Operand::Reg(src) }));
                let delta = self.u.int_in_range(-1..=4)?;
                items.push(Item::Plain(Insn::Alu {
                    width: Width::W64,
                    op: AluOp::Add,
                    dst,
                    src: Operand::Imm(delta * 8),
                }));
                return Ok((src == Reg::R1).then_some(dst));
            }
        };
        items.push(item);
        Ok(None)
    }
}

/// The register `insn` writes, if any (`r0` of calls aside).
fn written(insn: &Insn) -> Option<Reg> {
    match *insn {
        Insn::Alu { dst, .. } | Insn::Neg { dst, .. } | Insn::Endian { dst, .. } | Insn::LdImm64 { dst, .. } => {
            Some(dst)
        }
        Insn::Load { dst, .. } | Insn::Atomic { op: AtomicOp::LoadAcquire, dst, .. } => Some(dst),
        Insn::Atomic { op: AtomicOp::Cmpxchg, .. } | Insn::LdAbs { .. } | Insn::LdInd { .. } => Some(Reg::R0),
        Insn::Atomic {
            op:
                AtomicOp::Add { fetch: true }
                | AtomicOp::Or { fetch: true }
                | AtomicOp::And { fetch: true }
                | AtomicOp::Xor { fetch: true }
                | AtomicOp::Xchg,
            src,
            ..
        } => Some(src),
        _ => None,
    }
}

/// Resolves the branch targets of `items` and encodes them.
fn layout(items: &[Item]) -> Vec<RawInsn> {
    let mut pcs = Vec::with_capacity(items.len());
    let mut pc = 0;
    for item in items {
        pcs.push(pc);
        pc += item.slots();
    }
    let count = items.len() as i64;
    let mut out = Vec::with_capacity(pc);
    for (i, item) in items.iter().enumerate() {
        let insn = match *item {
            Item::Plain(insn) => insn,
            Item::Branch(branch, rel) => {
                let target = (i as i64 + 1 + rel).rem_euclid(count) as usize;
                let off = pcs[target] as i64 - pcs[i] as i64 - 1;
                let short = i16::try_from(off).expect("programs are short");
                let long = i32::from(short);
                match branch {
                    Branch::Ja { long: true } => Insn::Ja { long: true, off: long },
                    Branch::Ja { long: false } => Insn::Ja { long: false, off: long },
                    // A static branch needs a non-zero offset; a branch to the next instruction
                    // is a plain `goto +0` instead.
                    Branch::Static { long: l, .. } if off == 0 => Insn::Ja { long: l, off: 0 },
                    Branch::Static { long: l, inverse } => Insn::StaticBranch { long: l, inverse, off: long },
                    Branch::Cond { width, cond, dst, src } => Insn::JmpCond { width, cond, dst, src, off: short },
                    Branch::MayGoto => Insn::MayGoto { off: short },
                    Branch::Local => Insn::Call(CallTarget::Local(long)),
                }
            }
        };
        insn.encode_into(&mut out);
    }
    out
}

/// Breaks a generated program in one of the ways the loader or the interpreter must handle.
fn corrupt(u: &mut Unstructured<'_>, slots: &mut Vec<RawInsn>) -> ArbResult<()> {
    let i = u.choose_index(slots.len())?;
    match u.int_in_range(0..=7)? {
        0 => slots[i] = RawInsn::from_bytes(u.arbitrary()?),
        1 => {
            let bit = u.int_in_range(0..=63)?;
            slots[i] = RawInsn::from_u64(slots[i].to_u64() ^ (1 << bit));
        }
        2 => slots[i].off = u.arbitrary()?,
        3 => slots[i].imm = u.arbitrary()?,
        // Falls off the end instead of exiting.
        4 => {
            let last = slots.len() - 1;
            slots[last] =
                Insn::Alu { width: Width::W64, op: AluOp::Mov, dst: Reg::R0, src: Operand::Imm(0) }.encode()[0];
        }
        5 => slots[i] = Insn::Call(CallTarget::Helper(u.arbitrary()?)).encode()[0],
        6 => {
            let mut insn = Vec::with_capacity(2);
            arbitrary_insn(u)?.encode_into(&mut insn);
            slots.splice(i..i, insn);
        }
        _ => slots.truncate(i.max(1)),
    }
    Ok(())
}

/// A mostly valid program: up to [`MAX_PROGRAM_INSNS`] instructions of every kind (ALU 32/64
/// with every operation and operand kind, byte swaps, `lddw`, loads and stores of every size
/// including sign-extending loads, every atomic, conditional and unconditional jumps in both
/// directions, static branches, `may_goto`, calls of helper 5, local calls, `callx`, `gotox`,
/// `exit`), biased towards memory accesses through `r10` and `r1` at small offsets, so that
/// most hit the stack or the memory buffer and some miss; it always ends with `exit`. Jump and
/// call targets are instruction starts inside the program, except in about one program in 16,
/// which is then broken on purpose (a random slot, an unknown helper, a bad target, no final
/// `exit`...). It stops adding instructions once at most [`RESERVED_INPUT`] bytes of `u` are
/// left (half of `u`, if that is less), so that the caller has bytes left for memory.
pub fn arbitrary_program(u: &mut Unstructured<'_>) -> ArbResult<Vec<RawInsn>> {
    let flags: u8 = u.arbitrary()?;
    let wild = flags & 3 == 3;
    let broken = (flags >> 2) & 15 == 15;
    let stack_reads = flags >> 6 != 3;
    let n = u.int_in_range(1..=MAX_PROGRAM_INSNS)?;
    let mut g = ProgramGen { u, wild, stack_reads, local_calls: 0, pointers: 1 << 1 };
    let mut items = Vec::with_capacity(n + 2);
    // Leave some of the input for the caller's memory buffer, or short inputs (which libFuzzer
    // tries first) would all run with no memory.
    let reserve = (g.u.len() / 2).min(RESERVED_INPUT);
    while items.len() < n && g.u.len() > reserve {
        g.item(&mut items)?;
    }
    items.push(Item::Plain(Insn::Exit));
    let mut slots = layout(&items);
    if broken {
        corrupt(u, &mut slots)?;
    }
    Ok(slots)
}
