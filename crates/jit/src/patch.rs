//! Patch sites: 5-byte instructions that are switched between `jmp rel32` and a 5-byte NOP (or between two
//! jump targets) while other threads may be executing the code.
//!
//! # Site layout
//!
//! A site is a single 5-byte instruction, either `E9 rel32` (`jmp` to an offset in the same [`CodeMemory`]) or
//! the 5-byte NOP `0F 1F 44 00 00` (`nop dword [rax+rax*1+0]`). [`PatchSites::emit_site`] first pads the buffer
//! with one multi-byte NOP (0 to 7 bytes) so that the site starts at an offset that is a multiple of 8, then
//! emits the site and records its offset. Code memory is page aligned, so an offset that is a multiple of 8 is
//! an address that is a multiple of 8. The *site word* is the aligned 8-byte word `[site, site + 8)`: the 5
//! bytes of the site plus the first 3 bytes of whatever follows it (other instructions, or the `int3` fill
//! after the end of the code). Because 64 is a multiple of 8, an aligned 8-byte word never straddles a 64-byte
//! cache line.
//!
//! # Patch protocol ([`CodeMemory::patch`])
//!
//! 1. Check that the offset is a recorded site (otherwise [`JitError::NotASite`]) and that a jump target lies
//!    inside the code and not inside any site; compute the 5 new bytes (`rel32 = target - (site + 5)`).
//! 2. Make sure a core-serialising barrier is available ([`barrier_mode`]) *before* touching the code, so that
//!    a failure leaves the code unchanged.
//! 3. Take the code memory's patch mutex: patchers are serialised, so the read-modify-write of step 4 cannot
//!    lose another patcher's update, and the 3 trailing bytes (which only patchers ever write, and which they
//!    always write back unchanged) are stable.
//! 4. Load the site word through the writable view, replace its low 5 bytes (little endian) with the new instruction
//!    and write the whole word back with **one aligned 8-byte atomic store** (`AtomicU64` on the writable view). An
//!    aligned 8-byte store that does not cross a cache line is a single, indivisible memory access on x86-64 (Intel SDM
//!    Vol. 3A, "Guaranteed Atomic Operations", §8.1.1 or §9.1.1 depending on the edition; a store that crossed a line
//!    could be observed in two halves, which is why the word must stay inside one line). The executable view maps the
//!    same physical page, and x86 keeps instruction fetch coherent with stores by physical address, so a thread
//!    fetching the site decodes either the complete old instruction or the complete new one, never a mix. The old and
//!    the new instruction have the same length and start at the same address, so instruction boundaries after the site
//!    are unchanged, and the 3 trailing bytes are rewritten with their own value. This relies on D5's premise that on
//!    x86-64 an executing core observes an aligned, single-line 8-byte store of a whole instruction atomically; the
//!    SDM's strictly architectural alternative is a three-step `int3` protocol (write `int3`, serialise, write the
//!    tail, serialise, write the first byte, serialise), which can replace step 4 without changing this API.
//! 5. Issue a core-serialising barrier: `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE)`. When it returns,
//!    every thread of this process has executed a core-serialising instruction (or will execute one before it next runs
//!    user code), so no core can still run a stale, previously fetched or decoded copy of the site. This is the
//!    "serialise the executing processors" step that the SDM's cross-modifying-code guidance (Vol. 3A, "Handling Self-
//!    and Cross-Modifying Code") requires; after `patch` returns, *every* call on *any* thread executes the new
//!    instruction. Between step 4 and the end of step 5 a thread may still observe either instruction, which is fine
//!    because each of them is complete and valid.
//! 6. Release the mutex.
//!
//! The process registers for the barrier once (first use, [`barrier_mode`]):
//! `MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE` if the kernel supports it ([`BarrierMode::SyncCore`]).
//! Otherwise it falls back to `MEMBARRIER_CMD_PRIVATE_EXPEDITED` ([`BarrierMode::PrivateExpedited`]): that sends
//! an IPI to every CPU currently running a thread of the process, and on x86-64 returning from the interrupt
//! (`iret`) is serialising; threads that are not running at that moment pass through the kernel before running
//! again. This is weaker on paper (the kernel only promises a memory barrier) and is therefore recorded and
//! reported. If neither is available, patching fails with a `membarrier` [`JitError::Syscall`] and the code is
//! not modified. No `sched_yield`-style heuristics are used.
//!
//! [`CodeMemory`]: crate::CodeMemory
//! [`CodeMemory::patch`]: crate::CodeMemory::patch

