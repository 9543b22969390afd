//! The bpf()-like command layer: maps by id with kernel errnos, programs loaded from raw
//! instructions with every pseudo-`lddw` source and `fd_array`, test runs.

use bpfkit::{Error, MapFd, ProgLoad, Runtime};
use bpfkit_isa::assemble;
use bpfkit_maps::{MapSpec, MapType};
use bpfkit_object::ProgType;

#[test]
fn map_commands_follow_kernel_errnos() {
    let rt = Runtime::with_cpus(2);
    let fd = rt.map_create(MapSpec::new(MapType::Hash, 4, 8, 2).with_name("h")).unwrap();
    rt.map_update_elem(fd, &1u32.to_le_bytes(), &7u64.to_le_bytes(), 0).unwrap();
    assert_eq!(rt.map_lookup_elem(fd, &1u32.to_le_bytes()).unwrap(), 7u64.to_le_bytes());
    // BPF_NOEXIST on an existing key: -EEXIST.
    match rt.map_update_elem(fd, &1u32.to_le_bytes(), &8u64.to_le_bytes(), 1) {
        Err(Error::MapCommand { errno, .. }) => assert_eq!(errno, -17),
        other => panic!("{other:?}"),
    }
    rt.map_update_elem(fd, &2u32.to_le_bytes(), &8u64.to_le_bytes(), 0).unwrap();
    // Full: -E2BIG.
    match rt.map_update_elem(fd, &3u32.to_le_bytes(), &9u64.to_le_bytes(), 0) {
        Err(Error::MapCommand { errno, .. }) => assert_eq!(errno, -7),
        other => panic!("{other:?}"),
    }
    let first = rt.map_get_next_key(fd, None).unwrap();
    let second = rt.map_get_next_key(fd, Some(&first)).unwrap();
    assert_ne!(first, second);
    rt.map_delete_elem(fd, &1u32.to_le_bytes()).unwrap();
    match rt.map_lookup_elem(fd, &1u32.to_le_bytes()) {
        Err(Error::MapCommand { errno, .. }) => assert_eq!(errno, -2),
        other => panic!("{other:?}"),
    }
    rt.map_freeze(fd).unwrap();
    assert!(rt.map_update_elem(fd, &5u32.to_le_bytes(), &1u64.to_le_bytes(), 0).is_err());
    assert!(matches!(rt.map_lookup_elem(MapFd(999_999), &[0; 4]), Err(Error::BadFd { .. })));
}

#[test]
fn prog_load_resolves_map_fd_value_and_fd_array_indexes() {
    let rt = Runtime::with_cpus(1);
    let counters = rt.map_create(MapSpec::new(MapType::Array, 4, 8, 4).with_name("counters")).unwrap();
    let global = rt.map_create(MapSpec::new(MapType::Array, 4, 16, 1).with_name("global")).unwrap();
    rt.map_update_elem(global, &0u32.to_le_bytes(), &[0, 0, 0, 0, 0, 0, 0, 0, 42, 0, 0, 0, 0, 0, 0, 0], 0).unwrap();
    // counters[1] += 1 through a map-fd reference; return global.value[8..16] (an fd_array
    // value reference) + whatever the packet's first byte is.
    let text = format!(
        "r6 = r1
         r1 = 0x1
         *(u32 *)(r10 - 0x4) = w1
         ld_pseudo r1, 0x1, {counters}
         r2 = r10
         r2 += -0x4
         call 0x1
         if r0 == 0x0 goto +0x2
         r1 = 0x1
         lock *(u64 *)(r0 + 0x0) += r1
         ld_pseudo r1, 0x6, 0x1, 0x8
         r0 = *(u64 *)(r1 + 0x0)
         w2 = *(u32 *)(r6 + 0x0)
         w3 = *(u32 *)(r6 + 0x4)
         r4 = r2
         r4 += 0x1
         if r4 > r3 goto +0x2
         r5 = *(u8 *)(r2 + 0x0)
         r0 += r5
         exit",
        counters = counters.0
    );
    let insns = assemble(&text).unwrap();
    let prog = rt
        .prog_load(ProgLoad { name: "t".into(), prog_type: ProgType::Xdp, insns, fd_array: vec![counters, global] })
        .unwrap();
    let mut pkt = vec![0u8; 64];
    pkt[0] = 5;
    let (r, out) = rt.prog_test_run_xdp(prog, &pkt).unwrap();
    assert_eq!(r, 42 + 5);
    assert_eq!(out, pkt);
    assert_eq!(rt.map_lookup_elem(counters, &1u32.to_le_bytes()).unwrap(), 1u64.to_le_bytes());
}

#[test]
fn prog_load_errors_name_the_instruction() {
    let rt = Runtime::with_cpus(1);
    let insns = assemble("ld_pseudo r1, 0x5, 0x3\nr0 = 0x0\nexit").unwrap();
    match rt.prog_load(ProgLoad { name: "bad".into(), prog_type: ProgType::Xdp, insns, fd_array: vec![] }) {
        Err(Error::Program { program, reason }) => {
            assert_eq!(program, "bad");
            assert_eq!(reason, "insn 0: fd_array has no entry 3");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn hostile_helper_arguments_give_errors_not_panics() {
    // Huge lengths and offsets (tests build with overflow checks: an unchecked add would panic).
    // The verifier refuses most of them (negative sizes); loaded anyway (report mode), the
    // helpers must still fail cleanly at run time.
    let rt = Runtime::with_cpus(1);
    rt.set_verify_mode(bpfkit::VerifyMode::Report);
    let mut w = bpfkit::Worker::new(&rt, 0);
    let cases = [
        // bpf_skb_load_bytes(skb, 0, r10 - 8, u64::MAX)
        "r2 = 0x0\nr3 = r10\nr3 += -0x8\nr4 = -0x1\ncall 0x1a\nexit",
        // bpf_skb_load_bytes(skb, u64::MAX, r10 - 8, 4)
        "r2 = -0x1\nr3 = r10\nr3 += -0x8\nr4 = 0x4\ncall 0x1a\nexit",
        // bpf_csum_diff(r10 - 8, u64::MAX - 3, r10 - 8, 8, 0)
        "r1 = r10\nr1 += -0x8\nr2 = -0x4\nr3 = r1\nr4 = 0x8\nr5 = 0x0\ncall 0x1c\nexit",
        // bpf_strncmp(r10 - 8, u64::MAX, r10 - 8)
        "r1 = r10\nr1 += -0x8\nr2 = -0x1\nr3 = r1\ncall 0xb6\nexit",
        // bpf_skb_store_bytes(skb, u64::MAX, r10 - 8, 4, 0)
        "r2 = -0x1\nr3 = r10\nr3 += -0x8\nr4 = 0x4\nr5 = 0x0\ncall 0x9\nexit",
    ];
    for asm in cases {
        let insns = assemble(asm).unwrap();
        let fd = rt
            .prog_load(ProgLoad { name: "hostile".into(), prog_type: ProgType::SchedCls, insns, fd_array: vec![] })
            .unwrap();
        let prog = rt.prog_by_fd(fd).unwrap();
        let mut frame = vec![0u8; 64];
        frame[12] = 0x08; // IPv4 EtherType with a full header after it
        let mut meta = bpfkit::SkbMeta::default();
        match prog.run_skb(&mut w, &mut frame, &mut meta) {
            Ok(r0) => assert!((r0 as i64) < 0, "{asm}: expected a negative errno, got {r0}"),
            Err(e) => assert!(matches!(e, Error::Run { .. }), "{asm}: {e}"),
        }
    }
}
