//! The whole request pipeline without sockets, per request: parse the head → route →
//! auth (API key) → throttle (stage, key and gateway scopes) → cache lookup → encode
//! the response (a mock's, or a cache hit's).

use std::time::Duration;

use bytes::Bytes;
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use turnpike::cache::policy::Outcome as CacheOutcome;
use turnpike::cache::{CacheStore, Found};
use turnpike::config::load_str;
use turnpike::limit::Locals;
use turnpike::pipeline::cache::{request_key, write_hit};
use turnpike::pipeline::respond::write_mock;
use turnpike::pipeline::{auth, throttle};
use turnpike::plan::{compile, Integration, Lookup, Method};
use turnpike::proto::h1::{parse_request, RequestHead};
use turnpike::proto::head::ResponseHead;

const CONFIG: &str = r#"
[gateway]
listen = ["127.0.0.1:0"]
throttle = { rate = 1000000000, burst = 1000000000 }

[apis.a.routes."GET /users/{id}"]
integration = { type = "mock", status = 200, body = '{"id":1}', headers = { "content-type" = "application/json" } }
api_key_required = true

[apis.a.routes."GET /ping"]
integration = { type = "mock", status = 200, body = "pong" }

[apis.a.routes."GET /items/{id}"]
integration = { type = "http_proxy", uri = "http://127.0.0.1:9/items/{id}" }
cache = { key = ["query.fields"] }

[stages.prod]
api = "a"
base_path = "/v1"
throttle = { rate = 1000000000, burst = 1000000000 }
cache = { capacity = "64MiB" }

[usage_plans.p]
stages = ["prod"]
throttle = { rate = 1000000000, burst = 1000000000 }

[api_keys.k]
key = "bench-key-0123456789abcdef0123456789"
plan = "p"
"#;

fn bench(c: &mut Criterion) {
    let plan = compile(load_str("bench.toml", CONFIG).unwrap(), 2).unwrap();
    let locals = Locals::default();
    let mut head = RequestHead::default();
    let mut out = Vec::with_capacity(4096);
    for (name, raw) in [
        ("mock_no_key", &b"GET /v1/ping HTTP/1.1\r\nHost: api.example.com\r\nUser-Agent: bench\r\n\r\n"[..]),
        (
            "mock_key_and_throttles",
            b"GET /v1/users/42 HTTP/1.1\r\nHost: api.example.com\r\nUser-Agent: bench\r\nx-api-key: bench-key-0123456789abcdef0123456789\r\n\r\n",
        ),
    ] {
        c.bench_function(&format!("pipeline/{name}"), |b| {
            b.iter(|| {
                let n = parse_request(black_box(raw), 32 << 10, &mut head).unwrap().unwrap();
                let Lookup::Found(id, _) = plan.router.lookup("api.example.com", Method::from_bytes(head.method()), head.path()) else {
                    panic!("no route")
                };
                let route = plan.route(id);
                let key = auth::identify(&plan, route, &head, None).unwrap();
                throttle::admit(&plan, id, key, &locals).unwrap();
                throttle::quota(&plan, key, &locals).unwrap();
                out.clear();
                let Integration::Mock(m) = &route.integration else { panic!() };
                write_mock(ResponseHead::text(&mut out, m.status), head.is_head(), m, b"0d8f6c6e-1b1a-4c1e-9a7e-2f6b5d4c3b2a", true);
                black_box((n, out.len()))
            })
        });
    }
}

/// parse → route → throttle → cache lookup (hit) → encode the stored response.
fn cache_hit(c: &mut Criterion) {
    let mut plan = compile(load_str("bench.toml", CONFIG).unwrap(), 2).unwrap();
    plan.bind_caches(&CacheStore::default());
    let locals = Locals::default();
    let mut head = RequestHead::default();
    let mut out = Vec::with_capacity(4096);
    let mut key = Vec::new();
    let raw = b"GET /v1/items/42?fields=name&x=1 HTTP/1.1\r\nHost: api.example.com\r\nUser-Agent: bench\r\n\r\n";
    // store the entry the requests will hit
    parse_request(raw, 32 << 10, &mut head).unwrap().unwrap();
    let Lookup::Found(id, _) =
        plan.router
            .lookup("api.example.com", Method::from_bytes(b"GET"), head.path())
    else {
        panic!("no route")
    };
    let route = plan.route(id);
    let stage = &plan.stages[route.stage as usize];
    let cache = stage.cache.as_ref().and_then(|c| c.cache.clone()).unwrap();
    let rc = route.cache.as_ref().unwrap();
    let h = request_key(&head, &stage.base_path, rc, &cache, &mut key);
    cache.refill(h, &key).store(
        rc.tag,
        200,
        Bytes::from_static(b"content-type: application/json\r\nx-upstream: bench\r\n"),
        Bytes::from(vec![b'x'; 100]),
        Duration::from_secs(3600),
    );
    c.bench_function("pipeline/cache_hit_100b", |b| {
        b.iter(|| {
            let n = parse_request(black_box(raw), 32 << 10, &mut head)
                .unwrap()
                .unwrap();
            let Lookup::Found(id, _) = plan.router.lookup(
                "api.example.com",
                Method::from_bytes(head.method()),
                head.path(),
            ) else {
                panic!("no route")
            };
            let route = plan.route(id);
            let k = auth::identify(&plan, route, &head, None).unwrap();
            throttle::admit(&plan, id, k, &locals).unwrap();
            let stage = &plan.stages[route.stage as usize];
            let rc = route.cache.as_ref().unwrap();
            let h = request_key(&head, &stage.base_path, rc, &cache, &mut key);
            let Found::Fresh(e) = cache.get(h, &key) else {
                panic!("not a hit")
            };
            out.clear();
            let len = write_hit(
                ResponseHead::text(&mut out, e.status),
                false,
                &e,
                CacheOutcome::Hit,
                false,
                b"0d8f6c6e-1b1a-4c1e-9a7e-2f6b5d4c3b2a",
                true,
            );
            black_box((n, len, out.len()))
        })
    });
}

criterion_group!(benches, bench, cache_hit);
criterion_main!(benches);
