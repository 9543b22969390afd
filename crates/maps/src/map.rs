//! [`Map`]: one map of any supported type, with the host (`bpf()` command) and BPF-side
//! (helper) operations.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use crate::array::ArrayMap;
use crate::epoch::{self, Guard};
use crate::error::MapError;
use crate::fd_array::{ChangeHook, FdArray, ProgEntry};
use crate::flags::*;
use crate::hash::{HashParams, HashTable, ValueSrc, spare_elements};
use crate::insn_array::InsnArray;
use crate::lpm::LpmTrie;
use crate::queue::QueueStack;
use crate::ringbuf::RingBuf;
use crate::spec::{MapSpec, MapType, inner_matches, validate};
use crate::storage::Words;

/// A (key, value) pair as host operations return it.
pub type Entry = (Vec<u8>, Vec<u8>);

static NEXT_ID: AtomicU32 = AtomicU32::new(1);

/// Memory a value pointer of a map can point into: register it with the interpreter.
/// It stays allocated, at the same address, for the map's lifetime.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ValueRegion {
    /// First byte (8-byte aligned).
    pub ptr: *mut u8,
    /// Length in bytes.
    pub len: usize,
    /// Whether programs may write it (false for `BPF_F_RDONLY_PROG` maps).
    pub writable: bool,
}

/// Options of a host lookup ([`Map::lookup_with`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LookupFlags(u32);

impl LookupFlags {
    /// Look up like a program would: on LRU maps, mark the element as recently used.
    pub const NONE: LookupFlags = LookupFlags(0);
    /// Do not mark the element as recently used on LRU maps (what the kernel's syscall lookup
    /// does, and what [`Map::lookup`] uses), so that dumping a map does not disturb eviction.
    pub const NO_LRU_UPDATE: LookupFlags = LookupFlags(1);

    /// Whether all of `other`'s flags are set.
    pub fn contains(self, other: LookupFlags) -> bool {
        self.0 & other.0 == other.0
    }
}

impl std::ops::BitOr for LookupFlags {
    type Output = LookupFlags;
    fn bitor(self, rhs: LookupFlags) -> LookupFlags {
        LookupFlags(self.0 | rhs.0)
    }
}

/// Where a batch operation resumes: pass [`Batch::next`] back. Opaque; only valid for the map
/// that returned it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchCursor {
    map_id: u32,
    pos: CursorPos,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum CursorPos {
    /// Hash tables: the next bucket; arrays: the next index.
    Index(usize),
    /// LPM tries: the last key returned.
    Key(Vec<u8>),
}

/// One batch of a batch lookup.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Batch {
    /// (key, value) pairs, values in the host layout.
    pub entries: Vec<Entry>,
    /// Where to continue, `None` when the map has been fully traversed (the kernel reports
    /// that as `-ENOENT` with the last entries).
    pub next: Option<BatchCursor>,
}

enum Kind {
    Array(ArrayMap),
    Hash(HashTable),
    Lpm(LpmTrie),
    Queue(QueueStack),
    RingBuf(RingBuf),
    ProgArray(FdArray<ProgEntry>),
    ArrayOfMaps(FdArray<Map>),
    InsnArray(InsnArray),
}

/// A BPF map. Share it as `Arc<Map>`; every operation takes `&self` and is thread-safe.
pub struct Map {
    spec: MapSpec,
    ncpus: usize,
    id: u32,
    frozen: AtomicBool,
    kind: Kind,
}

impl std::fmt::Debug for Map {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Map")
            .field("id", &self.id)
            .field("name", &self.spec.name)
            .field("type", &self.spec.map_type)
            .field("key_size", &self.spec.key_size)
            .field("value_size", &self.spec.value_size)
            .field("max_entries", &self.spec.max_entries)
            .finish_non_exhaustive()
    }
}

fn hash_flags(flags: u64) -> Result<u64, MapError> {
    if flags & !BPF_F_LOCK > BPF_EXIST {
        return Err(MapError::Invalid { reason: "update flags must be BPF_ANY, BPF_NOEXIST or BPF_EXIST" });
    }
    if flags & BPF_F_LOCK != 0 {
        return Err(MapError::Invalid { reason: "BPF_F_LOCK needs a bpf_spin_lock in the value" });
    }
    Ok(flags)
}

fn region(words: &Words, writable: bool) -> ValueRegion {
    ValueRegion { ptr: words.base(), len: words.len_bytes(), writable }
}

#[inline]
fn key_index(key: &[u8]) -> Option<u32> {
    Some(u32::from_ne_bytes(key.try_into().ok()?))
}