use std::collections::BTreeSet;
use std::sync::OnceLock;

use crate::JitError;

/// Length of a patch site in bytes.
pub const SITE_LEN: usize = 5;
/// Alignment of a patch site (and of its site word) in bytes.
pub const SITE_ALIGN: usize = 8;
/// The 5-byte NOP used for a site in the [`SiteState::Nop`] state.
pub const NOP5: [u8; SITE_LEN] = [0x0F, 0x1F, 0x44, 0x00, 0x00];
/// Opcode of `jmp rel32`.
const JMP_REL32: u8 = 0xE9;

/// Recommended single-instruction NOPs of length 0..=7, used to pad up to a site.
const PAD_NOPS: [&[u8]; SITE_ALIGN] = [
    &[],
    &[0x90],
    &[0x66, 0x90],
    &[0x0F, 0x1F, 0x00],
    &[0x0F, 0x1F, 0x40, 0x00],
    &[0x0F, 0x1F, 0x44, 0x00, 0x00],
    &[0x66, 0x0F, 0x1F, 0x44, 0x00, 0x00],
    &[0x0F, 0x1F, 0x80, 0x00, 0x00, 0x00, 0x00],
];

/// What a patch site currently does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SiteState {
    /// Fall through to the instruction after the site.
    Nop,
    /// Jump to `target_offset`, an offset in the same code memory.
    Jump {
        /// Destination, as an offset from the start of the code.
        target_offset: usize,
    },
}

/// Handle of an emitted patch site: its offset in the code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SiteId(usize);

impl SiteId {
    /// Offset of the site from the start of the code.
    pub fn offset(self) -> usize {
        self.0
    }
}

/// The table of patch sites of one piece of code, filled while emitting and handed to
/// [`CodeMemory::with_sites`](crate::CodeMemory::with_sites).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PatchSites {
    offsets: BTreeSet<usize>,
}

impl PatchSites {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Pads `buf` with a NOP to the next multiple of [`SITE_ALIGN`], appends a site in state `initial` and
    /// records it. A jump target may be an offset that has not been emitted yet; it is validated when the code
    /// memory is created.
    pub fn emit_site(&mut self, buf: &mut Vec<u8>, initial: SiteState) -> Result<SiteId, JitError> {
        let pad = buf.len().next_multiple_of(SITE_ALIGN) - buf.len();
        let site_offset = buf.len() + pad;
        let bytes = encode(site_offset, initial)?;
        buf.extend_from_slice(PAD_NOPS[pad]);
        buf.extend_from_slice(&bytes);
        self.offsets.insert(site_offset);
        Ok(SiteId(site_offset))
    }

    /// Whether `offset` is a recorded site.
    pub fn contains(&self, offset: usize) -> bool {
        self.offsets.contains(&offset)
    }

