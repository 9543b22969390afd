//! The decoded form of BTF types.

use std::fmt;

/// A BTF type id: an index into [`Btf::types`](crate::Btf::types). Id 0 is `void`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TypeId(pub u32);

impl TypeId {
    /// The `void` type.
    pub const VOID: TypeId = TypeId(0);

    /// The id as a `usize` index.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for TypeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}]", self.0)
    }
}

/// The kind numbers of `btf_type.info` bits 24..=28, as the kernel defines them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum BtfKind {
    /// Kind 0 is not a valid kind in the type section; it is used here for type id 0, `void`.
    Void = 0,
    Int = 1,
    Ptr = 2,
    Array = 3,
    Struct = 4,
    Union = 5,
    Enum = 6,
    Fwd = 7,
    Typedef = 8,
    Volatile = 9,
    Const = 10,
    Restrict = 11,
    Func = 12,
    FuncProto = 13,
    Var = 14,
    Datasec = 15,
    Float = 16,
    DeclTag = 17,
    TypeTag = 18,
    Enum64 = 19,
}

impl BtfKind {
    /// The kind with number `n`, if it is a known kind other than 0.
    pub fn from_u8(n: u8) -> Option<BtfKind> {
        use BtfKind::*;
        Some(match n {
            1 => Int,
            2 => Ptr,
            3 => Array,
            4 => Struct,
            5 => Union,
            6 => Enum,
            7 => Fwd,
            8 => Typedef,
            9 => Volatile,
            10 => Const,
            11 => Restrict,
            12 => Func,
            13 => FuncProto,
            14 => Var,
            15 => Datasec,
            16 => Float,
            17 => DeclTag,
            18 => TypeTag,
            19 => Enum64,
            _ => return None,
        })
    }

    /// The upper-case name bpftool prints (`INT`, `FUNC_PROTO`, ...); `VOID` for kind 0.
    pub fn name(self) -> &'static str {
        use BtfKind::*;
        match self {
            Void => "VOID",
            Int => "INT",
            Ptr => "PTR",
            Array => "ARRAY",
            Struct => "STRUCT",
            Union => "UNION",
            Enum => "ENUM",
            Fwd => "FWD",
            Typedef => "TYPEDEF",
            Volatile => "VOLATILE",
            Const => "CONST",
            Restrict => "RESTRICT",
            Func => "FUNC",
            FuncProto => "FUNC_PROTO",
            Var => "VAR",
            Datasec => "DATASEC",
            Float => "FLOAT",
            DeclTag => "DECL_TAG",
            TypeTag => "TYPE_TAG",
            Enum64 => "ENUM64",
        }
    }
}

impl fmt::Display for BtfKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One entry of the type table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Type {
    /// `name_off` as stored (0 for anonymous types and for `void`).
    pub name_off: u32,
    /// The name, `None` when `name_off` names the empty string.
    pub name: Option<String>,
    /// Everything else.
    pub kind: TypeKind,
}

impl Type {
    /// The kind number of this type.
    pub fn btf_kind(&self) -> BtfKind {
        self.kind.btf_kind()
    }

    /// The name, or `""` for anonymous types.
    pub fn name_str(&self) -> &str {
        self.name.as_deref().unwrap_or("")
    }
}

/// The kind-specific part of a [`Type`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TypeKind {
    /// Type id 0.
    Void,
    Int(Int),
    Ptr {
        target: TypeId,
    },
    Array(Array),
    Struct(Composite),
    Union(Composite),
    /// `BTF_KIND_ENUM`: values are 32-bit in the file.
    Enum(Enum),
    Fwd {
        /// `true` for `union X;`, `false` for `struct X;` (the kind flag).
        is_union: bool,
    },
    Typedef {
        target: TypeId,
    },
    Volatile {
        target: TypeId,
    },
    Const {
        target: TypeId,
    },
    Restrict {
        target: TypeId,
    },
    Func {
        /// Always a [`TypeKind::FuncProto`] (checked by the parser).
        proto: TypeId,
        linkage: Linkage,
    },
    FuncProto(FuncProto),
    Var {
        ty: TypeId,
        linkage: Linkage,
    },
    Datasec(Datasec),
    Float {
        size: u32,
    },
    DeclTag {
        target: TypeId,
        /// -1 for the declaration itself, else the member index (struct/union) or the parameter
        /// index (func).
        component_idx: i32,
        /// The kind flag: the tag is an arbitrary `__attribute__((...))` rather than
        /// `btf_decl_tag("...")`.
        attribute: bool,
    },
    TypeTag {
        target: TypeId,
        /// The kind flag: the tag is an arbitrary `__attribute__((...))`.
        attribute: bool,
    },
    /// `BTF_KIND_ENUM64`: values are 64-bit in the file.
    Enum64(Enum),
}

