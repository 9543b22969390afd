//! The `bpf_trace_printk` / `bpf_snprintf` format engine: the kernel's `bpf_bprintf_prepare`
//! rules, written for bpfkit.
//!
//! Conversions: `%d %i %u %x %X %o %c %s %%`, with `l`/`ll` length modifiers, flags `-+ #0`, a
//! field width and, for `%s`, a precision; pointers `%p` (hash-free, printed as `%px` would),
//! `%px`, `%pK`, `%pI4 %pi4` (IPv4 from 4 bytes at the pointer), `%pI6 %pi6 %pI6c` (IPv6 from
//! 16 bytes), `%pks %pus` (strings). Anything else is an error, as in the kernel.

use bpfkit_interp::HelperCtx;
use std::fmt::Write as _;

/// The widest field a conversion may ask for.
const MAX_WIDTH: usize = 1024;

/// Why a format was refused (the helper returns -EINVAL).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    #[error("format string is not NUL-terminated")]
    Unterminated,
    #[error("unsupported conversion `{spec}`")]
    Unsupported { spec: String },
    #[error("format needs more than the {given} arguments given")]
    TooFewArgs { given: usize },
    #[error("invalid pointer argument {addr:#x} for `{spec}`")]
    BadPointer { addr: u64, spec: String },
}

struct Spec {
    left: bool,
    plus: bool,
    space: bool,
    alt: bool,
    zero: bool,
    width: usize,
    precision: Option<usize>,
}

fn pad(out: &mut String, body: &str, spec: &Spec, numeric: bool) {
    let len = body.chars().count();
    if len >= spec.width {
        out.push_str(body);
        return;
    }
    let fill = spec.width - len;
    if spec.left {
        out.push_str(body);
        out.extend(std::iter::repeat_n(' ', fill));
    } else if spec.zero && numeric {
        let (sign, digits) = match body.chars().next() {
            Some(c @ ('-' | '+' | ' ')) => (c.to_string(), &body[1..]),
            _ => (String::new(), body),
        };
        let (prefix, digits) =
            if digits.starts_with("0x") || digits.starts_with("0X") { digits.split_at(2) } else { ("", digits) };
        out.push_str(&sign);
        out.push_str(prefix);
        out.extend(std::iter::repeat_n('0', fill));
        out.push_str(digits);
    } else {
        out.extend(std::iter::repeat_n(' ', fill));
        out.push_str(body);
    }
}

