//! Runs the fuzz target bodies of `bpfkit_testing::fuzz` over a few thousand deterministic
//! pseudo-random inputs each, so that `cargo test` catches what the fuzzers would find first.
//! The real fuzzing is the cargo-fuzz project in `fuzz/` (see `fuzz/README.md`).

use arbitrary::Unstructured;
use bpfkit_isa::{RawInsn, disassemble, listing, slots_to_bytes};
use bpfkit_testing::conformance::{corpus_dir, load_corpus};
use bpfkit_testing::fuzz;

/// xorshift64*: small, deterministic, good enough to make test inputs.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n` (n > 0), give or take a negligible bias.
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }

    /// Random bytes of a random length below `max`.
    fn input(&mut self, max: usize) -> Vec<u8> {
        let len = self.below(max);
        self.bytes(len)
    }
}

/// Flips, overwrites, inserts or deletes a few bytes.
fn mutate_bytes(rng: &mut Rng, data: &mut Vec<u8>, tokens: &[&str]) {
    for _ in 0..=rng.below(3) {
        let at = rng.below(data.len() + 1);
        match rng.below(6) {
            0 if at < data.len() => data[at] ^= 1 << rng.below(8),
            1 if at < data.len() => data[at] = rng.next() as u8,
            2 if at < data.len() => {
                let end = (at + 1 + rng.below(8)).min(data.len());
                data.drain(at..end);
            }
            3 if !tokens.is_empty() => {
                let token = tokens[rng.below(tokens.len())];
                data.splice(at..at, token.bytes());
            }
            4 => data.truncate(at),
            _ => data.insert(at, rng.next() as u8),
        }
    }
}

/// Bytes of a program the decoder accepts, made from random bytes.
fn decodable(rng: &mut Rng) -> Vec<RawInsn> {
    let raw = rng.input(512);
    let mut u = Unstructured::new(&raw);
    fuzz::arbitrary_decodable(&mut u).expect("arbitrary_decodable")
}

/// A program from the interp target's generator.
fn generated(rng: &mut Rng) -> Vec<RawInsn> {
    let raw = rng.input(512);
    let mut u = Unstructured::new(&raw);
    fuzz::arbitrary_program(&mut u).expect("arbitrary_program")
}

#[test]
fn decode_smoke() {
    let mut rng = Rng::new(1);
    const N: usize = 2000;
    let mut accepted = 0;
    for i in 0..N {
        let data = match i % 4 {
            // Raw bytes: mostly refused, at the first slot or at a partial slot.
            0 => rng.input(64),
            // Valid encodings of every kind of instruction.
            1 => slots_to_bytes(&decodable(&mut rng)),
            2 => slots_to_bytes(&generated(&mut rng)),
            // ... with a few bytes changed.
            _ => {
                let mut data = slots_to_bytes(&decodable(&mut rng));
                mutate_bytes(&mut rng, &mut data, &[]);
                data
            }
        };
        if data.len() % 8 == 0 && bpfkit_isa::decode_program(&bpfkit_isa::slots_from_bytes(&data).unwrap()).is_ok() {
            accepted += 1;
        }
        fuzz::decode(&data);
    }
    assert!(accepted > N / 3, "only {accepted} of {N} inputs decode: the generators are off");
}

/// Words the assembler knows, for mutating assembly text.
#[rustfmt::skip]
const ASM_TOKENS: &[&str] = &[
    " ", "\n", "\t", "r", "w", "r10", "r11", "0x", "-", "+", "=", " = ", ",", "#", ";", "//", ":",
    "*(", "u8 *)", "u64 *)", "(r1 + 0x8)", "(r10 - 0x8)", " ll", "goto ", "gotol ", "if ", " s> ", " & ",
    "call ", "call pc", "callx ", "exit", "lock ", "atomic_fetch_", "xchg_64(", "cmpxchg32_32(",
    "load_acquire(", "store_release(", "bswap", "be16 ", "le64 ", "may_goto ", "goto_or_nop ",
    "ld_pseudo\t", "skb[", "mov32 ", "add ", "%r1", "+0x7fff", "-0x8000", "0xffffffffffffffff",
];

#[test]
fn assemble_smoke() {
    let mut rng = Rng::new(2);
    let corpus: Vec<String> =
        load_corpus(&corpus_dir()).map(|cases| cases.into_iter().map(|c| c.asm).collect()).unwrap_or_default();
    const N: usize = 2000;
    let mut accepted = 0;
    for i in 0..N {
        let mut text = match i % 5 {
            0 => rng.input(64),
            1 => listing(&decodable(&mut rng)).expect("decodable").into_bytes(),
            // (Generated programs are sometimes broken on purpose, and then not decodable.)
            2 => disassemble(&generated(&mut rng)).unwrap_or_default().into_bytes(),
            3 if !corpus.is_empty() => corpus[rng.below(corpus.len())].clone().into_bytes(),
            _ => listing(&generated(&mut rng)).unwrap_or_default().into_bytes(),
        };
        // Most inputs are changed a little; the rest go in as they are.
        if i % 3 != 0 {
            mutate_bytes(&mut rng, &mut text, ASM_TOKENS);
        }
        fuzz::assemble(&text);
        accepted += usize::from(bpfkit_isa::assemble(&String::from_utf8_lossy(&text)).is_ok());
    }
    assert!(accepted > N / 4, "only {accepted} of {N} texts assemble: the inputs are off");
}

#[test]
fn interp_smoke() {
    const N: usize = 1500;
    let mut rng = Rng::new(3);
    let (mut rejected, mut ok, mut failed) = (0, 0, 0);
    for i in 0..N {
        // Mostly long enough for a program and some memory; sometimes short.
        let len = if i % 10 == 0 { rng.below(64) } else { 256 + rng.below(2048) };
        let data = rng.bytes(len);
        match fuzz::interp_outcome(&data) {
            None => rejected += 1,
            Some(Ok(_)) => ok += 1,
            Some(Err(_)) => failed += 1,
        }
    }
    fuzz::interp(&[]);
    eprintln!("interp: {ok} programs returned, {failed} failed at run time, {rejected} did not load");
    // The generator makes mostly valid programs, of which many run to the end and many fail.
    assert!(rejected < N / 10, "{rejected} of {N} generated programs do not load");
    assert!(ok > N / 5, "only {ok} of {N} generated programs return");
    assert!(failed > N / 5, "only {failed} of {N} generated programs fail at run time");
}
