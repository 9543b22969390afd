//! The interpreter's memory model: guest addresses are host addresses, but every access is
//! checked against the list of regions the current run may touch (its stack frames, and the
//! caller's context, packet, map values or read-only data). An access that is not entirely
//! inside one region, or that writes a read-only region, is refused before any byte is read
//! or written.
//!
//! This module holds the crate's only `unsafe`: turning a checked guest address into a host
//! pointer and reading or writing through it.
#![allow(unsafe_code)]

use std::marker::PhantomData;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// What a region is; used in error messages and by helpers that need to know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegionKind {
    /// The BPF stack of the current call frames.
    Stack,
    /// The program context (`r1` at entry).
    Context,
    /// Packet data.
    Packet,
    /// A map value.
    MapValue,
    /// Read-only data (`.rodata`, strings).
    ReadOnly,
    /// Plain memory given by the caller (the conformance suite's buffer).
    Memory,
}

impl std::fmt::Display for RegionKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RegionKind::Stack => "stack",
            RegionKind::Context => "context",
            RegionKind::Packet => "packet",
            RegionKind::MapValue => "map value",
            RegionKind::ReadOnly => "read-only data",
            RegionKind::Memory => "memory",
        })
    }
}

/// A caller-owned buffer the program may access during one run.
pub struct MemoryRegion<'a> {
    kind: RegionKind,
    base: *mut u8,
    len: usize,
    writable: bool,
    _borrow: PhantomData<&'a mut [u8]>,
}

impl<'a> MemoryRegion<'a> {
    /// A region the program may read and write.
    pub fn writable(kind: RegionKind, data: &'a mut [u8]) -> Self {
        MemoryRegion { kind, base: data.as_mut_ptr(), len: data.len(), writable: true, _borrow: PhantomData }
    }

    /// A region the program may only read.
    pub fn read_only(kind: RegionKind, data: &'a [u8]) -> Self {
        // The pointer is only ever written through when `writable` is true.
        MemoryRegion { kind, base: data.as_ptr().cast_mut(), len: data.len(), writable: false, _borrow: PhantomData }
    }

    /// The guest address of the region's first byte (what the program sees in a register).
    pub fn addr(&self) -> u64 {
        self.base as u64
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the region is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The region's kind.
    pub fn kind(&self) -> RegionKind {
        self.kind
    }

    /// Whether the program may write the region.
    pub fn is_writable(&self) -> bool {
        self.writable
    }

    pub(crate) fn base_ptr(&self) -> *mut u8 {
        self.base
    }
}

/// Zeroes `[base + offset, base + offset + len)` of the VM's stack allocation `[base, base + total)`.
pub(crate) fn zero_stack_frame(base: *mut u8, total: usize, offset: usize, len: usize) {
    assert!(offset <= total && len <= total - offset, "stack frame inside the stack");
    // SAFETY: `base` is the start of the VM's own stack allocation of `total` bytes, which the
    // running `Vm` borrows exclusively; the range is inside it (asserted above). Writing
    // through the same raw pointer the regions use keeps every derived pointer valid.
    unsafe { base.add(offset).write_bytes(0, len) };
}

/// One region as the access check sees it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Region {
    pub(crate) start: u64,
    pub(crate) len: u64,
    pub(crate) base: *mut u8,
    pub(crate) writable: bool,
    pub(crate) kind: RegionKind,
}

impl Region {
    pub(crate) const EMPTY: Region =
        Region { start: 0, len: 0, base: std::ptr::null_mut(), writable: false, kind: RegionKind::Memory };

    #[inline(always)]
    fn offset_of(&self, addr: u64, size: u64) -> Option<usize> {
        let off = addr.wrapping_sub(self.start);
        if off < self.len && self.len - off >= size { Some(off as usize) } else { None }
    }
}

/// Why an access was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    #[error("invalid {} of size {size} at {addr:#x}: {}", if *.write { "write" } else { "read" }, describe_miss(*.addr))]
    OutOfBounds { addr: u64, size: u64, write: bool },
    #[error("invalid write of size {size} at {addr:#x}: {kind} is read-only")]
    ReadOnly { addr: u64, size: u64, kind: RegionKind },
    #[error("misaligned atomic access of size {size} at {addr:#x}")]
    Misaligned { addr: u64, size: u64 },
}

