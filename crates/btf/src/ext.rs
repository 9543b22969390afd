//! The `.BTF.ext` section: func_info, line_info and CO-RE relocation records, grouped per ELF
//! section.

use crate::btf::Btf;
use crate::error::{BTF_EXT_SECTION as SEC, BtfError, Result};
use crate::read::{bytes, le32, preamble, subsection};
use crate::types::{BtfKind, TypeId};

/// Length of the header up to and including `line_info_len`.
pub const BTF_EXT_HEADER_MIN_LEN: u32 = 24;
/// Length of the header including `core_relo_off`/`core_relo_len`.
pub const BTF_EXT_HEADER_CORE_LEN: u32 = 32;

/// The `.BTF.ext` header (`struct btf_ext_header`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BtfExtHeader {
    pub magic: u16,
    pub version: u8,
    pub flags: u8,
    pub hdr_len: u32,
    /// Offsets are from the end of the header.
    pub func_info_off: u32,
    pub func_info_len: u32,
    pub line_info_off: u32,
    pub line_info_len: u32,
    /// 0 when `hdr_len` is too short to hold the CO-RE fields.
    pub core_relo_off: u32,
    pub core_relo_len: u32,
}

/// A `bpf_func_info` record as stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FuncInfo {
    /// Offset of the function's first instruction in its ELF section, in bytes (the kernel wants
    /// instruction indices: divide by 8).
    pub insn_off: u32,
    pub type_id: TypeId,
}

/// A `bpf_line_info` record as stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LineInfo {
    /// In bytes, like [`FuncInfo::insn_off`].
    pub insn_off: u32,
    pub file_name_off: u32,
    pub line_off: u32,
    pub line_col: u32,
}

impl LineInfo {
    /// Line number: `line_col >> 10`.
    pub fn line(&self) -> u32 {
        self.line_col >> 10
    }
    /// Column: `line_col & 0x3ff`.
    pub fn col(&self) -> u32 {
        self.line_col & 0x3ff
    }
}

/// A `bpf_core_relo` record as stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CoreRelo {
    /// In bytes, like [`FuncInfo::insn_off`].
    pub insn_off: u32,
    pub type_id: TypeId,
    pub access_str_off: u32,
    /// See [`CoreReloKind`].
    pub kind: u32,
}

/// `enum bpf_core_relo_kind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CoreReloKind {
    FieldByteOffset = 0,
    FieldByteSize = 1,
    FieldExists = 2,
    FieldSigned = 3,
    FieldLshiftU64 = 4,
    FieldRshiftU64 = 5,
    TypeIdLocal = 6,
    TypeIdTarget = 7,
    TypeExists = 8,
    TypeSize = 9,
    EnumvalExists = 10,
    EnumvalValue = 11,
    TypeMatches = 12,
}

impl CoreReloKind {
    pub fn from_u32(v: u32) -> Option<CoreReloKind> {
        use CoreReloKind::*;
        Some(match v {
            0 => FieldByteOffset,
            1 => FieldByteSize,
            2 => FieldExists,
            3 => FieldSigned,
            4 => FieldLshiftU64,
            5 => FieldRshiftU64,
            6 => TypeIdLocal,
            7 => TypeIdTarget,
            8 => TypeExists,
            9 => TypeSize,
            10 => EnumvalExists,
            11 => EnumvalValue,
            12 => TypeMatches,
            _ => return None,
        })
    }
}

/// The records of one ELF section, as stored (`btf_ext_info_sec`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtGroup<T> {
    /// Offset of the ELF section name in the `.BTF` string table.
    pub sec_name_off: u32,
    /// Byte offset of the first record in `.BTF.ext` (records follow every `rec_size` bytes).
    pub offset: usize,
    pub records: Vec<T>,
}

/// The records of one ELF section, with strings resolved against `.BTF`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SectionInfo<T> {
    /// ELF section name (`xdp`, `.text`, ...).
    pub section: String,
    pub records: Vec<T>,
}

/// A func_info record with its FUNC's name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FuncInfoEntry {
    /// In bytes.
    pub insn_off: u32,
    /// Always a FUNC.
    pub type_id: TypeId,
    pub name: String,
}

/// A line_info record with its strings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineInfoEntry {
    /// In bytes.
    pub insn_off: u32,
    pub file_name: String,
    /// The source line's text, as clang copied it.
    pub line_text: String,
    pub line: u32,
    pub col: u32,
}

/// A CO-RE relocation with its access string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoreReloEntry {
    /// In bytes.
    pub insn_off: u32,
    pub type_id: TypeId,
    /// E.g. `0:1:2` (field accesses) or `0` (type-based and enum-value relocations).
    pub access_str: String,
    pub kind: CoreReloKind,
}

