//! The runtime ("the kernel") and loaded objects ("libbpf").

use crate::context::{self, SK_BUFF_SIZE, XDP_MD_SIZE, skb_off, skb_shadow, xdp_geometry as geo, xdp_shadow};
use crate::env::{Clock, CtxKind, MapTable, MonotonicClock, RunEnv};
use crate::static_keys::{Gate, StaticKey};
use crate::{Error, helpers};
use bpfkit_interp::{CtxField, HelperCtx, HelperError, Helpers, MemoryRegion, Program, RegionKind, RunError, Vm};
use bpfkit_isa::opcode::{BPF_PSEUDO_KFUNC_CALL, LDDW};
use bpfkit_isa::{DecodeError, RawInsn, decode_program};
use bpfkit_maps::{Map, MapSpec, MapType};
use bpfkit_object::{Extern, MapDef, MapInit, MapOrigin, ObjectFile, ProgType, RelocTarget};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

/// Every map the runtime created, by token, so that helpers can reach inner maps of
/// map-in-maps that are not named by the program.
#[derive(Default)]
pub struct MapRegistry {
    maps: RwLock<HashMap<u64, Arc<Map>>>,
    /// Maps and programs created through the `bpf()`-like commands, by id.
    by_id: RwLock<HashMap<u32, Arc<Map>>>,
    progs: RwLock<HashMap<u32, Arc<Prog>>>,
}

impl MapRegistry {
    pub(crate) fn add_id(&self, id: u32, m: &Arc<Map>) {
        self.by_id.write().expect("map registry lock").insert(id, Arc::clone(m));
    }
    pub(crate) fn by_id(&self, id: u32) -> Option<Arc<Map>> {
        self.by_id.read().expect("map registry lock").get(&id).cloned()
    }
    pub(crate) fn add_prog(&self, id: u32, p: Arc<Prog>) {
        self.progs.write().expect("map registry lock").insert(id, p);
    }
    pub(crate) fn remove_prog(&self, id: u32) -> Option<Arc<Prog>> {
        self.progs.write().expect("map registry lock").remove(&id)
    }
    pub(crate) fn prog_by_id(&self, id: u32) -> Option<Arc<Prog>> {
        self.progs.read().expect("map registry lock").get(&id).cloned()
    }
    pub(crate) fn add(&self, m: &Arc<Map>) {
        self.maps.write().expect("map registry lock").insert(MapTable::token(m), Arc::clone(m));
    }
    pub(crate) fn get(&self, token: u64) -> Option<Arc<Map>> {
        self.maps.read().expect("map registry lock").get(&token).cloned()
    }
    pub(crate) fn all(&self) -> Vec<Arc<Map>> {
        self.maps.read().expect("map registry lock").values().cloned().collect()
    }
}

/// A kfunc: called like a helper, resolved by name at load.
pub type KfuncFn = dyn Fn(&mut HelperCtx<'_>, [u64; 5]) -> Result<u64, HelperError> + Send + Sync;

/// Program ids (what a host lookup of a prog array slot returns).
static NEXT_PROG_ID: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);

/// Helper ids bpfkit gives kfuncs inside the interpreter (never a kernel helper number).
const KFUNC_BASE: i32 = 0x4000_0000;

/// The runtime: owns the maps, the helpers and kfuncs, the clock and the number of CPU slots.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

struct Inner {
    ncpus: u32,
    clock: RwLock<Arc<dyn Clock>>,
    maps: Arc<MapRegistry>,
    helpers: RwLock<Helpers>,
    kfuncs: RwLock<Vec<(String, Arc<KfuncFn>)>>,
    kconfig: RwLock<HashMap<String, u64>>,
    verify_mode: RwLock<crate::VerifyMode>,
    verify_log_level: std::sync::atomic::AtomicU32,
    /// Constant blinding of loaded programs (the kernel's `bpf_jit_harden=2`).
    harden: std::sync::atomic::AtomicBool,
    /// The jiffies counter inlined `bpf_jiffies64` calls read (one `u64`, refreshed before each
    /// run of a program that reads it).
    jiffies: Arc<Map>,
    /// Static keys by the token of each of their maps (the handle `&key` programs load, and
    /// every per-program key map).
    keys: Arc<Mutex<HashMap<u64, Arc<StaticKey>>>>,
    /// Serialises key flips with JIT compilation (see `static_keys.rs`).
    flip_lock: Arc<Mutex<()>>,
}

impl Default for Runtime {
    fn default() -> Self {
        Runtime::new()
    }
}

impl Runtime {
    /// A runtime with one CPU slot per available core.
    pub fn new() -> Runtime {
        let ncpus = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
        Runtime::with_cpus(ncpus)
    }

