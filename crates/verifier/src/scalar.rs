//! What the verifier knows of a scalar: a [`Tnum`] plus signed and unsigned ranges, in 64 and
//! in 32 bits (the kernel's `var_off`, `smin_value`..`u32_max_value`), kept consistent with one
//! another ([`Scalar::sync`], the kernel's `reg_bounds_sync`), with the transfer functions of
//! ALU instructions and the refinement a conditional jump gives each of its two successors.
//!
//! Everything over-approximates: the concrete value is always a member of every component.
//! Property tests check this against concrete arithmetic.

use crate::tnum::Tnum;

/// The knowledge about one 64-bit scalar.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Scalar {
    pub var_off: Tnum,
    pub smin: i64,
    pub smax: i64,
    pub umin: u64,
    pub umax: u64,
    pub s32_min: i32,
    pub s32_max: i32,
    pub u32_min: u32,
    pub u32_max: u32,
    /// Non-zero when other registers or stack slots hold the same value (copied by a move or a
    /// spill): a branch that narrows one narrows them all (the kernel's linked scalars). Not part
    /// of the knowledge itself: arithmetic results get 0.
    pub id: u32,
}

/// ALU operations the transfer functions know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Add,
    Sub,
    Mul,
    Div,
    SDiv,
    Mod,
    SMod,
    Or,
    And,
    Xor,
    Lsh,
    Rsh,
    Arsh,
}

/// Comparisons of conditional jumps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    Sgt,
    Sge,
    Slt,
    Sle,
    Set,
}

impl Cmp {
    /// The comparison that holds when this one does not.
    pub fn negate(self) -> Cmp {
        match self {
            Cmp::Eq => Cmp::Ne,
            Cmp::Ne => Cmp::Eq,
            Cmp::Gt => Cmp::Le,
            Cmp::Ge => Cmp::Lt,
            Cmp::Lt => Cmp::Ge,
            Cmp::Le => Cmp::Gt,
            Cmp::Sgt => Cmp::Sle,
            Cmp::Sge => Cmp::Slt,
            Cmp::Slt => Cmp::Sge,
            Cmp::Sle => Cmp::Sgt,
            // `jset` has no comparison form for its negation; callers handle it.
            Cmp::Set => Cmp::Set,
        }
    }

    /// `a OP b` is `b SWAPPED a`.
    pub fn swap(self) -> Cmp {
        match self {
            Cmp::Gt => Cmp::Lt,
            Cmp::Ge => Cmp::Le,
            Cmp::Lt => Cmp::Gt,
            Cmp::Le => Cmp::Ge,
            Cmp::Sgt => Cmp::Slt,
            Cmp::Sge => Cmp::Sle,
            Cmp::Slt => Cmp::Sgt,
            Cmp::Sle => Cmp::Sge,
            c => c,
        }
    }

    /// Evaluates on concrete values (of the width the caller chose).
    pub fn eval(self, a: u64, b: u64, bits32: bool) -> bool {
        let (sa, sb) = if bits32 { (a as u32 as i32 as i64, b as u32 as i32 as i64) } else { (a as i64, b as i64) };
        let (a, b) = if bits32 { (a & 0xffff_ffff, b & 0xffff_ffff) } else { (a, b) };
        match self {
            Cmp::Eq => a == b,
            Cmp::Ne => a != b,
            Cmp::Gt => a > b,
            Cmp::Ge => a >= b,
            Cmp::Lt => a < b,
            Cmp::Le => a <= b,
            Cmp::Sgt => sa > sb,
            Cmp::Sge => sa >= sb,
            Cmp::Slt => sa < sb,
            Cmp::Sle => sa <= sb,
            Cmp::Set => a & b != 0,
        }
    }
}

impl Scalar {
    /// Any value.
    pub const UNKNOWN: Scalar = Scalar {
        var_off: Tnum::UNKNOWN,
        smin: i64::MIN,
        smax: i64::MAX,
        umin: 0,
        umax: u64::MAX,
        s32_min: i32::MIN,
        s32_max: i32::MAX,
        u32_min: 0,
        u32_max: u32::MAX,
        id: 0,
    };

    /// Exactly `v`.
    pub fn konst(v: u64) -> Scalar {
        Scalar {
            var_off: Tnum::konst(v),
            smin: v as i64,
            smax: v as i64,
            umin: v,
            umax: v,
            s32_min: v as i32,
            s32_max: v as i32,
            u32_min: v as u32,
            u32_max: v as u32,
            id: 0,
        }
    }

