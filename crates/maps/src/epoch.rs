//! Epoch-based reclamation: what keeps map memory valid while programs use it (decision D7).
//!
//! # The protocol
//!
//! - **Value storage never moves and is never freed while the map exists.** Every map
//!   preallocates its value storage at creation (arrays: one slot per index; hash maps and
//!   LPM tries: a slab of `max_entries` + spare elements); [`crate::Map::value_regions`]
//!   lists it for the interpreter. Replaced inner maps and program handles
//!   (map-in-map, prog arrays) are reference-counted and dropped late the same way.
//! - **Readers pin.** The runtime takes a [`Guard`] with [`pin`] around each program
//!   invocation; BPF-side lookups require `&Guard`, and host operations pin internally.
//!   Pinning publishes the current global epoch in the thread's participant slot
//!   (a store followed by a `SeqCst` fence); dropping the outermost guard clears it.
//!   Guards nest and are `!Send`.
//! - **Writers unlink, then retire.** Delete, replace (a hash update links a fresh element in
//!   place of the old one, so readers see the old or the new value, never a mix), LRU
//!   eviction and slot replacement first make the old element unreachable, then retire it:
//!   a `SeqCst` fence, then the global epoch is advanced and its previous value `t` becomes
//!   the element's tag on the map's limbo list. The element keeps its contents; nothing
//!   writes to it.
//! - **Reuse waits for the readers that could hold it.** When a map runs out of free
//!   elements it reclaims: it fences and reads every participant's published epoch. An
//!   element tagged `t` is reusable once every pinned participant published an epoch `> t`:
//!   such a reader read the global epoch after the retirement advanced it, so (by the
//!   fences) it also sees the element unlinked and cannot have found it; a reader pinned
//!   from before keeps the element out of reuse until it unpins. A participant the scan sees
//!   unpinned pins after the scan's fence and sees the unlink for the same reason. A value
//!   pointer a program got therefore keeps pointing at that element's storage, with that
//!   element's data, until its invocation ends, whatever the host or other programs do
//!   meanwhile.
//!
//! Reclamation is on demand (no background thread, no per-thread garbage bags): the map that
//! needs an element scans, and keeps one reclaimed element for itself. This costs no
//! allocation on the BPF side.
//!
//! Hash maps and LPM tries hold `max_entries` + spare elements (spare: `max(64, 8 * ncpus) +
//! max_entries / 4`). Retired elements wait in limbo for about one grace period, so the
//! spare has to cover what is retired while the oldest pinned reader runs. When it does not
//! (a reader preempted while pinned during heavy delete/replace churn, or a guard held for
//! long), allocation fails: a program's update (its thread is pinned, so it cannot wait for
//! readers) yields the CPU a few times, so that a preempted reader can finish, then returns
//! `ENOMEM`; a host update (its thread not pinned) waits up to 200 ms, with priority over
//! programs after a short while, then returns `ENOMEM`. A guard that is leaked
//! (`mem::forget`) or held forever stops reuse for every map.
//!
//! Arrays and per-CPU values are updated in place (like the kernel): a host read concurrent
//! with an update can see some 8-byte words old and some new. Host copies use relaxed
//! 8-byte atomic loads and stores, so no aligned word is ever torn against programs'
//! atomic instructions.

use std::marker::PhantomData;
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering, fence};

/// The global epoch; starts at 1 so that 0 can mean "not pinned".
static GLOBAL_EPOCH: AtomicU64 = AtomicU64::new(1);

/// Every participant slot ever created (slots of exited threads are reused).
static REGISTRY: RwLock<Vec<&'static Participant>> = RwLock::new(Vec::new());

struct Participant {
    /// The epoch published at the outermost pin, 0 when not pinned.
    epoch: AtomicU64,
    /// Guard nesting depth; only the owning thread touches it.
    depth: AtomicUsize,
    /// Whether a thread (or a detached guard) owns this slot.
    in_use: AtomicBool,
}

fn claim() -> &'static Participant {
    {
        let registry = REGISTRY.read().unwrap_or_else(|e| e.into_inner());
        for p in registry.iter() {
            if !p.in_use.load(Ordering::Relaxed)
                && p.in_use.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed).is_ok()
            {
                return p;
            }
        }
    }
    let p: &'static Participant = Box::leak(Box::new(Participant {
        epoch: AtomicU64::new(0),
        depth: AtomicUsize::new(0),
        in_use: AtomicBool::new(true),
    }));
    REGISTRY.write().unwrap_or_else(|e| e.into_inner()).push(p);
    p
}

