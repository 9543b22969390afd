//! The report: counts, the measure on the supported subset, and the disagreements
//! grouped by cause, as text and as JSON.

use crate::record::{Cause, Record, Verdict};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt::Write;

/// An object clang could not build.
pub struct CompileError {
    pub object: String,
    /// `SEC(...)` functions in its source: the programs lost (an estimate).
    pub programs: usize,
    pub error: String,
}

#[derive(Default)]
pub struct Skipped {
    pub unpriv_only: usize,
    pub auxiliary: usize,
    pub other_arch: usize,
}

pub struct Report {
    pub objects: usize,
    pub records: Vec<Record>,
    pub compile_errors: Vec<CompileError>,
    /// Objects whose programs or expectations could not be read.
    pub unreadable: Vec<(String, String)>,
    pub skipped: Skipped,
    /// Tests with `__xlated` expectations (not checked: bpfkit's xlated program differs).
    pub xlated_unchecked: usize,
    pub seconds: f64,
    /// List every message difference (not only their groups).
    pub verbose: bool,
}

fn pct(a: usize, b: usize) -> String {
    if b == 0 { "-".into() } else { format!("{:.1}%", 100.0 * a as f64 / b as f64) }
}

/// How `detail` starts for a message difference.
pub const MISSING: &str = "expected message not in the log: ";

/// A message with its numbers and the leading `insn N:` taken out, for grouping.
pub fn shape(msg: &str) -> String {
    let m = msg.trim();
    let m = m.strip_prefix("insn ").and_then(|r| r.split_once(": ").map(|x| x.1)).unwrap_or(m);
    let mut out = String::new();
    let mut digits = false;
    for c in m.chars() {
        if c.is_ascii_digit() {
            if !digits {
                out.push('N');
            }
            digits = true;
        } else {
            digits = false;
            out.push(c);
        }
    }
    out.chars().take(110).collect()
}

struct Counts {
    run: usize,
    verdict: usize,
    with_msgs: usize,
    msgs: usize,
    retvals: usize,
    retvals_ok: usize,
}

fn counts<'a>(rs: impl Iterator<Item = &'a Record>) -> Counts {
    let mut c = Counts { run: 0, verdict: 0, with_msgs: 0, msgs: 0, retvals: 0, retvals_ok: 0 };
    for r in rs.filter(|r| r.verdict_agrees.is_some()) {
        c.run += 1;
        c.verdict += usize::from(r.verdict_agrees == Some(true));
        if !r.msgs.is_empty() && r.verdict_agrees == Some(true) {
            c.with_msgs += 1;
            c.msgs += usize::from(r.msgs_agree == Some(true));
        }
        if let Some(ok) = r.retval_agrees {
            c.retvals += 1;
            c.retvals_ok += usize::from(ok);
        }
    }
    c
}

impl Report {
    fn by_cause(&self, c: Cause) -> impl Iterator<Item = &Record> {
        self.records.iter().filter(move |r| r.cause == c)
    }

