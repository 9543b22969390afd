//! Jump tables and `gotox` from clang-built objects (tests/bpf/gotox.bpf.c): the catalogue
//! runs of `tests/data/gotox.cases` and switches of 4 to 256 cases, each in the interpreter
//! and in the JIT, plus the instruction arrays the loader makes of the tables.

use bpfkit::{Backend, Object, Runtime, Trust, Worker};
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn load() -> Object {
    Runtime::new().open(root().join("tests/bpf/gotox.bpf.o")).expect("gotox.bpf.o loads")
}

fn backends() -> Vec<Backend> {
    let mut b = vec![Backend::Interp];
    if bpfkit_jit::available().is_ok() {
        b.push(Backend::Jit);
    } else {
        eprintln!("SKIPPED: the JIT is not available on this machine; interpreter only");
    }
    b
}

fn ret_user(obj: &Object) -> u64 {
    let v = obj.map(".bss").unwrap().lookup(&0u32.to_le_bytes()).unwrap();
    // `.bss` holds some_var at 0, ret_user at 8 (llvm-readelf -s tests/bpf/gotox.bpf.o).
    u64::from_le_bytes(v[8..16].try_into().unwrap())
}

fn run(obj: &Object, backend: Backend, prog: &str, ctx: &mut [u8]) -> u64 {
    let p = obj.program(prog).unwrap();
    let mut w = Worker::new(obj.runtime(), 0);
    w.set_backend(backend);
    p.run_raw(&mut w, ctx).unwrap_or_else(|e| panic!("{prog} ({backend:?}): {e}"))
}

fn list(s: &str) -> Vec<u64> {
    s.split(',').map(|v| v.trim().parse().unwrap_or_else(|_| panic!("bad number `{v}`"))).collect()
}

#[test]
fn catalogue_cases() {
    let text = std::fs::read_to_string(root().join("crates/bpfkit/tests/data/gotox.cases")).unwrap();
    let obj = load();
    obj.jit(Trust::CallerVouches).unwrap();
    let mut checked = 0;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        let at = format!("gotox.cases:{}", n + 1);
        match words.as_slice() {
            [prog, tables] if tables.starts_with("tables=") => {
                let want: usize = tables["tables=".len()..].parse().unwrap();
                let maps = obj.program(prog).unwrap().insn_arrays();
                assert_eq!(maps.len(), want, "{at}: {prog} owns {} instruction arrays", maps.len());
                for m in maps {
                    assert_eq!(m.map_type(), bpfkit_maps::MapType::InsnArray);
                    assert!(m.is_frozen(), "{at}: a jump table map is frozen");
                }
            }
            [prog, input, "->", output] => {
                let xs = list(input.strip_prefix("x=").unwrap_or_else(|| panic!("{at}: input must be x=...")));
                let want = list(output);
                assert_eq!(xs.len(), want.len(), "{at}: as many outputs as inputs");
                for backend in backends() {
                    for (x, w) in xs.iter().zip(&want) {
                        run(&obj, backend, prog, &mut x.to_le_bytes());
                        assert_eq!(ret_user(&obj), *w, "{at}: {prog}({x}) in {backend:?}");
                    }
                }
            }
            _ => panic!("{at}: cannot read `{line}`"),
        }
        checked += 1;
    }
    assert!(checked >= 18, "only {checked} cases read");
}

/// `OP(k, v)` of gotox.bpf.c: what case `k` of a sized switch computes.
fn op(k: u64, v: u64) -> u64 {
    match k % 4 {
        0 => v.wrapping_mul(k + 3),
        1 => v ^ k.wrapping_mul(0x1234567),
        2 => (v << (k % 13)).wrapping_add(k),
        _ => (v >> (k % 7)).wrapping_sub(k * 3),
    }
}

#[test]
fn switches_of_4_to_256_cases() {
    let obj = load();
    obj.jit(Trust::CallerVouches).unwrap();
    for n in [4u64, 8, 16, 32, 64, 128, 256] {
        let name = format!("switch_{n}");
        let p = obj.program(&name).unwrap();
        // One table of exactly n entries, each designating an instruction of the program.
        let maps = p.insn_arrays();
        assert_eq!(maps.len(), 1, "{name}");
        let entries = maps[0].insn_array_entries().unwrap();
        assert_eq!(entries.len() as u64, n, "{name}: table size");
        for [orig, xlated, _] in &entries {
            assert!((*orig as usize) < p.insns().len() && orig == xlated, "{name}: entry {orig}");
        }
        for backend in backends() {
            for sel in (0..n).chain([n, n + 1, 1000, u64::MAX]) {
                let v = 0x0123_4567_89ab_cdefu64 ^ sel.wrapping_mul(0x9e37_79b9);
                let mut ctx = [0u8; 16];
                ctx[..8].copy_from_slice(&sel.to_le_bytes());
                ctx[8..].copy_from_slice(&v.to_le_bytes());
                let want = if sel < n { op(sel, v) } else { 0xdead };
                let r0 = run(&obj, backend, &name, &mut ctx);
                assert_eq!(ret_user(&obj), want, "{name}({sel}) in {backend:?}");
                // An `int` return: only the low 32 bits of r0 are defined.
                assert_eq!(r0 as u32, want as u32, "{name}({sel}) r0 in {backend:?}");
            }
        }
    }
}

