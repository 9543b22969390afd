//! The fixup stage: the rewrites that turn the program as loaded (*orig*: the slots after the
//! loader bound its relocations) into the program that runs (*xlated*), and the map that
//! carries every orig instruction offset through them (kernel-spec §2.5).
//!
//! ```text
//! orig slots ──decode──► items (one per instruction, branch targets as item ids)
//!            ──► 1. nop removal ──► 2. helper inlining ──► 3. constant blinding
//!            ──encode──► xlated slots + orig_to_xlated + xlated_to_orig
//! ```
//!
//! # One mechanism for every offset
//!
//! The program is decoded once into *items*. An item is one instruction; a jump, a
//! BPF-to-BPF call, a static branch, a `may_goto` or a `lddw` of a function address
//! (`BPF_PSEUDO_FUNC`) holds its target as the *id* of the target item, not as a relative
//! offset. Each orig slot is anchored to the item (and the slot within it) it starts, or to
//! the second slot of a `lddw`. The passes then only splice items:
//!
//! * *patching* an item into `n` instructions gives the first one the patched item's id: the
//!   anchor of the orig slot, and every jump to it, land on the first instruction of the
//!   replacement, and everything after it shifts by `n - 1` (`bpf_patch_insn_data`);
//! * *removing* an item redirects it to the item that follows it: its orig slot becomes
//!   [`INSN_DELETED`], jumps to it go to the next surviving instruction, everything after it
//!   shifts down (`verifier_remove_insns`).
//!
//! Relative offsets are computed once, at the end, from the final positions; an offset that no
//! longer fits its field (16-bit `off` of jumps and `may_goto`, 32-bit `imm` of `gotol`, long
//! static branches, calls and `BPF_PSEUDO_FUNC`) is a [`FixupError::OffsetOverflow`]. `gotox`
//! targets are not in the instruction stream: they live in instruction-array maps, whose
//! entries the caller remaps with [`Xlated::orig_to_xlated`].
//!
//! # The passes, in the kernel's order
//!
//! 1. **Nop removal** ([`FixupOptions::remove_nops`], the kernel's `opt_remove_nops`): every
//!    `goto +0` with exactly the encoding `05 00 0000 00000000` and every `may_goto +0`
//!    (`e5 00 0000 00000000`) is removed, one at a time and front to back, the offsets of the
//!    others being adjusted after each removal. After removing a `may_goto +0` the
//!    instruction before it is examined again (it may have become `may_goto +0` or
//!    `goto +0`), so runs like `may_goto +2; may_goto +1; may_goto +0` disappear; after
//!    removing a `goto +0` it is not (as in the kernel, `goto +1; goto +0` leaves a `goto +0`).
//!    bpfkit's own rule (the kernel has no static branches): a nop right after a static branch
//!    that its removal would leave with offset 0, an encoding no decoder accepts, is kept.
//! 2. **Helper inlining** ([`FixupOptions::inline_helper`], as the kernel's
//!    `do_misc_fixups` does for e.g. `bpf_jiffies64`): a `call id` (src_reg 0) for which the
//!    callback returns instructions is patched into them. Jumps inside the replacement are
//!    relative to it; a jump to one past its end continues after the call. The replacement
//!    may use AX. [`jiffies64_patch`] builds the kernel's 3-slot `bpf_jiffies64` inline.
//! 3. **Constant blinding** ([`FixupOptions::blind`], the kernel's `bpf_jit_harden=2`, see
//!    [below](#constant-blinding)), last, so that inlined constants are blinded too.
//!
//! Removing a `may_goto +0` removes a decrement of its frame's loop budget (a budget of
//! 8,388,608 per frame invocation), as in the kernel; every other rewrite computes exactly
//! what the orig program computes.
//!
//! # Constant blinding
//!
//! Every instruction that carries a constant chosen by the program's author is rewritten so
//! that the constant never appears in the code; the sequences are the kernel's
//! (`bpf_jit_blind_insn`), with `rnd` a fresh random 32-bit value per instruction and AX the
//! hidden register ([`Reg::AX`], r11):
//!
//! | instruction | becomes |
//! | --- | --- |
//! | `dst op= imm`, 64-bit, op ∈ add sub and or xor mul mov div sdiv mod smod | `ax = rnd ^ imm; ax ^= rnd; dst op= ax` (ALU64) |
//! | the same on 32 bits | `wax = rnd ^ imm; wax ^= rnd; wdst op= wax` (ALU32) |
//! | `dst = 0` / `wdst = 0` (mov of 0, either width) | `dst ^= dst` (ALU64, one instruction) |
//! | `if dst op imm goto L` (JMP) | `ax = rnd ^ imm; ax ^= rnd; if dst op ax goto L` |
//! | the same in JMP32 | `wax = ...; wax ^= rnd; if wdst op wax goto L` |
//! | `*(size *)(dst + off) = imm` | `ax = rnd ^ imm; ax ^= rnd; *(size *)(dst + off) = ax` |
//! | `dst = imm64 ll` (src_reg 0) | `ax = rnd1 ^ hi; ax ^= rnd1; ax <<= 32; dst = ax; wax = rnd2 ^ lo; wax ^= rnd2; dst \|= ax` (7 slots: the first slot becomes 4, the second 3) |
//!
//! As in the kernel, a conditional jump keeps its target: it now leaves from the third slot
//! of its patch (the kernel writes `off - 2` for a backward jump, which the item model does
//! by itself). Not blinded, as in the kernel: shifts by an immediate (`lsh`, `rsh`, `arsh`),
//! `neg`, byte swaps, `goto`/`gotol`, calls, `exit`, atomics, `LD_ABS`/`LD_IND`, and every
//! instruction that already names AX. Also left alone: `lddw` of a function address
//! (`BPF_PSEUDO_FUNC`, not a user constant: the kernel skips it too), `lddw` with any other
//! pseudo source (not yet bound to a constant; the kernel only blinds after binding them) and
//! a `lddw` into AX. The zero-extension the kernel inserts after the 32-bit half of a `lddw`
//! only for JITs that need explicit zero-extension is not emitted (x86-64 does not need it).
//!
//! The random values come from SplitMix64 seeded with [`FixupOptions::blind`]: the same seed
//! gives the same xlated program (tests, reproducible dumps); a caller that blinds for
//! security passes a fresh seed from the OS for each load.
//!
//! # Per-instruction data (line info, instruction arrays)
//!
//! [`Xlated::orig_to_xlated`] gives, for each orig slot, its xlated slot or
//! [`INSN_DELETED`]; an instruction array's entry (`orig_off`) becomes
//! `xlated_off = orig_to_xlated[orig_off]`. Line info follows the same rule, with one
//! difference: a line of a deleted instruction is dropped, a patched instruction keeps its
//! line on the first instruction of its replacement ([`Xlated::remap_line_info`]).
#![forbid(unsafe_code)]

