//! Splits one line of assembly into tokens, keeping the byte position of each so that errors
//! can point at a column.

use super::AsmErrorKind;

/// What a token is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    /// `[A-Za-z_.][A-Za-z0-9_.]*`: mnemonics, registers, labels, type names.
    Ident,
    /// A digit followed by letters, digits and `_`; validated when it is read as a number.
    Num,
    /// An operator or delimiter from [`PUNCTS`], or a signed operator such as `s>=`.
    Punct,
}

/// One token: its kind, its text (a slice of the line) and its byte position in the line.
#[derive(Clone, Copy, Debug)]
pub(super) struct Token<'a> {
    pub kind: Kind,
    pub text: &'a str,
    pub pos: usize,
}

impl Token<'_> {
    /// Byte position just past the token.
    pub fn end(&self) -> usize {
        self.pos + self.text.len()
    }

    pub fn is_punct(&self, p: &str) -> bool {
        self.kind == Kind::Punct && self.text == p
    }

    pub fn is_ident(&self, w: &str) -> bool {
        self.kind == Kind::Ident && self.text == w
    }
}

/// Operators and delimiters, longest first so that the first match is the longest one.
const PUNCTS: &[&str] = &[
    "<<=", ">>=", "+=", "-=", "*=", "/=", "%=", "|=", "&=", "^=", "==", "!=", "<=", ">=", "=", "<", ">", "&", "+", "-",
    "*", "(", ")", "[", "]", ",", ":", "%",
];

/// Operators that an `s` written right before them turns into their signed form (`s>=`, `s/=`).
const SIGNED: &[&str] = &[">>=", "/=", "%=", ">=", ">", "<=", "<"];

fn ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == '.'
}

fn ident_continue(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '.'
}

/// Tokenizes `line[start..end]`. On error, returns the byte position of the offending character.
pub(super) fn tokenize(line: &str, start: usize, end: usize) -> Result<Vec<Token<'_>>, (usize, AsmErrorKind)> {
    let mut toks = Vec::new();
    let text = line.get(start..end).unwrap_or("");
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let pos = start + i;
        if c.is_whitespace() {
            continue;
        }
        let (kind, len) = if ident_start(c) {
            let len = text[i..].find(|c: char| !ident_continue(c)).unwrap_or(text.len() - i);
            let rest = &text[i + len..];
            match SIGNED.iter().find(|p| len == 1 && c == 's' && rest.starts_with(**p)) {
                Some(p) => (Kind::Punct, 1 + p.len()),
                None => (Kind::Ident, len),
            }
        } else if c.is_ascii_digit() {
            let len = text[i..].find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(text.len() - i);
            (Kind::Num, len)
        } else {
            match PUNCTS.iter().find(|p| text[i..].starts_with(**p)) {
                Some(p) => (Kind::Punct, p.len()),
                None => return Err((pos, AsmErrorKind::UnexpectedChar { ch: c })),
            }
        };
        toks.push(Token { kind, text: &text[i..i + len], pos });
        // Skip the remaining characters of the token (all ASCII, so bytes == chars).
        for _ in 1..len {
            chars.next();
        }
    }
    Ok(toks)
}
