//! `insn_array` (`BPF_MAP_TYPE_INSN_ARRAY`, kernel-spec §2): instruction offsets that follow a
//! program through its rewrites. The host writes each entry's `orig_off`; binding the frozen
//! map to a program being loaded resets `xlated_off := orig_off`; the rewrites and the JIT then
//! fill `xlated_off` (or `0xFFFFFFFF` for a deleted instruction) and `jitted_off`, and the
//! address each entry designates (`ips`), which is what a program reads from the map (8 bytes
//! per entry: a code address for `gotox`).
//!
//! Host view of a value (16 bytes): `{orig_off, xlated_off, jitted_off, 0}` as `u32`s.

use crate::error::MapError;
use crate::storage::Words;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// `xlated_off` of an entry whose instruction was removed.
pub const INSN_DELETED: u32 = 0xFFFF_FFFF;

pub(crate) struct InsnArray {
    /// `[orig_off, xlated_off, jitted_off]` per entry.
    entries: Mutex<Vec<[u32; 3]>>,
    /// The code address of each entry, as programs read it (one word per entry).
    ips: Words,
    /// Bound to a program (one owner at a time).
    owned: AtomicBool,
}

impl InsnArray {
    pub(crate) fn new(max_entries: usize) -> Result<InsnArray, MapError> {
        let ips =
            Words::zeroed(max_entries.checked_mul(8).ok_or(MapError::NoMemory { reason: "insn array too large" })?)
                .map_err(|_| MapError::NoMemory { reason: "cannot allocate the insn array" })?;
        Ok(InsnArray { entries: Mutex::new(vec![[0; 3]; max_entries]), ips, owned: AtomicBool::new(false) })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<[u32; 3]>> {
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    pub(crate) fn ips(&self) -> &Words {
        &self.ips
    }

    pub(crate) fn get(&self, index: usize) -> Option<[u32; 3]> {
        self.lock().get(index).copied()
    }

    /// Host update of entry `index`: only `orig_off` may be set.
    pub(crate) fn set_orig(&self, index: usize, value: &[u8]) -> Result<(), MapError> {
        let word = |i: usize| u32::from_ne_bytes(value[4 * i..4 * i + 4].try_into().expect("4 bytes"));
        if word(1) != 0 || word(2) != 0 {
            return Err(MapError::Invalid { reason: "only orig_off may be set: xlated_off and jitted_off must be 0" });
        }
        let mut e = self.lock();
        e[index] = [word(0), 0, 0];
        Ok(())
    }

    /// Takes the map for a program of `prog_len` slots (`is_lddw_tail(i)`: slot `i` is the
    /// second half of a `lddw`): every `orig_off` must be inside the program and not a lddw
    /// tail, and no other program may own the map. Resets `xlated_off := orig_off`.
    pub(crate) fn bind(&self, prog_len: usize, is_lddw_tail: &dyn Fn(usize) -> bool) -> Result<(), MapError> {
        if self.lock().iter().any(|v| v[0] as usize >= prog_len || is_lddw_tail(v[0] as usize)) {
            return Err(MapError::Invalid { reason: "an entry's orig_off is outside the program or inside a lddw" });
        }
        if self.owned.swap(true, Ordering::AcqRel) {
            return Err(MapError::Busy { reason: "the insn array is bound to another program" });
        }
        let mut e = self.lock();
        for (i, v) in e.iter_mut().enumerate() {
            *v = [v[0], v[0], 0];
            self.ips.word(i * 8).store(0, Ordering::Relaxed);
        }
        Ok(())
    }

    pub(crate) fn release(&self) {
        self.owned.store(false, Ordering::Release);
    }

    /// Applies `f` to every live entry's `xlated_off`: `Some(new)`, or `None` for deleted.
    pub(crate) fn map_xlated(&self, f: &dyn Fn(u32) -> Option<u32>) {
        for v in self.lock().iter_mut() {
            if v[1] != INSN_DELETED {
                v[1] = f(v[1]).unwrap_or(INSN_DELETED);
            }
        }
    }

    /// Sets `jitted_off` and the address of every live entry from its `xlated_off`; returns
    /// false (changing nothing more) if a live entry has no address (the kernel's -EFAULT).
    pub(crate) fn set_code(&self, f: &dyn Fn(u32) -> Option<(u32, u64)>) -> bool {
        let mut e = self.lock();
        let mut ok = true;
        for (i, v) in e.iter_mut().enumerate() {
            if v[1] == INSN_DELETED {
                continue;
            }
            match f(v[1]) {
                Some((off, ip)) => {
                    v[2] = off;
                    self.ips.word(i * 8).store(ip, Ordering::Release);
                }
                None => ok = false,
            }
        }
        ok
    }
}
