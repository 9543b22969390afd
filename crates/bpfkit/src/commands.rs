//! The `bpf()`-like command layer: maps and programs by id, for tools and tests that speak in
//! kernel terms (`BPF_MAP_CREATE`, `BPF_MAP_*_ELEM`, `BPF_MAP_FREEZE`, `BPF_PROG_LOAD` with
//! `fd_array`, `BPF_PROG_TEST_RUN`). Ids play the part of file descriptors.
//!
//! `prog_load` resolves the `lddw` pseudo sources the way the kernel does: `BPF_PSEUDO_MAP_FD`
//! (imm = map id), `BPF_PSEUDO_MAP_VALUE` (imm = map id, second imm = offset into the value of
//! a single-element array), and their `fd_array`-indexed forms `BPF_PSEUDO_MAP_IDX` /
//! `BPF_PSEUDO_MAP_IDX_VALUE`. Every map in `fd_array` is bound to the program even when no
//! instruction names it (`fd_array_cnt` semantics).

use crate::Error;
use crate::env::MapTable;
use crate::runtime::{Prog, Runtime, Worker, XdpPacket};
use bpfkit_isa::{Insn, LdImmSrc, Located, RawInsn, opcode::LDDW};
use bpfkit_maps::{Map, MapSpec};
use bpfkit_object::ProgType;
use std::sync::Arc;

/// A map created by [`Runtime::map_create`] (its id).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MapFd(pub u32);

/// A program loaded by [`Runtime::prog_load`] (its id).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ProgFd(pub u32);

/// `BPF_PROG_LOAD`'s attributes.
#[derive(Clone, Debug)]
pub struct ProgLoad {
    pub name: String,
    pub prog_type: ProgType,
    pub insns: Vec<RawInsn>,
    /// Maps bound to the program; `BPF_PSEUDO_MAP_IDX*` index into it.
    pub fd_array: Vec<MapFd>,
}

fn map_cmd_error(fd: MapFd, e: bpfkit_maps::MapError) -> Error {
    Error::MapCommand { id: fd.0, errno: e.errno(), reason: e.to_string() }
}

impl Runtime {
    /// `BPF_MAP_CREATE`.
    pub fn map_create(&self, spec: MapSpec) -> Result<MapFd, Error> {
        let name = spec.name.clone();
        let map = Arc::new(
            Map::create(spec, self.ncpus() as usize).map_err(|e| Error::Map { map: name, reason: e.to_string() })?,
        );
        let fd = MapFd(map.id());
        self.registry().add(&map);
        self.registry().add_id(fd.0, &map);
        Ok(fd)
    }

    /// The map behind `fd`.
    pub fn map_by_fd(&self, fd: MapFd) -> Result<Arc<Map>, Error> {
        self.registry().by_id(fd.0).ok_or(Error::BadFd { what: "map", id: fd.0 })
    }

    /// `BPF_MAP_LOOKUP_ELEM` (per-CPU maps: every CPU's value, each padded to 8 bytes).
    pub fn map_lookup_elem(&self, fd: MapFd, key: &[u8]) -> Result<Vec<u8>, Error> {
        self.map_by_fd(fd)?.lookup(key).map_err(|e| map_cmd_error(fd, e))
    }

    /// `BPF_MAP_UPDATE_ELEM` with `BPF_ANY` / `BPF_NOEXIST` / `BPF_EXIST`.
    pub fn map_update_elem(&self, fd: MapFd, key: &[u8], value: &[u8], flags: u64) -> Result<(), Error> {
        self.map_by_fd(fd)?.update(key, value, flags).map_err(|e| map_cmd_error(fd, e))
    }

    /// `BPF_MAP_DELETE_ELEM`.
    pub fn map_delete_elem(&self, fd: MapFd, key: &[u8]) -> Result<(), Error> {
        self.map_by_fd(fd)?.delete(key).map_err(|e| map_cmd_error(fd, e))
    }

    /// `BPF_MAP_GET_NEXT_KEY`.
    pub fn map_get_next_key(&self, fd: MapFd, key: Option<&[u8]>) -> Result<Vec<u8>, Error> {
        self.map_by_fd(fd)?.get_next_key(key).map_err(|e| map_cmd_error(fd, e))
    }