/// A parsed `.BTF.ext` section. Strings and type ids refer to the `.BTF` section of the same
/// object; they are checked by the resolving accessors ([`BtfExt::func_info`], ...), which take it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BtfExt {
    header: BtfExtHeader,
    func_info_rec_size: u32,
    line_info_rec_size: u32,
    core_relo_rec_size: u32,
    func_info: Vec<ExtGroup<FuncInfo>>,
    line_info: Vec<ExtGroup<LineInfo>>,
    core_relos: Vec<ExtGroup<CoreRelo>>,
}

impl BtfExt {
    /// Parses a `.BTF.ext` section. Each info sub-section is `u32 rec_size` followed by groups of
    /// `{u32 sec_name_off, u32 num_info, num_info * rec_size bytes}`; records longer than this
    /// parser knows have their extra bytes skipped.
    pub fn parse(data: &[u8]) -> Result<BtfExt> {
        let pre = preamble(data, SEC, BTF_EXT_HEADER_MIN_LEN, |hdr_len| {
            if hdr_len >= BTF_EXT_HEADER_CORE_LEN { BTF_EXT_HEADER_CORE_LEN } else { BTF_EXT_HEADER_MIN_LEN }
        })?;
        let h = bytes(data, SEC, 0, pre.hdr_len.min(BTF_EXT_HEADER_CORE_LEN) as usize)?;
        let has_core = pre.hdr_len >= BTF_EXT_HEADER_CORE_LEN;
        let header = BtfExtHeader {
            magic: pre.magic,
            version: pre.version,
            flags: pre.flags,
            hdr_len: pre.hdr_len,
            func_info_off: le32(h, 8),
            func_info_len: le32(h, 12),
            line_info_off: le32(h, 16),
            line_info_len: le32(h, 20),
            core_relo_off: if has_core { le32(h, 24) } else { 0 },
            core_relo_len: if has_core { le32(h, 28) } else { 0 },
        };
        let (func_info_rec_size, func_info) =
            parse_info(data, &header, "func_info", header.func_info_off, header.func_info_len, 8, |r| FuncInfo {
                insn_off: le32(r, 0),
                type_id: TypeId(le32(r, 4)),
            })?;
        let (line_info_rec_size, line_info) =
            parse_info(data, &header, "line_info", header.line_info_off, header.line_info_len, 16, |r| LineInfo {
                insn_off: le32(r, 0),
                file_name_off: le32(r, 4),
                line_off: le32(r, 8),
                line_col: le32(r, 12),
            })?;
        let (core_relo_rec_size, core_relos) =
            parse_info(data, &header, "core_relo", header.core_relo_off, header.core_relo_len, 16, |r| CoreRelo {
                insn_off: le32(r, 0),
                type_id: TypeId(le32(r, 4)),
                access_str_off: le32(r, 8),
                kind: le32(r, 12),
            })?;
        Ok(BtfExt {
            header,
            func_info_rec_size,
            line_info_rec_size,
            core_relo_rec_size,
            func_info,
            line_info,
            core_relos,
        })
    }

    pub fn header(&self) -> &BtfExtHeader {
        &self.header
    }

    /// Record sizes as stored (0 for an absent sub-section).
    pub fn func_info_rec_size(&self) -> u32 {
        self.func_info_rec_size
    }
    pub fn line_info_rec_size(&self) -> u32 {
        self.line_info_rec_size
    }
    pub fn core_relo_rec_size(&self) -> u32 {
        self.core_relo_rec_size
    }

    /// Raw func_info groups, in file order.
    pub fn func_info_groups(&self) -> &[ExtGroup<FuncInfo>] {
        &self.func_info
    }
    /// Raw line_info groups, in file order.
    pub fn line_info_groups(&self) -> &[ExtGroup<LineInfo>] {
        &self.line_info
    }
    /// Raw CO-RE relocation groups, in file order.
    pub fn core_relo_groups(&self) -> &[ExtGroup<CoreRelo>] {
        &self.core_relos
    }

    /// func_info per ELF section, checked against `btf`: names resolved, type ids must be FUNCs.
    pub fn func_info(&self, btf: &Btf) -> Result<Vec<SectionInfo<FuncInfoEntry>>> {
        resolve_groups(btf, &self.func_info, self.func_info_rec_size, |r, off| {
            let t = btf.types().get(r.type_id.index()).ok_or(BtfError::BadTypeId {
                section: SEC,
                id: r.type_id.0,
                referenced_by: off as u32,
            })?;
            if t.btf_kind() != BtfKind::Func {
                return Err(BtfError::BadReference {
                    section: SEC,
                    id: r.type_id.0,
                    referenced_by: off as u32,
                    expected: "FUNC",
                    found: t.btf_kind(),
                });
            }
            Ok(FuncInfoEntry { insn_off: r.insn_off, type_id: r.type_id, name: t.name_str().to_owned() })
        })
    }

