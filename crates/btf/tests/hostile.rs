//! Malformed and hostile input: every case must give an error (or a bounded answer), never a
//! panic, a hang or a huge allocation.

mod common;

use bpfkit_btf::*;
use common::{Builder, build_ext, info, kind, put32};

fn parse_err(data: &[u8]) -> BtfError {
    fuzz_parse(data);
    Btf::parse(data).expect_err("must be rejected")
}

fn ext_err(data: &[u8]) -> BtfError {
    fuzz_parse(data);
    BtfExt::parse(data).expect_err("must be rejected")
}

/// A small valid section: int, pointer to it, a struct holding both.
fn small() -> Builder {
    let mut b = Builder::default();
    let int = b.int("int", 4, true);
    let p = b.ptr(int);
    b.struct_("s", 16, &[("a", int, 0), ("p", p, 64)]);
    b
}

#[test]
fn builder_output_parses() {
    let btf = Btf::parse(&small().build()).unwrap();
    assert_eq!(btf.len(), 4);
    assert_eq!(btf.type_to_string(TypeId(2)).unwrap(), "int *");
    assert_eq!(btf.size_of(TypeId(3)).unwrap(), 16);
}

// ---------------------------------------------------------------- headers

#[test]
fn short_headers() {
    for len in 0..8 {
        assert!(matches!(parse_err(&small().build()[..len]), BtfError::Truncated { section: ".BTF", offset: 0, .. }));
    }
    let data = small().build();
    for len in 8..data.len() {
        parse_err(&data[..len]);
    }
    let ext = build_ext(&[8, 0, 1, 0, 1], &[], &[]);
    for len in 0..ext.len() {
        let e = ext_err(&ext[..len]);
        assert!(e.to_string().starts_with(".BTF.ext"), "{e}");
    }
}

#[test]
fn every_prefix_of_real_sections_is_rejected() {
    for o in ["kinds.o", "maps.o", "core.o"] {
        let (btf, ext) = common::sections(o);
        for len in 0..btf.len() {
            parse_err(&btf[..len]);
        }
        let parsed = Btf::parse(&btf).unwrap();
        for len in 0..ext.len() {
            // A prefix may still parse when it ends between groups (sub-section lengths are
            // checked against the data, so most do not), but must not panic.
            if let Ok(e) = BtfExt::parse(&ext[..len]) {
                let _ = e.func_info(&parsed);
                let _ = e.line_info(&parsed);
                let _ = e.core_relos(&parsed);
            }
        }
    }
}

#[test]
fn magic_version_flags() {
    let mut d = small().build();
    d[0..2].copy_from_slice(&[0xeb, 0x9f]);
    let e = parse_err(&d);
    assert_eq!(e, BtfError::BigEndian { section: ".BTF" });
    assert_eq!(e.to_string(), ".BTF: big-endian BTF is not supported");
    d[0..2].copy_from_slice(&[0x12, 0x34]);
    assert_eq!(parse_err(&d), BtfError::BadMagic { section: ".BTF", magic: 0x3412 });
    let mut d = small().build();
    d[2] = 2;
    assert_eq!(parse_err(&d), BtfError::BadVersion { section: ".BTF", version: 2 });
    let mut d = small().build();
    d[3] = 1;
    assert_eq!(parse_err(&d), BtfError::BadFlags { section: ".BTF", flags: 1 });

    let mut ext = build_ext(&[], &[], &[]);
    ext[0..2].copy_from_slice(&[0xeb, 0x9f]);
    assert_eq!(ext_err(&ext), BtfError::BigEndian { section: ".BTF.ext" });
}

