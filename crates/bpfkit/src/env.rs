//! The state a program invocation's helpers share: the worker's CPU slot, the clock, the
//! random state, captured `bpf_trace_printk` output, the maps the program can name, and the
//! kind of context (for the XDP and skb helpers).

use bpfkit_maps::Map;
use std::sync::Arc;
use std::time::Instant;

/// Where time comes from. The default is the host's monotonic clock; tests and reproducible
/// runs use a fixed or stepped clock.
pub trait Clock: Send + Sync {
    /// Nanoseconds, monotonic (`bpf_ktime_get_ns`, `_boot_ns` and `_coarse_ns`).
    fn now_ns(&self) -> u64;
}

/// The host's monotonic clock, counted from an arbitrary origin (the kernel counts from boot).
#[derive(Debug)]
pub struct MonotonicClock {
    origin: Instant,
    offset_ns: u64,
}

impl Default for MonotonicClock {
    fn default() -> Self {
        // Start at one second, so that a program never sees 0.
        MonotonicClock { origin: Instant::now(), offset_ns: 1_000_000_000 }
    }
}

impl Clock for MonotonicClock {
    fn now_ns(&self) -> u64 {
        self.offset_ns + self.origin.elapsed().as_nanos() as u64
    }
}

/// A clock that starts at `start` and advances by `step` nanoseconds on every reading.
#[derive(Debug)]
pub struct SteppedClock {
    next: std::sync::atomic::AtomicU64,
    step: u64,
}

impl SteppedClock {
    pub fn new(start: u64, step: u64) -> Self {
        SteppedClock { next: std::sync::atomic::AtomicU64::new(start), step }
    }
}

impl Clock for SteppedClock {
    fn now_ns(&self) -> u64 {
        self.next.fetch_add(self.step, std::sync::atomic::Ordering::Relaxed)
    }
}

/// `CONFIG_HZ` of bpfkit's jiffies (`bpf_jiffies64` = ns / (10^9 / HZ)).
pub const HZ: u64 = 1000;

/// What the program's context is, for the helpers that act on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CtxKind {
    /// XDP: the packet window and the shadow's `data`/`data_end`/`data_meta` move together.
    Xdp,
    /// `__sk_buff`: `bpf_skb_load_bytes` reads from the packet (from its network header for
    /// socket filters); `data_off` is the offset of `skb->data` in the frame.
    Skb { data_off: usize },
    /// A caller-supplied buffer (`syscall` programs).
    Raw,
}

/// The maps a program may name, by the token its `lddw` yields (the map's address).
#[derive(Clone, Default)]
pub struct MapTable {
    entries: Vec<(u64, Arc<Map>)>,
}

impl MapTable {
    /// The token programs see for `map`.
    pub fn token(map: &Arc<Map>) -> u64 {
        Arc::as_ptr(map) as u64
    }

    pub(crate) fn insert(&mut self, map: Arc<Map>) -> u64 {
        let t = Self::token(&map);
        if !self.entries.iter().any(|(k, _)| *k == t) {
            self.entries.push((t, map));
        }
        t
    }

    /// The map behind `token`.
    pub fn get(&self, token: u64) -> Option<&Arc<Map>> {
        self.entries.iter().find(|(t, _)| *t == token).map(|(_, m)| m)
    }

    /// Every map.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Map>> {
        self.entries.iter().map(|(_, m)| m)
    }
}

/// Per-invocation state, reached by helpers through `HelperCtx::env::<RunEnv>()`.
pub struct RunEnv {
    pub(crate) cpu: u32,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) rng: u64,
    pub(crate) trace: Vec<String>,
    pub(crate) maps: Arc<MapTable>,
    pub(crate) runtime_maps: Arc<crate::runtime::MapRegistry>,
    pub(crate) ctx: CtxKind,
    /// Pinned for the duration of a run: map memory a program holds is not reused before.
    pub(crate) guard: Option<bpfkit_maps::Guard>,
}

impl RunEnv {
    /// The map behind a token: the program's own maps first, then every map of the runtime
    /// (inner maps of map-in-maps).
    pub(crate) fn map(&self, token: u64) -> Option<Arc<Map>> {
        self.maps.get(token).cloned().or_else(|| self.runtime_maps.get(token))
    }

    /// A 32-bit pseudo-random number (xorshift64*; seeded per worker, so runs are reproducible).
    pub(crate) fn prandom(&mut self) -> u32 {
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32) as u32
    }
}