    /// Any value of `[0, max]`.
    pub fn up_to(max: u64) -> Scalar {
        Scalar { umin: 0, umax: max, ..Scalar::UNKNOWN }.synced()
    }

    /// Any value of the signed range `[min, max]`.
    pub fn signed(min: i64, max: i64) -> Scalar {
        Scalar { smin: min, smax: max, ..Scalar::UNKNOWN }.synced()
    }

    /// An unknown value of `size` bytes, zero-extended (a load).
    pub fn of_size(size: u32) -> Scalar {
        if size >= 8 { Scalar::UNKNOWN } else { Scalar::up_to((1u64 << (size * 8)) - 1) }
    }

    /// An unknown value of `size` bytes, sign-extended to 64 bits.
    pub fn of_size_signed(size: u32) -> Scalar {
        if size >= 8 {
            return Scalar::UNKNOWN;
        }
        let half = 1i64 << (size * 8 - 1);
        Scalar::signed(-half, half - 1)
    }

    pub fn is_const(&self) -> bool {
        self.var_off.is_const()
    }

    /// The value, if known.
    pub fn value(&self) -> Option<u64> {
        self.is_const().then_some(self.var_off.value)
    }

    /// Whether the low 32 bits are known.
    pub fn is_const32(&self) -> bool {
        self.var_off.subreg().is_const()
    }

    /// Whether the knowledge is self-consistent (some value satisfies every component); a
    /// refinement that makes it inconsistent describes a path that cannot happen.
    pub fn is_consistent(&self) -> bool {
        self.umin <= self.umax
            && self.smin <= self.smax
            && self.u32_min <= self.u32_max
            && self.s32_min <= self.s32_max
            && self.var_off.value & self.var_off.mask == 0
            && self.var_off.min() <= self.umax
            && self.var_off.max() >= self.umin
    }

    /// Whether `v` is possible.
    pub fn has(&self, v: u64) -> bool {
        self.var_off.has(v)
            && (self.umin..=self.umax).contains(&v)
            && (self.smin..=self.smax).contains(&(v as i64))
            && (self.u32_min..=self.u32_max).contains(&(v as u32))
            && (self.s32_min..=self.s32_max).contains(&(v as i32))
    }

    /// Whether every value `other` allows, `self` allows too (state pruning).
    pub fn contains(&self, other: &Scalar) -> bool {
        self.var_off.contains(other.var_off)
            && self.umin <= other.umin
            && self.umax >= other.umax
            && self.smin <= other.smin
            && self.smax >= other.smax
            && self.u32_min <= other.u32_min
            && self.u32_max >= other.u32_max
            && self.s32_min <= other.s32_min
            && self.s32_max >= other.s32_max
    }

    /// The values of either (joins at merge points when widening is wanted).
    pub fn union(&self, o: &Scalar) -> Scalar {
        Scalar {
            var_off: self.var_off.union(o.var_off),
            smin: self.smin.min(o.smin),
            smax: self.smax.max(o.smax),
            umin: self.umin.min(o.umin),
            umax: self.umax.max(o.umax),
            s32_min: self.s32_min.min(o.s32_min),
            s32_max: self.s32_max.max(o.s32_max),
            u32_min: self.u32_min.min(o.u32_min),
            u32_max: self.u32_max.max(o.u32_max),
            id: 0,
        }
        .synced()
    }

    pub fn synced(mut self) -> Scalar {
        self.sync();
        self
    }

    /// Makes every component as tight as the others allow (the kernel's `reg_bounds_sync`).
    pub fn sync(&mut self) {
        for _ in 0..2 {
            self.bounds_from_var_off();
            self.deduce();
            self.var_off_from_bounds();
        }
    }

    /// Ranges from the known bits.
    fn bounds_from_var_off(&mut self) {
        let t = self.var_off;
        self.umin = self.umin.max(t.min());
        self.umax = self.umax.min(t.max());
        // The smallest signed member has the sign bit set if it may be; the largest clears it.
        self.smin = self.smin.max((t.value | (t.mask & (1 << 63))) as i64);
        self.smax = self.smax.min((t.value | (t.mask & !(1 << 63))) as i64);
        let s = t.subreg();
        self.u32_min = self.u32_min.max(s.min() as u32);
        self.u32_max = self.u32_max.min(s.max() as u32);
        self.s32_min = self.s32_min.max((s.value | (s.mask & 0x8000_0000)) as u32 as i32);
        self.s32_max = self.s32_max.min((s.value | (s.mask & 0x7fff_ffff)) as u32 as i32);
    }

