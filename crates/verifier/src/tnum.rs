//! Tristate numbers: what the verifier knows of each bit of a 64-bit value.
//!
//! A [`Tnum`] is a pair `(value, mask)`: bits set in `mask` are unknown, the others are known
//! and equal to the bits of `value` (which is 0 wherever `mask` is 1). The set of numbers a
//! tnum stands for is `{ x | x & !mask == value }`. Every operation here over-approximates:
//! the result contains every outcome of the operation on members of the operands. This is the
//! abstract domain the kernel's verifier uses (`kernel/bpf/tnum.c`, after "Tristate numbers"
//! by Edward Cree); the algorithms below are written from that description.

/// A partially known 64-bit value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Tnum {
    pub value: u64,
    pub mask: u64,
}

#[allow(clippy::should_implement_trait)] // named as the kernel's tnum_add, tnum_sub, ...
impl Tnum {
    /// Nothing known.
    pub const UNKNOWN: Tnum = Tnum { value: 0, mask: u64::MAX };

    /// Exactly `v`.
    pub const fn konst(v: u64) -> Tnum {
        Tnum { value: v, mask: 0 }
    }

    /// The smallest tnum holding every number of `[min, max]`.
    pub fn range(min: u64, max: u64) -> Tnum {
        let chi = min ^ max;
        let bits = 64 - chi.leading_zeros();
        if bits > 63 {
            return Tnum::UNKNOWN;
        }
        let delta = (1u64 << bits) - 1;
        Tnum { value: min & !delta, mask: delta }
    }

    pub fn is_const(self) -> bool {
        self.mask == 0
    }

    /// The smallest member.
    pub fn min(self) -> u64 {
        self.value
    }

    /// The largest member.
    pub fn max(self) -> u64 {
        self.value | self.mask
    }

    /// Whether every member of `other` is a member of `self`.
    pub fn contains(self, other: Tnum) -> bool {
        if other.mask & !self.mask != 0 {
            return false;
        }
        (other.value & !self.mask) == self.value
    }

    /// Whether `v` is a member.
    pub fn has(self, v: u64) -> bool {
        v & !self.mask == self.value
    }

    pub fn lshift(self, n: u32) -> Tnum {
        Tnum { value: self.value.wrapping_shl(n), mask: self.mask.wrapping_shl(n) }
    }

    pub fn rshift(self, n: u32) -> Tnum {
        Tnum { value: self.value.wrapping_shr(n), mask: self.mask.wrapping_shr(n) }
    }

    /// Arithmetic right shift of the low `bits` (32 or 64) bits.
    pub fn arshift(self, n: u32, bits: u32) -> Tnum {
        if bits == 32 {
            Tnum { value: ((self.value as i32) >> n) as u32 as u64, mask: ((self.mask as i32) >> n) as u32 as u64 }
        } else {
            Tnum { value: ((self.value as i64) >> n) as u64, mask: ((self.mask as i64) >> n) as u64 }
        }
    }

    pub fn add(self, o: Tnum) -> Tnum {
        let sm = self.mask.wrapping_add(o.mask);
        let sv = self.value.wrapping_add(o.value);
        let sigma = sm.wrapping_add(sv);
        let chi = sigma ^ sv;
        let mu = chi | self.mask | o.mask;
        Tnum { value: sv & !mu, mask: mu }
    }

    pub fn sub(self, o: Tnum) -> Tnum {
        let dv = self.value.wrapping_sub(o.value);
        let alpha = dv.wrapping_add(self.mask);
        let beta = dv.wrapping_sub(o.mask);
        let chi = alpha ^ beta;
        let mu = chi | self.mask | o.mask;
        Tnum { value: dv & !mu, mask: mu }
    }

    pub fn neg(self) -> Tnum {
        Tnum::konst(0).sub(self)
    }

    pub fn and(self, o: Tnum) -> Tnum {
        let alpha = self.value | self.mask;
        let beta = o.value | o.mask;
        let v = self.value & o.value;
        Tnum { value: v, mask: alpha & beta & !v }
    }

    pub fn or(self, o: Tnum) -> Tnum {
        let v = self.value | o.value;
        let mu = self.mask | o.mask;
        Tnum { value: v, mask: mu & !v }
    }

    pub fn xor(self, o: Tnum) -> Tnum {
        let v = self.value ^ o.value;
        let mu = self.mask | o.mask;
        Tnum { value: v & !mu, mask: mu }
    }

    /// Multiplication by long multiplication over the known and unknown bits of `self`.
    pub fn mul(self, o: Tnum) -> Tnum {
        let mut a = self;
        let mut b = o;
        let acc_v = a.value.wrapping_mul(b.value);
        let mut acc_m = Tnum::konst(0);
        while a.value != 0 || a.mask != 0 {
            if a.value & 1 != 0 {
                acc_m = acc_m.add(Tnum { value: 0, mask: b.mask });
            } else if a.mask & 1 != 0 {
                acc_m = acc_m.add(Tnum { value: 0, mask: b.value | b.mask });
            }
            a = a.rshift(1);
            b = b.lshift(1);
        }
        Tnum::konst(acc_v).add(acc_m)
    }