/// Formats `fmt` (the bytes up to its NUL) with `args`, reading `%s` strings and `%pI4`-style
/// pointers from guest memory.
pub fn format(ctx: &HelperCtx<'_>, fmt: &[u8], args: &[u64]) -> Result<String, FormatError> {
    let mut out = String::new();
    let mut next_arg = args.iter();
    let mut arg = |_spec: &str| next_arg.next().copied().ok_or(FormatError::TooFewArgs { given: args.len() });
    let mut i = 0;
    while i < fmt.len() {
        let c = fmt[i];
        if c != b'%' {
            out.push(char::from(c));
            i += 1;
            continue;
        }
        let start = i;
        i += 1;
        let mut spec =
            Spec { left: false, plus: false, space: false, alt: false, zero: false, width: 0, precision: None };
        while let Some(&f) = fmt.get(i) {
            match f {
                b'-' => spec.left = true,
                b'+' => spec.plus = true,
                b' ' => spec.space = true,
                b'#' => spec.alt = true,
                b'0' => spec.zero = true,
                _ => break,
            }
            i += 1;
        }
        while let Some(d) = fmt.get(i).filter(|d| d.is_ascii_digit()) {
            spec.width = spec.width.saturating_mul(10).saturating_add(usize::from(d - b'0'));
            i += 1;
        }
        // The kernel formats into small fixed buffers; a wider field is refused, not padded.
        if spec.width > MAX_WIDTH {
            return Err(FormatError::Unsupported { spec: text(fmt, start, i) });
        }
        if fmt.get(i) == Some(&b'.') {
            i += 1;
            let mut p = 0usize;
            while let Some(d) = fmt.get(i).filter(|d| d.is_ascii_digit()) {
                p = p.saturating_mul(10).saturating_add(usize::from(d - b'0'));
                i += 1;
            }
            spec.precision = Some(p);
        }
        let mut long = 0;
        while fmt.get(i) == Some(&b'l') {
            long += 1;
            i += 1;
        }
        let conv =
            *fmt.get(i).ok_or(FormatError::Unsupported { spec: String::from_utf8_lossy(&fmt[start..]).into() })?;
        i += 1;
        if long > 2 {
            return Err(FormatError::Unsupported { spec: text(fmt, start, i) });
        }
        // Without `l`, integer arguments are 32-bit.
        let narrow = |v: u64| if long == 0 { v & 0xffff_ffff } else { v };
        match conv {
            b'%' if i - start == 2 => out.push('%'),
            b'd' | b'i' => {
                let v = arg(&text(fmt, start, i))?;
                let v = if long == 0 { i64::from(v as u32 as i32) } else { v as i64 };
                let sign = if v < 0 {
                    "-"
                } else if spec.plus {
                    "+"
                } else if spec.space {
                    " "
                } else {
                    ""
                };
                pad(&mut out, &format!("{sign}{}", v.unsigned_abs()), &spec, true);
            }
            b'u' => {
                let v = narrow(arg(&text(fmt, start, i))?);
                pad(&mut out, &v.to_string(), &spec, true);
            }
            b'x' | b'X' | b'o' => {
                let v = narrow(arg(&text(fmt, start, i))?);
                let body = match (conv, spec.alt && v != 0) {
                    (b'x', true) => format!("{v:#x}"),
                    (b'x', false) => format!("{v:x}"),
                    (b'X', true) => format!("0X{v:X}"),
                    (b'X', false) => format!("{v:X}"),
                    (_, true) => format!("0{v:o}"),
                    (_, false) => format!("{v:o}"),
                };
                pad(&mut out, &body, &spec, true);
            }
            b'c' if long == 0 => {
                let v = arg(&text(fmt, start, i))?;
                pad(&mut out, &char::from(v as u8).to_string(), &spec, false);
            }
            b's' if long == 0 => {
                let addr = arg(&text(fmt, start, i))?;
                let max = spec.precision.unwrap_or(1 << 16);
                let s =
                    ctx.c_str(addr, max).map_err(|_| FormatError::BadPointer { addr, spec: text(fmt, start, i) })?;
                pad(&mut out, &String::from_utf8_lossy(s), &spec, false);
            }
            b'p' if long == 0 => {
                let addr = arg(&text(fmt, start, i))?;
                let ext = fmt.get(i).copied();
                match ext {
                    Some(b'I' | b'i') => {
                        let kind = fmt.get(i + 1).copied();
                        let upper = ext == Some(b'I');
                        i += 2;
                        match kind {
                            Some(b'4') => {
                                let b = ctx
                                    .slice(addr, 4)
                                    .map_err(|_| FormatError::BadPointer { addr, spec: text(fmt, start, i) })?;
                                let body = if upper {
                                    format!("{}.{}.{}.{}", b[0], b[1], b[2], b[3])
                                } else {
                                    format!("{:03}.{:03}.{:03}.{:03}", b[0], b[1], b[2], b[3])
                                };
                                pad(&mut out, &body, &spec, false);
                            }
                            Some(b'6') => {
                                let b = ctx
                                    .slice(addr, 16)
                                    .map_err(|_| FormatError::BadPointer { addr, spec: text(fmt, start, i) })?;
                                let compressed = upper && fmt.get(i) == Some(&b'c');
                                if compressed {
                                    i += 1;
                                }
                                let words: Vec<u16> =
                                    b.chunks_exact(2).map(|w| u16::from_be_bytes([w[0], w[1]])).collect();
                                let body = if compressed {
                                    let a: [u8; 16] = b.try_into().expect("16 bytes");
                                    std::net::Ipv6Addr::from(a).to_string()
                                } else if upper {
                                    words.iter().map(|w| format!("{w:04x}")).collect::<Vec<_>>().join(":")
                                } else {
                                    words.iter().map(|w| format!("{w:04x}")).collect::<String>()
                                };
                                pad(&mut out, &body, &spec, false);
                            }
                            _ => return Err(FormatError::Unsupported { spec: text(fmt, start, i) }),
                        }
                    }
                    Some(b'k' | b'u') if fmt.get(i + 1) == Some(&b's') => {
                        i += 2;
                        let s = ctx
                            .c_str(addr, 1 << 16)
                            .map_err(|_| FormatError::BadPointer { addr, spec: text(fmt, start, i) })?;
                        pad(&mut out, &String::from_utf8_lossy(s), &spec, false);
                    }
                    Some(b'x' | b'K') => {
                        i += 1;
                        pad(&mut out, &format!("{addr:016x}"), &spec, true);
                    }
                    Some(c) if c.is_ascii_alphanumeric() => {
                        return Err(FormatError::Unsupported {
                            spec: format!("{}{}", text(fmt, start, i), char::from(c)),
                        });
                    }
                    _ => pad(&mut out, &format!("{addr:016x}"), &spec, true),
                }
            }
            _ => return Err(FormatError::Unsupported { spec: text(fmt, start, i) }),
        }
    }
    let _ = out.write_str("");
    Ok(out)
}

