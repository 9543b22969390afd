//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::sync::atomic::AtomicU64;

use bpfkit_maps::{Map, MapError, MapSpec, MapType};

pub fn k32(i: u32) -> [u8; 4] {
    i.to_ne_bytes()
}

pub fn v64(x: u64) -> [u8; 8] {
    x.to_ne_bytes()
}

pub fn as_u64(v: &[u8]) -> u64 {
    u64::from_ne_bytes(v[..8].try_into().unwrap())
}

pub fn create(t: MapType, key_size: u32, value_size: u32, max_entries: u32) -> Map {
    Map::create(MapSpec::new(t, key_size, value_size, max_entries), 1).unwrap()
}

pub fn create_flags(t: MapType, key_size: u32, value_size: u32, max_entries: u32, flags: u32) -> Map {
    Map::create(MapSpec::new(t, key_size, value_size, max_entries).with_flags(flags), 1).unwrap()
}

/// The errno of an expected error.
#[track_caller]
pub fn errno<T: std::fmt::Debug>(r: Result<T, MapError>) -> i32 {
    r.expect_err("expected an error").errno()
}

/// The 8-byte word at a value pointer, as the atomic it is.
pub fn word<'a>(p: *mut u8) -> &'a AtomicU64 {
    assert!((p as usize).is_multiple_of(8), "value pointers are 8-byte aligned");
    // SAFETY: value pointers point into a map's storage, which is made of `AtomicU64` words,
    // and `p` is word-aligned; callers keep the map (and the guard that obtained `p`) alive
    // while they use the reference.
    unsafe { &*p.cast::<AtomicU64>() }
}

/// Whether `[p, p + len)` lies in one of the map's value regions.
pub fn in_regions(map: &Map, p: *mut u8, len: usize) -> bool {
    map.value_regions().iter().any(|r| p as usize >= r.ptr as usize && p as usize + len <= r.ptr as usize + r.len)
}