    /// The members of both (caller knows they share one).
    pub fn intersect(self, o: Tnum) -> Tnum {
        let v = self.value | o.value;
        let mu = self.mask & o.mask;
        Tnum { value: v & !mu, mask: mu }
    }

    /// The smallest tnum holding the members of both.
    pub fn union(self, o: Tnum) -> Tnum {
        let mu = self.mask | o.mask | (self.value ^ o.value);
        Tnum { value: self.value & !mu, mask: mu }
    }

    /// The low 32 bits, zero-extended.
    pub fn subreg(self) -> Tnum {
        self.cast(4)
    }

    /// Truncated to `size` bytes, zero-extended.
    pub fn cast(self, size: u32) -> Tnum {
        if size >= 8 {
            return self;
        }
        let keep = (1u64 << (size * 8)) - 1;
        Tnum { value: self.value & keep, mask: self.mask & keep }
    }

    /// The high 32 bits kept, the low 32 set to those of `low` (zero-extended 32-bit tnum).
    pub fn with_subreg(self, low: Tnum) -> Tnum {
        let hi = Tnum { value: self.value & !0xffff_ffff, mask: self.mask & !0xffff_ffff };
        hi.or(low.subreg())
    }

    /// Known to be a multiple of `size` (a power of two).
    pub fn is_aligned(self, size: u64) -> bool {
        if size == 0 {
            return true;
        }
        (self.value | self.mask) & (size - 1) == 0
    }
}

impl std::fmt::Display for Tnum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "({:#x}; {:#x})", self.value, self.mask)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Small members of a tnum (enumerated over its unknown bits, capped).
    fn members(t: Tnum) -> Vec<u64> {
        let bits: Vec<u32> = (0..64).filter(|b| t.mask >> b & 1 == 1).collect();
        let n = bits.len().min(6);
        (0..1u64 << n)
            .map(|k| {
                let mut v = t.value;
                for (i, b) in bits.iter().take(n).enumerate() {
                    if k >> i & 1 == 1 {
                        v |= 1 << b;
                    }
                }
                v
            })
            .collect()
    }

    fn samples() -> Vec<Tnum> {
        let mut out =
            vec![Tnum::konst(0), Tnum::konst(5), Tnum::konst(u64::MAX), Tnum::range(0, 7), Tnum::range(8, 15)];
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..40 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let mask = x & 0x0000_0000_0f0f_0031 & (x >> 20);
            out.push(Tnum { value: (x >> 3) & !mask, mask });
        }
        out
    }

    #[test]
    fn operations_contain_every_outcome() {
        type Op = (&'static str, fn(Tnum, Tnum) -> Tnum, fn(u64, u64) -> u64);
        let ops: [Op; 6] = [
            ("add", Tnum::add, u64::wrapping_add),
            ("sub", Tnum::sub, u64::wrapping_sub),
            ("mul", Tnum::mul, u64::wrapping_mul),
            ("and", Tnum::and, |a, b| a & b),
            ("or", Tnum::or, |a, b| a | b),
            ("xor", Tnum::xor, |a, b| a ^ b),
        ];
        let s = samples();
        for (name, f, g) in ops {
            for a in &s {
                for b in &s {
                    let r = f(*a, *b);
                    for x in members(*a) {
                        for y in members(*b) {
                            assert!(r.has(g(x, y)), "{name}: {a} {b}: {x:#x} {y:#x} -> {:#x} not in {r}", g(x, y));
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn ranges_shifts_and_casts() {
        assert_eq!(Tnum::range(0, 7), Tnum { value: 0, mask: 7 });
        assert_eq!(Tnum::range(5, 5), Tnum::konst(5));
        assert_eq!(Tnum::range(0, u64::MAX), Tnum::UNKNOWN);
        let t = Tnum::range(16, 31);
        assert!(t.has(16) && t.has(31) && !t.has(32));
        assert_eq!(Tnum::konst(0x1_0000_0003).subreg(), Tnum::konst(3));
        assert_eq!(Tnum::konst(0x8000_0000).arshift(31, 32), Tnum::konst(0xffff_ffff));
        assert!(Tnum::konst(24).is_aligned(8) && !Tnum::konst(25).is_aligned(8));
        assert!(Tnum::UNKNOWN.contains(Tnum::konst(3)) && !Tnum::konst(3).contains(Tnum::UNKNOWN));
        assert_eq!(Tnum::konst(0xffff_ffff_0000_0000).with_subreg(Tnum::konst(7)), Tnum::konst(0xffff_ffff_0000_0007));
    }
}