#[test]
fn header_lengths() {
    let base = small().build();
    // hdr_len shorter than the version-1 header
    let mut d = base.clone();
    put32(&mut d, 4, 16);
    assert!(matches!(parse_err(&d), BtfError::BadHeaderLen { hdr_len: 16, .. }));
    // hdr_len longer than the section
    let mut d = base.clone();
    put32(&mut d, 4, 10_000);
    assert!(matches!(parse_err(&d), BtfError::Truncated { needed: 10_000, .. }));
    put32(&mut d, 4, u32::MAX);
    parse_err(&d);

    // A longer header whose extra bytes are zero is accepted (offsets stay relative to its end).
    let with_extra = |extra: &[u8]| {
        let mut d = base[..24].to_vec();
        put32(&mut d, 4, 24 + extra.len() as u32);
        d.extend_from_slice(extra);
        d.extend_from_slice(&base[24..]);
        d
    };
    let ok = Btf::parse(&with_extra(&[0; 8])).unwrap();
    assert_eq!(ok.header().hdr_len, 32);
    assert_eq!(ok.types(), Btf::parse(&base).unwrap().types());
    // ... but not if they are not.
    assert_eq!(
        parse_err(&with_extra(&[0, 0, 0, 0, 0, 7, 0, 0])),
        BtfError::UnknownHeaderField { section: ".BTF", offset: 29, hdr_len: 32 }
    );

    // .BTF.ext: a 24-byte header has no CO-RE fields; longer ones must be zero past 32.
    let mut ext = build_ext(&[8, 0, 1, 0, 1], &[], &[]);
    let body = ext.split_off(32);
    let mut short = ext[..24].to_vec();
    put32(&mut short, 4, 24);
    short.extend_from_slice(&body);
    let parsed = BtfExt::parse(&short).unwrap();
    assert_eq!((parsed.header().core_relo_off, parsed.header().core_relo_len), (0, 0));
    assert_eq!(parsed.func_info_groups()[0].records, [FuncInfo { insn_off: 0, type_id: TypeId(1) }]);
    let mut long = ext.clone();
    put32(&mut long, 4, 36);
    long.extend_from_slice(&[0, 0, 0, 1]);
    long.extend_from_slice(&body);
    assert_eq!(ext_err(&long), BtfError::UnknownHeaderField { section: ".BTF.ext", offset: 35, hdr_len: 36 });
    put32(&mut short, 4, 20);
    assert!(matches!(ext_err(&short), BtfError::BadHeaderLen { section: ".BTF.ext", hdr_len: 20, .. }));
}

// ---------------------------------------------------------------- sub-sections

#[test]
fn subsection_ranges() {
    let base = small().build();
    let set = |off: usize, v: u32| {
        let mut d = base.clone();
        put32(&mut d, off, v);
        d
    };
    // type_off beyond the section
    assert!(matches!(parse_err(&set(8, 4096)), BtfError::BadSubsection { what: "type", off: 4096, .. }));
    // type_off + type_len overflows u32
    assert!(matches!(parse_err(&set(12, u32::MAX)), BtfError::BadSubsection { what: "type", .. }));
    let mut d = set(8, u32::MAX - 3);
    put32(&mut d, 12, 8);
    assert!(matches!(parse_err(&d), BtfError::BadSubsection { what: "type", .. }));
    // unaligned type section
    assert!(matches!(
        parse_err(&set(8, 2)),
        BtfError::BadSubsection { what: "type", reason: "is not 4-byte aligned", .. }
    ));
    // string section beyond the end
    assert!(matches!(parse_err(&set(20, 10_000)), BtfError::BadSubsection { what: "string", .. }));
    assert!(matches!(parse_err(&set(16, u32::MAX)), BtfError::BadSubsection { what: "string", .. }));
    // overlapping
    assert!(matches!(
        parse_err(&set(16, 4)),
        BtfError::BadSubsection { what: "string", reason: "overlaps the type section", .. }
    ));
    // string table problems
    assert!(matches!(parse_err(&set(20, 0)), BtfError::BadStringTable { .. }));
    let mut d = base.clone();
    let last = d.len() - 1;
    d[last] = b'x';
    assert!(matches!(parse_err(&d), BtfError::BadStringTable { reason: "last string is not NUL-terminated", .. }));
    let mut d = base.clone();
    let str_start = 24 + small().types.len();
    d[str_start] = b'x';
    assert!(matches!(parse_err(&d), BtfError::BadStringTable { .. }));
    // a type section that ends inside a type
    // (the 4 bytes left over form a gap before the string table, which is allowed)
    let d = set(12, small().types.len() as u32 - 4);
    assert_eq!(parse_err(&d), BtfError::Truncated { section: ".BTF", offset: 24 + 28 + 12, needed: 24, available: 20 });
    // empty type section: only void
    let mut b = Builder::default();
    b.str("a longer string");
    let mut d = b.build();
    let btf = Btf::parse(&d).unwrap();
    assert!(btf.is_empty());
    put32(&mut d, 8, 4); // an empty type section "inside" the string table overlaps nothing
    assert!(Btf::parse(&d).unwrap().is_empty());
    assert_eq!(btf.type_to_string(TypeId(0)).unwrap(), "void");
}

