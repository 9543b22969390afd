//! A selftest object as the kernel's `test_loader.c` sees it: its programs (libbpf's view:
//! every function symbol of an executable section other than `.text`), each program's
//! expectations from the BTF decl tags of `bpf_misc.h`, and the copy of the object in which
//! only the program under test and the auxiliary ones are programs (the loader's
//! `bpf_program__set_autoload`).

use anyhow::{Context, Result, bail};
use bpfkit_btf::{Btf, TypeKind};
use std::collections::HashSet;

const SHT_SYMTAB: u32 = 2;
const SHF_EXECINSTR: u64 = 4;
const STT_FUNC: u8 = 2;
const SYM_SIZE: usize = 24;
const SHDR_SIZE: usize = 64;

/// `TEST_DATA_LEN` of `bpf_misc.h`: the test run's input is this many zero bytes.
pub const TEST_DATA_LEN: usize = 64;

struct Section {
    name: String,
    /// File offset of the section header.
    header: usize,
    flags: u64,
    offset: usize,
    size: usize,
    kind: u32,
    link: u32,
}

/// A program: a function symbol of a program section.
#[derive(Clone, Debug)]
pub struct ProgSym {
    pub name: String,
    pub section: String,
    section_index: usize,
    /// File offset of the symbol's `st_info`.
    info_at: usize,
}

/// The parts of an ELF object the loader looks at.
pub struct Elf<'d> {
    data: &'d [u8],
    sections: Vec<Section>,
    pub programs: Vec<ProgSym>,
}

fn rd<const N: usize>(d: &[u8], at: usize) -> Result<[u8; N]> {
    d.get(at..at + N).and_then(|s| s.try_into().ok()).with_context(|| format!("ELF read of {N} bytes at {at:#x}"))
}
fn u16_at(d: &[u8], at: usize) -> Result<u16> {
    Ok(u16::from_le_bytes(rd(d, at)?))
}
fn u32_at(d: &[u8], at: usize) -> Result<u32> {
    Ok(u32::from_le_bytes(rd(d, at)?))
}
fn u64_at(d: &[u8], at: usize) -> Result<u64> {
    Ok(u64::from_le_bytes(rd(d, at)?))
}
fn cstr(d: &[u8], at: usize) -> Result<String> {
    let s = d.get(at..).context("string offset outside the file")?;
    let end = s.iter().position(|&b| b == 0).context("unterminated string")?;
    Ok(String::from_utf8_lossy(&s[..end]).into_owned())
}

