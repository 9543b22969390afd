//! The bpf_conformance corpus: parsing its `.data` files and running them.
//!
//! A file has sections introduced by `-- name` lines: `asm` (the program, uBPF dialect),
//! `mem` (hex bytes of the memory passed in `r1`, its length in `r2`), `result` (expected
//! `r0`, hex), `error` (expected error text, for tests that must fail), `raw` (the expected
//! encoding, one little-endian u64 per slot), and free-text sections (`c`, `no register
//! offset`) that only document the test. `#` starts a comment line outside `asm`.

use bpfkit_interp::{Backend, Helpers, Program, Vm};
use bpfkit_isa::RawInsn;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One conformance test.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Case {
    pub name: String,
    pub asm: String,
    pub mem: Vec<u8>,
    pub result: Option<u64>,
    pub error: Option<String>,
    pub raw: Option<Vec<u64>>,
}

/// A malformed `.data` file.
#[derive(Debug, thiserror::Error)]
pub enum CaseError {
    #[error("{name}:{line}: {message}")]
    Parse { name: String, line: usize, message: String },
    #[error("{name}: {source}")]
    Io { name: String, source: std::io::Error },
}

/// Parses hex bytes separated by whitespace (`00 01 ff`), as `-- mem` and the plugin use.
pub fn parse_hex_bytes(text: &str) -> Result<Vec<u8>, String> {
    text.split_whitespace().map(|t| u8::from_str_radix(t, 16).map_err(|_| format!("`{t}` is not a hex byte"))).collect()
}

fn parse_u64(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let parsed = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16),
        None => t.parse::<u64>(),
    };
    parsed.map_err(|_| format!("`{t}` is not a number"))
}

/// Parses the text of one `.data` file.
pub fn parse_case(name: &str, text: &str) -> Result<Case, CaseError> {
    let mut case = Case { name: name.to_string(), ..Case::default() };
    let mut section: Option<String> = None;
    let err = |line: usize, message: String| CaseError::Parse { name: name.to_string(), line, message };
    for (i, line) in text.lines().enumerate() {
        let lineno = i + 1;
        if let Some(rest) = line.strip_prefix("--") {
            section = Some(rest.trim().to_string());
            continue;
        }
        match section.as_deref() {
            Some("asm") => {
                case.asm.push_str(line);
                case.asm.push('\n');
            }
            _ if line.trim_start().starts_with('#') || line.trim().is_empty() => {}
            Some("mem") => case.mem.extend(parse_hex_bytes(line).map_err(|m| err(lineno, m))?),
            Some("result") => case.result = Some(parse_u64(line).map_err(|m| err(lineno, m))?),
            Some("error") => case.error = Some(line.trim().to_string()),
            Some("raw") => case.raw.get_or_insert_with(Vec::new).push(parse_u64(line).map_err(|m| err(lineno, m))?),
            Some(_) => {}
            None => return Err(err(lineno, format!("text before the first section: `{line}`"))),
        }
    }
    if case.asm.trim().is_empty() && case.raw.is_none() {
        return Err(err(0, "no `-- asm` or `-- raw` section".into()));
    }
    Ok(case)
}

/// The vendored corpus directory (`third_party/bpf_conformance/tests`).
pub fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../third_party/bpf_conformance/tests")
}

/// Every `.data` file of `dir`, parsed, sorted by name.
pub fn load_corpus(dir: &Path) -> Result<Vec<Case>, CaseError> {
    let io = |source| CaseError::Io { name: dir.display().to_string(), source };
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "data"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| {
            let name = p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            let text = std::fs::read_to_string(p).map_err(|source| CaseError::Io { name: name.clone(), source })?;
            parse_case(&name, &text)
        })
        .collect()
}

/// The program of a case: its `asm` section assembled, checked against `raw` when present.
pub fn program_of(case: &Case) -> Result<Vec<RawInsn>, String> {
    let slots = if case.asm.trim().is_empty() {
        Vec::new()
    } else {
        bpfkit_isa::assemble(&case.asm).map_err(|e| format!("assembly failed: {e}"))?
    };
    if let Some(raw) = &case.raw {
        let raw_slots: Vec<RawInsn> = raw.iter().map(|&v| RawInsn::from_u64(v)).collect();
        if slots.is_empty() {
            return Ok(raw_slots);
        }
        if raw_slots != slots {
            return Err(format!("assembled {slots:x?}, but the `raw` section says {raw_slots:x?}"));
        }
    }
    Ok(slots)
}

/// Runs a case in the interpreter; `Ok(())` when it behaves as the file says.
pub fn check_interp(case: &Case) -> Result<(), String> {
    let slots = program_of(case)?;
    let outcome = Program::load(&slots, &Helpers::conformance())
        .map_err(|e| e.to_string())
        .and_then(|p| Vm::new(Arc::new(p)).run_mem(&mut case.mem.clone()).map_err(|e| e.to_string()));
    compare(case, outcome)
}

/// Runs a case in the JIT (the program compiled and run natively; compile errors count as
/// errors); `Ok(())` when it behaves as the file says.
pub fn check_jit(case: &Case) -> Result<(), String> {
    compare(case, run_jit(case))
}

/// The outcome of a case in the JIT.
pub fn run_jit(case: &Case) -> Result<u64, String> {
    let slots = program_of(case)?;
    let program = Arc::new(Program::load(&slots, &Helpers::conformance()).map_err(|e| e.to_string())?);
    bpfkit_jit::jit(&program, &bpfkit_jit::JitOptions::default(), bpfkit_jit::Trust::CallerVouches)
        .map_err(|e| e.to_string())?;
    let mut vm = Vm::new(program);
    vm.set_backend(Backend::Native);
    vm.run_mem(&mut case.mem.clone()).map_err(|e| e.to_string())
}

/// Compares an outcome (`r0` or an error message) with the case's expectation. Like the
/// suite's runner, results compare on their low 32 bits.
pub fn compare(case: &Case, outcome: Result<u64, String>) -> Result<(), String> {
    match (outcome, &case.result, &case.error) {
        (Ok(r0), Some(want), _) if r0 as u32 == *want as u32 => Ok(()),
        (Ok(r0), Some(want), _) => Err(format!("r0 = {r0:#x}, expected {want:#x}")),
        (Ok(r0), None, Some(e)) => Err(format!("r0 = {r0:#x}, expected the error `{e}`")),
        (Ok(r0), None, None) => Err(format!("r0 = {r0:#x}, but the case states no expectation")),
        (Err(_), _, Some(_)) => Ok(()),
        (Err(e), _, None) => Err(format!("failed: {e}")),
    }
}
