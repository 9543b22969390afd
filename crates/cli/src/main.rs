//! `bpfkit`: the command line front end.
#![forbid(unsafe_code)]

use anyhow::{Context, Result, bail};
use bpfkit_interp::{Helpers, Program, Vm};
use bpfkit_isa::{RawInsn, assemble, decode_program, slots_from_bytes, slots_to_bytes};
use clap::{Parser, Subcommand, ValueEnum};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

mod elf;
mod hexfmt;
mod keys;
mod objcmd;

/// A userspace eBPF runtime: assemble, disassemble and run BPF programs.
#[derive(Parser)]
#[command(name = "bpfkit", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// The command line is parsed once; the size of the `run` variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Assemble a text file (llvm-objdump syntax or the uBPF dialect) into raw bytecode.
    ///
    /// Without -o, prints the listing (pc, bytes, instruction) of the result.
    Asm {
        /// Assembly file, or `-` for standard input.
        file: PathBuf,
        /// Write the raw bytecode (8 bytes per slot) here.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Disassemble raw bytecode, or every code section of an ELF object, in llvm-objdump's syntax.
    Disasm {
        /// Raw bytecode file or ELF object; `-` for standard input.
        file: PathBuf,
    },
    /// Run a program: an ELF object's program over a packet capture (or a syscall program over
    /// contexts), or an assembly file over a memory buffer.
    ///
    /// With OBJ: runs the program once per packet of --pcap (XDP: head/tail adjustments and
    /// XDP_TX rewrite the packet), prints the count of each return value and the throughput.
    /// With --asm: the program gets one memory region (r1 points at it, r2 holds its length),
    /// helper 5 is the bpf_conformance suite's "unwind" helper, and r0 is printed.
    Run(objcmd::RunArgs),
    /// Speak the bpf_conformance plugin protocol.
    ///
    /// Reads the program as hex bytes on standard input, takes the memory as hex bytes in the
    /// first argument, prints r0 in hex, and exits non-zero with the error on failure.
    ConformancePlugin {
        /// Memory as hex bytes, then plugin options (`--interpret` or `--backend interp`, the
        /// default; `--jit` or `--backend jit`: the harness vouches for its programs); empty ones
        /// are ignored.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Measure a program over a capture: after a warm-up round, every packet runs --repeat
    /// times per round (its context set up once), and the median nanoseconds per run of
    /// several rounds is printed (`"ns_per_run"` with --json).
    Bench(objcmd::BenchArgs),
    /// Verify an object's programs with bpfkit's verifier and print its log (the kernel's
    /// words); exits non-zero when a program is refused.
    Verify {
        /// ELF object.
        object: PathBuf,
        /// Only this program (function or section name).
        #[arg(long)]
        prog: Option<String>,
        /// 1: the verdict and statistics; 2: also every instruction with its registers.
        #[arg(long, default_value_t = 1)]
        log_level: u32,
    },
    /// Programs of an object.
    Prog {
        #[command(subcommand)]
        command: ProgCommand,
    },
    /// Maps of an object.
    Map {
        #[command(subcommand)]
        command: MapCommand,
    },
    /// Static keys: list an object's keys, or list and flip those of a running `serve`.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// Run a packet program over a capture until stopped, controlled through a socket.
    ///
    /// A Unix-domain socket: flip the program's static keys and read its counters while it runs.
    /// Loads and verifies the object (the JIT by default, as `run`), sets the --key keys, binds
    /// the control socket (replacing a stale one) and runs the program on --threads workers over
    /// the packets of --pcap, once or, with --loop, over and over, counting runs and return
    /// values. It ends on a `stop` request or SIGINT/SIGTERM (it then removes the socket and
    /// prints its counters). Without --loop it keeps answering after the pass until stopped.
    ///
    /// The protocol: one request per line, one answer line per request, on a connection kept
    /// until the client closes it:
    ///
    ///   key set NAME on|off   ->  ok | error: MESSAGE   (once every site is in the new state)
    ///   key get NAME          ->  on | off
    ///   key list              ->  [{"name", "state", "sites", "programs", "program_names"}, ...]
    ///   stats                 ->  {"program", "type", "backend", "threads", "loop",
    ///                              "consistent", "running", "uptime_s", "runs", "retvals",
    ///                              "errors", "first_error", "runs_per_second", "interval_s",
    ///                              "interval_runs_per_second", "keys": {"NAME": "on"|"off"}}
    ///   stop                  ->  ok, then the server ends
    ///
    /// Any other request is answered `error: ...`. `retvals` counts each return value (by name,
    /// e.g. XDP_DROP; EINVAL: frames the kernel's test run refuses); `interval_*` is since the
    /// previous `stats`. Clients: `bpfkit key set|list --control`, `bpfkit stats --control`,
    /// `bpfkit control SOCKET REQUEST`, or any program (`socat - UNIX-CONNECT:SOCKET`).
    ///
    /// The server runs in a child process in its own process group, which the `serve` process
    /// waits for: Ctrl-C ends `serve`, and the server, seeing that, stops cleanly (so does
    /// SIGTERM; shells start background jobs with SIGINT ignored).
    #[command(verbatim_doc_comment)]
    Serve(keys::ServeArgs),
    /// The counters of a running `serve` (the `stats` request): runs, return values, runs per
    /// second, key states.
    Stats {
        /// The server's control socket.
        #[arg(long, value_name = "SOCKET")]
        control: PathBuf,
        /// Print the server's JSON answer.
        #[arg(long)]
        json: bool,
    },
    /// Send one request of the `serve` protocol (see `bpfkit serve --help`), e.g. `stop`, and
    /// print the answer; exits non-zero on an `error:` answer.
    Control {
        /// The server's control socket.
        socket: PathBuf,
        /// The request's words.
        #[arg(required = true, trailing_var_arg = true)]
        request: Vec<String>,
    },
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Each static key: its state, its number of sites and of programs using it (one key map
    /// each), and their names. With OBJ, as loaded; with --control, those of a running `serve`.
    List {
        /// ELF object.
        #[arg(required_unless_present = "control", conflicts_with = "control")]
        object: Option<PathBuf>,
        /// The control socket of a running `bpfkit serve`.
        #[arg(long, value_name = "SOCKET")]
        control: Option<PathBuf>,
        /// Print JSON: [{"name", "state", "sites", "programs", "program_names"}, ...].
        #[arg(long)]
        json: bool,
    },
    /// Turn a static key of a running `serve` on or off: returns once every site is in the new
    /// state (with `serve --consistent`, after the runs in progress end).
    Set {
        /// The key (`DEFINE_STATIC_KEY(NAME)`).
        name: String,
        /// on or off.
        state: String,
        /// The control socket of a running `bpfkit serve`.
        #[arg(long, value_name = "SOCKET")]
        control: PathBuf,
    },
}

#[derive(Subcommand)]
enum ProgCommand {
    /// List programs (name, section, type, size) and maps of an object.
    List {
        /// ELF object.
        object: PathBuf,
    },
    /// Dump a program: `xlated` (the instructions bpfkit runs, relocations bound), `jited`
    /// (the x86-64 code, disassembled under the BPF instruction each range comes from) or
    /// `cfg` (the control-flow graph the verifier builds), with source lines from BTF line info.
    ///
    /// `xlated` and `jited` mark each static branch with its key and what it does now
    /// (`; static key NAME: on, jumps` or `off, falls through`; a `likely` site falls through
    /// while its key is on).
    ///
    /// `cfg` prints one paragraph per basic block: `block N [first..last]` (instruction
    /// indices, both included), its instructions, then `-> ` its successors, each marked
    /// `fall-through`, `jump` or `indirect` (an entry of a `gotox`'s jump tables) and
    /// `back edge` when it closes a loop, and the calls made in the block. A program the
    /// verifier's control-flow checks refuse is an error, with the kernel's log message.
    /// With --dot, a Graphviz digraph instead: one cluster per subprogram, fall-through edges
    /// grey, jumps black, indirect jumps dashed, back edges red, calls dotted blue.
    Dump {
        /// What to dump.
        #[arg(value_enum)]
        what: DumpKind,
        /// ELF object.
        object: PathBuf,
        /// Program (function or section name); optional when the object has one.
        #[arg(long)]
        prog: Option<String>,
        /// With `cfg`: print a Graphviz digraph (`dot -Tsvg`).
        #[arg(long)]
        dot: bool,
        /// Set a static key first (NAME=on or NAME=off; repeatable): `xlated` and `jited`
        /// mark each static branch with its key's state and whether it jumps or falls through.
        #[arg(long, value_name = "NAME=on|off")]
        key: Vec<String>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum DumpKind {
    Xlated,
    Jited,
    Cfg,
}

#[derive(Subcommand)]
enum MapCommand {
    /// Print a map's contents (after load and --map-init) as JSON. To see a map after a run,
    /// use `bpfkit run OBJ --pcap F --dump-map MAP` or `--dump-maps FILE`.
    ///
    /// An instruction array (`insn_array`, e.g. a jump table) is printed as its entries'
    /// offsets: `{"index", "orig_off", "xlated_off", "jitted_off"}` per entry, the
    /// instruction's index as loaded, after bpfkit's rewrites, and the byte offset of its
    /// machine code in its function (the interpreter's: 8 per instruction, until the program
    /// is compiled); an offset of -1 is an instruction the rewrites deleted (`INSN_DELETED`).
    ///
    /// Jump tables belong to a program: `map dump OBJ .jumptables --prog NAME` lists every
    /// instruction array the program owns with that name, in the order they were bound
    /// (`{"index", "id", "max_entries", "entries"}` each).
    Dump {
        /// ELF object.
        object: PathBuf,
        /// Map name (`.jumptables` for the jump tables of --prog).
        map: String,
        /// Entries to load first (JSON, as `run --map-init`).
        #[arg(long, value_name = "FILE")]
        map_init: Option<PathBuf>,
        /// Look for MAP among the instruction arrays this program (function or section name)
        /// owns.
        #[arg(long, value_name = "NAME")]
        prog: Option<String>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// The JIT for programs bpfkit's verifier accepted (when this machine can run it and no
    /// --branch-limit is asked), the interpreter for the others.
    Auto,
    /// The bounds-checked reference interpreter.
    Interp,
    /// The x86-64 JIT: verified programs only, or with --trust-unverified.
    Jit,
}

/// Why an unverified program may not run in the JIT, for the user.
pub const JIT_REFUSED: &str = "the JIT runs verified programs only, and this program has not been \
verified (assembly run with --asm is not verified). It runs in the bounds-checked interpreter \
(--backend interp); to run it in the JIT anyway, vouch for it with --trust-unverified (the JIT does \
no bounds checks: a faulty program can crash bpfkit)";

/// The runtime backend for a command line choice, for programs the verifier accepted
/// (`verified`) or not.
pub fn resolve_backend(backend: Backend, trust: bool, verified: bool) -> Result<bpfkit::Backend> {
    match backend {
        Backend::Auto if verified && bpfkit_jit::available().is_ok() => Ok(bpfkit::Backend::Jit),
        Backend::Auto | Backend::Interp => Ok(bpfkit::Backend::Interp),
        Backend::Jit if verified || trust => Ok(bpfkit::Backend::Jit),
        Backend::Jit => bail!("{JIT_REFUSED}"),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Asm { file, output } => cmd_asm(&file, output.as_deref()),
        Command::Disasm { file } => cmd_disasm(&file),
        Command::Run(args) => match (&args.object, &args.asm) {
            (Some(_), _) if !args.ctx.is_empty() || args.ctx_file.is_some() => objcmd::run_syscall(&args),
            (Some(_), _) => objcmd::run(&args),
            (None, Some(_)) if !args.key.is_empty() => {
                Err(anyhow::anyhow!("--key sets the static keys of an object; an --asm program has none"))
            }
            (None, Some(asm)) => cmd_run(
                asm,
                args.mem.as_deref(),
                args.mem_file.as_deref(),
                resolve_backend(args.backend, args.trust_unverified, false),
                args.branch_limit,
            ),
            (None, None) => Err(anyhow::anyhow!("give an object to run, or --asm FILE")),
        },
        Command::Prog { command: ProgCommand::List { object } } => objcmd::prog_list(&object),
        Command::Prog { command: ProgCommand::Dump { what, dot: true, .. } } if what != DumpKind::Cfg => {
            Err(anyhow::anyhow!("--dot goes with `prog dump cfg`"))
        }
        Command::Prog { command: ProgCommand::Dump { what: DumpKind::Xlated, object, prog, key, .. } } => {
            objcmd::dump_xlated(&object, prog.as_deref(), &key)
        }
        Command::Prog { command: ProgCommand::Dump { what: DumpKind::Jited, object, prog, key, .. } } => {
            objcmd::dump_jited(&object, prog.as_deref(), &key)
        }
        Command::Prog { command: ProgCommand::Dump { what: DumpKind::Cfg, key, .. } } if !key.is_empty() => {
            Err(anyhow::anyhow!("--key goes with `prog dump xlated` and `prog dump jited`"))
        }
        Command::Prog { command: ProgCommand::Dump { what: DumpKind::Cfg, object, prog, dot, .. } } => {
            objcmd::dump_cfg(&object, prog.as_deref(), dot)
        }
        Command::Map { command: MapCommand::Dump { object, map, map_init, prog } } => {
            objcmd::map_dump(&object, &map, map_init.as_deref(), prog.as_deref())
        }
        Command::Key { command: KeyCommand::List { object: Some(object), json, .. } } => keys::key_list(&object, json),
        Command::Key { command: KeyCommand::List { control: Some(socket), json, .. } } => {
            keys::key_list_control(&socket, json)
        }
        Command::Key { command: KeyCommand::List { .. } } => Err(anyhow::anyhow!("give an object or --control SOCKET")),
        Command::Key { command: KeyCommand::Set { name, state, control } } => keys::key_set(&control, &name, &state),
        Command::Serve(args) => return keys::serve_main(&args),
        Command::Stats { control, json } => keys::stats(&control, json),
        Command::Control { socket, request } => keys::control(&socket, &request),
        Command::ConformancePlugin { args } => return conformance_plugin(&args),
        Command::Bench(args) => objcmd::bench(&args),
        Command::Verify { object, prog, log_level } => objcmd::verify(&object, prog.as_deref(), log_level),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // A closed pipe (`bpfkit prog dump ... | head`) is not an error of ours.
        Err(e) if e.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) => {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn read_input(path: &Path) -> Result<Vec<u8>> {
    if path == Path::new("-") {
        let mut buf = Vec::new();
        std::io::stdin().read_to_end(&mut buf).context("reading standard input")?;
        Ok(buf)
    } else {
        std::fs::read(path).with_context(|| format!("reading {}", path.display()))
    }
}

fn assemble_file(path: &Path) -> Result<Vec<RawInsn>> {
    let text = String::from_utf8(read_input(path)?).with_context(|| format!("{} is not UTF-8 text", path.display()))?;
    assemble(&text).map_err(|e| anyhow::anyhow!("{}:{e}", path.display()))
}

fn cmd_asm(file: &Path, output: Option<&Path>) -> Result<()> {
    let slots = assemble_file(file)?;
    match output {
        Some(out) => std::fs::write(out, slots_to_bytes(&slots)).with_context(|| format!("writing {}", out.display())),
        None => {
            print!("{}", bpfkit_isa::listing(&slots)?);
            Ok(())
        }
    }
}

fn cmd_disasm(file: &Path) -> Result<()> {
    let bytes = read_input(file)?;
    let mut out = std::io::stdout().lock();
    if elf::is_elf(&bytes) {
        elf::disassemble(&bytes, &mut out).with_context(|| format!("disassembling {}", file.display()))?;
    } else {
        let slots = slots_from_bytes(&bytes).with_context(|| format!("reading {}", file.display()))?;
        write!(out, "{}", bpfkit_isa::listing(&slots)?)?;
    }
    Ok(())
}

fn load_program(slots: &[RawInsn]) -> Result<Program> {
    Ok(Program::load(slots, &Helpers::conformance())?)
}

fn cmd_run(
    asm: &Path,
    mem: Option<&str>,
    mem_file: Option<&Path>,
    backend: Result<bpfkit::Backend>,
    limit: Option<u64>,
) -> Result<()> {
    let text = String::from_utf8(read_input(asm)?).with_context(|| format!("{} is not UTF-8 text", asm.display()))?;
    if text.lines().any(|l| l.trim_start().starts_with(".jumptable")) {
        return run_asm_with_tables(asm, &text, mem, mem_file, backend, limit);
    }
    let backend = backend?;
    let slots = assemble_file(asm)?;
    let mut memory = match (mem, mem_file) {
        (Some(h), _) => hexfmt::parse(h)?,
        (None, Some(f)) => std::fs::read(f).with_context(|| format!("reading {}", f.display()))?,
        (None, None) => Vec::new(),
    };
    let program = Arc::new(load_program(&slots)?);
    let mut vm = Vm::new(Arc::clone(&program));
    vm.set_branch_limit(limit);
    if backend == bpfkit::Backend::Jit {
        if limit.is_some() {
            bail!("--branch-limit needs the interpreter: native code does not count jumps");
        }
        bpfkit_jit::jit(&program, &bpfkit_jit::JitOptions::default(), bpfkit_jit::Trust::CallerVouches)?;
        vm.set_backend(bpfkit_interp::Backend::Native);
    }
    let r0 = vm.run_mem(&mut memory)?;
    println!("{r0:#x}");
    Ok(())
}

/// `run --asm` of a program with jump tables: the tables become instruction arrays, so the
/// program loads through the runtime (verified, as a `syscall` program whose context is the
/// memory: `r1` points at it, `r2` is not set) with bpfkit's helpers.
fn run_asm_with_tables(
    asm: &Path,
    text: &str,
    mem: Option<&str>,
    mem_file: Option<&Path>,
    backend: Result<bpfkit::Backend>,
    limit: Option<u64>,
) -> Result<()> {
    if limit.is_some() {
        bail!("--branch-limit is not available for programs with jump tables (they are verified, so they end)");
    }
    let mut memory = match (mem, mem_file) {
        (Some(h), _) => hexfmt::parse(h)?,
        (None, Some(f)) => std::fs::read(f).with_context(|| format!("reading {}", f.display()))?,
        (None, None) => Vec::new(),
    };
    let rt = bpfkit::Runtime::with_cpus(1);
    let name = asm.file_stem().map_or("asm".into(), |s| s.to_string_lossy().into_owned());
    let (fd, _) = rt.prog_load_asm(&name, bpfkit_object::ProgType::Syscall, text).map_err(|e| match e {
        bpfkit::Error::Verify { program, error, log } => {
            anyhow::anyhow!("program `{program}`: verifier: {error}\n{log}")
        }
        e => e.into(),
    })?;
    let prog = rt.prog_by_fd(fd)?;
    // Verified: `auto` may pick the JIT; `jit` needs no vouching.
    let b = match backend {
        Ok(b) => b,
        Err(_) => bpfkit::Backend::Jit,
    };
    let mut w = bpfkit::Worker::new(&rt, 0);
    if b == bpfkit::Backend::Jit {
        prog.jit(bpfkit::Trust::Verified)?;
        w.set_backend(b);
    }
    println!("{:#x}", prog.run_raw(&mut w, &mut memory)?);
    Ok(())
}

/// The plugin protocol: errors go to standard output (the runner compares them with the
/// expected error text) and the exit status is 1.
fn conformance_plugin(args: &[String]) -> ExitCode {
    let run = || -> Result<u64> {
        let mut args = args.iter().map(String::as_str).filter(|a| !a.trim().is_empty());
        let memory_hex = args.next().unwrap_or("");
        // Options arrive as one argument ("--backend interp") or several.
        let options: Vec<&str> = args.flat_map(str::split_whitespace).collect();
        // `--jit` is the test harness asking for the JIT: the suite's programs are its own,
        // and it vouches for them (the JIT does no bounds checks).
        let jit = match options.as_slice() {
            [] | ["--backend", "interp"] | ["--interpret"] => false,
            ["--jit"] | ["--backend", "jit"] => true,
            other => {
                bail!("unsupported plugin options {other:?} (supported: --interpret, --jit, --backend interp|jit)")
            }
        };
        let mut memory = hexfmt::parse(memory_hex).context("memory argument")?;
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).context("reading the program from standard input")?;
        let code = hexfmt::parse(&text).context("program on standard input")?;
        let slots = slots_from_bytes(&code)?;
        decode_program(&slots)?;
        let program = Arc::new(load_program(&slots)?);
        let mut vm = Vm::new(Arc::clone(&program));
        if jit {
            bpfkit_jit::jit(&program, &bpfkit_jit::JitOptions::default(), bpfkit_jit::Trust::CallerVouches)?;
            vm.set_backend(bpfkit_interp::Backend::Native);
        }
        Ok(vm.run_mem(&mut memory)?)
    };
    match run() {
        Ok(r0) => {
            println!("{r0:x}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("{e:#}");
            ExitCode::FAILURE
        }
    }
}