#[test]
fn jump_table_offsets_follow_the_code() {
    let obj = load();
    let p = obj.program("one_switch").unwrap();
    let before: Vec<[u32; 3]> = p.insn_arrays()[0].insn_array_entries().unwrap();
    // Interpreted: jitted_off is xlated_off * 8 (bpfkit-decisions D6).
    for [orig, xlated, jitted] in &before {
        assert_eq!((orig, *jitted), (xlated, xlated * 8));
    }
    if bpfkit_jit::available().is_err() {
        eprintln!("SKIPPED: JIT offsets (no JIT on this machine)");
        return;
    }
    p.jit(Trust::CallerVouches).unwrap();
    let after = p.insn_arrays()[0].insn_array_entries().unwrap();
    let c = p.compile_native().unwrap();
    for ([o1, x1, _], [o2, x2, j2]) in before.iter().zip(&after) {
        assert_eq!((o1, x1), (o2, x2));
        // Relative to the instruction's own function, as the kernel reports it.
        let func = c.functions.iter().rev().find(|(pc, _)| *pc <= *x2 as usize).unwrap().1 as u32;
        assert_eq!(*j2, c.insn_offsets[*x2 as usize] - func, "jitted_off of insn {x2}");
    }
}

/// A minimal ELF64 editor for building malformed objects from a good one.
mod elf {
    fn u16_at(d: &[u8], o: usize) -> usize {
        u16::from_le_bytes(d[o..o + 2].try_into().unwrap()) as usize
    }
    fn u32_at(d: &[u8], o: usize) -> usize {
        u32::from_le_bytes(d[o..o + 4].try_into().unwrap()) as usize
    }
    fn u64_at(d: &[u8], o: usize) -> usize {
        u64::from_le_bytes(d[o..o + 8].try_into().unwrap()) as usize
    }
    fn cstr(d: &[u8], o: usize) -> &str {
        let end = d[o..].iter().position(|&b| b == 0).unwrap();
        std::str::from_utf8(&d[o..o + end]).unwrap()
    }
    /// (offset in the file, size) of each section header, with its name.
    fn sections(d: &[u8]) -> Vec<(String, usize, usize, usize, usize)> {
        let (shoff, shnum, shstrndx) = (u64_at(d, 0x28), u16_at(d, 0x3c), u16_at(d, 0x3e));
        let hdr = |i: usize| shoff + 64 * i;
        let strtab = u64_at(d, hdr(shstrndx) + 24);
        (0..shnum)
            .map(|i| {
                let h = hdr(i);
                (
                    cstr(d, strtab + u32_at(d, h)).to_string(),
                    u32_at(d, h + 4),
                    u64_at(d, h + 24),
                    u64_at(d, h + 32),
                    u32_at(d, h + 40),
                )
            })
            .collect()
    }
    /// The file offset of symbol `name`'s entry.
    pub fn symbol(d: &[u8], name: &str) -> usize {
        let secs = sections(d);
        let (_, _, off, size, link) = secs.iter().find(|s| s.1 == 2).cloned().expect("a symbol table");
        let strtab = secs[link].2;
        (off..off + size).step_by(24).find(|&e| cstr(d, strtab + u32_at(d, e)) == name).expect("symbol")
    }
    /// The file offset and size of section `name`'s data.
    pub fn section(d: &[u8], name: &str) -> (usize, usize) {
        let s = sections(d).into_iter().find(|s| s.0 == name).expect("section");
        (s.2, s.3)
    }
    pub fn put_u64(d: &mut [u8], at: usize, v: u64) {
        d[at..at + 8].copy_from_slice(&v.to_le_bytes());
    }
}

/// Malformed tables are refused with a message naming the table and the instruction that
/// loads it (libbpf's wording where libbpf has one).
#[test]
fn malformed_jump_tables_are_refused() {
    let good = std::fs::read(root().join("tests/bpf/gotox.bpf.o")).unwrap();
    // BPF.JT.0.0 is one_switch's table: 6 entries at the start of .jumptables, loaded by insn 5.
    let sym = elf::symbol(&good, "BPF.JT.0.0");
    let (jt_off, jt_size) = elf::section(&good, ".jumptables");
    let first_entry = u64::from_le_bytes(good[jt_off..jt_off + 8].try_into().unwrap());
    type Edit = Box<dyn Fn(&mut Vec<u8>)>;
    let cases: Vec<(&str, Edit, String)> = vec![
        (
            "misaligned start",
            Box::new(move |d| elf::put_u64(d, sym + 8, 3)),
            "jumptable start 3 should be multiple of 8".into(),
        ),
        (
            "size not a multiple of 8",
            Box::new(move |d| elf::put_u64(d, sym + 16, 20)),
            "jumptable size 20 should be multiple of 8".into(),
        ),
        (
            "out of the section",
            Box::new(move |d| elf::put_u64(d, sym + 8, jt_size as u64 - 8)),
            format!("jumptables_data size is {jt_size}, trying to access {}", jt_size + 40),
        ),
        (
            "entry not instruction-aligned",
            Box::new(move |d| elf::put_u64(d, jt_off, first_entry + 3)),
            format!("jump table value {:#x} at offset 0 is not instruction-aligned", first_entry + 3),
        ),
        (
            "entry before the section",
            Box::new(move |d| elf::put_u64(d, jt_off, u64::MAX - 7)),
            "invalid jump table value 0xfffffffffffffff8 at offset 0".into(),
        ),
        ("entry past the program", Box::new(move |d| elf::put_u64(d, jt_off, 8 * 10_000)), "orig_off".into()),
    ];
    for (what, edit, want) in cases {
        let mut d = good.clone();
        edit(&mut d);
        let e = Runtime::new().load(&d).map(|_| ()).expect_err(what).to_string();
        eprintln!("{what}: {e}");
        assert!(e.contains(&want), "{what}: `{e}` lacks `{want}`");
        assert!(e.contains("BPF.JT.0.0") && e.contains("insn 5"), "{what}: `{e}` names the table and the insn");
    }
}
