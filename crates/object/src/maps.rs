//! Map definitions: BTF-defined (`.maps`), legacy (`maps`, `struct bpf_map_def`), iproute2's
//! `struct bpf_elf_map`, and the global-data maps libbpf creates for `.data`, `.rodata*`,
//! `.data.*`, `.bss` and `.kconfig`.

use crate::{Extern, Loader, ObjectError, RelocTarget, Symbol};
use bpfkit_btf::MapField;
use object::elf;

/// `BPF_MAP_TYPE_ARRAY`.
const ARRAY: u32 = 2;
/// `BPF_MAP_TYPE_PROG_ARRAY`.
const PROG_ARRAY: u32 = 3;
/// `BPF_MAP_TYPE_HASH_OF_MAPS`.
const HASH_OF_MAPS: u32 = 13;
/// `BPF_F_RDONLY_PROG`.
const F_RDONLY_PROG: u32 = 1 << 7;
/// `BPF_F_MMAPABLE`.
const F_MMAPABLE: u32 = 1 << 10;
/// The kernel's largest array map value (`KMALLOC_MAX_SIZE` on x86-64): the limit for global
/// data sections and `.kconfig`, checked before anything is allocated.
pub const MAX_VALUE_SIZE: u32 = 1 << 22;

/// Where a map definition came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MapOrigin {
    /// A BTF-defined map in `.maps`.
    Btf,
    /// A `struct bpf_map_def` in the legacy `maps` section.
    Legacy,
    /// An iproute2 `struct bpf_elf_map`; `id`, `inner_id` and `inner_idx` are kept as given.
    Iproute2 { id: u32, inner_id: u32, inner_idx: u32 },
    /// A global-data section; `.rodata*` is read-only to programs and frozen at load.
    Data { section: String, read_only: bool },
    /// The `.kconfig` externs.
    Kconfig,
}

/// A slot of a prog array or map-in-map initialised declaratively (`.values = { [i] = &x }`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MapInit {
    Prog { index: u32, prog: String },
    Map { index: u32, map: String },
}

/// A map as the object defines it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapDef {
    pub name: String,
    /// Kernel `enum bpf_map_type` number.
    pub map_type: u32,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    pub flags: u32,
    pub map_extra: u64,
    /// `LIBBPF_PIN_*`: recorded, ignored (bpfkit has no bpffs).
    pub pinning: u32,
    /// Template of the inner map of a map-in-map.
    pub inner: Option<Box<MapDef>>,
    pub origin: MapOrigin,
    /// Initial value of element 0 (global data), else empty.
    pub data: Vec<u8>,
    pub init: Vec<MapInit>,
}

impl MapDef {
    fn new(name: &str, origin: MapOrigin) -> MapDef {
        MapDef {
            name: name.to_string(),
            map_type: 0,
            key_size: 0,
            value_size: 0,
            max_entries: 0,
            flags: 0,
            map_extra: 0,
            pinning: 0,
            inner: None,
            origin,
            data: Vec::new(),
            init: Vec::new(),
        }
    }

    /// Whether programs may only read the map.
    pub fn read_only_to_programs(&self) -> bool {
        self.flags & F_RDONLY_PROG != 0
    }
}

fn is_data_section(name: &str) -> bool {
    name == ".data"
        || name == ".bss"
        || name == ".rodata"
        || name.starts_with(".data.")
        || name.starts_with(".rodata.")
        || name.starts_with(".bss.")
}

fn too_big(size: u64) -> String {
    format!("{size} bytes is more than the kernel's {MAX_VALUE_SIZE}-byte limit for a map value")
}

fn map_err(map: &str, reason: impl Into<String>) -> ObjectError {
    ObjectError::Map { map: map.to_string(), reason: reason.into() }
}

/// Every map of the object, and its externs.
pub(crate) fn collect(l: &Loader<'_>) -> Result<(Vec<MapDef>, Vec<Extern>), ObjectError> {
    let mut maps = Vec::new();
    if let Some(si) = l.section_index(".maps") {
        btf_maps(l, si, &mut maps)?;
    }
    if let Some(si) = l.section_index("maps") {
        legacy_maps(l, si, &mut maps)?;
    }
    for (si, sec) in l.sections.iter().enumerate() {
        if !is_data_section(&sec.name) || !sec.alloc {
            continue;
        }
        let read_only = sec.name.starts_with(".rodata");
        let mut m = MapDef::new(&sec.name, MapOrigin::Data { section: sec.name.clone(), read_only });
        m.map_type = ARRAY;
        m.key_size = 4;
        m.value_size = u32::try_from(sec.size)
            .ok()
            .filter(|&n| n <= MAX_VALUE_SIZE)
            .ok_or_else(|| ObjectError::section(&sec.name, too_big(sec.size)))?;
        if m.value_size == 0 {
            continue;
        }
        m.max_entries = 1;
        m.flags = F_MMAPABLE | if read_only { F_RDONLY_PROG } else { 0 };
        m.data = if sec.nobits { vec![0; m.value_size as usize] } else { sec.data.to_vec() };
        let _ = si;
        maps.push(m);
    }
    let externs = externs(l, &mut maps)?;
    Ok((maps, externs))
}

