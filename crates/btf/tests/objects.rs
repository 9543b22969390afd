//! Parses the clang-22 objects in `tests/data` (built by `tests/data/build.sh`) and checks the
//! types, map definitions, datasec variables, func_info, line_info and CO-RE relocations against
//! their C sources.

mod common;

use bpfkit_btf::*;
use std::collections::BTreeSet;

fn id_of(btf: &Btf, kind: BtfKind, name: &str) -> TypeId {
    btf.find_by_name(kind, name).unwrap_or_else(|| panic!("no {kind} '{name}'"))
}

fn kind_of(btf: &Btf, id: TypeId) -> &TypeKind {
    &btf.type_by_id(id).unwrap().kind
}

fn member<'a>(btf: &'a Btf, st: TypeId, name: &str) -> FoundMember<'a> {
    btf.member_by_name(st, name).unwrap().unwrap_or_else(|| panic!("no member {name}"))
}

fn member_type_string(btf: &Btf, st: TypeId, name: &str) -> String {
    btf.type_to_string(member(btf, st, name).member.ty).unwrap()
}

#[test]
fn every_kind_is_present() {
    let (btf, _) = common::load("kinds.o");
    let kinds: BTreeSet<BtfKind> = btf.types().iter().map(|t| t.btf_kind()).collect();
    for n in 1..=19 {
        let k = BtfKind::from_u8(n).unwrap();
        assert!(kinds.contains(&k), "kinds.o has no {k}");
    }
    assert_eq!(btf.types()[0].kind, TypeKind::Void);
    assert_eq!(btf.header().version, 1);
    assert_eq!(btf.header().hdr_len, BTF_HEADER_LEN);
}

#[test]
fn ints_and_floats() {
    let (btf, _) = common::load("kinds.o");
    let int = |name: &str| match kind_of(&btf, id_of(&btf, BtfKind::Int, name)) {
        TypeKind::Int(i) => *i,
        k => panic!("{k:?}"),
    };
    assert_eq!(int("int"), Int { size: 4, encoding: Int::SIGNED, offset: 0, bits: 32 });
    assert_eq!(int("unsigned int"), Int { size: 4, encoding: 0, offset: 0, bits: 32 });
    assert!(int("_Bool").is_bool());
    assert!(int("char").is_signed());
    assert_eq!(int("__int128").size, 16);
    assert_eq!(int("__int128").bits, 128);
    assert!(!int("unsigned __int128").is_signed());
    for (name, size) in [("float", 4), ("double", 8), ("long double", 8)] {
        let id = id_of(&btf, BtfKind::Float, name);
        assert_eq!(kind_of(&btf, id), &TypeKind::Float { size });
        assert_eq!(btf.size_of(id).unwrap(), size);
    }
}

#[test]
fn bitfield_struct() {
    let (btf, _) = common::load("kinds.o");
    let bits = id_of(&btf, BtfKind::Struct, "bits");
    let TypeKind::Struct(c) = kind_of(&btf, bits) else { panic!() };
    assert_eq!(c.size, 16);
    let got: Vec<_> = c.members.iter().map(|m| (m.name.as_deref().unwrap(), m.bit_offset, m.bitfield_size)).collect();
    assert_eq!(got, [("a", 0, 3), ("b", 3, 5), ("c", 8, 12), ("d", 20, 40), ("e", 64, 0)]);
    assert_eq!(btf.type_to_string(c.members[2].ty).unwrap(), "int");
    assert_eq!(btf.size_of(bits).unwrap(), 16);
}

