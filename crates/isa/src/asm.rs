//! Assembler (placeholder while it is being written; replaced in this same change).

use crate::raw::RawInsn;

/// An assembly error at a 1-based line and column.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{col}: {kind}")]
pub struct AsmError {
    pub line: usize,
    pub col: usize,
    pub kind: AsmErrorKind,
}

/// What went wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AsmErrorKind {
    #[error("unknown instruction")]
    UnknownInstruction,
}

/// Assembles a program.
pub fn assemble(_text: &str) -> Result<Vec<RawInsn>, AsmError> {
    Err(AsmError { line: 1, col: 1, kind: AsmErrorKind::UnknownInstruction })
}