    /// Signed from unsigned and back, 32 bits from 64 and back.
    fn deduce(&mut self) {
        // 32 bits: signed and unsigned agree when the range does not cross the sign boundary.
        if (self.u32_min as i32) <= (self.u32_max as i32) {
            self.s32_min = self.s32_min.max(self.u32_min as i32);
            self.s32_max = self.s32_max.min(self.u32_max as i32);
        }
        if (self.s32_min as u32) <= (self.s32_max as u32) {
            self.u32_min = self.u32_min.max(self.s32_min as u32);
            self.u32_max = self.u32_max.min(self.s32_max as u32);
        }
        // 64 bits likewise.
        if (self.umin as i64) <= (self.umax as i64) {
            self.smin = self.smin.max(self.umin as i64);
            self.smax = self.smax.min(self.umax as i64);
        }
        if (self.smin as u64) <= (self.smax as u64) {
            self.umin = self.umin.max(self.smin as u64);
            self.umax = self.umax.min(self.smax as u64);
        }
        // The low 32 bits of a 64-bit range whose upper halves agree.
        if self.umin >> 32 == self.umax >> 32 {
            self.u32_min = self.u32_min.max(self.umin as u32);
            self.u32_max = self.u32_max.min(self.umax as u32);
            if (self.umin as u32 as i32) <= (self.umax as u32 as i32) {
                self.s32_min = self.s32_min.max(self.umin as u32 as i32);
                self.s32_max = self.s32_max.min(self.umax as u32 as i32);
            }
        }
        if self.smin >> 32 == self.smax >> 32 && (self.smin as i32) <= (self.smax as i32) {
            self.s32_min = self.s32_min.max(self.smin as i32);
            self.s32_max = self.s32_max.min(self.smax as i32);
        }
        // A 64-bit range from a 32-bit one when the upper half is known.
        let hi = Tnum { value: self.var_off.value >> 32, mask: self.var_off.mask >> 32 };
        if hi.is_const() {
            let base = hi.value << 32;
            self.umin = self.umin.max(base | u64::from(self.u32_min));
            self.umax = self.umax.min(base | u64::from(self.u32_max));
            if (base | u64::from(self.u32_min)) as i64 <= (base | u64::from(self.u32_max)) as i64 {
                self.smin = self.smin.max((base | u64::from(self.u32_min)) as i64);
                self.smax = self.smax.min((base | u64::from(self.u32_max)) as i64);
            }
        }
    }

    /// Known bits from the ranges.
    fn var_off_from_bounds(&mut self) {
        if self.umin <= self.umax {
            let r = Tnum::range(self.umin, self.umax);
            if r.value & !self.var_off.mask & !r.mask == self.var_off.value & !r.mask & !self.var_off.mask {
                self.var_off = self.var_off.intersect(r);
            }
        }
        if self.u32_min <= self.u32_max {
            let low = self.var_off.subreg();
            let r = Tnum::range(u64::from(self.u32_min), u64::from(self.u32_max));
            if r.value & !low.mask & !r.mask == low.value & !r.mask & !low.mask {
                self.var_off = self.var_off.with_subreg(low.intersect(r));
            }
        }
    }

    /// The low 32 bits as a zero-extended scalar.
    pub fn subreg(&self) -> Scalar {
        Scalar {
            var_off: self.var_off.subreg(),
            umin: u64::from(self.u32_min),
            umax: u64::from(self.u32_max),
            smin: i64::from(self.u32_min),
            smax: i64::from(self.u32_max),
            s32_min: self.s32_min,
            s32_max: self.s32_max,
            u32_min: self.u32_min,
            u32_max: self.u32_max,
            id: 0,
        }
        .synced()
    }

    /// Truncated to the low `size` bytes, zero-extended (narrow stores and loads, 32-bit ALU
    /// results).
    pub fn truncate(&self, size: u32) -> Scalar {
        if size >= 8 {
            return *self;
        }
        let bits = size * 8;
        let keep = (1u64 << bits) - 1;
        let var_off = self.var_off.cast(size);
        // The range survives when it lies in one 2^bits block.
        let (umin, umax) =
            if self.umin >> bits == self.umax >> bits { (self.umin & keep, self.umax & keep) } else { (0, keep) };
        Scalar { var_off, umin, umax, ..Scalar::UNKNOWN }.synced()
    }

