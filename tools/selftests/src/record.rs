//! One test's result: what the kernel's selftest expects, what bpfkit did, and why they differ.

use serde_json::{Value, json};

/// Why a test does not agree (or that it does).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Cause {
    Agree,
    UnsupportedProgType,
    UnsupportedMapType,
    UnsupportedHelper,
    UnsupportedKfunc,
    /// The verdict (loaded or refused) differs.
    VerifierDifference,
    /// The verdict agrees; an expected message is not in the log.
    MessageDifference,
    /// Accepted as expected; the test run's return value differs (or the run failed).
    RetvalDifference,
    /// The worker process for the object died (panic, abort, timeout): a bpfkit bug.
    Crash,
}

impl Cause {
    pub const ALL: [Cause; 9] = [
        Cause::Agree,
        Cause::UnsupportedProgType,
        Cause::UnsupportedMapType,
        Cause::UnsupportedHelper,
        Cause::UnsupportedKfunc,
        Cause::VerifierDifference,
        Cause::MessageDifference,
        Cause::RetvalDifference,
        Cause::Crash,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Cause::Agree => "agree",
            Cause::UnsupportedProgType => "unsupported program type",
            Cause::UnsupportedMapType => "unsupported map type",
            Cause::UnsupportedHelper => "unsupported helper",
            Cause::UnsupportedKfunc => "unsupported kfunc",
            Cause::VerifierDifference => "verifier difference",
            Cause::MessageDifference => "message difference",
            Cause::RetvalDifference => "retval difference",
            Cause::Crash => "bpfkit crash",
        }
    }

    fn parse(s: &str) -> Cause {
        Cause::ALL.into_iter().find(|c| c.as_str() == s).unwrap_or(Cause::Crash)
    }
}

/// bpfkit's verdict on the program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Accepted,
    /// Refused by the verifier.
    Refused,
    /// Refused by the loader, before or after the verifier (decoding, relocations, fixups).
    LoadError,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Accepted => "accepted",
            Verdict::Refused => "refused",
            Verdict::LoadError => "load error",
        }
    }
    fn parse(s: &str) -> Option<Verdict> {
        [Verdict::Accepted, Verdict::Refused, Verdict::LoadError].into_iter().find(|v| v.as_str() == s)
    }
}

#[derive(Clone, Debug)]
pub struct Record {
    pub object: String,
    pub program: String,
    pub section: String,
    /// libbpf's name of the program type (`""`: a section bpfkit does not know).
    pub prog_type: String,
    pub expect_failure: bool,
    pub msgs: Vec<String>,
    pub retval: Option<String>,
    pub log_level: u32,
    pub flags: Vec<String>,
    /// `None`: bpfkit did not get as far as a verdict (unsupported, crash).
    pub verdict: Option<Verdict>,
    /// The verifier's or loader's error (`insn N: message`), empty when accepted.
    pub message: String,
    pub cause: Cause,
    /// What the cause is about: helper ids, kfunc or map names, the expected message not
    /// found, the return value bpfkit got.
    pub detail: String,
    /// Whether the program is in the measured set: a type bpfkit runs, and no helper,
    /// kfunc or map type bpfkit lacks.
    pub supported: bool,
    pub verdict_agrees: Option<bool>,
    pub msgs_agree: Option<bool>,
    pub retval_agrees: Option<bool>,
}

impl Record {
    pub fn new(object: &str, spec: &crate::spec::Spec) -> Record {
        Record {
            object: object.to_string(),
            program: spec.program.clone(),
            section: spec.section.clone(),
            prog_type: String::new(),
            expect_failure: spec.expect_failure,
            msgs: spec.msgs.clone(),
            retval: spec.retval.as_ref().map(|r| r.0.clone()),
            log_level: spec.log_level,
            flags: spec.flags.clone(),
            verdict: None,
            message: String::new(),
            cause: Cause::Crash,
            detail: String::new(),
            supported: false,
            verdict_agrees: None,
            msgs_agree: None,
            retval_agrees: None,
        }
    }

    pub fn expected(&self) -> &'static str {
        if self.expect_failure { "failure" } else { "success" }
    }

    pub fn to_json(&self) -> Value {
        json!({
            "object": self.object,
            "program": self.program,
            "section": self.section,
            "prog_type": self.prog_type,
            "expected": self.expected(),
            "expected_msgs": self.msgs,
            "expected_retval": self.retval,
            "log_level": self.log_level,
            "flags": self.flags,
            "verdict": self.verdict.map(Verdict::as_str),
            "message": self.message,
            "cause": self.cause.as_str(),
            "detail": self.detail,
            "supported": self.supported,
            "verdict_agrees": self.verdict_agrees,
            "msgs_agree": self.msgs_agree,
            "retval_agrees": self.retval_agrees,
        })
    }

    pub fn from_json(v: &Value) -> Record {
        let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
        let strs = |k: &str| {
            v[k].as_array().map(|a| a.iter().filter_map(|x| x.as_str().map(String::from)).collect()).unwrap_or_default()
        };
        Record {
            object: s("object"),
            program: s("program"),
            section: s("section"),
            prog_type: s("prog_type"),
            expect_failure: v["expected"] == "failure",
            msgs: strs("expected_msgs"),
            retval: v["expected_retval"].as_str().map(String::from),
            log_level: v["log_level"].as_u64().unwrap_or(0) as u32,
            flags: strs("flags"),
            verdict: v["verdict"].as_str().and_then(Verdict::parse),
            message: s("message"),
            cause: Cause::parse(v["cause"].as_str().unwrap_or_default()),
            detail: s("detail"),
            supported: v["supported"].as_bool().unwrap_or(false),
            verdict_agrees: v["verdict_agrees"].as_bool(),
            msgs_agree: v["msgs_agree"].as_bool(),
            retval_agrees: v["retval_agrees"].as_bool(),
        }
    }
}
