//! The result table: ns per run (synthetic workloads) or per packet (packet workloads) for each
//! engine, times relative to native, bpfkit's times relative to each peer, geometric means over
//! the workloads; as text and as JSON.
//!
//! Ratios are time ratios, `a / b`: below 1 means `a` is faster. A geometric mean is taken over
//! the workloads where both sides were measured, and says over how many when that is not all
//! of them.

use crate::engine::Engine;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::SystemTime;

/// One cell of the table.
#[derive(Clone, Debug, PartialEq)]
pub enum Measurement {
    /// Nanoseconds per run or per packet.
    Ns(f64),
    /// The engine cannot run the workload.
    NotApplicable(String),
    /// Not measured in this run (filtered out, criterion in test mode, or no estimate found).
    NotMeasured,
}

impl Measurement {
    pub fn ns(&self) -> Option<f64> {
        match self {
            Measurement::Ns(ns) => Some(*ns),
            _ => None,
        }
    }
}

/// One workload's row.
#[derive(Clone, Debug)]
pub struct Row {
    pub workload: String,
    /// "run" or "packet".
    pub unit: &'static str,
    /// In [`Engine::ALL`] order.
    pub cells: Vec<Measurement>,
}

impl Row {
    pub fn get(&self, e: Engine) -> &Measurement {
        let i = Engine::ALL.iter().position(|x| *x == e).expect("every engine has a column");
        &self.cells[i]
    }

    /// `a`'s time over `b`'s, when both were measured.
    pub fn ratio(&self, a: Engine, b: Engine) -> Option<f64> {
        Some(self.get(a).ns()? / self.get(b).ns()?)
    }
}

/// The whole table.
#[derive(Clone, Debug)]
pub struct Report {
    pub rows: Vec<Row>,
    /// Which criterion estimate the times are ("median").
    pub estimate: &'static str,
    /// Lines printed under the table and kept in the JSON (inputs, configuration).
    pub notes: Vec<String>,
}

/// A table of time ratios.
struct RatioTable {
    title: &'static str,
    /// Its key in the JSON.
    key: &'static str,
    /// (numerator, denominator) of each column.
    columns: Vec<(Engine, Engine)>,
}

fn ratio_tables() -> Vec<RatioTable> {
    vec![
        RatioTable {
            title: "time relative to native (engine / native; lower is better)",
            key: "vs_native",
            columns: Engine::ALL.iter().filter(|e| **e != Engine::Native).map(|e| (*e, Engine::Native)).collect(),
        },
        RatioTable {
            title: "bpfkit JIT time relative to each peer (bpfkit JIT / peer; below 1 = bpfkit JIT faster)",
            key: "bpfkit_jit_vs_peer",
            columns: Engine::PEERS.iter().map(|p| (Engine::BpfkitJit, *p)).collect(),
        },
        RatioTable {
            title: "bpfkit interpreter time relative to each peer (bpfkit interp / peer; below 1 = bpfkit interp faster)",
            key: "bpfkit_interp_vs_peer",
            columns: Engine::PEERS.iter().map(|p| (Engine::BpfkitInterp, *p)).collect(),
        },
    ]
}

impl Report {
    /// Geometric mean of `a / b` over the workloads where both were measured, and their number.
    pub fn geomean(&self, a: Engine, b: Engine) -> Option<(f64, usize)> {
        let logs: Vec<f64> = self.rows.iter().filter_map(|r| r.ratio(a, b)).map(f64::ln).collect();
        if logs.is_empty() {
            return None;
        }
        Some(((logs.iter().sum::<f64>() / logs.len() as f64).exp(), logs.len()))
    }

    /// Whether anything was measured at all.
    pub fn any_measured(&self) -> bool {
        self.rows.iter().any(|r| r.cells.iter().any(|c| c.ns().is_some()))
    }

    /// The table as text.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let name_w = self.rows.iter().map(|r| r.workload.len()).max().unwrap_or(8).max(8) + 2;

        let _ = writeln!(out, "ns per run / per packet ({} of criterion's samples)", self.estimate);
        let mut header = format!("{:<name_w$}{:<8}", "workload", "unit");
        for e in Engine::ALL {
            let _ = write!(header, "{:>14}", e.label());
        }
        let _ = writeln!(out, "{header}");
        for r in &self.rows {
            let mut line = format!("{:<name_w$}{:<8}", r.workload, r.unit);
            for c in &r.cells {
                let cell = match c {
                    Measurement::Ns(ns) => format_ns(*ns),
                    Measurement::NotApplicable(_) => "n/a".into(),
                    Measurement::NotMeasured => "-".into(),
                };
                let _ = write!(line, "{cell:>14}");
            }
            let _ = writeln!(out, "{line}");
        }

