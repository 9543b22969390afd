//! The hash table behind `hash`, `percpu_hash`, `lru_hash`, `lru_percpu_hash`,
//! `hash_of_maps` and the LPM trie.
//!
//! Layout: a power-of-two array of buckets (at least `max_entries`, like the kernel), each a
//! singly linked list of element indices with a mutex for writers; readers walk the lists
//! without locks. Elements live in a preallocated slab of `max_entries` + spare elements
//! (keys, values and per-element metadata in separate arrays; values per CPU are CPU-major so
//! that CPUs do not share cache lines). Free elements sit on a lock-free stack; unlinked ones
//! wait in a limbo list until the epoch protocol ([`crate::epoch`]) says no reader can hold
//! them.
//!
//! Updates of an existing key link a fresh element in its place (readers see the old value or
//! the new one, never a mix), except per-CPU maps, which copy in place like the kernel.
//!
//! LRU maps approximate the kernel's LRU with CLOCK (second chance): lookups by programs set
//! an element's referenced bit; when the map is full, an insertion sweeps a clock hand over
//! the slab, clearing referenced bits, and evicts the first unreferenced element. There is one
//! clock for all CPUs, also with `BPF_F_NO_COMMON_LRU`.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::epoch::{self, Guard};
use crate::error::MapError;
use crate::flags::{BPF_EXIST, BPF_NOEXIST};
use crate::map::{Entry, Map};
use crate::storage::{ArcLimbo, EpochSlot, Words, round8};

/// How long a host operation waits for pinned readers to release spare elements.
const HOST_WAIT: Duration = Duration::from_millis(200);

/// How many spare elements a map gets beyond `max_entries`: room for replacements and for
/// elements waiting out readers (see [`crate::epoch`]).
pub(crate) fn spare_elements(max_entries: usize, ncpus: usize) -> usize {
    64.max(8 * ncpus) + max_entries / 4
}

struct Bucket {
    /// Index + 1 of the first element, 0 for none.
    head: AtomicU32,
    lock: Mutex<()>,
}

struct Meta {
    /// Index + 1 of the next element in the bucket, 0 for none.
    next: AtomicU32,
    hash: AtomicU32,
    /// Index + 1 of the next free element while on the free stack.
    free_next: AtomicU32,
    /// Linked in a bucket (a hint for LRU eviction; the bucket list is the truth).
    live: AtomicBool,
    /// LRU referenced bit.
    referenced: AtomicBool,
}