    /// A runtime with `ncpus` CPU slots (per-CPU maps get one value per slot; each worker thread
    /// uses one slot).
    pub fn with_cpus(ncpus: u32) -> Runtime {
        let mut kconfig = HashMap::new();
        // Documented `.kconfig` answers: the kernel version bpfkit claims, and CONFIG_HZ.
        kconfig.insert("LINUX_KERNEL_VERSION".to_string(), (6u64 << 16) | (18 << 8));
        kconfig.insert("CONFIG_HZ".to_string(), crate::env::HZ);
        kconfig.insert("LINUX_HAS_BPF_COOKIE".to_string(), 1);
        let keys: Arc<Mutex<HashMap<u64, Arc<StaticKey>>>> = Arc::default();
        let mut kfuncs: Vec<(String, Arc<KfuncFn>)> = Vec::new();
        // `bpf_static_key_update(&key, on)`: flips a static key from BPF code (D3).
        let by_token = Arc::clone(&keys);
        kfuncs.push((
            "bpf_static_key_update".to_string(),
            Arc::new(move |_ctx: &mut HelperCtx<'_>, [key, on, ..]: [u64; 5]| {
                let k = by_token.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(&key).cloned();
                match (k, on) {
                    (Some(k), 0 | 1) => Ok(match k.set_from_bpf(on == 1) {
                        Ok(()) => 0,
                        Err(_) => (-14i64) as u64, // EFAULT
                    }),
                    _ => Ok((-22i64) as u64), // EINVAL
                }
            }),
        ));
        Runtime {
            inner: Arc::new(Inner {
                ncpus: ncpus.max(1),
                clock: RwLock::new(Arc::new(MonotonicClock::default())),
                maps: Arc::default(),
                helpers: RwLock::new(helpers::standard()),
                kfuncs: RwLock::new(kfuncs),
                kconfig: RwLock::new(kconfig),
                verify_mode: RwLock::default(),
                verify_log_level: std::sync::atomic::AtomicU32::new(1),
                harden: std::sync::atomic::AtomicBool::new(false),
                jiffies: Arc::new({
                    let mut spec = MapSpec::new(MapType::Array, 4, 8, 1);
                    spec.name = ".jiffies".into();
                    Map::create(spec, 1).expect("a one-element array")
                }),
                keys,
                flip_lock: Arc::default(),
            }),
        }
    }

    /// What loading does with the verifier's verdict (from now on).
    pub fn set_verify_mode(&self, mode: crate::VerifyMode) {
        *self.inner.verify_mode.write().expect("verify mode lock") = mode;
    }

    /// The verifier's log level for programs loaded from now on (1: the verdict and
    /// statistics, 2: every instruction with its registers).
    pub fn set_verify_log_level(&self, level: u32) {
        self.inner.verify_log_level.store(level, std::sync::atomic::Ordering::Relaxed);
    }

    /// Constant blinding for programs loaded from now on: every immediate of the xlated
    /// program is hidden behind the register AX, as with the kernel's `bpf_jit_harden=2`.
    pub fn set_harden(&self, on: bool) {
        self.inner.harden.store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// Number of CPU slots.
    pub fn ncpus(&self) -> u32 {
        self.inner.ncpus
    }

    pub(crate) fn registry(&self) -> &MapRegistry {
        &self.inner.maps
    }

    /// Builds a runnable program from bound instructions: the runtime's helpers, plus the
    /// program's kfuncs as helpers of their own.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn prepare(
        &self,
        name: String,
        section: String,
        prog_type: ProgType,
        insns: Vec<RawInsn>,
        maps: Arc<MapTable>,
        line_info: Vec<bpfkit_object::LineInfo>,
        kfuncs: &[(String, Arc<KfuncFn>)],
        lds: &HashMap<usize, crate::verify::LdRef>,
    ) -> Result<Prog, Error> {
        let perr = |reason: String| Error::Program { program: name.clone(), reason };
        let mut helpers = self.inner.helpers.read().expect("helpers lock").clone();
        for (i, (_, f)) in kfuncs.iter().enumerate() {
            let f = Arc::clone(f);
            helpers.register(KFUNC_BASE + i as i32, "kfunc", move |ctx, args| f(ctx, args));
        }
        if insns.is_empty() {
            return Err(perr("the program has no instructions".into()));
        }
        // Verification, on the program as loaded (the kernel's do_check, before its fixups).
        let kfunc_ids = (0..kfuncs.len()).map(|i| KFUNC_BASE + i as i32).collect();
        let level = self.inner.verify_log_level.load(std::sync::atomic::Ordering::Relaxed);
        let input = crate::verify::input(&insns, prog_type, lds, &helpers, kfunc_ids, level, &line_info);
        let report = bpfkit_verifier::verify(&input);
        if let Some(error) = &report.error
            && *self.inner.verify_mode.read().expect("verify mode lock") == crate::VerifyMode::Enforce
        {
            return Err(Error::Verify { program: name.clone(), error: error.clone(), log: report.log.clone() });
        }
        // The program as given decodes strictly (the xlated one may use AX).
        let decoded = decode_program(&insns).map_err(|e| perr(e.to_string()))?;
        // The fixups: nops removed, `bpf_jiffies64` inlined, constants blinded if asked.
        let uses_jiffies =
            decoded.iter().any(|l| l.insn == bpfkit_isa::Insn::Call(bpfkit_isa::CallTarget::Helper(118)));
        let jiffies_addr = {
            let g = bpfkit_maps::pin();
            self.inner.jiffies.bpf_lookup(&0u32.to_le_bytes(), 0, &g).map_or(0, |p| p as u64)
        };
        let inline = |id: i32| (id == 118).then(|| bpfkit_fixup::jiffies64_patch(jiffies_addr));
        let blind = self.inner.harden.load(std::sync::atomic::Ordering::Relaxed).then(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
                ^ u64::from(NEXT_PROG_ID.load(std::sync::atomic::Ordering::Relaxed))
        });
        let opts = bpfkit_fixup::FixupOptions { remove_nops: true, inline_helper: Some(&inline), blind };
        let xl = bpfkit_fixup::fixup(&insns, &opts).map_err(|e| perr(format!("fixup: {e}")))?;
        let maps = if uses_jiffies {
            let mut t = (*maps).clone();
            t.insert(Arc::clone(&self.inner.jiffies));
            Arc::new(t)
        } else {
            maps
        };
        let program = Program::load_xlated(&xl.insns, &helpers).map_err(|e| perr(e.to_string()))?;
        // Line info follows the instructions it describes into the xlated program.
        let line_info = line_info
            .into_iter()
            .filter_map(|mut l| {
                l.insn = xl.map(l.insn as u32)? as usize;
                Some(l)
            })
            .collect();
        Ok(Prog {
            id: NEXT_PROG_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            name,
            section,
            prog_type,
            program: Arc::new(program),
            insns: xl.insns,
            orig_insns: insns,
            orig_to_xlated: xl.orig_to_xlated,
            maps,
            line_info,
            runtime: self.clone(),
            insn_arrays: Vec::new(),
            verify_report: report,
            jiffies: uses_jiffies.then(|| Arc::clone(&self.inner.jiffies)),
            gate: Arc::default(),
        })
    }

    /// Replaces the clock that `bpf_ktime_get_*_ns` and `bpf_jiffies64` read, for workers
    /// created from now on (e.g. a [`crate::SteppedClock`] for reproducible runs).
    pub fn set_clock(&self, clock: Arc<dyn Clock>) {
        *self.inner.clock.write().expect("clock lock") = clock;
    }

    /// Registers an extra helper (an embedding host's), by number.
    pub fn register_helper(
        &self,
        id: i32,
        name: &'static str,
        f: impl Fn(&mut HelperCtx<'_>, [u64; 5]) -> Result<u64, HelperError> + Send + Sync + 'static,
    ) {
        self.inner.helpers.write().expect("helpers lock").register(id, name, f);
    }

    /// Registers a kfunc that objects declare `__ksym` and call by name.
    pub fn register_kfunc(
        &self,
        name: &str,
        f: impl Fn(&mut HelperCtx<'_>, [u64; 5]) -> Result<u64, HelperError> + Send + Sync + 'static,
    ) {
        self.inner.kfuncs.write().expect("kfuncs lock").push((name.to_string(), Arc::new(f)));
    }

    /// Sets the value a `.kconfig` extern reads (e.g. `CONFIG_HZ`).
    pub fn set_kconfig(&self, name: &str, value: u64) {
        self.inner.kconfig.write().expect("kconfig lock").insert(name.to_string(), value);
    }

    /// Opens and loads an object file.
    pub fn open(&self, path: impl AsRef<Path>) -> Result<Object, Error> {
        let path = path.as_ref();
        let data = std::fs::read(path).map_err(|source| Error::Io { path: path.display().to_string(), source })?;
        self.load(&data)
    }

    /// Loads an object from its bytes: creates its maps, binds its relocations and prepares
    /// every program it can run.
    pub fn load(&self, data: &[u8]) -> Result<Object, Error> {
        let file = ObjectFile::parse(data)?;
        let mut maps = Vec::with_capacity(file.maps.len());
        let mut keys: Vec<Arc<StaticKey>> = Vec::new();
        for def in &file.maps {
            let m = if is_static_key(def) {
                // A static key: this map is its handle (what `&key` loads, for the kfunc); each
                // program that uses the key gets a key map of its own.
                let mut spec = spec_of(def)?;
                spec.max_entries = 1;
                let m = Arc::new(Map::create(spec, 1).map_err(|e| map_error(def, e))?);
                let key = Arc::new(StaticKey::new(
                    &def.name,
                    def.map_extra & bpfkit_maps::flags::BPF_F_STATIC_KEY_ON != 0,
                    Arc::clone(&self.inner.flip_lock),
                ));
                self.keys().insert(MapTable::token(&m), Arc::clone(&key));
                keys.push(key);
                m
            } else {
                Arc::new(self.create_map(def)?)
            };
            self.inner.maps.add(&m);
            maps.push(m);
        }
        // Global data: initial values, then `.rodata` frozen.
        for (def, m) in file.maps.iter().zip(&maps) {
            match &def.origin {
                MapOrigin::Data { read_only, .. } => {
                    m.update(&0u32.to_le_bytes(), &def.data, 0).map_err(|e| map_error(def, e))?;
                    if *read_only {
                        m.freeze().map_err(|e| map_error(def, e))?;
                    }
                }
                MapOrigin::Kconfig => {
                    let mut value = vec![0u8; def.value_size as usize];
                    let kconfig = self.inner.kconfig.read().expect("kconfig lock");
                    for ext in &file.externs {
                        if let Extern::Kconfig { name, offset, size } = ext {
                            let v = kconfig.get(name).copied().ok_or_else(|| Error::Extern {
                                name: name.clone(),
                                reason: "unknown .kconfig value (bpfkit answers LINUX_KERNEL_VERSION, CONFIG_HZ, LINUX_HAS_BPF_COOKIE and those set with Runtime::set_kconfig)".into(),
                            })?;
                            let (o, s) = (*offset as usize, (*size as usize).min(8));
                            value[o..o + s].copy_from_slice(&v.to_le_bytes()[..s]);
                        }
                    }
                    m.update(&0u32.to_le_bytes(), &value, 0).map_err(|e| map_error(def, e))?;
                    m.freeze().map_err(|e| map_error(def, e))?;
                }
                _ => {}
            }
        }
        let mut table = MapTable::default();
        for m in &maps {
            table.insert(Arc::clone(m));
        }
        let table = Arc::new(table);

        let mut programs = Vec::new();
        for p in &file.programs {
            let prog_type = p.prog_type.ok_or_else(|| Error::Program {
                program: p.name.clone(),
                reason: format!("section `{}` is not a program type libbpf knows", p.section),
            })?;
            let Bound { insns, kfuncs, mut jump_tables, lds } = self.bind(p, &file, &maps)?;
            let (key_uses, key_owners): (Vec<_>, Vec<_>) = self.static_key_maps(p, &file)?.into_iter().unzip();
            let first_key_map = jump_tables.len();
            jump_tables.extend(key_owners);
            // A program with jump tables sees their maps besides the object's.
            let prog_maps = if jump_tables.is_empty() {
                Arc::clone(&table)
            } else {
                let mut t = (*table).clone();
                for o in &jump_tables {
                    t.insert(Arc::clone(o.map()));
                }
                Arc::new(t)
            };
            let mut prog = self.prepare(
                p.name.clone(),
                p.section.clone(),
                prog_type,
                insns,
                prog_maps,
                p.line_info.clone(),
                &kfuncs,
                &lds,
            )?;
            prog.set_insn_arrays(jump_tables)?;
            // Each key's instance in this program, its sites now in xlated slots.
            for (k, use_) in key_uses.iter().enumerate() {
                let key = keys.iter().find(|key| key.name() == use_.key).expect("checked in static_key_maps");
                let map = Arc::clone(prog.insn_arrays[first_key_map + k].map());
                let sites = use_
                    .sites
                    .iter()
                    .map(|&(orig, inverse)| (prog.xlated_of(orig).expect("a static branch is never removed"), inverse))
                    .collect();
                key.add_instance(&prog.program, &prog.gate, sites, Arc::clone(&map));
                self.keys().insert(MapTable::token(&map), Arc::clone(key));
            }
            programs.push(prog);
        }
        let object = Object {
            runtime: self.clone(),
            static_keys: keys,
            maps,
            map_defs: file.maps.clone(),
            programs,
            license: file.license.clone(),
            created: std::sync::Mutex::default(),
        };
        // Declarative initialisation: `.values = { [i] = &prog_or_map }`.
        for (def, m) in object.map_defs.iter().zip(&object.maps) {
            for init in &def.init {
                object.init_slot(def, m, init)?;
            }
        }
        Ok(object)
    }

    fn create_map(&self, def: &MapDef) -> Result<Map, Error> {
        let spec = spec_of(def)?;
        Map::create(spec, self.inner.ncpus as usize).map_err(|e| map_error(def, e))
    }

    /// The program's instructions with every relocation bound to this runtime's addresses.
    fn bind(&self, p: &bpfkit_object::Program, file: &ObjectFile, maps: &[Arc<Map>]) -> Result<Bound, Error> {
        let mut insns = p.insns.clone();
        let mut kfuncs: Vec<(String, Arc<KfuncFn>)> = Vec::new();
        let jump_tables = self.jump_table_maps(p)?;
        let mut lds = HashMap::new();
        let lddw = |insns: &mut Vec<RawInsn>, at: usize, value: u64| {
            let dst = insns[at].dst();
            insns[at] = RawInsn::new(LDDW, dst, 0, 0, value as u32 as i32);
            insns[at + 1] = RawInsn::new(0, 0, 0, 0, (value >> 32) as u32 as i32);
        };
        for r in &p.relocs {
            match &r.target {
                RelocTarget::Map(i) => {
                    lds.insert(r.insn, crate::verify::LdRef::Map(Arc::clone(&maps[*i])));
                    lddw(&mut insns, r.insn, MapTable::token(&maps[*i]));
                }
                RelocTarget::MapValue { map, offset } => {
                    let m = &maps[*map];
                    let g = bpfkit_maps::pin();
                    let base = m.bpf_lookup(&0u32.to_le_bytes(), 0, &g).ok_or_else(|| Error::Program {
                        program: p.name.clone(),
                        reason: format!("insn {}: map `{}` has no direct value address", r.insn, file.maps[*map].name),
                    })?;
                    lds.insert(r.insn, crate::verify::LdRef::Value(Arc::clone(m), *offset));
                    lddw(&mut insns, r.insn, base as u64 + u64::from(*offset));
                }
                RelocTarget::Kfunc { name } => {
                    let registered = self.inner.kfuncs.read().expect("kfuncs lock");
                    let f =
                        registered.iter().find(|(n, _)| n == name).map(|(_, f)| Arc::clone(f)).ok_or_else(|| {
                            Error::Program {
                                program: p.name.clone(),
                                reason: format!("insn {}: unknown kfunc `{name}`", r.insn),
                            }
                        })?;
                    let idx = kfuncs.iter().position(|(n, _)| n == name).unwrap_or_else(|| {
                        kfuncs.push((name.clone(), f));
                        kfuncs.len() - 1
                    });
                    insns[r.insn] = RawInsn::new(0x85, 0, 0, 0, KFUNC_BASE + idx as i32);
                }
                RelocTarget::Ksym { name } => {
                    return Err(Error::Program {
                        program: p.name.clone(),
                        reason: format!("insn {}: kernel symbol `{name}` (__ksym) is not available in bpfkit", r.insn),
                    });
                }
                RelocTarget::JumpTable { table, offset } => {
                    let map = jump_tables[*table].map();
                    let len = i64::from(map.spec().max_entries) * 8;
                    let off = i64::from(*offset);
                    if off < 0 || off % 8 != 0 || off >= len {
                        // The kernel's check_ld_imm refuses such an offset (-EACCES).
                        return Err(Error::Program {
                            program: p.name.clone(),
                            reason: format!(
                                "insn {}: offset {off} into jump table `{}` of {} entries (must be a multiple of 8 below {len})",
                                r.insn,
                                p.jump_tables[*table].symbol,
                                map.spec().max_entries
                            ),
                        });
                    }
                    lds.insert(r.insn, crate::verify::LdRef::Value(Arc::clone(map), off as u32));
                    lddw(&mut insns, r.insn, map.value_regions()[0].ptr as u64 + off as u64);
                }
            }
        }
        // Any kfunc call left unbound (no relocation) cannot run.
        if let Some(l) = decode_program(&insns)
            .map_err(|e: DecodeError| Error::Program { program: p.name.clone(), reason: e.to_string() })?
            .iter()
            .find(|l| matches!(l.insn, bpfkit_isa::Insn::Call(bpfkit_isa::CallTarget::Kfunc { .. })))
        {
            let _ = BPF_PSEUDO_KFUNC_CALL;
            return Err(Error::Program {
                program: p.name.clone(),
                reason: format!("insn {}: kfunc call without a name", l.pc),
            });
        }
        Ok(Bound { insns, kfuncs, jump_tables, lds })
    }

    pub(crate) fn keys(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<StaticKey>>> {
        self.inner.keys.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn flip_lock(&self) -> &Arc<Mutex<()>> {
        &self.inner.flip_lock
    }

    /// One key map per static key `p` uses (bpfkit-decisions D3, D4): an instruction array with
    /// `BPF_F_STATIC_KEY` whose entries are the program's sites of that key, frozen and bound
    /// to it. Every static branch of the program must belong to exactly one key.
    #[allow(clippy::type_complexity)]
    fn static_key_maps(
        &self,
        p: &bpfkit_object::Program,
        file: &ObjectFile,
    ) -> Result<Vec<(bpfkit_object::StaticKeyUse, bpfkit_maps::InsnArrayOwner)>, Error> {
        let err = |reason: String| Error::Program { program: p.name.clone(), reason };
        let decoded = decode_program(&p.insns).map_err(|e| err(e.to_string()))?;
        let mut covered: HashMap<usize, &str> = HashMap::new();
        for u in &p.static_keys {
            for &(pc, _) in &u.sites {
                if let Some(other) = covered.insert(pc, &u.key) {
                    return Err(err(format!("insn {pc}: static branch belongs to keys `{other}` and `{}`", u.key)));
                }
            }
        }
        for l in &decoded {
            if matches!(l.insn, bpfkit_isa::Insn::StaticBranch { .. }) && !covered.contains_key(&l.pc) {
                return Err(err(format!("insn {}: static branch that belongs to no static key", l.pc)));
            }
        }
        let tails: std::collections::HashSet<usize> =
            decoded.iter().filter(|l| matches!(l.insn, bpfkit_isa::Insn::LdImm64 { .. })).map(|l| l.pc + 1).collect();
        let mut out = Vec::new();
        for u in &p.static_keys {
            let def = file
                .maps
                .iter()
                .find(|d| d.name == u.key && is_static_key(d))
                .ok_or_else(|| err(format!("static key `{}` is not defined with DEFINE_STATIC_KEY", u.key)))?;
            let kerr = |e: bpfkit_maps::MapError| err(format!("static key `{}`: {e}", u.key));
            let mut spec = MapSpec::new(MapType::InsnArray, 4, 16, u.sites.len() as u32);
            spec.name = kernel_map_name(&u.key);
            spec.map_extra = def.map_extra;
            let map = Arc::new(Map::create(spec, 1).map_err(kerr)?);
            for (i, &(pc, _)) in u.sites.iter().enumerate() {
                let mut value = [0u8; 16];
                value[..4].copy_from_slice(&(pc as u32).to_le_bytes());
                map.update(&(i as u32).to_le_bytes(), &value, 0).map_err(kerr)?;
            }
            map.freeze().map_err(kerr)?;
            self.inner.maps.add(&map);
            let owner = map.bind_insn_array(p.insns.len(), &|i| tails.contains(&i)).map_err(kerr)?;
            out.push((u.clone(), owner));
        }
        Ok(out)
    }

    /// One instruction-array map per jump table of `p` (libbpf's `create_jt_map`): named
    /// `.jumptables`, filled with the entries' instructions, frozen, and bound to the program.
    fn jump_table_maps(&self, p: &bpfkit_object::Program) -> Result<Vec<bpfkit_maps::InsnArrayOwner>, Error> {
        if p.jump_tables.is_empty() {
            return Ok(Vec::new());
        }
        let tails: std::collections::HashSet<usize> = decode_program(&p.insns)
            .map_err(|e| Error::Program { program: p.name.clone(), reason: e.to_string() })?
            .iter()
            .filter(|l| matches!(l.insn, bpfkit_isa::Insn::LdImm64 { .. }))
            .map(|l| l.pc + 1)
            .collect();
        let mut owners = Vec::with_capacity(p.jump_tables.len());
        for jt in &p.jump_tables {
            let err = |reason: String| Error::Program {
                program: p.name.clone(),
                reason: format!(
                    "jump table `{}` (sym_off {}) loaded by insn {}: can't create jump table: {reason}",
                    jt.symbol, jt.sym_off, jt.insn
                ),
            };
            let n = u32::try_from(jt.entries.len()).map_err(|_| err("too many entries".into()))?;
            let mut spec = MapSpec::new(bpfkit_maps::MapType::InsnArray, 4, 16, n);
            spec.name = ".jumptables".into();
            let map = Arc::new(Map::create(spec, self.inner.ncpus as usize).map_err(|e| err(e.to_string()))?);
            for (i, target) in jt.entries.iter().enumerate() {
                let mut value = [0u8; 16];
                value[..4].copy_from_slice(&target.to_le_bytes());
                map.update(&(i as u32).to_le_bytes(), &value, 0).map_err(|e| err(e.to_string()))?;
            }
            map.freeze().map_err(|e| err(e.to_string()))?;
            self.inner.maps.add(&map);
            owners.push(
                map.bind_insn_array(p.insns.len(), &|i| tails.contains(&i))
                    .map_err(|e| err(format!("{e} (entries {:?}, program of {} insns)", jt.entries, p.insns.len())))?,
            );
        }
        Ok(owners)
    }
}

/// A program's instructions once bound, with the kfuncs it calls and the instruction arrays
/// made of its jump tables.
struct Bound {
    insns: Vec<RawInsn>,
    kfuncs: Vec<(String, Arc<KfuncFn>)>,
    jump_tables: Vec<bpfkit_maps::InsnArrayOwner>,
    /// What each map `lddw` refers to (for the verifier).
    lds: HashMap<usize, crate::verify::LdRef>,
}

/// The name the kernel would keep: at most 15 characters of `[A-Za-z0-9_.]` (libbpf truncates).
fn kernel_map_name(name: &str) -> String {
    name.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '.').take(15).collect()
}

fn map_error(def: &MapDef, e: bpfkit_maps::MapError) -> Error {
    Error::Map { map: def.name.clone(), reason: e.to_string() }
}

/// Whether `def` declares a static key (`DEFINE_STATIC_KEY`).
fn is_static_key(def: &MapDef) -> bool {
    def.map_type == MapType::InsnArray as u32 && def.map_extra & bpfkit_maps::flags::BPF_F_STATIC_KEY != 0
}

fn spec_of(def: &MapDef) -> Result<MapSpec, Error> {
    let map_type = MapType::from_u32(def.map_type)
        .ok_or_else(|| Error::Map { map: def.name.clone(), reason: format!("unknown map type {}", def.map_type) })?;
    Ok(MapSpec {
        name: kernel_map_name(&def.name),
        map_type,
        key_size: def.key_size,
        value_size: def.value_size,
        max_entries: def.max_entries,
        flags: def.flags,
        map_extra: def.map_extra,
        inner: def.inner.as_deref().map(spec_of).transpose()?.map(Box::new),
    })
}

/// A loaded object: its maps and programs.
pub struct Object {
    runtime: Runtime,
    static_keys: Vec<Arc<StaticKey>>,
    maps: Vec<Arc<Map>>,
    map_defs: Vec<MapDef>,
    programs: Vec<Prog>,
    license: String,
    /// Inner maps created from a map-in-map's template by a declarative initialiser.
    created: std::sync::Mutex<Vec<(String, Arc<Map>)>>,
}

impl std::fmt::Debug for Object {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Object")
            .field("programs", &self.programs.iter().map(|p| p.name.as_str()).collect::<Vec<_>>())
            .field("maps", &self.map_defs.iter().map(|m| m.name.as_str()).collect::<Vec<_>>())
            .finish()
    }
}

impl Object {
    /// The runtime the object lives in.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// The object's license string.
    pub fn license(&self) -> &str {
        &self.license
    }

    /// Every program.
    pub fn programs(&self) -> &[Prog] {
        &self.programs
    }

    /// The program called `name` (function or section name).
    pub fn program(&self, name: &str) -> Result<&Prog, Error> {
        self.programs
            .iter()
            .find(|p| p.name == name)
            .or_else(|| {
                let mut it = self.programs.iter().filter(|p| p.section == name);
                match (it.next(), it.next()) {
                    (Some(p), None) => Some(p),
                    _ => None,
                }
            })
            .ok_or_else(|| Error::NotFound { what: "program", name: name.to_string() })
    }

    /// Every map with its name.
    pub fn maps(&self) -> impl Iterator<Item = (&str, &Arc<Map>)> {
        self.map_defs.iter().map(|d| d.name.as_str()).zip(&self.maps)
    }

    /// The static key called `name` (`DEFINE_STATIC_KEY(name)`): its `set(on)` flips it in
    /// every program of the object.
    pub fn static_key(&self, name: &str) -> Result<&Arc<StaticKey>, Error> {
        self.static_keys
            .iter()
            .find(|k| k.name() == name)
            .ok_or_else(|| Error::NotFound { what: "static key", name: name.to_string() })
    }

    /// Every static key of the object.
    pub fn static_keys(&self) -> &[Arc<StaticKey>] {
        &self.static_keys
    }

    /// The map called `name`.
    pub fn map(&self, name: &str) -> Result<&Arc<Map>, Error> {
        self.maps()
            .find(|(n, _)| *n == name)
            .map(|(_, m)| m)
            .ok_or_else(|| Error::NotFound { what: "map", name: name.to_string() })
    }

    /// The name of the program a prog-array slot holds, if it is one of this object's.
    pub fn program_name_of(&self, entry: &bpfkit_maps::ProgEntry) -> Option<&str> {
        let handle = Arc::as_ptr(&entry.handle) as *const u8;
        self.programs.iter().find(|p| Arc::as_ptr(&p.program) as *const u8 == handle).map(|p| p.name.as_str())
    }

    /// The name of `map` if this object defines or created it.
    pub fn map_name_of(&self, map: &Arc<Map>) -> Option<String> {
        self.maps().find(|(_, m)| Arc::ptr_eq(m, map)).map(|(n, _)| n.to_string()).or_else(|| {
            self.created
                .lock()
                .expect("created maps lock")
                .iter()
                .find(|(_, m)| Arc::ptr_eq(m, map))
                .map(|(n, _)| n.clone())
        })
    }

    /// The definition of the map called `name`.
    pub fn map_def(&self, name: &str) -> Option<&MapDef> {
        self.map_defs.iter().find(|d| d.name == name)
    }

    /// Compiles every program of the object with the x86-64 JIT, so that workers set to
    /// [`Backend::Jit`](crate::Backend) run them natively (tail calls between them stay native).
    /// The JIT does no bounds checks: `trust` states who vouches for the programs, until
    /// bpfkit's verifier can. Programs already compiled are left as they are.
    pub fn jit(&self, trust: crate::Trust) -> Result<(), Error> {
        for p in &self.programs {
            p.jit(trust)?;
        }
        Ok(())
    }

    /// Sets slot `index` of a prog array to program `prog` of this object.
    pub fn set_prog_slot(&self, map: &str, index: u32, prog: &str) -> Result<(), Error> {
        let m = self.map(map)?;
        let p = self.program(prog)?;
        m.update_prog(&index.to_le_bytes(), prog_entry(p), 0)
            .map_err(|e| Error::Map { map: map.to_string(), reason: e.to_string() })
    }

    /// Sets slot `index` of a map-in-map to map `inner` of this object.
    pub fn set_map_slot(&self, map: &str, index: &[u8], inner: &str) -> Result<(), Error> {
        let m = self.map(map)?;
        let i = self.map(inner)?;
        m.update_inner_map(index, Arc::clone(i), 0)
            .map_err(|e| Error::Map { map: map.to_string(), reason: e.to_string() })
    }

    fn init_slot(&self, def: &MapDef, m: &Arc<Map>, init: &MapInit) -> Result<(), Error> {
        match init {
            MapInit::Prog { index, prog } => {
                let p = self.program(prog)?;
                m.update_prog(&index.to_le_bytes(), prog_entry(p), 0).map_err(|e| map_error(def, e))
            }
            MapInit::Map { index, map } => {
                // An inner map declared only by its template gets created here, as libbpf does.
                let inner = match self.map(map) {
                    Ok(i) => Arc::clone(i),
                    Err(_) => {
                        let tmpl = def.inner.as_deref().ok_or_else(|| Error::Map {
                            map: def.name.clone(),
                            reason: format!("slot {index} names `{map}`, which is not a map"),
                        })?;
                        let mut named = tmpl.clone();
                        named.name = map.clone();
                        let created = Arc::new(self.runtime.create_map(&named)?);
                        self.runtime.inner.maps.add(&created);
                        self.created.lock().expect("created maps lock").push((map.clone(), Arc::clone(&created)));
                        created
                    }
                };
                m.update_inner_map(&index.to_le_bytes(), inner, 0).map_err(|e| map_error(def, e))
            }
        }
    }
}

fn prog_entry(p: &Prog) -> bpfkit_maps::ProgEntry {
    bpfkit_maps::ProgEntry::new(p.id, Arc::clone(&p.program) as Arc<dyn std::any::Any + Send + Sync>)
}

/// A loaded program.
pub struct Prog {
    id: u32,
    name: String,
    section: String,
    prog_type: ProgType,
    program: Arc<Program>,
    insns: Vec<RawInsn>,
    maps: Arc<MapTable>,
    line_info: Vec<bpfkit_object::LineInfo>,
    runtime: Runtime,
    /// The instruction arrays bound to this program (released when it is dropped).
    insn_arrays: Vec<bpfkit_maps::InsnArrayOwner>,
    /// The program as loaded (relocations bound), before the fixups.
    orig_insns: Vec<RawInsn>,
    /// Where each instruction of `orig_insns` went in `insns` (`u32::MAX`: removed).
    orig_to_xlated: Vec<u32>,
    verify_report: bpfkit_verifier::VerifyReport,
    /// The jiffies cell, when `bpf_jiffies64` is inlined.
    jiffies: Option<Arc<Map>>,
    /// Consistent static-key flips (see `static_keys.rs`).
    gate: Arc<Gate>,
}

impl std::fmt::Debug for Prog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prog").field("name", &self.name).field("section", &self.section).finish()
    }
}