// ---------------------------------------------------------------- types

#[test]
fn huge_vlen_is_checked_before_allocating() {
    for k in [kind::STRUCT, kind::UNION, kind::ENUM, kind::FUNC_PROTO, kind::DATASEC] {
        let mut b = Builder::default();
        b.raw(0, info(k, 0xffff, false), 4, &[]);
        match parse_err(&b.build()) {
            BtfError::Truncated { section: ".BTF", offset: 36, needed, available: 0 } => assert!(needed >= 0xffff * 8),
            e => panic!("{e:?}"),
        }
    }
    // vlen on a kind without trailing records
    let mut b = Builder::default();
    b.raw(0, info(kind::PTR, 3, false), 0, &[]);
    assert!(matches!(parse_err(&b.build()), BtfError::BadType { id: 1, .. }));
}

#[test]
fn unknown_kinds() {
    for k in [0u32, 20, 31] {
        let mut b = small();
        b.raw(0, info(k, 0, false), 0, &[]);
        assert_eq!(parse_err(&b.build()), BtfError::UnknownKind { id: 4, offset: 24 + 16 + 12 + 36, kind: k as u8 });
    }
    // reserved info bits
    let mut b = Builder::default();
    b.raw(0, info(kind::PTR, 0, false) | (1 << 20), 0, &[]);
    assert!(matches!(parse_err(&b.build()), BtfError::BadType { id: 1, .. }));
}

#[test]
fn bad_ints_and_sizes() {
    for (size, data) in [(3, 24), (4, 33), (4, 0x0800_0020), (4, 0x0300_0020), (1, 0x0004_0008), (32, 0x20)] {
        let mut b = Builder::default();
        b.raw(0, info(kind::INT, 0, false), size, &[data]);
        assert!(matches!(parse_err(&b.build()), BtfError::BadType { id: 1, .. }), "size {size} data {data:#x}");
    }
    let mut b = Builder::default();
    b.raw(0, info(kind::ENUM, 0, false), 3, &[]);
    assert!(matches!(parse_err(&b.build()), BtfError::BadType { id: 1, .. }));
    let mut b = Builder::default();
    b.raw(0, info(16, 0, false), 5, &[]);
    assert!(matches!(parse_err(&b.build()), BtfError::BadType { id: 1, .. }));
}

