//! The worker: every test of one object, each loaded on its own as test_loader.c does (the
//! program under test and the auxiliary programs; a fresh runtime, so fresh maps), then
//! compared with its expectations.

use crate::record::{Cause, Record, Verdict};
use crate::spec::{self, Elf, Spec, TEST_DATA_LEN};
use anyhow::{Context, Result};
use bpfkit::{Runtime, SkbMeta, Worker, XdpPacket};
use bpfkit_maps::MapType;
use bpfkit_object::{ObjectFile, ProgType, RelocTarget};
use std::collections::{BTreeSet, HashSet};
use std::path::Path;

/// What a program needs that bpfkit may not have.
#[derive(Default)]
struct Usage {
    /// Helper ids bpfkit does not implement.
    unknown_helpers: BTreeSet<i32>,
    /// Kfuncs and `__ksym` variables.
    kfuncs: BTreeSet<String>,
    /// Maps of a type bpfkit lacks that the program refers to.
    maps_used: BTreeSet<String>,
    /// Every map of the object of a type bpfkit lacks (creating it fails the load).
    maps_in_object: BTreeSet<String>,
}

fn map_desc(def: &bpfkit_object::MapDef) -> Option<String> {
    let inner_bad = def.inner.as_deref().and_then(map_desc);
    match MapType::from_u32(def.map_type) {
        Some(t) if t.is_supported() => inner_bad,
        Some(t) => Some(format!("`{}` ({})", def.name, t.name())),
        None => Some(format!("`{}` (type {})", def.name, def.map_type)),
    }
}

fn usage(file: &ObjectFile, program: &str, helpers: &BTreeSet<i32>) -> Usage {
    let mut u = Usage::default();
    for def in &file.maps {
        if let Some(d) = map_desc(def) {
            u.maps_in_object.insert(d);
        }
    }
    let Some(p) = file.programs.iter().find(|p| p.name == program) else { return u };
    let mut kfunc_calls = HashSet::new();
    for r in &p.relocs {
        match &r.target {
            RelocTarget::Map(i) | RelocTarget::MapValue { map: i, .. } => {
                if let Some(d) = file.maps.get(*i).and_then(map_desc) {
                    u.maps_used.insert(d);
                }
            }
            RelocTarget::Kfunc { name } => {
                kfunc_calls.insert(r.insn);
                u.kfuncs.insert(name.clone());
            }
            RelocTarget::Ksym { name } => {
                u.kfuncs.insert(format!("{name} (__ksym)"));
            }
            RelocTarget::JumpTable { .. } => {}
        }
    }
    for (pc, i) in p.insns.iter().enumerate() {
        // `call imm` with src 0: a helper by number.
        if i.code == 0x85 && i.src() == 0 && !kfunc_calls.contains(&pc) && !helpers.contains(&i.imm) {
            u.unknown_helpers.insert(i.imm);
        }
    }
    u
}

/// The maps prog_tests/verifier.c fills before an object's test runs (its `pre_execution_cb`):
/// element 0 becomes a `struct test_val` with `index = 28` and `foo[6] = 0xabcdef12`.
const PRE_EXECUTION: &[(&str, &str)] =
    &[("verifier_array_access", "map_array_ro"), ("verifier_value_ptr_arith", "map_array_48b")];

fn pre_execution(object: &str, obj: &bpfkit::Object) -> Result<(), String> {
    for (o, map) in PRE_EXECUTION {
        if *o != object {
            continue;
        }
        let m = obj.map(map).map_err(|e| e.to_string())?;
        let mut value = vec![0u8; m.spec().value_size as usize];
        for (at, v) in [(0usize, 28u32), (4 + 6 * 4, 0xabcd_ef12)] {
            if let Some(b) = value.get_mut(at..at + 4) {
                b.copy_from_slice(&v.to_le_bytes());
            }
        }
        m.update(&0u32.to_le_bytes(), &value, 0).map_err(|e| format!("pre-execution update of `{map}`: {e}"))?;
    }
    Ok(())
}

/// The test run of test_loader.c: `TEST_DATA_LEN` zero bytes for packet programs, no context
/// for `syscall` programs. Returns r0 as the kernel's `__u32 retval`.
fn test_run(rt: &Runtime, prog: &bpfkit::Prog) -> Result<u32, String> {
    let mut w = Worker::new(rt, 0);
    let data = [0u8; TEST_DATA_LEN];
    let r0 = match prog.prog_type() {
        ProgType::Xdp => {
            let mut pkt = XdpPacket::new(&data).map_err(|e| e.to_string())?;
            u64::from(prog.run_xdp(&mut w, &mut pkt).map_err(|e| e.to_string())?.action)
        }
        ProgType::SocketFilter | ProgType::SchedCls | ProgType::SchedAct => {
            let mut frame = data;
            // The test run's skb is on the loopback device.
            let mut meta = SkbMeta { ifindex: 1, ..SkbMeta::default() };
            prog.run_skb(&mut w, &mut frame, &mut meta).map_err(|e| e.to_string())?
        }
        ProgType::Syscall => prog.run_raw(&mut w, &mut []).map_err(|e| e.to_string())?,
        t => return Err(format!("no test run for {t} programs")),
    };
    Ok(r0 as u32)
}

