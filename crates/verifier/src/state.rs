//! The abstract state the verifier tracks at one instruction: registers with their types
//! (the kernel's `bpf_reg_state`), the stack of every frame (`bpf_stack_state`), the call
//! chain, references to release, and the `may_goto` depth; with the containment test state
//! pruning needs (`states_equal`/`regsafe`/`stacksafe`).

use crate::scalar::Scalar;

/// What a pointer points to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PtrKind {
    /// The program's context (`PTR_TO_CTX`).
    Ctx,
    /// A frame's stack (`PTR_TO_STACK`); `frame` is the call depth that owns it.
    Stack { frame: u8 },
    /// A map itself (`CONST_PTR_TO_MAP`).
    Map { map: u32 },
    /// A map value (`PTR_TO_MAP_VALUE`).
    MapValue { map: u32 },
    /// Packet data (`PTR_TO_PACKET`).
    Packet,
    /// The end of packet data (`PTR_TO_PACKET_END`).
    PacketEnd,
    /// Packet metadata (`PTR_TO_PACKET_META`).
    PacketMeta,
    /// Memory a helper returned (`PTR_TO_MEM`): `size` bytes, read-only or not.
    Mem { size: u32, rdonly: bool },
    /// An instruction, loaded from an instruction array (`PTR_TO_INSN`): what `gotox` takes.
    Insn { map: u32 },
    /// A function (`PTR_TO_FUNC`): a callback's first instruction.
    Func { pc: u32 },
}

impl PtrKind {
    /// The kernel's name for the type (`reg_type_str`).
    pub fn name(self) -> &'static str {
        match self {
            PtrKind::Ctx => "ctx",
            PtrKind::Stack { .. } => "fp",
            PtrKind::Map { .. } => "map_ptr",
            PtrKind::MapValue { .. } => "map_value",
            PtrKind::Packet => "pkt",
            PtrKind::PacketEnd => "pkt_end",
            PtrKind::PacketMeta => "pkt_meta",
            PtrKind::Mem { .. } => "mem",
            PtrKind::Insn { .. } => "insn",
            PtrKind::Func { .. } => "func",
        }
    }
}

/// A pointer: its target, a fixed offset and a variable one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ptr {
    pub kind: PtrKind,
    /// The constant part of the offset (`reg->off`).
    pub off: i32,
    /// The variable part (`reg->var_off` and bounds); the constant 0 when there is none.
    pub var: Scalar,
    /// Non-zero while the pointer may still be NULL (`PTR_MAYBE_NULL`, with its `id`: every
    /// copy of it becomes non-NULL at once when one is checked).
    pub null_id: u32,
    /// For packet pointers: how many bytes past it are known to be inside the packet.
    pub range: u32,
    /// For memory that must be released (ring buffer records): its reference id.
    pub ref_id: u32,
    /// For packet pointers with a variable offset: which addition made it (pointers sharing
    /// it share their checked range).
    pub id: u32,
}

impl Ptr {
    pub fn new(kind: PtrKind) -> Ptr {
        Ptr { kind, off: 0, var: Scalar::konst(0), null_id: 0, range: 0, ref_id: 0, id: 0 }
    }

    pub fn is_packet(&self) -> bool {
        matches!(self.kind, PtrKind::Packet | PtrKind::PacketMeta)
    }
}

/// A register.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reg {
    /// Never written (`NOT_INIT`).
    NotInit,
    Scalar(Scalar),
    Ptr(Ptr),
}

impl Reg {
    pub fn name(&self) -> &'static str {
        match self {
            Reg::NotInit => "?",
            Reg::Scalar(_) => "scalar",
            Reg::Ptr(p) if p.null_id != 0 => match p.kind {
                PtrKind::MapValue { .. } => "map_value_or_null",
                PtrKind::Mem { .. } => "mem_or_null",
                _ => "ptr_or_null",
            },
            Reg::Ptr(p) => p.kind.name(),
        }
    }

    pub fn scalar(&self) -> Option<&Scalar> {
        match self {
            Reg::Scalar(s) => Some(s),
            _ => None,
        }
    }

    pub fn ptr(&self) -> Option<&Ptr> {
        match self {
            Reg::Ptr(p) => Some(p),
            _ => None,
        }
    }

    /// Whether every value `new` may hold is one `self` allowed (old ⊇ new), for pruning;
    /// `ids` checks that identities (NULL checks, references, packet ranges) correspond.
    pub fn contains(&self, new: &Reg, ids: &mut IdMap) -> bool {
        match (self, new) {
            // The continuation from the old state never read this register.
            (Reg::NotInit, _) => true,
            // An old state whose scalar was linked to another relied on the link: the new one
            // needs it too (an id held once links nothing).
            (Reg::Scalar(a), Reg::Scalar(b)) => {
                a.contains(b) && (a.id == 0 || !ids.shared.contains(&a.id) || ids.check(a.id, b.id))
            }
            (Reg::Ptr(a), Reg::Ptr(b)) => {
                a.kind == b.kind
                    && a.off == b.off
                    && a.var.contains(&b.var)
                    && a.range <= b.range
                    && ids.check(a.null_id, b.null_id)
                    && ids.check(a.ref_id, b.ref_id)
                    && ids.check(a.id, b.id)
            }
            _ => false,
        }
    }
}

