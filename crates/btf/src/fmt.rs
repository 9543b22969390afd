//! C-like names for BTF types.

use crate::btf::{Btf, MAX_PRINT_DEPTH, MAX_QUERY_WORK};
use crate::error::{BtfError, Result};
use crate::types::{TypeId, TypeKind};

impl Btf {
    /// A C-like spelling of type `id`: `unsigned int`, `struct xdp_md *`, `int[4]`,
    /// `int (*)(void *, u64_t)`, `const char *const`. FUNCs print as declarations
    /// (`int prog(struct xdp_md *ctx)`), VARs as `type name`, DATASECs as `SEC("name")`, DECL_TAGs
    /// as their attribute. Anonymous aggregates print as `struct (anon)`.
    ///
    /// Fails on unknown ids, on declarators nested deeper than [`MAX_PRINT_DEPTH`], and on types
    /// whose spelling would visit more than [`MAX_QUERY_WORK`] types.
    pub fn type_to_string(&self, id: TypeId) -> Result<String> {
        let mut p = Printer { btf: self, root: id, work: 0 };
        p.decl(id, String::new(), 0)
    }
}

struct Printer<'a> {
    btf: &'a Btf,
    root: TypeId,
    work: usize,
}

/// `base` followed by the declarator `inner`.
fn join(base: &str, inner: &str) -> String {
    if inner.is_empty() {
        base.to_owned()
    } else if inner.starts_with('[') {
        format!("{base}{inner}")
    } else {
        format!("{base} {inner}")
    }
}

/// Parenthesizes a pointer declarator before a suffix (`(*)[4]`, `(*f)(int)`).
fn wrap(inner: &str) -> String {
    if inner.starts_with('*') { format!("({inner})") } else { inner.to_owned() }
}

fn anon(name: Option<&str>) -> &str {
    name.unwrap_or("(anon)")
}

impl Printer<'_> {
    fn decl(&mut self, id: TypeId, inner: String, depth: usize) -> Result<String> {
        if depth > MAX_PRINT_DEPTH {
            return Err(BtfError::TooDeep { id: self.root.0, limit: MAX_PRINT_DEPTH });
        }
        self.work += 1;
        if self.work > MAX_QUERY_WORK {
            return Err(BtfError::TooComplex { id: self.root.0, limit: MAX_QUERY_WORK });
        }
        let t = self.btf.type_by_id(id)?;
        let name = t.name.as_deref();
        Ok(match &t.kind {
            TypeKind::Void => join("void", &inner),
            TypeKind::Int(_) | TypeKind::Float { .. } | TypeKind::Typedef { .. } => join(anon(name), &inner),
            TypeKind::Struct(_) => join(&format!("struct {}", anon(name)), &inner),
            TypeKind::Union(_) => join(&format!("union {}", anon(name)), &inner),
            TypeKind::Enum(_) | TypeKind::Enum64(_) => join(&format!("enum {}", anon(name)), &inner),
            TypeKind::Fwd { is_union } => {
                join(&format!("{} {}", if *is_union { "union" } else { "struct" }, anon(name)), &inner)
            }
            TypeKind::Ptr { target } => self.decl(*target, format!("*{inner}"), depth + 1)?,
            TypeKind::Const { target } | TypeKind::Volatile { target } | TypeKind::Restrict { target } => {
                let q = match t.kind {
                    TypeKind::Const { .. } => "const",
                    TypeKind::Volatile { .. } => "volatile",
                    _ => "restrict",
                };
                let target_is_ptr = matches!(self.btf.type_by_id(*target)?.kind, TypeKind::Ptr { .. });
                if target_is_ptr {
                    // `char *const p`: the qualifier binds to the pointer.
                    self.decl(*target, join(q, &inner), depth + 1)?
                } else {
                    format!("{q} {}", self.decl(*target, inner, depth + 1)?)
                }
            }
            TypeKind::TypeTag { target, .. } => {
                let tag = format!("__attribute__((btf_type_tag(\"{}\")))", name.unwrap_or(""));
                self.decl(*target, join(&tag, &inner), depth + 1)?
            }
            TypeKind::Array(a) => {
                let dims = if a.nelems == 0 { "[]".to_owned() } else { format!("[{}]", a.nelems) };
                self.decl(a.elem, format!("{}{dims}", wrap(&inner)), depth + 1)?
            }
            TypeKind::FuncProto(p) => {
                let mut params = Vec::with_capacity(p.params.len());
                for (i, param) in p.params.iter().enumerate() {
                    if param.ty == TypeId::VOID && param.name.is_none() && i + 1 == p.params.len() {
                        params.push("...".to_owned());
                    } else {
                        let pname = param.name.clone().unwrap_or_default();
                        params.push(self.decl(param.ty, pname, depth + 1)?);
                    }
                }
                let params = if params.is_empty() { "void".to_owned() } else { params.join(", ") };
                self.decl(p.ret, format!("{}({params})", wrap(&inner)), depth + 1)?
            }
            TypeKind::Func { proto, .. } => {
                let fname = anon(name).to_owned();
                self.decl(*proto, if inner.is_empty() { fname } else { inner }, depth + 1)?
            }
            TypeKind::Var { ty, .. } => {
                let vname = anon(name).to_owned();
                self.decl(*ty, if inner.is_empty() { vname } else { inner }, depth + 1)?
            }
            TypeKind::Datasec(_) => format!("SEC(\"{}\")", name.unwrap_or("")),
            TypeKind::DeclTag { .. } => format!("__attribute__((btf_decl_tag(\"{}\")))", name.unwrap_or("")),
        })
    }
}