/// What an XDP program decided, and the packet as it left.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XdpOutcome {
    /// The return value (`XDP_ABORTED` 0, `XDP_DROP` 1, `XDP_PASS` 2, `XDP_TX` 3, `XDP_REDIRECT` 4).
    pub action: u32,
}

impl Prog {
    /// The program's id (what a prog-array slot holding it reports).
    pub fn id(&self) -> u32 {
        self.id
    }
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn section(&self) -> &str {
        &self.section
    }
    pub fn prog_type(&self) -> ProgType {
        self.prog_type
    }
    /// The xlated instructions the interpreter runs (and the JIT compiles): the program after
    /// bpfkit's fixups (nops removed, `bpf_jiffies64` inlined, constants blinded if asked).
    pub fn insns(&self) -> &[RawInsn] {
        &self.insns
    }

    /// The instructions as loaded (relocations bound), before the fixups.
    pub fn orig_insns(&self) -> &[RawInsn] {
        &self.orig_insns
    }

    /// Where instruction `orig` of [`Prog::orig_insns`] is in [`Prog::insns`] (`None`: removed).
    pub fn xlated_of(&self, orig: usize) -> Option<usize> {
        self.orig_to_xlated.get(orig).copied().filter(|&x| x != u32::MAX).map(|x| x as usize)
    }

