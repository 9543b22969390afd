//! The self-check of the valid-program generator (`bpfkit_testing::gen`): thousands of
//! programs from a fixed seed must load and run in the interpreter without any error, and
//! together they must use every instruction the JIT has to lower.

use arbitrary::Unstructured;
use bpfkit_isa::{
    AluOp, AtomicOp, CallTarget, Cond, Endian, Insn, LdImmSrc, Operand, RawInsn, Reg, Size, Width, decode_program,
};
use bpfkit_testing::r#gen::{self as generator, AlignedMem, GenConfig};
use std::collections::BTreeSet;

/// Programs of the main self-check.
const PROGRAMS: u64 = 3000;

/// Generates program `i` of the run with `seed` and runs it; panics with the listing on any
/// load or run error, or if the program reads a register or stack byte it has not written
/// ([`check_definedness`], and a second run with garbage in the uninitialised registers and
/// in main's stack frame), or if its results depend on where the buffer and the stack are (the
/// second run is on another buffer with another VM). Returns the program.
fn generate_and_run(cfg: &GenConfig, seed: u64, i: u64) -> Vec<RawInsn> {
    let input = generator::seeded_bytes(seed ^ i.wrapping_mul(0x100_0000_01b3), 64 + (i as usize * 37) % 4096);
    let mut u = Unstructured::new(&input);
    let slots = generator::valid_program_with(&mut u, cfg).expect("the generator accepts any input");
    let init = u.take_rest();
    let fail = |what: String| -> ! { panic!("program {i} of seed {seed:#x}: {what}\n{}", generator::describe(&slots)) };
    if let Err(e) = check_definedness(&slots) {
        fail(e);
    }
    let mut mem = AlignedMem::new(init, cfg.mem_size);
    let r0 = match generator::run_interp(&slots, mem.bytes_mut(), cfg.may_goto_budget) {
        Ok(v) => v,
        Err(e) => fail(e.to_string()),
    };
    let mut other = AlignedMem::new(init, cfg.mem_size);
    match generator::run_interp(&with_garbage(&slots), other.bytes_mut(), cfg.may_goto_budget) {
        Ok(v) if v == r0 && other.bytes() == mem.bytes() => {}
        Ok(v) => fail(format!(
            "with garbage in r0, r3..r9 and the stack: {v:#x} instead of {r0:#x}, memory {} instead of {}",
            hex(other.bytes()),
            hex(mem.bytes())
        )),
        Err(e) => fail(format!("with garbage in r0, r3..r9 and the stack: {e}")),
    }
    slots
}

/// `slots` after a prefix that puts garbage in r0, r3..r9 and the whole stack frame of main.
/// Jumps and calls are relative, so the program is unchanged otherwise.
fn with_garbage(slots: &[RawInsn]) -> Vec<RawInsn> {
    let mut out = Vec::new();
    for r in [0, 3, 4, 5, 6, 7, 8, 9] {
        let dst = Reg::new(r).expect("register");
        Insn::LdImm64 { dst, src: LdImmSrc::Imm, imm: 0x6761_7262 ^ i32::from(r), next_imm: -0x2152_4111 }
            .encode_into(&mut out);
    }
    for k in 1..=64 {
        let off = -8 * k;
        Insn::Store { size: Size::DW, dst: Reg::R10, off, src: Operand::Imm(0x5a5a_0000 | i32::from(k)) }
            .encode_into(&mut out);
    }
    out.extend_from_slice(slots);
    out
}

/// Registers (bit n for rn) and bytes of the frame below `r10` (bit i for `r10 - 512 + i`)
/// written on every path.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Defined {
    regs: u16,
    stack: [u64; 8],
}

impl Defined {
    fn meet(&self, other: &Defined) -> Defined {
        Defined { regs: self.regs & other.regs, stack: std::array::from_fn(|i| self.stack[i] & other.stack[i]) }
    }

    /// The bits of an access at `r10 + off`; an error if it is not inside the frame.
    fn stack_bytes(off: i16, size: Size) -> Result<std::ops::Range<usize>, String> {
        let start = 512 + i32::from(off);
        if start < 0 || start as usize + size.bytes() > 512 {
            return Err(format!("access of {} bytes at r10{off:+} outside the frame", size.bytes()));
        }
        Ok(start as usize..start as usize + size.bytes())
    }

