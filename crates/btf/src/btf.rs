//! The `.BTF` section: header, string table, type table, validation and queries.

use crate::error::{BTF_SECTION as SEC, BtfError, Result};
use crate::read::{bytes, le32, preamble, subsection};
use crate::types::*;

/// Size of the version-1 `btf_header`.
pub const BTF_HEADER_LEN: u32 = 24;
/// Largest type id the kernel accepts (`BTF_MAX_TYPE`); more types are rejected.
pub const BTF_MAX_TYPE: u32 = 0x000f_ffff;
/// Largest string offset the kernel accepts (`BTF_MAX_NAME_OFFSET`).
pub const BTF_MAX_NAME_OFFSET: u32 = 0x00ff_ffff;
/// How deep [`Btf::type_to_string`] nests declarators before giving up.
pub const MAX_PRINT_DEPTH: usize = 64;
/// How many types a single query may visit ([`Btf::type_to_string`], [`Btf::member_by_name`])
/// before it gives up: shared sub-types can make a small table describe an exponentially large
/// tree.
pub const MAX_QUERY_WORK: usize = 100_000;

/// The `.BTF` header (`struct btf_header`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BtfHeader {
    pub magic: u16,
    pub version: u8,
    pub flags: u8,
    pub hdr_len: u32,
    /// Offset of the type section from the end of the header.
    pub type_off: u32,
    pub type_len: u32,
    /// Offset of the string section from the end of the header.
    pub str_off: u32,
    pub str_len: u32,
}

/// A parsed and validated `.BTF` section.
///
/// Invariants established by [`Btf::parse`]: `types[0]` is `void`; every type id any type refers
/// to exists; FUNC types point at FUNC_PROTOs; DATASEC entries are VARs or FUNCs; DECL_TAG targets
/// and component indices are valid; and there are no reference loops, neither along "by value"
/// edges (typedef/modifier/type tag/array element/struct member/var/datasec/decl tag) nor along
/// "declarator" edges (typedef/modifier/type tag/pointer/array element/function prototype), so
/// every walk that does not go through a struct member reached by pointer terminates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Btf {
    header: BtfHeader,
    types: Vec<Type>,
    strings: Vec<u8>,
    /// Per type: the id [`Btf::resolve`] returns (typedefs, modifiers and type tags skipped),
    /// precomputed so that queries stay linear whatever chains a hostile table holds.
    resolved: Vec<TypeId>,
    /// Per type: the id [`Btf::skip_modifiers`] returns.
    unqualified: Vec<TypeId>,
}

/// A variable (or, in `.ksyms`, a function) placed in a DATASEC: see [`Btf::datasec_vars`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DatasecVar<'a> {
    /// The VAR (or FUNC) type.
    pub id: TypeId,
    /// [`BtfKind::Var`] or [`BtfKind::Func`].
    pub kind: BtfKind,
    pub name: &'a str,
    /// The VAR's type, or the FUNC's prototype.
    pub ty: TypeId,
    pub linkage: Linkage,
    /// `btf_var_secinfo.offset` and `.size`, as stored.
    pub offset: u32,
    pub size: u32,
}

/// A member found by [`Btf::member_by_name`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FoundMember<'a> {
    pub member: &'a Member,
    /// The struct/union that directly contains the member (differs from the one searched when the
    /// member is inside an anonymous struct/union member).
    pub parent: TypeId,
    /// Bit offset from the start of the searched struct/union.
    pub bit_offset: u64,
}

