//! `ringbuf`: the kernel's BPF ring buffer (multi-producer, single consumer at a time).
//!
//! Data area of `max_entries` bytes (a power of two); producer and consumer positions are
//! 64-bit counters, the data offset is `position & (size - 1)`. Each record is an 8-byte
//! header (`u32` length with the busy bit 31 and the discard bit 30, then a `u32` the kernel
//! uses as a page offset and bpfkit leaves 0) followed by the data, the whole rounded up to 8
//! bytes. [`RingBuf::reserve`] hands out a pointer to the data of a busy record; submit or
//! discard clears the busy bit (with release ordering); the consumer delivers committed
//! records in order, skips discarded ones, and stops at the first busy one.
//!
//! Difference from the kernel: the kernel maps the data pages twice so that a record may
//! wrap around the end of the area; bpfkit's data area is mapped once, so when a record
//! would cross the end, [`RingBuf::reserve`] first fills the rest of the area with a
//! discarded padding record and places the record at offset 0. The padding counts as used
//! space (`BPF_RB_AVAIL_DATA`) until consumed, and a record longer than the space left
//! before the end plus the space at the start cannot be reserved even if the kernel could.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use crate::error::MapError;
use crate::flags::{
    BPF_RB_AVAIL_DATA, BPF_RB_CONS_POS, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP, BPF_RB_PROD_POS, BPF_RB_RING_SIZE,
    BPF_RINGBUF_BUSY_BIT, BPF_RINGBUF_DISCARD_BIT, BPF_RINGBUF_HDR_SZ,
};
use crate::storage::Words;

/// The kernel's largest record (`RINGBUF_MAX_RECORD_SZ`).
const MAX_RECORD: u64 = (u32::MAX / 4) as u64;

type Notify = Arc<dyn Fn() + Send + Sync>;

/// A BPF ring buffer ([`crate::Map::ringbuf`]).
pub struct RingBuf {
    size: u64,
    mask: u64,
    data: Words,
    producer_pos: AtomicU64,
    consumer_pos: AtomicU64,
    producer: Mutex<()>,
    consumer: Mutex<Vec<u8>>,
    notify: RwLock<Option<Notify>>,
    wakeups: AtomicU64,
}

fn header(len: u32) -> u64 {
    let mut b = [0u8; 8];
    b[..4].copy_from_slice(&len.to_ne_bytes());
    u64::from_ne_bytes(b)
}

fn header_len(word: u64) -> u32 {
    u32::from_ne_bytes(word.to_ne_bytes()[..4].try_into().expect("4 bytes"))
}

impl RingBuf {
    pub(crate) fn new(size: u32) -> Result<RingBuf, MapError> {
        let data =
            Words::zeroed(size as usize).map_err(|_| MapError::NoMemory { reason: "cannot allocate the ring" })?;
        Ok(RingBuf {
            size: u64::from(size),
            mask: u64::from(size) - 1,
            data,
            producer_pos: AtomicU64::new(0),
            consumer_pos: AtomicU64::new(0),
            producer: Mutex::new(()),
            consumer: Mutex::new(Vec::new()),
            notify: RwLock::new(None),
            wakeups: AtomicU64::new(0),
        })
    }

    /// The data area (what reserved pointers point into).
    pub(crate) fn data(&self) -> &Words {
        &self.data
    }

    /// `bpf_ringbuf_reserve`: room for a `size`-byte record, or `None` (no room, `flags` not
    /// 0, or too large). The pointer is 8-byte aligned and stays valid for the map's lifetime;
    /// the record must be submitted or discarded.
    pub fn reserve(&self, size: u64, flags: u64) -> Option<*mut u8> {
        if flags != 0 || size > MAX_RECORD {
            return None;
        }
        let len = (size + BPF_RINGBUF_HDR_SZ).next_multiple_of(8);
        if len > self.size {
            return None;
        }
        let _p = self.producer.lock().unwrap_or_else(|e| e.into_inner());
        let cons = self.consumer_pos.load(Ordering::Acquire);
        let prod = self.producer_pos.load(Ordering::Relaxed);
        let off = prod & self.mask;
        let pad = if off + len > self.size { self.size - off } else { 0 };
        let new_prod = prod + pad + len;
        if new_prod - cons > self.mask {
            return None;
        }
        if pad > 0 {
            let hdr = header((pad - BPF_RINGBUF_HDR_SZ) as u32 | BPF_RINGBUF_DISCARD_BIT);
            self.data.word(off as usize).store(hdr, Ordering::Relaxed);
        }
        let rec = ((prod + pad) & self.mask) as usize;
        self.data.word(rec).store(header(size as u32 | BPF_RINGBUF_BUSY_BIT), Ordering::Relaxed);
        // Publishes the headers above together with the new position.
        self.producer_pos.store(new_prod, Ordering::Release);
        Some(self.data.ptr(rec + BPF_RINGBUF_HDR_SZ as usize))
    }

    /// The header offset of a reserved record's data pointer.
    fn record_offset(&self, data: *mut u8) -> Result<usize, MapError> {
        let bad = MapError::Invalid { reason: "not a pointer returned by reserve" };
        let base = self.data.base() as usize;
        let off = (data as usize).checked_sub(base + BPF_RINGBUF_HDR_SZ as usize).ok_or(bad.clone())?;
        if off >= self.data.len_bytes() || !off.is_multiple_of(8) {
            return Err(bad);
        }
        let hdr = header_len(self.data.word(off).load(Ordering::Acquire));
        if hdr & BPF_RINGBUF_BUSY_BIT == 0 {
            return Err(MapError::Invalid { reason: "record already submitted or discarded" });
        }
        Ok(off)
    }