/// test_loader.c's `__msg` patterns: verbatim text with `{{regex}}` parts (POSIX extended,
/// `REG_NEWLINE`).
fn pattern(msg: &str) -> Result<regex::Regex, String> {
    let mut re = String::from("(?m)");
    let mut rest = msg;
    while let Some(open) = rest.find("{{") {
        re.push_str(&regex::escape(&rest[..open]));
        let after = &rest[open + 2..];
        let close = after.find("}}").ok_or_else(|| format!("unclosed {{{{ in `{msg}`"))?;
        re.push_str(&after[..close]);
        rest = &after[close + 2..];
    }
    re.push_str(&regex::escape(rest));
    regex::Regex::new(&re).map_err(|e| format!("`{msg}`: {e}"))
}

/// test_loader.c's `validate_msgs`: each message in order, each searched after the end of the
/// previous match. Returns the first that is missing.
pub fn check_msgs(log: &str, msgs: &[String]) -> Result<(), String> {
    let mut at = 0;
    for m in msgs {
        let hay = &log[at..];
        let found = if m.contains("{{") {
            pattern(m)?.find(hay).map(|f| f.end())
        } else {
            hay.find(m.as_str()).map(|i| i + m.len())
        };
        match found {
            Some(end) => at += end,
            None => return Err(m.clone()),
        }
    }
    Ok(())
}

fn panic_text(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "panic".into())
}

/// Every test of the object at `path` (only `program`, if given).
pub fn run_object(path: &Path, program: Option<&str>) -> Result<Vec<Record>> {
    let data = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let object = object_name(path);
    let elf = Elf::parse(&data).with_context(|| format!("{object}: ELF"))?;
    let specs = spec::specs(&elf).with_context(|| format!("{object}: test specs"))?;
    let aux: Vec<&str> = specs.iter().filter(|s| s.auxiliary && s.privileged).map(|s| s.program.as_str()).collect();
    let helpers: BTreeSet<i32> = bpfkit::helpers::standard().iter().map(|(id, _)| id).collect();
    std::panic::set_hook(Box::new(|_| {}));
    let mut out = Vec::new();
    for s in specs.iter().filter(|s| s.is_test() && program.is_none_or(|p| p == s.program)) {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_test(&elf, s, &aux, &helpers, &object)));
        out.push(r.unwrap_or_else(|p| {
            let mut r = Record::new(&object, s);
            r.detail = format!("panic: {}", panic_text(p));
            r
        }));
    }
    Ok(out)
}

pub fn object_name(path: &Path) -> String {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    name.strip_suffix(".bpf.o").unwrap_or(&name).to_string()
}

fn join<T: std::fmt::Display>(items: impl IntoIterator<Item = T>) -> String {
    items.into_iter().map(|i| i.to_string()).collect::<Vec<_>>().join(", ")
}