    pub(crate) fn gate(&self) -> &Arc<Gate> {
        &self.gate
    }

    /// Consistent static-key flips for this program: no run sees a flip half done (each run
    /// holds a shared lock; a flip waits for runs in progress). Off by default (see
    /// `static_keys.rs` for the cost).
    pub fn set_consistent_flips(&self, on: bool) {
        self.gate.consistent.store(on, std::sync::atomic::Ordering::Release);
    }

    /// The verifier's verdict, statistics and log (level 1).
    pub fn verify_report(&self) -> &bpfkit_verifier::VerifyReport {
        &self.verify_report
    }
    /// Source lines of instructions (from BTF line info).
    pub fn line_info(&self) -> &[bpfkit_object::LineInfo] {
        &self.line_info
    }

    /// Compiles this program with the JIT (see [`Object::jit`]); a no-op when already done.
    pub fn jit(&self, trust: crate::Trust) -> Result<(), Error> {
        if self.program.native().is_some() {
            return Ok(());
        }
        if trust == crate::Trust::Verified
            && let Some(e) = &self.verify_report.error
        {
            return Err(Error::Program {
                program: self.name.clone(),
                reason: format!(
                    "the verifier refused it ({e}): the JIT runs only verified programs unless the caller vouches for it"
                ),
            });
        }
        // Compiled with every static branch in its key's current state: no flip meanwhile.
        let flip_lock = Arc::clone(self.runtime.flip_lock());
        let _flip = flip_lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let code = match bpfkit_jit::jit(&self.program, &self.jit_options(), trust) {
            Ok(code) => code,
            Err(bpfkit_jit::CompileError::AlreadyCompiled) => return Ok(()),
            Err(source) => return Err(Error::Jit { program: self.name.clone(), source }),
        };
        // Instruction arrays now designate native code: `jitted_off` is the offset in the
        // instruction's function (its own image, as the kernel reports it), and the address
        // programs read is native (the interpreter follows native addresses too).
        let c = code.compiled();
        let base = code.address();
        for o in &self.insn_arrays {
            o.set_code(&|x| {
                let off = *c.insn_offsets.get(x as usize)?;
                let func = c.functions.iter().rev().find(|(pc, _)| *pc <= x as usize)?.1 as u32;
                Some((off - func, base + u64::from(off)))
            })
            .map_err(|e| Error::Program { program: self.name.clone(), reason: e.to_string() })?;
        }
        Ok(())
    }