impl Map {
    /// Creates a map, validating `spec` like `BPF_MAP_CREATE` (same conditions, same errno).
    /// `ncpus` (> 0) is the number of value slots of per-CPU maps and the range of the `cpu`
    /// argument of BPF-side operations.
    ///
    /// For LRU maps with `BPF_F_NO_COMMON_LRU`, `max_entries` is rounded to a multiple of
    /// `ncpus` like the kernel does; [`Map::spec`] shows the effective value.
    pub fn create(spec: MapSpec, ncpus: usize) -> Result<Map, MapError> {
        validate(&spec, ncpus)?;
        let mut spec = spec;
        let t = spec.map_type;
        if t.is_lru() && spec.flags & BPF_F_NO_COMMON_LRU != 0 {
            let n = ncpus as u64;
            let up = u64::from(spec.max_entries).next_multiple_of(n);
            spec.max_entries =
                if up <= u64::from(u32::MAX) { up as u32 } else { (u64::from(spec.max_entries) / n * n) as u32 };
            if spec.max_entries == 0 {
                return Err(MapError::InvalidSpec {
                    map_type: t,
                    reason: "max_entries is below the number of CPUs".into(),
                });
            }
        }
        let key_size = spec.key_size as usize;
        let value_size = spec.value_size as usize;
        let max = spec.max_entries as usize;
        let slots = if t.is_percpu() { ncpus } else { 1 };
        let kind = match t {
            MapType::Array | MapType::PercpuArray => Kind::Array(ArrayMap::new(value_size, max, slots)?),
            MapType::ProgArray => Kind::ProgArray(FdArray::new(max)?),
            MapType::ArrayOfMaps => Kind::ArrayOfMaps(FdArray::new(max)?),
            MapType::Hash | MapType::PercpuHash | MapType::LruHash | MapType::LruPercpuHash | MapType::HashOfMaps => {
                Kind::Hash(HashTable::new(HashParams {
                    key_size,
                    value_size,
                    max_entries: max,
                    slots,
                    spare: spare_elements(max, ncpus),
                    lru: t.is_lru(),
                    zero_seed: spec.flags & BPF_F_ZERO_SEED != 0,
                    inner_maps: t == MapType::HashOfMaps,
                })?)
            }
            MapType::LpmTrie => Kind::Lpm(LpmTrie::new(key_size, value_size, spec.max_entries, ncpus)?),
            MapType::Queue | MapType::Stack => Kind::Queue(QueueStack::new(t == MapType::Stack, value_size, max)?),
            MapType::Ringbuf => Kind::RingBuf(RingBuf::new(spec.max_entries)?),
            MapType::InsnArray => {
                // Programs may never write an insn array (the kernel forces BPF_F_RDONLY_PROG).
                spec.flags |= BPF_F_RDONLY_PROG;
                Kind::InsnArray(InsnArray::new(max)?)
            }
            _ => return Err(MapError::Unsupported { map_type: t }),
        };
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        Ok(Map { spec, ncpus, id, frozen: AtomicBool::new(false), kind })
    }

    // ---- properties ---------------------------------------------------------------------

    /// The definition (with the effective `max_entries`).
    pub fn spec(&self) -> &MapSpec {
        &self.spec
    }

    /// The map type.
    pub fn map_type(&self) -> MapType {
        self.spec.map_type
    }

    /// The number of CPUs the map was created for.
    pub fn ncpus(&self) -> usize {
        self.ncpus
    }

    /// A process-unique id (what lookups of map-in-map slots return), starting at 1.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Whether [`Map::freeze`] was called.
    pub fn is_frozen(&self) -> bool {
        self.frozen.load(Ordering::Acquire)
    }

    /// Whether programs may write the map's values (false with `BPF_F_RDONLY_PROG`): register
    /// [`Map::value_regions`] read-only when false.
    pub fn prog_writable(&self) -> bool {
        self.spec.flags & BPF_F_RDONLY_PROG == 0
    }

    /// Whether programs may read the map (false with `BPF_F_WRONLY_PROG`).
    pub fn prog_readable(&self) -> bool {
        self.spec.flags & BPF_F_WRONLY_PROG == 0
    }

    /// Size of a value in host operations: `value_size`, or for per-CPU maps
    /// `ncpus * round_up(value_size, 8)` (every CPU's value, like the kernel).
    pub fn host_value_size(&self) -> usize {
        match &self.kind {
            Kind::Array(a) => a.host_value_size(),
            Kind::Hash(h) => h.host_value_size(),
            _ => self.spec.value_size as usize,
        }
    }

    /// Number of elements: for arrays `max_entries`, for prog arrays and array-of-maps the
    /// occupied slots, for ring buffers the unconsumed bytes.
    pub fn element_count(&self) -> usize {
        match &self.kind {
            Kind::Array(a) => a.max_entries(),
            Kind::Hash(h) => h.len(),
            Kind::Lpm(l) => l.table().len(),
            Kind::Queue(q) => q.len(),
            Kind::RingBuf(r) => r.query(BPF_RB_AVAIL_DATA) as usize,
            Kind::ProgArray(p) => (0..p.len() as u32).filter(|&i| p.is_set(i)).count(),
            Kind::ArrayOfMaps(a) => (0..a.len() as u32).filter(|&i| a.is_set(i)).count(),
            Kind::InsnArray(a) => a.len(),
        }
    }

    /// The memory value pointers (and reserved ring buffer records) can point into; empty for
    /// maps whose values are copied (queue, stack) or are handles (prog arrays, map-in-map).
    /// Regions never move or shrink while the map exists. Hash maps' region also holds
    /// free elements' storage.
    pub fn value_regions(&self) -> Vec<ValueRegion> {
        let w = self.prog_writable();
        match &self.kind {
            Kind::Array(a) => vec![region(a.data(), w)],
            Kind::Hash(h) if self.spec.map_type != MapType::HashOfMaps => vec![region(h.values(), w)],
            Kind::Lpm(l) => vec![region(l.table().values(), w)],
            Kind::RingBuf(r) => vec![region(r.data(), true)],
            Kind::InsnArray(a) => vec![region(a.ips(), false)],
            _ => Vec::new(),
        }
    }

    /// Where a plain `array` map keeps its values, for code generators that inline
    /// `bpf_map_lookup_elem` (as the kernel's JIT does): the value of index `i < max_entries`
    /// is at `base + i * stride`. `None` for every other map type (per-CPU arrays included).
    /// The storage never moves while the map exists.
    pub fn array_layout(&self) -> Option<ArrayLayout> {
        match &self.kind {
            Kind::Array(a) if self.spec.map_type == MapType::Array => Some(ArrayLayout {
                base: a.data().ptr(0) as u64,
                stride: a.stride() as u32,
                max_entries: a.max_entries() as u32,
            }),
            _ => None,
        }
    }

