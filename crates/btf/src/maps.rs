//! libbpf's "BTF-defined map" encoding (`struct { __uint(...); __type(...); } m SEC(".maps");`).

use crate::btf::Btf;
use crate::error::{BtfError, Result};
use crate::types::{TypeId, TypeKind};

/// One member of a BTF-defined map definition, decoded per `bpf_helpers.h`:
///
/// * `__uint(name, val)` is `int (*name)[val]`: a PTR to an ARRAY with `nelems = val`;
/// * `__type(name, T)` is `typeof(T) *name`: a PTR to `T`;
/// * `__array(name, T)` is `typeof(T) *name[]`: a zero-length ARRAY of PTR to `T`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapField {
    /// `__uint(name, val)`: the value.
    Uint(u32),
    /// `__type(name, T)`: `T`, exactly as the pointer names it (typedefs kept, so `__type(key,
    /// __u32)` gives the `__u32` TYPEDEF).
    Type(TypeId),
    /// `__array(name, T)`: `T`, exactly as the pointer names it (the inner map's definition struct
    /// for map-in-maps, a FUNC_PROTO for program arrays).
    Array(TypeId),
}

/// Member names libbpf reads with `__uint`.
pub const MAP_UINT_FIELDS: &[&str] =
    &["type", "max_entries", "map_flags", "numa_node", "key_size", "value_size", "pinning", "map_extra"];
/// Member names libbpf reads with `__type`.
pub const MAP_TYPE_FIELDS: &[&str] = &["key", "value"];
/// Member names libbpf reads with `__array`.
pub const MAP_ARRAY_FIELDS: &[&str] = &["values"];

impl Btf {
    /// Decodes the members of a BTF-defined map definition, in declaration order. `id` is the map's
    /// VAR (as listed by `datasec_vars(".maps")`) or its struct type (typedefs and modifiers are
    /// followed).
    ///
    /// The encoding is recognised from the member's type, except that the names libbpf knows decide
    /// between readings that are ambiguous: a pointer to an array is a [`MapField::Uint`] for the
    /// [`MAP_UINT_FIELDS`] but a [`MapField::Type`] for `key`/`value` (`__type(value, int[4])`).
    /// A known name with the wrong encoding, an anonymous member, or a member that fits none of the
    /// three encodings, is an error. Interpreting the fields (map type numbers, sizes) is the
    /// caller's job.
    pub fn map_def_fields(&self, id: TypeId) -> Result<Vec<(String, MapField)>> {
        let mut sid = id;
        if let TypeKind::Var { ty, .. } = self.type_by_id(id)?.kind {
            sid = ty;
        }
        let sid = self.resolve(sid)?;
        let st = self.type_by_id(sid)?;
        let TypeKind::Struct(def) = &st.kind else {
            return Err(BtfError::WrongKind { id: sid.0, expected: "STRUCT", found: st.btf_kind() });
        };
        let mut out = Vec::with_capacity(def.members.len());
        for m in &def.members {
            let err = |field: &str, reason: String| BtfError::MapDef { id: sid.0, field: field.to_owned(), reason };
            let Some(name) = m.name.as_deref() else {
                return Err(err("(anon)", "anonymous member".to_owned()));
            };
            let field = self.classify(m.ty, name).map_err(|reason| err(name, reason))?;
            out.push((name.to_owned(), field));
        }
        Ok(out)
    }

    fn classify(&self, member_ty: TypeId, name: &str) -> Result<MapField, String> {
        let e = |e: BtfError| e.to_string();
        let kind_name = |id: TypeId| self.type_by_id(id).map(|t| t.btf_kind().name()).unwrap_or("?");
        let t = self.resolve(member_ty).map_err(e)?;
        let field = match self.type_by_id(t).map_err(e)?.kind {
            TypeKind::Ptr { target } => {
                match (&self.type_by_id(target).map_err(e)?.kind, MAP_TYPE_FIELDS.contains(&name)) {
                    (TypeKind::Array(a), false) => MapField::Uint(a.nelems),
                    _ => MapField::Type(target),
                }
            }
            TypeKind::Array(a) => {
                if a.nelems != 0 {
                    return Err(format!("__array must be a zero-sized array, found {} elements", a.nelems));
                }
                let elem = self.resolve(a.elem).map_err(e)?;
                match self.type_by_id(elem).map_err(e)?.kind {
                    TypeKind::Ptr { target } => MapField::Array(target),
                    _ => {
                        return Err(format!(
                            "__array must be an array of pointers, found an array of {}",
                            kind_name(elem)
                        ));
                    }
                }
            }
            _ => {
                return Err(format!(
                    "expected a pointer (__uint, __type) or an array of pointers (__array), found {}",
                    kind_name(t)
                ));
            }
        };
        let expected = if MAP_UINT_FIELDS.contains(&name) {
            Some("__uint (a pointer to an array)")
        } else if MAP_TYPE_FIELDS.contains(&name) {
            Some("__type (a pointer)")
        } else if MAP_ARRAY_FIELDS.contains(&name) {
            Some("__array (a zero-sized array of pointers)")
        } else {
            None
        };
        let matches = match field {
            MapField::Uint(_) => MAP_UINT_FIELDS.contains(&name),
            MapField::Type(_) => MAP_TYPE_FIELDS.contains(&name),
            MapField::Array(_) => MAP_ARRAY_FIELDS.contains(&name),
        };
        match expected {
            Some(what) if !matches => Err(format!("expected {what}, found {}", describe(field))),
            _ => Ok(field),
        }
    }
}

fn describe(f: MapField) -> &'static str {
    match f {
        MapField::Uint(_) => "a pointer to an array (__uint)",
        MapField::Type(_) => "a pointer to a non-array type (__type)",
        MapField::Array(_) => "an array of pointers (__array)",
    }
}