        for RatioTable { title, columns, .. } in ratio_tables() {
            let _ = writeln!(out, "\n{title}");
            let labels: Vec<String> = columns
                .iter()
                .map(|(a, b)| if *b == Engine::Native { a.label().to_string() } else { format!("/ {}", b.label()) })
                .collect();
            let col_w = labels.iter().map(|l| l.len()).max().unwrap_or(10).max(10) + 2;
            let mut header = format!("{:<name_w$}", "workload");
            for l in &labels {
                let _ = write!(header, "{l:>col_w$}");
            }
            let _ = writeln!(out, "{header}");
            for r in &self.rows {
                let mut line = format!("{:<name_w$}", r.workload);
                for (a, b) in &columns {
                    let cell = r.ratio(*a, *b).map(format_ratio).unwrap_or_else(|| "-".into());
                    let _ = write!(line, "{cell:>col_w$}");
                }
                let _ = writeln!(out, "{line}");
            }
            let mut line = format!("{:<name_w$}", "geomean");
            for (a, b) in &columns {
                let cell = match self.geomean(*a, *b) {
                    None => "-".to_string(),
                    Some((g, n)) if n == self.rows.len() => format_ratio(g),
                    Some((g, n)) => format!("{} ({n})", format_ratio(g)),
                };
                let _ = write!(line, "{cell:>col_w$}");
            }
            let _ = writeln!(out, "{line}");
        }

        let notes = self.not_applicable();
        if !notes.is_empty() {
            let _ = writeln!(out, "\nn/a:");
            for ((engine, reason), workloads) in notes {
                let _ = writeln!(out, "  {engine} ({}): {reason}", workloads.join(", "));
            }
        }
        let _ = writeln!(out, "-: not measured in this run, or no ratio (a side is n/a or not measured)");
        for n in &self.notes {
            let _ = writeln!(out, "{n}");
        }
        out
    }

    /// (engine label, reason) -> workloads.
    fn not_applicable(&self) -> BTreeMap<(&'static str, String), Vec<String>> {
        let mut notes: BTreeMap<(&'static str, String), Vec<String>> = BTreeMap::new();
        for r in &self.rows {
            for (e, c) in Engine::ALL.iter().zip(&r.cells) {
                if let Measurement::NotApplicable(reason) = c {
                    notes.entry((e.label(), reason.clone())).or_default().push(r.workload.clone());
                }
            }
        }
        notes
    }

    /// The table as JSON (the docs page's input).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::{Map, Value, json};
        let num = |x: Option<f64>| x.map_or(Value::Null, |x| json!(x));
        let workloads: Vec<Value> = self
            .rows
            .iter()
            .map(|r| {
                let mut w = Map::new();
                w.insert("name".into(), json!(r.workload));
                w.insert("unit".into(), json!(r.unit));
                let mut ns = Map::new();
                let mut na = Map::new();
                for (e, c) in Engine::ALL.iter().zip(&r.cells) {
                    ns.insert(e.key().into(), num(c.ns()));
                    if let Measurement::NotApplicable(reason) = c {
                        na.insert(e.key().into(), json!(reason));
                    }
                }
                w.insert("ns".into(), Value::Object(ns));
                w.insert("not_applicable".into(), Value::Object(na));
                for RatioTable { key, columns, .. } in ratio_tables() {
                    let m: Map<String, Value> =
                        columns.iter().map(|(a, b)| (column_key(*a, *b), num(r.ratio(*a, *b)))).collect();
                    w.insert(key.into(), Value::Object(m));
                }
                Value::Object(w)
            })
            .collect();
        let mut geomean = Map::new();
        for RatioTable { key, columns, .. } in ratio_tables() {
            let m: Map<String, Value> = columns
                .iter()
                .map(|(a, b)| {
                    let v = match self.geomean(*a, *b) {
                        Some((g, n)) => json!({"value": g, "workloads": n}),
                        None => Value::Null,
                    };
                    (column_key(*a, *b), v)
                })
                .collect();
            geomean.insert(key.into(), Value::Object(m));
        }
        json!({
            "command": "cargo bench -p bpfkit-bench --bench compare",
            "estimate": self.estimate,
            "time_unit": "ns",
            "ratios": "time ratios a / b: below 1 means a is faster",
            "generated_unix_seconds": SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
            "machine": machine(),
            "notes": self.notes,
            "engines": Engine::ALL.iter().map(|e| json!({"key": e.key(), "label": e.label()})).collect::<Vec<_>>(),
            "workloads": workloads,
            "geomean": geomean,
        })
    }
}