impl Btf {
    /// Parses and validates a `.BTF` section.
    pub fn parse(data: &[u8]) -> Result<Btf> {
        let pre = preamble(data, SEC, BTF_HEADER_LEN, |_| BTF_HEADER_LEN)?;
        let h = bytes(data, SEC, 0, BTF_HEADER_LEN as usize)?;
        let header = BtfHeader {
            magic: pre.magic,
            version: pre.version,
            flags: pre.flags,
            hdr_len: pre.hdr_len,
            type_off: le32(h, 8),
            type_len: le32(h, 12),
            str_off: le32(h, 16),
            str_len: le32(h, 20),
        };
        let available = data.len() - header.hdr_len as usize;
        let types_range = subsection(SEC, "type", header.hdr_len, header.type_off, header.type_len, available, true)?;
        let str_range = subsection(SEC, "string", header.hdr_len, header.str_off, header.str_len, available, false)?;
        if !types_range.is_empty() && types_range.start < str_range.end && str_range.start < types_range.end {
            return Err(BtfError::BadSubsection {
                section: SEC,
                what: "string",
                off: header.str_off,
                len: header.str_len,
                available,
                reason: "overlaps the type section",
            });
        }
        let strings = &data[str_range];
        let bad_table = |reason| BtfError::BadStringTable { section: SEC, reason };
        if strings.is_empty() {
            return Err(bad_table("empty (it must hold at least the empty string)"));
        }
        if strings[0] != 0 {
            return Err(bad_table("does not start with the empty string"));
        }
        if strings[strings.len() - 1] != 0 {
            return Err(bad_table("last string is not NUL-terminated"));
        }
        if strings.len() - 1 > BTF_MAX_NAME_OFFSET as usize {
            return Err(bad_table("larger than 16 MiB"));
        }
        let mut btf =
            Btf { header, types: Vec::new(), strings: strings.to_vec(), resolved: Vec::new(), unqualified: Vec::new() };
        btf.types.push(Type { name_off: 0, name: None, kind: TypeKind::Void });
        let base = types_range.start;
        let tdata = &data[types_range];
        let mut pos = 0usize;
        while pos < tdata.len() {
            let id = btf.types.len() as u32;
            if id > BTF_MAX_TYPE {
                return Err(BtfError::TooManyTypes { limit: BTF_MAX_TYPE });
            }
            let (ty, len) = btf.parse_type(tdata, base, pos, id)?;
            btf.types.push(ty);
            pos += len;
        }
        btf.check_references()?;
        btf.check_loops(by_value_edge)?;
        btf.check_loops(declarator_edge)?;
        btf.resolved = btf.chain_ends(true);
        btf.unqualified = btf.chain_ends(false);
        Ok(btf)
    }