#[test]
fn enums() {
    let (btf, _) = common::load("kinds.o");
    let values = |kind, name| {
        let (TypeKind::Enum(e) | TypeKind::Enum64(e)) = kind_of(&btf, id_of(&btf, kind, name)) else { panic!() };
        (e.size, e.signed, e.values.iter().map(|v| (v.name.clone(), v.value)).collect::<Vec<_>>())
    };
    let s = |n: &str| n.to_owned();
    assert_eq!(
        values(BtfKind::Enum, "color"),
        (4, true, vec![(s("RED"), 0), (s("GREEN"), 5), (s("BLUE"), -3i64 as u64)])
    );
    assert_eq!(values(BtfKind::Enum64, "big_flags"), (8, false, vec![(s("SMALL"), 1), (s("HUGE"), 0x12_3456_789a)]));
    let (_, signed, v) = values(BtfKind::Enum64, "neg64");
    assert!(signed);
    assert_eq!(v[0].1 as i64, -0x1_0000_0000);
    assert_eq!(btf.size_of(id_of(&btf, BtfKind::Enum64, "neg64")).unwrap(), 8);
}

#[test]
fn everything_struct_members() {
    let (btf, _) = common::load("kinds.o");
    let ev = id_of(&btf, BtfKind::Struct, "everything");
    assert_eq!(btf.size_of(ev).unwrap(), 272);
    let cases = [
        ("flag", "_Bool"),
        ("sch", "signed char"),
        ("typed", "u64_t"),
        ("cint", "const int"),
        ("vint", "volatile int"),
        ("rptr", "int *restrict"),
        ("cvp", "const volatile char *"),
        ("matrix", "int[3][4]"),
        ("bf", "struct bits"),
        ("n", "union num"),
        ("col", "enum color"),
        ("bigf", "enum big_flags"),
        ("op", "struct opaque *"),
        ("opu", "union opaque_u *"),
        ("cb", "callback_t"),
        ("vfn", "void (*)(int, ...)"),
        ("uptr", "int __attribute__((btf_type_tag(\"user\"))) *"),
        ("tail", "char[]"),
    ];
    for (name, want) in cases {
        assert_eq!(member_type_string(&btf, ev, name), want, "member {name}");
    }
    let size = |name| btf.size_of(member(&btf, ev, name).member.ty).unwrap();
    assert_eq!(size("matrix"), 48);
    assert_eq!(size("wide"), 16);
    assert_eq!(size("cb"), 8);
    assert_eq!(size("typed"), 8);
    assert_eq!(size("tail"), 0);
    assert_eq!(size("n"), 8);

    // typedef -> pointer -> prototype
    let cb = id_of(&btf, BtfKind::Typedef, "callback_t");
    let ptr = btf.resolve(cb).unwrap();
    assert_eq!(btf.type_to_string(ptr).unwrap(), "int (*)(void *, u64_t)");
    let TypeKind::Ptr { target } = *kind_of(&btf, ptr) else { panic!() };
    let TypeKind::FuncProto(p) = kind_of(&btf, target) else { panic!() };
    assert!(!p.is_variadic());
    let TypeKind::Ptr { target } = *kind_of(&btf, btf.resolve(member(&btf, ev, "vfn").member.ty).unwrap()) else {
        panic!()
    };
    let TypeKind::FuncProto(p) = kind_of(&btf, target) else { panic!() };
    assert!(p.is_variadic());

    // resolve skips typedefs and qualifiers, skip_modifiers keeps typedefs
    let cint = member(&btf, ev, "cint").member.ty;
    assert_eq!(btf.resolve(cint).unwrap(), id_of(&btf, BtfKind::Int, "int"));
    let typed = member(&btf, ev, "typed").member.ty;
    assert_eq!(btf.skip_modifiers(typed).unwrap(), typed);
    assert_eq!(btf.resolve(typed).unwrap(), id_of(&btf, BtfKind::Int, "unsigned long long"));

    // members of anonymous struct/union members are found, offsets accumulate
    let x = member(&btf, ev, "inner_x");
    let y = member(&btf, ev, "inner_y");
    let z = member(&btf, ev, "inner_z");
    assert_eq!(x.bit_offset, 2080);
    assert_eq!(y.bit_offset, 2112);
    assert_eq!(z.bit_offset, 2112);
    assert_eq!(btf.type_to_string(y.parent).unwrap(), "union (anon)");
    assert!(btf.member_by_name(ev, "nope").unwrap().is_none());
    assert!(matches!(
        btf.member_by_name(id_of(&btf, BtfKind::Int, "int"), "x"),
        Err(BtfError::WrongKind { found: BtfKind::Int, .. })
    ));
    assert_eq!(btf.name_of(ev), Some("everything"));
    assert_eq!(btf.name_of(TypeId(u32::MAX)), None);
}

