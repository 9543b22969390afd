//! rbpf (crates.io `rbpf`): its interpreter and its x86-64 JIT, on `EbpfVmRaw` (`r1` = the
//! input; rbpf sets no `r2`, hence [`Synthetic::program_r1_only`]).
//!
//! rbpf's interpreter allocates the program's stack on every run and checks each memory access
//! against the input and the stack; its JIT checks nothing, which is why the JIT engine first
//! runs the same program on the same input in the interpreter.
#![allow(unsafe_code)]

use super::{Engine, Results, Runner, failed};
use crate::BenchError;
use crate::workload::Synthetic;
use bpfkit_isa::{encode_program, slots_to_bytes};

struct RbpfRunner<'a> {
    engine: Engine,
    workload: Synthetic,
    vm: rbpf::EbpfVmRaw<'a>,
    mem: Vec<u8>,
    jit: bool,
}

impl RbpfRunner<'_> {
    fn run(&mut self) -> std::io::Result<u64> {
        if self.jit {
            // SAFETY: rbpf's JIT code does not check memory accesses. The program is one of the
            // two fixed synthetic programs, which reads only [mem, mem + len) (no stores, no
            // helpers); `synthetic` ran it on this same input in rbpf's bounds-checking
            // interpreter before compiling it.
            unsafe { self.vm.execute_program_jit(&mut self.mem) }
        } else {
            self.vm.execute_program(&mut self.mem)
        }
    }
}

impl Runner for RbpfRunner<'_> {
    fn results(&mut self) -> Result<Results, BenchError> {
        let r0 = self.run().map_err(|e| failed(self.engine, self.workload.name(), e))?;
        Ok(Results { values: vec![r0], ..Results::default() })
    }

    fn iterate(&mut self) -> u64 {
        self.run().expect("the program ran before timing")
    }
}

pub(super) fn synthetic<R>(s: Synthetic, jit: bool, f: impl FnOnce(&mut dyn Runner) -> R) -> Result<R, BenchError> {
    let engine = if jit { Engine::RbpfJit } else { Engine::RbpfInterp };
    let err = |e: std::io::Error| failed(engine, s.name(), e);
    let bytes = slots_to_bytes(&encode_program(&s.program_r1_only()));
    let mut vm = rbpf::EbpfVmRaw::new(Some(&bytes)).map_err(err)?;
    let mut mem = s.input();
    if jit {
        vm.execute_program(&mut mem).map_err(err)?;
        vm.jit_compile().map_err(err)?;
    }
    Ok(f(&mut RbpfRunner { engine, workload: s, vm, mem, jit }))
}
