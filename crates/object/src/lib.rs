//! Loading clang-built BPF ELF objects the way libbpf does.
//!
//! [`ObjectFile::parse`] reads an object (with the `object` crate) and produces, per entry
//! program, a *linked* instruction stream: the program's function followed by every
//! subprogram it calls (from `.text` or its own section), with BPF-to-BPF calls and callback
//! references (`BPF_PSEUDO_FUNC`) pointing at the appended copies. References the loader can
//! only bind once maps exist are left as [`Reloc`]s: maps, global-data values, kfuncs and
//! kernel symbols. The runtime binds them (the "libbpf" half of bpfkit lives in the `bpfkit`
//! crate).
//!
//! Checked here, each failure a typed [`ObjectError`] naming the section, symbol or offset:
//! the ELF is a little-endian BPF relocatable object; section and symbol indices are in
//! range; every relocation is of a known type, inside its section, at an instruction that
//! can take it, against a symbol that resolves; every call lands on the start of a function;
//! map definitions are well-formed; the code decodes.
#![forbid(unsafe_code)]

mod maps;
pub mod sections;

use bpfkit_btf::{Btf, BtfExt};
use bpfkit_isa::opcode::{BPF_PSEUDO_CALL, BPF_PSEUDO_FUNC, BPF_PSEUDO_KFUNC_CALL, LDDW};
use bpfkit_isa::{DecodeError, Insn, RawInsn, decode_program};
use object::elf;
use object::read::elf::{ElfFile64, FileHeader, SectionHeader, Sym};
use object::{
    Endianness, Object, ObjectSection, ObjectSymbol, RelocationFlags, RelocationTarget, SectionIndex, SymbolIndex,
};
pub use sections::{ProgType, prog_type_of};
use std::collections::{BTreeMap, HashMap};

pub use maps::{MapDef, MapInit, MapOrigin};

/// ELF relocation types of the BPF target.
const R_BPF_64_64: u32 = 1;
const R_BPF_64_ABS64: u32 = 2;
const R_BPF_64_ABS32: u32 = 3;
const R_BPF_64_NODYLD32: u32 = 4;
const R_BPF_64_32: u32 = 10;

/// Why an object cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    #[error("not a valid ELF object: {source}")]
    Elf { source: object::Error },
    #[error("not a BPF object (ELF machine {machine})")]
    NotBpf { machine: u16 },
    #[error("big-endian BPF objects are not supported")]
    BigEndian,
    #[error("section {section}: {reason}")]
    Section { section: String, reason: String },
    #[error("symbol `{symbol}`: {reason}")]
    Symbol { symbol: String, reason: String },
    #[error("section {section}, offset {offset:#x}: relocation {reason}")]
    Reloc { section: String, offset: u64, reason: String },
    #[error("section {section}: {source}")]
    Decode { section: String, source: DecodeError },
    #[error("BTF: {source}")]
    Btf { source: bpfkit_btf::BtfError },
    #[error("map `{map}`: {reason}")]
    Map { map: String, reason: String },
    #[error("program `{program}` (section {section}): {reason}")]
    Program { program: String, section: String, reason: String },
    /// A jump table (`.jumptables`, kernel-spec §4) that cannot be used; `reason` is libbpf's
    /// message where libbpf has one.
    #[error("program `{program}`: jump table `{table}` used by insn {insn}: {reason}")]
    JumpTable { program: String, table: String, insn: usize, reason: String },
}

impl ObjectError {
    fn section(section: &str, reason: impl Into<String>) -> Self {
        ObjectError::Section { section: section.to_string(), reason: reason.into() }
    }
    fn reloc(section: &str, offset: u64, reason: impl Into<String>) -> Self {
        ObjectError::Reloc { section: section.to_string(), offset, reason: reason.into() }
    }
}

/// A reference the runtime binds at load time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RelocTarget {
    /// `lddw rX, map`: the map handle (`BPF_PSEUDO_MAP_FD`); index into [`ObjectFile::maps`].
    Map(usize),
    /// `lddw rX, &var`: the address `offset` bytes into the value of a global-data map
    /// (`BPF_PSEUDO_MAP_VALUE`).
    MapValue { map: usize, offset: u32 },
    /// `call kfunc`: a kfunc resolved by name (`BPF_PSEUDO_KFUNC_CALL`).
    Kfunc { name: String },
    /// `lddw rX, &ksym`: the address of a kernel variable declared `__ksym`.
    Ksym { name: String },
    /// `lddw rX, jump_table`: the code-address array of an instruction-array map made from
    /// the program's jump table `table` (index into [`Program::jump_tables`]), `offset` bytes
    /// in (the second slot's immediate, as libbpf keeps it).
    JumpTable { table: usize, offset: i32 },
}

