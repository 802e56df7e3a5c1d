//! Route lookup at 10 and 10,000 routes (static, parameter and greedy shapes).

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use turnpike::plan::route_key::{parse, RouteKey};
use turnpike::plan::router::Trie;
use turnpike::plan::{Lookup, Method};

fn build(n: usize) -> Trie {
    let mut t = Trie::default();
    for i in 0..n {
        let key = match i % 4 {
            0 => format!("GET /svc{i}/items"),
            1 => format!("GET /svc{i}/items/{{id}}"),
            2 => format!("POST /svc{i}/items/{{id}}/orders"),
            _ => format!("ANY /svc{i}/files/{{path+}}"),
        };
        let RouteKey::Path { method, segments } = parse(&key).unwrap() else {
            unreachable!()
        };
        t.insert(&["v1"], method, &segments, i as u32).unwrap();
    }
    t
}

fn bench(c: &mut Criterion) {
    for n in [10usize, 10_000] {
        let t = build(n);
        // the last route of each shape (i % 4 == shape) below n
        let last = |shape: usize| (0..n).rev().find(|i| i % 4 == shape).unwrap();
        let paths = [
            (format!("/v1/svc{}/items", last(0)), Method::Get, "static"),
            (
                format!("/v1/svc{}/items/12345", last(1)),
                Method::Get,
                "param",
            ),
            (
                format!("/v1/svc{}/files/a/b/c.txt", last(3)),
                Method::Put,
                "greedy",
            ),
        ];
        for (path, m, shape) in &paths {
            assert!(
                matches!(t.lookup(Some(*m), path), Lookup::Found(..)),
                "{path}"
            );
            c.bench_function(&format!("route_lookup/{n}_routes/{shape}"), |b| {
                b.iter(|| black_box(t.lookup(Some(*m), black_box(path))))
            });
        }
        c.bench_function(&format!("route_lookup/{n}_routes/miss"), |b| {
            b.iter(|| black_box(t.lookup(Some(Method::Get), black_box("/v1/nothing/here"))))
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