impl<'d> Elf<'d> {
    /// Reads a little-endian ELF64 object.
    pub fn parse(data: &'d [u8]) -> Result<Elf<'d>> {
        if data.get(..4) != Some(b"\x7fELF") || data.get(4) != Some(&2) || data.get(5) != Some(&1) {
            bail!("not a little-endian ELF64 object");
        }
        let shoff = u64_at(data, 0x28)? as usize;
        let shentsize = u16_at(data, 0x3a)? as usize;
        let shnum = u16_at(data, 0x3c)? as usize;
        let shstrndx = u16_at(data, 0x3e)? as usize;
        if shentsize != SHDR_SIZE {
            bail!("section header size {shentsize}");
        }
        let mut raw = Vec::with_capacity(shnum);
        for i in 0..shnum {
            let h = shoff + i * SHDR_SIZE;
            raw.push((
                u32_at(data, h)?,
                Section {
                    name: String::new(),
                    header: h,
                    kind: u32_at(data, h + 4)?,
                    flags: u64_at(data, h + 8)?,
                    offset: u64_at(data, h + 24)? as usize,
                    size: u64_at(data, h + 32)? as usize,
                    link: u32_at(data, h + 40)?,
                },
            ));
        }
        let strtab_off = raw.get(shstrndx).context("no section name table")?.1.offset;
        let mut sections = Vec::with_capacity(shnum);
        for (name_off, mut s) in raw {
            s.name = cstr(data, strtab_off + name_off as usize)?;
            sections.push(s);
        }
        let mut programs = Vec::new();
        if let Some(symtab) = sections.iter().find(|s| s.kind == SHT_SYMTAB) {
            let strtab = sections.get(symtab.link as usize).context("symbol table without strings")?.offset;
            for i in 0..symtab.size / SYM_SIZE {
                let at = symtab.offset + i * SYM_SIZE;
                let info = rd::<1>(data, at + 4)?[0];
                let shndx = u16_at(data, at + 6)? as usize;
                if info & 0xf != STT_FUNC {
                    continue;
                }
                let Some(sec) = sections.get(shndx) else { continue };
                if sec.flags & SHF_EXECINSTR == 0 || sec.name == ".text" {
                    continue;
                }
                programs.push((
                    shndx,
                    u64_at(data, at + 8)?,
                    ProgSym {
                        name: cstr(data, strtab + u32_at(data, at)? as usize)?,
                        section: sec.name.clone(),
                        section_index: shndx,
                        info_at: at + 4,
                    },
                ));
            }
        }
        programs.sort_by_key(|p| (p.0, p.1));
        Ok(Elf { data, sections, programs: programs.into_iter().map(|p| p.2).collect() })
    }

    /// The `.BTF` section, parsed.
    pub fn btf(&self) -> Result<Btf> {
        let s = self.sections.iter().find(|s| s.name == ".BTF").context("the object has no .BTF")?;
        let bytes = self.data.get(s.offset..s.offset + s.size).context(".BTF outside the file")?;
        Btf::parse(bytes).context("parsing .BTF")
    }

    /// A copy of the object in which only the programs of `keep` are programs: the others'
    /// symbols become `STT_NOTYPE`, sections left without a program lose `SHF_EXECINSTR`, and a
    /// leading `?` of a section name (libbpf: not loaded by default) is dropped.
    pub fn isolate(&self, keep: &HashSet<&str>) -> Vec<u8> {
        let mut out = self.data.to_vec();
        let mut kept_sections = HashSet::new();
        for p in &self.programs {
            if keep.contains(p.name.as_str()) {
                kept_sections.insert(p.section_index);
            } else {
                out[p.info_at] &= 0xf0;
            }
        }
        let shstr = u16::from_le_bytes([out[0x3e], out[0x3f]]) as usize;
        for (i, s) in self.sections.iter().enumerate() {
            if s.flags & SHF_EXECINSTR != 0 && s.name != ".text" && !kept_sections.contains(&i) {
                let flags = s.flags & !SHF_EXECINSTR;
                out[s.header + 8..s.header + 16].copy_from_slice(&flags.to_le_bytes());
            }
            if s.name.starts_with('?') && i != shstr {
                let name_off = u32::from_le_bytes(out[s.header..s.header + 4].try_into().expect("4 bytes"));
                out[s.header..s.header + 4].copy_from_slice(&(name_off + 1).to_le_bytes());
            }
        }
        out
    }
}

/// What one program's decl tags ask of the test loader (privileged mode; `_unpriv` tags only
/// decide whether the program runs in privileged mode at all).
#[derive(Clone, Debug, Default)]
pub struct Spec {
    pub program: String,
    pub section: String,
    pub description: Option<String>,
    /// Run in privileged mode (the kernel's `mode_mask & PRIV`).
    pub privileged: bool,
    pub auxiliary: bool,
    pub expect_failure: bool,
    /// `__msg`: in order, each after the previous match; `{{...}}` parts are regexes.
    pub msgs: Vec<String>,
    /// `__xlated` expectations (bpfkit's xlated program differs by design: not checked).
    pub xlated: usize,
    /// `__retval`, as written and as the loader's `int`; `None` for `POINTER_VALUE`, which
    /// bpf_misc.h documents as "any value" (a pointer the program returns).
    pub retval: Option<(String, Option<i64>)>,
    pub log_level: u32,
    pub flags: Vec<String>,
    /// `__arch_*`; empty: every arch.
    pub arches: Vec<String>,
    pub btf_path: Option<String>,
}

impl Spec {
    /// Whether the test runs here (x86-64, privileged, not auxiliary).
    pub fn is_test(&self) -> bool {
        self.privileged && !self.auxiliary && self.runs_on_x86_64()
    }