    /// The machine code the JIT makes of this program, without running or attaching it (for
    /// dumps; needs no trust).
    pub fn compile_native(&self) -> Result<bpfkit_jit::Compiled, Error> {
        bpfkit_jit::compile(&self.program, &self.jit_options())
            .map_err(|source| Error::Jit { program: self.name.clone(), source })
    }

    fn jit_options(&self) -> bpfkit_jit::JitOptions {
        let ctx = match self.prog_type {
            ProgType::Xdp => Some(bpfkit_jit::CtxLayout { fields: &context::XDP_MD_FIELDS, visible_size: XDP_MD_SIZE }),
            ProgType::SocketFilter => {
                Some(bpfkit_jit::CtxLayout { fields: &context::SKB_SOCKET_FIELDS, visible_size: SK_BUFF_SIZE })
            }
            ProgType::SchedCls | ProgType::SchedAct => {
                Some(bpfkit_jit::CtxLayout { fields: &context::SKB_TC_FIELDS, visible_size: SK_BUFF_SIZE })
            }
            _ => None,
        };
        // Plain array maps the program references get their lookups inlined.
        let inline_arrays = self
            .maps
            .iter()
            .filter_map(|m| {
                let l = m.array_layout()?;
                Some(bpfkit_jit::InlineArray {
                    token: MapTable::token(m),
                    base: l.base,
                    stride: l.stride,
                    max_entries: l.max_entries,
                })
            })
            .collect();
        bpfkit_jit::JitOptions { ctx, inline_arrays }
    }