    /// The recorded site offsets, ascending.
    pub fn iter(&self) -> impl Iterator<Item = SiteId> + '_ {
        self.offsets.iter().copied().map(SiteId)
    }

    /// Number of recorded sites.
    pub fn len(&self) -> usize {
        self.offsets.len()
    }

    /// Whether no site is recorded.
    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }

    /// Whether `target` points strictly inside some recorded site (not at its first byte).
    pub(crate) fn target_inside_a_site(&self, target: usize) -> bool {
        self.offsets.range(..target).next_back().is_some_and(|&site| target < site + SITE_LEN)
    }

    /// Checks that every site is aligned, lies within `code`, encodes a valid state and jumps to a valid
    /// target.
    pub(crate) fn validate(&self, code: &[u8]) -> Result<(), JitError> {
        for &offset in &self.offsets {
            if !offset.is_multiple_of(SITE_ALIGN) {
                return Err(JitError::InvalidSite { offset, reason: "not 8-byte aligned" });
            }
            let Some(bytes) = code.get(offset..offset + SITE_LEN) else {
                return Err(JitError::InvalidSite { offset, reason: "extends past the end of the code" });
            };
            let bytes: [u8; SITE_LEN] = bytes.try_into().expect("slice of SITE_LEN bytes");
            match decode(offset, bytes) {
                None => return Err(JitError::InvalidSite { offset, reason: "neither a 5-byte nop nor jmp rel32" }),
                Some(SiteState::Nop) => {}
                Some(SiteState::Jump { target_offset }) => self.check_target(offset, target_offset, code.len())?,
            }
        }
        Ok(())
    }

    /// Checks a jump target for the site at `site_offset` in code of `code_len` bytes.
    pub(crate) fn check_target(
        &self,
        site_offset: usize,
        target_offset: usize,
        code_len: usize,
    ) -> Result<(), JitError> {
        let reason = if target_offset >= code_len {
            "outside the code"
        } else if self.target_inside_a_site(target_offset) {
            "inside a patch site"
        } else {
            return Ok(());
        };
        Err(JitError::InvalidTarget { site_offset, target_offset, reason })
    }
}

/// The 5 bytes of a site at `site_offset` in state `state`.
pub fn encode(site_offset: usize, state: SiteState) -> Result<[u8; SITE_LEN], JitError> {
    match state {
        SiteState::Nop => Ok(NOP5),
        SiteState::Jump { target_offset } => {
            let rel = i64::try_from(target_offset)
                .ok()
                .zip(i64::try_from(site_offset + SITE_LEN).ok())
                .and_then(|(t, next)| i32::try_from(t - next).ok())
                .ok_or(JitError::InvalidTarget { site_offset, target_offset, reason: "out of rel32 range" })?;
            let r = rel.to_le_bytes();
            Ok([JMP_REL32, r[0], r[1], r[2], r[3]])
        }
    }
}

/// Decodes the 5 bytes of a site at `site_offset`; `None` if they are neither the 5-byte NOP nor a `jmp rel32`
/// to a non-negative offset.
pub fn decode(site_offset: usize, bytes: [u8; SITE_LEN]) -> Option<SiteState> {
    if bytes == NOP5 {
        return Some(SiteState::Nop);
    }
    if bytes[0] != JMP_REL32 {
        return None;
    }
    let rel = i32::from_le_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
    let target = i64::try_from(site_offset + SITE_LEN).ok()? + i64::from(rel);
    usize::try_from(target).ok().map(|target_offset| SiteState::Jump { target_offset })
}

/// Replaces the low [`SITE_LEN`] bytes (in memory order, little endian) of the site word `old` with `site`,
/// keeping the 3 bytes that follow the site.
pub(crate) fn merge_site_word(old: u64, site: [u8; SITE_LEN]) -> u64 {
    let mut word = old.to_le_bytes();
    word[..SITE_LEN].copy_from_slice(&site);
    u64::from_le_bytes(word)
}

/// Which core-serialising barrier [`CodeMemory::patch`](crate::CodeMemory::patch) issues after a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BarrierMode {
    /// `MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE`: the kernel guarantees every thread of the process executes
    /// a core-serialising instruction before it next runs user code.
    SyncCore,
    /// `MEMBARRIER_CMD_PRIVATE_EXPEDITED`: an IPI to every CPU running a thread of the process; serialising on
    /// x86-64 through the interrupt return, but only a memory barrier by the kernel's contract.
    PrivateExpedited,
}

