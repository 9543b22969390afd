//! Helpers shared by the integration tests.
#![allow(dead_code)]

use bpfkit_btf::{Btf, BtfExt, Int, TypeKind};
use object::{Object, ObjectSection};
use std::path::PathBuf;

pub fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

/// The `.BTF` and `.BTF.ext` section contents of `tests/data/<name>`.
pub fn sections(name: &str) -> (Vec<u8>, Vec<u8>) {
    let bytes = std::fs::read(data_dir().join(name)).unwrap();
    let file = object::File::parse(&*bytes).unwrap();
    let get = |s: &str| file.section_by_name(s).unwrap().data().unwrap().to_vec();
    (get(".BTF"), get(".BTF.ext"))
}

pub fn load(name: &str) -> (Btf, BtfExt) {
    let (btf, ext) = sections(name);
    (Btf::parse(&btf).unwrap(), BtfExt::parse(&ext).unwrap())
}

fn q(s: Option<&str>) -> String {
    format!("'{}'", s.unwrap_or("(anon)"))
}

/// The types in the raw format of `bpftool btf dump file x.o`.
pub fn bpftool_dump(btf: &Btf) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    for (id, t) in btf.iter().skip(1) {
        let name = q(t.name.as_deref());
        let kind = t.btf_kind();
        let _ = write!(o, "[{}] {} {}", id.0, kind, name);
        match &t.kind {
            TypeKind::Void => {}
            TypeKind::Int(i) => {
                let enc = match i.encoding {
                    0 => "(none)",
                    Int::SIGNED => "SIGNED",
                    Int::CHAR => "CHAR",
                    Int::BOOL => "BOOL",
                    _ => "UNKN",
                };
                let _ = write!(o, " size={} bits_offset={} nr_bits={} encoding={}", i.size, i.offset, i.bits, enc);
            }
            TypeKind::Ptr { target }
            | TypeKind::Typedef { target }
            | TypeKind::Volatile { target }
            | TypeKind::Const { target }
            | TypeKind::Restrict { target }
            | TypeKind::TypeTag { target, .. } => {
                let _ = write!(o, " type_id={}", target.0);
            }
            TypeKind::Array(a) => {
                let _ = write!(o, " type_id={} index_type_id={} nr_elems={}", a.elem.0, a.index.0, a.nelems);
            }
            TypeKind::Struct(c) | TypeKind::Union(c) => {
                let _ = write!(o, " size={} vlen={}", c.size, c.members.len());
                for m in &c.members {
                    let _ = write!(o, "\n\t{} type_id={} bits_offset={}", q(m.name.as_deref()), m.ty.0, m.bit_offset);
                    if m.bitfield_size != 0 {
                        let _ = write!(o, " bitfield_size={}", m.bitfield_size);
                    }
                }
            }
            TypeKind::Enum(e) | TypeKind::Enum64(e) => {
                let enc = if e.signed { "SIGNED" } else { "UNSIGNED" };
                let _ = write!(o, " encoding={} size={} vlen={}", enc, e.size, e.values.len());
                for v in &e.values {
                    if e.signed {
                        let _ = write!(o, "\n\t'{}' val={}", v.name, v.signed_value());
                    } else {
                        let _ = write!(o, "\n\t'{}' val={}", v.name, v.unsigned_value());
                    }
                }
            }
            TypeKind::Fwd { is_union } => {
                let _ = write!(o, " fwd_kind={}", if *is_union { "union" } else { "struct" });
            }
            TypeKind::Func { proto, linkage } => {
                let _ = write!(o, " type_id={} linkage={}", proto.0, linkage.name());
            }
            TypeKind::FuncProto(p) => {
                let _ = write!(o, " ret_type_id={} vlen={}", p.ret.0, p.params.len());
                for prm in &p.params {
                    let _ = write!(o, "\n\t{} type_id={}", q(prm.name.as_deref()), prm.ty.0);
                }
            }
            TypeKind::Var { ty, linkage } => {
                let _ = write!(o, " type_id={}, linkage={}", ty.0, linkage.name());
            }
            TypeKind::Datasec(d) => {
                let _ = write!(o, " size={} vlen={}", d.size, d.vars.len());
                for v in &d.vars {
                    let vt = &btf.types()[v.ty.index()];
                    let _ = write!(
                        o,
                        "\n\ttype_id={} offset={} size={} ({} {})",
                        v.ty.0,
                        v.offset,
                        v.size,
                        vt.btf_kind(),
                        q(vt.name.as_deref())
                    );
                }
            }
            TypeKind::Float { size } => {
                let _ = write!(o, " size={size}");
            }
            TypeKind::DeclTag { target, component_idx, .. } => {
                let _ = write!(o, " type_id={} component_idx={}", target.0, component_idx);
            }
        }
        o.push('\n');
    }
    o
}

