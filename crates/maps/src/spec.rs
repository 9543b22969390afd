//! Map types ([`MapType`], the kernel's `enum bpf_map_type`), map definitions ([`MapSpec`])
//! and their create-time validation, which follows the kernel's checks (same conditions, same
//! errno) for the types bpfkit implements.

use std::fmt;

use crate::error::MapError;
use crate::flags::*;

macro_rules! map_types {
    ($($(#[$doc:meta])* $variant:ident = $num:literal, $name:literal;)*) => {
        /// A map type: the kernel's `enum bpf_map_type`, complete up to `BPF_MAP_TYPE_INSN_ARRAY`.
        /// [`MapType::is_supported`] tells which ones bpfkit implements; creating any other
        /// fails with [`MapError::Unsupported`].
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u32)]
        pub enum MapType {
            $($(#[$doc])* $variant = $num,)*
        }

        impl MapType {
            /// Every map type, in kernel number order.
            pub const ALL: &'static [MapType] = &[$(MapType::$variant,)*];

            /// The type for a kernel map type number, if there is one.
            pub fn from_u32(number: u32) -> Option<MapType> {
                match number {
                    $($num => Some(MapType::$variant),)*
                    _ => None,
                }
            }

            /// The name as libbpf spells it (`"hash"`, `"lru_percpu_hash"`, `"insn_array"`...).
            pub fn name(self) -> &'static str {
                match self {
                    $(MapType::$variant => $name,)*
                }
            }

            /// The type for a libbpf name.
            pub fn from_name(name: &str) -> Option<MapType> {
                match name {
                    $($name => Some(MapType::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

map_types! {
    /// `BPF_MAP_TYPE_UNSPEC` (never valid).
    Unspec = 0, "unspec";
    /// `BPF_MAP_TYPE_HASH`.
    Hash = 1, "hash";
    /// `BPF_MAP_TYPE_ARRAY`.
    Array = 2, "array";
    /// `BPF_MAP_TYPE_PROG_ARRAY` (tail call targets).
    ProgArray = 3, "prog_array";
    /// `BPF_MAP_TYPE_PERF_EVENT_ARRAY`.
    PerfEventArray = 4, "perf_event_array";
    /// `BPF_MAP_TYPE_PERCPU_HASH`.
    PercpuHash = 5, "percpu_hash";
    /// `BPF_MAP_TYPE_PERCPU_ARRAY`.
    PercpuArray = 6, "percpu_array";
    /// `BPF_MAP_TYPE_STACK_TRACE`.
    StackTrace = 7, "stack_trace";
    /// `BPF_MAP_TYPE_CGROUP_ARRAY`.
    CgroupArray = 8, "cgroup_array";
    /// `BPF_MAP_TYPE_LRU_HASH`.
    LruHash = 9, "lru_hash";
    /// `BPF_MAP_TYPE_LRU_PERCPU_HASH`.
    LruPercpuHash = 10, "lru_percpu_hash";
    /// `BPF_MAP_TYPE_LPM_TRIE`.
    LpmTrie = 11, "lpm_trie";
    /// `BPF_MAP_TYPE_ARRAY_OF_MAPS`.
    ArrayOfMaps = 12, "array_of_maps";
    /// `BPF_MAP_TYPE_HASH_OF_MAPS`.
    HashOfMaps = 13, "hash_of_maps";
    /// `BPF_MAP_TYPE_DEVMAP`.
    Devmap = 14, "devmap";
    /// `BPF_MAP_TYPE_SOCKMAP`.
    Sockmap = 15, "sockmap";
    /// `BPF_MAP_TYPE_CPUMAP`.
    Cpumap = 16, "cpumap";
    /// `BPF_MAP_TYPE_XSKMAP`.
    Xskmap = 17, "xskmap";
    /// `BPF_MAP_TYPE_SOCKHASH`.
    Sockhash = 18, "sockhash";
    /// `BPF_MAP_TYPE_CGROUP_STORAGE` (a.k.a. `CGROUP_STORAGE_DEPRECATED`).
    CgroupStorage = 19, "cgroup_storage";
    /// `BPF_MAP_TYPE_REUSEPORT_SOCKARRAY`.
    ReuseportSockarray = 20, "reuseport_sockarray";
    /// `BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE`.
    PercpuCgroupStorage = 21, "percpu_cgroup_storage";
    /// `BPF_MAP_TYPE_QUEUE`.
    Queue = 22, "queue";
    /// `BPF_MAP_TYPE_STACK`.
    Stack = 23, "stack";
    /// `BPF_MAP_TYPE_SK_STORAGE`.
    SkStorage = 24, "sk_storage";
    /// `BPF_MAP_TYPE_DEVMAP_HASH`.
    DevmapHash = 25, "devmap_hash";
    /// `BPF_MAP_TYPE_STRUCT_OPS`.
    StructOps = 26, "struct_ops";
    /// `BPF_MAP_TYPE_RINGBUF`.
    Ringbuf = 27, "ringbuf";
    /// `BPF_MAP_TYPE_INODE_STORAGE`.
    InodeStorage = 28, "inode_storage";
    /// `BPF_MAP_TYPE_TASK_STORAGE`.
    TaskStorage = 29, "task_storage";
    /// `BPF_MAP_TYPE_BLOOM_FILTER`.
    BloomFilter = 30, "bloom_filter";
    /// `BPF_MAP_TYPE_USER_RINGBUF`.
    UserRingbuf = 31, "user_ringbuf";
    /// `BPF_MAP_TYPE_CGRP_STORAGE`.
    CgrpStorage = 32, "cgrp_storage";
    /// `BPF_MAP_TYPE_ARENA`.
    Arena = 33, "arena";
    /// `BPF_MAP_TYPE_INSN_ARRAY`.
    InsnArray = 34, "insn_array";
}

impl MapType {
    /// The kernel's number for this type.
    pub fn number(self) -> u32 {
        self as u32
    }

    /// Whether bpfkit implements this map type.
    pub fn is_supported(self) -> bool {
        matches!(
            self,
            MapType::Hash
                | MapType::Array
                | MapType::ProgArray
                | MapType::PercpuHash
                | MapType::PercpuArray
                | MapType::LruHash
                | MapType::LruPercpuHash
                | MapType::InsnArray
                | MapType::LpmTrie
                | MapType::ArrayOfMaps
                | MapType::HashOfMaps
                | MapType::Queue
                | MapType::Stack
                | MapType::Ringbuf
        )
    }

    /// Per-CPU value maps (`percpu_hash`, `percpu_array`, `lru_percpu_hash`).
    pub fn is_percpu(self) -> bool {
        matches!(self, MapType::PercpuHash | MapType::PercpuArray | MapType::LruPercpuHash)
    }

    /// Map-in-map types (`array_of_maps`, `hash_of_maps`).
    pub fn is_map_in_map(self) -> bool {
        matches!(self, MapType::ArrayOfMaps | MapType::HashOfMaps)
    }

    /// The hash table family (`hash`, `percpu_hash`, `lru_hash`, `lru_percpu_hash`,
    /// `hash_of_maps`).
    pub fn is_hash(self) -> bool {
        matches!(
            self,
            MapType::Hash | MapType::PercpuHash | MapType::LruHash | MapType::LruPercpuHash | MapType::HashOfMaps
        )
    }

    /// `lru_hash` and `lru_percpu_hash`.
    pub fn is_lru(self) -> bool {
        matches!(self, MapType::LruHash | MapType::LruPercpuHash)
    }
}

impl fmt::Display for MapType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A map definition: what `BPF_MAP_CREATE` takes (the inner map is a template definition
/// instead of the kernel's `inner_map_fd`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapSpec {
    /// The map's name: at most 15 characters out of `[A-Za-z0-9_.]` (kernel rule), may be
    /// empty.
    pub name: String,
    /// The map type.
    pub map_type: MapType,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes (per CPU for per-CPU maps).
    pub value_size: u32,
    /// Maximum number of elements; for `ringbuf`, the data size in bytes.
    pub max_entries: u32,
    /// `BPF_F_*` map flags ([`crate::flags`]).
    pub flags: u32,
    /// `map_extra` (only bloom filters and arenas use it; must be 0 otherwise).
    pub map_extra: u64,
    /// The inner map template of a map-in-map (required for `array_of_maps` and
    /// `hash_of_maps`, forbidden otherwise).
    pub inner: Option<Box<MapSpec>>,
}

impl MapSpec {
    /// A definition with no name, no flags and no inner map.
    pub fn new(map_type: MapType, key_size: u32, value_size: u32, max_entries: u32) -> MapSpec {
        MapSpec {
            name: String::new(),
            map_type,
            key_size,
            value_size,
            max_entries,
            flags: 0,
            map_extra: 0,
            inner: None,
        }
    }

    /// Sets the map flags.
    pub fn with_flags(mut self, flags: u32) -> MapSpec {
        self.flags = flags;
        self
    }

    /// Sets the name.
    pub fn with_name(mut self, name: impl Into<String>) -> MapSpec {
        self.name = name.into();
        self
    }

    /// Sets the inner map template.
    pub fn with_inner(mut self, inner: MapSpec) -> MapSpec {
        self.inner = Some(Box::new(inner));
        self
    }
}

/// The kernel's `KMALLOC_MAX_SIZE` on x86-64 (4 MiB): bound on key + value sizes.
pub(crate) const KMALLOC_MAX_SIZE: u64 = 4 << 20;
/// The kernel's `PCPU_MIN_UNIT_SIZE`: bound on a per-CPU value.
pub(crate) const PCPU_MIN_UNIT_SIZE: u64 = 32 << 10;
/// Page size assumed for ring buffer sizes.
pub(crate) const PAGE_SIZE: u32 = 4096;
/// LPM trie: most data bytes in a key (after the 4-byte prefix length).
pub(crate) const LPM_DATA_SIZE_MAX: u32 = 256;

const ACCESS_MASK: u32 = BPF_F_RDONLY | BPF_F_WRONLY | BPF_F_RDONLY_PROG | BPF_F_WRONLY_PROG;
const HTAB_CREATE_FLAG_MASK: u32 =
    BPF_F_NO_PREALLOC | BPF_F_NO_COMMON_LRU | BPF_F_NUMA_NODE | ACCESS_MASK | BPF_F_ZERO_SEED;
const ARRAY_CREATE_FLAG_MASK: u32 =
    BPF_F_NUMA_NODE | BPF_F_MMAPABLE | ACCESS_MASK | BPF_F_PRESERVE_ELEMS | BPF_F_INNER_MAP;
const LPM_CREATE_FLAG_MASK: u32 = BPF_F_NO_PREALLOC | BPF_F_NUMA_NODE | ACCESS_MASK;
const QUEUE_STACK_CREATE_FLAG_MASK: u32 = BPF_F_NUMA_NODE | ACCESS_MASK;
const RINGBUF_CREATE_FLAG_MASK: u32 = BPF_F_NUMA_NODE;

fn invalid(spec: &MapSpec, reason: impl Into<String>) -> MapError {
    MapError::InvalidSpec { map_type: spec.map_type, reason: reason.into() }
}

fn too_big(spec: &MapSpec, reason: impl Into<String>) -> MapError {
    MapError::SpecTooBig { map_type: spec.map_type, reason: reason.into() }
}

/// `RDONLY_PROG` and `WRONLY_PROG` together make no sense (the kernel's
/// `bpf_map_flags_access_ok`).
fn access_ok(flags: u32) -> bool {
    flags & (BPF_F_RDONLY_PROG | BPF_F_WRONLY_PROG) != (BPF_F_RDONLY_PROG | BPF_F_WRONLY_PROG)
}

fn check_mask(spec: &MapSpec, mask: u32) -> Result<(), MapError> {
    let extra = spec.flags & !mask;
    if extra != 0 {
        return Err(invalid(spec, format!("flags {extra:#x} are not allowed for this map type")));
    }
    if !access_ok(spec.flags) {
        return Err(invalid(spec, "BPF_F_RDONLY_PROG and BPF_F_WRONLY_PROG together"));
    }
    Ok(())
}

fn check_max_entries(spec: &MapSpec) -> Result<(), MapError> {
    if spec.max_entries == 0 { Err(invalid(spec, "max_entries must not be 0")) } else { Ok(()) }
}

/// Checks a definition the way `BPF_MAP_CREATE` does for its type. `ncpus` must be > 0.
pub(crate) fn validate(spec: &MapSpec, ncpus: usize) -> Result<(), MapError> {
    if ncpus == 0 {
        return Err(invalid(spec, "the number of CPUs must not be 0"));
    }
    if !matches!(spec.map_type, MapType::BloomFilter | MapType::Arena | MapType::InsnArray) && spec.map_extra != 0 {
        return Err(invalid(spec, "map_extra must be 0 for this map type"));
    }
    if spec.flags & BPF_F_RDONLY != 0 && spec.flags & BPF_F_WRONLY != 0 {
        return Err(invalid(spec, "BPF_F_RDONLY and BPF_F_WRONLY together"));
    }
    if spec.map_type == MapType::Unspec {
        return Err(invalid(spec, "map type 0 (unspec)"));
    }
    if !spec.map_type.is_supported() {
        return Err(MapError::Unsupported { map_type: spec.map_type });
    }
    if spec.name.len() >= 16 {
        return Err(invalid(spec, format!("name {:?} is longer than 15 bytes", spec.name)));
    }
    if let Some(c) = spec.name.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '.')) {
        return Err(invalid(spec, format!("name {:?} has the character {c:?} (allowed: A-Z a-z 0-9 _ .)", spec.name)));
    }
    if spec.inner.is_some() != spec.map_type.is_map_in_map() {
        return Err(if spec.map_type.is_map_in_map() {
            invalid(spec, "a map-in-map needs an inner map template")
        } else {
            invalid(spec, "only array_of_maps and hash_of_maps take an inner map")
        });
    }
    match spec.map_type {
        MapType::Array | MapType::PercpuArray | MapType::ProgArray | MapType::ArrayOfMaps => validate_array(spec)?,
        MapType::Hash | MapType::PercpuHash | MapType::LruHash | MapType::LruPercpuHash | MapType::HashOfMaps => {
            validate_hash(spec)?
        }
        MapType::LpmTrie => validate_lpm(spec)?,
        MapType::Queue | MapType::Stack => validate_queue_stack(spec)?,
        MapType::Ringbuf => validate_ringbuf(spec)?,
        MapType::InsnArray => validate_insn_array(spec)?,
        _ => return Err(MapError::Unsupported { map_type: spec.map_type }),
    }
    if let Some(inner) = &spec.inner {
        if inner.map_type.is_map_in_map() {
            return Err(invalid(spec, "the inner map cannot itself be a map-in-map"));
        }
        validate(inner, ncpus).map_err(|e| invalid(spec, format!("inner map template: {e}")))?;
    }
    Ok(())
}

/// kernel-spec §2.2: key 4, value 16 (`struct bpf_insn_array_value`), max_entries > 0, no flags.
fn validate_insn_array(spec: &MapSpec) -> Result<(), MapError> {
    if spec.key_size != 4 {
        return Err(invalid(spec, format!("key_size must be 4, not {}", spec.key_size)));
    }
    if spec.value_size != 16 {
        return Err(invalid(
            spec,
            format!("value_size must be 16 (struct bpf_insn_array_value), not {}", spec.value_size),
        ));
    }
    check_max_entries(spec)?;
    if spec.flags != 0 {
        return Err(invalid(spec, format!("map_flags must be 0, not {:#x}", spec.flags)));
    }
    // A static key (bpfkit-decisions D3): BPF_F_STATIC_KEY, optionally BPF_F_STATIC_KEY_ON.
    let known = crate::flags::BPF_F_STATIC_KEY | crate::flags::BPF_F_STATIC_KEY_ON;
    if spec.map_extra & !known != 0
        || spec.map_extra & crate::flags::BPF_F_STATIC_KEY_ON != 0
            && spec.map_extra & crate::flags::BPF_F_STATIC_KEY == 0
    {
        return Err(invalid(
            spec,
            format!(
                "map_extra must be 0, BPF_F_STATIC_KEY or BPF_F_STATIC_KEY|BPF_F_STATIC_KEY_ON, not {:#x}",
                spec.map_extra
            ),
        ));
    }
    Ok(())
}

fn validate_array(spec: &MapSpec) -> Result<(), MapError> {
    let fd_array = matches!(spec.map_type, MapType::ProgArray | MapType::ArrayOfMaps);
    if fd_array && spec.value_size != 4 {
        return Err(invalid(spec, format!("value_size must be 4 (a program or map handle), not {}", spec.value_size)));
    }
    check_max_entries(spec)?;
    if spec.key_size != 4 {
        return Err(invalid(spec, format!("key_size must be 4, not {}", spec.key_size)));
    }
    if spec.value_size == 0 {
        return Err(invalid(spec, "value_size must not be 0"));
    }
    check_mask(spec, ARRAY_CREATE_FLAG_MASK)?;
    if spec.map_type == MapType::PercpuArray && spec.flags & BPF_F_NUMA_NODE != 0 {
        return Err(invalid(spec, "per-CPU maps take no NUMA node"));
    }
    if spec.map_type != MapType::Array && spec.flags & (BPF_F_MMAPABLE | BPF_F_INNER_MAP) != 0 {
        return Err(invalid(spec, "BPF_F_MMAPABLE and BPF_F_INNER_MAP are for plain arrays only"));
    }
    if spec.flags & BPF_F_PRESERVE_ELEMS != 0 {
        return Err(invalid(spec, "BPF_F_PRESERVE_ELEMS is for perf event arrays only"));
    }
    if spec.value_size > i32::MAX as u32 {
        return Err(too_big(spec, format!("value_size {}", spec.value_size)));
    }
    if spec.map_type == MapType::PercpuArray && u64::from(spec.value_size).next_multiple_of(8) > PCPU_MIN_UNIT_SIZE {
        return Err(too_big(spec, format!("per-CPU value_size {} is over {PCPU_MIN_UNIT_SIZE}", spec.value_size)));
    }
    Ok(())
}

fn validate_hash(spec: &MapSpec) -> Result<(), MapError> {
    let lru = spec.map_type.is_lru();
    if spec.map_type == MapType::HashOfMaps && spec.value_size != 4 {
        return Err(invalid(spec, format!("value_size must be 4 (a map handle), not {}", spec.value_size)));
    }
    check_mask(spec, HTAB_CREATE_FLAG_MASK)?;
    if !lru && spec.flags & BPF_F_NO_COMMON_LRU != 0 {
        return Err(invalid(spec, "BPF_F_NO_COMMON_LRU is for LRU maps only"));
    }
    if lru && spec.flags & BPF_F_NO_PREALLOC != 0 {
        return Err(MapError::NotSupported { what: format!("{} with BPF_F_NO_PREALLOC", spec.map_type) });
    }
    if spec.flags & BPF_F_NUMA_NODE != 0 && (spec.map_type.is_percpu() || spec.flags & BPF_F_NO_COMMON_LRU != 0) {
        return Err(invalid(spec, "per-CPU maps and per-CPU LRU lists take no NUMA node"));
    }
    check_max_entries(spec)?;
    if spec.key_size == 0 {
        return Err(invalid(spec, "key_size must not be 0"));
    }
    if spec.value_size == 0 {
        return Err(invalid(spec, "value_size must not be 0"));
    }
    // The kernel's bound is KMALLOC_MAX_SIZE minus its element header; bpfkit uses 64 bytes
    // for the header.
    if u64::from(spec.key_size) + u64::from(spec.value_size) >= KMALLOC_MAX_SIZE - 64 {
        return Err(too_big(spec, format!("key_size {} + value_size {}", spec.key_size, spec.value_size)));
    }
    if spec.map_type.is_percpu() && u64::from(spec.value_size).next_multiple_of(8) > PCPU_MIN_UNIT_SIZE {
        return Err(too_big(spec, format!("per-CPU value_size {} is over {PCPU_MIN_UNIT_SIZE}", spec.value_size)));
    }
    if spec.max_entries > 1 << 31 {
        return Err(too_big(spec, format!("max_entries {} is over 2^31", spec.max_entries)));
    }
    Ok(())
}

fn validate_lpm(spec: &MapSpec) -> Result<(), MapError> {
    check_max_entries(spec)?;
    if spec.flags & BPF_F_NO_PREALLOC == 0 {
        return Err(invalid(spec, "LPM tries need BPF_F_NO_PREALLOC"));
    }
    check_mask(spec, LPM_CREATE_FLAG_MASK)?;
    if spec.key_size < 4 + 1 || spec.key_size > 4 + LPM_DATA_SIZE_MAX {
        return Err(invalid(
            spec,
            format!("key_size {} must be 4 (prefix length) + 1..={LPM_DATA_SIZE_MAX} data bytes", spec.key_size),
        ));
    }
    let max_value = KMALLOC_MAX_SIZE - u64::from(LPM_DATA_SIZE_MAX) - 64;
    if spec.value_size == 0 || u64::from(spec.value_size) > max_value {
        return Err(invalid(spec, format!("value_size {} must be 1..={max_value}", spec.value_size)));
    }
    Ok(())
}

fn validate_queue_stack(spec: &MapSpec) -> Result<(), MapError> {
    check_max_entries(spec)?;
    if spec.key_size != 0 {
        return Err(invalid(spec, format!("key_size must be 0, not {}", spec.key_size)));
    }
    if spec.value_size == 0 {
        return Err(invalid(spec, "value_size must not be 0"));
    }
    check_mask(spec, QUEUE_STACK_CREATE_FLAG_MASK)?;
    if u64::from(spec.value_size) > KMALLOC_MAX_SIZE {
        return Err(too_big(spec, format!("value_size {}", spec.value_size)));
    }
    Ok(())
}

fn validate_ringbuf(spec: &MapSpec) -> Result<(), MapError> {
    check_mask(spec, RINGBUF_CREATE_FLAG_MASK)?;
    if spec.key_size != 0 || spec.value_size != 0 {
        return Err(invalid(spec, "key_size and value_size must be 0"));
    }
    if !spec.max_entries.is_power_of_two() || !spec.max_entries.is_multiple_of(PAGE_SIZE) {
        return Err(invalid(
            spec,
            format!(
                "max_entries (the data size) {} must be a power of 2 and a multiple of {PAGE_SIZE}",
                spec.max_entries
            ),
        ));
    }
    Ok(())
}

/// The kernel's `bpf_map_meta_equal` (plus the arrays' `max_entries` rule): whether `inner`
/// may be stored in a map-in-map whose template is `template`.
pub(crate) fn inner_matches(template: &MapSpec, inner: &MapSpec) -> bool {
    if template.map_type != inner.map_type
        || template.key_size != inner.key_size
        || template.value_size != inner.value_size
        || template.flags != inner.flags
    {
        return false;
    }
    match template.map_type {
        MapType::Array | MapType::PercpuArray => {
            template.flags & BPF_F_INNER_MAP != 0 || template.max_entries == inner.max_entries
        }
        _ => true,
    }
}