    /// Decodes the type at `pos` of the type section (which starts at byte `base` of `.BTF`),
    /// returning it and its length in bytes.
    fn parse_type(&self, tdata: &[u8], base: usize, pos: usize, id: u32) -> Result<(Type, usize)> {
        let abs = |p: usize| base + p;
        let trunc = |p: usize, needed: usize| BtfError::Truncated {
            section: SEC,
            offset: abs(p),
            needed,
            available: tdata.len().saturating_sub(p),
        };
        let head = tdata.get(pos..pos + 12).ok_or_else(|| trunc(pos, 12))?;
        let name_off = le32(head, 0);
        let info = le32(head, 4);
        let size_type = le32(head, 8);
        let vlen = (info & 0xffff) as usize;
        let kind_num = ((info >> 24) & 0x1f) as u8;
        let kflag = info >> 31 != 0;
        let bad = |reason: String| BtfError::BadType { id, reason };
        if info & 0x60ff_0000 != 0 {
            return Err(bad(format!("reserved bits set in info {info:#010x}")));
        }
        let kind = BtfKind::from_u8(kind_num).ok_or(BtfError::UnknownKind { id, offset: abs(pos), kind: kind_num })?;
        // Bytes that follow the 12-byte btf_type, checked against the data before anything is
        // allocated from `vlen`.
        let (extra_fixed, per_item) = match kind {
            BtfKind::Int | BtfKind::Var | BtfKind::DeclTag => (4, 0),
            BtfKind::Array => (12, 0),
            BtfKind::Struct | BtfKind::Union | BtfKind::Datasec | BtfKind::Enum64 => (0, 12),
            BtfKind::Enum | BtfKind::FuncProto => (0, 8),
            _ => (0, 0),
        };
        if per_item == 0 && vlen != 0 && kind != BtfKind::Func {
            return Err(bad(format!("{kind} with non-zero vlen {vlen}")));
        }
        let extra = extra_fixed + per_item * vlen;
        let body_start = pos + 12;
        let body = tdata.get(body_start..body_start + extra).ok_or_else(|| trunc(body_start, extra))?;
        let name = self.name_at(name_off)?;
        let str_at = |off: u32| self.str_at(off).map(str::to_owned);
        let opt_name = |off: u32| self.name_at(off);
        let t = |v: u32| TypeId(v);
        let kind = match kind {
            BtfKind::Void => unreachable!("from_u8 never returns Void"),
            BtfKind::Int => {
                let v = le32(body, 0);
                let int = Int {
                    size: size_type,
                    encoding: ((v >> 24) & 0x0f) as u8,
                    offset: ((v >> 16) & 0xff) as u8,
                    bits: (v & 0xff) as u8,
                };
                if v & 0xf000_ff00 != 0 {
                    return Err(bad(format!("INT with reserved bits set in {v:#010x}")));
                }
                if !matches!(int.size, 1 | 2 | 4 | 8 | 16) {
                    return Err(bad(format!("INT of unsupported size {}", int.size)));
                }
                if !matches!(int.encoding, 0 | Int::SIGNED | Int::CHAR | Int::BOOL) {
                    return Err(bad(format!("INT with unsupported encoding {:#x}", int.encoding)));
                }
                if int.bits as u32 + int.offset as u32 > int.size * 8 || int.bits > 128 {
                    return Err(bad(format!(
                        "INT with {} bits at bit offset {} does not fit in {} bytes",
                        int.bits, int.offset, int.size
                    )));
                }
                TypeKind::Int(int)
            }
            BtfKind::Ptr => TypeKind::Ptr { target: t(size_type) },
            BtfKind::Array => {
                TypeKind::Array(Array { elem: t(le32(body, 0)), index: t(le32(body, 4)), nelems: le32(body, 8) })
            }
            BtfKind::Struct | BtfKind::Union => {
                let mut members = Vec::with_capacity(vlen);
                for m in body.chunks_exact(12) {
                    let (name_off, off) = (le32(m, 0), le32(m, 8));
                    let (bit_offset, bitfield_size) = if kflag { (off & 0x00ff_ffff, off >> 24) } else { (off, 0) };
                    members.push(Member {
                        name_off,
                        name: opt_name(name_off)?,
                        ty: t(le32(m, 4)),
                        bit_offset,
                        bitfield_size,
                    });
                }
                let c = Composite { size: size_type, members };
                if kind == BtfKind::Struct { TypeKind::Struct(c) } else { TypeKind::Union(c) }
            }
            BtfKind::Enum | BtfKind::Enum64 => {
                if !matches!(size_type, 1 | 2 | 4 | 8) {
                    return Err(bad(format!("{kind} of unsupported size {size_type}")));
                }
                let mut values = Vec::with_capacity(vlen);
                for e in body.chunks_exact(per_item) {
                    let name_off = le32(e, 0);
                    let value = if kind == BtfKind::Enum64 {
                        ((le32(e, 8) as u64) << 32) | le32(e, 4) as u64
                    } else if kflag {
                        le32(e, 4) as i32 as i64 as u64
                    } else {
                        le32(e, 4) as u64
                    };
                    values.push(EnumValue { name_off, name: str_at(name_off)?, value });
                }
                let e = Enum { size: size_type, signed: kflag, values };
                if kind == BtfKind::Enum { TypeKind::Enum(e) } else { TypeKind::Enum64(e) }
            }
            BtfKind::Fwd => TypeKind::Fwd { is_union: kflag },
            BtfKind::Typedef => TypeKind::Typedef { target: t(size_type) },
            BtfKind::Volatile => TypeKind::Volatile { target: t(size_type) },
            BtfKind::Const => TypeKind::Const { target: t(size_type) },
            BtfKind::Restrict => TypeKind::Restrict { target: t(size_type) },
            BtfKind::Func => TypeKind::Func { proto: t(size_type), linkage: Linkage::from_u32(vlen as u32) },
            BtfKind::FuncProto => {
                let mut params = Vec::with_capacity(vlen);
                for p in body.chunks_exact(8) {
                    let name_off = le32(p, 0);
                    params.push(Param { name_off, name: opt_name(name_off)?, ty: t(le32(p, 4)) });
                }
                TypeKind::FuncProto(FuncProto { ret: t(size_type), params })
            }
            BtfKind::Var => TypeKind::Var { ty: t(size_type), linkage: Linkage::from_u32(le32(body, 0)) },
            BtfKind::Datasec => {
                let mut vars = Vec::with_capacity(vlen);
                for v in body.chunks_exact(12) {
                    vars.push(VarSecinfo { ty: t(le32(v, 0)), offset: le32(v, 4), size: le32(v, 8) });
                }
                TypeKind::Datasec(Datasec { size: size_type, vars })
            }
            BtfKind::Float => {
                if !matches!(size_type, 2 | 4 | 8 | 12 | 16) {
                    return Err(bad(format!("FLOAT of unsupported size {size_type}")));
                }
                TypeKind::Float { size: size_type }
            }
            BtfKind::DeclTag => {
                let component_idx = le32(body, 0) as i32;
                TypeKind::DeclTag { target: t(size_type), component_idx, attribute: kflag }
            }
            BtfKind::TypeTag => TypeKind::TypeTag { target: t(size_type), attribute: kflag },
        };
        Ok((Type { name_off, name, kind }, 12 + extra))
    }