use bpfkit_isa::{
    AluOp, CallTarget, DecodeError, Field, Insn, LdImmSrc, Operand, RawInsn, Reg, Width, decode_program_xlated,
    encode_program,
};

/// `orig_to_xlated` entry of an orig instruction the rewrites removed.
pub const INSN_DELETED: u32 = u32::MAX;

/// `BPF_FUNC_jiffies64`.
pub const BPF_FUNC_JIFFIES64: i32 = 118;

/// What [`fixup`] does; the default does nothing but re-encode the program.
#[derive(Clone, Copy, Default)]
pub struct FixupOptions<'a> {
    /// Remove `goto +0` (exactly `05 00 0000 00000000`) and `may_goto +0`, as the kernel's
    /// `opt_remove_nops` does.
    pub remove_nops: bool,
    /// Helper calls to inline: given the id of a `call id` (src_reg 0), the instructions that
    /// replace it, or `None` to keep the call.
    pub inline_helper: Option<&'a dyn Fn(i32) -> Option<Vec<RawInsn>>>,
    /// Constant blinding (the kernel's `bpf_jit_harden=2`) with this seed for the random
    /// immediates; `None` = off.
    pub blind: Option<u64>,
}

impl std::fmt::Debug for FixupOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FixupOptions")
            .field("remove_nops", &self.remove_nops)
            .field("inline_helper", &self.inline_helper.is_some())
            .field("blind", &self.blind)
            .finish()
    }
}