impl TypeKind {
    /// The kind number.
    pub fn btf_kind(&self) -> BtfKind {
        match self {
            TypeKind::Void => BtfKind::Void,
            TypeKind::Int(_) => BtfKind::Int,
            TypeKind::Ptr { .. } => BtfKind::Ptr,
            TypeKind::Array(_) => BtfKind::Array,
            TypeKind::Struct(_) => BtfKind::Struct,
            TypeKind::Union(_) => BtfKind::Union,
            TypeKind::Enum(_) => BtfKind::Enum,
            TypeKind::Fwd { .. } => BtfKind::Fwd,
            TypeKind::Typedef { .. } => BtfKind::Typedef,
            TypeKind::Volatile { .. } => BtfKind::Volatile,
            TypeKind::Const { .. } => BtfKind::Const,
            TypeKind::Restrict { .. } => BtfKind::Restrict,
            TypeKind::Func { .. } => BtfKind::Func,
            TypeKind::FuncProto(_) => BtfKind::FuncProto,
            TypeKind::Var { .. } => BtfKind::Var,
            TypeKind::Datasec(_) => BtfKind::Datasec,
            TypeKind::Float { .. } => BtfKind::Float,
            TypeKind::DeclTag { .. } => BtfKind::DeclTag,
            TypeKind::TypeTag { .. } => BtfKind::TypeTag,
            TypeKind::Enum64(_) => BtfKind::Enum64,
        }
    }

    /// For typedef, the modifiers and type tags: the type they apply to.
    pub fn modifier_target(&self) -> Option<TypeId> {
        match *self {
            TypeKind::Typedef { target }
            | TypeKind::Volatile { target }
            | TypeKind::Const { target }
            | TypeKind::Restrict { target }
            | TypeKind::TypeTag { target, .. } => Some(target),
            _ => None,
        }
    }

    /// The members of a struct or union.
    pub fn members(&self) -> Option<&[Member]> {
        match self {
            TypeKind::Struct(c) | TypeKind::Union(c) => Some(&c.members),
            _ => None,
        }
    }

    /// Every type id this type refers to, in file order.
    pub fn referenced_ids(&self) -> Vec<TypeId> {
        match self {
            TypeKind::Void | TypeKind::Int(_) | TypeKind::Enum(_) | TypeKind::Enum64(_) => vec![],
            TypeKind::Fwd { .. } | TypeKind::Float { .. } => vec![],
            TypeKind::Ptr { target }
            | TypeKind::Typedef { target }
            | TypeKind::Volatile { target }
            | TypeKind::Const { target }
            | TypeKind::Restrict { target }
            | TypeKind::DeclTag { target, .. }
            | TypeKind::TypeTag { target, .. } => vec![*target],
            TypeKind::Array(a) => vec![a.elem, a.index],
            TypeKind::Struct(c) | TypeKind::Union(c) => c.members.iter().map(|m| m.ty).collect(),
            TypeKind::Func { proto, .. } => vec![*proto],
            TypeKind::FuncProto(p) => std::iter::once(p.ret).chain(p.params.iter().map(|p| p.ty)).collect(),
            TypeKind::Var { ty, .. } => vec![*ty],
            TypeKind::Datasec(d) => d.vars.iter().map(|v| v.ty).collect(),
        }
    }
}

/// `BTF_KIND_INT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Int {
    /// Storage size in bytes: 1, 2, 4, 8 or 16.
    pub size: u32,
    /// `BTF_INT_ENCODING` bits: [`Int::SIGNED`], [`Int::CHAR`], [`Int::BOOL`] (at most one).
    pub encoding: u8,
    /// `BTF_INT_OFFSET`: bit offset of the value inside the storage (0 in clang output).
    pub offset: u8,
    /// `BTF_INT_BITS`: number of value bits.
    pub bits: u8,
}

impl Int {
    pub const SIGNED: u8 = 1;
    pub const CHAR: u8 = 2;
    pub const BOOL: u8 = 4;

