//! What the verifier needs to know of a program the runtime loads: the maps behind its `lddw`s,
//! the context rules of its type, the helpers and kfuncs it may call (the "kernel" half of
//! `BPF_PROG_LOAD` before `do_check`).

use crate::context;
use bpfkit_interp::{CtxField, Helpers};
use bpfkit_maps::{Map, MapType};
use bpfkit_object::ProgType;
use bpfkit_verifier::{CtxFieldKind, CtxRules, Input, LdImm, MapInfo};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// What a bound `lddw` refers to.
#[derive(Clone)]
pub(crate) enum LdRef {
    /// A map handle (`BPF_PSEUDO_MAP_FD`).
    Map(Arc<Map>),
    /// An address in a map's value (`BPF_PSEUDO_MAP_VALUE`): global data, jump tables.
    Value(Arc<Map>, u32),
}

fn info(m: &Map) -> MapInfo {
    let spec = m.spec();
    MapInfo {
        name: spec.name.clone(),
        id: m.id(),
        map_type: spec.map_type as u32,
        key_size: spec.key_size,
        value_size: spec.value_size,
        max_entries: spec.max_entries,
        rdonly_prog: !m.prog_writable(),
        wronly_prog: !m.prog_readable(),
        inner: None,
        entries: m.insn_array_entries().map(|e| e.iter().map(|t| t[1]).collect()).unwrap_or_default(),
    }
}

fn fields(table: &[CtxField], data: Option<(u32, u32, u32)>) -> Vec<bpfkit_verifier::CtxField> {
    table
        .iter()
        .map(|f| {
            let kind = match data {
                Some((d, _, _)) if f.off == d => CtxFieldKind::PacketData,
                Some((_, e, _)) if f.off == e => CtxFieldKind::PacketEnd,
                Some((_, _, m)) if f.off == m => CtxFieldKind::PacketMeta,
                _ => CtxFieldKind::Scalar,
            };
            bpfkit_verifier::CtxField {
                off: f.off,
                size: u32::from(f.size),
                kind,
                writable: f.writable,
                narrow: f.narrow && kind == CtxFieldKind::Scalar,
                // `__sk_buff.cb[]` (offsets 48..68) takes stores of any aligned size.
                narrow_write: data.is_none_or(|(d, _, _)| d != 0) && (48..68).contains(&f.off) && f.writable,
            }
        })
        .collect()
}

/// The context rules of a program type (offsets of `xdp_md` and `__sk_buff`).
fn ctx_rules(t: ProgType) -> CtxRules {
    match t {
        ProgType::Xdp => CtxRules { fields: fields(&context::XDP_MD_FIELDS, Some((0, 4, 8))), any_access: false },
        ProgType::SocketFilter => CtxRules { fields: fields(&context::SKB_SOCKET_FIELDS, None), any_access: false },
        ProgType::SchedCls | ProgType::SchedAct => {
            CtxRules { fields: fields(&context::SKB_TC_FIELDS, Some((76, 80, 140))), any_access: false }
        }
        _ => CtxRules { fields: Vec::new(), any_access: true },
    }
}

/// The verifier's input for `insns` of type `t`.
pub(crate) fn input<'a>(
    insns: &'a [bpfkit_isa::RawInsn],
    t: ProgType,
    lds: &HashMap<usize, LdRef>,
    helpers: &Helpers,
    kfuncs: BTreeSet<i32>,
    log_level: u32,
    lines: &[bpfkit_object::LineInfo],
) -> Input<'a> {
    let line_info = lines.iter().map(|l| (l.insn, format!("{} @ {}:{}", l.text.trim(), l.file, l.line))).collect();
    let mut maps: Vec<MapInfo> = Vec::new();
    let mut index: HashMap<u32, usize> = HashMap::new();
    let mut add = |m: &Arc<Map>, maps: &mut Vec<MapInfo>| -> usize {
        if let Some(&i) = index.get(&m.id()) {
            return i;
        }
        let mut i = info(m);
        if matches!(m.spec().map_type, MapType::ArrayOfMaps | MapType::HashOfMaps)
            && let Some(inner) = &m.spec().inner
        {
            maps.push(MapInfo {
                name: inner.name.clone(),
                id: 0,
                map_type: inner.map_type as u32,
                key_size: inner.key_size,
                value_size: inner.value_size,
                max_entries: inner.max_entries,
                rdonly_prog: false,
                wronly_prog: false,
                inner: None,
                entries: Vec::new(),
            });
            i.inner = Some(maps.len() - 1);
        }
        maps.push(i);
        index.insert(m.id(), maps.len() - 1);
        maps.len() - 1
    };
    let mut ld_imm = HashMap::new();
    for (pc, r) in lds {
        let v = match r {
            LdRef::Map(m) => LdImm::Map(add(m, &mut maps)),
            LdRef::Value(m, off) => LdImm::MapValue { map: add(m, &mut maps), off: *off },
        };
        ld_imm.insert(*pc, v);
    }
    let helper_ids = helpers.iter().map(|(id, _)| id).collect();
    Input {
        insns,
        ld_imm,
        maps,
        ctx: ctx_rules(t),
        helpers: helper_ids,
        kfuncs,
        ld_abs: matches!(t, ProgType::SocketFilter | ProgType::SchedCls | ProgType::SchedAct),
        packet_writable: matches!(t, ProgType::Xdp | ProgType::SchedCls | ProgType::SchedAct),
        allow_uninit_stack: true,
        allow_ptr_leaks: true,
        line_info,
        log_level,
    }
}