/// The rewritten program and how its slots relate to the orig ones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Xlated {
    /// The xlated program; it may use the hidden register AX (load it with
    /// `bpfkit_interp::Program::load_xlated`, decode it with
    /// `bpfkit_isa::decode_program_xlated`).
    pub insns: Vec<RawInsn>,
    /// For each orig slot: its xlated slot, or [`INSN_DELETED`]. The second slot of a `lddw`
    /// maps to the second slot of its `lddw` (or, blinded, to the first slot of the 3-slot
    /// half that replaced it).
    pub orig_to_xlated: Vec<u32>,
    /// For each xlated slot: the orig slot it came from (for every slot of a replacement, the
    /// orig slot that was patched), for logs and dumps. `None` for code no orig slot produced
    /// (none of the current passes inserts such code).
    pub xlated_to_orig: Vec<Option<u32>>,
}

impl Xlated {
    /// The xlated slot of orig slot `orig`; `None` if it was deleted or is out of range.
    pub fn map(&self, orig: u32) -> Option<u32> {
        self.orig_to_xlated.get(orig as usize).copied().filter(|&x| x != INSN_DELETED)
    }

    /// Remaps per-instruction records (e.g. BTF line info: `(insn_off, line)`) from orig to
    /// xlated offsets: a record of a deleted instruction, or of an offset outside the orig
    /// program, is dropped; a record of a patched instruction moves to the first instruction
    /// of its replacement. The order of the records is kept (it stays sorted if it was,
    /// since the map is increasing).
    pub fn remap_line_info<T: Clone>(&self, records: &[(u32, T)]) -> Vec<(u32, T)> {
        records.iter().filter_map(|(off, v)| self.map(*off).map(|x| (x, v.clone()))).collect()
    }
}

/// Why [`fixup`] failed. `pc` is an orig slot index unless the field says otherwise.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FixupError {
    #[error("{source}")]
    Decode { source: DecodeError },
    #[error("the program is empty")]
    Empty,
    #[error("insn {pc}: jump out of range to {target} (the program has {len} slots)")]
    JumpOutOfRange { pc: usize, target: i64, len: usize },
    #[error("insn {pc}: jump to {target} lands in the middle of a lddw")]
    JumpIntoLddw { pc: usize, target: usize },
    #[error("insn {pc}: the inlined code of helper {helper} is invalid: {reason}")]
    BadPatch { pc: usize, helper: i32, reason: String },
    #[error(
        "xlated insn {xlated_pc} (orig {}): offset {offset} does not fit the {bits}-bit {field} field",
        orig_pc.map_or_else(|| "none".to_string(), |p| p.to_string())
    )]
    OffsetOverflow { xlated_pc: usize, orig_pc: Option<u32>, offset: i64, field: Field, bits: u8 },
    #[error("the xlated program has {len} slots, more than offsets can describe")]
    TooLong { len: usize },
}

impl From<DecodeError> for FixupError {
    fn from(source: DecodeError) -> Self {
        FixupError::Decode { source }
    }
}

/// The 3 slots the kernel inlines `bpf_jiffies64` as: `r0 = addr ll; r0 = *(u64 *)(r0 + 0)`,
/// with `addr` the address of the jiffies counter.
pub fn jiffies64_patch(addr: u64) -> Vec<RawInsn> {
    encode_program(&[
        Insn::LdImm64 {
            dst: Reg::R0,
            src: LdImmSrc::Imm,
            imm: addr as u32 as i32,
            next_imm: (addr >> 32) as u32 as i32,
        },
        Insn::Load { size: bpfkit_isa::Size::DW, signed: false, dst: Reg::R0, src: Reg::R0, off: 0 },
    ])
}