fn btf_maps(l: &Loader<'_>, si: usize, maps: &mut Vec<MapDef>) -> Result<(), ObjectError> {
    let btf = l.btf.as_ref().ok_or_else(|| ObjectError::section(".maps", "BTF-defined maps need a .BTF section"))?;
    let vars = btf.datasec_vars(".maps").unwrap_or_default();
    let data = l.sections[si].data;
    for var in vars {
        let mut m = map_from_btf(btf, var.name, var.ty)?;
        // Clang leaves DATASEC offsets at 0 in objects; the symbol says where the map is (libbpf
        // fixes the DATASEC up the same way).
        let sym = l
            .symbols
            .iter()
            .find(|s| s.section == Some(si) && s.name == var.name)
            .ok_or_else(|| map_err(var.name, "no symbol in .maps"))?;
        let (var_offset, var_size) = (sym.value, sym.size);
        // `.values = { [i] = &x }`: relocations in `.maps` inside this variable's bytes.
        let value_slots_at =
            var_offset.saturating_add(u64::from(values_member_offset(btf, var.ty).unwrap_or(u32::MAX)));
        for r in l.data_relocs.get(&si).into_iter().flatten() {
            if r.offset < var_offset || r.offset >= var_offset.saturating_add(var_size) {
                continue;
            }
            let Some(rel) = r.offset.checked_sub(value_slots_at) else {
                return Err(ObjectError::reloc(
                    ".maps",
                    r.offset,
                    format!("inside map `{}` outside `values`", var.name),
                ));
            };
            let index =
                u32::try_from(rel / 8).map_err(|_| ObjectError::reloc(".maps", r.offset, "index out of range"))?;
            // For arrays the index must be a slot; for hash maps of maps it is the key.
            if index >= m.max_entries && m.map_type != HASH_OF_MAPS {
                return Err(ObjectError::reloc(
                    ".maps",
                    r.offset,
                    format!("slot {index} of `{}` past max_entries", var.name),
                ));
            }
            let sym = &l.symbols[r.symbol];
            let init = if m.map_type == PROG_ARRAY {
                MapInit::Prog { index, prog: sym.name.clone() }
            } else {
                MapInit::Map { index, map: sym.name.clone() }
            };
            m.init.push(init);
        }
        if var_offset.saturating_add(var_size) > data.len() as u64 {
            return Err(map_err(var.name, "definition outside the .maps section"));
        }
        maps.push(m);
    }
    Ok(())
}

fn values_member_offset(btf: &bpfkit_btf::Btf, var_type: bpfkit_btf::TypeId) -> Option<u32> {
    let found = btf.member_by_name(btf.resolve(var_type).ok()?, "values").ok()??;
    u32::try_from(found.bit_offset / 8).ok()
}

