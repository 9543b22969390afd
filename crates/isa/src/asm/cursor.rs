//! A cursor over the tokens of one line, with the operand readers both dialects share:
//! registers, immediates, memory offsets and jump targets.

use super::lexer::{Kind, Token};
use super::{AsmError, AsmErrorKind};
use crate::insn::Reg;

/// Which syntax an operand is read in: uBPF registers may be written `%r1`, LLVM ones `w1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Dialect {
    Llvm,
    Ubpf,
}

/// A register operand.
#[derive(Clone, Copy, Debug)]
pub(super) struct RegTok {
    pub reg: Reg,
    /// `rN` (true) or `wN` (false).
    pub wide: bool,
    /// Byte range of its text, `%` included.
    pub pos: usize,
    pub end: usize,
}

/// A number with its optional sign, not yet range-checked.
#[derive(Clone, Copy, Debug)]
pub(super) struct Number {
    pub value: i128,
    pub pos: usize,
    pub end: usize,
}

/// A reference to a label, to be resolved once every line has been read.
#[derive(Clone, Debug)]
pub(super) struct LabelRef {
    pub name: String,
    pub col: usize,
}

/// A jump target as written: a relative offset or a label.
#[derive(Clone, Debug)]
pub(super) enum Target {
    Rel(i32),
    Label(LabelRef),
}

/// Splits a register name into its letter (`r` → true) and number; `None` if the text does
/// not look like a register at all, `Some((_, None))` if it does but names no register.
pub(super) fn reg_name(s: &str) -> Option<(bool, Option<Reg>)> {
    let wide = match s.as_bytes().first()? {
        b'r' => true,
        b'w' => false,
        _ => return None,
    };
    let digits = &s[1..];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let reg =
        if digits.len() > 1 && digits.starts_with('0') { None } else { digits.parse::<u8>().ok().and_then(Reg::new) };
    Some((wide, reg))
}

/// Whether a token is an identifier that looks like a register (`r3`, `w11`), valid or not.
pub(super) fn is_reg_like(t: &Token<'_>) -> bool {
    t.kind == Kind::Ident && reg_name(t.text).is_some()
}

fn parse_magnitude(s: &str) -> Result<u128, &'static str> {
    let (digits, radix) = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => (h, 16),
        None => (s, 10),
    };
    if digits.is_empty() {
        return Err("no digits after `0x`");
    }
    if radix == 10 && digits.len() > 1 && digits.starts_with('0') {
        return Err("a decimal number cannot start with 0 (LLVM would read it as octal)");
    }
    let mut v: u128 = 0;
    for ch in digits.chars() {
        let d = ch.to_digit(radix).ok_or(if radix == 16 { "invalid hexadecimal digit" } else { "invalid digit" })?;
        // Anything above 2^64 is out of range for every operand: saturate there.
        v = (v * u128::from(radix) + u128::from(d)).min(1 << 65);
    }
    Ok(v)
}

