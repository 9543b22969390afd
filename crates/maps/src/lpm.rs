//! `lpm_trie`: longest-prefix match.
//!
//! Keys are the kernel's `struct bpf_lpm_trie_key`: a native-endian `u32` prefix length, then
//! `key_size - 4` data bytes compared bit by bit from the most significant bit of the first
//! byte (network order for IP addresses).
//!
//! bpfkit does not build a trie: entries live in a [`HashTable`] keyed by their canonical
//! form (prefix length + data with the bits past the prefix cleared), and a bitmap records
//! which prefix lengths are present. A lookup probes the present lengths from the longest
//! usable one down (`min(key prefix length, max prefix length)`, as in the kernel), so it
//! costs one hash probe per distinct prefix length in the map, without locks, and returns a
//! pointer into the preallocated value slab. Updates and deletes are exact-match and
//! serialised by a mutex. Stored keys are canonical: `get_next_key` and dumps return the data
//! bits past the prefix as zero (the kernel returns them as they were inserted).
//!
//! `get_next_key` follows the kernel's post-order (more specific prefixes before the prefix
//! that contains them, 0 branches before 1 branches); it scans all entries, so it costs
//! O(n) per call.

use std::cmp::Ordering as CmpOrdering;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::epoch::{self, Guard};
use crate::error::MapError;
use crate::flags::BPF_EXIST;
use crate::hash::{HashParams, HashTable, ValueSrc};
use crate::map::Entry;
use crate::spec::LPM_DATA_SIZE_MAX;

const MAX_KEY: usize = 4 + LPM_DATA_SIZE_MAX as usize;

pub(crate) struct LpmTrie {
    table: HashTable,
    data_size: usize,
    max_prefixlen: u32,
    /// Entries per prefix length; the mutex serialises writers.
    writer: Mutex<Vec<u32>>,
    /// Bit `l` set when some entry has prefix length `l`.
    present: Box<[AtomicU64]>,
}

fn prefixlen(key: &[u8]) -> u32 {
    u32::from_ne_bytes(key[..4].try_into().expect("4-byte prefix length"))
}

/// The kernel's post-order on canonical keys.
fn postorder_cmp(a: &[u8], b: &[u8]) -> CmpOrdering {
    let (la, lb) = (prefixlen(a), prefixlen(b));
    let common = la.min(lb) as usize;
    let (da, db) = (&a[4..], &b[4..]);
    for i in 0..common.div_ceil(8) {
        let mut x = da[i] ^ db[i];
        let bits_here = (common - i * 8).min(8);
        if bits_here < 8 {
            x &= 0xff << (8 - bits_here);
        }
        if x != 0 {
            let bit = 0x80 >> x.leading_zeros();
            return if da[i] & bit != 0 { CmpOrdering::Greater } else { CmpOrdering::Less };
        }
    }
    lb.cmp(&la)
}

impl LpmTrie {
    pub(crate) fn new(key_size: usize, value_size: usize, max_entries: u32, ncpus: usize) -> Result<LpmTrie, MapError> {
        let data_size = key_size - 4;
        let max_prefixlen = (data_size * 8) as u32;
        let table = HashTable::new(HashParams {
            key_size,
            value_size,
            max_entries: max_entries as usize,
            slots: 1,
            spare: crate::hash::spare_elements(max_entries as usize, ncpus),
            lru: false,
            zero_seed: false,
            inner_maps: false,
        })?;
        let words = (max_prefixlen as usize + 1).div_ceil(64);
        Ok(LpmTrie {
            table,
            data_size,
            max_prefixlen,
            writer: Mutex::new(vec![0; max_prefixlen as usize + 1]),
            present: (0..words).map(|_| AtomicU64::new(0)).collect(),
        })
    }

    pub(crate) fn table(&self) -> &HashTable {
        &self.table
    }