#[test]
fn fwd_typedef_union() {
    let (btf, _) = common::load("kinds.o");
    assert_eq!(kind_of(&btf, id_of(&btf, BtfKind::Fwd, "opaque")), &TypeKind::Fwd { is_union: false });
    assert_eq!(kind_of(&btf, id_of(&btf, BtfKind::Fwd, "opaque_u")), &TypeKind::Fwd { is_union: true });
    assert!(matches!(
        btf.size_of(id_of(&btf, BtfKind::Fwd, "opaque")),
        Err(BtfError::NoSize { kind: BtfKind::Fwd, .. })
    ));
    let num = id_of(&btf, BtfKind::Union, "num");
    let TypeKind::Union(u) = kind_of(&btf, num) else { panic!() };
    assert_eq!(u.size, 8);
    assert!(u.members.iter().all(|m| m.bit_offset == 0));
    assert_eq!(member_type_string(&btf, num, "bytes"), "unsigned char[8]");
}

#[test]
fn decl_and_type_tags() {
    let (btf, _) = common::load("kinds.o");
    let tag = |name| {
        let TypeKind::DeclTag { target, component_idx, attribute } =
            *kind_of(&btf, id_of(&btf, BtfKind::DeclTag, name))
        else {
            panic!()
        };
        assert!(!attribute);
        (btf.type_to_string(target).unwrap(), component_idx)
    };
    assert_eq!(tag("bits_struct"), ("struct bits".to_owned(), -1));
    assert_eq!(tag("var_tag"), ("int tagged_var".to_owned(), -1));
    let helper = "int helper_global(struct bits *b, int __attribute__((btf_type_tag(\"user\"))) *p)".to_owned();
    assert_eq!(tag("func_tag"), (helper.clone(), -1));
    assert_eq!(tag("param_tag"), (helper, 0));
    let (ev, idx) = tag("member_tag");
    assert_eq!(ev, "struct everything");
    let evid = id_of(&btf, BtfKind::Struct, "everything");
    assert_eq!(btf.type_by_id(evid).unwrap().kind.members().unwrap()[idx as usize].name.as_deref(), Some("tagged"));

    let user = id_of(&btf, BtfKind::TypeTag, "user");
    assert_eq!(kind_of(&btf, user), &TypeKind::TypeTag { target: id_of(&btf, BtfKind::Int, "int"), attribute: false });
    assert_eq!(btf.resolve(user).unwrap(), id_of(&btf, BtfKind::Int, "int"));
}

#[test]
fn functions() {
    let (btf, _) = common::load("kinds.o");
    let func = |name| {
        let id = id_of(&btf, BtfKind::Func, name);
        let TypeKind::Func { linkage, .. } = *kind_of(&btf, id) else { panic!() };
        (btf.type_to_string(id).unwrap(), linkage)
    };
    assert_eq!(func("prog_xdp"), ("int prog_xdp(struct xdp_md *ctx)".to_owned(), Linkage::Global));
    assert_eq!(func("prog_tc"), ("int prog_tc(struct __sk_buff *skb)".to_owned(), Linkage::Global));
    assert_eq!(func("helper_static"), ("int helper_static(int x)".to_owned(), Linkage::Static));
    assert_eq!(func("bpf_fake_kfunc"), ("int bpf_fake_kfunc(int)".to_owned(), Linkage::Extern));
    let xdp_md = id_of(&btf, BtfKind::Struct, "xdp_md");
    assert_eq!(btf.size_of(xdp_md).unwrap(), 24);
    assert_eq!(member(&btf, xdp_md, "ingress_ifindex").bit_offset, 96);
    assert_eq!(btf.type_to_string(member(&btf, xdp_md, "data").member.ty).unwrap(), "__u32");
}