pub(super) struct Cursor<'a> {
    line: &'a str,
    line_no: usize,
    toks: Vec<Token<'a>>,
    i: usize,
    /// Byte position of the end of the text (comment and annotation excluded).
    end: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(line: &'a str, line_no: usize, toks: Vec<Token<'a>>, end: usize) -> Self {
        Cursor { line, line_no, toks, i: 0, end }
    }

    /// The 1-based line number.
    pub fn line_no(&self) -> usize {
        self.line_no
    }

    pub fn peek(&self) -> Option<Token<'a>> {
        self.toks.get(self.i).copied()
    }

    pub fn peek_at(&self, n: usize) -> Option<Token<'a>> {
        self.toks.get(self.i + n).copied()
    }

    pub fn bump(&mut self) -> Option<Token<'a>> {
        let t = self.peek();
        if t.is_some() {
            self.i += 1;
        }
        t
    }

    /// Byte position of the next token, or of the end of the text.
    pub fn pos(&self) -> usize {
        self.peek().map_or(self.end, |t| t.pos)
    }

    /// 1-based column (in characters) of a byte position of the line.
    pub fn col(&self, pos: usize) -> usize {
        self.line.get(..pos).map_or(1, |s| s.chars().count() + 1)
    }

    pub fn text(&self, pos: usize, end: usize) -> &'a str {
        self.line.get(pos..end).unwrap_or("")
    }

    pub fn err(&self, pos: usize, kind: AsmErrorKind) -> AsmError {
        AsmError { line: self.line_no, col: self.col(pos), kind }
    }

    /// The error for a missing or wrong token where `expected` was expected.
    pub fn unexpected(&self, expected: &str) -> AsmError {
        match self.peek() {
            None => self.err(self.end, AsmErrorKind::MissingOperand { expected: expected.to_string() }),
            Some(t) => self.err(
                t.pos,
                AsmErrorKind::ExpectedToken { expected: expected.to_string(), found: format!("`{}`", t.text) },
            ),
        }
    }

    pub fn is_punct(&self, p: &str) -> bool {
        self.peek().is_some_and(|t| t.is_punct(p))
    }

    pub fn eat_punct(&mut self, p: &str) -> bool {
        let yes = self.is_punct(p);
        if yes {
            self.i += 1;
        }
        yes
    }

    pub fn expect_punct(&mut self, p: &str) -> Result<Token<'a>, AsmError> {
        match self.peek() {
            Some(t) if t.is_punct(p) => {
                self.i += 1;
                Ok(t)
            }
            _ => Err(self.unexpected(&format!("`{p}`"))),
        }
    }

    pub fn expect_word(&mut self, w: &str) -> Result<Token<'a>, AsmError> {
        match self.peek() {
            Some(t) if t.is_ident(w) => {
                self.i += 1;
                Ok(t)
            }
            _ => Err(self.unexpected(&format!("`{w}`"))),
        }
    }

    /// Any identifier.
    pub fn ident(&mut self, expected: &str) -> Result<Token<'a>, AsmError> {
        match self.peek() {
            Some(t) if t.kind == Kind::Ident => {
                self.i += 1;
                Ok(t)
            }
            _ => Err(self.unexpected(expected)),
        }
    }

    /// Fails if anything is left on the line.
    pub fn finish(&self) -> Result<(), AsmError> {
        match self.peek() {
            None => Ok(()),
            Some(t) => Err(self
                .err(t.pos, AsmErrorKind::TrailingInput { text: self.text(t.pos, self.end).trim_end().to_string() })),
        }
    }

    /// A register: `r0`..`r10`, also `w0`..`w10` in LLVM syntax and `%r0`..`%r10` in uBPF syntax.
    pub fn reg(&mut self, dialect: Dialect) -> Result<RegTok, AsmError> {
        let start = self.pos();
        let percent = dialect == Dialect::Ubpf && self.eat_punct("%");
        let bad =
            |c: &Self, end: usize| c.err(start, AsmErrorKind::BadRegister { text: c.text(start, end).to_string() });
        let t = match self.peek() {
            Some(t) if t.kind == Kind::Ident => t,
            Some(t) if percent => return Err(bad(self, t.end())),
            None if percent => return Err(bad(self, self.end)),
            _ => return Err(self.unexpected("register")),
        };
        match reg_name(t.text) {
            Some((wide, Some(reg))) if wide || dialect == Dialect::Llvm => {
                self.i += 1;
                Ok(RegTok { reg, wide, pos: start, end: t.end() })
            }
            Some(_) => Err(bad(self, t.end())),
            None if percent => Err(bad(self, t.end())),
            None => Err(self.unexpected("register")),
        }
    }

    /// An LLVM register of a given letter (`wide`: `rN`, else `wN`).
    pub fn reg_of_width(&mut self, wide: bool) -> Result<RegTok, AsmError> {
        let r = self.reg(Dialect::Llvm)?;
        self.check_width(&r, wide)?;
        Ok(r)
    }

    pub fn check_width(&self, r: &RegTok, wide: bool) -> Result<(), AsmError> {
        if r.wide == wide {
            Ok(())
        } else {
            Err(self.err(
                r.pos,
                AsmErrorKind::RegisterWidth {
                    text: self.text(r.pos, r.end).to_string(),
                    expected: if wide { "a 64-bit rN register" } else { "a 32-bit wN register" },
                },
            ))
        }
    }

    /// Requires `r` to name the same register (and letter) as `want`.
    pub fn check_same(&self, r: &RegTok, want: &str) -> Result<(), AsmError> {
        let found = self.text(r.pos, r.end);
        if found == want {
            Ok(())
        } else {
            Err(self
                .err(r.pos, AsmErrorKind::RegisterMismatch { expected: want.to_string(), found: found.to_string() }))
        }
    }

    /// A number with an optional `+` or `-` sign.
    pub fn number(&mut self, expected: &str) -> Result<Number, AsmError> {
        let start = self.pos();
        let neg = if self.eat_punct("-") {
            true
        } else {
            self.eat_punct("+");
            false
        };
        let t = match self.peek() {
            Some(t) if t.kind == Kind::Num => t,
            // Reported at what follows the sign, or at the end of the line.
            _ => return Err(self.unexpected(expected)),
        };
        let mag = parse_magnitude(t.text)
            .map_err(|reason| self.err(t.pos, AsmErrorKind::BadNumber { text: t.text.to_string(), reason }))?;
        self.i += 1;
        let mag = mag as i128; // at most 2^65
        Ok(Number { value: if neg { -mag } else { mag }, pos: start, end: t.end() })
    }

    fn fit(&self, n: &Number, lo: i128, hi: i128, bits: u32) -> Result<i128, AsmError> {
        if n.value < lo || n.value > hi {
            Err(self.err(n.pos, AsmErrorKind::ImmediateOutOfRange { text: self.text(n.pos, n.end).to_string(), bits }))
        } else {
            Ok(n.value)
        }
    }

    /// A 32-bit immediate: signed, or unsigned up to `0xffffffff` (wrapping to negative).
    pub fn imm32(&mut self) -> Result<i32, AsmError> {
        let n = self.number("immediate")?;
        self.imm32_of(&n)
    }

    pub fn imm32_of(&self, n: &Number) -> Result<i32, AsmError> {
        Ok(self.fit(n, -(1 << 31), (1 << 32) - 1, 32)? as u32 as i32)
    }

    /// A 64-bit immediate: signed, or unsigned up to `0xffffffffffffffff`.
    pub fn imm64_of(&self, n: &Number) -> Result<i64, AsmError> {
        Ok(self.fit(n, -(1 << 63), (1 << 64) - 1, 64)? as u64 as i64)
    }

    /// A 16-bit immediate with the same wrapping rule as [`Cursor::imm32`].
    pub fn imm16(&mut self) -> Result<i16, AsmError> {
        let n = self.number("immediate")?;
        Ok(self.fit(&n, -(1 << 15), (1 << 16) - 1, 16)? as u16 as i16)
    }

    /// The offset after the base register of a memory operand: nothing, or `+ n` / `- n`.
    pub fn mem_off(&mut self) -> Result<i16, AsmError> {
        if self.is_punct("+") || self.is_punct("-") { self.imm16() } else { Ok(0) }
    }

    /// A signed relative offset of `bits` (16 or 32) bits, without wrapping.
    pub fn rel(&mut self, bits: u32) -> Result<i32, AsmError> {
        let n = self.number("jump target")?;
        let half = 1i128 << (bits - 1);
        Ok(self.fit(&n, -half, half - 1, bits)? as i32)
    }

    /// A jump target: a label, or a relative offset of `bits` bits (`+3`, `-0x2`, `5`).
    pub fn target(&mut self, bits: u32) -> Result<Target, AsmError> {
        match self.peek() {
            Some(t) if t.kind == Kind::Ident => {
                self.i += 1;
                Ok(Target::Label(LabelRef { name: t.text.to_string(), col: self.col(t.pos) }))
            }
            _ => Ok(Target::Rel(self.rel(bits)?)),
        }
    }
}
