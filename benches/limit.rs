//! Throttle costs: the local admit path (no shared memory), a lease refill from the
//! node budget, and identifying a key (SHA-256 + lookup among 100,000 keys).

use std::time::Instant;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use turnpike::limit::keys::sha256;
use turnpike::limit::local::lease_size;
use turnpike::limit::{ApiKeys, Budget, Local};

fn bench(c: &mut Criterion) {
    // A budget so large the local bucket refills rarely: the common path.
    let big = Budget::new(1e9, 1 << 30, Instant::now());
    let lease = lease_size(&big, 2);
    let mut local = Local::default();
    let now = big.now_ns();
    c.bench_function("throttle/local_admit", |b| {
        b.iter(|| black_box(local.admit(black_box(&big), lease, now)))
    });

    // lease = 1: every admit takes from the node budget (atomics, refill arithmetic)
    let budget = Budget::new(1e9, 1 << 30, Instant::now());
    let mut local = Local::default();
    c.bench_function("throttle/lease_refill", |b| {
        b.iter(|| black_box(local.admit(black_box(&budget), 1, budget.now_ns())))
    });

    let mut keys = ApiKeys::default();
    for i in 0..100_000u32 {
        keys.insert(sha256(format!("key-{i:026}-0123").as_bytes()), i);
    }
    let present = format!("key-{:026}-0123", 77_777);
    c.bench_function("throttle/cold_key_lookup_100k", |b| {
        b.iter(|| black_box(keys.find(black_box(present.as_bytes()))))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
