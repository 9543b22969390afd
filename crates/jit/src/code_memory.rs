//! W^X code memory.
//!
//! # Layout
//!
//! A [`CodeMemory`] is one anonymous shared memory object (`memfd_create`, size rounded up to whole pages)
//! mapped twice with `MAP_SHARED`:
//!
//! * the **executable view**, `PROT_READ | PROT_EXEC`: the only address code is ever run from, and never
//!   writable;
//! * the **writable view**, `PROT_READ | PROT_WRITE`: never executable, used only to write the code and to
//!   patch it.
//!
//! No page is ever writable and executable at once, and no `mprotect` flip is needed to patch. The file
//! descriptor is closed as soon as both views exist (the mappings keep the object alive), so nothing else can
//! map it later. The bytes after the end of the code, up to the page boundary, are `int3` (0xCC).
//!
//! # Publish protocol
//!
//! 1. Create the object and both views.
//! 2. Copy the code into the writable view and fill the tail with `int3`.
//! 3. Issue a release fence, so that the code bytes are ordered before anything that publishes the
//!    `CodeMemory` (or its [`exec_ptr`](CodeMemory::exec_ptr)) to another thread; the thread that receives it
//!    must obtain it through a synchronising operation (channel, `Arc` + spawn, mutex, acquire load), which
//!    pairs with that fence.
//! 4. Issue the process-wide core-serialising barrier (see [`crate::patch`]) so that no core can execute stale
//!    instructions that were fetched from an earlier mapping at the same virtual address.
//! 5. Only then is [`exec_ptr`](CodeMemory::exec_ptr) handed out. After publication the code changes only
//!    through [`CodeMemory::patch`].
//!
//! # Free protocol
//!
//! Dropping a `CodeMemory` unmaps both views. The memory may only be dropped when **no thread can be executing
//! it or can still call into it**: no thread is inside the code, and no function pointer derived from
//! [`exec_ptr`](CodeMemory::exec_ptr) will be called again. Rust cannot see calls through such raw pointers, so
//! this is the responsibility of the **owner** of the `CodeMemory` (the JIT's program object, which must keep
//! the code memory alive for as long as any caller may run the program, e.g. by holding it in an `Arc` that
//! every running invocation clones). Executing freed code is the owner's bug, not something this type can
//! prevent; calling into the code at all is `unsafe` for exactly this reason.

use std::os::fd::{FromRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering, fence};
use std::sync::{Mutex, PoisonError};

use crate::JitError;
use crate::patch::{self, PatchSites, SITE_LEN, SiteState};

/// Filler for the unused tail of the last page: `int3`.
const INT3: u8 = 0xCC;

fn last_errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn syscall_error(syscall: &'static str) -> JitError {
    JitError::Syscall { syscall, errno: last_errno() }
}

/// One mapping of the code object; unmapped on drop.
#[derive(Debug)]
struct View {
    ptr: NonNull<u8>,
    len: usize,
}

impl View {
    fn map(fd: &OwnedFd, len: usize, prot: libc::c_int) -> Result<View, JitError> {
        use std::os::fd::AsRawFd;
        // SAFETY: a fresh mapping chosen by the kernel (null hint, no MAP_FIXED) cannot alias any existing Rust
        // object; `fd` is a valid open descriptor of an object at least `len` bytes long.
        let ptr = unsafe { libc::mmap(std::ptr::null_mut(), len, prot, libc::MAP_SHARED, fd.as_raw_fd(), 0) };
        if ptr == libc::MAP_FAILED {
            return Err(syscall_error("mmap"));
        }
        let ptr = NonNull::new(ptr.cast::<u8>()).ok_or(JitError::Syscall { syscall: "mmap", errno: libc::EINVAL })?;
        Ok(View { ptr, len })
    }
}