/// Runs the passes `opts` selects over `orig` (see the crate documentation).
///
/// `orig` is decoded like an xlated program (AX is accepted, and instructions naming it are
/// never blinded), and every jump, call and function address must land on the start of an
/// instruction inside it.
pub fn fixup(orig: &[RawInsn], opts: &FixupOptions<'_>) -> Result<Xlated, FixupError> {
    let mut prog = Prog::build(orig)?;
    if opts.remove_nops {
        prog.remove_nops();
    }
    if let Some(inline) = opts.inline_helper {
        prog.inline_helpers(inline)?;
    }
    if let Some(seed) = opts.blind {
        prog.blind(&mut SplitMix64(seed));
    }
    prog.finish(orig.len())
}

type Id = usize;

/// One instruction of the program being rewritten.
#[derive(Clone, Debug)]
struct Item {
    /// The instruction; for one with a target, its offset is recomputed by [`Prog::finish`].
    insn: Insn,
    /// Where a jump, local call, static branch, `may_goto` or `BPF_PSEUDO_FUNC` goes.
    target: Option<Id>,
    /// The orig slot each slot of this instruction came from (the second only for `lddw`).
    orig: [Option<u32>; 2],
    /// The orig slot anchored at this instruction's second slot (an unpatched orig `lddw`).
    second_anchor: Option<u32>,
    /// Set when the item was removed: the item that replaced it as a jump target.
    redirect: Option<Id>,
}

/// The program as items in program order, with the anchors of the orig slots.
struct Prog {
    items: Vec<Item>,
    order: Vec<Id>,
    /// For each orig slot: the item and the slot within it.
    anchors: Vec<(Id, u8)>,
}

impl Prog {
    fn build(orig: &[RawInsn]) -> Result<Prog, FixupError> {
        if orig.is_empty() {
            return Err(FixupError::Empty);
        }
        let decoded = decode_program_xlated(orig)?;
        let len = orig.len();
        let mut item_at = vec![None; len];
        let mut anchors = vec![(0, 0); len];
        for (id, l) in decoded.iter().enumerate() {
            item_at[l.pc] = Some(id);
            anchors[l.pc] = (id, 0);
            if l.insn.slots() == 2 {
                anchors[l.pc + 1] = (id, 1);
            }
        }
        let mut items = Vec::with_capacity(decoded.len());
        for l in &decoded {
            let target = match l.insn.branch_offset() {
                Some(rel) => {
                    let t = l.pc as i64 + 1 + rel;
                    if t < 0 || t >= len as i64 {
                        return Err(FixupError::JumpOutOfRange { pc: l.pc, target: t, len });
                    }
                    Some(item_at[t as usize].ok_or(FixupError::JumpIntoLddw { pc: l.pc, target: t as usize })?)
                }
                None => None,
            };
            let two = l.insn.slots() == 2;
            let pc = l.pc as u32;
            items.push(Item {
                insn: l.insn,
                target,
                orig: [Some(pc), two.then_some(pc + 1)],
                second_anchor: two.then_some(pc + 1),
                redirect: None,
            });
        }
        Ok(Prog { order: (0..items.len()).collect(), items, anchors })
    }

    /// The live item a target designates (following the redirects of removed items).
    fn resolve(&self, mut id: Id) -> Id {
        while let Some(next) = self.items[id].redirect {
            id = next;
        }
        id
    }

