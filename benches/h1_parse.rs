//! Parsing request heads: a minimal GET and a typical browser/API-client head.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use turnpike::proto::h1::{parse_request, RequestHead};

const SMALL: &[u8] = b"GET /v1/users/42 HTTP/1.1\r\nHost: api.example.com\r\n\r\n";
const TYPICAL: &[u8] = b"GET /v1/users/42?fields=name,email HTTP/1.1\r\nHost: api.example.com\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36\r\nAccept: application/json, text/plain, */*\r\nAccept-Language: en-US,en;q=0.9\r\nAccept-Encoding: gzip, deflate, br\r\nx-api-key: 0123456789abcdef0123456789abcdef\r\nX-Request-Id: 9a1c2f3e-4b5d-4e6f-8a7b-0c1d2e3f4a5b\r\nCookie: session=abcdef0123456789; theme=dark\r\nConnection: keep-alive\r\n\r\n";

fn bench(c: &mut Criterion) {
    let mut head = RequestHead::default();
    for (name, raw) in [("small", SMALL), ("typical", TYPICAL)] {
        let mut g = c.benchmark_group("h1_parse");
        g.throughput(Throughput::Bytes(raw.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| black_box(parse_request(black_box(raw), 32 << 10, &mut head)))
        });
        // baseline: httparse alone, to show what our framing checks add
        g.bench_function(format!("{name}_httparse_only"), |b| {
            b.iter(|| {
                let mut hs =
                    [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; 100];
                let mut req = httparse::Request::new(&mut []);
                black_box(
                    req.parse_with_uninit_headers(black_box(raw), &mut hs)
                        .is_ok(),
                )
            })
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