/// JSON key of a ratio column: the denominator for "vs native" and "vs peer" tables.
fn column_key(a: Engine, b: Engine) -> String {
    if b == Engine::Native { a.key().to_string() } else { b.key().to_string() }
}

pub(crate) fn format_ns(ns: f64) -> String {
    if ns >= 100.0 {
        format!("{ns:.0}")
    } else if ns >= 10.0 {
        format!("{ns:.1}")
    } else {
        format!("{ns:.2}")
    }
}

pub(crate) fn format_ratio(r: f64) -> String {
    if r >= 100.0 {
        format!("{r:.0}x")
    } else if r >= 10.0 {
        format!("{r:.1}x")
    } else {
        format!("{r:.2}x")
    }
}

/// CPU model and logical CPUs, for the record.
pub(crate) fn machine() -> serde_json::Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|s| {
        s.lines().find(|l| l.starts_with("model name")).and_then(|l| l.split(':').nth(1)).map(|m| m.trim().to_string())
    });
    let cpus = std::thread::available_parallelism().map(|n| n.get()).ok();
    serde_json::json!({"cpu": cpu, "logical_cpus": cpus, "os": std::env::consts::OS, "arch": std::env::consts::ARCH})
}

/// Criterion's median time of one benchmark in this run, in ns per iteration: the point
/// estimate of `<criterion dir>/<group>/<bench>/new/estimates.json`, if that file was written
/// after `since` (an older file is a previous run's, e.g. when a filter skipped the benchmark).
pub fn criterion_median(criterion_dir: &Path, group: &str, bench: &str, since: SystemTime) -> Option<f64> {
    let path = criterion_dir.join(group).join(bench).join("new").join("estimates.json");
    let modified = std::fs::metadata(&path).and_then(|m| m.modified()).ok()?;
    if modified < since {
        return None;
    }
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).ok()?).ok()?;
    json["median"]["point_estimate"].as_f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, ns: [Option<f64>; 7]) -> Row {
        let cells = ns
            .iter()
            .zip(Engine::ALL)
            .map(|(ns, e)| match (ns, e) {
                (Some(ns), _) => Measurement::Ns(*ns),
                (None, Engine::BpfkitJit) => Measurement::NotApplicable("no JIT".into()),
                (None, _) => Measurement::NotMeasured,
            })
            .collect();
        Row { workload: name.into(), unit: "run", cells }
    }

    fn report() -> Report {
        Report {
            rows: vec![
                row("a", [Some(100.0), None, Some(400.0), Some(50.0), None, None, Some(10.0)]),
                row("b", [Some(900.0), None, Some(900.0), None, None, None, Some(100.0)]),
            ],
            estimate: "median",
            notes: vec!["a note".into()],
        }
    }

    #[test]
    fn ratios_and_geomeans() {
        let r = report();
        assert_eq!(r.rows[0].ratio(Engine::BpfkitInterp, Engine::Native), Some(10.0));
        assert_eq!(r.rows[0].ratio(Engine::BpfkitJit, Engine::Native), None);
        let (g, n) = r.geomean(Engine::BpfkitInterp, Engine::Native).unwrap();
        assert!((g - 30f64.sqrt() * 3f64.sqrt()).abs() < 1e-9 && n == 2, "{g} {n}");
        let (g, n) = r.geomean(Engine::BpfkitInterp, Engine::RbpfJit).unwrap();
        assert!((g - 2.0).abs() < 1e-9 && n == 1);
        assert!(r.geomean(Engine::BpfkitJit, Engine::RbpfJit).is_none());
    }

    #[test]
    fn text_and_json() {
        let r = report();
        let text = r.to_text();
        assert!(text.contains("bpfkit interp"), "{text}");
        assert!(text.contains("10.0x"), "{text}");
        assert!(text.contains("2.00x (1)"), "{text}");
        assert!(text.contains("bpfkit JIT (a, b): no JIT"), "{text}");
        let json = r.to_json();
        assert_eq!(json["workloads"][0]["ns"]["native"], 10.0);
        assert_eq!(json["workloads"][0]["ns"]["bpfkit_jit"], serde_json::Value::Null);
        assert_eq!(json["workloads"][0]["not_applicable"]["bpfkit_jit"], "no JIT");
        assert_eq!(json["workloads"][0]["vs_native"]["bpfkit_interp"], 10.0);
        assert_eq!(json["workloads"][0]["bpfkit_interp_vs_peer"]["rbpf_jit"], 2.0);
        assert_eq!(json["geomean"]["bpfkit_interp_vs_peer"]["rbpf_jit"]["workloads"], 1);
        assert!(text.contains("a note"), "{text}");
        assert_eq!(json["notes"][0], "a note");
        assert!(r.any_measured());
    }
}