fn describe_miss(addr: u64) -> &'static str {
    if addr < 4096 { "null pointer dereference" } else { "outside every region of this run" }
}

/// Copies of the regions most accesses hit (the stack frames and the first caller region),
/// kept in the interpreter's locals so that the check needs no memory loads of its own.
#[derive(Clone, Copy)]
pub(crate) struct HotRegions {
    pub(crate) stack: Region,
    pub(crate) first: Region,
}

impl HotRegions {
    #[inline(always)]
    fn translate(&self, mem: &MemMap, addr: u64, size: u64, write: bool) -> Result<*mut u8, AccessError> {
        if let Some(off) = self.stack.offset_of(addr, size) {
            return Ok(self.stack.base.wrapping_add(off));
        }
        if let Some(off) = self.first.offset_of(addr, size)
            && (self.first.writable || !write)
        {
            return Ok(self.first.base.wrapping_add(off));
        }
        mem.translate(addr, size, write)
    }

    #[inline(always)]
    pub(crate) fn load<const N: usize>(&self, mem: &MemMap, addr: u64) -> Result<[u8; N], AccessError> {
        let p = self.translate(mem, addr, N as u64, false)?;
        // SAFETY: `translate` returned a pointer derived from a region's base pointer such that
        // `[p, p + N)` lies inside that region; regions are built from live borrows (the VM's
        // own stack, or `MemoryRegion`s whose lifetime covers the run) that are valid for reads.
        // `read_unaligned` has no alignment requirement.
        Ok(unsafe { p.cast::<[u8; N]>().read_unaligned() })
    }

    #[inline(always)]
    pub(crate) fn store<const N: usize>(&self, mem: &MemMap, addr: u64, bytes: [u8; N]) -> Result<(), AccessError> {
        let p = self.translate(mem, addr, N as u64, true)?;
        // SAFETY: as in `load`, `[p, p + N)` is inside one region, and `translate` only returns
        // a pointer for a write when that region was registered writable (from a `&mut`
        // borrow or the VM's own stack). `write_unaligned` has no alignment requirement.
        unsafe { p.cast::<[u8; N]>().write_unaligned(bytes) };
        Ok(())
    }
}

/// The regions of one run. The stack region is kept apart because most accesses hit it.
pub(crate) struct MemMap {
    pub(crate) stack: Region,
    pub(crate) regions: Vec<Region>,
}

impl MemMap {
    pub(crate) fn new() -> Self {
        MemMap { stack: Region::EMPTY, regions: Vec::new() }
    }

    /// Finds the host pointer for `[addr, addr + size)`, or explains why there is none. The
    /// interpreter's fast path ([`HotRegions`]) tries the stack and the first region before
    /// coming here.
    #[cold]
    #[inline(never)]
    pub(crate) fn translate(&self, addr: u64, size: u64, write: bool) -> Result<*mut u8, AccessError> {
        if let Some(off) = self.stack.offset_of(addr, size) {
            return Ok(self.stack.base.wrapping_add(off));
        }
        for r in &self.regions {
            if let Some(off) = r.offset_of(addr, size) {
                if write && !r.writable {
                    return Err(AccessError::ReadOnly { addr, size, kind: r.kind });
                }
                return Ok(r.base.wrapping_add(off));
            }
        }
        Err(AccessError::OutOfBounds { addr, size, write })
    }

    /// The region containing all of `[addr, addr + size)`, if any.
    pub(crate) fn region_of(&self, addr: u64, size: u64) -> Option<&Region> {
        std::iter::once(&self.stack).chain(&self.regions).find(|r| r.offset_of(addr, size).is_some())
    }

    fn aligned(&self, addr: u64, size: u64, write: bool) -> Result<*mut u8, AccessError> {
        if !addr.is_multiple_of(size) {
            return Err(AccessError::Misaligned { addr, size });
        }
        self.translate(addr, size, write)
    }