/// A jump table LLVM emitted for a `switch` or computed `goto` (section `.jumptables`, symbol
/// `BPF.JT.<func>.<table>`), translated for one linked program: the instructions its entries
/// designate, as slot indices of [`Program::insns`]. The runtime makes it an instruction-array
/// map owned by that program (one per table and program, as libbpf does).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JumpTable {
    /// The table's symbol.
    pub symbol: String,
    /// Its byte offset in `.jumptables`.
    pub sym_off: u32,
    /// The first instruction (slot of the linked program) that loads it.
    pub insn: usize,
    /// Target instruction of each entry, in the linked program.
    pub entries: Vec<u32>,
}

/// A relocation of a linked program: instruction index (in slots) and what it needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reloc {
    pub insn: usize,
    pub target: RelocTarget,
}

/// A function of a linked program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subprog {
    pub name: String,
    /// First instruction slot in the linked program.
    pub start: usize,
    /// Number of slots.
    pub len: usize,
}

/// Source position of an instruction (from `.BTF.ext` line info).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineInfo {
    /// Instruction slot in the linked program.
    pub insn: usize,
    pub file: String,
    pub line: u32,
    pub col: u32,
    /// The source line's text, as recorded by clang.
    pub text: String,
}

/// An entry program, linked with its subprograms.
#[derive(Clone, Debug)]
pub struct Program {
    /// The function's name.
    pub name: String,
    /// The ELF section (`SEC()` name).
    pub section: String,
    /// The program type the section name implies, if any.
    pub prog_type: Option<ProgType>,
    /// Instructions: the program's function, then the subprograms it reaches.
    pub insns: Vec<RawInsn>,
    /// References to bind at load time.
    pub relocs: Vec<Reloc>,
    /// The functions in `insns`, the program itself first.
    pub subprogs: Vec<Subprog>,
    /// Line info, sorted by instruction.
    pub line_info: Vec<LineInfo>,
    /// Jump tables the program's code loads (see [`RelocTarget::JumpTable`]).
    pub jump_tables: Vec<JumpTable>,
    /// The static keys the program's code (subprograms included) uses, with their sites.
    pub static_keys: Vec<StaticKeyUse>,
}

/// The sites of one static key in one linked program (from `.static_keys`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaticKeyUse {
    /// The key's map name (`DEFINE_STATIC_KEY(name)`).
    pub key: String,
    /// Each site: its slot in the linked program and whether it is a nop_or_goto (inverse).
    pub sites: Vec<(usize, bool)>,
}

impl Program {
    /// The source line of the instruction at `insn`, if line info covers it.
    pub fn line_of(&self, insn: usize) -> Option<&LineInfo> {
        let i = self.line_info.partition_point(|l| l.insn <= insn);
        i.checked_sub(1).map(|i| &self.line_info[i])
    }
}

/// An extern (`SHN_UNDEF` symbol) of the object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Extern {
    /// A `.kconfig` variable: its bytes live in the `.kconfig` map at `offset`.
    Kconfig { name: String, offset: u32, size: u32 },
    /// A `__ksym` function (kfunc).
    KsymFunc { name: String },
    /// A `__ksym` variable.
    KsymVar { name: String },
}

/// A parsed object.
#[derive(Debug)]
pub struct ObjectFile {
    pub license: String,
    pub kern_version: Option<u32>,
    pub programs: Vec<Program>,
    pub maps: Vec<MapDef>,
    pub externs: Vec<Extern>,
    pub btf: Option<Btf>,
}

impl ObjectFile {
    /// The program called `name` (function name, or section name when unambiguous).
    pub fn program(&self, name: &str) -> Option<&Program> {
        self.programs.iter().find(|p| p.name == name).or_else(|| {
            let mut in_section = self.programs.iter().filter(|p| p.section == name);
            match (in_section.next(), in_section.next()) {
                (Some(p), None) => Some(p),
                _ => None,
            }
        })
    }

    /// The map called `name`.
    pub fn map(&self, name: &str) -> Option<(usize, &MapDef)> {
        self.maps.iter().enumerate().find(|(_, m)| m.name == name)
    }

    /// Parses an object.
    pub fn parse(data: &[u8]) -> Result<ObjectFile, ObjectError> {
        Loader::new(data)?.load()
    }
}

/// One section as the loader sees it.
struct Section<'d> {
    name: String,
    data: &'d [u8],
    exec: bool,
    alloc: bool,
    nobits: bool,
    size: u64,
}