#[test]
fn bad_string_offsets() {
    // type name
    let mut b = Builder::default();
    b.raw(9999, info(kind::PTR, 0, false), 0, &[]);
    assert_eq!(
        parse_err(&b.build()),
        BtfError::BadString { section: ".BTF", offset: 9999, reason: "outside the string table" }
    );
    // member name
    let mut b = Builder::default();
    let int = b.int("int", 4, true);
    b.raw(0, info(kind::STRUCT, 1, false), 4, &[u32::MAX, int, 0]);
    assert!(matches!(parse_err(&b.build()), BtfError::BadString { offset: u32::MAX, .. }));
    // exactly one past the end
    let mut b = Builder::default();
    b.raw(0, info(kind::PTR, 0, false), 0, &[]);
    let end = b.strings.len() as u32;
    b.raw(end, info(kind::PTR, 0, false), 0, &[]);
    assert!(matches!(parse_err(&b.build()), BtfError::BadString { .. }));
    // invalid UTF-8 in a name
    let mut b = Builder::default();
    b.strings.extend_from_slice(&[0xff, 0xfe, 0]);
    b.raw(1, info(kind::TYPEDEF, 0, false), 0, &[]);
    assert!(matches!(parse_err(&b.build()), BtfError::BadString { offset: 1, reason: "not valid UTF-8", .. }));
    // an offset into the middle of a string is a valid (suffix) string
    let mut b = Builder::default();
    let n = b.str("hello");
    b.raw(n + 2, info(kind::TYPEDEF, 0, false), 0, &[]);
    assert_eq!(Btf::parse(&b.build()).unwrap().name_of(TypeId(1)), Some("llo"));
}

#[test]
fn bad_type_ids() {
    let mut b = Builder::default();
    b.ptr(99);
    assert_eq!(parse_err(&b.build()), BtfError::BadTypeId { section: ".BTF", id: 99, referenced_by: 1 });
    let mut b = small();
    b.array(1, 77, 4);
    assert_eq!(parse_err(&b.build()), BtfError::BadTypeId { section: ".BTF", id: 77, referenced_by: 4 });
    let mut b = small();
    b.struct_("t", 4, &[("x", u32::MAX, 0)]);
    assert!(matches!(parse_err(&b.build()), BtfError::BadTypeId { id: u32::MAX, referenced_by: 4, .. }));
    let mut b = small();
    b.func_proto(1, &[1, 1000]);
    assert!(matches!(parse_err(&b.build()), BtfError::BadTypeId { id: 1000, .. }));
    // a FUNC must point at a FUNC_PROTO
    let mut b = small();
    let n = b.str("f");
    b.raw(n, info(kind::FUNC, 1, false), 1, &[]);
    assert_eq!(
        parse_err(&b.build()),
        BtfError::BadReference {
            section: ".BTF",
            id: 1,
            referenced_by: 4,
            expected: "FUNC_PROTO",
            found: BtfKind::Int
        }
    );
    // a DATASEC holds VARs and FUNCs only
    let mut b = small();
    let n = b.str(".data");
    b.raw(n, info(kind::DATASEC, 1, false), 0, &[1, 0, 4]);
    assert!(matches!(parse_err(&b.build()), BtfError::BadReference { expected: "VAR or FUNC", .. }));
    // DECL_TAG target kind and component index
    let mut b = small();
    let n = b.str("tag");
    b.raw(n, info(kind::DECL_TAG, 0, false), 1, &[u32::MAX]);
    assert!(matches!(parse_err(&b.build()), BtfError::BadReference { id: 1, .. }));
    let mut b = small();
    let n = b.str("tag");
    b.raw(n, info(kind::DECL_TAG, 0, false), 3, &[2]);
    assert!(matches!(parse_err(&b.build()), BtfError::BadType { id: 4, .. }));
    let mut b = small();
    let n = b.str("tag");
    b.raw(n, info(kind::DECL_TAG, 0, false), 3, &[(-2i32) as u32]);
    assert!(matches!(parse_err(&b.build()), BtfError::BadType { id: 4, .. }));
    let mut b = small();
    let n = b.str("tag");
    b.raw(n, info(kind::DECL_TAG, 0, false), 3, &[1]);
    Btf::parse(&b.build()).unwrap();
}