    fn stack_written(&self, off: i16, size: Size) -> Result<bool, String> {
        Ok(Self::stack_bytes(off, size)?.all(|b| self.stack[b / 64] & (1 << (b % 64)) != 0))
    }

    fn write_stack(&mut self, off: i16, size: Size) -> Result<(), String> {
        for b in Self::stack_bytes(off, size)? {
            self.stack[b / 64] |= 1 << (b % 64);
        }
        Ok(())
    }
}

/// An independent check of what the interpreter cannot see (it zeroes registers and stack
/// frames): along every path, each function reads only registers it has written or received
/// (`r1`, `r2`, `r10` in main; in a subprogram the arguments every call site sets, and
/// `r10`), `r1`..`r5` are not read after a call before being written, `r0` is written before
/// `exit`, and accesses through `r10` read only stack bytes written before. (Accesses through
/// copies of `r10` are not tracked; the garbage run checks those in main.)
fn check_definedness(slots: &[RawInsn]) -> Result<(), String> {
    let insns = decode_program(slots).map_err(|e| e.to_string())?;
    let at: std::collections::HashMap<usize, usize> = insns.iter().enumerate().map(|(i, l)| (l.pc, i)).collect();
    let mut entry: std::collections::BTreeMap<usize, Defined> = std::collections::BTreeMap::new();
    entry.insert(0, Defined { regs: 1 << 1 | 1 << 2 | 1 << 10, stack: [0; 8] });
    // Functions in address order: calls only go forward, so every call site of a function is
    // seen before the function.
    let mut done = BTreeSet::new();
    while let Some((&start, &state)) = entry.iter().find(|(pc, _)| !done.contains(*pc)) {
        done.insert(start);
        let mut states: Vec<Option<Defined>> = vec![None; insns.len()];
        states[at[&start]] = Some(state);
        let mut work = vec![at[&start]];
        while let Some(i) = work.pop() {
            let l = &insns[i];
            let mut d = states[i].expect("queued with a state");
            let need = |regs: &[Reg], d: &Defined| -> Result<(), String> {
                match regs.iter().find(|r| d.regs & (1 << r.index()) == 0) {
                    Some(r) => Err(format!("pc {}: {} reads {r}, not written on every path", l.pc, l.insn)),
                    None => Ok(()),
                }
            };
            let need_stack = |base: Reg, off: i16, size: Size, d: &Defined| -> Result<(), String> {
                if base == Reg::R10 && !d.stack_written(off, size).map_err(|e| format!("pc {}: {e}", l.pc))? {
                    return Err(format!("pc {}: {} reads stack bytes not written on every path", l.pc, l.insn));
                }
                Ok(())
            };
            let mut succ = vec![l.pc + l.insn.slots()];
            let target = l.insn.branch_offset().map(|off| (l.pc as i64 + 1 + off) as usize);
            match l.insn {
                Insn::Alu { op, dst, src, .. } => {
                    if let Operand::Reg(s) = src {
                        need(&[s], &d)?;
                    }
                    if !matches!(op, AluOp::Mov | AluOp::MovSx8 | AluOp::MovSx16 | AluOp::MovSx32) {
                        need(&[dst], &d)?;
                    }
                    d.regs |= 1 << dst.index();
                }
                Insn::Neg { dst, .. } | Insn::Endian { dst, .. } => need(&[dst], &d)?,
                Insn::LdImm64 { dst, .. } => d.regs |= 1 << dst.index(),
                Insn::Load { size, dst, src, off, .. } => {
                    need(&[src], &d)?;
                    need_stack(src, off, size, &d)?;
                    d.regs |= 1 << dst.index();
                }
                Insn::Store { size, dst, off, src } => {
                    need(&[dst], &d)?;
                    if let Operand::Reg(s) = src {
                        need(&[s], &d)?;
                    }
                    if dst == Reg::R10 {
                        d.write_stack(off, size).map_err(|e| format!("pc {}: {e}", l.pc))?;
                    }
                }
                Insn::Atomic { size, op: AtomicOp::LoadAcquire, dst, src, off } => {
                    need(&[src], &d)?;
                    need_stack(src, off, size, &d)?;
                    d.regs |= 1 << dst.index();
                }
                Insn::Atomic { size, op: AtomicOp::StoreRelease, dst, src, off } => {
                    need(&[dst, src], &d)?;
                    if dst == Reg::R10 {
                        d.write_stack(off, size).map_err(|e| format!("pc {}: {e}", l.pc))?;
                    }
                }
                Insn::Atomic { size, op, dst, src, off } => {
                    need(&[dst, src], &d)?;
                    need_stack(dst, off, size, &d)?;
                    if op == AtomicOp::Cmpxchg {
                        need(&[Reg::R0], &d)?;
                        d.regs |= 1;
                    } else {
                        d.regs |= 1 << src.index();
                    }
                }
                Insn::JmpCond { dst, src, .. } => {
                    need(&[dst], &d)?;
                    if let Operand::Reg(s) = src {
                        need(&[s], &d)?;
                    }
                    succ.extend(target);
                }
                Insn::Ja { .. } => succ = target.into_iter().collect(),
                Insn::StaticBranch { .. } | Insn::MayGoto { .. } => succ.extend(target),
                Insn::Call(CallTarget::Local(rel)) => {
                    let callee = (l.pc as i64 + 1 + i64::from(rel)) as usize;
                    let args = Defined { regs: d.regs & 0b11_1110 | 1 << 10, stack: [0; 8] };
                    if done.contains(&callee) {
                        return Err(format!("pc {}: call of an earlier function", l.pc));
                    }
                    let merged = entry.get(&callee).map_or(args, |e| e.meet(&args));
                    entry.insert(callee, merged);
                    d.regs = d.regs & !0b11_1110 | 1;
                }
                Insn::Call(_) => {
                    need(&[Reg::R1], &d)?;
                    d.regs = d.regs & !0b11_1110 | 1;
                }
                Insn::Exit => {
                    need(&[Reg::R0], &d)?;
                    succ.clear();
                }
                other => return Err(format!("pc {}: unexpected {other}", l.pc)),
            }
            for pc in succ {
                let j = *at.get(&pc).ok_or_else(|| format!("pc {}: flows to {pc}, not an instruction", l.pc))?;
                let merged = states[j].map_or(d, |s| s.meet(&d));
                if states[j] != Some(merged) {
                    states[j] = Some(merged);
                    work.push(j);
                }
            }
        }
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn width(w: Width) -> &'static str {
    if w == Width::W64 { "64" } else { "32" }
}

fn operand(o: Operand) -> &'static str {
    if let Operand::Reg(_) = o { "reg" } else { "imm" }
}