#[derive(Clone, Debug)]
struct Symbol {
    name: String,
    section: Option<usize>,
    value: u64,
    size: u64,
    kind: u8,
    global: bool,
    undefined: bool,
}

/// Where a function lives: section and slot range.
#[derive(Clone, Debug)]
struct Func {
    name: String,
    section: usize,
    start: usize,
    len: usize,
}

/// A relocation record of a code section, keyed by slot index.
#[derive(Clone, Debug)]
struct RawReloc {
    r_type: u32,
    symbol: usize,
    offset: u64,
}

struct Loader<'d> {
    sections: Vec<Section<'d>>,
    symbols: Vec<Symbol>,
    /// Relocations of executable sections: section index → slot index → record.
    code_relocs: HashMap<usize, BTreeMap<usize, RawReloc>>,
    /// Relocations of `.maps`, by section index.
    data_relocs: HashMap<usize, Vec<RawReloc>>,
    funcs: Vec<Func>,
    btf: Option<Btf>,
    btf_ext: Option<BtfExt>,
    /// The records of `.static_keys`.
    static_sites: Vec<RawStaticSite>,
}

/// A `.static_keys` record: a static branch of a code section, its target, its key.
#[derive(Clone, Debug)]
struct RawStaticSite {
    section: usize,
    slot: usize,
    target: usize,
    key: String,
    inverse: bool,
    /// Offset of the record in `.static_keys` (messages).
    record: u64,
}

impl<'d> Loader<'d> {
    fn new(data: &'d [u8]) -> Result<Self, ObjectError> {
        let file = ElfFile64::<Endianness>::parse(data).map_err(|source| ObjectError::Elf { source })?;
        let header = file.elf_header();
        let endian = file.endian();
        let machine = header.e_machine(endian);
        if machine != elf::EM_BPF {
            return Err(ObjectError::NotBpf { machine });
        }
        if !file.is_little_endian() {
            return Err(ObjectError::BigEndian);
        }

        // Indexed by ELF section index; `object` does not yield the null section 0.
        let mut sections: Vec<Section<'d>> = Vec::new();
        for s in file.sections() {
            while sections.len() < s.index().0 {
                sections.push(Section {
                    name: String::new(),
                    data: &[],
                    exec: false,
                    alloc: false,
                    nobits: true,
                    size: 0,
                });
            }
            let name = s.name().map_err(|source| ObjectError::Elf { source })?.to_string();
            let hdr = s.elf_section_header();
            let flags = hdr.sh_flags(endian);
            let nobits = hdr.sh_type(endian) == elf::SHT_NOBITS;
            let data = if nobits {
                &[][..]
            } else {
                s.data().map_err(|_| ObjectError::section(&name, "data outside the file"))?
            };
            sections.push(Section {
                name,
                data,
                exec: flags & u64::from(elf::SHF_EXECINSTR) != 0,
                alloc: flags & u64::from(elf::SHF_ALLOC) != 0,
                nobits,
                size: s.size(),
            });
        }
        // `object` numbers sections from 0 (the null section included).
        let mut symbols = Vec::new();
        let mut by_index: BTreeMap<usize, Symbol> = BTreeMap::new();
        for sym in file.symbols() {
            let name = sym.name().map_err(|source| ObjectError::Elf { source })?.to_string();
            let elf_sym = sym.elf_symbol();
            let shndx = elf_sym.st_shndx(endian);
            let section = match sym.section_index() {
                Some(SectionIndex(i)) if i < sections.len() => Some(i),
                Some(SectionIndex(i)) => {
                    return Err(ObjectError::Symbol {
                        symbol: name,
                        reason: format!("section index {i} out of range"),
                    });
                }
                None => None,
            };
            by_index.insert(
                sym.index().0,
                Symbol {
                    name,
                    section,
                    value: elf_sym.st_value(endian),
                    size: elf_sym.st_size(endian),
                    kind: elf_sym.st_type(),
                    global: elf_sym.st_bind() != elf::STB_LOCAL,
                    undefined: shndx == elf::SHN_UNDEF,
                },
            );
        }
        let max = by_index.keys().next_back().map_or(0, |m| m + 1);
        for i in 0..max {
            symbols.push(by_index.remove(&i).unwrap_or(Symbol {
                name: String::new(),
                section: None,
                value: 0,
                size: 0,
                kind: elf::STT_NOTYPE,
                global: false,
                undefined: true,
            }));
        }

        // Relocations of executable sections, and of `.maps` (declarative initialisers).
        let mut code_relocs: HashMap<usize, BTreeMap<usize, RawReloc>> = HashMap::new();
        let mut data_relocs: HashMap<usize, Vec<RawReloc>> = HashMap::new();
        let mut static_key_relocs: BTreeMap<u64, RawReloc> = BTreeMap::new();
        for s in file.sections() {
            let idx = s.index().0;
            let Some(target_sec) = sections.get(idx) else { continue };
            if target_sec.name == ".static_keys" {
                for (offset, rel) in s.relocations() {
                    let symbol = match rel.target() {
                        RelocationTarget::Symbol(SymbolIndex(i)) if i < symbols.len() => i,
                        _ => return Err(ObjectError::reloc(".static_keys", offset, "against no valid symbol")),
                    };
                    let r_type = match rel.flags() {
                        RelocationFlags::Elf { r_type } => r_type,
                        _ => 0,
                    };
                    static_key_relocs.insert(offset, RawReloc { r_type, symbol, offset });
                }
                continue;
            }
            if target_sec.name == ".maps" {
                for (offset, rel) in s.relocations() {
                    let symbol = match rel.target() {
                        RelocationTarget::Symbol(SymbolIndex(i)) if i < symbols.len() => i,
                        _ => return Err(ObjectError::reloc(".maps", offset, "against no valid symbol")),
                    };
                    let r_type = match rel.flags() {
                        RelocationFlags::Elf { r_type } => r_type,
                        _ => 0,
                    };
                    data_relocs.entry(idx).or_default().push(RawReloc { r_type, symbol, offset });
                }
                continue;
            }
            if !target_sec.exec {
                continue;
            }
            let sec_name = target_sec.name.clone();
            for (offset, rel) in s.relocations() {
                let r_type = match rel.flags() {
                    RelocationFlags::Elf { r_type } => r_type,
                    _ => return Err(ObjectError::reloc(&sec_name, offset, "of a non-ELF kind")),
                };
                let symbol = match rel.target() {
                    RelocationTarget::Symbol(SymbolIndex(i)) if i < symbols.len() => i,
                    RelocationTarget::Symbol(SymbolIndex(i)) => {
                        return Err(ObjectError::reloc(
                            &sec_name,
                            offset,
                            format!("against symbol #{i}, out of range"),
                        ));
                    }
                    _ => return Err(ObjectError::reloc(&sec_name, offset, "without a symbol")),
                };
                if offset % 8 != 0 || offset.checked_add(8).is_none_or(|end| end > target_sec.data.len() as u64) {
                    return Err(ObjectError::reloc(&sec_name, offset, "outside the section's instructions"));
                }
                code_relocs.entry(idx).or_default().insert((offset / 8) as usize, RawReloc { r_type, symbol, offset });
            }
        }

        let mut loader = Loader {
            sections,
            symbols,
            code_relocs,
            data_relocs,
            funcs: Vec::new(),
            btf: None,
            btf_ext: None,
            static_sites: Vec::new(),
        };
        loader.collect_funcs()?;
        loader.static_sites = loader.collect_static_sites(&static_key_relocs)?;
        Ok(loader)
    }

