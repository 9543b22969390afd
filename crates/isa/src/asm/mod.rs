//! The assembler: reads LLVM's BPF syntax (what `llvm-objdump -d` prints and `llvm-mc`
//! accepts, plus the lossless extensions of [`crate::disasm`]) and the uBPF dialect of the
//! bpf_conformance corpus, and produces [`Insn`]s ([`parse`]) or slots ([`assemble`]).
//!
//! The syntax is detected per line, so a file may mix both. Blank lines are ignored, and
//! `#`, `;` and `//` start a comment that runs to the end of the line.
//!
//! # Jump tables
//!
//! `.jumptable NAME LABEL, LABEL, ...` declares a jump table (kernel-spec §4): an instruction
//! array whose entries are the instructions at those labels. `rX = NAME ll` loads the address
//! of its first entry, as LLVM's `r1 = BPF.JT.0.0 ll` does; `gotox rX` then jumps through an
//! entry read from it. The load is encoded as the kernel's `BPF_PSEUDO_MAP_IDX_VALUE`
//! (`ld_pseudo rX, 0x6, N, 0`, N the table's position among the `.jumptable` directives), so
//! the program loads like any other with the tables passed in `fd_array`:
//! [`assemble_with_tables`] returns both.
//!
//! # Labels
//!
//! `name:` defines a label at the next instruction; an instruction may follow on the same
//! line. Names are `[A-Za-z_.][A-Za-z0-9_.]*`. Jump and call targets are a label or a signed
//! offset relative to the next instruction (`+3`, `-0x2`, `5`); a label that is too far for
//! a 16-bit `off` is an error. As in the corpus, the first `exit` instruction defines an
//! implicit label `exit` unless a label of that name is defined explicitly.
//!
//! # Numbers
//!
//! Decimal or `0x` hexadecimal, with an optional sign. A decimal number with a leading zero
//! is rejected (LLVM would read it as octal). A 32-bit immediate may be written signed
//! (`-1`) or unsigned up to `0xffffffff`, which wraps (`0xffffffff` is `-1`); the same holds
//! for 64-bit immediates (`lddw`, `ll`) and for 16-bit memory offsets. Jump offsets are
//! signed only. Anything outside those ranges is an error.
//!
//! # LLVM syntax
//!
//! Exactly what [`Insn`]'s `Display` prints, with decimal numbers accepted as well:
//!
//! ```text
//! r1 += r2        w1 s/= 5      r1 = (s8)r2    w1 = -w1      r1 = be16 r1   r1 = bswap64 r1
//! r1 = 0x1122334455667788 ll    ld_pseudo r1, 0x2, 0x5[, 0x10]
//! w0 = *(u8 *)(r1 + 0x2)        r0 = *(s16 *)(r1 - 8)        *(u64 *)(r10 - 8) = r1|5
//! r0 = *(u32 *)skb[0x4]         r0 = *(u16 *)skb[r1 + 0x4]
//! lock *(u32 *)(r1 + 0) += w2   w2 = atomic_fetch_and((u32 *)(r1 + 0), w2)
//! r2 = xchg_64(r1 + 0, r2)      w0 = cmpxchg32_32(r1 + 0, w0, w2)
//! w0 = load_acquire((u8 *)(r1 + 0))                    store_release((u64 *)(r1 + 0), r2)
//! if w1 s< -5 goto -3           goto +1    gotol label   may_goto +2   gotox r1
//! goto_or_nop +1   gotol_or_nop +1   nop_or_goto +1   nop_or_gotol +1
//! call 5 (helper)   call pc+0x3 / call label (BPF-to-BPF)   call kfunc 0x7[, 0x1]   callx r2
//! exit
//! ```
//!
//! The register letter selects the width of ALU operations and conditional jumps (`w` for
//! 32 bits); both operands must agree. For loads, stores and atomics the size comes from the
//! type, and the value register may be written `wN` or `rN` unless the access is 64-bit or
//! sign-extending (then only `rN`, as in LLVM). The directives `.text`, `.globl` and `.global`
//! are accepted and ignored; any other directive is an error.
//!
//! Whole `llvm-objdump -d` output (also with `-r`, `-S`, `-l`, `--no-show-raw-insn`,
//! `--no-leading-addr`) can be assembled back: the file-format and `Disassembly of section` lines and relocation records
//! are skipped, source lines are comments, `0000000000000000 <prog>:` defines the label
//! `prog`, the `   12:` prefix and the ` <LBB0_3>` annotation are dropped. The text is
//! authoritative, but where LLVM's text loses information that the raw bytes on the line
//! hold, the bytes are used: `call -0x1` of a BPF-to-BPF or kfunc call, `ld_pseudo` without
//! its second immediate, `skb[r1]` of an `ld_ind` with an offset, and `goto` of a static
//! branch. Instructions of several sections are concatenated.
//!
//! # uBPF syntax
//!
//! A mnemonic, then comma-separated operands; registers are `%r0`..`%r10` (or `r0`..`r10`),
//! memory operands `[%r1+8]`, `[%r1-0x8]`, `[%r1]`.
//!
//! | mnemonic | instruction |
//! | --- | --- |
//! | `add sub mul div sdiv mod smod or and lsh rsh arsh xor mov` `dst, src\|imm` | ALU64; with a `32` suffix ALU32 (`64` is accepted too) |
//! | `neg dst`, `neg32 dst` (`neg64` too) | negation |
//! | `movsx864 movsx1664 movsx3264 movsx832 movsx1632` `dst, src` | sign-extending moves |
//! | `le16 le32 le64 be16 be32 be64` `dst` | byte swaps to little/big endian |
//! | `swap16 swap32 swap64` (or `bswap16`...) `dst` | unconditional byte swap |
//! | `lddw dst, imm64` | 64-bit immediate |
//! | `ldxb ldxh ldxw ldxdw dst, [src+off]` | loads; `ldxsb ldxsh ldxsw` sign-extend |
//! | `stb sth stw stdw [dst+off], imm` | stores of an immediate |
//! | `stxb stxh stxw stxdw [dst+off], src` | stores of a register |
//! | `ldabsb ldabsh ldabsw imm` | legacy packet load `r0 = *(size *)skb[imm]` (bpfkit's choice) |
//! | `ldindb ldindh ldindw src, imm` | legacy packet load `r0 = *(size *)skb[src + imm]` (bpfkit's choice) |
//! | `ja target`, `ja32 target` | `goto`, `gotol` |
//! | `jeq jgt jge jset jne jsgt jsge jlt jle jslt jsle` `dst, src\|imm, target` | conditional jumps; `32` suffix for JMP32 (`64` accepted) |
//! | `call imm`, `call local label`, `call %r2` (or `call r2`) | helper, BPF-to-BPF call, `callx` |
//! | `exit` | return |
//! | `lock [fetch] add\|or\|and\|xor [dst+off], src` | atomics on 64 bits; `32` suffix (`add32`) for 32 bits |
//! | `lock xchg [dst+off], src`, `lock cmpxchg [dst+off], src` | exchange (always fetching); `32` suffix too |
//!
//! Load-acquire, store-release, `gotox`, `may_goto`, static branches and kfunc calls have no
//! uBPF form: write them in LLVM syntax.
//!
//! # Errors
//!
//! [`AsmError`] gives the 1-based line and column (counted in characters) of the offending
//! token, or of the end of the line when something is missing. The assembler never panics,
//! and everything it accepts is a program the decoder accepts.