    /// Binds an `insn_array` to a program of `prog_len` slots being loaded (kernel-spec §2.4):
    /// the map must be frozen, every `orig_off` inside the program and not the second slot of
    /// a `lddw` (`-EINVAL`), and no other program may own it (`-EBUSY`). Resets every
    /// `xlated_off` to its `orig_off`. The returned owner releases the map when dropped.
    pub fn bind_insn_array(
        self: &Arc<Self>,
        prog_len: usize,
        is_lddw_tail: &dyn Fn(usize) -> bool,
    ) -> Result<InsnArrayOwner, MapError> {
        let Kind::InsnArray(a) = &self.kind else {
            return Err(MapError::Invalid { reason: "not an insn_array map" });
        };
        if !self.is_frozen() {
            return Err(MapError::Invalid { reason: "an insn_array must be frozen before the program is loaded" });
        }
        a.bind(prog_len, is_lddw_tail)?;
        Ok(InsnArrayOwner { map: Arc::clone(self) })
    }

    /// The `[orig_off, xlated_off, jitted_off]` of each entry of an `insn_array`.
    pub fn insn_array_entries(&self) -> Option<Vec<[u32; 3]>> {
        let Kind::InsnArray(a) = &self.kind else { return None };
        Some((0..a.len()).filter_map(|i| a.get(i)).collect())
    }

    /// The code address of each entry of an `insn_array`, as programs read it (0 until the
    /// program's code is final, and for deleted instructions).
    pub fn insn_array_ips(&self) -> Option<Vec<u64>> {
        let Kind::InsnArray(a) = &self.kind else { return None };
        Some((0..a.len()).map(|i| a.ips().word(i * 8).load(Ordering::Acquire)).collect())
    }

    /// The ring buffer operations, for `ringbuf` maps.
    pub fn ringbuf(&self) -> Option<&RingBuf> {
        match &self.kind {
            Kind::RingBuf(r) => Some(r),
            _ => None,
        }
    }

    // ---- permission and argument checks -------------------------------------------------

    fn check_read(&self) -> Result<(), MapError> {
        if self.spec.flags & BPF_F_WRONLY != 0 {
            return Err(MapError::Permission { reason: "the map was created with BPF_F_WRONLY" });
        }
        Ok(())
    }

    fn check_write(&self) -> Result<(), MapError> {
        if self.spec.flags & BPF_F_RDONLY != 0 {
            return Err(MapError::Permission { reason: "the map was created with BPF_F_RDONLY" });
        }
        if self.is_frozen() {
            return Err(MapError::Frozen);
        }
        Ok(())
    }

    fn check_prog_write(&self) -> Result<(), MapError> {
        if !self.prog_writable() {
            return Err(MapError::Permission { reason: "the map was created with BPF_F_RDONLY_PROG" });
        }
        Ok(())
    }

    fn check_key(&self, key: &[u8]) -> Result<(), MapError> {
        let expected = self.spec.key_size as usize;
        if key.len() != expected {
            return Err(MapError::BadSize { what: "key", expected, got: key.len() });
        }
        Ok(())
    }

    fn check_value(&self, value: &[u8], expected: usize) -> Result<(), MapError> {
        if value.len() != expected {
            return Err(MapError::BadSize { what: "value", expected, got: value.len() });
        }
        Ok(())
    }

    fn index(&self, key: &[u8]) -> Result<u32, MapError> {
        self.check_key(key)?;
        key_index(key).ok_or(MapError::Invalid { reason: "array keys are 4-byte indices" })
    }

    fn unsupported(&self, op: &'static str) -> MapError {
        MapError::OpNotSupported { op, map_type: self.spec.map_type }
    }

    // ---- host operations ----------------------------------------------------------------

    /// `BPF_MAP_LOOKUP_ELEM`: a copy of the value ([`Map::host_value_size`] bytes). LPM tries
    /// match the longest prefix; queues and stacks peek (key must be empty); prog arrays and
    /// map-in-map return the stored program's or map's id. On LRU maps this does not mark
    /// the element as used (like the kernel's syscall); see [`Map::lookup_with`].
    pub fn lookup(&self, key: &[u8]) -> Result<Vec<u8>, MapError> {
        self.lookup_with(key, LookupFlags::NO_LRU_UPDATE)
    }

    /// [`Map::lookup`] with options: `LookupFlags::NONE` marks an LRU element as recently
    /// used, as a program's lookup would.
    pub fn lookup_with(&self, key: &[u8], flags: LookupFlags) -> Result<Vec<u8>, MapError> {
        self.check_read()?;
        match &self.kind {
            Kind::Array(a) => {
                let index = self.index(key)?;
                if index as usize >= a.max_entries() {
                    return Err(MapError::NotFound);
                }
                let mut v = vec![0; a.host_value_size()];
                a.read(index, &mut v);
                Ok(v)
            }
            Kind::Hash(h) => {
                self.check_key(key)?;
                let mut v = vec![0; h.host_value_size()];
                h.lookup(key, &mut v, !flags.contains(LookupFlags::NO_LRU_UPDATE))?;
                Ok(v)
            }
            Kind::Lpm(l) => {
                self.check_key(key)?;
                let mut v = vec![0; self.spec.value_size as usize];
                l.lookup(key, &mut v)?;
                Ok(v)
            }
            Kind::Queue(q) => {
                self.check_key(key)?;
                let mut v = vec![0; self.spec.value_size as usize];
                q.take(&mut v, false)?;
                Ok(v)
            }
            Kind::RingBuf(_) => Err(self.unsupported("lookup")),
            Kind::ProgArray(p) => {
                let index = self.index(key)?;
                Ok(p.get_arc(index).ok_or(MapError::NotFound)?.id.to_ne_bytes().to_vec())
            }
            Kind::ArrayOfMaps(a) => {
                let index = self.index(key)?;
                Ok(a.get_arc(index).ok_or(MapError::NotFound)?.id().to_ne_bytes().to_vec())
            }
            Kind::InsnArray(a) => {
                let index = self.index(key)?;
                let v = a.get(index as usize).ok_or(MapError::NotFound)?;
                Ok(v.iter().chain(&[0]).flat_map(|w| w.to_ne_bytes()).collect())
            }
        }
    }

