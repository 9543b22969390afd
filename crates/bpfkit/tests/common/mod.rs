//! The case files of `tests/data/*.cases`, shared by the data-driven tests: `=== NAME` starts a
//! case, `; KEY[: VALUE]` lines are directives, other lines are the input (assembly), and the
//! first non-blank line after `--- expect` is the expectation. `#` lines outside the input are
//! comments.
#![allow(dead_code)] // each test binary uses the parts it needs

pub struct Case {
    pub name: String,
    /// 1-based line of the `===` header.
    pub line: usize,
    pub input: String,
    /// Directives without their `; `, in order.
    pub directives: Vec<String>,
    pub expect: String,
}

impl Case {
    /// The value of directive `key` (`; key: value` or `; key value`), if present.
    pub fn directive(&self, key: &str) -> Option<&str> {
        self.directives.iter().find_map(|d| {
            let rest = d.strip_prefix(key)?;
            Some(rest.strip_prefix(':').unwrap_or(rest).trim())
        })
    }

    /// Every value of directive `key`.
    pub fn directives_named<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.directives.iter().filter_map(move |d| d.strip_prefix(key).map(str::trim))
    }
}

/// Reads `tests/data/NAME`.
pub fn read(name: &str) -> Vec<Case> {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut out: Vec<Case> = Vec::new();
    let mut in_expect = false;
    for (i, line) in text.lines().enumerate() {
        if let Some(name) = line.strip_prefix("=== ") {
            out.push(Case {
                name: name.trim().into(),
                line: i + 1,
                input: String::new(),
                directives: Vec::new(),
                expect: String::new(),
            });
            in_expect = false;
            continue;
        }
        let Some(c) = out.last_mut() else { continue };
        if line == "--- expect" {
            in_expect = true;
        } else if in_expect {
            if !line.trim().is_empty() && !line.starts_with('#') && c.expect.is_empty() {
                c.expect = line.trim().into();
            }
        } else if let Some(d) = line.strip_prefix("; ") {
            c.directives.push(d.trim().into());
        } else {
            c.input.push_str(line);
            c.input.push('\n');
        }
    }
    out
}
