//! Compiles the native side of the comparison benchmark with the host C compiler (`cc`, `-O2`):
//! the synthetic workloads in C (`native/synthetic.c`), the native maps (`native/maps.c`) and
//! the BPF C sources of the packet workloads themselves, each through its wrapper in
//! `native/programs/` with `native/shim` first on the include path (so `<bpf/bpf_helpers.h>`
//! and `<bpf/bpf_endian.h>` are the shim's, not libbpf's). See `src/engine/native.rs`.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

/// The wrappers in `native/programs/`; the BPF sources they include come from these
/// directories of the repository.
const PROGRAMS: &[&str] = &["xdp_count", "maps_xdp", "globals_xdp", "lpm_xdp"];
const SOURCE_DIRS: &[&str] = &["tests/bpf", "examples"];

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest.join("../..");
    let native = manifest.join("native");

    let mut build = cc::Build::new();
    build
        .opt_level(2)
        .include(native.join("shim"))
        .flag_if_supported("-Wno-unknown-pragmas") // `#pragma unroll` is for clang's BPF target
        .file(native.join("synthetic.c"))
        .file(native.join("maps.c"));
    for dir in SOURCE_DIRS {
        build.include(root.join(dir));
    }
    for p in PROGRAMS {
        build.file(native.join("programs").join(format!("{p}.c")));
    }
    build.compile("bpfkit_bench_native");

    rerun_if_changed_under(&native);
    for dir in SOURCE_DIRS {
        rerun_if_changed_under(&root.join(dir));
    }
}

fn rerun_if_changed_under(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let path = e.path();
        if path.is_dir() {
            rerun_if_changed_under(&path);
        } else if matches!(path.extension().and_then(|x| x.to_str()), Some("c" | "h")) {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
}