/// A one-to-one correspondence between the identities of two states.
#[derive(Default)]
pub struct IdMap {
    pairs: Vec<(u32, u32)>,
    /// Scalar ids the old state holds in more than one place (real links).
    pub shared: Vec<u32>,
}

impl IdMap {
    /// Whether old id `a` may stand for new id `b` (0 only for 0), recording the pair.
    pub fn check(&mut self, a: u32, b: u32) -> bool {
        if a == 0 || b == 0 {
            return a == b;
        }
        for &(x, y) in &self.pairs {
            if x == a || y == b {
                return x == a && y == b;
            }
        }
        self.pairs.push((a, b));
        true
    }
}

/// What one byte of a stack slot holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Byte {
    /// Never written: reading it is refused.
    Invalid,
    /// Some data.
    Misc,
    /// Zero.
    Zero,
    /// Part of the register spilled in the slot.
    Spill,
}

/// One 8-byte stack slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Slot {
    pub bytes: [Byte; 8],
    /// The register spilled here: an aligned 8-byte store of a register, or a narrower
    /// aligned store of a scalar register (`spill_len` bytes from byte `spill_at`).
    pub spilled: Option<Reg>,
    pub spill_at: u8,
    pub spill_len: u8,
}

impl Slot {
    pub const EMPTY: Slot = Slot { bytes: [Byte::Invalid; 8], spilled: None, spill_at: 0, spill_len: 0 };

    fn contains(&self, new: &Slot, ids: &mut IdMap) -> bool {
        if let Some(old) = &self.spilled {
            return match &new.spilled {
                Some(n) => {
                    self.spill_at == new.spill_at
                        && self.spill_len == new.spill_len
                        && old.contains(n, ids)
                        && self.bytes.iter().zip(&new.bytes).all(|(o, n)| o == n || *o == Byte::Invalid)
                }
                // A scalar spill holds any data: misc or zero bytes written as data.
                None => {
                    matches!(old, Reg::Scalar(s) if *s == Scalar::UNKNOWN)
                        && new.bytes.iter().all(|b| *b != Byte::Invalid)
                }
            };
        }
        self.bytes.iter().zip(&new.bytes).all(|(o, n)| match (o, n) {
            (Byte::Invalid, _) => true,
            (Byte::Misc, Byte::Misc | Byte::Zero | Byte::Spill) => {
                new.spilled.is_none_or(|r| matches!(r, Reg::Scalar(_)))
            }
            (Byte::Zero, Byte::Zero) => true,
            _ => false,
        })
    }
}

/// The stack size of one frame.
pub const STACK_SIZE: usize = 512;
pub const SLOTS: usize = STACK_SIZE / 8;

/// One call frame.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Frame {
    pub regs: [Reg; 11],
    /// Slot 0 is `[r10 - 8, r10)`, slot 63 `[r10 - 512, r10 - 504)`.
    pub stack: Vec<Slot>,
    /// The instruction that called this frame (none for the main program).
    pub callsite: Option<u32>,
    /// The first instruction of this frame's function.
    pub subprog: u32,
    /// The deepest stack byte written or read (for the combined stack size check).
    pub depth: u32,
    /// A callback frame (`bpf_loop`): what `exit` returns to is the helper call.
    pub callback: bool,
}

impl Frame {
    pub fn new(subprog: u32, callsite: Option<u32>, frameno: u8) -> Frame {
        let mut regs = [Reg::NotInit; 11];
        regs[10] = Reg::Ptr(Ptr::new(PtrKind::Stack { frame: frameno }));
        Frame { regs, stack: vec![Slot::EMPTY; SLOTS], callsite, subprog, depth: 0, callback: false }
    }
}

/// What the rest of a function does with each register at an instruction: whether it reads it
/// at all (`live`), and whether the value of a scalar in it can reach a memory access, a helper
/// argument, a conditional jump or a return the verifier checks (`precise`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RegMask {
    pub live: [bool; 11],
    pub precise: [bool; 11],
}

/// The whole state at an instruction.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct State {
    pub frames: Vec<Frame>,
    /// References that must be released before `exit` (id, instruction that acquired it).
    pub refs: Vec<(u32, u32)>,
    /// How many `may_goto` iterations this path went through.
    pub may_goto_depth: u32,
}

impl State {
    pub fn cur(&self) -> &Frame {
        self.frames.last().expect("a frame")
    }

    pub fn cur_mut(&mut self) -> &mut Frame {
        self.frames.last_mut().expect("a frame")
    }

