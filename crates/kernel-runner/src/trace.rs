//! `bpf_trace_printk` output, read back from the tracefs `trace` file.
//!
//! The `trace` file is read (not `trace_pipe`, which would take lines away from any other reader)
//! before and after the runs; the messages are the `bpf_trace_printk:` lines of the running
//! thread that appeared in between. Needs tracefs mounted (`mount -t tracefs nodev
//! /sys/kernel/tracing`). The ring buffer must hold the run's output: a kernel that never traced
//! anything has a 7 KiB buffer per CPU, so [`TraceCursor::start`] grows `buffer_size_kb` to
//! 1408 KiB (the kernel's usual size) when it is smaller.

use std::fs;
use std::path::PathBuf;

const TRACE_FILES: [&str; 2] = ["/sys/kernel/tracing/trace", "/sys/kernel/debug/tracing/trace"];
const MARKER: &str = " bpf_trace_printk: ";
const MIN_BUFFER_KB: u64 = 1408;

/// Lines of one thread seen so far.
#[derive(Debug)]
pub struct TraceCursor {
    path: PathBuf,
    tid: u32,
    seen: usize,
}

impl TraceCursor {
    /// Start watching for `tid`'s messages. Errors when tracefs is not there.
    pub fn start(tid: u32) -> anyhow::Result<TraceCursor> {
        let path =
            TRACE_FILES.iter().map(PathBuf::from).find(|p| p.exists()).ok_or_else(|| {
                anyhow::anyhow!("tracefs is not mounted (mount -t tracefs nodev /sys/kernel/tracing)")
            })?;
        grow_buffer(&path)?;
        let mut cursor = TraceCursor { path, tid, seen: 0 };
        cursor.seen = cursor.messages()?.len();
        Ok(cursor)
    }

    fn messages(&self) -> anyhow::Result<Vec<String>> {
        let text = fs::read_to_string(&self.path)?;
        let task_suffix = format!("-{}", self.tid);
        Ok(text
            .lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| {
                let at = line.find(MARKER)?;
                // "<comm>-<pid> [cpu] flags timestamp: bpf_trace_printk: msg"; comm may hold spaces.
                let task = line[..at].split(" [").next()?.trim();
                task.ends_with(&task_suffix).then(|| line[at + MARKER.len()..].to_string())
            })
            .collect())
    }

    /// Messages since `start` (or the previous call).
    pub fn take(&mut self) -> anyhow::Result<Vec<String>> {
        let all = self.messages()?;
        let new = all.get(self.seen..).map(<[String]>::to_vec).unwrap_or_default();
        self.seen = all.len();
        Ok(new)
    }
}

/// Grow the per-CPU ring buffer to [`MIN_BUFFER_KB`] if it is smaller ("7 (expanded: 1408)").
fn grow_buffer(trace: &std::path::Path) -> anyhow::Result<()> {
    let Some(dir) = trace.parent() else { return Ok(()) };
    let size_file = dir.join("buffer_size_kb");
    let Ok(text) = fs::read_to_string(&size_file) else { return Ok(()) };
    let current: u64 = text.split_whitespace().next().and_then(|n| n.parse().ok()).unwrap_or(0);
    if current < MIN_BUFFER_KB {
        fs::write(&size_file, MIN_BUFFER_KB.to_string())
            .map_err(|e| anyhow::anyhow!("growing {} to {MIN_BUFFER_KB} KiB: {e}", size_file.display()))?;
    }
    Ok(())
}