    fn section_index(&self, name: &str) -> Option<usize> {
        self.sections.iter().position(|s| s.name == name)
    }

    /// Every function (STT_FUNC symbol) of every executable section; a code section without
    /// function symbols (hand-written assembly) is one function named after the section.
    fn collect_funcs(&mut self) -> Result<(), ObjectError> {
        for (si, sec) in self.sections.iter().enumerate() {
            if !sec.exec || sec.data.is_empty() {
                continue;
            }
            if sec.data.len() % 8 != 0 {
                return Err(ObjectError::section(&sec.name, "size is not a multiple of 8"));
            }
            let slots = sec.data.len() / 8;
            let mut funcs: Vec<(usize, u64, String)> = self
                .symbols
                .iter()
                .filter(|s| s.section == Some(si) && s.kind == elf::STT_FUNC)
                .map(|s| (s.value as usize, s.size, s.name.clone()))
                .collect();
            funcs.sort_by_key(|f| f.0);
            funcs.dedup_by_key(|f| f.0);
            if funcs.is_empty() {
                self.funcs.push(Func { name: sec.name.clone(), section: si, start: 0, len: slots });
                continue;
            }
            for (i, (value, size, name)) in funcs.iter().enumerate() {
                if value % 8 != 0 || value / 8 >= slots {
                    return Err(ObjectError::Symbol {
                        symbol: name.clone(),
                        reason: format!("function offset {value:#x} is not an instruction of section {}", sec.name),
                    });
                }
                let start = value / 8;
                let next = funcs.get(i + 1).map_or(slots, |f| f.0 / 8);
                let len = if *size == 0 { next - start } else { (*size / 8) as usize };
                if *size % 8 != 0 || start + len > slots || len == 0 {
                    return Err(ObjectError::Symbol {
                        symbol: name.clone(),
                        reason: format!("function size {size:#x} does not fit section {}", sec.name),
                    });
                }
                self.funcs.push(Func { name: name.clone(), section: si, start, len });
            }
        }
        Ok(())
    }

