//! bpfkit's x86-64 JIT (the `jit` feature): the interpreter engine's runners with the native
//! backend switched on.
//!
//! Behind the `jit` feature, on by default. The calls:
//! - raw programs: `bpfkit_jit::jit(&program, &JitOptions::default(), Trust::CallerVouches)`
//!   attaches native code to the `Program`, and a `Vm` with `Backend::Native` runs it;
//! - packet programs: `Object::jit(Trust::CallerVouches)` compiles every program of the object
//!   and `Worker::set_backend(Backend::Jit)` makes the worker run native code.
//!
//! `Trust::CallerVouches`: the workloads are bpfkit's own test programs, checked against the
//! interpreter on the same inputs before they are timed.

use super::bpfkit_interp::{RuntimeRunner, VmRunner, load};
use super::{Engine, Runner, failed};
use crate::BenchError;
use crate::workload::{PacketWorkload, Synthetic};
use bpfkit_interp::Vm;

pub(super) fn synthetic<R>(s: Synthetic, f: impl FnOnce(&mut dyn Runner) -> R) -> Result<R, BenchError> {
    let program = load(Engine::BpfkitJit, s)?;
    bpfkit_jit::jit(&program, &bpfkit_jit::JitOptions::default(), bpfkit_jit::Trust::CallerVouches)
        .map_err(|e| failed(Engine::BpfkitJit, s.name(), e))?;
    let mut vm = Vm::new(program);
    vm.set_backend(bpfkit_interp::Backend::Native);
    Ok(f(&mut VmRunner { engine: Engine::BpfkitJit, workload: s, vm, mem: s.input() }))
}

pub(super) fn packets<R>(p: &PacketWorkload, f: impl FnOnce(&mut dyn Runner) -> R) -> Result<R, BenchError> {
    let mut runner = RuntimeRunner::open(p)?;
    runner.obj.jit(bpfkit::Trust::CallerVouches).map_err(|e| failed(Engine::BpfkitJit, p.program.name, e))?;
    runner.worker.set_backend(bpfkit::Backend::Jit);
    Ok(f(&mut runner))
}
