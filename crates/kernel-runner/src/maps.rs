//! The JSON format of map dumps (`--dump-maps`) and map initialisation (`--map-init`).
//!
//! ```json
//! {
//!   "<map name>": [
//!     {"key": "<hex>", "value": "<hex>"},
//!     {"key": "<hex>", "value": ["<hex cpu 0>", "<hex cpu 1>", ...]},
//!     {"key": "<hex>", "prog": "<program name>"},
//!     {"key": "<hex>", "map": "<map name>"}
//!   ]
//! }
//! ```
//!
//! Keys and values are the raw bytes as the kernel stores them (so integers are little-endian
//! on x86-64), as lowercase hex without separators. Map names are libbpf's names; the internal
//! global-data maps are named after their ELF section (`.data`, `.bss`, `.rodata`,
//! `.data.counters`, `.rodata.str1.1`, `.kconfig`), i.e. without libbpf's object-name prefix.
//! Per-CPU maps have one value per possible CPU. Queues, stacks and ring buffers have no keys:
//! their entries have `"key": ""` and are listed in pop order (queue: oldest first, stack: newest
//! first) or, for a ring buffer, in the order the records were committed (one entry per committed
//! record, discarded records left out). Program arrays and maps of maps give the program or
//! inner map in a slot by name.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::{Context, bail};
use serde_json::Value;

/// What one slot of a map holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Slot {
    Bytes(Vec<u8>),
    PerCpu(Vec<Vec<u8>>),
    Prog(String),
    Map(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: Vec<u8>,
    pub slot: Slot,
}

/// Every map's entries, by map name.
pub type MapDump = BTreeMap<String, Vec<Entry>>;

pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(2 * bytes.len());
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

pub fn unhex(s: &str) -> anyhow::Result<Vec<u8>> {
    let digits: Vec<u8> = s.bytes().filter(|c| !c.is_ascii_whitespace() && *c != b'_').collect();
    if !digits.len().is_multiple_of(2) {
        bail!("odd number of hex digits in {s:?}");
    }
    digits
        .chunks(2)
        .map(|pair| {
            let text = std::str::from_utf8(pair).unwrap_or("");
            u8::from_str_radix(text, 16).with_context(|| format!("bad hex digits {text:?} in {s:?}"))
        })
        .collect()
}

fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

/// Serialise a dump: map names sorted, one entry per line.
pub fn to_json(dump: &MapDump) -> String {
    let mut out = String::from("{");
    for (i, (name, entries)) in dump.iter().enumerate() {
        out.push_str(if i == 0 { "\n  " } else { ",\n  " });
        out.push_str(&quote(name));
        out.push_str(": [");
        for (j, e) in entries.iter().enumerate() {
            out.push_str(if j == 0 { "\n    " } else { ",\n    " });
            let _ = write!(out, "{{\"key\": \"{}\", ", hex(&e.key));
            match &e.slot {
                Slot::Bytes(v) => {
                    let _ = write!(out, "\"value\": \"{}\"}}", hex(v));
                }
                Slot::PerCpu(vs) => {
                    let list: Vec<String> = vs.iter().map(|v| format!("\"{}\"", hex(v))).collect();
                    let _ = write!(out, "\"value\": [{}]}}", list.join(", "));
                }
                Slot::Prog(p) => {
                    let _ = write!(out, "\"prog\": {}}}", quote(p));
                }
                Slot::Map(m) => {
                    let _ = write!(out, "\"map\": {}}}", quote(m));
                }
            }
        }
        out.push_str(if entries.is_empty() { "]" } else { "\n  ]" });
    }
    out.push_str(if dump.is_empty() { "}\n" } else { "\n}\n" });
    out
}

/// Parse a dump or a map-initialisation file.
pub fn from_json(text: &str) -> anyhow::Result<MapDump> {
    let value: Value = serde_json::from_str(text).context("not JSON")?;
    let Value::Object(maps) = value else { bail!("the top level must be an object of map names") };
    let mut dump = MapDump::new();
    for (name, entries) in maps {
        let Value::Array(entries) = entries else { bail!("map {name:?}: expected a list of entries") };
        let mut list = Vec::with_capacity(entries.len());
        for (i, e) in entries.iter().enumerate() {
            list.push(entry_from_json(e).with_context(|| format!("map {name:?}, entry {i}"))?);
        }
        dump.insert(name, list);
    }
    Ok(dump)
}

fn entry_from_json(e: &Value) -> anyhow::Result<Entry> {
    let Value::Object(fields) = e else { bail!("expected an object") };
    for k in fields.keys() {
        if !matches!(k.as_str(), "key" | "value" | "prog" | "map") {
            bail!("unknown field {k:?}");
        }
    }
    let key = match fields.get("key") {
        Some(Value::String(s)) => unhex(s)?,
        None => Vec::new(),
        Some(_) => bail!("\"key\" must be a hex string"),
    };
    let slot = match (fields.get("value"), fields.get("prog"), fields.get("map")) {
        (Some(Value::String(s)), None, None) => Slot::Bytes(unhex(s)?),
        (Some(Value::Array(list)), None, None) => Slot::PerCpu(
            list.iter()
                .map(|v| match v {
                    Value::String(s) => unhex(s),
                    _ => bail!("per-CPU values must be hex strings"),
                })
                .collect::<anyhow::Result<_>>()?,
        ),
        (None, Some(Value::String(p)), None) => Slot::Prog(p.clone()),
        (None, None, Some(Value::String(m))) => Slot::Map(m.clone()),
        _ => bail!("expected exactly one of \"value\" (hex or list of hex), \"prog\" (name), \"map\" (name)"),
    };
    Ok(Entry { key, slot })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut dump = MapDump::new();
        dump.insert(
            "a".into(),
            vec![
                Entry { key: vec![0, 0, 0, 0], slot: Slot::Bytes(vec![1, 2]) },
                Entry { key: vec![1, 0, 0, 0], slot: Slot::PerCpu(vec![vec![3], vec![0]]) },
                Entry { key: vec![2, 0, 0, 0], slot: Slot::Prog("p".into()) },
                Entry { key: vec![3, 0, 0, 0], slot: Slot::Map("m".into()) },
            ],
        );
        dump.insert(".bss".into(), vec![]);
        let text = to_json(&dump);
        assert_eq!(from_json(&text).unwrap(), dump);
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["a"][1]["value"][0], "03");
        assert_eq!(to_json(&MapDump::new()), "{}\n");
    }

    #[test]
    fn rejects_bad_entries() {
        assert!(from_json(r#"{"a": [{"key": "0", "value": "00"}]}"#).is_err());
        assert!(from_json(r#"{"a": [{"key": "00", "value": "00", "prog": "x"}]}"#).is_err());
        assert!(from_json(r#"{"a": [{"key": "00", "valu": "00"}]}"#).is_err());
        assert!(from_json(r#"[1]"#).is_err());
    }
}