    fn commit(&self, data: *mut u8, flags: u64, discard: bool) -> Result<(), MapError> {
        let off = self.record_offset(data)?;
        let word = self.data.word(off);
        let len = header_len(word.load(Ordering::Relaxed)) & !BPF_RINGBUF_BUSY_BIT;
        let len = if discard { len | BPF_RINGBUF_DISCARD_BIT } else { len };
        // Release: the record's data, written by the program, is visible to the consumer
        // that sees the busy bit cleared.
        word.store(header(len), Ordering::Release);
        let cons = self.consumer_pos.load(Ordering::Acquire) & self.mask;
        if flags & BPF_RB_FORCE_WAKEUP != 0 || (flags & BPF_RB_NO_WAKEUP == 0 && cons == off as u64) {
            self.wake();
        }
        Ok(())
    }

    /// `bpf_ringbuf_submit`. Fails only for a pointer that is not a busy reserved record.
    pub fn submit(&self, data: *mut u8, flags: u64) -> Result<(), MapError> {
        self.commit(data, flags, false)
    }

    /// `bpf_ringbuf_discard`: the consumer skips the record.
    pub fn discard(&self, data: *mut u8, flags: u64) -> Result<(), MapError> {
        self.commit(data, flags, true)
    }

    /// `bpf_ringbuf_output`: reserve, copy, submit. `-EAGAIN` when there is no room.
    pub fn output(&self, data: &[u8], flags: u64) -> Result<(), MapError> {
        if flags & !(BPF_RB_NO_WAKEUP | BPF_RB_FORCE_WAKEUP) != 0 {
            return Err(MapError::Invalid { reason: "output flags must be BPF_RB_NO_WAKEUP or BPF_RB_FORCE_WAKEUP" });
        }
        let p = self.reserve(data.len() as u64, 0).ok_or(MapError::Again { reason: "no room in the ring buffer" })?;
        let off = p as usize - self.data.base() as usize;
        self.data.write(off, data);
        self.commit(p, flags, false)
    }

    /// `bpf_ringbuf_query`: `BPF_RB_AVAIL_DATA`, `BPF_RB_RING_SIZE`, `BPF_RB_CONS_POS`,
    /// `BPF_RB_PROD_POS`; 0 for anything else.
    pub fn query(&self, flag: u64) -> u64 {
        match flag {
            BPF_RB_AVAIL_DATA => {
                let prod = self.producer_pos.load(Ordering::Acquire);
                prod - self.consumer_pos.load(Ordering::Acquire).min(prod)
            }
            BPF_RB_RING_SIZE => self.size,
            BPF_RB_CONS_POS => self.consumer_pos.load(Ordering::Acquire),
            BPF_RB_PROD_POS => self.producer_pos.load(Ordering::Acquire),
            _ => 0,
        }
    }

    /// Host consumer: calls `f` with each committed record in order, skipping discarded ones
    /// and stopping at the first record still busy; returns how many were delivered. Space is
    /// released record by record. Consumers are serialised.
    pub fn consume(&self, mut f: impl FnMut(&[u8])) -> usize {
        let mut buf = self.consumer.lock().unwrap_or_else(|e| e.into_inner());
        let mut cons = self.consumer_pos.load(Ordering::Relaxed);
        let mut delivered = 0;
        loop {
            let prod = self.producer_pos.load(Ordering::Acquire);
            if cons >= prod {
                break;
            }
            let off = (cons & self.mask) as usize;
            let hdr = header_len(self.data.word(off).load(Ordering::Acquire));
            if hdr & BPF_RINGBUF_BUSY_BIT != 0 {
                break;
            }
            let len = u64::from(hdr & !(BPF_RINGBUF_BUSY_BIT | BPF_RINGBUF_DISCARD_BIT));
            let total = (len + BPF_RINGBUF_HDR_SZ).next_multiple_of(8);
            if total > prod - cons || off as u64 + total > self.size {
                // A header a program overwrote: stop rather than read garbage.
                break;
            }
            if hdr & BPF_RINGBUF_DISCARD_BIT == 0 {
                buf.clear();
                buf.resize(len as usize, 0);
                self.data.read(off + BPF_RINGBUF_HDR_SZ as usize, &mut buf);
                f(&buf);
                delivered += 1;
            }
            cons += total;
            self.consumer_pos.store(cons, Ordering::Release);
        }
        delivered
    }

    /// Every committed record, in order (see [`RingBuf::consume`]).
    pub fn drain(&self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        self.consume(|r| out.push(r.to_vec()));
        out
    }

    /// Sets the function called when a submit asks for a wakeup (kernel rules: always with
    /// `BPF_RB_FORCE_WAKEUP`, never with `BPF_RB_NO_WAKEUP`, otherwise when the consumer had
    /// caught up with the record). It runs on the submitting thread: keep it short.
    pub fn set_notify(&self, notify: Option<Arc<dyn Fn() + Send + Sync>>) {
        *self.notify.write().unwrap_or_else(|e| e.into_inner()) = notify;
    }

    /// How many wakeups submits have asked for so far.
    pub fn wakeups(&self) -> u64 {
        self.wakeups.load(Ordering::Relaxed)
    }

    fn wake(&self) {
        self.wakeups.fetch_add(1, Ordering::Relaxed);
        if let Some(n) = self.notify.read().unwrap_or_else(|e| e.into_inner()).as_ref() {
            n();
        }
    }

    /// Data area size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }
}

impl std::fmt::Debug for RingBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RingBuf")
            .field("size", &self.size)
            .field("producer_pos", &self.producer_pos.load(Ordering::Relaxed))
            .field("consumer_pos", &self.consumer_pos.load(Ordering::Relaxed))
            .finish()
    }
}