    fn func_at(&self, section: usize, slot: usize) -> Option<&Func> {
        self.funcs.iter().find(|f| f.section == section && f.start == slot)
    }

    fn load(mut self) -> Result<ObjectFile, ObjectError> {
        let license = match self.section_index("license") {
            Some(i) => {
                let d = self.sections[i].data;
                let end = d.iter().position(|&b| b == 0).unwrap_or(d.len());
                String::from_utf8_lossy(&d[..end]).into_owned()
            }
            None => String::new(),
        };
        let kern_version = match self.section_index("version") {
            Some(i) => {
                let d = self.sections[i].data;
                let bytes: [u8; 4] =
                    d.try_into().map_err(|_| ObjectError::section("version", "must be exactly 4 bytes"))?;
                Some(u32::from_le_bytes(bytes))
            }
            None => None,
        };
        if let Some(i) = self.section_index(".BTF") {
            self.btf = Some(Btf::parse(self.sections[i].data).map_err(|source| ObjectError::Btf { source })?);
        }
        if let (Some(i), Some(_)) = (self.section_index(".BTF.ext"), &self.btf) {
            self.btf_ext = Some(BtfExt::parse(self.sections[i].data).map_err(|source| ObjectError::Btf { source })?);
        }

        let (maps, externs) = maps::collect(&self)?;
        let mut programs = Vec::new();
        for f in self.funcs.clone() {
            let sec = &self.sections[f.section];
            if sec.name == ".text" {
                continue;
            }
            programs.push(self.link_program(&f, &maps)?);
        }
        Ok(ObjectFile { license, kern_version, programs, maps, externs, btf: self.btf })
    }

    fn slots_of(&self, f: &Func) -> Vec<RawInsn> {
        let d = &self.sections[f.section].data[f.start * 8..(f.start + f.len) * 8];
        d.chunks_exact(8).map(|c| RawInsn::from_bytes(c.try_into().expect("8 bytes"))).collect()
    }

