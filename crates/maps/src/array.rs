//! `array` and `percpu_array`: one preallocated, zero-initialised value slot per index (per
//! CPU), each rounded up to 8 bytes. Per-CPU storage is CPU-major (all of CPU 0's values,
//! then CPU 1's...) so that CPUs do not share cache lines.
//!
//! Updates copy in place, like the kernel (there is no element to replace): a reader racing
//! with an update may see some 8-byte words of the old value and some of the new one, never a
//! torn word. Programs that need atomicity use atomic instructions on the value.

use crate::error::MapError;
use crate::storage::{Words, round8};

pub(crate) struct ArrayMap {
    max_entries: usize,
    value_size: usize,
    stride: usize,
    /// Value slots per index: the number of CPUs for `percpu_array`, else 1.
    slots: usize,
    data: Words,
}

impl ArrayMap {
    pub(crate) fn new(value_size: usize, max_entries: usize, slots: usize) -> Result<ArrayMap, MapError> {
        let stride = round8(value_size);
        let bytes = max_entries
            .checked_mul(slots)
            .and_then(|n| n.checked_mul(stride))
            .ok_or(MapError::NoMemory { reason: "array size overflows" })?;
        let data = Words::zeroed(bytes).map_err(|_| MapError::NoMemory { reason: "cannot allocate the array" })?;
        Ok(ArrayMap { max_entries, value_size, stride, slots, data })
    }

    pub(crate) fn data(&self) -> &Words {
        &self.data
    }

    pub(crate) fn stride(&self) -> usize {
        self.stride
    }

    pub(crate) fn max_entries(&self) -> usize {
        self.max_entries
    }

    /// Bytes of a value as the host sees it.
    pub(crate) fn host_value_size(&self) -> usize {
        if self.slots > 1 { self.slots * self.stride } else { self.value_size }
    }

    #[inline]
    fn off(&self, index: usize, cpu: usize) -> usize {
        (cpu * self.max_entries + index) * self.stride
    }

    /// BPF-side lookup: the value of `index` (this CPU's for per-CPU arrays).
    #[inline]
    pub(crate) fn bpf_lookup(&self, index: u32, cpu: usize) -> Option<*mut u8> {
        let index = index as usize;
        if index >= self.max_entries {
            return None;
        }
        let cpu = if self.slots > 1 {
            if cpu >= self.slots {
                return None;
            }
            cpu
        } else {
            0
        };
        Some(self.data.ptr(self.off(index, cpu)))
    }

    /// Copies the value of `index` (in range) in the host layout.
    pub(crate) fn read(&self, index: u32, out: &mut [u8]) {
        let index = index as usize;
        if self.slots > 1 {
            for cpu in 0..self.slots {
                let o = &mut out[cpu * self.stride..(cpu + 1) * self.stride];
                self.data.read(self.off(index, cpu), &mut o[..self.value_size]);
                o[self.value_size..].fill(0);
            }
        } else {
            self.data.read(self.off(index, 0), &mut out[..self.value_size]);
        }
    }

    /// Host write of `index` (in range): `value` in the host layout.
    pub(crate) fn write_host(&self, index: u32, value: &[u8]) {
        let index = index as usize;
        if self.slots > 1 {
            for cpu in 0..self.slots {
                let s = &value[cpu * self.stride..cpu * self.stride + self.value_size];
                self.data.write(self.off(index, cpu), s);
            }
        } else {
            self.data.write(self.off(index, 0), value);
        }
    }

    /// Program write of `index` (in range): one value, into this CPU's slot for per-CPU arrays.
    pub(crate) fn write_cpu(&self, index: u32, value: &[u8], cpu: usize) {
        let cpu = if self.slots > 1 { cpu } else { 0 };
        self.data.write(self.off(index as usize, cpu), value);
    }

    pub(crate) fn slots(&self) -> usize {
        self.slots
    }
}