    pub fn is_signed(&self) -> bool {
        self.encoding & Int::SIGNED != 0
    }
    pub fn is_char(&self) -> bool {
        self.encoding & Int::CHAR != 0
    }
    pub fn is_bool(&self) -> bool {
        self.encoding & Int::BOOL != 0
    }
}

/// `BTF_KIND_ARRAY`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Array {
    pub elem: TypeId,
    pub index: TypeId,
    pub nelems: u32,
}

/// `BTF_KIND_STRUCT` / `BTF_KIND_UNION`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Composite {
    /// Size in bytes.
    pub size: u32,
    pub members: Vec<Member>,
}

/// A struct or union member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub name_off: u32,
    /// `None` for anonymous members (embedded anonymous structs/unions, unnamed bitfields).
    pub name: Option<String>,
    pub ty: TypeId,
    /// Offset in bits from the start of the struct.
    pub bit_offset: u32,
    /// Width of a bitfield, 0 if the member is not a bitfield (or the struct does not set the kind
    /// flag, in which case the width is that of the member's INT type).
    pub bitfield_size: u32,
}

/// `BTF_KIND_ENUM` / `BTF_KIND_ENUM64`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Enum {
    /// Size in bytes (1, 2, 4 or 8).
    pub size: u32,
    /// The kind flag: values are signed.
    pub signed: bool,
    pub values: Vec<EnumValue>,
}

/// An enumerator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnumValue {
    pub name_off: u32,
    pub name: String,
    /// The value's bits, widened to 64 bits: sign-extended for a signed 32-bit ENUM, zero-extended
    /// for an unsigned one. Interpret with [`EnumValue::signed_value`] or
    /// [`EnumValue::unsigned_value`] according to [`Enum::signed`].
    pub value: u64,
}

impl EnumValue {
    pub fn signed_value(&self) -> i64 {
        self.value as i64
    }
    pub fn unsigned_value(&self) -> u64 {
        self.value
    }
}

/// Linkage of a FUNC (`vlen`) or VAR (`btf_var.linkage`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Linkage {
    /// 0: `static`.
    Static,
    /// 1: global (for a VAR: global and allocated in the object).
    Global,
    /// 2: `extern`.
    Extern,
    /// Any other value, kept as is.
    Other(u32),
}

impl Linkage {
    pub fn from_u32(v: u32) -> Linkage {
        match v {
            0 => Linkage::Static,
            1 => Linkage::Global,
            2 => Linkage::Extern,
            n => Linkage::Other(n),
        }
    }

    pub fn to_u32(self) -> u32 {
        match self {
            Linkage::Static => 0,
            Linkage::Global => 1,
            Linkage::Extern => 2,
            Linkage::Other(n) => n,
        }
    }

    /// The word bpftool prints.
    pub fn name(self) -> &'static str {
        match self {
            Linkage::Static => "static",
            Linkage::Global => "global",
            Linkage::Extern => "extern",
            Linkage::Other(_) => "(unknown)",
        }
    }
}

/// `BTF_KIND_FUNC_PROTO`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FuncProto {
    /// Return type (0 for `void`).
    pub ret: TypeId,
    pub params: Vec<Param>,
}

impl FuncProto {
    /// The prototype ends with `...`: the last parameter has type 0 and no name.
    pub fn is_variadic(&self) -> bool {
        self.params.last().is_some_and(|p| p.ty == TypeId::VOID && p.name_off == 0)
    }
}

/// A function parameter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Param {
    pub name_off: u32,
    /// Parameter names are only present in the prototypes of FUNC types.
    pub name: Option<String>,
    /// 0 (with no name) for the `...` of a variadic prototype.
    pub ty: TypeId,
}

/// `BTF_KIND_DATASEC`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Datasec {
    /// Size in bytes. clang emits 0 and lets the loader fill in the ELF section size.
    pub size: u32,
    pub vars: Vec<VarSecinfo>,
}

/// One `btf_var_secinfo`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VarSecinfo {
    /// A VAR, or (in `.ksyms`) a FUNC for an extern kernel function (checked by the parser).
    pub ty: TypeId,
    /// Offset in the section. clang emits 0 for the variables of sections it does not lay out
    /// itself; the loader fills in the ELF symbol value.
    pub offset: u32,
    pub size: u32,
}
