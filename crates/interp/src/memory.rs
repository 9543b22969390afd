//! The interpreter's memory model: guest addresses are host addresses, but every access is
//! checked against the regions the current run may touch (its stack frames, and the caller's
//! packet, map values or read-only data). An access that is not entirely inside one region,
//! or that writes a read-only region, is refused before any byte is read or written.
//!
//! A region is a *window* inside an *allocation*: helpers such as `bpf_xdp_adjust_head` move
//! the window (what the program may touch) within the allocation (what exists), never beyond.
//!
//! The program context is special: like the kernel, which rewrites context accesses to the
//! real layout (`convert_ctx_access`), the interpreter translates each access to the context
//! through a table of [`CtxField`]s into a *shadow* buffer that holds the real values (full
//! 64-bit pointers for `data`/`data_end`). Accesses that match no field are refused.
//!
//! This module holds the crate's `unsafe`: turning a checked guest address into a host
//! pointer and reading or writing through it.
#![allow(unsafe_code)]

use std::marker::PhantomData;
use std::sync::atomic::{AtomicU8, AtomicU16, AtomicU32, AtomicU64, Ordering};

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

/// One field of a program context: where the program sees it and where its value lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CtxField {
    /// Offset in the context struct as the program sees it (`offsetof(struct xdp_md, data)`).
    pub off: u32,
    /// Size of the field as the program sees it.
    pub size: u8,
    /// Offset of the value in the shadow buffer.
    pub shadow_off: u32,
    /// Size of the value in the shadow buffer (8 for pointers the program sees as `__u32`).
    pub shadow_size: u8,
    /// Whether the program may write the field.
    pub writable: bool,
    /// Whether loads narrower than the field (at any offset inside it) are allowed.
    pub narrow: bool,
}

/// A caller-owned buffer the program may access during one run.
pub struct MemoryRegion<'a> {
    kind: RegionKind,
    base: *mut u8,
    len: usize,
    window: (usize, usize),
    writable: bool,
    ctx: Option<(&'static [CtxField], u32)>,
    _borrow: PhantomData<&'a mut [u8]>,
}

impl<'a> MemoryRegion<'a> {
    /// A region the program may read and write.
    pub fn writable(kind: RegionKind, data: &'a mut [u8]) -> Self {
        let len = data.len();
        MemoryRegion {
            kind,
            base: data.as_mut_ptr(),
            len,
            window: (0, len),
            writable: true,
            ctx: None,
            _borrow: PhantomData,
        }
    }

    /// A region the program may only read.
    pub fn read_only(kind: RegionKind, data: &'a [u8]) -> Self {
        let len = data.len();
        // The pointer is only ever written through when `writable` is true.
        MemoryRegion {
            kind,
            base: data.as_ptr().cast_mut(),
            len,
            window: (0, len),
            writable: false,
            ctx: None,
            _borrow: PhantomData,
        }
    }

    /// The program context: the program sees a struct of `visible_size` bytes at the address
    /// of `shadow`, and each access is translated through `fields` into `shadow`.
    pub fn context(shadow: &'a mut [u8], fields: &'static [CtxField], visible_size: u32) -> Self {
        let mut r = MemoryRegion::writable(RegionKind::Context, shadow);
        r.ctx = Some((fields, visible_size));
        r
    }

    /// Restricts the accessible part to `[offset, offset + len)` of the buffer (e.g. the
    /// packet between its headroom and tailroom). Returns `None` if that is not inside it.
    pub fn with_window(mut self, offset: usize, len: usize) -> Option<Self> {
        (offset.checked_add(len)? <= self.len).then(|| {
            self.window = (offset, len);
            self
        })
    }

    /// The guest address of the first accessible byte (what the program sees in a register).
    pub fn addr(&self) -> u64 {
        self.base as u64 + self.window.0 as u64
    }

    /// The guest address of the whole buffer's first byte.
    pub fn alloc_addr(&self) -> u64 {
        self.base as u64
    }

    /// Accessible length in bytes.
    pub fn len(&self) -> usize {
        self.window.1
    }

    /// Whether nothing is accessible.
    pub fn is_empty(&self) -> bool {
        self.window.1 == 0
    }

    /// The region's kind.
    pub fn kind(&self) -> RegionKind {
        self.kind
    }

    /// Whether the program may write the region.
    pub fn is_writable(&self) -> bool {
        self.writable
    }

    pub(crate) fn to_region(&self) -> Region {
        Region {
            start: self.addr(),
            len: self.window.1 as u64,
            base: self.base.wrapping_add(self.window.0),
            writable: self.writable,
            kind: self.kind,
            alloc_start: self.base as u64,
            alloc_len: self.len as u64,
            alloc_base: self.base,
        }
    }

