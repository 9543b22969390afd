//! Static keys (bpfkit-decisions D1-D5): branches that cost nothing while their key is off,
//! flipped while programs run.
//!
//! A key has one *instance* per program that uses it: an instruction-array map with
//! `BPF_F_STATIC_KEY` whose entries are that program's sites (offsets follow orig → xlated →
//! jitted like any instruction array). [`StaticKey::set`] flips every instance: each site of
//! the interpreter's program (an atomic flag the interpreter reads at the site) and of the JIT's
//! code (one atomic 8-byte store per site plus `membarrier(SYNC_CORE)`, `crates/jit/src/patch.rs`).
//!
//! # Flip protocol
//!
//! * Flips and JIT compilation are serialised by one runtime-wide lock, so a program is
//!   compiled with every site in its key's current state and no flip is lost.
//! * Each site changes atomically: a run sees it either old or new (D5). By default the sites of
//!   a key change one after another, as the kernel's static keys do, so a run in progress may see
//!   some sites old and some new.
//! * Consistent flips (opt-in per program, [`crate::Prog::set_consistent_flips`]): every run of
//!   the program holds a shared lock for its whole duration, and a flip takes the lock of every
//!   program it patches exclusively, so it waits for runs in progress and no run starts until all
//!   sites are in the new state. Cost: an uncontended reader lock per run, and a flip waits for
//!   the longest run in progress. Flips from BPF code (the kfunc) never wait (a run would wait
//!   for itself): they are per-site atomic only.

use crate::Error;
use bpfkit_interp::Program;
use bpfkit_maps::Map;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};

/// A program's gate for consistent flips.
#[derive(Debug, Default)]
pub(crate) struct Gate {
    pub(crate) consistent: AtomicBool,
    pub(crate) lock: RwLock<()>,
}

/// One program's use of a key.
#[derive(Debug)]
struct Instance {
    program: Weak<Program>,
    gate: Weak<Gate>,
    /// Sites: xlated slot, and whether it is a nop_or_goto.
    sites: Vec<(usize, bool)>,
    /// The instance's key map.
    map: Arc<Map>,
}

/// A static key: every instance of it in the programs of an object (or one key map loaded
/// with `Runtime::prog_load`).
#[derive(Debug)]
pub struct StaticKey {
    name: String,
    on: AtomicBool,
    instances: Mutex<Vec<Instance>>,
    flip_lock: Arc<Mutex<()>>,
}

fn jit_code(p: &Program) -> Option<&bpfkit_jit::JitCode> {
    p.native()?.owner().downcast_ref::<Arc<bpfkit_jit::JitCode>>().map(|a| &**a)
}

impl StaticKey {
    pub(crate) fn new(name: &str, on: bool, flip_lock: Arc<Mutex<()>>) -> StaticKey {
        StaticKey { name: name.to_string(), on: AtomicBool::new(on), instances: Mutex::default(), flip_lock }
    }

    /// The key's name (`DEFINE_STATIC_KEY(name)`, or the map's name).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the key is on.
    pub fn get(&self) -> bool {
        self.on.load(Ordering::Acquire)
    }

    /// Number of sites over every instance.
    pub fn sites(&self) -> usize {
        self.instances.lock().unwrap_or_else(PoisonError::into_inner).iter().map(|i| i.sites.len()).sum()
    }

    /// The key maps of every instance (one per program using the key).
    pub fn maps(&self) -> Vec<Arc<Map>> {
        self.instances.lock().unwrap_or_else(PoisonError::into_inner).iter().map(|i| Arc::clone(&i.map)).collect()
    }

    /// Adds a program's instance and puts its sites in the key's current state (before the
    /// program can run).
    pub(crate) fn add_instance(
        &self,
        program: &Arc<Program>,
        gate: &Arc<Gate>,
        sites: Vec<(usize, bool)>,
        map: Arc<Map>,
    ) {
        let _flip = self.flip_lock.lock().unwrap_or_else(PoisonError::into_inner);
        let on = self.get();
        for &(pc, inverse) in &sites {
            program.set_static_branch(pc, on ^ inverse);
        }
        self.instances.lock().unwrap_or_else(PoisonError::into_inner).push(Instance {
            program: Arc::downgrade(program),
            gate: Arc::downgrade(gate),
            sites,
            map,
        });
    }

    /// Turns the key on or off in every program that uses it, and returns when every site is in
    /// the new state (in the interpreter and in native code). With consistent flips enabled on a
    /// program, waits for its runs in progress first (see the module doc).
    pub fn set(&self, on: bool) -> Result<(), Error> {
        self.flip(on, true, None)
    }

    /// Flips only the instance whose key map is `map` (the `BPF_STATIC_KEY_UPDATE` command on
    /// one map).
    pub(crate) fn set_instance(&self, map: &Arc<Map>, on: bool) -> Result<(), Error> {
        self.flip(on, true, Some(map))
    }

    /// A flip requested by BPF code: never waits for runs (the caller is one).
    pub(crate) fn set_from_bpf(&self, on: bool) -> Result<(), Error> {
        self.flip(on, false, None)
    }

    fn flip(&self, on: bool, wait: bool, only: Option<&Arc<Map>>) -> Result<(), Error> {
        let _flip = self.flip_lock.lock().unwrap_or_else(PoisonError::into_inner);
        let instances = self.instances.lock().unwrap_or_else(PoisonError::into_inner);
        let chosen: Vec<&Instance> = instances.iter().filter(|i| only.is_none_or(|m| Arc::ptr_eq(m, &i.map))).collect();
        // Consistent flips: hold every involved program's gate exclusively (in one order).
        let mut gates: Vec<Arc<Gate>> = chosen
            .iter()
            .filter_map(|i| i.gate.upgrade())
            .filter(|g| wait && g.consistent.load(Ordering::Acquire))
            .collect();
        gates.sort_by_key(|g| Arc::as_ptr(g) as usize);
        gates.dedup_by(|a, b| Arc::ptr_eq(a, b));
        let _held: Vec<_> = gates.iter().map(|g| g.lock.write().unwrap_or_else(PoisonError::into_inner)).collect();
        if only.is_none() {
            self.on.store(on, Ordering::Release);
        }
        for inst in chosen {
            let Some(program) = inst.program.upgrade() else { continue };
            let changes: Vec<(usize, bool)> = inst.sites.iter().map(|&(pc, inverse)| (pc, on ^ inverse)).collect();
            for &(pc, jumps) in &changes {
                program.set_static_branch(pc, jumps);
            }
            // Native sites: one atomic store each, then one core-serialising barrier.
            if let Some(code) = jit_code(&program) {
                code.set_static_branches(&changes).map_err(|e| Error::Program {
                    program: self.name.clone(),
                    reason: format!("static key `{}`: patching its sites: {e}", self.name),
                })?;
            }
        }
        Ok(())
    }
}