    /// Pass 1: the kernel's `opt_remove_nops` (see the crate documentation).
    fn remove_nops(&mut self) {
        let n = self.order.len();
        // A doubly linked list over positions in `order`, so that removals are O(1).
        let mut next: Vec<usize> = (1..=n).collect();
        let mut prev: Vec<Option<usize>> = (0..n).map(|i| i.checked_sub(1)).collect();
        let mut removed = vec![false; n];
        let mut cur = 0;
        while cur < n {
            let id = self.order[cur];
            let succ = next[cur];
            let item = &self.items[id];
            let nop = match item.insn {
                Insn::Ja { long: false, .. } | Insn::MayGoto { .. } => {
                    succ < n && item.target.map(|t| self.resolve(t)) == Some(self.order[succ])
                }
                _ => false,
            };
            // A static branch right before the nop that would be left with offset 0 (which
            // no decoder accepts) keeps the nop.
            let pins = |p: usize| {
                let before = &self.items[self.order[p]];
                matches!(before.insn, Insn::StaticBranch { .. })
                    && before.target.map(|t| self.resolve(t)).is_some_and(|t| t == id || t == self.order[succ])
            };
            let nop = nop && !prev[cur].is_some_and(pins);
            if !nop {
                cur = succ;
                continue;
            }
            let may_goto = matches!(item.insn, Insn::MayGoto { .. });
            self.items[id].redirect = Some(self.order[succ]);
            removed[cur] = true;
            if let Some(p) = prev[cur] {
                next[p] = succ;
            }
            prev[succ] = prev[cur];
            // After a `may_goto +0`, look at the instruction before it again.
            cur = match (may_goto, prev[cur]) {
                (true, Some(p)) => p,
                _ => succ,
            };
        }
        let order = std::mem::take(&mut self.order);
        self.order = order.into_iter().zip(removed).filter(|&(_, r)| !r).map(|(id, _)| id).collect();
    }

    /// Replaces the live item `id` by `repl`, appending the ids to `out` (the order being
    /// rebuilt): the first element takes over `id` (and so its anchor
    /// and every jump to it), the others get fresh ids. Returns the ids, in order.
    fn patch(&mut self, id: Id, repl: Vec<(Insn, Option<Id>)>, orig: [Option<u32>; 2], out: &mut Vec<Id>) -> Vec<Id> {
        let mut ids = Vec::with_capacity(repl.len());
        for (k, (insn, target)) in repl.into_iter().enumerate() {
            let origs = if insn.slots() == 2 { [orig[0], orig[0]] } else { [orig[0], None] };
            let item = Item { insn, target, orig: origs, second_anchor: None, redirect: None };
            let new_id = if k == 0 {
                self.items[id] = item;
                id
            } else {
                self.items.push(item);
                self.items.len() - 1
            };
            out.push(new_id);
            ids.push(new_id);
        }
        ids
    }

    /// Pass 2: helper calls replaced by the instructions `inline` gives.
    fn inline_helpers(&mut self, inline: &dyn Fn(i32) -> Option<Vec<RawInsn>>) -> Result<(), FixupError> {
        let order = std::mem::take(&mut self.order);
        let mut out = Vec::with_capacity(order.len());
        for (pos, &id) in order.iter().enumerate() {
            let item = &self.items[id];
            let Insn::Call(CallTarget::Helper(helper)) = item.insn else {
                out.push(id);
                continue;
            };
            let Some(slots) = inline(helper) else {
                out.push(id);
                continue;
            };
            let pc = item.orig[0].unwrap_or(0) as usize;
            let bad = |reason: String| FixupError::BadPatch { pc, helper, reason };
            if slots.is_empty() {
                return Err(bad("no instructions".into()));
            }
            let decoded = decode_program_xlated(&slots).map_err(|e| bad(e.to_string()))?;
            let after = order.get(pos + 1).copied();
            // Items of the replacement, by slot; their targets as replacement indices or the
            // continuation after the call.
            let mut index_at = vec![None; slots.len()];
            for (k, l) in decoded.iter().enumerate() {
                index_at[l.pc] = Some(k);
            }
            enum Tgt {
                Inner(usize),
                After,
            }
            let mut repl = Vec::with_capacity(decoded.len());
            for l in &decoded {
                let tgt = match l.insn.branch_offset() {
                    None => None,
                    Some(rel) => {
                        let t = l.pc as i64 + 1 + rel;
                        if t == slots.len() as i64 {
                            if after.is_none() {
                                return Err(bad("a jump leaves the patch but the call is the last instruction".into()));
                            }
                            Some(Tgt::After)
                        } else if t < 0 || t > slots.len() as i64 {
                            return Err(bad(format!("insn {}: jump to {t} leaves the patch", l.pc)));
                        } else {
                            match index_at[t as usize] {
                                Some(k) => Some(Tgt::Inner(k)),
                                None => return Err(bad(format!("insn {}: jump into a lddw", l.pc))),
                            }
                        }
                    }
                };
                repl.push((l.insn, tgt));
            }
            let orig = item.orig;
            // Fresh ids are allocated in order, so replacement index k has id `base + k - 1`
            // (k ≥ 1) and index 0 keeps `id`.
            let base = self.items.len();
            let id_of = |k: usize| if k == 0 { id } else { base + k - 1 };
            let repl: Vec<(Insn, Option<Id>)> = repl
                .into_iter()
                .map(|(insn, tgt)| {
                    let target = tgt.map(|t| match t {
                        Tgt::Inner(k) => id_of(k),
                        Tgt::After => after.expect("checked above"),
                    });
                    (insn, target)
                })
                .collect();
            let ids = self.patch(id, repl, orig, &mut out);
            debug_assert!(ids.iter().enumerate().all(|(k, &i)| i == id_of(k)));
        }
        self.order = out;
        Ok(())
    }