#[test]
fn reference_loops() {
    // typedef A -> typedef B -> typedef A
    let mut b = Builder::default();
    b.typedef("A", 2);
    b.typedef("B", 1);
    assert!(matches!(parse_err(&b.build()), BtfError::Loop { .. }));
    // self-referencing typedef
    let mut b = Builder::default();
    b.typedef("A", 1);
    assert_eq!(parse_err(&b.build()), BtfError::Loop { id: 1 });
    // const -> volatile -> const
    let mut b = Builder::default();
    b.raw(0, info(kind::CONST, 0, false), 2, &[]);
    b.raw(0, info(kind::VOLATILE, 0, false), 1, &[]);
    assert!(matches!(parse_err(&b.build()), BtfError::Loop { .. }));
    // struct containing itself by value, directly and through an array and a typedef
    let mut b = Builder::default();
    let int = b.int("int", 4, true);
    b.struct_("s", 8, &[("a", int, 0), ("self", 2, 32)]);
    assert!(matches!(parse_err(&b.build()), BtfError::Loop { id: 2 }));
    let mut b = Builder::default();
    b.struct_("s", 8, &[("arr", 2, 0)]);
    b.array(3, 0, 2);
    b.typedef("s_t", 1);
    assert!(matches!(parse_err(&b.build()), BtfError::Loop { .. }));
    // pointer to itself, and a pointer loop through a function prototype
    let mut b = Builder::default();
    b.ptr(1);
    assert!(matches!(parse_err(&b.build()), BtfError::Loop { id: 1 }));
    let mut b = Builder::default();
    b.ptr(2);
    b.func_proto(0, &[1]);
    assert!(matches!(parse_err(&b.build()), BtfError::Loop { .. }));
    // array of itself
    let mut b = Builder::default();
    b.array(1, 0, 1);
    assert!(matches!(parse_err(&b.build()), BtfError::Loop { id: 1 }));

    // A struct holding a pointer to itself is fine.
    let mut b = Builder::default();
    let p = b.ptr(2);
    b.struct_("list", 8, &[("next", p, 0)]);
    let btf = Btf::parse(&b.build()).unwrap();
    assert_eq!(btf.type_to_string(TypeId(1)).unwrap(), "struct list *");
    assert_eq!(btf.size_of(TypeId(2)).unwrap(), 8);
    assert!(btf.member_by_name(TypeId(2), "next").unwrap().is_some());
}

#[test]
fn long_chains_do_not_overflow_the_stack() {
    // 200 000 typedefs in a chain: resolve and size_of are iterative, printing is depth-bounded.
    let mut b = Builder::default();
    let int = b.int("int", 4, true);
    let mut last = int;
    for _ in 0..200_000 {
        last = b.typedef("", last);
    }
    let mut ptrs = int;
    for _ in 0..200_000 {
        ptrs = b.ptr(ptrs);
    }
    let btf = Btf::parse(&b.build()).unwrap();
    assert_eq!(btf.resolve(TypeId(last)).unwrap(), TypeId(int));
    assert_eq!(btf.size_of(TypeId(last)).unwrap(), 4);
    assert_eq!(btf.type_to_string(TypeId(last)).unwrap(), "(anon)");
    assert_eq!(btf.type_to_string(TypeId(ptrs)).unwrap_err(), BtfError::TooDeep { id: ptrs, limit: MAX_PRINT_DEPTH });
    assert_eq!(btf.size_of(TypeId(ptrs)).unwrap(), 8);
}

#[test]
fn too_many_types() {
    let mut b = Builder::default();
    for _ in 0..=BTF_MAX_TYPE {
        b.raw(0, info(kind::PTR, 0, false), 0, &[]);
    }
    assert_eq!(parse_err(&b.build()), BtfError::TooManyTypes { limit: BTF_MAX_TYPE });
}