    /// Writes the canonical form of `data` at `prefix` bits into `buf`; returns its length.
    fn canonical(&self, data: &[u8], prefix: u32, buf: &mut [u8; MAX_KEY]) -> usize {
        let n = 4 + self.data_size;
        buf[..4].copy_from_slice(&prefix.to_ne_bytes());
        let d = &mut buf[4..n];
        d.copy_from_slice(&data[..self.data_size]);
        let full = (prefix / 8) as usize;
        let rem = prefix % 8;
        if full < self.data_size {
            d[full] &= if rem == 0 { 0 } else { 0xff << (8 - rem) };
            d[full + 1..].fill(0);
        }
        n
    }

    /// The element with the longest prefix matching `key`.
    fn longest_match(&self, key: &[u8], guard: &Guard) -> Option<u32> {
        if key.len() != 4 + self.data_size {
            return None;
        }
        let limit = prefixlen(key).min(self.max_prefixlen);
        let data = &key[4..];
        let mut buf = [0u8; MAX_KEY];
        let mut w = (limit / 64) as usize;
        let r = limit % 64;
        let mut bits = self.present[w].load(Ordering::Acquire) & if r == 63 { !0 } else { (1u64 << (r + 1)) - 1 };
        loop {
            while bits != 0 {
                let b = 63 - bits.leading_zeros();
                bits &= !(1u64 << b);
                let len = w as u32 * 64 + b;
                let n = self.canonical(data, len, &mut buf);
                let k = &buf[..n];
                if let Some(elem) = self.table.find(self.table.hash(k), k, guard) {
                    return Some(elem);
                }
            }
            if w == 0 {
                return None;
            }
            w -= 1;
            bits = self.present[w].load(Ordering::Acquire);
        }
    }

    /// BPF-side longest-prefix lookup.
    #[inline]
    pub(crate) fn bpf_lookup(&self, key: &[u8], guard: &Guard) -> Option<*mut u8> {
        self.longest_match(key, guard).map(|e| self.table.value_ptr(e, 0))
    }

    /// Host longest-prefix lookup.
    pub(crate) fn lookup(&self, key: &[u8], out: &mut [u8]) -> Result<(), MapError> {
        let guard = epoch::pin();
        let elem = self.longest_match(key, &guard).ok_or(MapError::NotFound)?;
        self.table.read_value(elem, out);
        Ok(())
    }

    fn check_key(&self, key: &[u8]) -> Result<u32, MapError> {
        if key.len() != 4 + self.data_size {
            return Err(MapError::BadSize { what: "key", expected: 4 + self.data_size, got: key.len() });
        }
        let plen = prefixlen(key);
        if plen > self.max_prefixlen {
            return Err(MapError::Invalid { reason: "prefix length is larger than the key's data" });
        }
        Ok(plen)
    }

    fn set_present(&self, plen: u32, on: bool) {
        let word = &self.present[(plen / 64) as usize];
        let bit = 1u64 << (plen % 64);
        if on {
            word.fetch_or(bit, Ordering::Release);
        } else {
            word.fetch_and(!bit, Ordering::Release);
        }
    }

    /// Exact-match insert or replace.
    pub(crate) fn update(&self, key: &[u8], value: &[u8], flags: u64, blocking: bool) -> Result<(), MapError> {
        if flags > BPF_EXIST {
            return Err(MapError::Invalid { reason: "flags must be BPF_ANY, BPF_NOEXIST or BPF_EXIST" });
        }
        let plen = self.check_key(key)?;
        let mut buf = [0u8; MAX_KEY];
        let n = self.canonical(&key[4..], plen, &mut buf);
        let k = &buf[..n];
        loop {
            // Writers are serialised; a host writer waits for spare elements outside the lock
            // (programs blocked on the lock may be the readers it waits for).
            let mut counts = self.writer.lock().unwrap_or_else(|e| e.into_inner());
            let existed = {
                let guard = epoch::pin();
                self.table.find(self.table.hash(k), k, &guard).is_some()
            };
            match self.table.update(k, ValueSrc::Single(value), flags, false) {
                Ok(()) => {}
                Err(MapError::NoMemory { .. }) if blocking => {
                    drop(counts);
                    self.table.wait_for_spare()?;
                    continue;
                }
                Err(MapError::Full { .. }) => {
                    return Err(MapError::NoSpace { reason: "the LPM trie holds max_entries prefixes" });
                }
                Err(e) => return Err(e),
            }
            if !existed {
                counts[plen as usize] += 1;
                if counts[plen as usize] == 1 {
                    self.set_present(plen, true);
                }
            }
            return Ok(());
        }
    }