    /// Links `main` with every function it reaches, appending each once (libbpf's order).
    fn link_program(&self, main: &Func, maps: &[MapDef]) -> Result<Program, ObjectError> {
        let sec_name = self.sections[main.section].name.clone();
        let prog_type = prog_type_of(&sec_name);
        let mut insns: Vec<RawInsn> = Vec::new();
        let mut relocs = Vec::new();
        let mut subprogs: Vec<Subprog> = Vec::new();
        // (section, start) of each appended function → its start in `insns`.
        let mut placed: HashMap<(usize, usize), usize> = HashMap::new();
        let mut queue: Vec<Func> = vec![main.clone()];
        let mut pending_calls: Vec<(usize, (usize, usize))> = Vec::new();
        let mut line_info = Vec::new();
        let mut jump_tables: Vec<JumpTable> = Vec::new();
        let mut static_keys: Vec<StaticKeyUse> = Vec::new();

        while let Some(f) = queue.pop() {
            if placed.contains_key(&(f.section, f.start)) {
                continue;
            }
            let base = insns.len();
            placed.insert((f.section, f.start), base);
            subprogs.push(Subprog { name: f.name.clone(), start: base, len: f.len });
            let fsec = &self.sections[f.section];
            let mut slots = self.slots_of(&f);
            decode_program(&slots).map_err(|source| ObjectError::Decode {
                section: fsec.name.clone(),
                source: shift_pc(source, f.start),
            })?;
            let empty = BTreeMap::new();
            let rels = self.code_relocs.get(&f.section).unwrap_or(&empty);
            #[allow(clippy::needless_range_loop)] // `i` indexes `slots` and names the slot
            for i in 0..slots.len() {
                let sec_slot = f.start + i;
                let insn = slots[i];
                let rel = rels.get(&sec_slot);
                let is_call = insn.code == 0x85;
                let is_lddw = insn.code == LDDW;
                match (rel, is_call, is_lddw) {
                    (Some(r), true, _) => {
                        let sym = &self.symbols[r.symbol];
                        if r.r_type != R_BPF_64_32 {
                            return Err(ObjectError::reloc(
                                &fsec.name,
                                r.offset,
                                format!("type {} on a call", r.r_type),
                            ));
                        }
                        if sym.undefined {
                            // An extern function: a kfunc.
                            slots[i] = RawInsn::new(0x85, 0, BPF_PSEUDO_KFUNC_CALL, 0, 0);
                            relocs
                                .push(Reloc { insn: base + i, target: RelocTarget::Kfunc { name: sym.name.clone() } });
                            continue;
                        }
                        if insn.src() != BPF_PSEUDO_CALL {
                            return Err(ObjectError::reloc(&fsec.name, r.offset, "on a helper call"));
                        }
                        let target = self.code_target(sym, insn.imm, &fsec.name, r.offset)?;
                        pending_calls.push((base + i, target));
                        queue.push(self.callee(target, &fsec.name, r.offset)?);
                    }
                    (None, true, _) if insn.src() == BPF_PSEUDO_CALL => {
                        // A call within the section without relocation.
                        let t = sec_slot as i64 + 1 + i64::from(insn.imm);
                        let off = (sec_slot * 8) as u64;
                        if t < 0 {
                            return Err(ObjectError::reloc(&fsec.name, off, "call before the section start"));
                        }
                        let target = (f.section, t as usize);
                        pending_calls.push((base + i, target));
                        queue.push(self.callee(target, &fsec.name, off)?);
                    }
                    (Some(r), _, true) => {
                        let sym = &self.symbols[r.symbol];
                        if r.r_type != R_BPF_64_64 {
                            return Err(ObjectError::reloc(&fsec.name, r.offset, format!("type {} on lddw", r.r_type)));
                        }
                        if insn.src() == BPF_PSEUDO_FUNC || sym.section.is_some_and(|s| self.sections[s].exec) {
                            // A function address (callback): the addend is a byte offset from
                            // the symbol, where a call's is an instruction delta.
                            let bytes = sym.value as i64 + i64::from(insn.imm);
                            if bytes % 8 != 0 {
                                return Err(ObjectError::reloc(
                                    &fsec.name,
                                    r.offset,
                                    "function address not instruction-aligned",
                                ));
                            }
                            let delta = (bytes / 8 - sym.value as i64 / 8 - 1) as i32;
                            let target = self.code_target(sym, delta, &fsec.name, r.offset)?;
                            slots[i] = RawInsn::new(LDDW, insn.dst(), BPF_PSEUDO_FUNC, 0, 0);
                            pending_calls.push((base + i, target));
                            queue.push(self.callee(target, &fsec.name, r.offset)?);
                            continue;
                        }
                        if sym.section.is_some_and(|s| self.sections[s].name == ".jumptables") {
                            let sym_off = u32::try_from(sym.value).unwrap_or(u32::MAX);
                            let table = match jump_tables.iter().position(|t| t.sym_off == sym_off) {
                                Some(t) => t,
                                None => {
                                    jump_tables.push(self.jump_table(sym, &f, base, &main.name, base + i)?);
                                    jump_tables.len() - 1
                                }
                            };
                            let offset = slots.get(i + 1).map_or(0, |s| s.imm);
                            slots[i].imm = 0;
                            relocs.push(Reloc { insn: base + i, target: RelocTarget::JumpTable { table, offset } });
                            continue;
                        }
                        let target = maps::data_reloc(self, maps, sym, insn.imm, &fsec.name, r.offset)?;
                        // The runtime rewrites the pair; clear the addend the compiler left.
                        slots[i].imm = 0;
                        relocs.push(Reloc { insn: base + i, target });
                    }
                    (Some(r), _, _) if matches!(r.r_type, R_BPF_64_ABS64 | R_BPF_64_ABS32 | R_BPF_64_NODYLD32) => {
                        return Err(ObjectError::reloc(&fsec.name, r.offset, format!("type {} inside code", r.r_type)));
                    }
                    (Some(r), _, _) => {
                        return Err(ObjectError::reloc(
                            &fsec.name,
                            r.offset,
                            format!("on an instruction that takes none (opcode {:#04x})", insn.code),
                        ));
                    }
                    _ => {}
                }
            }
            line_info.extend(self.line_info_for(&f, base));
            for site in self
                .static_sites
                .iter()
                .filter(|s| s.section == f.section && (f.start..f.start + f.len).contains(&s.slot))
            {
                let at = site.slot - f.start;
                let ok = matches!(
                    Insn::decode(&slots, at),
                    Ok(Insn::StaticBranch { inverse, off, .. })
                        if inverse == site.inverse && (at as i64 + 1 + i64::from(off)) == site.target as i64 - f.start as i64
                );
                if !ok {
                    return Err(ObjectError::section(
                        ".static_keys",
                        format!(
                            "record at {:#x} (key `{}`): instruction {} of {} is not a {} to instruction {}",
                            site.record,
                            site.key,
                            site.slot,
                            fsec.name,
                            if site.inverse { "nop_or_goto" } else { "goto_or_nop" },
                            site.target
                        ),
                    ));
                }
                match static_keys.iter_mut().find(|k| k.key == site.key) {
                    Some(k) => k.sites.push((base + at, site.inverse)),
                    None => {
                        static_keys.push(StaticKeyUse { key: site.key.clone(), sites: vec![(base + at, site.inverse)] })
                    }
                }
            }
            insns.extend_from_slice(&slots);
        }

        for (at, target) in pending_calls {
            let dest = placed[&target];
            let rel = dest as i64 - at as i64 - 1;
            insns[at].imm = i32::try_from(rel).map_err(|_| ObjectError::Program {
                program: main.name.clone(),
                section: sec_name.clone(),
                reason: "call distance does not fit 32 bits".into(),
            })?;
        }
        line_info.sort_by_key(|l: &LineInfo| l.insn);
        Ok(Program {
            name: main.name.clone(),
            section: sec_name,
            prog_type,
            insns,
            relocs,
            subprogs,
            line_info,
            jump_tables,
            static_keys,
        })
    }