    /// Pass 3: constant blinding (see the crate documentation).
    fn blind(&mut self, rng: &mut SplitMix64) {
        let order = std::mem::take(&mut self.order);
        let mut out = Vec::with_capacity(order.len() * 2);
        for &id in &order {
            let item = self.items[id].clone();
            let ax = Reg::AX;
            let alu = |width: Width, op: AluOp, dst: Reg, src: Operand| Insn::Alu { width, op, dst, src };
            // `ax = rnd ^ imm; ax ^= rnd` on `width` bits.
            let mut load_ax = |width: Width, imm: i32| {
                let rnd = rng.next_u32() as i32;
                [alu(width, AluOp::Mov, ax, Operand::Imm(rnd ^ imm)), alu(width, AluOp::Xor, ax, Operand::Imm(rnd))]
            };
            let repl: Option<Vec<(Insn, Option<Id>)>> = if item.insn.names_reg(Reg::AX) {
                None
            } else {
                match item.insn {
                    Insn::Alu { op: AluOp::Mov, dst, src: Operand::Imm(0), .. } => {
                        Some(vec![(alu(Width::W64, AluOp::Xor, dst, Operand::Reg(dst)), None)])
                    }
                    Insn::Alu {
                        width,
                        op:
                            op @ (AluOp::Add
                            | AluOp::Sub
                            | AluOp::And
                            | AluOp::Or
                            | AluOp::Xor
                            | AluOp::Mul
                            | AluOp::Mov
                            | AluOp::Div
                            | AluOp::SDiv
                            | AluOp::Mod
                            | AluOp::SMod),
                        dst,
                        src: Operand::Imm(imm),
                    } => {
                        let [a, b] = load_ax(width, imm);
                        Some(vec![(a, None), (b, None), (alu(width, op, dst, Operand::Reg(ax)), None)])
                    }
                    Insn::JmpCond { width, cond, dst, src: Operand::Imm(imm), off } => {
                        let [a, b] = load_ax(width, imm);
                        let jump = Insn::JmpCond { width, cond, dst, src: Operand::Reg(ax), off };
                        Some(vec![(a, None), (b, None), (jump, item.target)])
                    }
                    Insn::Store { size, dst, off, src: Operand::Imm(imm) } => {
                        let [a, b] = load_ax(Width::W64, imm);
                        Some(vec![(a, None), (b, None), (Insn::Store { size, dst, off, src: Operand::Reg(ax) }, None)])
                    }
                    Insn::LdImm64 { dst, src: LdImmSrc::Imm, imm, next_imm } => {
                        let [a, b] = load_ax(Width::W64, next_imm);
                        let [c, d] = load_ax(Width::W32, imm);
                        Some(vec![
                            (a, None),
                            (b, None),
                            (alu(Width::W64, AluOp::Lsh, ax, Operand::Imm(32)), None),
                            (alu(Width::W64, AluOp::Mov, dst, Operand::Reg(ax)), None),
                            (c, None),
                            (d, None),
                            (alu(Width::W64, AluOp::Or, dst, Operand::Reg(ax)), None),
                        ])
                    }
                    _ => None,
                }
            };
            let Some(repl) = repl else {
                out.push(id);
                continue;
            };
            let is_lddw = item.insn.slots() == 2;
            let ids = self.patch(id, repl, item.orig, &mut out);
            if is_lddw {
                // The second slot was patched on its own (the last 3 instructions).
                for &i in &ids[4..] {
                    self.items[i].orig[0] = item.orig[1];
                }
                if let Some(o) = item.second_anchor {
                    self.anchors[o as usize] = (ids[4], 0);
                }
            }
        }
        self.order = out;
    }