    /// Whether the program has native code (it was compiled with [`Prog::jit`]).
    pub fn is_jitted(&self) -> bool {
        self.program.native().is_some()
    }

    /// The JIT's code for this program, if compiled (for dumps).
    pub fn jit_code(&self) -> Option<&bpfkit_jit::JitCode> {
        self.program.native()?.owner().downcast_ref::<Arc<bpfkit_jit::JitCode>>().map(|a| &**a)
    }

    /// Takes ownership of the instruction arrays bound at load and fills their offsets for the
    /// interpreter (bpfkit-decisions D6): no rewrite moves instructions yet, so `xlated_off`
    /// stays `orig_off`; `jitted_off` is `xlated_off * 8` and the address programs read is the
    /// interpreter's code address of the instruction.
    pub(crate) fn set_insn_arrays(&mut self, owners: Vec<bpfkit_maps::InsnArrayOwner>) -> Result<(), Error> {
        let program = Arc::clone(&self.program);
        for o in &owners {
            let map = &self.orig_to_xlated;
            o.map_xlated(&|x| map.get(x as usize).copied().filter(|&v| v != u32::MAX));
        }
        for o in &owners {
            o.set_code(&|x| Some((x.checked_mul(8)?, program.code_address(x as usize))))
                .map_err(|e| Error::Program { program: self.name.clone(), reason: e.to_string() })?;
        }
        self.insn_arrays = owners;
        Ok(())
    }

    /// The instruction arrays this program owns (jump tables and those bound at load), in the
    /// order they were bound.
    pub fn insn_arrays(&self) -> Vec<Arc<bpfkit_maps::Map>> {
        self.insn_arrays.iter().map(|o| Arc::clone(o.map())).collect()
    }

    /// The interpreter's program (shared with the JIT).
    pub fn interp_program(&self) -> &Arc<Program> {
        &self.program
    }

    fn check_type(&self, allowed: &[ProgType], what: &str) -> Result<(), Error> {
        if !self.prog_type.is_supported() {
            return Err(Error::Program {
                program: self.name.clone(),
                reason: format!("program type {} is not supported yet", self.prog_type),
            });
        }
        if allowed.contains(&self.prog_type) {
            Ok(())
        } else {
            Err(Error::Program {
                program: self.name.clone(),
                reason: format!("a {} program cannot run {what}", self.prog_type),
            })
        }
    }