    pub fn text(&self) -> String {
        let mut o = String::new();
        let tests = self.records.len();
        let lost: usize = self.compile_errors.iter().map(|c| c.programs).sum();
        let _ = writeln!(o, "== bpfkit against the kernel's verifier selftests (progs/verifier_*.c)");
        let _ = writeln!(
            o,
            "objects: {} compiled, {} failed to compile (~{lost} programs), {} unreadable; {:.0} s",
            self.objects,
            self.compile_errors.len(),
            self.unreadable.len(),
            self.seconds
        );
        let _ = writeln!(
            o,
            "tests (privileged, x86-64): {tests}; skipped: {} unprivileged-only, {} auxiliary, {} other arch; {} with __xlated (not checked)",
            self.skipped.unpriv_only, self.skipped.auxiliary, self.skipped.other_arch, self.xlated_unchecked
        );
        let all = counts(self.records.iter());
        let sup = counts(self.records.iter().filter(|r| r.supported));
        let _ = writeln!(o, "programs run (bpfkit gave a verdict on a program type it runs): {}", all.run);
        let _ = writeln!(o, "  verdicts agree:  {} / {} ({})", all.verdict, all.run, pct(all.verdict, all.run));
        let _ =
            writeln!(o, "  messages agree:  {} / {} (tests with __msg whose verdict agrees)", all.msgs, all.with_msgs);
        let _ = writeln!(
            o,
            "  retvals agree:   {} / {} (accepted as expected, with __retval)",
            all.retvals_ok, all.retvals
        );
        let _ = writeln!(
            o,
            "supported subset (no helper, kfunc or map type bpfkit lacks): {} programs\n  verdicts agree:  {} / {} ({}; done-when: >= 95%)\n  retvals reproduced: {} / {} (done-when: all)",
            sup.run,
            sup.verdict,
            sup.run,
            pct(sup.verdict, sup.run),
            sup.retvals_ok,
            sup.retvals
        );
        let _ = writeln!(o, "\nby cause:");
        for c in Cause::ALL {
            let n = self.by_cause(c).count();
            let _ = writeln!(o, "  {:<26} {n:>5}", c.as_str());
            if c == Cause::Agree {
                let _ = writeln!(
                    o,
                    "  {:<26} {:>5} objects (~{lost} programs)",
                    "compile error",
                    self.compile_errors.len()
                );
            }
        }
        for (c, what) in [
            (Cause::UnsupportedProgType, "program types"),
            (Cause::UnsupportedMapType, "maps"),
            (Cause::UnsupportedHelper, "helpers"),
            (Cause::UnsupportedKfunc, "kfuncs"),
        ] {
            let mut g: BTreeMap<String, usize> = BTreeMap::new();
            for r in self.by_cause(c) {
                *g.entry(r.detail.clone()).or_default() += 1;
            }
            if g.is_empty() {
                continue;
            }
            let mut v: Vec<_> = g.into_iter().collect();
            v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            let _ = writeln!(o, "\n{} ({what}):", c.as_str());
            for (d, n) in v {
                let _ = writeln!(o, "  {n:>4}  {d}");
            }
        }
        for c in &self.compile_errors {
            let _ = writeln!(o, "compile error: {} (~{} programs): {}", c.object, c.programs, c.error);
        }
        for (obj, e) in &self.unreadable {
            let _ = writeln!(o, "unreadable: {obj}: {e}");
        }

        let diffs: Vec<&Record> = self.by_cause(Cause::VerifierDifference).collect();
        let mut shapes: BTreeMap<String, usize> = BTreeMap::new();
        for r in &diffs {
            let key = match r.verdict {
                Some(Verdict::Accepted) => {
                    format!("accepted; kernel: {}", r.msgs.first().map_or("(no message)".into(), |m| shape(m)))
                }
                Some(Verdict::LoadError) => format!("load error: {}", shape(&r.message)),
                _ => format!("refused: {}", shape(&r.message)),
            };
            *shapes.entry(key).or_default() += 1;
        }
        let mut shapes: Vec<_> = shapes.into_iter().collect();
        shapes.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let _ = writeln!(o, "\nverifier differences by bpfkit's message (numbers as N):");
        for (k, n) in &shapes {
            let _ = writeln!(o, "  {n:>4}  {k}");
        }
        let _ = writeln!(o, "\nverifier differences (object, program, expected -> bpfkit's verdict: message):");
        for r in &diffs {
            let kernel = r.msgs.first().map(|m| format!(" [kernel: {m}]")).unwrap_or_default();
            let _ = writeln!(
                o,
                "  {} {} [{}]: {} -> {}: {}{kernel}",
                r.object,
                r.program,
                r.prog_type,
                r.expected(),
                r.verdict.map_or("-", Verdict::as_str),
                if r.message.is_empty() { "(no error)" } else { r.message.as_str() },
            );
        }
        let mut groups: BTreeMap<String, (usize, String)> = BTreeMap::new();
        for r in self.by_cause(Cause::MessageDifference) {
            let missing = r.detail.strip_prefix(MISSING).unwrap_or(&r.detail);
            let g = groups.entry(shape(missing)).or_insert((0, String::new()));
            g.0 += 1;
            if g.1.is_empty() && !r.message.is_empty() {
                g.1 = format!(" (e.g. bpfkit: {})", shape(&r.message));
            }
        }
        let mut groups: Vec<_> = groups.into_iter().collect();
        groups.sort_by(|a, b| b.1.0.cmp(&a.1.0).then(a.0.cmp(&b.0)));
        let _ =
            writeln!(o, "\nmessage differences by the kernel's expected message (numbers as N; --verbose lists each):");
        for (k, (n, eg)) in &groups {
            let _ = writeln!(o, "  {n:>4}  {k}{eg}");
        }
        let mut lists = vec![(Cause::RetvalDifference, "retval differences"), (Cause::Crash, "bpfkit crashes")];
        if self.verbose {
            lists.push((Cause::MessageDifference, "message differences (verdict agrees)"));
        }
        for (c, title) in lists {
            let rs: Vec<&Record> = self.by_cause(c).collect();
            if rs.is_empty() {
                continue;
            }
            let _ = writeln!(o, "\n{title}:");
            for r in rs {
                let _ = writeln!(
                    o,
                    "  {} {}: {} -> {}; {}{}",
                    r.object,
                    r.program,
                    r.expected(),
                    r.verdict.map_or("-", Verdict::as_str),
                    r.detail,
                    if r.message.is_empty() { String::new() } else { format!(" (bpfkit: {})", r.message) },
                );
            }
        }
        o
    }

    pub fn json(&self) -> Value {
        let all = counts(self.records.iter());
        let sup = counts(self.records.iter().filter(|r| r.supported));
        let mut causes = serde_json::Map::new();
        for c in Cause::ALL {
            causes.insert(c.as_str().into(), json!(self.by_cause(c).count()));
        }
        causes.insert("compile error (objects)".into(), json!(self.compile_errors.len()));
        let summary = |c: &Counts| {
            json!({
                "programs_run": c.run,
                "verdicts_agree": c.verdict,
                "verdicts_agree_pct": if c.run == 0 { 0.0 } else { 100.0 * c.verdict as f64 / c.run as f64 },
                "messages_checked": c.with_msgs,
                "messages_agree": c.msgs,
                "retvals_checked": c.retvals,
                "retvals_agree": c.retvals_ok,
            })
        };
        json!({
            "objects": self.objects,
            "tests": self.records.len(),
            "skipped": {
                "unpriv_only": self.skipped.unpriv_only,
                "auxiliary": self.skipped.auxiliary,
                "other_arch": self.skipped.other_arch,
            },
            "xlated_unchecked": self.xlated_unchecked,
            "all": summary(&all),
            "supported": summary(&sup),
            "causes": causes,
            "compile_errors": self.compile_errors.iter().map(|c| json!({"object": c.object, "programs": c.programs, "error": c.error})).collect::<Vec<_>>(),
            "unreadable": self.unreadable.iter().map(|(o, e)| json!({"object": o, "error": e})).collect::<Vec<_>>(),
            "results": self.records.iter().map(Record::to_json).collect::<Vec<_>>(),
        })
    }
}