    /// `BPF_MAP_FREEZE`.
    pub fn map_freeze(&self, fd: MapFd) -> Result<(), Error> {
        self.map_by_fd(fd)?.freeze().map_err(|e| map_cmd_error(fd, e))
    }

    /// `BPF_PROG_LOAD`: binds the maps the instructions and `fd_array` name, resolves helper
    /// calls, and prepares the program.
    pub fn prog_load(&self, load: ProgLoad) -> Result<ProgFd, Error> {
        let err = |reason: String| Error::Program { program: load.name.clone(), reason };
        let mut table = MapTable::default();
        let mut bound = Vec::new();
        for fd in &load.fd_array {
            let m = self.map_by_fd(*fd)?;
            table.insert(Arc::clone(&m));
            bound.push(m);
        }
        let mut insns = load.insns.clone();
        let mut lds = std::collections::HashMap::new();
        // Only the `lddw`s are read here (the kernel's resolve_pseudo_ldimm64); the verifier
        // decodes and checks the rest, in the kernel's words.
        for l in lddws(&load.insns).map_err(|e| err(e.to_string()))? {
            let Insn::LdImm64 { dst, src, imm, next_imm } = l.insn else { continue };
            let by_index = |i: i32| {
                usize::try_from(i)
                    .ok()
                    .and_then(|i| bound.get(i).cloned())
                    .ok_or_else(|| err(format!("insn {}: fd_array has no entry {i}", l.pc)))
            };
            let by_fd = |i: i32| {
                self.map_by_fd(MapFd(i as u32)).map_err(|_| err(format!("insn {}: fd {i} is not a map", l.pc)))
            };
            let (map, value_off) = match src {
                LdImmSrc::Imm | LdImmSrc::Func => continue,
                LdImmSrc::MapFd => (by_fd(imm)?, None),
                LdImmSrc::MapIdx => (by_index(imm)?, None),
                LdImmSrc::MapValue => (by_fd(imm)?, Some(next_imm)),
                LdImmSrc::MapIdxValue => (by_index(imm)?, Some(next_imm)),
                LdImmSrc::BtfId => return Err(err(format!("insn {}: kernel BTF ids (ksyms) are not available", l.pc))),
            };
            table.insert(Arc::clone(&map));
            lds.insert(
                l.pc,
                match value_off {
                    None => crate::verify::LdRef::Map(Arc::clone(&map)),
                    Some(off) => crate::verify::LdRef::Value(Arc::clone(&map), off as u32),
                },
            );
            let value = match value_off {
                None => MapTable::token(&map),
                // An instruction array as a map value: its table of code addresses (gotox).
                Some(off) if map.map_type() == bpfkit_maps::MapType::InsnArray => {
                    let len = u64::from(map.spec().max_entries) * 8;
                    if off < 0 || off % 8 != 0 || off as u64 >= len {
                        return Err(err(format!(
                            "insn {}: offset {off} into an insn_array of {} entries (must be a multiple of 8 below {len})",
                            l.pc,
                            map.spec().max_entries
                        )));
                    }
                    map.value_regions()[0].ptr as u64 + off as u64
                }
                Some(off) => {
                    let spec = map.spec();
                    if spec.map_type != bpfkit_maps::MapType::Array || spec.max_entries != 1 {
                        return Err(err(format!("insn {}: direct value access needs a single-element array", l.pc)));
                    }
                    if off < 0 || off as u32 >= spec.value_size {
                        return Err(err(format!(
                            "insn {}: value offset {off} outside {} bytes",
                            l.pc, spec.value_size
                        )));
                    }
                    let g = bpfkit_maps::pin();
                    let base = map
                        .bpf_lookup(&0u32.to_le_bytes(), 0, &g)
                        .ok_or_else(|| err("array without element 0".into()))?;
                    base as u64 + off as u64
                }
            };
            insns[l.pc] = RawInsn::new(LDDW, dst.index(), 0, 0, value as u32 as i32);
            insns[l.pc + 1] = RawInsn::new(0, 0, 0, 0, (value >> 32) as u32 as i32);
        }
        // Instruction arrays among the bound maps are taken by this program (kernel-spec §2.4).
        let tails: std::collections::HashSet<usize> =
            lddws(&load.insns).map_err(|e| err(e.to_string()))?.iter().map(|l| l.pc + 1).collect();
        let mut owners = Vec::new();
        for m in table.iter() {
            if m.map_type() == bpfkit_maps::MapType::InsnArray {
                let owner = m.bind_insn_array(load.insns.len(), &|i| tails.contains(&i)).map_err(|e| {
                    // Name the table by its map and the instruction that loads it, if any.
                    let user = lds
                        .iter()
                        .filter(|(_, r)| matches!(r, crate::verify::LdRef::Map(x) | crate::verify::LdRef::Value(x, _) if Arc::ptr_eq(x, m)))
                        .map(|(pc, _)| *pc)
                        .min();
                    let by = user.map_or_else(|| "bound through fd_array".to_string(), |pc| format!("loaded by insn {pc}"));
                    err(format!("insn array map {} `{}` ({by}): {e}", m.id(), m.spec().name))
                })?;
                owners.push(owner);
            }
        }
        let mut prog = self.prepare(
            load.name.clone(),
            String::new(),
            load.prog_type,
            insns,
            Arc::new(table),
            Vec::new(),
            &[],
            &lds,
        )?;
        prog.set_insn_arrays(owners)?;
        self.bind_static_keys(&prog, &load.insns).map_err(err)?;
        let fd = ProgFd(prog.id());
        self.registry().add_prog(fd.0, Arc::new(prog));
        Ok(fd)
    }