#[test]
fn datasecs() {
    let (btf, _) = common::load("kinds.o");
    let vars = |sec| {
        btf.datasec_vars(sec)
            .unwrap_or_else(|| panic!("no datasec {sec}"))
            .into_iter()
            .map(|v| (v.name.to_owned(), v.kind, btf.type_to_string(v.ty).unwrap(), v.linkage, v.size))
            .collect::<Vec<_>>()
    };
    use BtfKind::{Func, Var};
    use Linkage::*;
    let s = |x: &str| x.to_owned();
    assert_eq!(vars(".data"), [(s("counter"), Var, s("int"), Global, 4), (s("tagged_var"), Var, s("int"), Global, 4)]);
    assert_eq!(vars(".rodata"), [(s("config_value"), Var, s("const volatile int"), Global, 4)]);
    assert_eq!(vars(".bss"), [(s("everything_global"), Var, s("struct everything"), Global, 272)]);
    assert_eq!(vars(".data.custom"), [(s("static_counter"), Var, s("int"), Static, 4)]);
    assert_eq!(
        vars(".kconfig"),
        [(s("LINUX_KERNEL_VERSION"), Var, s("int"), Extern, 4), (s("CONFIG_BPF_SYSCALL"), Var, s("_Bool"), Extern, 1)]
    );
    assert_eq!(
        vars(".ksyms"),
        [
            (s("bpf_fake_kfunc"), Func, s("int (int)"), Extern, 0),
            (s("bpf_prog_active"), Var, s("const void"), Extern, 1)
        ]
    );
    assert_eq!(vars("license"), [(s("LICENSE"), Var, s("char[4]"), Global, 4)]);
    assert!(btf.datasec_vars(".maps").is_none());
    let bss = id_of(&btf, BtfKind::Datasec, ".bss");
    assert_eq!(btf.size_of(bss).unwrap(), 0, "clang leaves DATASEC sizes to the loader");
    let everything_var = btf.datasec_vars(".bss").unwrap()[0].id;
    assert_eq!(btf.size_of(everything_var).unwrap(), 272);
}

#[test]
fn func_info() {
    let (btf, ext) = common::load("kinds.o");
    assert_eq!(ext.func_info_rec_size(), 8);
    let got: Vec<(String, Vec<(u32, String)>)> = ext
        .func_info(&btf)
        .unwrap()
        .into_iter()
        .map(|s| (s.section, s.records.into_iter().map(|r| (r.insn_off, r.name)).collect()))
        .collect();
    assert_eq!(got.len(), 3);
    assert_eq!(got[0].0, ".text");
    let text: Vec<&str> = got[0].1.iter().map(|(_, n)| n.as_str()).collect();
    assert_eq!(text, ["helper_global", "helper_static"]);
    assert_eq!(got[0].1[0].0, 0);
    assert!(got[0].1[1].0 > 0 && got[0].1[1].0.is_multiple_of(8), "insn_off is in bytes");
    assert_eq!(got[1], ("xdp".to_owned(), vec![(0, "prog_xdp".to_owned())]));
    assert_eq!(got[2], ("tc".to_owned(), vec![(0, "prog_tc".to_owned())]));
}