    /// Reads `.static_keys`: 16-byte records `{u32 site, u32 target, u64 key (+1 if inverse)}`,
    /// the site and target relocated against their code section and the key against its map.
    fn collect_static_sites(&self, relocs: &BTreeMap<u64, RawReloc>) -> Result<Vec<RawStaticSite>, ObjectError> {
        let Some(si) = self.section_index(".static_keys") else { return Ok(Vec::new()) };
        let data = self.sections[si].data;
        if !data.len().is_multiple_of(16) {
            return Err(ObjectError::section(".static_keys", "size is not a multiple of 16 (one record per site)"));
        }
        let mut out = Vec::new();
        for (k, rec) in data.chunks_exact(16).enumerate() {
            let at = 16 * k as u64;
            let field = |off: u64, what: &str| -> Result<(&Symbol, u64), ObjectError> {
                let r = relocs.get(&(at + off)).ok_or_else(|| {
                    ObjectError::reloc(".static_keys", at + off, format!("missing for the record's {what}"))
                })?;
                let sym = &self.symbols[r.symbol];
                let addend = match off {
                    8 => u64::from_le_bytes(rec[8..16].try_into().expect("8 bytes")),
                    o => u64::from(u32::from_le_bytes(rec[o as usize..o as usize + 4].try_into().expect("4 bytes"))),
                };
                Ok((sym, addend))
            };
            let code = |off: u64, what: &str| -> Result<(usize, usize), ObjectError> {
                let (sym, addend) = field(off, what)?;
                let sec = sym.section.filter(|&s| self.sections[s].exec).ok_or_else(|| {
                    ObjectError::reloc(".static_keys", at + off, format!("the record's {what} is not in code"))
                })?;
                let byte = sym.value + addend;
                if byte % 8 != 0 || byte / 8 >= self.sections[sec].data.len() as u64 / 8 {
                    return Err(ObjectError::reloc(
                        ".static_keys",
                        at + off,
                        format!("the record's {what} is not an instruction"),
                    ));
                }
                Ok((sec, (byte / 8) as usize))
            };
            let (section, slot) = code(0, "site")?;
            let (tsec, target) = code(4, "target")?;
            if tsec != section {
                return Err(ObjectError::reloc(
                    ".static_keys",
                    at + 4,
                    "the target is in another section than the site",
                ));
            }
            let (key, addend) = field(8, "key")?;
            if addend > 1 {
                return Err(ObjectError::reloc(
                    ".static_keys",
                    at + 8,
                    format!("key addend {addend} (0, or 1 for an inverse site)"),
                ));
            }
            out.push(RawStaticSite { section, slot, target, key: key.name.clone(), inverse: addend == 1, record: at });
        }
        Ok(out)
    }