/// Where a new or updated value comes from.
pub(crate) enum ValueSrc<'v> {
    /// One value (not per-CPU).
    Single(&'v [u8]),
    /// Per-CPU maps from the host: every CPU's value, each rounded up to 8 bytes.
    AllCpus(&'v [u8]),
    /// Per-CPU maps from a program: this CPU's value; the other CPUs' values of a new element
    /// are zeroed, those of an existing one are kept.
    OneCpu(&'v [u8], usize),
    /// `hash_of_maps`: the inner map (the 4-byte value holds its id).
    Inner(&'v Arc<Map>),
}

/// `hash_of_maps`: one inner map slot per element, and where replaced inner maps wait.
type InnerSlots = (Box<[EpochSlot<Map>]>, ArcLimbo<Map>);

pub(crate) struct HashTable {
    key_size: usize,
    key_stride: usize,
    value_size: usize,
    value_stride: usize,
    /// Value slots per element: the number of CPUs for per-CPU maps, else 1.
    slots: usize,
    capacity: usize,
    max_entries: usize,
    mask: u32,
    seed: u64,
    lru: bool,
    buckets: Box<[Bucket]>,
    meta: Box<[Meta]>,
    keys: Words,
    values: Words,
    inner: Option<InnerSlots>,
    /// Free stack head: low 32 bits index + 1 (0 = empty), high 32 bits an ABA counter.
    free_head: AtomicU64,
    limbo: Mutex<Vec<(u64, u32)>>,
    count: AtomicUsize,
    clock: AtomicUsize,
    /// Host threads waiting in [`HashTable::alloc`].
    host_waiters: AtomicUsize,
}

/// Parameters of a [`HashTable`].
pub(crate) struct HashParams {
    pub(crate) key_size: usize,
    pub(crate) value_size: usize,
    pub(crate) max_entries: usize,
    pub(crate) slots: usize,
    pub(crate) spare: usize,
    pub(crate) lru: bool,
    pub(crate) zero_seed: bool,
    pub(crate) inner_maps: bool,
}

fn no_memory() -> MapError {
    MapError::NoMemory { reason: "cannot allocate the map's storage" }
}

/// A seeded 64-bit multiply-rotate hash over 8-byte chunks with a final avalanche.
#[inline]
fn hash_bytes(seed: u64, key: &[u8]) -> u32 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut h = seed ^ (key.len() as u64).wrapping_mul(K);
    let mut chunks = key.chunks_exact(8);
    for c in &mut chunks {
        let v = u64::from_le_bytes(c.try_into().expect("8-byte chunk"));
        h = (h ^ v).wrapping_mul(K).rotate_left(29);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut b = [0u8; 8];
        b[..rest.len()].copy_from_slice(rest);
        h = (h ^ u64::from_le_bytes(b)).wrapping_mul(K).rotate_left(29);
    }
    h ^= h >> 32;
    h = h.wrapping_mul(0xd6e8_feb8_6659_fd93);
    h ^= h >> 29;
    h as u32
}

fn lock(m: &Mutex<()>) -> MutexGuard<'_, ()> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl HashTable {
    pub(crate) fn new(p: HashParams) -> Result<HashTable, MapError> {
        let capacity = p.max_entries.checked_add(p.spare).filter(|&c| c < u32::MAX as usize).ok_or_else(no_memory)?;
        let n_buckets = p.max_entries.next_power_of_two();
        let key_stride = round8(p.key_size);
        let value_stride = round8(p.value_size);
        let value_bytes =
            capacity.checked_mul(p.slots).and_then(|n| n.checked_mul(value_stride)).ok_or_else(no_memory)?;
        let keys = Words::zeroed(capacity.checked_mul(key_stride).ok_or_else(no_memory)?).map_err(|_| no_memory())?;
        let values = Words::zeroed(value_bytes).map_err(|_| no_memory())?;
        let mut buckets = Vec::new();
        buckets.try_reserve_exact(n_buckets).map_err(|_| no_memory())?;
        buckets.extend((0..n_buckets).map(|_| Bucket { head: AtomicU32::new(0), lock: Mutex::new(()) }));
        let mut meta = Vec::new();
        meta.try_reserve_exact(capacity).map_err(|_| no_memory())?;
        // The free stack initially pops 0, 1, 2, ...
        meta.extend((0..capacity).map(|i| Meta {
            next: AtomicU32::new(0),
            hash: AtomicU32::new(0),
            free_next: AtomicU32::new(if i + 1 < capacity { i as u32 + 2 } else { 0 }),
            live: AtomicBool::new(false),
            referenced: AtomicBool::new(false),
        }));
        let mut limbo = Vec::new();
        limbo.try_reserve_exact(capacity).map_err(|_| no_memory())?;
        let inner = p.inner_maps.then(|| ((0..capacity).map(|_| EpochSlot::empty()).collect(), ArcLimbo::new()));
        let seed = if p.zero_seed { 0 } else { random_seed() };
        Ok(HashTable {
            key_size: p.key_size,
            key_stride,
            value_size: p.value_size,
            value_stride,
            slots: p.slots,
            capacity,
            max_entries: p.max_entries,
            mask: (n_buckets - 1) as u32,
            seed,
            lru: p.lru,
            buckets: buckets.into_boxed_slice(),
            meta: meta.into_boxed_slice(),
            keys,
            values,
            inner,
            free_head: AtomicU64::new(u64::from(capacity > 0)),
            limbo: Mutex::new(limbo),
            count: AtomicUsize::new(0),
            clock: AtomicUsize::new(0),
            host_waiters: AtomicUsize::new(0),
        })
    }

    pub(crate) fn key_size(&self) -> usize {
        self.key_size
    }

    /// Bytes of a value as the host sees it (all CPUs for per-CPU maps).
    pub(crate) fn host_value_size(&self) -> usize {
        if self.slots > 1 { self.slots * self.value_stride } else { self.value_size }
    }

    pub(crate) fn len(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    pub(crate) fn values(&self) -> &Words {
        &self.values
    }

    #[inline]
    pub(crate) fn hash(&self, key: &[u8]) -> u32 {
        hash_bytes(self.seed, key)
    }

    #[inline]
    fn bucket(&self, hash: u32) -> &Bucket {
        &self.buckets[(hash & self.mask) as usize]
    }

    #[inline]
    fn value_off(&self, elem: u32, cpu: usize) -> usize {
        (cpu * self.capacity + elem as usize) * self.value_stride
    }

    // ---- element allocation -------------------------------------------------------------

    fn pop_free(&self) -> Option<u32> {
        let mut head = self.free_head.load(Ordering::Acquire);
        loop {
            let idx = head as u32;
            if idx == 0 {
                return None;
            }
            let next = self.meta[idx as usize - 1].free_next.load(Ordering::Relaxed);
            let new = ((head >> 32).wrapping_add(1) << 32) | u64::from(next);
            match self.free_head.compare_exchange_weak(head, new, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Some(idx - 1),
                Err(h) => head = h,
            }
        }
    }

    fn push_free(&self, elem: u32) {
        let mut head = self.free_head.load(Ordering::Relaxed);
        loop {
            self.meta[elem as usize].free_next.store(head as u32, Ordering::Relaxed);
            let new = ((head >> 32).wrapping_add(1) << 32) | u64::from(elem + 1);
            match self.free_head.compare_exchange_weak(head, new, Ordering::Release, Ordering::Relaxed) {
                Ok(_) => return,
                Err(h) => head = h,
            }
        }
    }

    /// Moves the limbo elements no reader can hold any more to the free stack, except one,
    /// which it returns (so that a reclaiming thread is not starved by other allocators).
    fn reclaim(&self) -> Option<u32> {
        let mut limbo = self.limbo.lock().unwrap_or_else(|e| e.into_inner());
        if limbo.is_empty() {
            return None;
        }
        let safe = epoch::safe_epoch();
        let mut mine = None;
        limbo.retain(|&(tag, elem)| {
            if tag >= safe {
                return true;
            }
            if mine.is_none() {
                mine = Some(elem);
            } else {
                self.push_free(elem);
            }
            false
        });
        mine
    }

    /// A free element. `blocking` (a host thread, not pinned) waits up to [`HOST_WAIT`] for
    /// pinned readers; once it has waited a while it gets priority: programs' allocations fail
    /// at once and leave the elements readers release to it. Otherwise (a program, pinned itself) the
    /// thread only yields the CPU a few times, so that a preempted reader holding the spare
    /// elements can finish.
    fn alloc(&self, blocking: bool) -> Result<u32, MapError> {
        const BPF_YIELDS: u32 = 4;
        let exhausted = MapError::NoMemory { reason: "every spare element is held by a pinned reader" };
        if !blocking {
            for attempt in 0..=BPF_YIELDS {
                if self.host_waiters.load(Ordering::Relaxed) > 0 {
                    break;
                }
                if let Some(e) = self.pop_free().or_else(|| self.reclaim()) {
                    return Ok(e);
                }
                if attempt < BPF_YIELDS {
                    std::thread::yield_now();
                }
            }
            return Err(exhausted);
        }
        let deadline = Instant::now() + HOST_WAIT;
        let mut attempts = 0u32;
        let mut prioritised = false;
        let result = loop {
            if let Some(e) = self.pop_free().or_else(|| self.reclaim()) {
                break Ok(e);
            }
            if Instant::now() >= deadline {
                break Err(exhausted);
            }
            attempts += 1;
            if attempts < 64 {
                std::thread::yield_now();
            } else {
                if !prioritised {
                    prioritised = true;
                    self.host_waiters.fetch_add(1, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_micros(100));
            }
        };
        if prioritised {
            self.host_waiters.fetch_sub(1, Ordering::Relaxed);
        }
        result
    }

    /// Host side: waits (up to [`HOST_WAIT`]) until an element is free, without taking it.
    /// For callers that must not wait while holding a lock.
    pub(crate) fn wait_for_spare(&self) -> Result<(), MapError> {
        let e = self.alloc(true)?;
        self.push_free(e);
        Ok(())
    }

    /// Puts an unlinked element on the limbo list.
    fn retire(&self, elem: u32) {
        self.meta[elem as usize].live.store(false, Ordering::Relaxed);
        if let Some((slots, limbo)) = &self.inner {
            slots[elem as usize].replace(None, limbo);
        }
        let tag = epoch::retire_tag();
        // Capacity for every element was reserved at creation: no allocation here.
        self.limbo.lock().unwrap_or_else(|e| e.into_inner()).push((tag, elem));
    }

    /// Returns an element that was never linked.
    fn discard_unlinked(&self, elem: u32) {
        if let Some((slots, limbo)) = &self.inner {
            slots[elem as usize].replace(None, limbo);
        }
        self.push_free(elem);
    }

    // ---- lookups ------------------------------------------------------------------------

    #[inline]
    fn key_eq(&self, elem: u32, key: &[u8]) -> bool {
        self.keys.eq_padded(elem as usize * self.key_stride, key)
    }

    /// The element for `key` (lock-free; the guard keeps it from being reused).
    #[inline]
    pub(crate) fn find(&self, hash: u32, key: &[u8], _guard: &Guard) -> Option<u32> {
        let mut cur = self.bucket(hash).head.load(Ordering::Acquire);
        while cur != 0 {
            let elem = cur - 1;
            let m = &self.meta[elem as usize];
            if m.hash.load(Ordering::Relaxed) == hash && self.key_eq(elem, key) {
                return Some(elem);
            }
            cur = m.next.load(Ordering::Acquire);
        }
        None
    }

    /// Under the bucket lock: the link pointing at `key`'s element, and the element.
    fn find_locked<'a>(&'a self, bucket: &'a Bucket, hash: u32, key: &[u8]) -> Option<(&'a AtomicU32, u32)> {
        let mut link = &bucket.head;
        loop {
            let cur = link.load(Ordering::Relaxed);
            if cur == 0 {
                return None;
            }
            let elem = cur - 1;
            let m = &self.meta[elem as usize];
            if m.hash.load(Ordering::Relaxed) == hash && self.key_eq(elem, key) {
                return Some((link, elem));
            }
            link = &m.next;
        }
    }

    /// BPF-side lookup: a pointer to the value (this CPU's slot for per-CPU maps).
    #[inline]
    pub(crate) fn bpf_lookup(&self, key: &[u8], cpu: usize, guard: &Guard) -> Option<*mut u8> {
        if key.len() != self.key_size || (self.slots > 1 && cpu >= self.slots) {
            return None;
        }
        let elem = self.find(self.hash(key), key, guard)?;
        if self.lru {
            self.touch(elem);
        }
        let cpu = if self.slots > 1 { cpu } else { 0 };
        Some(self.values.ptr(self.value_off(elem, cpu)))
    }

    #[inline]
    fn touch(&self, elem: u32) {
        let r = &self.meta[elem as usize].referenced;
        if !r.load(Ordering::Relaxed) {
            r.store(true, Ordering::Relaxed);
        }
    }

    /// A pointer to an element's value for the given CPU (for the LPM trie).
    pub(crate) fn value_ptr(&self, elem: u32, cpu: usize) -> *mut u8 {
        self.values.ptr(self.value_off(elem, cpu))
    }

    /// Copies an element's value in the host layout.
    pub(crate) fn read_value(&self, elem: u32, out: &mut [u8]) {
        if self.slots > 1 {
            for cpu in 0..self.slots {
                let o = &mut out[cpu * self.value_stride..(cpu + 1) * self.value_stride];
                self.values.read(self.value_off(elem, cpu), &mut o[..self.value_size]);
                o[self.value_size..].fill(0);
            }
        } else {
            self.values.read(self.value_off(elem, 0), &mut out[..self.value_size]);
        }
    }

    pub(crate) fn read_key(&self, elem: u32, out: &mut [u8]) {
        self.keys.read(elem as usize * self.key_stride, &mut out[..self.key_size]);
    }

    fn key_vec(&self, elem: u32) -> Vec<u8> {
        let mut k = vec![0; self.key_size];
        self.read_key(elem, &mut k);
        k
    }

    fn value_vec(&self, elem: u32) -> Vec<u8> {
        let mut v = vec![0; self.host_value_size()];
        self.read_value(elem, &mut v);
        v
    }

    /// The inner map of a `hash_of_maps` element.
    pub(crate) fn inner_map<'a>(&'a self, elem: u32, guard: &'a Guard) -> Option<&'a Map> {
        self.inner.as_ref()?.0[elem as usize].load(guard)
    }

    pub(crate) fn inner_map_arc(&self, elem: u32, guard: &Guard) -> Option<Arc<Map>> {
        self.inner.as_ref()?.0[elem as usize].load_arc(guard)
    }

    /// Host lookup into `out` (host layout); `mark` sets the LRU referenced bit.
    pub(crate) fn lookup(&self, key: &[u8], out: &mut [u8], mark: bool) -> Result<(), MapError> {
        let guard = epoch::pin();
        let elem = self.find(self.hash(key), key, &guard).ok_or(MapError::NotFound)?;
        if mark && self.lru {
            self.touch(elem);
        }
        self.read_value(elem, out);
        Ok(())
    }

    // ---- updates ------------------------------------------------------------------------

    fn write_value(&self, elem: u32, src: &ValueSrc<'_>, fresh: bool) {
        match *src {
            ValueSrc::Single(v) => self.values.write(self.value_off(elem, 0), v),
            ValueSrc::AllCpus(v) => {
                for cpu in 0..self.slots {
                    let s = &v[cpu * self.value_stride..cpu * self.value_stride + self.value_size];
                    self.values.write(self.value_off(elem, cpu), s);
                }
            }
            ValueSrc::OneCpu(v, this_cpu) => {
                if fresh {
                    for cpu in (0..self.slots).filter(|&c| c != this_cpu) {
                        self.values.zero(self.value_off(elem, cpu), self.value_stride);
                    }
                }
                self.values.write(self.value_off(elem, this_cpu), v);
            }
            ValueSrc::Inner(map) => {
                self.values.write(self.value_off(elem, 0), &map.id().to_ne_bytes());
                if let Some((slots, limbo)) = &self.inner {
                    slots[elem as usize].replace(Some(Arc::clone(map)), limbo);
                    limbo.collect();
                }
            }
        }
    }

    fn reserve_count(&self) -> bool {
        self.count
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |c| (c < self.max_entries).then_some(c + 1))
            .is_ok()
    }

    /// Inserts or replaces `key` (flags already checked to be `BPF_ANY`, `BPF_NOEXIST` or
    /// `BPF_EXIST`). `blocking`: the caller is the host and may wait for spare elements.
    pub(crate) fn update(&self, key: &[u8], src: ValueSrc<'_>, flags: u64, blocking: bool) -> Result<(), MapError> {
        let hash = self.hash(key);
        let in_place = self.slots > 1;
        if in_place {
            // Per-CPU maps update existing elements in place, like the kernel.
            let _guard = epoch::pin();
            let bucket = self.bucket(hash);
            let _l = lock(&bucket.lock);
            if let Some((_, elem)) = self.find_locked(bucket, hash, key) {
                if flags == BPF_NOEXIST {
                    return Err(MapError::Exists);
                }
                self.write_value(elem, &src, false);
                return Ok(());
            }
            if flags == BPF_EXIST {
                return Err(MapError::NotFound);
            }
        }
        let blocking = blocking && !epoch::is_pinned();
        // LRU: an element slot taken over from an evicted element (the count already
        // includes it).
        let mut have_slot = false;
        let mut evictions = 0;
        let result = loop {
            let new = match self.alloc(blocking) {
                Ok(new) => new,
                Err(e) => break Err(e),
            };
            let m = &self.meta[new as usize];
            self.keys.write(new as usize * self.key_stride, key);
            m.hash.store(hash, Ordering::Relaxed);
            m.referenced.store(false, Ordering::Relaxed);
            self.write_value(new, &src, true);
            let guard = epoch::pin();
            let bucket = self.bucket(hash);
            let l = lock(&bucket.lock);
            match self.find_locked(bucket, hash, key) {
                Some((link, old)) => {
                    if flags == BPF_NOEXIST {
                        drop(l);
                        self.discard_unlinked(new);
                        break Err(MapError::Exists);
                    }
                    if in_place {
                        self.write_value(old, &src, false);
                        drop(l);
                        self.discard_unlinked(new);
                        break Ok(());
                    }
                    m.next.store(self.meta[old as usize].next.load(Ordering::Relaxed), Ordering::Relaxed);
                    m.live.store(true, Ordering::Relaxed);
                    link.store(new + 1, Ordering::Release);
                    drop(l);
                    self.retire(old);
                    break Ok(());
                }
                None => {
                    if flags == BPF_EXIST {
                        drop(l);
                        self.discard_unlinked(new);
                        break Err(MapError::NotFound);
                    }
                    if !have_slot && !self.reserve_count() {
                        drop(l);
                        self.discard_unlinked(new);
                        if self.lru && evictions < 64 {
                            evictions += 1;
                            // Evict without holding a bucket lock (lock order), then retry.
                            have_slot = self.evict_one(&guard);
                            continue;
                        }
                        break Err(MapError::Full { max_entries: self.max_entries as u32 });
                    }
                    have_slot = false;
                    m.next.store(bucket.head.load(Ordering::Relaxed), Ordering::Relaxed);
                    m.live.store(true, Ordering::Relaxed);
                    bucket.head.store(new + 1, Ordering::Release);
                    break Ok(());
                }
            }
        };
        if have_slot {
            // An evicted element's slot we did not use.
            self.count.fetch_sub(1, Ordering::AcqRel);
        }
        result
    }

    /// Unlinks `key`'s element; `out` receives its value first (host layout).
    pub(crate) fn delete(&self, key: &[u8], out: Option<&mut [u8]>) -> Result<(), MapError> {
        let hash = self.hash(key);
        let _guard = epoch::pin();
        let bucket = self.bucket(hash);
        let l = lock(&bucket.lock);
        let (link, elem) = self.find_locked(bucket, hash, key).ok_or(MapError::NotFound)?;
        if let Some(out) = out {
            self.read_value(elem, out);
        }
        link.store(self.meta[elem as usize].next.load(Ordering::Relaxed), Ordering::Release);
        self.count.fetch_sub(1, Ordering::AcqRel);
        drop(l);
        self.retire(elem);
        Ok(())
    }

    /// Unlinks element `elem` if it is still in its bucket. The element count is left as it
    /// is: the caller takes over the slot.
    fn remove_elem(&self, elem: u32) -> bool {
        let hash = self.meta[elem as usize].hash.load(Ordering::Relaxed);
        let bucket = self.bucket(hash);
        let l = lock(&bucket.lock);
        let mut link = &bucket.head;
        loop {
            let cur = link.load(Ordering::Relaxed);
            if cur == 0 {
                return false;
            }
            if cur - 1 == elem {
                link.store(self.meta[elem as usize].next.load(Ordering::Relaxed), Ordering::Release);
                drop(l);
                self.retire(elem);
                return true;
            }
            link = &self.meta[cur as usize - 1].next;
        }
    }

    /// CLOCK eviction of one element; whether one was evicted (its slot in the element count
    /// then belongs to the caller).
    fn evict_one(&self, _guard: &Guard) -> bool {
        for _ in 0..2 * self.capacity + 1 {
            let elem = self.clock.fetch_add(1, Ordering::Relaxed) % self.capacity;
            let m = &self.meta[elem];
            if !m.live.load(Ordering::Relaxed) {
                continue;
            }
            if m.referenced.load(Ordering::Relaxed) {
                m.referenced.store(false, Ordering::Relaxed);
                continue;
            }
            if self.remove_elem(elem as u32) {
                return true;
            }
        }
        false
    }

    // ---- iteration ----------------------------------------------------------------------

    /// The kernel's order: the key after `key` in its bucket, else the first key of the next
    /// non-empty bucket; a missing (or no) key starts from the first bucket.
    pub(crate) fn get_next_key(&self, key: Option<&[u8]>, out: &mut [u8]) -> Result<(), MapError> {
        let guard = epoch::pin();
        let mut start = 0usize;
        if let Some(key) = key {
            let hash = self.hash(key);
            if let Some(elem) = self.find(hash, key, &guard) {
                let next = self.meta[elem as usize].next.load(Ordering::Acquire);
                if next != 0 {
                    self.read_key(next - 1, out);
                    return Ok(());
                }
                start = (hash & self.mask) as usize + 1;
            }
        }
        for bucket in &self.buckets[start..] {
            let head = bucket.head.load(Ordering::Acquire);
            if head != 0 {
                self.read_key(head - 1, out);
                return Ok(());
            }
        }
        Err(MapError::NotFound)
    }

    /// Calls `f` with every element (lock-free walk, in get_next_key order). The walk pins
    /// bucket by bucket, so that a long traversal does not hold back element reuse.
    pub(crate) fn for_each(&self, mut f: impl FnMut(u32)) {
        for bucket in self.buckets.iter() {
            if bucket.head.load(Ordering::Relaxed) == 0 {
                continue;
            }
            let _guard = epoch::pin();
            let mut cur = bucket.head.load(Ordering::Acquire);
            while cur != 0 {
                f(cur - 1);
                cur = self.meta[cur as usize - 1].next.load(Ordering::Acquire);
            }
        }
    }

    /// Every (key, host value).
    pub(crate) fn entries(&self) -> Vec<Entry> {
        let mut out = Vec::with_capacity(self.len());
        self.for_each(|e| out.push((self.key_vec(e), self.value_vec(e))));
        out
    }

    /// Number of buckets (the batch cursor's range).
    pub(crate) fn n_buckets(&self) -> usize {
        self.buckets.len()
    }

    /// Batch lookup (and delete) by whole buckets from `start`: appends to `out` and returns
    /// the next bucket to visit (`None` when done). A first bucket larger than `max_count`
    /// is `ENOSPC`, like the kernel.
    pub(crate) fn batch(
        &self,
        start: usize,
        max_count: usize,
        delete: bool,
        out: &mut Vec<Entry>,
    ) -> Result<Option<usize>, MapError> {
        let mut elems = Vec::new();
        for b in start..self.buckets.len() {
            let bucket = &self.buckets[b];
            if bucket.head.load(Ordering::Acquire) == 0 {
                continue;
            }
            // Elements are read under the bucket lock; no guard is needed (nor held long).
            let l = lock(&bucket.lock);
            elems.clear();
            let mut cur = bucket.head.load(Ordering::Relaxed);
            while cur != 0 {
                elems.push(cur - 1);
                cur = self.meta[cur as usize - 1].next.load(Ordering::Relaxed);
            }
            if elems.len() > max_count - out.len() {
                if out.is_empty() {
                    return Err(MapError::NoSpace { reason: "a bucket holds more elements than the batch count" });
                }
                return Ok(Some(b));
            }
            for &e in &elems {
                out.push((self.key_vec(e), self.value_vec(e)));
            }
            if delete {
                bucket.head.store(0, Ordering::Release);
                self.count.fetch_sub(elems.len(), Ordering::AcqRel);
                drop(l);
                for &e in &elems {
                    self.retire(e);
                }
            }
            if out.len() == max_count {
                return Ok((b + 1 < self.buckets.len()).then_some(b + 1));
            }
        }
        Ok(None)
    }
}

fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0x6270_666b_6974);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_spreads_small_keys() {
        let mut seen = std::collections::HashSet::new();
        for i in 0u32..10_000 {
            seen.insert(hash_bytes(0, &i.to_ne_bytes()) & 1023);
        }
        assert!(seen.len() > 1000, "{}", seen.len());
    }
}
