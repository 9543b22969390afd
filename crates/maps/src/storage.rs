//! Map storage: the preallocated word slabs that hold keys, values and ring buffer data (and
//! hand out raw value pointers into them), and the epoch-protected slots that hold inner maps
//! and program handles.
//!
//! This module holds the crate's only `unsafe`: allocating slabs lazily zeroed (so that a
//! large map costs address space, not memory, until it is used) and turning slot pointers
//! back into references and `Arc`s.
//!
//! Storage is made of `AtomicU64` words, 8-byte aligned. Programs read and write it through
//! raw pointers (the interpreter's bounds-checked accesses, atomic instructions); the host
//! copies in and out with relaxed word-sized atomic operations, so host copies never tear an
//! aligned word and are never a data race with programs' atomic instructions. A partial last
//! word is merged with a compare-and-swap loop so that neighbouring bytes are preserved.
#![allow(unsafe_code)]

use std::alloc::{self, Layout};
use std::marker::PhantomData;
use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::epoch::{self, Guard};

// `Words::zeroed` relies on this.
const _: () = assert!(std::mem::size_of::<AtomicU64>() == 8 && std::mem::align_of::<AtomicU64>() == 8);

/// Rounds up to a multiple of 8.
pub(crate) const fn round8(n: usize) -> usize {
    (n + 7) & !7
}

/// A fixed slab of 8-byte words, zeroed at creation, never moved or freed before the map.
pub(crate) struct Words {
    words: Box<[AtomicU64]>,
}

/// The allocation failed or is too large for the address space.
#[derive(Debug)]
pub(crate) struct AllocError;

impl Words {
    /// A slab of at least `bytes` bytes (rounded up to whole words), all zero.
    pub(crate) fn zeroed(bytes: usize) -> Result<Words, AllocError> {
        let n = bytes.div_ceil(8);
        if n == 0 {
            return Ok(Words { words: Box::new([]) });
        }
        let layout = Layout::array::<AtomicU64>(n).map_err(|_| AllocError)?;
        // SAFETY: `layout` has a non-zero size (`n > 0` words of 8 bytes).
        let p = unsafe { alloc::alloc_zeroed(layout) }.cast::<AtomicU64>();
        if p.is_null() {
            return Err(AllocError);
        }
        // SAFETY: `p` comes from the global allocator with the layout of `[AtomicU64; n]`,
        // which is the layout `Box<[AtomicU64]>` deallocates with; the bytes are all zero and
        // zero is a valid `AtomicU64` (same bit validity as `u64`), so all `n` elements are
        // initialised; nothing else owns the allocation.
        let words = unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(p, n)) };
        Ok(Words { words })
    }

    /// Size in bytes.
    pub(crate) fn len_bytes(&self) -> usize {
        self.words.len() * 8
    }

    /// The first byte. Writing through pointers derived from it is allowed: the words are
    /// `AtomicU64`s (interior mutability), and the pointer carries the whole slab's provenance.
    pub(crate) fn base(&self) -> *mut u8 {
        self.words.as_ptr().cast::<u8>().cast_mut()
    }

    /// A pointer to byte `off` (which must be within the slab).
    #[inline]
    pub(crate) fn ptr(&self, off: usize) -> *mut u8 {
        debug_assert!(off <= self.len_bytes());
        self.base().wrapping_add(off)
    }

    /// The word containing byte `off` (a multiple of 8).
    #[inline]
    pub(crate) fn word(&self, off: usize) -> &AtomicU64 {
        debug_assert!(off.is_multiple_of(8));
        &self.words[off / 8]
    }

    /// Copies `out.len()` bytes starting at byte `off` (a multiple of 8) into `out`.
    #[inline]
    pub(crate) fn read(&self, off: usize, out: &mut [u8]) {
        debug_assert!(off.is_multiple_of(8));
        let mut w = off / 8;
        let mut chunks = out.chunks_exact_mut(8);
        for chunk in &mut chunks {
            chunk.copy_from_slice(&self.words[w].load(Ordering::Relaxed).to_ne_bytes());
            w += 1;
        }
        let rest = chunks.into_remainder();
        if !rest.is_empty() {
            let bytes = self.words[w].load(Ordering::Relaxed).to_ne_bytes();
            rest.copy_from_slice(&bytes[..rest.len()]);
        }
    }

    /// Copies `src` to byte `off` (a multiple of 8). Bytes after `src` in its last word are
    /// preserved.
    #[inline]
    pub(crate) fn write(&self, off: usize, src: &[u8]) {
        debug_assert!(off.is_multiple_of(8));
        let mut w = off / 8;
        let mut chunks = src.chunks_exact(8);
        for chunk in &mut chunks {
            let v = u64::from_ne_bytes(chunk.try_into().expect("8-byte chunk"));
            self.words[w].store(v, Ordering::Relaxed);
            w += 1;
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut mask = [0u8; 8];
            mask[..rest.len()].fill(0xff);
            let mask = u64::from_ne_bytes(mask);
            let mut val = [0u8; 8];
            val[..rest.len()].copy_from_slice(rest);
            let val = u64::from_ne_bytes(val);
            let _ = self.words[w].fetch_update(Ordering::Relaxed, Ordering::Relaxed, |old| Some((old & !mask) | val));
        }
    }

    /// Zeroes `len` bytes (a multiple of 8) from byte `off` (a multiple of 8).
    pub(crate) fn zero(&self, off: usize, len: usize) {
        debug_assert!(off.is_multiple_of(8) && len.is_multiple_of(8));
        for w in &self.words[off / 8..(off + len) / 8] {
            w.store(0, Ordering::Relaxed);
        }
    }

    /// Whether the bytes at `off` (a multiple of 8) equal `key`, where the stored copy is
    /// followed by zero padding up to its last word.
    #[inline]
    pub(crate) fn eq_padded(&self, off: usize, key: &[u8]) -> bool {
        debug_assert!(off.is_multiple_of(8));
        let mut w = off / 8;
        let mut chunks = key.chunks_exact(8);
        for chunk in &mut chunks {
            if self.words[w].load(Ordering::Relaxed) != u64::from_ne_bytes(chunk.try_into().expect("8-byte chunk")) {
                return false;
            }
            w += 1;
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut val = [0u8; 8];
            val[..rest.len()].copy_from_slice(rest);
            return self.words[w].load(Ordering::Relaxed) == u64::from_ne_bytes(val);
        }
        true
    }
}