    pub(crate) fn ctx(&self) -> Option<CtxRegion> {
        self.ctx.map(|(fields, visible)| CtxRegion {
            start: self.base as u64,
            visible: u64::from(visible),
            shadow: self.base,
            shadow_len: self.len,
            fields,
        })
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

/// One region as the access check sees it: the window `[start, start + len)` at host pointer
/// `base`, inside the allocation `[alloc_start, alloc_start + alloc_len)` at `alloc_base`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Region {
    pub(crate) start: u64,
    pub(crate) len: u64,
    pub(crate) base: *mut u8,
    pub(crate) writable: bool,
    pub(crate) kind: RegionKind,
    pub(crate) alloc_start: u64,
    pub(crate) alloc_len: u64,
    pub(crate) alloc_base: *mut u8,
}

impl Region {
    pub(crate) const EMPTY: Region = Region {
        start: 0,
        len: 0,
        base: std::ptr::null_mut(),
        writable: false,
        kind: RegionKind::Memory,
        alloc_start: 0,
        alloc_len: 0,
        alloc_base: std::ptr::null_mut(),
    };

    #[inline(always)]
    fn offset_of(&self, addr: u64, size: u64) -> Option<usize> {
        let off = addr.wrapping_sub(self.start);
        if off < self.len && self.len - off >= size { Some(off as usize) } else { None }
    }

    /// Moves the window to `[alloc_start + offset, ... + len)`; false if outside the allocation.
    pub(crate) fn set_window(&mut self, offset: u64, len: u64) -> bool {
        if offset.checked_add(len).is_none_or(|end| end > self.alloc_len) {
            return false;
        }
        self.start = self.alloc_start + offset;
        self.len = len;
        self.base = self.alloc_base.wrapping_add(offset as usize);
        true
    }
}

/// The context of a run: the program-visible struct and its translation table.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CtxRegion {
    pub(crate) start: u64,
    pub(crate) visible: u64,
    pub(crate) shadow: *mut u8,
    pub(crate) shadow_len: usize,
    pub(crate) fields: &'static [CtxField],
}

impl CtxRegion {
    /// The field an access of `size` bytes at context offset `off` goes to, and the byte
    /// offset inside the field.
    fn field(&self, off: u64, size: u64, write: bool) -> Option<(&CtxField, u64)> {
        self.fields.iter().find_map(|f| {
            let start = u64::from(f.off);
            let fsize = u64::from(f.size);
            if off < start || off + size > start + fsize {
                return None;
            }
            let inner = off - start;
            let exact = inner == 0 && size == fsize;
            // Narrow writes only inside writable fields stored as is (`cb[]`), aligned to their size.
            let narrow = f.narrow && f.shadow_size == f.size;
            let ok =
                if write { f.writable && (exact || narrow && inner.is_multiple_of(size)) } else { exact || narrow };
            let in_shadow =
                (f.shadow_off as usize).checked_add(usize::from(f.shadow_size)).is_some_and(|e| e <= self.shadow_len);
            (ok && in_shadow).then_some((f, inner))
        })
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
    #[error("invalid bpf_context access off={off} size={size}{}", if *.write { " (write)" } else { "" })]
    Context { off: u64, size: u64, write: bool },
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
    /// Loads `N` bytes at `addr`, zero-extended; a context field yields its translated value.
    #[inline(always)]
    pub(crate) fn load<const N: usize>(&self, mem: &MemMap, addr: u64) -> Result<u64, AccessError> {
        let p = if let Some(off) = self.stack.offset_of(addr, N as u64) {
            self.stack.base.wrapping_add(off)
        } else if let Some(off) = self.first.offset_of(addr, N as u64) {
            self.first.base.wrapping_add(off)
        } else {
            return mem.load_slow(addr, N as u64);
        };
        // SAFETY: `[p, p + N)` lies inside a region (checked just above); regions are built
        // from live borrows (the VM's own stack, or `MemoryRegion`s whose lifetime covers the
        // run) that are valid for reads. `read_unaligned` has no alignment requirement.
        Ok(widen(unsafe { p.cast::<[u8; N]>().read_unaligned() }))
    }

    /// Stores the low `N` bytes of `value` at `addr`.
    #[inline(always)]
    pub(crate) fn store<const N: usize>(&self, mem: &MemMap, addr: u64, value: u64) -> Result<(), AccessError> {
        let p = if let Some(off) = self.stack.offset_of(addr, N as u64) {
            self.stack.base.wrapping_add(off)
        } else if let Some(off) = self.first.offset_of(addr, N as u64)
            && self.first.writable
        {
            self.first.base.wrapping_add(off)
        } else {
            return mem.store_slow(addr, N as u64, value);
        };
        let bytes: [u8; N] = value.to_le_bytes()[..N].try_into().expect("N <= 8");
        // SAFETY: `[p, p + N)` lies inside a writable region (the stack, or a region registered
        // writable from a `&mut` borrow). `write_unaligned` has no alignment requirement.
        unsafe { p.cast::<[u8; N]>().write_unaligned(bytes) };
        Ok(())
    }
}

#[inline(always)]
fn widen<const N: usize>(b: [u8; N]) -> u64 {
    let mut w = [0u8; 8];
    w[..N].copy_from_slice(&b);
    u64::from_le_bytes(w)
}

/// The regions of one run. The stack region is kept apart because most accesses hit it.
pub(crate) struct MemMap {
    pub(crate) stack: Region,
    pub(crate) regions: Vec<Region>,
    pub(crate) ctx: Option<CtxRegion>,
}

impl MemMap {
    pub(crate) fn new() -> Self {
        MemMap { stack: Region::EMPTY, regions: Vec::new(), ctx: None }
    }