// Command numbers of membarrier(2), from the Linux UAPI header <linux/membarrier.h>.
const MEMBARRIER_CMD_QUERY: libc::c_int = 0;
const MEMBARRIER_CMD_PRIVATE_EXPEDITED: libc::c_int = 1 << 3;
const MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED: libc::c_int = 1 << 4;
const MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE: libc::c_int = 1 << 5;
const MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE: libc::c_int = 1 << 6;

/// Calls membarrier(2); returns the syscall's result or the errno.
fn membarrier(cmd: libc::c_int) -> Result<libc::c_long, JitError> {
    // SAFETY: membarrier takes three integer arguments (cmd, flags, cpu_id) and touches no user memory, so any
    // argument values are memory safe; an unsupported command just fails with an errno.
    let ret = unsafe { libc::syscall(libc::SYS_membarrier, cmd, 0 as libc::c_uint, 0 as libc::c_int) };
    if ret < 0 {
        let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
        Err(JitError::Syscall { syscall: "membarrier", errno })
    } else {
        Ok(ret)
    }
}

/// Registers the process for the strongest available core-serialising barrier (once per process) and reports
/// which one is used.
pub fn barrier_mode() -> Result<BarrierMode, JitError> {
    static MODE: OnceLock<Result<BarrierMode, JitError>> = OnceLock::new();
    *MODE.get_or_init(|| {
        let supported = membarrier(MEMBARRIER_CMD_QUERY)?;
        let has = |cmd: libc::c_int| supported & libc::c_long::from(cmd) != 0;
        if has(MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE)
            && membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE).is_ok()
        {
            return Ok(BarrierMode::SyncCore);
        }
        if !has(MEMBARRIER_CMD_PRIVATE_EXPEDITED) {
            return Err(JitError::Syscall { syscall: "membarrier", errno: libc::EINVAL });
        }
        membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED)?;
        Ok(BarrierMode::PrivateExpedited)
    })
}

/// Issues the core-serialising barrier chosen by [`barrier_mode`] to every thread of the process.
pub fn serialize_all_cores() -> Result<(), JitError> {
    let cmd = match barrier_mode()? {
        BarrierMode::SyncCore => MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE,
        BarrierMode::PrivateExpedited => MEMBARRIER_CMD_PRIVATE_EXPEDITED,
    };
    membarrier(cmd).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emit_pads_to_alignment_and_records() {
        for prefix in 0..16 {
            let mut buf = vec![0xC3; prefix];
            let mut sites = PatchSites::new();
            let id = sites.emit_site(&mut buf, SiteState::Nop).unwrap();
            assert!(id.offset().is_multiple_of(SITE_ALIGN));
            assert_eq!(id.offset(), prefix.next_multiple_of(SITE_ALIGN));
            assert_eq!(buf.len(), id.offset() + SITE_LEN);
            assert_eq!(buf[id.offset()..], NOP5);
            assert!(sites.contains(id.offset()));
        }
    }

    #[test]
    fn encode_decode_roundtrip() {
        for (site, target) in [(8, 0), (8, 13), (64, 1000), (1 << 20, 8)] {
            let state = SiteState::Jump { target_offset: target };
            assert_eq!(decode(site, encode(site, state).unwrap()), Some(state));
        }
        assert_eq!(encode(8, SiteState::Jump { target_offset: 13 }).unwrap(), [0xE9, 0, 0, 0, 0]);
        assert_eq!(decode(8, [0x90; 5]), None);
    }

    #[test]
    fn merge_keeps_trailing_bytes() {
        let old = u64::from_le_bytes([1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(merge_site_word(old, NOP5).to_le_bytes(), [0x0F, 0x1F, 0x44, 0, 0, 6, 7, 8]);
    }
}
