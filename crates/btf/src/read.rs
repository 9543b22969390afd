//! Bounds-checked little-endian reads and the header checks shared by `.BTF` and `.BTF.ext`.

use crate::error::{BtfError, Result};

/// The magic number of both sections, as read little-endian.
pub const BTF_MAGIC: u16 = 0xeb9f;
/// The only known version.
pub const BTF_VERSION: u8 = 1;

/// `len` bytes at `off`, or a `Truncated` error naming `section`.
pub(crate) fn bytes<'a>(data: &'a [u8], section: &'static str, off: usize, len: usize) -> Result<&'a [u8]> {
    off.checked_add(len).and_then(|end| data.get(off..end)).ok_or(BtfError::Truncated {
        section,
        offset: off,
        needed: len,
        available: data.len().saturating_sub(off),
    })
}

pub(crate) fn u32_at(data: &[u8], section: &'static str, off: usize) -> Result<u32> {
    let b = bytes(data, section, off, 4)?;
    Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Reads a little-endian u32 from a slice already known to hold at least `i + 4` bytes.
pub(crate) fn le32(b: &[u8], i: usize) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[i..i + 4]);
    u32::from_le_bytes(w)
}

/// The fixed 8-byte prefix both headers start with.
pub(crate) struct Preamble {
    pub magic: u16,
    pub version: u8,
    pub flags: u8,
    pub hdr_len: u32,
}

/// Checks magic, version, flags and `hdr_len` (at least `min_len`, at most the section size), and
/// that header bytes past `known_len(hdr_len)` are zero.
pub(crate) fn preamble(
    data: &[u8],
    section: &'static str,
    min_len: u32,
    known_len: impl Fn(u32) -> u32,
) -> Result<Preamble> {
    let b = bytes(data, section, 0, 8)?;
    let magic = u16::from_le_bytes([b[0], b[1]]);
    if magic != BTF_MAGIC {
        if magic == BTF_MAGIC.swap_bytes() {
            return Err(BtfError::BigEndian { section });
        }
        return Err(BtfError::BadMagic { section, magic });
    }
    let (version, flags) = (b[2], b[3]);
    if version != BTF_VERSION {
        return Err(BtfError::BadVersion { section, version });
    }
    if flags != 0 {
        return Err(BtfError::BadFlags { section, flags });
    }
    let hdr_len = le32(b, 4);
    if hdr_len < min_len {
        return Err(BtfError::BadHeaderLen { section, hdr_len, reason: "shorter than the version-1 header" });
    }
    if hdr_len as usize > data.len() {
        return Err(BtfError::Truncated { section, offset: 0, needed: hdr_len as usize, available: data.len() });
    }
    let known = known_len(hdr_len) as usize;
    if let Some(pos) = data[known.min(hdr_len as usize)..hdr_len as usize].iter().position(|&x| x != 0) {
        return Err(BtfError::UnknownHeaderField { section, offset: known + pos, hdr_len });
    }
    Ok(Preamble { magic, version, flags, hdr_len })
}

/// Checks that sub-section `what` at `off`/`len` (relative to the end of the header) lies inside the
/// `available` bytes after the header and, if `align4`, starts 4-byte aligned. Returns the absolute
/// byte range in the section.
pub(crate) fn subsection(
    section: &'static str,
    what: &'static str,
    hdr_len: u32,
    off: u32,
    len: u32,
    available: usize,
    align4: bool,
) -> Result<std::ops::Range<usize>> {
    let err = |reason| BtfError::BadSubsection { section, what, off, len, available, reason };
    if align4 && !off.is_multiple_of(4) {
        return Err(err("is not 4-byte aligned"));
    }
    let end = (off as u64) + (len as u64);
    if end > available as u64 {
        return Err(err("goes past the end of the section"));
    }
    let start = hdr_len as usize + off as usize;
    Ok(start..start + len as usize)
}