    /// Sign-extended from the low `size` bytes (`movsx`, sign-extending loads).
    pub fn sign_extend(&self, size: u32) -> Scalar {
        if size >= 8 {
            return *self;
        }
        let bits = size * 8;
        let t = self.truncate(size);
        if let Some(v) = t.value() {
            let shift = 64 - bits;
            return Scalar::konst((((v << shift) as i64) >> shift) as u64);
        }
        // Values below the sign bit keep their range; otherwise any value of the width.
        if t.umax < 1u64 << (bits - 1) {
            return t;
        }
        Scalar::of_size_signed(size)
    }

    /// `self OP o` in 64 bits (`bits32`: in 32 bits, the result zero-extended).
    pub fn alu(&self, op: Op, o: &Scalar, bits32: bool) -> Scalar {
        if bits32 {
            let (a, b) = (self.subreg(), o.subreg());
            let r = match op {
                // 32-bit shifts and signed operations need the 32-bit view of the values.
                Op::Arsh => match b.value() {
                    Some(n) if n < 32 => {
                        let sa = a.sign_extend(4);
                        sa.alu(Op::Arsh, &Scalar::konst(n), false)
                    }
                    _ => Scalar::UNKNOWN,
                },
                Op::SDiv | Op::SMod => Scalar::UNKNOWN,
                Op::Lsh | Op::Rsh if b.value().is_none_or(|n| n >= 32) => Scalar::UNKNOWN,
                _ => a.alu(op, &b, false),
            };
            return r.truncate(4);
        }
        let r = match op {
            Op::Add => {
                let var_off = self.var_off.add(o.var_off);
                let (umin, c1) = self.umin.overflowing_add(o.umin);
                let (umax, c2) = self.umax.overflowing_add(o.umax);
                let (smin, o1) = self.smin.overflowing_add(o.smin);
                let (smax, o2) = self.smax.overflowing_add(o.smax);
                let (umin, umax) = if c1 != c2 { (0, u64::MAX) } else { (umin, umax) };
                let (smin, smax) = if o1 || o2 { (i64::MIN, i64::MAX) } else { (smin, smax) };
                Scalar { var_off, umin, umax, smin, smax, ..Scalar::UNKNOWN }
            }
            Op::Sub => {
                let var_off = self.var_off.sub(o.var_off);
                let (umin, umax) =
                    if self.umin < o.umax { (0, u64::MAX) } else { (self.umin - o.umax, self.umax - o.umin) };
                let (smin, o1) = self.smin.overflowing_sub(o.smax);
                let (smax, o2) = self.smax.overflowing_sub(o.smin);
                let (smin, smax) = if o1 || o2 { (i64::MIN, i64::MAX) } else { (smin, smax) };
                Scalar { var_off, umin, umax, smin, smax, ..Scalar::UNKNOWN }
            }
            Op::Mul => {
                let var_off = self.var_off.mul(o.var_off);
                let (umin, umax) = match self.umax.checked_mul(o.umax) {
                    Some(m) => (self.umin * o.umin, m),
                    None => (0, u64::MAX),
                };
                let corners = [
                    self.smin.checked_mul(o.smin),
                    self.smin.checked_mul(o.smax),
                    self.smax.checked_mul(o.smin),
                    self.smax.checked_mul(o.smax),
                ];
                let (smin, smax) = if corners.iter().all(Option::is_some) {
                    let c = corners.map(|c| c.unwrap_or(0));
                    (*c.iter().min().unwrap_or(&i64::MIN), *c.iter().max().unwrap_or(&i64::MAX))
                } else {
                    (i64::MIN, i64::MAX)
                };
                Scalar { var_off, umin, umax, smin, smax, ..Scalar::UNKNOWN }
            }
            Op::And => {
                let var_off = self.var_off.and(o.var_off);
                let umax = self.umax.min(o.umax);
                // With a non-negative operand the result is non-negative and at most it.
                let (smin, smax) = match (self.smin >= 0, o.smin >= 0) {
                    (true, true) => (0, self.smax.min(o.smax)),
                    (true, false) => (0, self.smax),
                    (false, true) => (0, o.smax),
                    (false, false) => (i64::MIN, i64::MAX),
                };
                Scalar { var_off, umin: var_off.min(), umax, smin, smax, ..Scalar::UNKNOWN }
            }
            Op::Or => {
                let var_off = self.var_off.or(o.var_off);
                let umin = self.umin.max(o.umin);
                let (smin, smax) =
                    if self.smin >= 0 && o.smin >= 0 { (umin as i64, i64::MAX) } else { (i64::MIN, i64::MAX) };
                Scalar { var_off, umin, umax: var_off.max(), smin, smax, ..Scalar::UNKNOWN }
            }
            Op::Xor => {
                let var_off = self.var_off.xor(o.var_off);
                let (smin, smax) = if self.smin >= 0 && o.smin >= 0 { (0, i64::MAX) } else { (i64::MIN, i64::MAX) };
                Scalar { var_off, umin: var_off.min(), umax: var_off.max(), smin, smax, ..Scalar::UNKNOWN }
            }
            Op::Lsh => match o.value() {
                Some(n) if n < 64 => {
                    let n = n as u32;
                    let var_off = self.var_off.lshift(n);
                    let (umin, umax) =
                        if self.umax.leading_zeros() >= n { (self.umin << n, self.umax << n) } else { (0, u64::MAX) };
                    Scalar { var_off, umin, umax, ..Scalar::UNKNOWN }
                }
                _ => Scalar::UNKNOWN,
            },
            Op::Rsh => match o.value() {
                Some(n) if n < 64 => {
                    let n = n as u32;
                    Scalar {
                        var_off: self.var_off.rshift(n),
                        umin: self.umin >> n,
                        umax: self.umax >> n,
                        ..Scalar::UNKNOWN
                    }
                }
                _ => Scalar::UNKNOWN,
            },
            Op::Arsh => match o.value() {
                Some(n) if n < 64 => {
                    let n = n as u32;
                    Scalar {
                        var_off: self.var_off.arshift(n, 64),
                        smin: self.smin >> n,
                        smax: self.smax >> n,
                        ..Scalar::UNKNOWN
                    }
                }
                _ => Scalar::UNKNOWN,
            },
            Op::Div | Op::Mod | Op::SDiv | Op::SMod => match (self.value(), o.value()) {
                (Some(a), Some(b)) => Scalar::konst(crate::scalar::concrete(op, a, b, false)),
                // Unsigned division and modulo by a known non-zero value stay bounded.
                (_, Some(b)) if op == Op::Div && b != 0 => Scalar::up_to(self.umax / b),
                (_, Some(b)) if op == Op::Mod && b != 0 => Scalar::up_to((b - 1).min(self.umax)),
                _ => Scalar::UNKNOWN,
            },
        };
        r.synced()
    }