    /// Atomic access to an aligned 64-bit word; `f` gets the atomic.
    pub(crate) fn atomic64<R>(
        &self,
        addr: u64,
        write: bool,
        f: impl FnOnce(&AtomicU64) -> R,
    ) -> Result<R, AccessError> {
        let p = self.aligned(addr, 8, write)?;
        // SAFETY: `p` is 8-byte aligned (checked above) and `[p, p + 8)` is inside one region
        // valid for reads and, when `write`, for writes. `AtomicU64` has the size and alignment
        // of `u64`; other threads may access the same bytes only through atomics as well.
        Ok(f(unsafe { AtomicU64::from_ptr(p.cast::<u64>()) }))
    }

    /// Atomic access to an aligned 32-bit word.
    pub(crate) fn atomic32<R>(
        &self,
        addr: u64,
        write: bool,
        f: impl FnOnce(&AtomicU32) -> R,
    ) -> Result<R, AccessError> {
        let p = self.aligned(addr, 4, write)?;
        // SAFETY: as in `atomic64`, with 4-byte alignment checked above.
        Ok(f(unsafe { AtomicU32::from_ptr(p.cast::<u32>()) }))
    }

    /// Acquire-load of 1, 2, 4 or 8 aligned bytes, zero-extended.
    pub(crate) fn load_acquire(&self, addr: u64, size: u64) -> Result<u64, AccessError> {
        let p = self.aligned(addr, size, false)?;
        // SAFETY: `p` is aligned to `size` and `[p, p + size)` is inside a readable region.
        // Each atomic type has the size and alignment of the matching integer.
        Ok(unsafe {
            match size {
                1 => u64::from(std::sync::atomic::AtomicU8::from_ptr(p).load(Ordering::Acquire)),
                2 => u64::from(std::sync::atomic::AtomicU16::from_ptr(p.cast()).load(Ordering::Acquire)),
                4 => u64::from(AtomicU32::from_ptr(p.cast()).load(Ordering::Acquire)),
                _ => AtomicU64::from_ptr(p.cast()).load(Ordering::Acquire),
            }
        })
    }

    /// Release-store of the low 1, 2, 4 or 8 bytes of `v` at an aligned address.
    pub(crate) fn store_release(&self, addr: u64, size: u64, v: u64) -> Result<(), AccessError> {
        let p = self.aligned(addr, size, true)?;
        // SAFETY: `p` is aligned to `size` and `[p, p + size)` is inside a writable region.
        unsafe {
            match size {
                1 => std::sync::atomic::AtomicU8::from_ptr(p).store(v as u8, Ordering::Release),
                2 => std::sync::atomic::AtomicU16::from_ptr(p.cast()).store(v as u16, Ordering::Release),
                4 => AtomicU32::from_ptr(p.cast()).store(v as u32, Ordering::Release),
                _ => AtomicU64::from_ptr(p.cast()).store(v, Ordering::Release),
            }
        }
        Ok(())
    }

    /// Borrows `[addr, addr + len)` for a helper.
    pub(crate) fn slice(&self, addr: u64, len: usize) -> Result<&[u8], AccessError> {
        if len == 0 {
            return Ok(&[]);
        }
        let p = self.translate(addr, len as u64, false)?;
        // SAFETY: `[p, p + len)` is inside one readable region that outlives this borrow of
        // `self` (regions are cleared only when the run ends, which needs `&mut self`).
        Ok(unsafe { std::slice::from_raw_parts(p, len) })
    }

    /// Mutably borrows `[addr, addr + len)` for a helper.
    pub(crate) fn slice_mut(&mut self, addr: u64, len: usize) -> Result<&mut [u8], AccessError> {
        if len == 0 {
            return Ok(&mut []);
        }
        let p = self.translate(addr, len as u64, true)?;
        // SAFETY: `[p, p + len)` is inside one writable region; the `&mut self` borrow keeps
        // the interpreter from touching guest memory while the helper holds the slice.
        Ok(unsafe { std::slice::from_raw_parts_mut(p, len) })
    }
}