fn run_test(elf: &Elf<'_>, s: &Spec, aux: &[&str], helpers: &BTreeSet<i32>, object: &str) -> Record {
    let mut r = Record::new(object, s);
    let section = s.section.trim_start_matches('?');
    let ty = bpfkit_object::prog_type_of(section);
    r.prog_type = ty.map(|t| t.name().to_string()).unwrap_or_default();
    if !ty.is_some_and(ProgType::is_supported) {
        r.cause = Cause::UnsupportedProgType;
        r.detail = match ty {
            Some(t) => t.name().to_string(),
            None => format!("section `{section}` (not in bpfkit's table)"),
        };
        return r;
    }
    let mut keep: HashSet<&str> = aux.iter().copied().collect();
    keep.insert(&s.program);
    let bytes = elf.isolate(&keep);
    let uses = match ObjectFile::parse(&bytes) {
        Ok(f) => usage(&f, &s.program, helpers),
        Err(_) => Usage::default(),
    };

    let rt = Runtime::new();
    rt.set_verify_log_level(match s.log_level & 3 {
        0 => 1,
        l => l,
    });
    let mut retval = None;
    let log = match rt.load(&bytes) {
        Ok(obj) => match obj.program(&s.program) {
            Ok(prog) => {
                r.verdict = Some(Verdict::Accepted);
                if !s.expect_failure
                    && let Some((_, want)) = &s.retval
                {
                    retval = Some((*want, pre_execution(object, &obj).and_then(|()| test_run(&rt, prog))));
                }
                prog.verify_report().log.clone()
            }
            Err(e) => {
                r.verdict = Some(Verdict::LoadError);
                r.message = e.to_string();
                r.message.clone()
            }
        },
        Err(bpfkit::Error::Verify { program, error, log }) => {
            r.verdict = Some(Verdict::Refused);
            r.message = if program == s.program {
                error.to_string()
            } else {
                format!("auxiliary program `{program}`: {error}")
            };
            log
        }
        Err(e) => {
            r.verdict = Some(Verdict::LoadError);
            r.message = e.to_string();
            r.message.clone()
        }
    };

    // Loads that fail on what bpfkit lacks give no verdict.
    if r.verdict == Some(Verdict::LoadError) {
        let m = &r.message;
        // A map bpfkit cannot create (or whose definition it cannot read).
        let cause = if m.starts_with("map `") || m.contains("unknown map type") {
            Some(Cause::UnsupportedMapType)
        } else if m.contains("unknown kfunc") || m.contains("(__ksym)") {
            Some(Cause::UnsupportedKfunc)
        } else if m.contains("is not a program type libbpf knows") {
            Some(Cause::UnsupportedProgType)
        } else {
            None
        };
        if let Some(c) = cause {
            r.verdict = None;
            r.cause = c;
            r.detail = match c {
                Cause::UnsupportedMapType if !uses.maps_used.is_empty() => format!("uses {}", join(&uses.maps_used)),
                Cause::UnsupportedMapType if !uses.maps_in_object.is_empty() => {
                    format!("object has {} (not used by this program)", join(&uses.maps_in_object))
                }
                _ => m.clone(),
            };
            return r;
        }
    }
    if !uses.kfuncs.is_empty() && r.verdict != Some(Verdict::Accepted) {
        r.verdict = None;
        r.cause = Cause::UnsupportedKfunc;
        r.detail = join(&uses.kfuncs);
        return r;
    }

    let refused = r.verdict != Some(Verdict::Accepted);
    r.verdict_agrees = Some(refused == s.expect_failure);
    r.msgs_agree = Some(match check_msgs(&log, &s.msgs) {
        Ok(()) => true,
        Err(missing) => {
            r.detail = format!("{}{missing}", crate::report::MISSING);
            false
        }
    });
    if let Some((want, got)) = retval {
        let ok = match &got {
            Ok(v) => want.is_none_or(|w| i64::from(*v as i32) == w),
            Err(_) => false,
        };
        r.retval_agrees = Some(ok);
        if !ok {
            r.detail = match got {
                Ok(v) => format!("retval {} (expected {})", v as i32, s.retval.as_ref().map_or("", |x| x.0.as_str())),
                Err(e) => format!("test run failed: {e}"),
            };
        }
    }
    let unknown_helper = !uses.unknown_helpers.is_empty() || r.message.contains("invalid func unknown#");
    r.supported = !unknown_helper && uses.kfuncs.is_empty() && uses.maps_used.is_empty();
    let agree = r.verdict_agrees == Some(true) && r.msgs_agree == Some(true) && r.retval_agrees != Some(false);
    r.cause = if agree {
        Cause::Agree
    } else if unknown_helper {
        r.detail = format!("helper(s) {}", join(&uses.unknown_helpers));
        Cause::UnsupportedHelper
    } else if r.verdict_agrees == Some(false) {
        Cause::VerifierDifference
    } else if r.msgs_agree == Some(false) {
        Cause::MessageDifference
    } else {
        Cause::RetvalDifference
    };
    r
}

#[cfg(test)]
mod tests {
    use super::check_msgs;

    fn msgs(m: &[&str]) -> Vec<String> {
        m.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn messages_match_in_order_after_the_previous_match() {
        let log = "0: (b7) r0 = 0\n1: (95) exit\nR0 leaks addr\nprocessed 2 insns\n";
        assert!(check_msgs(log, &msgs(&["r0 = 0", "exit", "processed 2 insns"])).is_ok());
        assert_eq!(check_msgs(log, &msgs(&["exit", "r0 = 0"])), Err("r0 = 0".into()));
    }

    #[test]
    fn regex_parts_are_regexes_and_the_rest_is_verbatim() {
        let log = "3: (2d) if r0 > r1 goto pc+2 ; R0_w=scalar(smin=0)\n";
        assert!(check_msgs(log, &msgs(&["3: (2d) if r0 > r1 {{.*}} R0_w=scalar(smin=0)"])).is_ok());
        // `.` and `(` outside the braces are literal; `.*` does not cross lines.
        assert!(check_msgs(log, &msgs(&["3: (2d) if r0 > r1 {{.*}} R1"])).is_err());
        assert!(check_msgs("a.b", &msgs(&["a.b"])).is_ok());
        assert!(check_msgs("axb", &msgs(&["a{{.}}b"])).is_ok());
        assert!(check_msgs("axb", &msgs(&["a.b"])).is_err());
    }
}