    /// What a conditional jump `self CMP o` tells about both operands on the path where it is
    /// `taken`: the refined pair, or `None` when that path cannot happen.
    pub fn refine(&self, cmp: Cmp, o: &Scalar, bits32: bool, taken: bool) -> Option<(Scalar, Scalar)> {
        let (mut a, mut b) = (*self, *o);
        let cmp = if taken { cmp } else { cmp.negate() };
        if cmp == Cmp::Set {
            // `jset` taken: some bit of both is set; not taken: no common bit.
            let (x, y) = if bits32 { (a.var_off.subreg(), b.var_off.subreg()) } else { (a.var_off, b.var_off) };
            if taken {
                if x.and(y).max() == 0 {
                    return None;
                }
            } else {
                if x.and(y).min() != 0 {
                    return None;
                }
                if let Some(m) = y.is_const().then_some(y.value) {
                    a.var_off = Tnum { value: a.var_off.value & !m, mask: a.var_off.mask & !m };
                    a.sync();
                }
            }
            return a.is_consistent().then_some((a, b));
        }
        if bits32 {
            refine_ranges32(&mut a, &mut b, cmp);
        } else {
            refine_ranges64(&mut a, &mut b, cmp);
        }
        if !a.is_consistent() || !b.is_consistent() {
            return None;
        }
        a.sync();
        b.sync();
        (a.is_consistent() && b.is_consistent()).then_some((a, b))
    }

    /// Whether `self CMP o` is always (`Some(true)`) or never (`Some(false)`) true.
    pub fn branch_taken(&self, cmp: Cmp, o: &Scalar, bits32: bool) -> Option<bool> {
        match (self.refine(cmp, o, bits32, true), self.refine(cmp, o, bits32, false)) {
            (Some(_), None) => Some(true),
            (None, Some(_)) => Some(false),
            _ => None,
        }
    }
}

