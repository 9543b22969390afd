//! Helpers: host functions a program calls by number (`call N`, the kernel's `bpf_func_id`).
//!
//! A helper receives `r1`..`r5` and a [`HelperCtx`] through which it reaches guest memory
//! (bounds-checked like every other access), the embedder's per-run state (`env`), the
//! packet window and the context, and can end the run. Its result goes to `r0`.
//!
//! Two helpers transfer control and are carried out by the interpreter itself:
//! `bpf_tail_call` ([`Helpers::register_tail_call`]: the embedder only resolves the target)
//! and `bpf_loop` ([`Helpers::register_loop`]: the callback runs as a BPF-to-BPF call).

use crate::Program;
use crate::memory::{AccessError, MemMap, RegionKind};
use std::any::Any;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Signature of a helper.
pub type HelperFn = dyn Fn(&mut HelperCtx<'_>, [u64; 5]) -> Result<u64, HelperError> + Send + Sync;

/// Resolves a tail call: `(prog_array map, index)` from `r2`, `r3` to the program to run.
pub type TailCallFn = dyn Fn(&mut HelperCtx<'_>, u64, u64) -> Option<Arc<Program>> + Send + Sync;

/// What a helper number does.
#[derive(Clone)]
pub(crate) enum HelperKind {
    Func(Arc<HelperFn>),
    TailCall(Arc<TailCallFn>),
    Loop,
}

/// A registered helper.
#[derive(Clone)]
pub struct Helper {
    pub(crate) name: &'static str,
    pub(crate) kind: HelperKind,
}

/// What kind of helper a [`Helper`] is, for code generators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HelperClass {
    /// A host function.
    Func,
    /// `bpf_tail_call`.
    TailCall,
    /// `bpf_loop`.
    Loop,
}

impl Helper {
    /// The helper's name, for logs and errors.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// What the helper does, for code generators.
    pub fn class(&self) -> HelperClass {
        match self.kind {
            HelperKind::Func(_) => HelperClass::Func,
            HelperKind::TailCall(_) => HelperClass::TailCall,
            HelperKind::Loop => HelperClass::Loop,
        }
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

impl HelperError {
    /// A failure with a message.
    pub fn failed(message: impl Into<String>) -> Self {
        HelperError::Failed { message: message.into() }
    }
}

/// What a helper sees of the running program.
pub struct HelperCtx<'a> {
    pub(crate) mem: &'a mut MemMap,
    pub(crate) exit: Option<u64>,
    pub(crate) env: &'a mut dyn Any,
    pub(crate) regions_changed: bool,
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

    /// Reads a NUL-terminated string of at most `max` bytes at `addr` (without the NUL).
    pub fn c_str(&self, addr: u64, max: usize) -> Result<&[u8], AccessError> {
        let region = self.mem.region_of(addr, 1).ok_or(AccessError::OutOfBounds { addr, size: 1, write: false })?;
        let avail = (region.start + region.len - addr) as usize;
        let bytes = self.mem.slice(addr, avail.min(max))?;
        Ok(&bytes[..bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len())])
    }

    /// The kind of region holding `[addr, addr + len)`, if one does.
    pub fn region_kind(&self, addr: u64, len: usize) -> Option<RegionKind> {
        self.mem.region_of(addr, len as u64).map(|r| r.kind)
    }

    /// Ends the whole run once the helper returns, with `r0` as the program's result.
    pub fn exit_program(&mut self, r0: u64) {
        self.exit = Some(r0);
    }

    /// The embedder's per-run state, if it is a `T`.
    pub fn env<T: Any>(&mut self) -> Option<&mut T> {
        self.env.downcast_mut::<T>()
    }

    /// The window of the first writable region of `kind`: (allocation address, offset of the
    /// window in the allocation, window length).
    pub fn window(&self, kind: RegionKind) -> Option<(u64, u64, u64)> {
        let r = self.mem.regions.iter().find(|r| r.kind == kind && r.writable)?;
        Some((r.alloc_start, r.start - r.alloc_start, r.len))
    }

    /// Moves the window of the first writable region of `kind` to `[offset, offset + len)` of
    /// its allocation. Returns false (and changes nothing) if that is outside the allocation.
    pub fn set_window(&mut self, kind: RegionKind, offset: u64, len: u64) -> bool {
        let Some(r) = self.mem.regions.iter_mut().find(|r| r.kind == kind && r.writable) else { return false };
        let ok = r.set_window(offset, len);
        self.regions_changed |= ok;
        ok
    }

    /// The whole allocation of the first writable region of `kind` (its address and bytes),
    /// for helpers that move data around in a packet buffer.
    pub fn alloc_mut(&mut self, kind: RegionKind) -> Option<(u64, &mut [u8])> {
        self.mem.alloc_mut(kind)
    }

    /// The context's shadow buffer (the translated values the program's context loads read).
    pub fn ctx_shadow_mut(&mut self) -> Option<&mut [u8]> {
        self.mem.ctx_shadow_mut()
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
        self.by_id.insert(id, Helper { name, kind: HelperKind::Func(Arc::new(func)) });
        self
    }

    /// Registers `bpf_tail_call` as helper `id`: `resolve(map, index)` names the program to
    /// continue with, or `None` (the call then falls through, as in the kernel). At most 33
    /// tail calls succeed per run.
    pub fn register_tail_call(
        &mut self,
        id: i32,
        resolve: impl Fn(&mut HelperCtx<'_>, u64, u64) -> Option<Arc<Program>> + Send + Sync + 'static,
    ) -> &mut Self {
        self.by_id.insert(id, Helper { name: "bpf_tail_call", kind: HelperKind::TailCall(Arc::new(resolve)) });
        self
    }

    /// Registers `bpf_loop(nr_loops, callback, ctx, flags)` as helper `id`.
    pub fn register_loop(&mut self, id: i32) -> &mut Self {
        self.by_id.insert(id, Helper { name: "bpf_loop", kind: HelperKind::Loop });
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