/// One BTF map definition: a struct whose members are `__uint`, `__type` and `__array` fields.
fn map_from_btf(btf: &bpfkit_btf::Btf, name: &str, type_id: bpfkit_btf::TypeId) -> Result<MapDef, ObjectError> {
    let fields = btf.map_def_fields(type_id).map_err(|e| map_err(name, e.to_string()))?;
    let mut m = MapDef::new(name, MapOrigin::Btf);
    let mut key_type = None;
    let mut value_type = None;
    for (field, value) in fields {
        let uint = |v: &MapField| match v {
            MapField::Uint(n) => Ok(*n),
            _ => Err(map_err(name, format!("`{field}` must be __uint()"))),
        };
        match field.as_str() {
            "type" => m.map_type = uint(&value)?,
            "max_entries" => m.max_entries = uint(&value)?,
            "map_flags" => m.flags = uint(&value)?,
            "map_extra" => m.map_extra = u64::from(uint(&value)?),
            "pinning" => m.pinning = uint(&value)?,
            "numa_node" => {}
            "key_size" => m.key_size = uint(&value)?,
            "value_size" => m.value_size = uint(&value)?,
            "key" => match value {
                MapField::Type(t) => key_type = Some(t),
                _ => return Err(map_err(name, "`key` must be __type()")),
            },
            "value" => match value {
                MapField::Type(t) => value_type = Some(t),
                _ => return Err(map_err(name, "`value` must be __type()")),
            },
            "values" => match value {
                MapField::Array(inner) => {
                    if m.map_type != PROG_ARRAY {
                        let inner_name = format!("{name}.inner");
                        let mut inner_def = map_from_btf(btf, &inner_name, inner)?;
                        inner_def.origin = MapOrigin::Btf;
                        m.inner = Some(Box::new(inner_def));
                    }
                }
                _ => return Err(map_err(name, "`values` must be __array()")),
            },
            other => return Err(map_err(name, format!("unknown map definition field `{other}`"))),
        }
    }
    if let Some(t) = key_type {
        let size = btf.size_of(t).map_err(|source| ObjectError::Btf { source })?;
        if m.key_size != 0 && m.key_size != size {
            return Err(map_err(name, format!("key_size {} differs from the key type's size {size}", m.key_size)));
        }
        m.key_size = size;
    }
    if let Some(t) = value_type {
        let size = btf.size_of(t).map_err(|source| ObjectError::Btf { source })?;
        if m.value_size != 0 && m.value_size != size {
            return Err(map_err(
                name,
                format!("value_size {} differs from the value type's size {size}", m.value_size),
            ));
        }
        m.value_size = size;
    }
    if m.inner.is_some() || m.map_type == PROG_ARRAY {
        // Prog arrays and maps of maps hold 4-byte ids.
        if m.key_size == 0 {
            m.key_size = 4;
        }
        if m.value_size == 0 {
            m.value_size = 4;
        }
    }
    Ok(m)
}

/// Legacy `struct bpf_map_def` (20 bytes or more, extra bytes zero) and iproute2's
/// `struct bpf_elf_map` (36 bytes), one per symbol of the `maps` section.
fn legacy_maps(l: &Loader<'_>, si: usize, maps: &mut Vec<MapDef>) -> Result<(), ObjectError> {
    let data = l.sections[si].data;
    let mut syms: Vec<&Symbol> = l
        .symbols
        .iter()
        .filter(|s| s.section == Some(si) && !s.name.is_empty() && s.kind != elf::STT_SECTION)
        .collect();
    syms.sort_by_key(|s| s.value);
    if syms.is_empty() {
        return Ok(());
    }
    let def_size = data.len() / syms.len();
    for s in syms {
        let start = s.value as usize;
        let end = start
            .checked_add(def_size)
            .filter(|&e| e <= data.len())
            .ok_or_else(|| map_err(&s.name, "definition outside the maps section"))?;
        let d = &data[start..end];
        if d.len() < 20 {
            return Err(map_err(
                &s.name,
                format!("definition of {} bytes is shorter than struct bpf_map_def", d.len()),
            ));
        }
        let word = |i: usize| u32::from_le_bytes(d[i * 4..i * 4 + 4].try_into().expect("4 bytes"));
        let origin = if d.len() == 36 {
            MapOrigin::Iproute2 { id: word(5), inner_id: word(7), inner_idx: word(8) }
        } else {
            if d[20..].iter().any(|&b| b != 0) {
                return Err(map_err(&s.name, "unknown non-zero fields after struct bpf_map_def"));
            }
            MapOrigin::Legacy
        };
        let mut m = MapDef::new(&s.name, origin);
        m.map_type = word(0);
        m.key_size = word(1);
        m.value_size = word(2);
        m.max_entries = word(3);
        m.flags = word(4);
        if let MapOrigin::Iproute2 { .. } = m.origin {
            m.pinning = word(6);
        }
        maps.push(m);
    }
    Ok(())
}

/// `.kconfig` and `__ksym` externs. Kconfig variables get a `.kconfig` map.
fn externs(l: &Loader<'_>, maps: &mut Vec<MapDef>) -> Result<Vec<Extern>, ObjectError> {
    let mut out = Vec::new();
    let kconfig_vars = kconfig_layout(l)?;
    let ksyms_funcs: Vec<String> = match &l.btf {
        Some(btf) => btf
            .datasec_vars(".ksyms")
            .unwrap_or_default()
            .iter()
            .filter(|v| v.kind == bpfkit_btf::BtfKind::Func)
            .map(|v| v.name.to_string())
            .collect(),
        None => Vec::new(),
    };
    let mut kconfig_size = 0u32;
    for s in l.symbols.iter().filter(|s| s.undefined && s.global && !s.name.is_empty()) {
        if let Some((_, offset, size)) = kconfig_vars.iter().find(|v| v.0 == s.name) {
            kconfig_size = kconfig_size.max(offset.saturating_add(*size));
            out.push(Extern::Kconfig { name: s.name.clone(), offset: *offset, size: *size });
        } else if s.kind == elf::STT_FUNC || ksyms_funcs.iter().any(|f| f == &s.name) {
            out.push(Extern::KsymFunc { name: s.name.clone() });
        } else {
            out.push(Extern::KsymVar { name: s.name.clone() });
        }
    }
    if kconfig_size > MAX_VALUE_SIZE {
        return Err(ObjectError::section(".kconfig", too_big(u64::from(kconfig_size))));
    }
    if kconfig_size > 0 {
        let mut m = MapDef::new(".kconfig", MapOrigin::Kconfig);
        m.map_type = ARRAY;
        m.key_size = 4;
        m.value_size = kconfig_size;
        m.max_entries = 1;
        m.flags = F_MMAPABLE | F_RDONLY_PROG;
        m.data = vec![0; kconfig_size as usize];
        maps.push(m);
    }
    Ok(out)
}

