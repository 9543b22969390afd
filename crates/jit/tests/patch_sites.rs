//! Patch sites flipped while other threads run the code.
#![cfg(all(target_os = "linux", target_arch = "x86_64"))]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bpfkit_jit::{CodeMemory, JitError, PatchSites, SiteId, SiteState};

type Func = extern "sysv64" fn() -> u64;

/// `mov eax, 1 ; <site> ; ret ; two: mov eax, 2 ; ret`. Returns the code, its site and the offset of `two`.
fn build(initial_jump: bool) -> (CodeMemory, SiteId, usize) {
    let mut buf = vec![0xB8, 1, 0, 0, 0];
    let mut sites = PatchSites::new();
    // The site is 8-aligned and 5 bytes long, so `two` is at site + 6 (after the 1-byte ret).
    let two = 5usize.next_multiple_of(8) + 5 + 1;
    let initial = if initial_jump { SiteState::Jump { target_offset: two } } else { SiteState::Nop };
    let site = sites.emit_site(&mut buf, initial).unwrap();
    buf.push(0xC3);
    assert_eq!(buf.len(), two);
    buf.extend_from_slice(&[0xB8, 2, 0, 0, 0, 0xC3]);
    (CodeMemory::with_sites(&buf, sites).unwrap(), site, two)
}

fn func(mem: &CodeMemory) -> Func {
    // SAFETY: the code memory starts with a complete sysv64 function taking no arguments and returning in rax;
    // every caller keeps `mem` alive (an `Arc` or a borrow) for as long as it calls the function.
    unsafe { std::mem::transmute::<*const u8, Func>(mem.exec_ptr()) }
}

#[test]
fn initial_states_run() {
    if !common::jit_available() {
        return;
    }
    let (mem, site, two) = build(false);
    assert_eq!(func(&mem)(), 1);
    assert_eq!(mem.site_state(site.offset()).unwrap(), SiteState::Nop);
    let (mem, site, _) = build(true);
    assert_eq!(func(&mem)(), 2);
    assert_eq!(mem.site_state(site.offset()).unwrap(), SiteState::Jump { target_offset: two });
}

#[test]
fn patching_a_non_site_is_an_error() {
    if !common::jit_available() {
        return;
    }
    let (mem, site, two) = build(false);
    let before = mem.snapshot();
    for offset in [0, 1, site.offset() + 1, two, 4096, usize::MAX] {
        assert_eq!(mem.patch(offset, SiteState::Nop), Err(JitError::NotASite { offset }));
    }
    // Invalid targets: outside the code, inside the site.
    assert!(matches!(
        mem.patch(site.offset(), SiteState::Jump { target_offset: 1000 }),
        Err(JitError::InvalidTarget { .. })
    ));
    assert!(matches!(
        mem.patch(site.offset(), SiteState::Jump { target_offset: site.offset() + 2 }),
        Err(JitError::InvalidTarget { .. })
    ));
    assert_eq!(mem.snapshot(), before);
    assert_eq!(func(&mem)(), 1);
}

#[test]
fn patch_keeps_trailing_bytes_and_switches_targets() {
    if !common::jit_available() {
        return;
    }
    let (mem, site, two) = build(false);
    let before = mem.snapshot();
    mem.patch(site.offset(), SiteState::Jump { target_offset: two }).unwrap();
    let after = mem.snapshot();
    assert_eq!(after[site.offset()], 0xE9);
    assert_eq!(before[site.offset() + 5..], after[site.offset() + 5..]);
    assert_eq!(func(&mem)(), 2);
    // Jump to the `ret` right after the site: rax still holds 1.
    mem.patch(site.offset(), SiteState::Jump { target_offset: site.offset() + 5 }).unwrap();
    assert_eq!(func(&mem)(), 1);
    mem.patch(site.offset(), SiteState::Nop).unwrap();
    assert_eq!(mem.snapshot(), before);
}

#[test]
fn site_flipped_while_threads_run() {
    if !common::jit_available() {
        return;
    }
    const THREADS: usize = 3;
    const MAX_FLIPS: usize = 20_000;
    let (mem, site, two) = build(false);
    let mem = Arc::new(mem);
    let stop = Arc::new(AtomicBool::new(false));

    let workers: Vec<_> = (0..THREADS)
        .map(|_| {
            let mem = Arc::clone(&mem);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let f = func(&mem);
                let (mut ones, mut twos, mut other) = (0u64, 0u64, 0u64);
                while !stop.load(Ordering::Relaxed) {
                    for _ in 0..64 {
                        match f() {
                            1 => ones += 1,
                            2 => twos += 1,
                            _ => other += 1,
                        }
                    }
                }
                (ones, twos, other)
            })
        })
        .collect();

    let f = func(&mem);
    let start = Instant::now();
    let mut flips = 0;
    while flips < MAX_FLIPS && start.elapsed() < Duration::from_millis(1500) {
        let (state, expected) =
            if flips % 2 == 0 { (SiteState::Jump { target_offset: two }, 2) } else { (SiteState::Nop, 1) };
        mem.patch(site.offset(), state).unwrap();
        assert_eq!(f(), expected, "flip {flips}: stale instruction after patch returned");
        flips += 1;
    }
    stop.store(true, Ordering::Relaxed);

    let (mut ones, mut twos) = (0, 0);
    for w in workers {
        let (o, t, other) = w.join().expect("worker crashed");
        assert_eq!(other, 0, "a worker saw a value other than 1 or 2");
        ones += o;
        twos += t;
    }
    println!("{flips} flips in {:?}; workers saw 1 x{ones}, 2 x{twos}", start.elapsed());
    assert!(flips >= 1000, "only {flips} flips");
    assert!(ones > 0 && twos > 0, "workers never observed both states (1 x{ones}, 2 x{twos})");
}

#[test]
fn concurrent_patchers_are_serialised() {
    if !common::jit_available() {
        return;
    }
    let (mem, site, two) = build(false);
    let mem = Arc::new(mem);
    let patchers: Vec<_> = (0..4)
        .map(|i| {
            let mem = Arc::clone(&mem);
            std::thread::spawn(move || {
                for n in 0..200 {
                    let state = if (n + i) % 2 == 0 { SiteState::Nop } else { SiteState::Jump { target_offset: two } };
                    mem.patch(site.offset(), state).unwrap();
                }
            })
        })
        .collect();
    for p in patchers {
        p.join().unwrap();
    }
    let state = mem.site_state(site.offset()).unwrap();
    assert!(matches!(state, SiteState::Nop | SiteState::Jump { .. }));
    assert_eq!(func(&mem)(), if state == SiteState::Nop { 1 } else { 2 });
    // The bytes after the site are intact.
    assert_eq!(mem.snapshot()[site.offset() + 5..], [0xC3, 0xB8, 2, 0, 0, 0, 0xC3]);
}