    /// The static-key maps among `prog`'s instruction arrays become keys (bpfkit-decisions D3):
    /// every entry must be a static branch, and every static branch of the program must be in
    /// exactly one key.
    fn bind_static_keys(&self, prog: &Prog, orig: &[RawInsn]) -> Result<(), String> {
        let branches: std::collections::BTreeMap<usize, bool> = (0..orig.len())
            .filter_map(|pc| match Insn::decode(orig, pc) {
                Ok(Insn::StaticBranch { inverse, .. }) if !(pc > 0 && orig[pc - 1].code == LDDW) => Some((pc, inverse)),
                _ => None,
            })
            .collect();
        let mut owner: std::collections::BTreeMap<usize, u32> = std::collections::BTreeMap::new();
        let mut keys = Vec::new();
        for m in prog.insn_arrays() {
            if m.spec().map_extra & bpfkit_maps::flags::BPF_F_STATIC_KEY == 0 {
                continue;
            }
            let mut sites = Vec::new();
            for [orig_off, xlated, _] in m.insn_array_entries().unwrap_or_default() {
                let pc = orig_off as usize;
                let Some(&inverse) = branches.get(&pc) else {
                    return Err(format!("static key map {}: entry insn {pc} is not a static branch", m.id()));
                };
                if let Some(other) = owner.insert(pc, m.id()) {
                    return Err(format!("insn {pc}: static branch in key maps {other} and {}", m.id()));
                }
                sites.push((xlated as usize, inverse));
            }
            keys.push((m, sites));
        }
        if let Some(pc) = branches.keys().find(|pc| !owner.contains_key(pc)) {
            return Err(format!("insn {pc}: static branch that belongs to no static key map"));
        }
        for (m, sites) in keys {
            let on = m.spec().map_extra & bpfkit_maps::flags::BPF_F_STATIC_KEY_ON != 0;
            let key = Arc::new(crate::StaticKey::new(&m.spec().name, on, Arc::clone(self.flip_lock())));
            key.add_instance(prog.interp_program(), prog.gate(), sites, Arc::clone(&m));
            self.keys().insert(MapTable::token(&m), key);
        }
        Ok(())
    }

