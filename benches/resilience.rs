//! The per-request costs the hardening work added: a pooled connection counted in and
//! out of its target's gate (every proxied request on a warm pool), a connect slot
//! taken and given back (every new connection), and request buffering's decode of a
//! chunked body into one buffer (64 KiB in 8 KiB chunks).

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use turnpike::proto::h1::ChunkedDecoder;
use turnpike::upstream::gate::Gates;

fn gate(c: &mut Criterion) {
    let gates = Gates::default();
    let key = ("127.0.0.1:9000".parse().unwrap(), 0);
    let g = gates.gate(key);
    c.bench_function("gate/pooled_acquire_release", |b| {
        b.iter(|| {
            g.acquire();
            black_box(&g).release();
        })
    });
    c.bench_function("gate/connect_slot", |b| {
        b.iter(|| {
            let slot = gates.try_connect(black_box(key), 8, false).unwrap();
            drop(slot);
        })
    });
}

fn buffering(c: &mut Criterion) {
    let piece = vec![b'x'; 8192];
    let mut body = Vec::new();
    for _ in 0..8 {
        body.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        body.extend_from_slice(&piece);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"0\r\n\r\n");
    let mut out = Vec::with_capacity(64 << 10);
    let mut group = c.benchmark_group("buffering");
    group.throughput(Throughput::Bytes(64 << 10));
    group.bench_function("chunked_64k_decode_whole", |b| {
        b.iter(|| {
            out.clear();
            let mut d = ChunkedDecoder::default();
            let used = d.decode(black_box(&body), &mut out).unwrap();
            assert!(d.is_done());
            black_box((used, out.len()))
        })
    });
    group.finish();
}

criterion_group!(benches, gate, buffering);
criterion_main!(benches);