mod cursor;
mod lexer;
mod listing;
mod llvm;
mod ubpf;

use crate::insn::{CallTarget, Insn, LdImmSrc};
use crate::raw::RawInsn;
use cursor::{Cursor, Dialect, LabelRef, Target};
use lexer::Kind;
use listing::LineKind;
use std::collections::HashMap;

/// An assembly error at a 1-based line and column (in characters).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{col}: {kind}")]
pub struct AsmError {
    pub line: usize,
    pub col: usize,
    pub kind: AsmErrorKind,
}

/// What went wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AsmErrorKind {
    #[error("unexpected character {ch:?}")]
    UnexpectedChar { ch: char },
    #[error("malformed number `{text}`: {reason}")]
    BadNumber { text: String, reason: &'static str },
    #[error("unknown instruction `{mnemonic}`")]
    UnknownMnemonic { mnemonic: String },
    #[error("unsupported directive `{directive}`")]
    UnknownDirective { directive: String },
    #[error("bad register `{text}`: registers are r0 to r10")]
    BadRegister { text: String },
    #[error("register `{text}` has the wrong width: expected {expected}")]
    RegisterWidth { text: String, expected: &'static str },
    #[error("expected register `{expected}`, found `{found}`")]
    RegisterMismatch { expected: String, found: String },
    #[error("expected {expected}, found {found}")]
    ExpectedToken { expected: String, found: String },
    #[error("missing operand: expected {expected}")]
    MissingOperand { expected: String },
    #[error("`{text}` does not fit in {bits} bits")]
    ImmediateOutOfRange { text: String, bits: u32 },
    #[error("undefined label `{label}`")]
    UndefinedLabel { label: String },
    #[error("label `{label}` is already defined on line {first_line}")]
    DuplicateLabel { label: String, first_line: usize },
    #[error("label `{label}` is defined at several places")]
    AmbiguousLabel { label: String },
    #[error("label `{label}` is {distance} instructions away, which does not fit in a {bits}-bit offset")]
    JumpOutOfRange { label: String, distance: i64, bits: u32 },
    #[error("unexpected `{text}` after the instruction")]
    TrailingInput { text: String },
    #[error("invalid instruction: {reason}")]
    InvalidInstruction { reason: String },
}

/// One parsed instruction, with the label its offset is still waiting for.
struct Stmt {
    pub insn: Insn,
    pub target: Option<LabelRef>,
    /// A `lddw` of a jump table, by name.
    pub table: Option<LabelRef>,
}

impl Stmt {
    pub fn new(insn: Insn) -> Stmt {
        Stmt { insn, target: None, table: None }
    }

    /// A jump or call whose offset is `target`; `make` builds the instruction from an offset.
    pub fn jump(target: Target, make: impl FnOnce(i32) -> Insn) -> Stmt {
        match target {
            Target::Rel(off) => Stmt::new(make(off)),
            Target::Label(l) => Stmt { insn: make(0), target: Some(l), table: None },
        }
    }
}

fn invalid(c: &Cursor<'_>, pos: usize, reason: &str) -> AsmError {
    c.err(pos, AsmErrorKind::InvalidInstruction { reason: reason.to_string() })
}

/// Reads one instruction, in whichever syntax its first tokens announce.
fn statement(c: &mut Cursor<'_>) -> Result<Stmt, AsmError> {
    let Some(first) = c.peek() else {
        return Err(c.unexpected("instruction"));
    };
    if first.is_punct("*") {
        return llvm::store(c);
    }
    if first.kind != Kind::Ident {
        return Err(c.unexpected("instruction"));
    }
    if c.peek_at(1).is_some_and(|t| t.kind == Kind::Punct && llvm::is_assign_op(t.text)) {
        return llvm::assign(c);
    }
    match first.text {
        "exit" => {
            c.bump();
            Ok(Stmt::new(Insn::Exit))
        }
        "call" => call(c),
        "lock" if c.peek_at(1).is_some_and(|t| t.is_punct("*")) => llvm::keyword(c),
        w if llvm::is_keyword(w) => llvm::keyword(c),
        _ => ubpf::parse(c),
    }
}

/// `call` in either syntax: `call 5`, `call label`, `call local label`, `call pc+3`,
/// `call kfunc 7[, 1]`, `call %r2` / `call r2`.
fn call(c: &mut Cursor<'_>) -> Result<Stmt, AsmError> {
    c.bump();
    let (t, next) = (c.peek(), c.peek_at(1));
    let Some(t) = t else {
        return Err(c.unexpected("call target"));
    };
    let next_is = |f: &dyn Fn(&lexer::Token<'_>) -> bool| next.as_ref().is_some_and(f);
    if t.is_punct("%") || cursor::is_reg_like(&t) {
        let r = c.reg(Dialect::Ubpf)?;
        return Ok(Stmt::new(Insn::CallX { reg: r.reg }));
    }
    if t.kind != Kind::Ident {
        return Ok(Stmt::new(Insn::Call(CallTarget::Helper(c.imm32()?))));
    }
    match t.text {
        "local" if next_is(&|n| n.kind == Kind::Ident) => {
            c.bump();
            Ok(Stmt::jump(c.target(32)?, |rel| Insn::Call(CallTarget::Local(rel))))
        }
        "pc" if next_is(&|n| n.is_punct("+") || n.is_punct("-")) => {
            c.bump();
            Ok(Stmt::new(Insn::Call(CallTarget::Local(c.rel(32)?))))
        }
        "kfunc" if next_is(&|n| n.kind == Kind::Num || n.is_punct("+") || n.is_punct("-")) => {
            c.bump();
            let btf_id = c.imm32()?;
            let module = if c.eat_punct(",") { c.imm16()? } else { 0 };
            Ok(Stmt::new(Insn::Call(CallTarget::Kfunc { btf_id, module })))
        }
        _ => Ok(Stmt::jump(c.target(32)?, |rel| Insn::Call(CallTarget::Local(rel)))),
    }
}

/// A jump table declared with `.jumptable`.
struct TableDef {
    name: String,
    line: usize,
    labels: Vec<LabelRef>,
}

/// `.text`, `.globl name` and `.global name` are accepted and ignored; `.jumptable NAME
/// LABEL, ...` declares a jump table.
fn directive(c: &mut Cursor<'_>, tables: &mut Vec<TableDef>) -> Result<(), AsmError> {
    let Some(d) = c.bump() else { return Ok(()) };
    match d.text {
        ".text" => {}
        ".globl" | ".global" => {
            c.ident("symbol name")?;
        }
        ".jumptable" => {
            let name = c.ident("jump table name")?;
            if let Some(t) = tables.iter().find(|t| t.name == name.text) {
                let kind = AsmErrorKind::DuplicateLabel { label: name.text.to_string(), first_line: t.line };
                return Err(c.err(name.pos, kind));
            }
            let mut labels = Vec::new();
            loop {
                let l = c.ident("label")?;
                labels.push(LabelRef { name: l.text.to_string(), col: c.col(l.pos) });
                if !c.eat_punct(",") {
                    break;
                }
            }
            tables.push(TableDef { name: name.text.to_string(), line: c.line_no(), labels });
        }
        _ => {
            return Err(c.err(d.pos, AsmErrorKind::UnknownDirective { directive: d.text.to_string() }));
        }
    }
    c.finish()
}

/// Sets the offset of a jump or call to `rel`; returns the width of the field if it does not fit.
fn set_offset(insn: &mut Insn, rel: i64) -> Result<(), u32> {
    let fit16 = |v: i64| i16::try_from(v).map(i32::from).map_err(|_| 16u32);
    let fit32 = |v: i64| i32::try_from(v).map_err(|_| 32u32);
    match insn {
        Insn::Ja { long, off } | Insn::StaticBranch { long, off, .. } => {
            *off = if *long { fit32(rel)? } else { fit16(rel)? };
        }
        Insn::JmpCond { off, .. } | Insn::MayGoto { off } => *off = fit16(rel)? as i16,
        Insn::Call(CallTarget::Local(r)) => *r = fit32(rel)?,
        _ => {}
    }
    Ok(())
}

/// Whether `text` is what LLVM prints for `bytes`, losing information bpfkit keeps: then the
/// bytes are the better reading of the line.
fn lossy_rendering(text: &Insn, bytes: &Insn) -> bool {
    match (*text, *bytes) {
        (Insn::Call(CallTarget::Helper(a)), Insn::Call(CallTarget::Local(b)))
        | (Insn::Call(CallTarget::Helper(a)), Insn::Call(CallTarget::Kfunc { btf_id: b, .. })) => a == b,
        (Insn::LdImm64 { dst: d1, src: s1, imm: i1, next_imm: 0 }, Insn::LdImm64 { dst: d2, src: s2, imm: i2, .. }) => {
            s1 != LdImmSrc::Imm && (d1, s1, i1) == (d2, s2, i2)
        }
        (Insn::LdInd { size: z1, src: s1, imm: 0 }, Insn::LdInd { size: z2, src: s2, .. }) => (z1, s1) == (z2, s2),
        (Insn::Ja { long: l1, off: o1 }, Insn::StaticBranch { long: l2, off: o2, .. }) => (l1, o1) == (l2, o2),
        _ => false,
    }
}

/// The reading of an objdump line: its text, unless LLVM's text lost information `bytes` hold.
fn prefer_bytes(text: Insn, bytes: &[RawInsn]) -> Insn {
    if text.encode() == bytes {
        return text;
    }
    match Insn::decode(bytes, 0) {
        Ok(b) if b.slots() == bytes.len() && lossy_rendering(&text, &b) => b,
        _ => text,
    }
}

struct Item {
    line: usize,
    col: usize,
    insn: Insn,
    target: Option<LabelRef>,
    table: Option<LabelRef>,
}

#[derive(Clone, Copy)]
struct LabelDef {
    pc: usize,
    line: usize,
    /// Defined by an objdump symbol header rather than `name:`.
    header: bool,
    /// Two symbol headers of this name name different places.
    ambiguous: bool,
}

#[derive(Default)]
struct Program {
    items: Vec<Item>,
    tables: Vec<TableDef>,
    labels: HashMap<String, LabelDef>,
    implicit_exit: Option<usize>,
    pc: usize,
}

impl Program {
    fn define(&mut self, name: &str, line: usize, header: bool) -> Result<(), AsmErrorKind> {
        let def = LabelDef { pc: self.pc, line, header, ambiguous: false };
        let Some(old) = self.labels.get_mut(name) else {
            self.labels.insert(name.to_string(), def);
            return Ok(());
        };
        match (old.header, header) {
            (false, false) => {
                return Err(AsmErrorKind::DuplicateLabel { label: name.to_string(), first_line: old.line });
            }
            _ if old.pc == def.pc => {}
            (true, false) => *old = def,
            (false, true) => {}
            (true, true) => old.ambiguous = true,
        }
        Ok(())
    }

    fn line(&mut self, line: &str, line_no: usize) -> Result<(), AsmError> {
        let (start, end, bytes) = match listing::classify(line) {
            LineKind::Skip => return Ok(()),
            LineKind::Symbol(name) => {
                let lead = line.len() - line.trim_start().len();
                let col = line[..lead].chars().count() + 1;
                return self.define(name, line_no, true).map_err(|kind| AsmError { line: line_no, col, kind });
            }
            LineKind::Code { start, end, bytes } => (start, end, bytes),
        };
        let toks = lexer::tokenize(line, start, end).map_err(|(pos, kind)| AsmError {
            line: line_no,
            col: line.get(..pos).map_or(1, |s| s.chars().count() + 1),
            kind,
        })?;
        let mut c = Cursor::new(line, line_no, toks, end);
        while let (Some(name), Some(colon)) = (c.peek(), c.peek_at(1)) {
            if name.kind != Kind::Ident || !colon.is_punct(":") {
                break;
            }
            self.define(name.text, line_no, false).map_err(|kind| c.err(name.pos, kind))?;
            c.bump();
            c.bump();
        }
        let Some(first) = c.peek() else { return Ok(()) };
        if first.kind == Kind::Ident && first.text.starts_with('.') {
            return directive(&mut c, &mut self.tables);
        }
        let col = c.col(first.pos);
        let mut stmt = statement(&mut c)?;
        c.finish()?;
        if let (Some(bytes), None) = (&bytes, &stmt.target) {
            stmt.insn = prefer_bytes(stmt.insn, bytes);
        }
        if stmt.insn == Insn::Exit && self.implicit_exit.is_none() {
            self.implicit_exit = Some(self.pc);
        }
        self.pc += stmt.insn.slots();
        self.items.push(Item { line: line_no, col, insn: stmt.insn, target: stmt.target, table: stmt.table });
        Ok(())
    }

    /// The instruction a label designates.
    fn resolve(&self, l: &LabelRef, line: usize) -> Result<usize, AsmError> {
        let err = |kind| AsmError { line, col: l.col, kind };
        match self.labels.get(&l.name) {
            Some(d) if d.ambiguous => Err(err(AsmErrorKind::AmbiguousLabel { label: l.name.clone() })),
            Some(d) => Ok(d.pc),
            None => match self.implicit_exit {
                Some(pc) if l.name == "exit" => Ok(pc),
                _ => Err(err(AsmErrorKind::UndefinedLabel { label: l.name.clone() })),
            },
        }
    }

    fn finish(self) -> Result<(Vec<Insn>, Vec<JumpTable>), AsmError> {
        let mut tables = Vec::with_capacity(self.tables.len());
        for t in &self.tables {
            let entries = t
                .labels
                .iter()
                .map(|l| self.resolve(l, t.line).map(|pc| pc as u32))
                .collect::<Result<Vec<u32>, AsmError>>()?;
            tables.push(JumpTable { name: t.name.clone(), entries });
        }
        let mut out = Vec::with_capacity(self.items.len());
        let mut pc = 0usize;
        for item in &self.items {
            let mut insn = item.insn;
            if let (Some(l), Insn::LdImm64 { imm, .. }) = (&item.table, &mut insn) {
                let Some(i) = self.tables.iter().position(|t| t.name == l.name) else {
                    let kind =
                        AsmErrorKind::UndefinedLabel { label: format!("{} (no .jumptable of that name)", l.name) };
                    return Err(AsmError { line: item.line, col: l.col, kind });
                };
                *imm = i as i32;
            }
            if let Some(l) = &item.target {
                let err = |kind| AsmError { line: item.line, col: l.col, kind };
                let to = self.resolve(l, item.line)?;
                // Both are slot counts of a program held in memory: they fit in i64.
                let distance = to as i64 - pc as i64 - 1;
                if let Err(bits) = set_offset(&mut insn, distance) {
                    return Err(err(AsmErrorKind::JumpOutOfRange { label: l.name.clone(), distance, bits }));
                }
            }
            // Whatever the parsers build must be something the decoder accepts.
            if let Err(e) = Insn::decode(&insn.encode(), 0) {
                let reason = e.to_string();
                let reason = reason.strip_prefix("insn 0: ").unwrap_or(&reason).to_string();
                return Err(AsmError {
                    line: item.line,
                    col: item.col,
                    kind: AsmErrorKind::InvalidInstruction { reason },
                });
            }
            pc += insn.slots();
            out.push(insn);
        }
        Ok((out, tables))
    }
}

/// A jump table declared with `.jumptable`: its entries, as instruction (slot) indices.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JumpTable {
    pub name: String,
    pub entries: Vec<u32>,
}

/// An assembled program with its jump tables; `rX = NAME ll` of table `i` is
/// `ld_pseudo rX, 0x6, i, 0` (`BPF_PSEUDO_MAP_IDX_VALUE`: entry `i` of `fd_array`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assembled {
    pub insns: Vec<RawInsn>,
    pub jump_tables: Vec<JumpTable>,
}

/// Assembles a program that may declare jump tables (see the module documentation).
pub fn assemble_with_tables(text: &str) -> Result<Assembled, AsmError> {
    let mut prog = Program::default();
    for (i, line) in text.lines().enumerate() {
        prog.line(line, i + 1)?;
    }
    let (insns, jump_tables) = prog.finish()?;
    Ok(Assembled { insns: crate::insn::encode_program(&insns), jump_tables })
}

/// Parses a program in LLVM or uBPF syntax (see the module documentation) into instructions.
pub fn parse(text: &str) -> Result<Vec<Insn>, AsmError> {
    let mut prog = Program::default();
    for (i, line) in text.lines().enumerate() {
        prog.line(line, i + 1)?;
    }
    Ok(prog.finish()?.0)
}

/// Assembles a program in LLVM or uBPF syntax (see the module documentation) into slots.
pub fn assemble(text: &str) -> Result<Vec<RawInsn>, AsmError> {
    Ok(crate::insn::encode_program(&parse(text)?))
}