/// What the JIT must lower that `insn` is an instance of.
fn feature(insn: &Insn) -> String {
    match *insn {
        Insn::Alu { width: w, op, src, .. } => format!("alu{} {op:?} {}", width(w), operand(src)),
        Insn::Neg { width: w, .. } => format!("neg{}", width(w)),
        Insn::Endian { kind, bits, .. } => format!("endian {kind:?} {bits}"),
        Insn::LdImm64 { .. } => "lddw".into(),
        Insn::Load { size, signed, .. } => format!("load {size:?} signed {signed}"),
        Insn::Store { size, src, .. } => format!("store {size:?} {}", operand(src)),
        Insn::Atomic { size, op, .. } => format!("atomic {size:?} {op:?}"),
        Insn::Ja { long, off } => format!("ja long {long} back {}", off < 0),
        Insn::StaticBranch { long, inverse, .. } => format!("static long {long} inverse {inverse}"),
        Insn::JmpCond { width: w, cond, src, off, .. } => {
            if off < 0 {
                "jmp back".into()
            } else {
                format!("jmp{} {cond:?} {}", width(w), operand(src))
            }
        }
        Insn::Call(CallTarget::Local(_)) => "call local".into(),
        Insn::Call(CallTarget::Helper(_)) => "call helper".into(),
        Insn::MayGoto { .. } => "may_goto".into(),
        Insn::Exit => "exit".into(),
        other => format!("unexpected {other:?}"),
    }
}