#[test]
fn size_overflow() {
    let mut b = Builder::default();
    let int = b.int("int", 4, true);
    let a = b.array(int, int, u32::MAX);
    let aa = b.array(a, int, u32::MAX);
    let half = b.array(int, int, 0x4000_0000);
    let zero = b.array(a, int, 0);
    let btf = Btf::parse(&b.build()).unwrap();
    assert_eq!(btf.size_of(TypeId(a)).unwrap_err(), BtfError::SizeOverflow { id: a });
    assert_eq!(btf.size_of(TypeId(aa)).unwrap_err(), BtfError::SizeOverflow { id: aa });
    assert_eq!(btf.size_of(TypeId(half)).unwrap_err(), BtfError::SizeOverflow { id: half });
    assert_eq!(btf.size_of(TypeId(zero)).unwrap(), 0);
    assert_eq!(btf.size_of(TypeId(99)).unwrap_err(), BtfError::NoSuchType { id: 99 });
    assert!(matches!(btf.size_of(TypeId(0)), Err(BtfError::NoSize { kind: BtfKind::Void, .. })));
}

#[test]
fn exponential_types_are_bounded() {
    // Prototype k takes two pointers to prototype k-1: printing it would visit 2^20 types.
    let mut b = Builder::default();
    let int = b.int("int", 4, true);
    let mut proto = b.func_proto(int, &[int]);
    for _ in 0..20 {
        let p = b.ptr(proto);
        proto = b.func_proto(int, &[p, p]);
    }
    // Struct k has two anonymous members of struct k-1: a member search visits 2^40 members.
    let mut st = b.struct_("", 4, &[("leaf", int, 0)]);
    for _ in 0..40 {
        st = b.struct_("", 4, &[("", st, 0), ("", st, 0)]);
    }
    let btf = Btf::parse(&b.build()).unwrap();
    assert_eq!(
        btf.type_to_string(TypeId(proto)).unwrap_err(),
        BtfError::TooComplex { id: proto, limit: MAX_QUERY_WORK }
    );
    assert_eq!(btf.member_by_name(TypeId(st), "leaf").unwrap().unwrap().bit_offset, 0);
    assert_eq!(
        btf.member_by_name(TypeId(st), "x").unwrap_err(),
        BtfError::TooComplex { id: st, limit: MAX_QUERY_WORK }
    );
    fuzz_parse(&b.build());
}

#[test]
fn map_definition_errors() {
    let mut b = Builder::default();
    let int = b.int("int", 4, true);
    let arr = b.array(int, int, 7);
    let p_arr = b.ptr(arr);
    let p_int = b.ptr(int);
    let arr_nz = b.array(p_int, int, 2);
    let arr_int = b.array(int, int, 0);
    let s_bad_type = b.struct_("", 8, &[("type", p_int, 0)]);
    let s_bad_key = b.struct_("", 8, &[("key", arr, 0)]);
    let s_anon = b.struct_("", 8, &[("", p_arr, 0)]);
    let s_values_nz = b.struct_("", 16, &[("values", arr_nz, 0)]);
    let s_values_int = b.struct_("", 0, &[("values", arr_int, 0)]);
    let s_values_ptr = b.struct_("", 8, &[("values", p_int, 0)]);
    let s_int = b.struct_("", 4, &[("max_entries", int, 0)]);
    let s_custom = b.struct_("", 16, &[("my_uint", p_arr, 0), ("my_type", p_int, 64)]);
    let btf = Btf::parse(&b.build()).unwrap();
    for s in [s_bad_type, s_bad_key, s_anon, s_values_nz, s_values_int, s_values_ptr, s_int] {
        match btf.map_def_fields(TypeId(s)) {
            Err(BtfError::MapDef { id, .. }) => assert_eq!(id, s),
            r => panic!("struct {s}: {r:?}"),
        }
    }
    assert_eq!(
        btf.map_def_fields(TypeId(s_custom)).unwrap(),
        [("my_uint".to_owned(), MapField::Uint(7)), ("my_type".to_owned(), MapField::Type(TypeId(int)))]
    );
    assert!(matches!(btf.map_def_fields(TypeId(int)), Err(BtfError::WrongKind { .. })));
    assert!(matches!(btf.map_def_fields(TypeId(12345)), Err(BtfError::NoSuchType { id: 12345 })));
}