    /// Runs an XDP program over `pkt` (in place: head/tail adjustments change it).
    pub fn run_xdp(&self, w: &mut Worker, pkt: &mut XdpPacket) -> Result<XdpOutcome, Error> {
        self.check_type(&[ProgType::Xdp], "over an XDP packet")?;
        let data = geo::HEADROOM as u64;
        let start_len = pkt.len;
        let mut shadow = [0u8; xdp_shadow::SIZE];
        w.env.ctx = CtxKind::Xdp;
        let (frame, head, len) = (&mut pkt.frame, pkt.head, pkt.len);
        let region = MemoryRegion::writable(RegionKind::Packet, &mut frame[..])
            .with_window(head, len)
            .expect("packet inside its frame");
        let base = region.alloc_addr();
        shadow[xdp_shadow::DATA..][..8].copy_from_slice(&(base + head as u64).to_le_bytes());
        shadow[xdp_shadow::DATA_END..][..8].copy_from_slice(&(base + (head + len) as u64).to_le_bytes());
        shadow[xdp_shadow::DATA_META..][..8].copy_from_slice(&(base + head as u64).to_le_bytes());
        shadow[xdp_shadow::INGRESS_IFINDEX..][..4].copy_from_slice(&pkt.ingress_ifindex.to_le_bytes());
        shadow[xdp_shadow::RX_QUEUE_INDEX..][..4].copy_from_slice(&pkt.rx_queue_index.to_le_bytes());
        let ctx = MemoryRegion::context(&mut shadow, &context::XDP_MD_FIELDS, XDP_MD_SIZE);
        let ctx_addr = ctx.addr();
        let r0 = self.execute(w, &[ctx, region], ctx_addr)?;
        // The packet as the program left it: [data, data_end).
        let rd = |at: usize| u64::from_le_bytes(shadow[at..at + 8].try_into().expect("8 bytes"));
        pkt.head = (rd(xdp_shadow::DATA) - base) as usize;
        pkt.len = (rd(xdp_shadow::DATA_END) - rd(xdp_shadow::DATA)) as usize;
        pkt.meta = (rd(xdp_shadow::DATA) - rd(xdp_shadow::DATA_META)) as usize;
        let _ = (data, start_len);
        Ok(XdpOutcome { action: r0 as u32 })
    }

    /// Runs a socket filter or tc program over the Ethernet frame `frame`, as the kernel's test
    /// run does: a socket filter sees the packet from its network header; tc sees the whole
    /// frame and may write `mark`, `priority`, `tc_index`, `tc_classid` and `cb[]` (returned).
    pub fn run_skb(&self, w: &mut Worker, frame: &mut [u8], skb: &mut SkbMeta) -> Result<u64, Error> {
        self.check_type(&[ProgType::SocketFilter, ProgType::SchedCls, ProgType::SchedAct], "over an skb")?;
        check_skb(frame)?;
        let l2 = self.prog_type != ProgType::SocketFilter;
        let eth = 14.min(frame.len());
        let data_off = if l2 { 0 } else { eth };
        let len = frame.len() - data_off;
        let mut shadow = [0u8; skb_shadow::SIZE];
        let put = |s: &mut [u8], off: u32, v: u32| s[off as usize..off as usize + 4].copy_from_slice(&v.to_le_bytes());
        let proto = if frame.len() >= 14 { u16::from_be_bytes([frame[12], frame[13]]) } else { 0 };
        put(&mut shadow, skb_off::LEN, len as u32);
        put(&mut shadow, skb_off::PKT_TYPE, pkt_type(frame));
        put(&mut shadow, skb_off::MARK, skb.mark);
        put(&mut shadow, skb_off::PROTOCOL, u32::from(proto.to_be()));
        put(&mut shadow, skb_off::PRIORITY, skb.priority);
        put(&mut shadow, skb_off::INGRESS_IFINDEX, skb.ingress_ifindex);
        put(&mut shadow, skb_off::IFINDEX, skb.ifindex);
        put(&mut shadow, skb_off::TC_INDEX, skb.tc_index);
        for (i, c) in skb.cb.iter().enumerate() {
            put(&mut shadow, skb_off::CB + 4 * i as u32, *c);
        }
        put(&mut shadow, skb_off::TC_CLASSID, skb.tc_classid);
        put(&mut shadow, skb_off::WIRE_LEN, len as u32);
        w.env.ctx = CtxKind::Skb { data_off };
        let total = frame.len();
        let region = MemoryRegion::writable(RegionKind::Packet, frame);
        let base = region.alloc_addr();
        for (at, v) in [
            (skb_shadow::DATA, base + data_off as u64),
            (skb_shadow::DATA_END, base + total as u64),
            (skb_shadow::DATA_META, base + data_off as u64),
        ] {
            shadow[at..at + 8].copy_from_slice(&v.to_le_bytes());
        }
        let fields: &'static [CtxField] = if l2 { &context::SKB_TC_FIELDS } else { &context::SKB_SOCKET_FIELDS };
        let ctx = MemoryRegion::context(&mut shadow, fields, SK_BUFF_SIZE);
        let ctx_addr = ctx.addr();
        // Socket filters have no `data`/`data_end` fields, so no direct packet access; the
        // region is there for bpf_skb_load_bytes.
        let r0 = self.execute(w, &[ctx, region], ctx_addr)?;
        let get = |off: u32| u32::from_le_bytes(shadow[off as usize..off as usize + 4].try_into().expect("4 bytes"));
        skb.mark = get(skb_off::MARK);
        skb.priority = get(skb_off::PRIORITY);
        skb.tc_index = get(skb_off::TC_INDEX);
        skb.tc_classid = get(skb_off::TC_CLASSID);
        for (i, c) in skb.cb.iter_mut().enumerate() {
            *c = get(skb_off::CB + 4 * i as u32);
        }
        Ok(r0)
    }

    /// Runs a `syscall` program with `ctx` as its context (read and written in place).
    pub fn run_raw(&self, w: &mut Worker, ctx: &mut [u8]) -> Result<u64, Error> {
        self.check_type(&[ProgType::Syscall], "with a raw context")?;
        // The verifier let the program read this far into its context (no fixed layout): the
        // caller must pass that much, as the kernel's test run requires (-EINVAL otherwise).
        let need = self.verify_report.max_ctx_offset as usize;
        if ctx.len() < need {
            return Err(Error::Program {
                program: self.name.clone(),
                reason: format!("context of {} bytes, but the program reads up to byte {need} (EINVAL)", ctx.len()),
            });
        }
        w.env.ctx = CtxKind::Raw;
        let region = MemoryRegion::writable(RegionKind::Context, ctx);
        let a = region.addr();
        self.execute(w, &[region], a)
    }

