//! Registering map storage with the interpreter: the runtime's only `unsafe`.
#![allow(unsafe_code)]

use bpfkit_interp::{RegionKind, Vm};
use bpfkit_maps::Map;
use std::sync::Arc;

/// Lets every run of `vm` access the value storage of `map` (read-only when the map is
/// `BPF_F_RDONLY_PROG`).
pub(crate) fn register_map(vm: &mut Vm, map: &Arc<Map>) {
    for r in map.value_regions() {
        // SAFETY: a map never moves or frees its value storage while it exists (the contract of
        // `Map::value_regions`), and the program the `Vm` runs holds the map's token while the
        // `Object`/runtime keep an `Arc<Map>` alive for as long as programs can run; concurrent
        // access is the map's documented BPF semantics (values are plain memory, updated
        // atomically per element by the map, in place by programs).
        unsafe { vm.add_persistent_region(RegionKind::MapValue, r.ptr, r.len, r.writable) };
    }
}
