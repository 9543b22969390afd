//! bpfkit's verifier, written to behave as the kernel's (`kernel/bpf/verifier.c`,
//! `kernel/bpf/cfg.c`): same acceptance, same log messages.
//!
//! First stage, [`cfg`]: the kernel's `add_subprog_and_kfunc` + `check_subprogs` + the field
//! checks of `check_and_resolve_insns` that concern control flow + `check_cfg`, producing the
//! subprograms, basic blocks and successors of a program (with its jump tables).
#![forbid(unsafe_code)]

mod api;
pub mod cfg;
mod check;
pub mod protos;
pub mod scalar;
pub mod state;
pub mod tnum;

pub use api::{
    COMPLEXITY_LIMIT, CtxField, CtxFieldKind, CtxRules, Input, LdImm, MapInfo, VerifyError, VerifyReport, verify,
};
pub use check::map_type;

pub use cfg::{Block, BlockEdge, Call, CallKind, Cfg, CfgError, Edge, EdgeKind, Subprog, build};
