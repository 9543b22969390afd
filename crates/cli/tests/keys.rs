//! The static-key commands: `run --key`, `key list`, the static-branch notes of `prog dump`,
//! and `serve` with its control socket (`key set|list --control`, `stats --control`,
//! `control SOCKET stop`, SIGTERM).

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn bpfkit(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bpfkit")).args(args).output().expect("bpfkit starts")
}

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn path(rel: &str) -> String {
    root().join(rel).to_str().unwrap().to_string()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn backends() -> Vec<&'static str> {
    if bpfkit_testing::jit_available() { vec!["interp", "jit"] } else { vec!["interp"] }
}

#[test]
fn run_key_sets_keys_before_running() {
    let obj = path("tests/bpf/static_keys.bpf.o");
    for b in backends() {
        for (prog, key) in [("likely_key", "key_likely"), ("unlikely_key", "key_unlikely")] {
            let run = |extra: &[&str]| {
                let mut args = vec!["run", &obj, "--prog", prog, "--ctx", "00", "--backend", b];
                args.extend(extra);
                let o = bpfkit(&args);
                assert!(o.status.success(), "{prog} {extra:?} in {b}: {}", stderr(&o));
                stdout(&o)
            };
            assert_eq!(run(&[]), "3\n", "{prog} with its key off in {b}");
            let on = format!("{key}=on");
            let off = format!("{key}=off");
            assert_eq!(run(&["--key", &on]), "7\n", "{prog} with its key on in {b}");
            assert_eq!(run(&["--key", &on, "--key", &off]), "3\n", "--key applies in order, in {b}");
        }
    }
    // Over a capture too: every packet is dropped while `drop_all` is on.
    let o = bpfkit(&[
        "run",
        &path("tests/bpf/keyed_xdp.bpf.o"),
        "--pcap",
        &path("examples/sample.pcap"),
        "--key",
        "drop_all=on",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["retvals"]["XDP_DROP"], 993, "{v}");
    assert!(v["retvals"].get("XDP_PASS").is_none(), "{v}");
    // An unknown key or state is an error naming it (and the object's keys).
    let o = bpfkit(&["run", &obj, "--prog", "likely_key", "--ctx", "00", "--key", "nope=on"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("no static key `nope`") && stderr(&o).contains("key_likely, key_unlikely"),
        "{}",
        stderr(&o)
    );
    let o = bpfkit(&["run", &obj, "--prog", "likely_key", "--ctx", "00", "--key", "key_likely=maybe"]);
    assert!(!o.status.success() && stderr(&o).contains("`maybe`"), "{}", stderr(&o));
    let o = bpfkit(&["run", &obj, "--prog", "likely_key", "--ctx", "00", "--key", "key_likely"]);
    assert!(!o.status.success() && stderr(&o).contains("NAME=on"), "{}", stderr(&o));
}

#[test]
fn key_list_gives_state_sites_and_programs() {
    let obj = path("tests/bpf/static_keys.bpf.o");
    let o = bpfkit(&["key", "list", &obj, "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let key = |name: &str| v.as_array().unwrap().iter().find(|k| k["name"] == name).cloned().unwrap();
    assert_eq!(v.as_array().unwrap().len(), 9);
    let k1 = key("key1");
    assert_eq!((k1["state"].as_str(), k1["sites"].as_u64(), k1["programs"].as_u64()), (Some("off"), Some(3), Some(2)));
    assert_eq!(k1["program_names"], serde_json::json!(["two_keys", "two_keys_bpf2bpf"]));
    assert_eq!(key("key_thrice")["sites"], 3);
    assert_eq!(key("key_true")["state"], "on", "DEFINE_STATIC_KEY_TRUE starts on");
    // Text: a header, then one line per key.
    let o = bpfkit(&["key", "list", &obj]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert_eq!(text.lines().count(), 10, "{text}");
    let line = text.lines().find(|l| l.starts_with("key_shared ")).unwrap();
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(words[..4], ["key_shared", "off", "2", "2"], "{line}");
    // An object without keys.
    let o = bpfkit(&["key", "list", &path("examples/xdp_count.bpf.o")]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "no static keys\n");
}

#[test]
fn prog_dump_marks_each_static_branch_with_its_state() {
    let obj = path("tests/bpf/static_keys.bpf.o");
    let notes = |what: &str, extra: &[&str]| -> Vec<String> {
        let mut args = vec!["prog", "dump", what, &obj, "--prog", "thrice"];
        args.extend(extra);
        let o = bpfkit(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        stdout(&o).lines().filter_map(|l| l.split_once("; static key ").map(|(_, n)| n.to_string())).collect()
    };
    // thrice: unlikely, likely, unlikely (a likely site falls through while its key is on).
    let off = ["key_thrice: off, falls through", "key_thrice: off, jumps", "key_thrice: off, falls through"];
    let on = ["key_thrice: on, jumps", "key_thrice: on, falls through", "key_thrice: on, jumps"];
    assert_eq!(notes("xlated", &[]), off);
    assert_eq!(notes("xlated", &["--key", "key_thrice=on"]), on);
    let o = bpfkit(&["prog", "dump", "xlated", &obj, "--prog", "thrice"]);
    assert!(
        stdout(&o).contains("gotol_or_nop +0x1                ; static key key_thrice: off, falls through"),
        "{}",
        stdout(&o)
    );
    if bpfkit_testing::jit_available() {
        assert_eq!(notes("jited", &[]), off);
        assert_eq!(notes("jited", &["--key", "key_thrice=on"]), on);
    }
}

/// A `serve` process, killed (and its server told to stop) if the test fails.
struct Server {
    child: Option<Child>,
    socket: PathBuf,
    dir: PathBuf,
}

impl Server {
    fn start(name: &str, extra: &[&str]) -> Server {
        let dir = std::env::temp_dir().join(format!("bpfkit-keys-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("ctl.sock");
        let mut args = vec![
            "serve".to_string(),
            path("tests/bpf/keyed_xdp.bpf.o"),
            "--pcap".into(),
            path("examples/sample.pcap"),
            "--control".into(),
            socket.to_str().unwrap().into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let child = Command::new(env!("CARGO_BIN_EXE_bpfkit"))
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("bpfkit serve starts");
        let s = Server { child: Some(child), socket, dir };
        s.wait_until("the control socket answers", || std::os::unix::net::UnixStream::connect(&s.socket).is_ok());
        s
    }

    fn sock(&self) -> &str {
        self.socket.to_str().unwrap()
    }

    fn wait_until(&self, what: &str, mut f: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !f() {
            assert!(Instant::now() < deadline, "timed out waiting until {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stats(&self) -> Value {
        let o = bpfkit(&["stats", "--control", self.sock(), "--json"]);
        assert!(o.status.success(), "{}", stderr(&o));
        serde_json::from_str(&stdout(&o)).unwrap()
    }

    /// Waits for the `serve` process to end; its output.
    fn finish(mut self) -> Output {
        let mut child = self.child.take().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "serve did not end");
            std::thread::sleep(Duration::from_millis(20));
        }
        child.wait_with_output().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            // Its server sees the `serve` process end and stops.
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn count(v: &Value, what: &str) -> u64 {
    v["retvals"][what].as_u64().unwrap_or(0)
}

#[test]
fn serve_is_controlled_through_its_socket() {
    let s = Server::start("e2e", &["--loop", "--threads", "2"]);
    s.wait_until("packets pass", || count(&s.stats(), "XDP_PASS") > 0);
    let v = s.stats();
    assert_eq!(
        (v["program"].as_str(), v["threads"].as_u64(), v["loop"].as_bool()),
        (Some("keyed_xdp"), Some(2), Some(true))
    );
    assert_eq!(count(&v, "XDP_DROP"), 0, "{v}");
    assert_eq!(v["keys"]["drop_all"], "off");
    assert!(v["runs"].as_u64().unwrap() > 0 && v["running"] == 2, "{v}");

    // Flip drop_all on: drops start.
    let o = bpfkit(&["key", "set", "drop_all", "on", "--control", s.sock()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "ok\n");
    s.wait_until("packets are dropped", || count(&s.stats(), "XDP_DROP") > 0);
    let o = bpfkit(&["key", "list", "--control", s.sock(), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let keys: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let drop_all = keys.as_array().unwrap().iter().find(|k| k["name"] == "drop_all").unwrap();
    assert_eq!((drop_all["state"].as_str(), drop_all["sites"].as_u64()), (Some("on"), Some(1)));

    // While it is on, no packet passes; off again, they pass again and drops stop. (A worker
    // counts a run after it returns: at most one run per worker from before a flip may be
    // counted after it.)
    let a = s.stats();
    s.wait_until("more packets are dropped", || count(&s.stats(), "XDP_DROP") > count(&a, "XDP_DROP") + 1000);
    let b = s.stats();
    assert!(count(&b, "XDP_PASS") - count(&a, "XDP_PASS") <= 2, "nothing passes while drop_all is on: {a} {b}");
    let o = bpfkit(&["key", "set", "drop_all", "off", "--control", s.sock()]);
    assert!(o.status.success(), "{}", stderr(&o));
    s.wait_until("packets pass again", || count(&s.stats(), "XDP_PASS") > count(&b, "XDP_PASS"));
    let c = s.stats();
    s.wait_until("more packets pass", || count(&s.stats(), "XDP_PASS") > count(&c, "XDP_PASS") + 1000);
    let d = s.stats();
    assert!(count(&d, "XDP_DROP") - count(&c, "XDP_DROP") <= 2, "no drops once drop_all is off: {c} {d}");

    // Errors: non-zero exit with the server's message.
    let o = bpfkit(&["key", "set", "nope", "on", "--control", s.sock()]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("no static key `nope` (the object's keys: count_packets, drop_all)"), "{}", stderr(&o));
    let o = bpfkit(&["control", s.sock(), "frobnicate"]);
    assert!(!o.status.success() && stderr(&o).contains("unknown request"), "{}", stderr(&o));

    // stop: the server answers, ends cleanly and removes its socket.
    let o = bpfkit(&["control", s.sock(), "stop"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "ok\n");
    let socket = s.socket.clone();
    let out = s.finish();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!socket.exists(), "the socket is removed");
    let text = stdout(&out);
    assert!(text.contains("stopped (stop request)") && text.contains("XDP_DROP"), "{text}");
    // No server: a clear error.
    let o = bpfkit(&["stats", "--control", socket.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("no control socket at"), "{}", stderr(&o));
}

#[test]
fn serve_stops_cleanly_when_its_process_is_terminated() {
    // Once (no --loop): the pass ends, the server keeps answering; a `--key` set at start.
    let s = Server::start("term", &["--key", "drop_all=on", "--consistent"]);
    s.wait_until("the pass ends", || s.stats()["running"] == 0);
    let v = s.stats();
    assert_eq!((count(&v, "XDP_DROP"), count(&v, "EINVAL"), v["runs"].as_u64()), (993, 7, Some(1000)), "{v}");
    assert_eq!(v["consistent"], true);
    // SIGTERM (as SIGINT would: the server sees the `serve` process end).
    let pid = s.child.as_ref().unwrap().id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let socket = s.socket.clone();
    s.wait_until("the socket is removed", || !socket.exists());
    let out = s.finish();
    assert!(!out.status.success(), "the serve process was terminated");
}
