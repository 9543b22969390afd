//! `kernel-run OBJ --prog NAME --pcap FILE [--retvals F] [--dump-maps F] [--map-init F]
//! [--out-pcap F] [--ctx-out F] [--trace F]`: run a BPF program in the kernel over a capture.

#![deny(unsafe_code)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context, bail};
use bpfkit_kernel_runner::{RunKind, load, maps, trace};
use clap::Parser;

/// Run a BPF program in the running kernel (BPF_PROG_TEST_RUN) once per packet of a capture,
/// pinned to one CPU, and write its return values and the final contents of every map.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// BPF ELF object (clang -target bpf, libbpf conventions).
    object: PathBuf,
    /// Program to run (its function name).
    #[arg(long)]
    prog: Option<String>,
    /// Capture whose frames are the inputs (for syscall programs: the contexts).
    #[arg(long)]
    pcap: Option<PathBuf>,
    /// A syscall program's context, as hex; repeat for several runs.
    #[arg(long = "ctx", value_name = "HEX")]
    ctx: Vec<String>,
    /// A file of contexts, one hex string per line (blank lines and `#` comments ignored).
    #[arg(long, value_name = "FILE")]
    ctx_file: Option<PathBuf>,
    /// Write one return value per run (decimal, or the errno name of a refused run).
    #[arg(long, value_name = "FILE")]
    retvals: Option<PathBuf>,
    /// Write every map's final contents as JSON.
    #[arg(long, value_name = "FILE")]
    dump_maps: Option<PathBuf>,
    /// Initialise maps from JSON (the --dump-maps format) before the runs.
    #[arg(long, value_name = "FILE")]
    map_init: Option<PathBuf>,
    /// Write the frames the program passed on, as modified (see the library docs).
    #[arg(long, value_name = "FILE")]
    out_pcap: Option<PathBuf>,
    /// Write the context after each run, one hex string per line (empty for refused runs).
    #[arg(long, value_name = "FILE")]
    ctx_out: Option<PathBuf>,
    /// Write the bpf_trace_printk messages of the runs, one per line (needs tracefs).
    #[arg(long, value_name = "FILE")]
    trace: Option<PathBuf>,
    /// CPU to run on.
    #[arg(long, default_value_t = 0)]
    cpu: usize,
    /// Load the object and print its programs and maps instead of running anything.
    #[arg(long)]
    describe: bool,
    /// Load the object with the kernel verifier's statistics (log level 4) and print, per
    /// program, the kernel's "processed N insns" and "verification time" lines; runs nothing.
    #[arg(long)]
    verifier_stats: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let init = match &args.map_init {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            Some(maps::from_json(&text).with_context(|| format!("parsing {}", path.display()))?)
        }
        None => None,
    };
    bpfkit_kernel_runner::pin_to_cpu(args.cpu).with_context(|| format!("pinning to CPU {}", args.cpu))?;
    if args.verifier_stats {
        let (_, log) = bpfkit_kernel_runner::load_with(&args.object, init.as_ref(), 4)?;
        for line in log.lines() {
            if line.contains("BEGIN PROG LOAD LOG")
                || line.contains("processed ")
                || line.contains("verification time")
                || line.contains("stack depth")
            {
                println!("{}", line.trim_start_matches("libbpf: "));
            }
        }
        return Ok(());
    }
    let loaded = load(&args.object, init.as_ref())?;

    if args.describe {
        for p in loaded.programs() {
            println!("prog {} section {} type {}", p.name, p.section, p.prog_type);
        }
        for m in loaded.maps() {
            println!(
                "map {} type {} key {} value {} max_entries {}",
                m.name, m.map_type, m.key_size, m.value_size, m.max_entries
            );
        }
        return Ok(());
    }

    let Some(prog) = &args.prog else { bail!("--prog is required (or --describe)") };
    let kind = loaded.run_kind(prog)?;
    let mut inputs: Vec<(std::time::Duration, Vec<u8>)> = Vec::new();
    for c in &args.ctx {
        inputs.push((Default::default(), maps::unhex(c)?));
    }
    if let Some(path) = &args.ctx_file {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("").trim();
            if !line.is_empty() {
                inputs.push((Default::default(), maps::unhex(line)?));
            }
        }
    }
    if let Some(path) = &args.pcap {
        inputs.extend(bpfkit_kernel_runner::read_pcap(path)?);
    }
    if inputs.is_empty() && kind != RunKind::Syscall {
        bail!("no input: give --pcap");
    }
    if inputs.is_empty() {
        inputs.push((Default::default(), Vec::new()));
    }

    let mut cursor = match &args.trace {
        Some(_) => Some(trace::TraceCursor::start(bpfkit_kernel_runner::current_tid())?),
        None => None,
    };
    let frames: Vec<Vec<u8>> = inputs.iter().map(|(_, d)| d.clone()).collect();
    let results = loaded.run(prog, &frames)?;
    if let Some(cpu) = bpfkit_kernel_runner::current_cpu()
        && cpu != args.cpu
    {
        bail!("ran on CPU {cpu}, not {}", args.cpu);
    }
    let messages = match cursor.as_mut() {
        Some(c) => c.take()?,
        None => Vec::new(),
    };

    let mut histogram = BTreeMap::new();
    let mut retvals = String::new();
    for r in &results {
        let line = r.retval_line();
        writeln!(retvals, "{line}")?;
        *histogram.entry(line).or_insert(0usize) += 1;
    }
    if let Some(path) = &args.retvals {
        std::fs::write(path, &retvals).with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &args.ctx_out {
        let mut text = String::new();
        for r in &results {
            writeln!(text, "{}", r.ctx_out.as_deref().map(maps::hex).unwrap_or_default())?;
        }
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &args.out_pcap {
        let passed: Vec<_> = inputs
            .iter()
            .zip(&results)
            .filter_map(|((ts, _), r)| match (r.retval, &r.data_out) {
                (Ok(v), Some(d)) if kind.passes(v) => Some((*ts, d.clone())),
                _ => None,
            })
            .collect();
        bpfkit_kernel_runner::write_pcap(path, &passed)?;
    }
    if let Some(path) = &args.trace {
        let mut text = String::new();
        for m in &messages {
            writeln!(text, "{m}")?;
        }
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &args.dump_maps {
        let dump = loaded.dump_maps()?;
        std::fs::write(path, maps::to_json(&dump)).with_context(|| format!("writing {}", path.display()))?;
    }
    let summary = if histogram.len() <= 16 {
        let parts: Vec<String> = histogram.iter().map(|(k, n)| format!("{k}: {n}")).collect();
        format!("{{{}}}", parts.join(", "))
    } else {
        let refused: usize = histogram.iter().filter(|(k, _)| k.starts_with('E')).map(|(_, n)| n).sum();
        format!("{} distinct values, {refused} runs refused", histogram.len())
    };
    eprintln!("{prog}: {} runs on CPU {}; return values {summary}", results.len(), args.cpu);
    if args.retvals.is_none() && args.dump_maps.is_none() {
        print!("{retvals}");
    }
    Ok(())
}