/// Kind numbers, for [`Builder::raw`].
pub mod kind {
    pub const INT: u32 = 1;
    pub const PTR: u32 = 2;
    pub const ARRAY: u32 = 3;
    pub const STRUCT: u32 = 4;
    pub const UNION: u32 = 5;
    pub const ENUM: u32 = 6;
    pub const TYPEDEF: u32 = 8;
    pub const VOLATILE: u32 = 9;
    pub const CONST: u32 = 10;
    pub const FUNC: u32 = 12;
    pub const FUNC_PROTO: u32 = 13;
    pub const VAR: u32 = 14;
    pub const DATASEC: u32 = 15;
    pub const DECL_TAG: u32 = 17;
}

pub fn info(kind: u32, vlen: u32, kflag: bool) -> u32 {
    ((kflag as u32) << 31) | (kind << 24) | vlen
}

/// Writes `.BTF` sections by hand, for the hostile-input tests.
pub struct Builder {
    pub types: Vec<u8>,
    pub strings: Vec<u8>,
    pub count: u32,
}

impl Default for Builder {
    fn default() -> Self {
        Builder { types: Vec::new(), strings: vec![0], count: 0 }
    }
}

impl Builder {
    pub fn str(&mut self, s: &str) -> u32 {
        if s.is_empty() {
            return 0;
        }
        let off = self.strings.len() as u32;
        self.strings.extend_from_slice(s.as_bytes());
        self.strings.push(0);
        off
    }

    /// Appends a type: the three header words and `extra` words. Returns its id.
    pub fn raw(&mut self, name_off: u32, info: u32, size_type: u32, extra: &[u32]) -> u32 {
        for w in [name_off, info, size_type].iter().chain(extra) {
            self.types.extend_from_slice(&w.to_le_bytes());
        }
        self.count += 1;
        self.count
    }

    pub fn int(&mut self, name: &str, size: u32, signed: bool) -> u32 {
        let n = self.str(name);
        self.raw(n, info(kind::INT, 0, false), size, &[((signed as u32) << 24) | (size * 8)])
    }

    pub fn ptr(&mut self, target: u32) -> u32 {
        self.raw(0, info(kind::PTR, 0, false), target, &[])
    }

    pub fn typedef(&mut self, name: &str, target: u32) -> u32 {
        let n = self.str(name);
        self.raw(n, info(kind::TYPEDEF, 0, false), target, &[])
    }

    pub fn array(&mut self, elem: u32, index: u32, nelems: u32) -> u32 {
        self.raw(0, info(kind::ARRAY, 0, false), 0, &[elem, index, nelems])
    }

    /// Members are (name, type, bit offset).
    pub fn struct_(&mut self, name: &str, size: u32, members: &[(&str, u32, u32)]) -> u32 {
        let n = self.str(name);
        let mut extra = Vec::new();
        for (m, ty, off) in members {
            extra.extend([self.str(m), *ty, *off]);
        }
        self.raw(n, info(kind::STRUCT, members.len() as u32, false), size, &extra)
    }

    pub fn func_proto(&mut self, ret: u32, params: &[u32]) -> u32 {
        let extra: Vec<u32> = params.iter().flat_map(|&p| [0, p]).collect();
        self.raw(0, info(kind::FUNC_PROTO, params.len() as u32, false), ret, &extra)
    }

    /// The section with a 24-byte header, types first, then strings.
    pub fn build(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let words = [
            0xeb9f_u32 | (1 << 16),
            24,
            0,
            self.types.len() as u32,
            self.types.len() as u32,
            self.strings.len() as u32,
        ];
        for w in words {
            out.extend_from_slice(&w.to_le_bytes());
        }
        out.extend_from_slice(&self.types);
        out.extend_from_slice(&self.strings);
        out
    }
}

pub fn put32(data: &mut [u8], off: usize, v: u32) {
    data[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

/// A `.BTF.ext` section: 32-byte header, then the three sub-sections back to back. Each
/// sub-section is given whole (record size word included); empty ones get length 0.
pub fn build_ext(func: &[u32], line: &[u32], core: &[u32]) -> Vec<u8> {
    let bytes = |w: &[u32]| w.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let (f, l, c) = (bytes(func), bytes(line), bytes(core));
    let mut out = Vec::new();
    let fl = f.len() as u32;
    let ll = l.len() as u32;
    let cl = c.len() as u32;
    for w in [0xeb9f_u32 | (1 << 16), 32, 0, fl, fl, ll, fl + ll, cl] {
        out.extend_from_slice(&w.to_le_bytes());
    }
    out.extend(f);
    out.extend(l);
    out.extend(c);
    out
}
