//! Cache costs and quality.
//!
//! - `cache/get_hit/shards=N`, `cache/put/shards=N`: one thread, ns per operation.
//! - `cache/get_hit_2threads/shards=N`: two threads hitting the same cache at once,
//!   ns per operation per thread (what the shard locks cost under contention).
//! - Hit ratios of SIEVE (ours) and plain LRU on zipf(0.9, 1.0, 1.1) traces with the
//!   cache at 1% and 10% of the distinct keys, printed as a table before the timings
//!   (deterministic: fixed seed).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use turnpike::cache::{Cache, Found, ENTRY_OVERHEAD};

const BODY: usize = 512;

fn filled(shards: usize, n: u64) -> (Arc<Cache>, Vec<(u64, Vec<u8>)>) {
    let c = Arc::new(Cache::with_shards(64 << 20, 1 << 20, shards));
    let keys: Vec<(u64, Vec<u8>)> = (0..n)
        .map(|i| {
            let k = format!("tag-GET-/users/{i}?fields=name").into_bytes();
            (c.hash(&k), k)
        })
        .collect();
    for (h, k) in &keys {
        c.refill(*h, k).store(
            1,
            200,
            Bytes::from_static(b"content-type: application/json\r\n"),
            Bytes::from(vec![b'x'; BODY]),
            Duration::from_secs(3600),
        );
    }
    (c, keys)
}

fn timings(c: &mut Criterion) {
    for shards in [1usize, 4, 16] {
        let (cache, keys) = filled(shards, 10_000);
        let mut i = 0usize;
        c.bench_function(&format!("cache/get_hit/shards={shards}"), |b| {
            b.iter(|| {
                i = (i + 7919) % keys.len();
                let (h, k) = &keys[i];
                black_box(matches!(cache.get(*h, k), Found::Fresh(_)))
            })
        });
        let mut j = 0u64;
        let body = Bytes::from(vec![b'x'; BODY]);
        c.bench_function(&format!("cache/put/shards={shards}"), |b| {
            b.iter(|| {
                j += 1;
                let k = format!("tag-GET-/new/{j}").into_bytes();
                let h = cache.hash(&k);
                cache.refill(h, &k).store(
                    1,
                    200,
                    Bytes::new(),
                    body.clone(),
                    Duration::from_secs(60),
                )
            })
        });
        let keys = Arc::new(keys);
        c.bench_function(&format!("cache/get_hit_2threads/shards={shards}"), |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                let threads: Vec<_> = (0..2)
                    .map(|t| {
                        let (cache, keys) = (cache.clone(), keys.clone());
                        std::thread::spawn(move || {
                            let mut i = t * 5003;
                            for _ in 0..iters {
                                i = (i + 7919) % keys.len();
                                let (h, k) = &keys[i];
                                black_box(matches!(cache.get(*h, k), Found::Fresh(_)));
                            }
                        })
                    })
                    .collect();
                for t in threads {
                    let _ = t.join();
                }
                start.elapsed()
            })
        });
    }
}

/// A zipf(s) sampler over `n` items (inverse CDF), with a fixed-seed xorshift.
struct Zipf {
    cdf: Vec<f64>,
    state: u64,
}

impl Zipf {
    fn new(n: usize, s: f64, seed: u64) -> Zipf {
        let mut cdf = Vec::with_capacity(n);
        let mut sum = 0.0;
        for k in 1..=n {
            sum += 1.0 / (k as f64).powf(s);
            cdf.push(sum);
        }
        for x in &mut cdf {
            *x /= sum;
        }
        Zipf { cdf, state: seed }
    }

    fn next(&mut self) -> u64 {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        let u = (self.state >> 11) as f64 / (1u64 << 53) as f64;
        // scatter ranks so popularity is not correlated with key order
        let rank = self.cdf.partition_point(|&c| c < u) as u64;
        rank.wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }
}

/// Plain LRU of `cap` items (the reference the issue asks to beat).
struct Lru {
    cap: usize,
    tick: u64,
    last: HashMap<u64, u64>,
    order: std::collections::BTreeMap<u64, u64>,
}

impl Lru {
    fn access(&mut self, k: u64) -> bool {
        self.tick += 1;
        let hit = if let Some(t) = self.last.get(&k).copied() {
            self.order.remove(&t);
            true
        } else {
            if self.last.len() == self.cap {
                if let Some((&t, &old)) = self.order.iter().next() {
                    self.order.remove(&t);
                    self.last.remove(&old);
                }
            }
            false
        };
        self.last.insert(k, self.tick);
        self.order.insert(self.tick, k);
        hit
    }
}

fn hit_ratios(_: &mut Criterion) {
    const ITEMS: usize = 100_000;
    const REQUESTS: usize = 1_000_000;
    println!(
        "\nhit ratio, {ITEMS} keys, {REQUESTS} requests (SIEVE = turnpike's cache, one shard)"
    );
    println!("| zipf s | cache size | SIEVE | LRU | SIEVE - LRU |\n|---|---|---:|---:|---:|");
    for s in [0.9, 1.0, 1.1] {
        for pct in [1usize, 10] {
            let cap = ITEMS * pct / 100;
            // every entry is an 8-byte key, no headers or body, plus the overhead
            let size = 8 + ENTRY_OVERHEAD;
            let cache = Arc::new(Cache::with_shards(cap * size, size, 1));
            let mut lru = Lru {
                cap,
                tick: 0,
                last: HashMap::new(),
                order: Default::default(),
            };
            let mut z = Zipf::new(ITEMS, s, 0x2545_F491_4F6C_DD1D);
            let (mut sieve_hits, mut lru_hits) = (0usize, 0usize);
            for _ in 0..REQUESTS {
                let k = z.next();
                let key = k.to_le_bytes();
                let h = cache.hash(&key);
                match cache.get(h, &key) {
                    Found::Fresh(_) => sieve_hits += 1,
                    _ => {
                        cache.refill(h, &key).store(
                            0,
                            200,
                            Bytes::new(),
                            Bytes::new(),
                            Duration::from_secs(3600),
                        );
                    }
                }
                lru_hits += lru.access(k) as usize;
            }
            let (a, b) = (
                sieve_hits as f64 / REQUESTS as f64,
                lru_hits as f64 / REQUESTS as f64,
            );
            println!(
                "| {s} | {pct}% | {:.1}% | {:.1}% | {:+.1} pt |",
                a * 100.0,
                b * 100.0,
                (a - b) * 100.0
            );
        }
    }
    println!();
}

criterion_group!(benches, hit_ratios, timings);
criterion_main!(benches);