    /// One invocation on the worker's VM for this program, with `r1 = ctx` and the run's epoch
    /// guard pinned from start to end (map memory the program gets stays valid until it ends).
    fn execute(&self, w: &mut Worker, regions: &[MemoryRegion<'_>], ctx: u64) -> Result<u64, Error> {
        if w.backend == crate::Backend::Jit && !self.is_jitted() {
            return Err(Error::Program {
                program: self.name.clone(),
                reason: "the worker runs the JIT, but this program was not JIT-compiled (Object::jit)".into(),
            });
        }
        let backend = match w.backend {
            crate::Backend::Interp => bpfkit_interp::Backend::Interpreter,
            crate::Backend::Jit => bpfkit_interp::Backend::Native,
        };
        if let Some(j) = &self.jiffies {
            let now = w.env.clock.now_ns() / (1_000_000_000 / crate::env::HZ);
            let _ = j.update(&0u32.to_le_bytes(), &now.to_le_bytes(), 0);
        }
        // Consistent static-key flips wait for this run, and this run for them.
        let gate = Arc::clone(&self.gate);
        let _shared = gate
            .consistent
            .load(std::sync::atomic::Ordering::Acquire)
            .then(|| gate.lock.read().unwrap_or_else(std::sync::PoisonError::into_inner));
        let (vm, env) = w.vm(self);
        vm.set_backend(backend);
        env.guard = Some(bpfkit_maps::pin());
        let result = vm.run_with_env(regions, [ctx, 0, 0, 0, 0], env);
        env.guard = None;
        result.map_err(|e| self.run_error(e))
    }

    fn run_error(&self, e: RunError) -> Error {
        let line = self
            .line_info
            .iter()
            .rev()
            .find(|l| l.insn <= e.pc)
            .map(|l| format!(" ({}:{}: {})", l.file, l.line, l.text.trim()));
        Error::Run { program: self.name.clone(), source: e, line: line.unwrap_or_default() }
    }
}

/// `skb->pkt_type` from the destination MAC, as `eth_type_trans` sets it on the test run's
/// loopback device, whose address and broadcast address are all zeros: any group address
/// (ff:ff:ff:ff:ff:ff included) is PACKET_MULTICAST (2), the device's own is PACKET_HOST (0),
/// anything else PACKET_OTHERHOST (3).
fn pkt_type(frame: &[u8]) -> u32 {
    match frame.first() {
        None => 0,
        Some(b) if b & 1 == 1 => 2,
        Some(_) if frame.len() >= 6 && frame[..6] == [0; 6] => 0,
        Some(_) => 3,
    }
}

/// The kernel's test run refuses frames shorter than an Ethernet header.
fn check_eth(data: &[u8]) -> Result<(), Error> {
    if data.len() < geo::ETH_HLEN {
        return Err(Error::Refused { len: data.len(), reason: "shorter than an Ethernet header" });
    }
    Ok(())
}

/// For skb programs the kernel (6.18, observed) also refuses IPv4 and IPv6 frames whose network
/// header is incomplete (the EtherType is the outer one: VLAN tags are not looked through).
fn check_skb(data: &[u8]) -> Result<(), Error> {
    check_eth(data)?;
    let l3 = data.len() - geo::ETH_HLEN;
    match u16::from_be_bytes([data[12], data[13]]) {
        0x0800 if l3 < 20 => Err(Error::Refused { len: data.len(), reason: "IPv4 frame without a full IPv4 header" }),
        0x86dd if l3 < 40 => Err(Error::Refused { len: data.len(), reason: "IPv6 frame without a full IPv6 header" }),
        _ => Ok(()),
    }
}

/// `__sk_buff` fields the caller sets and the program may change (tc).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SkbMeta {
    pub mark: u32,
    pub priority: u32,
    /// `skb->ifindex` (the kernel's test run: 1, loopback).
    pub ifindex: u32,
    /// `skb->ingress_ifindex` (the kernel's test run: 0).
    pub ingress_ifindex: u32,
    pub tc_index: u32,
    pub tc_classid: u32,
    pub cb: [u32; 5],
}

/// A packet in an XDP frame with headroom and tailroom.
#[derive(Clone, Debug)]
pub struct XdpPacket {
    frame: Box<[u8]>,
    head: usize,
    len: usize,
    /// Metadata bytes before `head` (`data - data_meta`).
    meta: usize,
    pub ingress_ifindex: u32,
    pub rx_queue_index: u32,
}

impl XdpPacket {
    /// A packet with the kernel's 256 bytes of headroom in a 4096-byte frame. Longer packets
    /// than the test run accepts are refused.
    pub fn new(data: &[u8]) -> Result<XdpPacket, Error> {
        check_eth(data)?;
        if data.len() > geo::MAX_PACKET {
            return Err(Error::PacketTooBig { len: data.len(), max: geo::MAX_PACKET });
        }
        let mut frame = vec![0u8; geo::FRAME].into_boxed_slice();
        frame[geo::HEADROOM..geo::HEADROOM + data.len()].copy_from_slice(data);
        Ok(XdpPacket { frame, head: geo::HEADROOM, len: data.len(), meta: 0, ingress_ifindex: 1, rx_queue_index: 0 })
    }

    /// Replaces the packet (reusing the frame).
    pub fn reset(&mut self, data: &[u8]) -> Result<(), Error> {
        check_eth(data)?;
        if data.len() > geo::MAX_PACKET {
            return Err(Error::PacketTooBig { len: data.len(), max: geo::MAX_PACKET });
        }
        self.frame[..geo::HEADROOM].fill(0);
        self.frame[geo::HEADROOM..geo::HEADROOM + data.len()].copy_from_slice(data);
        self.frame[geo::HEADROOM + data.len()..].fill(0);
        self.head = geo::HEADROOM;
        self.len = data.len();
        self.meta = 0;
        Ok(())
    }

    /// The metadata and the packet, `[data_meta, data_end)`: what the kernel's test run returns
    /// as the output packet.
    pub fn data_with_meta(&self) -> &[u8] {
        &self.frame[self.head - self.meta..self.head + self.len]
    }

    /// The packet bytes, `[data, data_end)`.
    pub fn data(&self) -> &[u8] {
        &self.frame[self.head..self.head + self.len]
    }
}

/// A thread's execution state: its CPU slot, its VMs (one per program), trace output.
pub struct Worker {
    /// One VM per program this worker ran, by program address (a short list: a linear scan
    /// beats hashing).
    vms: Vec<(usize, Vm)>,
    env: RunEnv,
    backend: crate::Backend,
}

impl Worker {
    /// A worker on CPU slot `cpu` of `runtime`.
    pub fn new(runtime: &Runtime, cpu: u32) -> Worker {
        Worker {
            vms: Vec::new(),
            env: RunEnv {
                cpu: cpu % runtime.inner.ncpus,
                clock: Arc::clone(&runtime.inner.clock.read().expect("clock lock")),
                rng: 0x2545_f491_4f6c_dd1d ^ (u64::from(cpu) + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15),
                trace: Vec::new(),
                maps: Arc::default(),
                runtime_maps: Arc::clone(&runtime.inner.maps),
                ctx: CtxKind::Raw,
                guard: None,
            },
            backend: crate::Backend::Interp,
        }
    }

    /// Chooses the engine this worker runs programs with (default: the interpreter).
    pub fn set_backend(&mut self, backend: crate::Backend) {
        self.backend = backend;
    }

    /// The engine this worker runs programs with.
    pub fn backend(&self) -> crate::Backend {
        self.backend
    }

    /// The CPU slot.
    pub fn cpu(&self) -> u32 {
        self.env.cpu
    }

    /// Takes the `bpf_trace_printk` lines captured so far.
    pub fn take_trace(&mut self) -> Vec<String> {
        std::mem::take(&mut self.env.trace)
    }

    /// This worker's VM for `p` (made on first use) and the run environment.
    fn vm(&mut self, p: &Prog) -> (&mut Vm, &mut RunEnv) {
        if !Arc::ptr_eq(&self.env.maps, &p.maps) {
            self.env.maps = Arc::clone(&p.maps);
        }
        let key = Arc::as_ptr(&p.program) as usize;
        let i = match self.vms.iter().position(|(k, _)| *k == key) {
            Some(i) => i,
            None => {
                let mut vm = Vm::new(Arc::clone(&p.program));
                for m in p.maps.iter().chain(p.runtime.inner.maps.all().iter()) {
                    crate::regions::register_map(&mut vm, m);
                }
                self.vms.push((key, vm));
                self.vms.len() - 1
            }
        };
        (&mut self.vms[i].1, &mut self.env)
    }
}
