//! W^X code memory: permissions of both views and executing freshly written code.
#![cfg(all(target_os = "linux", target_arch = "x86_64"))]

mod common;

use bpfkit_jit::{CodeMemory, JitError, PatchSites, SiteState, barrier_mode};

type Func = extern "sysv64" fn() -> u64;

/// Permission string (e.g. `r-xs`) of the mapping starting at `addr`, from /proc/self/maps.
fn perms_of_mapping_at(addr: usize) -> String {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    for line in maps.lines() {
        let mut fields = line.split_whitespace();
        let range = fields.next().unwrap();
        let perms = fields.next().unwrap();
        let start = usize::from_str_radix(range.split('-').next().unwrap(), 16).unwrap();
        if start == addr {
            return perms.to_owned();
        }
    }
    panic!("no mapping starts at {addr:#x}");
}

#[test]
fn views_are_w_xor_x_and_code_runs() {
    if !common::jit_available() {
        return;
    }
    // mov eax, 42 ; ret
    let code = [0xB8, 42, 0, 0, 0, 0xC3];
    let mut mem = CodeMemory::new(&code).unwrap();
    assert_eq!(mem.len(), code.len());
    assert_eq!(mem.mapped_len() % 4096, 0);
    assert_eq!(mem.as_slice(), &code);

    assert_eq!(perms_of_mapping_at(mem.exec_ptr() as usize), "r-xs");
    assert_eq!(perms_of_mapping_at(mem.write_view_addr()), "rw-s");

    // SAFETY: the exec view holds a complete sysv64 function `mov eax, 42; ret` that takes no arguments, and
    // `mem` outlives the call.
    let f = unsafe { std::mem::transmute::<*const u8, Func>(mem.exec_ptr()) };
    assert_eq!(f(), 42);
}

#[test]
fn tail_is_int3() {
    if !common::jit_available() {
        return;
    }
    let mem = CodeMemory::new(&[0xC3]).unwrap();
    // SAFETY: the exec view is readable for `mapped_len` bytes while `mem` lives, and nothing patches it.
    let all = unsafe { std::slice::from_raw_parts(mem.exec_ptr(), mem.mapped_len()) };
    assert_eq!(all[0], 0xC3);
    assert!(all[1..].iter().all(|&b| b == 0xCC));
}

#[test]
fn rejects_invalid_sites() {
    if !common::jit_available() {
        return;
    }
    let mut sites = PatchSites::new();
    let mut buf = vec![0x90];
    let site = sites.emit_site(&mut buf, SiteState::Jump { target_offset: 100 }).unwrap();
    let err = CodeMemory::with_sites(&buf, sites).unwrap_err();
    assert_eq!(
        err,
        JitError::InvalidTarget { site_offset: site.offset(), target_offset: 100, reason: "outside the code" }
    );
}

#[test]
fn reports_barrier_mode() {
    if !common::jit_available() {
        return;
    }
    let mode = barrier_mode().unwrap();
    println!("membarrier mode accepted by this kernel: {mode:?}");
}