fn text(fmt: &[u8], start: usize, end: usize) -> String {
    String::from_utf8_lossy(&fmt[start..end.min(fmt.len())]).into_owned()
}

/// The format bytes at `addr` of at most `size` bytes: must contain a NUL (`fmt_size` counts it).
pub fn format_bytes<'c>(ctx: &'c HelperCtx<'_>, addr: u64, size: u64) -> Result<&'c [u8], FormatError> {
    let bytes = ctx.slice(addr, size as usize).map_err(|_| FormatError::BadPointer { addr, spec: "fmt".into() })?;
    let end = bytes.iter().position(|&b| b == 0).ok_or(FormatError::Unterminated)?;
    Ok(&bytes[..end])
}

#[cfg(test)]
mod tests {
    use bpfkit_interp::{Helpers, Program, Vm};
    use std::sync::{Arc, Mutex};

    /// Runs `format` inside a helper (it needs a `HelperCtx`) on a string in the program's memory.
    fn fmt(f: &str, args: [u64; 3]) -> Result<String, super::FormatError> {
        let out = Arc::new(Mutex::new(None));
        let mut h = Helpers::new();
        let o = Arc::clone(&out);
        let fmt_bytes = f.as_bytes().to_vec();
        h.register(1, "fmt", move |ctx, [mem, ..]| {
            let text = ctx.slice(mem, fmt_bytes.len())?.to_vec();
            *o.lock().unwrap() = Some(super::format(ctx, &text, &args));
            Ok(0)
        });
        let slots = bpfkit_isa::assemble("call 0x1\nexit").unwrap();
        let mut mem = f.as_bytes().to_vec();
        Vm::new(Arc::new(Program::load(&slots, &h).unwrap())).run_mem(&mut mem).unwrap();
        out.lock().unwrap().take().unwrap()
    }

    #[test]
    fn conversions() {
        assert_eq!(fmt("a %d b %u c %x", [(-5i64) as u64, 7, 255]).unwrap(), "a -5 b 7 c ff");
        assert_eq!(fmt("%5d|%-4x|%05u", [42, 10, 7]).unwrap(), "   42|a   |00007");
        assert_eq!(fmt("%lld %llx", [u64::MAX, 1 << 40, 0]).unwrap(), "-1 10000000000");
        assert_eq!(fmt("100%%", [0; 3]).unwrap(), "100%");
    }

    #[test]
    fn refusals_are_errors_not_panics_or_huge_allocations() {
        assert!(fmt("%99999999999999999999d", [1, 0, 0]).is_err());
        assert!(fmt("%2000d", [1, 0, 0]).is_err());
        assert!(fmt("%q", [0; 3]).is_err());
        assert!(fmt("%d %d %d %d", [1, 2, 3]).is_err());
        assert!(fmt("%s", [0, 0, 0]).is_err());
    }
}
