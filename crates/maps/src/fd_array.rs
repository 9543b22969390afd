//! `prog_array` and `array_of_maps`: arrays whose values are handles (the kernel stores file
//! descriptors' objects). Slots are [`EpochSlot`]s: a program borrows the current program or
//! inner map for as long as its guard lives, without reference counting, and a replaced
//! handle is dropped only after every guard that could see it is gone.
//!
//! Program handles are opaque to this crate ([`ProgEntry`]): the runtime stores whatever it
//! needs and downcasts. Every change bumps a version counter and calls an optional hook with
//! the index, so a JIT can re-patch direct tail calls.

use std::any::Any;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use crate::epoch::{self, Guard};
use crate::error::MapError;
use crate::storage::{ArcLimbo, EpochSlot};

/// A program stored in a `prog_array`: the id the host sees on lookup, and the runtime's
/// handle.
#[derive(Clone)]
pub struct ProgEntry {
    /// The program id (what a host lookup of the slot returns).
    pub id: u32,
    /// The runtime's program object; downcast it with `handle.downcast_ref::<T>()`.
    pub handle: Arc<dyn Any + Send + Sync>,
}

impl ProgEntry {
    /// An entry for `handle` with program id `id`.
    pub fn new(id: u32, handle: Arc<dyn Any + Send + Sync>) -> ProgEntry {
        ProgEntry { id, handle }
    }
}

impl std::fmt::Debug for ProgEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProgEntry").field("id", &self.id).finish_non_exhaustive()
    }
}

/// Called with the index of a `prog_array` slot that changed.
pub type ChangeHook = Arc<dyn Fn(u32) + Send + Sync>;

pub(crate) struct FdArray<T> {
    slots: Box<[EpochSlot<T>]>,
    limbo: ArcLimbo<T>,
    version: AtomicU64,
    hook: RwLock<Option<ChangeHook>>,
}

impl<T> FdArray<T> {
    pub(crate) fn new(max_entries: usize) -> Result<FdArray<T>, MapError> {
        let mut slots = Vec::new();
        slots.try_reserve_exact(max_entries).map_err(|_| MapError::NoMemory { reason: "cannot allocate the array" })?;
        slots.extend((0..max_entries).map(|_| EpochSlot::empty()));
        Ok(FdArray {
            slots: slots.into_boxed_slice(),
            limbo: ArcLimbo::new(),
            version: AtomicU64::new(0),
            hook: RwLock::new(None),
        })
    }

    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    /// The handle at `index`, borrowed for the guard's lifetime.
    #[inline]
    pub(crate) fn get<'a>(&'a self, index: u32, guard: &'a Guard) -> Option<&'a T> {
        self.slots.get(index as usize)?.load(guard)
    }

    pub(crate) fn get_arc(&self, index: u32) -> Option<Arc<T>> {
        let guard = epoch::pin();
        self.slots.get(index as usize)?.load_arc(&guard)
    }

    pub(crate) fn is_set(&self, index: u32) -> bool {
        self.slots.get(index as usize).is_some_and(|s| s.is_some())
    }

    /// Stores or clears a slot; whether it held something.
    pub(crate) fn set(&self, index: u32, value: Option<Arc<T>>) -> bool {
        let had = self.slots[index as usize].replace(value, &self.limbo);
        self.limbo.collect();
        self.version.fetch_add(1, Ordering::AcqRel);
        let hook = self.hook.read().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(hook) = hook {
            hook(index);
        }
        had
    }

    pub(crate) fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    pub(crate) fn set_hook(&self, hook: Option<ChangeHook>) {
        *self.hook.write().unwrap_or_else(|e| e.into_inner()) = hook;
    }
}