// ---------------------------------------------------------------- .BTF.ext

/// `.BTF` with a FUNC (id 3) and strings "sec", "file.c", "line".
fn ext_btf() -> (Btf, u32, u32, u32) {
    let mut b = Builder::default();
    let int = b.int("int", 4, true);
    let proto = b.func_proto(int, &[]);
    let n = b.str("f");
    b.raw(n, info(kind::FUNC, 1, false), proto, &[]);
    let (sec, file, line) = (b.str("sec"), b.str("file.c"), b.str("line"));
    (Btf::parse(&b.build()).unwrap(), sec, file, line)
}

#[test]
fn ext_records() {
    let (btf, sec, file, line) = ext_btf();
    // func_info records of 12 bytes: the unknown trailing word is skipped.
    let ext = build_ext(
        &[12, sec, 2, 0, 3, 0xdead, 16, 3, 0xbeef],
        &[16, sec, 1, 8, file, line, (7 << 10) | 5],
        &[16, sec, 1, 8, 1, line, 0],
    );
    let parsed = BtfExt::parse(&ext).unwrap();
    assert_eq!(parsed.func_info_rec_size(), 12);
    let fi = parsed.func_info(&btf).unwrap();
    assert_eq!(fi[0].section, "sec");
    assert_eq!(
        fi[0].records,
        [
            FuncInfoEntry { insn_off: 0, type_id: TypeId(3), name: "f".into() },
            FuncInfoEntry { insn_off: 16, type_id: TypeId(3), name: "f".into() }
        ]
    );
    let li = parsed.line_info(&btf).unwrap();
    assert_eq!(
        li[0].records,
        [LineInfoEntry { insn_off: 8, file_name: "file.c".into(), line_text: "line".into(), line: 7, col: 5 }]
    );
    let cr = parsed.core_relos(&btf).unwrap();
    assert_eq!(cr[0].records[0].kind, CoreReloKind::FieldByteOffset);
    fuzz_parse(&ext);
}