    /// Whether the old state `self` covers `new`: every register and stack slot, the same
    /// call chain and references.
    /// Scalar ids this state holds in more than one place (its real links).
    pub fn shared_ids(&self) -> Vec<u32> {
        let mut seen: Vec<u32> = Vec::new();
        let mut shared = Vec::new();
        for fr in &self.frames {
            let spilled = fr.stack.iter().filter_map(|s| s.spilled.as_ref());
            for r in fr.regs.iter().chain(spilled) {
                if let Reg::Scalar(x) = r
                    && x.id != 0
                {
                    if seen.contains(&x.id) {
                        shared.push(x.id);
                    } else {
                        seen.push(x.id);
                    }
                }
            }
        }
        shared
    }

    /// Whether the old state `self` covers `new`; `shared` is `self.shared_ids()`.
    pub fn contains(&self, new: &State, mask: Option<&RegMask>, shared: &[u32]) -> bool {
        if self.frames.len() != new.frames.len() || self.refs.len() != new.refs.len() {
            return false;
        }
        let mut ids = IdMap { shared: shared.to_vec(), ..IdMap::default() };
        let last = self.frames.len() - 1;
        for (i, (o, n)) in self.frames.iter().zip(&new.frames).enumerate() {
            if o.callsite != n.callsite || o.callback != n.callback {
                return false;
            }
            for r in 0..11 {
                // Registers the rest of the current function never reads do not matter.
                if i == last && mask.is_some_and(|m| !m.live[r]) {
                    continue;
                }
                // A scalar whose value never reaches a check or a branch: any scalar will do
                // (a static stand-in for the kernel's precision marks).
                if i == last
                    && mask.is_some_and(|m| !m.precise[r])
                    && matches!((&o.regs[r], &n.regs[r]), (Reg::Scalar(_), Reg::Scalar(_)))
                {
                    continue;
                }
                if !o.regs[r].contains(&n.regs[r], &mut ids) {
                    return false;
                }
            }
            if !o.stack.iter().zip(&n.stack).all(|(a, b)| a.contains(b, &mut ids)) {
                return false;
            }
        }
        self.refs.iter().zip(&new.refs).all(|(a, b)| ids.check(a.0, b.0))
    }

    /// Every copy of the possibly-NULL pointer `id` becomes `f` of itself.
    pub fn update_null_id(&mut self, id: u32, f: impl Fn(&Ptr) -> Reg) {
        for fr in &mut self.frames {
            for r in fr.regs.iter_mut() {
                if let Reg::Ptr(p) = r
                    && p.null_id == id
                {
                    *r = f(p);
                }
            }
            for s in fr.stack.iter_mut() {
                if let Some(Reg::Ptr(p)) = &s.spilled
                    && p.null_id == id
                {
                    s.spilled = Some(f(p));
                }
            }
        }
    }

    /// Every register or spill satisfying `pred` becomes `f` of itself.
    pub fn for_each_ptr(&mut self, mut f: impl FnMut(&mut Ptr)) {
        for fr in &mut self.frames {
            for r in fr.regs.iter_mut() {
                if let Reg::Ptr(p) = r {
                    f(p);
                }
            }
            for s in fr.stack.iter_mut() {
                if let Some(Reg::Ptr(p)) = &mut s.spilled {
                    f(p);
                }
            }
        }
    }
}

/// A register as the kernel's log prints it (`R1_w=map_value(map=jt,ks=4,vs=16)` is
/// simplified to the type, offset and known value).
pub fn describe(r: &Reg) -> String {
    match r {
        Reg::NotInit => "?".into(),
        Reg::Scalar(s) => describe_scalar(s),
        Reg::Ptr(p) => {
            let mut out = p.kind.name().to_string();
            if p.null_id != 0 {
                out.push_str("_or_null");
            }
            let mut parts = Vec::new();
            if p.off != 0 {
                parts.push(format!("off={}", p.off));
            }
            if p.var != Scalar::konst(0) {
                parts.push(format!("var={}", describe_scalar(&p.var)));
            }
            if p.range != 0 {
                parts.push(format!("r={}", p.range));
            }
            if let PtrKind::Mem { size, .. } = p.kind {
                parts.push(format!("sz={size}"));
            }
            if !parts.is_empty() {
                out.push('(');
                out.push_str(&parts.join(","));
                out.push(')');
            }
            out
        }
    }
}

/// A scalar as the kernel's log prints it: the value when known, else its bounds.
pub fn describe_scalar(s: &Scalar) -> String {
    if let Some(v) = s.value() {
        return format!("{}", v as i64);
    }
    let mut parts = Vec::new();
    if s.smin != i64::MIN {
        parts.push(format!("smin={}", s.smin));
    }
    if s.smax != i64::MAX {
        parts.push(format!("smax={}", s.smax));
    }
    if s.umin != 0 {
        parts.push(format!("umin={}", s.umin));
    }
    if s.umax != u64::MAX {
        parts.push(format!("umax={}", s.umax));
    }
    if s.var_off.mask != u64::MAX {
        parts.push(format!("var_off={}", s.var_off));
    }
    if parts.is_empty() { "scalar()".into() } else { format!("scalar({})", parts.join(",")) }
}
