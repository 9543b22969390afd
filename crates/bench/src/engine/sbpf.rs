//! solana-sbpf (crates.io `solana-sbpf`): its interpreter and its x86-64 JIT.
//!
//! SBPF is eBPF's Solana dialect. Of its versions, v0 (the legacy format) keeps eBPF's
//! encodings for everything the synthetic programs use (64-bit ALU with `mul` by an immediate,
//! `ldxdw`, `jlt`/`jne`, `exit`), so they run unchanged; later versions move `mul` to a new
//! instruction class and change other encodings. The entry registers are set directly: `r1` =
//! the input, mapped at `MM_INPUT_START` (address translation is part of the cost, as in
//! Solana), `r2` = its length.
//!
//! Configuration: `Config::default()` restricted to SBPF v0, i.e. solana-sbpf as it ships:
//! instruction meter on (the budget is reset before each run), and in JIT code the sanitising of
//! immediates and the random no-ops that harden it against JIT spraying.
#![allow(unsafe_code)]

use super::{Engine, Results, Runner, failed};
use crate::BenchError;
use crate::workload::Synthetic;
use bpfkit_isa::{encode_program, slots_to_bytes};
use solana_sbpf::aligned_memory::AlignedMemory;
use solana_sbpf::ebpf::{self, HOST_ALIGN};
use solana_sbpf::elf::Executable;
use solana_sbpf::memory_region::{MemoryMapping, MemoryRegion};
use solana_sbpf::program::{BuiltinProgram, FunctionRegistry, SBPFVersion};
use solana_sbpf::verifier::RequisiteVerifier;
use solana_sbpf::vm::{CallFrame, Config, ContextObject, EbpfVm, ExecutionMode};
use std::ptr::NonNull;
use std::sync::Arc;

/// Instruction budget of each run: far more than any workload executes.
const BUDGET: u64 = 1 << 40;

/// The context solana-sbpf's VM runs with: the instruction meter and the memory mapping.
struct Context {
    mapping: MemoryMapping,
    remaining: u64,
}

impl ContextObject for Context {
    fn consume(&mut self, amount: u64) {
        self.remaining = self.remaining.saturating_sub(amount);
    }

    fn get_remaining(&self) -> u64 {
        self.remaining
    }

    fn active_mapping_ptr(&mut self) -> NonNull<MemoryMapping> {
        NonNull::from(&mut self.mapping)
    }
}

struct SbpfRunner<'a> {
    engine: Engine,
    workload: Synthetic,
    vm: EbpfVm<'a, Context>,
    executable: &'a Executable<Context>,
    registers: [u64; 12],
    jit: bool,
    call_frames: Vec<CallFrame>,
}

impl SbpfRunner<'_> {
    fn run(&mut self) -> Result<u64, String> {
        self.vm.registers = self.registers;
        self.vm.context().remaining = BUDGET;
        let mut mode = if self.jit { ExecutionMode::Jit } else { ExecutionMode::Interpreted };
        let (_, result) = self.vm.execute_program(self.executable, &mut mode, &mut self.call_frames);
        if matches!(mode, ExecutionMode::Jit) != self.jit {
            return Err("ran in the wrong execution mode".into());
        }
        Result::from(result).map_err(|e| e.to_string())
    }
}

impl Runner for SbpfRunner<'_> {
    fn results(&mut self) -> Result<Results, BenchError> {
        let r0 = self.run().map_err(|e| failed(self.engine, self.workload.name(), e))?;
        Ok(Results { values: vec![r0], ..Results::default() })
    }

    fn iterate(&mut self) -> u64 {
        self.run().expect("the program ran before timing")
    }
}

pub(super) fn synthetic<R>(s: Synthetic, jit: bool, f: impl FnOnce(&mut dyn Runner) -> R) -> Result<R, BenchError> {
    let engine = if jit { Engine::SbpfJit } else { Engine::SbpfInterp };
    let err = |e: solana_sbpf::error::EbpfError| failed(engine, s.name(), e);
    let version = SBPFVersion::V0;
    let config = Config { enabled_sbpf_versions: version..=version, ..Config::default() };
    let loader = Arc::new(BuiltinProgram::new_loader(config));
    let bytes = slots_to_bytes(&encode_program(&s.program()));
    let executable =
        Executable::<Context>::from_text_bytes(&bytes, Arc::clone(&loader), version, FunctionRegistry::default())
            .map_err(err)?;
    executable.verify::<RequisiteVerifier>().map_err(err)?;
    if jit {
        executable.jit_compile().map_err(err)?;
    }
    let config = executable.get_config();

    let mut stack = AlignedMemory::<HOST_ALIGN>::zero_filled(config.stack_size());
    let stack_len = stack.len();
    let mut input = s.input();
    let gap = if version.stack_frame_gaps() && config.enable_stack_frame_gaps { config.stack_frame_size } else { 0 };
    let regions = vec![
        executable.get_ro_region(),
        MemoryRegion::new_gapped(std::ptr::from_mut(stack.as_slice_mut()), ebpf::MM_STACK_START, gap as u64),
        MemoryRegion::new(std::ptr::from_mut(input.as_mut_slice()), ebpf::MM_INPUT_START),
    ];
    // SAFETY: the regions point into `executable`'s text, `stack` and `input`, which are
    // declared before `context` and `vm` in this function and so outlive them; nothing else
    // touches `stack` or `input` while the VM exists, and both are plain bytes.
    let mapping = unsafe { MemoryMapping::new(regions, config, version) }.map_err(err)?;
    let mut context = Context { mapping, remaining: BUDGET };
    let mut vm = EbpfVm::new(loader, version, &mut context, stack_len);
    vm.registers[1] = ebpf::MM_INPUT_START;
    vm.registers[2] = input.len() as u64;
    let registers = vm.registers;
    let mut runner = SbpfRunner {
        engine,
        workload: s,
        vm,
        executable: &executable,
        registers,
        jit,
        call_frames: vec![CallFrame::default(); if jit { 0 } else { config.max_call_depth }],
    };
    Ok(f(&mut runner))
}