/// Where each `.kconfig` extern lives in the `.kconfig` map: in declaration order, each at its
/// natural alignment (clang leaves the DATASEC offsets at 0; libbpf lays the externs out itself,
/// and so does bpfkit: only the program and the map need to agree).
pub(crate) fn kconfig_layout(l: &Loader<'_>) -> Result<Vec<(String, u32, u32)>, ObjectError> {
    let Some(btf) = &l.btf else { return Ok(Vec::new()) };
    let mut out = Vec::new();
    let mut next = 0u32;
    for v in btf.datasec_vars(".kconfig").unwrap_or_default() {
        let size = btf.size_of(v.ty).map_err(|source| ObjectError::Btf { source })?;
        if size == 0 || size > MAX_VALUE_SIZE {
            return Err(ObjectError::section(".kconfig", format!("extern `{}` has size {size}", v.name)));
        }
        let align = size.min(8).next_power_of_two();
        let offset = next.div_ceil(align) * align;
        next = offset
            .checked_add(size)
            .filter(|&n| n <= MAX_VALUE_SIZE)
            .ok_or_else(|| ObjectError::section(".kconfig", too_big(u64::from(offset) + u64::from(size))))?;
        out.push((v.name.to_string(), offset, size));
    }
    Ok(out)
}

/// What a `lddw` relocated against `sym` (with the compiler's addend `imm`) refers to.
pub(crate) fn data_reloc(
    l: &Loader<'_>,
    maps: &[MapDef],
    sym: &Symbol,
    imm: i32,
    sec: &str,
    offset: u64,
) -> Result<RelocTarget, ObjectError> {
    let err = |reason: String| ObjectError::reloc(sec, offset, reason);
    if sym.undefined {
        if let Some(i) = maps.iter().position(|m| m.origin == MapOrigin::Kconfig)
            && let Some(v) = l
                .btf
                .as_ref()
                .and_then(|b| b.datasec_vars(".kconfig"))
                .and_then(|vars| vars.into_iter().find(|v| v.name == sym.name).map(|v| v.offset))
        {
            return Ok(RelocTarget::MapValue { map: i, offset: v });
        }
        return Ok(RelocTarget::Ksym { name: sym.name.clone() });
    }
    let si = sym.section.ok_or_else(|| err(format!("against `{}`, which has no section", sym.name)))?;
    let sname = &l.sections[si].name;
    if sname == ".maps" || sname == "maps" {
        let name = if sym.kind == elf::STT_SECTION {
            // A section-relative reference: find the map defined at that offset.
            l.symbols
                .iter()
                .find(|s| s.section == Some(si) && s.kind != elf::STT_SECTION && s.value == imm as u64)
                .map(|s| s.name.clone())
                .ok_or_else(|| err(format!("no map at offset {imm} of {sname}")))?
        } else {
            sym.name.clone()
        };
        return maps
            .iter()
            .position(|m| {
                m.name == name && matches!(m.origin, MapOrigin::Btf | MapOrigin::Legacy | MapOrigin::Iproute2 { .. })
            })
            .map(RelocTarget::Map)
            .ok_or_else(|| err(format!("against map `{name}`, which is not defined")));
    }
    if let Some(map) =
        maps.iter().position(|m| matches!(&m.origin, MapOrigin::Data { section, .. } if section == sname))
    {
        let off = i64::from(imm) + sym.value as i64;
        let size = i64::from(maps[map].value_size);
        if off < 0 || off > size {
            return Err(err(format!("offset {off} outside {sname} ({size} bytes)")));
        }
        return Ok(RelocTarget::MapValue { map, offset: off as u32 });
    }
    Err(err(format!("against `{}` in section {sname}, which is neither a map nor global data", sym.name)))
}