/// Everything [`feature`] should report over many programs.
fn expected_features(helpers: bool) -> BTreeSet<String> {
    let mut all = BTreeSet::new();
    let ops = [
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
        AluOp::Arsh,
    ];
    for w in [Width::W32, Width::W64] {
        for op in ops {
            for src in ["imm", "reg"] {
                all.insert(format!("alu{} {op:?} {src}", width(w)));
            }
        }
        all.insert(format!("alu{} MovSx8 reg", width(w)));
        all.insert(format!("alu{} MovSx16 reg", width(w)));
        all.insert(format!("neg{}", width(w)));
        for cond in [
            Cond::Eq,
            Cond::Gt,
            Cond::Ge,
            Cond::Set,
            Cond::Ne,
            Cond::Sgt,
            Cond::Sge,
            Cond::Lt,
            Cond::Le,
            Cond::Slt,
            Cond::Sle,
        ] {
            for src in ["imm", "reg"] {
                all.insert(format!("jmp{} {cond:?} {src}", width(w)));
            }
        }
    }
    all.insert("alu64 MovSx32 reg".into());
    for kind in [Endian::ToLe, Endian::ToBe, Endian::Swap] {
        for bits in [16, 32, 64] {
            all.insert(format!("endian {kind:?} {bits}"));
        }
    }
    all.insert("lddw".into());
    for size in [Size::B, Size::H, Size::W, Size::DW] {
        all.insert(format!("load {size:?} signed false"));
        if size != Size::DW {
            all.insert(format!("load {size:?} signed true"));
        }
        for src in ["imm", "reg"] {
            all.insert(format!("store {size:?} {src}"));
        }
        all.insert(format!("atomic {size:?} {:?}", AtomicOp::LoadAcquire));
        all.insert(format!("atomic {size:?} {:?}", AtomicOp::StoreRelease));
    }
    for size in [Size::W, Size::DW] {
        for fetch in [false, true] {
            for op in
                [AtomicOp::Add { fetch }, AtomicOp::Or { fetch }, AtomicOp::And { fetch }, AtomicOp::Xor { fetch }]
            {
                all.insert(format!("atomic {size:?} {op:?}"));
            }
        }
        all.insert(format!("atomic {size:?} {:?}", AtomicOp::Xchg));
        all.insert(format!("atomic {size:?} {:?}", AtomicOp::Cmpxchg));
    }
    for long in [false, true] {
        all.insert(format!("ja long {long} back false"));
        all.insert(format!("ja long {long} back true"));
        for inverse in [false, true] {
            all.insert(format!("static long {long} inverse {inverse}"));
        }
    }
    for f in ["jmp back", "call local", "may_goto", "exit"] {
        all.insert(f.into());
    }
    if helpers {
        all.insert("call helper".into());
    }
    all
}

/// Runs `n` programs and checks that they cover every feature.
fn check(cfg: &GenConfig, seed: u64, n: u64) {
    let mut seen = BTreeSet::new();
    let mut slots_total = 0;
    for i in 0..n {
        let slots = generate_and_run(cfg, seed, i);
        slots_total += slots.len();
        for l in decode_program(&slots).expect("generated programs decode") {
            seen.insert(feature(&l.insn));
        }
    }
    let expected = expected_features(cfg.helpers);
    let missing: Vec<&String> = expected.difference(&seen).collect();
    let unexpected: Vec<&String> = seen.difference(&expected).collect();
    assert!(missing.is_empty(), "never generated: {missing:?}");
    assert!(unexpected.is_empty(), "generated but not expected: {unexpected:?}");
    eprintln!("{n} programs, {} slots on average", slots_total / n as usize);
}

#[test]
fn generated_programs_run_without_errors() {
    check(&GenConfig::default(), 0x6765_6e5f_7661_6c69, PROGRAMS);
}

#[test]
fn generated_programs_with_helpers_and_a_small_buffer() {
    let cfg = GenConfig { helpers: true, mem_size: 16, may_goto_budget: 3, max_subprogs: 6, ..GenConfig::default() };
    check(&cfg, 0x1234_5678, PROGRAMS / 3);
}

#[test]
fn the_generator_is_deterministic() {
    let cfg = GenConfig::default();
    for i in 0..50 {
        assert_eq!(generate_and_run(&cfg, 7, i), generate_and_run(&cfg, 7, i));
    }
}

#[test]
fn inputs_too_short_for_anything_still_make_valid_programs() {
    for len in 0..16 {
        let input = generator::seeded_bytes(len as u64, len);
        let slots = generator::valid_program(&mut Unstructured::new(&input)).expect("any input");
        let mut mem = AlignedMem::new(&[], generator::MEM_SIZE);
        let r: Result<u64, _> = generator::run_interp(&slots, mem.bytes_mut(), generator::MAY_GOTO_BUDGET);
        assert!(r.is_ok(), "input of {len} bytes: {:?}\n{}", r.err(), generator::describe(&slots));
    }
}

#[test]
fn smoke_compares_every_program() {
    assert_eq!(generator::smoke(300, 42), 300);
}
