//! bpfkit's BTF parser: the `.BTF` and `.BTF.ext` ELF sections as clang emits them for
//! `-target bpf` (little-endian only).
//!
//! * [`Btf::parse`] decodes and validates `.BTF`: header, string table and every type kind (INT
//!   through ENUM64), then checks that referenced type ids exist and that there are no reference
//!   loops. The queries a loader needs ([`Btf::resolve`], [`Btf::size_of`], [`Btf::find_by_name`],
//!   [`Btf::member_by_name`], [`Btf::datasec_vars`], [`Btf::map_def_fields`],
//!   [`Btf::type_to_string`]) then never loop and never recurse without a bound.
//! * [`BtfExt::parse`] decodes `.BTF.ext` (func_info, line_info, CO-RE relocations, grouped per ELF
//!   section); [`BtfExt::func_info`], [`BtfExt::line_info`] and [`BtfExt::core_relos`] resolve
//!   their strings and type ids against the `.BTF` of the same object.
//!
//! Every offset, length and count read from the input is checked against the data before it is
//! used (and before anything is allocated from it); malformed input gives a [`BtfError`] naming the
//! section and the byte offset or type id, never a panic. [`fuzz_parse`] is the entry point for
//! fuzzers.
#![forbid(unsafe_code)]

mod btf;
mod error;
mod ext;
mod fmt;
mod maps;
mod read;
mod types;

pub use btf::{
    BTF_HEADER_LEN, BTF_MAX_NAME_OFFSET, BTF_MAX_TYPE, Btf, BtfHeader, DatasecVar, FoundMember, MAX_PRINT_DEPTH,
    MAX_QUERY_WORK,
};
pub use error::{BTF_EXT_SECTION, BTF_SECTION, BtfError, Result};
pub use ext::{
    BTF_EXT_HEADER_CORE_LEN, BTF_EXT_HEADER_MIN_LEN, BtfExt, BtfExtHeader, CoreRelo, CoreReloEntry, CoreReloKind,
    ExtGroup, FuncInfo, FuncInfoEntry, LineInfo, LineInfoEntry, SectionInfo,
};
pub use maps::{MAP_ARRAY_FIELDS, MAP_TYPE_FIELDS, MAP_UINT_FIELDS, MapField};
pub use read::{BTF_MAGIC, BTF_VERSION};
pub use types::{
    Array, BtfKind, Composite, Datasec, Enum, EnumValue, FuncProto, Int, Linkage, Member, Param, Type, TypeId,
    TypeKind, VarSecinfo,
};

/// Entry point for fuzzers: parses `data` as `.BTF` and as `.BTF.ext`, and also splits it (at a
/// point chosen by its first two bytes) into a `.BTF` and a `.BTF.ext` part; runs every query on
/// whatever parses (at most the first 4096 types). Must never panic, loop forever or allocate
/// without bound, whatever `data` holds.
pub fn fuzz_parse(data: &[u8]) {
    let whole = Btf::parse(data).ok();
    if let Some(btf) = &whole {
        exercise_btf(btf);
    }
    if let Ok(ext) = BtfExt::parse(data)
        && let Some(btf) = &whole
    {
        exercise_ext(&ext, btf);
    }
    if data.len() >= 2 {
        let rest = &data[2..];
        let split = u16::from_le_bytes([data[0], data[1]]) as usize % (rest.len() + 1);
        let (btf_part, ext_part) = rest.split_at(split);
        if let Ok(btf) = Btf::parse(btf_part) {
            exercise_btf(&btf);
            if let Ok(ext) = BtfExt::parse(ext_part) {
                exercise_ext(&ext, &btf);
            }
        }
    }
}

fn exercise_btf(btf: &Btf) {
    const MAX_TYPES: usize = 4096;
    for (id, t) in btf.iter().take(MAX_TYPES) {
        let _ = btf.type_by_id(id);
        let _ = btf.name_of(id);
        let _ = btf.resolve(id);
        let _ = btf.skip_modifiers(id);
        let _ = btf.size_of(id);
        let _ = btf.type_to_string(id);
        let _ = btf.map_def_fields(id);
        if let Some(name) = t.name.as_deref() {
            let _ = btf.find_by_name(t.btf_kind(), name);
        }
        if let Some(members) = t.kind.members() {
            for m in members.iter().take(8) {
                if let Some(name) = m.name.as_deref() {
                    let _ = btf.member_by_name(id, name);
                }
            }
            let _ = btf.member_by_name(id, "\u{1}not a member");
        }
        if let TypeKind::Datasec(_) = t.kind
            && let Some(vars) = btf.datasec_vars(t.name_str())
        {
            for v in vars.iter().take(64) {
                let _ = btf.map_def_fields(v.id);
                let _ = btf.type_to_string(v.ty);
            }
        }
    }
    let _ = btf.type_by_id(TypeId(u32::MAX));
    let _ = btf.size_of(TypeId(btf.len() as u32));
    let _ = btf.type_to_string(TypeId(btf.len() as u32));
}

fn exercise_ext(ext: &BtfExt, btf: &Btf) {
    let _ = ext.func_info(btf);
    let _ = ext.line_info(btf);
    let _ = ext.core_relos(btf);
}