    /// `BPF_MAP_UPDATE_ELEM` with `BPF_ANY`, `BPF_NOEXIST` or `BPF_EXIST`. Per-CPU maps take
    /// every CPU's value ([`Map::host_value_size`] bytes). Arrays: `BPF_NOEXIST` is
    /// `-EEXIST`, an index past the end `-E2BIG`. Full hash: `-E2BIG` (LRU maps evict
    /// instead); full LPM trie: `-ENOSPC`. Queues and stacks push (key empty; `BPF_EXIST`
    /// overwrites the oldest when full). Prog arrays and map-in-map take handles instead:
    /// [`Map::update_prog`], [`Map::update_inner_map`].
    pub fn update(&self, key: &[u8], value: &[u8], flags: u64) -> Result<(), MapError> {
        self.check_write()?;
        match &self.kind {
            Kind::Array(a) => {
                let index = self.index(key)?;
                self.check_value(value, a.host_value_size())?;
                self.array_checks(a, index, flags)?;
                a.write_host(index, value);
                Ok(())
            }
            Kind::Hash(_) if self.spec.map_type == MapType::HashOfMaps => {
                Err(MapError::Invalid { reason: "hash_of_maps values are maps: use Map::update_inner_map" })
            }
            Kind::Hash(h) => {
                self.check_key(key)?;
                self.check_value(value, h.host_value_size())?;
                let flags = hash_flags(flags)?;
                let src =
                    if self.spec.map_type.is_percpu() { ValueSrc::AllCpus(value) } else { ValueSrc::Single(value) };
                h.update(key, src, flags, true)
            }
            Kind::Lpm(l) => {
                self.check_value(value, self.spec.value_size as usize)?;
                l.update(key, value, flags, true)
            }
            Kind::Queue(q) => {
                self.check_key(key)?;
                q.push(value, flags)
            }
            Kind::RingBuf(_) => Err(self.unsupported("update")),
            Kind::ProgArray(_) => {
                Err(MapError::Invalid { reason: "prog_array values are programs: use Map::update_prog" })
            }
            Kind::ArrayOfMaps(_) => {
                Err(MapError::Invalid { reason: "array_of_maps values are maps: use Map::update_inner_map" })
            }
            Kind::InsnArray(a) => {
                let index = self.index(key)?;
                self.check_value(value, 16)?;
                if index >= self.spec.max_entries {
                    return Err(MapError::OutOfRange { index, max_entries: self.spec.max_entries });
                }
                if flags & BPF_NOEXIST != 0 {
                    return Err(MapError::Exists);
                }
                if flags > BPF_EXIST {
                    return Err(MapError::Invalid { reason: "update flags must be BPF_ANY, BPF_NOEXIST or BPF_EXIST" });
                }
                a.set_orig(index as usize, value)
            }
        }
    }

    fn array_checks(&self, a: &ArrayMap, index: u32, flags: u64) -> Result<(), MapError> {
        if flags & !BPF_F_LOCK > BPF_EXIST {
            return Err(MapError::Invalid { reason: "update flags must be BPF_ANY, BPF_NOEXIST or BPF_EXIST" });
        }
        if index as usize >= a.max_entries() {
            return Err(MapError::OutOfRange { index, max_entries: self.spec.max_entries });
        }
        if flags & BPF_NOEXIST != 0 {
            return Err(MapError::Exists);
        }
        if flags & BPF_F_LOCK != 0 {
            return Err(MapError::Invalid { reason: "BPF_F_LOCK needs a bpf_spin_lock in the value" });
        }
        Ok(())
    }

    /// `BPF_MAP_DELETE_ELEM`. Arrays: `-EINVAL` (elements cannot be deleted); LPM tries:
    /// exact match; prog arrays and map-in-map arrays clear the slot (`-ENOENT` if empty,
    /// `-E2BIG` past the end); queues and stacks: `-EINVAL`.
    pub fn delete(&self, key: &[u8]) -> Result<(), MapError> {
        self.check_write()?;
        match &self.kind {
            Kind::Array(_) => Err(MapError::Invalid { reason: "array elements cannot be deleted" }),
            Kind::Hash(h) => {
                self.check_key(key)?;
                h.delete(key, None)
            }
            Kind::Lpm(l) => l.delete(key),
            Kind::Queue(_) => {
                Err(MapError::Invalid { reason: "queue/stack elements are removed by lookup_and_delete" })
            }
            Kind::RingBuf(_) => Err(self.unsupported("delete")),
            Kind::ProgArray(p) => self.fd_delete(p, key),
            Kind::ArrayOfMaps(a) => self.fd_delete(a, key),
            Kind::InsnArray(_) => Err(MapError::Invalid { reason: "insn_array elements cannot be deleted" }),
        }
    }

    fn fd_delete<T>(&self, arr: &FdArray<T>, key: &[u8]) -> Result<(), MapError> {
        let index = self.index(key)?;
        if index as usize >= arr.len() {
            return Err(MapError::OutOfRange { index, max_entries: self.spec.max_entries });
        }
        if !arr.is_set(index) {
            return Err(MapError::NotFound);
        }
        arr.set(index, None);
        Ok(())
    }

