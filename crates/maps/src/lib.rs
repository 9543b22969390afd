//! bpfkit's BPF maps: the kernel's map types with the kernel's semantics (create-time
//! validation, flags, errno values, iteration order), safe for concurrent use by programs on
//! many threads and by the host.
//!
//! - [`Map::create`] takes a [`MapSpec`] (the `BPF_MAP_CREATE` attributes) and the number of
//!   CPUs (per-CPU maps keep one value per CPU).
//! - Host operations are the `bpf()` map commands: [`Map::lookup`], [`Map::update`],
//!   [`Map::delete`], [`Map::get_next_key`], [`Map::lookup_and_delete`], [`Map::freeze`], the
//!   batch operations, and [`Map::entries`] for dumps. Errors are [`MapError`]s with the
//!   kernel's errno ([`MapError::errno`]).
//! - BPF-side operations are what helpers call, without allocating: [`Map::bpf_lookup`]
//!   returns a raw pointer to the value storage (the program reads and writes it in place),
//!   [`Map::bpf_update`], [`Map::bpf_delete`], queue/stack [`Map::push`] / [`Map::pop_into`] /
//!   [`Map::peek_into`], ring buffer [`RingBuf`] operations, tail call targets
//!   ([`Map::bpf_tail_call_target`]) and inner maps ([`Map::bpf_lookup_inner`]).
//! - [`Map::value_regions`] lists the memory value pointers can point into, for the
//!   interpreter's bounds checks; it never moves or shrinks while the map exists.
//!
//! Concurrency (bpfkit decision D7): maps are safe for concurrent use by programs on many
//! threads and by the host; updates are atomic per element; a value pointer a program holds
//! stays valid (and keeps its element's data) until its invocation ends; nothing is freed
//! under a reader. The runtime holds a [`Guard`] from [`pin`] around each program
//! invocation; see [`epoch`] for the protocol.
#![deny(unsafe_code)]

mod array;
pub mod epoch;
mod error;
mod fd_array;
mod hash;
mod insn_array;
mod lpm;
mod map;
mod queue;
mod ringbuf;
mod spec;
mod storage;

pub use epoch::{Guard, is_pinned, pin};
pub use error::{MapError, errno};
pub use fd_array::{ChangeHook, ProgEntry};
pub use insn_array::INSN_DELETED;
pub use map::{ArrayLayout, Batch, BatchCursor, Entry, InsnArrayOwner, LookupFlags, Map, ValueRegion};
pub use ringbuf::RingBuf;
pub use spec::{MapSpec, MapType};

/// Flag values of the `bpf()` interface (the kernel's UAPI numbers).
pub mod flags {
    /// Update: create or replace.
    pub const BPF_ANY: u64 = 0;
    /// Update: create only (`-EEXIST` if the key exists; arrays always fail).
    pub const BPF_NOEXIST: u64 = 1;
    /// Update: replace only (`-ENOENT` if missing); push: overwrite the oldest when full.
    pub const BPF_EXIST: u64 = 2;
    /// Update/lookup: use the value's `bpf_spin_lock` (bpfkit maps have none: `-EINVAL`).
    pub const BPF_F_LOCK: u64 = 4;

    /// Map flag: do not preallocate (bpfkit always preallocates; required by LPM tries).
    pub const BPF_F_NO_PREALLOC: u32 = 1 << 0;
    /// Map flag: per-CPU LRU lists (accepted; bpfkit uses one list, see the LRU notes).
    pub const BPF_F_NO_COMMON_LRU: u32 = 1 << 1;
    /// Map flag: a NUMA node is given (accepted and ignored).
    pub const BPF_F_NUMA_NODE: u32 = 1 << 2;
    /// Map flag: the host may only read.
    pub const BPF_F_RDONLY: u32 = 1 << 3;
    /// Map flag: the host may only write.
    pub const BPF_F_WRONLY: u32 = 1 << 4;
    /// Map flag: stack trace maps store build ids.
    pub const BPF_F_STACK_BUILD_ID: u32 = 1 << 5;
    /// Map flag: hash with seed 0 (for tests; deterministic bucket order).
    pub const BPF_F_ZERO_SEED: u32 = 1 << 6;
    /// Map flag: programs may only read.
    pub const BPF_F_RDONLY_PROG: u32 = 1 << 7;
    /// Map flag: programs may only write.
    pub const BPF_F_WRONLY_PROG: u32 = 1 << 8;
    /// Map flag: clone local storage.
    pub const BPF_F_CLONE: u32 = 1 << 9;
    /// `map_extra` of an instruction array that is a static key (bpfkit-decisions D3).
    pub const BPF_F_STATIC_KEY: u64 = 1 << 0;
    /// With `BPF_F_STATIC_KEY`: the key starts on (`DEFINE_STATIC_KEY_TRUE`).
    pub const BPF_F_STATIC_KEY_ON: u64 = 1 << 1;
    /// Map flag: the array may be mmap()ed (accepted for arrays).
    pub const BPF_F_MMAPABLE: u32 = 1 << 10;
    /// Map flag: perf event arrays keep their elements.
    pub const BPF_F_PRESERVE_ELEMS: u32 = 1 << 11;
    /// Map flag: an inner array map whose max_entries may differ from the template's.
    pub const BPF_F_INNER_MAP: u32 = 1 << 12;
    /// Map flag: struct_ops link.
    pub const BPF_F_LINK: u32 = 1 << 13;
    /// Map flag: path given as fd.
    pub const BPF_F_PATH_FD: u32 = 1 << 14;
    /// Map flag: vtype BTF object fd.
    pub const BPF_F_VTYPE_BTF_OBJ_FD: u32 = 1 << 15;
    /// Map flag: BPF token fd.
    pub const BPF_F_TOKEN_FD: u32 = 1 << 16;
    /// Map flag: arena faults raise SIGSEGV.
    pub const BPF_F_SEGV_ON_FAULT: u32 = 1 << 17;
    /// Map flag: no user-space address conversion (arena).
    pub const BPF_F_NO_USER_CONV: u32 = 1 << 18;

    /// Ring buffer submit/output: do not wake the consumer.
    pub const BPF_RB_NO_WAKEUP: u64 = 1 << 0;
    /// Ring buffer submit/output: always wake the consumer.
    pub const BPF_RB_FORCE_WAKEUP: u64 = 1 << 1;
    /// `bpf_ringbuf_query`: bytes produced and not yet consumed.
    pub const BPF_RB_AVAIL_DATA: u64 = 0;
    /// `bpf_ringbuf_query`: data area size.
    pub const BPF_RB_RING_SIZE: u64 = 1;
    /// `bpf_ringbuf_query`: consumer position.
    pub const BPF_RB_CONS_POS: u64 = 2;
    /// `bpf_ringbuf_query`: producer position.
    pub const BPF_RB_PROD_POS: u64 = 3;
    /// Ring buffer record header: the record is reserved but not committed.
    pub const BPF_RINGBUF_BUSY_BIT: u32 = 1 << 31;
    /// Ring buffer record header: the record was discarded.
    pub const BPF_RINGBUF_DISCARD_BIT: u32 = 1 << 30;
    /// Ring buffer record header size.
    pub const BPF_RINGBUF_HDR_SZ: u64 = 8;
}
