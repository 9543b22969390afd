//! Recognizes the lines `llvm-objdump -d` wraps around instructions (file and section
//! headers, symbol headers, relocation records), and splits an instruction line into its
//! `pc:` prefix, its raw bytes and its text, dropping comments and the ` <label+0x8>`
//! annotations objdump adds after jump targets.

use crate::raw::RawInsn;

/// What a line holds.
#[derive(Debug)]
pub(super) enum LineKind<'a> {
    /// Nothing to assemble: blank, comment, or objdump framing.
    Skip,
    /// An objdump symbol header `0000000000000000 <prog>:`, naming the next instruction.
    Symbol(&'a str),
    /// Text to assemble in `line[start..end]`, with the bytes objdump printed for it, if any.
    Code { start: usize, end: usize, bytes: Option<Vec<RawInsn>> },
}

fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `0000000000000058 <LBB0_3>:`, or `<LBB0_3>:` with `--no-leading-addr`.
fn symbol_header(t: &str) -> Option<&str> {
    let rest = match t.split_once(' ') {
        Some((addr, rest)) if is_hex(addr) => rest,
        _ => t,
    };
    let name = rest.strip_prefix('<')?.strip_suffix(">:")?;
    (!name.is_empty()).then_some(name)
}

/// `0000000000000030:  R_BPF_64_64\tg` (from `llvm-objdump -r`).
fn relocation(t: &str) -> bool {
    t.split_once(':').is_some_and(|(addr, rest)| is_hex(addr) && rest.trim_start().starts_with("R_"))
}

/// `x.o:\tfile format elf64-bpf`
fn file_format(t: &str) -> bool {
    t.find("file format ").is_some_and(|i| t[..i].trim_end().ends_with(':'))
}

/// After `   12:` at `line[lead..]`: where the rest of the line starts.
fn pc_prefix(line: &str, lead: usize) -> Option<usize> {
    let b = line.as_bytes();
    let mut i = lead;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    if i == lead || b.get(i) != Some(&b':') {
        return None;
    }
    i += 1;
    while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
        i += 1;
    }
    Some(i)
}

/// Raw bytes `hh hh ... hh` followed by a tab at `line[i..]`: where the text after them
/// starts, and the bytes as slots if they make whole slots.
fn raw_bytes(line: &str, i: usize) -> Option<(usize, Option<Vec<RawInsn>>)> {
    let b = line.as_bytes();
    let hex = |c: u8| (c as char).to_digit(16).unwrap_or(0) as u8;
    let mut bytes = Vec::new();
    let mut j = i;
    while j + 2 <= b.len() && b[j].is_ascii_hexdigit() && b[j + 1].is_ascii_hexdigit() {
        bytes.push(hex(b[j]) << 4 | hex(b[j + 1]));
        j += 2;
        match b.get(j) {
            Some(b' ') => j += 1,
            Some(b'\t') => {
                let chunks = bytes.chunks_exact(RawInsn::SIZE);
                let slots = chunks
                    .remainder()
                    .is_empty()
                    .then(|| chunks.map(|c| RawInsn::from_bytes(c.try_into().unwrap_or([0; 8]))).collect());
                return Some((j + 1, slots));
            }
            _ => return None,
        }
    }
    None
}

/// Where the text of `line[start..]` ends once a trailing comment (`#`, `;` or `//`) and an
/// objdump annotation (` <LBB0_3>`) are removed.
fn text_end(line: &str, start: usize) -> usize {
    let text = &line[start..];
    let comment = [text.find(['#', ';']), text.find("//")].into_iter().flatten().min();
    let mut text = text[..comment.unwrap_or(text.len())].trim_end();
    if text.ends_with('>') {
        // Find the `<` that opens the annotation, allowing nested `<...>` in symbol names.
        let b = text.as_bytes();
        let mut depth = 0usize;
        for k in (0..b.len()).rev() {
            match b[k] {
                b'>' => depth += 1,
                b'<' => {
                    depth -= 1;
                    if depth == 0 {
                        let before = &text[..k];
                        if k > 0 && (b[k - 1] == b' ' || b[k - 1] == b'\t') && !before.trim().is_empty() {
                            text = before.trim_end();
                        }
                        break;
                    }
                }
                _ => {}
            }
        }
    }
    start + text.len()
}

pub(super) fn classify(line: &str) -> LineKind<'_> {
    let lead = line.len() - line.trim_start().len();
    let t = line.trim();
    if t.is_empty() || t.starts_with("Disassembly of section ") || file_format(t) || relocation(t) {
        return LineKind::Skip;
    }
    if let Some(name) = symbol_header(t) {
        return LineKind::Symbol(name);
    }
    let (start, bytes) = match pc_prefix(line, lead) {
        // With a `pc:` prefix, anything shaped like bytes is bytes.
        Some(i) => raw_bytes(line, i).unwrap_or((i, None)),
        // Without (`--no-leading-addr`), only whole slots are taken for bytes.
        None => match raw_bytes(line, lead) {
            Some((i, Some(slots))) if !slots.is_empty() => (i, Some(slots)),
            _ => (lead, None),
        },
    };
    LineKind::Code { start, end: text_end(line, start), bytes }
}