#[test]
fn ext_hostile_counts_and_sizes() {
    let (btf, sec, file, line) = ext_btf();
    // num_info that would need a huge allocation
    let e = ext_err(&build_ext(&[8, sec, u32::MAX, 0, 3], &[], &[]));
    assert!(matches!(e, BtfError::BadRecordCount { what: "func_info", offset: 36, num_info: u32::MAX, .. }), "{e:?}");
    let e = ext_err(&build_ext(&[], &[16, sec, 0x1000_0000, 0, 0, 0, 0], &[]));
    assert!(matches!(e, BtfError::BadRecordCount { what: "line_info", .. }), "{e:?}");
    // zero records in a group
    assert!(matches!(ext_err(&build_ext(&[8, sec, 0], &[], &[])), BtfError::BadRecordCount { num_info: 0, .. }));
    // record sizes: too small, unaligned, huge
    for rec in [0, 4, 9, u32::MAX] {
        let e = ext_err(&build_ext(&[rec, sec, 1, 0, 3], &[], &[]));
        assert!(matches!(e, BtfError::BadRecordSize { what: "func_info", .. }), "{rec}: {e:?}");
    }
    let e = ext_err(&build_ext(&[0xffff_fff0, sec, 1, 0, 3], &[], &[]));
    assert!(matches!(e, BtfError::BadRecordCount { .. }), "{e:?}");
    // a truncated group header
    assert!(matches!(ext_err(&build_ext(&[8, sec], &[], &[])), BtfError::Truncated { section: ".BTF.ext", .. }));
    // sub-section outside the section / unaligned
    let mut d = build_ext(&[8, sec, 1, 0, 3], &[], &[]);
    put32(&mut d, 8, 1 << 20);
    assert!(matches!(ext_err(&d), BtfError::BadSubsection { what: "func_info", .. }));
    put32(&mut d, 8, 2);
    assert!(matches!(ext_err(&d), BtfError::BadSubsection { reason: "is not 4-byte aligned", .. }));
    put32(&mut d, 8, u32::MAX);
    put32(&mut d, 12, u32::MAX);
    assert!(matches!(ext_err(&d), BtfError::BadSubsection { .. }));

    // Records whose strings or type ids are bad parse, but do not resolve.
    let ok = |f: &[u32], l: &[u32], c: &[u32]| BtfExt::parse(&build_ext(f, l, c)).unwrap();
    let e = ok(&[8, 9999, 1, 0, 3], &[], &[]).func_info(&btf).unwrap_err();
    assert_eq!(e, BtfError::BadString { section: ".BTF.ext", offset: 9999, reason: "outside the string table" });
    let e = ok(&[8, sec, 1, 0, 99], &[], &[]).func_info(&btf).unwrap_err();
    assert_eq!(e, BtfError::BadTypeId { section: ".BTF.ext", id: 99, referenced_by: 44 });
    let e = ok(&[8, sec, 1, 0, 1], &[], &[]).func_info(&btf).unwrap_err();
    assert!(matches!(e, BtfError::BadReference { expected: "FUNC", found: BtfKind::Int, .. }));
    let e = ok(&[], &[16, sec, 1, 0, u32::MAX, line, 0], &[]).line_info(&btf).unwrap_err();
    assert!(matches!(e, BtfError::BadString { section: ".BTF.ext", offset: u32::MAX, .. }));
    let e = ok(&[], &[16, sec, 1, 0, file, 12345, 0], &[]).line_info(&btf).unwrap_err();
    assert!(matches!(e, BtfError::BadString { offset: 12345, .. }));
    let e = ok(&[], &[], &[16, sec, 1, 0, 1, line, 13]).core_relos(&btf).unwrap_err();
    assert!(matches!(e, BtfError::BadExtRecord { what: "core_relo", .. }));
    let e = ok(&[], &[], &[16, sec, 1, 0, 50, line, 0]).core_relos(&btf).unwrap_err();
    assert!(matches!(e, BtfError::BadTypeId { id: 50, .. }));
}

// ---------------------------------------------------------------- mutation

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut d = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        if d.is_empty() {
            break;
        }
        let i = rng.below(d.len());
        match rng.below(6) {
            0 => d[i] ^= 1 << rng.below(8),
            1 => d[i] = rng.next() as u8,
            2 => {
                // an interesting 32-bit value at a 4-aligned offset
                let i = i & !3;
                let v = [0, 1, 0xff, 0xffff, 0x7fff_ffff, u32::MAX, rng.next() as u32][rng.below(7)];
                if i + 4 <= d.len() {
                    put32(&mut d, i, v);
                }
            }
            3 => d.truncate(i),
            4 => {
                let j = rng.below(d.len());
                d[i] = d[j];
            }
            _ => {
                let b = rng.next() as u8;
                d.insert(i, b);
            }
        }
    }
    d
}

#[test]
fn mutated_real_sections_never_panic() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for o in ["kinds.o", "maps.o", "core.o"] {
        let (btf, ext) = common::sections(o);
        let parsed = Btf::parse(&btf).unwrap();
        for _ in 0..3000 {
            let m = mutate(&mut rng, &btf);
            fuzz_parse(&m);
            let m = mutate(&mut rng, &ext);
            if let Ok(e) = BtfExt::parse(&m) {
                let _ = e.func_info(&parsed);
                let _ = e.line_info(&parsed);
                let _ = e.core_relos(&parsed);
            }
        }
    }
    for len in 0..300 {
        let garbage: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        fuzz_parse(&garbage);
    }
}
