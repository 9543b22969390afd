//! A small x86-64 encoder: exactly the instruction forms the lowering uses, each written from
//! the Intel SDM's encoding tables (REX prefix, ModRM, SIB, displacement, immediate).

/// General-purpose registers by hardware number.
pub mod reg {
    pub const RAX: u8 = 0;
    pub const RCX: u8 = 1;
    pub const RDX: u8 = 2;
    pub const RBX: u8 = 3;
    pub const RSP: u8 = 4;
    pub const RBP: u8 = 5;
    pub const RSI: u8 = 6;
    pub const RDI: u8 = 7;
    pub const R8: u8 = 8;
    pub const R9: u8 = 9;
    pub const R10: u8 = 10;
    pub const R11: u8 = 11;
    pub const R12: u8 = 12;
    pub const R13: u8 = 13;
    pub const R14: u8 = 14;
    pub const R15: u8 = 15;
}

/// Condition codes (the low nibble of `Jcc`).
pub mod cc {
    pub const B: u8 = 0x2;
    pub const AE: u8 = 0x3;
    pub const E: u8 = 0x4;
    pub const NE: u8 = 0x5;
    pub const BE: u8 = 0x6;
    pub const A: u8 = 0x7;
    pub const L: u8 = 0xC;
    pub const GE: u8 = 0xD;
    pub const LE: u8 = 0xE;
    pub const G: u8 = 0xF;
}

/// `/digit` extensions of the group-1 ALU opcodes (`81`/`83`).
pub mod alu {
    pub const ADD: u8 = 0;
    pub const OR: u8 = 1;
    pub const AND: u8 = 4;
    pub const SUB: u8 = 5;
    pub const XOR: u8 = 6;
    pub const CMP: u8 = 7;
}

/// `/digit` extensions of the shift group (`C1`/`D3`).
pub mod shift {
    pub const ROR: u8 = 1;
    pub const SHL: u8 = 4;
    pub const SHR: u8 = 5;
    pub const SAR: u8 = 7;
}

fn fits_i8(v: i64) -> bool {
    i8::try_from(v).is_ok()
}

/// Machine code being written.
#[derive(Default)]
pub struct Asm {
    pub buf: Vec<u8>,
}

impl Asm {
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn bytes(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }

    fn b(&mut self, b: u8) {
        self.buf.push(b);
    }