    /// Exact-match delete.
    pub(crate) fn delete(&self, key: &[u8]) -> Result<(), MapError> {
        let plen = self.check_key(key)?;
        let mut buf = [0u8; MAX_KEY];
        let n = self.canonical(&key[4..], plen, &mut buf);
        let mut counts = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        self.table.delete(&buf[..n], None)?;
        counts[plen as usize] -= 1;
        if counts[plen as usize] == 0 {
            self.set_present(plen, false);
        }
        Ok(())
    }

    /// All canonical keys.
    fn keys(&self) -> Vec<Vec<u8>> {
        let mut keys = Vec::new();
        self.table.for_each(|e| {
            let mut k = vec![0; 4 + self.data_size];
            self.table.read_key(e, &mut k);
            keys.push(k);
        });
        keys
    }

    /// The kernel's post-order successor; a missing or invalid key gives the first key.
    pub(crate) fn get_next_key(&self, key: Option<&[u8]>) -> Result<Vec<u8>, MapError> {
        let keys = self.keys();
        let current =
            key.filter(|k| k.len() == 4 + self.data_size && prefixlen(k) <= self.max_prefixlen).and_then(|k| {
                let mut buf = [0u8; MAX_KEY];
                let n = self.canonical(&k[4..], prefixlen(k), &mut buf);
                let c = buf[..n].to_vec();
                keys.contains(&c).then_some(c)
            });
        let next = match &current {
            None => keys.iter().min_by(|a, b| postorder_cmp(a, b)),
            Some(c) => {
                keys.iter().filter(|k| postorder_cmp(k, c) == CmpOrdering::Greater).min_by(|a, b| postorder_cmp(a, b))
            }
        };
        next.cloned().ok_or(MapError::NotFound)
    }

    /// Every (key, value) in get_next_key order.
    pub(crate) fn entries(&self) -> Vec<Entry> {
        let mut e = self.table.entries();
        e.sort_by(|a, b| postorder_cmp(&a.0, &b.0));
        e
    }

    /// Up to `max_count` entries after `after` (a canonical key) in get_next_key order, and
    /// whether more follow.
    pub(crate) fn batch(&self, after: Option<&[u8]>, max_count: usize) -> (Vec<Entry>, bool) {
        let all = self.entries();
        let start = match after {
            None => 0,
            Some(k) => all.partition_point(|(e, _)| postorder_cmp(e, k) != CmpOrdering::Greater),
        };
        let rest = &all[start..];
        let take = rest.len().min(max_count);
        (rest[..take].to_vec(), rest.len() > take)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(plen: u32, data: [u8; 4]) -> Vec<u8> {
        let mut v = plen.to_ne_bytes().to_vec();
        v.extend_from_slice(&data);
        v
    }

    #[test]
    fn postorder_matches_the_kernel_example() {
        // The kernel documents this order for 192.168.0.0/16 with three /24s under it.
        let mut keys =
            vec![k(16, [192, 168, 0, 0]), k(24, [192, 168, 128, 0]), k(24, [192, 168, 1, 0]), k(24, [192, 168, 0, 0])];
        keys.sort_by(|a, b| postorder_cmp(a, b));
        assert_eq!(
            keys,
            vec![k(24, [192, 168, 0, 0]), k(24, [192, 168, 1, 0]), k(24, [192, 168, 128, 0]), k(16, [192, 168, 0, 0])]
        );
    }
}