    /// `BPF_STATIC_KEY_UPDATE {map_fd, on}` (bpfkit-decisions D3): turns the key map's sites on
    /// or off in its program; returns when every site is in the new state.
    pub fn static_key_update(&self, fd: MapFd, on: u32) -> Result<(), Error> {
        let m = self.map_by_fd(fd)?;
        let einval = |reason: &str| Error::MapCommand { id: fd.0, errno: -22, reason: reason.to_string() };
        if on > 1 {
            return Err(einval("`on` must be 0 or 1"));
        }
        if m.map_type() != bpfkit_maps::MapType::InsnArray
            || m.spec().map_extra & bpfkit_maps::flags::BPF_F_STATIC_KEY == 0
        {
            return Err(einval("not a static key map (an insn_array with BPF_F_STATIC_KEY)"));
        }
        let key = self.keys().get(&MapTable::token(&m)).cloned();
        let Some(key) = key else {
            return Err(Error::MapCommand {
                id: fd.0,
                errno: -16,
                reason: "the key is not bound to a loaded program yet".into(),
            });
        };
        key.set_instance(&m, on == 1)
    }

    /// Loads a program written in assembly (`bpfkit_isa::asm`), with its jump tables: each
    /// `.jumptable` becomes an instruction array (filled with the instructions it names and
    /// frozen, as libbpf does for `.jumptables`) passed in `fd_array` in declaration order, which
    /// is what the assembler's `rX = NAME ll` refers to. Returns the program and the tables' maps.
    pub fn prog_load_asm(&self, name: &str, prog_type: ProgType, text: &str) -> Result<(ProgFd, Vec<MapFd>), Error> {
        let a = bpfkit_isa::asm::assemble_with_tables(text)
            .map_err(|e| Error::Program { program: name.to_string(), reason: format!("assembly: {e}") })?;
        let mut fd_array = Vec::with_capacity(a.jump_tables.len());
        for t in &a.jump_tables {
            let entries = u32::try_from(t.entries.len()).unwrap_or(u32::MAX);
            let mut spec = MapSpec::new(bpfkit_maps::MapType::InsnArray, 4, 16, entries);
            spec.name = ".jumptables".into();
            let fd = self.map_create(spec).map_err(|e| Error::Program {
                program: name.to_string(),
                reason: format!("jump table `{}`: {e}", t.name),
            })?;
            for (i, target) in t.entries.iter().enumerate() {
                let mut value = [0u8; 16];
                value[..4].copy_from_slice(&target.to_le_bytes());
                self.map_update_elem(fd, &(i as u32).to_le_bytes(), &value, 0)?;
            }
            self.map_freeze(fd)?;
            fd_array.push(fd);
        }
        let load = ProgLoad { name: name.to_string(), prog_type, insns: a.insns, fd_array: fd_array.clone() };
        Ok((self.prog_load(load)?, fd_array))
    }

    /// Closes a program's id (`close(prog_fd)`): once nobody holds the program any more, its
    /// instruction arrays are released and may be bound to another program.
    pub fn prog_close(&self, fd: ProgFd) -> Result<(), Error> {
        self.registry().remove_prog(fd.0).map(|_| ()).ok_or(Error::BadFd { what: "program", id: fd.0 })
    }

    /// The program behind `fd`.
    pub fn prog_by_fd(&self, fd: ProgFd) -> Result<Arc<Prog>, Error> {
        self.registry().prog_by_id(fd.0).ok_or(Error::BadFd { what: "program", id: fd.0 })
    }

    /// `BPF_PROG_TEST_RUN` of an XDP program: its return value and the packet it left
    /// (from its metadata on, as the kernel returns it).
    pub fn prog_test_run_xdp(&self, fd: ProgFd, data: &[u8]) -> Result<(u32, Vec<u8>), Error> {
        let prog = self.prog_by_fd(fd)?;
        let mut w = Worker::new(self, 0);
        let mut pkt = XdpPacket::new(data)?;
        let r = prog.run_xdp(&mut w, &mut pkt)?;
        Ok((r.action, pkt.data_with_meta().to_vec()))
    }
}

/// The `lddw` instructions of a program, decoded (a slot after one is its second half).
fn lddws(insns: &[RawInsn]) -> Result<Vec<Located>, bpfkit_isa::DecodeError> {
    let mut out = Vec::new();
    let mut pc = 0;
    while pc < insns.len() {
        if insns[pc].code == LDDW {
            out.push(Located { pc, insn: Insn::decode(insns, pc)? });
            pc += 2;
        } else {
            pc += 1;
        }
    }
    Ok(out)
}
