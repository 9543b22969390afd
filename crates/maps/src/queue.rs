//! `queue` (FIFO) and `stack` (LIFO): values are copied in and out under a mutex over a
//! preallocated ring, so there are no value pointers. Push with `BPF_EXIST` on a full map
//! drops the oldest value (for a stack too: the bottom one), like the kernel.

use std::sync::Mutex;

use crate::error::MapError;
use crate::flags::BPF_EXIST;

pub(crate) struct QueueStack {
    stack: bool,
    value_size: usize,
    capacity: usize,
    state: Mutex<Ring>,
}

struct Ring {
    buf: Vec<u8>,
    /// Slot of the oldest value.
    head: usize,
    len: usize,
}

impl QueueStack {
    pub(crate) fn new(stack: bool, value_size: usize, max_entries: usize) -> Result<QueueStack, MapError> {
        let bytes = value_size
            .checked_mul(max_entries)
            .ok_or(MapError::NoMemory { reason: "queue/stack storage size overflows" })?;
        let mut buf = Vec::new();
        buf.try_reserve_exact(bytes).map_err(|_| MapError::NoMemory { reason: "cannot allocate the queue/stack" })?;
        buf.resize(bytes, 0);
        Ok(QueueStack { stack, value_size, capacity: max_entries, state: Mutex::new(Ring { buf, head: 0, len: 0 }) })
    }

    fn ring(&self) -> std::sync::MutexGuard<'_, Ring> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn check_value(&self, len: usize) -> Result<(), MapError> {
        if len != self.value_size {
            return Err(MapError::BadSize { what: "value", expected: self.value_size, got: len });
        }
        Ok(())
    }

    pub(crate) fn push(&self, value: &[u8], flags: u64) -> Result<(), MapError> {
        if flags & !BPF_EXIST != 0 {
            return Err(MapError::Invalid { reason: "push takes only BPF_EXIST" });
        }
        self.check_value(value.len())?;
        let mut r = self.ring();
        if r.len == self.capacity {
            if flags & BPF_EXIST == 0 {
                return Err(MapError::Full { max_entries: self.capacity as u32 });
            }
            r.head = (r.head + 1) % self.capacity;
            r.len -= 1;
        }
        let slot = (r.head + r.len) % self.capacity;
        r.buf[slot * self.value_size..(slot + 1) * self.value_size].copy_from_slice(value);
        r.len += 1;
        Ok(())
    }

    /// Copies the next value (oldest for a queue, newest for a stack) into `out`, removing it
    /// when `remove`.
    pub(crate) fn take(&self, out: &mut [u8], remove: bool) -> Result<(), MapError> {
        self.check_value(out.len())?;
        let mut r = self.ring();
        if r.len == 0 {
            return Err(MapError::NotFound);
        }
        let slot = if self.stack { (r.head + r.len - 1) % self.capacity } else { r.head };
        out.copy_from_slice(&r.buf[slot * self.value_size..(slot + 1) * self.value_size]);
        if remove {
            if !self.stack {
                r.head = (r.head + 1) % self.capacity;
            }
            r.len -= 1;
        }
        Ok(())
    }

    /// The values in pop order.
    pub(crate) fn values(&self) -> Vec<Vec<u8>> {
        let r = self.ring();
        let mut out: Vec<Vec<u8>> = (0..r.len)
            .map(|i| {
                let slot = (r.head + i) % self.capacity;
                r.buf[slot * self.value_size..(slot + 1) * self.value_size].to_vec()
            })
            .collect();
        if self.stack {
            out.reverse();
        }
        out
    }

    pub(crate) fn len(&self) -> usize {
        self.ring().len
    }
}