/// Narrows both 64-bit operands so that `a CMP b` holds.
fn refine_ranges64(a: &mut Scalar, b: &mut Scalar, cmp: Cmp) {
    match cmp {
        Cmp::Eq => {
            let (umin, umax) = (a.umin.max(b.umin), a.umax.min(b.umax));
            let (smin, smax) = (a.smin.max(b.smin), a.smax.min(b.smax));
            // Bits known in both, and different: never equal.
            if (a.var_off.value ^ b.var_off.value) & !a.var_off.mask & !b.var_off.mask != 0 {
                a.umin = 1;
                a.umax = 0;
                return;
            }
            let var_off = a.var_off.intersect(b.var_off);
            for r in [&mut *a, &mut *b] {
                r.umin = umin;
                r.umax = umax;
                r.smin = smin;
                r.smax = smax;
                r.var_off = var_off;
            }
            let (u32_min, u32_max) = (a.u32_min.max(b.u32_min), a.u32_max.min(b.u32_max));
            let (s32_min, s32_max) = (a.s32_min.max(b.s32_min), a.s32_max.min(b.s32_max));
            for r in [a, b] {
                r.u32_min = u32_min;
                r.u32_max = u32_max;
                r.s32_min = s32_min;
                r.s32_max = s32_max;
            }
        }
        Cmp::Ne => {
            // Only a constant side can cut an end off the other's range.
            if let Some(v) = b.value() {
                if a.value() == Some(v) {
                    a.umin = 1;
                    a.umax = 0;
                    return;
                }
                if a.umin == v {
                    a.umin += 1;
                }
                if a.umax == v {
                    a.umax -= 1;
                }
                if a.smin == v as i64 {
                    a.smin += 1;
                }
                if a.smax == v as i64 {
                    a.smax -= 1;
                }
            }
            if let Some(v) = a.value() {
                if b.umin == v {
                    b.umin += 1;
                }
                if b.umax == v {
                    b.umax -= 1;
                }
                if b.smin == v as i64 {
                    b.smin += 1;
                }
                if b.smax == v as i64 {
                    b.smax -= 1;
                }
            }
        }
        Cmp::Gt | Cmp::Ge => {
            let strict = u64::from(cmp == Cmp::Gt);
            // a >= b + strict
            match b.umin.checked_add(strict) {
                Some(m) => a.umin = a.umin.max(m),
                None => {
                    a.umin = 1;
                    a.umax = 0;
                    return;
                }
            }
            match a.umax.checked_sub(strict) {
                Some(m) => b.umax = b.umax.min(m),
                None => {
                    b.umin = 1;
                    b.umax = 0;
                }
            }
        }
        Cmp::Lt | Cmp::Le => refine_ranges64(b, a, cmp.swap()),
        Cmp::Sgt | Cmp::Sge => {
            let strict = i64::from(cmp == Cmp::Sgt);
            match b.smin.checked_add(strict) {
                Some(m) => a.smin = a.smin.max(m),
                None => {
                    a.smin = 1;
                    a.smax = 0;
                    return;
                }
            }
            match a.smax.checked_sub(strict) {
                Some(m) => b.smax = b.smax.min(m),
                None => {
                    b.smin = 1;
                    b.smax = 0;
                }
            }
        }
        Cmp::Slt | Cmp::Sle => refine_ranges64(b, a, cmp.swap()),
        Cmp::Set => {}
    }
}

/// Narrows the 32-bit views of both operands so that `(u32)a CMP (u32)b` holds.
fn refine_ranges32(a: &mut Scalar, b: &mut Scalar, cmp: Cmp) {
    let (mut x, mut y) = (a.subreg(), b.subreg());
    // Signed 32-bit comparisons compare the sign-extended values.
    let signed = matches!(cmp, Cmp::Sgt | Cmp::Sge | Cmp::Slt | Cmp::Sle);
    if signed {
        x = Scalar::signed(i64::from(a.s32_min), i64::from(a.s32_max));
        y = Scalar::signed(i64::from(b.s32_min), i64::from(b.s32_max));
        if let Some(v) = a.var_off.subreg().is_const().then_some(a.var_off.value as u32 as i32) {
            x = Scalar::konst(v as i64 as u64);
        }
        if let Some(v) = b.var_off.subreg().is_const().then_some(b.var_off.value as u32 as i32) {
            y = Scalar::konst(v as i64 as u64);
        }
    }
    refine_ranges64(&mut x, &mut y, cmp);
    for (r, n) in [(a, x), (b, y)] {
        if signed {
            r.s32_min = r.s32_min.max(n.smin.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32);
            r.s32_max = r.s32_max.min(n.smax.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32);
            if n.smin > n.smax {
                r.s32_min = 1;
                r.s32_max = 0;
            }
        } else {
            if n.umin > n.umax || n.umin > u64::from(u32::MAX) {
                r.u32_min = 1;
                r.u32_max = 0;
                continue;
            }
            r.u32_min = r.u32_min.max(n.umin as u32);
            r.u32_max = r.u32_max.min(n.umax.min(u64::from(u32::MAX)) as u32);
            if cmp == Cmp::Eq {
                let low = r.var_off.subreg().intersect(n.var_off.subreg());
                r.var_off = r.var_off.with_subreg(low);
            }
        }
    }
}