/// Every line_info record names a line of the C source whose text clang copied.
fn check_line_info(object: &str, source: &str) -> Vec<(String, Vec<LineInfoEntry>)> {
    let (btf, ext) = common::load(object);
    assert_eq!(ext.line_info_rec_size(), 16);
    let src = std::fs::read_to_string(common::data_dir().join(source)).unwrap();
    let lines: Vec<&str> = src.lines().collect();
    let sections = ext.line_info(&btf).unwrap();
    assert!(!sections.is_empty());
    let mut out = Vec::new();
    for s in sections {
        let mut prev = None;
        for r in &s.records {
            assert_eq!(r.file_name, format!("./{source}"));
            assert!(r.line >= 1 && (r.line as usize) <= lines.len(), "{r:?}");
            assert_eq!(lines[r.line as usize - 1], r.line_text, "{object} {}: {r:?}", s.section);
            assert!(r.col as usize <= r.line_text.len() + 1);
            assert_eq!(r.insn_off % 8, 0);
            assert!(prev.is_none_or(|p| p < r.insn_off), "insn_offs increase");
            prev = Some(r.insn_off);
        }
        out.push((s.section, s.records));
    }
    out
}

#[test]
fn line_info_kinds() {
    let secs = check_line_info("kinds.o", "kinds.c");
    let names: Vec<&str> = secs.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(names, [".text", "xdp", "tc"]);
    let text = &secs[0].1;
    assert_eq!(text[0].insn_off, 0);
    assert!(text[0].line_text.contains("int helper_global("));
    assert!(text.iter().any(|r| r.line_text == "\treturn x * 2 + static_counter;"));
    let xdp = &secs[1].1;
    assert!(xdp.iter().any(|r| r.line_text.contains("helper_static(ctx->ingress_ifindex)")));
    let tc = &secs[2].1;
    assert_eq!(tc.last().unwrap().line_text, "}");
}

#[test]
fn line_info_maps_and_core() {
    check_line_info("maps.o", "maps.c");
    let core = check_line_info("core.o", "core.c");
    assert_eq!(core[0].1[0].line_text, "int probe(struct task *t)");
}

#[test]
fn maps() {
    let (btf, _) = common::load("maps.o");
    let maps = btf.datasec_vars(".maps").unwrap();
    let names: BTreeSet<&str> = maps.iter().map(|v| v.name).collect();
    let want = ["array_map", "array_value_map", "hash_map", "inner0", "inner1", "jump_table", "outer_map", "ringbuf"];
    assert_eq!(names, want.into_iter().chain(["sized_map"]).collect());
    let fields = |name: &str| {
        let v = maps.iter().find(|v| v.name == name).unwrap();
        btf.map_def_fields(v.id)
            .unwrap()
            .into_iter()
            .map(|(n, f)| {
                let f = match f {
                    MapField::Uint(v) => format!("{v}"),
                    MapField::Type(t) => format!("type {}", btf.type_to_string(t).unwrap()),
                    MapField::Array(t) => format!("array {}", btf.type_to_string(t).unwrap()),
                };
                format!("{n}={f}")
            })
            .collect::<Vec<_>>()
    };
    // BPF_MAP_TYPE_HASH = 1, ARRAY = 2, PROG_ARRAY = 3, PERCPU_ARRAY = 6, ARRAY_OF_MAPS = 12,
    // RINGBUF = 27; BPF_F_NO_PREALLOC = 1; LIBBPF_PIN_BY_NAME = 1.
    assert_eq!(fields("array_map"), ["type=2", "max_entries=16", "key=type __u32", "value=type struct value"]);
    assert_eq!(
        fields("hash_map"),
        ["type=1", "max_entries=1024", "map_flags=1", "key=type struct key", "value=type __u64", "pinning=1"]
    );
    assert_eq!(fields("ringbuf"), ["type=27", "max_entries=262144"]);
    assert_eq!(fields("sized_map"), ["type=6", "key_size=4", "value_size=64", "max_entries=1"]);
    assert_eq!(fields("array_value_map"), ["type=2", "max_entries=1", "key=type __u32", "value=type int[4]"]);
    assert_eq!(fields("inner0"), ["type=2", "max_entries=4", "key=type int", "value=type int"]);
    assert_eq!(fields("outer_map"), ["type=12", "max_entries=2", "key=type int", "values=array struct inner_map"]);
    assert_eq!(
        fields("jump_table"),
        ["type=3", "max_entries=4", "key=type __u32", "values=array int (struct __sk_buff *)"]
    );

    // The inner map definition reached through `values` decodes too.
    let outer = maps.iter().find(|v| v.name == "outer_map").unwrap();
    let inner = btf
        .map_def_fields(outer.id)
        .unwrap()
        .into_iter()
        .find_map(|(n, f)| match f {
            MapField::Array(t) if n == "values" => Some(t),
            _ => None,
        })
        .unwrap();
    assert_eq!(btf.map_def_fields(inner).unwrap().len(), 4);
    let value_ty = id_of(&btf, BtfKind::Struct, "value");
    assert_eq!(btf.size_of(value_ty).unwrap(), 32);

    // Not a map definition.
    let lic = btf.datasec_vars("license").unwrap()[0].id;
    assert!(matches!(btf.map_def_fields(lic), Err(BtfError::WrongKind { found: BtfKind::Array, .. })));
    let key = id_of(&btf, BtfKind::Struct, "key");
    assert!(matches!(btf.map_def_fields(key), Err(BtfError::MapDef { .. })));
}

