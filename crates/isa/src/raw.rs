//! The 8-byte wire form of an instruction, exactly as `struct bpf_insn` lays it out.

use crate::DecodeError;

/// One 8-byte instruction slot: `code:u8`, `dst_reg:4 | src_reg:4` (dst in the low nibble),
/// `off:s16`, `imm:s32`, little-endian. A `lddw` occupies two slots.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RawInsn {
    /// Opcode byte: class in the low 3 bits, then source bit and operation.
    pub code: u8,
    /// `dst_reg` in the low nibble, `src_reg` in the high nibble.
    pub regs: u8,
    /// Signed 16-bit offset.
    pub off: i16,
    /// Signed 32-bit immediate.
    pub imm: i32,
}

impl RawInsn {
    /// Size of one slot in bytes.
    pub const SIZE: usize = 8;

    /// Builds a slot from its fields; `dst` and `src` are truncated to 4 bits.
    pub const fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Self {
        RawInsn { code, regs: (dst & 0xf) | (src << 4), off, imm }
    }

    /// The `dst_reg` nibble.
    pub const fn dst(self) -> u8 {
        self.regs & 0xf
    }

    /// The `src_reg` nibble.
    pub const fn src(self) -> u8 {
        self.regs >> 4
    }

    /// Little-endian bytes of this slot.
    pub fn to_bytes(self) -> [u8; 8] {
        let mut b = [0u8; 8];
        b[0] = self.code;
        b[1] = self.regs;
        b[2..4].copy_from_slice(&self.off.to_le_bytes());
        b[4..8].copy_from_slice(&self.imm.to_le_bytes());
        b
    }

    /// Reads a slot from 8 little-endian bytes.
    pub fn from_bytes(b: [u8; 8]) -> Self {
        RawInsn {
            code: b[0],
            regs: b[1],
            off: i16::from_le_bytes([b[2], b[3]]),
            imm: i32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        }
    }

    /// The slot as one little-endian `u64` (the form the conformance corpus' `-- raw` uses).
    pub fn to_u64(self) -> u64 {
        u64::from_le_bytes(self.to_bytes())
    }

    /// Inverse of [`RawInsn::to_u64`].
    pub fn from_u64(v: u64) -> Self {
        Self::from_bytes(v.to_le_bytes())
    }
}

/// Splits a byte buffer into slots. The length must be a multiple of 8.
pub fn slots_from_bytes(bytes: &[u8]) -> Result<Vec<RawInsn>, DecodeError> {
    if !bytes.len().is_multiple_of(RawInsn::SIZE) {
        return Err(DecodeError::PartialSlot { len: bytes.len() });
    }
    Ok(bytes.chunks_exact(RawInsn::SIZE).map(|c| RawInsn::from_bytes(c.try_into().expect("chunk of 8"))).collect())
}

/// Concatenates the bytes of every slot.
pub fn slots_to_bytes(slots: &[RawInsn]) -> Vec<u8> {
    slots.iter().flat_map(|s| s.to_bytes()).collect()
}
