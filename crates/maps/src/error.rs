//! [`MapError`]: every way a map operation can fail, with the Linux errno the kernel returns
//! for the same case ([`MapError::errno`]).

use crate::spec::MapType;

/// Linux errno values (x86-64 / generic numbering) used by [`MapError::errno`].
pub mod errno {
    /// Operation not permitted.
    pub const EPERM: i32 = 1;
    /// No such file or directory (no such element).
    pub const ENOENT: i32 = 2;
    /// Argument list too long (map full, index out of range, definition too big).
    pub const E2BIG: i32 = 7;
    /// Try again.
    pub const EAGAIN: i32 = 11;
    /// Out of memory.
    pub const ENOMEM: i32 = 12;
    /// Device or resource busy.
    pub const EBUSY: i32 = 16;
    /// File exists (element exists).
    pub const EEXIST: i32 = 17;
    /// Invalid argument.
    pub const EINVAL: i32 = 22;
    /// No space left on device.
    pub const ENOSPC: i32 = 28;
    /// The kernel-internal "operation not supported" (`ENOTSUPP`, not `EOPNOTSUPP`), which
    /// the `bpf()` syscall leaks to user space for unsupported map operations.
    pub const ENOTSUPP: i32 = 524;
}

/// Why a map operation failed. [`MapError::errno`] gives the negative errno the kernel's
/// `bpf()` syscall or BPF helper returns in the same situation.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MapError {
    /// The kernel knows this map type but bpfkit does not implement it yet (`-EINVAL`).
    #[error("map type {map_type} is not supported yet")]
    Unsupported { map_type: MapType },
    /// Not a map type number of the kernel's `enum bpf_map_type` (`-EINVAL`).
    #[error("unknown map type number {number}")]
    UnknownType { number: u32 },
    /// The map definition is invalid: sizes, flags, missing inner map template... (`-EINVAL`).
    #[error("invalid {map_type} map definition: {reason}")]
    InvalidSpec { map_type: MapType, reason: String },
    /// The map definition asks for too big a key, value or map (`-E2BIG`).
    #[error("{map_type} map definition too big: {reason}")]
    SpecTooBig { map_type: MapType, reason: String },
    /// The kernel does not support this combination either (`-ENOTSUPP`, 524).
    #[error("{what} is not supported")]
    NotSupported { what: String },
    /// This operation does not exist for this map type (`-ENOTSUPP`, 524, like the kernel's
    /// missing map op; queue/stack `delete` and `get_next_key` are `-EINVAL` instead, see
    /// [`MapError::Invalid`]).
    #[error("{op} is not supported on {map_type} maps")]
    OpNotSupported { op: &'static str, map_type: MapType },
    /// No element for this key, empty queue/stack, or end of iteration (`-ENOENT`).
    #[error("no such element")]
    NotFound,
    /// `BPF_NOEXIST` and the key exists (arrays: always with `BPF_NOEXIST`) (`-EEXIST`).
    #[error("element already exists")]
    Exists,
    /// The map holds `max_entries` elements and this one is new (`-E2BIG`).
    #[error("map is full ({max_entries} entries)")]
    Full { max_entries: u32 },
    /// An array index at or beyond `max_entries` on update (`-E2BIG`).
    #[error("index {index} is out of range (max_entries {max_entries})")]
    OutOfRange { index: u32, max_entries: u32 },
    /// Bad flags or arguments (`-EINVAL`).
    #[error("invalid argument: {reason}")]
    Invalid { reason: &'static str },
    /// A key or value buffer of the wrong length (`-EINVAL`).
    #[error("{what} has {got} bytes, expected {expected}")]
    BadSize { what: &'static str, expected: usize, got: usize },
    /// Host write to a frozen map (`-EPERM`).
    #[error("map is frozen")]
    Frozen,
    /// Access the map's flags forbid (`BPF_F_RDONLY`, `BPF_F_WRONLY`, `BPF_F_RDONLY_PROG`)
    /// (`-EPERM`).
    #[error("permission denied: {reason}")]
    Permission { reason: &'static str },
    /// The resource is busy (`-EBUSY`).
    #[error("map is busy: {reason}")]
    Busy { reason: &'static str },
    /// LPM trie full, or a batch whose first bucket does not fit the count (`-ENOSPC`).
    #[error("no space left: {reason}")]
    NoSpace { reason: &'static str },
    /// No spare element storage: every spare element waits for readers still pinned
    /// (see [`crate::epoch`]) or the map could not be allocated (`-ENOMEM`).
    #[error("out of memory: {reason}")]
    NoMemory { reason: &'static str },
    /// The ring buffer has no room for the record (`bpf_ringbuf_output`: `-EAGAIN`).
    #[error("try again: {reason}")]
    Again { reason: &'static str },
    /// A batch operation stopped at its `done`-th element (the ones before it were applied).
    /// The errno is the inner error's.
    #[error("batch operation stopped after {done} element(s): {source}")]
    Batch { done: usize, source: Box<MapError> },
}

impl MapError {
    /// The negative Linux errno the kernel returns in this case.
    pub fn errno(&self) -> i32 {
        use errno::*;
        -match self {
            MapError::Unsupported { .. }
            | MapError::UnknownType { .. }
            | MapError::InvalidSpec { .. }
            | MapError::Invalid { .. }
            | MapError::BadSize { .. } => EINVAL,
            MapError::SpecTooBig { .. } | MapError::Full { .. } | MapError::OutOfRange { .. } => E2BIG,
            MapError::NotSupported { .. } | MapError::OpNotSupported { .. } => ENOTSUPP,
            MapError::NotFound => ENOENT,
            MapError::Exists => EEXIST,
            MapError::Frozen | MapError::Permission { .. } => EPERM,
            MapError::Busy { .. } => EBUSY,
            MapError::NoSpace { .. } => ENOSPC,
            MapError::NoMemory { .. } => ENOMEM,
            MapError::Again { .. } => EAGAIN,
            MapError::Batch { source, .. } => return source.errno(),
        }
    }
}
