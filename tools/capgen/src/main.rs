//! `capgen --seed N --count N --out FILE`: write a deterministic pcap (see the library docs).

#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;

/// Write a deterministic packet capture: the same seed and count give a byte-identical file.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Seed of the generator.
    #[arg(long)]
    seed: u64,
    /// Number of frames.
    #[arg(long)]
    count: usize,
    /// Output pcap file.
    #[arg(long)]
    out: PathBuf,
    /// Print how many frames of each kind were written (to stderr).
    #[arg(long)]
    summary: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let frames = bpfkit_capgen::generate(args.seed, args.count);
    let file = File::create(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let mut out = BufWriter::new(file);
    bpfkit_capgen::write_pcap(&mut out, &frames).context("writing pcap")?;
    std::io::Write::flush(&mut out).with_context(|| format!("writing {}", args.out.display()))?;
    if args.summary {
        let mut kinds = BTreeMap::new();
        for f in &frames {
            *kinds.entry(format!("{:?}", f.kind)).or_insert(0usize) += 1;
        }
        for (kind, n) in kinds {
            eprintln!("{kind:>16} {n}");
        }
        let vlan = frames.iter().filter(|f| f.vlan_tags > 0).count();
        let min = frames.iter().map(|f| f.data.len()).min().unwrap_or(0);
        let max = frames.iter().map(|f| f.data.len()).max().unwrap_or(0);
        eprintln!("{} frames, {vlan} VLAN-tagged, sizes {min}..={max}", frames.len());
    }
    Ok(())
}