    /// `BPF_MAP_GET_NEXT_KEY`: the key after `key`, or the first key for `None`. Hash maps:
    /// a key that is not in the map also gives the first key (kernel behaviour); arrays: an
    /// index past the end gives 0; LPM tries: post-order, more specific prefixes first.
    /// `-ENOENT` after the last key.
    pub fn get_next_key(&self, key: Option<&[u8]>) -> Result<Vec<u8>, MapError> {
        self.check_read()?;
        match &self.kind {
            Kind::Array(_) | Kind::ProgArray(_) | Kind::ArrayOfMaps(_) | Kind::InsnArray(_) => {
                let max = self.spec.max_entries;
                let next = match key {
                    None => 0,
                    Some(k) => {
                        let index = self.index(k)?;
                        if index >= max {
                            0
                        } else if index == max - 1 {
                            return Err(MapError::NotFound);
                        } else {
                            index + 1
                        }
                    }
                };
                Ok(next.to_ne_bytes().to_vec())
            }
            Kind::Hash(h) => {
                if let Some(k) = key {
                    self.check_key(k)?;
                }
                let mut out = vec![0; h.key_size()];
                h.get_next_key(key, &mut out)?;
                Ok(out)
            }
            Kind::Lpm(l) => l.get_next_key(key),
            Kind::Queue(_) => Err(MapError::Invalid { reason: "queues and stacks have no keys" }),
            Kind::RingBuf(_) => Err(self.unsupported("get_next_key")),
        }
    }

    /// `BPF_MAP_LOOKUP_AND_DELETE_ELEM`: queue/stack pop (key empty), or remove a hash
    /// element and return its value. `-ENOTSUPP` for other types.
    pub fn lookup_and_delete(&self, key: &[u8]) -> Result<Vec<u8>, MapError> {
        self.check_read()?;
        self.check_write()?;
        match &self.kind {
            Kind::Queue(q) => {
                self.check_key(key)?;
                let mut v = vec![0; self.spec.value_size as usize];
                q.take(&mut v, true)?;
                Ok(v)
            }
            Kind::Hash(h) if self.spec.map_type != MapType::HashOfMaps => {
                self.check_key(key)?;
                let mut v = vec![0; h.host_value_size()];
                h.delete(key, Some(&mut v))?;
                Ok(v)
            }
            _ => Err(self.unsupported("lookup_and_delete")),
        }
    }

    /// `BPF_MAP_FREEZE`: from now on host writes fail with `-EPERM` (programs may still
    /// write, unless `BPF_F_RDONLY_PROG`). Freezing again, or a `BPF_F_RDONLY` map, is
    /// `-EPERM` like the kernel.
    pub fn freeze(&self) -> Result<(), MapError> {
        self.check_write()?;
        if self.frozen.swap(true, Ordering::AcqRel) {
            return Err(MapError::Frozen);
        }
        Ok(())
    }

    /// Every (key, value) pair for dumping, values in the host layout, in get_next_key
    /// order (arrays: every index; queues/stacks: empty keys, in pop order; prog arrays and
    /// map-in-map: occupied slots with the id as value).
    pub fn entries(&self) -> Result<Vec<Entry>, MapError> {
        self.check_read()?;
        Ok(match &self.kind {
            Kind::Array(a) => (0..a.max_entries() as u32)
                .map(|i| {
                    let mut v = vec![0; a.host_value_size()];
                    a.read(i, &mut v);
                    (i.to_ne_bytes().to_vec(), v)
                })
                .collect(),
            Kind::Hash(h) => h.entries(),
            Kind::Lpm(l) => l.entries(),
            Kind::Queue(q) => q.values().into_iter().map(|v| (Vec::new(), v)).collect(),
            Kind::RingBuf(_) => return Err(self.unsupported("entries")),
            Kind::ProgArray(p) => (0..p.len() as u32)
                .filter_map(|i| p.get_arc(i).map(|e| (i.to_ne_bytes().to_vec(), e.id.to_ne_bytes().to_vec())))
                .collect(),
            Kind::ArrayOfMaps(a) => (0..a.len() as u32)
                .filter_map(|i| a.get_arc(i).map(|m| (i.to_ne_bytes().to_vec(), m.id().to_ne_bytes().to_vec())))
                .collect(),
            Kind::InsnArray(_) => (0..self.spec.max_entries)
                .map(|i| {
                    let k = i.to_ne_bytes().to_vec();
                    let v = self.lookup(&k).unwrap_or_default();
                    (k, v)
                })
                .collect(),
        })
    }

    // ---- batch operations ---------------------------------------------------------------

    /// `BPF_MAP_LOOKUP_BATCH`: up to `max_count` entries from `cursor` (`None`: the start).
    /// Hash maps return whole buckets (a first bucket larger than `max_count` is `-ENOSPC`,
    /// like the kernel). `max_count == 0` returns nothing and the same cursor.
    pub fn lookup_batch(&self, cursor: Option<&BatchCursor>, max_count: usize) -> Result<Batch, MapError> {
        self.batch(cursor, max_count, false)
    }

    /// `BPF_MAP_LOOKUP_AND_DELETE_BATCH` (hash maps only): like [`Map::lookup_batch`], and the
    /// returned elements are deleted.
    pub fn lookup_and_delete_batch(&self, cursor: Option<&BatchCursor>, max_count: usize) -> Result<Batch, MapError> {
        self.batch(cursor, max_count, true)
    }

    fn cursor(&self, pos: CursorPos) -> BatchCursor {
        BatchCursor { map_id: self.id, pos }
    }