#[test]
fn core_relos() {
    let (btf, ext) = common::load("core.o");
    assert_eq!(ext.core_relo_rec_size(), 16);
    let secs = ext.core_relos(&btf).unwrap();
    assert_eq!(secs.len(), 1);
    assert_eq!(secs[0].section, "kprobe/do_exit");
    use CoreReloKind::*;
    let got: Vec<(CoreReloKind, String, String)> = secs[0]
        .records
        .iter()
        .map(|r| (r.kind, btf.type_to_string(r.type_id).unwrap(), r.access_str.clone()))
        .collect();
    let t = |k, ty: &str, a: &str| (k, ty.to_owned(), a.to_owned());
    let st = "struct task";
    assert_eq!(
        got,
        [
            t(FieldByteOffset, st, "0:0"),
            t(FieldByteOffset, st, "0:1:1:1"),
            t(FieldByteOffset, st, "0:2"),
            t(FieldByteSize, st, "0:2"),
            t(FieldLshiftU64, st, "0:2"),
            t(FieldSigned, st, "0:2"),
            t(FieldRshiftU64, st, "0:2"),
            t(FieldRshiftU64, st, "0:2"),
            t(FieldExists, st, "0:1:0"),
            t(FieldByteSize, st, "0:1:0"),
            t(FieldByteOffset, st, "0:1:1"),
            t(TypeExists, "task_t", "0"),
            t(TypeSize, st, "0"),
            t(EnumvalExists, "enum task_state", "1"),
            t(EnumvalValue, "enum task_state", "1"),
            t(TypeIdTarget, st, "0"),
            t(TypeMatches, st, "0"),
        ]
    );
    let raw = ext.core_relo_groups();
    assert_eq!(raw[0].records.len(), 17);
    assert_eq!(btf.string_at(raw[0].sec_name_off).unwrap(), "kprobe/do_exit");
}

#[test]
fn ext_headers() {
    for o in ["kinds.o", "maps.o", "core.o"] {
        let (_, ext) = common::load(o);
        let h = ext.header();
        assert_eq!((h.magic, h.version, h.flags, h.hdr_len), (0xeb9f, 1, 0, BTF_EXT_HEADER_CORE_LEN));
    }
}

#[test]
fn fuzz_parse_accepts_real_sections() {
    for o in ["kinds.o", "maps.o", "core.o"] {
        let (btf, ext) = common::sections(o);
        fuzz_parse(&btf);
        fuzz_parse(&ext);
        let mut both = vec![0u8; 2];
        both[..2].copy_from_slice(&(btf.len() as u16).to_le_bytes());
        both.extend_from_slice(&btf);
        both.extend_from_slice(&ext);
        fuzz_parse(&both);
    }
}