/// The concrete result of `a OP b` with BPF's rules (division by zero gives 0, modulo by zero
/// leaves `a`), in 64 bits or in 32 (zero-extended).
pub fn concrete(op: Op, a: u64, b: u64, bits32: bool) -> u64 {
    if bits32 {
        let (a, b) = (a as u32, b as u32);
        let r = match op {
            Op::Add => a.wrapping_add(b),
            Op::Sub => a.wrapping_sub(b),
            Op::Mul => a.wrapping_mul(b),
            Op::Div => a.checked_div(b).unwrap_or(0),
            Op::Mod => a.checked_rem(b).unwrap_or(a),
            Op::SDiv => {
                if b == 0 {
                    0
                } else {
                    (a as i32).wrapping_div(b as i32) as u32
                }
            }
            Op::SMod => {
                if b == 0 {
                    a
                } else {
                    (a as i32).wrapping_rem(b as i32) as u32
                }
            }
            Op::Or => a | b,
            Op::And => a & b,
            Op::Xor => a ^ b,
            Op::Lsh => a.wrapping_shl(b),
            Op::Rsh => a.wrapping_shr(b),
            Op::Arsh => (a as i32).wrapping_shr(b) as u32,
        };
        return u64::from(r);
    }
    match op {
        Op::Add => a.wrapping_add(b),
        Op::Sub => a.wrapping_sub(b),
        Op::Mul => a.wrapping_mul(b),
        Op::Div => a.checked_div(b).unwrap_or(0),
        Op::Mod => a.checked_rem(b).unwrap_or(a),
        Op::SDiv => {
            if b == 0 {
                0
            } else {
                (a as i64).wrapping_div(b as i64) as u64
            }
        }
        Op::SMod => {
            if b == 0 {
                a
            } else {
                (a as i64).wrapping_rem(b as i64) as u64
            }
        }
        Op::Or => a | b,
        Op::And => a & b,
        Op::Xor => a ^ b,
        Op::Lsh => a.wrapping_shl(b as u32),
        Op::Rsh => a.wrapping_shr(b as u32),
        Op::Arsh => (a as i64).wrapping_shr(b as u32) as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        /// A value biased towards the interesting ones.
        fn value(&mut self) -> u64 {
            match self.next() % 8 {
                0 => self.next() % 16,
                1 => (self.next() % 16).wrapping_neg(),
                2 => 0x7fff_ffff_ffff_fff0 + self.next() % 32,
                3 => 0xffff_fff0 + self.next() % 32,
                4 => 0x7fff_fff0 + self.next() % 32,
                5 => self.next() % 300,
                _ => self.next(),
            }
        }
        /// An abstract scalar and a few of its members.
        fn scalar(&mut self) -> (Scalar, Vec<u64>) {
            let a = self.value();
            match self.next() % 5 {
                0 => (Scalar::konst(a), vec![a]),
                1 => {
                    let b = a.saturating_add(self.next() % 64);
                    let (lo, hi) = (a.min(b), a.max(b));
                    let s = Scalar { umin: lo, umax: hi, ..Scalar::UNKNOWN }.synced();
                    (s, vec![lo, hi, lo + (hi - lo) / 2])
                }
                2 => {
                    let b = (a as i64).saturating_add((self.next() % 64) as i64);
                    let (lo, hi) = ((a as i64).min(b), (a as i64).max(b));
                    let s = Scalar::signed(lo, hi);
                    let mid = ((i128::from(lo) + i128::from(hi)) / 2) as i64;
                    (s, vec![lo as u64, hi as u64, mid as u64])
                }
                3 => {
                    let mask = self.next() & self.next() & self.next();
                    let s = Scalar { var_off: Tnum { value: a & !mask, mask }, ..Scalar::UNKNOWN }.synced();
                    (s, vec![a & !mask, a | mask, a])
                }
                _ => {
                    let x = self.next();
                    (Scalar::UNKNOWN, vec![a, x, 0, u64::MAX])
                }
            }
        }
    }

    #[test]
    fn members_stay_members() {
        let mut r = Rng(0x1234_5678_9abc_def1);
        for _ in 0..3000 {
            let (s, vals) = r.scalar();
            assert!(s.is_consistent(), "{s:?}");
            for v in &vals {
                assert!(s.has(*v), "{v:#x} lost by sync: {s:?}");
            }
        }
    }

    #[test]
    fn alu_results_contain_concrete_results() {
        let ops = [
            Op::Add,
            Op::Sub,
            Op::Mul,
            Op::Div,
            Op::Mod,
            Op::SDiv,
            Op::SMod,
            Op::Or,
            Op::And,
            Op::Xor,
            Op::Lsh,
            Op::Rsh,
            Op::Arsh,
        ];
        let mut r = Rng(0xfeed_beef_1234_5678);
        for i in 0..20000 {
            let (a, av) = r.scalar();
            let (mut b, mut bv) = r.scalar();
            let op = ops[i % ops.len()];
            let bits32 = i % 3 == 0;
            if matches!(op, Op::Lsh | Op::Rsh | Op::Arsh) {
                let n = r.next() % if bits32 { 32 } else { 64 };
                b = Scalar::konst(n);
                bv = vec![n];
            }
            let res = a.alu(op, &b, bits32);
            for x in &av {
                for y in &bv {
                    let c = concrete(op, *x, *y, bits32);
                    assert!(
                        res.has(c),
                        "{op:?} bits32={bits32}: {x:#x} {y:#x} = {c:#x} not in {res:?} (a {a:?}, b {b:?})"
                    );
                }
            }
        }
    }

    #[test]
    fn refinements_keep_the_pairs_that_take_the_path() {
        let cmps =
            [Cmp::Eq, Cmp::Ne, Cmp::Gt, Cmp::Ge, Cmp::Lt, Cmp::Le, Cmp::Sgt, Cmp::Sge, Cmp::Slt, Cmp::Sle, Cmp::Set];
        let mut r = Rng(0x0bad_cafe_dead_beef);
        for i in 0..20000 {
            let (a, av) = r.scalar();
            let (b, bv) = if i % 2 == 0 {
                r.scalar()
            } else {
                let v = r.value();
                (Scalar::konst(v), vec![v])
            };
            let cmp = cmps[i % cmps.len()];
            let bits32 = i % 5 == 0;
            for taken in [true, false] {
                let refined = a.refine(cmp, &b, bits32, taken);
                for x in &av {
                    for y in &bv {
                        if cmp.eval(*x, *y, bits32) != taken {
                            continue;
                        }
                        let Some((ra, rb)) = refined else {
                            panic!(
                                "{cmp:?} taken={taken} bits32={bits32}: ({x:#x}, {y:#x}) takes it, refine says impossible; a {a:?} b {b:?}"
                            );
                        };
                        assert!(
                            ra.has(*x) && rb.has(*y),
                            "{cmp:?} taken={taken} bits32={bits32}: ({x:#x}, {y:#x}) lost: {ra:?} {rb:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn refinement_narrows() {
        let x = Scalar::up_to(100);
        let (a, _) = x.refine(Cmp::Gt, &Scalar::konst(10), false, false).unwrap();
        assert_eq!((a.umin, a.umax), (0, 10));
        let (a, _) = x.refine(Cmp::Gt, &Scalar::konst(10), false, true).unwrap();
        assert_eq!((a.umin, a.umax), (11, 100));
        assert_eq!(x.branch_taken(Cmp::Gt, &Scalar::konst(200), false), Some(false));
        assert_eq!(x.branch_taken(Cmp::Le, &Scalar::konst(100), false), Some(true));
        let (a, _) = Scalar::UNKNOWN.refine(Cmp::Eq, &Scalar::konst(7), false, true).unwrap();
        assert_eq!(a.value(), Some(7));
        let s = Scalar::UNKNOWN.alu(Op::And, &Scalar::konst(0xff), false);
        assert_eq!((s.umin, s.umax, s.smin, s.smax), (0, 0xff, 0, 0xff));
        let s = Scalar::up_to(0xff).alu(Op::Lsh, &Scalar::konst(3), false);
        assert_eq!((s.umin, s.umax), (0, 0x7f8));
        assert!(s.var_off.is_aligned(8));
    }
}
