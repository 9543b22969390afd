//! Loading clang-built objects: programs by section, subprogram linking, relocations, maps,
//! global data, line info.

use bpfkit_isa::{CallTarget, Insn, LdImmSrc, decode_program};
use bpfkit_object::{MapOrigin, ObjectFile, ProgType, RelocTarget};

fn object(name: &str) -> ObjectFile {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    ObjectFile::parse(&std::fs::read(&path).unwrap()).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn programs_subprograms_and_relocations() {
    let obj = object("linking.o");
    assert_eq!(obj.license, "GPL");
    let names: Vec<_> = obj.programs.iter().map(|p| (p.name.as_str(), p.section.as_str(), p.prog_type)).collect();
    assert_eq!(names, [("prog", "xdp", Some(ProgType::Xdp)), ("sock", "socket", Some(ProgType::SocketFilter))]);

    let xdp = obj.program("prog").unwrap();
    let subs: Vec<_> = xdp.subprogs.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(subs[0], "prog");
    assert!(subs.contains(&"bump") && subs.contains(&"gfun"), "{subs:?}");
    // Every local call lands on the start of an appended subprogram.
    let starts: Vec<usize> = xdp.subprogs.iter().map(|s| s.start).collect();
    for l in decode_program(&xdp.insns).unwrap() {
        if let Insn::Call(CallTarget::Local(rel)) = l.insn {
            let target = (l.pc as i64 + 1 + i64::from(rel)) as usize;
            assert!(starts.contains(&target), "call at {} to {target}, starts {starts:?}", l.pc);
        }
    }
    // `bump` is appended once, even though both programs use it; each program has its own copy.
    let sock = obj.program("sock").unwrap();
    assert_eq!(sock.subprogs.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["sock", "bump"]);

    // Map and global-data references.
    let (counts, _) = obj.map("counts").unwrap();
    let targets: Vec<&RelocTarget> = xdp.relocs.iter().map(|r| &r.target).collect();
    assert!(targets.contains(&&RelocTarget::Map(counts)), "{targets:?}");
    let (rodata, rodata_def) = obj.map(".rodata").unwrap();
    assert!(matches!(rodata_def.origin, MapOrigin::Data { read_only: true, .. }));
    assert!(rodata_def.read_only_to_programs());
    // `drop_port` at .rodata+0 and the printk format at .rodata+4.
    assert!(targets.contains(&&RelocTarget::MapValue { map: rodata, offset: 0 }), "{targets:?}");
    assert!(targets.contains(&&RelocTarget::MapValue { map: rodata, offset: 4 }), "{targets:?}");
    assert_eq!(&rodata_def.data[..4], &53u32.to_le_bytes());
    // Every relocation sits on a lddw.
    let decoded = decode_program(&xdp.insns).unwrap();
    for r in &xdp.relocs {
        let insn = decoded.iter().find(|l| l.pc == r.insn).unwrap().insn;
        assert!(matches!(insn, Insn::LdImm64 { src: LdImmSrc::Imm, .. }), "{insn:?}");
    }
}

#[test]
fn btf_defined_maps_and_global_data() {
    let obj = object("linking.o");
    let (_, counts) = obj.map("counts").unwrap();
    assert_eq!((counts.map_type, counts.key_size, counts.value_size, counts.max_entries), (2, 4, 8, 4));
    assert_eq!(counts.origin, MapOrigin::Btf);
    let (_, h) = obj.map("h").unwrap();
    assert_eq!((h.map_type, h.key_size, h.value_size, h.max_entries), (1, 4, 8, 16));
    let (_, data) = obj.map(".data").unwrap();
    assert_eq!(data.data, b"hello\0");
    assert!(!data.read_only_to_programs());
    let (_, bss) = obj.map(".bss").unwrap();
    assert_eq!(bss.value_size, 16);
    assert!(bss.data.iter().all(|&b| b == 0));
}

#[test]
fn line_info_follows_linked_instructions() {
    let obj = object("linking.o");
    let xdp = obj.program("prog").unwrap();
    assert!(!xdp.line_info.is_empty());
    let first = xdp.line_of(0).unwrap();
    assert_eq!(first.file, "./linking.c");
    assert!(first.text.contains("SEC(\"xdp\") int prog"), "{first:?}");
    // An instruction of the appended `bump` maps to bump's source line.
    let bump = xdp.subprogs.iter().find(|s| s.name == "bump").unwrap();
    let l = xdp.line_of(bump.start).unwrap();
    assert!(l.text.contains("bump"), "{l:?}");
}

#[test]
fn legacy_and_iproute2_map_sections() {
    let obj = object("legacy_maps.o");
    let (_, h) = obj.map("legacy_hash").unwrap();
    assert_eq!((h.map_type, h.key_size, h.value_size, h.max_entries, h.flags), (1, 4, 8, 64, 0));
    assert_eq!(h.origin, MapOrigin::Legacy);
    let (a_idx, a) = obj.map("legacy_array").unwrap();
    assert_eq!((a.map_type, a.key_size, a.value_size, a.max_entries), (2, 4, 16, 2));
    let p = obj.program("use_legacy").unwrap();
    assert!(p.relocs.iter().any(|r| r.target == RelocTarget::Map(a_idx)));

    let obj = object("iproute2_maps.o");
    let (_, m) = obj.map("tc_counters").unwrap();
    assert_eq!((m.map_type, m.key_size, m.value_size, m.max_entries, m.pinning), (2, 4, 8, 4, 2));
    assert_eq!(m.origin, MapOrigin::Iproute2 { id: 7, inner_id: 0, inner_idx: 0 });
    assert_eq!(obj.program("cls").unwrap().prog_type, Some(ProgType::SchedCls));
}