    /// Every referenced id exists, and references that must be of a given kind are.
    fn check_references(&self) -> Result<()> {
        let n = self.types.len();
        for (i, ty) in self.types.iter().enumerate() {
            let referenced_by = i as u32;
            for r in ty.kind.referenced_ids() {
                if r.index() >= n {
                    return Err(BtfError::BadTypeId { section: SEC, id: r.0, referenced_by });
                }
            }
            let kind_of = |id: TypeId| self.types[id.index()].btf_kind();
            let expect = |id: TypeId, ok: &[BtfKind], expected: &'static str| {
                let found = kind_of(id);
                if ok.contains(&found) {
                    Ok(())
                } else {
                    Err(BtfError::BadReference { section: SEC, id: id.0, referenced_by, expected, found })
                }
            };
            match &ty.kind {
                TypeKind::Func { proto, .. } => expect(*proto, &[BtfKind::FuncProto], "FUNC_PROTO")?,
                TypeKind::Datasec(d) => {
                    for v in &d.vars {
                        expect(v.ty, &[BtfKind::Var, BtfKind::Func], "VAR or FUNC")?;
                    }
                }
                TypeKind::DeclTag { target, component_idx, .. } => {
                    use BtfKind::*;
                    expect(*target, &[Struct, Union, Var, Func, Typedef], "STRUCT, UNION, VAR, FUNC or TYPEDEF")?;
                    let components = match &self.types[target.index()].kind {
                        TypeKind::Struct(c) | TypeKind::Union(c) => c.members.len(),
                        TypeKind::Func { proto, .. } => match &self.types[proto.index()].kind {
                            TypeKind::FuncProto(p) => p.params.len(),
                            _ => 0,
                        },
                        _ => 0,
                    };
                    if *component_idx < -1 || (*component_idx >= 0 && *component_idx as usize >= components) {
                        return Err(BtfError::BadType {
                            id: referenced_by,
                            reason: format!(
                                "DECL_TAG component_idx {component_idx} out of range for type {} ({} components)",
                                target.0, components
                            ),
                        });
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Iterative three-colour depth-first search over the edges `edge(kind, i)` gives; a back edge
    /// is a loop.
    fn check_loops(&self, edge: fn(&TypeKind, usize) -> Option<TypeId>) -> Result<()> {
        const WHITE: u8 = 0;
        const GREY: u8 = 1;
        const BLACK: u8 = 2;
        let mut colour = vec![WHITE; self.types.len()];
        let mut stack: Vec<(usize, usize)> = Vec::new();
        for root in 0..self.types.len() {
            if colour[root] != WHITE {
                continue;
            }
            colour[root] = GREY;
            stack.push((root, 0));
            while let Some(top) = stack.last_mut() {
                let (node, next) = *top;
                top.1 += 1;
                match edge(&self.types[node].kind, next) {
                    Some(child) => match colour[child.index()] {
                        WHITE => {
                            colour[child.index()] = GREY;
                            stack.push((child.index(), 0));
                        }
                        GREY => return Err(BtfError::Loop { id: child.0 }),
                        _ => {}
                    },
                    None => {
                        colour[node] = BLACK;
                        stack.pop();
                    }
                }
            }
        }
        Ok(())
    }

    fn str_bytes(&self, off: u32) -> Result<&[u8]> {
        let start = off as usize;
        let rest = self.strings.get(start..).filter(|r| !r.is_empty()).ok_or(BtfError::BadString {
            section: SEC,
            offset: off,
            reason: "outside the string table",
        })?;
        // The table ends with a NUL (checked by `parse`), so there always is one.
        let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        Ok(&rest[..end])
    }

    fn str_at(&self, off: u32) -> Result<&str> {
        std::str::from_utf8(self.str_bytes(off)?).map_err(|_| BtfError::BadString {
            section: SEC,
            offset: off,
            reason: "not valid UTF-8",
        })
    }

    fn name_at(&self, off: u32) -> Result<Option<String>> {
        let s = self.str_at(off)?;
        Ok(if s.is_empty() { None } else { Some(s.to_owned()) })
    }

    /// The string at `off` in the string table (names must be UTF-8).
    pub fn string_at(&self, off: u32) -> Result<&str> {
        self.str_at(off)
    }

    /// The string at `off`, with invalid UTF-8 replaced (for source lines and file names).
    pub fn string_lossy_at(&self, off: u32) -> Result<std::borrow::Cow<'_, str>> {
        Ok(String::from_utf8_lossy(self.str_bytes(off)?))
    }

    pub fn header(&self) -> &BtfHeader {
        &self.header
    }

    /// All types, indexed by type id; `types()[0]` is `void`.
    pub fn types(&self) -> &[Type] {
        &self.types
    }

    /// The raw string table.
    pub fn strings(&self) -> &[u8] {
        &self.strings
    }

    /// Number of types including `void`: valid ids are `0..len()`.
    pub fn len(&self) -> usize {
        self.types.len()
    }

    /// `true` if the section holds no type besides `void`.
    pub fn is_empty(&self) -> bool {
        self.types.len() == 1
    }

    /// `(id, type)` pairs, `void` included.
    pub fn iter(&self) -> impl Iterator<Item = (TypeId, &Type)> {
        self.types.iter().enumerate().map(|(i, t)| (TypeId(i as u32), t))
    }

    pub fn type_by_id(&self, id: TypeId) -> Result<&Type> {
        self.types.get(id.index()).ok_or(BtfError::NoSuchType { id: id.0 })
    }

    /// The name of type `id`; `None` if it is anonymous or does not exist.
    pub fn name_of(&self, id: TypeId) -> Option<&str> {
        self.types.get(id.index()).and_then(|t| t.name.as_deref())
    }

    /// Follows typedefs, `const`/`volatile`/`restrict` and type tags to the underlying type.
    pub fn resolve(&self, id: TypeId) -> Result<TypeId> {
        self.skip(id, true)
    }

    /// Follows `const`/`volatile`/`restrict` and type tags, but not typedefs.
    pub fn skip_modifiers(&self, id: TypeId) -> Result<TypeId> {
        self.skip(id, false)
    }

    fn skip(&self, id: TypeId, typedefs: bool) -> Result<TypeId> {
        let ends = if typedefs { &self.resolved } else { &self.unqualified };
        ends.get(id.index()).copied().ok_or(BtfError::NoSuchType { id: id.0 })
    }

    /// For every type, the end of its chain of modifiers/type tags (and typedefs if `typedefs`).
    /// Linear: each chain is walked once and every id on it gets the answer. Needs the loop
    /// check to have passed (these edges are "by value" edges).
    fn chain_ends(&self, typedefs: bool) -> Vec<TypeId> {
        const UNKNOWN: TypeId = TypeId(u32::MAX);
        let step = |id: TypeId| match self.types[id.index()].kind {
            TypeKind::Typedef { .. } if !typedefs => None,
            ref k => k.modifier_target(),
        };
        let mut ends = vec![UNKNOWN; self.types.len()];
        let mut path = Vec::new();
        for start in 0..self.types.len() {
            let mut id = TypeId(start as u32);
            let end = loop {
                if ends[id.index()] != UNKNOWN {
                    break ends[id.index()];
                }
                match step(id) {
                    Some(next) if path.len() <= self.types.len() => {
                        path.push(id);
                        id = next;
                    }
                    _ => break id,
                }
            };
            for p in path.drain(..) {
                ends[p.index()] = end;
            }
            ends[id.index()] = end;
        }
        ends
    }

    /// Size in bytes of type `id`: INT/FLOAT/ENUM/STRUCT/UNION/DATASEC from their size field,
    /// pointers 8, arrays `nelems * size_of(elem)` (checked), VARs the size of their type, and
    /// typedefs/modifiers the size of what they name.
    pub fn size_of(&self, id: TypeId) -> Result<u32> {
        let start = id;
        let mut id = id;
        let mut factor: u64 = 1;
        for _ in 0..=self.types.len() {
            id = self.resolve(id)?;
            let t = self.type_by_id(id)?;
            let size = match &t.kind {
                TypeKind::Int(i) => i.size,
                TypeKind::Ptr { .. } => 8,
                TypeKind::Struct(c) | TypeKind::Union(c) => c.size,
                TypeKind::Enum(e) | TypeKind::Enum64(e) => e.size,
                TypeKind::Datasec(d) => d.size,
                TypeKind::Float { size } => *size,
                TypeKind::Array(a) => {
                    factor = factor.checked_mul(a.nelems as u64).ok_or(BtfError::SizeOverflow { id: start.0 })?;
                    id = a.elem;
                    continue;
                }
                TypeKind::Var { ty, .. } => {
                    id = *ty;
                    continue;
                }
                // `resolve` left no typedef or modifier.
                k => return Err(BtfError::NoSize { id: id.0, kind: k.btf_kind() }),
            };
            let total = factor.checked_mul(size as u64).ok_or(BtfError::SizeOverflow { id: start.0 })?;
            return u32::try_from(total).map_err(|_| BtfError::SizeOverflow { id: start.0 });
        }
        Err(BtfError::Loop { id: start.0 })
    }

    /// The first type of kind `kind` named `name`.
    pub fn find_by_name(&self, kind: BtfKind, name: &str) -> Option<TypeId> {
        self.iter().find(|(_, t)| t.btf_kind() == kind && t.name.as_deref() == Some(name)).map(|(id, _)| id)
    }

    /// All types of kind `kind` named `name`.
    pub fn find_all_by_name<'a>(&'a self, kind: BtfKind, name: &'a str) -> impl Iterator<Item = TypeId> + 'a {
        self.iter().filter(move |(_, t)| t.btf_kind() == kind && t.name.as_deref() == Some(name)).map(|(id, _)| id)
    }

    /// Looks up member `name` of the struct/union `id` (typedefs and modifiers are followed),
    /// searching inside anonymous struct/union members like C does. `Ok(None)` if there is no such
    /// member; an error if `id` is not a struct/union.
    pub fn member_by_name(&self, id: TypeId, name: &str) -> Result<Option<FoundMember<'_>>> {
        let sid = self.resolve(id)?;
        let t = self.type_by_id(sid)?;
        let members = t.kind.members().ok_or(BtfError::WrongKind {
            id: sid.0,
            expected: "STRUCT or UNION",
            found: t.btf_kind(),
        })?;
        // Depth-first in member order, with an explicit stack: (parent, members, next index, base).
        let mut stack: Vec<(TypeId, &[Member], usize, u64)> = vec![(sid, members, 0, 0)];
        let mut work = 0usize;
        while let Some(top) = stack.last_mut() {
            let (parent, members, i, base) = *top;
            let Some(m) = members.get(i) else {
                stack.pop();
                continue;
            };
            top.2 += 1;
            work += 1;
            if work > MAX_QUERY_WORK {
                return Err(BtfError::TooComplex { id: sid.0, limit: MAX_QUERY_WORK });
            }
            let bit_offset = base + m.bit_offset as u64;
            match &m.name {
                Some(n) if n == name => return Ok(Some(FoundMember { member: m, parent, bit_offset })),
                Some(_) => {}
                None => {
                    let inner = self.resolve(m.ty)?;
                    if let Some(inner_members) = self.type_by_id(inner)?.kind.members() {
                        stack.push((inner, inner_members, 0, bit_offset));
                    }
                }
            }
        }
        Ok(None)
    }

    /// The variables (and `.ksyms` functions) of the DATASEC named `name` (`.maps`, `.data`,
    /// `.rodata`, `.bss`, `.kconfig`, `.ksyms`, ...), in file order; `None` if there is no such
    /// DATASEC.
    pub fn datasec_vars(&self, name: &str) -> Option<Vec<DatasecVar<'_>>> {
        let id = self.find_by_name(BtfKind::Datasec, name)?;
        let TypeKind::Datasec(d) = &self.types[id.index()].kind else { return None };
        Some(
            d.vars
                .iter()
                .map(|v| {
                    let t = &self.types[v.ty.index()];
                    let (ty, linkage) = match t.kind {
                        TypeKind::Var { ty, linkage } => (ty, linkage),
                        TypeKind::Func { proto, linkage } => (proto, linkage),
                        // `parse` checked that DATASEC entries are VARs or FUNCs.
                        _ => (TypeId::VOID, Linkage::Other(u32::MAX)),
                    };
                    DatasecVar {
                        id: v.ty,
                        kind: t.btf_kind(),
                        name: t.name_str(),
                        ty,
                        linkage,
                        offset: v.offset,
                        size: v.size,
                    }
                })
                .collect(),
        )
    }
}

/// Edges along which a type contains another one by value (or names it, for typedefs and
/// modifiers). A loop here means an infinitely large or unresolvable type.
fn by_value_edge(k: &TypeKind, i: usize) -> Option<TypeId> {
    match k {
        TypeKind::Array(a) => (i == 0).then_some(a.elem),
        TypeKind::Struct(c) | TypeKind::Union(c) => c.members.get(i).map(|m| m.ty),
        TypeKind::Var { ty, .. } => (i == 0).then_some(*ty),
        TypeKind::Datasec(d) => d.vars.get(i).map(|v| v.ty),
        TypeKind::DeclTag { target, .. } => (i == 0).then_some(*target),
        k => k.modifier_target().filter(|_| i == 0),
    }
}

/// Edges of C declarators: pointers, arrays, function prototypes, typedefs and modifiers. They stop
/// at named aggregates, so a loop here cannot come from C source.
fn declarator_edge(k: &TypeKind, i: usize) -> Option<TypeId> {
    match k {
        TypeKind::Ptr { target } => (i == 0).then_some(*target),
        TypeKind::Array(a) => (i == 0).then_some(a.elem),
        TypeKind::FuncProto(p) => {
            if i == 0 {
                Some(p.ret)
            } else {
                p.params.get(i - 1).map(|p| p.ty)
            }
        }
        TypeKind::Func { proto, .. } => (i == 0).then_some(*proto),
        TypeKind::Var { ty, .. } => (i == 0).then_some(*ty),
        k => k.modifier_target().filter(|_| i == 0),
    }
}