    /// Computes positions and relative offsets and encodes the result.
    fn finish(self, orig_len: usize) -> Result<Xlated, FixupError> {
        let mut pos = vec![u32::MAX; self.items.len()];
        let mut len: usize = 0;
        for &id in &self.order {
            pos[id] = u32::try_from(len).map_err(|_| FixupError::TooLong { len })?;
            len += self.items[id].insn.slots();
        }
        if u32::try_from(len).is_err() || len == INSN_DELETED as usize {
            return Err(FixupError::TooLong { len });
        }
        let mut insns = Vec::with_capacity(len);
        let mut xlated_to_orig = Vec::with_capacity(len);
        for &id in &self.order {
            let item = &self.items[id];
            let here = pos[id] as usize;
            let mut insn = item.insn;
            if let Some(t) = item.target {
                let t = self.resolve(t);
                let rel = i64::from(pos[t]) - here as i64 - 1;
                insn = with_offset(insn, rel).map_err(|(field, bits)| FixupError::OffsetOverflow {
                    xlated_pc: here,
                    orig_pc: item.orig[0],
                    offset: rel,
                    field,
                    bits,
                })?;
            }
            insn.encode_into(&mut insns);
            xlated_to_orig.push(item.orig[0]);
            if insn.slots() == 2 {
                xlated_to_orig.push(item.orig[1]);
            }
        }
        let orig_to_xlated = (0..orig_len)
            .map(|o| {
                let (id, slot) = self.anchors[o];
                if self.items[id].redirect.is_some() { INSN_DELETED } else { pos[id] + u32::from(slot) }
            })
            .collect();
        Ok(Xlated { insns, orig_to_xlated, xlated_to_orig })
    }
}

/// `insn` with its relative target offset set to `rel`; the field and its width when `rel`
/// does not fit.
fn with_offset(insn: Insn, rel: i64) -> Result<Insn, (Field, u8)> {
    let short = || i16::try_from(rel).map_err(|_| (Field::Off, 16));
    let long = || i32::try_from(rel).map_err(|_| (Field::Imm, 32));
    Ok(match insn {
        Insn::Ja { long: false, .. } => Insn::Ja { long: false, off: short()?.into() },
        Insn::Ja { long: true, .. } => Insn::Ja { long: true, off: long()? },
        Insn::StaticBranch { long: false, inverse, .. } => {
            Insn::StaticBranch { long: false, inverse, off: short()?.into() }
        }
        Insn::StaticBranch { long: true, inverse, .. } => Insn::StaticBranch { long: true, inverse, off: long()? },
        Insn::JmpCond { width, cond, dst, src, .. } => Insn::JmpCond { width, cond, dst, src, off: short()? },
        Insn::MayGoto { .. } => Insn::MayGoto { off: short()? },
        Insn::Call(CallTarget::Local(_)) => Insn::Call(CallTarget::Local(long()?)),
        Insn::LdImm64 { dst, src: LdImmSrc::Func, next_imm, .. } => {
            Insn::LdImm64 { dst, src: LdImmSrc::Func, imm: long()?, next_imm }
        }
        other => other,
    })
}

/// SplitMix64 (Steele, Lea, Flood 2014): the blinding values, deterministic per seed.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }
}