    fn imm32(&mut self, v: i32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// REX with W/R/X/B; emitted when any bit is set or `force` (byte registers 4..7).
    fn rex(&mut self, w: bool, r: u8, b: u8, force: bool) {
        let v = 0x40 | (u8::from(w) << 3) | (((r >> 3) & 1) << 2) | ((b >> 3) & 1);
        if v != 0x40 || force {
            self.b(v);
        }
    }

    fn modrm_rr(&mut self, r: u8, rm: u8) {
        self.b(0xC0 | ((r & 7) << 3) | (rm & 7));
    }

    fn modrm_mem(&mut self, r: u8, base: u8, disp: i32) {
        let (md, len) = if disp == 0 && base & 7 != reg::RBP {
            (0, 0)
        } else if fits_i8(disp.into()) {
            (1, 1)
        } else {
            (2, 4)
        };
        self.b((md << 6) | ((r & 7) << 3) | (base & 7));
        if base & 7 == reg::RSP {
            self.b(0x24);
        }
        match len {
            1 => self.b(disp as i8 as u8),
            4 => self.imm32(disp),
            _ => {}
        }
    }

    /// `op r/m(rm), reg(r)` in register form; `bytes` forces REX when a byte operand is 4..7.
    fn op_rr(&mut self, p16: bool, w: bool, op: &[u8], r: u8, rm: u8, bytes: bool) {
        if p16 {
            self.b(0x66);
        }
        let force = bytes && ((4..8).contains(&r) || (4..8).contains(&rm));
        self.rex(w, r, rm, force);
        self.bytes(op);
        self.modrm_rr(r, rm);
    }

    /// `op` with a memory operand `[base + disp]` and register field `r`.
    #[allow(clippy::too_many_arguments)]
    fn op_rm(&mut self, p16: bool, w: bool, op: &[u8], r: u8, base: u8, disp: i32, byte_reg: bool) {
        if p16 {
            self.b(0x66);
        }
        self.rex(w, r, base, byte_reg && (4..8).contains(&r));
        self.bytes(op);
        self.modrm_mem(r, base, disp);
    }

    // ---- moves ----

    /// `mov dst, src` (64-bit) or `mov dst32, src32` (zero-extends).
    pub fn mov_rr(&mut self, w: bool, dst: u8, src: u8) {
        self.op_rr(false, w, &[0x89], src, dst, false);
    }

    /// `dst = imm` as 64 bits, with the shortest encoding.
    pub fn mov_imm64(&mut self, dst: u8, imm: u64) {
        if imm == 0 {
            self.alu_rr(false, 0x31, dst, dst);
        } else if imm <= u64::from(u32::MAX) {
            self.mov_imm32(dst, imm as u32);
        } else if let Ok(v) = i32::try_from(imm as i64) {
            self.op_rr(false, true, &[0xC7], 0, dst, false);
            self.imm32(v);
        } else {
            self.rex(true, 0, dst, false);
            self.b(0xB8 + (dst & 7));
            self.bytes(&imm.to_le_bytes());
        }
    }

    /// `mov dst32, imm` (zero-extends to 64 bits).
    pub fn mov_imm32(&mut self, dst: u8, imm: u32) {
        self.rex(false, 0, dst, false);
        self.b(0xB8 + (dst & 7));
        self.imm32(imm as i32);
    }

    /// Zero-extending load of `size` bytes (1, 2, 4, 8) from `[base + disp]`.
    pub fn load(&mut self, size: u8, dst: u8, base: u8, disp: i32) {
        match size {
            1 => self.op_rm(false, false, &[0x0F, 0xB6], dst, base, disp, false),
            2 => self.op_rm(false, false, &[0x0F, 0xB7], dst, base, disp, false),
            4 => self.op_rm(false, false, &[0x8B], dst, base, disp, false),
            _ => self.op_rm(false, true, &[0x8B], dst, base, disp, false),
        }
    }

    /// Sign-extending load of `size` bytes (1, 2, 4) to 64 bits.
    pub fn load_sx(&mut self, size: u8, dst: u8, base: u8, disp: i32) {
        match size {
            1 => self.op_rm(false, true, &[0x0F, 0xBE], dst, base, disp, false),
            2 => self.op_rm(false, true, &[0x0F, 0xBF], dst, base, disp, false),
            4 => self.op_rm(false, true, &[0x63], dst, base, disp, false),
            _ => self.op_rm(false, true, &[0x8B], dst, base, disp, false),
        }
    }

    /// Store of the low `size` bytes of `src` to `[base + disp]`.
    pub fn store(&mut self, size: u8, base: u8, disp: i32, src: u8) {
        match size {
            1 => self.op_rm(false, false, &[0x88], src, base, disp, true),
            2 => self.op_rm(true, false, &[0x89], src, base, disp, false),
            4 => self.op_rm(false, false, &[0x89], src, base, disp, false),
            _ => self.op_rm(false, true, &[0x89], src, base, disp, false),
        }
    }

    /// Store of an immediate (sign-extended to 8 bytes for `size` 8).
    pub fn store_imm(&mut self, size: u8, base: u8, disp: i32, imm: i32) {
        match size {
            1 => {
                self.op_rm(false, false, &[0xC6], 0, base, disp, false);
                self.b(imm as u8);
            }
            2 => {
                self.op_rm(true, false, &[0xC7], 0, base, disp, false);
                self.bytes(&(imm as u16).to_le_bytes());
            }
            4 => {
                self.op_rm(false, false, &[0xC7], 0, base, disp, false);
                self.imm32(imm);
            }
            _ => {
                self.op_rm(false, true, &[0xC7], 0, base, disp, false);
                self.imm32(imm);
            }
        }
    }

    /// `lea dst, [base + disp]`.
    pub fn lea(&mut self, dst: u8, base: u8, disp: i32) {
        self.op_rm(false, true, &[0x8D], dst, base, disp, false);
    }

    /// `lea dst, [base + index * scale]` (`w`: 64-bit result, else 32-bit zero-extended).
    pub fn lea_sib(&mut self, w: bool, dst: u8, base: u8, index: u8, scale: u8) {
        let ss = match scale {
            1 => 0,
            2 => 1,
            4 => 2,
            _ => 3,
        };
        let v = 0x40 | (u8::from(w) << 3) | (((dst >> 3) & 1) << 2) | (((index >> 3) & 1) << 1) | ((base >> 3) & 1);
        if v != 0x40 {
            self.b(v);
        }
        self.b(0x8D);
        // rbp/r13 as a base need a displacement: mod 01 with disp8 0.
        let disp = base & 7 == reg::RBP;
        self.b(if disp { 0x44 } else { 0x04 } | ((dst & 7) << 3));
        self.b((ss << 6) | ((index & 7) << 3) | (base & 7));
        if disp {
            self.b(0);
        }
    }

    /// `lea dst, [rip + rel]`; returns the position of `rel` (relative to the next instruction).
    pub fn lea_rip(&mut self, dst: u8) -> usize {
        self.rex(true, dst, 0, false);
        self.b(0x8D);
        self.b(((dst & 7) << 3) | 0x05);
        let at = self.len();
        self.imm32(0);
        at
    }

    /// `movsx dst, src` from `bits` (8, 16, 32) into 64 (`w`) or 32 bits.
    pub fn movsx_rr(&mut self, w: bool, dst: u8, src: u8, bits: u8) {
        match bits {
            8 => self.op_rr(false, w, &[0x0F, 0xBE], dst, src, true),
            16 => self.op_rr(false, w, &[0x0F, 0xBF], dst, src, false),
            _ => self.op_rr(false, true, &[0x63], dst, src, false),
        }
    }

    /// `movzx dst32, src` from 8 or 16 bits.
    pub fn movzx_rr(&mut self, dst: u8, src: u8, bits: u8) {
        let op: &[u8] = if bits == 8 { &[0x0F, 0xB6] } else { &[0x0F, 0xB7] };
        self.op_rr(false, false, op, dst, src, bits == 8);
    }

    // ---- arithmetic ----

    /// `op dst, src` for the two-operand ALU opcodes (`01` add, `09` or, `21` and, `29` sub,
    /// `31` xor, `39` cmp, `85` test).
    pub fn alu_rr(&mut self, w: bool, op: u8, dst: u8, src: u8) {
        self.op_rr(false, w, &[op], src, dst, false);
    }

    /// `op dst, imm` (group 1, `alu::*`).
    pub fn alu_ri(&mut self, w: bool, ext: u8, dst: u8, imm: i32) {
        if fits_i8(imm.into()) {
            self.op_rr(false, w, &[0x83], ext, dst, false);
            self.b(imm as i8 as u8);
        } else if dst == reg::RAX {
            self.rex(w, 0, 0, false);
            self.b((ext << 3) | 0x05);
            self.imm32(imm);
        } else {
            self.op_rr(false, w, &[0x81], ext, dst, false);
            self.imm32(imm);
        }
    }

    /// `op qword [base + disp], imm8` (group 1 on memory).
    pub fn alu_mi8(&mut self, ext: u8, base: u8, disp: i32, imm: i8) {
        self.op_rm(false, true, &[0x83], ext, base, disp, false);
        self.b(imm as u8);
    }

    /// `cmp reg, qword [base + disp]`.
    pub fn cmp_rm(&mut self, r: u8, base: u8, disp: i32) {
        self.op_rm(false, true, &[0x3B], r, base, disp, false);
    }

    /// `test dst, imm32`.
    pub fn test_ri(&mut self, w: bool, dst: u8, imm: i32) {
        self.op_rr(false, w, &[0xF7], 0, dst, false);
        self.imm32(imm);
    }

    /// `imul dst, src`.
    pub fn imul_rr(&mut self, w: bool, dst: u8, src: u8) {
        self.op_rr(false, w, &[0x0F, 0xAF], dst, src, false);
    }

    /// `imul dst, src, imm`.
    pub fn imul_rri(&mut self, w: bool, dst: u8, src: u8, imm: i32) {
        if fits_i8(imm.into()) {
            self.op_rr(false, w, &[0x6B], dst, src, false);
            self.b(imm as i8 as u8);
        } else {
            self.op_rr(false, w, &[0x69], dst, src, false);
            self.imm32(imm);
        }
    }

    /// Group 3 unary (`F7 /ext`): 3 neg, 6 div, 7 idiv.
    pub fn unary(&mut self, w: bool, ext: u8, r: u8) {
        self.op_rr(false, w, &[0xF7], ext, r, false);
    }

    /// `shift dst, imm`.
    pub fn shift_ri(&mut self, w: bool, ext: u8, dst: u8, imm: u8) {
        self.op_rr(false, w, &[0xC1], ext, dst, false);
        self.b(imm);
    }

    /// `ror dst16, 8` (swaps the two low bytes).
    pub fn ror16_8(&mut self, dst: u8) {
        self.op_rr(true, false, &[0xC1], shift::ROR, dst, false);
        self.b(8);
    }

    /// `shift dst, cl`.
    pub fn shift_rcl(&mut self, w: bool, ext: u8, dst: u8) {
        self.op_rr(false, w, &[0xD3], ext, dst, false);
    }

    /// `bswap r`.
    pub fn bswap(&mut self, w: bool, r: u8) {
        self.rex(w, 0, r, false);
        self.bytes(&[0x0F, 0xC8 + (r & 7)]);
    }

    /// `cqo` (64) or `cdq` (32).
    pub fn sign_extend_rax(&mut self, w: bool) {
        if w {
            self.b(0x48);
        }
        self.b(0x99);
    }

    /// `dec qword [base + disp]`.
    pub fn dec_m(&mut self, base: u8, disp: i32) {
        self.op_rm(false, true, &[0xFF], 1, base, disp, false);
    }

    /// `inc qword [base + disp]`.
    pub fn inc_m(&mut self, base: u8, disp: i32) {
        self.op_rm(false, true, &[0xFF], 0, base, disp, false);
    }

    // ---- atomics ----

    /// `lock op [base + disp], src` with `op` one of `01` add, `09` or, `21` and, `31` xor,
    /// `0F C1` xadd, `0F B1` cmpxchg; or `87` xchg (implicitly locked).
    pub fn locked(&mut self, w: bool, op: &[u8], base: u8, disp: i32, src: u8) {
        if op != [0x87] {
            self.b(0xF0);
        }
        self.op_rm(false, w, op, src, base, disp, false);
    }

    // ---- control flow ----

    /// `jcc rel32`; returns the position of the displacement.
    pub fn jcc32(&mut self, c: u8) -> usize {
        self.bytes(&[0x0F, 0x80 | c]);
        let at = self.len();
        self.imm32(0);
        at
    }

    /// `jcc rel8`; returns the position of the displacement.
    pub fn jcc8(&mut self, c: u8) -> usize {
        self.bytes(&[0x70 | c, 0]);
        self.len() - 1
    }

    /// `jmp rel32`.
    pub fn jmp32(&mut self) -> usize {
        self.b(0xE9);
        let at = self.len();
        self.imm32(0);
        at
    }

    /// `jmp rel8`.
    pub fn jmp8(&mut self) -> usize {
        self.bytes(&[0xEB, 0]);
        self.len() - 1
    }

    /// `call rel32`.
    pub fn call32(&mut self) -> usize {
        self.b(0xE8);
        let at = self.len();
        self.imm32(0);
        at
    }

    /// `call qword [base + disp]`.
    pub fn call_m(&mut self, base: u8, disp: i32) {
        self.op_rm(false, false, &[0xFF], 2, base, disp, false);
    }

    /// `jmp r`.
    pub fn jmp_r(&mut self, r: u8) {
        self.op_rr(false, false, &[0xFF], 4, r, false);
    }

    pub fn push(&mut self, r: u8) {
        self.rex(false, 0, r, false);
        self.b(0x50 + (r & 7));
    }

    pub fn pop(&mut self, r: u8) {
        self.rex(false, 0, r, false);
        self.b(0x58 + (r & 7));
    }

    /// `push qword [base + disp]`.
    pub fn push_m(&mut self, base: u8, disp: i32) {
        self.op_rm(false, false, &[0xFF], 6, base, disp, false);
    }

    pub fn ret(&mut self) {
        self.b(0xC3);
    }

    /// `xorps xmm0, xmm0`.
    pub fn zero_xmm0(&mut self) {
        self.bytes(&[0x0F, 0x57, 0xC0]);
    }

    /// `movups [base + disp], xmm0`.
    pub fn store_xmm0(&mut self, base: u8, disp: i32) {
        self.op_rm(false, false, &[0x0F, 0x11], 0, base, disp, false);
    }

    /// Pads with multi-byte NOPs to a multiple of `n` (a power of two).
    pub fn align(&mut self, n: usize) {
        const NOPS: [&[u8]; 8] = [
            &[],
            &[0x90],
            &[0x66, 0x90],
            &[0x0F, 0x1F, 0x00],
            &[0x0F, 0x1F, 0x40, 0x00],
            &[0x0F, 0x1F, 0x44, 0x00, 0x00],
            &[0x66, 0x0F, 0x1F, 0x44, 0x00, 0x00],
            &[0x0F, 0x1F, 0x80, 0x00, 0x00, 0x00, 0x00],
        ];
        let mut pad = self.len().next_multiple_of(n) - self.len();
        while pad > 0 {
            let k = pad.min(7);
            self.bytes(NOPS[k]);
            pad -= k;
        }
    }

    /// Writes a rel32 at `at` so that it reaches `target` (both offsets in this buffer).
    pub fn patch32(&mut self, at: usize, target: usize) {
        let rel = target as i64 - (at as i64 + 4);
        self.buf[at..at + 4].copy_from_slice(&(rel as i32).to_le_bytes());
    }

    /// Writes a rel8 at `at`; false if `target` is out of reach.
    pub fn patch8(&mut self, at: usize, target: usize) -> bool {
        let rel = target as i64 - (at as i64 + 1);
        match i8::try_from(rel) {
            Ok(r) => {
                self.buf[at] = r as u8;
                true
            }
            Err(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::reg::*;
    use super::*;

    fn enc(f: impl FnOnce(&mut Asm)) -> Vec<u8> {
        let mut a = Asm::default();
        f(&mut a);
        a.buf
    }

    #[test]
    fn encodings_match_the_manual() {
        // mov rax, rdi
        assert_eq!(enc(|a| a.mov_rr(true, RAX, RDI)), [0x48, 0x89, 0xF8]);
        // mov r13d, esi
        assert_eq!(enc(|a| a.mov_rr(false, R13, RSI)), [0x41, 0x89, 0xF5]);
        // mov rsi, [rdi + 8]
        assert_eq!(enc(|a| a.load(8, RSI, RDI, 8)), [0x48, 0x8B, 0x77, 0x08]);
        // mov qword [rbp - 8], rbx
        assert_eq!(enc(|a| a.store(8, RBP, -8, RBX)), [0x48, 0x89, 0x5D, 0xF8]);
        // mov byte [rdi], sil  (needs REX)
        assert_eq!(enc(|a| a.store(1, RDI, 0, RSI)), [0x40, 0x88, 0x37]);
        // mov [r12 + 0x40], rsp
        assert_eq!(enc(|a| a.store(8, R12, 0x40, RSP)), [0x49, 0x89, 0x64, 0x24, 0x40]);
        // add rax, 8 / add rax, 0x1000
        assert_eq!(enc(|a| a.alu_ri(true, alu::ADD, RAX, 8)), [0x48, 0x83, 0xC0, 0x08]);
        assert_eq!(enc(|a| a.alu_ri(true, alu::ADD, RAX, 0x1000)), [0x48, 0x05, 0x00, 0x10, 0x00, 0x00]);
        // movabs r11, 0x1122334455667788
        assert_eq!(
            enc(|a| a.mov_imm64(R11, 0x1122_3344_5566_7788)),
            [0x49, 0xBB, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11]
        );
        // mov rcx, -1
        assert_eq!(enc(|a| a.mov_imm64(RCX, u64::MAX)), [0x48, 0xC7, 0xC1, 0xFF, 0xFF, 0xFF, 0xFF]);
        // call [r12 + 0x10]
        assert_eq!(enc(|a| a.call_m(R12, 0x10)), [0x41, 0xFF, 0x54, 0x24, 0x10]);
        // lock xadd [rdi + 4], eax
        assert_eq!(enc(|a| a.locked(false, &[0x0F, 0xC1], RDI, 4, RAX)), [0xF0, 0x0F, 0xC1, 0x47, 0x04]);
        // movsx rax, sil
        assert_eq!(enc(|a| a.movsx_rr(true, RAX, RSI, 8)), [0x48, 0x0F, 0xBE, 0xC6]);
        // ror si, 8
        assert_eq!(enc(|a| a.ror16_8(RSI)), [0x66, 0xC1, 0xCE, 0x08]);
        // bswap r14
        assert_eq!(enc(|a| a.bswap(true, R14)), [0x49, 0x0F, 0xCE]);
        // cmp qword [rsp + 8], 0
        assert_eq!(enc(|a| a.alu_mi8(alu::CMP, RSP, 8, 0)), [0x48, 0x83, 0x7C, 0x24, 0x08, 0x00]);
        // lea rax, [rax + rax*2]; lea r13d, [r13 + r13*4]
        assert_eq!(enc(|a| a.lea_sib(true, RAX, RAX, RAX, 2)), [0x48, 0x8D, 0x04, 0x40]);
        assert_eq!(enc(|a| a.lea_sib(false, R13, R13, R13, 4)), [0x47, 0x8D, 0x6C, 0xAD, 0x00]);
        // mov r13, [rbp + 0] needs a displacement byte
        assert_eq!(enc(|a| a.load(8, R13, R13, 0)), [0x4D, 0x8B, 0x6D, 0x00]);
    }
}