    fn batch(&self, cursor: Option<&BatchCursor>, max_count: usize, delete: bool) -> Result<Batch, MapError> {
        let op = if delete { "lookup_and_delete_batch" } else { "lookup_batch" };
        let supported = match &self.kind {
            Kind::Hash(_) => true,
            Kind::Array(_) | Kind::Lpm(_) | Kind::ProgArray(_) | Kind::ArrayOfMaps(_) => !delete,
            Kind::Queue(_) | Kind::RingBuf(_) | Kind::InsnArray(_) => false,
        };
        if !supported {
            return Err(self.unsupported(op));
        }
        self.check_read()?;
        if delete {
            self.check_write()?;
        }
        let pos = match cursor {
            None => None,
            Some(c) if c.map_id == self.id => Some(&c.pos),
            Some(_) => return Err(MapError::Invalid { reason: "batch cursor of another map" }),
        };
        if max_count == 0 {
            return Ok(Batch { entries: Vec::new(), next: cursor.cloned() });
        }
        let start = match pos {
            None => 0,
            Some(CursorPos::Index(i)) => *i,
            Some(CursorPos::Key(_)) if matches!(self.kind, Kind::Lpm(_)) => 0,
            Some(CursorPos::Key(_)) => return Err(MapError::Invalid { reason: "batch cursor of another map" }),
        };
        let mut entries = Vec::new();
        let next = match &self.kind {
            Kind::Hash(h) => {
                if start > h.n_buckets() {
                    return Err(MapError::Invalid { reason: "batch cursor out of range" });
                }
                h.batch(start, max_count, delete, &mut entries)?.map(CursorPos::Index)
            }
            Kind::Lpm(l) => {
                let after = match pos {
                    Some(CursorPos::Key(k)) => Some(k.as_slice()),
                    _ => None,
                };
                let (e, more) = l.batch(after, max_count);
                entries = e;
                if more { entries.last().map(|(k, _)| CursorPos::Key(k.clone())) } else { None }
            }
            _ => {
                let max = self.spec.max_entries as usize;
                let mut i = start;
                while i < max && entries.len() < max_count {
                    let key = (i as u32).to_ne_bytes().to_vec();
                    let value = match &self.kind {
                        Kind::Array(a) => {
                            let mut v = vec![0; a.host_value_size()];
                            a.read(i as u32, &mut v);
                            Some(v)
                        }
                        Kind::ProgArray(p) => p.get_arc(i as u32).map(|e| e.id.to_ne_bytes().to_vec()),
                        Kind::ArrayOfMaps(a) => a.get_arc(i as u32).map(|m| m.id().to_ne_bytes().to_vec()),
                        _ => None,
                    };
                    if let Some(v) = value {
                        entries.push((key, v));
                    }
                    i += 1;
                }
                (i < max).then_some(CursorPos::Index(i))
            }
        };
        Ok(Batch { entries, next: next.map(|p| self.cursor(p)) })
    }

    /// `BPF_MAP_UPDATE_BATCH`: [`Map::update`] of each pair in order with `flags`; returns how
    /// many were applied. An error stops the batch: [`MapError::Batch`] says how many were
    /// applied before it.
    pub fn update_batch(&self, entries: &[(&[u8], &[u8])], flags: u64) -> Result<usize, MapError> {
        let supported = match &self.kind {
            Kind::Array(_) | Kind::Lpm(_) => true,
            Kind::Hash(_) => self.spec.map_type != MapType::HashOfMaps,
            _ => false,
        };
        if !supported {
            return Err(self.unsupported("update_batch"));
        }
        self.check_write()?;
        for (done, (k, v)) in entries.iter().enumerate() {
            self.update(k, v, flags).map_err(|e| MapError::Batch { done, source: Box::new(e) })?;
        }
        Ok(entries.len())
    }

    /// `BPF_MAP_DELETE_BATCH` (hash maps and LPM tries): [`Map::delete`] of each key in
    /// order; stops at the first error like [`Map::update_batch`].
    pub fn delete_batch(&self, keys: &[&[u8]]) -> Result<usize, MapError> {
        if !matches!(self.kind, Kind::Hash(_) | Kind::Lpm(_)) {
            return Err(self.unsupported("delete_batch"));
        }
        self.check_write()?;
        for (done, k) in keys.iter().enumerate() {
            self.delete(k).map_err(|e| MapError::Batch { done, source: Box::new(e) })?;
        }
        Ok(keys.len())
    }

    // ---- handles: prog arrays and map-in-map --------------------------------------------

    /// Stores a program in a `prog_array` slot (`flags` must be `BPF_ANY`; an index past the
    /// end is `-E2BIG`). Bumps the version and calls the change hook.
    pub fn update_prog(&self, key: &[u8], entry: ProgEntry, flags: u64) -> Result<(), MapError> {
        let Kind::ProgArray(p) = &self.kind else {
            return Err(self.unsupported("update_prog"));
        };
        self.check_write()?;
        let index = self.index(key)?;
        if flags != BPF_ANY {
            return Err(MapError::Invalid { reason: "prog_array updates take BPF_ANY only" });
        }
        if index as usize >= p.len() {
            return Err(MapError::OutOfRange { index, max_entries: self.spec.max_entries });
        }
        p.set(index, Some(Arc::new(entry)));
        Ok(())
    }

    /// The program in a `prog_array` slot (host side).
    pub fn lookup_prog(&self, key: &[u8]) -> Result<ProgEntry, MapError> {
        let Kind::ProgArray(p) = &self.kind else {
            return Err(self.unsupported("lookup_prog"));
        };
        self.check_read()?;
        let index = self.index(key)?;
        p.get_arc(index).map(|e| (*e).clone()).ok_or(MapError::NotFound)
    }