    /// The jump table `sym` as program `program` sees it when the function `f` that loads it
    /// (at linked slot `insn`) is placed at slot `base`: each entry, a byte offset from the
    /// start of `f`'s code section, becomes a slot of the linked program (libbpf's
    /// `create_jt_map`, with its checks and messages).
    fn jump_table(
        &self,
        sym: &Symbol,
        f: &Func,
        base: usize,
        program: &str,
        insn: usize,
    ) -> Result<JumpTable, ObjectError> {
        let err = |reason: String| ObjectError::JumpTable {
            program: program.to_string(),
            table: sym.name.clone(),
            insn,
            reason,
        };
        let data = sym.section.map_or(&[][..], |s| self.sections[s].data);
        let (start, size) = (sym.value, sym.size);
        if start % 8 != 0 {
            return Err(err(format!("map '.jumptables': jumptable start {start} should be multiple of 8")));
        }
        if size % 8 != 0 {
            return Err(err(format!("map '.jumptables': jumptable size {size} should be multiple of 8")));
        }
        if size == 0 {
            return Err(err("map '.jumptables': the table has no entries (symbol size 0)".into()));
        }
        if data.is_empty() {
            return Err(err("map '.jumptables': ELF file is missing jump table data".into()));
        }
        if start.checked_add(size).is_none_or(|end| end > data.len() as u64) {
            return Err(err(format!(
                "map '.jumptables': jumptables_data size is {}, trying to access {}",
                data.len(),
                start.saturating_add(size)
            )));
        }
        let bytes = &data[start as usize..(start + size) as usize];
        let mut entries = Vec::with_capacity(bytes.len() / 8);
        for (k, e) in bytes.chunks_exact(8).enumerate() {
            let value = u64::from_le_bytes(e.try_into().expect("8 bytes"));
            let at = start + 8 * k as u64;
            if value % 8 != 0 {
                return Err(err(format!(
                    "map '.jumptables': jump table value {value:#x} at offset {at} is not instruction-aligned"
                )));
            }
            let slot = (value / 8) as i128 - f.start as i128 + base as i128;
            let slot = u32::try_from(slot)
                .map_err(|_| err(format!("map '.jumptables': invalid jump table value {value:#x} at offset {at}")))?;
            entries.push(slot);
        }
        Ok(JumpTable { symbol: sym.name.clone(), sym_off: start as u32, insn, entries })
    }

    /// The (section, slot) a call or function reference lands on.
    fn code_target(&self, sym: &Symbol, imm: i32, sec: &str, offset: u64) -> Result<(usize, usize), ObjectError> {
        let Some(tsec) = sym.section else {
            return Err(ObjectError::reloc(sec, offset, format!("against `{}`, which is not defined", sym.name)));
        };
        if !self.sections[tsec].exec {
            return Err(ObjectError::reloc(sec, offset, format!("call to `{}`, which is not code", sym.name)));
        }
        if !sym.value.is_multiple_of(8) {
            return Err(ObjectError::reloc(sec, offset, format!("target `{}` is not instruction-aligned", sym.name)));
        }
        let t = (sym.value / 8) as i64 + i64::from(imm) + 1;
        if t < 0 {
            return Err(ObjectError::reloc(sec, offset, "call target before the section start"));
        }
        Ok((tsec, t as usize))
    }

    fn callee(&self, target: (usize, usize), sec: &str, offset: u64) -> Result<Func, ObjectError> {
        self.func_at(target.0, target.1).cloned().ok_or_else(|| {
            ObjectError::reloc(
                sec,
                offset,
                format!(
                    "call to instruction {} of {}, which does not start a function",
                    target.1, self.sections[target.0].name
                ),
            )
        })
    }

    fn line_info_for(&self, f: &Func, base: usize) -> Vec<LineInfo> {
        let (Some(btf), Some(ext)) = (&self.btf, &self.btf_ext) else { return Vec::new() };
        let sec_name = &self.sections[f.section].name;
        let Ok(groups) = ext.line_info(btf) else { return Vec::new() };
        groups
            .into_iter()
            .filter(|g| &g.section == sec_name)
            .flat_map(|g| g.records)
            .filter_map(|l| {
                let slot = (l.insn_off / 8) as usize;
                (slot >= f.start && slot < f.start + f.len).then(|| LineInfo {
                    insn: base + slot - f.start,
                    file: l.file_name,
                    line: l.line,
                    col: l.col,
                    text: l.line_text,
                })
            })
            .collect()
    }
}

fn shift_pc(e: DecodeError, by: usize) -> DecodeError {
    match e {
        DecodeError::UnknownOpcode { pc, code } => DecodeError::UnknownOpcode { pc: pc + by, code },
        DecodeError::ReservedField { pc, code, field, value } => {
            DecodeError::ReservedField { pc: pc + by, code, field, value }
        }
        DecodeError::InvalidField { pc, code, field, value, reason } => {
            DecodeError::InvalidField { pc: pc + by, code, field, value, reason }
        }
        DecodeError::BadRegister { pc, field, reg } => DecodeError::BadRegister { pc: pc + by, field, reg },
        DecodeError::TruncatedLddw { pc } => DecodeError::TruncatedLddw { pc: pc + by },
        DecodeError::BadLddwSecondSlot { pc, field, value } => {
            DecodeError::BadLddwSecondSlot { pc: pc + by, field, value }
        }
        DecodeError::OutOfRange { pc, len } => DecodeError::OutOfRange { pc: pc + by, len },
        e @ DecodeError::PartialSlot { .. } => e,
    }
}