/// The calling thread's participant slot, released when the thread exits.
struct LocalHandle {
    participant: &'static Participant,
}

impl Drop for LocalHandle {
    fn drop(&mut self) {
        // A guard still alive here (dropped later by another thread-local's destructor) keeps
        // the slot; it is then never reused, which is harmless.
        if self.participant.depth.load(Ordering::Relaxed) == 0 {
            self.participant.epoch.store(0, Ordering::Release);
            self.participant.in_use.store(false, Ordering::Release);
        }
    }
}

thread_local! {
    static LOCAL: LocalHandle = LocalHandle { participant: claim() };
}

/// Proof that the current thread is pinned: while it lives, no map element, value slot or
/// inner map that was reachable when it was created is reused or freed. Take one with
/// [`pin`] around each program invocation. Guards nest and cannot be sent to other threads.
pub struct Guard {
    participant: &'static Participant,
    /// Whether this guard owns its slot (only when the thread-local is already destroyed).
    detached: bool,
    _not_send: PhantomData<*mut ()>,
}

/// Pins the current thread (see the module documentation). Cheap: a thread-local access and,
/// for the outermost guard, one store and one fence.
pub fn pin() -> Guard {
    let (participant, detached) = match LOCAL.try_with(|h| h.participant) {
        Ok(p) => (p, false),
        Err(_) => (claim(), true),
    };
    let depth = participant.depth.load(Ordering::Relaxed);
    if depth == 0 {
        let epoch = GLOBAL_EPOCH.load(Ordering::SeqCst);
        participant.epoch.store(epoch, Ordering::SeqCst);
        fence(Ordering::SeqCst);
    }
    participant.depth.store(depth + 1, Ordering::Relaxed);
    Guard { participant, detached, _not_send: PhantomData }
}

/// Whether the current thread holds a [`Guard`].
pub fn is_pinned() -> bool {
    LOCAL.try_with(|h| h.participant.depth.load(Ordering::Relaxed) > 0).unwrap_or(false)
}

impl Drop for Guard {
    fn drop(&mut self) {
        let depth = self.participant.depth.load(Ordering::Relaxed) - 1;
        self.participant.depth.store(depth, Ordering::Relaxed);
        if depth == 0 {
            self.participant.epoch.store(0, Ordering::Release);
            if self.detached {
                self.participant.in_use.store(false, Ordering::Release);
            }
        }
    }
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard").field("epoch", &self.participant.epoch.load(Ordering::Relaxed)).finish()
    }
}

/// The tag of an object that was just made unreachable (call after the unlinking store).
/// Advances the epoch, so that readers pinning from now on publish a larger epoch: the
/// object becomes reusable after exactly one grace period (once the readers pinned before
/// this call are gone).
pub(crate) fn retire_tag() -> u64 {
    fence(Ordering::SeqCst);
    GLOBAL_EPOCH.fetch_add(1, Ordering::SeqCst)
}

/// The bound below which retired tags are reusable: objects tagged `t < safe_epoch()` can no
/// longer be reached by any reader.
pub(crate) fn safe_epoch() -> u64 {
    fence(Ordering::SeqCst);
    let registry = REGISTRY.read().unwrap_or_else(|e| e.into_inner());
    registry.iter().map(|p| p.epoch.load(Ordering::SeqCst)).filter(|&e| e != 0).min().unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_and_publication() {
        assert!(!is_pinned());
        let g1 = pin();
        let e = g1.participant.epoch.load(Ordering::Relaxed);
        assert_ne!(e, 0);
        {
            let _g2 = pin();
            assert!(is_pinned());
        }
        assert!(is_pinned());
        // An object retired now cannot be reclaimed while g1 is held...
        let tag = retire_tag();
        assert!(tag >= e);
        assert!(safe_epoch() <= tag);
        drop(g1);
        assert!(!is_pinned());
        // ...and a reader pinned after the retirement does not hold it back.
        let g2 = pin();
        assert!(g2.participant.epoch.load(Ordering::Relaxed) > tag);
    }
}