    /// The tail call target at `index`, borrowed while `guard` lives (`None`: empty slot or
    /// index past the end, i.e. the tail call falls through).
    #[inline]
    pub fn bpf_tail_call_target<'a>(&'a self, index: u32, guard: &'a Guard) -> Option<&'a ProgEntry> {
        match &self.kind {
            Kind::ProgArray(p) => p.get(index, guard),
            _ => None,
        }
    }

    /// A counter bumped by every change of a `prog_array` (`None` for other types): a JIT
    /// that patched direct tail calls re-checks when it changes.
    pub fn prog_array_version(&self) -> Option<u64> {
        match &self.kind {
            Kind::ProgArray(p) => Some(p.version()),
            _ => None,
        }
    }

    /// Sets the function called with the index of every changed `prog_array` slot (after the
    /// change, on the updating thread).
    pub fn set_prog_array_hook(&self, hook: Option<ChangeHook>) -> Result<(), MapError> {
        match &self.kind {
            Kind::ProgArray(p) => {
                p.set_hook(hook);
                Ok(())
            }
            _ => Err(self.unsupported("set_prog_array_hook")),
        }
    }

    /// Stores an inner map in a map-in-map. The inner map's definition must match the
    /// template (type, key and value sizes, flags; for array inner maps also `max_entries`
    /// unless the template has `BPF_F_INNER_MAP`), else `-EINVAL`. `array_of_maps` takes
    /// `BPF_ANY` only; `hash_of_maps` takes the usual update flags.
    pub fn update_inner_map(&self, key: &[u8], inner: Arc<Map>, flags: u64) -> Result<(), MapError> {
        if !self.spec.map_type.is_map_in_map() {
            return Err(self.unsupported("update_inner_map"));
        }
        self.check_write()?;
        let template = self.spec.inner.as_deref().expect("map-in-map has a template");
        match &self.kind {
            Kind::ArrayOfMaps(a) => {
                let index = self.index(key)?;
                if flags != BPF_ANY {
                    return Err(MapError::Invalid { reason: "array_of_maps updates take BPF_ANY only" });
                }
                if index as usize >= a.len() {
                    return Err(MapError::OutOfRange { index, max_entries: self.spec.max_entries });
                }
                if !inner_matches(template, inner.spec()) {
                    return Err(MapError::Invalid { reason: "the inner map does not match the map-in-map's template" });
                }
                a.set(index, Some(inner));
                Ok(())
            }
            Kind::Hash(h) => {
                self.check_key(key)?;
                let flags = hash_flags(flags)?;
                if !inner_matches(template, inner.spec()) {
                    return Err(MapError::Invalid { reason: "the inner map does not match the map-in-map's template" });
                }
                h.update(key, ValueSrc::Inner(&inner), flags, true)
            }
            _ => Err(self.unsupported("update_inner_map")),
        }
    }

    /// The inner map stored under `key` (host side).
    pub fn lookup_inner_map(&self, key: &[u8]) -> Result<Arc<Map>, MapError> {
        self.check_read()?;
        match &self.kind {
            Kind::ArrayOfMaps(a) => a.get_arc(self.index(key)?).ok_or(MapError::NotFound),
            Kind::Hash(h) if self.spec.map_type == MapType::HashOfMaps => {
                self.check_key(key)?;
                let guard = epoch::pin();
                let elem = h.find(h.hash(key), key, &guard).ok_or(MapError::NotFound)?;
                h.inner_map_arc(elem, &guard).ok_or(MapError::NotFound)
            }
            _ => Err(self.unsupported("lookup_inner_map")),
        }
    }

    /// BPF-side lookup in a map-in-map: the inner map, borrowed while `guard` lives.
    #[inline]
    pub fn bpf_lookup_inner<'a>(&'a self, key: &[u8], guard: &'a Guard) -> Option<&'a Map> {
        match &self.kind {
            Kind::ArrayOfMaps(a) => a.get(key_index(key)?, guard),
            Kind::Hash(h) if self.spec.map_type == MapType::HashOfMaps => {
                if key.len() != h.key_size() {
                    return None;
                }
                let elem = h.find(h.hash(key), key, guard)?;
                h.inner_map(elem, guard)
            }
            _ => None,
        }
    }

    // ---- BPF-side operations ------------------------------------------------------------

    /// `bpf_map_lookup_elem`: a pointer to the value storage (for per-CPU maps, CPU `cpu`'s
    /// slot), or `None`. The pointer is 8-byte aligned, inside [`Map::value_regions`], and
    /// keeps pointing at this element's storage, which is not reused, while `guard` lives.
    /// `key` must be exactly `key_size` bytes. For map-in-map the pointer is the inner
    /// `Map` itself (`&Map as *const Map`; see [`Map::bpf_lookup_inner`]): a token the
    /// runtime turns back into a map, valid while `guard` lives and this map exists.
    #[inline]
    pub fn bpf_lookup(&self, key: &[u8], cpu: usize, guard: &Guard) -> Option<*mut u8> {
        match &self.kind {
            Kind::Array(a) => a.bpf_lookup(key_index(key)?, cpu),
            Kind::Hash(h) if self.spec.map_type != MapType::HashOfMaps => h.bpf_lookup(key, cpu, guard),
            Kind::Lpm(l) => l.bpf_lookup(key, guard),
            Kind::Hash(_) | Kind::ArrayOfMaps(_) => {
                self.bpf_lookup_inner(key, guard).map(|m| (m as *const Map).cast::<u8>().cast_mut())
            }
            _ => None,
        }
    }

