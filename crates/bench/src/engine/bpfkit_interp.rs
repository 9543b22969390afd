//! bpfkit's interpreter: raw programs on a [`Vm`] (`run_mem`: `r1` = the input, `r2` = its
//! length), packet programs through the runtime ([`bpfkit::Runtime`], [`bpfkit::Prog::run_xdp`]).
//!
//! The runtime runner is shared with the JIT engine (`bpfkit_jit.rs`), which only switches the
//! backend.

use super::{Engine, Results, Runner, failed};
use crate::BenchError;
use crate::workload::{PacketProgram, PacketWorkload, Synthetic, repo_root};
use bpfkit_interp::{Helpers, Program, Vm};
use bpfkit_isa::encode_program;
use std::sync::Arc;

/// A raw program on a VM, with its input.
pub(super) struct VmRunner {
    pub(super) engine: Engine,
    pub(super) workload: Synthetic,
    pub(super) vm: Vm,
    pub(super) mem: Vec<u8>,
}

impl Runner for VmRunner {
    fn results(&mut self) -> Result<Results, BenchError> {
        let r0 = self.vm.run_mem(&mut self.mem).map_err(|e| failed(self.engine, self.workload.name(), e))?;
        Ok(Results { values: vec![r0], ..Results::default() })
    }

    fn iterate(&mut self) -> u64 {
        self.vm.run_mem(&mut self.mem).expect("the program ran before timing")
    }
}

/// Loads a synthetic workload's program (no helpers).
pub(super) fn load(engine: Engine, s: Synthetic) -> Result<Arc<Program>, BenchError> {
    let program =
        Program::load(&encode_program(&s.program()), &Helpers::new()).map_err(|e| failed(engine, s.name(), e))?;
    Ok(Arc::new(program))
}

pub(super) fn synthetic<R>(s: Synthetic, f: impl FnOnce(&mut dyn Runner) -> R) -> Result<R, BenchError> {
    let vm = Vm::new(load(Engine::BpfkitInterp, s)?);
    Ok(f(&mut VmRunner { engine: Engine::BpfkitInterp, workload: s, vm, mem: s.input() }))
}

/// A packet program loaded by the runtime, with its packets in XDP frames.
pub(super) struct RuntimeRunner {
    pub(super) obj: bpfkit::Object,
    program: &'static PacketProgram,
    prog: usize,
    pub(super) worker: bpfkit::Worker,
    packets: Vec<bpfkit::XdpPacket>,
}

impl RuntimeRunner {
    /// Opens the program's object (fresh maps, one CPU slot), applies its map initialiser and
    /// puts every packet of the capture in its own frame. The benchmarked programs do not change their
    /// packets, so the frames are prepared once and reused by every pass.
    pub(super) fn open(p: &PacketWorkload) -> Result<RuntimeRunner, BenchError> {
        let rt = bpfkit::Runtime::with_cpus(1);
        let obj = rt.open(repo_root().join(p.program.object))?;
        for e in p.program.map_init_entries()? {
            obj.map(&e.map)?.update(&e.key, &e.value, 0).map_err(|err| BenchError::MapInit {
                path: p.program.map_init.unwrap_or_default().to_string(),
                reason: format!("map `{}`: {err}", e.map),
            })?;
        }
        let prog = obj
            .programs()
            .iter()
            .position(|q| q.name() == p.program.name)
            .ok_or_else(|| bpfkit::Error::NotFound { what: "program", name: p.program.name.to_string() })?;
        let worker = bpfkit::Worker::new(&rt, 0);
        let packets = p.capture.frames.iter().map(|f| bpfkit::XdpPacket::new(f)).collect::<Result<Vec<_>, _>>()?;
        Ok(RuntimeRunner { obj, program: p.program, prog, worker, packets })
    }
}

impl Runner for RuntimeRunner {
    fn results(&mut self) -> Result<Results, BenchError> {
        let prog = &self.obj.programs()[self.prog];
        let mut values = Vec::with_capacity(self.packets.len());
        for pkt in &mut self.packets {
            values.push(u64::from(prog.run_xdp(&mut self.worker, pkt)?.action));
        }
        let mut maps = std::collections::BTreeMap::new();
        for name in self.program.maps {
            let map = self.obj.map(name)?;
            let value_size = map.spec().value_size as usize;
            let mut entries =
                map.entries().map_err(|e| bpfkit::Error::Map { map: name.to_string(), reason: e.to_string() })?;
            for (_, v) in &mut entries {
                v.truncate(value_size);
            }
            entries.sort();
            maps.insert(name.to_string(), entries);
        }
        Ok(Results { values, maps })
    }

    fn iterate(&mut self) -> u64 {
        let prog = &self.obj.programs()[self.prog];
        let mut sum = 0;
        for pkt in &mut self.packets {
            sum += u64::from(prog.run_xdp(&mut self.worker, pkt).expect("the program ran before timing").action);
        }
        sum
    }
}

pub(super) fn packets<R>(p: &PacketWorkload, f: impl FnOnce(&mut dyn Runner) -> R) -> Result<R, BenchError> {
    Ok(f(&mut RuntimeRunner::open(p)?))
}