    pub fn runs_on_x86_64(&self) -> bool {
        self.arches.is_empty() || self.arches.iter().any(|a| a == "X86_64")
    }
}

/// `parse_retval` of test_loader.c: named values, `0x` hex or decimal, as a C `int`.
fn parse_retval(s: &str) -> Result<Option<i64>> {
    let v = match s {
        "INT_MIN" => i64::from(i32::MIN),
        "POINTER_VALUE" => return Ok(None),
        "TEST_DATA_LEN" => TEST_DATA_LEN as i64,
        _ => match s.strip_prefix("0x") {
            Some(h) => i64::from_str_radix(h, 16)?,
            None => s.parse::<i64>()?,
        },
    };
    Ok(Some(i64::from(v as i32)))
}

/// `<pfx><counter>=<text>` → `<text>` (test_loader.c's `skip_dynamic_pfx`).
fn dynamic<'a>(s: &'a str, pfx: &str) -> Option<&'a str> {
    let rest = s.strip_prefix(pfx)?;
    Some(&rest[rest.find('=')? + 1..])
}

/// Every program's spec, in the object's program order.
pub fn specs(elf: &Elf<'_>) -> Result<Vec<Spec>> {
    let btf = elf.btf()?;
    let mut out = Vec::new();
    for p in &elf.programs {
        let func = btf
            .iter()
            .find(|(_, t)| matches!(t.kind, TypeKind::Func { .. }) && t.name.as_deref() == Some(p.name.as_str()))
            .map(|(id, _)| id)
            .with_context(|| format!("no BTF FUNC for program `{}`", p.name))?;
        let mut s = Spec { program: p.name.clone(), section: p.section.clone(), ..Spec::default() };
        let (mut unpriv, mut collect_jit) = (false, false);
        for (_, t) in btf.iter() {
            let TypeKind::DeclTag { target, component_idx: -1, .. } = t.kind else { continue };
            if target != func {
                continue;
            }
            let tag = t.name_str();
            if let Some(d) = tag.strip_prefix("comment:test_description=") {
                s.description = Some(d.to_string());
            } else if tag == "comment:test_expect_failure" {
                s.expect_failure = true;
                s.privileged = true;
            } else if tag == "comment:test_expect_success" {
                s.expect_failure = false;
                s.privileged = true;
            } else if tag == "comment:test_expect_failure_unpriv" || tag == "comment:test_expect_success_unpriv" {
                unpriv = true;
            } else if tag == "comment:test_auxiliary" {
                s.auxiliary = true;
                s.privileged = true;
            } else if tag == "comment:test_auxiliary_unpriv" {
                s.auxiliary = true;
                unpriv = true;
            } else if let Some(m) = dynamic(tag, "comment:test_expect_msg=") {
                s.msgs.push(m.to_string());
                s.privileged = true;
            } else if dynamic(tag, "comment:test_expect_msg_unpriv=").is_some()
                || dynamic(tag, "comment:test_expect_xlated_unpriv=").is_some()
                || tag.starts_with("comment:test_retval_unpriv=")
            {
                unpriv = true;
            } else if dynamic(tag, "comment:test_jited=").is_some() {
                // Only patterns for this arch count (and make the test privileged).
                s.privileged |= collect_jit;
            } else if dynamic(tag, "comment:test_jited_unpriv=").is_some() {
                unpriv |= collect_jit;
            } else if dynamic(tag, "comment:test_expect_xlated=").is_some() {
                s.xlated += 1;
                s.privileged = true;
            } else if let Some(v) = tag.strip_prefix("comment:test_retval=") {
                let n = parse_retval(v).with_context(|| format!("{}: __retval({v})", p.name))?;
                s.retval = Some((v.to_string(), n));
                s.privileged = true;
            } else if let Some(v) = tag.strip_prefix("comment:test_log_level=") {
                s.log_level = match v.strip_prefix("0x") {
                    Some(h) => u32::from_str_radix(h, 16)?,
                    None => v.parse()?,
                };
            } else if let Some(v) = tag.strip_prefix("comment:test_prog_flags=") {
                s.flags.push(v.to_string());
            } else if let Some(v) = tag.strip_prefix("comment:test_arch=") {
                s.arches.push(v.to_string());
                collect_jit = v == "X86_64";
            } else if let Some(v) = tag.strip_prefix("comment:test_btf_path=") {
                s.btf_path = Some(v.to_string());
            }
        }
        // No mode at all: privileged, expecting success.
        if !s.privileged && !unpriv {
            s.privileged = true;
        }
        out.push(s);
    }
    Ok(out)
}
