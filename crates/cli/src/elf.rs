//! Disassembly of the code sections of an ELF object, in llvm-objdump's layout.

use anyhow::{Context, Result};
use bpfkit_isa::{decode_program, listing, slots_from_bytes};
use object::{Object, ObjectSection, ObjectSymbol, SectionKind, SymbolKind};
use std::io::Write;

/// Whether `bytes` start with the ELF magic.
pub fn is_elf(bytes: &[u8]) -> bool {
    bytes.starts_with(b"\x7fELF")
}

/// Prints every non-empty executable section, with its function symbols as headers.
pub fn disassemble(bytes: &[u8], out: &mut impl Write) -> Result<()> {
    let file = object::File::parse(bytes).context("parsing the ELF object")?;
    for section in file.sections().filter(|s| s.kind() == SectionKind::Text) {
        let name = section.name().unwrap_or("<unnamed>");
        let data = section.data().with_context(|| format!("reading section {name}"))?;
        if data.is_empty() {
            continue;
        }
        let slots = slots_from_bytes(data).with_context(|| format!("section {name}"))?;
        let decoded = decode_program(&slots).with_context(|| format!("section {name}"))?;
        let text = listing(&slots).with_context(|| format!("section {name}"))?;
        let mut symbols: Vec<(u64, &str)> = file
            .symbols()
            .filter(|s| s.section_index() == Some(section.index()) && s.kind() == SymbolKind::Text)
            .filter_map(|s| Some((s.address(), s.name().ok()?)))
            .filter(|(_, n)| !n.is_empty())
            .collect();
        symbols.sort();
        writeln!(out, "\nDisassembly of section {name}:")?;
        if symbols.first().is_none_or(|(addr, _)| *addr != 0) {
            writeln!(out, "\n{:016x} <{name}>:", 0)?;
        }
        for (insn, line) in decoded.iter().zip(text.lines()) {
            let offset = insn.pc as u64 * 8;
            for (_, sym) in symbols.iter().filter(|(a, _)| *a == offset) {
                writeln!(out, "\n{offset:016x} <{sym}>:")?;
            }
            writeln!(out, "{line}")?;
        }
    }
    Ok(())
}
