//! Helpers: host functions a program calls by number (`call N`, the kernel's `bpf_func_id`).
//!
//! A helper receives `r1`..`r5` and a [`HelperCtx`] through which it reaches guest memory
//! (bounds-checked like every other access) and can end the run. Its result goes to `r0`.

use crate::memory::{AccessError, MemMap, RegionKind};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Signature of a helper.
pub type HelperFn = dyn Fn(&mut HelperCtx<'_>, [u64; 5]) -> Result<u64, HelperError> + Send + Sync;

/// A registered helper.
#[derive(Clone)]
pub struct Helper {
    pub(crate) name: &'static str,
    pub(crate) func: Arc<HelperFn>,
}

impl Helper {
    /// The helper's name, for logs and errors.
    pub fn name(&self) -> &'static str {
        self.name
    }
}

/// Why a helper failed; the run ends with this error.
#[derive(Debug, thiserror::Error)]
pub enum HelperError {
    #[error(transparent)]
    Access(#[from] AccessError),
    #[error("{message}")]
    Failed { message: String },
}

/// What a helper sees of the running program.
pub struct HelperCtx<'a> {
    pub(crate) mem: &'a mut MemMap,
    pub(crate) exit: Option<u64>,
}

impl HelperCtx<'_> {
    /// Borrows `len` bytes of guest memory at `addr` for reading.
    pub fn slice(&self, addr: u64, len: usize) -> Result<&[u8], AccessError> {
        self.mem.slice(addr, len)
    }

    /// Borrows `len` bytes of guest memory at `addr` for writing.
    pub fn slice_mut(&mut self, addr: u64, len: usize) -> Result<&mut [u8], AccessError> {
        self.mem.slice_mut(addr, len)
    }

    /// The kind of region holding `[addr, addr + len)`, if one does.
    pub fn region_kind(&self, addr: u64, len: usize) -> Option<RegionKind> {
        self.mem.region_of(addr, len as u64).map(|r| r.kind)
    }

    /// Ends the whole run once the helper returns, with `r0` as the program's result.
    pub fn exit_program(&mut self, r0: u64) {
        self.exit = Some(r0);
    }
}

/// Helpers by number.
#[derive(Clone, Default)]
pub struct Helpers {
    by_id: BTreeMap<i32, Helper>,
}

impl std::fmt::Debug for Helpers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.by_id.iter().map(|(id, h)| (id, h.name))).finish()
    }
}

impl Helpers {
    /// No helpers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers (or replaces) helper `id`.
    pub fn register(
        &mut self,
        id: i32,
        name: &'static str,
        func: impl Fn(&mut HelperCtx<'_>, [u64; 5]) -> Result<u64, HelperError> + Send + Sync + 'static,
    ) -> &mut Self {
        self.by_id.insert(id, Helper { name, func: Arc::new(func) });
        self
    }

    /// The helper registered as `id`.
    pub fn get(&self, id: i32) -> Option<&Helper> {
        self.by_id.get(&id)
    }

    /// Every helper, by increasing id.
    pub fn iter(&self) -> impl Iterator<Item = (i32, &Helper)> {
        self.by_id.iter().map(|(id, h)| (*id, h))
    }

    /// The helpers the bpf_conformance suite expects: helper 5 is its "unwind" function, which
    /// returns its first argument and, when that is 0, ends the program with `r0 = 0`.
    pub fn conformance() -> Self {
        let mut h = Helpers::new();
        h.register(5, "unwind", |ctx, args| {
            if args[0] == 0 {
                ctx.exit_program(0);
            }
            Ok(args[0])
        });
        h
    }
}
