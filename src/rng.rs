//! A tiny deterministic PRNG (xorshift64*): retry jitter, seeded fault injection and the
//! planner's property tests repeat from a seed without pulling in `rand`.

#[derive(Clone, Debug)]
pub struct Xorshift(u64);

impl Xorshift {
    pub fn new(seed: u64) -> Self {
        Xorshift(seed.max(1))
    }

    /// Seeded from the clock: for jitter, where repeatability does not matter.
    pub fn from_time() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        Xorshift::new(nanos ^ u64::from(std::process::id()).rotate_left(32))
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [0, n); 0 when n is 0.
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }
}

/// Inputs for fuzz-style property tests of the decoders of servers' answers and of webhook
/// payloads: the valid seeds, then mutations of them, random JSON built from their keys (to
/// reach the deep paths), and random bytes. Seeded, so a failure repeats.
#[cfg(test)]
pub mod fuzz {
    use super::Xorshift;

    /// Values servers have been seen to send, or could: wrong types, huge numbers, absurd
    /// dates, escapes, deep nesting.
    const TOKENS: &[&str] = &[
        "null",
        "true",
        "0",
        "-1",
        "1e999",
        "-0.0",
        "18446744073709551616",
        "99999999999999999999999999",
        "\"\"",
        "\"\\u0000\\u001b[2J\"",
        "\"\\ud800\"",
        "\"9999-12-31T23:59:59.999+9999\"",
        "\"0000-00-00T00:00:00.000+0000\"",
        "\"2024-02-30T25:61:61.000+2500\"",
        "\"\u{202e}\u{200b}é🦀\"",
        "[]",
        "{}",
        "[[[[[[[[",
        "{\"a\":",
        ",",
        ":",
        "\"",
        "]",
        "}",
    ];

    /// Feed `decode` `n` inputs grown from `seeds`: a panic fails the test, naming the input
    /// (as text, shortened) and the seed to repeat it with.
    pub fn check(name: &str, seeds: &[&[u8]], n: usize, decode: impl Fn(&[u8])) {
        let seed = 0x5eed ^ name.len() as u64;
        for (i, input) in inputs(seeds, n, seed).into_iter().enumerate() {
            let run = std::panic::AssertUnwindSafe(|| decode(&input));
            if std::panic::catch_unwind(run).is_err() {
                let shown = String::from_utf8_lossy(&input[..input.len().min(500)]).into_owned();
                panic!("{name}: input {i} (seed {seed:#x}) panicked: {shown:?}");
            }
        }
    }

    pub fn inputs(seeds: &[&[u8]], n: usize, seed: u64) -> Vec<Vec<u8>> {
        let mut rng = Xorshift::new(seed);
        let keys = keys_of(seeds);
        let mut out: Vec<Vec<u8>> = seeds.iter().map(|s| s.to_vec()).collect();
        while out.len() < n {
            let input = match rng.below(4) {
                0 | 1 if !seeds.is_empty() => {
                    let base = seeds[rng.below(seeds.len() as u64) as usize];
                    mutate(base, &mut rng)
                }
                2 => random_json(&keys, &mut rng, 0).to_string().into_bytes(),
                _ => (0..rng.below(300)).map(|_| rng.next_u64() as u8).collect(),
            };
            out.push(input);
        }
        out
    }

    /// Every object key in the seeds.
    fn keys_of(seeds: &[&[u8]]) -> Vec<String> {
        fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
            match v {
                serde_json::Value::Object(map) => {
                    for (k, v) in map {
                        out.push(k.clone());
                        walk(v, out);
                    }
                }
                serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
                _ => {}
            }
        }
        let mut keys = Vec::new();
        for s in seeds {
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(s) {
                walk(&v, &mut keys);
            }
        }
        keys.sort();
        keys.dedup();
        keys
    }

    /// A few byte-level and token-level edits of `base`.
    fn mutate(base: &[u8], rng: &mut Xorshift) -> Vec<u8> {
        let mut b = base.to_vec();
        for _ in 0..=rng.below(4) {
            let at = rng.below(b.len() as u64 + 1) as usize;
            match rng.below(5) {
                0 if !b.is_empty() => {
                    let i = at.min(b.len() - 1);
                    b[i] = rng.next_u64() as u8;
                }
                1 => {
                    let t = TOKENS[rng.below(TOKENS.len() as u64) as usize];
                    b.splice(at..at, t.bytes());
                }
                2 => b.truncate(at),
                3 => {
                    let end = (at + rng.below(40) as usize).min(b.len());
                    let t = TOKENS[rng.below(TOKENS.len() as u64) as usize];
                    b.splice(at..end, t.bytes());
                }
                _ => {
                    let end = (at + rng.below(200) as usize).min(b.len());
                    let copy = b[at..end].to_vec();
                    b.splice(at..at, copy);
                }
            }
        }
        b
    }

    /// A random JSON value whose objects use the seeds' keys.
    fn random_json(keys: &[String], rng: &mut Xorshift, depth: u32) -> serde_json::Value {
        use serde_json::{json, Value};
        let pick = rng.below(if depth > 5 { 6 } else { 9 });
        match pick {
            0 => Value::Null,
            1 => json!(rng.below(2) == 1),
            2 => json!(rng.next_u64() as i64 >> rng.below(64)),
            3 => json!(rng.next_f64() * 1e12 - 5e11),
            4 | 5 => {
                let t = TOKENS[rng.below(TOKENS.len() as u64) as usize];
                serde_json::from_str(t).unwrap_or_else(|_| json!(t))
            }
            6 => Value::Array(
                (0..rng.below(5))
                    .map(|_| random_json(keys, rng, depth + 1))
                    .collect(),
            ),
            _ if keys.is_empty() => Value::Null,
            _ => Value::Object(
                (0..rng.below(7))
                    .map(|_| {
                        let k = keys[rng.below(keys.len() as u64) as usize].clone();
                        (k, random_json(keys, rng, depth + 1))
                    })
                    .collect(),
            ),
        }
    }
}
