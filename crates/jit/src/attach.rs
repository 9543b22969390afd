//! Placing compiled code in executable memory and attaching it to its program.

use crate::lower::{Compiled, compile};
use crate::{CodeMemory, CompileError, JitOptions, Trust};
use bpfkit_interp::Program;
use bpfkit_interp::native::{NativeCode, NativeEntry};
use std::sync::Arc;

/// A program's machine code in executable memory, with what dumps and patching need.
#[derive(Debug)]
pub struct JitCode {
    memory: CodeMemory,
    compiled: Compiled,
}

impl JitCode {
    /// The code memory (for patching sites).
    pub fn memory(&self) -> &CodeMemory {
        &self.memory
    }

    /// The code as compiled, with its offsets.
    pub fn compiled(&self) -> &Compiled {
        &self.compiled
    }

    /// Address of the first byte of the code.
    pub fn address(&self) -> u64 {
        self.memory.exec_ptr() as u64
    }

    /// Patches the static branch at slot `pc` to jump to its target or fall through, while
    /// the code may be running (one atomic store per site; see `patch.rs`).
    pub fn set_static_branch(&self, pc: usize, jumps: bool) -> Result<(), crate::JitError> {
        self.set_static_branches(&[(pc, jumps)])
    }

    /// [`JitCode::set_static_branch`] for several sites, with one core-serialising barrier.
    pub fn set_static_branches(&self, changes: &[(usize, bool)]) -> Result<(), crate::JitError> {
        let mut patches = Vec::with_capacity(changes.len());
        for &(pc, jumps) in changes {
            let Some(&(_, site, target_offset)) = self.compiled.sites.iter().find(|s| s.0 == pc) else {
                return Err(crate::JitError::NotASite { offset: pc });
            };
            patches.push((site, if jumps { crate::SiteState::Jump { target_offset } } else { crate::SiteState::Nop }));
        }
        self.memory.patch_many(&patches)
    }
}

/// Compiles `program` and attaches the code to it; later runs of a `Vm` set to
/// `Backend::Native` execute it. Returns the code's description (for dumps).
pub fn jit(program: &Arc<Program>, opts: &JitOptions, trust: Trust) -> Result<Arc<JitCode>, CompileError> {
    // Either way someone stands behind the program: the JIT does no bounds checks.
    let (Trust::CallerVouches | Trust::Verified) = trust;
    if program.native().is_some() {
        return Err(CompileError::AlreadyCompiled);
    }
    let compiled = compile(program, opts)?;
    let memory = CodeMemory::with_sites(&compiled.code, compiled.patch_sites.clone())?;
    let base = memory.exec_ptr() as usize;
    let body = (base + compiled.body_offset) as u64;
    let code = Arc::new(JitCode { memory, compiled });
    // SAFETY: offset 0 of the code is the entry stub `lower` emits, which follows the
    // `NativeEntry` signature and the ABI of `bpfkit_interp::native`; the memory is mapped
    // executable (published by `CodeMemory`) and stays mapped as long as `code` lives.
    let entry: NativeEntry = unsafe { std::mem::transmute::<usize, NativeEntry>(base) };
    // SAFETY: the code was compiled from this very program (it embeds pointers into its helper
    // table, which lives as long as the program, which owns the code); memory safety of what
    // the program does rests on `trust` (the caller vouches for the program).
    let native = unsafe { NativeCode::new(entry, body, Box::new(Arc::clone(&code))) };
    let addresses = program
        .decode()
        .map_err(|e| CompileError::Malformed { pc: 0, reason: e.to_string() })?
        .iter()
        .map(|l| ((base + code.compiled.insn_offsets[l.pc] as usize) as u64, l.pc as u32))
        .collect();
    let native = native.with_addresses(addresses);
    program.attach_native(native).map_err(|_| CompileError::AlreadyCompiled)?;
    Ok(code)
}