    /// `bpf_map_update_elem` from a program: `value` is one value (`value_size` bytes; for
    /// per-CPU maps it goes to CPU `cpu`'s slot, and a new element's other slots are zeroed).
    /// Never blocks: when every spare element is held by pinned readers it fails with
    /// `-ENOMEM`. `-EPERM` for `BPF_F_RDONLY_PROG` maps.
    pub fn bpf_update(&self, key: &[u8], value: &[u8], flags: u64, cpu: usize, guard: &Guard) -> Result<(), MapError> {
        let _ = guard;
        self.check_prog_write()?;
        let value_size = self.spec.value_size as usize;
        match &self.kind {
            Kind::Array(a) => {
                let index = self.index(key)?;
                self.check_value(value, value_size)?;
                self.array_checks(a, index, flags)?;
                if a.slots() > 1 && cpu >= a.slots() {
                    return Err(MapError::Invalid { reason: "cpu out of range" });
                }
                a.write_cpu(index, value, cpu);
                Ok(())
            }
            Kind::Hash(h) if self.spec.map_type != MapType::HashOfMaps => {
                self.check_key(key)?;
                self.check_value(value, value_size)?;
                let flags = hash_flags(flags)?;
                let src = if self.spec.map_type.is_percpu() {
                    if cpu >= self.ncpus {
                        return Err(MapError::Invalid { reason: "cpu out of range" });
                    }
                    ValueSrc::OneCpu(value, cpu)
                } else {
                    ValueSrc::Single(value)
                };
                h.update(key, src, flags, false)
            }
            Kind::Lpm(l) => {
                self.check_value(value, value_size)?;
                l.update(key, value, flags, false)
            }
            _ => Err(self.unsupported("bpf_map_update_elem")),
        }
    }

    /// `bpf_map_delete_elem` from a program. `-EPERM` for `BPF_F_RDONLY_PROG` maps.
    pub fn bpf_delete(&self, key: &[u8], guard: &Guard) -> Result<(), MapError> {
        let _ = guard;
        self.check_prog_write()?;
        match &self.kind {
            Kind::Array(_) => Err(MapError::Invalid { reason: "array elements cannot be deleted" }),
            Kind::Hash(h) if self.spec.map_type != MapType::HashOfMaps => {
                self.check_key(key)?;
                h.delete(key, None)
            }
            Kind::Lpm(l) => l.delete(key),
            _ => Err(self.unsupported("bpf_map_delete_elem")),
        }
    }

    fn queue(&self, op: &'static str) -> Result<&QueueStack, MapError> {
        match &self.kind {
            Kind::Queue(q) => Ok(q),
            _ => Err(self.unsupported(op)),
        }
    }

    /// `bpf_map_push_elem` (queue/stack): `flags` 0 or `BPF_EXIST` (when full, drop the
    /// oldest value instead of failing with `-E2BIG`).
    pub fn push(&self, value: &[u8], flags: u64) -> Result<(), MapError> {
        let q = self.queue("push")?;
        self.check_prog_write()?;
        q.push(value, flags)
    }

    /// `bpf_map_pop_elem` (queue: oldest, stack: newest) into `out` (`value_size` bytes);
    /// `-ENOENT` when empty.
    pub fn pop_into(&self, out: &mut [u8]) -> Result<(), MapError> {
        let q = self.queue("pop")?;
        self.check_prog_write()?;
        q.take(out, true)
    }

    /// `bpf_map_peek_elem` into `out`; `-ENOENT` when empty.
    pub fn peek_into(&self, out: &mut [u8]) -> Result<(), MapError> {
        self.queue("peek")?.take(out, false)
    }

    /// [`Map::pop_into`] returning the value (allocates).
    pub fn pop(&self) -> Option<Vec<u8>> {
        let mut v = vec![0; self.spec.value_size as usize];
        self.pop_into(&mut v).ok().map(|()| v)
    }

    /// [`Map::peek_into`] returning the value (allocates).
    pub fn peek(&self) -> Option<Vec<u8>> {
        let mut v = vec![0; self.spec.value_size as usize];
        self.peek_into(&mut v).ok().map(|()| v)
    }
}

/// Layout of a plain array map's values ([`Map::array_layout`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArrayLayout {
    /// Address of index 0's value.
    pub base: u64,
    /// Bytes from one value to the next.
    pub stride: u32,
    pub max_entries: u32,
}

/// A program's hold on an `insn_array` ([`Map::bind_insn_array`]): it updates the offsets as
/// the program is rewritten and compiled, and releases the map when dropped.
#[derive(Debug)]
pub struct InsnArrayOwner {
    map: Arc<Map>,
}

impl InsnArrayOwner {
    /// The map.
    pub fn map(&self) -> &Arc<Map> {
        &self.map
    }

    fn array(&self) -> &InsnArray {
        match &self.map.kind {
            Kind::InsnArray(a) => a,
            _ => unreachable!("InsnArrayOwner is only made for insn arrays"),
        }
    }

    /// A rewrite moved instructions: each live `xlated_off` becomes `f(xlated_off)`, or
    /// [`INSN_DELETED`](crate::INSN_DELETED) for `None`.
    pub fn map_xlated(&self, f: &dyn Fn(u32) -> Option<u32>) {
        self.array().map_xlated(f);
    }

    /// The code is final: each live entry gets `jitted_off` and the code address programs
    /// read, from its `xlated_off`. `Err` (`-EFAULT` in the kernel) if a live entry has none.
    pub fn set_code(&self, f: &dyn Fn(u32) -> Option<(u32, u64)>) -> Result<(), MapError> {
        if self.array().set_code(f) {
            Ok(())
        } else {
            Err(MapError::Invalid { reason: "a live insn_array entry has no code address" })
        }
    }
}

impl Drop for InsnArrayOwner {
    fn drop(&mut self) {
        self.array().release();
    }
}