impl Drop for View {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` describe a mapping created by `View::map` and owned exclusively by this value; the
        // owner of the enclosing `CodeMemory` guarantees no thread executes or references it any more.
        let ret = unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
        debug_assert_eq!(ret, 0, "munmap of a JIT code view failed");
    }
}

/// Machine code in W^X memory with atomically patchable sites. See the [module documentation](self).
#[derive(Debug)]
pub struct CodeMemory {
    exec: View,
    rw: View,
    code_len: usize,
    sites: PatchSites,
    patch_lock: Mutex<()>,
}

// SAFETY: `CodeMemory` owns its two mappings outright (no thread-local state); the raw pointers are only
// dereferenced by `&mut self` methods, by methods that hold `patch_lock`, or through `AtomicU64` stores, so sharing
// or sending it between threads cannot cause a data race.
unsafe impl Send for CodeMemory {}
// SAFETY: see `Send`; every `&self` method that reads or writes the code does so under `patch_lock`, the writes
// being single atomic stores.
unsafe impl Sync for CodeMemory {}

impl CodeMemory {
    /// Code memory holding `code`, without patch sites.
    pub fn new(code: &[u8]) -> Result<CodeMemory, JitError> {
        Self::with_sites(code, PatchSites::new())
    }

    /// Code memory holding `code`, whose patch sites are `sites` (as recorded by
    /// [`PatchSites::emit_site`]). Every site is validated: aligned, inside the code, a valid encoding and a
    /// valid jump target.
    pub fn with_sites(code: &[u8], sites: PatchSites) -> Result<CodeMemory, JitError> {
        if code.len() > i32::MAX as usize {
            return Err(JitError::CodeTooLarge { len: code.len() });
        }
        sites.validate(code)?;
        // Register for the barrier before anything is published, so publication and patching cannot fail later
        // for lack of it.
        patch::barrier_mode()?;

        // SAFETY: sysconf has no memory-safety preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        let page = usize::try_from(page).ok().filter(|&p| p > 0).ok_or_else(|| syscall_error("sysconf"))?;
        let mapped_len = code.len().max(1).div_ceil(page) * page;

        // SAFETY: the name is a valid NUL-terminated string; memfd_create touches no other user memory.
        let fd = unsafe { libc::memfd_create(c"bpfkit-jit".as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(syscall_error("memfd_create"));
        }
        // SAFETY: `fd` was just returned by memfd_create, is open and owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let size = libc::off_t::try_from(mapped_len).map_err(|_| JitError::CodeTooLarge { len: code.len() })?;
        // SAFETY: plain syscall on a descriptor we own.
        if unsafe { libc::ftruncate(std::os::fd::AsRawFd::as_raw_fd(&fd), size) } != 0 {
            return Err(syscall_error("ftruncate"));
        }
        let rw = View::map(&fd, mapped_len, libc::PROT_READ | libc::PROT_WRITE)?;
        let exec = View::map(&fd, mapped_len, libc::PROT_READ | libc::PROT_EXEC)?;
        drop(fd);

        // SAFETY: `rw` is a fresh, writable mapping of `mapped_len >= code.len()` bytes that nothing else
        // references yet (the exec view is not published), so a unique mutable slice over it is sound.
        let view = unsafe { std::slice::from_raw_parts_mut(rw.ptr.as_ptr(), mapped_len) };
        view[..code.len()].copy_from_slice(code);
        view[code.len()..].fill(INT3);
        fence(Ordering::Release);
        patch::serialize_all_cores()?;

        Ok(CodeMemory { exec, rw, code_len: code.len(), sites, patch_lock: Mutex::new(()) })
    }

    /// Address of the executable view: the only address the code may be run from. Offsets of the code (entry
    /// points, jump targets) are relative to it.
    pub fn exec_ptr(&self) -> *const u8 {
        self.exec.ptr.as_ptr()
    }

    /// Address of the writable view, for diagnostics and tests only (never dereference it outside this crate).
    #[doc(hidden)]
    pub fn write_view_addr(&self) -> usize {
        self.rw.ptr.as_ptr() as usize
    }

    /// Length of the code in bytes (without the `int3` tail).
    pub fn len(&self) -> usize {
        self.code_len
    }

    /// Whether the code is empty.
    pub fn is_empty(&self) -> bool {
        self.code_len == 0
    }

    /// Length of each view in bytes (the code length rounded up to whole pages).
    pub fn mapped_len(&self) -> usize {
        self.exec.len
    }

    /// The patch sites of this code.
    pub fn sites(&self) -> &PatchSites {
        &self.sites
    }

    /// The code, read through the executable view. Takes `&mut self` so that no patch can modify the bytes
    /// while the slice is alive; use [`snapshot`](Self::snapshot) from shared references.
    pub fn as_slice(&mut self) -> &[u8] {
        // SAFETY: the exec view is readable and at least `code_len` bytes long; `&mut self` excludes every
        // `patch` (the only writer) for the lifetime of the returned slice.
        unsafe { std::slice::from_raw_parts(self.exec.ptr.as_ptr(), self.code_len) }
    }

    /// A copy of the code, read through the executable view while holding the patch lock.
    pub fn snapshot(&self) -> Vec<u8> {
        let _guard = self.patch_lock.lock().unwrap_or_else(PoisonError::into_inner);
        // SAFETY: as in `as_slice`; holding `patch_lock` excludes every writer while the copy is made.
        unsafe { std::slice::from_raw_parts(self.exec.ptr.as_ptr(), self.code_len) }.to_vec()
    }

    /// Current state of the site at `site_offset`.
    pub fn site_state(&self, site_offset: usize) -> Result<SiteState, JitError> {
        if !self.sites.contains(site_offset) {
            return Err(JitError::NotASite { offset: site_offset });
        }
        let _guard = self.patch_lock.lock().unwrap_or_else(PoisonError::into_inner);
        let mut bytes = [0u8; SITE_LEN];
        // SAFETY: the site lies within the code (validated at construction); the lock excludes writers.
        bytes.copy_from_slice(unsafe { std::slice::from_raw_parts(self.exec.ptr.as_ptr().add(site_offset), SITE_LEN) });
        patch::decode(site_offset, bytes).ok_or(JitError::InvalidSite { offset: site_offset, reason: "corrupted" })
    }

    /// Switches the site at `site_offset` to `new`, atomically with respect to threads running the code, and
    /// returns after the core-serialising barrier: from then on every call on any thread sees `new`. See the
    /// protocol in [`crate::patch`]. Errors if `site_offset` is not a recorded site or the target is invalid;
    /// the code is then unchanged.
    pub fn patch(&self, site_offset: usize, new: SiteState) -> Result<(), JitError> {
        self.patch_many(&[(site_offset, new)])
    }

    /// [`CodeMemory::patch`] of several sites with one barrier at the end: each site changes
    /// atomically, one after another, and when this returns every call on any thread sees every
    /// new state. Every site and target is checked before any is written (all or nothing).
    pub fn patch_many(&self, changes: &[(usize, SiteState)]) -> Result<(), JitError> {
        let mut encoded = Vec::with_capacity(changes.len());
        for &(site_offset, new) in changes {
            if !self.sites.contains(site_offset) {
                return Err(JitError::NotASite { offset: site_offset });
            }
            if let SiteState::Jump { target_offset } = new {
                self.sites.check_target(site_offset, target_offset, self.code_len)?;
            }
            encoded.push((site_offset, patch::encode(site_offset, new)?));
        }
        patch::barrier_mode()?;
        let _guard = self.patch_lock.lock().unwrap_or_else(PoisonError::into_inner);
        for (site_offset, bytes) in encoded {
            self.store_site(site_offset, bytes);
        }
        patch::serialize_all_cores()
    }

    /// One site's atomic 8-byte store (caller holds `patch_lock`).
    fn store_site(&self, site_offset: usize, bytes: [u8; patch::SITE_LEN]) {
        debug_assert!(site_offset.is_multiple_of(patch::SITE_ALIGN) && site_offset + 8 <= self.rw.len);
        // SAFETY: recorded sites are 8-byte aligned offsets with `site + 5 <= code_len` (checked in
        // `with_sites`), and `mapped_len` is a multiple of the page size, hence of 8, so `site + 8 <= mapped_len`;
        // the view is page aligned, so the pointer is 8-byte aligned and valid for reads and writes of 8 bytes for
        // as long as `self` lives. Rust code only accesses these bytes atomically here or non-atomically under
        // `patch_lock` / `&mut self`, so there is no data race; instruction fetch is not a Rust access.
        let word = unsafe { AtomicU64::from_ptr(self.rw.ptr.as_ptr().add(site_offset).cast::<u64>()) };
        let old = word.load(Ordering::Relaxed);
        word.store(patch::merge_site_word(old, bytes), Ordering::Release);
    }
}