    /// Finds the host pointer for `[addr, addr + size)` in a plain region, or explains why
    /// there is none. The context is not a plain region.
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
        if let Some(c) = &self.ctx
            && addr.wrapping_sub(c.start) < c.visible
        {
            return Err(AccessError::Context { off: addr - c.start, size, write });
        }
        Err(AccessError::OutOfBounds { addr, size, write })
    }

    fn ctx_access(&self, addr: u64, size: u64, write: bool) -> Option<(*mut u8, &CtxField, u64)> {
        let c = self.ctx.as_ref()?;
        let off = addr.wrapping_sub(c.start);
        if off >= c.visible || c.visible - off < size {
            return None;
        }
        let (f, inner) = c.field(off, size, write)?;
        Some((c.shadow.wrapping_add(f.shadow_off as usize), f, inner))
    }

    /// Loads `size` (1, 2, 4 or 8) bytes at `addr` from a plain region, zero-extended.
    pub(crate) fn load_plain(&self, addr: u64, size: u64) -> Result<u64, AccessError> {
        let p = self.translate(addr, size, false)?;
        let mut w = [0u8; 8];
        // SAFETY: `translate` checked `[p, p + size)` is inside a readable region; size <= 8.
        unsafe { std::ptr::copy_nonoverlapping(p, w.as_mut_ptr(), size.min(8) as usize) };
        Ok(u64::from_le_bytes(w))
    }

    #[cold]
    #[inline(never)]
    fn load_slow(&self, addr: u64, size: u64) -> Result<u64, AccessError> {
        if let Some((p, f, inner)) = self.ctx_access(addr, size, false) {
            let mut w = [0u8; 8];
            let n = usize::from(f.shadow_size).min(8);
            // SAFETY: `field` checked that `[shadow_off, shadow_off + shadow_size)` is inside the
            // shadow buffer, a live borrow for the run.
            unsafe { std::ptr::copy_nonoverlapping(p, w.as_mut_ptr(), n) };
            let v = u64::from_le_bytes(w);
            return Ok(if inner == 0 && size == u64::from(f.size) {
                v
            } else {
                let shifted = v >> (inner * 8);
                if size >= 8 { shifted } else { shifted & ((1u64 << (size * 8)) - 1) }
            });
        }
        let p = self.translate(addr, size, false)?;
        let mut w = [0u8; 8];
        // SAFETY: `translate` checked `[p, p + size)` is inside a readable region; size <= 8.
        unsafe { std::ptr::copy_nonoverlapping(p, w.as_mut_ptr(), size as usize) };
        Ok(u64::from_le_bytes(w))
    }

    #[cold]
    #[inline(never)]
    fn store_slow(&self, addr: u64, size: u64, value: u64) -> Result<(), AccessError> {
        let (p, n) = match self.ctx_access(addr, size, true) {
            Some((p, f, _)) => (p, usize::from(f.shadow_size).min(8)),
            None => (self.translate(addr, size, true)?, size as usize),
        };
        let bytes = value.to_le_bytes();
        // SAFETY: `[p, p + n)` is inside a writable region or a writable context field of the
        // shadow buffer (both checked above); n <= 8.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), p, n) };
        Ok(())
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
                1 => u64::from(AtomicU8::from_ptr(p).load(Ordering::Acquire)),
                2 => u64::from(AtomicU16::from_ptr(p.cast()).load(Ordering::Acquire)),
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
                1 => AtomicU8::from_ptr(p).store(v as u8, Ordering::Release),
                2 => AtomicU16::from_ptr(p.cast()).store(v as u16, Ordering::Release),
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

    /// The context's shadow buffer, for helpers that update it (e.g. after moving `data`).
    pub(crate) fn ctx_shadow_mut(&mut self) -> Option<&mut [u8]> {
        let c = self.ctx.as_ref()?;
        // SAFETY: the shadow is a live, exclusively borrowed buffer of `shadow_len` bytes for the
        // whole run (`MemoryRegion::context` took `&mut`); `&mut self` keeps the interpreter
        // from reading it while the helper holds the slice.
        Some(unsafe { std::slice::from_raw_parts_mut(c.shadow, c.shadow_len) })
    }

    /// Every byte of the allocation of the first region of `kind` (window ignored), for
    /// helpers that move data within a packet buffer.
    pub(crate) fn alloc_mut(&mut self, kind: RegionKind) -> Option<(u64, &mut [u8])> {
        let r = self.regions.iter().find(|r| r.kind == kind && r.writable)?;
        // SAFETY: the allocation is a live `&mut` borrow of `alloc_len` bytes for the run
        // (`MemoryRegion::writable`); `&mut self` keeps the interpreter out while the helper
        // holds the slice.
        Some((r.alloc_start, unsafe { std::slice::from_raw_parts_mut(r.alloc_base, r.alloc_len as usize) }))
    }
}