    /// line_info per ELF section, with file names and source lines resolved against `btf`
    /// (invalid UTF-8 in them is replaced).
    pub fn line_info(&self, btf: &Btf) -> Result<Vec<SectionInfo<LineInfoEntry>>> {
        resolve_groups(btf, &self.line_info, self.line_info_rec_size, |r, _| {
            Ok(LineInfoEntry {
                insn_off: r.insn_off,
                file_name: ext_str_lossy(btf, r.file_name_off)?,
                line_text: ext_str_lossy(btf, r.line_off)?,
                line: r.line(),
                col: r.col(),
            })
        })
    }

    /// CO-RE relocations per ELF section, checked against `btf`: access strings resolved, type ids
    /// must exist, kinds must be known.
    pub fn core_relos(&self, btf: &Btf) -> Result<Vec<SectionInfo<CoreReloEntry>>> {
        resolve_groups(btf, &self.core_relos, self.core_relo_rec_size, |r, off| {
            if r.type_id.index() >= btf.len() {
                return Err(BtfError::BadTypeId { section: SEC, id: r.type_id.0, referenced_by: off as u32 });
            }
            let kind = CoreReloKind::from_u32(r.kind).ok_or_else(|| BtfError::BadExtRecord {
                what: "core_relo",
                offset: off,
                reason: format!("unknown relocation kind {}", r.kind),
            })?;
            Ok(CoreReloEntry {
                insn_off: r.insn_off,
                type_id: r.type_id,
                access_str: ext_str(btf, r.access_str_off)?,
                kind,
            })
        })
    }
}

/// A string of the `.BTF` table named from `.BTF.ext`: errors name `.BTF.ext`.
fn ext_str(btf: &Btf, off: u32) -> Result<String> {
    btf.string_at(off).map(str::to_owned).map_err(|e| retag(e, off))
}

fn ext_str_lossy(btf: &Btf, off: u32) -> Result<String> {
    btf.string_lossy_at(off).map(|s| s.into_owned()).map_err(|e| retag(e, off))
}

fn retag(e: BtfError, off: u32) -> BtfError {
    match e {
        BtfError::BadString { reason, .. } => BtfError::BadString { section: SEC, offset: off, reason },
        e => e,
    }
}

fn resolve_groups<T, R>(
    btf: &Btf,
    groups: &[ExtGroup<T>],
    rec_size: u32,
    mut f: impl FnMut(&T, usize) -> Result<R>,
) -> Result<Vec<SectionInfo<R>>> {
    groups
        .iter()
        .map(|g| {
            let section = ext_str(btf, g.sec_name_off)?;
            let records = g
                .records
                .iter()
                .enumerate()
                .map(|(i, r)| f(r, g.offset + i * rec_size as usize))
                .collect::<Result<Vec<_>>>()?;
            Ok(SectionInfo { section, records })
        })
        .collect()
}

/// Parses one info sub-section; returns its record size and groups. An empty sub-section
/// (`len == 0`) has no record size and no groups.
fn parse_info<T>(
    data: &[u8],
    header: &BtfExtHeader,
    what: &'static str,
    off: u32,
    len: u32,
    min_rec: u32,
    decode: impl Fn(&[u8]) -> T,
) -> Result<(u32, Vec<ExtGroup<T>>)> {
    if len == 0 {
        return Ok((0, Vec::new()));
    }
    let available = data.len() - header.hdr_len as usize;
    let range = subsection(SEC, what, header.hdr_len, off, len, available, true)?;
    let sub = &data[range.clone()];
    let base = range.start;
    let rec_size = crate::read::u32_at(sub, SEC, 0).map_err(|_| BtfError::Truncated {
        section: SEC,
        offset: base,
        needed: 4,
        available: sub.len(),
    })?;
    if rec_size < min_rec || !rec_size.is_multiple_of(4) {
        return Err(BtfError::BadRecordSize { what, offset: base, rec_size, min: min_rec });
    }
    let mut pos = 4usize;
    let mut groups = Vec::new();
    while pos < sub.len() {
        let gh = sub.get(pos..pos + 8).ok_or(BtfError::Truncated {
            section: SEC,
            offset: base + pos,
            needed: 8,
            available: sub.len() - pos,
        })?;
        let sec_name_off = le32(gh, 0);
        let num_info = le32(gh, 4);
        let group_off = base + pos;
        let bad_count = |reason| BtfError::BadRecordCount { what, offset: group_off, num_info, reason };
        if num_info == 0 {
            return Err(bad_count("a group must hold at least one record"));
        }
        pos += 8;
        // Checked against the remaining bytes before anything is allocated from `num_info`.
        let total = (num_info as u64) * (rec_size as u64);
        if total > (sub.len() - pos) as u64 {
            return Err(bad_count("more records than fit in the sub-section"));
        }
        let mut records = Vec::with_capacity(num_info as usize);
        for r in sub[pos..pos + total as usize].chunks_exact(rec_size as usize) {
            records.push(decode(r));
        }
        groups.push(ExtGroup { sec_name_off, offset: base + pos, records });
        pos += total as usize;
    }
    Ok((rec_size, groups))
}