/// `Arc`s removed from [`EpochSlot`]s, dropped once no pinned reader can still use them.
pub(crate) struct ArcLimbo<T> {
    retired: Mutex<Vec<(u64, Arc<T>)>>,
}

impl<T> ArcLimbo<T> {
    pub(crate) fn new() -> ArcLimbo<T> {
        ArcLimbo { retired: Mutex::new(Vec::new()) }
    }

    fn retire(&self, arc: Arc<T>) {
        let tag = epoch::retire_tag();
        self.retired.lock().unwrap_or_else(|e| e.into_inner()).push((tag, arc));
    }

    /// Drops the retired `Arc`s no reader can still use.
    pub(crate) fn collect(&self) {
        let done: Vec<Arc<T>> = {
            let mut retired = self.retired.lock().unwrap_or_else(|e| e.into_inner());
            if retired.is_empty() {
                return;
            }
            let safe = epoch::safe_epoch();
            let (done, keep): (Vec<_>, Vec<_>) = retired.drain(..).partition(|(tag, _)| *tag < safe);
            *retired = keep;
            done.into_iter().map(|(_, arc)| arc).collect()
        };
        drop(done);
    }
}

/// An atomically replaceable `Option<Arc<T>>` whose readers borrow the content for as long as
/// they hold a [`Guard`], without touching the reference count.
pub(crate) struct EpochSlot<T> {
    /// Null, or a pointer from `Arc::into_raw` whose strong count the slot owns.
    ptr: AtomicPtr<T>,
    _owns: PhantomData<Arc<T>>,
}

impl<T> EpochSlot<T> {
    pub(crate) fn empty() -> EpochSlot<T> {
        EpochSlot { ptr: AtomicPtr::new(ptr::null_mut()), _owns: PhantomData }
    }

    /// Whether the slot holds something.
    pub(crate) fn is_some(&self) -> bool {
        !self.ptr.load(Ordering::Acquire).is_null()
    }

    /// The current content, borrowed while both the slot and the guard live.
    #[inline]
    pub(crate) fn load<'a>(&'a self, _guard: &'a Guard) -> Option<&'a T> {
        let p = self.ptr.load(Ordering::Acquire);
        if p.is_null() {
            return None;
        }
        // SAFETY: `p` came from `Arc::into_raw` and the slot held a strong count for it when
        // we loaded it. A replacement moves that count into an `ArcLimbo` that drops it only
        // after every guard pinned before the replacement is gone (see `crate::epoch`); the
        // guard `_guard` was pinned before our load, so it is one of them, and it lives for
        // 'a. If the slot is dropped instead, 'a has ended (it borrows the slot).
        Some(unsafe { &*p })
    }

    /// The current content as a new `Arc`.
    pub(crate) fn load_arc(&self, guard: &Guard) -> Option<Arc<T>> {
        let r: &T = self.load(guard)?;
        let p: *const T = r;
        // SAFETY: as in `load`, `p` is from `Arc::into_raw` and at least one strong count for
        // it is alive while `guard` is; we add one and hand it to the new `Arc`.
        unsafe {
            Arc::increment_strong_count(p);
            Some(Arc::from_raw(p))
        }
    }

    /// Replaces the content; the previous `Arc` goes to `limbo`. Returns whether there was one.
    pub(crate) fn replace(&self, new: Option<Arc<T>>, limbo: &ArcLimbo<T>) -> bool {
        let np = new.map_or(ptr::null_mut(), |a| Arc::into_raw(a).cast_mut());
        let old = self.ptr.swap(np, Ordering::AcqRel);
        if old.is_null() {
            return false;
        }
        // SAFETY: `old` came from `Arc::into_raw` and the slot owned its strong count; the
        // swap took it out of the slot, so we take over that count exactly once. Readers may
        // still borrow the target: the limbo keeps it alive until they are gone.
        limbo.retire(unsafe { Arc::from_raw(old) });
        true
    }
}

impl<T> Drop for EpochSlot<T> {
    fn drop(&mut self) {
        let p = *self.ptr.get_mut();
        if !p.is_null() {
            // SAFETY: the slot owns a strong count for `p` (from `Arc::into_raw`), and nothing
            // borrows the slot any more (we have `&mut self`).
            drop(unsafe { Arc::from_raw(p) });
        }
    }
}
